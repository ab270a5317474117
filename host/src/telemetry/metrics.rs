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
        Metrics {
            registry,
            reconciles,
            errors,
            reconcile_seconds,
            plugin_seconds,
            writes,
            kept,
            resident_bytes,
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
        let text = m.render();
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
