//! Small helpers over `serde_yaml::Value` that keep key order (the base config's order is
//! part of the output, NFR-001).

use serde_json::Value as Json;
use serde_yaml::{Mapping, Value};

pub fn key(s: &str) -> Value {
    Value::String(s.to_string())
}

pub fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// The mapping under `k`, created (empty, at the end) if absent or not a mapping.
pub fn ensure_map<'a>(m: &'a mut Mapping, k: &str) -> &'a mut Mapping {
    if !matches!(m.get(k), Some(Value::Mapping(_))) {
        m.insert(key(k), Value::Mapping(Mapping::new()));
    }
    match m.get_mut(k) {
        Some(Value::Mapping(inner)) => inner,
        _ => unreachable!("inserted a mapping above"),
    }
}

/// The sequence under `k`, created if absent or not a sequence.
pub fn ensure_seq<'a>(m: &'a mut Mapping, k: &str) -> &'a mut Vec<Value> {
    if !matches!(m.get(k), Some(Value::Sequence(_))) {
        m.insert(key(k), Value::Sequence(Vec::new()));
    }
    match m.get_mut(k) {
        Some(Value::Sequence(inner)) => inner,
        _ => unreachable!("inserted a sequence above"),
    }
}

/// Removes `k` keeping the order of the other keys.
pub fn remove(m: &mut Mapping, k: &str) -> Option<Value> {
    m.shift_remove(k)
}

/// JSON from the CR -> YAML for config.yaml. serde_json's map is sorted, so user maps come
/// out in key order whatever order they were written in.
pub fn from_json(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                Value::Number(u.into())
            } else {
                Value::Number(n.as_f64().unwrap_or_default().into())
            }
        }
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::Sequence(a.iter().map(from_json).collect()),
        Json::Object(o) => Value::Mapping(o.iter().map(|(k, v)| (key(k), from_json(v))).collect()),
    }
}

/// Deep merge: mappings merge key by key, anything else is replaced by `over` (D6).
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, over) => *slot = over,
    }
}

/// The provider id an entry is enabled under: a literal id, or the id of the conditional
/// idiom `${env.X:+id}`. `None` for disabled entries (empty, `__disabled__`).
pub fn provider_id_of(entry: &Value) -> Option<IdForm> {
    let raw = str_of(entry, "provider_id")?;
    id_form(raw)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdForm {
    Literal(String),
    /// Enabled only when the env var (second field) is set.
    Conditional(String, String),
}

impl IdForm {
    pub fn id(&self) -> &str {
        match self {
            IdForm::Literal(s) | IdForm::Conditional(s, _) => s,
        }
    }
}

pub fn id_form(raw: &str) -> Option<IdForm> {
    let raw = raw.trim();
    if raw.is_empty() || raw == "__disabled__" {
        return None;
    }
    if let Some(rest) = raw.strip_prefix("${env.") {
        let body = rest.strip_suffix('}')?;
        let (var, alt) = body.split_once(":+")?;
        return (!alt.is_empty()).then(|| IdForm::Conditional(alt.to_string(), var.to_string()));
    }
    if raw.contains("${") {
        return None;
    }
    Some(IdForm::Literal(raw.to_string()))
}

/// True when a config value is a non-empty literal or an env reference with a non-empty default.
pub fn has_value(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() {
                return false;
            }
            match s.strip_prefix("${env.").and_then(|r| r.strip_suffix('}')) {
                Some(body) => match body.split_once(":=") {
                    Some((_, default)) => !default.is_empty(),
                    // `${env.X}` must be set for the server to start, so it counts as a value.
                    None => !body.contains(":+"),
                },
                None => true,
            }
        }
        Some(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_forms() {
        assert_eq!(id_form("vllm"), Some(IdForm::Literal("vllm".into())));
        assert_eq!(
            id_form("${env.VLLM_URL:+vllm}"),
            Some(IdForm::Conditional("vllm".into(), "VLLM_URL".into()))
        );
        assert_eq!(id_form("${env.X:=y}"), None);
        assert_eq!(id_form("__disabled__"), None);
        assert_eq!(id_form(""), None);
    }

    #[test]
    fn values() {
        assert!(!has_value(Some(&key("${env.VLLM_URL:=}"))));
        assert!(has_value(Some(&key("${env.VLLM_URL:=http://x}"))));
        assert!(has_value(Some(&key("${env.LLSD_X}"))));
        assert!(has_value(Some(&key("http://x"))));
        assert!(!has_value(None));
        assert!(!has_value(Some(&Value::Null)));
    }

    #[test]
    fn merge_is_deep_and_over_wins() {
        let mut base: Value = serde_yaml::from_str("a: 1\nb: {c: 2, d: 3}\n").unwrap();
        merge(
            &mut base,
            serde_yaml::from_str("b: {d: 4, e: 5}\nf: [1]\n").unwrap(),
        );
        assert_eq!(
            serde_yaml::to_string(&base).unwrap(),
            "a: 1\nb:\n  c: 2\n  d: 4\n  e: 5\nf:\n- 1\n"
        );
    }
}
