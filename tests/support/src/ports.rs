//! Loopback ports for processes a test starts (operator, registry).
//!
//! `bind(127.0.0.1:0)` hands out a port from the kernel's ephemeral range, the
//! same range outgoing connections draw from: between the probe and the child's
//! own `bind`, a client socket (the operator's connections to the API server)
//! may take it, and the child fails with "Address already in use". Ports here
//! come from below the ephemeral range (32768.. on Linux) and above the fixed
//! control-plane ports in `tests/cluster/lib.sh` (23790..26443), so only another
//! listener can collide, and each candidate is checked by binding it.

use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Result, bail};

const FIRST: u32 = 27_000;
const COUNT: u32 = 5_000;

static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);

/// A loopback port that no listener holds now and that outgoing connections
/// will not take. Successive calls in one process never return the same port
/// (until the range wraps); different processes start at pid-dependent offsets.
pub fn free_port() -> Result<u16> {
    // The first call seeds the cursor from the pid, so two test binaries do not
    // walk the range in step.
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id().wrapping_mul(97)) % COUNT,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..COUNT {
        let port = FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % COUNT;
        let port = u16::try_from(port)?;
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free loopback port in {FIRST}..{}", FIRST + COUNT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_outside_the_ephemeral_range_and_distinct() {
        let a = free_port().unwrap();
        let b = free_port().unwrap();
        assert_ne!(a, b);
        for p in [a, b] {
            assert!((27_000..32_000).contains(&p), "{p}");
        }
    }

    #[test]
    fn a_held_port_is_skipped() {
        let held = free_port().unwrap();
        let _listener = TcpListener::bind((Ipv4Addr::LOCALHOST, held)).unwrap();
        for _ in 0..50 {
            assert_ne!(free_port().unwrap(), held);
        }
    }
}
