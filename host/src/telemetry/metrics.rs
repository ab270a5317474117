//! Prometheus metrics with bounded labels only (outcome, error kind, plugin call): never an
//! object name.

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
        Metrics {
            registry,
            reconciles,
            errors,
            reconcile_seconds,
            plugin_seconds,
            writes,
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

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
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
        let text = m.render();
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
