//! `spec.externalProviders` merged into the generated config before hashing (FR-090..092,
//! D7, D16). The host reads each image's `lls-provider-spec.yaml` and hands the facts in.

use super::Context;
use super::providers::ensure_api_listed;
use crate::error::{Reason, list};
use crate::request::ExternalProviderMetadata;
use crate::spec::Api;
use crate::yaml::{self, key};
use serde_yaml::{Mapping, Value};

pub fn apply(cx: &mut Context<'_>, metadata: &[ExternalProviderMetadata]) {
    let spec = cx.spec;
    let mut seen: Vec<(&str, &str, &str)> = Vec::new();
    for e in &spec.external_providers {
        if let Some((_, first_path, first_image)) =
            seen.iter().find(|(id, _, _)| *id == e.provider_id)
        {
            cx.d.error(
                format!("{}.providerId", e.path),
                Reason::Duplicate,
                format!(
                    "external provider id \"{}\" is used twice: by {first_path} (image {first_image}) and here (image \
                     {}); give each external provider its own providerId",
                    e.provider_id, e.image
                ),
            );
            continue;
        }
        seen.push((&e.provider_id, &e.path, &e.image));
        let api = e.api.config_name();
        if let Some(cat) = cx.catalog
            && !cat.has_api(api)
        {
            cx.d.error(
                &e.path,
                Reason::NotSupported,
                format!(
                    "the {api} API does not exist in llama-stack {}; its APIs are: {}",
                    cat.llama_stack_version,
                    list(cat.apis)
                ),
            );
            continue;
        }
        let Some(meta) = metadata.iter().find(|m| m.provider_id == e.provider_id) else {
            // The provider still exists for the checks that follow (a model naming it), so
            // admission, which has no metadata, judges the rest of the spec as the reconcile
            // will; generate fails on the error below and never emits this placeholder.
            let mut placeholder = Mapping::new();
            placeholder.insert(key("provider_id"), key(&e.provider_id));
            placeholder.insert(key("provider_type"), key("remote::external-provider"));
            let providers = yaml::ensure_map(&mut cx.doc, "providers");
            let section = yaml::ensure_seq(providers, api);
            if !section
                .iter()
                .any(|p| yaml::provider_id_of(p).is_some_and(|f| f.id() == e.provider_id))
            {
                section.push(Value::Mapping(placeholder));
            }
            ensure_api_listed(&mut cx.doc, api);
            cx.d.error(
                &e.path,
                Reason::ExternalProviderMetadataMissing,
                format!(
                    "metadata of external provider \"{}\" (image {}) is not available: the operator reads \
                     /lls-provider/lls-provider-spec.yaml from the image; check that the image exists, is readable \
                     with the pod's pull secrets and carries that file",
                    e.provider_id, e.image
                ),
            );
            continue;
        };
        if meta.api != api {
            cx.d.error(
                &e.path,
                Reason::ExternalProviderApiMismatch,
                format!(
                    "Provider '{}' (image: {}) declares api={} in lls-provider-spec.yaml but is placed under \
                     externalProviders.{}. Move the provider to externalProviders.{}.",
                    e.provider_id,
                    e.image,
                    meta.api,
                    e.api.field(),
                    Api::fields()
                        .into_iter()
                        .find(|f| Api::from_field(f).map(Api::config_name) == Some(meta.api.as_str()))
                        .unwrap_or(meta.api.as_str())
                ),
            );
            continue;
        }
        if !valid_type(&meta.provider_type) {
            cx.d.error(
                &e.path,
                Reason::Invalid,
                format!(
                    "image {} declares providerType \"{}\"; it must match (remote|inline)::[a-z0-9-]+",
                    e.image, meta.provider_type
                ),
            );
            continue;
        }
        let mut entry = Mapping::new();
        entry.insert(key("provider_id"), key(&e.provider_id));
        entry.insert(key("provider_type"), key(&meta.provider_type));
        // llama-stack imports `<module>.provider` (0.7.3 core/distribution.py): a package
        // name that already ends in `.provider` names that submodule, not the package.
        let module = match meta.package_name.strip_suffix(".provider") {
            Some(package) if !package.is_empty() => {
                cx.d.warn(format!(
                    "external provider '{}': packageName {} names the provider submodule; config.yaml gets module: \
                     {package}, because llama-stack imports <module>.provider",
                    e.provider_id, meta.package_name
                ));
                package
            }
            _ => meta.package_name.as_str(),
        };
        entry.insert(key("module"), key(module));
        if let Some(c) = &e.config {
            entry.insert(key("config"), yaml::from_json(c));
        }
        let providers = yaml::ensure_map(&mut cx.doc, "providers");
        let section = yaml::ensure_seq(providers, api);
        let existing = section
            .iter()
            .position(|p| yaml::provider_id_of(p).is_some_and(|f| f.id() == e.provider_id));
        match existing {
            Some(i) => {
                let base_type = yaml::str_of(&section[i], "provider_type")
                    .unwrap_or("")
                    .to_string();
                section[i] = Value::Mapping(entry);
                // FR-092 with spec 001's warning text.
                cx.d.warn(format!(
                    "External provider '{}' overrides base provider in API '{api}'\n  Base type: {base_type}\n  External type: {}",
                    e.provider_id, meta.provider_type
                ));
            }
            None => section.push(Value::Mapping(entry)),
        }
        ensure_api_listed(&mut cx.doc, api);
    }
}

fn valid_type(t: &str) -> bool {
    let Some((kind, name)) = t.split_once("::") else {
        return false;
    };
    matches!(kind, "remote" | "inline")
        && !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
