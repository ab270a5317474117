//! The distributions and provider catalogs an engine serves (D1, D2). The built-in registry is
//! compiled in from `configs/` by `build.rs`; a vendor plugin builds its own from its own
//! embedded files. Nothing is read at run time.

mod model;

pub use model::{Catalog, DistributionEntry, ProviderInfo};

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// A distribution the engine knows by name, with its base config and catalog.
#[derive(Debug)]
pub struct Distribution {
    pub entry: DistributionEntry,
    pub base_config: &'static str,
    pub catalog: Arc<Catalog>,
    parsed: OnceLock<Option<serde_yaml::Mapping>>,
    hash: OnceLock<String>,
}

impl Distribution {
    /// The base config parsed once (None if it is not a YAML mapping; `Registry::from_sources`
    /// rules that out).
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

/// The distributions one engine serves, sorted by name.
#[derive(Debug)]
pub struct Registry {
    distributions: Vec<Distribution>,
}

impl Registry {
    /// Builds a registry from a `distributions.json` text, base configs by distribution name
    /// and catalogs by catalog name. Every entry must resolve and every base must be a run
    /// config: a plugin that ships a broken registry fails here, not on a user's CR.
    pub fn from_sources(
        index_json: &str,
        base_configs: &[(&str, &'static str)],
        catalogs: &[(&str, &str)],
    ) -> Result<Registry, String> {
        let index: model::DistributionIndex =
            serde_json::from_str(index_json).map_err(|e| format!("distributions.json: {e}"))?;
        let mut parsed: BTreeMap<&str, Arc<Catalog>> = BTreeMap::new();
        for (name, text) in catalogs {
            let c: Catalog =
                serde_json::from_str(text).map_err(|e| format!("catalog {name}: {e}"))?;
            parsed.insert(name, Arc::new(c));
        }
        let mut distributions = Vec::new();
        for entry in index.distributions {
            let base_config = base_configs
                .iter()
                .find(|(n, _)| *n == entry.name)
                .map(|(_, t)| *t)
                .ok_or_else(|| format!("distribution {} has no base config", entry.name))?;
            let catalog = parsed.get(entry.catalog.as_str()).cloned().ok_or_else(|| {
                format!(
                    "distribution {} names unknown catalog {}",
                    entry.name, entry.catalog
                )
            })?;
            let d = Distribution {
                entry,
                base_config,
                catalog,
                parsed: OnceLock::new(),
                hash: OnceLock::new(),
            };
            if d.base_doc().is_none_or(|m| !m.contains_key("providers")) {
                return Err(format!(
                    "distribution {}: base config is not a run config",
                    d.entry.name
                ));
            }
            distributions.push(d);
        }
        distributions.sort_by(|a, b| a.entry.name.cmp(&b.entry.name));
        Ok(Registry { distributions })
    }

    /// Serves nothing: what a plugin falls back to if its embedded data were broken.
    pub fn empty() -> Registry {
        Registry {
            distributions: Vec::new(),
        }
    }

    pub fn distributions(&self) -> &[Distribution] {
        &self.distributions
    }

    pub fn distribution(&self, name: &str) -> Option<&Distribution> {
        self.distributions.iter().find(|d| d.entry.name == name)
    }

    /// Names, sorted (FR-079d `{list}`).
    pub fn names(&self) -> Vec<&str> {
        self.distributions
            .iter()
            .map(|d| d.entry.name.as_str())
            .collect()
    }
}

/// The registry compiled from `configs/`.
pub fn builtin() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        // build.rs checked that every file exists; the unit tests check that they parse. An
        // error here is a build defect: serve nothing rather than panic in a plugin.
        Registry::from_sources(
            embedded::DISTRIBUTIONS_JSON,
            embedded::BASE_CONFIGS,
            embedded::CATALOGS,
        )
        .unwrap_or_else(|_| Registry::empty())
    })
}

/// A built-in catalog's JSON by name (`llama-stack-0.7.3`), for vendor plugins that build on
/// the same llama-stack release.
pub fn builtin_catalog(name: &str) -> Option<&'static str> {
    embedded::CATALOGS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
}

/// All built-in distributions, sorted by name.
pub fn distributions() -> &'static [Distribution] {
    builtin().distributions()
}

/// The built-in distribution called `name`.
pub fn distribution(name: &str) -> Option<&'static Distribution> {
    builtin().distribution(name)
}

/// Names of the built-in distributions, sorted.
pub fn distribution_names() -> Vec<&'static str> {
    builtin().names()
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
        let strict = Registry::from_sources(
            embedded::DISTRIBUTIONS_JSON,
            embedded::BASE_CONFIGS,
            embedded::CATALOGS,
        )
        .expect("the embedded registry builds");
        assert_eq!(strict.distributions().len(), index.distributions.len());
        assert_eq!(distributions().len(), index.distributions.len());
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
    fn broken_sources_are_refused() {
        let idx = r#"{"distributions":[{"name":"x","image":"i:1","llamaStackVersion":"1","catalog":"c"}]}"#;
        assert!(
            Registry::from_sources(idx, &[], &[("c", "{}")]).is_err(),
            "bad catalog"
        );
        let cat = builtin_catalog("llama-stack-0.7.3").expect("0.7.3 catalog is built in");
        assert!(
            Registry::from_sources(idx, &[], &[("c", cat)])
                .unwrap_err()
                .contains("no base config")
        );
        assert!(
            Registry::from_sources(idx, &[("x", "a: 1")], &[("c", cat)])
                .unwrap_err()
                .contains("not a run config")
        );
        assert!(
            Registry::from_sources(idx, &[("x", "providers: {}")], &[])
                .unwrap_err()
                .contains("unknown catalog")
        );
        assert!(Registry::from_sources("[", &[], &[]).is_err());
        let ok =
            Registry::from_sources(idx, &[("x", "providers: {}")], &[("c", cat)]).expect("valid");
        assert_eq!(ok.names(), vec!["x"]);
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
