//! Fuzz target of the plugin loader (issue 19 §2, D18): random bytes, bytes behind a valid
//! component or core-module header, small valid components damaged, and a real plugin
//! truncated or damaged, all handed to `Host::load` as a vendor's component. Each is refused
//! with a typed error naming the plugin, or (a damaged real plugin that still holds together)
//! loads and answers `info`; nothing panics.
//!
//! `make test` runs a short run; `make fuzz` (`LLSD_FUZZ_CASES=1000000 cargo test -p
//! llama-stack-operator --test fuzz_plugin_loader`) is the note's run.

#[path = "../../guest/tests/common/mutate.rs"]
mod mutate;
mod plugin_support;

use llama_stack_operator::plugin::{Host, Limits, PluginError};
use mutate::{arb_byte_ops, cases, damage};
use proptest::prelude::*;
use std::sync::OnceLock;

const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
const MODULE_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

struct Fixture {
    host: Host,
    /// Small valid components: empty; one empty core module inside.
    small: Vec<Vec<u8>>,
    /// A real plugin (the hostile guest's panicking variant, 72 KB).
    real: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let real = std::fs::read(plugin_support::component("hostile-plugin", Some("panic")))
            .expect("read the hostile plugin");
        let mut with_module = COMPONENT_HEADER.to_vec();
        // Core module section (id 1), 8 bytes: an empty core module.
        with_module.extend([0x01, 0x08]);
        with_module.extend(MODULE_HEADER);
        Fixture {
            // No code cache: the fuzzer must not fill the user's cache with its inputs.
            host: Host::with_cache(Limits::default(), None).expect("host starts"),
            small: vec![COMPONENT_HEADER.to_vec(), with_module],
            real,
        }
    })
}

fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    match fixture().host.load("fuzz", bytes) {
        Ok(plugin) => prop_assert!(plugin.info().is_some(), "loaded without answering info"),
        Err(e) => {
            let text = e.to_string();
            prop_assert!(
                text.contains("fuzz"),
                "the error does not name the plugin: {text}"
            );
            prop_assert!(
                matches!(
                    e,
                    PluginError::Compile { .. }
                        | PluginError::Link { .. }
                        | PluginError::Trap { .. }
                        | PluginError::Protocol { .. }
                        | PluginError::Deadline { .. }
                        | PluginError::MemoryCap { .. }
                ),
                "unexpected kind {}: {text}",
                e.kind()
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2000), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn plugin_loader_bytes(
        mode in prop_oneof![30 => Just(0u8), 25 => Just(1u8), 15 => Just(2u8), 25 => Just(3u8), 4 => Just(4u8), 1 => Just(5u8)],
        random in prop::collection::vec(any::<u8>(), 0..2048),
        ops in arb_byte_ops(6),
        which in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let f = fixture();
        let bytes = match mode {
            0 => random,
            1 => [COMPONENT_HEADER.as_slice(), &random].concat(),
            2 => [MODULE_HEADER.as_slice(), &random].concat(),
            3 => {
                let mut b = f.small[which.index(f.small.len())].clone();
                damage(&mut b, &ops);
                b
            }
            // A real plugin cut short.
            4 => f.real[..cut.index(f.real.len())].to_vec(),
            // A real plugin damaged (rare: a damage that still validates is compiled whole).
            _ => {
                let mut b = f.real.clone();
                damage(&mut b, &ops);
                b
            }
        };
        check(&bytes)?;
    }
}

/// The valid seeds themselves are refused at link time, naming what is missing.
#[test]
fn valid_components_without_the_contract_are_refused_at_link() {
    let f = fixture();
    for bytes in &f.small {
        match f.host.load("fuzz", bytes) {
            Err(e @ PluginError::Link { .. }) => {
                assert!(e.to_string().contains("distribution-plugin"), "{e}")
            }
            other => panic!(
                "expected a link error, got {:?}",
                other.map(|p| p.digest().to_string())
            ),
        }
    }
}
