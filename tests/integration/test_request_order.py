"""Issue: pipelined requests on one connection must take effect as if they
ran one at a time, in order (Kafka's rule). Each test writes N requests
that change state to one socket before reading any answer, at depths 1, 32
and 100 (the broker reads up to 32 ahead), and checks the final state.
Before the fix, 50 pipelined OffsetCommits left 34, 37 or 38 committed.
"""

from __future__ import annotations

import time

import pytest
from kafka.protocol.admin.configs import AlterConfigsRequest, AlterConfigsResponse
from kafka.protocol.admin.configs import DescribeConfigsRequest, DescribeConfigsResponse
from kafka.protocol.admin.configs import IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse
from kafka.protocol.admin.topics import CreatePartitionsRequest, CreatePartitionsResponse
from kafka.protocol.admin.groups import DeleteGroupsRequest, DeleteGroupsResponse
from kafka.protocol.admin.topics import CreateTopicsRequest, CreateTopicsResponse
from kafka.protocol.admin.topics import DeleteRecordsRequest, DeleteRecordsResponse
from kafka.protocol.admin.topics import DeleteTopicsRequest, DeleteTopicsResponse
from kafka.protocol.consumer.fetch import FetchRequest, FetchResponse
from kafka.protocol.consumer.group import HeartbeatRequest, HeartbeatResponse
from kafka.protocol.consumer.group import JoinGroupRequest, JoinGroupResponse
from kafka.protocol.consumer.group import LeaveGroupRequest, LeaveGroupResponse
from kafka.protocol.consumer.group import OffsetCommitRequest, OffsetCommitResponse
from kafka.protocol.consumer.group import OffsetDeleteRequest, OffsetDeleteResponse
from kafka.protocol.consumer.group import SyncGroupRequest, SyncGroupResponse
from kafka.protocol.consumer.group import OffsetFetchRequest, OffsetFetchResponse
from kafka.protocol.producer.produce import ProduceRequest, ProduceResponse
from kafka.protocol.producer.transaction import AddOffsetsToTxnRequest, AddOffsetsToTxnResponse
from kafka.protocol.producer.transaction import AddPartitionsToTxnRequest, AddPartitionsToTxnResponse
from kafka.protocol.producer.transaction import EndTxnRequest, EndTxnResponse
from kafka.protocol.producer.transaction import InitProducerIdRequest, InitProducerIdResponse
from kafka.protocol.producer.transaction import TxnOffsetCommitRequest, TxnOffsetCommitResponse

import kafka_raw
from pipelined import build, pipeline, receive, roundtrip, send

DEPTHS = (1, 32, 100)


def create_topic(broker, name: str, partitions: int = 1) -> None:
    with broker.raw() as c:
        [result] = c.create_topics([(name, partitions, 1)])
        assert result["error_code"] == 0, result


def committed(broker, group: str, topic: str, version: int = 5) -> int:
    """The group's committed offset of partition 0, read on a new connection."""
    request = build(
        OffsetFetchRequest[version],
        dict(group_id=group, topics=[dict(name=topic, partition_indexes=[0])], require_stable=False),
    )
    with broker.raw() as c:
        response = roundtrip(c, request, OffsetFetchResponse)
    [partition] = response.topics[0].partitions
    assert partition.error_code == 0, partition
    return partition.committed_offset


def commit_request(version: int, group: str, topic: str, offset: int):
    partition = dict(partition_index=0, committed_offset=offset, committed_metadata="")
    return build(
        OffsetCommitRequest[version],
        dict(
            group_id=group,
            generation_id_or_member_epoch=-1,
            member_id="",
            retention_time_ms=-1,
            topics=[dict(name=topic, partitions=[partition])],
        ),
    )


def test_offset_commit_v2_v8_pipelined_commits_take_effect_in_order(broker):
    """The issue's reproduction: OffsetCommit 1..N back to back for one
    group and partition; OffsetFetch afterwards, on a new connection, says N."""
    create_topic(broker, "t")
    for version in (2, 8):
        for depth in DEPTHS:
            group = f"g-v{version}-{depth}"
            with broker.raw() as c:
                requests = [commit_request(version, group, "t", i) for i in range(1, depth + 1)]
                responses = pipeline(c, requests, OffsetCommitResponse)
                codes = {p.error_code for r in responses for p in r.topics[0].partitions}
                assert codes == {0}, codes
                assert committed(broker, group, "t") == depth, f"v{version} depth {depth}"


def produce_request(version: int, topics: list[str], value: bytes, transactional_id=None, **batch):
    records = kafka_raw.record_batch_v2([(None, value)], **batch)
    topic_data = [dict(name=t, partition_data=[dict(index=0, records=records)]) for t in topics]
    return build(
        ProduceRequest[version],
        dict(transactional_id=transactional_id, acks=-1, timeout_ms=10_000, topic_data=topic_data),
    )


def base_offsets(responses, topic: str) -> list[int]:
    out = []
    for r in responses:
        for t in r.responses:
            if t.name == topic:
                [p] = t.partition_responses
                assert p.error_code == 0, p
                out.append(p.base_offset)
    return out


def test_produce_v8_v9_pipelined_batches_land_in_request_order_in_every_topic(broker):
    """Plain (not idempotent) produces, each naming two topics: every
    partition holds the batches in the order they were sent."""
    create_topic(broker, "a")
    create_topic(broker, "b")
    for version in (8, 9):
        for depth in DEPTHS:
            with broker.raw() as c:
                requests = [produce_request(version, ["a", "b"], b"%d" % i) for i in range(depth)]
                responses = pipeline(c, requests, ProduceResponse)
            for topic in ("a", "b"):
                offsets = base_offsets(responses, topic)
                assert offsets == sorted(offsets), f"{topic} v{version} depth {depth}: {offsets}"
                assert len(set(offsets)) == depth


def init_producer(c, transactional_id: str | None = None) -> tuple[int, int]:
    request = build(
        InitProducerIdRequest[1],
        dict(transactional_id=transactional_id, transaction_timeout_ms=60_000),
    )
    response = roundtrip(c, request, InitProducerIdResponse)
    assert response.error_code == 0, response
    return response.producer_id, response.producer_epoch


def test_produce_v9_pipelined_idempotent_batches_are_all_accepted_in_sequence_order(broker):
    """An idempotent producer pipelines batches with sequences 0..N-1: a
    batch applied out of order would get OUT_OF_ORDER_SEQUENCE_NUMBER."""
    create_topic(broker, "idem")
    for depth in DEPTHS:
        with broker.raw() as c:
            pid, epoch = init_producer(c)
            requests = [
                produce_request(9, ["idem"], b"%d" % i, producer_id=pid, producer_epoch=epoch, base_sequence=i)
                for i in range(depth)
            ]
            offsets = base_offsets(pipeline(c, requests, ProduceResponse), "idem")
        assert offsets == sorted(offsets) and len(set(offsets)) == depth


def test_transactions_pipelined_add_produce_commit_rounds_all_succeed(broker):
    """AddPartitionsToTxn, a transactional Produce and EndTxn(commit), round
    after round, all written before any answer: each EndTxn must see its
    produce done, and each produce its AddPartitionsToTxn."""
    create_topic(broker, "tx")
    for depth in DEPTHS:
        rounds = max(1, depth // 3)
        txn_id = f"txn-{depth}"
        with broker.raw() as c:
            pid, epoch = init_producer(c, txn_id)
            requests = []
            for i in range(rounds):
                add = build(
                    AddPartitionsToTxnRequest[1],
                    dict(
                        v3_and_below_transactional_id=txn_id,
                        v3_and_below_producer_id=pid,
                        v3_and_below_producer_epoch=epoch,
                        v3_and_below_topics=[dict(name="tx", partitions=[0])],
                    ),
                )
                records = dict(producer_id=pid, producer_epoch=epoch, base_sequence=i, transactional=True)
                produce = produce_request(9, ["tx"], b"%d" % i, transactional_id=txn_id, **records)
                end = build(
                    EndTxnRequest[1],
                    dict(transactional_id=txn_id, producer_id=pid, producer_epoch=epoch, committed=True),
                )
                requests += [(add, AddPartitionsToTxnResponse), (produce, ProduceResponse), (end, EndTxnResponse)]
            sent = [send(c, request) for request, _ in requests]
            for (_, response_cls), handle in zip(requests, sent):
                assert_no_error(receive(c, handle, response_cls))


def assert_no_error(response) -> None:
    assert all_codes(response) <= {0}, f"{type(response).__name__}: {response}"


def test_create_partitions_v1_pipelined_growth_lands_in_order(broker):
    """CreatePartitions to 2, 3, ..., N+1 back to back: each finds the count
    the previous one left (out of order, one would be INVALID_PARTITIONS)."""
    for depth in DEPTHS:
        topic = f"grow-{depth}"
        create_topic(broker, topic)
        requests = [
            build(
                CreatePartitionsRequest[1],
                dict(topics=[dict(name=topic, count=n, assignments=None)], timeout_ms=30_000, validate_only=False),
            )
            for n in range(2, depth + 2)
        ]
        with broker.raw(timeout_s=60) as c:
            responses = pipeline(c, requests, CreatePartitionsResponse)
        codes = [r.results[0].error_code for r in responses]
        assert codes == [0] * depth, codes
        with broker.raw() as c:
            [meta] = c.metadata([topic])["topics"]
        assert len(meta["partitions"]) == depth + 1


def topic_config(broker, topic: str, key: str) -> str:
    """A topic config's value as DescribeConfigs v1 reports it."""
    describe = build(
        DescribeConfigsRequest[1],
        dict(resources=[dict(resource_type=2, resource_name=topic, configuration_keys=[key])], include_synonyms=False),
    )
    with broker.raw() as c:
        [entry] = roundtrip(c, describe, DescribeConfigsResponse).results[0].configs
    return entry.value


def test_incremental_alter_configs_v0_pipelined_last_value_wins(broker):
    create_topic(broker, "cfg")
    for depth in DEPTHS:
        requests = [
            build(
                IncrementalAlterConfigsRequest[0],
                dict(
                    resources=[
                        dict(
                            resource_type=2,
                            resource_name="cfg",
                            configs=[dict(name="retention.ms", config_operation=0, value=str(3_600_000 + i))],
                        )
                    ],
                    validate_only=False,
                ),
            )
            for i in range(1, depth + 1)
        ]
        with broker.raw(timeout_s=60) as c:
            responses = pipeline(c, requests, IncrementalAlterConfigsResponse)
        assert {r.responses[0].error_code for r in responses} == {0}
        entry_value = topic_config(broker, "cfg", "retention.ms")
        assert entry_value == str(3_600_000 + depth), f"depth {depth}"


def test_delete_records_v1_pipelined_log_start_ends_at_the_last_one(broker):
    create_topic(broker, "dr")
    with broker.raw() as c:
        for i in range(sum(DEPTHS) + 10):
            assert c.produce("dr", 0, kafka_raw.record_batch_v2([(None, b"%d" % i)]))["error_code"] == 0
    end = 0
    for depth in DEPTHS:
        requests = [
            build(
                DeleteRecordsRequest[1],
                dict(topics=[dict(name="dr", partitions=[dict(partition_index=0, offset=end + i)])], timeout_ms=30_000),
            )
            for i in range(1, depth + 1)
        ]
        end += depth
        with broker.raw(timeout_s=60) as c:
            responses = pipeline(c, requests, DeleteRecordsResponse)
        lows = [r.topics[0].partitions[0].low_watermark for r in responses]
        assert lows == sorted(lows) and lows[-1] == end, lows


def fetch_request(session_id: int, epoch: int, topic_partitions: list[dict]):
    return build(
        FetchRequest[11],
        dict(
            replica_id=-1,
            max_wait_ms=0,
            min_bytes=0,
            max_bytes=1 << 20,
            isolation_level=0,
            session_id=session_id,
            session_epoch=epoch,
            topics=topic_partitions,
            forgotten_topics_data=[],
            rack_id="",
        ),
    )


def test_fetch_v11_pipelined_incremental_session_fetches_keep_their_epochs(broker):
    """A fetch session's epochs are a sequence: N incremental fetches written
    back to back must each find the epoch the previous one left."""
    create_topic(broker, "fs")
    partition = dict(
        partition=0, current_leader_epoch=-1, fetch_offset=0, log_start_offset=-1, partition_max_bytes=1 << 20
    )
    for depth in DEPTHS:
        with broker.raw() as c:
            opened = roundtrip(c, fetch_request(0, 0, [dict(topic="fs", partitions=[partition])]), FetchResponse)
            assert opened.error_code == 0 and opened.session_id != 0, opened
            requests = [fetch_request(opened.session_id, epoch, []) for epoch in range(1, depth + 1)]
            responses = pipeline(c, requests, FetchResponse)
        assert [r.error_code for r in responses] == [0] * depth


@pytest.mark.parametrize("membership", ["none", "classic", "consumer"])
def test_offset_commit_async_commits_from_librdkafka_end_at_the_last_one(broker, membership):
    """A confluent-kafka consumer commits asynchronously 200 times back to
    back (librdkafka pipelines them on the coordinator connection): without
    joining, as a classic group member, and as a KIP-848 member. The
    committed offset is the last one, also on a new connection."""
    from confluent_kafka import Consumer, TopicPartition

    topic = f"ac-{membership}"
    group = f"ck-async-{membership}"
    create_topic(broker, topic)
    commits = 200
    conf = {"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False}
    if membership == "consumer":
        conf["group.protocol"] = "consumer"
    consumer = Consumer(conf)
    try:
        if membership != "none":
            consumer.subscribe([topic])
            deadline = time.monotonic() + 30
            while not consumer.assignment() and time.monotonic() < deadline:
                consumer.poll(0.1)
            assert consumer.assignment(), "never assigned"
        for offset in range(1, commits + 1):
            consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            [tp] = consumer.committed([TopicPartition(topic, 0)], timeout=10)
            if tp.offset == commits:
                break
            consumer.poll(0.1)
        assert tp.offset == commits
    finally:
        consumer.close()
    assert committed(broker, group, topic) == commits


def all_codes(response) -> set[int]:
    codes: list[int] = []

    def walk(node) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        for key in getattr(node, "fields", {}):
            value = getattr(node, key, None)
            if key == "error_code":
                codes.append(value)
            elif isinstance(value, list) or hasattr(value, "fields"):
                walk(value)

    walk(response)
    return set(codes)


def test_create_delete_topics_v3_pipelined_alternation_ends_as_the_last_one(broker):
    """CreateTopics and DeleteTopics of one name, alternating: each finds
    the topic as the previous one left it; the last decides what is left."""
    for depth in DEPTHS:
        name = f"cd-{depth}"
        requests = []
        for i in range(depth):
            if i % 2 == 0:
                topic = dict(name=name, num_partitions=1 + (i // 2) % 3, replication_factor=1, assignments=[], configs=[])
                requests.append((build(CreateTopicsRequest[3], dict(topics=[topic], timeout_ms=30_000, validate_only=False)), CreateTopicsResponse))
            else:
                requests.append((build(DeleteTopicsRequest[3], dict(topic_names=[name], timeout_ms=30_000)), DeleteTopicsResponse))
        with broker.raw(timeout_s=120) as c:
            handles = [send(c, r) for r, _ in requests]
            codes = [all_codes(receive(c, h, cls)) for h, (_, cls) in zip(handles, requests)]
        assert all(code == {0} for code in codes), codes
        with broker.raw() as c:
            topics = c.metadata([name])["topics"]
        if depth % 2 == 1:
            assert topics[0]["error_code"] == 0
            assert len(topics[0]["partitions"]) == 1 + ((depth - 1) // 2) % 3
        else:
            assert topics[0]["error_code"] == 3  # UNKNOWN_TOPIC_OR_PARTITION


def test_offset_commit_delete_groups_and_offset_delete_pipelined_in_order(broker):
    """Commits alternating with DeleteGroups (then with OffsetDelete): each
    delete finds the group the commit before it made, and the end state is
    the last request's."""
    create_topic(broker, "od")
    for depth in DEPTHS:
        for deleter in ("groups", "offsets"):
            group = f"del-{deleter}-{depth}"
            requests = []
            for i in range(depth):
                if i % 2 == 0:
                    requests.append((commit_request(2, group, "od", i + 1), OffsetCommitResponse))
                elif deleter == "groups":
                    requests.append((build(DeleteGroupsRequest[1], dict(groups_names=[group])), DeleteGroupsResponse))
                else:
                    topics = [dict(name="od", partitions=[dict(partition_index=0)])]
                    requests.append((build(OffsetDeleteRequest[0], dict(group_id=group, topics=topics)), OffsetDeleteResponse))
            with broker.raw() as c:
                handles = [send(c, r) for r, _ in requests]
                codes = [all_codes(receive(c, h, cls)) for h, (_, cls) in zip(handles, requests)]
            assert all(code <= {0} for code in codes), (deleter, depth, codes)
            expected = depth if depth % 2 == 1 else -1
            with broker.raw() as c:
                request = build(
                    OffsetFetchRequest[5],
                    dict(group_id=group, topics=[dict(name="od", partition_indexes=[0])], require_stable=False),
                )
                response = roundtrip(c, request, OffsetFetchResponse)
            assert response.topics[0].partitions[0].committed_offset == expected, (deleter, depth)


def test_alter_configs_v1_pipelined_last_value_wins(broker):
    create_topic(broker, "acfg")
    for depth in DEPTHS:
        requests = [
            build(
                AlterConfigsRequest[1],
                dict(
                    resources=[dict(resource_type=2, resource_name="acfg", configs=[dict(name="retention.bytes", value=str(1_000_000 + i))])],
                    validate_only=False,
                ),
            )
            for i in range(1, depth + 1)
        ]
        with broker.raw(timeout_s=60) as c:
            responses = pipeline(c, requests, AlterConfigsResponse)
        assert {r.responses[0].error_code for r in responses} == {0}
        entry_value = topic_config(broker, "acfg", "retention.bytes")
        assert entry_value == str(1_000_000 + depth)


def test_classic_group_pipelined_sync_heartbeats_and_leave_all_succeed(broker):
    """After a JoinGroup, SyncGroup, heartbeats and LeaveGroup written back
    to back: a heartbeat overtaking the sync would be REBALANCE_IN_PROGRESS,
    one overtaking the leave UNKNOWN_MEMBER_ID."""
    for depth in DEPTHS:
        group = f"member-{depth}"
        join = build(
            JoinGroupRequest[3],
            dict(
                group_id=group,
                session_timeout_ms=30_000,
                rebalance_timeout_ms=30_000,
                member_id="",
                protocol_type="consumer",
                protocols=[dict(name="range", metadata=b"")],
            ),
        )
        with broker.raw(timeout_s=60) as c:
            joined = roundtrip(c, join, JoinGroupResponse)
            assert joined.error_code == 0, joined
            member, generation = joined.member_id, joined.generation_id
            requests = [
                (
                    build(
                        SyncGroupRequest[2],
                        dict(group_id=group, generation_id=generation, member_id=member, assignments=[dict(member_id=member, assignment=b"")]),
                    ),
                    SyncGroupResponse,
                )
            ]
            beat = dict(group_id=group, generation_id=generation, member_id=member)
            requests += [(build(HeartbeatRequest[2], beat), HeartbeatResponse) for _ in range(max(0, depth - 2))]
            if depth > 1:
                requests.append((build(LeaveGroupRequest[2], dict(group_id=group, member_id=member)), LeaveGroupResponse))
            handles = [send(c, r) for r, _ in requests]
            codes = [all_codes(receive(c, h, cls)) for h, (_, cls) in zip(handles, requests)]
        assert all(code <= {0} for code in codes), codes


def test_init_producer_id_v1_pipelined_epochs_follow_request_order(broker):
    """InitProducerId for one transactional id N times back to back: each
    bumps the epoch the previous one left, so the answers count up."""
    for depth in DEPTHS:
        request = dict(transactional_id=f"ip-{depth}", transaction_timeout_ms=60_000)
        with broker.raw() as c:
            responses = pipeline(c, [build(InitProducerIdRequest[1], request) for _ in range(depth)], InitProducerIdResponse)
        assert [r.error_code for r in responses] == [0] * depth
        epochs = [r.producer_epoch for r in responses]
        assert epochs == list(range(epochs[0], epochs[0] + depth)), epochs
        assert len({r.producer_id for r in responses}) == 1


def test_txn_offset_commit_v2_pipelined_rounds_commit_the_last_offsets(broker):
    """Rounds of AddOffsetsToTxn, TxnOffsetCommit and EndTxn(commit) back to
    back: the group's committed offset is the last round's."""
    create_topic(broker, "txo")
    for depth in DEPTHS:
        rounds = max(1, depth // 3)
        txn_id, group = f"txo-{depth}", f"txo-group-{depth}"
        with broker.raw(timeout_s=60) as c:
            pid, epoch = init_producer(c, txn_id)
            requests = []
            for i in range(rounds):
                ids = dict(transactional_id=txn_id, producer_id=pid, producer_epoch=epoch)
                requests.append((build(AddOffsetsToTxnRequest[1], dict(ids, group_id=group)), AddOffsetsToTxnResponse))
                offsets = [dict(name="txo", partitions=[dict(partition_index=0, committed_offset=i + 1, committed_leader_epoch=-1, committed_metadata="")])]
                commit = dict(ids, group_id=group, generation_id=-1, member_id="", topics=offsets)
                requests.append((build(TxnOffsetCommitRequest[2], commit), TxnOffsetCommitResponse))
                requests.append((build(EndTxnRequest[1], dict(ids, committed=True)), EndTxnResponse))
            handles = [send(c, r) for r, _ in requests]
            codes = [all_codes(receive(c, h, cls)) for h, (_, cls) in zip(handles, requests)]
        assert all(code <= {0} for code in codes), codes
        assert committed(broker, group, "txo") == rounds
