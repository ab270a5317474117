//! What configures the operator: the flags of `run` ([`RunArgs`], env included) and the
//! operator ConfigMap `llama-stack-operator-config` (v1alpha1-behavior §2.2): image overrides
//! (D15), feature flags and the Ingress domain. Parsing only; the controller reads the
//! ConfigMap and keeps the last good values when a new one does not parse.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Name of the operator ConfigMap in the operator's namespace.
pub const OPERATOR_CONFIG_MAP: &str = "llama-stack-operator-config";
/// Label upstream puts on it (kept so that upstream tooling finds it).
pub const WATCH_LABEL: &str = "llamastack.io/watch";
/// What the operator writes when the ConfigMap is missing (upstream's content).
pub const DEFAULT_FEATURE_FLAGS: &str = "enableNetworkPolicy:\n    enabled: false\n";

// The flags of `llama-stack-operator run`: the CLI parses them, `app` runs with them. (A plain
// comment: a doc comment here would become the subcommand's help text.)
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The operator's namespace (its ConfigMap, Lease and certificate Secret live there).
    #[arg(long, env = "OPERATOR_NAMESPACE")]
    pub namespace: Option<String>,
    /// Reconcile only this namespace (default: all).
    #[arg(long)]
    pub watch_namespace: Option<String>,
    /// Run the controller only while holding the Lease `llama-stack-operator-leader`.
    #[arg(long)]
    pub leader_elect: bool,
    /// How long the Lease holds without a renewal: the longest a dead leader's replica waits
    /// before it takes over, plus up to a second (the Lease counts whole seconds): 13.2 s measured
    /// in issue 19's chaos suite, where client-go's defaults allow 17 s. Shorter is a
    /// faster failover, but a leader that cannot reach the API server for longer than the
    /// grace below past its renewal steps down.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u64).range(2..))]
    pub lease_duration_seconds: u64,
    /// How long before the Lease expires the leader renews it (every duration - grace
    /// seconds: one API write each).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    pub lease_renew_grace_seconds: u64,
    /// How many LlamaStackDistributions are reconciled at once. Bounds the writes in flight
    /// when many CRs arrive together (a burst of Service creates queues in the API server
    /// until requests time out); other CRs wait in the queue, each still reconciled once.
    #[arg(long, env = "LLSD_MAX_CONCURRENT_RECONCILES", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_reconciles: u16,
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

/// What the operator ConfigMap says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorConfig {
    /// `image-overrides`: distribution name -> image (D15: the image only).
    pub image_overrides: BTreeMap<String, String>,
    /// `featureFlags.enableNetworkPolicy.enabled`.
    pub network_policy: bool,
    /// `ingress-domain`: generated Ingress hosts are `{cr}-{namespace}.{domain}`.
    pub ingress_domain: Option<String>,
}

#[derive(Debug, serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct FeatureFlags {
    #[serde(default)]
    enable_network_policy: Option<Flag>,
}

#[derive(Debug, serde::Deserialize, Default)]
struct Flag {
    #[serde(default)]
    enabled: bool,
}

impl OperatorConfig {
    /// Parses the ConfigMap's data. Unusable entries are skipped with a warning each; a key
    /// that does not parse at all is an error, so the caller can keep the previous values.
    pub fn parse(data: &BTreeMap<String, String>) -> Result<(OperatorConfig, Vec<String>), String> {
        let mut warnings = Vec::new();
        let mut cfg = OperatorConfig::default();
        if let Some(text) = data.get("featureFlags") {
            let flags: FeatureFlags = if text.trim().is_empty() {
                FeatureFlags::default()
            } else {
                serde_yaml::from_str(text)
                    .map_err(|e| format!("featureFlags is not valid YAML: {e}"))?
            };
            cfg.network_policy = flags.enable_network_policy.is_some_and(|f| f.enabled);
        }
        if let Some(text) = data.get("image-overrides")
            && !text.trim().is_empty()
        {
            let map: BTreeMap<String, String> = serde_yaml::from_str(text)
                .map_err(|e| format!("image-overrides is not a YAML map of name: image: {e}"))?;
            for (name, image) in map {
                match image_reference_problem(&image) {
                    None => {
                        cfg.image_overrides.insert(name, image);
                    }
                    Some(why) => warnings.push(format!(
                        "image-overrides[{name}] = {image:?} is skipped: {why}"
                    )),
                }
            }
        }
        if let Some(domain) = data.get("ingress-domain").map(|d| d.trim())
            && !domain.is_empty()
        {
            cfg.ingress_domain = Some(domain.trim_start_matches('.').to_string());
        }
        Ok((cfg, warnings))
    }

    /// The image a named distribution runs: the override when one is set, else `default`.
    pub fn image_for<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.image_overrides
            .get(name)
            .map(String::as_str)
            .unwrap_or(default)
    }
}

/// Why `image` is not a usable OCI reference (the checks upstream's non-strict parser makes:
/// no whitespace, lowercase repository, a tag or digest that is well formed).
fn image_reference_problem(image: &str) -> Option<&'static str> {
    if image.is_empty() {
        return Some("it is empty");
    }
    if image.chars().any(char::is_whitespace) {
        return Some("it contains whitespace");
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest
        && !(d.starts_with("sha256:")
            && d.len() == 71
            && d[7..].bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Some("its digest is not sha256:<64 hex>");
    }
    // The registry part (before the first '/') may hold uppercase and a port; the path not.
    let (registry, path) = match name.split_once('/') {
        Some((r, p)) if r.contains('.') || r.contains(':') || r == "localhost" => (r, p),
        _ => ("", name),
    };
    let repo = match path.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => {
            if tag.is_empty() || tag.len() > 128 {
                return Some("its tag is empty or too long");
            }
            r
        }
        _ => path,
    };
    if repo.is_empty() || registry.ends_with(':') {
        return Some("it has no repository");
    }
    if repo.chars().any(|c| c.is_ascii_uppercase()) {
        return Some("repository names must be lowercase");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn upstream_default_content_parses_with_network_policy_off() {
        let (cfg, w) =
            OperatorConfig::parse(&data(&[("featureFlags", DEFAULT_FEATURE_FLAGS)])).expect("ok");
        assert!(!cfg.network_policy);
        assert!(w.is_empty());
        let (cfg, _) = OperatorConfig::parse(&data(&[(
            "featureFlags",
            "enableNetworkPolicy:\n  enabled: true\n",
        )]))
        .expect("ok");
        assert!(cfg.network_policy);
    }

    #[test]
    fn image_overrides_skip_bad_references_and_keep_good_ones() {
        let (cfg, w) = OperatorConfig::parse(&data(&[(
            "image-overrides",
            "starter: quay.io/example/llama-stack:patched\nbad: Quay.io/Example/X:1\nspace: 'a b'\ndigest: localhost:5000/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
        )]))
        .expect("ok");
        assert_eq!(
            cfg.image_for("starter", "docker.io/llamastack/distribution-starter:0.7.3"),
            "quay.io/example/llama-stack:patched"
        );
        assert_eq!(cfg.image_for("other", "d"), "d");
        assert!(cfg.image_overrides.contains_key("digest"));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w.iter().any(|m| m.contains("lowercase")));
    }

    #[test]
    fn unparsable_keys_are_errors_so_the_previous_values_stay() {
        assert!(OperatorConfig::parse(&data(&[("image-overrides", "[not, a, map]")])).is_err());
        assert!(
            OperatorConfig::parse(&data(&[("featureFlags", "enableNetworkPolicy: [")])).is_err()
        );
    }

    #[test]
    fn ingress_domain_is_trimmed() {
        let (cfg, _) =
            OperatorConfig::parse(&data(&[("ingress-domain", " .apps.example.com ")])).expect("ok");
        assert_eq!(cfg.ingress_domain.as_deref(), Some("apps.example.com"));
    }
}
