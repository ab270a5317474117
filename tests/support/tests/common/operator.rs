//! The operator binary as a process against the test cluster (architecture.md, testing
//! ladder 4): one per test, watching only the test's namespace, which is also its own
//! namespace (ConfigMap, certificate Secret). Killed when dropped.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Operator {
    child: Child,
    pub webhook_port: u16,
    pub metrics_port: u16,
    pub probe_port: u16,
    pub log: PathBuf,
}

/// A DEBUG or TRACE line of the text format: `<time> <LEVEL> ...`, maybe in ANSI colours.
fn verbose(line: &str) -> bool {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, ended by a letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    matches!(plain.split_whitespace().nth(1), Some("DEBUG" | "TRACE"))
}

/// Numbers the logs of one test process: an operator restarted on the same namespace and
/// port (the chaos suite) gets a new file, and the run-wide scan reads every one.
static LOG_COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Where operator logs go: `LLSD_TEST_LOG_DIR` (`make test` sets it; its last step scans
/// every file there for Secret values, issue 19 §3), else the temp dir.
fn log_dir() -> Result<PathBuf> {
    let dir = std::env::var_os("LLSD_TEST_LOG_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(
            || std::env::temp_dir().join(format!("llsd-operator-logs-{}", std::process::id())),
            PathBuf::from,
        );
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// `RUST_LOG` of the test operators: `LLSD_TEST_RUST_LOG`, else every target at trace: the
/// most verbose level, where the run-wide Secret scan must still find nothing.
fn log_filter() -> String {
    std::env::var("LLSD_TEST_RUST_LOG")
        .ok()
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "trace".to_string())
}

/// The operator binary: `LLSD_OPERATOR_BIN`, which tests/cluster/run-tests.sh sets. A test
/// that cannot find it fails: it never quietly skips.
pub fn binary() -> Result<PathBuf> {
    let bin = std::env::var_os("LLSD_OPERATOR_BIN").context(
        "LLSD_OPERATOR_BIN is not set: run through tests/cluster/run-tests.sh (make cluster-tests)",
    )?;
    let bin = PathBuf::from(bin);
    if !bin.is_file() {
        bail!(
            "LLSD_OPERATOR_BIN={} is not a file: build it with cargo build -p llama-stack-operator",
            bin.display()
        );
    }
    Ok(bin)
}

pub use llsd_test_support::ports::free_port;

impl Operator {
    /// Starts `run` for namespace `ns` and waits for `/readyz`.
    pub async fn start(ns: &str, extra: &[&str]) -> Result<Operator> {
        Operator::start_with_webhook_port(ns, free_port()?, extra).await
    }

    /// [`Operator::start`] serving the webhooks on `webhook_port`, for a test that must name
    /// the URL (the CRD's conversion) before the process runs.
    pub async fn start_with_webhook_port(
        ns: &str,
        webhook_port: u16,
        extra: &[&str],
    ) -> Result<Operator> {
        Operator::start_full(ns, webhook_port, extra, &[]).await
    }

    /// [`Operator::start`] with extra environment (e.g. another `KUBECONFIG`).
    pub async fn start_with_env(
        ns: &str,
        extra: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Result<Operator> {
        Operator::start_full(ns, free_port()?, extra, env).await
    }

    /// [`Operator::start`] on `webhook_port` with extra environment (`RUST_LOG`, a
    /// `KUBECONFIG`), which wins over the defaults.
    pub async fn start_full(
        ns: &str,
        webhook_port: u16,
        extra: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Result<Operator> {
        let bin = binary()?;
        let (metrics_port, probe_port) = (free_port()?, free_port()?);
        let log = log_dir()?.join(format!(
            "llsd-operator-{ns}-{webhook_port}-{}.log",
            LOG_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let out = std::fs::File::create(&log)
            .with_context(|| format!("creating the operator's log {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(&bin);
        cmd.args([
            "run",
            "--namespace",
            ns,
            "--watch-namespace",
            ns,
            "--bind-address",
            "127.0.0.1",
        ])
        .args(["--webhook-port", &webhook_port.to_string()])
        .args(["--metrics-port", &metrics_port.to_string()])
        .args(["--probe-port", &probe_port.to_string()])
        .args(["--webhook-host", "127.0.0.1"])
        .args(["--webhook-secret", "llsd-test-webhook-cert"])
        // Names no test creates: CA injection skips them (the CRD is injected when a
        // test points its conversion at this process).
        .args(["--mutating-webhook-configuration", &format!("absent-{ns}")])
        .args([
            "--validating-webhook-configuration",
            &format!("absent-{ns}"),
        ])
        .args(extra)
        .env("RUST_LOG", log_filter())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut op = Operator {
            child,
            webhook_port,
            metrics_port,
            probe_port,
            log,
        };
        op.wait_ready(Duration::from_secs(60)).await?;
        Ok(op)
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the operator exited with {status} before it was ready; log:\n{}",
                    self.log_text()
                );
            }
            if http_get(self.probe_port, "/readyz")
                .await
                .is_ok_and(|(code, _)| code == 200)
            {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!(
                    "the operator was not ready after {timeout:?}; log:\n{}",
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The whole log, for scans (a failure message wants [`Operator::log_text`]'s tail).
    pub fn full_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last 60 lines at INFO and above, for a failure message (the tests log at trace:
    /// an assertion on the log reads [`Operator::full_log`]).
    pub fn log_text(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text
            .lines()
            .filter(|l| !verbose(l))
            .rev()
            .take(60)
            .collect();
        let mut out = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
        out.push_str(&format!(
            "\n(DEBUG and TRACE lines left out: {})",
            self.log.display()
        ));
        out
    }

    /// `/metrics` as text.
    pub async fn metrics(&self) -> Result<String> {
        Ok(http_get(self.metrics_port, "/metrics").await?.1)
    }

    /// The sum of a counter over all its label sets, e.g. `llsd_reconciles_total`.
    pub async fn counter(&self, name: &str) -> Result<f64> {
        let text = self.metrics().await?;
        Ok(text
            .lines()
            .filter(|l| {
                l.starts_with(name)
                    && (l[name.len()..].starts_with('{') || l[name.len()..].starts_with(' '))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    /// SIGKILL (what a node failure or the OOM killer does: no shutdown, no Lease release).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether this process still runs: it neither exited nor was restarted.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TLS handshake with `127.0.0.1:port` trusting only `ca_pem`: whether the webhooks there
/// serve a certificate of that CA (for 127.0.0.1, as `--webhook-host 127.0.0.1` issues it).
/// A namespace with the CRD installed and an operator process watching it, started with
/// `extra` arguments.
pub async fn setup(
    prefix: &str,
    extra: &[&str],
) -> Result<(
    llsd_test_support::kube::Client,
    llsd_test_support::TestNamespace,
    Operator,
)> {
    let client = llsd_test_support::client().await?;
    super::install_crd(&client, llama_stack_operator::api::crd::crd()?).await?;
    let ns = llsd_test_support::TestNamespace::create(&client, prefix).await?;
    let op = Operator::start(ns.name(), extra).await?;
    Ok((client, ns, op))
}

/// Installs the CRD with its conversion pointed at a new operator process (the URL names the
/// port, so the port is chosen first; the operator injects its CA when it starts) and starts
/// that process in `ns` with `extra` arguments.
pub async fn start_converting(
    client: &llsd_test_support::kube::Client,
    ns: &str,
    extra: &[&str],
) -> Result<Operator> {
    start_converting_with_env(client, ns, extra, &[]).await
}

/// [`start_converting`] with extra environment for the process.
pub async fn start_converting_with_env(
    client: &llsd_test_support::kube::Client,
    ns: &str,
    extra: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> Result<Operator> {
    use llama_stack_operator::api::crd;
    use llsd_test_support::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::WebhookClientConfig;
    let port = free_port()?;
    super::install_crd(
        client,
        crd::with_conversion_client(
            crd::crd()?,
            WebhookClientConfig {
                url: Some(format!("https://127.0.0.1:{port}{}", crd::CONVERSION_PATH)),
                ca_bundle: None,
                service: None,
            },
        ),
    )
    .await?;
    Operator::start_full(ns, port, extra, env).await
}

/// Ends a test that used [`start_converting`]: later test binaries expect the plain CRD,
/// whatever happened, and the namespace goes. The first error wins.
pub async fn finish_converting(
    client: &llsd_test_support::kube::Client,
    ns: llsd_test_support::TestNamespace,
    result: Result<()>,
) -> Result<()> {
    let restored = super::install_crd(client, llama_stack_operator::api::crd::crd()?)
        .await
        .context("restoring the CRD without conversion");
    let deleted = ns.delete().await;
    result.and(restored).and(deleted)
}

pub async fn tls_handshake(port: u16, ca_pem: &str) -> Result<()> {
    use std::sync::Arc;
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.map_err(|e| anyhow::anyhow!("CA PEM: {e}"))?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into());
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .context("TLS handshake")?;
    Ok(())
}

/// A plain HTTP/1.0 GET on loopback (probes and metrics need nothing more).
pub use llsd_test_support::bench::http_get;

/// Lines of the API server's audit log written by the operator for namespace `ns` after
/// byte `offset` (tests/cluster/up turns the log on for every write).
pub fn operator_writes(offset: u64, ns: &str) -> Result<Vec<serde_json::Value>> {
    Ok(audit_since(offset)?
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| {
            e["userAgent"]
                .as_str()
                .is_some_and(|u| u.starts_with("llama-stack-operator/"))
        })
        .filter(|e| e["objectRef"]["namespace"] == ns)
        .filter(|e| e["stage"] == "ResponseComplete")
        .collect())
}

/// `$LLSD_CACHE_DIR`, else `~/.cache/llama-stack-operator`.
pub fn cache_dir() -> Result<PathBuf> {
    std::env::var_os("LLSD_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/llama-stack-operator"))
        })
        .context("neither LLSD_CACHE_DIR nor HOME is set")
}

pub fn audit_log() -> Result<PathBuf> {
    let path = cache_dir()?.join("cluster/logs/audit.log");
    if !path.is_file() {
        bail!(
            "{} does not exist: the API server was started without the audit log (restart it with tests/cluster/down && tests/cluster/up)",
            path.display()
        );
    }
    Ok(path)
}

/// The API server's audit log from byte `offset` on (see [`audit_offset`]).
pub fn audit_since(offset: u64) -> Result<String> {
    let path = audit_log()?;
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(String::from_utf8_lossy(text.get(offset as usize..).unwrap_or_default()).into_owned())
}

pub fn audit_offset() -> Result<u64> {
    Ok(std::fs::metadata(audit_log()?)?.len())
}

/// Who holds the operator's Lease `llama-stack-operator-leader` in the Lease's namespace.
pub async fn lease_holder(
    leases: &llsd_test_support::kube::Api<
        llsd_test_support::k8s_openapi::api::coordination::v1::Lease,
    >,
) -> Result<Option<String>> {
    Ok(leases
        .get_opt("llama-stack-operator-leader")
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity))
}
