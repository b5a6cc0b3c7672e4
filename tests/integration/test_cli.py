"""The daemon's command line, config file and signals."""

from __future__ import annotations

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
