//! The ServiceAccount `<cr>-sa` (v1alpha1-behavior §3.4): always created, even when
//! `overrides.serviceAccountName` points the pods elsewhere, as upstream did.

use super::{BuildError, COMPONENT_SERVER, Inputs, cr_name, names, object_meta};
use k8s_openapi::api::core::v1::ServiceAccount;

/// The default ServiceAccount of the server pods.
pub fn service_account(inputs: &Inputs) -> Result<ServiceAccount, BuildError> {
    let cr = inputs.cr;
    let name = cr_name(cr)?;
    Ok(ServiceAccount {
        metadata: object_meta(cr, names::service_account(name), COMPONENT_SERVER)?,
        ..ServiceAccount::default()
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_server_owned, inputs, minimal, with_workload};
    use super::*;
    use serde_json::json;

    #[test]
    fn always_named_after_the_cr() {
        let cr = minimal();
        let sa = service_account(&inputs(&cr)).unwrap();
        assert_server_owned(&sa.metadata, "demo-sa");
        assert_eq!(sa.secrets, None);
        assert_eq!(sa.automount_service_account_token, None);

        let cr = with_workload(json!({"overrides": {"serviceAccountName": "other"}}));
        let sa = service_account(&inputs(&cr)).unwrap();
        assert_eq!(sa.metadata.name.as_deref(), Some("demo-sa"));
    }
}
