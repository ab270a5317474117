//! `tracing` output: JSON lines (LOG_FORMAT=json, the manifests set it) or human text.
//! RUST_LOG filters; wasmtime's and hyper's chatter is off by default.

use tracing_subscriber::EnvFilter;

pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "info,cranelift=warn,wasmtime=warn,hyper=warn,rustls=warn,kube_client=warn,tower=warn",
        )
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
}
