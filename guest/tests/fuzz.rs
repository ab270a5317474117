//! Fuzz targets of the engine (issue 19 §2, NFR-001): the spec, base configs and external
//! provider metadata. Inputs are the golden corpus and the shipped base configs edited at random
//! places (so most reach the checks behind the parsers), plus arbitrary JSON and damaged bytes.
//! Every input either generates a config.yaml that parses, with the hash of its bytes, or is
//! refused with at least one error that has a message; nothing panics.
//!
//! `make test` runs a short run; `make fuzz` (`LLSD_FUZZ_CASES=1000000 cargo test -p
//! llama-stack-config --test fuzz`) is the note's run.

mod common;

use common::mutate::{ByteOp, Edit, apply, arb_byte_ops, arb_edits, arb_json, cases, damage};
use llama_stack_config::{
    BaseConfigInput, BaseSource, ExternalProviderMetadata, GenerateRequest, content_hash, generate,
};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value as Json, json};
use std::sync::OnceLock;

struct Seeds {
    /// Every golden case's request.
    requests: Vec<GenerateRequest>,
    /// The shipped base configs and the golden corpus's, as YAML text.
    base_configs: Vec<String>,
}

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let requests: Vec<GenerateRequest> = common::case_dirs()
            .iter()
            .map(|d| common::request(d))
            .collect();
        let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        let mut base_configs: Vec<String> = std::fs::read_dir(&configs)
            .expect("configs/ exists")
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("config.yaml")).ok())
            .collect();
        base_configs.extend(
            requests
                .iter()
                .filter_map(|r| r.base_config.as_ref().map(|b| b.yaml.clone())),
        );
        assert!(
            requests.len() > 50 && base_configs.len() > 4,
            "seed corpus found"
        );
        Seeds {
            requests,
            base_configs,
        }
    })
}

/// The property every input must keep.
fn check(req: &GenerateRequest) -> Result<(), TestCaseError> {
    match generate(req) {
        Ok(out) => {
            let parsed: Result<Json, _> = serde_yaml::from_str(&out.config_yaml);
            prop_assert!(
                matches!(parsed, Ok(Json::Object(_))),
                "generated config.yaml is not a YAML mapping: {parsed:?}"
            );
            prop_assert_eq!(&out.content_hash, &content_hash(out.config_yaml.as_bytes()));
        }
        Err(errors) => {
            prop_assert!(!errors.is_empty(), "refused without an error");
            for e in &errors {
                prop_assert!(
                    !e.message.trim().is_empty(),
                    "an error without a message: {e:?}"
                );
            }
        }
    }
    Ok(())
}

fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A base config mutated as a tree (most stay valid YAML) or as text (the YAML parser's).
fn mutate_base(yaml: &str, edits: &[Edit], bytes: &[ByteOp], as_text: bool) -> String {
    if as_text {
        let mut b = yaml.as_bytes().to_vec();
        damage(&mut b, bytes);
        return String::from_utf8_lossy(&b).into_owned();
    }
    let mut doc: Json = serde_yaml::from_str(yaml).unwrap_or(Json::Null);
    apply(&mut doc, edits);
    serde_yaml::to_string(&doc).unwrap_or_default()
}

proptest! {
    #![proptest_config(config(3000))]

    /// The spec: a golden case's spec edited, or arbitrary JSON (alone or under `providers`).
    #[test]
    fn engine_spec(
        seed in any::<Index>(),
        edits in arb_edits(4),
        raw in arb_json(),
        mode in 0u8..4,
    ) {
        let mut req = seeds().requests[seed.index(seeds().requests.len())].clone();
        match mode {
            0 => req.spec = raw,
            1 => req.spec = json!({"distribution": {"name": "starter"}, "providers": raw}),
            _ => apply(&mut req.spec, &edits),
        }
        check(&req)?;
    }

    /// Base configs (overrideConfig ConfigMaps, image labels): the shipped ones mutated, under
    /// a golden spec, either source.
    #[test]
    fn engine_base_config(
        seed in any::<Index>(),
        base in any::<Index>(),
        edits in arb_edits(4),
        bytes in arb_byte_ops(6),
        as_text in any::<bool>(),
        from_label in any::<bool>(),
    ) {
        let s = seeds();
        let mut req = s.requests[seed.index(s.requests.len())].clone();
        let yaml = mutate_base(&s.base_configs[base.index(s.base_configs.len())], &edits, &bytes, as_text);
        let source = if from_label { BaseSource::OciLabel } else { BaseSource::OverrideConfig };
        req.base_config = Some(BaseConfigInput { yaml, source });
        check(&req)?;
    }

    /// External provider metadata (`lls-provider-spec.yaml` facts): the golden cases' entries
    /// and specs edited together.
    #[test]
    fn engine_provider_metadata(
        seed in any::<Index>(),
        meta_edits in arb_edits(4),
        spec_edits in prop::option::of(arb_edits(2)),
        strings in prop::collection::vec(("[a-z:_.-]{0,10}", 0usize..5, any::<Index>()), 0..3),
    ) {
        let s = seeds();
        let with_meta: Vec<&GenerateRequest> =
            s.requests.iter().filter(|r| !r.external_provider_metadata.is_empty()).collect();
        prop_assert!(!with_meta.is_empty());
        let mut req = with_meta[seed.index(with_meta.len())].clone();
        // Tree edits that keep the shape deserialisable, then field values replaced by strings.
        let mut meta = serde_json::to_value(&req.external_provider_metadata).unwrap_or_default();
        apply(&mut meta, &meta_edits);
        let mut entries: Vec<ExternalProviderMetadata> = serde_json::from_value(meta)
            .unwrap_or_else(|_| req.external_provider_metadata.clone());
        for (text, field, which) in strings {
            if entries.is_empty() {
                break;
            }
            let n = which.index(entries.len());
            let e = &mut entries[n];
            *[&mut e.provider_id, &mut e.image, &mut e.provider_type, &mut e.package_name, &mut e.api][field] = text;
        }
        req.external_provider_metadata = entries;
        if let Some(edits) = spec_edits {
            apply(&mut req.spec, &edits);
        }
        check(&req)?;
    }
}

/// Deep nesting reaches the engine only through a parser that already bounds it (serde_json
/// stops at 128 levels); a deep but parseable spec and base config are refused with an error.
#[test]
fn deep_nesting_is_refused_with_an_error() {
    let mut deep = json!("x");
    for _ in 0..120 {
        deep = json!({ "providers": deep });
    }
    let req = GenerateRequest {
        spec: json!({"distribution": {"name": "starter"}, "providers": {"inference": deep}}),
        ..Default::default()
    };
    check(&req).expect("deep spec");
    let yaml = format!("version: 2\napis: {}\n", common::mutate::nested(10_000));
    let req = GenerateRequest {
        spec: json!({"distribution": {"image": "example.com/x:1"}}),
        base_config: Some(BaseConfigInput {
            yaml,
            source: BaseSource::OciLabel,
        }),
        ..Default::default()
    };
    let errors = generate(&req).expect_err("10,000-deep base config is refused");
    assert!(errors.iter().any(|e| !e.message.is_empty()), "{errors:?}");
}
