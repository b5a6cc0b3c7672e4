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


def _process_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def _children_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class CpuWindow:
    """Start it before the generator starts, `done()` once it is reaped."""

    def __init__(self, broker_pid: int) -> None:
        self.pid = broker_pid
        self.t0 = time.monotonic()
        self.machine0 = _machine_busy_s()
        self.broker0 = _process_s(broker_pid)
        self.children0 = _children_s()

    def done(self) -> dict:
        """CPU-seconds of the broker, the generator and the rest of the
        machine over the window. The window is the generator's whole life
        (start, connect, drain), longer than its measured seconds, so the
        report divides by the MB moved (CPU-seconds per GB) rather than by
        the window: an idle broker or generator costs ~0 CPU, so the ratio
        is the steady-state cost plus the generator's start-up."""
        seconds = time.monotonic() - self.t0
        try:
            broker = _process_s(self.pid) - self.broker0
        except OSError:
            return {"not_measured": "the broker exited during the run"}
        generator = _children_s() - self.children0
        machine = _machine_busy_s() - self.machine0
        return {
            "window_s": round(seconds, 2),
            "cpus": os.cpu_count(),
            "broker_cpu_s": round(broker, 3),
            "generator_cpu_s": round(generator, 3),
            "rest_cpu_s": round(max(machine - broker - generator, 0.0), 3),
        }
