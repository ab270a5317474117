//! Logs, metrics and probes: JSON logs with a span per reconcile in the cluster, text in a
//! terminal; Prometheus text on `/metrics`; `/healthz` (process alive) and `/readyz` (caches
//! synced and, with leader election, the decision made) on the probe port.

mod logging;
mod metrics;

pub use logging::init as init_logging;
pub use metrics::{Metrics, metrics_router};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// `/healthz` and `/readyz`.
pub fn probe_router(ready: Arc<AtomicBool>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.load(Ordering::Relaxed);
                async move {
                    if ready {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting")
                    }
                }
            }),
        )
}
