//! config.yaml schema version (FR-027..029, D3).

use super::Base;
use crate::error::{Diagnostics, Reason};
use serde_yaml::Value;

/// Versions this engine generates for: n and n-1, ascending (FR-028).
pub const SUPPORTED: [u32; 2] = [1, 2];

/// Reads `version` (integer or integer-like string; absent means 2) and checks it.
pub fn detect(base: &Base, d: &mut Diagnostics) -> u32 {
    let shown = match base.doc.get("version") {
        None | Some(Value::Null) => return 2,
        Some(Value::Number(n)) => match n.as_u64().and_then(|v| u32::try_from(v).ok()) {
            Some(v) if SUPPORTED.contains(&v) => return v,
            _ => n.to_string(),
        },
        Some(Value::String(s)) => match s.trim().parse::<u32>() {
            Ok(v) if SUPPORTED.contains(&v) => return v,
            _ => s.clone(),
        },
        Some(other) => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    let list: Vec<String> = SUPPORTED.iter().map(u32::to_string).collect();
    d.error(
        base.path,
        Reason::UnsupportedConfigVersion,
        format!(
            "Unsupported config.yaml version {shown}. Supported versions: {}",
            list.join(", ")
        ),
    );
    0
}
