//! `server:` settings the CR controls: port (FR-060, T059), TLS (FR-061, D13), workers.

use super::Context;
use crate::yaml::{self, key};
use serde_yaml::Value;

/// Where the controller mounts the TLS Secret (D13).
pub const TLS_DIR: &str = "/etc/llama-stack/tls";

pub fn apply(cx: &mut Context<'_>) {
    let net = &cx.spec.networking;
    let tls_on = net.tls.as_ref().is_some_and(|t| t.enabled);
    if net.port.is_none() && !tls_on && cx.spec.workers.is_none() {
        return;
    }
    let server = yaml::ensure_map(&mut cx.doc, "server");
    if let Some(port) = net.port {
        // The server takes its port from --port (D13); keeping both equal avoids surprises.
        server.insert(key("port"), Value::Number(port.into()));
    }
    if tls_on {
        server.insert(key("tls_certfile"), key(&format!("{TLS_DIR}/tls.crt")));
        server.insert(key("tls_keyfile"), key(&format!("{TLS_DIR}/tls.key")));
    }
    if let Some(w) = cx.spec.workers {
        server.insert(key("workers"), Value::Number(w.into()));
    }
}
