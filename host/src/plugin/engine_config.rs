//! The settings of every plugin engine. build.rs includes this file too: the component it
//! precompiles must be compiled with exactly the settings of the engine that loads it, or
//! wasmtime refuses the artifact (and the operator compiles the component again).

/// Component model on, and epoch interruption for the per-call deadline.
pub fn engine_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    config
}
