//! glibc malloc settings for a process that moves hundreds of MB/s through
//! large short-lived blocks.
//!
//! # Why
//!
//! On the produce path every request brings blocks of 64 KiB to a few MiB
//! (the request frame, each partition's copy of its batches, 256 KiB
//! aligned write chunks), and the tail cache frees as many as it takes in.
//! With glibc's defaults these go back to the kernel almost at once:
//! blocks above the mmap threshold (128 KiB at start) are mapped and
//! unmapped one by one, and free memory above the trim threshold at the
//! top of an arena is released. The next allocation then page-faults every
//! page in again, the kernel zeroes it, and each unmap shoots down TLBs on
//! the other cores. A profile of `corestream bench produce` at ~600 MB/s
//! showed page faults, page clearing, memcg charging and TLB-shootdown
//! IPIs at about 15 % of the broker's CPU; with these settings produce went
//! from 591-636 to 665-714 MB/s on the same machine (docs/BENCHMARKS_HISTORY.md).
//!
//! # What
//!
//! [`tune`] raises both thresholds once, before any thread starts, so freed
//! blocks stay in their arena and are reused. Memory the process no longer
//! uses is then kept rather than returned: RSS stays near its peak, which
//! the broker's own bounds (request budgets, tail cache) already limit.
//! Blocks of [`MMAP_THRESHOLD_BYTES`] or more are still mapped, and the
//! broker's huge-reservation path (`crate::alloc`) is unaffected.
//!
//! Start-up is the exception: what opening the partitions allocated and
//! freed is handed back once, with [`release_free_memory`], when the broker
//! is ready.
//!
//! Setting a threshold also turns off glibc's dynamic adjustment of it,
//! which otherwise only grows the mmap threshold after a mapped block is
//! freed (so the first churn of each size still pays).

/// Blocks smaller than this come from the arenas (32 MiB: above every
/// block the hot paths churn: reads of at most 1 MiB, 256 KiB write chunks,
/// batches of a few MiB at most; a rare huge request is still mapped).
pub const MMAP_THRESHOLD_BYTES: usize = 32 << 20;
/// Free memory at the top of an arena kept instead of being trimmed (512 MiB).
pub const TRIM_THRESHOLD_BYTES: usize = 512 << 20;

/// Applies the settings; call first thing in `main`. Returns the names of
/// the settings glibc refused (none on glibc; every one elsewhere, where
/// there is nothing to tune).
pub fn tune() -> Vec<&'static str> {
    let mut refused = Vec::new();
    for (name, option, value) in settings() {
        if !set(option, value) {
            refused.push(name);
        }
    }
    refused
}

fn settings() -> [(&'static str, i32, usize); 2] {
    #[cfg(target_env = "gnu")]
    let (mmap, trim) = (libc::M_MMAP_THRESHOLD, libc::M_TRIM_THRESHOLD);
    #[cfg(not(target_env = "gnu"))]
    let (mmap, trim) = (0, 0);
    [
        ("M_MMAP_THRESHOLD", mmap, MMAP_THRESHOLD_BYTES),
        ("M_TRIM_THRESHOLD", trim, TRIM_THRESHOLD_BYTES),
    ]
}

/// Returns the free memory of every arena to the kernel once (glibc
/// `malloc_trim`). The broker calls it when start-up is done: opening
/// 10,000 partitions with data left about 130 MiB freed but held.
pub fn release_free_memory() {
    // SAFETY: malloc_trim only releases free pages; glibc locks each arena
    // while it does.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(target_env = "gnu")]
fn set(option: i32, value: usize) -> bool {
    let Ok(value) = i32::try_from(value) else {
        return false;
    };
    // SAFETY: mallopt only changes allocator parameters; it is safe to call
    // at any time (glibc serializes it against allocations).
    unsafe { libc::mallopt(option, value) == 1 }
}

#[cfg(not(target_env = "gnu"))]
fn set(_option: i32, _value: usize) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// glibc accepts every value (a refused one would leave glibc's default,
    /// and the churn, in place).
    #[cfg(target_env = "gnu")]
    #[test]
    fn tune_glibc_accepts_every_setting() {
        assert_eq!(tune(), Vec::<&str>::new());
    }
}
