//! The distributions and provider catalogs compiled into the engine (D1, D2). Nothing is read
//! at run time: `build.rs` embeds `configs/`.

mod model;

pub use model::{Catalog, DistributionEntry, ProviderInfo};

use std::collections::BTreeMap;
use std::sync::OnceLock;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// A distribution the engine knows by name, with its base config and catalog.
#[derive(Debug)]
pub struct Distribution {
    pub entry: DistributionEntry,
    pub base_config: &'static str,
    pub catalog: &'static Catalog,
    parsed: OnceLock<Option<serde_yaml::Mapping>>,
    hash: OnceLock<String>,
}

impl Distribution {
    /// The base config parsed once (None if it is not a YAML mapping; the unit tests rule
    /// that out for every embedded distribution).
    pub fn base_doc(&self) -> Option<&serde_yaml::Mapping> {
        self.parsed
            .get_or_init(|| serde_yaml::from_str(self.base_config).ok())
            .as_ref()
    }

    /// sha256 hex of the base config text.
    pub fn base_hash(&self) -> &str {
        self.hash
            .get_or_init(|| crate::render::sha256_hex(self.base_config.as_bytes()))
    }
}

struct Registry {
    distributions: Vec<Distribution>,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        // The embedded files are checked by build.rs and by the unit tests below; a parse
        // failure here is a build defect, not user input.
        let index: model::DistributionIndex =
            serde_json::from_str(embedded::DISTRIBUTIONS_JSON).unwrap_or_default();
        let catalogs: BTreeMap<&str, &'static Catalog> = embedded::CATALOGS
            .iter()
            .filter_map(|(name, text)| {
                let parsed: Catalog = serde_json::from_str(text).ok()?;
                Some((*name, &*Box::leak(Box::new(parsed))))
            })
            .collect();
        let mut distributions: Vec<Distribution> = index
            .distributions
            .into_iter()
            .filter_map(|entry| {
                let base_config = embedded::BASE_CONFIGS
                    .iter()
                    .find(|(n, _)| *n == entry.name)
                    .map(|(_, t)| *t)?;
                let catalog = *catalogs.get(entry.catalog.as_str())?;
                Some(Distribution {
                    entry,
                    base_config,
                    catalog,
                    parsed: OnceLock::new(),
                    hash: OnceLock::new(),
                })
            })
            .collect();
        distributions.sort_by(|a, b| a.entry.name.cmp(&b.entry.name));
        Registry { distributions }
    })
}

/// All embedded distributions, sorted by name.
pub fn distributions() -> &'static [Distribution] {
    &registry().distributions
}

/// The embedded distribution called `name`.
pub fn distribution(name: &str) -> Option<&'static Distribution> {
    distributions().iter().find(|d| d.entry.name == name)
}

/// Names of all embedded distributions, sorted (FR-079d `{list}`).
pub fn distribution_names() -> Vec<&'static str> {
    distributions()
        .iter()
        .map(|d| d.entry.name.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_indexed_distribution_has_a_parsable_base_and_catalog() {
        let index: model::DistributionIndex =
            serde_json::from_str(embedded::DISTRIBUTIONS_JSON).expect("distributions.json parses");
        assert!(
            index.distributions.len() >= 4,
            "D2 names at least the four upstream distributions"
        );
        for want in [
            "starter",
            "remote-vllm",
            "meta-reference-gpu",
            "postgres-demo",
        ] {
            assert!(
                index.distributions.iter().any(|d| d.name == want),
                "D2: {want} missing"
            );
        }
        assert_eq!(
            distributions().len(),
            index.distributions.len(),
            "an entry failed to load"
        );
        for d in distributions() {
            assert!(
                !d.entry.image.ends_with(":latest"),
                "D2: {} pins :latest",
                d.entry.name
            );
            assert!(
                d.entry.image.contains(':'),
                "D2: {} has no tag",
                d.entry.name
            );
            let v: serde_yaml::Value =
                serde_yaml::from_str(d.base_config).expect("base config is YAML");
            assert!(
                v.get("providers").is_some(),
                "{} base config has no providers",
                d.entry.name
            );
            assert!(
                !d.catalog.apis.is_empty(),
                "{} catalog lists no APIs",
                d.entry.name
            );
            assert!(
                d.catalog.providers.contains_key("inference"),
                "{} catalog lacks inference",
                d.entry.name
            );
        }
    }

    #[test]
    fn names_are_sorted_and_lookup_works() {
        let names = distribution_names();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(distribution("starter").is_some());
        assert!(distribution("no-such-thing").is_none());
    }
}
