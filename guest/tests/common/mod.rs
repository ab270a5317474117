//! Shared by the golden runner and (later) the component runner: the same cases, the same
//! expected bytes.

#![allow(dead_code)]

pub mod mutate;

use llama_stack_config::{
    BaseConfigInput, BaseSource, ExternalProviderMetadata, FieldError, GenerateRequest, Generated,
};
use std::fs;
use std::path::{Path, PathBuf};

pub fn golden_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("golden")
}

pub fn case_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(golden_root())
        .expect("tests/golden exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("cr.yaml").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// Builds the request for a case directory.
pub fn request(dir: &Path) -> GenerateRequest {
    let cr = fs::read_to_string(dir.join("cr.yaml")).expect("cr.yaml");
    let doc: serde_json::Value = serde_yaml::from_str(&cr).expect("cr.yaml is YAML");
    let mut req = llama_stack_config::resource::request_from_object(doc)
        .expect("cr.yaml is a LlamaStackDistribution");
    if let Ok(text) = fs::read_to_string(dir.join("base-config.yaml")) {
        let source = BaseSource::for_spec(&req.spec);
        req.base_config = Some(BaseConfigInput { yaml: text, source });
    }
    if let Ok(text) = fs::read_to_string(dir.join("provider-metadata.yaml")) {
        let meta: Vec<ExternalProviderMetadata> =
            serde_yaml::from_str(&text).expect("provider-metadata.yaml");
        req.external_provider_metadata = meta;
    }
    req
}

/// The expected files of a case for a given outcome: (file, Some(content) | None = absent).
pub fn render_case(
    dir: &Path,
    generate: impl Fn(&GenerateRequest) -> Result<Generated, Vec<FieldError>>,
) -> Vec<(&'static str, Option<String>)> {
    let req = request(dir);
    match generate(&req) {
        Ok(out) => {
            let mut meta = serde_json::to_value(&out).expect("Generated serialises");
            if let Some(m) = meta.as_object_mut() {
                m.remove("configYaml");
            }
            let json = serde_json::to_string_pretty(&meta).expect("json") + "\n";
            vec![
                ("config.yaml", Some(out.config_yaml)),
                ("generated.json", Some(json)),
                ("errors.json", None),
            ]
        }
        Err(errors) => {
            let json = serde_json::to_string_pretty(&errors).expect("json") + "\n";
            vec![
                ("config.yaml", None),
                ("generated.json", None),
                ("errors.json", Some(json)),
            ]
        }
    }
}
