//! `/lls-provider/lls-provider-spec.yaml` of an external provider image (spec 001 §2.1,
//! FR-001..005): parsed and checked field by field, so a bad package is reported with the
//! field to fix before any pod starts.

use serde::Deserialize;

pub const SPEC_PATH: &str = "/lls-provider/lls-provider-spec.yaml";
pub const PACKAGES_DIR: &str = "/lls-provider/packages/";

/// The config.yaml API names a provider may declare (snake_case, spec 001 plan).
pub const APIS: &[&str] = &[
    "inference",
    "safety",
    "agents",
    "vector_io",
    "datasetio",
    "scoring",
    "eval",
    "tool_runtime",
    "post_training",
];

/// What the operator needs from a provider package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPackage {
    pub name: String,
    pub version: String,
    pub vendor: String,
    pub package_name: String,
    pub provider_type: String,
    pub api: String,
    pub wheel_path: String,
    pub dependency_wheels: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    api_version: Option<String>,
    kind: Option<String>,
    metadata: Option<Meta>,
    spec: Option<Spec>,
}

#[derive(Deserialize)]
struct Meta {
    name: Option<String>,
    version: Option<String>,
    vendor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    package_name: Option<String>,
    provider_type: Option<String>,
    api: Option<String>,
    wheel_path: Option<String>,
    #[serde(default)]
    dependency_wheels: Vec<String>,
}

/// Every problem found, each naming its field; empty means valid.
pub fn parse(text: &[u8]) -> Result<ProviderPackage, Vec<String>> {
    let doc: Doc = serde_yaml::from_slice(text).map_err(|e| vec![format!("not YAML: {e}")])?;
    let mut problems = Vec::new();
    if doc.api_version.as_deref() != Some("llamastack.io/v1alpha1") {
        problems.push(format!(
            "apiVersion is {:?}; it must be llamastack.io/v1alpha1",
            doc.api_version.unwrap_or_default()
        ));
    }
    if doc.kind.as_deref() != Some("ProviderPackage") {
        problems.push(format!(
            "kind is {:?}; it must be ProviderPackage",
            doc.kind.unwrap_or_default()
        ));
    }
    let mut req = |field: &str, v: Option<String>| -> String {
        match v.filter(|s| !s.trim().is_empty()) {
            Some(s) => s,
            None => {
                problems.push(format!("{field} is required"));
                String::new()
            }
        }
    };
    let (m, s) = (doc.metadata, doc.spec);
    let (mn, mv, mvd) = m.map_or((None, None, None), |m| (m.name, m.version, m.vendor));
    let name = req("metadata.name", mn);
    let version = req("metadata.version", mv);
    let vendor = req("metadata.vendor", mvd);
    let (pn, pt, api, wp, deps) = s.map_or((None, None, None, None, Vec::new()), |s| {
        (
            s.package_name,
            s.provider_type,
            s.api,
            s.wheel_path,
            s.dependency_wheels,
        )
    });
    let package_name = req("spec.packageName", pn);
    let provider_type = req("spec.providerType", pt);
    let api = req("spec.api", api);
    let wheel_path = req("spec.wheelPath", wp);
    if !version.is_empty() && !semver(&version) {
        problems.push(format!(
            "metadata.version {version:?} is not a semantic version (MAJOR.MINOR.PATCH)"
        ));
    }
    if !package_name.is_empty() && !dotted_module(&package_name) {
        problems.push(format!(
            "spec.packageName {package_name:?} is not a dotted Python module path"
        ));
    }
    if !provider_type.is_empty() && !valid_type(&provider_type) {
        problems.push(format!(
            "spec.providerType {provider_type:?} must match (remote|inline)::[a-z0-9-]+"
        ));
    }
    if !api.is_empty() && !APIS.contains(&api.as_str()) {
        problems.push(format!(
            "spec.api {api:?} is not a llama-stack API; use one of {}",
            APIS.join(", ")
        ));
    }
    for (field, p) in std::iter::once(("spec.wheelPath", &wheel_path))
        .chain(deps.iter().map(|d| ("spec.dependencyWheels", d)))
    {
        let is_packaged_wheel = p.starts_with(PACKAGES_DIR) && p.ends_with(".whl");
        if !p.is_empty() && !is_packaged_wheel {
            problems.push(format!(
                "{field} {p:?} must be a .whl file under {PACKAGES_DIR} (installed offline, FR-004)"
            ));
        }
    }
    if problems.is_empty() {
        Ok(ProviderPackage {
            name,
            version,
            vendor,
            package_name,
            provider_type,
            api,
            wheel_path,
            dependency_wheels: deps,
        })
    } else {
        Err(problems)
    }
}

fn semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn dotted_module(m: &str) -> bool {
    m.split('.').all(|part| {
        let mut c = part.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
            && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
    })
}

fn valid_type(t: &str) -> bool {
    t.split_once("::").is_some_and(|(kind, name)| {
        matches!(kind, "remote" | "inline")
            && !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: llamastack.io/v1alpha1
kind: ProviderPackage
metadata: {name: acme-infer, version: 1.2.0, vendor: acme}
spec:
  packageName: acme_infer.provider
  providerType: remote::acme-infer
  api: inference
  wheelPath: /lls-provider/packages/acme_infer-1.2.0-py3-none-any.whl
  dependencyWheels: [/lls-provider/packages/httpx-0.27.0-py3-none-any.whl]
";

    #[test]
    fn the_spec_001_example_is_valid() {
        let p = parse(GOOD.as_bytes()).expect("valid");
        assert_eq!(p.provider_type, "remote::acme-infer");
        assert_eq!(p.package_name, "acme_infer.provider");
        assert_eq!(p.api, "inference");
        assert_eq!(p.dependency_wheels.len(), 1);
    }

    #[test]
    fn every_problem_names_its_field() {
        let bad = "apiVersion: v2\nkind: Package\nmetadata: {name: x, version: one}\nspec:\n  packageName: 9bad\n  providerType: acme\n  api: telemetry\n  wheelPath: /tmp/x.tar.gz\n";
        let problems = parse(bad.as_bytes()).expect_err("invalid");
        let all = problems.join("\n");
        for field in [
            "apiVersion",
            "kind",
            "metadata.vendor",
            "metadata.version",
            "spec.packageName",
            "spec.providerType",
            "spec.api",
            "spec.wheelPath",
        ] {
            assert!(all.contains(field), "{field} missing in:\n{all}");
        }
        assert!(parse(b": [").is_err());
    }
}
