//! wit-bindgen glue for the `distribution-plugin` world (`wit/`): JSON in, records out. No
//! logic lives here. Vendor plugins reuse it: they implement [`Guest`] with [`info`],
//! [`generate`] and [`validate`] over their own registry and rules, then call
//! `llama_stack_config::component::export_plugin!(TheirType)`.

wit_bindgen::generate!({
    world: "distribution-plugin",
    path: "../wit",
    pub_export_macro: true,
    export_macro_name: "export_plugin",
    default_bindings_module: "llama_stack_config::component",
});

pub use exports::llamastack::config::engine::{self as wit, Guest};

use crate::catalog::Registry;
use crate::{FieldError, GenerateRequest, Generated, Rule};

/// What a plugin is: its name, version, registry, extra rules and image repositories.
pub struct PluginDef {
    pub name: &'static str,
    pub version: &'static str,
    pub registry: fn() -> &'static Registry,
    pub rules: &'static [Rule],
    pub image_repositories: &'static [&'static str],
}

pub fn info(p: &PluginDef) -> wit::PluginInfo {
    wit::PluginInfo {
        name: p.name.to_string(),
        version: p.version.to_string(),
        distributions: (p.registry)()
            .distributions()
            .iter()
            .map(|d| wit::DistributionInfo {
                name: d.entry.name.clone(),
                image: d.entry.image.clone(),
                llama_stack_version: d.entry.llama_stack_version.clone(),
                description: d.entry.description.clone(),
            })
            .collect(),
        image_repositories: p.image_repositories.iter().map(|s| s.to_string()).collect(),
    }
}

pub fn generate(p: &PluginDef, request: String) -> Result<wit::Generated, Vec<wit::FieldError>> {
    let req = parse(&request).map_err(|e| vec![e])?;
    crate::generate_with((p.registry)(), p.rules, &req)
        .map(to_wit)
        .map_err(errors)
}

pub fn validate(p: &PluginDef, request: String) -> Vec<wit::FieldError> {
    match parse(&request) {
        Ok(req) => errors(crate::validate_with((p.registry)(), p.rules, &req)),
        Err(e) => vec![e],
    }
}

fn parse(request: &str) -> Result<GenerateRequest, wit::FieldError> {
    serde_json::from_str(request).map_err(|e| wit::FieldError {
        path: "request".into(),
        reason: "Invalid".into(),
        message: format!("the request is not a JSON generate request: {e}"),
    })
}

fn errors(v: Vec<FieldError>) -> Vec<wit::FieldError> {
    v.into_iter()
        .map(|e| wit::FieldError {
            path: e.path,
            reason: e.reason.as_str().to_string(),
            message: e.message,
        })
        .collect()
}

fn to_wit(g: Generated) -> wit::Generated {
    let source = serde_json::to_value(g.distribution.config_source)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    wit::Generated {
        config_yaml: g.config_yaml,
        content_hash: g.content_hash,
        env: g
            .env
            .into_iter()
            .map(|e| wit::SecretEnv {
                name: e.name,
                secret_name: e.secret_name,
                secret_key: e.secret_key,
            })
            .collect(),
        provider_count: g.provider_count,
        resource_count: g.resource_count,
        config_version: g.config_version,
        warnings: g.warnings,
        derived_secrets: g
            .derived_secrets
            .into_iter()
            .map(|d| wit::DerivedSecret {
                name: d.name,
                source_secret: d.source_secret,
                source_key: d.source_key,
                format: d.format,
            })
            .collect(),
        distribution: wit::ResolvedDistribution {
            name: g.distribution.name,
            image: g.distribution.image,
            llama_stack_version: g.distribution.llama_stack_version,
            config_source: source,
            base_config_hash: g.distribution.base_config_hash,
        },
    }
}

/// v1alpha1 <-> v1alpha2 (`crate::convert`). Only the built-in plugin exports it: the
/// operator converts with the built-in engine, never a vendor's.
pub fn convert(object: String, to_version: String) -> Result<String, wit::ConvertError> {
    let field = |path: &str, message: String| {
        wit::ConvertError::Invalid(vec![wit::FieldError {
            path: path.into(),
            reason: "Invalid".into(),
            message,
        }])
    };
    let to = crate::convert::Version::parse(&to_version).ok_or_else(|| {
        field(
            "toVersion",
            format!("{to_version} is not a version: use v1alpha1 or v1alpha2"),
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(&object)
        .map_err(|e| field("object", format!("the object is not JSON: {e}")))?;
    let out =
        crate::convert::convert(&value, to).map_err(|e| wit::ConvertError::Invalid(errors(e)))?;
    serde_json::to_string(&out).map_err(|e| field("object", format!("cannot encode: {e}")))
}

/// The built-in plugin: the distributions of `configs/`, no extra rules.
pub static BUILTIN: PluginDef = PluginDef {
    name: "llama-stack-operator-builtin",
    version: env!("CARGO_PKG_VERSION"),
    registry: crate::catalog::builtin,
    rules: &[],
    image_repositories: &["docker.io/llamastack"],
};

pub struct Builtin;

impl Guest for Builtin {
    fn info() -> wit::PluginInfo {
        info(&BUILTIN)
    }

    fn generate(request: String) -> Result<wit::Generated, Vec<wit::FieldError>> {
        generate(&BUILTIN, request)
    }

    fn validate(request: String) -> Vec<wit::FieldError> {
        validate(&BUILTIN, request)
    }

    fn convert(object: String, to_version: String) -> Result<String, wit::ConvertError> {
        convert(object, to_version)
    }
}

#[cfg(feature = "builtin-plugin")]
export_plugin!(Builtin);
