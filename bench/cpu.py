"""CPU time of a load run, split between the broker, the load generator and
the rest of the machine, for bench/suite.py.

Why: on a 2-CPU machine the generator and the broker share the CPUs, so a
throughput short of its limit is either the broker's cost per byte or a
machine with no CPU left. The split says which, in every suite run, and
CPU-seconds per GB compare brokers per core however much CPU the generator
took.

- broker: utime + stime of the broker process, all its threads, io_uring
  workers (iou-wrk) included, from /proc/PID/stat;
- generator: the children's rusage delta (getrusage(RUSAGE_CHILDREN)): the
  generator is the only child reaped during the window;
- machine: busy time of all CPUs from /proc/stat (everything but idle and
  iowait); "rest" = machine - broker - generator: kernel workers (block
  I/O completion, softirq not charged to a task) and anything else running.
"""

from __future__ import annotations

import os
import resource
import time

HZ = os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / HZ  # guest time is already in user


def _process(pid: int) -> tuple[float, float, int]:
    """User seconds, system seconds and minor page faults of a process."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / HZ, int(fields[12]) / HZ, int(fields[7])


def _children() -> tuple[float, float, int]:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime, r.ru_stime, r.ru_minflt


def _delta(after: tuple, before: tuple) -> tuple:
    return tuple(a - b for a, b in zip(after, before))


class CpuWindow:
    """Start it before the generator starts, `done()` once it is reaped."""

    def __init__(self, broker_pid: int) -> None:
        self.pid = broker_pid
        self.t0 = time.monotonic()
        self.machine0 = _machine_busy_s()
        self.broker0 = _process(broker_pid)
        self.children0 = _children()

    def done(self) -> dict:
        """CPU-seconds of the broker, the generator and the rest of the
        machine over the window. The window is the generator's whole life
        (start, connect, drain), longer than its measured seconds, so the
        report divides by the MB moved (CPU-seconds per GB) rather than by
        the window: an idle broker or generator costs ~0 CPU, so the ratio
        is the steady-state cost plus the generator's start-up."""
        seconds = time.monotonic() - self.t0
        try:
            b_user, b_sys, b_faults = _delta(_process(self.pid), self.broker0)
        except OSError:
            return {"not_measured": "the broker exited during the run"}
        g_user, g_sys, g_faults = _delta(_children(), self.children0)
        broker, generator = b_user + b_sys, g_user + g_sys
        machine = _machine_busy_s() - self.machine0
        # The system share and the page faults say whether CPU went to the
        # work or to the kernel (on this VM a fault on memory the host took
        # back costs 4-41 us instead of ~1.5: BENCHMARKS_HISTORY.md, "The slowdown
        # after a restart").
        return {
            "window_s": round(seconds, 2),
            "cpus": os.cpu_count(),
            "broker_cpu_s": round(broker, 3),
            "broker_sys_s": round(b_sys, 3),
            "broker_minor_faults": b_faults,
            "generator_cpu_s": round(generator, 3),
            "generator_sys_s": round(g_sys, 3),
            "generator_minor_faults": g_faults,
            "rest_cpu_s": round(max(machine - broker - generator, 0.0), 3),
        }
