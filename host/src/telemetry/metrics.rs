//! Prometheus metrics with bounded labels only (outcome, error kind, plugin call): never an
//! object name.

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

type Labels = Vec<(&'static str, &'static str)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    reconciles: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    reconcile_seconds: Histogram,
    plugin_seconds: HistogramFamily,
    writes: Family<Labels, Counter>,
    kept: Family<Labels, Gauge>,
    resident_bytes: Gauge,
    webhook_seconds: HistogramFamily,
    cert_renewals: Family<Labels, Counter>,
    cert_expiry: Gauge,
    plugin_load_failures: Counter,
    plugins: Family<Vec<(&'static str, String)>, Gauge>,
    distributions: Family<Labels, Gauge>,
    not_ready_seconds: Gauge,
}

/// The kinds `llsd_api_writes_total` counts (what the controller writes).
const WRITE_KINDS: &[&str] = &[
    "ConfigMap",
    "Deployment",
    "Service",
    "ServiceAccount",
    "Secret",
    "PersistentVolumeClaim",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "NetworkPolicy",
    "Ingress",
    "Event",
    "LlamaStackDistribution/status",
];

fn webhook_histogram() -> Histogram {
    // 1 ms .. ~16 s (the webhooks' timeout is 10 s)
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

fn plugin_histogram() -> Histogram {
    // 50 µs .. ~1.6 s
    Histogram::new(exponential_buckets(0.00005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("llsd");
        let reconciles = Family::<Labels, Counter>::default();
        let errors = Family::<Labels, Counter>::default();
        let writes = Family::<Labels, Counter>::default();
        let reconcile_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        let plugin_seconds: HistogramFamily = Family::new_with_constructor(plugin_histogram);
        registry.register(
            "reconciles",
            "Reconciles by outcome (ok, failed: a user error now in the status, error: retried)",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Retried reconcile errors by kind",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time of one reconcile",
            reconcile_seconds.clone(),
        );
        registry.register(
            "plugin_call_duration_seconds",
            "Time of one plugin call (fresh instance included)",
            plugin_seconds.clone(),
        );
        registry.register(
            "api_writes",
            "Write requests the controller made, by kind of object",
            writes.clone(),
        );
        let kept = Family::<Labels, Gauge>::default();
        registry.register(
            "kept_objects",
            "Entries the operator holds in memory, by holder (watch caches, drift record, followed servers, registry backoffs)",
            kept.clone(),
        );
        let resident_bytes = Gauge::default();
        // `llsd_process_resident_memory_bytes`: what the load benchmark and a dashboard
        // follow, without a process collector dependency.
        registry.register_with_unit(
            "process_resident_memory",
            "Resident memory of the operator process",
            prometheus_client::registry::Unit::Bytes,
            resident_bytes.clone(),
        );
        let webhook_seconds: HistogramFamily = Family::new_with_constructor(webhook_histogram);
        registry.register(
            "webhook_request_duration_seconds",
            "Time to answer one webhook request, by endpoint (convert, mutate, validate)",
            webhook_seconds.clone(),
        );
        let cert_renewals = Family::<Labels, Counter>::default();
        registry.register(
            "certificate_checks",
            "Checks of the operator-issued webhook certificate, by outcome (ok, failed)",
            cert_renewals.clone(),
        );
        let cert_expiry = Gauge::default();
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "When the served webhook certificate expires (Unix time; 0 until known)",
            cert_expiry.clone(),
        );
        let plugin_load_failures = Counter::default();
        registry.register(
            "plugin_load_failures",
            "Vendor plugins refused (unreadable, wrong digest, not fetched, not a plugin)",
            plugin_load_failures.clone(),
        );
        let plugins = Family::<Vec<(&'static str, String)>, Gauge>::default();
        registry.register(
            "plugin_info",
            "The loaded plugins: 1 per plugin, with its name, version and digest",
            plugins.clone(),
        );
        let distributions = Family::<Labels, Gauge>::default();
        registry.register(
            "distributions",
            "LlamaStackDistributions by status phase",
            distributions.clone(),
        );
        let not_ready_seconds = Gauge::default();
        registry.register_with_unit(
            "distribution_not_ready_max",
            "How long the LlamaStackDistribution that has been out of Ready the longest has been (0: all Ready)",
            prometheus_client::registry::Unit::Seconds,
            not_ready_seconds.clone(),
        );
        // Every label value known up front starts at 0: the families are on /metrics from the
        // start (a dashboard and the alerts find them), and rate() sees the first increase.
        for outcome in ["ok", "failed", "error"] {
            let _ = reconciles.get_or_create(&vec![("outcome", outcome)]);
        }
        for kind in ["api", "build", "encode", "join", "metadata", "not_running"] {
            let _ = errors.get_or_create(&vec![("kind", kind)]);
        }
        for kind in WRITE_KINDS {
            let _ = writes.get_or_create(&vec![("kind", *kind)]);
        }
        let _ = plugin_seconds.get_or_create(&vec![("call", "generate")]);
        for endpoint in ["convert", "mutate", "validate"] {
            let _ = webhook_seconds.get_or_create(&vec![("endpoint", endpoint)]);
        }
        for outcome in ["ok", "failed"] {
            let _ = cert_renewals.get_or_create(&vec![("outcome", outcome)]);
        }
        Metrics {
            registry,
            reconciles,
            errors,
            reconcile_seconds,
            plugin_seconds,
            writes,
            kept,
            resident_bytes,
            webhook_seconds,
            cert_renewals,
            cert_expiry,
            plugin_load_failures,
            plugins,
            distributions,
            not_ready_seconds,
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, outcome: &'static str, took: Duration) {
        self.reconciles
            .get_or_create(&vec![("outcome", outcome)])
            .inc();
        self.reconcile_seconds.observe(took.as_secs_f64());
    }

    pub fn error(&self, kind: &'static str) {
        self.errors.get_or_create(&vec![("kind", kind)]).inc();
    }

    pub fn plugin_call(&self, call: &'static str, took: Duration) {
        self.plugin_seconds
            .get_or_create(&vec![("call", call)])
            .observe(took.as_secs_f64());
    }

    pub fn wrote(&self, kind: &'static str) {
        self.writes.get_or_create(&vec![("kind", kind)]).inc();
    }

    /// How many entries `holder` keeps in memory now.
    pub fn kept(&self, holder: &'static str, n: usize) {
        self.kept
            .get_or_create(&vec![("holder", holder)])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn webhook_request(&self, endpoint: &'static str, took: Duration) {
        self.webhook_seconds
            .get_or_create(&vec![("endpoint", endpoint)])
            .observe(took.as_secs_f64());
    }

    /// A check of the operator-issued certificate; `expires` (Unix seconds) when it worked.
    pub fn certificate_checked(&self, expires: Option<u64>) {
        let outcome = if expires.is_some() { "ok" } else { "failed" };
        self.cert_renewals
            .get_or_create(&vec![("outcome", outcome)])
            .inc();
        if let Some(at) = expires {
            self.cert_expiry.set(i64::try_from(at).unwrap_or(i64::MAX));
        }
    }

    pub fn plugins_refused(&self, n: usize) {
        self.plugin_load_failures
            .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
    }

    /// The loaded plugins (the set replaces the previous one).
    pub fn plugins_loaded(&self, plugins: &[(String, String, String)]) {
        self.plugins.clear();
        for (name, version, digest) in plugins {
            self.plugins
                .get_or_create(&vec![
                    ("name", name.clone()),
                    ("version", version.clone()),
                    ("digest", digest.clone()),
                ])
                .set(1);
        }
    }

    /// CRs by phase, and the longest a CR has been out of Ready.
    pub fn distributions(&self, by_phase: &[(&'static str, usize)], not_ready_max: Duration) {
        for (phase, n) in by_phase {
            self.distributions
                .get_or_create(&vec![("phase", *phase)])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        self.not_ready_seconds
            .set(i64::try_from(not_ready_max.as_secs()).unwrap_or(i64::MAX));
    }

    pub fn render(&self) -> String {
        if let Some(bytes) = resident_bytes() {
            self.resident_bytes.set(bytes);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// VmRSS of /proc/self/status (Linux; elsewhere the gauge stays 0).
fn resident_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: i64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let body = metrics.render();
            async move {
                (
                    [(
                        CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    body,
                )
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_with_bounded_labels() {
        let m = Metrics::default();
        m.reconciled("ok", Duration::from_millis(3));
        m.error("api");
        m.plugin_call("generate", Duration::from_micros(300));
        m.wrote("Deployment");
        m.kept("drift_records", 3);
        m.webhook_request("validate", Duration::from_millis(4));
        m.certificate_checked(Some(1_800_000_000));
        m.certificate_checked(None);
        m.plugins_refused(1);
        m.plugins_loaded(&[("acme".into(), "1.0.0".into(), "ab12".into())]);
        m.distributions(&[("Ready", 2), ("Failed", 1)], Duration::from_secs(90));
        let text = m.render();
        for line in [
            "llsd_webhook_request_duration_seconds_count{endpoint=\"validate\"} 1",
            "llsd_certificate_checks_total{outcome=\"ok\"} 1",
            "llsd_certificate_checks_total{outcome=\"failed\"} 1",
            "llsd_certificate_expiry_timestamp_seconds 1800000000",
            "llsd_plugin_load_failures_total 1",
            "llsd_plugin_info{name=\"acme\",version=\"1.0.0\",digest=\"ab12\"} 1",
            "llsd_distributions{phase=\"Failed\"} 1",
            "llsd_distribution_not_ready_max_seconds 90",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(
            text.contains("llsd_kept_objects{holder=\"drift_records\"} 3"),
            "{text}"
        );
        let rss = text
            .lines()
            .find_map(|l| l.strip_prefix("llsd_process_resident_memory_bytes "))
            .and_then(|v| v.parse::<i64>().ok());
        assert!(rss.is_some_and(|b| b > 1 << 20), "{text}");
        assert!(
            text.contains("llsd_reconciles_total{outcome=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("llsd_reconcile_errors_total{kind=\"api\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("llsd_plugin_call_duration_seconds_count{call=\"generate\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("llsd_api_writes_total{kind=\"Deployment\"} 1"),
            "{text}"
        );
    }
}
