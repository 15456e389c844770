//! The live cluster through kube-rs: connecting like kubectl (kubeconfig, `--context`,
//! in-cluster), saying plainly what is wrong (unreachable, a missing permission named, an object
//! that does not exist), and collecting evidence into bundles.
//!
//! Requests go through `kube::Client::request_text`, so a bundle keeps the API server's JSON as
//! it was sent, not a re-serialization of typed objects. Tests drive the same code through a
//! `tower-test` mock service that checks every request and answers with recorded responses.

pub mod collect;
pub mod contain;
pub mod lease;
pub mod review;
pub mod top;
pub mod volatile;

use std::path::Path;

pub use kube::Client;
use kube::Config;
use kube::config::{KubeConfigOptions, Kubeconfig};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach the cluster: {0}")]
    Unreachable(String),
    #[error("TLS with the cluster failed: {0}")]
    Tls(String),
    #[error("cannot authenticate to the cluster (check the kubeconfig's user, token or exec plugin): {0}")]
    Auth(String),
    #[error("the API server's answer could not be read: {0}")]
    BadAnswer(String),
    #[error("kir could not build the request: {0}")]
    Request(String),
    #[error("kubeconfig: {0}")]
    Config(String),
    #[error("missing permission: {verb} {resource}{scope} (ask for it, or use deploy/rbac.yaml)")]
    Forbidden { verb: String, resource: String, scope: String },
    #[error(
        "missing permissions, so nothing was changed: {} (ask for them, or use deploy/rbac.yaml)",
        .0.join("; ")
    )]
    MissingPermissions(Vec<String>),
    #[error("{kind} {name} does not exist")]
    NotFound { kind: String, name: String },
    #[error("the API server answered {code} to {what}: {message}")]
    Api { code: u16, what: String, message: String },
    /// A write failed and some of the writes before it could not be taken back either: the
    /// responder must know exactly what is left.
    #[error("{error}; and these changes could NOT be taken back, set them right by hand: {}", .left.join("; "))]
    HalfDone { error: Box<Error>, left: Vec<String> },
    /// kir will not do it, and says why and what to do instead.
    #[error("refused: {0}")]
    Refused(String),
    /// A kube-rs failure that none of the above describes; its own words, not a made-up code.
    #[error("the Kubernetes client failed: {0}")]
    Client(String),
    #[error("{0}")]
    Evidence(#[from] kir_evidence::Error),
}

impl Error {
    /// The connection itself failed (not reachable, TLS, credentials): every further request
    /// would fail the same way, so a collection stops instead of noting each file as skipped.
    pub fn is_connection(&self) -> bool {
        matches!(self, Error::Unreachable(_) | Error::Tls(_) | Error::Auth(_))
    }
}

/// Who and where: what a bundle records about the cluster it came from.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub server: String,
    pub context: Option<String>,
    pub user: Option<String>,
}

/// Connects as kubectl would: `kubeconfig` (else `KUBECONFIG` or `~/.kube/config`, else the
/// in-cluster service account), with `context` or the current context.
pub async fn connect(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<(Client, Target), Error> {
    let options = KubeConfigOptions { context: context.map(str::to_string), ..Default::default() };
    let (config, context_name, user) = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
            let (ctx, user) = context_of(&kc, context);
            let config =
                Config::from_custom_kubeconfig(kc, &options).await.map_err(|e| Error::Config(e.to_string()))?;
            (config, ctx, user)
        }
        None => match Kubeconfig::read() {
            Ok(kc) => {
                let (ctx, user) = context_of(&kc, context);
                let config =
                    Config::from_custom_kubeconfig(kc, &options).await.map_err(|e| Error::Config(e.to_string()))?;
                (config, ctx, user)
            }
            Err(_) => {
                let config = Config::incluster().map_err(|e| {
                    Error::Config(format!("no kubeconfig (KUBECONFIG, ~/.kube/config) and not inside a cluster: {e}"))
                })?;
                (config, None, Some("in-cluster service account".into()))
            }
        },
    };
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| Error::Unreachable(e.to_string()))?;
    Ok((client, Target { server, context: context_name, user }))
}

fn context_of(kc: &Kubeconfig, wanted: Option<&str>) -> (Option<String>, Option<String>) {
    let name = wanted.map(str::to_string).or_else(|| kc.current_context.clone());
    let user = name
        .as_ref()
        .and_then(|n| kc.contexts.iter().find(|c| &c.name == n))
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.user.clone());
    (name, user)
}

/// One raw request to the API server; the answer's text as the server sent it. A request that
/// cannot even be built (a name no URI can carry) is an error, never a panic.
pub(crate) async fn request(
    client: &Client,
    method: http::Method,
    path: &str,
    body: Option<(&str, Vec<u8>)>,
) -> Result<String, kube::Error> {
    let mut builder = http::Request::builder().method(method).uri(path);
    let bytes = match body {
        Some((content_type, bytes)) => {
            builder = builder.header("content-type", content_type);
            bytes
        }
        None => Vec::new(),
    };
    let req = builder.body(bytes).map_err(kube::Error::HttpError)?;
    client.request_text(req).await
}

/// GET `path` as text.
pub(crate) async fn get_text(client: &Client, path: &str) -> Result<String, kube::Error> {
    request(client, http::Method::GET, path, None).await
}

/// GET `path` and parse it; errors say `verb resource` (`get` for one object, `list` for a
/// collection) the way RBAC names them.
pub(crate) async fn get_json(
    client: &Client,
    path: &str,
    verb: &str,
    resource: &str,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Result<serde_json::Value, Error> {
    let text = get_text(client, path).await.map_err(|e| explain(e, verb, resource, namespace, name))?;
    serde_json::from_str(&text).map_err(|e| Error::Api {
        code: 200,
        what: format!("{verb} {resource}"),
        message: format!("the answer is not JSON: {e}"),
    })
}

/// LIST a collection (`/apis/apps/v1/deployments`) in pages of 500, as kubectl does, so a
/// large cluster is never one answer held whole by the API server; the pages' items are joined
/// into one list. Errors name `list RESOURCE` the way RBAC does.
pub async fn list(client: &Client, path: &str, resource: &str) -> Result<serde_json::Value, Error> {
    const PAGE: usize = 500;
    let mut all: Option<serde_json::Value> = None;
    let mut next: Option<String> = None;
    loop {
        let page_path = match &next {
            None => format!("{path}?limit={PAGE}"),
            Some(token) => format!("{path}?limit={PAGE}&continue={}", encode(token)),
        };
        let mut page = get_json(client, &page_path, "list", resource, None, None).await?;
        let token =
            page.pointer("/metadata/continue").and_then(|c| c.as_str()).filter(|c| !c.is_empty()).map(str::to_string);
        match all.as_mut() {
            None => all = Some(page),
            Some(list) => {
                let items = page["items"].as_array_mut().map(std::mem::take).unwrap_or_default();
                if let Some(existing) = list["items"].as_array_mut() {
                    existing.extend(items);
                }
            }
        }
        match token {
            // A server that hands back the token it was given would loop forever.
            Some(t) if Some(&t) != next.as_ref() => next = Some(t),
            _ => break,
        }
    }
    let mut list = all.unwrap_or_default();
    if let Some(m) = list.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.remove("continue");
    }
    Ok(list)
}

/// Percent-encodes a name or a query value for an API path.
pub(crate) fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Turns a kube error into what a responder needs to read.
pub fn explain(e: kube::Error, verb: &str, resource: &str, namespace: Option<&str>, name: Option<&str>) -> Error {
    match &e {
        kube::Error::Api(status) => {
            let code = status.code;
            match code {
                403 => Error::Forbidden {
                    verb: verb.into(),
                    resource: resource.into(),
                    scope: match namespace {
                        Some(ns) => format!(" in namespace {ns}"),
                        None => " (cluster-wide)".into(),
                    },
                },
                // A subresource's 404 is its object's: `pod shop/web does not exist`.
                404 => Error::NotFound {
                    kind: kir_core::singular(resource.split('/').next().unwrap_or(resource)),
                    name: match (namespace, name) {
                        (Some(ns), Some(n)) => format!("{ns}/{n}"),
                        (None, Some(n)) => n.into(),
                        _ => resource.into(),
                    },
                },
                401 => Error::Auth(format!("the API server answered 401 to {verb} {resource}: {}", status.message)),
                _ => Error::Api { code, what: format!("{verb} {resource}"), message: status.message.clone() },
            }
        }
        // kube wraps what went wrong under the connection (a refused certificate, an exec
        // plugin that failed) in a service error: only what is left is "cannot reach".
        kube::Error::HyperError(_) | kube::Error::Service(_) => match transport_cause(&e) {
            TransportCause::Tls => Error::Tls(e_text(&e)),
            TransportCause::Auth => Error::Auth(e_text(&e)),
            TransportCause::Connection => Error::Unreachable(e_text(&e)),
        },
        kube::Error::RustlsTls(_) | kube::Error::TlsRequired => Error::Tls(e_text(&e)),
        kube::Error::Auth(_) => Error::Auth(e_text(&e)),
        kube::Error::SerdeError(_)
        | kube::Error::FromUtf8(_)
        | kube::Error::LinesCodecMaxLineLengthExceeded
        | kube::Error::ReadEvents(_) => Error::BadAnswer(e_text(&e)),
        kube::Error::BuildRequest(_) | kube::Error::HttpError(_) => Error::Request(e_text(&e)),
        kube::Error::InferConfig(_) | kube::Error::InferKubeconfig(_) => Error::Config(e_text(&e)),
        other => Error::Client(format!("{verb} {resource}: {}", e_text(other))),
    }
}

enum TransportCause {
    Tls,
    Auth,
    Connection,
}

fn transport_cause(e: &kube::Error) -> TransportCause {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<kube::client::AuthError>().is_some() {
            return TransportCause::Auth;
        }
        if s.downcast_ref::<rustls::Error>().is_some() || s.downcast_ref::<kube::client::RustlsTlsError>().is_some() {
            return TransportCause::Tls;
        }
        // rustls reports a failed handshake as an io::Error that carries its own error inside.
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.get_ref().is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        {
            return TransportCause::Tls;
        }
        source = s.source();
    }
    TransportCause::Connection
}

/// The error and its causes in one line: kube's top-level messages ("ServiceError: …") often
/// keep the useful part (connection refused, certificate unknown) in the source chain.
fn e_text(e: &kube::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service_error(cause: impl std::error::Error + Send + Sync + 'static) -> kube::Error {
        kube::Error::Service(Box::new(cause))
    }

    #[test]
    fn a_refused_certificate_inside_a_service_error_is_tls() {
        let handshake = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let err = explain(service_error(handshake), "get", "pods", Some("shop"), Some("web"));
        assert!(matches!(err, Error::Tls(_)), "{err:?}");
        assert!(err.to_string().contains("UnknownIssuer") || err.to_string().contains("unknown issuer"), "{err}");
        assert!(err.is_connection());
    }

    #[test]
    fn a_failed_exec_plugin_inside_a_service_error_is_auth() {
        let err = explain(service_error(kube::client::AuthError::ExecPluginFailed), "list", "pods", None, None);
        assert!(matches!(err, Error::Auth(_)), "{err:?}");
        assert!(err.to_string().contains("exec-plugin"), "{err}");
    }

    #[test]
    fn a_refused_connection_is_unreachable() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let err = explain(service_error(refused), "list", "pods", None, None);
        assert!(matches!(err, Error::Unreachable(_)), "{err:?}");
        assert!(err.to_string().contains("connection refused"), "{err}");
    }

    #[test]
    fn a_401_is_auth_and_the_fallback_names_no_code() {
        let status = kube::core::Status::failure("Unauthorized", "Unauthorized").with_code(401);
        let err = explain(kube::Error::Api(Box::new(status)), "get", "pods", Some("shop"), Some("web"));
        assert!(matches!(err, Error::Auth(_)), "{err:?}");
        let err = explain(kube::Error::LinesCodecMaxLineLengthExceeded, "watch", "events", None, None);
        assert!(!err.to_string().contains("answered 0"), "{err}");
        let err = explain(
            kube::Error::ProxyProtocolDisabled {
                proxy_url: Box::new("socks5://p".parse().unwrap()),
                protocol_feature: "socks5",
            },
            "get",
            "pods",
            None,
            None,
        );
        assert!(matches!(err, Error::Client(_)), "{err:?}");
        assert!(!err.to_string().contains("answered 0"), "{err}");
    }
}
