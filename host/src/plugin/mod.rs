//! The plugin host (D18): config plugins are WASI components implementing `wit/`, compiled
//! once, instantiated per call in a fresh store with no capabilities, a memory cap and an
//! execution deadline. A misbehaving plugin fails its own call and never the operator.

mod code_cache;
mod engine_config;
mod error;
mod registry;
mod resident;
mod sandbox;

pub use code_cache::{CodeCache, CodeSource};
pub use error::PluginError;
pub use registry::{LoadFailure, PluginRegistry, PluginSource};

use llama_stack_config::{FieldError, GenerateRequest, Generated};
use sandbox::{Sandbox, State};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        world: "distribution-plugin",
        path: "../wit",
    });
}

use bindings::exports::llamastack::config::engine as wit;

/// The component compiled into the operator binary (built from `guest/` by build.rs).
pub static DEFAULT_PLUGIN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/default-plugin.wasm"));
/// sha256 of [`DEFAULT_PLUGIN`].
pub const DEFAULT_PLUGIN_SHA256: &str = env!("LLSD_DEFAULT_PLUGIN_SHA256");
/// [`DEFAULT_PLUGIN`] compiled by build.rs with [`engine_config::engine_config`].
static DEFAULT_PLUGIN_CODE: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/default-plugin.cwasm"));

/// Per-call resource limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Cap on a plugin's linear memory, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock budget of one call.
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        // A typical generate needs a few MiB; the cap leaves room for large specs.
        Limits {
            memory_bytes: 64 << 20,
            deadline: Duration::from_secs(2),
        }
    }
}

/// How often the epoch advances: the deadline's granularity.
const TICK: Duration = Duration::from_millis(10);

/// One wasmtime engine, its WASI linker and the epoch ticker.
pub struct Host {
    engine: Engine,
    linker: Linker<State>,
    limits: Limits,
    stop: Arc<AtomicBool>,
    /// Opened at the first vendor plugin: a CLI call on the built-in plugin alone creates
    /// no directory (and warns about none it cannot create).
    cache: std::sync::OnceLock<Option<CodeCache>>,
}

impl Host {
    /// A host whose compiled plugins are kept in [`CodeCache::default_dir`] when it can be
    /// created (else compiled at every load).
    pub fn new(limits: Limits) -> Result<Host, PluginError> {
        Host::build(limits, std::sync::OnceLock::new())
    }

    /// A host with the given code cache (None: compile at every load).
    pub fn with_cache(limits: Limits, cache: Option<CodeCache>) -> Result<Host, PluginError> {
        Host::build(limits, std::sync::OnceLock::from(cache))
    }

    fn build(
        limits: Limits,
        cache: std::sync::OnceLock<Option<CodeCache>>,
    ) -> Result<Host, PluginError> {
        let engine =
            Engine::new(&engine_config::engine_config()).map_err(|e| PluginError::Engine {
                message: e.to_string(),
            })?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| PluginError::Engine {
            message: e.to_string(),
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let (ticker, flag) = (engine.clone(), stop.clone());
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    ticker.increment_epoch();
                }
            })
            .map_err(|e| PluginError::Engine {
                message: format!("failed to start the epoch ticker: {e}"),
            })?;
        Ok(Host {
            engine,
            linker,
            limits,
            stop,
            cache,
        })
    }

    /// Where the code of the component with sha256 `digest` is cached, if there is a cache.
    pub fn cached_code_path(&self, digest: &str) -> Option<std::path::PathBuf> {
        self.cache().map(|c| c.path(&self.engine, digest))
    }

    /// The code cache, [`CodeCache::default_dir`] opened at the first call unless one was
    /// given.
    fn cache(&self) -> Option<&CodeCache> {
        self.cache
            .get_or_init(|| {
                let dir = CodeCache::default_dir()?;
                CodeCache::open(&dir)
                    .map_err(|e| {
                        tracing::warn!(dir = %dir.display(), error = %e, "no plugin code cache; vendor plugins are compiled at every start");
                    })
                    .ok()
            })
            .as_ref()
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Compiles a component (or takes its code from the cache) and prepares its
    /// instantiation; asks it what it serves.
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<Plugin, PluginError> {
        let started = Instant::now();
        let digest = llama_stack_config::content_hash(bytes);
        let (component, source) = self.compile(name, bytes, &digest)?;
        self.prepare(name, digest, component, source, started)
    }

    /// The code of a component: the cache's, else compiled now (and cached).
    fn compile(
        &self,
        name: &str,
        bytes: &[u8],
        digest: &str,
    ) -> Result<(Component, CodeSource), PluginError> {
        if let Some(c) = self.cache().and_then(|c| c.get(&self.engine, digest)) {
            return Ok((c, CodeSource::Cached));
        }
        let component = Component::new(&self.engine, bytes).map_err(|e| PluginError::Compile {
            plugin: name.to_string(),
            message: format!("{e:#}"),
        })?;
        if let Some(cache) = self.cache() {
            cache.put(&self.engine, digest, &component);
        }
        Ok((component, CodeSource::Compiled))
    }

    fn prepare(
        &self,
        name: &str,
        digest: String,
        component: Component,
        source: CodeSource,
        started: Instant,
    ) -> Result<Plugin, PluginError> {
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(bindings::DistributionPluginPre::new)
            .map_err(|e| PluginError::Link {
                plugin: name.to_string(),
                message: format!("{e:#}"),
            })?;
        let mut plugin = Plugin {
            name: name.to_string(),
            digest,
            pre,
            info: None,
            compile_time: started.elapsed(),
            code: source,
        };
        let info = plugin.call(self, |e, s| e.call_info(s))?;
        plugin.info = Some(PluginInfo::from(info));
        tracing::info!(plugin = name, digest = %plugin.digest, code = source.as_str(), compile_ms = plugin.compile_time.as_millis() as u64, "plugin loaded");
        Ok(plugin)
    }

    /// One fresh instance answering `info`: the fixed cost every call pays (benchmarks).
    pub fn load_info_only(&self, plugin: &Plugin) -> Result<PluginInfo, PluginError> {
        plugin
            .call(self, |e, s| e.call_info(s))
            .map(PluginInfo::from)
    }

    /// The built-in plugin embedded in this binary, from the code build.rs compiled; if this
    /// engine refuses that code (another CPU than the build machine's, say), compiled from
    /// the embedded component.
    pub fn load_default(&self) -> Result<Plugin, PluginError> {
        let started = Instant::now();
        // SAFETY: the bytes are this binary's own, written by build.rs with
        // `Engine::precompile_component` of the same wasmtime; wasmtime checks that they fit
        // this engine (version, settings, CPU features) before using them.
        let code = unsafe { Component::deserialize(&self.engine, DEFAULT_PLUGIN_CODE) };
        // wasmtime copied the code into memory of its own: the binary's pages holding it
        // (3.8 MB) are not read again, and need not stay in this process's memory.
        if code.is_ok() {
            resident::release(DEFAULT_PLUGIN_CODE);
        }
        match code {
            Ok(component) => self.prepare(
                "builtin",
                DEFAULT_PLUGIN_SHA256.to_string(),
                component,
                CodeSource::Embedded,
                started,
            ),
            Err(e) => {
                tracing::info!(reason = %e, "the precompiled built-in plugin does not fit this engine; compiling it");
                self.load("builtin", DEFAULT_PLUGIN)
            }
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What a plugin serves (its `info`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub distributions: Vec<DistributionInfo>,
    pub image_repositories: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DistributionInfo {
    pub name: String,
    pub image: String,
    pub llama_stack_version: String,
    pub description: String,
}

impl From<wit::PluginInfo> for PluginInfo {
    fn from(i: wit::PluginInfo) -> Self {
        PluginInfo {
            name: i.name,
            version: i.version,
            distributions: i
                .distributions
                .into_iter()
                .map(|d| DistributionInfo {
                    name: d.name,
                    image: d.image,
                    llama_stack_version: d.llama_stack_version,
                    description: d.description,
                })
                .collect(),
            image_repositories: i.image_repositories,
        }
    }
}

/// Why a conversion produced no object.
#[derive(Debug, Clone, PartialEq)]
pub enum ConvertRefusal {
    /// The plugin does not convert (only the built-in one does).
    Unsupported(String),
    /// The object is not a convertible LlamaStackDistribution.
    Invalid(Vec<FieldError>),
}

/// A compiled plugin, ready to be instantiated per call.
pub struct Plugin {
    name: String,
    digest: String,
    pre: bindings::DistributionPluginPre<State>,
    info: Option<PluginInfo>,
    compile_time: Duration,
    code: CodeSource,
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// sha256 of the component bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn info(&self) -> Option<&PluginInfo> {
        self.info.as_ref()
    }

    /// Time from bytes to a plugin ready to call (compile or load of its code, link, info).
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }

    /// Where its code came from.
    pub fn code_source(&self) -> CodeSource {
        self.code
    }

    /// Generates config.yaml. The outer error is the plugin's fault (trap, deadline, memory);
    /// the inner one is the user's (field errors).
    pub fn generate(
        &self,
        host: &Host,
        req: &GenerateRequest,
    ) -> Result<Result<Generated, Vec<FieldError>>, PluginError> {
        let json = request_json(&self.name, req)?;
        let out = self.call(host, |e, s| e.call_generate(s, &json))?;
        Ok(match out {
            Ok(g) => Ok(generated(g).map_err(|message| PluginError::Protocol {
                plugin: self.name.clone(),
                message,
            })?),
            Err(errors) => Err(field_errors(&self.name, errors)?),
        })
    }

    pub fn validate(
        &self,
        host: &Host,
        req: &GenerateRequest,
    ) -> Result<Vec<FieldError>, PluginError> {
        let json = request_json(&self.name, req)?;
        let errors = self.call(host, |e, s| e.call_validate(s, &json))?;
        field_errors(&self.name, errors)
    }

    /// Converts a LlamaStackDistribution object to `to_version` (FR-080..083). The inner
    /// error is the input's fault (field errors) or the plugin's refusal (`Unsupported`).
    pub fn convert(
        &self,
        host: &Host,
        object: &serde_json::Value,
        to_version: &str,
    ) -> Result<Result<serde_json::Value, ConvertRefusal>, PluginError> {
        let json = serde_json::to_string(object).map_err(|e| PluginError::Protocol {
            plugin: self.name.clone(),
            message: e.to_string(),
        })?;
        let out = self.call(host, |e, s| e.call_convert(s, &json, to_version))?;
        Ok(match out {
            Ok(text) => Ok(
                serde_json::from_str(&text).map_err(|e| PluginError::Protocol {
                    plugin: self.name.clone(),
                    message: format!("convert returned invalid JSON: {e}"),
                })?,
            ),
            Err(wit::ConvertError::Unsupported(why)) => Err(ConvertRefusal::Unsupported(why)),
            Err(wit::ConvertError::Invalid(errors)) => {
                Err(ConvertRefusal::Invalid(field_errors(&self.name, errors)?))
            }
        })
    }

    /// One call in a fresh sandbox.
    fn call<R>(
        &self,
        host: &Host,
        f: impl FnOnce(&wit::Guest, &mut wasmtime::Store<State>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let mut sandbox = Sandbox::new(&host.engine, host.limits, TICK);
        let result = self
            .pre
            .instantiate(&mut sandbox.store)
            .and_then(|instance| f(instance.llamastack_config_engine(), &mut sandbox.store));
        result.map_err(|e| sandbox.classify(&self.name, e))
    }
}

fn request_json(plugin: &str, req: &GenerateRequest) -> Result<String, PluginError> {
    serde_json::to_string(req).map_err(|e| PluginError::Protocol {
        plugin: plugin.to_string(),
        message: e.to_string(),
    })
}

fn field_errors(
    plugin: &str,
    errors: Vec<wit::FieldError>,
) -> Result<Vec<FieldError>, PluginError> {
    errors
        .into_iter()
        .map(|e| {
            let reason = serde_json::from_value(serde_json::Value::String(e.reason.clone()))
                .map_err(|_| PluginError::Protocol {
                    plugin: plugin.to_string(),
                    message: format!("unknown error reason {:?}", e.reason),
                })?;
            Ok(FieldError {
                path: e.path,
                reason,
                message: e.message,
            })
        })
        .collect()
}

fn generated(g: wit::Generated) -> Result<Generated, String> {
    let config_source = serde_json::from_value(serde_json::Value::String(
        g.distribution.config_source.clone(),
    ))
    .map_err(|_| format!("unknown config source {:?}", g.distribution.config_source))?;
    // The hash names the ConfigMap and decides rollouts (D10, FR-096): a plugin's word for
    // it is not taken.
    let actual = llama_stack_config::content_hash(g.config_yaml.as_bytes());
    if g.content_hash != actual {
        return Err(format!(
            "content-hash {:?} is not the sha256 of config-yaml ({actual})",
            g.content_hash
        ));
    }
    Ok(Generated {
        config_yaml: g.config_yaml,
        content_hash: g.content_hash,
        env: g
            .env
            .into_iter()
            .map(|e| llama_stack_config::SecretEnv {
                name: e.name,
                secret_name: e.secret_name,
                secret_key: e.secret_key,
            })
            .collect(),
        provider_count: g.provider_count,
        resource_count: g.resource_count,
        config_version: g.config_version,
        warnings: g.warnings,
        derived_secrets: g
            .derived_secrets
            .into_iter()
            .map(|d| llama_stack_config::DerivedSecret {
                name: d.name,
                source_secret: d.source_secret,
                source_key: d.source_key,
                format: d.format,
            })
            .collect(),
        distribution: llama_stack_config::ResolvedDistribution {
            name: g.distribution.name,
            image: g.distribution.image,
            llama_stack_version: g.distribution.llama_stack_version,
            config_source,
            base_config_hash: g.distribution.base_config_hash,
        },
    })
}
