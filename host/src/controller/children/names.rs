//! Object names (v1alpha1-behavior §3.4; D10 for the generated ConfigMap).

pub fn deployment(cr: &str) -> String {
    cr.to_string()
}
pub fn service(cr: &str) -> String {
    format!("{cr}-service")
}
pub fn pvc(cr: &str) -> String {
    format!("{cr}-pvc")
}
pub fn service_account(cr: &str) -> String {
    format!("{cr}-sa")
}
/// The ServiceAccount the server pods run as: `workload.overrides.serviceAccountName`, else
/// the one the operator creates. Its pull Secrets are also the operator's registry credentials
/// (FR-027h), so the Deployment and the registry reads must agree on it.
pub fn pod_service_account(
    spec: &crate::api::v1alpha2::LlamaStackDistributionSpec,
    cr: &str,
) -> String {
    spec.workload
        .as_ref()
        .and_then(|w| w.overrides.as_ref())
        .and_then(|o| o.service_account_name.clone())
        .unwrap_or_else(|| service_account(cr))
}
pub fn pdb(cr: &str) -> String {
    format!("{cr}-pdb")
}
pub fn hpa(cr: &str) -> String {
    format!("{cr}-hpa")
}
pub fn network_policy(cr: &str) -> String {
    format!("{cr}-network-policy")
}
pub fn ingress(cr: &str) -> String {
    format!("{cr}-ingress")
}
pub fn ca_bundle(cr: &str) -> String {
    format!("{cr}-ca-bundle")
}
/// D9: the Secret derived from `storage.sql.connectionString`.
pub fn storage_sql_secret(cr: &str) -> String {
    format!("{cr}-storage-sql")
}
/// D10: `{cr}-config-{first 8 hex of sha256(config.yaml)}`.
pub fn generated_config(cr: &str, hash_hex: &str) -> String {
    format!("{cr}-config-{}", &hash_hex[..hash_hex.len().min(8)])
}
