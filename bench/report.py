#!/usr/bin/env python3
"""Turns bench/limits.py and bench/suite.py results into the suite section
of docs/BENCHMARKS.md (the block between BEGIN and END below, replaced
whole; appended if missing) and two plots in docs/img/.

Every figure is set next to its limit and the peer (Tansu) as ratios, and
each target of issue 6 is marked met / not met with the gap in %. A missing
figure is a "not measured: reason" row, never a silent gap.

Usage: bench/report.py --results DIR --doc docs/BENCHMARKS.md --img docs/img
           --run-info TEXT
"""

from __future__ import annotations

import argparse
import json
import os

BEGIN = "<!-- bench:suite:begin -->"
END = "<!-- bench:suite:end -->"
# Targets of issue 6, as fractions.
LIMIT_SHARE = 0.80  # throughput vs its physical limit
SCALE_SHARE = 0.80  # many partitions / idle connections vs the base case
LATENCY_SLACK_MS = 1.0  # p99 produce latency <= fsync p99 + this
BASE = "6-partition produce"
HALF_BASE = "half the 6-partition produce"


def fmt(x, digits: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:,.{digits}f}"
    return f"{x:,}"


def ratio(a, b) -> float | None:
    return a / b if a is not None and b else None


def verdict(value: float | None, target: float | None, higher_is_better: bool = True) -> str:
    """How far the figure is from its target: 'met (+x % over)' /
    'NOT met (-x % short)' for throughput, 'met/NOT met (N x the target)'
    for latency."""
    if value is None or target is None:
        return "not measured"
    if not higher_is_better:
        return f"{'met' if value <= target else 'NOT met'} ({value / target:.2f} x the target of {target:.1f} ms)"
    gap = value / target - 1
    # One decimal under 1 %, so a near miss does not read "0 % short".
    digits = 1 if abs(gap) < 0.01 else 0
    return f"met ({gap * 100:+.{digits}f} % over)" if gap >= 0 else f"NOT met ({-gap * 100:.{digits}f} % short)"


class Results:
    def __init__(self, d: str) -> None:
        try:
            with open(os.path.join(d, "limits.json")) as f:
                self.limits = json.load(f)
        except FileNotFoundError:
            self.limits = {"not_measured": {"all limits": "bench/limits.py did not run"}}
        with open(os.path.join(d, "suite.json")) as f:
            self.suite = json.load(f)
        self.runs = self.suite["runs"]
        self.generators = [g for g in ("native", "confluent-kafka") if any(r["generator"] == g for r in self.runs)]

    def cpus(self) -> int:
        """The CPU count the runs saw (bench/cpu.py records it)."""
        seen = (r.get("cpu", {}).get("cpus") for r in self.runs)
        return next((n for n in seen if n), os.cpu_count() or 1)

    def run(self, broker: str, gen: str, workload: str) -> dict | None:
        for r in self.runs:
            if (r["broker"], r["generator"], r["workload"]) == (broker, gen, workload):
                return r
        return None

    def value(self, broker: str, gen: str, workload: str, key: str) -> float | None:
        r = self.run(broker, gen, workload)
        if r is None or "not_measured" in r:
            return None
        if key.startswith("lat_"):
            return (r.get("latency_ms") or {}).get(key[4:])
        if key.startswith("ack_"):
            # produce() -> ack; the native e2e may only report end-to-end.
            return (r.get("produce_latency_ms") or r.get("latency_ms") or {}).get(key[4:])
        return r.get(key)

    def why(self, broker: str, gen: str, workload: str) -> str:
        r = self.run(broker, gen, workload)
        if r is not None:
            return r.get("not_measured", "")
        if broker == "tansu" and "tansu_missing" in self.suite:
            return self.suite["tansu_missing"]
        for r in self.runs:  # a failed step that stopped the rest
            if r["broker"] == broker and r["generator"] == "-":
                return f"{r['workload']}: {r['not_measured']}"
        return "not run"


def specs(lim: dict, base: float | None) -> list[tuple]:
    disk_w, disk_r, loop = (lim.get(k) for k in ("disk_write_mb_per_s", "disk_read_mb_per_s", "loopback_mb_per_s"))
    net_disk = min(x for x in (disk_w, loop) if x) if (disk_w or loop) else None
    fs50, fs99 = lim.get("fdatasync_64k_p50_ms"), lim.get("fdatasync_64k_p99_ms")
    sync_rate, sync_p50 = lim.get("fdatasync_64k_rate_per_s"), lim.get("fdatasync_64k_rate_p50_ms")
    writers = lim.get("fdatasync_64k_writers", "n")
    sync_rate_label = f"disk max write + fdatasync/s, {writers} writers"
    sync_p50_label = "fdatasync p50 at that rate"
    # (label, workload, key, limit, limit label, target, higher is better)
    return [
        ("produce MB/s, acks=all, 6 partitions", "produce", "mb_per_s", net_disk, "min(disk write, loopback)", LIMIT_SHARE, True),
        # The same figure against what the disk does when every 256 KiB of
        # each partition is fdatasynced, as acks=all asks (no target).
        ("produce MB/s, vs the disk with fdatasyncs", "produce", "mb_per_s", lim.get("write_fdatasync_256k_mb_per_s"),
         f"disk write + fdatasync every 256 KiB, {writers} writers", None, True),
        ("consume hot tail MB/s", "consume hot", "mb_per_s", loop, "loopback", LIMIT_SHARE, True),
        ("consume cold MB/s (after restart)", "consume cold", "mb_per_s", disk_r, "disk read", LIMIT_SHARE, True),
        # The paced producer (1 connection, 5 requests in flight) may not
        # reach the rate it is asked for; the latency rows are at this rate.
        ("e2e MB/s reached, half max asked", "e2e half max", "mb_per_s", base / 2 if base else None,
         HALF_BASE, None, True),
        ("e2e p50 ms at half max produce", "e2e half max", "lat_p50", fs50, "fdatasync 64 KiB p50", None, False),
        ("e2e p99 ms at half max produce", "e2e half max", "lat_p99", fs99, "fdatasync 64 KiB p99", None, False),
        ("produce ack p99 ms at half max", "e2e half max", "ack_p99", fs99, "fdatasync 64 KiB p99", "slack", False),
        # What the ack latency rests on: the fdatasyncs the broker did in
        # the e2e run against the most this disk completes (6 writers).
        ("broker fdatasync/s at half max", "e2e half max", "broker_fsyncs_per_s", sync_rate, sync_rate_label, None, False),
        ("broker fdatasync mean ms at half max", "e2e half max", "broker_fsync_mean_ms", sync_p50, sync_p50_label, None, False),
        ("produce MB/s, 1,000 partitions", "produce 1000 partitions", "mb_per_s", base, BASE, SCALE_SHARE, True),
        ("produce MB/s, 1,000 partitions, first write", "produce 1000 partitions (first write)", "mb_per_s", base, BASE, None, True),
        ("produce MB/s, 10,000 partitions", "produce 10000 partitions", "mb_per_s", base, BASE, SCALE_SHARE, True),
        ("produce MB/s, 10,000 partitions, first write", "produce 10000 partitions (first write)", "mb_per_s", base, BASE, None, True),
        ("produce MB/s, 10,000 idle connections open", "produce 10k idle conns", "mb_per_s", base, BASE, SCALE_SHARE, True),
    ]


def rows(res: Results) -> list[str]:
    fs99 = res.limits.get("fdatasync_64k_p99_ms")
    out = [
        "| figure | generator | corestream | limit | ratio to limit | Tansu | corestream vs Tansu | target | met? |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for gen in res.generators:
        base = res.value("corestream", gen, "produce", "mb_per_s")
        tbase = res.value("tansu", gen, "produce", "mb_per_s")
        for label, wl, key, limit, limit_label, share, up in specs(res.limits, base):
            v = res.value("corestream", gen, wl, key)
            t = res.value("tansu", gen, wl, key)
            if v is None:
                out.append(f"| {label} | {gen} | not measured: {res.why('corestream', gen, wl)} | | | | | | |")
                continue
            if share == "slack":
                target_txt = f"<= fsync p99 + {LATENCY_SLACK_MS:g} ms"
                met = verdict(v, fs99 + LATENCY_SLACK_MS if fs99 else None, up)
            elif share is not None:
                target_txt = f">= {share:.0%} of limit"
                met = verdict(v, share * limit if limit else None, up)
            else:
                target_txt, met = "-", "-"
            if t is None and key.startswith("broker_"):
                t_txt = "- (corestream's own counter)"
            elif t is None:
                t_txt = ("not measured (see above)" if "tansu_missing" in res.suite
                         else f"not measured: {res.why('tansu', gen, wl)}")
            elif limit_label == BASE and tbase:
                t_txt = f"{fmt(t)} ({ratio(t, tbase):.2f} of its own base)"
            elif limit_label == HALF_BASE and tbase:
                t_txt = f"{fmt(t)} ({ratio(t, tbase / 2):.2f} of its own half max)"
            else:
                t_txt = fmt(t)
            vs_t = ratio(v, t) if up else ratio(t, v)
            if limit_label == HALF_BASE:
                vs_t = None  # each broker is paced at its own half max
            peer = f"{vs_t:.2f}x, {'ahead' if vs_t >= 1 else 'behind'}" if vs_t else "-"
            out.append(f"| {label} | {gen} | {fmt(v)} | {fmt(limit)} ({limit_label}) | {fmt(ratio(v, limit), 2)} | "
                       f"{t_txt} | {peer} | {target_txt} | {met} |")
    return out


# Workloads whose CPU split the report shows (the rest are variants of
# produce).
CPU_WORKLOADS = ("produce", "consume hot", "consume cold", "e2e half max")


def cpu_rows(res: Results) -> list[str]:
    """Where the CPUs went in each main run (bench/cpu.py): CPU-seconds per
    GB of record values for the broker, the generator and the rest of the
    machine, and what that cost comes to at the run's rate (CPUs busy,
    against the machine's count). The broker's CPU-seconds per GB is the
    per-core comparison of the brokers."""
    out = [
        "| workload | generator | broker | MB/s | broker CPU-s/GB | generator CPU-s/GB | rest CPU-s/GB | "
        "CPUs busy at that rate: broker + generator + rest | in the kernel: broker / generator | "
        "page faults per MB: broker / generator | corestream vs Tansu, broker CPU per GB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def kernel(r: dict) -> tuple[str, str]:
        c, mb = r["cpu"], r.get("bytes", 0) / 1e6
        if "broker_sys_s" not in c:
            return "-", "-"
        share = [c[f"{w}_sys_s"] / c[f"{w}_cpu_s"] if c[f"{w}_cpu_s"] else 0.0 for w in ("broker", "generator")]
        faults = [c[f"{w}_minor_faults"] / mb if mb else 0.0 for w in ("broker", "generator")]
        return (f"{share[0]:.0%} / {share[1]:.0%}", f"{faults[0]:.1f} / {faults[1]:.1f}")


    def per_gb(r: dict | None) -> tuple | None:
        c = (r or {}).get("cpu")
        gb = (r or {}).get("bytes", 0) / 1e9
        if not c or "not_measured" in c or not gb:
            return None
        return tuple(c[k] / gb for k in ("broker_cpu_s", "generator_cpu_s", "rest_cpu_s"))

    for gen in res.generators:
        for wl in CPU_WORKLOADS:
            for broker in ("corestream", "tansu"):
                r = res.run(broker, gen, wl)
                costs = per_gb(r)
                if costs is None:
                    continue
                gb_per_s = r.get("mb_per_s", 0) / 1e3
                busy = [c * gb_per_s for c in costs]
                vs = "-"
                tansu = per_gb(res.run("tansu", gen, wl)) if broker == "corestream" else None
                if tansu and costs[0]:
                    vs = f"{tansu[0] / costs[0]:.2f}x less"
                sys_share, faults = kernel(r)
                out.append(f"| {wl} | {gen} | {broker} | {fmt(r.get('mb_per_s'))} | {fmt(costs[0], 2)} | "
                           f"{fmt(costs[1], 2)} | {fmt(costs[2], 2)} | "
                           f"{busy[0]:.2f} + {busy[1]:.2f} + {busy[2]:.2f} = {sum(busy):.2f} | "
                           f"{sys_share} | {faults} | {vs} |")
    if len(out) == 2:
        return ["Not measured (results from before bench/cpu.py)."]
    return out


def partition_rows(res: Results) -> list[str]:
    out = [
        "| broker | what | create / open s | RSS KiB per item, idle empty | RSS KiB per item, idle with data | fds per item | fds total (with data) | Metadata s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, info in res.suite.get("brokers", {}).items():
        for n, p in info.get("partitions", {}).items():
            out.append(f"| {name} | {int(n):,} partitions | {p['create_s']} | {p['rss_kib_per_partition_empty']} | "
                       f"{p.get('rss_kib_per_partition_with_data', '-')} | {p['fds_per_partition']} | "
                       f"{p['fds_total']} ({p.get('fds_total_with_data', '-')}) | "
                       f"{p['metadata_s']} |")
        if "restart_s_many_partitions" in info:
            rss = info.get("rss_kib_after_restart_many_partitions", 0) / 1024
            out.append(f"| {name} | restart holding all of them | {info['restart_s_many_partitions']} | "
                       f"RSS after restart {rss:.0f} MiB | | | | |")
        ic = info.get("idle_connections")
        if ic:
            out.append(f"| {name} | {ic['count']:,} idle connections | {ic['open_s']} | {ic['rss_kib_per_connection']} | "
                       f"| {ic['fds_added'] / ic['count']:.2f} | | |")
    return out


def limit_rows(lim: dict) -> list[str]:
    out = ["| limit | value |", "| --- | --- |"]
    for key, label in [
        ("disk_write_mb_per_s", "disk sequential write, O_DIRECT, 1 MiB blocks, MB/s"),
        ("disk_read_mb_per_s", "disk sequential read, O_DIRECT, 1 MiB blocks, MB/s"),
        ("fdatasync_4k_p50_ms", "write + fdatasync, 4 KiB, p50 ms"),
        ("fdatasync_4k_p99_ms", "write + fdatasync, 4 KiB, p99 ms"),
        ("fdatasync_64k_p50_ms", "write + fdatasync, 64 KiB, p50 ms"),
        ("fdatasync_64k_p99_ms", "write + fdatasync, 64 KiB, p99 ms"),
        ("fdatasync_64k_rate_per_s", "most write + fdatasync/s, 64 KiB O_DIRECT appends, "
         f"{lim.get('fdatasync_64k_writers', '?')} writers"),
        ("fdatasync_64k_rate_p50_ms", "write + fdatasync at that rate, p50 ms"),
        ("fdatasync_64k_rate_p99_ms", "write + fdatasync at that rate, p99 ms"),
        ("write_fdatasync_256k_mb_per_s", "write + fdatasync every 256 KiB, "
         f"{lim.get('fdatasync_64k_writers', '?')} writers, MB/s"),
        ("write_fdatasync_1m_mb_per_s", "write + fdatasync every 1 MiB, "
         f"{lim.get('fdatasync_64k_writers', '?')} writers, MB/s"),
        ("loopback_mb_per_s", "loopback TCP, socket pump, best of 1-2 streams, MB/s"),
    ]:
        if key in lim:
            out.append(f"| {label} | {fmt(float(lim[key]), 2)} |")
    for what, why in lim.get("not_measured", {}).items():
        out.append(f"| {what} | not measured: {why} |")
    return out


def plots(res: Results, img: str) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return [f"Plots not drawn: {e}."]
    os.makedirs(img, exist_ok=True)
    series = [(b, g) for b in ("corestream", "tansu") for g in res.generators
              if any(r["broker"] == b and r["generator"] == g and "not_measured" not in r for r in res.runs)]
    wls = ["produce", "consume hot", "consume cold", "produce 1000 partitions",
           "produce 10000 partitions", "produce 10k idle conns"]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / max(1, len(series))
    for i, (b, g) in enumerate(series):
        vals = [res.value(b, g, w, "mb_per_s") or 0 for w in wls]
        ax.bar([x + i * width for x in range(len(wls))], vals, width, label=f"{b} / {g}")
    lim = res.limits
    for x, key in enumerate(("disk_write_mb_per_s", "loopback_mb_per_s", "disk_read_mb_per_s")):
        if lim.get(key):
            ax.hlines(lim[key], x - width / 2, x + 0.8 - width / 2, colors="k", linestyles="dashed")
            ax.annotate(key.replace("_mb_per_s", "").replace("_", " "), (x - width / 2, lim[key]), fontsize=7, va="bottom")
    ax.set_yscale("log")
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(wls))], wls, rotation=15, fontsize=8)
    ax.set_ylabel("MB/s of record values (log)")
    ax.set_title("Throughput, 1 KiB records, acks=all (dashed: physical limit)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(img, "bench-throughput.png"), dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.5))
    pcts = ["p50", "p90", "p99", "p999", "max"]
    for b, g in series:
        for kind, key in (("end-to-end", "lat_"), ("produce ack", "ack_")):
            ys = [res.value(b, g, "e2e half max", key + p) for p in pcts]
            if all(y is not None for y in ys) and not (kind == "produce ack" and ys == [
                    res.value(b, g, "e2e half max", "lat_" + p) for p in pcts]):
                ax.plot(pcts, ys, marker="o", label=f"{b} / {g}, {kind}")
    for key, style in (("fdatasync_64k_p50_ms", "dotted"), ("fdatasync_64k_p99_ms", "dashed")):
        if lim.get(key):
            ax.axhline(lim[key], color="k", linestyle=style, label=key.replace("_ms", "").replace("_", " "))
    ax.set_yscale("log")
    ax.set_ylabel("ms (log)")
    ax.set_title("Latency at half of max produce throughput, 6 partitions")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(img, "bench-latency.png"), dpi=100)
    plt.close(fig)
    return ["![throughput](img/bench-throughput.png)", "", "![latency](img/bench-latency.png)"]


def section(res: Results, run_info: str, img: str) -> str:
    s = res.suite
    notes = []
    if "native_missing" in s:
        notes.append(f"- native generator: not measured: {s['native_missing']}.")
    if "tansu_missing" in s:
        notes.append(f"- Tansu: not measured: {s['tansu_missing']}.")
    for name, info in s.get("brokers", {}).items():
        notes.append(f"- {name}: {info['storage']}; ready {info.get('start_s', '-')} s after start, "
                     f"restart {info.get('restart_s', '-')} s, RSS when fresh {info.get('rss_kib_fresh', 0) / 1024:.0f} MiB.")
    parts = [
        BEGIN,
        "## Benchmark suite (`scripts/bench --suite`)",
        "",
        "Generated by `bench/report.py`; edit the script, not this block.",
        "",
        run_info,
        "",
        f"Load: {s['records']:,} records x {s['record_bytes']:,} B per produce and consume run "
        f"({s['records'] // 3:,} for the many-partition runs), "
        f"acks=all, 64 KiB batches, linger 5 ms; flat-out produce runs {s.get('produce_producers', 1)} producers "
        f"x {s.get('produce_max_in_flight', 5)} requests in flight, consume {s.get('consume_consumers', 1)} consumers "
        f"x {s.get('consume_max_in_flight', 5)} fetches in flight, the paced e2e producer and consumer 1 x 5; "
        "e2e runs 10 s. Hot consume reads a produce run right after it; cold consume reads it again after "
        "a broker restart with the data dir's files dropped from the page cache (fadvise DONTNEED). "
        "MB = 10^6 bytes of record values. Raw JSON: `target/bench-results/`. "
        "Both brokers use every core of the machine, so the Tansu ratios are also per-core ratios.",
        "",
        *notes,
        "",
        "### Physical limits",
        "",
        *limit_rows(res.limits),
        "",
        "### Figures, limits, peer",
        "",
        *rows(res),
        "",
        f"### CPU cost per GB, and the machine's {res.cpus()} CPUs at each run's rate (bench/cpu.py)",
        "",
        *cpu_rows(res),
        "",
        "### Many partitions and connections",
        "",
        *partition_rows(res),
        "",
        *plots(res, img),
        END,
    ]
    return "\n".join(parts) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", required=True)
    ap.add_argument("--doc", required=True)
    ap.add_argument("--img", required=True)
    ap.add_argument("--run-info", default="")
    a = ap.parse_args()
    block = section(Results(a.results), a.run_info, a.img)
    with open(a.doc) as f:
        doc = f.read()
    if BEGIN in doc and END in doc:
        head, rest = doc.split(BEGIN, 1)
        doc = head + block.rstrip("\n") + rest.split(END, 1)[1]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block
    with open(a.doc, "w") as f:
        f.write(doc)
    print(block)


if __name__ == "__main__":
    main()
