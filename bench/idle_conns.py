#!/usr/bin/env python3
"""Open N idle Kafka connections and hold them until stdin closes.

Each connection sends one ApiVersions v0 request and reads its answer (so
the broker has accepted it and set it up as a client, not just a socket in
the accept queue), then stays silent. The connections come from several
loopback source addresses (127.0.0.2, 127.0.0.3, ...) at most PER_SOURCE_MAX
each, so a broker's per-IP connection cap (corestreamd: 1,000, Kafka's
max.connections.per.ip) is not what is measured.

Prints "ready N" on stdout once every connection is open (or "failed K of N:
reason" and exits 1), then waits for EOF on stdin and closes them all.

With --first-request-bytes B each connection first sends a Produce v3 of
about B bytes (one batch, to an illegal topic name, so nothing is created
or stored) and reads its answer: what an idle connection costs after a large request.

Usage: bench/idle_conns.py HOST PORT N [--first-request-bytes B]
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import kafka_raw  # noqa: E402

# Connections per loopback source address.
PER_SOURCE_MAX = 900
# Give up on the whole run after this many seconds.
OPEN_TIMEOUT_S = 120.0
# Per-socket timeout while opening, seconds.
SOCKET_TIMEOUT_S = 10.0


def api_versions_v0(correlation_id: int) -> bytes:
    client_id = b"idle"
    body = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    return struct.pack(">i", len(body)) + body


def produce_v3(correlation_id: int, request_bytes: int) -> bytes:
    """A Produce v3 of about `request_bytes` to an illegal topic name."""
    client_id = b"idle"
    topic = b"idle conns: no such topic"  # illegal: never auto-created
    batch = kafka_raw.record_batch_v2([(None, b"x" * max(0, request_bytes - 200))])
    body = (
        struct.pack(">hhih", 0, 3, correlation_id, len(client_id)) + client_id
        + struct.pack(">hhi", -1, 1, 30_000)
        + struct.pack(">ih", 1, len(topic)) + topic
        + struct.pack(">iii", 1, 0, len(batch)) + batch
    )
    return struct.pack(">i", len(body)) + body


def read_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed by the broker")
        buf += chunk
    return buf


def open_one(host: str, port: int, i: int, first_request: bytes | None) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(SOCKET_TIMEOUT_S)
    s.bind((f"127.0.0.{2 + i // PER_SOURCE_MAX}", 0))
    s.connect((host, port))
    s.sendall(api_versions_v0(i))
    (size,) = struct.unpack(">i", read_exact(s, 4))
    read_exact(s, size)
    if first_request:
        s.sendall(first_request)
        (size,) = struct.unpack(">i", read_exact(s, 4))
        read_exact(s, size)
    return s


def main() -> None:
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    first_request = None
    if sys.argv[4:5] == ["--first-request-bytes"]:
        first_request = produce_v3(1, int(sys.argv[5]))
    socks = []
    deadline = time.monotonic() + OPEN_TIMEOUT_S
    try:
        for i in range(n):
            if time.monotonic() > deadline:
                raise TimeoutError(f"not all open within {OPEN_TIMEOUT_S:.0f} s")
            socks.append(open_one(host, port, i, first_request))
    except OSError as e:
        print(f"failed {n - len(socks)} of {n}: {e}", flush=True)
        sys.exit(1)
    print(f"ready {len(socks)}", flush=True)
    sys.stdin.read()
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
