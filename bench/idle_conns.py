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

Usage: bench/idle_conns.py HOST PORT N
"""

from __future__ import annotations

import socket
import struct
import sys
import time

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


def read_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed by the broker")
        buf += chunk
    return buf


def open_one(host: str, port: int, i: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(SOCKET_TIMEOUT_S)
    s.bind((f"127.0.0.{2 + i // PER_SOURCE_MAX}", 0))
    s.connect((host, port))
    s.sendall(api_versions_v0(i))
    (size,) = struct.unpack(">i", read_exact(s, 4))
    read_exact(s, size)
    return s


def main() -> None:
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    socks = []
    deadline = time.monotonic() + OPEN_TIMEOUT_S
    try:
        for i in range(n):
            if time.monotonic() > deadline:
                raise TimeoutError(f"not all open within {OPEN_TIMEOUT_S:.0f} s")
            socks.append(open_one(host, port, i))
    except OSError as e:
        print(f"failed {n - len(socks)} of {n}: {e}", flush=True)
        sys.exit(1)
    print(f"ready {len(socks)}", flush=True)
    sys.stdin.read()
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
