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
