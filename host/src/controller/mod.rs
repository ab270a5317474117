//! The controller (issue 7): reconciles LlamaStackDistributions into a generated ConfigMap and
//! the objects that run the server. Only this module writes to the API server.
//!
//! Triggers: the CRs (v1alpha2; v1alpha1 objects arrive converted), the objects they own
//! (metadata only), the Secrets and ConfigMaps they reference (metadata only: no Secret value
//! is cached) and the operator ConfigMap (every CR).

mod apply;
mod caches;
pub mod children;
mod error;
mod inputs;
pub mod pods;
mod prune;
mod reconcile;
pub mod server_info;
mod servers;
pub mod status;

use caches::Caches;
pub use error::Error;
pub use inputs::postgres_uri;

use crate::api::v1alpha2::LlamaStackDistribution;
use crate::plugin::{Host, PluginRegistry};
use crate::settings::{OPERATOR_CONFIG_MAP, OperatorConfig};
use crate::telemetry::Metrics;
use futures::{Future, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Label selector of everything the operator creates.
const MANAGED: &str = "app.kubernetes.io/managed-by=llama-stack-operator";

/// The operator's settings as last parsed.
#[derive(Default)]
struct Settings {
    /// The resourceVersion they were parsed from (`None`: no ConfigMap, the defaults).
    version: Option<String>,
    config: OperatorConfig,
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub host: Arc<Host>,
    pub plugins: Arc<PluginRegistry>,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub operator_namespace: String,
    pub operator_version: String,
    /// Registry access for image labels, provider metadata and plugins (D17).
    pub registry: Arc<crate::oci::Registry>,
    settings: Mutex<Settings>,
    /// Consecutive registry failures per CR (`ns/name`), for the retry backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// Last `metadata.generation` we wrote or saw per owned object: a different live
    /// generation means someone else edited its spec (drift).
    generations: Mutex<HashMap<String, i64>>,
    /// The Ready CRs' servers, read off the workers.
    servers: servers::Servers,
    /// Plugin calls in flight, at most one per core.
    plugin_slots: tokio::sync::Semaphore,
    /// The owned objects' metadata, once [`run`] has started their watches.
    caches: Mutex<Option<Arc<Caches>>>,
    /// Whether every cache holds its first list.
    caches_synced: tokio::sync::watch::Sender<bool>,
}

impl Context {
    pub fn new(
        client: Client,
        host: Arc<Host>,
        plugins: Arc<PluginRegistry>,
        metrics: Arc<Metrics>,
        operator_namespace: String,
        operator_version: String,
    ) -> Context {
        let reporter = Reporter {
            controller: children::MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            host,
            plugins,
            metrics,
            operator_namespace,
            operator_version,
            registry: Arc::new(crate::oci::Registry::new(Default::default())),
            settings: Mutex::new(Settings::default()),
            failures: Mutex::new(HashMap::new()),
            generations: Mutex::new(HashMap::new()),
            servers: servers::Servers::default(),
            plugin_slots: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            caches: Mutex::new(None),
            caches_synced: tokio::sync::watch::channel(false).0,
        }
    }

    /// The owned objects' caches, once each holds its first list: "not in the cache" means
    /// "does not exist" only then (a pass waits once, at its start). Passes run inside
    /// [`run`], which starts the caches before the first of them.
    async fn synced_caches(&self) -> Result<Arc<Caches>, Error> {
        let caches = self
            .caches
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .ok_or(Error::NotRunning)?;
        let mut synced = self.caches_synced.subscribe();
        let _ = synced.wait_for(|s| *s).await;
        Ok(caches)
    }

    pub fn with_registry(mut self, registry: Arc<crate::oci::Registry>) -> Context {
        self.registry = registry;
        self
    }

    /// Publishes how many entries each in-memory holder keeps (`llsd_kept_objects`): the
    /// figures that say whether memory under churn follows the cluster or leaks (issue 19 §4).
    fn publish_kept(&self, crs: &[Arc<LlamaStackDistribution>], caches: &Caches) {
        let m = &self.metrics;
        m.kept("crs", crs.len());
        m.kept("service_accounts", caches.service_accounts.state().len());
        m.kept("config_maps", caches.config_maps.state().len());
        m.kept("pvcs", caches.pvcs.state().len());
        m.kept("pdbs", caches.pdbs.state().len());
        m.kept("hpas", caches.hpas.state().len());
        m.kept("network_policies", caches.network_policies.state().len());
        m.kept("ingresses", caches.ingresses.state().len());
        m.kept("namespaces", caches.namespaces.state().len());
        m.kept(
            "drift_records",
            self.generations.lock().map_or(0, |g| g.len()),
        );
        m.kept(
            "registry_backoffs",
            self.failures.lock().map_or(0, |f| f.len()),
        );
        m.kept("followed_servers", self.servers.followed());
        let (by_phase, not_ready) = distributions(crs, k8s_openapi::jiff::Timestamp::now());
        m.distributions(&by_phase, not_ready);
    }

    /// The wait before retrying a CR whose registry read failed: 5 s, doubling per
    /// consecutive failure, at most 5 min. `None` resets after a success.
    fn backoff(&self, key: &str, failed: bool) -> Duration {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if !failed {
            f.remove(key);
            return Duration::ZERO;
        }
        let n = f.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        Duration::from_secs(5u64.saturating_mul(1 << (*n - 1).min(6)).min(300))
    }

    /// The operator's settings, from the operator ConfigMap as its watch last saw it (upstream
    /// re-reads it at every reconcile; the watch makes that a cache read). It is parsed again
    /// only when its resourceVersion moved; the last good values are kept when it cannot be
    /// parsed.
    fn settings(&self, caches: &Caches) -> OperatorConfig {
        let cm = caches
            .operator_config
            .get(&ObjectRef::new(OPERATOR_CONFIG_MAP).within(&self.operator_namespace));
        let Ok(mut settings) = self.settings.lock() else {
            return OperatorConfig::default();
        };
        let version = cm
            .as_ref()
            .map(|c| c.metadata.resource_version.clone().unwrap_or_default());
        if settings.version != version {
            settings.version = version;
            let data = cm.and_then(|c| c.data.clone()).unwrap_or_default();
            match OperatorConfig::parse(&data) {
                Ok((cfg, warnings)) => {
                    for w in warnings {
                        tracing::warn!(configmap = OPERATOR_CONFIG_MAP, "{w}");
                    }
                    settings.config = cfg;
                }
                Err(e) => {
                    tracing::error!(configmap = OPERATOR_CONFIG_MAP, error = %e, "keeping the previous operator settings")
                }
            }
        }
        settings.config.clone()
    }

    fn drift_key<K: Resource<DynamicType = ()>>(&self, obj: &K) -> String {
        drift_key(obj)
    }

    /// Drops what is remembered of CRs no longer in the store: their objects' drift records
    /// and their registry backoff. One sweep covers a CR deleted at any moment, also while a
    /// pass of it was still running or the watch was down (issue 19: the drift record grew by
    /// an entry per owned object of every CR ever deleted, found in the churn of
    /// `tests/bench/load.sh`).
    fn forget_deleted(&self, crs: &[Arc<LlamaStackDistribution>]) {
        let uids: std::collections::HashSet<String> = crs
            .iter()
            .filter_map(|cr| cr.metadata.uid.clone())
            .collect();
        if let Ok(mut map) = self.generations.lock() {
            forget_unlisted(&mut map, &uids);
        }
        let keys: std::collections::HashSet<String> = crs
            .iter()
            .map(|cr| format!("{}/{}", cr.namespace().unwrap_or_default(), cr.name_any()))
            .collect();
        if let Ok(mut failures) = self.failures.lock() {
            failures.retain(|key, _| keys.contains(key));
        }
    }

    /// Whether the live generation differs from the one we last wrote. An object we have not
    /// seen since start is taken as is (no write at start-up for an unchanged world).
    fn drifted(&self, key: &str, live: Option<i64>) -> bool {
        let Ok(mut map) = self.generations.lock() else {
            return false;
        };
        match (map.get(key), live) {
            (Some(g), Some(l)) => *g != l,
            (None, Some(l)) => {
                map.insert(key.to_string(), l);
                false
            }
            _ => false,
        }
    }

    fn remember_generation(&self, key: String, generation: Option<i64>) {
        if let (Ok(mut map), Some(g)) = (self.generations.lock(), generation) {
            map.insert(key, g);
        }
    }
}

/// `<owner uid>|<Kind>/<ns>/<name>`: the owning CR first, so that its entries go with it.
fn drift_key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    let owner = obj
        .meta()
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.as_str())
        .unwrap_or_default();
    format!(
        "{owner}|{}/{}/{}",
        K::kind(&()),
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default()
    )
}

/// CRs by phase (no status yet counts as Pending), and the longest one has been out of
/// Ready: since its `Available` condition last changed, or since its creation before it has
/// one. Deleted CRs (Terminating) count by phase only.
fn distributions(
    crs: &[Arc<LlamaStackDistribution>],
    now: k8s_openapi::jiff::Timestamp,
) -> (Vec<(&'static str, usize)>, Duration) {
    use crate::api::shared::Phase;
    let phases = [
        (Phase::Pending, "Pending"),
        (Phase::Initializing, "Initializing"),
        (Phase::Ready, "Ready"),
        (Phase::Failed, "Failed"),
        (Phase::Terminating, "Terminating"),
    ];
    let mut counts: Vec<(&'static str, usize)> = phases.iter().map(|(_, n)| (*n, 0)).collect();
    let mut longest = Duration::ZERO;
    for cr in crs {
        let status = cr.status.as_ref();
        let phase = status.and_then(|s| s.phase).unwrap_or_default();
        if let Some(i) = phases.iter().position(|(p, _)| *p == phase) {
            counts[i].1 += 1;
        }
        if matches!(phase, Phase::Ready | Phase::Terminating) {
            continue;
        }
        let since = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Available"))
            .map(|c| c.last_transition_time.0)
            .or_else(|| cr.metadata.creation_timestamp.as_ref().map(|t| t.0));
        if let Some(since) = since {
            let secs = now.as_second().saturating_sub(since.as_second());
            longest = longest.max(Duration::from_secs(u64::try_from(secs).unwrap_or(0)));
        }
    }
    (counts, longest)
}

/// Removes the entries owned by a CR that is not in `live` (entries without an owner stay).
fn forget_unlisted(map: &mut HashMap<String, i64>, live: &std::collections::HashSet<String>) {
    forget_owners(map, |owner| !owner.is_empty() && !live.contains(owner));
}

/// Removes the entries of the owners `gone` says are gone.
fn forget_owners(map: &mut HashMap<String, i64>, gone: impl Fn(&str) -> bool) {
    map.retain(|k, _| !gone(k.split('|').next().unwrap_or_default()));
}

/// Which CRs a Secret or ConfigMap named `name` in `ns` concerns.
fn referencing(
    store: &Store<LlamaStackDistribution>,
    ns: &str,
    name: &str,
    kind: RefKind,
) -> Vec<ObjectRef<LlamaStackDistribution>> {
    store
        .state()
        .iter()
        .filter(|cr| {
            cr.namespace().as_deref() == Some(ns)
                || kind == RefKind::ConfigMap && ca_namespace(cr) == Some(ns)
        })
        .filter(|cr| reconcile::references(cr, kind).iter().any(|n| n == name))
        .map(|cr| ObjectRef::from_obj(cr.as_ref()))
        .collect()
}

/// The CR whose `status.externalProviders` a pod's init containers report (D16). Their
/// progress changes the pod, not the Deployment, so without this the status would wait for the
/// resync. Pods of CRs without external providers map to nothing: their churn costs no pass.
/// The CR whose server pod changed: its install progress, readiness, restarts and
/// scheduling reach the status only through the pods (issue 17).
fn pod_owner(
    store: &Store<LlamaStackDistribution>,
    pod: &PartialObjectMeta<Pod>,
) -> Option<ObjectRef<LlamaStackDistribution>> {
    let ns = pod.namespace()?;
    let name = pod.labels().get(children::INSTANCE_LABEL)?;
    let key = ObjectRef::new(name).within(&ns);
    store.get(&key).map(|_| key)
}

fn ca_namespace(cr: &LlamaStackDistribution) -> Option<&str> {
    cr.spec
        .networking
        .as_ref()?
        .tls
        .as_ref()?
        .ca_bundle
        .as_ref()?
        .config_map_namespace
        .as_deref()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Secret,
    ConfigMap,
}

/// Every watch starts with a streaming list (the API server's WatchList, GA in 1.34): the
/// initial objects arrive one by one on the watch, not as 500-object list pages held in memory
/// at once. At start-up with 250 CRs the pages of the ten watches (metadata with managedFields)
/// were most of the operator's peak heap.
fn watch_config() -> watcher::Config {
    watcher::Config::default().streaming_lists()
}

/// Metadata-only watches: triggers need no more, and no Secret value enters the cache.
fn meta<K>(client: &Client, ns: &Option<String>) -> Api<PartialObjectMeta<K>>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// A metadata watch of `api`, its objects kept (without managedFields) in a store.
fn cached_watch<K>(
    api: Api<PartialObjectMeta<K>>,
    config: watcher::Config,
) -> (
    Store<PartialObjectMeta<K>>,
    impl futures::Stream<Item = Result<PartialObjectMeta<K>, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let events = watcher(api, config)
        .default_backoff()
        .modify(|o| o.managed_fields_mut().clear())
        .reflect(writer)
        .touched_objects();
    (reader, events)
}

/// The controller's backoff over its merged trigger streams: none, because every trigger stream
/// here backs off by itself (`default_backoff`). kube-runtime's default backs off the merged
/// stream on each watch error as well, and that compounds: after the API server restarted,
/// the 15 watches' errors were taken one per step of a 0.8 s to 30 s backoff (reset only
/// after 120 s without errors), and every watch, the CRs' included, stalled for minutes
/// (issue 19, found by the chaos suite).
#[derive(Debug, Clone, Copy)]
struct OwnBackoffs;

impl Iterator for OwnBackoffs {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        // Never None: a backoff that ends stops the stream.
        Some(Duration::ZERO)
    }
}

impl kube::runtime::utils::Backoff for OwnBackoffs {
    fn reset(&mut self) {}
}

/// kubectl's copy of the object it last applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Reconcile only this namespace (tests run one operator per namespace).
    pub watch_namespace: Option<String>,
    /// Reconciles at once (`--max-concurrent-reconciles`).
    pub concurrency: u16,
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    options: Options,
    ready: impl FnOnce() + Send + 'static,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let watch_namespace = options.watch_namespace;
    let client = ctx.client.clone();
    fn api<K>(client: &Client, ns: &Option<String>) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let managed = watch_config().labels(MANAGED);
    let (reader, writer) = reflector::store();
    // Ready once the first list of CRs is in the cache. (Not `Store::wait_until_ready`: its
    // one-shot wakes a single waiter, and the controller already waits on it.)
    let mut ready = Some(ready);
    // Every other watch starts once the CRs are listed: started together, their initial lists
    // (hundreds of pods, Services, ConfigMaps...) had the API server and the two cores busy
    // while readiness waited for the CR list, and passes wait for all of them anyway.
    let (listed_tx, listed) = tokio::sync::watch::channel(false);
    // The CRs with a plain paged list: the store keeps them all anyway, and readiness waits
    // for this list (a streaming list waits for the API server's watch cache to catch up).
    // Served from that watch cache as it is (resourceVersion=0), not read from etcd: at a
    // restart over 250 CRs the quorum read was most of the start-up. What changed since
    // arrives on the watch, as for any list.
    let crs = watcher(
        api::<LlamaStackDistribution>(&client, &watch_namespace),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    // Nothing reads who wrote which field, nor kubectl's copy of the last applied object,
    // and for a CR with a status they were its biggest part in memory (issue 18: 1,000 CRs).
    .modify(|cr| {
        cr.managed_fields_mut().clear();
        cr.annotations_mut().remove(LAST_APPLIED);
    })
    .inspect(move |e| {
        if let Ok(watcher::Event::InitDone) = e
            && let Some(r) = ready.take()
        {
            listed_tx.send_replace(true);
            r();
        }
    })
    .reflect(writer)
    .applied_objects()
    // Our own status writes do not need another pass.
    .predicate_filter(predicates::generation, Default::default());
    // A server's answer that changed brings a pass of its CR (servers.rs).
    let (answers_tx, answers_rx) = tokio::sync::mpsc::unbounded_channel();
    ctx.servers.wire(answers_tx, reader.clone());
    let answers = futures::stream::unfold(answers_rx, |mut rx| async move {
        rx.recv().await.map(|cr| (cr, rx))
    });
    let controller = Controller::for_stream(crs, reader.clone())
        .with_config(controller::Config::default().concurrency(options.concurrency))
        .trigger_backoff(OwnBackoffs)
        .reconcile_on(answers);

    let store = reader.clone();
    let secrets = watcher(meta::<Secret>(&client, &watch_namespace), watch_config())
        .default_backoff()
        .touched_objects();
    let store2 = reader.clone();
    let configmaps = watcher(meta::<ConfigMap>(&client, &None), watch_config())
        .default_backoff()
        .touched_objects();
    // The operator ConfigMap, whole, in a store that every pass reads its settings from. The
    // change reaches the store before it brings the passes (reflect, then the event).
    let store4 = reader.clone();
    let (operator_config, writer) = reflector::store();
    let operator_config_events = watcher(
        Api::<ConfigMap>::namespaced(client.clone(), &ctx.operator_namespace),
        watch_config().fields(&format!("metadata.name={OPERATOR_CONFIG_MAP}")),
    )
    .default_backoff()
    .reflect(writer)
    .touched_objects();
    let store3 = reader.clone();
    // The server pods (the Deployment's selector label), metadata only: any change moves
    // their resourceVersion, and install progress shows nowhere else.
    let pods = watcher(
        meta::<Pod>(&client, &watch_namespace),
        watch_config().labels(children::POD_APP_SELECTOR),
    )
    .default_backoff()
    .touched_objects();

    // Owned kinds a pass reads from a cache (caches.rs): the triggers' watches keep them.
    let ns = &watch_namespace;
    let (service_accounts, sa_events) = cached_watch(meta(&client, ns), managed.clone());
    let (config_maps, cm_events) = cached_watch(meta(&client, ns), managed.clone());
    let (pvcs, pvc_events) = cached_watch(meta(&client, ns), managed.clone());
    let (pdbs, pdb_events) = cached_watch(meta(&client, ns), managed.clone());
    let (hpas, hpa_events) = cached_watch(meta(&client, ns), managed.clone());
    let (network_policies, np_events) = cached_watch(meta(&client, ns), managed.clone());
    let (ingresses, ingress_events) = cached_watch(meta(&client, ns), managed.clone());
    // Namespaces, metadata only, for whether one is being deleted (Caches::
    // namespace_terminating). Cluster-scoped: one object with --watch-namespace.
    let (namespaces, namespace_events) = cached_watch(
        Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
        match &watch_namespace {
            Some(ns) => watch_config().fields(&format!("metadata.name={ns}")),
            None => watch_config(),
        },
    );
    let caches = Arc::new(Caches {
        service_accounts,
        config_maps,
        pvcs,
        pdbs,
        hpas,
        network_policies,
        ingresses,
        operator_config,
        namespaces,
    });
    ctx.caches_synced.send_replace(false);
    if let Ok(mut slot) = ctx.caches.lock() {
        *slot = Some(caches.clone());
    }
    // Housekeeping every 15 s, once the CRs are listed (an empty store would sweep
    // everything): what deleted CRs left behind, and the sizes on /metrics. Ends with the
    // controller (below): a leader that steps down and runs again starts anew.
    let (kept_ctx, kept_crs, kept_caches) = (ctx.clone(), reader.clone(), caches.clone());
    let mut kept_listed = listed.clone();
    let kept_task = tokio::spawn(async move {
        let _ = kept_listed.wait_for(|l| *l).await;
        let mut every = tokio::time::interval(Duration::from_secs(15));
        loop {
            every.tick().await;
            let crs = kept_crs.state();
            kept_ctx.forget_deleted(&crs);
            kept_ctx.publish_kept(&crs, &kept_caches);
        }
    });
    let synced = ctx.caches_synced.clone();
    let warm = client.clone();
    tokio::spawn(async move {
        caches.synced().await;
        synced.send_replace(true);
        // Every connection the start-up opened now carries a watch (HTTP/1.1: one each), so
        // the first pass would open one more, TLS and all: 50 ms of the first CR's 90 in
        // `make bench-upstream`. One request now leaves an idle connection in the pool.
        if let Err(e) = warm.apiserver_version().await {
            tracing::debug!(error = %e, "could not warm a connection to the API server");
        }
    });

    controller
        .owns_stream(after_listed(
            listed.clone(),
            watcher(
                meta::<Deployment>(&client, &watch_namespace),
                managed.clone(),
            )
            .default_backoff()
            .touched_objects(),
        ))
        .owns_stream(after_listed(
            listed.clone(),
            watcher(meta::<Service>(&client, &watch_namespace), managed.clone())
                .default_backoff()
                .touched_objects(),
        ))
        .owns_stream(after_listed(listed.clone(), sa_events))
        .owns_stream(after_listed(listed.clone(), pvc_events))
        .owns_stream(after_listed(listed.clone(), pdb_events))
        .owns_stream(after_listed(listed.clone(), hpa_events))
        .owns_stream(after_listed(listed.clone(), np_events))
        .owns_stream(after_listed(listed.clone(), ingress_events))
        .owns_stream(after_listed(listed.clone(), cm_events))
        .watches_stream(after_listed(listed.clone(), secrets), move |s| {
            let ns = s.namespace().unwrap_or_default();
            referencing(&store, &ns, &s.name_any(), RefKind::Secret)
        })
        .watches_stream(after_listed(listed.clone(), configmaps), move |c| {
            let ns = c.namespace().unwrap_or_default();
            referencing(&store2, &ns, &c.name_any(), RefKind::ConfigMap)
        })
        // Image overrides and feature flags concern every CR.
        .watches_stream(
            after_listed(listed.clone(), operator_config_events),
            move |_| {
                store4
                    .state()
                    .iter()
                    .map(|cr| ObjectRef::from_obj(cr.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .watches_stream(after_listed(listed.clone(), pods), move |p| {
            pod_owner(&store3, &p)
        })
        // Kept for the cache only: a namespace being deleted needs no pass.
        .watches_stream(after_listed(listed, namespace_events), |_| {
            std::iter::empty::<ObjectRef<LlamaStackDistribution>>()
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
    kept_task.abort();
}

/// `stream`, polled from the moment the CRs are listed (or the controller stops waiting).
fn after_listed<S>(
    mut listed: tokio::sync::watch::Receiver<bool>,
    stream: S,
) -> impl futures::Stream<Item = S::Item> + Send + 'static
where
    S: futures::Stream + Send + 'static,
{
    futures::stream::once(async move {
        let _ = listed.wait_for(|l| *l).await;
        stream
    })
    .flatten()
}

/// How long a healthy CR waits before a routine re-check (drift on objects we do not watch).
pub const RESYNC: Duration = Duration::from_secs(300);

/// Requeue after a transient error.
pub fn retry() -> Action {
    Action::requeue(Duration::from_secs(5))
}

#[cfg(test)]
mod drift_key_tests {
    use super::*;

    #[test]
    fn records_of_crs_gone_from_the_store_are_swept() {
        let mut map = HashMap::from([
            ("uid-live|Deployment/ns/a".to_string(), 1),
            ("uid-gone|Deployment/ns/b".to_string(), 2),
            ("uid-gone|Service/ns/b".to_string(), 1),
            ("|ConfigMap/other/ca".to_string(), 3),
        ]);
        forget_unlisted(&mut map, &["uid-live".to_string()].into());
        let mut left: Vec<&str> = map.keys().map(String::as_str).collect();
        left.sort();
        assert_eq!(left, ["uid-live|Deployment/ns/a", "|ConfigMap/other/ca"]);
    }
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn owned(name: &str, owner_uid: &str) -> Deployment {
        let mut d = Deployment::default();
        d.metadata.name = Some(name.into());
        d.metadata.namespace = Some("ns".into());
        d.metadata.owner_references = Some(vec![OwnerReference {
            controller: Some(true),
            uid: owner_uid.into(),
            ..Default::default()
        }]);
        d
    }

    #[test]
    fn what_is_remembered_of_a_deleted_crs_objects_goes_with_it() {
        // Issue 19: the map kept an entry per owned object of every CR ever deleted.
        let mut map = HashMap::new();
        for (name, uid) in [("a", "uid-a"), ("b", "uid-b"), ("c", "uid-c")] {
            map.insert(drift_key(&owned(name, uid)), 1);
        }
        assert!(map.contains_key("uid-a|Deployment/ns/a"), "{map:?}");
        forget_owners(&mut map, |owner| owner == "uid-b");
        assert_eq!(map.len(), 2);
        // A relist: only the listed owners stay.
        let listed = ["uid-c"];
        forget_owners(&mut map, |owner| !listed.contains(&owner));
        assert_eq!(
            map.keys().collect::<Vec<_>>(),
            vec!["uid-c|Deployment/ns/c"]
        );
    }
}

#[cfg(test)]
mod distribution_metric_tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn cr(name: &str, created: &str, status: serde_json::Value) -> Arc<LlamaStackDistribution> {
        let v = serde_json::json!({
            "apiVersion": "llamastack.io/v1alpha2", "kind": "LlamaStackDistribution",
            "metadata": {"name": name, "namespace": "ns", "creationTimestamp": created},
            "spec": {"distribution": {"name": "starter"}},
            "status": status,
        });
        Arc::new(serde_json::from_value(v).expect("a CR"))
    }

    #[test]
    fn phases_are_counted_and_the_longest_not_ready_is_measured_from_available() {
        let now: Timestamp = "2026-12-08T03:00:00Z".parse().expect("time");
        let available = |status: &str, at: &str| {
            serde_json::json!([{"type": "Available", "status": status, "reason": "R",
                                "message": "", "lastTransitionTime": at}])
        };
        let crs = [
            cr(
                "ready",
                "2026-12-08T01:00:00Z",
                serde_json::json!({"phase": "Ready",
                "conditions": available("True", "2026-12-08T01:05:00Z")}),
            ),
            // Never reconciled: out of Ready since it was created, 20 minutes ago.
            cr("new", "2026-12-08T02:40:00Z", serde_json::Value::Null),
            // Ready once, lost its pods 5 minutes ago (created long before).
            cr(
                "lost",
                "2026-12-07T03:00:00Z",
                serde_json::json!({"phase": "Initializing",
                "conditions": available("False", "2026-12-08T02:55:00Z")}),
            ),
        ];
        let (by_phase, longest) = distributions(&crs, now);
        let count = |p: &str| by_phase.iter().find(|(n, _)| *n == p).map(|(_, c)| *c);
        assert_eq!(count("Ready"), Some(1));
        assert_eq!(count("Pending"), Some(1));
        assert_eq!(count("Initializing"), Some(1));
        assert_eq!(count("Failed"), Some(0));
        assert_eq!(longest, Duration::from_secs(20 * 60));
        let (_, none) = distributions(&crs[..1], now);
        assert_eq!(none, Duration::ZERO);
    }
}
