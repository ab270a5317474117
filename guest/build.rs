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
    let mut builders: Vec<(String, String)> = Vec::new();
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
                writeln!(
                    builder_fns,
                    "fn {f}() -> Mapping {{\n{}\n}}",
                    mapping_code(&m)
                )
                .unwrap();
                builders.push((name.to_string(), f));
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
        writeln!(
            cats,
            "    ({c:?}, include_str!({:?})),",
            p.display().to_string()
        )
        .unwrap();
    }
    let table: String = builders
        .iter()
        .map(|(n, f)| format!("    ({n:?}, {f} as Builder),\n"))
        .collect();
    let out = format!(
        "/// `configs/distributions.json`.\npub static DISTRIBUTIONS_JSON: &str = include_str!({:?});\n\
         /// Base `config.yaml` per distribution name.\npub static BASE_CONFIGS: &[(&str, &str)] = &[\n{bases}];\n\
         /// Provider catalog per llama-stack release.\npub static CATALOGS: &[(&str, &str)] = &[\n{cats}];\n\
         use serde_yaml::{{Mapping, Number, Value}};\n\
         /// Builds one parsed base config.\npub type Builder = fn() -> Mapping;\n\
         /// Builders of the parsed base configs, by distribution name.\n\
         pub static BASE_BUILDERS: &[(&str, Builder)] = &[\n{table}];\n{builder_fns}",
        index_path.display().to_string()
    );
    let dest =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded.rs");
    std::fs::write(dest, out).expect("write embedded.rs");
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

fn check(path: &Path, problems: &mut Vec<String>) {
    println!("cargo:rerun-if-changed={}", path.display());
    if !path.is_file() {
        problems.push(format!("missing {}", path.display()));
    }
}
