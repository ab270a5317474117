//! Load benchmark (issue 19 §4), on the local control plane started by tests/cluster/up:
//!   1. `LLSD_LOAD_CRS` (1,000) CRs created at once: time until all Deployments exist and all
//!      CRs are Ready, the operator's peak RSS and CPU, and its writes per CR (API server audit
//!      log: the admin user's writes minus the benchmark's own);
//!   2. a sustained churn for `LLSD_LOAD_CHURN_MINUTES` (10) at `LLSD_LOAD_CHURN_RATE` (6)
//!      operations a second, one create, one update (a new config) and one delete in turn, so
//!      the count stays put: the operator's RSS every 30 s with what it keeps in memory
//!      (`llsd_kept_objects`), and whether it is flat: the last sample against the first after
//!      a minute of churn, and the slope over the last third of the churn.
//!
//! Run: `tests/bench/load.sh` (builds the release operator, starts the cluster).

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use llsd_test_support::bench::{
    AuditTail, Killed, Seen, http_get, llsd, now_us, proc_stats, readyz, spawn_watches,
    wait_all_ready,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cr(name: &str, model: &str) -> Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "llamastack.io/v1alpha2", "kind": "LlamaStackDistribution",
        "metadata": {"name": name},
        "spec": {"distribution": {"name": "starter"},
                 "providers": {"inference": [{"provider": "vllm", "endpoint": "http://vllm:8000/v1"}]},
                 "resources": {"models": [{"name": model}]}},
    }))?)
}

/// `llsd_kept_objects` by holder, from the operator's `/metrics`.
async fn kept(port: u16) -> BTreeMap<String, i64> {
    let Ok((200, text)) = http_get(port, "/metrics").await else {
        return BTreeMap::new();
    };
    text.lines()
        .filter_map(|l| l.strip_prefix("llsd_kept_objects{holder=\""))
        .filter_map(|l| {
            let (holder, rest) = l.split_once("\"} ")?;
            Some((holder.to_string(), rest.trim().parse().ok()?))
        })
        .collect()
}

/// Least-squares slope of (seconds, KiB) in MiB per minute.
fn slope_mib_per_min(points: &[(f64, u64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + *y as f64));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (*y as f64 - my), b + (x - mx) * (x - mx))
    });
    if den == 0.0 {
        0.0
    } else {
        num / den * 60.0 / 1024.0
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::main]
async fn main() -> Result<()> {
    llsd_test_support::install_crypto_provider();
    let bin = std::env::var("LLSD_OPERATOR_BIN").context("LLSD_OPERATOR_BIN")?;
    let audit_log = std::env::var("LLSD_LOAD_AUDIT_LOG").context("LLSD_LOAD_AUDIT_LOG")?;
    let n = env_num("LLSD_LOAD_CRS", 1000) as usize;
    let minutes = env_num("LLSD_LOAD_CHURN_MINUTES", 10);
    let rate = env_num("LLSD_LOAD_CHURN_RATE", 6).max(1);
    let client = llsd_test_support::client().await?;
    let ns = format!("llsd-load-{}", std::process::id());
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
    )
    .await?;
    let log = std::env::temp_dir().join(format!("load-bench-operator-{ns}.log"));
    eprintln!("operator log: {}", log.display());
    let child = Command::new(&bin)
        .args(["run", "--namespace", &ns, "--watch-namespace", &ns])
        .args(["--bind-address", "127.0.0.1", "--webhook-host", "127.0.0.1"])
        .args([
            "--webhook-port",
            "29543",
            "--metrics-port",
            "29180",
            "--probe-port",
            "29181",
        ])
        .args(["--webhook-secret", "load-cert"])
        .args(["--mutating-webhook-configuration", "absent"])
        .args(["--validating-webhook-configuration", "absent"])
        .env("RUST_LOG", "info")
        .stdout(std::fs::File::create(&log)?)
        .stderr(Stdio::null())
        .spawn()?;
    let child = Killed(child);
    let pid = child.0.id();
    let t0 = Instant::now();
    while !readyz(29181).await {
        if t0.elapsed() > Duration::from_secs(60) {
            bail!("operator not ready in 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    spawn_watches(&client, &ns, seen.clone());
    let audit = AuditTail::start(std::path::Path::new(&audit_log), "llsd-admin")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let api = llsd(&client, &ns);

    // 1. n CRs at once (50 requests in flight: the client's side, not the operator's).
    let cpu0 = proc_stats(pid)?.cpu_seconds;
    let from = now_us();
    let t = Instant::now();
    let names: Vec<String> = (0..n).map(|i| format!("load-{i}")).collect();
    let results: Vec<Result<()>> = futures_util::stream::iter(names.iter().map(|name| {
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &cr(name, "m0")?).await?;
            anyhow::Ok(())
        }
    }))
    .buffer_unordered(50)
    .collect()
    .await;
    for r in results {
        r?;
    }
    let accepted = t.elapsed();
    let deployed = wait_all_ready(&seen, &names, t, Duration::from_secs(1200)).await?;
    let all_ready = t.elapsed();
    // Quiet: no operator write for 5 s (the audit log lags by ~100 ms).
    let mut quiet_since = Instant::now();
    let mut last = audit.count("llsd-admin", from, i64::MAX, |_| true);
    while quiet_since.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = audit.count("llsd-admin", from, i64::MAX, |_| true);
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
    let writes = last.saturating_sub(n);
    let stats = proc_stats(pid)?;
    println!(
        "{n} CRs created at once: accepted by the API server in {:.1} s",
        accepted.as_secs_f64()
    );
    if let Some(d) = deployed {
        println!(
            "{n} CRs: all Deployments created {:.1} s after the first create",
            d.as_secs_f64()
        );
    }
    println!(
        "{n} CRs: all Ready {:.1} s after the first create",
        all_ready.as_secs_f64()
    );
    println!(
        "{n} CRs: operator writes {writes} ({:.2} per CR), CPU {:.1} s, peak RSS {:.1} MiB, RSS now {:.1} MiB",
        writes as f64 / n as f64,
        stats.cpu_seconds - cpu0,
        mib(stats.peak_rss_kib),
        mib(stats.rss_kib)
    );

    // 2. churn: create, update, delete in turn at `rate` a second.
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let end = Instant::now() + Duration::from_secs(minutes * 60);
    let mut live: std::collections::VecDeque<String> = names.into_iter().collect();
    let mut next_id = n;
    let mut ops = 0u64;
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let mut kept_samples: Vec<(f64, BTreeMap<String, i64>)> = Vec::new();
    let churn_start = Instant::now();
    let cpu1 = proc_stats(pid)?.cpu_seconds;
    let mut next_sample = Instant::now();
    let mut tick = tokio::time::interval(period);
    while Instant::now() < end {
        tick.tick().await;
        if Instant::now() >= next_sample {
            let at = churn_start.elapsed().as_secs_f64();
            samples.push((at, proc_stats(pid)?.rss_kib));
            kept_samples.push((at, kept(29180).await));
            next_sample += Duration::from_secs(30);
        }
        match ops % 3 {
            0 => {
                let name = format!("load-{next_id}");
                next_id += 1;
                api.create(&PostParams::default(), &cr(&name, "m0")?)
                    .await?;
                live.push_back(name);
            }
            1 => {
                // The oldest live CR gets a new config (a rollout).
                if let Some(name) = live.pop_front() {
                    let patch =
                        json!({"spec": {"resources": {"models": [{"name": format!("m{ops}")}]}}});
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await?;
                    live.push_back(name);
                }
            }
            _ => {
                if let Some(name) = live.pop_front() {
                    api.delete(&name, &DeleteParams::default()).await?;
                }
            }
        }
        ops += 1;
    }
    let churn = churn_start.elapsed();
    samples.push((churn.as_secs_f64(), proc_stats(pid)?.rss_kib));
    kept_samples.push((churn.as_secs_f64(), kept(29180).await));
    let stats = proc_stats(pid)?;
    println!(
        "churn: {ops} operations in {:.0} s ({:.1}/s), {} CRs at the end, operator CPU {:.1} s",
        churn.as_secs_f64(),
        ops as f64 / churn.as_secs_f64(),
        live.len(),
        stats.cpu_seconds - cpu1
    );
    let line: Vec<String> = samples
        .iter()
        .map(|(s, kib)| format!("{:.0}s {:.1}", s, mib(*kib)))
        .collect();
    println!("churn: operator RSS (MiB) every 30 s: {}", line.join(", "));
    let after_minute = samples
        .iter()
        .find(|(s, _)| *s >= 60.0)
        .map(|(_, k)| *k)
        .unwrap_or(0);
    let last_rss = samples.last().map(|(_, k)| *k).unwrap_or(0);
    println!(
        "churn: RSS after 1 min {:.1} MiB, at the end {:.1} MiB ({:+.1}%), peak {:.1} MiB",
        mib(after_minute),
        mib(last_rss),
        (last_rss as f64 / after_minute.max(1) as f64 - 1.0) * 100.0,
        mib(stats.peak_rss_kib)
    );
    let tail: Vec<(f64, u64)> = samples
        .iter()
        .filter(|(s, _)| *s >= churn.as_secs_f64() * 2.0 / 3.0)
        .copied()
        .collect();
    println!(
        "churn: RSS slope over the last third ({} samples): {:+.3} MiB/min",
        tail.len(),
        slope_mib_per_min(&tail)
    );
    // What the operator keeps, every 5 minutes (the operator publishes it every 15 s).
    let holders: Vec<String> = kept_samples
        .last()
        .map(|(_, k)| k.keys().cloned().collect())
        .unwrap_or_default();
    println!(
        "churn: llsd_kept_objects every 5 min (s: {})",
        holders.join(" ")
    );
    let mut next = 0.0;
    for (at, k) in &kept_samples {
        if *at >= next || Some(at) == kept_samples.last().map(|(a, _)| a) {
            let row: Vec<String> = holders
                .iter()
                .map(|h| k.get(h).map_or("-".into(), |v| v.to_string()))
                .collect();
            println!("churn:   {at:.0}: {}", row.join(" "));
            next = at + 300.0;
        }
    }
    drop(child);
    nss.delete(&ns, &Default::default()).await?;
    Ok(())
}
