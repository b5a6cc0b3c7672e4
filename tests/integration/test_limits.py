"""Resource limits under hostile and slow clients (config::ConnectionLimits)."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time

import pytest

import kafka_raw
from clients import consume_all, create_topic, produce_all

MIB = 1024 * 1024


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def closed_by_peer(sock: socket.socket, within_s: float) -> float | None:
    """Seconds until the peer closes `sock` (EOF or reset), or None."""
    started = time.monotonic()
    sock.settimeout(within_s)
    try:
        while True:
            if not sock.recv(4096):
                return time.monotonic() - started
    except (ConnectionResetError, BrokenPipeError):
        return time.monotonic() - started
    except socket.timeout:
        return None


# ---------------------------------------------------------------- hostile bytes

HOSTILE_BYTES = 100 * MIB
HOSTILE_SENDERS = 16
HOSTILE_CHUNK_BYTES_MAX = 256 * 1024
HOSTILE_TIME_S_MAX = 120
SHARD_BUDGET_BYTES = 32 * MIB
SHARDS = 2
# Peak RSS growth allowed: every shard's request budget full, plus one read
# buffer (frame + 1 MiB read) per concurrent sender, plus allocator slack.
RSS_GROWTH_KIB_MAX = (SHARDS * SHARD_BUDGET_BYTES + HOSTILE_SENDERS * 3 * MIB + 64 * MIB) // 1024


def blast(port: int, data: memoryview, stop_at: float, tally: list[int]) -> None:
    """Sends `data` in random-sized pieces, one connection per piece; adds
    (connections, bytes the kernel accepted) to `tally`."""
    rng = int.from_bytes(os.urandom(4), "big")
    at = connections = accepted = 0
    while at < len(data) and time.monotonic() < stop_at:
        rng = (rng * 1103515245 + 12345) & 0x7FFFFFFF
        chunk = data[at : at + 1 + rng % HOSTILE_CHUNK_BYTES_MAX]
        at += len(chunk)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                connections += 1
                while chunk:
                    n = s.send(chunk)
                    accepted += n
                    chunk = chunk[n:]
        except OSError:
            pass  # the broker closes bad streams early: expected
    tally[0] += connections
    tally[1] += accepted


@pytest.mark.slow
def test_hostile_random_bytes(broker_factory):
    b = broker_factory(
        shards=SHARDS,
        extra_args=["--shard-request-bytes-in-flight-max", str(SHARD_BUDGET_BYTES), "--request-timeout-ms", "2000"],
    )
    create_topic(b.bootstrap, "kept", 2)
    records = [(None, f"kept-{i}".encode() + os.urandom(50), i % 2) for i in range(2000)]
    produce_all(b.bootstrap, "kept", records)
    before = consume_all(b.bootstrap, "kept", 2, expect=len(records))
    baseline_kib = rss_kib(b.proc.pid)
    hwm_before_kib = rss_kib(b.proc.pid, "VmHWM")

    data = memoryview(os.urandom(HOSTILE_BYTES))
    share = HOSTILE_BYTES // HOSTILE_SENDERS
    stop_at = time.monotonic() + HOSTILE_TIME_S_MAX
    peak = [baseline_kib]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(b.proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    tally = [0, 0]
    senders = [
        threading.Thread(target=blast, args=(b.port, data[i * share : (i + 1) * share], stop_at, tally))
        for i in range(HOSTILE_SENDERS)
    ]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    done.set()
    sampler.join()

    b.assert_alive()
    assert tally[0] >= 10 * HOSTILE_SENDERS, f"only {tally[0]} connections made"
    print(f"hostile: {tally[0]} connections, {tally[1]} of {HOSTILE_BYTES} bytes accepted by the kernel")
    # VmHWM catches a peak between samples, once it passed the old peak.
    hwm_after_kib = rss_kib(b.proc.pid, "VmHWM")
    peak_kib = max(peak[0], hwm_after_kib if hwm_after_kib > hwm_before_kib else 0)
    growth = peak_kib - baseline_kib
    assert growth <= RSS_GROWTH_KIB_MAX, f"RSS grew {growth} KiB (bound {RSS_GROWTH_KIB_MAX} KiB)"
    # a normal client is still served, and nothing stored changed
    assert kafka_raw.api_versions_ok(b.host, b.port)
    produce_all(b.bootstrap, "kept", [(None, b"after", 0)])
    after = consume_all(b.bootstrap, "kept", 2, expect=len(records) + 1)
    stored = {(r.partition, r.offset): r for r in after}
    assert all(stored.get((r.partition, r.offset)) == r for r in before), "stored records changed"
    assert [r.value for r in after if r.value == b"after"] == [b"after"]


# ---------------------------------------------------------------- slow and idle clients


def test_slowloris_request_is_cut_off(broker_factory):
    """A frame trickling at a few bytes a second cannot hold its connection
    past request_timeout_ms."""
    b = broker_factory(extra_args=["--request-timeout-ms", "1000"])
    with socket.create_connection((b.host, b.port)) as s:
        s.sendall(struct.pack(">i", 10_000) + b"\x00")
        started = time.monotonic()
        closed = None
        while closed is None and time.monotonic() - started < 10:
            try:
                s.sendall(b"\x00")
            except OSError:
                closed = time.monotonic() - started
                break
            closed = closed_by_peer(s, 0.3)
        assert closed is not None, "a 1-byte-at-a-time request held its connection for 10 s"
        assert time.monotonic() - started < 5
    assert kafka_raw.api_versions_ok(b.host, b.port)


def test_idle_connection_is_closed(broker_factory):
    b = broker_factory(extra_args=["--connections-max-idle-ms", "1000"])
    with kafka_raw.RawConn(b.host, b.port) as c:
        c.api_versions_v0()  # a working connection, then silence
        waited = closed_by_peer(c.sock, 10)
        assert waited is not None and 0.5 < waited < 5, waited


def test_busy_connection_is_not_idle(broker_factory):
    b = broker_factory(extra_args=["--connections-max-idle-ms", "1000"])
    with kafka_raw.RawConn(b.host, b.port) as c:
        for _ in range(6):
            time.sleep(0.4)
            c.api_versions_v0()  # requests more often than the idle limit


def test_connections_per_ip_limit(broker_factory):
    b = broker_factory(extra_args=["--connections-per-ip-max", "3"])
    # The fixture's readiness probe closed its connection, but the broker
    # counts it until it has read the EOF: retry until 3 fresh ones fit.
    deadline = time.monotonic() + 5
    while True:
        kept = [kafka_raw.RawConn(b.host, b.port) for _ in range(3)]
        try:
            for c in kept:
                c.api_versions_v0()
            break
        except kafka_raw.ConnectionClosed:
            for c in kept:
                c.close()
            assert time.monotonic() < deadline, "3 connections from one IP never fit under a limit of 3"
            time.sleep(0.1)
    try:
        with socket.create_connection((b.host, b.port)) as extra:
            assert closed_by_peer(extra, 5) is not None, "4th connection from one IP was kept"
        kept.pop().close()
        deadline = time.monotonic() + 5
        while not kafka_raw.api_versions_ok(b.host, b.port):
            assert time.monotonic() < deadline, "a freed place was not reusable"
            time.sleep(0.05)
    finally:
        for c in kept:
            c.close()


def test_connections_are_spread_evenly_over_the_shards(broker_factory):
    """SO_REUSEPORT hashes connections to shards; the broker then places
    each on the shard with the fewest, so 8 connections are 4 and 4 on 2
    shards whatever the hash did, and every one of them is served
    (Metadata through the shard it landed on, produce and fetch across)."""
    from test_metrics import scrape, total

    b = broker_factory()
    topic = "spread"
    create_topic(b.bootstrap, topic, 2)

    def open_per_shard() -> list[float]:
        _, samples = scrape(b)
        return [total(samples, "corestream_connections_open", shard=str(i)) for i in range(2)]

    # The fixture's probes and create_topic's client may still be counted
    # until the broker reads their EOF.
    deadline = time.monotonic() + 5
    while sum(open_per_shard()) != 0:
        assert time.monotonic() < deadline, open_per_shard()
        time.sleep(0.05)
    conns = [kafka_raw.RawConn(b.host, b.port) for _ in range(8)]
    try:
        for c in conns:
            c.api_versions_v0()
            assert topic in {t["name"] for t in c.metadata([topic])["topics"]}
        assert open_per_shard() == [4, 4]
        for c in conns[:5]:
            c.close()
        deadline = time.monotonic() + 5
        while sum(open_per_shard()) != 3:
            assert time.monotonic() < deadline, open_per_shard()
            time.sleep(0.05)
        # New connections fill the emptier shard first.
        fewer = min(open_per_shard())
        more = [kafka_raw.RawConn(b.host, b.port) for _ in range(3 - 2 * int(fewer))]
        conns += more
        for c in more:
            c.api_versions_v0()
        got = open_per_shard()
        assert abs(got[0] - got[1]) <= 1, got
    finally:
        for c in conns:
            c.close()
    produce_all(b.bootstrap, topic, [(None, b"v%d" % i, i % 2) for i in range(100)])
    assert len(consume_all(b.bootstrap, topic, 2, expect=100)) == 100


def test_slow_reader_pipelined_fetches_do_not_pin_memory(broker):
    """A client that pipelines many large fetches and reads nothing holds at
    most FETCHES_IN_FLIGHT_MAX (2) responses in the broker, not one per
    request; once it reads, every response arrives whole and in order."""
    topic, value_bytes, count = "slow-reader", 4096, 10_000  # ~40 MiB
    create_topic(broker.bootstrap, topic, 1)
    produce_all(broker.bootstrap, topic, [(None, os.urandom(value_bytes)) for _ in range(count)])
    broker.restart()  # empty tail cache: every fetch reads (and allocates) from disk
    fetches, fetch_max = 24, 50 * MIB
    body = kafka_raw.Writer().int32(-1).int32(0).int32(1).int32(fetch_max)
    body.int8(0).int32(0).int32(-1).int32(1).string(topic).int32(1)
    body.int32(0).int32(-1).int64(0).int64(-1).int32(fetch_max)
    body = body.int32(0).string("").bytes()
    rss_before = rss_kib(broker.proc.pid)
    conn = broker.raw(timeout_s=120)
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    ids = [conn.send_request(1, 11, body) for _ in range(fetches)]
    time.sleep(4)  # the broker handles what it will while nothing is read
    growth_mib = (rss_kib(broker.proc.pid) - rss_before) / 1024
    one_response_mib = value_bytes * count / MIB
    # 2 responses in the broker + socket buffers + allocator slack; without
    # the cap this is ~24 responses (~940 MiB). Measured with the cap: 1-81
    # MiB on a quiet machine, once 187 MiB with three pytest workers
    # sharing the two cores (the allocator's slack is what varies), so the
    # bound is six responses: a quarter of what an uncapped broker pins.
    assert growth_mib < 6 * one_response_mib, f"RSS grew {growth_mib:.0f} MiB with {fetches} unread fetches"
    for cid in ids:
        r = kafka_raw.Reader(conn.recv_response(cid))
        r.int32()  # throttle
        assert r.int16() == 0
    conn.close()
    assert len(consume_all(broker.bootstrap, topic, 1)) == count


def test_produce_v3_8_frames_in_random_fragments_and_back_to_back_arrive_whole(broker):
    """A connection receives what is already waiting on the socket straight
    into its buffer and waits (through glommio) only when the socket is
    empty. Frames cut at random points, with pauses so that both paths run
    inside size prefixes and bodies, and frames sent back to back in one
    write, must each be read whole and in order: every produce is answered
    in order without error, and a consumer reads every value byte for byte
    at consecutive offsets."""
    import random

    from kafka_raw import PRODUCE, Reader, Writer, record_batch_v2

    rng = random.Random(20261202)
    topic = "fragments"
    create_topic(broker.bootstrap, topic, 1)
    values: list[bytes] = []
    with broker.raw() as c:
        v = c.pick_version(PRODUCE, 3, 8)
        frames: list[tuple[int, bytes]] = []
        for i in range(48):
            value = f"{i:03d}|".encode() + rng.randbytes(rng.choice([10, 3_000, 70_000, 300_000]))
            values.append(value)
            body = Writer().string(None).int16(-1).int32(10_000).int32(1).string(topic)
            body = body.int32(1).int32(0).bytes_(record_batch_v2([(None, value)])).bytes()
            cid, frame = c.request_bytes(PRODUCE, v, body)
            frames.append((cid, struct.pack(">i", len(frame)) + frame))
        stream = b"".join(f for _, f in frames)
        pos = 0
        while pos < len(stream):
            n = rng.choice([1, 3, 4, 5, 100, 4_096, 65_536, 200_000, 1 << 20])
            c.send_raw(stream[pos : pos + n])
            pos += n
            if rng.random() < 0.3:
                time.sleep(0.002)  # the broker drains the socket and waits
        for i, (cid, _) in enumerate(frames):
            r = Reader(c.recv_response(cid))
            topics = r.array(lambda r: (r.string(), r.array(lambda r: (r.int32(), r.int16(), r.int64()))))
            (name, [(partition, error_code, base_offset)]) = topics[0]
            assert (name, partition, error_code) == (topic, 0, 0), f"produce {i}: {topics}"
            assert base_offset == i, f"produce {i} landed at offset {base_offset}"
    got = consume_all(broker.bootstrap, topic, [0], expect=len(values))
    assert [m.offset for m in got] == list(range(len(values)))
    assert [m.value for m in got] == values
