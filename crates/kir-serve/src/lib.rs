//! `kir serve`: the service that receives audit events and Falco alerts as they happen, detects
//! with the same rules, correlation and plan as `kir hunt`, files incidents, runs the escalation
//! timers and pages, and serves the REST API and the web UI.
//!
//! The flow: receivers (`receive`) store each batch durably before answering 200 → live
//! detection (`live`, one thread) reads the stored stream in order → detections and incidents
//! (`kir-app`, `kir-store`) → the escalation ticker pages. The API (`api`) and the UI (`ui`)
//! read and write through the same library functions as the `kir` commands.
//!
//! Architecture invariants: a batch is acknowledged only once stored; detection reads only what
//! is stored (so a restart replays it to the same state); every endpoint but `/healthz` and
//! `/readyz` needs an identity, and every write names it on the timeline.

pub mod api;
pub mod auth;
pub mod leader;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod receive;
pub mod tls;
pub mod ui;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kir_detect::RuleSet;
use kir_plan::Plan;
use kir_store::Store;

/// Loads rules and plan, as the command line names them; called at start and on every reload.
pub type Loader = Arc<dyn Fn() -> Result<Engine, String> + Send + Sync>;

/// What detection and filing run with.
pub struct Engine {
    pub rules: RuleSet,
    pub plan: Plan,
    pub plan_name: String,
    pub roles: kir_detect::context::RoleRegistry,
}

pub struct Config {
    pub listen: SocketAddr,
    pub store_url: String,
    /// Bytes of one request body at most.
    pub body_limit: usize,
    /// Batches being stored at once at most; one more is answered 429.
    pub max_in_flight: usize,
    /// Events stored but not yet through detection at most; beyond, receivers answer 429.
    pub max_lag: i64,
    /// How long the stream must be quiet before requests waiting for their last stage are
    /// reported as they are.
    pub flush_after: Duration,
    /// Warn when no audit event came for this long.
    pub silence_after: Option<Duration>,
    /// How often the escalation timers are checked.
    pub tick: Duration,
    pub paths: Vec<PathBuf>,
    /// TLS, and the CA of senders' client certificates.
    pub tls: Option<tls::TlsFiles>,
    /// Accept Kubernetes tokens too (TokenReview), with roles from the cluster's RBAC.
    pub kube: Option<kir_cluster::Client>,
    /// Choose the leader through this Kubernetes Lease instead of the store's lock.
    pub lease: Option<LeaseConfig>,
}

/// The Lease the replicas hold in turn (`kir serve --leader-lease`).
#[derive(Clone)]
pub struct LeaseConfig {
    pub client: kir_cluster::Client,
    pub namespace: String,
    pub name: String,
    /// This replica's name in the Lease's `holderIdentity` (the pod's name).
    pub identity: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: ([127, 0, 0, 1], 8080).into(),
            store_url: String::new(),
            body_limit: 32 << 20,
            max_in_flight: 8,
            max_lag: 500_000,
            flush_after: Duration::from_secs(2),
            silence_after: None,
            tick: Duration::from_secs(5),
            paths: Vec::new(),
            tls: None,
            kube: None,
            lease: None,
        }
    }
}

/// What every request and the background tasks share.
pub struct Shared {
    pub store: Store,
    pub config: Config,
    engine: RwLock<Arc<Engine>>,
    loader: Loader,
    /// Bumped on reload: live detection rebuilds itself with the new rules.
    pub generation: AtomicU64,
    pub tokens: auth::Tokens,
    pub sessions: auth::Sessions,
    pub metrics: metrics::Metrics,
    /// Wakes live detection when a batch was stored.
    pub wake: tokio::sync::Notify,
    pub in_flight: AtomicUsize,
    pub stopping: AtomicBool,
    /// This replica holds the lead (`leader`): live detection and the escalation ticker run here.
    pub leading: AtomicBool,
    /// Live detection has drained after a stop: the lead may be given up.
    pub drained: AtomicBool,
}

impl Shared {
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.read().map(|e| e.clone()).unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Loads rules and plan again; refused (and nothing changed) when they do not check.
    pub fn reload(&self) -> Result<String, String> {
        let engine = (self.loader)()?;
        let said = format!(
            "reloaded: {} rules, plan {}",
            engine.rules.detections.len() + engine.rules.correlations.len(),
            engine.plan_name
        );
        match self.engine.write() {
            Ok(mut e) => *e = Arc::new(engine),
            Err(e) => *e.into_inner() = Arc::new(engine),
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.wake.notify_one();
        tracing::info!("{said}");
        Ok(said)
    }
}

/// The clock in milliseconds (`KIR_NOW` replaces it, as for every command).
pub fn now_ms() -> i64 {
    kir_core::now().map(|t| t.as_millisecond()).unwrap_or_else(|_| jiff::Timestamp::now().as_millisecond())
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Refused(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] kir_store::StoreError),
}

/// Runs the service until SIGTERM or SIGINT; `ready` is called with the bound address once it
/// accepts connections.
pub async fn serve(config: Config, loader: Loader, ready: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    let engine = loader().map_err(ServeError::Refused)?;
    let tls = config.tls.as_ref().map(tls::server_config).transpose().map_err(ServeError::Refused)?;
    let instance = format!("serve/{}/{}/{}", kir_store::host_name(), std::process::id(), now_ms());
    let store = Store::open(&config.store_url).await?.with_instance(&instance);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Listen { addr: config.listen, source })?;
    let shared = Arc::new(Shared {
        tokens: auth::Tokens::new(store.clone(), config.kube.clone()),
        store,
        config,
        engine: RwLock::new(Arc::new(engine)),
        loader,
        generation: AtomicU64::new(0),
        sessions: auth::Sessions::default(),
        metrics: metrics::Metrics::default(),
        wake: tokio::sync::Notify::new(),
        in_flight: AtomicUsize::new(0),
        stopping: AtomicBool::new(false),
        leading: AtomicBool::new(false),
        drained: AtomicBool::new(false),
    });
    let mut lead = tokio::spawn(leader::run(shared.clone()));
    let detection = {
        let shared = shared.clone();
        let rt = tokio::runtime::Handle::current();
        std::thread::Builder::new()
            .name("kir-live".into())
            .spawn(move || live::run(shared, rt))
            .map_err(|e| ServeError::Refused(format!("cannot start live detection: {e}")))?
    };
    let ticker = tokio::spawn(escalation_ticker(shared.clone()));
    tokio::spawn(reload_on_sighup(shared.clone()));
    let app = api::router(shared.clone());
    ready(addr);
    let stop = shared.clone();
    let stopped = async move {
        shutdown_signal().await;
        tracing::info!("stopping: no new requests; draining live detection");
        stop.stopping.store(true, Ordering::SeqCst);
    };
    match tls {
        Some(config) => tls::serve(listener, config, app, stopped).await,
        None => axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(stopped)
            .await
            .map_err(|source| ServeError::Listen { addr, source })?,
    }
    shared.stopping.store(true, Ordering::SeqCst);
    shared.wake.notify_one();
    ticker.abort();
    let _ = tokio::task::spawn_blocking(move || detection.join()).await;
    // Given up only after detection drained, so that no other replica replays behind it.
    shared.drained.store(true, Ordering::SeqCst);
    shared.leading.store(false, Ordering::SeqCst);
    if tokio::time::timeout(leader::CHECK_EVERY * 3, &mut lead).await.is_err() {
        lead.abort();
    }
    shared.store.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn reload_on_sighup(shared: Arc<Shared>) {
    #[cfg(unix)]
    if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        while hup.recv().await.is_some() {
            if let Err(e) = shared.reload() {
                tracing::error!(error = %e, "reload refused: the rules or the plan do not check; still running the old ones");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = shared;
}

/// A delivery a `kir` command left pending this long is surely over (three tries of up to 15 s
/// on each channel, with backoff): its owner died.
const ORPHANED_AFTER_MS: i64 = 10 * 60 * 1000;

/// The escalation timers, inside the service: due levels fire and page, retried with backoff by
/// the notifier, every delivery on the timeline.
async fn escalation_ticker(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(shared.config.tick);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut led = false;
    loop {
        every.tick().await;
        if !shared.leading.load(Ordering::SeqCst) {
            led = false;
            continue;
        }
        let engine = shared.engine();
        // The replicas that led before this one are gone (it holds the lock they held): what
        // they fired and did not send is sent now; a `kir` command's, once it is surely over.
        let orphans = kir_store::Orphans {
            older_than_ms: ORPHANED_AFTER_MS,
            owners_gone: if led { None } else { Some("serve/") },
        };
        led = true;
        match kir_app::deliver_orphans(&shared.store, &engine.plan, orphans, now_ms(), true, "kir").await {
            Ok((taken, sent)) if taken > 0 => {
                tracing::info!(taken, delivered = sent.delivered, "sent the notifications a stopped process left")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "the outbox could not be read; trying again at the next tick"),
        }
        match kir_app::tick_and_notify(&shared.store, &engine.plan, now_ms(), true, "kir").await {
            Ok((fired, sent)) => {
                if fired > 0 {
                    tracing::info!(fired, delivered = sent.delivered, failed = sent.failed, "escalation levels fired");
                }
                for p in sent.problems {
                    tracing::warn!("{p}");
                }
            }
            Err(e) => tracing::warn!(error = %e, "escalation tick failed; trying again at the next"),
        }
    }
}
