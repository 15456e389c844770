//! Leadership through a Kubernetes Lease (`coordination.k8s.io/v1`), the way the control plane's
//! own components elect theirs: the holder renews `renewTime` every few seconds; a candidate
//! takes the Lease over once it has seen the same record unchanged for `leaseDurationSeconds`,
//! writing with the `resourceVersion` it read so that of two candidates only one wins (the
//! other's write is answered 409).
//!
//! Expiry is judged by this process's own clock since it last saw the record change, never by
//! comparing `renewTime` with local time, so clock skew between nodes cannot make two leaders.
//! A holder that cannot renew for `RENEW_DEADLINE` says it no longer holds before anyone may
//! take over (the deadline is shorter than the Lease's duration).

use std::time::Duration;

use jiff::Timestamp;
use kube::Client;
use serde_json::{Value, json};

use crate::{Error, explain, request};

/// How long a Lease stays with a holder that stopped renewing.
pub const LEASE_DURATION: Duration = Duration::from_secs(10);
/// A holder that could not renew for this long stops leading.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(7);

pub struct LeaseLock {
    client: Client,
    namespace: String,
    name: String,
    identity: String,
    /// The record as last read: its resourceVersion, holder and renewTime, and when (by this
    /// process's clock) it was first seen so.
    observed: Option<Observed>,
    /// When this process last renewed successfully, while it holds.
    renewed_at: Option<Timestamp>,
}

struct Observed {
    resource_version: String,
    holder: Option<String>,
    renew_time: Option<String>,
    transitions: i64,
    acquire_time: Option<String>,
    since: Timestamp,
}

impl LeaseLock {
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str) -> LeaseLock {
        LeaseLock {
            client,
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            observed: None,
            renewed_at: None,
        }
    }

    pub fn describe(&self) -> String {
        format!("Lease {}/{} as {}", self.namespace, self.name, self.identity)
    }

    fn collection(&self) -> String {
        format!("/apis/coordination.k8s.io/v1/namespaces/{}/leases", self.namespace)
    }

    fn path(&self) -> String {
        format!("{}/{}", self.collection(), self.name)
    }

    /// Takes the Lease if it is free or expired, renews it if this process holds it; returns
    /// whether it holds. An error (the API server unreachable, a permission missing) means it
    /// does not hold, unless it renewed less than `RENEW_DEADLINE` ago.
    pub async fn hold(&mut self, now: Timestamp) -> Result<bool, Error> {
        match self.try_hold(now).await {
            Ok(held) => {
                self.renewed_at = held.then_some(now);
                Ok(held)
            }
            Err(e) => {
                let within = self.renewed_at.is_some_and(|at| elapsed(at, now) < RENEW_DEADLINE);
                if !within {
                    self.renewed_at = None;
                }
                if within { Ok(true) } else { Err(e) }
            }
        }
    }

    async fn try_hold(&mut self, now: Timestamp) -> Result<bool, Error> {
        let current = match request(&self.client, http::Method::GET, &self.path(), None).await {
            Ok(text) => Some(parse(&text)?),
            Err(kube::Error::Api(s)) if s.code == 404 => None,
            Err(e) => return Err(explain(e, "get", "leases", Some(&self.namespace), Some(&self.name))),
        };
        let Some(lease) = current else {
            self.observed = None;
            let body = self.record(now, None, 0, None);
            return self.write(http::Method::POST, &self.collection(), body, "create", now).await;
        };
        self.observe(&lease, now);
        let Some(observed) = self.observed.as_ref() else { return Ok(false) };
        let mine = observed.holder.as_deref() == Some(self.identity.as_str());
        let free = observed.holder.as_deref().is_none_or(str::is_empty);
        let expired = elapsed(observed.since, now) >= LEASE_DURATION;
        if !mine && !free && !expired {
            return Ok(false);
        }
        let (transitions, acquired) =
            if mine { (observed.transitions, observed.acquire_time.clone()) } else { (observed.transitions + 1, None) };
        let version = observed.resource_version.clone();
        let body = self.record(now, Some(&version), transitions, acquired);
        self.write(http::Method::PUT, &self.path(), body, "update", now).await
    }

    /// Remembers the record; `since` moves only when the record changed.
    fn observe(&mut self, lease: &Value, now: Timestamp) {
        let resource_version = lease["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string();
        let spec = &lease["spec"];
        let holder = spec["holderIdentity"].as_str().map(str::to_string);
        let renew_time = spec["renewTime"].as_str().map(str::to_string);
        let same = self.observed.as_ref().is_some_and(|o| {
            o.holder == holder && o.renew_time == renew_time && o.resource_version == resource_version
        });
        if !same {
            self.observed = Some(Observed {
                resource_version,
                holder,
                renew_time,
                transitions: spec["leaseTransitions"].as_i64().unwrap_or(0),
                acquire_time: spec["acquireTime"].as_str().map(str::to_string),
                since: now,
            });
        }
    }

    fn record(&self, now: Timestamp, version: Option<&str>, transitions: i64, acquired: Option<String>) -> Value {
        let time = micro_time(now);
        let mut metadata = json!({"name": self.name, "namespace": self.namespace});
        if let Some(v) = version {
            metadata["resourceVersion"] = json!(v);
        }
        json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": LEASE_DURATION.as_secs(),
                "acquireTime": acquired.unwrap_or_else(|| time.clone()),
                "renewTime": time,
                "leaseTransitions": transitions,
            }
        })
    }

    /// Writes the record; 409 (another candidate wrote first, or created it) means not held.
    async fn write(
        &mut self,
        method: http::Method,
        path: &str,
        body: Value,
        verb: &str,
        now: Timestamp,
    ) -> Result<bool, Error> {
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        match request(&self.client, method, path, Some(("application/json", bytes))).await {
            Ok(text) => {
                let written = parse(&text)?;
                self.observed = None;
                self.observe(&written, now);
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(explain(e, verb, "leases", Some(&self.namespace), Some(&self.name))),
        }
    }

    /// Gives the Lease up at shutdown (holder cleared), so that another replica takes it at
    /// once instead of after `LEASE_DURATION`. Only a Lease this process holds is touched.
    pub async fn release(&mut self) -> Result<(), Error> {
        if self.renewed_at.take().is_none() {
            return Ok(());
        }
        let Some(o) = self.observed.as_ref() else { return Ok(()) };
        let body = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace, "resourceVersion": o.resource_version},
            "spec": {"leaseDurationSeconds": 1, "leaseTransitions": o.transitions},
        });
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        match request(&self.client, http::Method::PUT, &self.path(), Some(("application/json", bytes))).await {
            Ok(_) | Err(kube::Error::Api(_)) => Ok(()),
            Err(e) => Err(explain(e, "update", "leases", Some(&self.namespace), Some(&self.name))),
        }
    }
}

fn parse(text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::BadAnswer(format!("a Lease that is not JSON: {e}")))
}

fn elapsed(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}

/// `metav1.MicroTime`: RFC 3339 with microseconds, in UTC.
fn micro_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}
