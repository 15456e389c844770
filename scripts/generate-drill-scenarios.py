#!/usr/bin/env python3
"""Writes kir's bundled drill scenarios that follow Stratus Red Team's Kubernetes techniques.

Stratus Red Team (DataDog, Apache-2.0) documents which API calls each technique makes; it ships
no audit logs. These recordings are kir's own: the requests Stratus's client-go code sends, as a
v1.26 kube-apiserver logs them at RequestResponse (field for field the shape of
examples/exposed-console-cryptojack.audit.jsonl.gz), with a little background traffic around
them. Deterministic: the same bytes on every run.

    python3 scripts/generate-drill-scenarios.py   # writes crates/kir-drill/scenarios/stratus-*.audit.jsonl
"""
import json
import os
import uuid
from datetime import datetime, timedelta, timezone

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "kir-drill", "scenarios")
START = datetime(2026, 11, 27, 22, 0, 0, tzinfo=timezone.utc)
NS = uuid.UUID("6b1c6a52-1f0e-4e4b-9a57-2a4f4c7c2d10")
ATTACKER = {
    "username": "system:serviceaccount:stratus-red-team:stratus",
    "uid": "0c9e8e9b-5a3f-4f43-8f8e-2c6a7f6c1a11",
    "groups": ["system:serviceaccounts", "system:serviceaccounts:stratus-red-team", "system:authenticated"],
}
STRATUS_UA = "stratus-red-team_4f1a2b3c/v2.x (linux/amd64) kubernetes/v0.31"
KUBELET = {"username": "system:node:k8s-real-node", "groups": ["system:nodes", "system:authenticated"]}


def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Recording:
    def __init__(self, name):
        self.name = name
        self.lines = []
        self.n = 0

    def request(self, at, user, ua, verb, uri, object_ref, code, request_object=None, response_object=None, reason=None):
        self.n += 1
        audit_id = str(uuid.uuid5(NS, f"{self.name}/{self.n}"))
        base = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "RequestResponse",
            "auditID": audit_id,
            "requestURI": uri,
            "verb": verb,
            "user": user,
            "sourceIPs": ["10.0.3.17"],
            "userAgent": ua,
            "objectRef": object_ref,
            "requestReceivedTimestamp": ts(at),
        }
        received = dict(base, stage="RequestReceived", stageTimestamp=ts(at))
        if request_object is not None:
            received["requestObject"] = request_object
        done = dict(base, stage="ResponseComplete", stageTimestamp=ts(at + timedelta(milliseconds=3)))
        done["responseStatus"] = {"metadata": {}, "code": code}
        if request_object is not None:
            done["requestObject"] = request_object
        if response_object is not None:
            done["responseObject"] = response_object
        done["annotations"] = {
            "authorization.k8s.io/decision": "allow" if code < 400 or code >= 500 or code == 404 else "forbid",
            "authorization.k8s.io/reason": reason or "",
        }
        self.lines += [received, done]

    def background(self, at):
        """The kubelet's lease renewal and status reads: what every minute of a cluster holds."""
        self.request(
            at,
            KUBELET,
            "kubelet/v1.26.0 (linux/amd64) kubernetes/b46a3f8",
            "update",
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/k8s-real-node?timeout=10s",
            {"resource": "leases", "namespace": "kube-node-lease", "name": "k8s-real-node", "apiGroup": "coordination.k8s.io", "apiVersion": "v1"},
            200,
        )

    def attacker_creates_pod(self, at, body):
        """Stratus's service account creates `body` in its namespace, allowed by its edit binding."""
        name = body["metadata"]["name"]
        self.request(
            at,
            ATTACKER,
            STRATUS_UA,
            "create",
            "/api/v1/namespaces/stratus-red-team/pods",
            {"resource": "pods", "namespace": "stratus-red-team", "name": name, "apiVersion": "v1"},
            201,
            request_object=body,
            response_object=body,
            reason='RBAC: allowed by RoleBinding "stratus/stratus-red-team" of ClusterRole "edit" to ServiceAccount "stratus/stratus-red-team"',
        )

    def write(self):
        path = os.path.join(OUT, f"{self.name}.audit.jsonl")
        with open(path, "w") as f:
            for line in self.lines:
                f.write(json.dumps(line, separators=(",", ":")) + "\n")
        print(path, len(self.lines), "events")


def pod(name, spec_extra, container_extra):
    container = {"name": name, "image": "busybox:stable", "command": ["sleep", "3600"]}
    container.update(container_extra)
    spec = {"containers": [container]}
    spec.update(spec_extra)
    return {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name, "namespace": "stratus-red-team"}, "spec": spec}


def dump_secrets():
    r = Recording("stratus-dump-secrets")
    for i in range(3):
        r.background(START + timedelta(seconds=10 * i))
    r.request(
        START + timedelta(seconds=31),
        ATTACKER,
        STRATUS_UA,
        "list",
        "/api/v1/secrets?limit=1000",
        {"resource": "secrets", "apiVersion": "v1"},
        200,
        response_object={"kind": "SecretList", "apiVersion": "v1", "metadata": {"resourceVersion": "4242"}, "items": []},
        reason='RBAC: allowed by ClusterRoleBinding "stratus-red-team-dump-secrets" of ClusterRole "stratus-secret-reader" to ServiceAccount "stratus/stratus-red-team"',
    )
    r.background(START + timedelta(seconds=40))
    r.write()


def privileged_pod():
    r = Recording("stratus-privileged-pod")
    r.background(START)
    body = pod("stratus-red-team-priv-pod", {}, {"securityContext": {"privileged": True}})
    r.attacker_creates_pod(START + timedelta(seconds=12), body)
    r.background(START + timedelta(seconds=20))
    r.write()


def hostpath_volume():
    r = Recording("stratus-hostpath-volume")
    r.background(START)
    body = pod(
        "stratus-red-team-hostpath",
        {"volumes": [{"name": "host", "hostPath": {"path": "/", "type": "Directory"}}]},
        {"volumeMounts": [{"name": "host", "mountPath": "/host"}]},
    )
    r.attacker_creates_pod(START + timedelta(seconds=9), body)
    r.write()


def create_token():
    r = Recording("stratus-create-token")
    r.background(START)
    request = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "metadata": {"creationTimestamp": None},
               "spec": {"audiences": None, "expirationSeconds": 31536000, "boundObjectRef": None}, "status": {"token": "", "expirationTimestamp": None}}
    response = dict(request, status={"token": "REDACTED", "expirationTimestamp": "2027-11-27T22:00:14Z"})
    r.request(
        START + timedelta(seconds=14),
        ATTACKER,
        STRATUS_UA,
        "create",
        "/api/v1/namespaces/kube-system/serviceaccounts/clusterrole-aggregation-controller/token",
        {"resource": "serviceaccounts", "namespace": "kube-system", "name": "clusterrole-aggregation-controller", "apiVersion": "v1", "subresource": "token"},
        201,
        request_object=request,
        response_object=response,
        reason='RBAC: allowed by ClusterRoleBinding "stratus-red-team-create-token" of ClusterRole "stratus-token-creator" to ServiceAccount "stratus/stratus-red-team"',
    )
    r.background(START + timedelta(seconds=20))
    r.write()


if __name__ == "__main__":
    dump_secrets()
    privileged_pod()
    hostpath_volume()
    create_token()
