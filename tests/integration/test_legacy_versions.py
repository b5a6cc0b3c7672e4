"""The versions Kafka 3.9 served and Kafka 4 removed (KIP-896) that carry no
record data, sent as raw requests: ListOffsets v0 (sarama's default, so
Burrow's), OffsetCommit v0-1, OffsetFetch v0, CreateTopics v0-1,
DeleteTopics v0, DescribeConfigs v0. Produce below v3 and Fetch below v4
(MessageSet v0/v1) stay refused as in Kafka 4: not advertised, and a
request closes the connection.
"""

from __future__ import annotations

import kafka_raw
from kafka_raw import Reader, Writer

OFFSET_COMMIT = 8
OFFSET_FETCH = 9
DESCRIBE_CONFIGS = 32
RESOURCE_TOPIC = 2
LATEST = -1
EARLIEST = -2
close_wait_s_max = 10.0


def list_offsets_v0(c, topic: str, partition: int, timestamp: int, max_num: int) -> tuple[int, list[int]]:
    body = (
        Writer().int32(-1).int32(1).string(topic).int32(1).int32(partition).int64(timestamp).int32(max_num).bytes()
    )
    r = Reader(c.roundtrip(kafka_raw.LIST_OFFSETS, 0, body))
    topics = r.array(lambda r: (r.string(), r.array(lambda r: (r.int32(), r.int16(), r.array(Reader.int64)))))
    assert r.remaining() == 0
    [(name, [(index, error, offsets)])] = topics
    assert (name, index) == (topic, partition)
    return error, offsets


def offset_commit(c, version: int, group: str, topic: str, partition: int, offset: int, metadata: str | None) -> int:
    w = Writer().string(group)
    if version >= 1:
        w.int32(-1).string("")  # no generation, no member: a commit from outside a group
    w.int32(1).string(topic).int32(1).int32(partition).int64(offset)
    if version >= 1:
        w.int64(-1)  # commit timestamp: now
    w.string(metadata)
    r = Reader(c.roundtrip(OFFSET_COMMIT, version, w.bytes()))
    [(name, [(index, error)])] = r.array(lambda r: (r.string(), r.array(lambda r: (r.int32(), r.int16()))))
    assert r.remaining() == 0 and (name, index) == (topic, partition)
    return error


def offset_fetch(c, version: int, group: str, topic: str, partition: int) -> tuple[int, str | None, int]:
    body = Writer().string(group).int32(1).string(topic).int32(1).int32(partition).bytes()
    r = Reader(c.roundtrip(OFFSET_FETCH, version, body))
    part = lambda r: (r.int32(), r.int64(), r.string(), r.int16())  # noqa: E731
    [(name, [(index, offset, metadata, error)])] = r.array(lambda r: (r.string(), r.array(part)))
    assert r.remaining() == 0 and (name, index) == (topic, partition)
    return offset, metadata, error


def create_topic(c, version: int, name: str, partitions: int, configs=(), validate_only=False) -> tuple:
    w = Writer().int32(1).string(name).int32(partitions).int16(1).int32(0).int32(len(configs))
    for key, value in configs:
        w.string(key).string(value)
    w.int32(10_000)
    if version >= 1:
        w.boolean(validate_only)
    r = Reader(c.roundtrip(kafka_raw.CREATE_TOPICS, version, w.bytes()))
    if version >= 1:
        [result] = r.array(lambda r: (r.string(), r.int16(), r.string()))
    else:
        [result] = r.array(lambda r: (r.string(), r.int16()))
    assert r.remaining() == 0 and result[0] == name
    return result


def delete_topic_v0(c, name: str) -> int:
    body = Writer().int32(1).string(name).int32(10_000).bytes()
    r = Reader(c.roundtrip(kafka_raw.DELETE_TOPICS, 0, body))
    [(got, error)] = r.array(lambda r: (r.string(), r.int16()))
    assert r.remaining() == 0 and got == name
    return error


def describe_topic_configs_v0(c, topic: str) -> tuple[int, dict[str, tuple]]:
    body = Writer().int32(1).int8(RESOURCE_TOPIC).string(topic).int32(-1).bytes()
    r = Reader(c.roundtrip(DESCRIBE_CONFIGS, 0, body))
    r.int32()  # throttle_time_ms
    config = lambda r: (r.string(), r.string(), r.boolean(), r.boolean(), r.boolean())  # noqa: E731
    result = lambda r: (r.int16(), r.string(), r.int8(), r.string(), r.array(config))  # noqa: E731
    [(error, _message, rtype, name, configs)] = r.array(result)
    assert r.remaining() == 0 and (rtype, name) == (RESOURCE_TOPIC, topic)
    return error, {k: (v, ro, default, sensitive) for k, v, ro, default, sensitive in configs}


def test_api_versions_advertise_the_kafka_3_9_minimums(broker):
    with broker.raw() as c:
        versions = c.versions()
    for key in (kafka_raw.LIST_OFFSETS, OFFSET_COMMIT, OFFSET_FETCH, kafka_raw.CREATE_TOPICS,
                kafka_raw.DELETE_TOPICS, DESCRIBE_CONFIGS):
        assert versions[key][0] == 0, f"api {key}: {versions[key]}"
    assert versions[kafka_raw.PRODUCE][0] == 3
    assert versions[kafka_raw.FETCH][0] == 4


def test_list_offsets_v0_latest_earliest_as_sarama_sends(broker):
    topic = "legacy-list-offsets"
    with broker.raw() as c:
        assert create_topic(c, 0, topic, 2)[1] == kafka_raw.NONE
        for _ in range(3):
            resp = c.produce(topic, 1, kafka_raw.record_batch_v2([(b"k", b"v")]))
            assert resp["error_code"] == kafka_raw.NONE
        assert list_offsets_v0(c, topic, 1, LATEST, 1) == (kafka_raw.NONE, [3])
        assert list_offsets_v0(c, topic, 1, EARLIEST, 1) == (kafka_raw.NONE, [0])
        assert list_offsets_v0(c, topic, 0, LATEST, 1) == (kafka_raw.NONE, [0])
        # at most max_num_offsets offsets: none asked, none answered
        assert list_offsets_v0(c, topic, 1, LATEST, 0) == (kafka_raw.NONE, [])
        error, offsets = list_offsets_v0(c, "legacy-no-such-topic", 0, LATEST, 1)
        assert (error, offsets) == (kafka_raw.UNKNOWN_TOPIC_OR_PARTITION, [])


def test_offset_commit_v0_v1_offset_fetch_v0_round_trip(broker):
    topic, group = "legacy-offsets", "legacy-group"
    with broker.raw() as c:
        assert create_topic(c, 0, topic, 1)[1] == kafka_raw.NONE
        assert offset_fetch(c, 0, group, topic, 0) == (-1, "", kafka_raw.NONE)
        assert offset_commit(c, 0, group, topic, 0, 7, "v0-meta") == kafka_raw.NONE
        assert offset_fetch(c, 0, group, topic, 0) == (7, "v0-meta", kafka_raw.NONE)
        assert offset_commit(c, 1, group, topic, 0, 9, "v1-meta") == kafka_raw.NONE
        assert offset_fetch(c, 0, group, topic, 0) == (9, "v1-meta", kafka_raw.NONE)
        # v0 and v1 read the same store
        assert offset_fetch(c, 1, group, topic, 0) == (9, "v1-meta", kafka_raw.NONE)
        assert offset_commit(c, 0, group, "legacy-no-such-topic", 0, 1, None) == kafka_raw.UNKNOWN_TOPIC_OR_PARTITION
    # committed offsets survive a restart (they are records in __consumer_offsets)
    broker.restart()
    with broker.raw() as c:
        assert offset_fetch(c, 0, group, topic, 0) == (9, "v1-meta", kafka_raw.NONE)


def test_create_topics_v0_v1(broker):
    with broker.raw() as c:
        assert create_topic(c, 0, "legacy-created", 3) == ("legacy-created", kafka_raw.NONE)
        assert create_topic(c, 0, "legacy-created", 3) == ("legacy-created", kafka_raw.TOPIC_ALREADY_EXISTS)
        name, error, message = create_topic(c, 1, "legacy-created", 3)
        assert error == kafka_raw.TOPIC_ALREADY_EXISTS and message
        assert create_topic(c, 1, "legacy-validated", 2, validate_only=True)[1] == kafka_raw.NONE
        topics = {t["name"]: t for t in c.metadata(None)["topics"]}
        assert len(topics["legacy-created"]["partitions"]) == 3
        assert "legacy-validated" not in topics


def test_delete_topics_v0(broker):
    with broker.raw() as c:
        assert create_topic(c, 0, "legacy-doomed", 1)[1] == kafka_raw.NONE
        assert delete_topic_v0(c, "legacy-doomed") == kafka_raw.NONE
        assert delete_topic_v0(c, "legacy-doomed") == kafka_raw.UNKNOWN_TOPIC_OR_PARTITION
        assert "legacy-doomed" not in {t["name"] for t in c.metadata(None)["topics"]}


def test_describe_configs_v0_is_default(broker):
    with broker.raw() as c:
        assert create_topic(c, 0, "legacy-plain", 1)[1] == kafka_raw.NONE
        result = create_topic(c, 0, "legacy-compacted", 1, configs=[("cleanup.policy", "compact")])
        assert result[1] == kafka_raw.NONE
        error, configs = describe_topic_configs_v0(c, "legacy-plain")
        assert error == kafka_raw.NONE
        value, _read_only, is_default, sensitive = configs["cleanup.policy"]
        assert (value, is_default, sensitive) == ("delete", True, False)
        error, configs = describe_topic_configs_v0(c, "legacy-compacted")
        assert error == kafka_raw.NONE
        assert configs["cleanup.policy"][:3] == ("compact", False, False)
        error, _ = describe_topic_configs_v0(c, "legacy-no-such-topic")
        assert error == kafka_raw.UNKNOWN_TOPIC_OR_PARTITION


def test_produce_v2_and_fetch_v3_refused_as_kafka_4(broker):
    """MessageSet v0/v1 versions: Kafka 4 closes the connection, and so does
    this broker; the broker stays up and serves the next connection."""
    with broker.raw() as c:
        assert create_topic(c, 0, "legacy-refused", 1)[1] == kafka_raw.NONE
    produce_v2 = (
        Writer().int16(-1).int32(10_000).int32(1).string("legacy-refused").int32(1).int32(0)
        .bytes_(kafka_raw.legacy_message_set(1, b"k", b"old")).bytes()
    )
    fetch_v3 = (
        Writer().int32(-1).int32(100).int32(1).int32(1 << 20).int32(1).string("legacy-refused")
        .int32(1).int32(0).int64(0).int32(1 << 20).bytes()
    )
    for key, version, body in ((kafka_raw.PRODUCE, 2, produce_v2), (kafka_raw.FETCH, 3, fetch_v3)):
        with broker.raw() as c:
            c.send_request(key, version, body)
            assert c.wait_closed(close_wait_s_max), f"api {key} v{version} was not refused"
    with broker.raw() as c:
        assert list_offsets_v0(c, "legacy-refused", 0, LATEST, 1) == (kafka_raw.NONE, [0])
    broker.assert_alive()
