"""The delay/loss proxy against a local echo server (no broker, ~1 s)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from nemesis.proxy import TcpProxy

DELAY_S = 0.2


@pytest.fixture
def echo_server():
    srv = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve_one(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()
    stop.set()
    t.join()
    srv.close()


@pytest.fixture
def proxy(echo_server):
    p = TcpProxy(("127.0.0.1", 0), echo_server, seed=1).start()
    yield p
    p.stop()


def roundtrip(port: int, payload: bytes, timeout_s: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break  # what a cut or a drop looks like, as an empty read does
            if not chunk:
                break
            got += chunk
        return got


def test_proxy_forwards_bytes_both_ways_unchanged(proxy):
    payload = bytes(range(256)) * 1000
    assert roundtrip(proxy.port, payload) == payload
    assert proxy.connections == 1


def test_proxy_delay_adds_latency_each_way(proxy):
    started = time.monotonic()
    roundtrip(proxy.port, b"ping")
    fast_s = time.monotonic() - started
    proxy.delay_s = DELAY_S
    started = time.monotonic()
    assert roundtrip(proxy.port, b"ping") == b"ping"
    slow_s = time.monotonic() - started
    assert slow_s >= 2 * DELAY_S, f"round trip {slow_s:.3f}s, want >= {2 * DELAY_S}s (delay both ways)"
    assert slow_s > fast_s + DELAY_S


def test_proxy_drop_resets_the_connection(proxy):
    proxy.drop_per_chunk = 1.0
    assert roundtrip(proxy.port, b"lost") == b""
    assert proxy.dropped == 1
    proxy.heal()
    assert roundtrip(proxy.port, b"back") == b"back"


def test_proxy_cut_closes_open_connections_and_refuses_new_until_healed(proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        s.sendall(b"a")
        assert s.recv(10) == b"a"
        proxy.cut()
        assert s.recv(10) == b""  # closed by the proxy
    assert roundtrip(proxy.port, b"refused") == b""
    proxy.heal()
    assert roundtrip(proxy.port, b"again") == b"again"
