//! Support for tests that run against the real control plane started by
//! `tests/cluster/up` (kube-apiserver, kube-controller-manager, kube-scheduler,
//! etcd and kwok fake nodes).
//!
//! * [`client`] connects with the kubeconfig named by `KUBECONFIG`; it fails
//!   with a clear message when the variable is unset (tests never skip).
//! * [`TestNamespace`] is a throwaway namespace, deleted (best effort) on drop.
//! * [`wait_for`], [`wait_deleted`] and [`eventually`] poll with a timeout and,
//!   on timeout, report what they saw last.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use k8s_openapi;
pub use kube;

pub mod bench;
pub mod kubectl;
pub mod ports;
pub mod registry;
pub mod secret_scan;

pub use kubectl::kubectl;

/// Label put on every namespace made by [`TestNamespace`], so leftovers can be
/// found with `kubectl get ns -l llsd-test=true`.
pub const TEST_NAMESPACE_LABEL: &str = "llsd-test";

/// How often the wait helpers poll.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Reads the kubeconfig named by `KUBECONFIG` (a single path).
///
/// Errors (never skips) if the variable is unset or empty: run the tests via
/// `tests/cluster/run-tests.sh`, or `KUBECONFIG=$(tests/cluster/up) cargo test`.
pub async fn config() -> Result<Config> {
    config_from(std::env::var_os("KUBECONFIG").as_deref()).await
}

/// [`config`] with the value of `KUBECONFIG` given explicitly (testable
/// without touching the process environment).
pub async fn config_from(kubeconfig: Option<&std::ffi::OsStr>) -> Result<Config> {
    install_crypto_provider();
    let path = match kubeconfig {
        Some(p) if !p.is_empty() => std::path::PathBuf::from(p),
        _ => bail!(
            "KUBECONFIG is not set: these tests need the real control plane. Start it with \
             `tests/cluster/up` (it prints the kubeconfig path as its last line) and run \
             `KUBECONFIG=<that path> cargo test -p llsd-test-support`, or simply run \
             `tests/cluster/run-tests.sh`"
        ),
    };
    let kubeconfig = Kubeconfig::read_from(&path)
        .with_context(|| format!("reading kubeconfig {} (from KUBECONFIG)", path.display()))?;
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading kubeconfig {}", path.display()))?;
    // Keep individual requests bounded so a wedged API server fails the test
    // instead of hanging it.
    config.read_timeout = Some(Duration::from_secs(60));
    config.connect_timeout = Some(Duration::from_secs(10));
    Ok(config)
}

/// Installs ring as rustls' process-wide crypto provider (kube builds its TLS
/// config with the process default), unless one is installed already.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client for the cluster named by `KUBECONFIG` (see [`config`]). Also checks
/// that the API server answers, so a stopped cluster fails fast and clearly.
pub async fn client() -> Result<Client> {
    let config = config().await?;
    let url = config.cluster_url.clone();
    let client = Client::try_from(config).context("building the Kubernetes client")?;
    client
        .apiserver_version()
        .await
        .with_context(|| format!("the API server at {url} (from KUBECONFIG) does not answer"))?;
    Ok(client)
}

static NAME_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique across the test processes sharing the cluster: `<prefix>-<pid>-<n>-<rand>`,
/// valid as a DNS-1123 label (the prefix is lower-cased, sanitised and cut to fit).
pub fn unique_name(prefix: &str) -> String {
    let n = NAME_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let suffix = format!(
        "{}-{}-{:04x}",
        std::process::id(),
        n,
        (nanos ^ (n.wrapping_mul(2654435761))) & 0xffff
    );
    let mut p: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    p.truncate(62 - suffix.len());
    let p = p.trim_matches('-');
    if p.is_empty() {
        format!("t-{suffix}")
    } else {
        format!("{p}-{suffix}")
    }
}

/// A throwaway namespace for one test. Deleted when dropped (best effort, the
/// delete request is sent before `drop` returns); call [`TestNamespace::delete`]
/// to delete it explicitly and see errors.
pub struct TestNamespace {
    name: String,
    client: Client,
    config: Config,
    deleted: bool,
}

impl TestNamespace {
    /// Creates a namespace named `<prefix>-<pid>-<n>-<rand>` (see [`unique_name`]).
    pub async fn create(client: &Client, prefix: &str) -> Result<Self> {
        let name = unique_name(prefix);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(TEST_NAMESPACE_LABEL.to_string(), "true".to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating test namespace {name}"))?;
        Ok(Self {
            name,
            client: client.clone(),
            config: config().await?,
            deleted: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A namespaced `Api` in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Deletes the namespace (without waiting for it to be gone).
    pub async fn delete(mut self) -> Result<()> {
        self.deleted = true;
        delete_namespace(&self.client, &self.name).await
    }
}

async fn delete_namespace(client: &Client, name: &str) -> Result<()> {
    match Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("deleting test namespace {name}")),
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        // The test's runtime may be shutting down (or be current-thread and busy
        // running this drop), so send the delete from a fresh thread and runtime
        // with a fresh client, and wait for that request only.
        let (name, config) = (self.name.clone(), self.config.clone());
        let res = std::thread::spawn(move || -> Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let client = Client::try_from(config)?;
                tokio::time::timeout(Duration::from_secs(15), delete_namespace(&client, &name))
                    .await
                    .map_err(|_| anyhow!("timed out deleting test namespace {name}"))?
            })
        })
        .join();
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: {e:#}"),
            Err(_) => eprintln!("warning: deleting test namespace {} panicked", self.name),
        }
    }
}

/// Renders an object for a timeout message: JSON without `managedFields`, cut to a few KiB.
pub fn describe<T: Serialize>(obj: &T) -> String {
    let mut v = match serde_json::to_value(obj) {
        Ok(v) => v,
        Err(e) => return format!("<unserialisable: {e}>"),
    };
    if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.remove("managedFields");
    }
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    const MAX: usize = 6000;
    if s.len() > MAX {
        let mut cut = MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("\n…(truncated)");
    }
    s
}

/// Polls `api.get(name)` until `cond(&obj)` holds and returns that object. On
/// timeout the error shows the object as last seen (or that it never existed,
/// or the last error).
pub async fn wait_for<K, F>(api: &Api<K>, name: &str, timeout: Duration, cond: F) -> Result<K>
where
    K: Clone + DeserializeOwned + Serialize + Debug + Resource,
    <K as Resource>::DynamicType: Default,
    F: Fn(&K) -> bool,
{
    let found = poll(api, name, timeout, "to meet the condition", |o| {
        o.is_some_and(&cond)
    })
    .await?;
    found.ok_or_else(|| anyhow!("{name} vanished after meeting the condition"))
}

/// Polls until `api.get(name)` is 404. On timeout the error shows the object as
/// last seen (finalizers, deletionTimestamp, ownerReferences…).
pub async fn wait_deleted<K>(api: &Api<K>, name: &str, timeout: Duration) -> Result<()>
where
    K: Clone + DeserializeOwned + Serialize + Debug + Resource,
    <K as Resource>::DynamicType: Default,
{
    poll(api, name, timeout, "to be deleted", |o: Option<&K>| {
        o.is_none()
    })
    .await
    .map(|_| ())
}

/// Polls `api.get_opt(name)` until `done` accepts what it sees (None = absent).
async fn poll<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    goal: &str,
    done: impl Fn(Option<&K>) -> bool,
) -> Result<Option<K>>
where
    K: Clone + DeserializeOwned + Serialize + Debug + Resource,
    <K as Resource>::DynamicType: Default,
{
    let start = Instant::now();
    let mut last: Option<K> = None;
    let mut last_err: Option<String>;
    loop {
        match api.get_opt(name).await {
            Ok(seen) => {
                if done(seen.as_ref()) {
                    return Ok(seen);
                }
                last_err = if seen.is_none() {
                    Some("not found".into())
                } else {
                    None
                };
                if seen.is_some() {
                    last = seen;
                }
            }
            Err(e) => last_err = Some(e.to_string()),
        }
        if start.elapsed() >= timeout {
            let kind = K::kind(&Default::default()).to_string();
            let seen = match (&last, &last_err) {
                (_, Some(e)) => format!("last attempt: {e}"),
                (Some(o), None) => format!("last seen:\n{}", describe(o)),
                (None, None) => "never seen".into(),
            };
            bail!(
                "timed out after {timeout:?} waiting for {kind} {}{name} {goal}; {seen}",
                api_ns_prefix(api)
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Retries `f` until it returns `Ok(Some(v))`. `Ok(None)` means "not yet"; an
/// `Err` is remembered as what was last seen and retried too. On timeout the
/// error names `what` and shows the last `Err` (or says none was seen).
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    let mut last = String::from("condition not met");
    loop {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if start.elapsed() >= timeout {
            bail!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn api_ns_prefix<K: Resource>(api: &Api<K>) -> String {
    match api.namespace() {
        Some(ns) => format!("{ns}/"),
        None => String::new(),
    }
}

/// Deletes a cluster-scoped object (a CRD, a webhook configuration…) when
/// dropped, best effort, like [`TestNamespace`] does for its namespace. Tests
/// that create cluster-scoped objects hold one so a failing assertion still
/// cleans up.
pub struct DeleteOnDrop<K>
where
    K: Resource<Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + 'static,
    <K as Resource>::DynamicType: Default,
{
    name: String,
    config: Config,
    _kind: std::marker::PhantomData<fn() -> K>,
}

impl<K> DeleteOnDrop<K>
where
    K: Resource<Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + 'static,
    <K as Resource>::DynamicType: Default,
{
    /// Guards the object `name` of kind `K` (create it before or after).
    pub async fn new(name: impl Into<String>) -> Result<Self> {
        Ok(Self {
            name: name.into(),
            config: config().await?,
            _kind: std::marker::PhantomData,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<K> Drop for DeleteOnDrop<K>
where
    K: Resource<Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + 'static,
    <K as Resource>::DynamicType: Default,
{
    fn drop(&mut self) {
        let (name, config) = (self.name.clone(), self.config.clone());
        let kind = K::kind(&Default::default()).to_string();
        let res = std::thread::spawn(move || -> Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let api = Api::<K>::all(Client::try_from(config)?);
                match tokio::time::timeout(
                    Duration::from_secs(15),
                    api.delete(&name, &DeleteParams::background()),
                )
                .await
                {
                    Err(_) => bail!("timed out deleting {kind} {name}"),
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(kube::Error::Api(e))) if e.code == 404 => Ok(()),
                    Ok(Err(e)) => Err(e).with_context(|| format!("deleting {kind} {name}")),
                }
            })
        })
        .join();
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: {e:#}"),
            Err(_) => eprintln!("warning: deleting {} panicked", self.name),
        }
    }
}

/// True once a CustomResourceDefinition reports `Established=True` (its API is served).
pub fn crd_established(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}
