//! Field errors: every problem the engine finds is collected (never the first one only) and
//! carries the full path from `spec.` (FR-075, NFR-004).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a field was rejected; the names double as condition reasons in status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Reason {
    /// A required field is absent.
    Required,
    /// A value has the wrong type or format.
    Invalid,
    /// A value is not one of the allowed ones.
    NotSupported,
    /// Two things share a name that must be unique.
    Duplicate,
    /// Two fields contradict each other.
    Conflict,
    /// A field the schema does not know.
    UnknownField,
    /// FR-079d.
    UnknownDistribution,
    /// FR-027c.
    BaseConfigRequired,
    /// FR-029.
    UnsupportedConfigVersion,
    /// The base config is not a usable config.yaml.
    InvalidBaseConfig,
    /// E11 / E12.
    MissingProviderForResource,
    /// A reference names something that does not exist.
    NotFound,
    /// External provider metadata was not supplied by the host (D16).
    ExternalProviderMetadataMissing,
    /// The metadata's API differs from the section the provider sits in (spec 001).
    ExternalProviderApiMismatch,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Required => "Required",
            Reason::Invalid => "Invalid",
            Reason::NotSupported => "NotSupported",
            Reason::Duplicate => "Duplicate",
            Reason::Conflict => "Conflict",
            Reason::UnknownField => "UnknownField",
            Reason::UnknownDistribution => "UnknownDistribution",
            Reason::BaseConfigRequired => "BaseConfigRequired",
            Reason::UnsupportedConfigVersion => "UnsupportedConfigVersion",
            Reason::InvalidBaseConfig => "InvalidBaseConfig",
            Reason::MissingProviderForResource => "MissingProviderForResource",
            Reason::NotFound => "NotFound",
            Reason::ExternalProviderMetadataMissing => "ExternalProviderMetadataMissing",
            Reason::ExternalProviderApiMismatch => "ExternalProviderApiMismatch",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rejected field: where, why (machine-readable) and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FieldError {
    pub path: String,
    pub reason: Reason,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Collects errors and warnings while the pipeline runs.
#[derive(Debug, Default)]
pub struct Diagnostics {
    pub errors: Vec<FieldError>,
    pub warnings: Vec<String>,
}

impl Diagnostics {
    pub fn error(&mut self, path: impl Into<String>, reason: Reason, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.into(),
            reason,
            message: message.into(),
        });
    }

    pub fn warn(&mut self, message: impl Into<String>) {
        self.warnings.push(message.into());
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}

/// Joins names for messages: `a, b, c`.
pub(crate) fn list<I, S>(items: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let v: Vec<String> = items.into_iter().map(|s| s.as_ref().to_string()).collect();
    if v.is_empty() {
        "(none)".to_string()
    } else {
        v.join(", ")
    }
}
