"""The RF 3 nemesis runs of issue 21 (replication factor 3,
min.insync.replicas 2, acks=all idempotent producers), each checked by the
history checker: a leader SIGKILLed repeatedly, a leader cut off from the
other two by iptables, the active controller paused past the session
timeout, and a consumer group with a transactional consume-transform-
produce loop through kills of its coordinators' brokers. About 30-60 s
each on the two-core CI machine; `scripts/crash-test --cluster
--replication-factor 3 --scenario NAME` runs each alone, longer with
--steps.
"""

from __future__ import annotations

from nemesis import scenarios

RF = 3


def config(seed, tmp_path) -> scenarios.RunConfig:
    return scenarios.RunConfig(seed=seed, history_path=tmp_path / "history.jsonl", replication_factor=RF)


def assert_passed(result: scenarios.Result, cfg: scenarios.RunConfig) -> None:
    assert result.ok, (f"seed {cfg.seed}, history {cfg.history_path}\n{result.report.summary()}\n"
                       f"violations: {result.extra.get('violations')}")


def test_rf3_leader_sigkill_loop_keeps_every_acked_record_exactly_once(netns_cluster, seed, tmp_path):
    cfg = config(seed, tmp_path)
    result = scenarios.leader_kill_loop(netns_cluster, cfg, kills=5)
    assert len(result.faults) == 5
    assert_passed(result, cfg)


def test_rf3_leader_partitioned_acks_nothing_and_loses_nothing_read(netns_cluster, seed, tmp_path):
    cfg = config(seed, tmp_path)
    result = scenarios.leader_partitioned(netns_cluster, cfg)
    assert result.extra["new_leader"] not in (None, result.extra["old_leader"])
    assert_passed(result, cfg)


def test_rf3_controller_paused_past_session_timeout_has_one_leader_per_epoch(netns_cluster, seed, tmp_path):
    cfg = config(seed, tmp_path)
    result = scenarios.controller_paused(netns_cluster, cfg)
    assert result.extra["samples"] > 0
    assert_passed(result, cfg)


def test_rf3_group_and_transactional_loop_survive_coordinator_kills_exactly_once(netns_cluster, seed, tmp_path):
    cfg = config(seed, tmp_path)
    result = scenarios.group_txn_loop(netns_cluster, cfg)
    assert_passed(result, cfg)
