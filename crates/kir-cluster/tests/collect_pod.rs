//! `collect::pod` through kube-rs against a `tower-test` mock API server that checks every
//! request (method, path and query, in order) and answers with responses recorded from a real
//! Kubernetes v1.26 cluster (`tests/k8s-api/`, copied from the project's recordings); the few
//! lists that were not recorded are written in the API's own shapes.

use std::path::{Path, PathBuf};

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

fn recorded(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/k8s-api");
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

struct Expect {
    path: String,
    status: u16,
    body: Vec<u8>,
}

fn expect(path: &str, status: u16, body: Vec<u8>) -> Expect {
    Expect { path: path.into(), status, body }
}

/// A client whose every request must be the next expected one.
fn mock(expected: Vec<Expect>) -> (Client, tokio::task::JoinHandle<()>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        for e in expected {
            let (request, send) = handle.next_request().await.expect("kir made the expected request");
            assert_eq!(request.method(), http::Method::GET, "{}", e.path);
            let got = request.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
            assert_eq!(got, e.path);
            send.send_response(
                Response::builder()
                    .status(e.status)
                    .header("content-type", "application/json")
                    .body(Body::from(e.body))
                    .unwrap(),
            );
        }
    });
    (Client::new(service, "default"), server)
}

const POD: &str = "checkout-api-64db89f569-blm5l";

fn config_map() -> Vec<u8> {
    serde_json::to_vec(&json!({"kind": "ConfigMap", "apiVersion": "v1",
        "metadata": {"name": "kube-root-ca.crt", "namespace": "checkout", "uid": "5b0c1b0e-1d5e-4d0e-9a4e-3f9f2a1c7e11", "resourceVersion": "310"},
        "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIC...\n-----END CERTIFICATE-----\n"}}))
    .unwrap()
}

fn policy_list() -> Vec<u8> {
    let policy: Value = serde_json::from_slice(&recorded(
        "GET_apis_networking.k8s.io_v1_namespaces_checkout_networkpolicies_deny-all-checkout-api.json",
    ))
    .unwrap();
    serde_json::to_vec(&json!({"kind": "NetworkPolicyList", "apiVersion": "networking.k8s.io/v1", "metadata": {"resourceVersion": "4242"}, "items": [policy]})).unwrap()
}

fn service_list() -> Vec<u8> {
    serde_json::to_vec(&json!({"kind": "ServiceList", "apiVersion": "v1", "metadata": {"resourceVersion": "4242"}, "items": [
        {"metadata": {"name": "checkout-api", "namespace": "checkout"}, "spec": {"selector": {"app": "checkout-api"}, "ports": [{"port": 80}]}},
        {"metadata": {"name": "other", "namespace": "checkout"}, "spec": {"selector": {"app": "other"}}}
    ]}))
    .unwrap()
}

/// The requests of one collection, in order, for `pod_body`.
fn script(pod_body: Vec<u8>, secret: Option<Vec<u8>>) -> Vec<Expect> {
    let mut s = vec![
        expect(&format!("/api/v1/namespaces/checkout/pods/{POD}"), 200, pod_body),
        expect(
            "/apis/apps/v1/namespaces/checkout/replicasets/checkout-api-64db89f569",
            200,
            recorded("GET_apis_apps_v1_namespaces_checkout_replicasets_checkout-api-64db89f569.json"),
        ),
        expect(
            "/apis/apps/v1/namespaces/checkout/deployments/checkout-api",
            200,
            recorded("GET_apis_apps_v1_namespaces_checkout_deployments_checkout-api.json"),
        ),
        expect("/api/v1/nodes/k8s-real-node", 200, recorded("GET_api_v1_nodes_k8s-real-node.json")),
        expect(
            "/api/v1/namespaces/checkout/serviceaccounts/checkout-api",
            200,
            recorded("GET_api_v1_namespaces_checkout_serviceaccounts_checkout-api.json"),
        ),
        expect(
            "/apis/rbac.authorization.k8s.io/v1/rolebindings",
            200,
            recorded("GET_apis_rbac.authorization.k8s.io_v1_rolebindings.json"),
        ),
        expect(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            200,
            recorded("GET_apis_rbac.authorization.k8s.io_v1_clusterrolebindings.json"),
        ),
        expect(
            &format!("/api/v1/namespaces/checkout/events?fieldSelector=involvedObject.name%3D{POD}"),
            200,
            recorded(&format!("GET_api_v1_namespaces_checkout_events__fieldSelector-involvedObject.name-{POD}.json")),
        ),
        expect(
            &format!("/api/v1/namespaces/checkout/pods/{POD}/log?container=app"),
            200,
            recorded(&format!("GET_api_v1_namespaces_checkout_pods_{POD}_log__container-app.txt")),
        ),
        expect(
            &format!("/api/v1/namespaces/checkout/pods/{POD}/log?container=app&previous=true"),
            400,
            recorded(&format!("GET_api_v1_namespaces_checkout_pods_{POD}_log__container-app_previous-true.json")),
        ),
        expect("/api/v1/namespaces/checkout/configmaps/kube-root-ca.crt", 200, config_map()),
    ];
    if let Some(secret) = secret {
        s.push(expect("/api/v1/namespaces/checkout/secrets/db-creds", 200, secret));
    }
    s.push(expect("/apis/networking.k8s.io/v1/namespaces/checkout/networkpolicies", 200, policy_list()));
    s.push(expect("/api/v1/namespaces/checkout/services", 200, service_list()));
    s
}

fn writer(dir: &Path) -> kir_evidence::BundleWriter {
    kir_evidence::BundleWriter::create(dir, "pod-checkout", "pod checkout/checkout-api", kir_evidence::local_identity())
        .unwrap()
}

#[tokio::test]
async fn collects_the_pod_and_what_explains_it_without_secret_values() {
    // The recorded pod, with a Secret mounted as well (the recording had none).
    let mut pod: Value =
        serde_json::from_slice(&recorded(&format!("GET_api_v1_namespaces_checkout_pods_{POD}.json"))).unwrap();
    pod["spec"]["volumes"].as_array_mut().unwrap().push(json!({"name": "db", "secret": {"secretName": "db-creds"}}));
    let secret = serde_json::to_vec(&json!({"kind": "Secret", "apiVersion": "v1", "type": "Opaque",
        "metadata": {"name": "db-creds", "namespace": "checkout",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"password\":\"czNjcjN0LXBhc3N3b3Jk\"}}"}},
        "data": {"password": "czNjcjN0LXBhc3N3b3Jk", "user": "YXBw"}}))
    .unwrap();
    let (client, server) = mock(script(serde_json::to_vec(&pod).unwrap(), Some(secret)));
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path());
    let report = kir_cluster::collect::pod(&client, "checkout", POD, &Default::default(), &mut w).await.unwrap();
    let bundle = w.finish(None).unwrap();
    server.await.unwrap();

    for f in [
        "pod.json",
        "owners/ReplicaSet-checkout-api-64db89f569.json",
        "owners/Deployment-checkout-api.json",
        "node.json",
        "serviceaccount.json",
        "rbac/bindings-of-serviceaccount.json",
        "events.json",
        "logs/app.log",
        "configmaps/kube-root-ca.crt.json",
        "secrets/db-creds.json",
        "networkpolicies.json",
        "services.json",
        "images.json",
    ] {
        assert!(report.files.iter().any(|x| x == f), "{f} in {:?}", report.files);
        assert!(bundle.join(f).is_file(), "{f}");
    }
    assert!(report.skipped.iter().any(|s| s.starts_with("logs/app.previous.log")), "{:?}", report.skipped);
    let verified = kir_evidence::verify(&bundle, None).unwrap();
    assert!(verified.ok(), "{verified:?}");

    // No Secret value anywhere in the bundle, encoded or not.
    for entry in walk(&bundle) {
        let text = String::from_utf8_lossy(&std::fs::read(&entry).unwrap()).into_owned();
        for value in ["czNjcjN0LXBhc3N3b3Jk", "s3cr3t-password", "YXBw"] {
            assert!(!text.contains(value), "{value} in {}", entry.display());
        }
    }
    let redacted: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("secrets/db-creds.json")).unwrap()).unwrap();
    assert!(redacted["data"]["password"].as_str().unwrap().starts_with("sha256:"));
    let policies: Value = serde_json::from_slice(&std::fs::read(bundle.join("networkpolicies.json")).unwrap()).unwrap();
    assert_eq!(policies.as_array().unwrap().len(), 1, "the deny-all policy selects the pod");
    let services: Value = serde_json::from_slice(&std::fs::read(bundle.join("services.json")).unwrap()).unwrap();
    assert_eq!(services[0]["metadata"]["name"], "checkout-api");
    let images: Value = serde_json::from_slice(&std::fs::read(bundle.join("images.json")).unwrap()).unwrap();
    assert_eq!(images[0]["container"], "app");
    assert!(images[0]["imageID"].as_str().unwrap().starts_with("sha256:"));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn a_missing_pod_and_a_missing_permission_are_named() {
    let (client, server) = mock(vec![expect(
        "/api/v1/namespaces/checkout/pods/does-not-exist",
        404,
        recorded("GET_api_v1_namespaces_checkout_pods_does-not-exist.json"),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path());
    let err = kir_cluster::collect::pod(&client, "checkout", "does-not-exist", &Default::default(), &mut w)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "pod checkout/does-not-exist does not exist");
    server.await.unwrap();

    let (client, server) = mock(vec![expect(
        &format!("/api/v1/namespaces/checkout/pods/{POD}"),
        403,
        recorded("GET_api_v1_namespaces_checkout_secrets.as-alice.json"),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path());
    let err = kir_cluster::collect::pod(&client, "checkout", POD, &Default::default(), &mut w).await.unwrap_err();
    assert!(err.to_string().starts_with("missing permission: get pods in namespace checkout"), "{err}");
    server.await.unwrap();
}
