//! Wiring of `run`: client, plugins, webhook certificates, the three listeners, leader
//! election and the controller, and a graceful stop on SIGTERM/SIGINT. Decides nothing about
//! a CR.

use crate::controller::{self, Context};
use crate::plugin::{Host, Limits, PluginRegistry, PluginSource};
use crate::settings::{CertMode, DEFAULT_FEATURE_FLAGS, OPERATOR_CONFIG_MAP, RunArgs, WATCH_LABEL};
use crate::telemetry::{Metrics, metrics_router, probe_router};
use crate::webhook::{CertStore, Webhooks, certs, router, serve};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Lease held by the replica that runs the controller.
pub const LEASE: &str = "llama-stack-operator-leader";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("the operator namespace is unknown: pass --namespace or set OPERATOR_NAMESPACE")]
    Namespace,
    #[error("failed to find a kubeconfig or in-cluster config: {0}")]
    Config(String),
    #[error("failed to connect to the API server: {0}")]
    Client(#[source] kube::Error),
    #[error("failed to {verb} {what}: {source}")]
    Api {
        verb: &'static str,
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to load the plugins: {0}")]
    Plugins(String),
    #[error("failed to prepare the webhook certificate: {0}")]
    Certs(#[from] certs::CertError),
    #[error("failed to read the webhook certificate from {path}: {source}")]
    CertFiles {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to serve: {0}")]
    Serve(#[from] crate::webhook::ServeError),
    #[error("failed to bind {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("leader election failed: {0}")]
    Lease(String),
    #[error("registry access: {0}")]
    Registry(String),
}

pub async fn run(args: RunArgs) -> Result<(), AppError> {
    let started = Instant::now();
    // kube's TLS uses rustls' process-wide provider; ring is the one we build with.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let namespace = operator_namespace(&args)?;
    let client = client().await?;

    let metrics = Arc::new(Metrics::default());
    let registry = Arc::new(crate::oci::Registry::new(registry_settings(&args)?));
    // Independent of each other, and each mostly waiting on the API server: at once, for a
    // shorter start-up (issue 18).
    let ((), (host, plugins, refused), (store, served, ca)) = tokio::try_join!(
        ensure_operator_config(&client, &namespace),
        load_plugins(
            args.plugins_config.as_deref(),
            &client,
            &namespace,
            &registry,
        ),
        serving_certificate(&args, &client, &namespace, &metrics),
    )?;
    // The plugins in use and how many were refused, for /metrics.
    let loaded: Vec<(String, String, String)> = plugins
        .plugins()
        .map(|p| {
            let info = p.info();
            (
                info.map_or_else(|| p.name().to_string(), |i| i.name.clone()),
                info.map(|i| i.version.clone()).unwrap_or_default(),
                p.digest().to_string(),
            )
        })
        .collect();
    metrics.plugins_loaded(&loaded);
    metrics.plugins_refused(refused);
    // The CA goes into the webhook configurations and the CRD while the probes and webhooks
    // start. Readiness waits for the webhook configurations, the controller for the CRD
    // (below): a CRD update has the API server rebuild the resource's handler (150 ms on a
    // fresh install in `make bench-upstream`), which only the controller's watch must await.
    let (admission_tx, admission_injected) = watch::channel(ca.is_none());
    let (conversion_tx, conversion_injected) = watch::channel(ca.is_none());
    if let Some(ca) = ca {
        let (a, c) = (args.clone(), client.clone());
        let pem = ca.clone();
        tokio::spawn(async move {
            inject_admission(&a, &c, &pem).await;
            admission_tx.send_replace(true);
        });
        let (a, c, ns) = (args.clone(), client.clone(), namespace.clone());
        tokio::spawn(async move {
            inject_conversion(&a, &c, &ns, &ca).await;
            conversion_tx.send_replace(true);
        });
    }
    let ready = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(signal(stop_tx));

    // Probes and metrics first: a slow start is visible as not ready, not as dead.
    let probe_addr = (args.bind_address, args.probe_port).into();
    spawn_http(
        "probes",
        probe_addr,
        probe_router(ready.clone()),
        stop_rx.clone(),
    )
    .await?;
    let metrics_addr = (args.bind_address, args.metrics_port).into();
    spawn_http(
        "metrics",
        metrics_addr,
        metrics_router(metrics.clone()),
        stop_rx.clone(),
    )
    .await?;

    // Webhooks: every replica serves them, leader or not.
    let hooks = Arc::new(Webhooks::new(
        host.clone(),
        plugins.clone(),
        Some(client.clone()),
    ));
    let addr = (args.bind_address, args.webhook_port).into();
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind {
            what: "webhooks",
            addr,
            source,
        })?;
    let tls = store.tls_config()?;
    let mut stop = stop_rx.clone();
    let timed = router(hooks).layer(axum::middleware::from_fn_with_state(
        metrics.clone(),
        time_webhook,
    ));
    tokio::spawn(async move {
        tokio::select! {
            r = serve(listener, tls, timed) => if let Err(e) = r { tracing::error!(error = %e, "webhook server stopped") },
            _ = stop.wait_for(|s| *s) => {}
        }
    });
    tokio::spawn(rotate(
        args.clone(),
        client.clone(),
        namespace.clone(),
        store,
        served,
        stop_rx.clone(),
        metrics.clone(),
    ));
    tracing::info!(port = args.webhook_port, "webhooks serving");

    // Ready means the webhooks can be called: readiness only puts this pod behind the webhook
    // Service. The controller's first list is not part of it (on any replica, leader or not),
    // and becoming the leader does not take the pod out of the Service.
    {
        let (ready, mut admission_injected) = (ready.clone(), admission_injected.clone());
        tokio::spawn(async move {
            let _ = admission_injected.wait_for(|i| *i).await;
            ready.store(true, Ordering::Relaxed);
        });
    }

    let ctx = Arc::new(
        Context::new(
            client.clone(),
            host,
            plugins,
            metrics,
            namespace.clone(),
            std::env::var("OPERATOR_VERSION")
                .unwrap_or_else(|_| env!("CARGO_PKG_VERSION").to_string()),
        )
        .with_registry(registry),
    );
    let lease = if args.leader_elect {
        let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), LEASE)
            .with_namespace(&namespace)
            .with_identity(identity())
            .with_duration(args.lease_duration_seconds)
            .with_grace(
                args.lease_renew_grace_seconds
                    .min(args.lease_duration_seconds.saturating_sub(1)),
            )
            .build()
            .await
            .map_err(|e| AppError::Lease(e.to_string()))?;
        let (mut leading, task) = manager.watch().await;
        tracing::info!(lease = LEASE, "waiting for leadership");
        let mut stop = stop_rx.clone();
        loop {
            if *leading.borrow_and_update() {
                break;
            }
            tokio::select! {
                r = leading.changed() => if r.is_err() { return Err(AppError::Lease("the lease task ended".into())) },
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
        }
        tracing::info!(lease = LEASE, "leading");
        Some((leading, task))
    } else {
        None
    };

    // The CRs are listed and watched once the CA is in the CRD: an update of the CRD has the
    // API server replace the resource's storage, and a watch begun before that was cut off
    // (the first CR after a fresh install reached its pass 200 ms late in `make
    // bench-upstream`). At a restart the CRD is unchanged, and this is one read.
    let _ = conversion_injected.clone().wait_for(|i| *i).await;
    let listed = move || {
        tracing::info!(
            startup_ms = started.elapsed().as_millis() as u64,
            "controller ready"
        );
    };
    let mut stop = stop_rx.clone();
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    match lease {
        None => controller::run(ctx, controller_options(&args), listed, shutdown).await,
        Some((mut leading, task)) => {
            // Losing the lease stops the controller: another replica takes over.
            let lost = async move {
                while *leading.borrow() {
                    if leading.changed().await.is_err() {
                        break;
                    }
                }
                tracing::warn!(lease = LEASE, "leadership lost");
            };
            let stop_or_lost = async move {
                tokio::select! { _ = shutdown => {}, _ = lost => {} }
            };
            controller::run(ctx, controller_options(&args), listed, stop_or_lost).await;
            // Dropping the receiver makes the manager release the lease.
            task.abort();
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// A client that names itself: the API server's audit log tells our writes apart.
async fn client() -> Result<kube::Client, AppError> {
    let mut config = kube::Config::infer()
        .await
        .map_err(|e| AppError::Config(e.to_string()))?;
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(concat!("llama-stack-operator/", env!("CARGO_PKG_VERSION"))),
    ));
    kube::Client::try_from(config).map_err(AppError::Client)
}

fn operator_namespace(args: &RunArgs) -> Result<String, AppError> {
    if let Some(ns) = args.namespace.as_ref().filter(|n| !n.is_empty()) {
        return Ok(ns.clone());
    }
    std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or(AppError::Namespace)
}

/// Creates the operator ConfigMap with upstream's defaults when it is missing (§2.2).
async fn ensure_operator_config(client: &kube::Client, ns: &str) -> Result<(), AppError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let what = format!("ConfigMap {ns}/{OPERATOR_CONFIG_MAP}");
    let existing = api
        .get_opt(OPERATOR_CONFIG_MAP)
        .await
        .map_err(|source| AppError::Api {
            verb: "read",
            what: what.clone(),
            source,
        })?;
    if existing.is_some() {
        return Ok(());
    }
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(OPERATOR_CONFIG_MAP.into()),
            labels: Some(BTreeMap::from([(WATCH_LABEL.into(), "true".into())])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "featureFlags".into(),
            DEFAULT_FEATURE_FLAGS.into(),
        )])),
        ..Default::default()
    };
    match api.create(&PostParams::default(), &cm).await {
        Ok(_) => {
            tracing::info!(
                configmap = OPERATOR_CONFIG_MAP,
                "operator ConfigMap created with defaults"
            );
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(source) => Err(AppError::Api {
            verb: "create",
            what,
            source,
        }),
    }
}

#[derive(serde::Deserialize)]
struct PluginsFile {
    #[serde(default)]
    plugins: Vec<PluginSource>,
}

async fn load_plugins(
    config: Option<&Path>,
    client: &kube::Client,
    ns: &str,
    registry: &crate::oci::Registry,
) -> Result<(Arc<Host>, Arc<PluginRegistry>, usize), AppError> {
    let mut sources = match config {
        None => Vec::new(),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| AppError::Plugins(format!("{}: {e}", p.display())))?;
            serde_yaml::from_str::<PluginsFile>(&text)
                .map_err(|e| AppError::Plugins(format!("{}: {e}", p.display())))?
                .plugins
        }
    };
    // Artifacts pinned by digest come from their registry (D18); a failure refuses that
    // plugin only, like a bad file.
    for s in sources.iter_mut() {
        if let Some(reference) = s.oci.clone() {
            s.fetched = Some(
                fetch_plugin(client, ns, registry, &reference, s.pull_secret.as_deref()).await,
            );
        }
    }
    // Compiling takes most of a second: off the async threads.
    tokio::task::spawn_blocking(move || {
        let host = Host::new(Limits::default()).map_err(|e| AppError::Plugins(e.to_string()))?;
        // The refusals are logged by load; /metrics counts them.
        let (registry, failures) =
            PluginRegistry::load(&host, &sources).map_err(|e| AppError::Plugins(e.to_string()))?;
        Ok((Arc::new(host), Arc::new(registry), failures.len()))
    })
    .await
    .map_err(|e| AppError::Plugins(e.to_string()))?
}

/// A plugin artifact's bytes, read with the operator namespace's pull Secret if one is named.
async fn fetch_plugin(
    client: &kube::Client,
    ns: &str,
    registry: &crate::oci::Registry,
    reference: &str,
    pull_secret: Option<&str>,
) -> Result<Vec<u8>, String> {
    let mut creds = crate::oci::Credentials::anonymous("the operator's plugin configuration");
    if let Some(name) = pull_secret {
        let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
            kube::Api::namespaced(client.clone(), ns);
        let s = secrets
            .get(name)
            .await
            .map_err(|e| format!("pull Secret {ns}/{name}: {e}"))?;
        let data = s.data.unwrap_or_default();
        let bytes = data
            .get(".dockerconfigjson")
            .ok_or_else(|| format!("pull Secret {ns}/{name} has no .dockerconfigjson key"))?;
        creds
            .add_secret(name, &bytes.0, false)
            .map_err(|e| e.to_string())?;
    }
    registry
        .artifact(reference, &creds)
        .await
        .map_err(|e| e.to_string())
}

/// This replica's leader-election identity: the pod name (downward API), else hostname and
/// process id. In a pod the hostname is the pod name and the process id is 1 in every
/// replica, so neither alone is unique; together they are, in a pod and on a machine.
fn identity() -> String {
    match std::env::var("POD_NAME") {
        Ok(name) if !name.is_empty() => name,
        _ => format!(
            "{}-{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "llama-stack-operator".into()),
            std::process::id()
        ),
    }
}

fn registry_settings(args: &RunArgs) -> Result<crate::oci::RegistrySettings, AppError> {
    let ca_pem = match &args.registry_ca_file {
        Some(p) => std::fs::read(p)
            .map_err(|e| AppError::Registry(format!("--registry-ca-file {}: {e}", p.display())))?,
        None => Vec::new(),
    };
    Ok(crate::oci::RegistrySettings {
        ca_pem,
        plain_http: args.registry_plain_http.clone(),
        timeout: Some(std::time::Duration::from_secs(
            args.registry_timeout_seconds.max(1),
        )),
    })
}

fn dns_names(args: &RunArgs, ns: &str) -> Vec<String> {
    if !args.webhook_hosts.is_empty() {
        return args.webhook_hosts.clone();
    }
    vec![
        format!("{}.{ns}.svc", args.webhook_service),
        format!("{}.{ns}.svc.cluster.local", args.webhook_service),
    ]
}

/// The certificate the webhooks start with, the certificate to watch for rotation and the CA
/// to inject (both when the operator issues its own).
async fn serving_certificate(
    args: &RunArgs,
    client: &kube::Client,
    ns: &str,
    metrics: &Metrics,
) -> Result<(Arc<CertStore>, Option<String>, Option<String>), AppError> {
    match args.cert_mode {
        CertMode::Operator => {
            let (c, _) = certs::ensure(
                client,
                ns,
                &args.webhook_secret,
                &dns_names(args, ns),
                SystemTime::now(),
            )
            .await
            .inspect_err(|_| metrics.certificate_checked(None))?;
            metrics.certificate_checked(Some(c.not_after));
            let store = CertStore::new(c.cert_pem.as_bytes(), c.key_pem.as_bytes())?;
            Ok((store, Some(c.cert_pem), Some(c.ca_pem)))
        }
        CertMode::External => {
            let (cert, key) = read_cert_files(&args.cert_dir)?;
            Ok((CertStore::new(&cert, &key)?, None, None))
        }
    }
}

/// Injects the CA; the configurations may not exist (a plain `run` against a cluster with
/// only the CRD), which is worth a warning, not a stop.
async fn inject(args: &RunArgs, client: &kube::Client, ns: &str, ca: &str) {
    tokio::join!(
        inject_admission(args, client, ca),
        inject_conversion(args, client, ns, ca)
    );
}

/// The CA into the two webhook configurations: what the API server needs to call `/mutate`
/// and `/validate`.
async fn inject_admission(args: &RunArgs, client: &kube::Client, ca: &str) {
    if let Err(e) = certs::inject_admission(
        client,
        ca,
        &args.mutating_webhook_configuration,
        &args.validating_webhook_configuration,
    )
    .await
    {
        tracing::warn!(error = %e, "could not inject the webhook CA; the API server cannot call the webhooks until it is");
    }
}

/// The CA into the CRD's conversion webhook, when it points at this process.
async fn inject_conversion(args: &RunArgs, client: &kube::Client, ns: &str, ca: &str) {
    // The CRD is shared: another operator process (a second install, a local run) must not
    // get our CA into a conversion stanza that points at it.
    let ours = if args.webhook_hosts.is_empty() {
        certs::Endpoint::Service {
            namespace: ns.to_string(),
            name: args.webhook_service.clone(),
        }
    } else {
        certs::Endpoint::Url {
            hosts: args.webhook_hosts.clone(),
            port: args.webhook_port,
        }
    };
    if let Err(e) = certs::inject_conversion(client, ca, CRD, Some(&ours)).await {
        tracing::warn!(error = %e, "could not inject the CA into the CRD; the API server cannot convert v1alpha1 objects until it is");
    }
}

/// The CRD whose conversion webhook this process serves.
const CRD: &str = "llamastackdistributions.llamastack.io";

fn read_cert_files(dir: &Path) -> Result<(Vec<u8>, Vec<u8>), AppError> {
    let read = |f: &str| {
        let path = dir.join(f);
        std::fs::read(&path).map_err(|source| AppError::CertFiles {
            path: path.display().to_string(),
            source,
        })
    };
    Ok((read("tls.crt")?, read("tls.key")?))
}

/// Records how long each webhook request took (`llsd_webhook_request_duration_seconds`).
async fn time_webhook(
    axum::extract::State(metrics): axum::extract::State<Arc<Metrics>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let endpoint = match req.uri().path() {
        crate::api::crd::CONVERSION_PATH => "convert",
        crate::webhook::MUTATE_PATH => "mutate",
        crate::webhook::VALIDATE_PATH => "validate",
        _ => "other",
    };
    let started = Instant::now();
    let response = next.run(req).await;
    metrics.webhook_request(endpoint, started.elapsed());
    response
}

/// Renews operator certificates before expiry, or reloads cert-manager's files when they
/// change (compared by content: kubelet swaps a symlink, which file events miss).
async fn rotate(
    args: RunArgs,
    client: kube::Client,
    ns: String,
    store: Arc<CertStore>,
    mut served: Option<String>,
    mut stop: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) {
    let every = Duration::from_secs(args.cert_check_seconds.max(1));
    let mut last = read_cert_files(&args.cert_dir).ok();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match args.cert_mode {
            CertMode::Operator => match certs::ensure(
                &client,
                &ns,
                &args.webhook_secret,
                &dns_names(&args, &ns),
                SystemTime::now(),
            )
            .await
            {
                Ok((c, renewed)) => {
                    metrics.certificate_checked(Some(c.not_after));
                    // Every check: the CA goes in first (no write when it is there already, so a
                    // failed injection is retried), then whatever certificate the Secret holds
                    // is served, also when another replica renewed it.
                    inject(&args, &client, &ns, &c.ca_pem).await;
                    if served.as_deref() != Some(c.cert_pem.as_str()) {
                        match store.replace(c.cert_pem.as_bytes(), c.key_pem.as_bytes()) {
                            Ok(()) => {
                                served = Some(c.cert_pem.clone());
                                tracing::info!(
                                    renewed_here = renewed,
                                    "webhook certificate rotated"
                                );
                            }
                            Err(e) => tracing::error!(error = %e, "renewed certificate refused"),
                        }
                    }
                }
                Err(e) => {
                    metrics.certificate_checked(None);
                    tracing::error!(error = %e, "certificate renewal failed; retrying");
                }
            },
            CertMode::External => {
                let Ok(now) = read_cert_files(&args.cert_dir) else {
                    continue;
                };
                if last.as_ref() != Some(&now) {
                    match store.replace(&now.0, &now.1) {
                        Ok(()) => tracing::info!("webhook certificate reloaded"),
                        Err(e) => tracing::error!(error = %e, "new certificate files refused"),
                    }
                    last = Some(now);
                }
            }
        }
    }
}

async fn spawn_http(
    what: &'static str,
    addr: std::net::SocketAddr,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> Result<(), AppError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind { what, addr, source })?;
    tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        if let Err(e) = served.await {
            tracing::error!(what, error = %e, "listener stopped");
        }
    });
    Ok(())
}

async fn signal(stop: watch::Sender<bool>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    }
    tracing::info!("stopping");
    let _ = stop.send(true);
}

fn controller_options(args: &RunArgs) -> controller::Options {
    controller::Options {
        watch_namespace: args.watch_namespace.clone(),
        concurrency: args.max_concurrent_reconciles,
    }
}
