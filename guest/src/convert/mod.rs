//! v1alpha1 <-> v1alpha2 conversion (FR-080..083), lossless both ways: the field table
//! (`mapping`) carries what both versions can say, and what one version cannot say travels in
//! an annotation as the merge patch that restores it (`merge`).
//!
//! Down (v1alpha2 -> v1alpha1), for an object `o`:
//! `v1 = down(o)`, then `llamastack.io/v1alpha2-fields = diff(up(v1), o)`; up reverses it.
//! Both directions are the same construction, so either round trip returns the original.

mod mapping;
mod merge;

use crate::error::{FieldError, Reason};
use serde_json::{Map, Value as Json};

/// On a v1alpha1 object: the v1alpha2 content it cannot hold (FR-083 round trips).
pub const V1ALPHA2_FIELDS: &str = "llamastack.io/v1alpha2-fields";
/// On a v1alpha2 object: the v1alpha1 content it cannot hold (`containerSpec.name`,
/// `userConfig.configMapNamespace`, an explicit `exposeRoute: false`, ...).
pub const V1ALPHA1_FIELDS: &str = "llamastack.io/v1alpha1-fields";

const GROUP: &str = "llamastack.io";

/// One direction of the field table.
type Mapping = fn(&Json) -> Json;

/// An API version of `LlamaStackDistribution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1alpha1,
    V1alpha2,
}

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        match s.strip_prefix("llamastack.io/").unwrap_or(s) {
            "v1alpha1" => Some(Version::V1alpha1),
            "v1alpha2" => Some(Version::V1alpha2),
            _ => None,
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Version::V1alpha1 => "llamastack.io/v1alpha1",
            Version::V1alpha2 => "llamastack.io/v1alpha2",
        }
    }
}

/// Converts one `LlamaStackDistribution` object (any version) to `to`. Only the envelope is
/// checked; the fields are moved as they are (validation is the schema's and the webhook's).
pub fn convert(object: &Json, to: Version) -> Result<Json, Vec<FieldError>> {
    let from = check_envelope(object)?;
    if from == to {
        return Ok(object.clone());
    }
    let (map, back, keep_key, restore_key): (Mapping, Mapping, _, _) = match to {
        Version::V1alpha1 => (mapping::down, mapping::up, V1ALPHA2_FIELDS, V1ALPHA1_FIELDS),
        Version::V1alpha2 => (mapping::up, mapping::down, V1ALPHA1_FIELDS, V1ALPHA2_FIELDS),
    };
    let mut source = object.clone();
    // What an earlier conversion parked here for the target version.
    let parked = take_annotation(&mut source, restore_key)?;
    let mut out = map(&source);
    if let Some(patch) = parked {
        merge::apply(&mut out, &patch);
    }
    // What the target version cannot say, measured against mapping it straight back.
    if let Some(rest) = merge::diff(&back(&out), &source) {
        put_annotation(&mut out, keep_key, &rest);
    }
    Ok(out)
}

fn error(path: &str, reason: Reason, message: String) -> Vec<FieldError> {
    vec![FieldError {
        path: path.into(),
        reason,
        message,
    }]
}

fn check_envelope(object: &Json) -> Result<Version, Vec<FieldError>> {
    if !object.is_object() {
        return Err(error(
            "object",
            Reason::Invalid,
            "a LlamaStackDistribution object must be a JSON object".into(),
        ));
    }
    match object.get("kind").and_then(Json::as_str) {
        Some("LlamaStackDistribution") => {}
        other => {
            return Err(error(
                "kind",
                Reason::NotSupported,
                format!(
                    "only LlamaStackDistribution objects convert, not {}",
                    other.unwrap_or("an object without kind")
                ),
            ));
        }
    }
    let api_version = object
        .get("apiVersion")
        .and_then(Json::as_str)
        .unwrap_or_default();
    match api_version.split_once('/') {
        Some((GROUP, v)) => Version::parse(v).ok_or_else(|| {
            error("apiVersion", Reason::NotSupported, format!("{api_version} is not a served version: use llamastack.io/v1alpha1 or llamastack.io/v1alpha2"))
        }),
        _ => Err(error("apiVersion", Reason::NotSupported, format!("apiVersion \"{api_version}\" is not in the {GROUP} group"))),
    }
}

/// Removes our annotation and returns the patch it holds.
fn take_annotation(obj: &mut Json, key: &str) -> Result<Option<Json>, Vec<FieldError>> {
    let Some(annotations) = obj
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Json::as_object_mut)
    else {
        return Ok(None);
    };
    let Some(text) = annotations.remove(key) else {
        return Ok(None);
    };
    if annotations.is_empty()
        && let Some(m) = obj.get_mut("metadata").and_then(Json::as_object_mut)
    {
        m.remove("annotations");
    }
    let path = format!("metadata.annotations[{key}]");
    let text = text
        .as_str()
        .ok_or_else(|| error(&path, Reason::Invalid, "must be a string".into()))?;
    serde_json::from_str(text).map(Some).map_err(|e| {
        error(&path, Reason::Invalid, format!("is not the JSON the operator wrote ({e}); remove the annotation to convert without it"))
    })
}

fn put_annotation(obj: &mut Json, key: &str, patch: &Json) {
    let Some(meta) = obj.get_mut("metadata") else {
        return;
    };
    if !meta.is_object() {
        *meta = Json::Object(Map::new());
    }
    let Json::Object(m) = meta else { return };
    let annotations = m
        .entry("annotations")
        .or_insert_with(|| Json::Object(Map::new()));
    if let Json::Object(a) = annotations {
        a.insert(key.into(), Json::String(patch.to_string()));
    }
}

#[cfg(test)]
mod tests;
