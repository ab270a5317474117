//! Issue 19 §1: the chaos suite, on the local control plane with kwok. The operator is killed
//! with SIGKILL at random moments while CRs are created, updated and deleted; the API server
//! and etcd are killed and started again during a rollout; the leader of two replicas is
//! killed; the webhook process is down while users apply. After each, every CR converges to the
//! config its final spec implies, nothing is orphaned or duplicated, no Deployment rolls more
//! often than its spec changed, and no Secret value shows anywhere but in a Secret.
//!
//! Size: `LLSD_CHAOS_CRS` (default 40) CRs and `LLSD_CHAOS_KILLS` (default 20) kills; `make
//! chaos` runs 100 and 50. `LLSD_CHAOS_SEED` repeats a run (every failure prints its seed).
//! The figures (kills, time to converge, leader takeover) go to stderr and to
//! `$LLSD_CACHE_DIR/chaos/last-run.txt`.

#[path = "../support/tests/common/mod.rs"]
mod common;

use anyhow::{Context, Result, bail, ensure};
use common::operator::Operator;
use common::samples::assert_no_secret_values_in;
use common::{llsd_api, object};
use llama_stack_operator::api::crd;
use llsd_test_support::k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use llsd_test_support::k8s_openapi::api::coordination::v1::Lease;
use llsd_test_support::k8s_openapi::api::core::v1::{ConfigMap, Secret};
use llsd_test_support::kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use llsd_test_support::kube::core::DynamicObject;
use llsd_test_support::{TestNamespace, client, eventually};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// One chaos test at a time: they restart shared components and load the two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CONVERGE: Duration = Duration::from_secs(240);

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: a seeded, reproducible random source (no dependency for a few numbers).
struct Rng(u64);

impl Rng {
    fn new() -> (Rng, u64) {
        let seed = std::env::var("LLSD_CHAOS_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            })
            | 1;
        (Rng(seed), seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Appends a figure to the run's record (stderr and `$LLSD_CACHE_DIR/chaos/last-run.txt`).
fn record(line: &str) {
    eprintln!("chaos: {line}");
    let dir = common::operator::cache_dir().ok().map(|d| d.join("chaos"));
    if let Some(dir) = dir
        && std::fs::create_dir_all(&dir).is_ok()
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("last-run.txt"))
    {
        use std::io::Write;
        let _ = writeln!(f, "{} {line}", unix_time());
    }
}

fn unix_time() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("t={secs}")
}

/// The Secret every CR's provider reads its key from; its value must stay in the Secret.
const SECRET: &str = "chaos-llm";

fn secret_value(seed: u64) -> String {
    format!("chaos-api-key-{seed:x}")
}

/// CR `i`'s spec at version `v`: each version is another config (the model list changes).
fn spec(i: u64, v: u64) -> Value {
    json!({
        "distribution": {"name": "starter"},
        "providers": {"inference": [{
            "provider": "vllm",
            "endpoint": format!("http://vllm-{i}.models.svc:8000/v1"),
            "apiKey": {"secretKeyRef": {"name": SECRET, "key": "token"}},
        }]},
        "resources": {"models": [{"name": format!("model-{i}-v{v}")}]},
    })
}

async fn create_secret(ns: &TestNamespace, value: &str) -> Result<()> {
    let s: Secret = serde_json::from_value(json!({
        "metadata": {"name": SECRET}, "stringData": {"token": value}
    }))?;
    ns.api::<Secret>()
        .create(&PostParams::default(), &s)
        .await?;
    Ok(())
}

/// Retries a write the API server refused for a while (it is being restarted, or its webhook
/// is): chaos is the operator's to survive, not the test driver's.
async fn persist<F, Fut, T>(what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, llsd_test_support::kube::Error>>,
{
    let start = Instant::now();
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if start.elapsed() < Duration::from_secs(90) => {
                note_retry(what, &e);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("{what} (retried for 90 s)")),
        }
    }
}

/// With `LLSD_CHAOS_VERBOSE`, says which write is being retried and why.
fn note_retry(what: &str, e: &llsd_test_support::kube::Error) {
    if std::env::var_os("LLSD_CHAOS_VERBOSE").is_some() {
        eprintln!("chaos: {what}: {e}");
    }
}

/// Creates `<prefix><i>` for each `i` at spec version 0; what the test then expects of them.
async fn create_crs(
    api: &Api<DynamicObject>,
    prefix: &str,
    ids: std::ops::Range<u64>,
) -> Result<BTreeMap<String, Expected>> {
    let mut expected = BTreeMap::new();
    for i in ids {
        let name = format!("{prefix}{i}");
        api.create(
            &PostParams::default(),
            &object("v1alpha2", &name, spec(i, 0)),
        )
        .await?;
        expected.insert(
            name,
            Expected {
                spec: Some(spec(i, 0)),
                versions: 1,
            },
        );
    }
    Ok(expected)
}

/// Moves CR `name` (`i`) to its next spec version, retrying while the API server refuses.
async fn update_cr(api: &Api<DynamicObject>, e: &mut Expected, name: &str, i: u64) -> Result<()> {
    let next = spec(i, e.versions);
    let patch = json!({"spec": {"resources": next["resources"].clone()}});
    let (pp, patch) = (PatchParams::default(), Patch::Merge(&patch));
    persist("update", || api.patch(name, &pp, &patch)).await?;
    e.spec = Some(next);
    e.versions += 1;
    Ok(())
}

/// What the test expects of one CR at the end.
#[derive(Debug, Clone)]
struct Expected {
    /// The last spec written; None once deleted.
    spec: Option<Value>,
    /// How many specs it went through (each a different config).
    versions: u64,
}

/// Every CR converged: Ready at its generation, the generated config exactly what the final
/// spec implies, the Deployment reading it; deleted ones gone with their objects; at most the
/// retained generated ConfigMaps, none without a live owner; ReplicaSets (rollouts) no more
/// than spec versions. Returns how long convergence took.
async fn assert_converged(
    client: &llsd_test_support::kube::Client,
    ns: &TestNamespace,
    expected: &BTreeMap<String, Expected>,
) -> Result<Duration> {
    let started = Instant::now();
    let api = llsd_api(client, ns.name(), "v1alpha2");
    let cms: Api<ConfigMap> = ns.api();
    let deps: Api<Deployment> = ns.api();
    // The config each live CR's final spec implies, from the engine the operator embeds.
    let mut want: BTreeMap<String, String> = BTreeMap::new();
    for (name, e) in expected {
        if let Some(spec) = &e.spec {
            let mut obj = serde_json::to_value(object("v1alpha2", name, spec.clone()))?;
            obj["metadata"]["namespace"] = json!(ns.name());
            let req = llama_stack_config::resource::request_from_object(obj)
                .map_err(anyhow::Error::msg)?;
            let out = llama_stack_config::generate(&req)
                .map_err(|e| anyhow::anyhow!("the final spec of {name} is refused: {e:?}"))?;
            want.insert(name.clone(), out.config_yaml);
        }
    }
    eventually("every CR converged to its final spec", CONVERGE, || async {
        let live: BTreeMap<String, DynamicObject> = api
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|o| Some((o.metadata.name.clone()?, o)))
            .collect();
        let names: BTreeSet<&String> = live.keys().collect();
        let want_names: BTreeSet<&String> = want.keys().collect();
        if names != want_names {
            bail!(
                "live CRs {} differ from expected {}",
                names.len(),
                want_names.len()
            );
        }
        for (name, cr) in &live {
            let s = &cr.data["status"];
            if s["phase"] != "Ready" || s["observedGeneration"] != json!(cr.metadata.generation) {
                bail!(
                    "{name}: phase {} at {} of {:?}",
                    s["phase"],
                    s["observedGeneration"],
                    cr.metadata.generation
                );
            }
            let cm_name = s["configGeneration"]["configMapName"]
                .as_str()
                .unwrap_or("");
            let cm = cms
                .get(cm_name)
                .await
                .with_context(|| format!("{name}: {cm_name}"))?;
            let got = cm
                .data
                .and_then(|mut d| d.remove("config.yaml"))
                .unwrap_or_default();
            ensure!(
                got == want[name],
                "{name}: {cm_name} is not the final spec's config"
            );
            let dep = deps.get(name).await?;
            let mounted = serde_json::to_string(&dep.spec.and_then(|s| s.template.spec))?;
            ensure!(
                mounted.contains(&format!("\"{cm_name}\"")),
                "{name}: the Deployment does not read {cm_name}"
            );
        }
        // Children: generated ConfigMaps and Deployments of deleted CRs are gone (the garbage
        // collector follows the owner references); per CR, no two with the same content.
        let uids: BTreeMap<String, String> = live
            .iter()
            .map(|(n, o)| (o.metadata.uid.clone().unwrap_or_default(), n.clone()))
            .collect();
        let mut per_cr: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let generated = cms
            .list(&ListParams::default().labels("app.kubernetes.io/component=generated-config"))
            .await?;
        for cm in generated.items {
            let owner = cm.metadata.owner_references.clone().unwrap_or_default();
            let Some(o) = owner.iter().find(|o| o.kind == "LlamaStackDistribution") else {
                bail!("generated ConfigMap {:?} has no owner", cm.metadata.name);
            };
            let Some(cr) = uids.get(&o.uid) else {
                bail!(
                    "generated ConfigMap {:?} is orphaned (owner {} gone)",
                    cm.metadata.name,
                    o.name
                );
            };
            let content = cm
                .data
                .and_then(|mut d| d.remove("config.yaml"))
                .unwrap_or_default();
            per_cr.entry(cr.clone()).or_default().push(content);
        }
        for (cr, contents) in &per_cr {
            let distinct: BTreeSet<&String> = contents.iter().collect();
            ensure!(
                distinct.len() == contents.len(),
                "{cr}: duplicate generated ConfigMaps"
            );
            ensure!(
                contents.len() <= 3,
                "{cr}: {} generated ConfigMaps kept (retention is 2 plus the one in use)",
                contents.len()
            );
        }
        for d in deps.list(&ListParams::default()).await?.items {
            let name = d.metadata.name.clone().unwrap_or_default();
            ensure!(
                live.contains_key(&name),
                "Deployment {name} outlived its CR"
            );
        }
        // Rollouts: one ReplicaSet per pod template the Deployment had.
        let mut rs_per_dep: BTreeMap<String, u64> = BTreeMap::new();
        for rs in ns
            .api::<ReplicaSet>()
            .list(&ListParams::default())
            .await?
            .items
        {
            for o in rs.metadata.owner_references.unwrap_or_default() {
                if o.kind == "Deployment" {
                    *rs_per_dep.entry(o.name).or_default() += 1;
                }
            }
        }
        for (name, e) in expected {
            if e.spec.is_some() {
                let rolled = rs_per_dep.get(name).copied().unwrap_or(0);
                ensure!(
                    rolled <= e.versions,
                    "{name}: {rolled} rollouts (ReplicaSets) for {} spec versions",
                    e.versions
                );
            }
        }
        Ok(Some(()))
    })
    .await?;
    Ok(started.elapsed())
}

/// §1.1: SIGKILL at random moments while CRs are created, updated and deleted.
#[tokio::test]
async fn the_operator_killed_at_random_moments_loses_nothing() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let (mut rng, seed) = Rng::new();
    let n = env_num("LLSD_CHAOS_CRS", 40);
    let kills = env_num("LLSD_CHAOS_KILLS", 20);
    let client = client().await?;
    common::install_crd(&client, crd::crd()?).await?;
    let ns = TestNamespace::create(&client, "chaos-kill").await?;
    let value = secret_value(seed);
    create_secret(&ns, &value).await?;
    let api = llsd_api(&client, ns.name(), "v1alpha2");

    // The script: every CR created, a third updated once or twice, a fifth deleted, shuffled
    // so that updates and deletes follow their create.
    #[derive(Debug)]
    enum Op {
        Create(u64),
        Update(u64),
        Delete(u64),
    }
    let mut ops: Vec<Op> = Vec::new();
    let mut pending: Vec<u64> = (0..n).collect();
    let mut created: Vec<u64> = Vec::new();
    let mut deleted: BTreeSet<u64> = BTreeSet::new();
    while !pending.is_empty() || ops.len() < (n as usize) * 2 {
        let roll = rng.below(10);
        if (roll < 5 || created.is_empty()) && !pending.is_empty() {
            let i = pending.remove(rng.below(pending.len() as u64) as usize);
            created.push(i);
            ops.push(Op::Create(i));
        } else if roll < 9 || created.len() < 2 {
            let alive: Vec<u64> = created
                .iter()
                .copied()
                .filter(|i| !deleted.contains(i))
                .collect();
            if alive.is_empty() {
                continue;
            }
            ops.push(Op::Update(alive[rng.below(alive.len() as u64) as usize]));
        } else {
            let alive: Vec<u64> = created
                .iter()
                .copied()
                .filter(|i| !deleted.contains(i))
                .collect();
            if alive.len() <= 1 || deleted.len() as u64 >= n / 5 {
                continue;
            }
            let i = alive[rng.below(alive.len() as u64) as usize];
            deleted.insert(i);
            ops.push(Op::Delete(i));
        }
    }

    let mut logs = String::new();
    let mut op = Operator::start(ns.name(), &[]).await?;
    let started = Instant::now();
    let driver = async {
        let mut expected: BTreeMap<String, Expected> = BTreeMap::new();
        for (k, o) in ops.iter().enumerate() {
            // 60..180 ms apart: a user's or a GitOps tool's pace, spread over the kills.
            tokio::time::sleep(Duration::from_millis(60 + (k as u64 * 7919 % 7) * 20)).await;
            match o {
                Op::Create(i) => {
                    let name = format!("c{i}");
                    let obj = object("v1alpha2", &name, spec(*i, 0));
                    let pp = PostParams::default();
                    persist("create", || api.create(&pp, &obj)).await?;
                    expected.insert(
                        name,
                        Expected {
                            spec: Some(spec(*i, 0)),
                            versions: 1,
                        },
                    );
                }
                Op::Update(i) => {
                    let name = format!("c{i}");
                    let e = expected.get_mut(&name).context("updated before created")?;
                    update_cr(&api, e, &name, *i).await?;
                }
                Op::Delete(i) => {
                    let name = format!("c{i}");
                    let dp = DeleteParams::default();
                    persist("delete", || api.delete(&name, &dp)).await?;
                    if let Some(e) = expected.get_mut(&name) {
                        e.spec = None;
                    }
                }
            }
        }
        anyhow::Ok(expected)
    };
    let killer = async {
        let mut done = 0;
        let mut restart_ms = Vec::new();
        while done < kills {
            tokio::time::sleep(Duration::from_millis(150 + rng.below(1200))).await;
            logs.push_str(&op.full_log());
            op.stop();
            done += 1;
            let t = Instant::now();
            op = Operator::start(ns.name(), &[]).await?;
            restart_ms.push(t.elapsed().as_millis() as u64);
        }
        anyhow::Ok(restart_ms)
    };
    let (expected, restart_ms) =
        tokio::try_join!(driver, killer).with_context(|| format!("seed {seed}"))?;
    let churn = started.elapsed();
    let converge = assert_converged(&client, &ns, &expected)
        .await
        .with_context(|| format!("seed {seed}; the last operator's log:\n{}", op.log_text()))?;
    logs.push_str(&op.full_log());
    assert_no_secret_values_in(ns.name(), &logs, &[&value])?;
    let live = expected.values().filter(|e| e.spec.is_some()).count();
    let updates: u64 = expected.values().map(|e| e.versions - 1).sum();
    record(&format!(
        "sigkill: seed {seed}: {n} CRs ({updates} updates, {} deleted, {live} live), {kills} SIGKILLs in {:.1} s of churn (restart to /readyz median {} ms), converged {:.1} s after the last kill",
        n as usize - live,
        churn.as_secs_f64(),
        median(&restart_ms),
        converge.as_secs_f64()
    ));
    ns.delete().await
}

fn median(v: &[u64]) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// §1.2: kube-apiserver, then etcd, killed and started again during a rollout. The operator
/// keeps running (same process), reconnects its watches and converges.
#[tokio::test]
async fn the_api_server_and_etcd_restart_during_a_rollout() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let client = client().await?;
    common::install_crd(&client, crd::crd()?).await?;
    let ns = TestNamespace::create(&client, "chaos-cp").await?;
    let (_, seed) = Rng::new();
    let value = secret_value(seed);
    create_secret(&ns, &value).await?;
    let api = llsd_api(&client, ns.name(), "v1alpha2");
    let mut op = Operator::start(ns.name(), &[]).await?;
    let n = 8;
    let mut expected = create_crs(&api, "r", 0..n).await?;
    assert_converged(&client, &ns, &expected)
        .await
        .with_context(|| op.log_text())?;
    for component in ["kube-apiserver", "etcd"] {
        let reconciles = op.counter("llsd_reconciles_total").await?;
        // The rollout: every CR gets a new config; the component dies in the middle of it.
        let half = n / 2;
        for i in 0..n {
            if i == half {
                restart(component).await?;
            }
            let name = format!("r{i}");
            let e = expected.get_mut(&name).context("known CR")?;
            update_cr(&api, e, &name, i).await?;
        }
        let converge = assert_converged(&client, &ns, &expected)
            .await
            .with_context(|| {
                format!(
                    "after restarting {component}; operator log:\n{}",
                    op.log_text()
                )
            })?;
        ensure!(
            op.running(),
            "the operator process exited after {component} restarted:\n{}",
            op.log_text()
        );
        let after = op.counter("llsd_reconciles_total").await?;
        ensure!(
            after > reconciles,
            "no reconcile after {component} restarted"
        );
        record(&format!(
            "{component} SIGKILLed and started after 3 s during a rollout of {n} CRs: same operator process, converged {:.1} s after the rollout's last write",
            converge.as_secs_f64()
        ));
    }
    assert_no_secret_values_in(ns.name(), &op.full_log(), &[&value])?;
    ns.delete().await
}

async fn restart(component: &str) -> Result<()> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cluster/restart");
    // Not on the test's runtime thread: the script sleeps 3 s and waits for readiness.
    let out = tokio::process::Command::new(&script)
        .args([component, "3"])
        .output()
        .await
        .with_context(|| format!("running {}", script.display()))?;
    ensure!(
        out.status.success(),
        "{} {component} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// §1.4: two replicas with --leader-elect; the leader is SIGKILLed in the middle of a burst.
/// The time until the other reconciles a new CR is recorded; every CR of the burst converges
/// with one rollout and one generated ConfigMap: the dead leader's half-done work did no harm.
#[tokio::test]
async fn the_leader_killed_mid_burst_is_replaced_without_harm() -> Result<()> {
    let _serial = SERIAL.lock().await;
    let client = client().await?;
    common::install_crd(&client, crd::crd()?).await?;
    let ns = TestNamespace::create(&client, "chaos-lead").await?;
    let (_, seed) = Rng::new();
    let value = secret_value(seed);
    create_secret(&ns, &value).await?;
    let leases: Api<Lease> = ns.api();
    let api = llsd_api(&client, ns.name(), "v1alpha2");
    let mut first = Operator::start(ns.name(), &["--leader-elect"]).await?;
    let leader = eventually("a Lease holder", Duration::from_secs(30), || async {
        common::operator::lease_holder(&leases).await
    })
    .await?;
    let second = Operator::start(ns.name(), &["--leader-elect"]).await?;
    let mut expected = create_crs(&api, "l", 0..10).await?;
    // Mid-burst: the leader has some of them done, some half-done, some not begun.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut logs = first.full_log();
    first.stop();
    let killed = Instant::now();
    api.create(
        &PostParams::default(),
        &object("v1alpha2", "after", spec(99, 0)),
    )
    .await?;
    expected.insert(
        "after".into(),
        Expected {
            spec: Some(spec(99, 0)),
            versions: 1,
        },
    );
    let deps: Api<Deployment> = ns.api();
    eventually(
        "the new leader's Deployment for the new CR",
        Duration::from_secs(60),
        || async { Ok(deps.get_opt("after").await?.map(|_| ())) },
    )
    .await
    .with_context(|| second.log_text())?;
    let takeover = killed.elapsed();
    let converge = assert_converged(&client, &ns, &expected)
        .await
        .with_context(|| second.log_text())?;
    for name in expected.keys() {
        let rs = ns
            .api::<ReplicaSet>()
            .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={name}")))
            .await?;
        ensure!(
            rs.items.len() == 1,
            "{name}: {} ReplicaSets after the takeover",
            rs.items.len()
        );
    }
    let now = common::operator::lease_holder(&leases).await?;
    ensure!(
        now.is_some() && now.as_deref() != Some(leader.as_str()),
        "the Lease moved: {now:?}"
    );
    logs.push_str(&second.full_log());
    assert_no_secret_values_in(ns.name(), &logs, &[&value])?;
    record(&format!(
        "leader SIGKILLed 150 ms into a burst of 10 CRs: the new leader created the next CR's Deployment {:.1} s after the kill (Lease 12 s, renew grace 4 s: the defaults); all 11 converged {:.1} s later, one ReplicaSet each",
        takeover.as_secs_f64(),
        converge.as_secs_f64()
    ));
    ns.delete().await
}

/// §1.5: the webhook process down. With failurePolicy Fail (what deploy/ ships), `kubectl
/// apply` is refused, naming the webhook, for both versions; nothing is stored unvalidated or
/// unconverted; with the process back, the same apply goes through.
#[tokio::test]
async fn with_the_webhook_process_down_nothing_unchecked_is_stored() -> Result<()> {
    use common::operator::{finish_converting, start_converting};
    use llsd_test_support::k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    let _serial = SERIAL.lock().await;
    let client = client().await?;
    let ns = TestNamespace::create(&client, "chaos-hook").await?;
    // The operator injects its CA into the configuration named by its flag, which the test
    // harness sets to `absent-<ns>`: at start and at every certificate check (each second here).
    let name = format!("absent-{}", ns.name());
    let _validating =
        llsd_test_support::DeleteOnDrop::<ValidatingWebhookConfiguration>::new(name.clone())
            .await?;
    let op = start_converting(&client, ns.name(), &["--cert-check-seconds", "1"]).await?;
    let result = webhook_down(&client, ns.name(), &name, op).await;
    finish_converting(&client, ns, result).await
}

async fn webhook_down(
    client: &llsd_test_support::kube::Client,
    ns: &str,
    name: &str,
    mut op: Operator,
) -> Result<()> {
    use llsd_test_support::k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    use llsd_test_support::kubectl::kubectl;
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/webhook/validating.yaml"),
    )?;
    ensure!(
        shipped.contains("failurePolicy: Fail"),
        "deploy/ ships failurePolicy Fail"
    );
    let mut hook = common::admission_webhook(
        "validate.llamastack.io",
        format!("https://127.0.0.1:{}/validate", op.webhook_port),
        "",
        ns,
        &["v1alpha1", "v1alpha2"],
    );
    hook["clientConfig"]
        .as_object_mut()
        .map(|c| c.remove("caBundle"));
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    vwcs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}, "webhooks": [hook]}))?,
    )
    .await?;
    eventually(
        "the operator's CA in the webhook configuration",
        Duration::from_secs(60),
        || async {
            let v = vwcs.get(name).await?;
            let injected = v
                .webhooks
                .unwrap_or_default()
                .iter()
                .all(|w| w.client_config.ca_bundle.is_some());
            Ok(injected.then_some(()))
        },
    )
    .await
    .with_context(|| op.log_text())?;
    common::cr::wait_converting(&llsd_api(client, ns, "v1alpha1")).await?;
    let v2 = |n: &str, endpoint: &str| {
        format!(
            "apiVersion: llamastack.io/v1alpha2\nkind: LlamaStackDistribution\nmetadata: {{name: {n}}}\nspec:\n  distribution: {{name: starter}}\n  providers:\n    inference: [{{provider: vllm, endpoint: '{endpoint}'}}]\n"
        )
    };
    let v1 = |n: &str| {
        format!(
            "apiVersion: llamastack.io/v1alpha1\nkind: LlamaStackDistribution\nmetadata: {{name: {n}}}\nspec:\n  replicas: 1\n  server:\n    distribution: {{name: starter}}\n"
        )
    };
    let apply = |yaml: String| kubectl(&["-n", ns, "apply", "-f", "-"], Some(&yaml));
    // Up: both versions stored, and the webhook is the one refusing what CEL cannot see.
    apply(v2("up2", "http://vllm:8000/v1"))?;
    apply(v1("up1"))?;
    // A Secret that does not exist: only the webhook looks it up.
    let missing = "apiVersion: llamastack.io/v1alpha2\nkind: LlamaStackDistribution\nmetadata: {name: nokey}\nspec:\n  distribution: {name: starter}\n  providers:\n    inference:\n    - provider: vllm\n      endpoint: 'http://a:1/v1'\n      apiKey: {secretKeyRef: {name: no-such-secret, key: token}}\n";
    let refused = apply(missing.to_string())
        .err()
        .context("a missing Secret is refused")?;
    ensure!(
        format!("{refused:#}").contains("no-such-secret"),
        "refused by the webhook: {refused:#}"
    );

    op.stop();
    let down2 = apply(v2("down2", "http://vllm:8000/v1"))
        .err()
        .context("a v1alpha2 apply with the webhook down is refused")?;
    let down2 = format!("{down2:#}");
    ensure!(
        down2.contains("failed calling webhook \"validate.llamastack.io\""),
        "v1alpha2: {down2}"
    );
    let down1 = apply(v1("down1"))
        .err()
        .context("a v1alpha1 apply with the webhook down is refused")?;
    let down1 = format!("{down1:#}");
    // Refused at the first webhook on its way: validation of v1alpha1, or conversion to the
    // stored version.
    ensure!(
        down1.contains("failed calling webhook \"validate.llamastack.io\"")
            || down1.contains("conversion webhook"),
        "v1alpha1: {down1}"
    );
    let stored: BTreeSet<String> = llsd_api(client, ns, "v1alpha2")
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect();
    ensure!(
        stored == BTreeSet::from(["up1".to_string(), "up2".to_string()]),
        "stored with the webhook down: {stored:?}"
    );
    let said = |s: &str| {
        let from = s.find("Error from server").unwrap_or(0);
        s[from..].chars().take(260).collect::<String>()
    };
    record(&format!(
        "webhook process down: v1alpha2 apply says: {}; v1alpha1 apply says: {}; stored: {stored:?}",
        said(&down2),
        said(&down1)
    ));

    // Back on the same port: the same applies go through.
    let op = Operator::start_with_webhook_port(ns, op.webhook_port, &[]).await?;
    eventually(
        "the apply with the webhook back",
        Duration::from_secs(30),
        || async { Ok(apply(v2("down2", "http://vllm:8000/v1")).ok().map(|_| ())) },
    )
    .await
    .with_context(|| op.log_text())?;
    apply(v1("down1"))?;
    Ok(())
}

/// §1.3: the loopback registry killed and started again while CRs with a labelled image and
/// an external provider reconcile. Unchanged CRs keep the digest their tags last resolved to
/// (Ready, nothing rolled); CRs changed to tags never resolved say RegistryUnreachable with
/// the registry's name and keep their running Deployment; once the registry is back they
/// converge without another edit, each rolled at most once.
#[tokio::test]
async fn a_registry_outage_keeps_the_servers_and_recovers_without_edits() -> Result<()> {
    use llsd_test_support::registry::fixtures::{labelled, provider_image};
    use llsd_test_support::registry::{RegistryOptions, TestRegistry};
    let _serial = SERIAL.lock().await;
    let mut reg = TestRegistry::start(RegistryOptions::default()).await?;
    let host = reg.host();
    reg.push(
        "acme/stack",
        "1.0",
        &labelled(&common::cr::starter_config("chaos-1")?),
    )
    .await?;
    reg.push(
        "acme/stack",
        "1.1",
        &labelled(&common::cr::starter_config("chaos-2")?),
    )
    .await?;
    reg.push("acme/prov", "1.0", &provider_image()).await?;
    reg.push("acme/prov", "1.1", &provider_image()).await?;
    let (client, ns, op) =
        common::operator::setup("chaos-reg", &["--registry-plain-http", &host]).await?;
    let api = llsd_api(&client, ns.name(), "v1alpha2");
    let spec = |tag: &str| {
        [
            (
                "img",
                json!({"distribution": {"image": format!("{host}/acme/stack:{tag}")}}),
            ),
            (
                "ext",
                json!({"distribution": {"name": "starter"},
                "externalProviders": {"inference": [{"providerId": "prov", "image": format!("{host}/acme/prov:{tag}")}]}}),
            ),
        ]
    };
    for (name, s) in spec("1.0") {
        api.create(&PostParams::default(), &object("v1alpha2", name, s))
            .await?;
    }
    let deps: Api<Deployment> = ns.api();
    let template = |name: &'static str| {
        let deps = deps.clone();
        async move { anyhow::Ok(deps.get(name).await?.spec.map(|s| s.template)) }
    };
    let mut before = BTreeMap::new();
    for (name, _) in spec("1.0") {
        common::cr::wait_phase(&api, name, "Ready")
            .await
            .with_context(|| op.log_text())?;
        before.insert(name, template(name).await?);
    }

    reg.kill()?;
    let outage = Instant::now();
    // 1. Nothing changed: every CR reconciles (the operator ConfigMap concerns them all) and
    // finds the registry gone; each keeps the digest its tag last resolved to.
    let reconciles = op.counter("llsd_reconciles_total").await?;
    ns.api::<ConfigMap>()
        .patch(
            "llama-stack-operator-config",
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": {"ingress-domain": "apps.chaos.test"}})),
        )
        .await?;
    eventually(
        "both CRs reconciled in the outage",
        Duration::from_secs(60),
        || async {
            Ok((op.counter("llsd_reconciles_total").await? >= reconciles + 2.0).then_some(()))
        },
    )
    .await?;
    ensure!(
        op.full_log()
            .contains("registry unavailable: keeping the digest this tag last resolved to"),
        "the outage was met and logged:\n{}",
        op.log_text()
    );
    for (name, _) in spec("1.0") {
        let cr = api.get(name).await?;
        ensure!(
            common::cr::phase(&cr) == "Ready",
            "{name}: {}",
            common::cr::phase(&cr)
        );
        ensure!(
            template(name).await? == before[name],
            "{name}: rolled in the outage"
        );
    }
    // 2. Changed to tags never resolved: the status says why; the servers keep running.
    let mut said = Vec::new();
    for (name, s) in spec("1.1") {
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": s})),
        )
        .await?;
    }
    for (name, _) in spec("1.1") {
        let cr = common::cr::wait_cr(&api, name, Duration::from_secs(60), |o| {
            common::cr::condition(o, "ConfigGenerated")
                .is_some_and(|c| c["reason"] == "RegistryUnreachable")
        })
        .await
        .with_context(|| op.log_text())?;
        let c = common::cr::condition(&cr, "ConfigGenerated")
            .cloned()
            .unwrap_or_default();
        let message = c["message"].as_str().unwrap_or_default().to_string();
        ensure!(
            message.contains(&host),
            "{name}: the status names the registry: {message}"
        );
        said.push(format!(
            "{name}: {} ({})",
            c["reason"],
            message.chars().take(140).collect::<String>()
        ));
        ensure!(
            template(name).await? == before[name],
            "{name}: the running Deployment changed"
        );
        let pods = kube_pods(&client, ns.name(), name).await?;
        ensure!(pods > 0, "{name}: its pods are gone");
    }
    // A while longer: the retries meet the outage again and change nothing.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for (name, _) in spec("1.1") {
        ensure!(
            template(name).await? == before[name],
            "{name}: the running Deployment changed"
        );
    }
    let down_for = outage.elapsed();
    reg.revive().await?;
    let back = Instant::now();
    for (name, _) in spec("1.1") {
        common::cr::wait_cr(&api, name, Duration::from_secs(120), |o| {
            common::cr::phase(o) == "Ready"
                && status_generation_current(o)
                && common::cr::condition(o, "ConfigGenerated")
                    .is_some_and(|c| c["status"] == "True")
        })
        .await
        .with_context(|| op.log_text())?;
    }
    // The labelled image's new tag is another config: one rollout. The provider's new tag is
    // the same content (same digest): none.
    let img_rs = ns
        .api::<ReplicaSet>()
        .list(&ListParams::default().labels("app.kubernetes.io/instance=img"))
        .await?;
    ensure!(
        img_rs.items.len() == 2,
        "img: {} ReplicaSets",
        img_rs.items.len()
    );
    ensure!(
        template("ext").await? == before["ext"],
        "ext: rolled though its digest is the same"
    );
    record(&format!(
        "registry down {:.1} s while 2 CRs (labelled image, external provider) reconciled: unchanged CRs stayed Ready on their last digests; changed ones said {}; Ready again {:.1} s after the registry came back, no edit; rollouts: img 1 (new config), ext 0",
        down_for.as_secs_f64(),
        said.join("; "),
        back.elapsed().as_secs_f64()
    ));
    ns.delete().await
}

fn status_generation_current(o: &DynamicObject) -> bool {
    common::cr::status(o)["observedGeneration"] == json!(o.metadata.generation)
}

async fn kube_pods(
    client: &llsd_test_support::kube::Client,
    ns: &str,
    name: &str,
) -> Result<usize> {
    use llsd_test_support::k8s_openapi::api::core::v1::Pod;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    Ok(pods
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={name}")))
        .await?
        .items
        .len())
}
