//! `make bench-upstream` (issue 18): the upstream Go operator and ours, side by side, on one
//! local control plane, with one v1alpha1 workload (../shared/reference/upstream-bench.md is
//! the run by hand this automates). Passes alternate (upstream, ours, ours, upstream, …), one
//! operator at a time (the CRDs share a name): install, run, measure, tear down.
//!
//! Per pass: spawn → `/readyz` 200 and → caches synced; N CRs one after another (apply →
//! Deployment, apply → phase Ready: p50/p99); M CRs at once from 32 clients (all accepted, all
//! Deployments, all Ready, the operator's CPU, its writes and the 5xx the API server answered
//! them, until it goes quiet); an idle spell (writes, reconciles); peak RSS and CPU of the
//! process; a restart over every CR (writes per reconcile); the namespace deleted under the
//! running operator (writes refused). Writes come from the API server's audit log, by user:
//! each operator runs with a client certificate of its own (`bench-upstream`, `bench-ours`).
//!
//! Run by `tests/bench/upstream.sh`, which builds both operators, starts the control plane
//! and sets the environment read in [`Settings::from_env`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use kube::core::GroupVersionKind;
use kube::runtime::{WatchStreamExt, watcher};
use llsd_test_support::bench::{
    AuditTail, AuditWrite, counter_sum, http_get, median, now_us, percentile, proc_stats, readyz,
};
use llsd_test_support::kubectl;
use serde_json::json;

const CRD: &str = "llamastackdistributions.llamastack.io";
/// Label on every namespace the benchmark creates (the start of a run deletes leftovers).
const LABEL: &str = "llsd-bench-upstream";
const UPSTREAM_NS: &str = "llsd-upstream-system";
const OURS_NS: &str = "llama-stack-operator-system";
/// Loopback ports, away from the tests' (27000..32000, `ports::free_port`), the demo's
/// (8080, 8081, 9443) and the control planes' (23790.., 33790.., 43790..).
const UPSTREAM_METRICS_PORT: u16 = 21080;
const UPSTREAM_PROBE_PORT: u16 = 21081;
const OURS_WEBHOOK_PORT: u16 = 21443;
const OURS_METRICS_PORT: u16 = 21090;
const OURS_PROBE_PORT: u16 = 21091;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Upstream,
    Ours,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Upstream => "upstream",
            Kind::Ours => "ours",
        }
    }
    /// The client certificate's CN, i.e. the user in the audit log.
    fn user(self) -> &'static str {
        match self {
            Kind::Upstream => "bench-upstream",
            Kind::Ours => "bench-ours",
        }
    }
    fn probe_port(self) -> u16 {
        match self {
            Kind::Upstream => UPSTREAM_PROBE_PORT,
            Kind::Ours => OURS_PROBE_PORT,
        }
    }
    fn metrics_port(self) -> u16 {
        match self {
            Kind::Upstream => UPSTREAM_METRICS_PORT,
            Kind::Ours => OURS_METRICS_PORT,
        }
    }
    fn reconcile_counter(self) -> &'static str {
        match self {
            Kind::Upstream => "controller_runtime_reconcile_total",
            Kind::Ours => "llsd_reconciles_total",
        }
    }
    /// The version the harness watches CRs in: upstream's only one, ours' storage version
    /// (so the watch causes no conversion calls).
    fn watch_version(self) -> &'static str {
        match self {
            Kind::Upstream => "v1alpha1",
            Kind::Ours => "v1alpha2",
        }
    }
}

struct Settings {
    dir: PathBuf,
    audit_log: PathBuf,
    upstream_bin: PathBuf,
    upstream_workdir: PathBuf,
    upstream_crd: PathBuf,
    upstream_kubeconfig: PathBuf,
    upstream_version: String,
    ours_bin: PathBuf,
    ours_kubeconfig: PathBuf,
    ours_rev: String,
    passes: usize,
    /// `LLSD_BENCH_ONLY`: one operator's passes only (a trial, or a size only one of them is
    /// asked to reach); the table then has no ratios.
    only: Option<Kind>,
    seq: usize,
    burst: usize,
    clients: usize,
    idle: Duration,
    settle_max: Duration,
    quiet: Duration,
    wait: Duration,
}

fn env_path(name: &str) -> Result<PathBuf> {
    let v = std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .with_context(|| format!("{name} is not set: run this through tests/bench/upstream.sh"))?;
    Ok(PathBuf::from(v))
}

fn env_num(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .with_context(|| format!("{name}={v} is not a whole number")),
        _ => Ok(default),
    }
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let s = Settings {
            dir: env_path("LLSD_BENCH_DIR")?,
            audit_log: env_path("LLSD_BENCH_AUDIT_LOG")?,
            upstream_bin: env_path("LLSD_BENCH_UPSTREAM_BIN")?,
            upstream_workdir: env_path("LLSD_BENCH_UPSTREAM_WORKDIR")?,
            upstream_crd: env_path("LLSD_BENCH_UPSTREAM_CRD")?,
            upstream_kubeconfig: env_path("LLSD_BENCH_UPSTREAM_KUBECONFIG")?,
            upstream_version: std::env::var("LLSD_BENCH_UPSTREAM_VERSION").unwrap_or_default(),
            ours_bin: env_path("LLSD_OPERATOR_BIN")?,
            ours_kubeconfig: env_path("LLSD_BENCH_OURS_KUBECONFIG")?,
            ours_rev: std::env::var("LLSD_BENCH_OURS_REV").unwrap_or_default(),
            passes: env_num("LLSD_BENCH_PASSES", 2)? as usize,
            only: match std::env::var("LLSD_BENCH_ONLY")
                .unwrap_or_default()
                .as_str()
            {
                "" => None,
                "ours" => Some(Kind::Ours),
                "upstream" => Some(Kind::Upstream),
                other => bail!("LLSD_BENCH_ONLY={other}: expected ours or upstream"),
            },
            seq: env_num("LLSD_BENCH_SEQ", 50)? as usize,
            burst: env_num("LLSD_BENCH_BURST", 200)? as usize,
            clients: env_num("LLSD_BENCH_CLIENTS", 32)?.max(1) as usize,
            idle: Duration::from_secs(env_num("LLSD_BENCH_IDLE_SECONDS", 120)?),
            settle_max: Duration::from_secs(env_num("LLSD_BENCH_SETTLE_MAX_SECONDS", 120)?),
            quiet: Duration::from_secs(env_num("LLSD_BENCH_QUIET_SECONDS", 10)?),
            wait: Duration::from_secs(env_num("LLSD_BENCH_WAIT_SECONDS", 600)?),
        };
        if s.passes == 0 || s.seq == 0 || s.burst == 0 {
            bail!("LLSD_BENCH_PASSES, LLSD_BENCH_SEQ and LLSD_BENCH_BURST must be at least 1");
        }
        Ok(s)
    }

    /// upstream, ours, ours, upstream, upstream, ours, …: each operator `passes` times, the
    /// order flipped every round so neither always runs first on a warmer machine.
    fn order(&self) -> Vec<(Kind, usize)> {
        let mut order = Vec::new();
        let mut n = HashMap::new();
        for round in 0..self.passes {
            let pair = if round % 2 == 0 {
                [Kind::Upstream, Kind::Ours]
            } else {
                [Kind::Ours, Kind::Upstream]
            };
            for k in pair {
                if self.only.is_some_and(|only| only != k) {
                    continue;
                }
                let i = n.entry(k.name()).or_insert(0);
                *i += 1;
                order.push((k, *i));
            }
        }
        order
    }
}

/// The figures: key, label, decimals. Every figure is "lower is better".
fn figures(s: &Settings) -> Vec<(&'static str, String, usize)> {
    let (n, m, idle) = (s.seq, s.burst, s.idle.as_secs());
    vec![
        (
            "startup_readyz_ms",
            "start-up: spawn → /readyz 200 (ms)".into(),
            0,
        ),
        (
            "startup_synced_ms",
            "start-up: spawn → caches synced, workers up (ms)".into(),
            0,
        ),
        (
            "seq_dep_p50_ms",
            format!("{n} sequential: apply → Deployment p50 (ms)"),
            0,
        ),
        (
            "seq_dep_p99_ms",
            format!("{n} sequential: apply → Deployment p99 (ms)"),
            0,
        ),
        (
            "seq_ready_p50_ms",
            format!("{n} sequential: apply → Ready p50 (ms)"),
            0,
        ),
        (
            "seq_ready_p99_ms",
            format!("{n} sequential: apply → Ready p99 (ms)"),
            0,
        ),
        (
            "seq_first_dep_ms",
            "sequential: the first CR alone → Deployment (ms)".into(),
            0,
        ),
        (
            "seq_first_ready_ms",
            "sequential: the first CR alone → Ready (ms)".into(),
            0,
        ),
        (
            "seq_writes_per_cr",
            format!("{n} sequential: operator writes per new CR"),
            1,
        ),
        (
            "burst_accepted_s",
            format!("{m} at once: all accepted by the API server (client side, s)"),
            1,
        ),
        (
            "burst_deployments_s",
            format!("{m} at once: all Deployments exist (s)"),
            1,
        ),
        ("burst_ready_s", format!("{m} at once: all Ready (s)"), 1),
        (
            "burst_cpu_s",
            format!("{m} at once: operator CPU to all Ready (s)"),
            1,
        ),
        (
            "burst_writes",
            format!("{m} at once: operator writes (to quiet or cap)"),
            0,
        ),
        (
            "burst_5xx",
            format!("{m} at once: 5xx/timeouts answered to the operator's writes"),
            0,
        ),
        (
            "peak_rss_mib",
            "peak RSS (VmHWM), spawn to end of idle (MiB)".into(),
            1,
        ),
        (
            "cpu_whole_s",
            "CPU utime+stime, spawn to end of idle (s)".into(),
            1,
        ),
        (
            "idle_writes",
            format!("idle {idle} s, nothing touched: operator writes"),
            0,
        ),
        ("idle_reconciles", format!("idle {idle} s: reconciles"), 0),
        (
            "restart_readyz_ms",
            format!("restart with {} CRs: spawn → /readyz (ms)", n + m),
            0,
        ),
        (
            "restart_synced_ms",
            "restart: spawn → caches synced (ms)".into(),
            0,
        ),
        (
            "restart_reconciles",
            "restart: reconciles in the window (to quiet or cap)".into(),
            0,
        ),
        (
            "restart_writes",
            "restart: operator writes in the window".into(),
            0,
        ),
        (
            "restart_writes_per_reconcile",
            "restart: writes per reconcile".into(),
            2,
        ),
        (
            "restart_cpu_s",
            "restart: CPU of the restarted process (s)".into(),
            1,
        ),
        (
            "owned_per_cr",
            "objects owned per CR (Deployment, Service, SA, ConfigMap)".into(),
            1,
        ),
        (
            "teardown_refused_writes",
            "namespace deletion: operator writes refused (4xx/5xx)".into(),
            0,
        ),
    ]
}

/// The v1alpha1 workload: upstream's `config/samples/example-withoutconfigmap.yaml` without
/// `storage` (kwok has no volume provisioner), the container named `llama-stack`.
fn workload(name: &str) -> Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "llamastack.io/v1alpha1", "kind": "LlamaStackDistribution",
        "metadata": {"name": name},
        "spec": {"replicas": 1, "server": {
            "distribution": {"name": "starter"},
            "containerSpec": {"name": "llama-stack", "env": [
                {"name": "OLLAMA_INFERENCE_MODEL", "value": "llama3.2:1b"},
                {"name": "OLLAMA_URL", "value": "http://ollama-server-service.ollama-dist.svc.cluster.local:11434"}]}}},
    }))?)
}

fn llsd_api(client: &kube::Client, ns: &str, version: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("llamastack.io", version, "LlamaStackDistribution");
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(&gvk, "llamastackdistributions"),
    )
}

/// Times when each CR's Deployment (by owner) first appeared and when each CR was first
/// seen with `status.phase == Ready`, from the harness's own watches.
#[derive(Default)]
struct Seen {
    deployment: HashMap<String, Instant>,
    ready: HashMap<String, Instant>,
    /// Watches that have finished their first list.
    listed: usize,
}

/// Runs a watch of `api`, calling `on` for each object it sees and counting its first list.
async fn follow<K>(api: Api<K>, seen: Arc<Mutex<Seen>>, on: fn(&mut Seen, K))
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let mut w = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut listed = false;
    while let Some(e) = w.next().await {
        let Ok(e) = e else { continue };
        let Ok(mut s) = seen.lock() else { return };
        match e {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => on(&mut s, o),
            watcher::Event::InitDone if !listed => {
                listed = true;
                s.listed += 1;
            }
            _ => {}
        }
    }
}

struct Watches {
    seen: Arc<Mutex<Seen>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Watches {
    fn start(client: &kube::Client, ns: &str, kind: Kind) -> Watches {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let deps: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let s = seen.clone();
        let t1 = tokio::spawn(follow(deps, s, |s, d: Deployment| {
            let owner = d.metadata.owner_references.unwrap_or_default();
            if let Some(o) = owner.iter().find(|o| o.kind == "LlamaStackDistribution") {
                s.deployment
                    .entry(o.name.clone())
                    .or_insert_with(Instant::now);
            }
        }));
        let crs = llsd_api(client, ns, kind.watch_version());
        let s = seen.clone();
        let t2 = tokio::spawn(follow(crs, s, |s, o: DynamicObject| {
            if o.data["status"]["phase"] == "Ready"
                && let Some(n) = o.metadata.name
            {
                s.ready.entry(n).or_insert_with(Instant::now);
            }
        }));
        Watches {
            seen,
            tasks: vec![t1, t2],
        }
    }

    /// Waits until every watch has listed: what is created after that is seen as it
    /// happens, not at the end of a list.
    async fn synced(&self) -> Result<()> {
        let start = Instant::now();
        while self
            .seen
            .lock()
            .map_err(|_| anyhow!("watch state poisoned"))?
            .listed
            < self.tasks.len()
        {
            if start.elapsed() > Duration::from_secs(30) {
                bail!("the harness's watches did not list within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    fn deployment(&self, name: &str) -> Option<Instant> {
        self.seen.lock().ok()?.deployment.get(name).copied()
    }

    fn ready(&self, name: &str) -> Option<Instant> {
        self.seen.lock().ok()?.ready.get(name).copied()
    }

    /// Waits until `names` all have a time in the map `pick` chooses; returns the latest.
    async fn wait_all(
        &self,
        names: &[String],
        what: &str,
        timeout: Duration,
        pick: fn(&Seen) -> &HashMap<String, Instant>,
    ) -> Result<Instant> {
        let start = Instant::now();
        loop {
            let (latest, missing) = {
                let s = self
                    .seen
                    .lock()
                    .map_err(|_| anyhow!("watch state poisoned"))?;
                let m = pick(&s);
                let missing = names.iter().filter(|n| !m.contains_key(*n)).count();
                (
                    names.iter().filter_map(|n| m.get(n)).max().copied(),
                    missing,
                )
            };
            if missing == 0
                && let Some(t) = latest
            {
                return Ok(t);
            }
            if start.elapsed() > timeout {
                bail!(
                    "{missing} of {} CRs without {what} after {timeout:?}",
                    names.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Watches {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// One operator process, killed when dropped; its pid in `<dir>/run/pids/` meanwhile, so
/// tests/bench/upstream.sh can stop it if this harness is killed.
struct Operator {
    kind: Kind,
    child: Child,
    spawned: Instant,
    log: PathBuf,
    pidfile: PathBuf,
}

impl Operator {
    fn spawn(s: &Settings, kind: Kind, log: PathBuf) -> Result<Operator> {
        let ports: &[u16] = match kind {
            Kind::Upstream => &[UPSTREAM_METRICS_PORT, UPSTREAM_PROBE_PORT],
            Kind::Ours => &[OURS_WEBHOOK_PORT, OURS_METRICS_PORT, OURS_PROBE_PORT],
        };
        for &p in ports {
            if std::net::TcpListener::bind(("127.0.0.1", p)).is_err() {
                bail!(
                    "127.0.0.1:{p} is in use: the {} operator needs it",
                    kind.name()
                );
            }
        }
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = match kind {
            Kind::Upstream => {
                let mut c = Command::new(&s.upstream_bin);
                c.arg(format!(
                    "--metrics-bind-address=127.0.0.1:{UPSTREAM_METRICS_PORT}"
                ))
                .arg(format!(
                    "--health-probe-bind-address=127.0.0.1:{UPSTREAM_PROBE_PORT}"
                ))
                .env("OPERATOR_NAMESPACE", UPSTREAM_NS)
                .env("KUBECONFIG", &s.upstream_kubeconfig)
                // It renders its kustomize base from `manifests/base` on every reconcile.
                .current_dir(&s.upstream_workdir);
                c
            }
            Kind::Ours => {
                let mut c = Command::new(&s.ours_bin);
                c.args(["run", "--namespace", OURS_NS, "--bind-address", "127.0.0.1"])
                    .args(["--webhook-host", "127.0.0.1"])
                    .args(["--webhook-port", &OURS_WEBHOOK_PORT.to_string()])
                    .args(["--metrics-port", &OURS_METRICS_PORT.to_string()])
                    .args(["--probe-port", &OURS_PROBE_PORT.to_string()])
                    .env("KUBECONFIG", &s.ours_kubeconfig);
                // The default log level unless a diagnosis asks for more (it costs time).
                match std::env::var("LLSD_BENCH_OURS_RUST_LOG") {
                    Ok(filter) => c.env("RUST_LOG", filter),
                    Err(_) => c.env_remove("RUST_LOG"),
                };
                c
            }
        };
        // Every endpoint is on loopback (or, for upstream's health calls, a cluster name).
        for v in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "http_proxy",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            cmd.env_remove(v);
        }
        let spawned = Instant::now();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting the {} operator", kind.name()))?;
        let pidfile = s.dir.join("run/pids").join(format!("{}.pid", kind.name()));
        if let Some(d) = pidfile.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(&pidfile, child.id().to_string())?;
        Ok(Operator {
            kind,
            child,
            spawned,
            log,
            pidfile,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Polls every 10 ms: spawn → `/readyz` 200, and spawn → caches synced (the log line
    /// after the first list of CRs: upstream's controller-runtime `Starting workers`, ours
    /// `controller ready`). Milliseconds.
    async fn wait_started(&mut self, timeout: Duration) -> Result<(f64, f64)> {
        let (mut ready, mut synced) = (None, None);
        loop {
            let t = self.spawned.elapsed();
            if ready.is_none() && readyz(self.kind.probe_port()).await {
                ready = Some(t);
            }
            if synced.is_none() {
                let line = match self.kind {
                    Kind::Ours => "controller ready",
                    Kind::Upstream => "Starting workers",
                };
                synced = std::fs::read_to_string(&self.log)
                    .unwrap_or_default()
                    .contains(line)
                    .then_some(t);
            }
            if let (Some(r), Some(s)) = (ready, synced) {
                return Ok((r.as_secs_f64() * 1e3, s.as_secs_f64() * 1e3));
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the {} operator exited with {status} while starting; its log ends:\n{}",
                    self.kind.name(),
                    self.log_tail()
                );
            }
            if t > timeout {
                bail!(
                    "the {} operator was not started after {timeout:?}; its log ends:\n{}",
                    self.kind.name(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn reconciles(&self) -> Result<f64> {
        let (code, body) = http_get(self.kind.metrics_port(), "/metrics")
            .await
            .with_context(|| format!("scraping the {} operator's /metrics", self.kind.name()))?;
        if code != 200 {
            bail!(
                "the {} operator's /metrics answered {code}",
                self.kind.name()
            );
        }
        Ok(counter_sum(&body, self.kind.reconcile_counter()))
    }

    /// SIGTERM, up to 10 s to exit, then SIGKILL.
    async fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .stderr(Stdio::null())
            .status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pidfile);
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Installs one operator's CRD (and, for ours, its webhook configurations, namespace and
/// ConfigMap: `deploy/local` with the webhooks moved to our port) and waits until the CRD is
/// served.
fn install(s: &Settings, kind: Kind) -> Result<()> {
    match kind {
        Kind::Upstream => {
            let crd = s.upstream_crd.to_string_lossy();
            kubectl(&["apply", "--server-side", "-f", &crd], None)?;
            kubectl(&["create", "namespace", UPSTREAM_NS], None)?;
            kubectl(
                &["label", "namespace", UPSTREAM_NS, &format!("{LABEL}=true")],
                None,
            )?;
        }
        Kind::Ours => {
            let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local");
            let yaml = kubectl(&["kustomize", &local.to_string_lossy()], None)?;
            let moved = yaml.replace(
                "https://127.0.0.1:9443/",
                &format!("https://127.0.0.1:{OURS_WEBHOOK_PORT}/"),
            );
            if moved == yaml {
                bail!("deploy/local names no webhook URL https://127.0.0.1:9443/ to move");
            }
            kubectl(
                &["apply", "--server-side", "--force-conflicts", "-f", "-"],
                Some(&moved),
            )?;
            kubectl(
                &["label", "namespace", OURS_NS, &format!("{LABEL}=true")],
                None,
            )?;
        }
    }
    kubectl(
        &[
            "wait",
            "--for=condition=Established",
            &format!("crd/{CRD}"),
            "--timeout=60s",
        ],
        None,
    )?;
    Ok(())
}

/// Removes what either operator's install left: webhook configurations, the CRD (with any
/// CR left), the operator namespaces and the benchmark's namespaces; waits until they are
/// gone, so the next install starts clean.
fn uninstall() -> Result<()> {
    kubectl(
        &[
            "delete",
            "mutatingwebhookconfiguration/llama-stack-operator-mutating",
            "validatingwebhookconfiguration/llama-stack-operator-validating",
            "--ignore-not-found",
        ],
        None,
    )?;
    // A CRD with a conversion webhook whose operator is gone cannot convert the CRs left
    // behind: drop the conversion first (the storage version stays readable).
    if kubectl(&["get", "crd", CRD, "-o", "name"], None).is_ok() {
        let _ = kubectl(
            &[
                "patch",
                "crd",
                CRD,
                "--type=json",
                "-p",
                r#"[{"op":"replace","path":"/spec/conversion","value":{"strategy":"None"}}]"#,
            ],
            None,
        );
    }
    kubectl(
        &[
            "delete",
            "namespace",
            "-l",
            &format!("{LABEL}=true"),
            "--ignore-not-found",
            "--wait",
            "--timeout=300s",
        ],
        None,
    )?;
    kubectl(
        &[
            "delete",
            "crd",
            CRD,
            "--ignore-not-found",
            "--wait",
            "--timeout=300s",
        ],
        None,
    )?;
    Ok(())
}

/// Waits until the operator has neither written (audit log) nor reconciled (its /metrics)
/// for `s.quiet`, at most `s.settle_max` after `since_us`. Returns when it stopped waiting.
async fn settle(s: &Settings, audit: &AuditTail, op: &Operator, since: Instant) -> i64 {
    let mut last_activity = Instant::now();
    // -1: /metrics did not answer (compared as a value, unlike NaN).
    let mut last_reconciles = op.reconciles().await.unwrap_or(-1.0);
    let mut last_write = audit.last_write_us(op.kind.user());
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = op.reconciles().await.unwrap_or(-1.0);
        let w = audit.last_write_us(op.kind.user());
        if r != last_reconciles || w != last_write {
            last_activity = Instant::now();
            (last_reconciles, last_write) = (r, w);
        }
        if last_activity.elapsed() >= s.quiet || since.elapsed() >= s.settle_max {
            return now_us();
        }
    }
}

/// Creates `names` from `clients` concurrent workers (each create retried up to 5 times on
/// an error the API server or a webhook gave); returns when all are accepted.
async fn create_all(api: &Api<DynamicObject>, names: &[String], clients: usize) -> Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let names = Arc::new(names.to_vec());
    let mut workers = Vec::new();
    for _ in 0..clients {
        let (api, next, names) = (api.clone(), next.clone(), names.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(name) = names.get(i) else {
                    return Ok::<(), anyhow::Error>(());
                };
                create_one(&api, name).await?;
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(())
}

async fn create_one(api: &Api<DynamicObject>, name: &str) -> Result<()> {
    let obj = workload(name)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => return Ok(()),
            Err(e) if attempt < 5 => {
                eprintln!("  create {name}: {e} (retrying)");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("creating {name}")),
        }
    }
}

/// Objects in `ns` that name a LlamaStackDistribution as their owner.
async fn owned_objects(client: &kube::Client, ns: &str) -> Result<usize> {
    fn owned(m: &ObjectMeta) -> bool {
        m.owner_references
            .as_ref()
            .is_some_and(|o| o.iter().any(|o| o.kind == "LlamaStackDistribution"))
    }
    let lp = ListParams::default();
    let mut n = 0;
    n += Api::<Deployment>::namespaced(client.clone(), ns)
        .list(&lp)
        .await?
        .items
        .iter()
        .filter(|o| owned(&o.metadata))
        .count();
    n += Api::<Service>::namespaced(client.clone(), ns)
        .list(&lp)
        .await?
        .items
        .iter()
        .filter(|o| owned(&o.metadata))
        .count();
    n += Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .list(&lp)
        .await?
        .items
        .iter()
        .filter(|o| owned(&o.metadata))
        .count();
    n += Api::<ConfigMap>::namespaced(client.clone(), ns)
        .list(&lp)
        .await?
        .items
        .iter()
        .filter(|o| owned(&o.metadata))
        .count();
    Ok(n)
}

struct PassResult {
    kind: Kind,
    index: usize,
    load: String,
    figures: BTreeMap<&'static str, f64>,
    /// Writes by `verb resource code` per phase, for the report's detail section.
    breakdown: Vec<(String, Vec<(String, usize)>)>,
}

/// Phase boundaries in µs since the epoch, for the audit log.
#[derive(Default)]
struct Marks {
    spawn: i64,
    seq: i64,
    burst: i64,
    burst_end: i64,
    idle: i64,
    idle_end: i64,
    restart: i64,
    restart_end: i64,
    teardown: i64,
    teardown_end: i64,
}

/// One pass: install, measure, tear down (also when measuring failed).
async fn pass(
    s: &Settings,
    client: &kube::Client,
    audit: &AuditTail,
    kind: Kind,
    index: usize,
) -> Result<PassResult> {
    let load = load_average();
    eprintln!("==> pass {}-{index} (load average {load})", kind.name());
    install(s, kind)?;
    let ns = format!("bench-{}-{index}", kind.name());
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": ns, "labels": {LABEL: "true"}}}))?,
    )
    .await
    .with_context(|| format!("creating namespace {ns}"))?;
    let mut op: Option<Operator> = None;
    let mut marks = Marks::default();
    let mut figures = BTreeMap::new();
    let measured = measure(
        s,
        client,
        audit,
        kind,
        index,
        &ns,
        &mut op,
        &mut marks,
        &mut figures,
    )
    .await;

    // Tear down: the namespace deleted with the operator still running (its refused writes
    // counted), then the operator stopped and its install removed.
    eprintln!("  tearing down: namespace {ns}, then the operator and its install");
    marks.teardown = now_us();
    let deleted = kubectl(
        &["delete", "namespace", &ns, "--wait", "--timeout=300s"],
        None,
    );
    marks.teardown_end = now_us();
    if let Some(op) = op.take() {
        op.stop().await;
    }
    let removed = uninstall();
    measured?;
    deleted?;
    removed?;
    // Audit lines may trail the requests a little.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let user = kind.user();
    figures.insert(
        "teardown_refused_writes",
        audit.count(user, marks.teardown, marks.teardown_end, |w| w.code >= 400) as f64,
    );
    let phases = [
        ("start-up", marks.spawn, marks.seq),
        ("sequential", marks.seq, marks.burst),
        ("burst", marks.burst, marks.burst_end),
        ("idle", marks.idle, marks.idle_end),
        ("restart", marks.restart, marks.restart_end),
        ("namespace deletion", marks.teardown, marks.teardown_end),
    ];
    let breakdown = phases
        .iter()
        .map(|(p, a, b)| (p.to_string(), audit.breakdown(user, *a, *b)))
        .collect();
    Ok(PassResult {
        kind,
        index,
        load,
        figures,
        breakdown,
    })
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    s: &Settings,
    client: &kube::Client,
    audit: &AuditTail,
    kind: Kind,
    index: usize,
    ns: &str,
    slot: &mut Option<Operator>,
    marks: &mut Marks,
    f: &mut BTreeMap<&'static str, f64>,
) -> Result<()> {
    let user = kind.user();
    let logs = s.dir.join("logs");
    std::fs::create_dir_all(&logs)?;

    // 1. start-up
    marks.spawn = now_us();
    let log = logs.join(format!("{}-{index}.log", kind.name()));
    let op = slot.insert(Operator::spawn(s, kind, log)?);
    let (ready_ms, synced_ms) = op.wait_started(Duration::from_secs(120)).await?;
    f.insert("startup_readyz_ms", ready_ms);
    f.insert("startup_synced_ms", synced_ms);
    eprintln!("  start-up: /readyz {ready_ms:.0} ms, synced {synced_ms:.0} ms");

    // The API server calls ours' webhooks with the CA it injected at start: the first
    // requests may still see the old one. A dry-run create shows when writes go through
    // (for upstream at once). Not measured.
    let v1 = llsd_api(client, ns, "v1alpha1");
    let warm = Instant::now();
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    while let Err(e) = v1.create(&dry, &workload("warm-up")?).await {
        if warm.elapsed() > Duration::from_secs(60) {
            return Err(e).context("a dry-run create still failed after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The watches start now: ours' first start updates the CRD (its CA), which cuts every
    // watch of the resource begun before, and a cut watch waits out its backoff.
    let watches = Watches::start(client, ns, kind);
    watches.synced().await?;

    // 2. N sequential
    marks.seq = now_us();
    let (mut to_dep, mut to_ready) = (Vec::new(), Vec::new());
    for i in 0..s.seq {
        let name = format!("seq-{i}");
        let t = Instant::now();
        create_one(&v1, &name).await?;
        loop {
            if let (Some(d), Some(r)) = (watches.deployment(&name), watches.ready(&name)) {
                to_dep.push(d.duration_since(t).as_secs_f64() * 1e3);
                to_ready.push(r.duration_since(t).as_secs_f64() * 1e3);
                break;
            }
            if t.elapsed() > Duration::from_secs(120) {
                bail!("{name}: no Deployment and phase Ready after 120 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    eprintln!(
        "  {} sequential: first CR → Deployment {:.0} ms, → Ready {:.0} ms",
        s.seq, to_dep[0], to_ready[0]
    );
    // The first CR after start-up is often the p99 (lazy informers, first webhook calls).
    f.insert("seq_first_dep_ms", to_dep[0]);
    f.insert("seq_first_ready_ms", to_ready[0]);
    to_dep.sort_by(f64::total_cmp);
    to_ready.sort_by(f64::total_cmp);
    f.insert("seq_dep_p50_ms", percentile(&to_dep, 50.0));
    f.insert("seq_dep_p99_ms", percentile(&to_dep, 99.0));
    f.insert("seq_ready_p50_ms", percentile(&to_ready, 50.0));
    f.insert("seq_ready_p99_ms", percentile(&to_ready, 99.0));
    // The last CR's trailing writes (status after Ready) belong to this phase.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 3. M at once
    marks.burst = now_us();
    let op_pid = op.pid();
    let cpu_before = proc_stats(op_pid)?.cpu_seconds;
    let names: Vec<String> = (0..s.burst).map(|i| format!("burst-{i}")).collect();
    let t = Instant::now();
    create_all(&v1, &names, s.clients).await?;
    f.insert("burst_accepted_s", t.elapsed().as_secs_f64());
    let dep = watches
        .wait_all(&names, "a Deployment", s.wait, |s| &s.deployment)
        .await?;
    f.insert("burst_deployments_s", dep.duration_since(t).as_secs_f64());
    let ready = watches
        .wait_all(&names, "phase Ready", s.wait, |s| &s.ready)
        .await?;
    f.insert("burst_ready_s", ready.duration_since(t).as_secs_f64());
    f.insert("burst_cpu_s", proc_stats(op_pid)?.cpu_seconds - cpu_before);
    eprintln!(
        "  {} at once: all Deployments {:.1} s, all Ready {:.1} s; waiting for the operator to go quiet ({} s, at most {} s)",
        s.burst,
        f["burst_deployments_s"],
        f["burst_ready_s"],
        s.quiet.as_secs(),
        s.settle_max.as_secs()
    );
    marks.burst_end = settle(s, audit, op, ready).await;

    // 4. idle
    marks.idle = now_us();
    let r0 = op.reconciles().await?;
    eprintln!("  idle {} s", s.idle.as_secs());
    tokio::time::sleep(s.idle).await;
    let r1 = op.reconciles().await?;
    marks.idle_end = now_us();
    let stats = proc_stats(op_pid)?;
    f.insert("peak_rss_mib", stats.peak_rss_kib as f64 / 1024.0);
    f.insert("cpu_whole_s", stats.cpu_seconds);
    f.insert("idle_reconciles", r1 - r0);
    f.insert(
        "owned_per_cr",
        owned_objects(client, ns).await? as f64 / (s.seq + s.burst) as f64,
    );

    // 5. restart over every CR
    eprintln!("  restart over {} CRs", s.seq + s.burst);
    if let Some(old) = slot.take() {
        old.stop().await;
    }
    marks.restart = now_us();
    let log = logs.join(format!("{}-{index}-restart.log", kind.name()));
    let op = slot.insert(Operator::spawn(s, kind, log)?);
    let since = Instant::now();
    let (ready_ms, synced_ms) = op.wait_started(Duration::from_secs(120)).await?;
    f.insert("restart_readyz_ms", ready_ms);
    f.insert("restart_synced_ms", synced_ms);
    marks.restart_end = settle(s, audit, op, since).await;
    let reconciles = op.reconciles().await?;
    f.insert("restart_reconciles", reconciles);
    f.insert("restart_cpu_s", proc_stats(op.pid())?.cpu_seconds);

    // Writes, now that the audit log has caught up with the last phase.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seq_writes = audit.count(user, marks.seq, marks.burst, all);
    f.insert("seq_writes_per_cr", seq_writes as f64 / s.seq as f64);
    f.insert(
        "burst_writes",
        audit.count(user, marks.burst, marks.burst_end, all) as f64,
    );
    f.insert(
        "burst_5xx",
        audit.count(user, marks.burst, marks.burst_end, |w| w.code >= 500) as f64,
    );
    f.insert(
        "idle_writes",
        audit.count(user, marks.idle, marks.idle_end, all) as f64,
    );
    let restart_writes = audit.count(user, marks.restart, marks.restart_end, all) as f64;
    f.insert("restart_writes", restart_writes);
    f.insert(
        "restart_writes_per_reconcile",
        if reconciles > 0.0 {
            restart_writes / reconciles
        } else {
            f64::NAN
        },
    );
    Ok(())
}

fn all(_: &AuditWrite) -> bool {
    true
}

fn fmt(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.decimals$}")
    }
}

/// upstream / ours; above 1: ours takes less.
fn ratio(up: f64, ours: f64) -> String {
    if up.is_nan() || ours.is_nan() {
        "–".into()
    } else if ours == 0.0 {
        if up == 0.0 { "=".into() } else { "∞".into() }
    } else {
        format!("{:.2}", up / ours)
    }
}

fn report(
    s: &Settings,
    results: &[PassResult],
    failure: Option<&str>,
) -> (String, serde_json::Value) {
    let of = |k: Kind| -> Vec<&PassResult> { results.iter().filter(|r| r.kind == k).collect() };
    let (up, ours) = (of(Kind::Upstream), of(Kind::Ours));
    let mut md = String::new();
    md.push_str("# make bench-upstream: the upstream Go operator vs ours\n\n");
    md.push_str(&format!(
        "upstream: {} · ours: {} · passes: {} · {} sequential, {} at once from {} clients, idle {} s, quiet {} s (cap {} s) · order: {} · load average at each pass start: {}\n\n",
        s.upstream_version,
        s.ours_rev,
        s.passes,
        s.seq,
        s.burst,
        s.clients,
        s.idle.as_secs(),
        s.quiet.as_secs(),
        s.settle_max.as_secs(),
        results
            .iter()
            .map(|r| format!("{}-{}", r.kind.name(), r.index))
            .collect::<Vec<_>>()
            .join(", "),
        results
            .iter()
            .map(|r| r.load.clone())
            .collect::<Vec<_>>()
            .join(", "),
    ));
    if let Some(e) = failure {
        md.push_str(&format!("**The run stopped early:** {e}\n\n"));
    }
    md.push_str("Medians over each operator's passes; ratio = upstream / ours (above 1: ours takes less time, CPU, memory or writes).\n\n");
    md.push_str("| measure | upstream | ours | ratio up/ours | passes (upstream vs ours) |\n|---|---:|---:|---:|---|\n");
    let mut rows = Vec::new();
    for (key, label, d) in figures(s) {
        let vals = |rs: &[&PassResult]| -> Vec<f64> {
            rs.iter()
                .map(|r| r.figures.get(key).copied().unwrap_or(f64::NAN))
                .collect()
        };
        let (u, o) = (vals(&up), vals(&ours));
        let (mu, mo) = (median(&u), median(&o));
        let join = |v: &[f64]| v.iter().map(|x| fmt(*x, d)).collect::<Vec<_>>().join("/");
        md.push_str(&format!(
            "| {label} | {} | {} | {} | {} vs {} |\n",
            fmt(mu, d),
            fmt(mo, d),
            ratio(mu, mo),
            join(&u),
            join(&o)
        ));
        let num = |x: f64| if x.is_nan() { json!(null) } else { json!(x) };
        rows.push(json!({
            "key": key, "label": label,
            "upstream_median": num(mu), "ours_median": num(mo),
            "upstream_passes": u.iter().map(|x| num(*x)).collect::<Vec<_>>(),
            "ours_passes": o.iter().map(|x| num(*x)).collect::<Vec<_>>(),
        }));
    }
    md.push_str("\n## Operator writes by phase (verb resource code: count)\n\n");
    for r in results {
        md.push_str(&format!("### {}-{}\n\n", r.kind.name(), r.index));
        for (phase, b) in &r.breakdown {
            let items: Vec<String> = b.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            md.push_str(&format!(
                "- {phase}: {}\n",
                if items.is_empty() {
                    "none".to_string()
                } else {
                    items.join(", ")
                }
            ));
        }
        md.push('\n');
    }
    let json = json!({
        "upstream": s.upstream_version, "ours": s.ours_rev,
        "settings": {"passes": s.passes, "sequential": s.seq, "burst": s.burst, "clients": s.clients,
                     "idle_seconds": s.idle.as_secs(), "quiet_seconds": s.quiet.as_secs(),
                     "settle_max_seconds": s.settle_max.as_secs()},
        "passes": results.iter().map(|r| json!({"operator": r.kind.name(), "index": r.index, "load_average": r.load})).collect::<Vec<_>>(),
        "failure": failure,
        "figures": rows,
    });
    (md, json)
}

#[tokio::main]
async fn main() -> Result<()> {
    let s = Settings::from_env()?;
    let client = llsd_test_support::client().await?;
    eprintln!("==> removing what an earlier run may have left (CRD, webhooks, namespaces)");
    uninstall()?;
    let audit = AuditTail::start(&s.audit_log, "bench-")?;
    let mut results = Vec::new();
    let mut failure = None;
    for (kind, index) in s.order() {
        match pass(&s, &client, &audit, kind, index).await {
            Ok(r) => results.push(r),
            Err(e) => {
                eprintln!("ERROR in pass {}-{index}: {e:#}", kind.name());
                failure = Some(format!("pass {}-{index}: {e:#}", kind.name()));
                break;
            }
        }
    }
    let (md, json) = report(&s, &results, failure.as_deref());
    println!("{md}");
    let md_path = s.dir.join("last-run.md");
    let json_path = s.dir.join("last-run.json");
    std::fs::write(&md_path, &md).with_context(|| format!("writing {}", md_path.display()))?;
    std::fs::write(&json_path, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    eprintln!(
        "==> written {} and {}",
        md_path.display(),
        json_path.display()
    );
    match failure {
        Some(e) => bail!(e),
        None => Ok(()),
    }
}
