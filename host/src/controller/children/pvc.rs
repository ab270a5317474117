//! The PersistentVolumeClaim `<cr>-pvc` for `workload.storage` (v1alpha1-behavior §3.7).

use super::{BuildError, Inputs, cr_name, names, object_meta, workload};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

/// `app.kubernetes.io/component` of the claim.
pub const COMPONENT: &str = "storage";
/// Size when `workload.storage.size` is absent.
pub const DEFAULT_SIZE: &str = "10Gi";

/// The claim, when `workload.storage` is set. ReadWriteOnce and the cluster's default storage
/// class, as upstream; the Deployment uses Recreate because of the former.
pub fn pvc(inputs: &Inputs) -> Result<Option<PersistentVolumeClaim>, BuildError> {
    let cr = inputs.cr;
    let Some(storage) = workload(cr).and_then(|w| w.storage.as_ref()) else {
        return Ok(None);
    };
    let name = cr_name(cr)?;
    let size = storage
        .size
        .clone()
        .unwrap_or_else(|| Quantity(DEFAULT_SIZE.into()));
    Ok(Some(PersistentVolumeClaim {
        metadata: object_meta(cr, names::pvc(name), COMPONENT)?,
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".into(), size)])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_owned, inputs, minimal, with_workload};
    use super::*;
    use serde_json::json;

    fn requested(p: &PersistentVolumeClaim) -> Quantity {
        let spec = p.spec.as_ref().unwrap();
        spec.resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"].clone()
    }

    #[test]
    fn absent_without_storage() {
        let cr = minimal();
        assert_eq!(pvc(&inputs(&cr)).unwrap(), None);
        let cr = with_workload(json!({"replicas": 2}));
        assert_eq!(pvc(&inputs(&cr)).unwrap(), None);
    }

    #[test]
    fn default_size() {
        let cr = with_workload(json!({"storage": {}}));
        let p = pvc(&inputs(&cr)).unwrap().unwrap();
        assert_owned(&p.metadata, "demo-pvc", "storage");
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.access_modes, Some(vec!["ReadWriteOnce".to_string()]));
        assert_eq!(spec.storage_class_name, None);
        assert_eq!(requested(&p), Quantity("10Gi".into()));
    }

    #[test]
    fn given_size() {
        let cr = with_workload(json!({"storage": {"size": "50Gi", "mountPath": "/data"}}));
        let p = pvc(&inputs(&cr)).unwrap().unwrap();
        assert_eq!(requested(&p), Quantity("50Gi".into()));
        assert_eq!(p, pvc(&inputs(&cr)).unwrap().unwrap());
    }
}
