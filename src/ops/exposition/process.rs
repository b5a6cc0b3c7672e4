//! The process's own families: shards, readiness, uptime, memory.

use std::fmt::Write as _;

use super::family;
use crate::ops::metrics::ProcessStats;

pub(super) fn render_process(out: &mut String, shards: usize, process: &ProcessStats) {
    family(
        out,
        "corestream_shards",
        "gauge",
        "Shards (executors) running.",
    );
    let _ = writeln!(out, "corestream_shards {shards}");
    family(
        out,
        "corestream_ready",
        "gauge",
        "1 once start-up finished and no stop began.",
    );
    let _ = writeln!(out, "corestream_ready {}", u8::from(process.ready));
    family(
        out,
        "corestream_uptime_seconds",
        "gauge",
        "Seconds since the process started.",
    );
    let _ = writeln!(
        out,
        "corestream_uptime_seconds {:.3}",
        process.uptime_seconds
    );
    if let Some(rss) = process.resident_memory_bytes {
        family(
            out,
            "corestream_resident_memory_bytes",
            "gauge",
            "Resident memory of the process.",
        );
        let _ = writeln!(out, "corestream_resident_memory_bytes {rss}");
    }
    if let Some(a) = process.allocator {
        family(
            out,
            "corestream_allocator_allocated_bytes",
            "gauge",
            "Heap bytes allocated and not freed (glibc mallinfo2).",
        );
        let _ = writeln!(
            out,
            "corestream_allocator_allocated_bytes {}",
            a.allocated_bytes
        );
        family(
            out,
            "corestream_allocator_mapped_bytes",
            "gauge",
            "Heap bytes the allocator holds from the kernel (glibc mallinfo2).",
        );
        let _ = writeln!(out, "corestream_allocator_mapped_bytes {}", a.mapped_bytes);
    }
}
