//! Embeds `configs/` into the engine and refuses to build when a distribution named in
//! `distributions.json` lacks its base config or its provider catalog (seed task 2.2
//! `validate-configs`, D2).

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
    let out = format!(
        "/// `configs/distributions.json`.\npub static DISTRIBUTIONS_JSON: &str = include_str!({:?});\n\
         /// Base `config.yaml` per distribution name.\npub static BASE_CONFIGS: &[(&str, &str)] = &[\n{bases}];\n\
         /// Provider catalog per llama-stack release.\npub static CATALOGS: &[(&str, &str)] = &[\n{cats}];\n",
        index_path.display().to_string()
    );
    let dest =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded.rs");
    std::fs::write(dest, out).expect("write embedded.rs");
}

fn check(path: &Path, problems: &mut Vec<String>) {
    println!("cargo:rerun-if-changed={}", path.display());
    if !path.is_file() {
        problems.push(format!("missing {}", path.display()));
    }
}
