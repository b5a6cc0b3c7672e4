"""`corestream bench produce|consume|e2e` (issue 6): the native load
generator against the real broker, with small counts. Checks the JSON
summary (the contract with scripts/bench), that the topic really holds what
the generator reports (ListOffsets via librdkafka), and that bad flags exit
2 without touching the network."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

import clients
from conftest import free_port
from test_ops import cli_binary

SUMMARY_KEYS = {"mode", "records", "bytes", "seconds", "records_per_s", "mb_per_s", "latency_ms", "errors", "config"}
LATENCY_KEYS = ["p50", "p90", "p99", "p999", "max"]
BENCH_WAIT_S_MAX = 120


def bench(broker, tmp_path, *args: str, name: str = "out") -> dict:
    out = tmp_path / f"{name}.json"
    res = subprocess.run(
        [str(cli_binary()), "-b", broker.bootstrap, "bench", *args, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=BENCH_WAIT_S_MAX,
        stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 0, f"bench {' '.join(args)} -> {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert "panicked" not in res.stderr
    summary = json.loads(out.read_text())
    # e2e adds the producers' send-to-ack percentiles of the same run.
    extra = {"produce_latency_ms"} if summary.get("mode") == "e2e" else set()
    assert set(summary) == SUMMARY_KEYS | extra, summary
    assert summary["errors"] == 0, summary
    assert summary["seconds"] > 0
    assert summary["records_per_s"] == pytest.approx(summary["records"] / summary["seconds"])
    assert summary["mb_per_s"] == pytest.approx(summary["bytes"] / 1e6 / summary["seconds"])
    assert res.stdout.startswith(summary["mode"] + ":"), res.stdout
    return summary


def assert_latency(summary: dict, key: str = "latency_ms") -> None:
    lat = summary[key]
    assert set(lat) == set(LATENCY_KEYS), lat
    values = [lat[k] for k in LATENCY_KEYS]
    assert values[0] > 0, lat
    assert values == sorted(values), f"percentiles out of order: {lat}"


def topic_records(broker, topic: str, partitions: int, want: int, wait_s: float = 10.0) -> int:
    """Records the topic holds (sum of high - low watermarks), waiting up to
    wait_s for it to reach `want` (acks=0 is answered before the write)."""
    deadline = time.monotonic() + wait_s
    while True:
        total = sum(h - lo for lo, h in (clients.watermarks(broker.bootstrap, topic, p) for p in range(partitions)))
        if total >= want or time.monotonic() > deadline:
            return total


@pytest.mark.parametrize(
    "extra",
    [
        ["--acks", "all"],
        ["--acks", "1", "--compression", "zstd", "--idempotent"],
        ["--acks", "0", "--compression", "lz4"],
        ["--compression", "gzip", "--linger-ms", "0", "--max-in-flight", "1"],
        ["--compression", "snappy", "--batch-bytes", "1000"],
    ],
    ids=["acks-all", "acks1-zstd-idempotent", "acks0-lz4", "gzip-one-in-flight", "snappy-small-batches"],
)
def test_bench_produce_json_and_topic_contents(broker, tmp_path, extra):
    topic = "bench-p-" + "-".join(x.strip("-") for x in extra)
    s = bench(
        broker, tmp_path, "produce", "--topic", topic, "--partitions", "3", "--records", "3000",
        "--record-bytes", "200", "--producers", "2", *extra,
    )
    assert s["mode"] == "produce"
    assert s["records"] == 3000
    assert s["bytes"] == 3000 * 200
    assert_latency(s)
    assert s["config"]["producers"] == 2 and s["config"]["partitions"] == 3
    want_acks = extra[1] if extra[0] == "--acks" else "all"
    assert s["config"]["acks"] == want_acks
    assert topic_records(broker, topic, 3, 3000) == 3000


def test_bench_consume_counts_exactly_what_was_asked(broker, tmp_path):
    topic = "bench-c"
    bench(broker, tmp_path, "produce", "--topic", topic, "--partitions", "4", "--records", "5000",
          "--record-bytes", "100", name="p")
    s = bench(broker, tmp_path, "consume", "--topic", topic, "--records", "4000", "--consumers", "2", name="c1")
    assert (s["mode"], s["records"], s["bytes"]) == ("consume", 4000, 400_000)
    assert s["latency_ms"] is None
    all_ = bench(broker, tmp_path, "consume", "--topic", topic, "--records", "5000", "--max-in-flight", "2",
                 name="c2")
    assert (all_["records"], all_["bytes"]) == (5000, 500_000)


def test_bench_consume_reads_a_third_party_producers_records(broker, tmp_path):
    """Batches written by librdkafka (compressed, several per fetch) are
    counted record by record, value bytes included."""
    topic = "bench-c-rdkafka"
    clients.create_topic(broker.bootstrap, topic, 2)
    recs = [(None, b"v" * (i % 50)) for i in range(1500)]
    clients.produce_all(broker.bootstrap, topic, recs, **{"compression.type": "lz4", "linger.ms": 20})
    s = bench(broker, tmp_path, "consume", "--topic", topic, "--records", "1500", "--idle-timeout-s", "5")
    assert s["records"] == 1500
    assert s["bytes"] == sum(len(v) for _, v in recs)


def test_bench_e2e_latency_and_topic_contents(broker, tmp_path):
    topic = "bench-e2e"
    s = bench(broker, tmp_path, "e2e", "--topic", topic, "--partitions", "2", "--records", "2000",
              "--record-bytes", "64", "--target-rate", "4000", "--consumers", "2")
    assert (s["mode"], s["records"], s["bytes"]) == ("e2e", 2000, 2000 * 64)
    assert_latency(s)
    assert_latency(s, "produce_latency_ms")
    assert s["config"]["target_rate"] == 4000.0
    # Paced at 4000/s, 2000 records take about half a second.
    assert s["seconds"] >= 0.45
    assert topic_records(broker, topic, 2, 2000) == 2000


def test_bench_duration_and_target_rate(broker, tmp_path):
    s = bench(broker, tmp_path, "produce", "--topic", "bench-rate", "--duration-s", "1.5",
              "--target-rate", "2000", "--record-bytes", "100", "--no-progress")
    assert 2700 <= s["records"] <= 3100, s
    assert s["config"]["records"] is None and s["config"]["duration_s"] == 1.5
    assert_latency(s)


@pytest.mark.parametrize(
    "args",
    [
        ["produce", "--acks", "2"],
        ["produce", "--compression", "brotli"],
        ["produce", "--records", "0"],
        ["produce", "--max-in-flight", "0"],
        ["produce", "--producers", "0"],
        ["produce", "--duration-s", "0"],
        ["produce", "--record-bytes", "abc"],
        ["consume", "--from", "middle"],
        ["e2e", "--record-bytes", "4"],
        ["produce", "--no-such-flag"],
        ["no-such-mode"],
        [],
    ],
)
def test_bench_bad_flags_exit_2(args, tmp_path):
    """Bad flags: exit 2 with a message, before any connection (nothing
    listens on the port)."""
    res = subprocess.run(
        [str(cli_binary()), "-b", f"127.0.0.1:{free_port()}", "bench", *args, "--json", str(tmp_path / "x.json")],
        capture_output=True,
        text=True,
        timeout=20,
        stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 2, f"{args}: exit {res.returncode}\n{res.stderr}"
    assert res.stderr.strip(), f"{args}: no message"
    assert "panicked" not in res.stderr
    assert not (tmp_path / "x.json").exists()


def test_bench_unreachable_broker_exits_3(tmp_path):
    res = subprocess.run(
        [str(cli_binary()), "-b", f"127.0.0.1:{free_port()}", "bench", "produce", "--records", "10"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert res.returncode == 3, res.stderr
    assert "cannot connect" in res.stderr
