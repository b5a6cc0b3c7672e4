"""DescribeQuorum v2 (key 55, KIP-853 fields) on a real cluster: three
voters and one broker-only node (an observer), asked over a raw
connection in Kafka's flexible v2 encoding.

What is checked is what `kafka-metadata-quorum describe --replication`
shows: the leader and its term, each voter's log end and its fetch and
caught-up times (wall-clock ms, near now), the zero directory id of a
static quorum, the broker-only node as an observer with its last
heartbeat, and (v2 only) each voter's CONTROLLER listener.
"""

from __future__ import annotations

import time

import pytest

from kafka_raw import Reader, Writer
from test_cluster import NODES, SESSION_TIMEOUT_MS, Cluster

DESCRIBE_QUORUM = 55
OBSERVER_ID = NODES + 1
ZERO_UUID = bytes(16)
# Times in the answer are wall-clock ms taken by the active controller; a
# voter acknowledges a heartbeat every few hundred ms and a broker
# heartbeats well within its session timeout.
RECENT_MS = SESSION_TIMEOUT_MS + 10_000


def compact_string(r: Reader) -> str | None:
    n = r.uvarint()
    return None if n == 0 else r._take(n - 1).decode()


def skip_tags(r: Reader) -> None:
    for _ in range(r.uvarint()):
        r.uvarint()
        r._take(r.uvarint())


def describe_quorum_v2(node) -> dict:
    w = Writer().uvarint(2)  # one topic
    w.uvarint(len("__cluster_metadata") + 1).raw(b"__cluster_metadata")
    w.uvarint(2).int32(0).uvarint(0)  # one partition, its tags
    w.uvarint(0).uvarint(0)  # topic tags, request tags
    with node.raw() as c:
        cid = c.send_request(DESCRIBE_QUORUM, 2, w.bytes(), flexible_header=True)
        r = Reader(c.recv_response(cid, flexible_header=True))

    def replica(r: Reader) -> dict:
        d = {
            "id": r.int32(),
            "directory_id": r._take(16),
            "log_end_offset": r.int64(),
            "last_fetch_ms": r.int64(),
            "last_caught_up_ms": r.int64(),
        }
        skip_tags(r)
        return d

    out = {"error_code": r.int16(), "error_message": compact_string(r), "partitions": []}
    for _ in range(r.uvarint() - 1):
        out["topic"] = compact_string(r)
        for _ in range(r.uvarint() - 1):
            p = {
                "index": r.int32(),
                "error_code": r.int16(),
                "error_message": compact_string(r),
                "leader_id": r.int32(),
                "leader_epoch": r.int32(),
                "high_watermark": r.int64(),
            }
            p["voters"] = [replica(r) for _ in range(r.uvarint() - 1)]
            p["observers"] = [replica(r) for _ in range(r.uvarint() - 1)]
            skip_tags(r)
            out["partitions"].append(p)
        skip_tags(r)
    out["nodes"] = {}
    for _ in range(r.uvarint() - 1):
        node_id = r.int32()
        listeners = []
        for _ in range(r.uvarint() - 1):
            listeners.append((compact_string(r), compact_string(r), r.int16() & 0xFFFF))
            skip_tags(r)
        skip_tags(r)
        out["nodes"][node_id] = listeners
    skip_tags(r)
    assert r.remaining() == 0, "trailing bytes"
    return out


@pytest.fixture
def cluster_with_observer(broker_factory) -> tuple[Cluster, object]:
    cluster = Cluster(broker_factory).start()
    voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in cluster.controller_ports.items())
    observer = broker_factory(
        name=f"node{OBSERVER_ID}",
        start=False,
        shards=1,
        node_id=OBSERVER_ID,
        extra_args=[
            "--controller-quorum-voters",
            voters,
            "--broker-session-timeout-ms",
            str(SESSION_TIMEOUT_MS),
        ],
    )
    observer.start(wait=True)
    cluster.wait_for("the broker-only node registered", lambda md: len(md["brokers"]) == NODES + 1, via=1)
    return cluster, observer


def test_describe_quorum_v2_voters_observers_nodes_and_timestamps(cluster_with_observer):
    cluster, observer = cluster_with_observer
    controller = cluster.metadata(1)["controller_id"]
    # Asked of a voter that is not the leader and of the broker-only node:
    # both forward to the active controller.
    follower = next(i for i in cluster.nodes if i != controller)

    def answered(node) -> dict:
        deadline = time.monotonic() + 30
        while True:
            a = describe_quorum_v2(node)
            p = a["partitions"][0]
            # Voters acknowledge heartbeats continuously: wait until the
            # leader has heard from each this term.
            if p["error_code"] == 0 and all(v["last_fetch_ms"] > 0 for v in p["voters"]):
                return a
            assert time.monotonic() < deadline, a
            time.sleep(0.2)

    with observer.raw() as c:
        assert c.versions()[DESCRIBE_QUORUM] == (0, 2), "ApiVersions advertises v2"
    for node in (cluster.nodes[follower], observer):
        a = answered(node)
        now_ms = int(time.time() * 1000)
        assert (a["error_code"], a["error_message"], a["topic"]) == (0, None, "__cluster_metadata"), a
        [p] = a["partitions"]
        assert p["error_message"] is None and p["leader_id"] == controller, p
        assert p["leader_epoch"] >= 1 and p["high_watermark"] > 0, p
        voters = {v["id"]: v for v in p["voters"]}
        assert sorted(voters) == [1, 2, 3], p
        for v in voters.values():
            assert v["directory_id"] == ZERO_UUID, v
            assert v["log_end_offset"] > 0, v
            assert now_ms - RECENT_MS <= v["last_fetch_ms"] <= now_ms + 1_000, (now_ms, v)
            # Caught up: the same time as the fetch, or -1 when behind then.
            assert v["last_caught_up_ms"] in (-1, v["last_fetch_ms"]), v
        leader = voters[controller]
        assert leader["last_caught_up_ms"] == leader["last_fetch_ms"] and leader["log_end_offset"] >= p["high_watermark"]
        [obs] = p["observers"]
        assert obs["id"] == OBSERVER_ID and obs["directory_id"] == ZERO_UUID, obs
        assert (obs["log_end_offset"], obs["last_caught_up_ms"]) == (-1, -1), obs
        assert now_ms - RECENT_MS <= obs["last_fetch_ms"] <= now_ms + 1_000, (now_ms, obs)
        # v2's Nodes: every voter's controller listener, from the voters list.
        assert a["nodes"] == {
            i: [("CONTROLLER", "127.0.0.1", port)] for i, port in cluster.controller_ports.items()
        }, a["nodes"]

