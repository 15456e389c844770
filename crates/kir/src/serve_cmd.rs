//! `kir serve` and `kir token …`: arguments in, the service (`kir-serve`) run, tokens printed.

use std::net::SocketAddr;
use std::sync::Arc;

use kir_serve::auth::Role;

use crate::cli::{Global, LogFormat, ServeArgs, TokenCommand};
use crate::incident_cmd::{now_ms, open_store, runtime, store_err, who};
use crate::output::{outln, table};
use crate::{UserError, exit};

fn duration(flag: &str, text: &str) -> Result<std::time::Duration, UserError> {
    let d = kir_core::Duration::parse(text).map_err(|e| UserError::usage(format!("{flag}: {e}")))?;
    Ok(std::time::Duration::from_millis(d.as_millis().max(100) as u64))
}

pub fn serve(global: &Global, args: &ServeArgs) -> Result<u8, UserError> {
    let listen: SocketAddr = args.listen.parse().map_err(|_| {
        UserError::usage(format!("--listen {:?}: write an address and port, e.g. 127.0.0.1:8080", args.listen))
    })?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(kir_serve::tls::TlsFiles { cert: cert.clone(), key: key.clone(), client_ca: args.client_ca.clone() })
        }
        _ if args.client_ca.is_some() => {
            return Err(UserError::usage("--client-ca needs TLS: give --tls-cert and --tls-key too"));
        }
        _ => None,
    };
    if tls.is_none() && !listen.ip().is_loopback() {
        return Err(UserError::usage(format!(
            "--listen {listen}: plain HTTP only on a loopback address (tokens and audit events would cross the network in clear)"
        )));
    }
    let store_url = crate::incident_cmd::store_url(global)?;
    init_logging(args.log_format, global.verbose);
    let rt = runtime()?;
    let cluster = if args.kube_auth || args.leader_lease.is_some() {
        let flag = if args.kube_auth { "--kube-auth" } else { "--leader-lease" };
        let (client, target) = rt
            .block_on(kir_cluster::connect(global.kubeconfig.as_deref(), global.context.first().map(String::as_str)))
            .map_err(|e| UserError::usage(format!("{flag}: {e}")))?;
        Some((client, target.server))
    } else {
        None
    };
    let kube = match (&cluster, args.kube_auth) {
        (Some((client, server)), true) => {
            eprintln!("Kubernetes tokens are reviewed by {server}");
            Some(client.clone())
        }
        _ => None,
    };
    let lease = match (&cluster, &args.leader_lease) {
        (Some((client, server)), Some(name)) => {
            let namespace = args.leader_lease_namespace.clone().unwrap_or_else(in_cluster_namespace);
            let identity = std::env::var("POD_NAME")
                .ok()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("{}-{}", kir_store::host_name(), std::process::id()));
            eprintln!("the leader is the holder of Lease {namespace}/{name} on {server}; this replica is {identity}");
            Some(kir_serve::LeaseConfig { client: client.clone(), namespace, name: name.clone(), identity })
        }
        _ => None,
    };
    let config = kir_serve::Config {
        listen,
        store_url,
        body_limit: args.body_limit_mib.max(1) << 20,
        max_in_flight: args.max_in_flight.max(1),
        max_lag: args.max_lag.max(1),
        flush_after: duration("--flush-after", &args.flush_after)?,
        silence_after: args.silence_after.as_deref().map(|t| duration("--silence-after", t)).transpose()?,
        tick: duration("--tick", &args.tick)?,
        paths: args.source.rules.clone(),
        tls,
        kube,
        lease,
    };
    let (loader_global, source) = (global.clone(), args.source.clone());
    let loader: kir_serve::Loader = Arc::new(move || {
        let mut quiet = loader_global.clone();
        quiet.quiet = true;
        let rules = crate::hunt_cmd::load_rules(&source, &quiet).map_err(|e| e.message)?;
        let (plan, plan_name) = crate::plan_cmd::load(&quiet).map_err(|e| e.message)?;
        Ok(kir_serve::Engine { rules, plan, plan_name, roles: Default::default() })
    });
    rt.block_on(kir_serve::serve(config, loader, |addr| eprintln!("listening on {addr}")))
        .map_err(|e| UserError::usage(e.to_string()))?;
    Ok(exit::OK)
}

/// The namespace of the pod's service account, where a Lease in its own namespace belongs.
fn in_cluster_namespace() -> String {
    std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        .ok()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

fn init_logging(format: LogFormat, verbose: u8) {
    let default = if verbose > 0 { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KIR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{default},sqlx=warn,hyper=warn")));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init(),
    };
}

pub fn token(global: &Global, command: &TokenCommand) -> Result<u8, UserError> {
    let who = who(global);
    let now = now_ms()?;
    let rt = runtime()?;
    rt.block_on(async {
        let store = open_store(global).await?;
        let result = match command {
            TokenCommand::Create { role, name, cluster } => {
                let role = Role::parse(role).map_err(UserError::usage)?;
                let token = kir_serve::auth::create_token(&store, name, role, cluster.as_deref(), &who, now)
                    .await
                    .map_err(UserError::usage)?;
                outln!("{token}");
                Ok(exit::OK)
            }
            TokenCommand::List => {
                let list = store.tokens().await.map_err(store_err)?;
                match global.format {
                    crate::cli::Format::Json | crate::cli::Format::Jsonl => {
                        outln!("{}", serde_json::to_string_pretty(&list)?);
                    }
                    _ => {
                        let mut t = table(
                            crate::output::use_color(global),
                            &["NAME", "ROLE", "CLUSTER", "CREATED", "BY", "REVOKED"],
                        );
                        for k in &list {
                            t.add_row(vec![
                                k.name.clone(),
                                k.role.clone(),
                                k.cluster.clone().unwrap_or_default(),
                                kir_store::rfc3339(k.created_at),
                                k.created_by.clone(),
                                k.revoked_at.map(kir_store::rfc3339).unwrap_or_default(),
                            ]);
                        }
                        outln!("{t}");
                    }
                }
                Ok(exit::OK)
            }
            TokenCommand::Revoke { name } => {
                if store.revoke_token(name, &who, now).await.map_err(store_err)? {
                    if !global.quiet {
                        eprintln!("revoked {name} (a running kir serve stops taking it within 30 s)");
                    }
                    Ok(exit::OK)
                } else {
                    Err(UserError::usage(format!("no live token named {name:?} (kir token list)")))
                }
            }
        };
        store.shutdown().await;
        result
    })
}
