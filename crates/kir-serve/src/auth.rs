//! Who may do what: API tokens (bearer), UI sessions (a cookie made by logging in with a token),
//! and the roles.
//!
//! A token is `kir_<id>_<secret>`: the id finds its row, the secret is checked against the
//! argon2id hash stored there. A verified token is remembered (by its SHA-256) for
//! [`CACHE_FOR`], so the apiserver's ten batches a second do not pay argon2 ten times a second;
//! a revocation through this server takes effect at once, one made elsewhere within that time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use kir_store::{ApiToken, Store};
use sha2::{Digest, Sha256};

/// Roles, from least to most. `Ingest` is apart: it may only send events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Ingest,
    Viewer,
    Responder,
    Approver,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Viewer, Role::Responder, Role::Approver, Role::Admin, Role::Ingest];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Viewer => "viewer",
            Role::Responder => "responder",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Result<Role, String> {
        Role::ALL.into_iter().find(|r| r.as_str() == text).ok_or_else(|| {
            format!("unknown role {text:?}: viewer (read), responder (incident writes), approver (approvals), admin (tokens, reload), ingest (receivers only)")
        })
    }

    /// Whether this role may do what `needed` may. Ingest tokens read nothing; the receivers
    /// take ingest and admin.
    pub fn allows(self, needed: Role) -> bool {
        match needed {
            Role::Ingest => matches!(self, Role::Ingest | Role::Admin),
            _ => self != Role::Ingest && self >= needed,
        }
    }
}

/// An authenticated caller: the token's name goes on every timeline entry it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub role: Role,
    pub token_id: String,
    /// The cluster a token sends for (`kir token create --cluster`): its events carry it.
    pub cluster: Option<String>,
}

const CACHE_FOR: Duration = Duration::from_secs(30);

pub struct Tokens {
    store: Store,
    verified: Mutex<HashMap<[u8; 32], (Identity, Instant)>>,
    /// With `--kube-auth`: the cluster that reviews tokens that are not kir's own.
    kube: Option<kir_cluster::Client>,
}

/// What the cluster's RBAC must allow for each role, on kir's virtual resources in API group
/// `kir.dev` (SubjectAccessReview), highest first: the first allowed is the role.
pub const KUBE_ROLES: [(Role, &str, &str); 5] = [
    (Role::Admin, "admin", "incidents"),
    (Role::Approver, "approve", "incidents"),
    (Role::Responder, "update", "incidents"),
    (Role::Viewer, "get", "incidents"),
    (Role::Ingest, "create", "events"),
];

/// Random bytes as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system's random source works");
    hex::encode(buf)
}

/// Makes a token for `name` with `role` (sending for `cluster`, when named) and stores its
/// hash; returns the token (shown once).
pub async fn create_token(
    store: &Store,
    name: &str,
    role: Role,
    cluster: Option<&str>,
    who: &str,
    now: i64,
) -> Result<String, String> {
    if name.is_empty() || name.len() > 100 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@:".contains(c)) {
        return Err(format!("token name {name:?}: use 1 to 100 letters, digits and - _ . @ :"));
    }
    if let Some(cluster) = cluster {
        kir_core::cluster_name(cluster).map_err(|e| format!("--cluster: {e}"))?;
    }
    let id = random_hex(6);
    let secret = random_hex(24);
    let hash = Argon2::default().hash_password(secret.as_bytes()).map_err(|e| format!("cannot hash the token: {e}"))?;
    let token = ApiToken {
        id: id.clone(),
        name: name.to_string(),
        role: role.as_str().to_string(),
        secret_hash: hash.to_string(),
        created_at: now,
        created_by: who.to_string(),
        revoked_at: None,
        revoked_by: None,
        cluster: cluster.map(str::to_string),
    };
    store.create_token(&token).await.map_err(|e| e.to_string())?;
    Ok(format!("kir_{id}_{secret}"))
}

impl Tokens {
    pub fn new(store: Store, kube: Option<kir_cluster::Client>) -> Tokens {
        Tokens { store, verified: Mutex::new(HashMap::new()), kube }
    }

    /// A Kubernetes token: its user (TokenReview) and the highest role RBAC allows
    /// (SubjectAccessReview on `kir.dev`). `None` for a token the cluster does not know or a
    /// user with none of kir's permissions.
    async fn kube_identity(&self, token: &str) -> Option<Identity> {
        let client = self.kube.as_ref()?;
        let user = match kir_cluster::review::token_review(client, token).await {
            Ok(Some(u)) => u,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "TokenReview failed: a Kubernetes token cannot be checked now");
                return None;
            }
        };
        for (role, verb, resource) in KUBE_ROLES {
            match kir_cluster::review::may(client, &user, verb, resource).await {
                Ok(true) => {
                    return Some(Identity {
                        token_id: format!("k8s:{}", if user.uid.is_empty() { &user.username } else { &user.uid }),
                        name: user.username,
                        role,
                        cluster: None,
                    });
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "SubjectAccessReview failed");
                    return None;
                }
            }
        }
        None
    }

    /// The identity of a presented token, or `None` when it is not a live token.
    pub async fn check(&self, presented: &str) -> Option<Identity> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        if let Some((who, at)) = self.verified.lock().ok()?.get(&digest)
            && at.elapsed() < CACHE_FOR
        {
            return Some(who.clone());
        }
        let who = match presented.strip_prefix("kir_") {
            Some(rest) => {
                let (id, secret) = rest.split_once('_')?;
                let row = self.store.live_token(id).await.ok()??;
                let ok = Argon2::default().verify_password(secret.as_bytes(), row.secret_hash.as_str()).is_ok();
                if !ok {
                    return None;
                }
                Identity { name: row.name, role: Role::parse(&row.role).ok()?, token_id: row.id, cluster: row.cluster }
            }
            None => self.kube_identity(presented).await?,
        };
        if let Ok(mut cache) = self.verified.lock() {
            cache.retain(|_, (_, at)| at.elapsed() < CACHE_FOR);
            cache.insert(digest, (who.clone(), Instant::now()));
        }
        Some(who)
    }

    /// Forgets every verified token of `token_id` (it was revoked here).
    pub fn forget(&self, token_id: &str) {
        if let Ok(mut cache) = self.verified.lock() {
            cache.retain(|_, (who, _)| who.token_id != token_id);
        }
    }
}

/// A logged-in browser: who, and the token its forms must carry (CSRF).
#[derive(Debug, Clone)]
pub struct Session {
    pub who: Identity,
    pub csrf: String,
    pub expires: Instant,
}

/// UI sessions, in memory: a restart logs everyone out (they log in again with their token).
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
}

pub const SESSION_COOKIE: &str = "kir_session";
const SESSION_FOR: Duration = Duration::from_secs(12 * 3600);

impl Sessions {
    /// Opens a session; returns its id (the cookie's value).
    pub fn open(&self, who: Identity) -> String {
        let id = random_hex(32);
        let session = Session { who, csrf: random_hex(16), expires: Instant::now() + SESSION_FOR };
        if let Ok(mut live) = self.live.lock() {
            live.retain(|_, s| s.expires > Instant::now());
            live.insert(id.clone(), session);
        }
        id
    }

    pub fn get(&self, id: &str) -> Option<Session> {
        let live = self.live.lock().ok()?;
        live.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    pub fn close(&self, id: &str) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(id);
        }
    }

    /// Ends every session of a revoked token.
    pub fn close_token(&self, token_id: &str) {
        if let Ok(mut live) = self.live.lock() {
            live.retain(|_, s| s.who.token_id != token_id);
        }
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').filter_map(|p| p.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_they_should() {
        assert!(Role::Admin.allows(Role::Responder));
        assert!(Role::Approver.allows(Role::Responder));
        assert!(!Role::Viewer.allows(Role::Responder));
        assert!(!Role::Ingest.allows(Role::Viewer));
        assert!(Role::Ingest.allows(Role::Ingest));
        assert!(!Role::Responder.allows(Role::Ingest));
        assert!(Role::Admin.allows(Role::Ingest));
    }

    #[test]
    fn cookies_are_found_by_name() {
        assert_eq!(cookie("a=1; kir_session=abc; b=2", SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie("kir_sessionx=1", SESSION_COOKIE), None);
    }
}
