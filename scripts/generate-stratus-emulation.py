#!/usr/bin/env python3
"""Emulate, request by request, what Stratus Red Team's Kubernetes techniques send to
kube-apiserver 1.26, as its audit log would record them (all stages): the test data of
crates/kir/tests/stratus_emulation.rs.

    python3 scripts/generate-stratus-emulation.py OUTDIR

writes one TECHNIQUE.VARIANT.audit.jsonl (and .labels.tsv) per technique and form, and labels.tsv
(auditID, technique/variant, step, must_see). Deterministic (seeded). The committed data is these
files, gzipped (gzip -n).
"""
import json, uuid, random, datetime, base64, os, copy

random.seed(20261128)
import sys
OUT = sys.argv[1] if len(sys.argv) > 1 else "stratus-events"
NODE = "ip-10-0-1-12.eu-west-1.compute.internal"
NODE_IP = "10.0.1.12"
# Certificate requests made with openssl for this data (CN system:kube-controller-manager; a person).
CSR_KCM = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KTUlJQmFEQ0IwZ0lCQURBcE1TY3dKUVlEVlFRRERCNXplWE4wWlcwNmEzVmlaUzFqYjI1MGNtOXNiR1Z5TFcxaApibUZuWlhJd2daOHdEUVlKS29aSWh2Y05BUUVCQlFBRGdZMEFNSUdKQW9HQkFNY09OWkZzUzBOT05kbVlQL2hmCk9FNUZYdnN1WmJaRDZMb3A4c3JqdXF2b1NIcGgzdzY2aWNRdm1jaVp0dTNac2FlOUtRZ1VqNFl1dHhYZmRmN0kKbzRQdW1ObXU4dlV4d0d0amNkZEdCNW5iVUdxY0o4bWNJWllLMURZS0QzUkVTYzg3alRmWkZrcFhvcjFJd3FDQgpKSkt1aFlqZjF3Q1JrTmZkaC9CVHZCMEJBZ01CQUFHZ0FEQU5CZ2txaGtpRzl3MEJBUXNGQUFPQmdRQUN4bkpsCkViaUMvdDlvS2NaRjVVSzQ5YTVlOHlBU0RkYlR0ZjRnbEVjc0RubktmNG5zRGJMTldpbFpHNk1oV3YwN2FsNkMKTk5NSjJvWnBaczlTTHJmNloyMlFvcVNpT1NRcnVzbEtsbGtibjF2UG1DbE5EKys2QzdldWFTMk9aL29TNU9nWAo0MWQ3SERoWlV4NEt5VDA3bDFvK3ZqNGtwcEFIRFcxYUxxZENkZz09Ci0tLS0tRU5EIENFUlRJRklDQVRFIFJFUVVFU1QtLS0tLQo="

def uid():
    return str(uuid.UUID(int=random.getrandbits(128), version=4))

def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

# ---------------------------------------------------------------- identities
class Actor:
    def __init__(self, user, ua, src, reason):
        self.user, self.ua, self.src, self.reason = user, ua, src, reason

ADMIN = {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}
STRATUS_UA = "stratus-red-team_3b0f1c7e-9a2d-4e55-8b61-2f4c9d7a1e08"
TF_UA = "HashiCorp/1.0 Terraform/1.5.7"
KUBECTL_UA = "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819"
ADMIN_SRC = ["10.20.4.31"]

def sa_user(ns, name, pod=None):
    u = {"username": f"system:serviceaccount:{ns}:{name}", "uid": uid(),
         "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]}
    if pod:
        u["extra"] = {"authentication.kubernetes.io/pod-name": [pod],
                      "authentication.kubernetes.io/pod-uid": [uid()]}
    return u

# stolen token of a CI deployer pod bound to cluster-admin
STOLEN = sa_user("ci", "deploy-bot", "deploy-bot-7c9f8d6b5-x2kqp")
STOLEN_SRC = ["10.244.2.17"]
STOLEN_REASON = 'RBAC: allowed by ClusterRoleBinding "deploy-bot-admin" of ClusterRole "cluster-admin" to ServiceAccount "deploy-bot/ci"'
# stolen token of a web pod with no rights (refused forms)
WEAK = sa_user("web", "frontend", "frontend-6d5b9c7f4-h8zlm")
WEAK_SRC = ["10.244.1.9"]

ADMIN_A = Actor(ADMIN, STRATUS_UA, ADMIN_SRC, "")
ADMIN_TF = Actor(ADMIN, TF_UA, ADMIN_SRC, "")
STOLEN_A = Actor(STOLEN, KUBECTL_UA, STOLEN_SRC, STOLEN_REASON)
STOLEN_S = Actor(STOLEN, STRATUS_UA, STOLEN_SRC, STOLEN_REASON)
WEAK_A = Actor(WEAK, KUBECTL_UA, WEAK_SRC, "")

KUBELET = Actor({"username": f"system:node:{NODE}", "groups": ["system:nodes", "system:authenticated"]},
                "kubelet/v1.26.0 (linux/amd64) kubernetes/b46a3f8", [NODE_IP], "")
SCHED = Actor({"username": "system:kube-scheduler", "groups": ["system:authenticated"]},
              "kube-scheduler/v1.26.0 (linux/amd64) kubernetes/b46a3f8/scheduler", ["10.0.0.10"],
              'RBAC: allowed by ClusterRoleBinding "system:kube-scheduler" of ClusterRole "system:kube-scheduler" to User "system:kube-scheduler"')
def ctrl(name):
    return Actor(sa_user("kube-system", name), f"kube-controller-manager/v1.26.0 (linux/amd64) kubernetes/b46a3f8/system:serviceaccount:kube-system:{name}",
                 ["10.0.0.10"], f'RBAC: allowed by ClusterRoleBinding "system:controller:{name}" of ClusterRole "system:controller:{name}" to ServiceAccount "{name}/kube-system"')
NSCTRL = ctrl("namespace-controller")
CERTCTRL = ctrl("certificate-controller")
KCM = Actor({"username": "system:kube-controller-manager", "groups": ["system:authenticated"]},
            "kube-controller-manager/v1.26.0 (linux/amd64) kubernetes/b46a3f8/leader-election", ["10.0.0.10"],
            'RBAC: allowed by ClusterRoleBinding "system:kube-controller-manager" of ClusterRole "system:kube-controller-manager" to User "system:kube-controller-manager"')

# ---------------------------------------------------------------- audit policies
# "full": one rule, RequestResponse (as the example recording).
# "typical": kube-up/GKE-like: Metadata for secrets, configmaps, tokenreviews, serviceaccounts/token;
#            Request for get/list/watch; RequestResponse for writes.
def level_for(policy, verb, res, sub):
    if policy == "full":
        return "RequestResponse"
    if res in ("secrets", "configmaps", "tokenreviews") or (res == "serviceaccounts" and sub == "token"):
        return "Metadata"
    if verb in ("get", "list", "watch"):
        return "Request"
    return "RequestResponse"

GROUPS = {"clusterroles": ("rbac.authorization.k8s.io", "v1"), "clusterrolebindings": ("rbac.authorization.k8s.io", "v1"),
          "certificatesigningrequests": ("certificates.k8s.io", "v1"), "leases": ("coordination.k8s.io", "v1")}

class Log:
    def __init__(self, name, start, policy):
        self.name, self.t, self.policy = name, start, policy
        self.events, self.labels = [], []

    def tick(self, ms):
        self.t += datetime.timedelta(milliseconds=ms)

    def req(self, actor, verb, uri, res, ns=None, name=None, sub=None, code=200, reqobj=None, respobj=None,
            longrun=False, technique="", step="", must=None, status=None, dur_ms=None, extra_ann=None,
            reason=None, decision="allow"):
        aid = uid()
        t0 = self.t
        dur = datetime.timedelta(milliseconds=dur_ms if dur_ms is not None else random.randint(2, 12))
        lvl = level_for(self.policy, verb, res, sub)
        grp, ver = GROUPS.get(res, (None, "v1"))
        oref = {"resource": res}
        if ns: oref["namespace"] = ns
        if name and not (decision == "forbid" and verb == "create" and not sub): oref["name"] = name
        if grp: oref["apiGroup"] = grp
        oref["apiVersion"] = ver
        if sub: oref["subresource"] = sub
        base = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": lvl, "auditID": aid}
        common = {"requestURI": uri, "verb": verb, "user": actor.user, "sourceIPs": actor.src,
                  "userAgent": actor.ua, "objectRef": oref}
        rr = iso(t0)
        ev1 = dict(base, stage="RequestReceived", **common, requestReceivedTimestamp=rr, stageTimestamp=rr)
        self.events.append((t0, ev1))
        if decision == "forbid":
            code = 403
            what = f'{res}{"/" + sub if sub else ""}'
            scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
            gtxt = grp or ""
            nm = f' "{name}"' if name and "name" in oref else ""
            status = {"metadata": {}, "status": "Failure",
                      "message": f'{what}{nm} is forbidden: User "{actor.user["username"]}" cannot {verb} resource "{what}" in API group "{gtxt}" {scope}',
                      "reason": "Forbidden", "details": {"kind": res}, "code": 403}
            if "name" in oref: status["details"]["name"] = name
            reqobj, respobj = None, dict(status, kind="Status", apiVersion="v1")
            ann = {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""}
        else:
            ann = {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": reason if reason is not None else actor.reason}
        if extra_ann: ann.update(extra_ann)
        rs = status if status else {"metadata": {}, "code": code}
        if longrun:
            ev2 = dict(base, stage="ResponseStarted", **common, responseStatus=rs,
                       requestReceivedTimestamp=rr, stageTimestamp=iso(t0 + datetime.timedelta(milliseconds=3)), annotations=ann)
            self.events.append((t0, ev2))
        ev3 = dict(base, stage="ResponseComplete", **common, responseStatus=rs)
        if reqobj is not None and lvl in ("Request", "RequestResponse"):
            ev3["requestObject"] = reqobj
        if respobj is not None and lvl == "RequestResponse":
            ev3["responseObject"] = respobj
        ev3["requestReceivedTimestamp"] = rr
        ev3["stageTimestamp"] = iso(t0 + dur)
        ev3["annotations"] = ann
        self.events.append((t0 + dur, ev3))
        if must is not None:
            self.labels.append((aid, technique, step, must))
        self.tick(random.randint(3, 40))
        return aid

    def write(self):
        evs = sorted(self.events, key=lambda x: x[0])
        with open(f"{OUT}/{self.name}.audit.jsonl", "w") as f:
            for _, e in evs:
                f.write(json.dumps(e, separators=(",", ":")) + "\n")
        with open(f"{OUT}/{self.name}.labels.tsv", "w") as f:
            for l in self.labels:
                f.write("\t".join(l) + "\n")

# ---------------------------------------------------------------- object helpers
def meta(name, ns=None, labels=None, gen=None, **kw):
    m = {"name": name}
    if ns: m["namespace"] = ns
    m["creationTimestamp"] = None
    if labels: m["labels"] = labels
    m.update(kw)
    return m

def created(obj, t, manager):
    o = copy.deepcopy(obj)
    md = o["metadata"]
    md["uid"] = uid(); md["resourceVersion"] = str(random.randint(100000, 999999))
    md["creationTimestamp"] = t.strftime("%Y-%m-%dT%H:%M:%SZ")
    md["managedFields"] = [{"manager": manager, "operation": "Update", "apiVersion": o.get("apiVersion", "v1"),
                            "time": md["creationTimestamp"], "fieldsType": "FieldsV1", "fieldsV1": {}}]
    return o

def mgr(actor):
    return actor.ua.split("/")[0]

SL = lambda stage, corr="3b0f1c7e-9a2d-4e55-8b61-2f4c9d7a1e08": {
    "datadoghq.com/stratus-red-team": "true", "datadoghq.com/stratus-red-team-correlation-id": corr,
    "datadoghq.com/stratus-red-team-stage": stage}

def pod_obj(name, ns, container, sa=None, volumes=None, labels=None):
    spec = {"containers": [container], "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst", "securityContext": {}, "schedulerName": "default-scheduler"}
    if volumes: spec["volumes"] = volumes
    if sa: spec["serviceAccountName"] = sa
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta(name, ns, labels), "spec": spec, "status": {}}

def pod_side_effects(L, ns, name, sa="default"):
    """scheduler binding, kubelet token, kubelet status: the cluster's own reaction (not attacker)."""
    L.tick(15)
    L.req(SCHED, "create", f"/api/v1/namespaces/{ns}/pods/{name}/binding", "pods", ns, name, "binding", 201,
          reqobj={"kind": "Binding", "apiVersion": "v1", "metadata": {"name": name, "namespace": ns},
                  "target": {"kind": "Node", "name": NODE}}, respobj={"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
    L.tick(400)
    L.req(KUBELET, "get", f"/api/v1/namespaces/{ns}/pods/{name}", "pods", ns, name, reason="")
    L.req(KUBELET, "create", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token", "serviceaccounts", ns, sa, "token", 201,
          reqobj={"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "metadata": {"name": sa, "namespace": ns, "creationTimestamp": None},
                  "spec": {"audiences": None, "expirationSeconds": 3607, "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": name}}},
          respobj={"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "status": {"token": "REDACTED"}}, reason="")
    L.tick(900)
    L.req(KUBELET, "patch", f"/api/v1/namespaces/{ns}/pods/{name}/status", "pods", ns, name, "status", 200,
          reqobj={"status": {"phase": "Running"}}, reason="")

def lease(L):
    L.req(KUBELET, "update", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{NODE}?timeout=10s",
          "leases", "kube-node-lease", NODE, reason="",
          reqobj={"kind": "Lease", "apiVersion": "coordination.k8s.io/v1", "metadata": {"name": NODE, "namespace": "kube-node-lease"}, "spec": {"holderIdentity": NODE, "leaseDurationSeconds": 40}})

def ns_obj(name, labels=None):
    return {"kind": "Namespace", "apiVersion": "v1", "metadata": meta(name, labels=labels), "spec": {}, "status": {}}

def delopts(grace=None):
    d = {"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/__internal"}
    if grace is not None: d["gracePeriodSeconds"] = grace
    return d

def ns_create(L, a, name, T, labels):
    o = ns_obj(name, labels)
    L.req(a, "create", "/api/v1/namespaces", "namespaces", None, name, code=201, reqobj=o, respobj=created(o, L.t, mgr(a)),
          technique=T, step="warmup:create-namespace", must="yes")
    L.req(a, "get", f"/api/v1/namespaces/{name}", "namespaces", None, name, technique=T, step="warmup:read-back", must="no")

def ns_delete(L, a, name, T):
    L.req(a, "delete", f"/api/v1/namespaces/{name}", "namespaces", None, name, reqobj=delopts(),
          respobj={"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": name}, "status": {"phase": "Terminating"}},
          technique=T, step="cleanup:delete-namespace", must="yes")
    L.tick(200)
    for r in ("pods", "serviceaccounts", "configmaps", "secrets", "rolebindings"):
        L.req(NSCTRL, "deletecollection", f"/api/v1/namespaces/{name}/{r}", r, name, respobj={"kind": "Status"}, reason="")
    for i in range(3):
        L.tick(1000)
        L.req(a, "get", f"/api/v1/namespaces/{name}", "namespaces", None, name, code=(404 if i == 2 else 200),
              technique=T, step="cleanup:wait", must="no")

# ---------------------------------------------------------------- techniques
def dump_secrets(L, a, variant):
    T = "k8s.credential-access.dump-secrets"
    secrets = {"kind": "SecretList", "apiVersion": "v1", "metadata": {"resourceVersion": "812311"},
               "items": [{"metadata": {"name": "db-creds", "namespace": "payments"}, "type": "Opaque", "data": {"password": "czNjcjN0"}},
                         {"metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"}, "type": "bootstrap.kubernetes.io/token"}]}
    if variant == "refused":
        L.req(a, "list", "/api/v1/secrets?limit=1000", "secrets", decision="forbid", technique=T, step="detonate:list-secrets-all", must="yes")
        L.tick(2000)
        L.req(a, "list", "/api/v1/namespaces/kube-system/secrets?limit=500", "secrets", "kube-system", decision="forbid", technique=T, step="detonate:list-secrets-ns", must="yes")
        return
    L.req(a, "list", "/api/v1/secrets?limit=1000", "secrets", respobj=secrets, dur_ms=48, technique=T, step="detonate:list-secrets-all", must="yes")
    if variant == "hands-on":
        L.tick(4000)
        L.req(a, "list", "/api/v1/namespaces/kube-system/secrets?limit=500", "secrets", "kube-system", respobj=secrets, technique=T, step="detonate:list-secrets-ns", must="yes")
        L.tick(3000)
        L.req(a, "get", "/api/v1/namespaces/payments/secrets/db-creds", "secrets", "payments", "db-creds", respobj=secrets["items"][0], technique=T, step="detonate:get-secret", must="yes")

def steal_token(L, a, tf, variant):
    T = "k8s.credential-access.steal-serviceaccount-token"
    ns = "stratus-red-team-kqvhzdwa"
    sa, pod = "stratus-red-team-ssat-sa", "stratus-red-team-ssat-pod"
    labels = dict(SL("warmup"))
    if variant in ("success", "hands-on", "failed"):
        ns_create(L, tf, ns, T, labels)
        o = {"kind": "ServiceAccount", "apiVersion": "v1", "metadata": meta(sa, ns, labels), "automountServiceAccountToken": True}
        L.req(tf, "create", f"/api/v1/namespaces/{ns}/serviceaccounts", "serviceaccounts", ns, sa, code=201, reqobj=o, respobj=created(o, L.t, "HashiCorp"),
              technique=T, step="warmup:create-serviceaccount", must="yes")
        L.req(tf, "get", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}", "serviceaccounts", ns, sa, technique=T, step="warmup:read-back", must="no")
        c = {"name": "main-container", "image": "public.ecr.aws/docker/library/alpine:3.15.0", "command": ["/bin/sh"],
             "args": ["-c", "while true; do sleep 3600; done"], "imagePullPolicy": "IfNotPresent"}
        po = pod_obj(pod, ns, c, sa=sa, labels=labels)
        L.req(tf, "create", f"/api/v1/namespaces/{ns}/pods", "pods", ns, pod, code=201, reqobj=po, respobj=created(po, L.t, "HashiCorp"),
              extra_ann={"pod-security.kubernetes.io/enforce-policy": "privileged:latest"},
              technique=T, step="warmup:create-pod", must="yes")
        pod_side_effects(L, ns, pod, sa)
        for i in range(3):
            L.tick(1000)
            L.req(tf, "get", f"/api/v1/namespaces/{ns}/pods/{pod}", "pods", ns, pod, technique=T, step="warmup:wait-running", must="no")
        L.tick(8000)
    target_ns, target_pod = (ns, pod) if variant != "refused" else ("payments", "payments-api-5f7d9c8b6-2xk4p")
    cmd = "command=cat&command=%2Fvar%2Frun%2Fsecrets%2Fkubernetes.io%2Fserviceaccount%2Ftoken"
    if variant == "hands-on":
        # kubectl exec over WebSocket (kubectl >= 1.30 default) is logged as get/101
        L.req(a, "get", f"/api/v1/namespaces/{target_ns}/pods/{target_pod}/exec?{cmd}&container=main-container&stdout=true&stderr=true",
              "pods", target_ns, target_pod, "exec", 101, longrun=True, dur_ms=380, technique=T, step="detonate:exec-cat-token", must="yes")
        L.tick(5000)
        L.req(a, "create", f"/api/v1/namespaces/{target_ns}/pods/{target_pod}/exec?command=sh&command=-c&command=cat+%2Fvar%2Frun%2Fsecrets%2Fkubernetes.io%2Fserviceaccount%2Fca.crt&container=main-container&stdout=true&stderr=true",
              "pods", target_ns, target_pod, "exec", 101, longrun=True, dur_ms=300, technique=T, step="detonate:exec-sh-c", must="yes")
    elif variant == "failed":
        st = {"metadata": {}, "status": "Failure", "message": f"error dialing backend: dial tcp {NODE_IP}:10250: connect: connection refused",
              "reason": "InternalError", "details": {"causes": [{"message": f"error dialing backend: dial tcp {NODE_IP}:10250: connect: connection refused"}]}, "code": 500}
        L.req(a, "create", f"/api/v1/namespaces/{target_ns}/pods/{target_pod}/exec?{cmd}&stdout=true", "pods", target_ns, target_pod, "exec", 500,
              status=st, respobj=dict(st, kind="Status", apiVersion="v1"), longrun=True, technique=T, step="detonate:exec-cat-token", must="yes")
    elif variant == "refused":
        L.req(a, "create", f"/api/v1/namespaces/{target_ns}/pods/{target_pod}/exec?{cmd}&stdout=true", "pods", target_ns, target_pod, "exec",
              decision="forbid", technique=T, step="detonate:exec-cat-token", must="yes")
        return
    else:
        L.req(a, "create", f"/api/v1/namespaces/{target_ns}/pods/{target_pod}/exec?{cmd}&stdout=true", "pods", target_ns, target_pod, "exec", 101,
              longrun=True, dur_ms=420, technique=T, step="detonate:exec-cat-token", must="yes")
    L.tick(30000)
    # cleanup = terraform destroy
    L.req(tf, "delete", f"/api/v1/namespaces/{ns}/pods/{pod}", "pods", ns, pod, reqobj=delopts(),
          respobj=created(po, L.t, "HashiCorp"), technique=T, step="cleanup:delete-pod", must="yes")
    L.req(tf, "get", f"/api/v1/namespaces/{ns}/pods/{pod}", "pods", ns, pod, code=404, technique=T, step="cleanup:wait", must="no")
    L.req(tf, "delete", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}", "serviceaccounts", ns, sa, reqobj=delopts(),
          technique=T, step="cleanup:delete-serviceaccount", must="yes")
    ns_delete(L, tf, ns, T)

def admin_clusterrole(L, a, variant):
    T = "k8s.persistence.create-admin-clusterrole"
    cr = {"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": meta("stratus-red-team-clusterrole"),
          "rules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]}
    sa = {"kind": "ServiceAccount", "apiVersion": "v1", "metadata": meta("stratus-red-team-serviceaccount", "kube-system"), "automountServiceAccountToken": True}
    crb = {"kind": "ClusterRoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": meta("stratus-red-team-crb"),
           "subjects": [{"kind": "ServiceAccount", "name": "stratus-red-team-serviceaccount", "namespace": "kube-system"}],
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "stratus-red-team-clusterrole"}}
    if variant == "refused":
        L.req(a, "create", "/apis/rbac.authorization.k8s.io/v1/clusterroles", "clusterroles", None, "stratus-red-team-clusterrole", decision="forbid",
              technique=T, step="detonate:create-clusterrole", must="yes")
        L.req(a, "create", "/api/v1/namespaces/kube-system/serviceaccounts", "serviceaccounts", "kube-system", "x", decision="forbid",
              technique=T, step="detonate:create-serviceaccount", must="yes")
        L.req(a, "create", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "clusterrolebindings", None, "x", decision="forbid",
              technique=T, step="detonate:create-clusterrolebinding", must="yes")
        return
    L.req(a, "create", "/apis/rbac.authorization.k8s.io/v1/clusterroles", "clusterroles", None, "stratus-red-team-clusterrole", code=201,
          reqobj=cr, respobj=created(cr, L.t, mgr(a)), technique=T, step="detonate:create-clusterrole", must="yes")
    L.req(a, "create", "/api/v1/namespaces/kube-system/serviceaccounts", "serviceaccounts", "kube-system", "stratus-red-team-serviceaccount", code=201,
          reqobj=sa, respobj=created(sa, L.t, mgr(a)), technique=T, step="detonate:create-serviceaccount", must="yes")
    L.req(a, "create", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "clusterrolebindings", None, "stratus-red-team-crb", code=201,
          reqobj=crb, respobj=created(crb, L.t, mgr(a)), technique=T, step="detonate:create-clusterrolebinding", must="yes")
    if variant == "hands-on":
        # works on >= 1.24: ask for a legacy token Secret, then read it
        sec = {"kind": "Secret", "apiVersion": "v1", "metadata": meta("stratus-red-team-serviceaccount-token", "kube-system",
               annotations={"kubernetes.io/service-account.name": "stratus-red-team-serviceaccount"}), "type": "kubernetes.io/service-account-token"}
        L.tick(3000)
        L.req(a, "create", "/api/v1/namespaces/kube-system/secrets", "secrets", "kube-system", "stratus-red-team-serviceaccount-token", code=201,
              reqobj=sec, technique=T, step="detonate:create-token-secret", must="yes")
        L.tick(50)
        L.req(ctrl("tokens-controller") if False else KCM, "update", "/api/v1/namespaces/kube-system/secrets/stratus-red-team-serviceaccount-token",
              "secrets", "kube-system", "stratus-red-team-serviceaccount-token", reason="")
        L.tick(2000)
        L.req(a, "get", "/api/v1/namespaces/kube-system/secrets/stratus-red-team-serviceaccount-token", "secrets", "kube-system",
              "stratus-red-team-serviceaccount-token", technique=T, step="detonate:get-token-secret", must="yes")
        L.tick(20000)
        L.req(a, "delete", "/api/v1/namespaces/kube-system/secrets/stratus-red-team-serviceaccount-token", "secrets", "kube-system",
              "stratus-red-team-serviceaccount-token", technique=T, step="cleanup:delete-token-secret", must="yes")
    else:
        # Stratus polls the SA for .secrets[0] every second for a minute (k8s >= 1.24: never filled)
        so = created(sa, L.t, mgr(a))
        for i in range(61):
            L.req(a, "get", "/api/v1/namespaces/kube-system/serviceaccounts/stratus-red-team-serviceaccount", "serviceaccounts", "kube-system",
                  "stratus-red-team-serviceaccount", respobj=so, technique=T, step="detonate:poll-serviceaccount", must="yes")
            L.tick(1000 - 20)
    L.tick(15000)
    # revert (delete with gracePeriodSeconds 0)
    L.req(a, "delete", "/apis/rbac.authorization.k8s.io/v1/clusterroles/stratus-red-team-clusterrole", "clusterroles", None, "stratus-red-team-clusterrole",
          reqobj=delopts(0), technique=T, step="cleanup:delete-clusterrole", must="yes")
    L.req(a, "delete", "/api/v1/namespaces/kube-system/serviceaccounts/stratus-red-team-serviceaccount", "serviceaccounts", "kube-system",
          "stratus-red-team-serviceaccount", reqobj=delopts(0), technique=T, step="cleanup:delete-serviceaccount", must="yes")
    L.req(a, "delete", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/stratus-red-team-crb", "clusterrolebindings", None, "stratus-red-team-crb",
          reqobj=delopts(0), technique=T, step="cleanup:delete-clusterrolebinding", must="yes")

def client_cert(L, a, variant):
    T = "k8s.persistence.create-client-certificate"
    n = "stratus-red-team-csr"
    base = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
    csr = {"kind": "CertificateSigningRequest", "apiVersion": "certificates.k8s.io/v1", "metadata": meta(n),
           "spec": {"request": CSR_KCM, "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"], "groups": ["system:authenticated"]},
           "status": {}}
    if variant == "refused":
        L.req(a, "create", base, "certificatesigningrequests", None, n, decision="forbid", technique=T, step="detonate:create-csr", must="yes")
        L.req(a, "update", f"{base}/{n}/approval", "certificatesigningrequests", None, n, "approval", decision="forbid", technique=T, step="detonate:approve-csr", must="yes")
        return
    L.req(a, "create", base, "certificatesigningrequests", None, n, code=201, reqobj=csr, respobj=created(csr, L.t, mgr(a)),
          technique=T, step="detonate:create-csr", must="yes")
    appr = copy.deepcopy(csr)
    appr["status"] = {"conditions": [{"type": "Approved", "status": "True", "reason": "User activation", "message": "This CSR was approved",
                                      "lastUpdateTime": L.t.strftime("%Y-%m-%dT%H:%M:%SZ"), "lastTransitionTime": None}]}
    L.req(a, "update", f"{base}/{n}/approval", "certificatesigningrequests", None, n, "approval", reqobj=appr, respobj=appr,
          technique=T, step="detonate:approve-csr", must="yes")
    L.tick(30)
    L.req(CERTCTRL, "update", f"{base}/{n}/status", "certificatesigningrequests", None, n, "status",
          reqobj={"kind": "CertificateSigningRequest", "status": {"certificate": "REDACTED"}})
    L.tick(2000)
    L.req(a, "get", f"{base}/{n}", "certificatesigningrequests", None, n, respobj=appr, technique=T, step="detonate:get-csr-certificate", must="yes")
    L.req(a, "delete", f"{base}/{n}", "certificatesigningrequests", None, n, reqobj=delopts(), technique=T, step="cleanup:delete-csr", must="yes")

def create_token(L, a, variant):
    T = "k8s.persistence.create-token"
    uri = "/api/v1/namespaces/kube-system/serviceaccounts/clusterrole-aggregation-controller/token"
    tr = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "metadata": {"name": "clusterrole-aggregation-controller", "namespace": "kube-system", "creationTimestamp": None},
          "spec": {"audiences": None, "expirationSeconds": 946080000, "boundObjectRef": None}, "status": {"token": "", "expirationTimestamp": None}}
    if variant == "refused":
        L.req(a, "create", uri, "serviceaccounts", "kube-system", "clusterrole-aggregation-controller", "token", decision="forbid", technique=T, step="detonate:create-token", must="yes")
        return
    L.req(a, "create", uri, "serviceaccounts", "kube-system", "clusterrole-aggregation-controller", "token", 201,
          reqobj=tr, respobj=dict(tr, status={"token": "REDACTED", "expirationTimestamp": "2056-11-20T09:12:44Z"}),
          technique=T, step="detonate:create-token", must="yes")
    if variant == "hands-on":
        # kubectl create token for another powerful SA in another namespace
        L.tick(5000)
        L.req(a, "create", "/api/v1/namespaces/argocd/serviceaccounts/argocd-application-controller/token", "serviceaccounts", "argocd",
              "argocd-application-controller", "token", 201, reqobj=dict(tr, spec={"audiences": None, "expirationSeconds": 31536000}),
              technique=T, step="detonate:create-token-other", must="yes")

def pod_technique(L, a, tf, variant, T, ns, c, volumes, violation, hands_on):
    """A technique that creates one pod (privileged, or with the host's root mounted), in each form."""
    name = T
    if variant != "refused":
        ns_create(L, tf, ns, T, SL("warmup"))
        L.tick(6000)
    else:
        ns = "web"
    po = pod_obj(name, ns, c, volumes=volumes, labels=SL("detonation"))
    if variant == "refused":
        L.req(a, "create", f"/api/v1/namespaces/{ns}/pods", "pods", ns, name, decision="forbid", technique=T, step="detonate:create-pod", must="yes")
        return
    if variant == "failed":
        # authorized, refused by PodSecurity admission (baseline) -> 403 with decision allow
        st = {"metadata": {}, "status": "Failure", "message": f'pods "{name}" is forbidden: violates PodSecurity "baseline:latest": {violation}',
              "reason": "Forbidden", "details": {"name": name, "kind": "pods"}, "code": 403}
        L.req(a, "create", f"/api/v1/namespaces/{ns}/pods", "pods", ns, name, code=403, status=st, reqobj=po, respobj=dict(st, kind="Status", apiVersion="v1"),
              extra_ann={"pod-security.kubernetes.io/enforce-policy": "baseline:latest"}, technique=T, step="detonate:create-pod", must="yes")
        L.tick(5000)
        ns_delete(L, tf, ns, T)
        return
    L.req(a, "create", f"/api/v1/namespaces/{ns}/pods", "pods", ns, name, code=201, reqobj=po, respobj=created(po, L.t, mgr(a)),
          extra_ann={"pod-security.kubernetes.io/enforce-policy": "privileged:latest"}, technique=T, step="detonate:create-pod", must="yes")
    pod_side_effects(L, ns, name)
    if hands_on and variant == "hands-on":
        L.tick(5000)
        L.req(a, "get", f"/api/v1/namespaces/{ns}/pods/{name}/log", "pods", ns, name, "log", longrun=True, technique=T, step="detonate:read-log", must="yes")
        L.tick(3000)
        L.req(a, "create", f"/api/v1/namespaces/{ns}/pods/{name}/exec?command=chroot&command=%2Fhost&command=sh&container=busybox&stdin=true&stdout=true&tty=true",
              "pods", ns, name, "exec", 101, longrun=True, dur_ms=60000, technique=T, step="detonate:exec-chroot", must="yes")
    L.tick(20000)
    L.req(a, "delete", f"/api/v1/namespaces/{ns}/pods/{name}", "pods", ns, name, reqobj=delopts(0), technique=T, step="cleanup:delete-pod", must="yes")
    L.tick(1000)
    ns_delete(L, tf, ns, T)

def hostpath(L, a, tf, variant):
    c = {"name": "busybox", "image": "busybox:stable", "command": ["sh", "-c"], "args": ["cat /host/etc/passwd && while true; do sleep 3600; done"],
         "volumeMounts": [{"name": "hostfs", "mountPath": "/host"}]}
    pod_technique(L, a, tf, variant, "k8s.privilege-escalation.hostpath-volume", "stratus-red-team-hpns-wqzx", c,
                  [{"name": "hostfs", "hostPath": {"path": "/", "type": ""}}], 'hostPath volumes (volume "hostfs")', True)

def privileged(L, a, tf, variant):
    c = {"name": "busybox", "image": "busybox:stable", "command": ["sh", "-c"], "args": ["while true; do sleep 3600; done"],
         "securityContext": {"privileged": True}}
    pod_technique(L, a, tf, variant, "k8s.privilege-escalation.privileged-pod", "stratus-red-team-privileged-name-jfkelqpr", c,
                  None, 'privileged (container "busybox" must not set securityContext.privileged=true)', False)

def nodes_proxy(L, a, tf, variant):
    T = "k8s.privilege-escalation.nodes-proxy"
    ns = "stratus-red-team-np-name-mbtjsxkq"
    sa, cr, crb = "stratus-red-team-np-sa", "stratus-red-team-np-clusterrole", "stratus-red-team-np-crb"
    proxy_user = sa_user(ns, sa)
    P = Actor(proxy_user, STRATUS_UA if a.ua == STRATUS_UA else "curl/8.5.0", a.src,
              f'RBAC: allowed by ClusterRoleBinding "{crb}" of ClusterRole "{cr}" to ServiceAccount "{sa}/{ns}"')
    if variant == "refused":
        L.req(a, "create", f"/api/v1/namespaces/web/serviceaccounts/frontend/token", "serviceaccounts", "web", "frontend", "token", decision="forbid",
              technique=T, step="detonate:create-token", must="yes")
        L.req(a, "list", "/api/v1/nodes", "nodes", decision="forbid", technique=T, step="detonate:list-nodes", must="yes")
        L.req(a, "get", f"/api/v1/nodes/{NODE}/proxy/runningpods/", "nodes", None, NODE, "proxy", decision="forbid", technique=T, step="detonate:nodes-proxy", must="yes")
        return
    ns_create(L, tf, ns, T, SL("warmup"))
    cro = {"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": meta(cr),
           "rules": [{"verbs": ["get", "create"], "apiGroups": [""], "resources": ["nodes/proxy"]}]}
    L.req(tf, "create", "/apis/rbac.authorization.k8s.io/v1/clusterroles", "clusterroles", None, cr, code=201, reqobj=cro, respobj=created(cro, L.t, "HashiCorp"),
          technique=T, step="warmup:create-clusterrole", must="yes")
    so = {"kind": "ServiceAccount", "apiVersion": "v1", "metadata": meta(sa, ns), "automountServiceAccountToken": True}
    L.req(tf, "create", f"/api/v1/namespaces/{ns}/serviceaccounts", "serviceaccounts", ns, sa, code=201, reqobj=so, respobj=created(so, L.t, "HashiCorp"),
          technique=T, step="warmup:create-serviceaccount", must="yes")
    crbo = {"kind": "ClusterRoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": meta(crb),
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cr}}
    L.req(tf, "create", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "clusterrolebindings", None, crb, code=201, reqobj=crbo,
          respobj=created(crbo, L.t, "HashiCorp"), technique=T, step="warmup:create-clusterrolebinding", must="yes")
    for u, r, n in ((f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{cr}", "clusterroles", cr), (f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}", "serviceaccounts", sa)):
        L.req(tf, "get", u, r, ns if r == "serviceaccounts" else None, n, technique=T, step="warmup:read-back", must="no")
    L.tick(9000)
    tr = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "metadata": {"name": sa, "namespace": ns, "creationTimestamp": None},
          "spec": {"audiences": None, "expirationSeconds": None, "boundObjectRef": None}, "status": {"token": "", "expirationTimestamp": None}}
    L.req(a, "create", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token", "serviceaccounts", ns, sa, "token", 201, reqobj=tr,
          respobj=dict(tr, status={"token": "REDACTED"}), technique=T, step="detonate:create-token", must="yes")
    L.req(a, "list", "/api/v1/nodes", "nodes", respobj={"kind": "NodeList", "items": [{"metadata": {"name": NODE}}]}, technique=T, step="detonate:list-nodes", must="yes")
    if variant == "failed":
        st = {"metadata": {}, "status": "Failure", "message": f"error trying to reach service: dial tcp {NODE_IP}:10250: connect: connection refused",
              "reason": "ServiceUnavailable", "code": 503}
        L.req(P, "get", f"/api/v1/nodes/{NODE}/proxy/runningpods/", "nodes", None, NODE, "proxy", 503, status=st, longrun=True,
              technique=T, step="detonate:nodes-proxy", must="yes")
        st5 = {"metadata": {}, "status": "Failure", "message": "Internal error occurred: error from kubelet", "reason": "InternalError", "code": 500}
        L.req(P, "get", f"/api/v1/nodes/{NODE}/proxy/pods", "nodes", None, NODE, "proxy", 500, status=st5, longrun=True,
              technique=T, step="detonate:nodes-proxy", must="yes")
    else:
        L.req(P, "get", f"/api/v1/nodes/{NODE}/proxy/runningpods/", "nodes", None, NODE, "proxy", 200, longrun=True, dur_ms=35,
              technique=T, step="detonate:nodes-proxy", must="yes")
        if variant == "hands-on":
            L.tick(4000)
            L.req(P, "create", f"/api/v1/nodes/{NODE}/proxy/run/kube-system/kube-proxy-7xq2d/kube-proxy?cmd=cat+%2Fvar%2Frun%2Fsecrets%2Fkubernetes.io%2Fserviceaccount%2Ftoken",
                  "nodes", None, NODE, "proxy", 200, longrun=True, technique=T, step="detonate:nodes-proxy-run", must="yes")
    L.tick(30000)
    L.req(tf, "delete", f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{crb}", "clusterrolebindings", None, crb, reqobj=delopts(),
          technique=T, step="cleanup:delete-clusterrolebinding", must="yes")
    L.req(tf, "delete", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}", "serviceaccounts", ns, sa, reqobj=delopts(), technique=T, step="cleanup:delete-serviceaccount", must="yes")
    L.req(tf, "delete", f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{cr}", "clusterroles", None, cr, reqobj=delopts(), technique=T, step="cleanup:delete-clusterrole", must="yes")
    ns_delete(L, tf, ns, T)

AWS_AUTH_BASE = ("- groups:\n  - system:bootstrappers\n  - system:nodes\n  rolearn: arn:aws:iam::012345678901:role/eksctl-prod-nodegroup-NodeInstanceRole-1X2Y3Z\n"
                 "  username: system:node:{{EC2PrivateDNSName}}\n")
def aws_auth(L, a, variant):
    T = "eks.persistence.backdoor-aws-auth-configmap"
    uri = "/api/v1/namespaces/kube-system/configmaps/aws-auth"
    def cm(roles):
        return {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "aws-auth", "namespace": "kube-system", "uid": "5a3e0f42-0b3d-4c1e-9f77-2f4d0c9b8e11",
                "resourceVersion": str(random.randint(100000, 999999)), "creationTimestamp": "2025-03-02T10:11:12Z"}, "data": {"mapRoles": roles}}
    back = AWS_AUTH_BASE + ("- groups:\n  - system:masters\n  rolearn: arn:aws:iam::012345678901:role/stratus-red-team-eks-backdoor-aws-auth-role\n  username: backdoor\n")
    if variant == "refused":
        L.req(a, "get", uri, "configmaps", "kube-system", "aws-auth", decision="forbid", technique=T, step="detonate:get-configmap", must="yes")
        L.req(a, "update", uri, "configmaps", "kube-system", "aws-auth", decision="forbid", technique=T, step="detonate:update-configmap", must="yes")
        return
    L.req(a, "get", uri, "configmaps", "kube-system", "aws-auth", respobj=cm(AWS_AUTH_BASE), technique=T, step="detonate:get-configmap", must="yes")
    if variant == "hands-on":
        # kubectl edit / patch: a strategic-merge patch of data.mapRoles
        L.req(a, "patch", uri, "configmaps", "kube-system", "aws-auth", reqobj={"data": {"mapRoles": back}}, respobj=cm(back),
              technique=T, step="detonate:update-configmap", must="yes")
    else:
        L.req(a, "update", uri, "configmaps", "kube-system", "aws-auth", reqobj=cm(back), respobj=cm(back), technique=T, step="detonate:update-configmap", must="yes")
    L.tick(40000)
    L.req(a, "get", uri, "configmaps", "kube-system", "aws-auth", respobj=cm(back), technique=T, step="cleanup:get-configmap", must="no")
    L.req(a, "update", uri, "configmaps", "kube-system", "aws-auth", reqobj=cm(AWS_AUTH_BASE), respobj=cm(AWS_AUTH_BASE), technique=T, step="cleanup:update-configmap", must="yes")

# ---------------------------------------------------------------- scenarios
EKS_ADMIN = {"username": "arn:aws:sts::012345678901:assumed-role/PlatformAdmin/jdoe", "uid": "aws-iam-authenticator:012345678901:AROAEXAMPLEID",
             "groups": ["system:masters", "system:authenticated"],
             "extra": {"accessKeyId": ["ASIAEXAMPLEKEY"], "arn": ["arn:aws:sts::012345678901:assumed-role/PlatformAdmin/jdoe"],
                       "canonicalArn": ["arn:aws:iam::012345678901:role/PlatformAdmin"], "principalId": ["AROAEXAMPLEID"], "sessionName": ["jdoe"]}}

TECHS = {
    "dump-secrets": lambda L, a, tf, v: dump_secrets(L, a, v),
    "steal-serviceaccount-token": steal_token,
    "create-admin-clusterrole": lambda L, a, tf, v: admin_clusterrole(L, a, v),
    "create-client-certificate": lambda L, a, tf, v: client_cert(L, a, v),
    "create-token": lambda L, a, tf, v: create_token(L, a, v),
    "hostpath-volume": hostpath,
    "nodes-proxy": nodes_proxy,
    "privileged-pod": privileged,
    "backdoor-aws-auth-configmap": lambda L, a, tf, v: aws_auth(L, a, v),
}
VARIANTS = {  # name -> (actor, terraform actor, variant, policy)
    "admin": (ADMIN_A, ADMIN_TF, "success", "full"),
    "admin-typical": (ADMIN_A, ADMIN_TF, "success", "typical"),
    "stolen-sa": (STOLEN_A, STOLEN_A, "hands-on", "full"),
    "stolen-sa-stratus": (STOLEN_S, STOLEN_S, "success", "typical"),
    "refused": (WEAK_A, WEAK_A, "refused", "full"),
    "failed": (STOLEN_A, STOLEN_A, "failed", "full"),
}
FAILED_OK = {"steal-serviceaccount-token", "nodes-proxy", "hostpath-volume", "privileged-pod"}

os.makedirs(OUT, exist_ok=True)
start = datetime.datetime(2026, 11, 28, 9, 0, 0)
all_labels = []
for ti, (tname, fn) in enumerate(TECHS.items()):
    for vi, (vname, (a, tf, v, pol)) in enumerate(VARIANTS.items()):
        if v == "failed" and tname not in FAILED_OK:
            continue
        if tname == "backdoor-aws-auth-configmap" and vname.startswith("admin"):
            a = Actor(EKS_ADMIN, STRATUS_UA, ["203.0.113.45"], "")
        L = Log(f"{tname}.{vname}", start + datetime.timedelta(minutes=ti * 60 + vi * 9), pol)
        lease(L); L.tick(2000)
        fn(L, a, tf, v)
        L.tick(3000); lease(L)
        L.labels = [(x[0], f"{x[1]}/{vname}", x[2], x[3]) for x in L.labels]
        L.write()
        all_labels += L.labels
with open(f"{OUT}/labels.tsv", "w") as f:
    f.write("auditID\ttechnique\tstep\tmust_see\n")
    for l in all_labels:
        f.write("\t".join(l) + "\n")
print(len(all_labels), "labelled requests")
