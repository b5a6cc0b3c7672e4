"""The daemon's command line, config file and signals; the admin CLI's
newer commands (cluster info, config get/set/delete, consume --group,
reset-offsets --to-datetime) against a running broker."""

from __future__ import annotations

import json
import subprocess

import pytest

import clients
from clients import consume_all, produce_all
from conftest import broker_binary, free_port


def run_bad(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(broker_binary()), *args], capture_output=True, timeout=20, cwd=cwd, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize(
    "args, mentions",
    [
        (["--no-such-flag"], "--no-such-flag"),
        (["--shards", "abc"], "abc"),
        (["--shards", "0"], "shards"),
        (["--listen", "not-an-address"], "not-an-address"),
        (["--auto-create-topics", "maybe"], "maybe"),
        (["--default-partitions", "-1"], "-1"),
        (["--segment-bytes", "12x"], "12x"),
        (["--config", "/nonexistent/corestream.toml"], "/nonexistent/corestream.toml"),
        (["--lag-window-commits", "1"], "lag-window-commits"),
        (["--lag-stopped-after-ms", "-5"], "-5"),
    ],
)
def test_cli_bad_flag_exits_nonzero(tmp_path, args, mentions):
    """A bad flag or value: non-zero exit, quickly, and an error on stderr
    that names what was wrong."""
    base = []
    if "--listen" not in args:
        base += ["--listen", f"127.0.0.1:{free_port()}"]
    base += ["--data-dir", str(tmp_path / "d")]
    res = run_bad(*base, *args, cwd=tmp_path)
    err = res.stderr.decode(errors="replace")
    assert res.returncode != 0, f"{args} accepted (exit 0); stderr: {err}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, f"{args}: no message on stderr"
    assert any(mentions in line for line in lines), f"{args}: stderr does not mention {mentions!r}:\n{err}"
    assert "panicked" not in err, f"{args}: panic instead of an error:\n{err}"


def test_cli_bad_config_file(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('listen = "127.0.0.1:1"\nshards = "two"\n')
    res = run_bad("--config", str(cfg), cwd=tmp_path)
    err = res.stderr.decode(errors="replace")
    assert res.returncode != 0
    assert "shards" in err, err
    assert "panicked" not in err, err


def test_cli_help_exits_zero(tmp_path):
    res = run_bad("--help", cwd=tmp_path)
    out = res.stdout.decode()
    assert res.returncode == 0
    for flag in ("--listen", "--advertised-addr", "--data-dir", "--shards", "--node-id",
                 "--auto-create-topics", "--default-partitions", "--segment-bytes", "--config"):
        assert flag in out, f"--help does not mention {flag}"


def test_config_file(broker_factory, tmp_path):
    """Every flag has a snake_case TOML key; the broker honours the file."""
    port = free_port()
    data = tmp_path / "cfg-data"
    cfg = tmp_path / "corestream.toml"
    cfg.write_text(
        f'listen = "127.0.0.1:{port}"\n'
        f'admin_listen = "127.0.0.1:{free_port()}"\n'
        f'advertised_addr = "127.0.0.1:{port}"\n'
        f'data_dir = "{data}"\n'
        "shards = 2\n"
        "node_id = 11\n"
        "auto_create_topics = true\n"
        "default_partitions = 3\n"
        f"segment_bytes = {1024 * 1024}\n"
    )
    b = broker_factory(start=False, shards=None, port=port, pass_data_dir=False)
    b.args = lambda: [str(b.binary), "--config", str(cfg)]  # type: ignore[method-assign]
    b.start()
    produce_all(b.bootstrap, "from-config", [(f"k{i}".encode(), b"v" * 1000) for i in range(3000)])
    md = clients.admin(b.bootstrap).list_topics(timeout=20)
    assert list(md.brokers) == [11]
    assert len(md.topics["from-config"].partitions) == 3
    assert (data / "from-config-0").is_dir(), "data_dir from the config file not used"
    segs = [p for p in (data / "from-config-0").iterdir() if p.suffix == ".log"]
    assert len(segs) >= 1
    assert len(consume_all(b.bootstrap, "from-config", 3, expect=3000)) == 3000


def test_flags_override_config_file(broker_factory, tmp_path):
    cfg = tmp_path / "corestream.toml"
    cfg.write_text("node_id = 1\ndefault_partitions = 2\n")
    b = broker_factory(node_id=5, extra_args=["--config", str(cfg)])
    produce_all(b.bootstrap, "override", [(None, b"v")])
    md = clients.admin(b.bootstrap).list_topics(timeout=20)
    assert list(md.brokers) == [5], "--node-id should override node_id from the file"
    assert len(md.topics["override"].partitions) == 2, "default_partitions from the file ignored"


def test_default_data_dir_is_cwd_data(broker_factory):
    b = broker_factory(pass_data_dir=False)
    produce_all(b.bootstrap, "in-cwd", [(None, b"v")])
    assert (b.workdir / "data" / "in-cwd-0").is_dir()


def test_sigterm_with_open_connections(broker):
    """SIGTERM while clients hold idle connections and a long-poll fetch is
    parked still exits 0 within 20 s (stop() asserts it)."""
    from confluent_kafka import TopicPartition

    clients.create_topic(broker.bootstrap, "open-conns", 1)
    produce_all(broker.bootstrap, "open-conns", [(None, b"v")])
    c = clients.consumer(broker.bootstrap, **{"fetch.wait.max.ms": 10000})
    c.assign([TopicPartition("open-conns", 0, 1)])
    c.poll(1.0)
    raws = [broker.raw() for _ in range(5)]
    try:
        broker.stop()
    finally:
        for r in raws:
            r.close()
        c.close()
    broker.start()
    assert [r.value for r in consume_all(broker.bootstrap, "open-conns", 1, expect=1)] == [b"v"]


def test_second_broker_same_data_dir_refused(broker_factory):
    """Two daemons on one data dir would corrupt it: the second must refuse to
    start (a lock file), not serve."""
    a = broker_factory(name="first")
    b = broker_factory(name="second", start=False)
    b.data_dir = a.data_dir
    b.start(wait=False)
    try:
        rc = b.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("second broker on the same data dir kept running")
    b.expected_down = True
    assert rc != 0
    a.assert_alive()


# ---------------------------------------------------------------- admin CLI `corestream` (issue 7)


def cli_json(broker, *args: str):
    from test_ops import cli

    return json.loads(cli(broker, "--json", *args).stdout)


def test_cli_kafka_workflow_end_to_end_with_group_consume(broker):
    """Kafka's workflow with the CLI alone: a 3-partition topic, keyed lines
    with a separator, consume as a group (commits), describe the group with
    its lag, reset to earliest, and re-consume everything as the group."""
    from test_ops import cli

    topic, group = "cli-e2e", "cli-e2e-group"
    cli(broker, "topic", "create", topic, "--partitions", "3")
    lines = [f"k{i}|value-{i}" for i in range(30)]
    cli(broker, "produce", topic, "--key-separator", "|", stdin="\n".join(lines) + "\n")
    want = sorted(f"k{i}:value-{i}" for i in range(30))

    res = cli(broker, "consume", topic, "--group", group, "--from-beginning", "--max", "30",
              "--print-key", "--separator", ":")
    assert sorted(res.stdout.splitlines()) == want
    lag = cli_json(broker, "lag", group)
    assert lag["total_lag"] == 0 and len(lag["partitions"]) == 3, lag
    described = cli_json(broker, "group", "describe", group)[0]
    assert described["state"] == "Empty" and described["lag"]["total_lag"] == 0, described
    assert "LAG" in cli(broker, "group", "describe", group).stdout

    # nothing new: a group member that finds everything committed prints nothing
    res = cli(broker, "consume", topic, "--group", group, "--timeout-ms", "1500")
    assert res.stdout == ""

    plan = cli_json(broker, "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute")
    assert plan["executed"] and all(p["new_offset"] == 0 for p in plan["partitions"])
    assert cli_json(broker, "lag", group)["total_lag"] == 30

    # --max stops mid-way and commits what it printed: the next run goes on
    first = cli(broker, "consume", topic, "--group", group, "--max", "12", "--print-key", "--separator", ":")
    rest = cli(broker, "consume", topic, "--group", group, "--max", "18", "--print-key", "--separator", ":")
    again = first.stdout.splitlines() + rest.stdout.splitlines()
    assert sorted(again) == want, "each record exactly once over two runs"
    assert cli_json(broker, "lag", group)["total_lag"] == 0


def test_cli_consume_group_is_a_real_member(broker):
    """While `consume --group` runs, the coordinator lists it as the one
    member with every partition assigned (range assignor)."""
    import subprocess
    import time

    from test_ops import cli, cli_binary

    topic, group = "cli-member", "cli-member-group"
    cli(broker, "topic", "create", topic, "-p", "3")
    proc = subprocess.Popen(
        [str(cli_binary()), "-b", broker.bootstrap, "consume", topic, "--group", group, "--timeout-ms", "8000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline, g = time.monotonic() + 20, {}
        while time.monotonic() < deadline:
            g = cli_json(broker, "group", "describe", group)[0]
            if g["state"] == "Stable" and g["members"]:
                break
            time.sleep(0.2)
        assert g["state"] == "Stable" and g["protocol"] == "range", g
        [m] = g["members"]
        assert m["client_id"] == "corestream-cli", m
        assert m["assignment"] == [{"topic": topic, "partitions": [0, 1, 2]}], m
        cli(broker, "produce", topic, "--partition", "1", stdin="late\n")
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.splitlines() == ["late"], (out, err)
    # it left the group on exit, and committed what it printed
    g = cli_json(broker, "group", "describe", group)[0]
    assert g["state"] == "Empty" and g["lag"]["total_lag"] == 0, g


def test_cli_reset_offsets_to_datetime(broker):
    """--to-datetime: the first offset at or after the time (ListOffsets by
    timestamp); later than every record: the log end; dry run by default."""
    from test_ops import cli, commit_offsets

    topic, group = "cli-datetime", "cli-datetime-group"
    clients.create_topic(broker.bootstrap, topic, 1)
    t0 = 1_790_000_000_000  # 2026-09-21T14:13:20Z
    produce_all(broker.bootstrap, topic, [(None, b"old-%d" % i, 0, t0 + i) for i in range(10)])
    produce_all(broker.bootstrap, topic, [(None, b"new-%d" % i, 0, t0 + 3_600_000 + i) for i in range(5)])
    commit_offsets(broker.bootstrap, group, topic, {0: 15})

    def plan(when: str, *extra: str) -> dict:
        return cli_json(broker, "group", "reset-offsets", group, "--topic", topic, "--to-datetime", when, *extra)

    dry = plan("2026-09-21T14:43:20Z")  # t0 + 30 min
    assert dry["executed"] is False
    assert dry["partitions"] == [{"partition": 0, "current_offset": 15, "new_offset": 10}]
    assert cli_json(broker, "lag", group)["total_lag"] == 0, "a dry run commits nothing"
    # the same instant in another zone, and with milliseconds
    assert plan("2026-09-21T16:43:20.000+02:00")["partitions"][0]["new_offset"] == 10
    assert plan("2026-09-21T14:13:20.005Z")["partitions"][0]["new_offset"] == 5
    assert plan("2030-01-01")["partitions"][0]["new_offset"] == 15
    assert plan("2020-01-01")["partitions"][0]["new_offset"] == 0
    assert plan("2026-09-21T14:43:20Z", "--execute")["executed"] is True
    assert cli_json(broker, "lag", group)["total_lag"] == 5

    def reset(*target: str) -> int:
        answer = cli_json(broker, "group", "reset-offsets", group, "--topic", topic, *target)
        return answer["partitions"][0]["new_offset"]

    assert reset("--to-latest") == 15 and reset("--to-earliest") == 0
    assert reset("--to-offset", "7") == 7 and reset("--to-offset", "99") == 15
    assert reset("--shift-by", "-3") == 7 and reset("--shift-by", "+30") == 15
    res = cli(broker, "group", "reset-offsets", group, "--topic", topic, "--to-datetime", "yesterday", check=False)
    assert res.returncode == 2 and "ISO-8601" in res.stderr, res.stderr


def test_cli_cluster_info_config_get_set_delete_and_produce_options(broker):
    from test_ops import cli

    info = cli_json(broker, "cluster", "info")
    assert info["controller_id"] == 0 and info["cluster_id"], info
    [b] = info["brokers"]
    assert b["port"] == broker.port and any(a["api"] == "JoinGroup" for a in b["apis"]), b
    # a single node is its own one-voter quorum, with no Raft log
    q = info["quorum"]
    assert (q["leader_id"], q["term"], [v["id"] for v in q["voters"]]) == (0, 0, [0]), q
    assert [s["state"] for s in info["broker_states"]] == ["registered"], info
    text = cli(broker, "cluster", "info").stdout
    assert text.startswith(f"cluster {info['cluster_id']}, controller 0, 1 broker(s)") and "Produce" in text

    topic = "cli-config"
    cli(broker, "topic", "create", topic, "-p", "3")
    cli(broker, "config", "set", "--topic", topic, "retention.ms=3600000", "segment.ms=600000")
    got = cli_json(broker, "config", "get", "--topic", topic, "retention.ms", "segment.ms")
    assert {(c["name"], c["value"], c["source"]) for c in got} == {
        ("retention.ms", "3600000", "DYNAMIC_TOPIC_CONFIG"),
        ("segment.ms", "600000", "DYNAMIC_TOPIC_CONFIG"),
    }, got
    cli(broker, "config", "delete", "--topic", topic, "retention.ms")
    [entry] = cli_json(broker, "config", "get", "--topic", topic, "retention.ms")
    assert entry["source"] != "DYNAMIC_TOPIC_CONFIG", entry
    cli(broker, "topic", "alter-partitions", topic, "--partitions", "5")
    [described] = cli_json(broker, "topic", "describe", topic)
    assert [p["partition"] for p in described["partitions"]] == [0, 1, 2, 3, 4]
    broker_cfg = cli_json(broker, "config", "get", "--broker", "0")
    assert any(c["name"] == "log.retention.hours" for c in broker_cfg), broker_cfg
    # Kafka's dynamic broker keys change at run time; read-only ones are
    # refused with a Kafka error (exit status 1).
    cli(broker, "config", "set", "--broker", "0", "log.retention.hours=1")
    [entry] = cli_json(broker, "config", "get", "--broker", "0", "log.retention.hours")
    assert (entry["value"], entry["source"]) == ("1", "DYNAMIC_BROKER_CONFIG"), entry
    res = cli(broker, "config", "set", "--broker", "0", "log.retention.check.interval.ms=1000", check=False)
    assert res.returncode == 1, "a read-only broker key is refused with a Kafka error"
    res = cli(broker, "config", "set", "--topic", topic, "no-equals-sign", check=False)
    assert res.returncode == 2, res.stderr

    # produce: --partition and headers; consume: every print format
    cli(broker, "produce", topic, "--partition", "2", "-H", "trace=abc", "-H", "n=1", stdin="a\nb\n")
    recs = clients.consume_all(broker.bootstrap, topic, [2], expect=2)
    assert [(r.partition, r.offset, r.value) for r in recs] == [(2, 0, b"a"), (2, 1, b"b")]
    assert all(r.headers == (("trace", b"abc"), ("n", b"1")) for r in recs), recs[0].headers
    res = cli(broker, "consume", topic, "--from-beginning", "--max", "2", "--print-partition",
              "--print-offset", "--print-timestamp", "--print-key")
    rows = [line.split("\t") for line in res.stdout.splitlines()]
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [("2", "0", "null", "a"), ("2", "1", "null", "b")]
    assert all(abs(int(r[2]) - recs[0].timestamp_ms) < 60_000 for r in rows), rows
    res = cli(broker, "consume", topic, "--partition", "2", "--offset", "1", "--max", "1")
    assert res.stdout == "b\n"
    res = cli(broker, "consume", topic, "--group", "g", "--partition", "0", check=False)
    assert res.returncode == 2, "--group decides the partitions itself"


@pytest.mark.parametrize("cli_leads", [False, True], ids=["librdkafka-leads", "cli-leads"])
def test_cli_consume_group_shares_partitions_with_librdkafka_member(broker, cli_leads):
    """The CLI member and a librdkafka consumer (range assignor) in one
    group: two members, the four partitions split two and two, and each
    record produced afterwards reaches exactly one of them. Both start at
    the earliest offset where the group has none, so a record produced
    before a member looked up its position is not skipped. The first to
    join leads and assigns: librdkafka's range assignor, or the CLI's,
    which then reads librdkafka's subscription."""
    import threading
    import time

    from test_ops import cli, cli_binary

    topic, group = "cli-shared", "cli-shared-group"
    cli(broker, "topic", "create", topic, "-p", "4")
    c = clients.consumer(broker.bootstrap, **{
        "group.id": group, "partition.assignment.strategy": "range", "enable.partition.eof": False,
        "auto.offset.reset": "earliest", "enable.auto.commit": True, "auto.commit.interval.ms": 200,
    })
    got_librdkafka: list[tuple[int, bytes]] = []
    stop = threading.Event()

    def poll_loop() -> None:
        while not stop.is_set():
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                got_librdkafka.append((m.partition(), m.value()))

    def wait_stable(members: int) -> dict:
        deadline, g = time.monotonic() + 30, {}
        while time.monotonic() < deadline:
            g = cli_json(broker, "group", "describe", group)[0]
            if g["state"] == "Stable" and len(g["members"]) == members:
                break
            time.sleep(0.2)
        return g

    def start_cli() -> subprocess.Popen:
        return subprocess.Popen(
            [str(cli_binary()), "-b", broker.bootstrap, "--json", "consume", topic, "--group", group,
             "--from-beginning", "--timeout-ms", "9000"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    poller = threading.Thread(target=poll_loop, daemon=True)
    proc = None
    try:
        if cli_leads:
            proc = start_cli()
            wait_stable(1)
        c.subscribe([topic])
        poller.start()
        if not cli_leads:
            wait_stable(1)
            proc = start_cli()
        g = wait_stable(2)
        assert g["state"] == "Stable" and len(g["members"]) == 2 and g["protocol"] == "range", g
        owned = {m["client_id"]: sorted(p for a in m["assignment"] for p in a["partitions"]) for m in g["members"]}
        cli_parts = owned.pop("corestream-cli")
        [other] = owned.values()
        assert len(cli_parts) == 2 and sorted(cli_parts + other) == [0, 1, 2, 3], g
        produce_all(broker.bootstrap, topic, [(None, b"p%d" % p, p) for p in range(4)])
        out, err = proc.communicate(timeout=40)
        assert proc.returncode == 0, err
        printed = sorted((r["partition"], r["value"]) for r in map(json.loads, out.splitlines()))
        assert printed == [(p, f"p{p}") for p in cli_parts], (printed, err)
        last_join = [line for line in err.splitlines() if line.startswith(f"joined group {group} as ")][-1]
        role = "leader" if cli_leads else "member"
        assert last_join.startswith(f"joined group {group} as {role} ") and f"{cli_parts}" in last_join, err
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(got_librdkafka) < 2:
            time.sleep(0.1)
        assert sorted(got_librdkafka) == [(p, b"p%d" % p) for p in other]
    finally:
        stop.set()
        if poller.is_alive():
            poller.join(10)
        c.close()
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
