//! The broker's global allocator: huge requests reserve address space only.
//!
//! # Why
//!
//! The `kafka-protocol` crate decodes an array by reading its element count
//! off the wire and calling `Vec::with_capacity(count)` before decoding a
//! single element. A 20-byte request that claims 2^31 elements of a 300-byte
//! struct therefore asks the allocator for ~600 GB. glibc serves that with
//! `mmap`, which the kernel's default overcommit heuristic
//! (`vm.overcommit_memory = 0`) refuses because it exceeds RAM + swap; the
//! allocation returns null, and Rust's `handle_alloc_error` aborts the
//! process: one malformed request would take down every shard of the broker.
//!
//! # What
//!
//! [`BrokerAllocator`] sends every request of [`HUGE_ALLOC_BYTES`] or more
//! to `mmap(PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
//! MAP_NORESERVE)`. `MAP_NORESERVE` skips the commit accounting, so the call
//! only reserves address space (x86-64 user space is 128 TiB); no page is
//! backed until it is written. The lying decode then fails on the first
//! missing byte, drops the `Vec`, and the block is returned with `munmap`
//! without ever having cost memory. Everything smaller goes to
//! [`std::alloc::System`] unchanged, so the hot path is untouched.
//!
//! The decision is a pure function of the `Layout` (size and alignment), and
//! Rust passes `dealloc`/`realloc` the layout the block was allocated with,
//! so every block is always returned to the allocator that made it.
//!
//! # Limits
//!
//! - Alignment above one page ([`PAGE_BYTES`]) is left to `System`
//!   (an `mmap` block is only page aligned).
//! - A lie costs address space while its decode runs: at most one live lie
//!   per nesting level of the schema being decoded (an inner lying array
//!   fails the whole decode), a few TB at worst per shard, well inside
//!   128 TiB.
//! - With `vm.overcommit_memory = 2` (strict) the kernel ignores
//!   `MAP_NORESERVE` and huge reservations fail (and abort) as before;
//!   likewise a low `RLIMIT_AS`. Deployments should keep the default.
//! - A legitimate huge allocation pays page faults as it is touched, like
//!   any fresh `mmap`; the broker has none on its normal paths (requests are
//!   capped at `socket.request.max.bytes`, 100 MiB by default).
//!
//! The daemon installs it with `#[global_allocator]`; so do the tests and
//! fuzz targets that decode hostile requests.

use std::alloc::{GlobalAlloc, Layout, System};

/// Requests of this many bytes or more are served by a `MAP_NORESERVE` mapping (1 GiB).
pub const HUGE_ALLOC_BYTES: usize = 1 << 30;
/// The smallest page size on supported targets: `mmap` blocks are aligned to at least this.
pub const PAGE_BYTES: usize = 4096;

const _: () = assert!(HUGE_ALLOC_BYTES.is_multiple_of(PAGE_BYTES));
const _: () = assert!(HUGE_ALLOC_BYTES > crate::protocol::frame::REQUEST_BYTES_MAX_DEFAULT);

/// The broker's global allocator; see the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct BrokerAllocator;

/// Whether a block of this layout is (or was) served by `mmap`.
#[inline]
fn is_huge(size: usize, align: usize) -> bool {
    size >= HUGE_ALLOC_BYTES && align <= PAGE_BYTES
}

/// Reserves `size` bytes of zeroed, lazily backed memory; null on failure.
fn map_huge(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing touches no existing memory.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return std::ptr::null_mut();
    }
    ptr.cast()
}

/// Returns a block made by [`map_huge`].
///
/// # Safety
/// `ptr` and `size` must be those of a live block from [`map_huge`] (or
/// grown by `mremap`), and the block must not be used afterwards.
unsafe fn unmap_huge(ptr: *mut u8, size: usize) {
    // SAFETY: guaranteed by the caller.
    let rc = unsafe { libc::munmap(ptr.cast(), size) };
    // munmap of a block we mapped cannot fail unless memory is corrupt; an
    // allocator may not panic, so abort loudly instead of leaking silently.
    if rc != 0 {
        std::process::abort();
    }
}

// SAFETY: huge blocks come from mmap with at least page alignment, which
// satisfies `layout.align() <= PAGE_BYTES`, and go back through munmap with
// the same size; every other block is System's, in and out, because
// `is_huge` depends only on the layout Rust hands back to us.
unsafe impl GlobalAlloc for BrokerAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_huge(layout.size(), layout.align()) {
            return map_huge(layout.size());
        }
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(layout.size(), layout.align()) {
            return map_huge(layout.size()); // anonymous mappings are zeroed
        }
        // SAFETY: forwarded contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_huge(layout.size(), layout.align()) {
            // SAFETY: a huge layout means this block came from map_huge.
            unsafe { unmap_huge(ptr, layout.size()) };
            return;
        }
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old_huge = is_huge(layout.size(), layout.align());
        let new_huge = is_huge(new_size, layout.align());
        match (old_huge, new_huge) {
            // SAFETY: forwarded contract; System made the block.
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            (true, true) => {
                // SAFETY: the block is ours; MREMAP_MAYMOVE leaves it intact on failure.
                let moved = unsafe {
                    libc::mremap(ptr.cast(), layout.size(), new_size, libc::MREMAP_MAYMOVE)
                };
                if moved == libc::MAP_FAILED {
                    return std::ptr::null_mut();
                }
                moved.cast()
            }
            // SAFETY: forwarded contract; crossing the threshold moves the
            // block between allocators.
            _ => unsafe { move_block(self, ptr, layout, new_size) },
        }
    }
}

/// `realloc` across the huge threshold: allocate, copy, free.
///
/// # Safety
/// The contract of [`GlobalAlloc::realloc`].
unsafe fn move_block(
    allocator: &BrokerAllocator,
    ptr: *mut u8,
    layout: Layout,
    new_size: usize,
) -> *mut u8 {
    // SAFETY: realloc's contract makes new_size, rounded to align, a valid size.
    let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
    // SAFETY: new_layout has non-zero size (realloc's contract).
    let new_ptr = unsafe { allocator.alloc(new_layout) };
    if new_ptr.is_null() {
        return new_ptr;
    }
    // SAFETY: both blocks are live, distinct, and at least this long.
    unsafe {
        std::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
        allocator.dealloc(ptr, layout);
    }
    new_ptr
}

#[cfg(test)]
mod tests {
    use super::*;

    // The allocator is exercised directly here (the library's test binary
    // keeps System); tests/huge_array_alloc.rs installs it globally.

    #[test]
    fn huge_block_is_mapped_zeroed_and_page_aligned() {
        let layout = Layout::from_size_align(HUGE_ALLOC_BYTES * 4, 64).unwrap();
        unsafe {
            let ptr = BrokerAllocator.alloc_zeroed(layout);
            assert!(!ptr.is_null());
            assert_eq!(ptr as usize % PAGE_BYTES, 0);
            assert_eq!(*ptr.add(HUGE_ALLOC_BYTES * 3), 0);
            *ptr.add(12_345) = 7;
            BrokerAllocator.dealloc(ptr, layout);
        }
    }

    #[test]
    fn realloc_across_threshold_keeps_contents() {
        let small = Layout::from_size_align(4096, 8).unwrap();
        unsafe {
            let ptr = BrokerAllocator.alloc(small);
            for i in 0..4096 {
                *ptr.add(i) = i as u8;
            }
            let huge = BrokerAllocator.realloc(ptr, small, HUGE_ALLOC_BYTES + 1);
            assert!(!huge.is_null());
            let huge_layout = Layout::from_size_align(HUGE_ALLOC_BYTES + 1, 8).unwrap();
            let bigger = BrokerAllocator.realloc(huge, huge_layout, HUGE_ALLOC_BYTES * 8);
            assert!(!bigger.is_null());
            let bigger_layout = Layout::from_size_align(HUGE_ALLOC_BYTES * 8, 8).unwrap();
            let back = BrokerAllocator.realloc(bigger, bigger_layout, 100);
            assert!(!back.is_null());
            for i in 0..100 {
                assert_eq!(*back.add(i), i as u8);
            }
            BrokerAllocator.dealloc(back, Layout::from_size_align(100, 8).unwrap());
        }
    }

    #[test]
    fn over_page_alignment_goes_to_system() {
        assert!(!is_huge(HUGE_ALLOC_BYTES, 2 * PAGE_BYTES));
        assert!(is_huge(HUGE_ALLOC_BYTES, PAGE_BYTES));
        assert!(!is_huge(HUGE_ALLOC_BYTES - 1, 1));
    }
}
