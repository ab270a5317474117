//! What can go wrong reading an image from a registry, each with the condition reason it
//! reports and a message that says what to fix (D17). Messages name the image and the
//! registry's own words; they never carry a credential.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum OciError {
    #[error("image reference \"{image}\" does not parse: {detail}")]
    Reference { image: String, detail: String },

    #[error(
        "registry {registry} is unreachable for image {image}: {detail}; check the registry address, \
         the operator's network access (NetworkPolicy, proxy) and, for a private CA, --registry-ca-file"
    )]
    Unreachable {
        image: String,
        registry: String,
        detail: String,
    },

    #[error(
        "registry {registry} refused access to image {image} ({detail}); add a kubernetes.io/dockerconfigjson \
         Secret for {registry} to the imagePullSecrets of ServiceAccount {service_account}"
    )]
    Unauthorized {
        image: String,
        registry: String,
        service_account: String,
        detail: String,
    },

    #[error(
        "image {image} is not found in registry {registry}: {detail}; check the repository, tag and digest"
    )]
    NotFound {
        image: String,
        registry: String,
        detail: String,
    },

    #[error(
        "image {image}: the content of {what} does not match its digest (expected {expected}, got {actual}); \
         the registry or a proxy in between serves corrupted data"
    )]
    DigestMismatch {
        image: String,
        what: String,
        expected: String,
        actual: String,
    },

    #[error("image {image}: label {label} {problem}")]
    BadLabel {
        image: String,
        label: &'static str,
        problem: String,
    },

    #[error(
        "image {image}: label {label} holds {size} bytes, more than the {limit} allowed; ship config.yaml in a layer \
         and point to it with io.llamastack.config.layer and io.llamastack.config.path"
    )]
    LabelTooLarge {
        image: String,
        label: &'static str,
        size: usize,
        limit: usize,
    },

    #[error("Missing {path} in image {image}")]
    FileMissing { image: String, path: String },

    #[error("image {image}: {path} is invalid: {problem}")]
    InvalidFile {
        image: String,
        path: String,
        problem: String,
    },

    #[error("image {image}: {detail}")]
    Unsupported { image: String, detail: String },

    #[error("registry {registry} answered an error for image {image}: {detail}")]
    Registry {
        image: String,
        registry: String,
        detail: String,
    },
}

impl OciError {
    /// The `ConfigGenerated=False` reason this failure reports (a small fixed set).
    pub fn reason(&self) -> &'static str {
        match self {
            OciError::Reference { .. } => "InvalidImageReference",
            OciError::Unreachable { .. } => "RegistryUnreachable",
            OciError::Unauthorized { .. } => "RegistryUnauthorized",
            OciError::NotFound { .. } => "ImageNotFound",
            OciError::DigestMismatch { .. } => "ImageDigestMismatch",
            OciError::BadLabel { .. } => "InvalidConfigLabel",
            OciError::LabelTooLarge { .. } => "ConfigLabelTooLarge",
            OciError::FileMissing { .. } => "ImageFileMissing",
            OciError::InvalidFile { .. } => "InvalidImageFile",
            OciError::Unsupported { .. } => "UnsupportedImage",
            OciError::Registry { .. } => "RegistryError",
        }
    }

    /// Whether retrying later can help without anyone changing the CR or the image.
    pub fn transient(&self) -> bool {
        matches!(
            self,
            OciError::Unreachable { .. }
                | OciError::Registry { .. }
                | OciError::DigestMismatch { .. }
                | OciError::Unauthorized { .. }
                | OciError::NotFound { .. }
        )
    }
}
