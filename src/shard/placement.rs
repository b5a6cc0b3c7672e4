//! Which CPU each shard is pinned to, and how much locked memory it may use.
//!
//! hwloc reads the topology: shards take one hardware thread of each physical
//! core first (so two shards never share a core while a free core exists),
//! then the sibling hardware threads, all within the process's CPU affinity
//! mask (a cgroup or `taskset` may have narrowed it). If hwloc cannot read the
//! topology we fall back to the affinity mask in CPU order.

use hwloc2::{CpuBindFlags, ObjectType, Topology};

/// glommio's own default io_memory, used when locked memory is unlimited.
pub const IO_MEMORY_BYTES_DEFAULT: usize = 10 << 20;
/// Below this glommio's registered buffer pool is not worth having.
pub const IO_MEMORY_BYTES_MIN: usize = 256 << 10;
/// Share of RLIMIT_MEMLOCK given to glommio's registered buffers, in
/// percent; the rest stays free for io_uring rings and other locked pages.
pub const IO_MEMORY_MEMLOCK_SHARE_PERCENT: usize = 50;

/// CPUs (OS indexes) for `shards` shards, physical cores first.
pub fn shard_cpus(shards: usize) -> Vec<usize> {
    let order = topology_cpu_order()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(affinity_cpus);
    let order = if order.is_empty() { vec![0] } else { order };
    (0..shards).map(|i| order[i % order.len()]).collect()
}

fn topology_cpu_order() -> Option<Vec<usize>> {
    let topo = Topology::new()?;
    let allowed = topo.get_cpubind(CpuBindFlags::CPUBIND_PROCESS);
    let cores = topo.objects_with_type(&ObjectType::Core).ok()?;
    let per_core: Vec<Vec<usize>> = cores
        .iter()
        .filter_map(|c| c.cpuset())
        .map(|set| {
            set.into_iter()
                .filter(|cpu| allowed.as_ref().map(|a| a.is_set(*cpu)).unwrap_or(true))
                .map(|cpu| cpu as usize)
                .collect()
        })
        .collect();
    let depth = per_core.iter().map(Vec::len).max().unwrap_or(0);
    Some(
        (0..depth)
            .flat_map(|i| per_core.iter().filter_map(move |c| c.get(i).copied()))
            .collect(),
    )
}

fn affinity_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![];
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// RLIMIT_MEMLOCK in bytes, `None` when unlimited.
pub fn memlock_limit_bytes() -> Option<usize> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0
        || lim.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    Some(lim.rlim_cur as usize)
}

/// glommio io_memory per shard that fits RLIMIT_MEMLOCK: registered buffers
/// are locked memory, and glommio fails to start an executor whose pool does
/// not fit. Returns 0 when even the minimum does not fit (glommio then
/// allocates DMA buffers from the heap).
pub fn io_memory_per_shard(shards: usize, memlock: Option<usize>) -> usize {
    match memlock {
        None => IO_MEMORY_BYTES_DEFAULT,
        Some(limit) => {
            let share = limit / 100 * IO_MEMORY_MEMLOCK_SHARE_PERCENT / shards.max(1);
            let share = share.min(IO_MEMORY_BYTES_DEFAULT) & !4095;
            if share < IO_MEMORY_BYTES_MIN {
                0
            } else {
                share
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_cpus_cover_requested_shards() {
        let cpus = shard_cpus(3);
        assert_eq!(cpus.len(), 3);
        let allowed = affinity_cpus();
        assert!(
            cpus.iter().all(|c| allowed.contains(c)),
            "{cpus:?} not within {allowed:?}"
        );
    }

    #[test]
    fn io_memory_fits_memlock() {
        assert_eq!(io_memory_per_shard(2, None), IO_MEMORY_BYTES_DEFAULT);
        let per = io_memory_per_shard(2, Some(8 << 20));
        assert!(per * 2 <= 8 << 20 && per >= IO_MEMORY_BYTES_MIN, "{per}");
        assert_eq!(io_memory_per_shard(64, Some(8 << 20)), 0);
    }
}
