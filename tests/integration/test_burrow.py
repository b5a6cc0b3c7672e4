"""Burrow 1.2.1 as Debian 12 packages it, the consumer-lag tool the
operators' notes describe, against the broker: its cluster module with the
packaged client profile (sarama configured for Kafka 0.10.0, so ListOffsets
v0, which Kafka 4 removed and this broker serves) and its consumer module,
which reads `__consumer_offsets` itself, with a profile for Kafka 0.11.0
(Fetch v4: the packaged 0.10.0 fetches with Fetch v2, MessageSet v1, which
Kafka 4 and this broker refuse). Burrow must report the group's lag from the
offset records as Kafka 3.x writes them.

Burrow needs ZooKeeper for itself; Debian's `zookeeper` package (jars, no
service) is run in the foreground on a free port. Skips when Burrow or
ZooKeeper is not installed (scripts/test installs both).
"""

from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

import clients
from conftest import free_port

burrow_binary = Path("/usr/bin/Burrow")
zookeeper_jars = Path("/usr/share/java/zookeeper.jar")
zookeeper_ready_s_max = 30.0
burrow_lag_wait_s_max = 90.0
process_stop_s_max = 10.0
records_produced = 10
records_committed = 4


def start_zookeeper(workdir: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    data = workdir / "zk-data"
    data.mkdir()
    cfg = workdir / "zoo.cfg"
    cfg.write_text(
        f"tickTime=2000\ndataDir={data}\nclientPort={port}\nadmin.enableServer=false\n"
    )
    log = open(workdir / "zookeeper.log", "wb")
    proc = subprocess.Popen(
        ["java", "-cp", "/usr/share/java/*", "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def serving() -> bool:
        # It listens, and answers "ruok", before it grants sessions (Burrow
        # does not retry its first one): open a session, as Burrow will.
        connect = struct.pack(">iqiqi", 0, 0, 6000, 0, 16) + bytes(16)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(struct.pack(">i", len(connect)) + connect)
                answer = sock.recv(64)
        except OSError:
            return False
        # length, protocol version, timeout, then the session id
        return len(answer) >= 20 and struct.unpack(">q", answer[12:20])[0] != 0

    clients.wait_for("ZooKeeper to serve", serving, timeout_s=zookeeper_ready_s_max)
    return proc, port


def burrow_config(workdir: Path, zk_port: int, bootstrap: str, http_port: int) -> Path:
    confdir = workdir / "burrow"
    confdir.mkdir()
    (confdir / "burrow.toml").write_text(
        f"""
[general]
pidfile="{confdir}/burrow.pid"

[logging]
level="info"

[zookeeper]
servers=["127.0.0.1:{zk_port}"]
timeout=6
root-path="/burrow"

[client-profile.debian-default]
client-id="burrow-test"
kafka-version="0.10.0"

[client-profile.fetch-v4]
client-id="burrow-consumer"
kafka-version="0.11.0"

[cluster.local]
class-name="kafka"
servers=["{bootstrap}"]
client-profile="debian-default"
topic-refresh=5
offset-refresh=2

[consumer.local]
class-name="kafka"
cluster="local"
servers=["{bootstrap}"]
client-profile="fetch-v4"

[httpserver.default]
address="127.0.0.1:{http_port}"

[storage.default]
class-name="inmemory"
workers=2
intervals=10
expire-group=604800
min-distance=1
"""
    )
    return confdir


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=process_stop_s_max)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def http_json(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


def test_burrow_reports_group_lag(broker, tmp_path):
    if not burrow_binary.exists() or not zookeeper_jars.exists() or not shutil.which("java"):
        pytest.skip("Burrow or ZooKeeper not installed (Debian packages burrow, zookeeper)")
    topic, group = "burrow-lag", "burrow-lag-group"
    clients.create_topic(broker.bootstrap, topic, 1)
    clients.produce_all(broker.bootstrap, topic, [(None, b"v%d" % i, 0) for i in range(records_produced)])
    c = clients.consumer(broker.bootstrap, **{"group.id": group})
    c.assign([TopicPartition(topic, 0, 0)])
    c.commit(offsets=[TopicPartition(topic, 0, records_committed)], asynchronous=False)
    c.close()

    zookeeper, zk_port = start_zookeeper(tmp_path)
    http_port = free_port()
    confdir = burrow_config(tmp_path, zk_port, broker.bootstrap, http_port)
    out_path = tmp_path / "burrow.out"
    burrow = subprocess.Popen(
        [str(burrow_binary), "--config-dir", str(confdir)],
        stdout=open(out_path, "wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{http_port}/v3/kafka/local/consumer/{group}/lag"

        def lag_reported():
            body = http_json(url)
            status = (body or {}).get("status") or {}
            return status if status.get("totallag") == records_produced - records_committed else None

        status = clients.wait_for("Burrow to report the lag", lag_reported, timeout_s=burrow_lag_wait_s_max)
        [partition] = status["partitions"]
        assert (partition["topic"], partition["partition"]) == (topic, 0)
        assert partition["end"]["offset"] == records_committed
        assert partition["current_lag"] == records_produced - records_committed
    finally:
        stop(burrow)
        stop(zookeeper)
    # Offset records decode. Group metadata value v3 is skipped by Burrow
    # 1.2.1 with a warning (owner column empty), as against any Kafka
    # since 2.1.
    for line in out_path.read_text().splitlines():
        entry = json.loads(line) if line.startswith("{") else {}
        if entry.get("msg") == "failed to decode":
            assert entry.get("message_type") == "metadata", line
    assert "unsupported" not in broker.log_tail().lower(), broker.log_tail()[-4000:]
    broker.assert_alive()
