//! The ConfigMaps the operator writes: the generated config.yaml (D10) and the managed CA
//! bundle (FR-063, D14).

use super::{BuildError, CA_BUNDLE_KEY, CONFIG_KEY, cr_name, names, object_meta};
use crate::api::v1alpha2::LlamaStackDistribution;
use k8s_openapi::api::core::v1::ConfigMap;
use std::collections::BTreeMap;

/// `app.kubernetes.io/component` of the generated config.
pub const COMPONENT_GENERATED_CONFIG: &str = "generated-config";
/// `app.kubernetes.io/component` of the managed CA bundle.
pub const COMPONENT_CA_BUNDLE: &str = "ca-bundle";

/// The generated config `name` (`{cr}-config-{hash8}`). Immutable: a new config gets a new
/// name, so pods never see a config change under them and a rollback is a name change (D10).
pub fn generated_config_map(
    cr: &LlamaStackDistribution,
    name: &str,
    config_yaml: &str,
) -> Result<ConfigMap, BuildError> {
    Ok(ConfigMap {
        metadata: object_meta(cr, name.to_string(), COMPONENT_GENERATED_CONFIG)?,
        data: Some(BTreeMap::from([(
            CONFIG_KEY.to_string(),
            config_yaml.to_string(),
        )])),
        immutable: Some(true),
        ..ConfigMap::default()
    })
}

/// `<cr>-ca-bundle` with the PEM certificates the server trusts. Mutable: its name is fixed,
/// and the pod annotation with its hash rolls the pods when it changes.
pub fn ca_bundle_config_map(
    cr: &LlamaStackDistribution,
    pem: &str,
) -> Result<ConfigMap, BuildError> {
    Ok(ConfigMap {
        metadata: object_meta(cr, names::ca_bundle(cr_name(cr)?), COMPONENT_CA_BUNDLE)?,
        data: Some(BTreeMap::from([(
            CA_BUNDLE_KEY.to_string(),
            pem.to_string(),
        )])),
        ..ConfigMap::default()
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_owned, minimal};
    use super::*;

    #[test]
    fn generated_config() {
        let cr = minimal();
        let cm = generated_config_map(&cr, "demo-config-0123abcd", "version: 2\n").unwrap();
        assert_owned(&cm.metadata, "demo-config-0123abcd", "generated-config");
        assert_eq!(cm.immutable, Some(true));
        assert_eq!(
            cm.data,
            Some(BTreeMap::from([(
                "config.yaml".to_string(),
                "version: 2\n".to_string()
            )]))
        );
        assert_eq!(cm.binary_data, None);
        assert_eq!(
            cm,
            generated_config_map(&cr, "demo-config-0123abcd", "version: 2\n").unwrap()
        );
    }

    #[test]
    fn ca_bundle() {
        let cr = minimal();
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let cm = ca_bundle_config_map(&cr, pem).unwrap();
        assert_owned(&cm.metadata, "demo-ca-bundle", "ca-bundle");
        assert_eq!(cm.immutable, None);
        assert_eq!(
            cm.data,
            Some(BTreeMap::from([(
                "ca-bundle.crt".to_string(),
                pem.to_string()
            )]))
        );
    }

    #[test]
    fn missing_uid_is_an_error() {
        let mut cr = minimal();
        cr.metadata.uid = None;
        assert_eq!(
            generated_config_map(&cr, "x", "").unwrap_err(),
            BuildError::MissingMetadata { what: "uid" }
        );
        assert_eq!(
            ca_bundle_config_map(&cr, "").unwrap_err(),
            BuildError::MissingMetadata { what: "uid" }
        );
    }
}
