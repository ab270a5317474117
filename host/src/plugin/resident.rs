//! Giving back the pages of static data that was read once (issue 18: peak RSS).
//!
//! Bytes embedded with `include_bytes!` live in the binary's read-only segment, a private file
//! mapping. Once read, their pages count in the process's RSS until the kernel reclaims them.
//! `MADV_DONTNEED` unmaps them at once: the data stays in the page cache, and a later read, if
//! any, maps it again from the file. Nothing is lost because those pages are never written.

/// Releases the whole pages inside `bytes`, which must be static, read-only data (never
/// written, so that dropping the pages loses nothing). Best effort: a refusal only leaves them
/// resident.
pub fn release(bytes: &'static [u8]) {
    #[cfg(target_os = "linux")]
    {
        let page = page_size();
        let start = bytes.as_ptr() as usize;
        let (Some(first), Some(end)) = (
            start.checked_next_multiple_of(page),
            start.checked_add(bytes.len()),
        ) else {
            return;
        };
        let last = end - end % page;
        if last <= first {
            return;
        }
        // SAFETY: [first, last) lies inside `bytes`, static read-only data of this binary: a
        // private file mapping never written. MADV_DONTNEED drops its page-table entries only;
        // a later read maps the same file content again. No Rust reference sees a change.
        let rc = unsafe {
            libc::madvise(
                first as *mut libc::c_void,
                last - first,
                libc::MADV_DONTNEED,
            )
        };
        if rc != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "madvise(MADV_DONTNEED) refused");
        }
    }
}

#[cfg(target_os = "linux")]
fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the system.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|s| *s > 0)
        .unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    static DATA: [u8; 64 * 1024] = {
        let mut d = [0u8; 64 * 1024];
        let mut i = 0;
        while i < d.len() {
            d[i] = (i % 251) as u8;
            i += 1;
        }
        d
    };

    #[test]
    fn released_static_bytes_read_the_same_again() {
        let before: u64 = DATA.iter().map(|b| *b as u64).sum();
        release(&DATA);
        let after: u64 = std::hint::black_box(&DATA).iter().map(|b| *b as u64).sum();
        assert_eq!(before, after);
        assert_eq!(DATA[65_535], (65_535 % 251) as u8);
        // Bytes smaller than a page: nothing to release, nothing happens.
        release(&DATA[..10]);
        assert_eq!(DATA[9], 9);
    }
}
