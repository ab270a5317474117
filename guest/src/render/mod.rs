//! Stable YAML and the content hash (NFR-001, D10).

mod emit;

use serde_yaml::{Mapping, Value};
use sha2::{Digest, Sha256};

/// Renders config.yaml. Key order is the base config's, then insertion order of the
/// pipeline's deterministic steps.
pub fn to_yaml(doc: &Mapping) -> String {
    match emit::emit(doc) {
        Some(s) => s,
        // Tagged values (never produced from our inputs) go through serde_yaml, which cannot
        // fail on a Value built from YAML/JSON.
        None => serde_yaml::to_string(&Value::Mapping(doc.clone())).unwrap_or_default(),
    }
}

/// Lowercase hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn yaml_round_trips_multiline_strings() {
        let doc: Mapping = serde_yaml::from_str("a: 'x\n\n  y\n'\nb: ${env.X:=}\n").unwrap();
        let out = to_yaml(&doc);
        let back: Mapping = serde_yaml::from_str(&out).unwrap();
        assert_eq!(back, doc);
    }
}
