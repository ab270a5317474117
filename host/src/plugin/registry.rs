//! Which plugin serves a CR: vendor plugins listed in the operator configuration (a file,
//! pinned by sha256) win over the built-in one for the distribution names and image
//! repositories they declare (D18). A vendor plugin that fails to load is refused with a log
//! line; the others keep working.

use super::{Host, Plugin, PluginError};
use llama_stack_config::GenerateRequest;
use std::path::PathBuf;

/// A vendor plugin as configured: a file pinned by its sha256, or an OCI artifact pinned by
/// digest (`oci: registry/repo@sha256:...`, read with the operator namespace's `pullSecret`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSource {
    #[serde(default)]
    pub path: PathBuf,
    /// Required for a file; for an artifact, optional (the digest already pins it).
    #[serde(default)]
    pub sha256: String,
    #[serde(default)]
    pub oci: Option<String>,
    #[serde(default, rename = "pullSecret")]
    pub pull_secret: Option<String>,
    /// The artifact's wasm bytes, or why they could not be read (filled by the caller,
    /// which does the network I/O).
    #[serde(skip)]
    pub fetched: Option<Result<Vec<u8>, String>>,
}

impl PluginSource {
    /// How the plugin is named in messages.
    pub fn label(&self) -> PathBuf {
        match &self.oci {
            Some(r) => PathBuf::from(r),
            None => self.path.clone(),
        }
    }
}

/// A vendor plugin that was refused, and why.
#[derive(Debug)]
pub struct LoadFailure {
    pub path: PathBuf,
    pub error: PluginError,
}

pub struct PluginRegistry {
    builtin: Plugin,
    vendors: Vec<Plugin>,
}

impl PluginRegistry {
    /// Loads the built-in plugin (a failure there is fatal) and every vendor plugin (a
    /// failure there is reported and skipped).
    pub fn load(
        host: &Host,
        sources: &[PluginSource],
    ) -> Result<(PluginRegistry, Vec<LoadFailure>), PluginError> {
        let builtin = host.load_default()?;
        let mut vendors = Vec::new();
        let mut failures = Vec::new();
        for s in sources {
            match load_vendor(host, s) {
                Ok(p) => vendors.push(p),
                Err(error) => {
                    tracing::error!(plugin = %s.label().display(), kind = error.kind(), %error, "vendor plugin refused");
                    failures.push(LoadFailure {
                        path: s.label(),
                        error,
                    });
                }
            }
        }
        Ok((PluginRegistry { builtin, vendors }, failures))
    }

    pub fn builtin(&self) -> &Plugin {
        &self.builtin
    }

    /// Vendor plugins first (in configuration order), then the built-in one.
    pub fn plugins(&self) -> impl Iterator<Item = &Plugin> {
        self.vendors.iter().chain(std::iter::once(&self.builtin))
    }

    /// The plugin for a request: a vendor serving its distribution name or image repository,
    /// else the built-in plugin.
    pub fn for_request(&self, req: &GenerateRequest) -> &Plugin {
        let dist = req.spec.get("distribution");
        let name = dist.and_then(|d| {
            d.get("name")
                .and_then(|n| n.as_str())
                .or_else(|| d.as_str())
        });
        let image = dist.and_then(|d| d.get("image")).and_then(|i| i.as_str());
        self.vendors
            .iter()
            .find(|p| {
                let Some(info) = p.info() else { return false };
                name.is_some_and(|n| info.distributions.iter().any(|d| d.name == n))
                    || image.is_some_and(|i| {
                        info.image_repositories
                            .iter()
                            .any(|r| serves_repository(r, i))
                    })
            })
            .unwrap_or(&self.builtin)
    }
}

fn load_vendor(host: &Host, s: &PluginSource) -> Result<Plugin, PluginError> {
    let bytes = match (&s.oci, &s.fetched) {
        (Some(_), Some(Ok(b))) => b.clone(),
        (Some(r), Some(Err(message))) => {
            return Err(PluginError::Fetch {
                reference: r.clone(),
                message: message.clone(),
            });
        }
        (Some(r), None) => {
            return Err(PluginError::Fetch {
                reference: r.clone(),
                message: "not fetched".into(),
            });
        }
        (None, _) => std::fs::read(&s.path).map_err(|source| PluginError::Read {
            path: s.path.clone(),
            source,
        })?,
    };
    let actual = llama_stack_config::content_hash(&bytes);
    let expected = s
        .sha256
        .trim()
        .trim_start_matches("sha256:")
        .to_ascii_lowercase();
    // An artifact is pinned by its manifest digest; a sha256 there is an extra check.
    if (s.oci.is_none() || !expected.is_empty()) && actual != expected {
        return Err(PluginError::Digest {
            path: s.label(),
            expected,
            actual,
        });
    }
    let name = match &s.oci {
        // registry/acme/plugin@sha256:... -> plugin
        Some(r) => r
            .split('@')
            .next()
            .and_then(|x| x.rsplit('/').next())
            .map(|x| x.split(':').next().unwrap_or(x))
            .unwrap_or("vendor")
            .to_string(),
        None => s
            .path
            .file_stem()
            .and_then(|n| n.to_str())
            .unwrap_or("vendor")
            .to_string(),
    };
    host.load(&name, &bytes)
}

/// `quay.io/acme` serves `quay.io/acme/stack:1.0` and `quay.io/acme/stack@sha256:...`.
fn serves_repository(repo: &str, image: &str) -> bool {
    let without_digest = image.split('@').next().unwrap_or(image);
    // A tag is a ':' after the last '/'; a registry port is a ':' before it.
    let repository = match without_digest.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => r,
        _ => without_digest,
    };
    let repo = repo.trim_end_matches('/');
    repository == repo || repository.starts_with(&format!("{repo}/"))
}

#[cfg(test)]
mod tests {
    use super::serves_repository;

    #[test]
    fn repositories() {
        assert!(serves_repository("quay.io/acme", "quay.io/acme/stack:1.0"));
        assert!(serves_repository(
            "quay.io/acme/stack",
            "quay.io/acme/stack@sha256:abc"
        ));
        assert!(serves_repository(
            "localhost:5000/acme",
            "localhost:5000/acme/x:2"
        ));
        assert!(!serves_repository(
            "quay.io/acme",
            "quay.io/acmecorp/stack:1"
        ));
        assert!(!serves_repository(
            "quay.io/acme/stack",
            "quay.io/acme/stack2:1"
        ));
    }
}
