//! The allocator of a plugin instance: a bump allocator. The operator instantiates a plugin
//! for one call and drops the whole instance afterwards, so the general-purpose allocator's
//! bookkeeping (dlmalloc's bins, its frees) is work nobody benefits from: it was 15% of a
//! call. Freeing the most recent block and growing it in place keep the common
//! `Vec`/`String` growth patterns compact; everything else is reclaimed with the instance.
//!
//! A host must therefore use a fresh instance per call (the operator and the playground
//! do); a reused instance keeps growing until its memory cap traps it.

use std::alloc::Layout;
use std::cell::Cell;

/// wasm page size.
pub const PAGE: usize = 65536;
/// Memory is requested from the host in steps of at least this many pages (1 MiB).
const MIN_GROW_PAGES: usize = 16;

pub struct OneShot {
    next: Cell<usize>,
    end: Cell<usize>,
}

// SAFETY: only compiled in for targets without threads (see lib.rs).
unsafe impl Sync for OneShot {}

impl Default for OneShot {
    fn default() -> Self {
        OneShot::new()
    }
}

impl OneShot {
    pub const fn new() -> OneShot {
        OneShot {
            next: Cell::new(0),
            end: Cell::new(0),
        }
    }

    /// `grow(pages)` adds pages to memory and returns the address they start at.
    pub fn alloc(&self, layout: Layout, grow: impl Fn(usize) -> Option<usize>) -> *mut u8 {
        if let Some(p) = self.bump(layout) {
            return p;
        }
        let Some(need) = layout.size().checked_add(layout.align()) else {
            return std::ptr::null_mut();
        };
        let pages = need.div_ceil(PAGE).max(MIN_GROW_PAGES);
        let Some(start) = grow(pages) else {
            return std::ptr::null_mut();
        };
        // Someone else (wasi-libc's own malloc) may have grown memory since our last region:
        // continue only where the new pages are.
        if start != self.end.get() {
            self.next.set(start);
        }
        self.end.set(start + pages * PAGE);
        self.bump(layout).unwrap_or(std::ptr::null_mut())
    }

    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        let start = self.next.get().checked_add(layout.align() - 1)? & !(layout.align() - 1);
        let end = start.checked_add(layout.size())?;
        if self.end.get() == 0 || end > self.end.get() {
            return None;
        }
        self.next.set(end);
        Some(start as *mut u8)
    }

    /// Only the most recent block is given back.
    pub fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ptr as usize + layout.size() == self.next.get() {
            self.next.set(ptr as usize);
        }
    }

    /// The most recent block grows or shrinks in place; any other moves.
    ///
    /// # Safety
    /// `ptr` is a live block of this allocator allocated with `layout`.
    pub unsafe fn realloc(
        &self,
        ptr: *mut u8,
        layout: Layout,
        new_size: usize,
        grow: impl Fn(usize) -> Option<usize>,
    ) -> *mut u8 {
        let at = ptr as usize;
        if at + layout.size() == self.next.get()
            && let Some(end) = at.checked_add(new_size)
            && end <= self.end.get()
        {
            self.next.set(end);
            return ptr;
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        let moved = self.alloc(new_layout, grow);
        if !moved.is_null() {
            // SAFETY: both blocks are live, distinct, and at least this long.
            unsafe { std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size)) };
        }
        moved
    }
}

#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
mod global {
    use super::{OneShot, PAGE};
    use std::alloc::{GlobalAlloc, Layout};

    struct Global(OneShot);

    fn grow(pages: usize) -> Option<usize> {
        let before = core::arch::wasm32::memory_grow(0, pages);
        (before != usize::MAX).then_some(before * PAGE)
    }

    // SAFETY: blocks never overlap: each comes from untouched memory past `next`, and `next`
    // only moves back over the most recent block when that block is freed or resized.
    unsafe impl GlobalAlloc for Global {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            self.0.alloc(layout, grow)
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            self.0.dealloc(ptr, layout)
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: GlobalAlloc::realloc's caller guarantees what ours requires.
            unsafe { self.0.realloc(ptr, layout, new_size, grow) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Global = Global(OneShot::new());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory as the wasm host hands it out: pages appended to one region.
    struct Memory {
        base: usize,
        pages: Cell<usize>,
        max_pages: usize,
    }

    impl Memory {
        fn new(buf: &mut [u8]) -> Memory {
            let base = (buf.as_mut_ptr() as usize).div_ceil(PAGE) * PAGE;
            let usable = buf.as_ptr() as usize + buf.len() - base;
            Memory {
                base,
                pages: Cell::new(0),
                max_pages: usable / PAGE,
            }
        }
        fn grow(&self, n: usize) -> Option<usize> {
            let before = self.pages.get();
            if before + n > self.max_pages {
                return None;
            }
            self.pages.set(before + n);
            Some(self.base + before * PAGE)
        }
    }

    #[test]
    fn blocks_are_aligned_distinct_and_the_last_one_is_reused() {
        let mut buf = vec![0u8; 40 * PAGE];
        let mem = Memory::new(&mut buf);
        let a = OneShot::new();
        let g = |n| mem.grow(n);
        let l8 = Layout::from_size_align(24, 8).expect("layout");
        let p1 = a.alloc(l8, g);
        let p2 = a.alloc(Layout::from_size_align(3, 1).expect("layout"), g);
        let p3 = a.alloc(Layout::from_size_align(16, 16).expect("layout"), g);
        assert_eq!(p1 as usize % 8, 0);
        assert_eq!(p3 as usize % 16, 0);
        assert!(p2 as usize >= p1 as usize + 24 && p3 as usize >= p2 as usize + 3);
        assert_eq!(mem.pages.get(), MIN_GROW_PAGES, "one grow served all three");
        // The last block grows in place; an earlier one moves and keeps its bytes.
        // SAFETY: p3 is the live block allocated with this layout.
        let p3b = unsafe { a.realloc(p3, Layout::from_size_align(16, 16).expect("layout"), 64, g) };
        assert_eq!(p3b, p3);
        // SAFETY: p1 is a live 24-byte block.
        unsafe { p1.write_bytes(7, 24) };
        // SAFETY: p1 is the live block allocated with l8.
        let p1b = unsafe { a.realloc(p1, l8, 48, g) };
        assert_ne!(p1b, p1);
        // SAFETY: p1b is a live 48-byte block whose first 24 bytes were copied.
        assert!(
            unsafe { std::slice::from_raw_parts(p1b, 24) }
                .iter()
                .all(|b| *b == 7)
        );
        // Freeing the last block lets the next allocation take its place.
        a.dealloc(p1b, Layout::from_size_align(48, 8).expect("layout"));
        assert_eq!(a.alloc(l8, g), p1b);
    }

    #[test]
    fn large_blocks_grow_memory_and_exhaustion_is_null() {
        let mut buf = vec![0u8; 40 * PAGE];
        let mem = Memory::new(&mut buf);
        let a = OneShot::new();
        let g = |n| mem.grow(n);
        let big = Layout::from_size_align(20 * PAGE, 8).expect("layout");
        let p = a.alloc(big, g);
        assert!(!p.is_null());
        assert!(mem.pages.get() >= 21);
        assert!(a.alloc(big, g).is_null(), "the memory cap is reached");
        let small = a.alloc(Layout::from_size_align(64, 8).expect("layout"), g);
        assert!(
            !small.is_null(),
            "a refused grow leaves what is left usable"
        );
    }
}
