//! The `LlamaStackDistribution` API: v1alpha1 (served, for existing manifests) and v1alpha2
//! (stored), the CRD made from both and its Markdown reference. Types only: no I/O, nothing
//! about config.yaml.

pub mod crd;
pub mod reference;
pub mod shared;
pub mod v1alpha1;
pub mod v1alpha2;
