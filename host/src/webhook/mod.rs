//! The operator's HTTPS endpoints for the API server: conversion today; admission
//! (validate, mutate) and certificate rotation follow (issue 6). One server, a route per hook;
//! `/healthz` answers without TLS client checks. A webhook never answers 500 for a bad object:
//! failures go back inside the review, as the API server expects.

pub mod certs;
mod convert;
mod mutate;
mod server;
mod validate;

pub use server::{CertStore, ServeError, serve, tls_config};

use crate::plugin::{Host, Limits, Plugin, PluginError, PluginRegistry};
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

/// What the handlers share: the plugin host and the plugins (conversion always uses the
/// built-in engine; validation the plugin serving the distribution, D18).
pub struct Webhooks {
    pub host: Arc<Host>,
    pub plugins: Arc<PluginRegistry>,
    /// For the validating webhook's lookups (Secrets, ConfigMaps); None checks only what
    /// needs no cluster.
    pub client: Option<kube::Client>,
}

impl Webhooks {
    pub fn new(
        host: Arc<Host>,
        plugins: Arc<PluginRegistry>,
        client: Option<kube::Client>,
    ) -> Webhooks {
        Webhooks {
            host,
            plugins,
            client,
        }
    }

    /// A fresh host with only the built-in plugin (tests, benchmarks).
    pub fn with_builtin(client: Option<kube::Client>) -> Result<Webhooks, PluginError> {
        let host = Host::new(Limits::default())?;
        let (plugins, _) = PluginRegistry::load(&host, &[])?;
        Ok(Webhooks::new(Arc::new(host), Arc::new(plugins), client))
    }

    pub fn builtin(&self) -> &Plugin {
        self.plugins.builtin()
    }
}

/// Path of the mutating (defaulting) webhook.
pub const MUTATE_PATH: &str = "/mutate";
/// Path of the validating webhook.
pub const VALIDATE_PATH: &str = "/validate";

/// The largest review body read. The API server takes request bodies up to 3 MiB, and an
/// UPDATE's AdmissionReview carries the object and the old one: axum's default of 2 MB refused
/// such reviews, and with failurePolicy Fail that blocks the update (issue 19, found by the
/// fuzz target's size cases). Larger bodies get 413 before they are read whole.
pub const MAX_REVIEW_BYTES: usize = 8 * 1024 * 1024;

/// The routes: `POST /convert` (ConversionReview), `POST /mutate` and `POST /validate`
/// (AdmissionReview), `GET /healthz`.
pub fn router(state: Arc<Webhooks>) -> Router {
    Router::new()
        .route(crate::api::crd::CONVERSION_PATH, post(convert::handle))
        .route(MUTATE_PATH, post(mutate::handle))
        .route(VALIDATE_PATH, post(validate::handle))
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REVIEW_BYTES))
        .with_state(state)
}
