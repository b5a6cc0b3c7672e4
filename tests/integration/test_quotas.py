"""Issue 22 item 7: client quotas (DescribeClientQuotas 48, AlterClientQuotas
49) with Kafka's entities and precedence, enforced by throttle time and
muting the connection (KIP-219).

No installed client library speaks the quota APIs (kafka-python 3.0.12 and
confluent-kafka 2.16 have neither), so they are sent raw, at v0 and the
flexible v1; the throttled producer and consumer are real librdkafka
clients (confluent-kafka), measured over 10 s against the real broker.
"""

from __future__ import annotations

import json
import re
import struct
import time
import urllib.request

import pytest

import clients
import kafka_raw
from kafka_raw import Reader, Writer
from test_ops import cli

DESCRIBE_CLIENT_QUOTAS = 48
ALTER_CLIENT_QUOTAS = 49
CLUSTER_AUTHORIZATION_FAILED = 31

# Kafka's DescribeClientQuotas match types.
EXACT, DEFAULT, SPECIFIED = 0, 1, 2

# The rate the throttled clients are held to, and the tolerance issue 22
# asks for.
quota_bytes_per_s = 1_048_576
rate_tolerance = 0.10
# Seconds the clients run before and while their rate is measured.
warmup_s = 2.0
measure_s = 10.0


# ------------------------------------------------------------ raw encoding


def compact_string(w: Writer, s: str | None) -> Writer:
    if s is None:
        return w.uvarint(0)
    b = s.encode()
    return w.uvarint(len(b) + 1).raw(b)


def read_compact_string(r: Reader) -> str | None:
    n = r.uvarint()
    return None if n == 0 else r._take(n - 1).decode()


def skip_tags(r: Reader) -> None:
    for _ in range(r.uvarint()):
        r.uvarint()
        r._take(r.uvarint())


def alter_quotas(conn: kafka_raw.RawConn, entries, validate_only: bool = False, version: int = 0):
    """entries: [(entity [(type, name|None)], ops [(key, value, remove)])].
    Returns [(error_code, error_message, entity)] in request order."""
    flexible = version >= 1
    w = Writer()
    arr = (lambda n: w.uvarint(n + 1)) if flexible else (lambda n: w.int32(n))
    string = (lambda s: compact_string(w, s)) if flexible else (lambda s: w.string(s))
    arr(len(entries))
    for entity, ops in entries:
        arr(len(entity))
        for t, n in entity:
            string(t)
            string(n)
            if flexible:
                w.uvarint(0)
        arr(len(ops))
        for key, value, remove in ops:
            string(key)
            w.raw(struct.pack(">d", value)).boolean(remove)
            if flexible:
                w.uvarint(0)
        if flexible:
            w.uvarint(0)
    w.boolean(validate_only)
    if flexible:
        w.uvarint(0)
    cid = conn.send_request(ALTER_CLIENT_QUOTAS, version, w.bytes(), flexible_header=flexible)
    r = Reader(conn.recv_response(cid, flexible_header=flexible))
    r.int32()  # throttle_time_ms
    rstring = (lambda: read_compact_string(r)) if flexible else r.string
    count = (r.uvarint() - 1) if flexible else r.int32()
    out = []
    for _ in range(count):
        code, message = r.int16(), rstring()
        n = (r.uvarint() - 1) if flexible else r.int32()
        entity = []
        for _ in range(n):
            entity.append((rstring(), rstring()))
            if flexible:
                skip_tags(r)
        if flexible:
            skip_tags(r)
        out.append((code, message, entity))
    return out


def describe_quotas(conn: kafka_raw.RawConn, components, strict: bool = False, version: int = 0):
    """components: [(entity_type, match_type, match|None)]. Returns
    (error_code, error_message, {entity tuple: {key: value}} or None)."""
    flexible = version >= 1
    w = Writer()
    if flexible:
        w.uvarint(len(components) + 1)
        for t, mt, m in components:
            compact_string(w, t).int8(mt)
            compact_string(w, m).uvarint(0)
        w.boolean(strict).uvarint(0)
    else:
        w.int32(len(components))
        for t, mt, m in components:
            w.string(t).int8(mt).string(m)
        w.boolean(strict)
    cid = conn.send_request(DESCRIBE_CLIENT_QUOTAS, version, w.bytes(), flexible_header=flexible)
    r = Reader(conn.recv_response(cid, flexible_header=flexible))
    rstring = (lambda: read_compact_string(r)) if flexible else r.string
    r.int32()  # throttle_time_ms
    code, message = r.int16(), rstring()
    n = (r.uvarint() - 1) if flexible else r.int32()
    if n < 0:
        return code, message, None
    entries = {}
    for _ in range(n):
        entity = []
        for _ in range((r.uvarint() - 1) if flexible else r.int32()):
            entity.append((rstring(), rstring()))
            if flexible:
                skip_tags(r)
        values = {}
        for _ in range((r.uvarint() - 1) if flexible else r.int32()):
            key = rstring()
            values[key] = struct.unpack(">d", r._take(8))[0]
            if flexible:
                skip_tags(r)
        if flexible:
            skip_tags(r)
        entries[tuple(entity)] = values
    return code, message, entries


def produce_throttle(conn: kafka_raw.RawConn, topic: str, value: bytes) -> tuple[int, int, int]:
    """One Produce v8 (acks=1) of one record; returns (error_code,
    throttle_time_ms, request bytes on the wire with the size prefix)."""
    records = kafka_raw.record_batch_v2([(None, value)])
    body = (Writer().string(None).int16(1).int32(10_000).int32(1).string(topic)
            .int32(1).int32(0).bytes_(records).bytes())
    cid, frame = conn.request_bytes(kafka_raw.PRODUCE, 8, body)
    conn.send_frame(frame)
    r = Reader(conn.recv_response(cid))
    assert r.int32() == 1 and r.string() == topic and r.int32() == 1
    r.int32()
    code = r.int16()
    r.int64(), r.int64(), r.int64()
    r.array(lambda r: (r.int32(), r.string()))
    r.string()
    return code, r.int32(), len(frame) + 4


def raw(broker, client_id: str) -> kafka_raw.RawConn:
    conn = broker.raw()
    conn.client_id = client_id
    return conn


def user(name):
    return ("user", name)


def client(name):
    return ("client-id", name)


def kafka_throttle_ms(request_bytes: int, bound: float) -> int:
    """The throttle a first request of `request_bytes` gets against `bound`
    bytes/s: Kafka's (rate - bound) / bound * window, over one 1 s window."""
    import math
    return math.ceil((request_bytes - bound) / bound * 1000)


# ------------------------------------------------------------ the APIs


def test_alter_describe_client_quotas_v0_v1_filters_validate_only_and_refusals(broker):
    with raw(broker, "admin") as c:
        assert describe_quotas(c, [])[2] == {}, "a fresh broker has no quota"
        answers = alter_quotas(c, [
            ([user("alice")], [("producer_byte_rate", 2048.0, False), ("request_percentage", 12.5, False)]),
            ([user("alice"), client(None)], [("consumer_byte_rate", 4096.0, False)]),
            ([client(None)], [("consumer_byte_rate", 1000.0, False)]),
            ([user("bob")], [("no_such_quota", 1.0, False)]),
            ([user("carol")], [("controller_mutation_rate", 5.0, False)]),
            ([user("dave")], [("producer_byte_rate", 10.5, False)]),
            ([("ip", "10.0.0.1")], [("connection_creation_rate", 5.0, False)]),
            ([user("")], [("producer_byte_rate", 1.0, False)]),
        ])
        codes = [a[0] for a in answers]
        assert codes == [0, 0, 0] + [kafka_raw.INVALID_REQUEST] * 5, answers
        assert "Invalid configuration key no_such_quota" in answers[3][1]
        assert "controller_mutation_rate" in answers[4][1]
        assert "must be a Long value" in answers[5][1]
        assert answers[1][2] == [("user", "alice"), ("client-id", None)], "entity echoed, default as null"

        # v1 (flexible): validate_only changes nothing.
        answers = alter_quotas(c, [([user("eve")], [("producer_byte_rate", 1.0, False)])],
                               validate_only=True, version=1)
        assert answers == [(0, None, [("user", "eve")])]

        for version in (0, 1):
            code, _, everything = describe_quotas(c, [], version=version)
            assert code == 0
            assert everything == {
                (("user", "alice"),): {"producer_byte_rate": 2048.0, "request_percentage": 12.5},
                (("user", "alice"), ("client-id", None)): {"consumer_byte_rate": 4096.0},
                (("client-id", None),): {"consumer_byte_rate": 1000.0},
            }, version
        # Non-strict: alice's entities; strict: only users/alice.
        assert len(describe_quotas(c, [("user", EXACT, "alice")])[2]) == 2
        assert list(describe_quotas(c, [("user", EXACT, "alice")], strict=True)[2]) == [(("user", "alice"),)]
        assert list(describe_quotas(c, [("client-id", DEFAULT, None)], strict=True, version=1)[2]) == [
            (("client-id", None),)]
        assert len(describe_quotas(c, [("user", SPECIFIED, None)])[2]) == 2
        assert describe_quotas(c, [("user", EXACT, "nobody")])[2] == {}
        # Bad filters: INVALID_REQUEST and no entries, as Kafka.
        for bad in ([("user", EXACT, None)], [("user", DEFAULT, "x")], [("user", 9, None)],
                    [("user", SPECIFIED, None), ("user", EXACT, "a")], [("group", SPECIFIED, None)]):
            code, message, entries = describe_quotas(c, bad)
            assert (code, entries) == (kafka_raw.INVALID_REQUEST, None), (bad, message)

        # Remove: one key, then the entity disappears with its last key.
        assert alter_quotas(c, [([user("alice")], [("request_percentage", 0.0, True)])])[0][0] == 0
        assert alter_quotas(c, [([client(None)], [("consumer_byte_rate", 0.0, True)])], version=1)[0][0] == 0
        code, _, left = describe_quotas(c, [])
        assert left == {
            (("user", "alice"),): {"producer_byte_rate": 2048.0},
            (("user", "alice"), ("client-id", None)): {"consumer_byte_rate": 4096.0},
        }

    # Quotas are cluster metadata: they survive a restart.
    broker.restart()
    with raw(broker, "admin") as c:
        assert describe_quotas(c, [], version=1)[2] == left


def test_client_quota_apis_need_cluster_configs_permissions_with_the_authorizer(broker_factory):
    b = broker_factory(shards=1, extra_args=["--authorizer", "acl"])
    with raw(b, "anyone") as c:
        code, _, entries = describe_quotas(c, [])
        assert (code, entries) == (CLUSTER_AUTHORIZATION_FAILED, None)
        answers = alter_quotas(c, [([user("alice")], [("producer_byte_rate", 1024.0, False)])])
        assert answers[0][0] == CLUSTER_AUTHORIZATION_FAILED
    b.stop()
    b2 = broker_factory(name="super", shards=1,
                        extra_args=["--authorizer", "acl", "--super-users", "User:ANONYMOUS"])
    with raw(b2, "anyone") as c:
        assert alter_quotas(c, [([user("alice")], [("producer_byte_rate", 1024.0, False)])])[0][0] == 0
        assert describe_quotas(c, [])[2] == {(("user", "alice"),): {"producer_byte_rate": 1024.0}}


# ------------------------------------------------------------ enforcement


def test_produce_throttle_time_follows_kafkas_precedence_and_mutes_the_connection(broker):
    topic = "quota-precedence"
    clients.create_topic(broker.bootstrap, topic, partitions=1)
    value = b"x" * 50_000
    # No quota configured: never throttled.
    with raw(broker, "c0") as c:
        for _ in range(5):
            assert produce_throttle(c, topic, value)[:2] == (0, 0)
    with raw(broker, "admin") as a:
        assert alter_quotas(a, [
            ([client(None)], [("producer_byte_rate", 10_000.0, False)]),
            ([user("ANONYMOUS"), client("vip")], [("producer_byte_rate", 100_000_000.0, False)]),
        ])[0][0] == 0
    # clients/<default>: the throttle is Kafka's formula on the request size.
    with raw(broker, "c1") as c:
        code, throttle_ms, size = produce_throttle(c, topic, value)
        assert code == 0 and throttle_ms == kafka_throttle_ms(size, 10_000), (throttle_ms, size)
        # KIP-219: the connection is muted for that long (the answer came
        # at once; the next request is read only after the throttle).
        started = time.monotonic()
        c.versions()
        muted_s = time.monotonic() - started
        assert muted_s >= throttle_ms / 1000 - 0.2, muted_s
    # users/ANONYMOUS/clients/vip beats clients/<default>.
    with raw(broker, "vip") as c:
        assert produce_throttle(c, topic, value)[:2] == (0, 0)
    # users/<default> (level 6) beats clients/c3 (level 7): user before client.
    with raw(broker, "admin") as a:
        assert [r[0] for r in alter_quotas(a, [
            ([user(None)], [("producer_byte_rate", 5_000.0, False)]),
            ([client("c3")], [("producer_byte_rate", 20_000.0, False)]),
        ])] == [0, 0]
    with raw(broker, "c3") as c:
        code, throttle_ms, size = produce_throttle(c, topic, value)
        assert throttle_ms == kafka_throttle_ms(size, 5_000), (throttle_ms, size)
    status, text = http_metrics(broker)
    throttles = sum(float(v) for v in re.findall(
        r'^corestream_quota_throttles_total\{shard="\d+",quota_type="produce"\} (\S+)$', text, re.M))
    seconds = sum(float(v) for v in re.findall(
        r'^corestream_quota_throttle_seconds_total\{shard="\d+",quota_type="produce"\} (\S+)$', text, re.M))
    assert throttles >= 2 and seconds >= 10.0, (throttles, seconds)


def http_metrics(broker) -> tuple[int, str]:
    with urllib.request.urlopen(broker.admin_url + "/metrics", timeout=10) as r:
        return r.status, r.read().decode()


def test_quotas_throttle_a_fast_producer_to_its_rate_within_10_percent(broker):
    topic = "quota-produce"
    clients.create_topic(broker.bootstrap, topic, partitions=1)
    with raw(broker, "admin") as a:
        assert alter_quotas(a, [([client("fast-producer")],
                                 [("producer_byte_rate", float(quota_bytes_per_s), False)])])[0][0] == 0
    # Small batches (64 KiB) so one request is a small part of a second's
    # quota; the local queue is bounded so the producer just keeps it full.
    p = clients.producer(broker.bootstrap, **{
        "client.id": "fast-producer", "acks": 1, "batch.size": 65536, "linger.ms": 2,
        "queue.buffering.max.kbytes": 4096, "compression.type": "none"})
    value = b"q" * 10_000
    acked: list[tuple[float, int]] = []

    def delivered(err, msg):
        assert err is None, err
        acked.append((time.monotonic(), len(msg.value())))

    started = time.monotonic()
    while time.monotonic() - started < warmup_s + measure_s + 0.5:
        try:
            p.produce(topic, value, on_delivery=delivered)
        except BufferError:
            p.poll(0.005)
        p.poll(0)
    p.flush(30)
    rate = rate_over(acked, started + warmup_s, measure_s)
    assert abs(rate - quota_bytes_per_s) / quota_bytes_per_s < rate_tolerance, (
        f"{rate:.0f} B/s against a quota of {quota_bytes_per_s}")
    print(f"producer: {rate:.0f} B/s acked over {measure_s} s (quota {quota_bytes_per_s})")


def rate_over(events: list[tuple[float, int]], start: float, seconds: float) -> float:
    total = sum(n for t, n in events if start <= t < start + seconds)
    return total / seconds


def test_quotas_throttle_a_fast_consumer_to_its_rate_within_10_percent(broker):
    topic = "quota-fetch"
    clients.create_topic(broker.bootstrap, topic, partitions=1)
    value = b"f" * 10_000
    fill_bytes = int(quota_bytes_per_s * (warmup_s + measure_s) * 1.5)
    # Batches of at most 64 KiB, so that each fetch answers a small part
    # of a second's quota (a fetch answers whole batches).
    p = clients.producer(broker.bootstrap, **{"acks": 1, "compression.type": "none",
                                              "batch.size": 65536})
    for _ in range(fill_bytes // len(value)):
        while True:
            try:
                p.produce(topic, value)
                break
            except BufferError:
                p.poll(0.01)
    assert p.flush(60) == 0
    with raw(broker, "admin") as a:
        assert alter_quotas(a, [([user("ANONYMOUS"), client("slow-consumer")],
                                 [("consumer_byte_rate", float(quota_bytes_per_s), False)])],
                            version=1)[0][0] == 0
    from confluent_kafka import TopicPartition, OFFSET_BEGINNING
    c = clients.consumer(broker.bootstrap, **{
        "client.id": "slow-consumer", "max.partition.fetch.bytes": 65536,
        "queued.max.messages.kbytes": 256, "enable.partition.eof": False})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got: list[tuple[float, int]] = []
    started = time.monotonic()
    try:
        while time.monotonic() - started < warmup_s + measure_s + 0.5:
            m = c.poll(0.05)
            if m is not None:
                assert m.error() is None, m.error()
                got.append((time.monotonic(), len(m.value())))
    finally:
        c.close()
    rate = rate_over(got, started + warmup_s, measure_s)
    print(f"consumer: {rate:.0f} B/s over {measure_s} s (quota {quota_bytes_per_s})")
    assert sum(n for _, n in got) < fill_bytes, "the consumer ran out of records to fetch"
    assert abs(rate - quota_bytes_per_s) / quota_bytes_per_s < rate_tolerance, (
        f"{rate:.0f} B/s against a quota of {quota_bytes_per_s}")
    status, text = http_metrics(broker)
    fetch_throttles = sum(float(v) for v in re.findall(
        r'^corestream_quota_throttles_total\{shard="\d+",quota_type="fetch"\} (\S+)$', text, re.M))
    assert fetch_throttles > 0


def test_quotas_cli_set_list_delete(broker):
    cli(broker, "quotas", "set", "--user", "alice", "--producer-byte-rate", "1048576",
        "--request-percentage", "50")
    cli(broker, "quotas", "set", "--client-id-default", "--consumer-byte-rate", "2048")
    listed = json.loads(cli(broker, "--json", "quotas", "list").stdout)["quotas"]
    assert {(q["user"], q["client_id"], q["key"], q["value"]) for q in listed} == {
        (None, "<default>", "consumer_byte_rate", 2048.0),
        ("alice", None, "producer_byte_rate", 1048576.0),
        ("alice", None, "request_percentage", 50.0),
    }
    table = cli(broker, "quotas", "list", "--user", "alice").stdout
    assert "producer_byte_rate" in table and "consumer_byte_rate" not in table
    cli(broker, "quotas", "delete", "--user", "alice", "--key", "request_percentage")
    cli(broker, "quotas", "delete", "--client-id-default")
    listed = json.loads(cli(broker, "--json", "quotas", "list").stdout)["quotas"]
    assert [(q["user"], q["key"]) for q in listed] == [("alice", "producer_byte_rate")]
    bad = cli(broker, "quotas", "set", "--user", "alice", check=False)
    assert bad.returncode == 2, bad


def test_request_percentage_throttles_a_busy_client(broker):
    """request_percentage: a client whose requests take more than 1 % of a
    shard's time per second is throttled (Produce answers it), another
    client is not."""
    topic = "quota-requests"
    clients.create_topic(broker.bootstrap, topic, partitions=1)
    with raw(broker, "admin") as a:
        assert alter_quotas(a, [([client("busy")], [("request_percentage", 1.0, False)])])[0][0] == 0
    throttles = []
    with raw(broker, "busy") as c:
        # acks=1 produces wait for their fsync: well over 10 ms of
        # handling time within a second, before 500 of them.
        for _ in range(500):
            code, throttle_ms, _ = produce_throttle(c, topic, b"r" * 1000)
            assert code == 0
            throttles.append(throttle_ms)
            if throttle_ms > 0:
                break
    assert throttles[-1] > 0, f"never throttled in {len(throttles)} requests"
    with raw(broker, "idle") as c:
        assert produce_throttle(c, topic, b"r" * 1000)[:2] == (0, 0)
    status, text = http_metrics(broker)
    request_throttles = sum(float(v) for v in re.findall(
        r'^corestream_quota_throttles_total\{shard="\d+",quota_type="request"\} (\S+)$', text, re.M))
    assert request_throttles >= 1
