//! Embeds `configs/` into the engine and refuses to build when a distribution named in
//! `distributions.json` lacks its base config or its provider catalog (seed task 2.2
//! `validate-configs`, D2).
//!
//! Each base config is also compiled into a function that builds its YAML document directly:
//! a plugin instance is fresh for every call, so parsing YAML at run time would be paid on
//! every call.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let configs = manifest.join("..").join("configs");
    println!("cargo:rerun-if-changed={}", configs.display());
    let index_path = configs.join("distributions.json");
    println!("cargo:rerun-if-changed={}", index_path.display());
    let index_text = std::fs::read_to_string(&index_path).unwrap_or_else(|e| {
        panic!(
            "validate-configs: cannot read {}: {e}",
            index_path.display()
        )
    });
    let index: serde_json::Value = serde_json::from_str(&index_text).unwrap_or_else(|e| {
        panic!(
            "validate-configs: {} is not JSON: {e}",
            index_path.display()
        )
    });
    let entries = index["distributions"].as_array().unwrap_or_else(|| {
        panic!(
            "validate-configs: {} has no `distributions` list",
            index_path.display()
        )
    });

    let mut problems = Vec::new();
    let mut bases = String::new();
    let mut builder_fns = String::new();
    let mut builders: Vec<(String, String, String)> = Vec::new();
    let mut catalogs: Vec<String> = Vec::new();
    for entry in entries {
        let name = entry["name"].as_str().unwrap_or_default();
        let catalog = entry["catalog"].as_str().unwrap_or_default();
        if name.is_empty()
            || catalog.is_empty()
            || entry["image"].as_str().unwrap_or_default().is_empty()
        {
            problems.push(format!("entry {entry} needs name, image and catalog"));
            continue;
        }
        let base = configs.join(name).join("config.yaml");
        check(&base, &mut problems);
        writeln!(
            bases,
            "    ({name:?}, include_str!({:?})),",
            base.display().to_string()
        )
        .unwrap();
        match std::fs::read_to_string(&base).map(|t| serde_yaml::from_str::<serde_yaml::Value>(&t))
        {
            Ok(Ok(serde_yaml::Value::Mapping(m))) => {
                let f = format!("base_{}", builders.len());
                builder_fns.push_str(&builder_code(&f, &m));
                let text = std::fs::read(&base).unwrap_or_default();
                builders.push((name.to_string(), f, sha256_hex(&text)));
            }
            Ok(Ok(_)) => problems.push(format!("{} is not a YAML mapping", base.display())),
            Ok(Err(e)) => problems.push(format!("{} is not YAML: {e}", base.display())),
            Err(_) => {}
        }
        let cat = configs.join("catalogs").join(format!("{catalog}.json"));
        check(&cat, &mut problems);
        if !catalogs.contains(&catalog.to_string()) {
            catalogs.push(catalog.to_string());
        }
    }
    if !problems.is_empty() {
        panic!("validate-configs failed:\n  {}", problems.join("\n  "));
    }
    let mut cats = String::new();
    for c in &catalogs {
        let p = configs.join("catalogs").join(format!("{c}.json"));
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => writeln!(cats, "    ({c:?}, {}),", catalog_code(&v)).unwrap(),
            Err(e) => panic!("validate-configs: {} is not JSON: {e}", p.display()),
        }
    }
    let table: String = builders
        .iter()
        .map(|(n, f, h)| {
            format!(
                "    ({n:?}, BaseBuilder {{ doc: {f}, providers: {f}_providers, sha256: {h:?} }}),\n"
            )
        })
        .collect();
    let out = format!(
        "/// `configs/distributions.json`.\npub static DISTRIBUTIONS_JSON: &str = include_str!({:?});\n\
         /// Base `config.yaml` per distribution name.\npub static BASE_CONFIGS: &[(&str, &str)] = &[\n{bases}];\n\
         /// Provider catalog per llama-stack release.\npub static CATALOGS: &[(&str, Catalog)] = &[\n{cats}];\n\
         use serde_yaml::{{Mapping, Number, Value}};\n\
         use super::{{BaseBuilder, Catalog, ProviderInfo}};\n\
         /// The base configs as code, by distribution name.\n\
         pub static BASE_BUILDERS: &[(&str, BaseBuilder)] = &[\n{table}];\n{builder_fns}",
        index_path.display().to_string()
    );
    let dest =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded.rs");
    std::fs::write(dest, out).expect("write embedded.rs");
}

/// `{f}(skip)` builds the base with the provider lists of skipped APIs left empty (the CR
/// replaces or disables them); `{f}_providers(api)` builds one API's list on its own.
fn builder_code(f: &str, m: &serde_yaml::Mapping) -> String {
    let providers = m.get("providers").and_then(|p| p.as_mapping());
    let mut lists = String::new();
    let mut arms = String::new();
    let mut doc = format!("let mut m = Mapping::with_capacity({});", m.len());
    for (k, v) in m {
        let value = match (k.as_str(), providers) {
            (Some("providers"), Some(p)) => {
                let mut inner = format!("let mut p = Mapping::with_capacity({});", p.len());
                for (i, (api, list)) in p.iter().enumerate() {
                    let Some(name) = api.as_str() else {
                        write!(
                            inner,
                            " p.insert({}, {});",
                            value_code(api),
                            value_code(list)
                        )
                        .unwrap();
                        continue;
                    };
                    writeln!(lists, "fn {f}_p{i}() -> Value {{ {} }}", value_code(list)).unwrap();
                    writeln!(arms, "        {name:?} => Some({f}_p{i}()),").unwrap();
                    write!(
                        inner,
                        " p.insert(Value::String(String::from({name:?})), if skip({name:?}) {{ Value::Sequence(Vec::new()) }} else {{ {f}_p{i}() }});"
                    )
                    .unwrap();
                }
                format!("Value::Mapping({{ {inner} p }})")
            }
            _ => value_code(v),
        };
        write!(doc, " m.insert({}, {value});", value_code(k)).unwrap();
    }
    format!(
        "#[allow(unused_variables)]\nfn {f}(skip: &dyn Fn(&str) -> bool) -> Mapping {{\n{doc} m\n}}\n\
         fn {f}_providers(api: &str) -> Option<Value> {{\n    match api {{\n{arms}        _ => None,\n    }}\n}}\n{lists}"
    )
}

/// A `Catalog` literal: static tables, sorted for binary search, read without parsing.
fn catalog_code(v: &serde_json::Value) -> String {
    let str_of = |v: &serde_json::Value, k: &str| -> String {
        let s = v[k].as_str();
        assert!(
            s.is_some() || v[k].is_null(),
            "validate-configs: catalog field {k} is not a string"
        );
        match s {
            Some(s) => format!("Some({s:?})"),
            None => "None".into(),
        }
    };
    let strs = |v: &serde_json::Value, k: &str| -> String {
        let items: Vec<String> = v[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| {
                        format!(
                            "{:?}",
                            s.as_str().unwrap_or_else(|| panic!(
                                "validate-configs: catalog {k} holds a non-string"
                            ))
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        format!("&[{}]", items.join(", "))
    };
    let sorted = |v: &serde_json::Value| -> Vec<(String, serde_json::Value)> {
        let mut items: Vec<(String, serde_json::Value)> = v
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        items
    };
    let mut providers = String::new();
    for (api, types) in sorted(&v["providers"]) {
        let mut inner = String::new();
        for (t, p) in sorted(&types) {
            write!(
                inner,
                "({t:?}, ProviderInfo {{ endpoint_field: {}, api_key_field: {}, fields: {}, required: {}, api_dependencies: {}, optional_api_dependencies: {}, tool_groups: {}, deprecation_error: {}, deprecation_warning: {} }}), ",
                str_of(&p, "endpointField"),
                str_of(&p, "apiKeyField"),
                strs(&p, "fields"),
                strs(&p, "required"),
                strs(&p, "apiDependencies"),
                strs(&p, "optionalApiDependencies"),
                strs(&p, "toolGroups"),
                str_of(&p, "deprecationError"),
                str_of(&p, "deprecationWarning"),
            )
            .unwrap();
        }
        writeln!(providers, "        ({api:?}, &[{inner}]),").unwrap();
    }
    let routing: Vec<String> = sorted(&v["routingTables"])
        .iter()
        .map(|(k, t)| format!("({k:?}, {:?})", t.as_str().unwrap_or_default()))
        .collect();
    format!(
        "Catalog {{ llama_stack_version: {:?}, config_version: {}, apis: {}, routing_tables: &[{}], providers: &[\n{providers}    ] }}",
        v["llamaStackVersion"]
            .as_str()
            .unwrap_or_else(|| panic!("validate-configs: catalog lacks llamaStackVersion")),
        v["configVersion"].as_u64().unwrap_or(0),
        strs(v, "apis"),
        routing.join(", "),
    )
}

/// Rust code for an expression building `v`.
fn value_code(v: &serde_yaml::Value) -> String {
    use serde_yaml::Value;
    match v {
        Value::Null => "Value::Null".into(),
        Value::Bool(b) => format!("Value::Bool({b})"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                format!("Value::Number(Number::from({i}i64))")
            } else if let Some(u) = n.as_u64() {
                format!("Value::Number(Number::from({u}u64))")
            } else {
                let f = n.as_f64().unwrap_or_default();
                format!(
                    "Value::Number(Number::from(f64::from_bits({:#x})))",
                    f.to_bits()
                )
            }
        }
        Value::String(s) => format!("Value::String(String::from({s:?}))"),
        Value::Sequence(items) => {
            let inner: Vec<String> = items.iter().map(value_code).collect();
            format!("Value::Sequence(vec![{}])", inner.join(", "))
        }
        Value::Mapping(m) if m.is_empty() => "Value::Mapping(Mapping::new())".into(),
        Value::Mapping(m) => format!("Value::Mapping({{ {} }})", mapping_code(m)),
        Value::Tagged(_) => panic!("validate-configs: YAML tags are not supported in base configs"),
    }
}

fn mapping_code(m: &serde_yaml::Mapping) -> String {
    if m.is_empty() {
        return "Mapping::new()".into();
    }
    let mut s = format!("let mut m = Mapping::with_capacity({});", m.len());
    for (k, v) in m {
        write!(s, " m.insert({}, {});", value_code(k), value_code(v)).unwrap();
    }
    s.push_str(" m");
    s
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn check(path: &Path, problems: &mut Vec<String>) {
    println!("cargo:rerun-if-changed={}", path.display());
    if !path.is_file() {
        problems.push(format!("missing {}", path.display()));
    }
}
