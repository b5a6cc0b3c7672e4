"""Operations: sd_notify, signals, config errors, the admin HTTP port
(/metrics, health, lag) and the `corestream` admin CLI against a real broker."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

import clients
from clients import consume_all, create_topic, produce_all
from conftest import REPO_ROOT, BrokerError, broker_binary, free_port

http_wait_s_max = 20.0
cli_wait_s_max = 60.0


def cli_binary() -> Path:
    path = Path(os.environ.get("CORESTREAM_CLI", broker_binary().parent / "corestream"))
    return path if path.is_absolute() else REPO_ROOT / path


def cli(broker, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(
        [str(cli_binary()), "-b", broker.bootstrap, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=cli_wait_s_max,
    )
    if check:
        assert res.returncode == 0, f"corestream {' '.join(args)} -> {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res


def http_get(broker, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(broker.admin_url + path, timeout=http_wait_s_max) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def http_get_with(broker, path: str, headers: dict[str, str]) -> tuple[int, str]:
    req = urllib.request.Request(broker.admin_url + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=http_wait_s_max) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric_samples(broker) -> dict[tuple[str, frozenset], float]:
    status, text = http_get(broker, "/metrics")
    assert status == 200, text
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def commit_offsets(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commits offsets for a group without joining it (manual assignment)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        c.close()


# ---------------------------------------------------------------- admin HTTP


def test_metrics_show_partition_hwm_and_group_lag(broker):
    topic, group = "ops-metrics", "ops-lag-group"
    create_topic(broker.bootstrap, topic, 2)
    produce_all(broker.bootstrap, topic, [(None, b"v%d" % i, 0) for i in range(10)])
    produce_all(broker.bootstrap, topic, [(None, b"w%d" % i, 1) for i in range(5)])
    commit_offsets(broker.bootstrap, group, topic, {0: 4, 1: 5})

    samples = metric_samples(broker)

    def value(name: str, **labels) -> float:
        matches = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
        assert len(matches) == 1, f"{name}{labels}: {len(matches)} samples"
        return matches[0]

    assert value("corestream_partition_high_watermark", topic=topic, partition="0") == 10
    assert value("corestream_partition_high_watermark", topic=topic, partition="1") == 5
    assert value("corestream_partition_log_start_offset", topic=topic, partition="0") == 0
    assert value("corestream_partition_size_bytes", topic=topic, partition="0") > 0
    assert value("corestream_group_lag", group=group, topic=topic, partition="0") == 6
    assert value("corestream_group_lag", group=group, topic=topic, partition="1") == 0
    names = {n for n, _ in samples}
    for family in [
        "corestream_requests_total",
        "corestream_request_latency_seconds_bucket",
        "corestream_bytes_received_total",
        "corestream_bytes_sent_total",
        "corestream_connections_open",
        "corestream_cross_shard_messages_total",
    ]:
        assert family in names, f"{family} missing from /metrics"
    produced = sum(v for (n, ls), v in samples.items() if n == "corestream_requests_total" and ("api", "Produce") in ls)
    assert produced >= 1

    status, body = http_get(broker, f"/v1/groups/{group}/lag")
    assert status == 200, body
    lag = json.loads(body)
    assert lag["total_lag"] == 6
    # one fresh commit: no window yet to judge by (docs/LAG_STATUS.md)
    assert lag["status"] == "OK" and all(p["status"] == "OK" for p in lag["partitions"])
    status, body = http_get(broker, "/v1/groups")
    assert status == 200 and group in json.loads(body)["groups"], body


def test_health_and_ready_endpoints(broker):
    assert http_get(broker, "/v1/health") == (200, "ok\n")
    assert http_get(broker, "/healthz")[0] == 200
    assert http_get(broker, "/v1/ready") == (200, "ready\n")
    assert http_get(broker, "/no-such-page")[0] == 404
    # A request head that never ends must not hold the broker up.
    with socket.create_connection(("127.0.0.1", broker.admin_port), timeout=10) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\n")
        assert http_get(broker, "/v1/health")[0] == 200


ADMIN_TOKEN = "admin-token-0123456789abcdef"


def test_admin_token_required_on_every_route_but_the_probes(broker_factory, tmp_path):
    """With admin_token_file, /metrics, the lag routes and the console's
    API answer 401 without `Authorization: Bearer <token>` (or with a wrong
    one); health and readiness probes and the console's page stay open; the
    token is never logged."""
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN_TOKEN + "\n")
    b = broker_factory(extra_args=["--admin-token-file", str(token_file)])
    create_topic(b.bootstrap, "token-guarded", 1)
    bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for path in ("/metrics", "/v1/groups", "/v1/groups/g/lag", "/v1/overview", "/v1/topics"):
        assert http_get_with(b, path, {})[0] == 401, path
        assert http_get_with(b, path, {"Authorization": "Bearer " + "x" * len(ADMIN_TOKEN)})[0] == 401, path
        status, body = http_get_with(b, path, bearer)
        assert status in (200, 404), (path, status, body)  # g has no lag: 404 with the token
    status, body = http_get_with(b, "/v1/topics", bearer)
    assert status == 200 and "token-guarded" in body, body
    assert "corestream_connections_open" in http_get_with(b, "/metrics", bearer)[1]
    for path in ("/v1/health", "/v1/ready", "/ui/"):
        assert http_get_with(b, path, {})[0] == 200, path
    b.stop()
    assert ADMIN_TOKEN not in b.log_tail()


def test_admin_token_file_too_short_refuses_start(broker_factory, tmp_path):
    token_file = tmp_path / "admin-token"
    token_file.write_text("short\n")
    b = broker_factory(start=False, extra_args=["--admin-token-file", str(token_file)])
    with pytest.raises(BrokerError, match="at least 16 bytes"):
        b.start()


def test_metrics_and_lag_refuse_a_rebound_host_on_loopback(broker):
    """DNS rebinding: a page whose name re-resolves to 127.0.0.1 must not
    read the metrics (they name topics and groups); probes stay open."""
    for path in ("/metrics", "/v1/groups", "/v1/groups/g/lag"):
        status, body = http_get_with(broker, path, {"Host": "evil.example:9644"})
        assert status == 403 and "not loopback" in body, (path, status, body)
    assert http_get_with(broker, "/v1/health", {"Host": "evil.example:9644"})[0] == 200
    assert http_get_with(broker, "/metrics", {"Host": "localhost:9644"})[0] == 200


def test_admin_port_taken_refuses_start(broker_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        taken = s.getsockname()[1]
        b = broker_factory(start=False)
        b.admin_port = taken
        b.start(wait=False)
        rc = b.proc.wait(timeout=20)
        b.expected_down = True
        assert rc != 0
        assert "admin" in b.log_tail()


def test_fixture_restart_moves_the_admin_port_when_it_was_taken(broker_factory):
    """The fixture's own guard: between a stop and a restart another socket
    (in the full run, a client's ephemeral port) may take the admin port the
    broker had. The restart then uses a new one instead of failing the test
    that merely restarted."""
    b = broker_factory()
    b.stop()
    old = b.admin_port
    with socket.socket() as s:
        s.bind(("127.0.0.1", old))
        s.listen(1)
        b.start()
    assert b.admin_port != old
    assert "cannot listen on admin address" in b.log_tail()
    # /v1/ready turns 200 just after the Kafka port answers (start-up frees
    # its temporaries in between), so it is waited for, not sampled once.
    clients.wait_for("/v1/ready", lambda: http_get(b, "/v1/ready") == (200, "ready\n"), timeout_s=10)


# ---------------------------------------------------------------- signals and systemd


def test_sighup_reloads_log_level_and_keeps_serving(broker_factory, tmp_path):
    cfg = tmp_path / "corestream.toml"
    cfg.write_text('log_level = "info"\n')
    b = broker_factory(extra_args=["--config", str(cfg)])
    cfg.write_text('log_level = "debug"\nshutdown_timeout_ms = 5000\n')
    b.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "config reloaded" not in b.log_tail() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert 'log_level="debug"' in b.log_tail()
    cfg.write_text("log_level = \nbogus = 1\n")
    b.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "config refused" not in b.log_tail() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "config refused" in b.log_tail()
    b.assert_alive()
    create_topic(b.bootstrap, "after-hup", 1)
    produce_all(b.bootstrap, "after-hup", [(None, b"x")])
    assert [r.value for r in consume_all(b.bootstrap, "after-hup", 1, expect=1)] == [b"x"]


class NotifyListener:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self) -> None:
        # sun_path is 108 bytes: keep the path short, not under tmp_path
        self.dir = tempfile.mkdtemp(prefix="csn")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                continue

    def keys(self) -> list[str]:
        """Each datagram's assignments, flattened in arrival order."""
        return [line for m in list(self.messages) for line in m.splitlines()]

    def close(self) -> None:
        self.stop = True
        self.thread.join(timeout=5)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def test_sd_notify_ready_status_watchdog_stopping(broker_factory, monkeypatch):
    listener = NotifyListener()
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", listener.path)
        monkeypatch.setenv("WATCHDOG_USEC", "400000")
        b = broker_factory()
        deadline = time.monotonic() + 10
        while "WATCHDOG=1" not in listener.keys() and time.monotonic() < deadline:
            time.sleep(0.05)
        b.stop()
        deadline = time.monotonic() + 5
        while "STOPPING=1" not in listener.keys() and time.monotonic() < deadline:
            time.sleep(0.05)
        keys = listener.keys()
        assert "READY=1" in keys, keys
        first_status = next(i for i, k in enumerate(keys) if k.startswith("STATUS=recovering"))
        ready = keys.index("READY=1")
        watchdog = keys.index("WATCHDOG=1")
        stopping = keys.index("STOPPING=1")
        assert first_status < ready < watchdog < stopping, keys
        assert keys.count("READY=1") == 1
    finally:
        listener.close()


def test_sigterm_under_produce_load_loses_no_acked_record(broker):
    topic = "ops-sigterm-load"
    create_topic(broker.bootstrap, topic, 3)
    acked: list[tuple[int, int, bytes]] = []
    stop = threading.Event()

    def produce_loop() -> None:
        p = clients.producer(broker.bootstrap, **{"message.timeout.ms": 5000, "retries": 0})

        def on_delivery(err, msg):
            if err is None:
                acked.append((msg.partition(), msg.offset(), msg.value()))

        i = 0
        while not stop.is_set():
            try:
                p.produce(topic, value=b"r%d" % i, on_delivery=on_delivery)
                i += 1
            except BufferError:
                pass
            p.poll(0.001)
        p.flush(10)

    t = threading.Thread(target=produce_loop)
    t.start()
    try:
        deadline = time.monotonic() + 20
        while len(acked) < 500 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(acked) >= 500, "producer made no progress"
        broker.stop()
    finally:
        stop.set()
        t.join(timeout=30)
    broker.start()
    stored = {(r.partition, r.offset): r.value for r in consume_all(broker.bootstrap, topic, 3)}
    missing = [(p, o) for p, o, v in acked if stored.get((p, o)) != v]
    assert not missing, f"{len(missing)} acknowledged records lost or changed, first: {missing[:5]}"


def test_sigterm_with_consumers_fetching_across_shards_drains_without_timeout(broker):
    """SIGTERM while consumers long-poll partitions of both shards: a Fetch
    handled on one shard waits on a partition of the other, so each shard
    must keep answering the other's messages until all have drained (they
    once stopped doing so, and the stop sat out the whole drain limit with
    Fetches in flight)."""
    topic = "ops-sigterm-fetch"
    create_topic(broker.bootstrap, topic, 4)
    produce_all(broker.bootstrap, topic, [(None, b"r%d" % p, p) for p in range(4)])
    consumers = []
    try:
        for i in range(3):
            c = clients.consumer(broker.bootstrap, **{"group.id": f"sigterm-fetch-{i}",
                                                      "fetch.wait.max.ms": 100})
            c.subscribe([topic])
            consumers.append(c)
        got = 0
        deadline = time.monotonic() + 30
        while got < 4 * len(consumers) and time.monotonic() < deadline:
            for c in consumers:
                m = c.poll(0.1)
                got += m is not None and m.error() is None
        assert got == 4 * len(consumers), f"consumers read {got} records"
        # They keep long-polling (nothing new arrives) while the broker stops.
        stopping = threading.Thread(target=broker.stop)
        stopping.start()
        while stopping.is_alive():
            for c in consumers:
                c.poll(0.05)
        stopping.join()
    finally:
        for c in consumers:
            c.close()
    log = broker.log_tail()
    assert "corestreamd stopped" in log
    assert "requests still in flight" not in log, log


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    "text, line, key",
    [
        ('listen = "127.0.0.1:1"\nbogus_key = 3\n', 2, "bogus_key"),
        ('node_id = 1\nshards = "two"\n', 2, "shards"),
        ("node_id = 1\n\nsegment_bytes = 5\n", 3, "segment_bytes"),
        ('log_level = "info,=["\n', 1, "log_level"),
    ],
)
def test_bad_config_names_file_line_key(tmp_path, text, line, key):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    res = subprocess.run(
        [str(broker_binary()), "--config", str(cfg), "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 2, res.stderr
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, res.stderr
    assert f"{cfg}:{line}: key {key}:" in lines[0], lines[0]


def test_env_overrides_config_file(broker_factory, tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text("default_partitions = 2\n")
    monkeypatch.setenv("CORESTREAM_DEFAULT_PARTITIONS", "3")
    b = broker_factory(extra_args=["--config", str(cfg)])
    produce_all(b.bootstrap, "env-auto", [(None, b"x")])
    clients.wait_for_partitions(b.bootstrap, "env-auto", 3)


def test_systemd_unit_verifies(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    unit = (REPO_ROOT / "systemd/corestreamd.service").read_text()
    # verify checks that ExecStart exists: point it at the binary under test
    unit = unit.replace("/usr/local/bin/corestreamd", str(broker_binary()))
    path = tmp_path / "corestreamd.service"
    path.write_text(unit)
    res = subprocess.run([analyze, "verify", "--man=no", str(path)], capture_output=True, text=True, timeout=60)
    problems = [l for l in (res.stdout + res.stderr).splitlines() if "corestreamd.service" in l]
    assert res.returncode == 0 and not problems, res.stdout + res.stderr


# ---------------------------------------------------------------- admin CLI


def test_cli_topics_produce_consume_and_group_lag(broker):
    topic, group = "cli-topic", "cli-group"
    cli(broker, "topics", "create", topic, "--partitions", "3")
    listed = json.loads(cli(broker, "--json", "topics", "list").stdout)
    assert {"name": topic, "partitions": 3, "internal": False} in listed
    assert topic in cli(broker, "topics", "list").stdout

    lines = [f"k{i}:value-{i}" for i in range(30)]
    res = cli(broker, "produce", topic, "--key-separator", ":", stdin="\n".join(lines) + "\n")
    assert "produced 30 records" in res.stderr

    res = cli(broker, "consume", topic, "--from-beginning", "--max", "30", "--print-key", "--separator", "=")
    got = sorted(res.stdout.splitlines())
    assert got == sorted(f"k{i}=value-{i}" for i in range(30))
    # same key, same partition: Kafka's murmur2 partitioner
    recs = consume_all(broker.bootstrap, topic, 3, expect=30)
    by_key = {}
    for r in recs:
        by_key.setdefault(r.key, set()).add(r.partition)
    assert all(len(ps) == 1 for ps in by_key.values())

    described = json.loads(cli(broker, "--json", "topics", "describe", topic).stdout)
    ends = {p["partition"]: p["log_end_offset"] for p in described[0]["partitions"]}
    assert sum(ends.values()) == 30 and len(ends) == 3

    commit_offsets(broker.bootstrap, group, topic, {p: 0 for p in range(3)})
    lag = json.loads(cli(broker, "--json", "lag", group).stdout)
    assert lag["total_lag"] == 30
    assert group in cli(broker, "groups", "list").stdout
    text = cli(broker, "groups", "describe", group).stdout
    assert "LAG" in text and topic in text
    assert json.loads(cli(broker, "--json", "groups", "lag", group).stdout)["total_lag"] == 30

    res = cli(broker, "consume", topic, "--partition", "0", "--offset", "latest", "--timeout-ms", "500")
    assert res.stdout == ""
    versions = json.loads(cli(broker, "--json", "api-versions").stdout)
    assert any(a["api"] == "Produce" for a in versions[0]["apis"])

    cli(broker, "groups", "delete", group)
    cli(broker, "topics", "delete", topic)
    assert topic not in cli(broker, "topics", "list").stdout


def test_cli_group_lag_reset_offsets_and_reconsume(broker):
    """Kafka's workflow: keyed lines, consume as a group and commit, describe
    the lag, reset to earliest (dry run, then --execute), re-consume all."""
    topic, group = "cli-reset", "cli-reset-group"
    cli(broker, "topics", "create", topic, "--partitions", "3")
    lines = [f"k{i}:value-{i}" for i in range(30)]
    cli(broker, "produce", topic, "--key-separator", ":", stdin="\n".join(lines) + "\n")

    def consume_group(expect: int) -> list[tuple[str, str]]:
        c = Consumer(
            {
                "bootstrap.servers": broker.bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        got = []
        try:
            c.subscribe([topic])
            deadline = time.monotonic() + cli_wait_s_max
            while len(got) < expect and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is None or m.error():
                    continue
                got.append((m.key().decode(), m.value().decode()))
            if got:
                c.commit(asynchronous=False)
            # the group is Stable while a member is in it: refuse to reset
            res = cli(broker, "groups", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute", check=False)
            assert res.returncode == 1, res
            assert "not Empty" in res.stderr
        finally:
            c.close()
        return got

    first = consume_group(30)
    assert sorted(first) == sorted((f"k{i}", f"value-{i}") for i in range(30))
    lag = json.loads(cli(broker, "--json", "lag", group).stdout)
    assert lag["total_lag"] == 0 and len(lag["partitions"]) == 3
    text = cli(broker, "groups", "describe", group).stdout
    assert "LAG" in text and "Empty" in text

    # dry run by default: prints the plan, commits nothing
    res = cli(broker, "--json", "groups", "reset-offsets", group, "--topic", topic, "--to-earliest")
    plan = json.loads(res.stdout)
    assert plan["executed"] is False and "dry run" in res.stderr
    assert all(p["new_offset"] == 0 for p in plan["partitions"]) and len(plan["partitions"]) == 3
    assert json.loads(cli(broker, "--json", "lag", group).stdout)["total_lag"] == 0

    res = cli(broker, "--json", "groups", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute")
    assert json.loads(res.stdout)["executed"] is True
    assert json.loads(cli(broker, "--json", "lag", group).stdout)["total_lag"] == 30

    again = consume_group(30)
    assert sorted(again) == sorted(first)

    # --shift-by and --to-offset clamp into [log start, log end]
    plan = json.loads(cli(broker, "--json", "groups", "reset-offsets", group, "--topic", topic, "--shift-by", "-1000").stdout)
    assert all(p["new_offset"] == 0 for p in plan["partitions"])

    # records delete: the partition's log start moves to --before
    ends = {p["partition"]: p["current_offset"] for p in plan["partitions"]}
    part = max(ends, key=ends.get)
    assert ends[part] >= 2
    res = json.loads(cli(broker, "--json", "records", "delete", "--topic", topic, "--partition", str(part), "--before", "2").stdout)
    assert res == {"topic": topic, "partition": part, "low_watermark": 2}
    plan = json.loads(cli(broker, "--json", "groups", "reset-offsets", group, "--topic", topic, "--to-earliest").stdout)
    assert {p["partition"]: p["new_offset"] for p in plan["partitions"]}[part] == 2
    recs = consume_all(broker.bootstrap, topic, [part], expect=ends[part] - 2)
    assert len(recs) == ends[part] - 2 and min(r.offset for r in recs) == 2

    cli(broker, "groups", "delete", group)
    cli(broker, "topics", "delete", topic)


def test_cli_errors_have_exit_codes(broker):
    res = cli(broker, "topics", "describe", "no-such-topic", check=False)
    assert res.returncode == 1 and "UnknownTopicOrPartition" in res.stderr, res.stderr
    cli(broker, "topics", "create", "dup", "-p", "1")
    res = cli(broker, "topics", "create", "dup", "-p", "1", check=False)
    assert res.returncode == 1 and "TopicAlreadyExists" in res.stderr, res.stderr
    res = subprocess.run(
        [str(cli_binary()), "-b", f"127.0.0.1:{free_port()}", "topics", "list"],
        capture_output=True, text=True, timeout=cli_wait_s_max,
    )
    assert res.returncode == 3, res.stderr


def test_cli_bench(broker):
    cli(broker, "topics", "create", "bench", "-p", "2")
    res = cli(broker, "--json", "bench", "produce", "--topic", "bench", "--records", "2000", "--no-progress")
    out = json.loads(res.stdout)
    assert out["mode"] == "produce" and out["records"] == 2000 and out["seconds"] > 0 and out["errors"] == 0


def test_cli_configs_describe_and_alter(broker):
    cli(broker, "topics", "create", "cfg-topic", "-p", "1")
    cli(broker, "configs", "alter", "--topic", "cfg-topic", "--set", "retention.ms=3600000")
    described = json.loads(cli(broker, "--json", "configs", "describe", "--topic", "cfg-topic").stdout)
    entry = next(c for c in described if c["name"] == "retention.ms")
    assert entry["value"] == "3600000" and entry["source"] == "DYNAMIC_TOPIC_CONFIG", entry
    cli(broker, "configs", "alter", "--topic", "cfg-topic", "--delete", "retention.ms")
    described = json.loads(cli(broker, "--json", "configs", "describe", "--topic", "cfg-topic").stdout)
    entry = next(c for c in described if c["name"] == "retention.ms")
    assert entry["source"] != "DYNAMIC_TOPIC_CONFIG", entry
    res = cli(broker, "configs", "alter", "--topic", "cfg-topic", "--set", "no.such.key=1", check=False)
    assert res.returncode == 1, res.stderr
