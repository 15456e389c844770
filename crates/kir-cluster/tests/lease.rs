//! The Lease that chooses `kir serve`'s leader inside a cluster, through the mock API server:
//! the exact requests kir sends (create, renew, take over, give up) and what it makes of the
//! answers. `../shared/k8s-api` has no Lease recording: the objects are coordination.k8s.io/v1's
//! documented shape, the errors the API server's Status objects for 404, 409 and 403.

mod common;

use common::*;
use http::Method;
use jiff::Timestamp;
use kir_cluster::lease::LeaseLock;
use serde_json::{Value, json};

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kir/leases";
const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/kir/leases/kir-leader";

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_796_000_000 + second).unwrap()
}

fn micro(second: i64) -> String {
    at(second).strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn lease(version: &str, holder: &str, acquired: i64, renewed: i64, transitions: i64) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "kir-leader", "namespace": "kir", "resourceVersion": version,
            "uid": "0d1c6b1e-6c1f-4f7e-9a51-7b1f3f7a2c10", "creationTimestamp": "2026-12-01T09:00:00Z"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 10, "acquireTime": micro(acquired),
            "renewTime": micro(renewed), "leaseTransitions": transitions}
    })
}

/// What kir writes: the record without server fields, with the resourceVersion it read.
fn written(version: Option<&str>, holder: &str, acquired: i64, renewed: i64, transitions: i64) -> Value {
    let mut metadata = json!({"name": "kir-leader", "namespace": "kir"});
    if let Some(v) = version {
        metadata["resourceVersion"] = json!(v);
    }
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 10, "acquireTime": micro(acquired),
            "renewTime": micro(renewed), "leaseTransitions": transitions}})
}

fn status(code: u16, reason: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "details": {"name": "kir-leader", "group": "coordination.k8s.io", "kind": "leases"},
        "code": code}))
    .unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

#[tokio::test]
async fn the_first_replica_creates_the_lease_and_renews_it() {
    let (client, server) = mock(vec![
        call(Method::GET, LEASE, 404, status(404, "NotFound", "leases.coordination.k8s.io \"kir-leader\" not found")),
        call(Method::POST, LEASES, 201, bytes(&lease("501", "kir-7d9-a", 0, 0, 0)))
            .body(written(None, "kir-7d9-a", 0, 0, 0), JSON),
        get(LEASE, bytes(&lease("501", "kir-7d9-a", 0, 0, 0))),
        call(Method::PUT, LEASE, 200, bytes(&lease("502", "kir-7d9-a", 0, 2, 0)))
            .body(written(Some("501"), "kir-7d9-a", 0, 2, 0), JSON),
    ]);
    let mut lock = LeaseLock::new(client, "kir", "kir-leader", "kir-7d9-a");
    assert!(lock.hold(at(0)).await.unwrap());
    assert!(lock.hold(at(2)).await.unwrap());
    server.await.unwrap();
}

#[tokio::test]
async fn a_live_holder_keeps_it_and_a_silent_one_loses_it_after_the_lease_duration() {
    let (client, server) = mock(vec![
        // b renews at 0 and then says nothing more: a sees the same record for 10 s.
        get(LEASE, bytes(&lease("700", "kir-7d9-b", 0, 0, 3))),
        get(LEASE, bytes(&lease("700", "kir-7d9-b", 0, 0, 3))),
        get(LEASE, bytes(&lease("700", "kir-7d9-b", 0, 0, 3))),
        call(Method::PUT, LEASE, 200, bytes(&lease("701", "kir-7d9-a", 12, 12, 4)))
            .body(written(Some("700"), "kir-7d9-a", 12, 12, 4), JSON),
    ]);
    let mut lock = LeaseLock::new(client, "kir", "kir-leader", "kir-7d9-a");
    assert!(!lock.hold(at(2)).await.unwrap(), "b renewed just now");
    assert!(!lock.hold(at(9)).await.unwrap(), "7 s of silence is not yet 10");
    assert!(lock.hold(at(12)).await.unwrap(), "10 s unchanged: a takes over, one transition more");
    server.await.unwrap();
}

#[tokio::test]
async fn a_renewing_holder_is_never_overtaken_whatever_the_clocks_say() {
    // b's renewTime lies far in the past by a's clock (skew), but it changes at every look.
    let (client, server) = mock(vec![
        get(LEASE, bytes(&lease("800", "kir-7d9-b", -3600, -3600, 1))),
        get(LEASE, bytes(&lease("801", "kir-7d9-b", -3600, -3598, 1))),
        get(LEASE, bytes(&lease("802", "kir-7d9-b", -3600, -3596, 1))),
    ]);
    let mut lock = LeaseLock::new(client, "kir", "kir-leader", "kir-7d9-a");
    for second in [0, 8, 16] {
        assert!(!lock.hold(at(second)).await.unwrap());
    }
    server.await.unwrap();
}

#[tokio::test]
async fn of_two_candidates_the_one_whose_write_is_refused_does_not_lead() {
    let (client, server) = mock(vec![
        get(LEASE, bytes(&lease("900", "", 0, 0, 2))),
        call(Method::PUT, LEASE, 409, status(409, "Conflict",
            "Operation cannot be fulfilled on leases.coordination.k8s.io \"kir-leader\": the object has been modified; please apply your changes to the latest version and try again"))
            .body(written(Some("900"), "kir-7d9-a", 1, 1, 3), JSON),
    ]);
    let mut lock = LeaseLock::new(client, "kir", "kir-leader", "kir-7d9-a");
    assert!(!lock.hold(at(1)).await.unwrap(), "a freed Lease goes to whoever writes first");
    server.await.unwrap();
}

#[tokio::test]
async fn a_holder_that_cannot_renew_stops_leading_before_anyone_may_take_over() {
    let forbidden = status(
        403,
        "Forbidden",
        "leases.coordination.k8s.io \"kir-leader\" is forbidden: User \"system:serviceaccount:kir:kir\" cannot get resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"kir\"",
    );
    let (client, server) = mock(vec![
        get(LEASE, bytes(&lease("510", "kir-7d9-a", 0, 0, 0))),
        call(Method::PUT, LEASE, 200, bytes(&lease("511", "kir-7d9-a", 0, 0, 0)))
            .body(written(Some("510"), "kir-7d9-a", 0, 0, 0), JSON),
        call(Method::GET, LEASE, 403, forbidden.clone()),
        call(Method::GET, LEASE, 403, forbidden),
    ]);
    let mut lock = LeaseLock::new(client, "kir", "kir-leader", "kir-7d9-a");
    assert!(lock.hold(at(0)).await.unwrap());
    assert!(lock.hold(at(4)).await.unwrap(), "4 s without renewing is inside the renew deadline");
    let e = lock.hold(at(8)).await.unwrap_err().to_string();
    assert!(e.contains("get") && e.contains("leases"), "{e}");
    server.await.unwrap();
}

#[tokio::test]
async fn a_replica_that_stops_gives_the_lease_up_at_once() {
    let (client, server) = mock(vec![
        get(LEASE, bytes(&lease("600", "kir-7d9-a", 0, 0, 5))),
        call(Method::PUT, LEASE, 200, bytes(&lease("601", "kir-7d9-a", 0, 3, 5)))
            .body(written(Some("600"), "kir-7d9-a", 0, 3, 5), JSON),
        call(
            Method::PUT,
            LEASE,
            200,
            bytes(&json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "kir-leader", "namespace": "kir", "resourceVersion": "602"},
            "spec": {"leaseDurationSeconds": 1, "leaseTransitions": 5}})),
        )
        .body(
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "kir-leader", "namespace": "kir", "resourceVersion": "601"},
                "spec": {"leaseDurationSeconds": 1, "leaseTransitions": 5}}),
            JSON,
        ),
    ]);
    let mut lock = LeaseLock::new(client, "kir", "kir-leader", "kir-7d9-a");
    assert!(lock.hold(at(3)).await.unwrap());
    lock.release().await.unwrap();
    lock.release().await.unwrap(); // once given up, nothing more is sent
    server.await.unwrap();
}
