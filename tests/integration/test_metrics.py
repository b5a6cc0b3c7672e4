"""/metrics families (issue 7), the Burrow-style lag status over real
consumers, and the Grafana dashboard's metric names against a live broker."""

from __future__ import annotations

import json
import re
import time

from confluent_kafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

import clients
from clients import consume_all, create_topic, produce_all
from conftest import REPO_ROOT
from test_ops import http_get

lag_status_wait_s_max = 20.0
# sample name -> family type, one entry per item of issue 7's list
ISSUE_FAMILIES = {
    # request rates and latency histograms per API
    "corestream_requests_total": "counter",
    "corestream_request_latency_seconds_bucket": "histogram",
    # bytes in/out
    "corestream_bytes_received_total": "counter",
    "corestream_bytes_sent_total": "counter",
    # per-partition log end / start offset and size
    "corestream_partition_high_watermark": "gauge",
    "corestream_partition_log_end_offset": "gauge",
    "corestream_partition_log_start_offset": "gauge",
    "corestream_partition_size_bytes": "gauge",
    # per-group lag
    "corestream_group_lag": "gauge",
    # fsync latency
    "corestream_fsync_latency_seconds_bucket": "histogram",
    # cross-shard message counts
    "corestream_cross_shard_messages_total": "counter",
    # tail cache hits
    "corestream_tail_cache_hits_total": "counter",
    "corestream_tail_cache_misses_total": "counter",
    "corestream_tail_cache_hit_bytes_total": "counter",
    "corestream_tail_cache_bytes": "gauge",
    # connections
    "corestream_connections_open": "gauge",
    # memory
    "corestream_resident_memory_bytes": "gauge",
    "corestream_allocator_allocated_bytes": "gauge",
}


def scrape(broker) -> tuple[dict[str, str], list]:
    """(sample name -> family type, every sample) parsed with the Prometheus
    client's text parser (it raises on malformed text)."""
    status, text = http_get(broker, "/metrics")
    assert status == 200, text
    types, samples = {}, []
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            types[s.name] = family.type
            samples.append(s)
    return types, samples


def total(samples, name: str, **labels) -> float:
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


def test_metrics_issue_families_parse_with_values(broker):
    """Every family issue 7 lists is served, typed and non-trivial: cold
    reads after a restart are tail-cache misses, fresh ones hits; acks=all
    produces are fsynced; two shards exchange messages."""
    topic, group = "metrics-families", "metrics-group"
    create_topic(broker.bootstrap, topic, 2)
    produce_all(broker.bootstrap, topic, [(None, b"cold-%d" % i, i % 2) for i in range(100)])
    broker.restart()  # empty tail cache, counters from zero
    assert len(consume_all(broker.bootstrap, topic, 2, expect=100)) == 100
    produce_all(broker.bootstrap, topic, [(None, b"hot-%d" % i, i % 2) for i in range(10)])
    hot = consume_all(broker.bootstrap, topic, 2, expect=10, start_offset=50)
    assert sorted(r.value for r in hot) == sorted(b"hot-%d" % i for i in range(10))
    from test_ops import commit_offsets

    commit_offsets(broker.bootstrap, group, topic, {0: 50, 1: 55})

    types, samples = scrape(broker)
    for name, kind in ISSUE_FAMILIES.items():
        assert types.get(name) == kind, f"{name}: {types.get(name)!r}, want {kind}"
    assert total(samples, "corestream_requests_total", api="Produce") >= 1
    assert total(samples, "corestream_request_latency_seconds_count", api="Fetch") >= 1
    assert total(samples, "corestream_bytes_received_total") > 0
    assert total(samples, "corestream_bytes_sent_total") > 0
    assert total(samples, "corestream_partition_high_watermark", topic=topic) == 110
    assert total(samples, "corestream_partition_log_end_offset", topic=topic) == 110
    assert total(samples, "corestream_partition_size_bytes", topic=topic) > 0
    assert total(samples, "corestream_group_lag", group=group, topic=topic) == 5
    fsyncs = total(samples, "corestream_fsync_latency_seconds_count")
    assert fsyncs >= 1, "acks=all produces after the restart were fsynced"
    inf = total(samples, "corestream_fsync_latency_seconds_bucket", le="+Inf")
    assert inf == fsyncs and total(samples, "corestream_fsync_latency_seconds_sum") > 0
    assert total(samples, "corestream_tail_cache_misses_total") >= 1, "cold reads come from disk"
    assert total(samples, "corestream_tail_cache_miss_bytes_total") > 0
    assert total(samples, "corestream_tail_cache_hits_total") >= 1, "fresh batches come from memory"
    assert total(samples, "corestream_tail_cache_hit_bytes_total") > 0
    assert total(samples, "corestream_tail_cache_bytes") > 0
    assert total(samples, "corestream_tail_cache_capacity_bytes") == 2 * 256 * 2**20
    # The budget plus a quarter, mapped and touched at start
    # (fetch::cache_arena): resident, and every small batch was copied into it.
    reserved = total(samples, "corestream_tail_cache_reserved_bytes")
    assert reserved == 2 * 320 * 2**20, reserved
    assert total(samples, "corestream_resident_memory_bytes") > reserved
    assert total(samples, "corestream_tail_cache_unreserved_copy_bytes_total") == 0
    assert total(samples, "corestream_cross_shard_messages_total") > 0
    # A connection held open is counted, and uncounted once closed.
    with broker.raw() as conn:
        conn.api_versions_v0()
        held = total(scrape(broker)[1], "corestream_connections_open")
        assert held >= 1, held
    clients.wait_for(
        "the closed connection to leave corestream_connections_open",
        lambda: total(scrape(broker)[1], "corestream_connections_open") <= held - 1,
        timeout_s=10.0,
    )
    assert total(samples, "corestream_resident_memory_bytes") > 1 << 20
    allocated = total(samples, "corestream_allocator_allocated_bytes")
    assert 0 < allocated <= total(samples, "corestream_allocator_mapped_bytes")


# ---------------------------------------------------------------- lag status


def group_lag(broker, group: str) -> dict:
    status, body = http_get(broker, f"/v1/groups/{group}/lag")
    assert status == 200, body
    return json.loads(body)


def poll_one(consumer, topic: str):
    deadline = time.monotonic() + lag_status_wait_s_max
    while time.monotonic() < deadline:
        m = consumer.poll(0.2)
        if m is not None and m.error() is None and m.topic() == topic:
            return m
    raise AssertionError(f"no record of {topic} within {lag_status_wait_s_max} s")


def test_lag_status_error_for_stopped_or_stalled_consumer_ok_for_keeping_up(broker_factory):
    """Burrow's rules over real group consumers. One record is produced per
    step; `keeper` reads and commits each one (lag 0: OK throughout);
    `stopper` does the same, then closes while records keep coming (its
    offset stays, its lag grows: STOPPED, group ERROR, once the last commit
    is older than the window spans and lag_stopped_after_ms); `stuck`
    commits the same offset every step while lag grows (STALLED: ERROR)."""
    b = broker_factory(extra_args=["--lag-stopped-after-ms", "1500"])
    topic = "lag-status"
    create_topic(b.bootstrap, topic, 1)
    producer = clients.producer(b.bootstrap, **{"linger.ms": 0})
    live = {}
    for g in ("keeper", "stopper"):
        c = clients.consumer(b.bootstrap, **{"group.id": g, "enable.partition.eof": False})
        c.subscribe([topic])
        live[g] = c
    stuck = clients.consumer(b.bootstrap, **{"group.id": "stuck"})

    def step() -> dict[str, dict]:
        producer.produce(topic, b"r")
        assert producer.flush(20) == 0
        for c in live.values():
            c.commit(message=poll_one(c, topic), asynchronous=False)
        stuck.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
        return {g: group_lag(b, g) for g in ("keeper", "stopper", "stuck")}

    try:
        for _ in range(4):  # all read; stopper keeps up too
            seen = step()
            assert seen["keeper"]["status"] == "OK", seen["keeper"]
            assert seen["stopper"]["status"] == "OK", seen["stopper"]
            time.sleep(0.2)
        live.pop("stopper").close()
        stopped_at = time.monotonic()
        lags, stopper, stalled, took = [], None, None, None
        # Steps go on until both verdicts are in: `stuck` may need a step
        # more than `stopper` for its window of unchanged commits.
        while time.monotonic() - stopped_at < lag_status_wait_s_max and (stopper is None or stalled is None):
            seen = step()
            assert seen["keeper"]["status"] == "OK", seen["keeper"]
            assert seen["keeper"]["total_lag"] == 0
            if stalled is None and seen["stuck"]["status"] == "ERROR":
                stalled = seen["stuck"]
            if stopper is None:
                lags.append(seen["stopper"]["total_lag"])
                if seen["stopper"]["status"] == "ERROR":
                    stopper = seen["stopper"]
                    took = time.monotonic() - stopped_at
            time.sleep(0.2)
        assert stopper is not None, f"stopper never ERROR; lags {lags}"
        assert stopper["partitions"][0]["status"] == "STOPPED", stopper
        assert lags == sorted(lags) and lags[-1] > lags[0], f"lag should grow: {lags}"
        assert took < 10, f"ERROR took {took:.1f} s"
        assert stalled is not None and stalled["partitions"][0]["status"] == "STALLED", seen["stuck"]
    finally:
        for c in live.values():
            c.close()
        stuck.close()


# ---------------------------------------------------------------- dashboard


def dashboard_metric_names() -> set[str]:
    path = REPO_ROOT / "docs/grafana/corestream.json"
    dashboard = json.loads(path.read_text())
    exprs = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("expr", "definition") and isinstance(v, str):
                    exprs.append(v)
                elif k == "query" and isinstance(v, str) and "corestream_" in v:
                    exprs.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(dashboard)
    assert len(exprs) >= 20, "the dashboard lost its panels"
    return {name for e in exprs for name in re.findall(r"\bcorestream_[a-z0-9_]+", e)}


# Served only by a cluster node (replication, elections): the dashboard's
# use of them is checked against a cluster in test_replication.py.
CLUSTER_ONLY_METRICS = {
    "corestream_partition_under_replicated",
    "corestream_replica_lag_offsets",
    "corestream_partition_replica_lag_seconds",
    "corestream_offline_partitions",
    "corestream_unclean_leader_elections_total",
    "corestream_clean_leader_elections_total",
}


def test_grafana_dashboard_uses_only_served_metrics(broker):
    """docs/grafana/corestream.json cannot drift from /metrics: every
    metric name in a query is a sample the live broker serves (a single
    node; the cluster-only ones are checked on a cluster)."""
    create_topic(broker.bootstrap, "dash", 2)
    produce_all(broker.bootstrap, "dash", [(None, b"v", i % 2) for i in range(20)])
    consume_all(broker.bootstrap, "dash", 2, expect=20)
    from test_ops import commit_offsets

    commit_offsets(broker.bootstrap, "dash-group", "dash", {0: 1})
    types, samples = scrape(broker)
    served = {s.name for s in samples}
    names = dashboard_metric_names()
    missing = sorted(n for n in names if n not in served and n not in CLUSTER_ONLY_METRICS)
    assert not missing, f"dashboard uses metrics /metrics does not serve: {missing}"
    covered = {"corestream_requests_total", "corestream_fsync_latency_seconds_bucket",
               "corestream_tail_cache_hits_total", "corestream_group_lag",
               "corestream_resident_memory_bytes", "corestream_connections_open"}
    assert covered <= names, f"dashboard lacks {sorted(covered - names)}"
