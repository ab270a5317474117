//! Compiled plugins on disk, so that a component is compiled once per content digest and
//! engine, not at every start (issue 18). The file name carries the component's sha256 and
//! the engine's compatibility hash (wasmtime version, settings, CPU features): an operator
//! built with another wasmtime or settings looks for another file. wasmtime checks the same
//! again when it loads an artifact; a refused or unreadable file is compiled again and
//! replaced.
//!
//! Loading machine code is trusted: the directory is created private (0700) and only this
//! process writes to it, by rename, so a reader never sees a partial file.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// How a component became code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeSource {
    /// The artifact build.rs precompiled into the binary.
    Embedded,
    /// An artifact a previous run left in the cache directory.
    Cached,
    /// Compiled now (and written to the cache directory if there is one).
    Compiled,
}

impl CodeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CodeSource::Embedded => "embedded",
            CodeSource::Cached => "cached",
            CodeSource::Compiled => "compiled",
        }
    }
}

/// Where compiled plugins are kept.
#[derive(Debug, Clone)]
pub struct CodeCache {
    dir: PathBuf,
}

impl CodeCache {
    /// The cache in `dir`, created (private) when missing.
    pub fn open(dir: &Path) -> std::io::Result<CodeCache> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir)?;
        Ok(CodeCache {
            dir: dir.to_path_buf(),
        })
    }

    /// `$LLSD_PLUGIN_CACHE_DIR`, else `$XDG_CACHE_HOME/llama-stack-operator/plugins`, else
    /// `$HOME/.cache/llama-stack-operator/plugins`; None when none is set.
    pub fn default_dir() -> Option<PathBuf> {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        var("LLSD_PLUGIN_CACHE_DIR").or_else(|| {
            var("XDG_CACHE_HOME")
                .or_else(|| var("HOME").map(|h| h.join(".cache")))
                .map(|c| c.join("llama-stack-operator").join("plugins"))
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file for `bytes` compiled by `engine`.
    pub fn path(&self, engine: &Engine, digest: &str) -> PathBuf {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        self.dir.join(format!("{digest}-{:016x}.cwasm", h.finish()))
    }

    /// The cached code for the component with sha256 `digest`, if a usable one is there.
    pub fn get(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(engine, digest);
        if !path.exists() {
            return None;
        }
        // SAFETY: the file was written by `put` below, from `Component::serialize` of this
        // engine's wasmtime, into a directory only this user can write (see the module doc);
        // wasmtime checks its header and compatibility before using it.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cached plugin code refused; compiling again");
                None
            }
        }
    }

    /// Stores the code for the component with sha256 `digest`. A failure only costs the next
    /// start a compile, so it is logged, not returned.
    pub fn put(&self, engine: &Engine, digest: &str, component: &Component) {
        let path = self.path(engine, digest);
        let written = component
            .serialize()
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|code| {
                let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
                tmp.write_all(&code)?;
                tmp.persist(&path).map_err(|e| e.error)?;
                Ok(())
            });
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "could not cache compiled plugin code");
        }
    }
}
