"""Topic configs through confluent-kafka's AdminClient: CreateTopics with
configs, DescribeConfigs (topic and broker), IncrementalAlterConfigs,
legacy AlterConfigs, validation errors, persistence across restart, and
the produce-side rules (max.message.bytes, LogAppendTime, keys on compacted
topics)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException, TIMESTAMP_LOG_APPEND_TIME
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    ResourceType,
)

import clients
import kafka_raw
from clients import consume_all, create_topic, produce_all

admin_wait_s = 30


def describe(bootstrap: str, topic: str) -> dict:
    a = clients.admin(bootstrap)
    res = ConfigResource(ResourceType.TOPIC, topic)
    return a.describe_configs([res], request_timeout=20)[res].result(timeout=admin_wait_s)


def incremental(bootstrap: str, topic: str, *ops: tuple[str, str | None, AlterConfigOpType]) -> None:
    a = clients.admin(bootstrap)
    entries = [ConfigEntry(name, value, incremental_operation=op) for name, value, op in ops]
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    a.incremental_alter_configs([res], request_timeout=20)[res].result(timeout=admin_wait_s)


def test_create_topic_with_configs_and_describe(broker):
    create_topic(broker.bootstrap, "cfg-create", 1, {"retention.ms": "3600000", "cleanup.policy": "compact"})
    configs = describe(broker.bootstrap, "cfg-create")
    assert configs["retention.ms"].value == "3600000"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert not configs["retention.ms"].is_default
    assert configs["cleanup.policy"].value == "compact"
    seg = configs["segment.bytes"]
    assert seg.value == "1073741824" and seg.source == ConfigSource.DEFAULT_CONFIG.value and seg.is_default
    assert not seg.is_read_only and not seg.is_sensitive
    for key in ["max.message.bytes", "message.timestamp.type", "min.cleanable.dirty.ratio", "delete.retention.ms"]:
        assert key in configs, key
    # synonyms as Kafka reports them: the override, then the default under log.retention.hours
    syn = configs["retention.ms"].synonyms
    assert list(syn)[0] == "retention.ms", list(syn)
    assert "log.retention.hours" in syn and syn["log.retention.hours"].value == "168"


def test_create_topic_invalid_config_names_the_key(broker):
    a = clients.admin(broker.bootstrap)
    for config, key in [({"retention.ms": "soon"}, "retention.ms"), ({"no.such.config": "1"}, "no.such.config"),
                        ({"cleanup.policy": "shred"}, "cleanup.policy")]:
        fs = a.create_topics([NewTopic("cfg-bad", 1, 1, config=config)], request_timeout=20)
        with pytest.raises(KafkaException) as e:
            fs["cfg-bad"].result(timeout=admin_wait_s)
        err = e.value.args[0]
        assert err.code() == KafkaError.INVALID_CONFIG, err
        assert key in err.str(), err.str()
    assert clients.partition_count(broker.bootstrap, "cfg-bad") is None


def test_incremental_alter_persists_across_restart(broker):
    create_topic(broker.bootstrap, "cfg-alter", 1)
    incremental(
        broker.bootstrap, "cfg-alter",
        ("retention.ms", "120000", AlterConfigOpType.SET),
        ("cleanup.policy", "compact", AlterConfigOpType.APPEND),
        ("max.message.bytes", "500000", AlterConfigOpType.SET),
    )
    c = describe(broker.bootstrap, "cfg-alter")
    assert c["retention.ms"].value == "120000"
    assert c["cleanup.policy"].value == "delete,compact"
    incremental(broker.bootstrap, "cfg-alter",
                ("max.message.bytes", None, AlterConfigOpType.DELETE),
                ("cleanup.policy", "delete", AlterConfigOpType.SUBTRACT))
    c = describe(broker.bootstrap, "cfg-alter")
    assert c["max.message.bytes"].value == "1048588" and c["max.message.bytes"].is_default
    assert c["cleanup.policy"].value == "compact"
    broker.restart()
    c = describe(broker.bootstrap, "cfg-alter")
    assert c["retention.ms"].value == "120000"
    assert c["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert c["cleanup.policy"].value == "compact"


def test_incremental_alter_invalid_value_refused(broker):
    create_topic(broker.bootstrap, "cfg-invalid", 1)
    with pytest.raises(KafkaException) as e:
        incremental(broker.bootstrap, "cfg-invalid", ("segment.bytes", "-5", AlterConfigOpType.SET))
    err = e.value.args[0]
    assert err.code() == KafkaError.INVALID_CONFIG and "segment.bytes" in err.str(), err
    with pytest.raises(KafkaException) as e:
        incremental(broker.bootstrap, "cfg-invalid", ("retention.ms", "5", AlterConfigOpType.APPEND))
    assert e.value.args[0].code() == KafkaError.INVALID_REQUEST
    assert describe(broker.bootstrap, "cfg-invalid")["segment.bytes"].is_default


def test_legacy_alter_configs_replaces_overrides(broker):
    create_topic(broker.bootstrap, "cfg-legacy", 1, {"retention.ms": "1000000", "segment.ms": "3600000"})
    a = clients.admin(broker.bootstrap)
    res = ConfigResource(ResourceType.TOPIC, "cfg-legacy", set_config={"retention.bytes": "1048576"})
    a.alter_configs([res], request_timeout=20)[res].result(timeout=admin_wait_s)
    c = describe(broker.bootstrap, "cfg-legacy")
    assert c["retention.bytes"].value == "1048576"
    assert c["retention.ms"].is_default and c["segment.ms"].is_default


def test_describe_broker_configs(broker):
    a = clients.admin(broker.bootstrap)
    res = ConfigResource(ResourceType.BROKER, "0")
    c = a.describe_configs([res], request_timeout=20)[res].result(timeout=admin_wait_s)
    assert c["log.retention.hours"].value == "168"
    assert c["log.segment.bytes"].value == "1073741824"
    assert c["log.retention.check.interval.ms"].value == "300000"
    assert c["num.partitions"].value == "1"
    # Log defaults are dynamic broker configs; the rest is read-only.
    assert not c["log.retention.hours"].is_read_only
    assert c["num.partitions"].is_read_only and c["log.retention.check.interval.ms"].is_read_only


def test_broker_log_defaults_from_toml(broker_factory, tmp_path):
    cfg = tmp_path / "broker.toml"
    cfg.write_text('log.retention.hours = 2\nlog.cleanup.policy = "compact"\n')
    b = broker_factory(extra_args=["--config", str(cfg)])
    create_topic(b.bootstrap, "cfg-defaults", 1)
    c = describe(b.bootstrap, "cfg-defaults")
    assert c["retention.ms"].value == "7200000"
    assert c["retention.ms"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert c["cleanup.policy"].value == "compact"


def test_config_change_applies_without_restart(broker):
    create_topic(broker.bootstrap, "cfg-live", 1)
    produce_all(broker.bootstrap, "cfg-live", [(b"k", b"v" * 100) for _ in range(50)])
    part = broker.data_dir / "cfg-live-0"
    assert len(list(part.glob("*.log"))) == 1
    incremental(broker.bootstrap, "cfg-live", ("segment.bytes", "2048", AlterConfigOpType.SET))
    for i in range(40):  # separate batches: the roll happens between batches
        produce_all(broker.bootstrap, "cfg-live", [(b"k", b"w" * 200)])
    assert len(list(part.glob("*.log"))) > 3


def test_max_message_bytes_refuses_large_batches(broker):
    create_topic(broker.bootstrap, "cfg-size", 1, {"max.message.bytes": "2000"})
    produce_all(broker.bootstrap, "cfg-size", [(b"k", b"s" * 500)])
    with pytest.raises(AssertionError) as e:
        produce_all(broker.bootstrap, "cfg-size", [(b"k", b"L" * 5000)], **{"message.send.max.retries": 0})
    assert "Broker: Message size too large" in str(e.value) or "MSG_SIZE_TOO_LARGE" in str(e.value), str(e.value)


def test_log_append_time_rewrites_timestamps(broker):
    create_topic(broker.bootstrap, "cfg-lat", 1, {"message.timestamp.type": "LogAppendTime"})
    old = int(time.time() * 1000) - 86_400_000
    before = int(time.time() * 1000)
    produce_all(broker.bootstrap, "cfg-lat", [(b"k", b"v", None, old), (b"k2", b"v2", None, old)])
    after = int(time.time() * 1000)
    c = clients.consumer(broker.bootstrap)
    try:
        from confluent_kafka import TopicPartition, OFFSET_BEGINNING
        c.assign([TopicPartition("cfg-lat", 0, OFFSET_BEGINNING)])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 2 and time.monotonic() < deadline:
            for m in c.consume(10, timeout=0.5):
                if m.error() is None:
                    got.append(m.timestamp())
    finally:
        c.close()
    assert len(got) == 2
    for ts_type, ts in got:
        assert ts_type == TIMESTAMP_LOG_APPEND_TIME
        assert before - 1000 <= ts <= after + 1000, (ts, before, after)


def test_compacted_topic_refuses_keyless_records(broker):
    create_topic(broker.bootstrap, "cfg-keys", 1, {"cleanup.policy": "compact"})
    produce_all(broker.bootstrap, "cfg-keys", [(b"k", b"v")])
    with pytest.raises(AssertionError) as e:
        produce_all(broker.bootstrap, "cfg-keys", [(None, b"nokey")], **{"message.send.max.retries": 0})
    assert "Broker: Invalid record" in str(e.value) or "INVALID_RECORD" in str(e.value), str(e.value)


# Every topic config Kafka 4.0 knows, with a valid non-default value.
KAFKA4_TOPIC_CONFIGS = {
    "cleanup.policy": "compact,delete",
    "compression.type": "zstd",
    "compression.gzip.level": "5",
    "compression.lz4.level": "10",
    "compression.zstd.level": "7",
    "delete.retention.ms": "1000",
    "file.delete.delay.ms": "1000",
    "flush.messages": "100",
    "flush.ms": "1000",
    "follower.replication.throttled.replicas": "0:0",
    "index.interval.bytes": "8192",
    "leader.replication.throttled.replicas": "*",
    "local.retention.bytes": "1000000",
    "local.retention.ms": "1000000",
    "max.compaction.lag.ms": "1000000",
    "max.message.bytes": "2000000",
    "message.downconversion.enable": "false",
    "message.timestamp.after.max.ms": "1000000",
    "message.timestamp.before.max.ms": "1000000",
    "message.timestamp.type": "LogAppendTime",
    "min.cleanable.dirty.ratio": "0.3",
    "min.compaction.lag.ms": "1000",
    "min.insync.replicas": "1",
    "preallocate": "true",
    "remote.log.copy.disable": "true",
    "remote.log.delete.on.disable": "true",
    "remote.storage.enable": "false",
    "retention.bytes": "100000000",
    "retention.ms": "100000000",
    "segment.bytes": "10000000",
    "segment.index.bytes": "1000000",
    "segment.jitter.ms": "1000",
    "segment.ms": "100000000",
    "unclean.leader.election.enable": "true",
}


def test_create_topic_accepts_every_kafka4_topic_config(broker):
    """flush.ms and the other keys Kafka 4 knows are accepted (most are
    accepted and ignored here: docs/CONFIG.md says which and why) and
    described back; enabling tiered storage is refused as by a Kafka broker
    without it."""
    create_topic(broker.bootstrap, "cfg-kafka4", 1, KAFKA4_TOPIC_CONFIGS)
    c = describe(broker.bootstrap, "cfg-kafka4")
    for key, value in KAFKA4_TOPIC_CONFIGS.items():
        assert c[key].value == value, (key, c[key].value)
        assert c[key].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, key
    a = clients.admin(broker.bootstrap)
    for config, key in [({"remote.storage.enable": "true"}, "remote.storage.enable"),
                        ({"flush.messages": "0"}, "flush.messages"),
                        ({"compression.gzip.level": "0"}, "compression.gzip.level")]:
        fs = a.create_topics([NewTopic("cfg-kafka4-bad", 1, 1, config=config)], request_timeout=20)
        with pytest.raises(KafkaException) as e:
            fs["cfg-kafka4-bad"].result(timeout=admin_wait_s)
        assert e.value.args[0].code() == KafkaError.INVALID_CONFIG, e.value.args[0]
        assert key in e.value.args[0].str(), e.value.args[0].str()


def test_describe_configs_group_resource(broker):
    """DescribeConfigs on a GROUP resource (Kafka 4.0 group configs): the
    broker's group.consumer.* values; altering them is refused."""
    a = clients.admin(broker.bootstrap)
    res = ConfigResource(ResourceType.GROUP, "cfg-group")
    c = a.describe_configs([res], request_timeout=20)[res].result(timeout=admin_wait_s)
    assert c["consumer.session.timeout.ms"].value == "45000"
    assert c["consumer.heartbeat.interval.ms"].value == "5000"
    assert c["consumer.session.timeout.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert "share.record.lock.duration.ms" in c
    alter = ConfigResource(ResourceType.GROUP, "cfg-group", incremental_configs=[
        ConfigEntry("consumer.session.timeout.ms", "50000", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as e:
        a.incremental_alter_configs([alter], request_timeout=20)[alter].result(timeout=admin_wait_s)
    assert e.value.args[0].code() == KafkaError.INVALID_REQUEST, e.value.args[0]


INCREMENTAL_ALTER_CONFIGS = 44
RESOURCE_BROKER = 4


RESOURCE_BROKER_LOGGER = 8
OP_SET, OP_DELETE = 0, 1


def alter_broker_raw(broker, name: str, key: str, value: str | None, resource_type: int = RESOURCE_BROKER,
                     op: int = OP_SET) -> tuple[int, str | None]:
    """IncrementalAlterConfigs v0, hand encoded: confluent-kafka refuses the
    empty resource name (the cluster-wide default) and has no
    BROKER_LOGGER resource."""
    w = kafka_raw.Writer().int32(1).int8(resource_type).string(name)
    w.int32(1).string(key).int8(op).string(value).boolean(False)  # validate_only
    with broker.raw() as conn:
        r = kafka_raw.Reader(conn.roundtrip(INCREMENTAL_ALTER_CONFIGS, 0, w.bytes()))
    r.int32()  # throttle
    assert r.int32() == 1
    return r.int16(), r.string()


def alter_broker(bootstrap: str, name: str, *ops: tuple[str, str | None, AlterConfigOpType]) -> None:
    a = clients.admin(bootstrap)
    entries = [ConfigEntry(k, v, incremental_operation=op) for k, v, op in ops]
    res = ConfigResource(ResourceType.BROKER, name, incremental_configs=entries)
    a.incremental_alter_configs([res], request_timeout=20)[res].result(timeout=admin_wait_s)


def test_dynamic_broker_configs_apply_persist_and_refuse_read_only(broker):
    """IncrementalAlterConfigs on the broker: a cluster-wide default ("")
    and a per-broker value of log.retention.ms reach topics without
    overrides at once, with Kafka's sources and synonym order; they survive
    a restart; read-only keys are INVALID_REQUEST naming them."""
    create_topic(broker.bootstrap, "cfg-dyn", 1)
    create_topic(broker.bootstrap, "cfg-dyn-own", 1, {"retention.ms": "1000"})
    assert alter_broker_raw(broker, "", "log.retention.ms", "7200000") == (0, None)
    c = describe(broker.bootstrap, "cfg-dyn")
    assert c["retention.ms"].value == "7200000"
    assert c["retention.ms"].source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
    assert describe(broker.bootstrap, "cfg-dyn-own")["retention.ms"].value == "1000"
    # The cluster default resource lists what was set on it (Kafka's
    # DescribeConfigs of --entity-default), hand encoded for the "" name.
    w = kafka_raw.Writer().int32(1).int8(RESOURCE_BROKER).string("").int32(-1)
    with broker.raw() as conn:
        r = kafka_raw.Reader(conn.roundtrip(32, 1, w.boolean(False).bytes()))
    r.int32()  # throttle
    assert r.int32() == 1
    assert (r.int16(), r.string(), r.int8(), r.string()) == (0, None, RESOURCE_BROKER, "")
    assert r.int32() == 1
    assert (r.string(), r.string(), r.boolean()) == ("log.retention.ms", "7200000", False)
    alter_broker(broker.bootstrap, "0", ("log.retention.ms", "3600000", AlterConfigOpType.SET))
    c = describe(broker.bootstrap, "cfg-dyn")
    assert c["retention.ms"].value == "3600000"
    assert c["retention.ms"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    # Kafka's order: the dynamic layers of log.retention.ms, then the default
    # under log.retention.hours (confluent-kafka keys synonyms by name).
    assert list(c["retention.ms"].synonyms) == ["log.retention.ms", "log.retention.hours"], \
        list(c["retention.ms"].synonyms)
    a = clients.admin(broker.bootstrap)
    res = ConfigResource(ResourceType.BROKER, "0")
    b = a.describe_configs([res], request_timeout=20)[res].result(timeout=admin_wait_s)
    assert b["log.retention.ms"].value == "3600000"
    assert b["log.retention.ms"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    for key, value in [("log.dirs", "/tmp/x"), ("log.retention.check.interval.ms", "1000")]:
        with pytest.raises(KafkaException) as e:
            alter_broker(broker.bootstrap, "0", (key, value, AlterConfigOpType.SET))
        assert e.value.args[0].code() == KafkaError.INVALID_REQUEST, e.value.args[0]
        assert key in e.value.args[0].str(), e.value.args[0].str()
    with pytest.raises(KafkaException) as e:
        alter_broker(broker.bootstrap, "0", ("log.retention.ms", "soon", AlterConfigOpType.SET))
    assert e.value.args[0].code() == KafkaError.INVALID_CONFIG
    broker.restart()
    c = describe(broker.bootstrap, "cfg-dyn")
    assert c["retention.ms"].value == "3600000"
    assert c["retention.ms"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    alter_broker(broker.bootstrap, "0", ("log.retention.ms", None, AlterConfigOpType.DELETE))
    assert describe(broker.bootstrap, "cfg-dyn")["retention.ms"].value == "7200000"


def test_broker_logger_level_set_and_deleted_at_run_time(broker):
    """IncrementalAlterConfigs on BROKER_LOGGER (log level at run time):
    WARN on the metadata owner's target hides its INFO lines until DELETE."""
    logger = "corestream::shard::meta_owner"
    assert alter_broker_raw(broker, "0", logger, "WARN", RESOURCE_BROKER_LOGGER) == (0, None)
    create_topic(broker.bootstrap, "cfg-quiet", 1)
    assert 'name: "cfg-quiet"' not in broker.log_tail()
    code, message = alter_broker_raw(broker, "0", logger, "LOUD", RESOURCE_BROKER_LOGGER)
    assert code == KafkaError.INVALID_CONFIG and "LOUD" in message, message
    assert alter_broker_raw(broker, "0", logger, None, RESOURCE_BROKER_LOGGER, OP_DELETE) == (0, None)
    create_topic(broker.bootstrap, "cfg-loud", 1)
    clients.wait_for("the INFO line", lambda: 'name: "cfg-loud"' in broker.log_tail(), timeout_s=10)
