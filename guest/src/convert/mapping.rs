//! The field mapping between v1alpha1 and v1alpha2 (FR-083, `v1alpha2-requirements.md` §10.1).
//! What a table row cannot carry is left to the residual annotation (`super`).

use serde_json::{Map, Value as Json};

/// (v1alpha1 path under `spec`, v1alpha2 path under `spec`): plain moves.
const SPEC_MOVES: &[(&str, &str)] = &[
    ("replicas", "workload.replicas"),
    ("server.distribution", "distribution"),
    ("server.containerSpec.port", "networking.port"),
    ("server.containerSpec.resources", "workload.resources"),
    ("server.containerSpec.env", "workload.overrides.env"),
    ("server.containerSpec.command", "workload.overrides.command"),
    ("server.containerSpec.args", "workload.overrides.args"),
    ("server.workers", "workload.workers"),
    (
        "server.podOverrides.serviceAccountName",
        "workload.overrides.serviceAccountName",
    ),
    (
        "server.podOverrides.terminationGracePeriodSeconds",
        "workload.overrides.terminationGracePeriodSeconds",
    ),
    ("server.podOverrides.volumes", "workload.overrides.volumes"),
    (
        "server.podOverrides.volumeMounts",
        "workload.overrides.volumeMounts",
    ),
    ("server.podDisruptionBudget", "workload.podDisruptionBudget"),
    (
        "server.topologySpreadConstraints",
        "workload.topologySpreadConstraints",
    ),
    ("server.autoscaling", "workload.autoscaling"),
    ("server.storage", "workload.storage"),
    (
        "server.userConfig.configMapName",
        "overrideConfig.configMapName",
    ),
    ("server.tlsConfig.caBundle", "networking.tls.caBundle"),
    ("network.allowedFrom", "networking.allowedFrom"),
];

/// Status fields both versions have.
const STATUS_SAME: &[&str] = &[
    "phase",
    "conditions",
    "version",
    "distributionConfig",
    "availableReplicas",
    "serviceURL",
    "routeURL",
];

fn get<'a>(v: &'a Json, path: &str) -> Option<&'a Json> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn set(v: &mut Json, path: &str, value: Json) {
    let mut cur = v;
    let mut keys = path.split('.').peekable();
    while let Some(k) = keys.next() {
        if !cur.is_object() {
            *cur = Json::Object(Map::new());
        }
        let Json::Object(m) = cur else { return };
        if keys.peek().is_none() {
            m.insert(k.to_string(), value);
            return;
        }
        cur = m
            .entry(k.to_string())
            .or_insert_with(|| Json::Object(Map::new()));
    }
}

fn copy(from: &Json, from_path: &str, to: &mut Json, to_path: &str) {
    if let Some(v) = get(from, from_path) {
        set(to, to_path, v.clone());
    }
}

/// The object's envelope in the other version: kind and metadata as they are.
fn envelope(obj: &Json, api_version: &str) -> Json {
    let mut out = Map::new();
    out.insert("apiVersion".into(), Json::String(api_version.into()));
    for k in ["kind", "metadata"] {
        if let Some(v) = obj.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    Json::Object(out)
}

fn status(obj: &Json, out: &mut Json) {
    let Some(s) = obj.get("status") else { return };
    let mut mapped = Json::Object(Map::new());
    for k in STATUS_SAME {
        copy(s, k, &mut mapped, k);
    }
    set(out, "status", mapped);
}

/// v1alpha1 -> v1alpha2 by the table; `exposeRoute: true` becomes `expose: {enabled: true}`.
pub fn up(v1: &Json) -> Json {
    let mut out = envelope(v1, "llamastack.io/v1alpha2");
    if let Some(spec) = v1.get("spec") {
        let mut s = Json::Object(Map::new());
        for (old, new) in SPEC_MOVES {
            copy(spec, old, &mut s, new);
        }
        if get(spec, "network.exposeRoute") == Some(&Json::Bool(true)) {
            set(&mut s, "networking.expose.enabled", Json::Bool(true));
        }
        set(&mut out, "spec", s);
    }
    status(v1, &mut out);
    out
}

/// v1alpha2 -> v1alpha1 by the table; an exposure that is on becomes `exposeRoute: true`.
pub fn down(v2: &Json) -> Json {
    let mut out = envelope(v2, "llamastack.io/v1alpha1");
    if let Some(spec) = v2.get("spec") {
        let mut s = Json::Object(Map::new());
        for (old, new) in SPEC_MOVES {
            copy(spec, new, &mut s, old);
        }
        if let Some(expose) = get(spec, "networking.expose") {
            let on = expose.get("enabled") != Some(&Json::Bool(false));
            set(&mut s, "network.exposeRoute", Json::Bool(on));
        }
        set(&mut out, "spec", s);
    }
    status(v2, &mut out);
    out
}
