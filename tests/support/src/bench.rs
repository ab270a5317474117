//! Shared by the benchmark examples (`controller-bench`, `upstream-bench`): percentiles and
//! medians, a process's peak RSS and CPU from /proc, plain-HTTP probes and Prometheus
//! counters on loopback, and the API server's audit log read as it grows.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::Deserialize;

/// The value at percentile `p` (0..=100) of `sorted` (nearest rank); NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The median of `values` (the mean of the middle two for an even count), NaN values left
/// out; NaN when none is left.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Peak and current resident set (`VmHWM`, `VmRSS`) and CPU time (`utime + stime`) of a
/// running process.
#[derive(Debug, Clone, Copy)]
pub struct ProcStats {
    pub peak_rss_kib: u64,
    pub rss_kib: u64,
    pub cpu_seconds: f64,
}

pub fn proc_stats(pid: u32) -> Result<ProcStats> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib = |key: &str| -> Result<u64> {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {key} in /proc/{pid}/status"))
    };
    let (peak_rss_kib, rss_kib) = (kib("VmHWM:")?, kib("VmRSS:")?);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces and parentheses): state is the
    // first, utime the 12th, stime the 13th.
    let after = stat
        .rsplit_once(')')
        .map(|(_, a)| a)
        .with_context(|| format!("unexpected /proc/{pid}/stat: {stat}"))?;
    let f: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // USER_HZ is 100 on Linux.
    Ok(ProcStats {
        peak_rss_kib,
        rss_kib,
        cpu_seconds: (field(11) + field(12)) / 100.0,
    })
}

/// `GET path` on `127.0.0.1:port` over plain HTTP/1.0: status code and body.
pub async fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no HTTP status line")?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// `/readyz` on `127.0.0.1:port` answers 200.
pub async fn readyz(port: u16) -> bool {
    matches!(http_get(port, "/readyz").await, Ok((200, _)))
}

/// The sum of a Prometheus counter over all its label sets in a `/metrics` text, e.g.
/// `llsd_reconciles_total` or `controller_runtime_reconcile_total`.
pub fn counter_sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// `2026-12-07T10:20:33.123456Z` (RFC 3339 in UTC, as the audit log writes it) as
/// microseconds since the Unix epoch.
pub fn parse_utc_us(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !s.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let frac = &s[19..s.len() - 1];
    let micros = match frac.strip_prefix('.') {
        None if frac.is_empty() => 0,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) => {
            let mut six: String = digits.chars().take(6).collect();
            while six.len() < 6 {
                six.push('0');
            }
            six.parse::<i64>().ok()?
        }
        _ => return None,
    };
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) * 1_000_000) + micros)
}

/// One write request in the audit log (tests/cluster/up logs every write at level Metadata).
#[derive(Debug, Clone)]
pub struct AuditWrite {
    pub user: String,
    /// `requestReceivedTimestamp`, µs since the epoch.
    pub at_us: i64,
    pub verb: String,
    /// `deployments`, `llamastackdistributions/status`, …
    pub resource: String,
    pub code: u16,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    stage: String,
    request_received_timestamp: String,
    verb: String,
    user: RawUser,
    object_ref: Option<RawRef>,
    response_status: Option<RawStatus>,
}

#[derive(Deserialize)]
struct RawUser {
    username: String,
}

#[derive(Deserialize)]
struct RawRef {
    resource: Option<String>,
    subresource: Option<String>,
}

#[derive(Deserialize)]
struct RawStatus {
    code: Option<u16>,
}

/// Follows the API server's audit log from its current end (like `tail -F`: through the
/// rotations the API server makes at `--audit-log-maxsize`) on a thread of its own, and keeps
/// the completed writes of the users whose names start with `user_prefix`.
pub struct AuditTail {
    writes: Arc<Mutex<Vec<AuditWrite>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AuditTail {
    pub fn start(path: &Path, user_prefix: &str) -> Result<AuditTail> {
        let mut file = File::open(path).with_context(|| {
            format!(
                "opening the API server's audit log {} (tests/cluster/up turns it on)",
                path.display()
            )
        })?;
        file.seek(SeekFrom::End(0))?;
        let ino = file.metadata()?.ino();
        let writes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut reader = Reader {
            path: path.to_path_buf(),
            file,
            ino,
            partial: Vec::new(),
            needle: format!("\"username\":\"{user_prefix}"),
            writes: writes.clone(),
        };
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Err(e) = reader.poll() {
                    eprintln!("warning: reading the audit log: {e:#}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Ok(AuditTail {
            writes,
            stop,
            thread: Some(thread),
        })
    }

    /// The writes of `user` received in `[from_us, to_us)` that `keep` accepts.
    pub fn count(
        &self,
        user: &str,
        from_us: i64,
        to_us: i64,
        keep: impl Fn(&AuditWrite) -> bool,
    ) -> usize {
        self.writes.lock().map_or(0, |w| {
            w.iter()
                .filter(|w| w.user == user && w.at_us >= from_us && w.at_us < to_us && keep(w))
                .count()
        })
    }

    /// When `user`'s latest write seen so far was received.
    pub fn last_write_us(&self, user: &str) -> Option<i64> {
        self.writes
            .lock()
            .ok()?
            .iter()
            .filter(|w| w.user == user)
            .map(|w| w.at_us)
            .max()
    }

    /// Every write of `user` received in `[from_us, to_us)`, counted by `verb resource code`.
    pub fn breakdown(&self, user: &str, from_us: i64, to_us: i64) -> Vec<(String, usize)> {
        let mut m = std::collections::BTreeMap::<String, usize>::new();
        if let Ok(w) = self.writes.lock() {
            for w in w
                .iter()
                .filter(|w| w.user == user && w.at_us >= from_us && w.at_us < to_us)
            {
                *m.entry(format!("{} {} {}", w.verb, w.resource, w.code))
                    .or_default() += 1;
            }
        }
        m.into_iter().collect()
    }
}

impl Drop for AuditTail {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Reader {
    path: PathBuf,
    file: File,
    ino: u64,
    partial: Vec<u8>,
    needle: String,
    writes: Arc<Mutex<Vec<AuditWrite>>>,
}

impl Reader {
    fn poll(&mut self) -> Result<()> {
        self.drain()?;
        // Rotated: the open file is the renamed old log, read to its end above; go on with
        // the new one from its start.
        if let Ok(meta) = std::fs::metadata(&self.path)
            && meta.ino() != self.ino
        {
            self.drain()?;
            self.file = File::open(&self.path)?;
            self.ino = meta.ino();
            self.partial.clear();
            self.drain()?;
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<()> {
        let mut buf = Vec::new();
        self.file.read_to_end(&mut buf)?;
        if buf.is_empty() {
            return Ok(());
        }
        self.partial.extend_from_slice(&buf);
        let Some(end) = self.partial.iter().rposition(|&c| c == b'\n') else {
            return Ok(());
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        let mut found = Vec::new();
        for line in complete.split(|&c| c == b'\n') {
            let Ok(line) = std::str::from_utf8(line) else {
                continue;
            };
            // Most lines are other clients' (controller-manager, kwok): skip them unparsed.
            if !line.contains(&self.needle) {
                continue;
            }
            let Ok(e) = serde_json::from_str::<RawEvent>(line) else {
                continue;
            };
            if e.stage != "ResponseComplete" && e.stage != "Panic" {
                continue;
            }
            let Some(at_us) = parse_utc_us(&e.request_received_timestamp) else {
                continue;
            };
            let resource = e
                .object_ref
                .map(|r| match (r.resource, r.subresource) {
                    (Some(res), Some(sub)) => format!("{res}/{sub}"),
                    (Some(res), None) => res,
                    (None, _) => String::from("?"),
                })
                .unwrap_or_else(|| String::from("?"));
            found.push(AuditWrite {
                user: e.user.username,
                at_us,
                verb: e.verb,
                resource,
                code: e.response_status.and_then(|s| s.code).unwrap_or(0),
            });
        }
        if let Ok(mut w) = self.writes.lock() {
            w.extend(found);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_timestamps() {
        assert_eq!(parse_utc_us("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_utc_us("1970-01-01T00:00:01.5Z"), Some(1_500_000));
        // date -u -d 2026-12-07T10:20:33Z +%s = 1796638833
        assert_eq!(
            parse_utc_us("2026-12-07T10:20:33.123456Z"),
            Some(1_796_638_833_123_456)
        );
        assert_eq!(parse_utc_us("2026-12-07 10:20:33Z"), None);
    }

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, f64::NAN, 4.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 51.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
    }

    #[test]
    fn counters() {
        let m = "# TYPE x counter\nllsd_reconciles_total{outcome=\"ok\"} 3\nllsd_reconciles_total{outcome=\"error\"} 2\nllsd_reconciles_total_other 9\n";
        assert_eq!(counter_sum(m, "llsd_reconciles_total"), 5.0);
    }
}

/// v1alpha2 LlamaStackDistributions of namespace `ns`.
pub fn llsd(client: &kube::Client, ns: &str) -> kube::Api<kube::api::DynamicObject> {
    let gvk =
        kube::core::GroupVersionKind::gvk("llamastack.io", "v1alpha2", "LlamaStackDistribution");
    kube::Api::namespaced_with(
        client.clone(),
        ns,
        &kube::api::ApiResource::from_gvk_with_plural(&gvk, "llamastackdistributions"),
    )
}

/// Times when each Deployment appeared and each CR became Ready, as seen by watches.
#[derive(Default)]
pub struct Seen {
    pub deployment: std::collections::HashMap<String, std::time::Instant>,
    pub ready: std::collections::HashMap<String, std::time::Instant>,
}

/// Waits until every CR of `names` was seen Ready, at most `timeout` from `since`; then how
/// long after `since` the last of their Deployments appeared (the operator's part: pods then
/// depend on the cluster).
pub async fn wait_all_ready(
    seen: &Mutex<Seen>,
    names: &[String],
    since: std::time::Instant,
    timeout: Duration,
) -> Result<Option<Duration>> {
    loop {
        let last_deployment = seen.lock().ok().and_then(|s| {
            names.iter().all(|n| s.ready.contains_key(n)).then(|| {
                names
                    .iter()
                    .filter_map(|n| s.deployment.get(n))
                    .max()
                    .copied()
            })
        });
        if let Some(last) = last_deployment {
            return Ok(last.map(|l| l.duration_since(since)));
        }
        anyhow::ensure!(
            since.elapsed() <= timeout,
            "{} CRs not Ready in {timeout:?}",
            names.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Watches Deployments and CRs of `ns` into `seen` (first sighting only).
pub fn spawn_watches(client: &kube::Client, ns: &str, seen: Arc<Mutex<Seen>>) {
    use futures_util::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let deps: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(client.clone(), ns);
    let s = seen.clone();
    tokio::spawn(async move {
        let mut w = watcher(deps, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .boxed();
        // A watch error is retried, not the end: with 1,000 CRs one ended the loop and the
        // benchmark waited for Ready CRs it could no longer see.
        while let Some(d) = w.next().await {
            let Ok(d) = d else { continue };
            if let (Some(n), Ok(mut s)) = (d.metadata.name, s.lock()) {
                s.deployment
                    .entry(n)
                    .or_insert_with(std::time::Instant::now);
            }
        }
    });
    let crs = llsd(client, ns);
    tokio::spawn(async move {
        let mut w = watcher(crs, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(o) = w.next().await {
            let Ok(o) = o else { continue };
            if o.data["status"]["phase"] == "Ready"
                && let (Some(n), Ok(mut s)) = (o.metadata.name, seen.lock())
            {
                s.ready.entry(n).or_insert_with(std::time::Instant::now);
            }
        }
    });
}

/// Kills the operator however the benchmark ends.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
