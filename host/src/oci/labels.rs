//! The `io.llamastack.config.*` labels of an image config (FR-027f): config.yaml inline as
//! base64, or a pointer to the layer and path that hold it. Pure: the config blob in, what it
//! asks for out.

use super::error::OciError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use std::collections::BTreeMap;

pub const BASE64: &str = "io.llamastack.config.base64";
pub const LAYER: &str = "io.llamastack.config.layer";
pub const PATH: &str = "io.llamastack.config.path";
pub const VERSION: &str = "io.llamastack.config.version";

/// FR-027f's "< 50KB", read as 50 KiB of decoded config.yaml; larger configs go in a layer.
pub const MAX_INLINE_BYTES: usize = 50 * 1024;

/// Where an image says its config.yaml is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigLabels {
    /// No `io.llamastack.config.*` label: the image carries no config.
    Absent,
    Inline {
        yaml: String,
        version: Option<u32>,
    },
    Layer {
        digest: String,
        /// Path inside the layer, without a leading `/`.
        path: String,
        version: Option<u32>,
    },
}

#[derive(Deserialize, Default)]
struct ImageConfig {
    #[serde(default)]
    config: Option<RunConfig>,
}

#[derive(Deserialize, Default)]
struct RunConfig {
    #[serde(rename = "Labels", default)]
    labels: Option<BTreeMap<String, String>>,
}

/// The labels of an OCI/Docker image config blob.
pub fn labels(image: &str, config_blob: &[u8]) -> Result<BTreeMap<String, String>, OciError> {
    let cfg: ImageConfig =
        serde_json::from_slice(config_blob).map_err(|e| OciError::InvalidFile {
            image: image.to_string(),
            path: "the image config blob".into(),
            problem: format!("not an image config ({e})"),
        })?;
    Ok(cfg.config.and_then(|c| c.labels).unwrap_or_default())
}

pub fn parse(image: &str, labels: &BTreeMap<String, String>) -> Result<ConfigLabels, OciError> {
    let bad = |label: &'static str, problem: String| OciError::BadLabel {
        image: image.to_string(),
        label,
        problem,
    };
    let version = match labels.get(VERSION) {
        None => None,
        Some(v) => Some(v.trim().parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
            bad(
                VERSION,
                format!("is \"{v}\"; it must be the config.yaml schema version, a positive integer such as 2"),
            )
        })?),
    };
    match (labels.get(BASE64), labels.get(LAYER), labels.get(PATH)) {
        (Some(_), Some(_), _) => Err(bad(
            BASE64,
            format!(
                "and {LAYER} are both set; set one: {BASE64} for configs up to 50 KiB, {LAYER} + {PATH} above"
            ),
        )),
        (Some(encoded), None, _) => {
            let encoded = encoded.trim();
            // Refuse before decoding: base64 grows by 4/3.
            if encoded.len() > MAX_INLINE_BYTES.div_ceil(3) * 4 {
                return Err(OciError::LabelTooLarge {
                    image: image.to_string(),
                    label: BASE64,
                    size: encoded.len() / 4 * 3,
                    limit: MAX_INLINE_BYTES,
                });
            }
            let bytes = STANDARD.decode(encoded).map_err(|e| {
                bad(
                    BASE64,
                    format!("is not standard base64 without line breaks ({e})"),
                )
            })?;
            if bytes.len() > MAX_INLINE_BYTES {
                return Err(OciError::LabelTooLarge {
                    image: image.to_string(),
                    label: BASE64,
                    size: bytes.len(),
                    limit: MAX_INLINE_BYTES,
                });
            }
            let yaml = String::from_utf8(bytes)
                .map_err(|_| bad(BASE64, "does not decode to UTF-8 text".into()))?;
            Ok(ConfigLabels::Inline { yaml, version })
        }
        (None, Some(digest), path) => {
            let digest = digest.trim();
            let valid = digest
                .strip_prefix("sha256:")
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            if !valid {
                return Err(bad(
                    LAYER,
                    format!("is \"{digest}\"; it must be a layer digest, sha256:<64 hex digits>"),
                ));
            }
            let path = path
                .map(|p| p.trim().trim_start_matches("./").trim_start_matches('/'))
                .filter(|p| !p.is_empty())
                .ok_or_else(|| {
                    bad(
                        LAYER,
                        format!(
                            "is set without {PATH}; set {PATH} to the file's path in that layer"
                        ),
                    )
                })?;
            Ok(ConfigLabels::Layer {
                digest: digest.to_ascii_lowercase(),
                path: path.to_string(),
                version,
            })
        }
        (None, None, Some(_)) => Err(bad(PATH, format!("is set without {LAYER}"))),
        (None, None, None) => Ok(ConfigLabels::Absent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn inline_config_decodes() {
        let enc = STANDARD.encode("version: 2\n");
        let got = parse("img", &l(&[(BASE64, &enc), (VERSION, "2")])).expect("ok");
        assert_eq!(
            got,
            ConfigLabels::Inline {
                yaml: "version: 2\n".into(),
                version: Some(2)
            }
        );
    }

    #[test]
    fn too_large_inline_config_is_refused_with_the_alternative() {
        let enc = STANDARD.encode(vec![b'a'; MAX_INLINE_BYTES + 1]);
        let e = parse("img", &l(&[(BASE64, &enc)])).expect_err("too large");
        assert_eq!(e.reason(), "ConfigLabelTooLarge");
        assert!(e.to_string().contains(LAYER), "{e}");
        // Exactly at the limit is fine.
        let enc = STANDARD.encode(vec![b'a'; MAX_INLINE_BYTES]);
        assert!(parse("img", &l(&[(BASE64, &enc)])).is_ok());
    }

    #[test]
    fn layer_pointer_needs_a_digest_and_a_path() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            parse("img", &l(&[(LAYER, &d), (PATH, "/app/config.yaml")])).expect("ok"),
            ConfigLabels::Layer {
                digest: d.clone(),
                path: "app/config.yaml".into(),
                version: None
            }
        );
        for bad in [
            l(&[(LAYER, &d)]),
            l(&[(LAYER, "sha256:zz"), (PATH, "x")]),
            l(&[(PATH, "x")]),
            l(&[(LAYER, &d), (PATH, "x"), (BASE64, "eA==")]),
            l(&[(BASE64, "not base64!")]),
            l(&[(BASE64, "eA=="), (VERSION, "two")]),
        ] {
            let e = parse("img", &bad).expect_err("refused");
            assert_eq!(e.reason(), "InvalidConfigLabel", "{e}");
        }
    }

    #[test]
    fn labels_come_from_the_config_section() {
        let blob = br#"{"architecture":"amd64","config":{"Labels":{"a":"b"}},"rootfs":{}}"#;
        assert_eq!(labels("img", blob).expect("ok"), l(&[("a", "b")]));
        assert!(labels("img", br#"{"config":{}}"#).expect("ok").is_empty());
        assert_eq!(
            parse("img", &BTreeMap::new()).expect("ok"),
            ConfigLabels::Absent
        );
        assert!(labels("img", b"[1,2]").is_err());
    }
}
