//! `llama-stack-operator run`: the operator process (controller, webhooks, probes, metrics).

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The operator's namespace (its ConfigMap, Lease and certificate Secret live there).
    #[arg(long, env = "OPERATOR_NAMESPACE")]
    pub namespace: Option<String>,
    /// Reconcile only this namespace (default: all).
    #[arg(long)]
    pub watch_namespace: Option<String>,
    /// Run the controller only while holding the Lease `llama-stack-operator-leader`.
    #[arg(long)]
    pub leader_elect: bool,
    /// Address the three listeners bind to.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: std::net::IpAddr,
    /// HTTPS port of the webhooks (/convert, /mutate, /validate).
    #[arg(long, default_value_t = 9443)]
    pub webhook_port: u16,
    /// HTTP port of /metrics.
    #[arg(long, default_value_t = 8080)]
    pub metrics_port: u16,
    /// HTTP port of /healthz and /readyz.
    #[arg(long, default_value_t = 8081)]
    pub probe_port: u16,
    /// `operator`: issue and rotate a self-signed CA and serving certificate (kept in
    /// `--webhook-secret`) and inject the CA; `external`: serve tls.crt/tls.key from
    /// `--cert-dir` (e.g. cert-manager), reloaded when they change.
    #[arg(long, value_enum, default_value = "operator")]
    pub cert_mode: CertMode,
    /// How often certificates are checked: renewal (operator) or changed files (external).
    #[arg(long, default_value_t = 3600)]
    pub cert_check_seconds: u64,
    #[arg(long, default_value = "/var/run/llama-stack-operator/certs")]
    pub cert_dir: PathBuf,
    #[arg(long, default_value = "llama-stack-operator-webhook-cert")]
    pub webhook_secret: String,
    /// Service in front of the webhooks; the certificate names `<svc>.<ns>.svc[.cluster.local]`.
    #[arg(long, default_value = "llama-stack-operator-webhook")]
    pub webhook_service: String,
    /// Names (or IP addresses) for the certificate instead of the Service's: a local process
    /// whose webhooks are registered by URL (demo, tests).
    #[arg(long = "webhook-host")]
    pub webhook_hosts: Vec<String>,
    #[arg(long, default_value = "llama-stack-operator-mutating")]
    pub mutating_webhook_configuration: String,
    #[arg(long, default_value = "llama-stack-operator-validating")]
    pub validating_webhook_configuration: String,
    /// Vendor plugins: YAML `plugins: [{path: FILE.wasm, sha256: HEX}]` (D18).
    #[arg(long)]
    pub plugins_config: Option<PathBuf>,
    /// PEM file of CA certificates trusted for registries, besides the system roots (private
    /// registries; mount a ConfigMap there).
    #[arg(long, env = "LLSD_REGISTRY_CA_FILE")]
    pub registry_ca_file: Option<PathBuf>,
    /// Registries (`host:port`) reached over plain HTTP instead of HTTPS: loopback test
    /// registries only.
    #[arg(
        long = "registry-plain-http",
        env = "LLSD_REGISTRY_PLAIN_HTTP",
        value_delimiter = ','
    )]
    pub registry_plain_http: Vec<String>,
    /// Timeout of each registry request.
    #[arg(long, default_value_t = 30)]
    pub registry_timeout_seconds: u64,
    /// Log format: `json` in the cluster, `text` in a terminal.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CertMode {
    Operator,
    External,
}

pub fn run(args: &Args) -> ExitCode {
    crate::telemetry::init_logging(args.log_format == "json");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(crate::app::run(args.clone())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "operator stopped");
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
