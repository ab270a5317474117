//! One store per call: no files, environment, network, args or real clocks; stdio captured
//! (stderr feeds error messages, e.g. a guest panic's text); a memory cap and a deadline.

use super::{Limits, PluginError};
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

/// How much of a guest's stderr is kept for the error message.
const STDERR_CAPACITY: usize = 16 * 1024;

pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Time stands still inside a plugin: output must not depend on when it ran.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

pub struct Sandbox {
    pub store: Store<State>,
    stderr: MemoryOutputPipe,
    limits: Limits,
}

impl Sandbox {
    pub fn new(engine: &Engine, limits: Limits, tick: Duration) -> Sandbox {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        // A fresh builder has no env, args or preopens; the network is off by default.
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .stdout(MemoryOutputPipe::new(STDERR_CAPACITY))
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .insecure_random_seed(0)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .instances(16)
            .tables(64)
            .memories(16)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(
            engine,
            State {
                wasi,
                table: ResourceTable::new(),
                limits: store_limits,
            },
        );
        store.limiter(|s| &mut s.limits);
        let ticks = (limits.deadline.as_millis() / tick.as_millis().max(1)).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        Sandbox {
            store,
            stderr,
            limits,
        }
    }

    /// Turns a failed call into a typed error: deadline, memory cap, or another trap with
    /// what the guest wrote to stderr (a Rust panic prints its message there).
    pub fn classify(&self, plugin: &str, err: wasmtime::Error) -> PluginError {
        let plugin = plugin.to_string();
        if matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
            return PluginError::Deadline {
                plugin,
                deadline: self.limits.deadline,
            };
        }
        let text = format!("{err:#}");
        if text.contains("forcing trap when growing memory")
            || text.contains("memory.grow") && text.contains("limit")
        {
            return PluginError::MemoryCap {
                plugin,
                limit: self.limits.memory_bytes,
            };
        }
        let stderr = String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_string();
        let message = if stderr.is_empty() {
            text
        } else {
            format!("{text}; plugin stderr: {stderr}")
        };
        PluginError::Trap { plugin, message }
    }
}
