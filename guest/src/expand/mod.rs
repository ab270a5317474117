//! The generation pipeline: ordered, pure steps over the base config (FR-021, §7.1 step 6-7).

mod base;
mod counts;
mod deps;
mod disabled;
mod external;
mod providers;
mod refs;
mod resources;
mod secrets;
mod server;
mod storage;
mod version;

use crate::catalog::{Catalog, Registry};
use crate::error::{Diagnostics, FieldError};
use crate::render;
use crate::request::{GenerateRequest, Generated, SecretEnv};
use crate::spec::{Spec, parse_spec};
use serde_yaml::Mapping;

pub use base::Base;

/// State shared by the steps of one generate call.
pub(crate) struct Context<'a> {
    pub spec: &'a Spec,
    pub catalog: Option<&'static Catalog>,
    pub doc: Mapping,
    pub env: Vec<SecretEnv>,
    /// (env name, CR path) in the order references were met, for D7 collision errors.
    pub env_paths: Vec<(String, String)>,
    pub derived: Vec<crate::request::DerivedSecret>,
    pub d: Diagnostics,
    pub cr_name: Option<&'a str>,
    /// Name used in default sqlite paths (`~/.llama/distributions/<distro>`).
    pub distro: String,
    /// `llama-stack <version>` for messages.
    pub release: String,
    /// Pre-0.3 layout: top-level `metadata_store`/`inference_store` and resource lists.
    pub legacy: bool,
    /// See [`Base::embedded`].
    pub embedded: Option<&'static crate::catalog::Distribution>,
}

impl Context<'_> {
    /// Where resource lists live: `registered_resources`, or the top level in the legacy layout.
    pub fn resources_mut(&mut self) -> &mut Mapping {
        if self.legacy {
            &mut self.doc
        } else {
            crate::yaml::ensure_map(&mut self.doc, "registered_resources")
        }
    }

    pub fn resources(&self) -> Option<&Mapping> {
        if self.legacy {
            Some(&self.doc)
        } else {
            self.doc
                .get("registered_resources")
                .and_then(|v| v.as_mapping())
        }
    }
}

/// Modern configs have `storage`/`registered_resources`; older releases put stores and
/// resources at the top level.
fn is_legacy(doc: &Mapping) -> bool {
    let modern = ["storage", "registered_resources"]
        .iter()
        .any(|k| doc.contains_key(*k));
    let old = [
        "metadata_store",
        "inference_store",
        "models",
        "shields",
        "tool_groups",
    ]
    .iter()
    .any(|k| doc.contains_key(*k));
    old && !modern
}

/// Runs the whole pipeline. Errors are every problem found, in spec order.
/// A vendor's extra expansion step: runs on the config after the built-in steps, before the
/// dependency check, hashing and rendering. Errors and warnings go to the diagnostics.
pub type Rule = fn(&mut Mapping, &Spec, &mut crate::error::Diagnostics);

pub fn generate(
    registry: &'static Registry,
    rules: &[Rule],
    req: &GenerateRequest,
) -> Result<Generated, Vec<FieldError>> {
    let mut d = Diagnostics::default();
    let spec = parse_spec(&req.spec, &mut d);
    if d.has_errors() {
        return Err(finish_errors(d));
    }
    let Some(base) = base::resolve(registry, &spec, req, &mut d) else {
        return Err(finish_errors(d));
    };
    let config_version = version::detect(&base, &mut d);
    if d.has_errors() {
        return Err(finish_errors(d));
    }
    let release = match base.catalog {
        Some(c) => format!("llama-stack {}", c.llama_stack_version),
        None => "this base config".to_string(),
    };
    let distro = base
        .doc
        .get("distro_name")
        .or_else(|| base.doc.get("image_name"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| "llama-stack".to_string());
    let legacy = is_legacy(&base.doc);
    // On the untouched base (the working copy lacks the lists the CR replaces). An embedded
    // base's gaps are only computed if the final config has any.
    let handed_gaps = match (base.catalog, base.embedded) {
        (Some(c), None) => Some(deps::gaps(&base.doc, c)),
        _ => None,
    };
    let Base {
        doc,
        text,
        catalog,
        resolved,
        embedded,
        ..
    } = base;
    let mut cx = Context {
        spec: &spec,
        catalog,
        doc,
        env: Vec::new(),
        env_paths: Vec::new(),
        derived: Vec::new(),
        d,
        cr_name: req.name.as_deref(),
        distro,
        release,
        legacy,
        embedded,
    };
    providers::apply(&mut cx);
    disabled::apply(&mut cx);
    storage::apply(&mut cx);
    external::apply(&mut cx, &req.external_provider_metadata);
    refs::clean(&mut cx);
    resources::apply(&mut cx);
    server::apply(&mut cx);
    for rule in rules {
        rule(&mut cx.doc, cx.spec, &mut cx.d);
    }
    // Dependency gaps are consequences: report them only on an otherwise valid config.
    if !cx.d.has_errors() {
        deps::check(&mut cx, |c| {
            match (&handed_gaps, embedded.and_then(|e| e.base_doc())) {
                (Some(g), _) => g.clone(),
                (None, Some(p)) => deps::gaps(p, c),
                (None, None) => Vec::new(),
            }
        });
    }
    secrets::check_collisions(&mut cx);
    if cx.d.has_errors() {
        return Err(finish_errors(cx.d));
    }
    let (provider_count, resource_count) = counts::count(&cx);
    // A CR that asks for nothing gets the distribution's config byte for byte (US1).
    let config_yaml = if shapes_nothing(&spec) {
        text.into_owned()
    } else {
        render::to_yaml(&cx.doc)
    };
    let content_hash = render::sha256_hex(config_yaml.as_bytes());
    let mut env = cx.env;
    env.sort();
    let mut warnings = Vec::new();
    for w in cx.d.warnings {
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }
    Ok(Generated {
        config_yaml,
        env,
        content_hash,
        provider_count,
        resource_count,
        config_version,
        warnings,
        derived_secrets: cx.derived,
        distribution: resolved,
    })
}

/// True when no part of the spec changes config.yaml.
fn shapes_nothing(s: &Spec) -> bool {
    !s.has_providers
        && s.resources.is_none()
        && s.storage.is_none()
        && s.disabled.is_empty()
        && s.networking.port.is_none()
        && !s.networking.tls.as_ref().is_some_and(|t| t.enabled)
        && s.workers.is_none()
        && s.external_providers.is_empty()
}

fn finish_errors(d: Diagnostics) -> Vec<FieldError> {
    let mut out: Vec<FieldError> = Vec::new();
    for e in d.errors {
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}
