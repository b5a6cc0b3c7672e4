#!/usr/bin/env python3
"""What TLS and SASL cost (issue 22's benchmark), on one corestreamd with
three listeners: PLAINTEXT, SSL and SASL_SSL (SCRAM-SHA-512).

1. Throughput: for each listener, librdkafka (confluent-kafka,
   `bench/loadgen.py produce|consume`, the suite's Python generator)
   produces --records records of 1 KiB to a fresh 6-partition topic
   (acks=all, 64 KiB batches, linger 5 ms, 5 requests in flight), then
   reads them straight back (hot consume: the tail cache). MB/s, the ack
   p99 (produce() to delivery report) and the broker's CPU-seconds per GB
   (`bench/cpu.py`, /proc): the generator shares the 2 cores, so the
   broker's CPU per GB is the figure that isolates what TLS costs it.
2. Connection set-up: full TCP + TLS 1.3 + ApiVersions + SaslHandshake +
   SaslAuthenticate x2 (SCRAM-SHA-512) handshakes, by 1 and by 4 client
   threads, against TCP + ApiVersions (PLAINTEXT), TCP + TLS + ApiVersions
   (SSL) and SASL_SSL with PLAIN. No TLS session resumption (each
   connection is a full handshake). The SCRAM client is written here from
   RFC 5802 and caches its salted password (the client's PBKDF2 is done
   once), so the figure is the broker's and the network's, not the
   client's key derivation. The user has Kafka's default 4096 iterations.
3. Shard stall during PLAIN logins: a `--shards 1` broker, a probe
   connection sending ApiVersions every 2 ms on PLAINTEXT while 2 threads
   log in back to back on SASL_PLAINTEXT (PLAIN, then SCRAM-SHA-512, then
   idle); the probe's round-trip p99 and max say how long the shard's
   executor was held. With --before BINARY, that binary (the build before
   PLAIN's PBKDF2 moved to the blocking pool) runs the same rounds.

Configurations are interleaved (the order rotates every round) and the
report gives medians over the rounds: on a shared machine a single run
says little. Prints a JSON summary; --json writes it to a file.

    .venv/bin/python bench/security.py [--rounds 5] [--records 200000]
        [--before target/ab/corestreamd-before-plain-offload]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests/integration"))
from brokers import Corestream, free_port  # noqa: E402
from cpu import CpuWindow  # noqa: E402

import kafka_raw  # noqa: E402

BENCH_USER = "bench"
# Kafka's default, and what --initial-user gives the user.
SCRAM_ITERATIONS = 4096
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_SSL")
RECORD_BYTES = 1024
PARTITIONS = 6
# Connection set-up: seconds per case and round, and client threads.
CONNECT_SECONDS = 3.0
CONNECT_THREADS = (1, 4)
# Stall probe: seconds per load, the probe's period.
PROBE_SECONDS = 4.0
PROBE_PERIOD_S = 0.002
LOGIN_THREADS = 2
SOCKET_TIMEOUT_S = 10.0
OPENSSL_TIMEOUT_S = 30
LOADGEN_TIMEOUT_S = 600

API_VERSIONS = 18
SASL_HANDSHAKE = 17
SASL_AUTHENTICATE = 36


# ---------------------------------------------------------------- broker


def make_pki(d: Path) -> None:
    """A CA and a server certificate for 127.0.0.1 (EC P-256, as the
    integration tests make them)."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=OPENSSL_TIMEOUT_S)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench-ca")
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=corestream-bench")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")


class SecureBroker(Corestream):
    """corestreamd with PLAINTEXT (`--listen`) plus the given TLS/SASL
    listeners and the SCRAM-SHA-512 user `bench`."""

    def __init__(self, binary: str, data_dir: str, log_path: str, shards: int, pki: Path,
                 protocols: tuple[str, ...]) -> None:
        super().__init__(binary, data_dir, log_path, shards)
        self.pki = pki
        self.ports = {"PLAINTEXT": self.port}
        for p in protocols:
            self.ports[p] = free_port()

    def command(self) -> list[str]:
        listeners = ",".join(f"{p}://127.0.0.1:{port}" for p, port in self.ports.items() if p != "PLAINTEXT")
        return [*super().command(), "--listeners", listeners,
                "--tls-cert", str(self.pki / "server.pem"), "--tls-key", str(self.pki / "server.key"),
                "--initial-user", BENCH_USER]


def client_conf(broker: SecureBroker, protocol: str, password: str) -> list[str]:
    conf = {"security.protocol": protocol}
    if "SSL" in protocol:
        conf["ssl.ca.location"] = str(broker.pki / "ca.pem")
    if protocol.startswith("SASL"):
        conf.update({"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": BENCH_USER, "sasl.password": password})
    return [f"{k}={v}" for k, v in conf.items()]


def create_topic(broker: SecureBroker, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)], request_timeout=30)[topic].result(timeout=60)


# ---------------------------------------------------------------- throughput


def loadgen(broker: SecureBroker, protocol: str, password: str, mode: str, topic: str, records: int,
            out: Path) -> dict:
    raw = out / f"{topic}-{mode}.json"
    cmd = [sys.executable, str(REPO / "bench/loadgen.py"), mode,
           "--bootstrap", f"127.0.0.1:{broker.ports[protocol]}", "--topic", topic,
           "--partitions", str(PARTITIONS), "--record-bytes", str(RECORD_BYTES),
           "--records", str(records), "--json", str(raw)]
    if mode == "produce":
        cmd += ["--acks", "all", "--batch-bytes", str(64 * 1024), "--linger-ms", "5", "--max-in-flight", "5"]
    for kv in client_conf(broker, protocol, password):
        cmd += ["--client-conf", kv]
    cpu = CpuWindow(broker.proc.pid)
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=LOADGEN_TIMEOUT_S)
    window = cpu.done()
    if p.returncode != 0:
        raise RuntimeError(f"loadgen {mode} over {protocol} failed: {p.stderr.strip()[-500:]}")
    result = json.loads(raw.read_text())
    if result.get("errors"):
        raise RuntimeError(f"loadgen {mode} over {protocol}: {result['errors']} errors")
    gb = result["bytes"] / 1e9
    return {
        "mb_per_s": result["mb_per_s"],
        "ack_p99_ms": (result.get("latency_ms") or {}).get("p99"),
        "ack_p50_ms": (result.get("latency_ms") or {}).get("p50"),
        "broker_cpu_s_per_gb": round(window.get("broker_cpu_s", 0.0) / gb, 2) if gb else None,
    }


# ---------------------------------------------------------------- raw client


def request(sock, key: int, version: int, correlation_id: int, body: bytes) -> bytes:
    """Sends one request (header v1) and returns the answer's body."""
    header = struct.pack(">hhi", key, version, correlation_id) + kafka_raw.Writer().string("bench-sec").bytes()
    frame = header + body
    sock.sendall(struct.pack(">i", len(frame)) + frame)
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    answer = recv_exact(sock, size)
    (got,) = struct.unpack(">i", answer[:4])
    if got != correlation_id:
        raise RuntimeError(f"answer to {got}, expected {correlation_id}")
    return answer[4:]


def recv_exact(sock, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("connection closed")
        out += chunk
    return bytes(out)


class ScramClient:
    """SCRAM-SHA-512 from RFC 5802, the salted password cached per
    (salt, iterations) so only the first login pays the client's PBKDF2."""

    def __init__(self, password: str) -> None:
        self.password = password.encode()
        self.salted: dict[tuple[bytes, int], bytes] = {}
        self.lock = threading.Lock()

    def salted_password(self, salt: bytes, iterations: int) -> bytes:
        with self.lock:
            key = (salt, iterations)
            if key not in self.salted:
                self.salted[key] = hashlib.pbkdf2_hmac("sha512", self.password, salt, iterations)
            return self.salted[key]

    def login(self, sock, correlation_id: int) -> None:
        bare = f"n={BENCH_USER},r={secrets.token_hex(12)}"
        first = authenticate(sock, correlation_id, f"n,,{bare}".encode()).decode()
        attrs = dict(a.split("=", 1) for a in first.split(","))
        salted = self.salted_password(base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha512).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth = f"{bare},{first},{without_proof}".encode()
        signature = hmac.new(hashlib.sha512(client_key).digest(), auth, hashlib.sha512).digest()
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()
        final = authenticate(sock, correlation_id + 1, f"{without_proof},p={proof}".encode())
        server_key = hmac.new(salted, b"Server Key", hashlib.sha512).digest()
        if final != b"v=" + base64.b64encode(hmac.new(server_key, auth, hashlib.sha512).digest()):
            raise RuntimeError("server signature does not verify")


def authenticate(sock, correlation_id: int, token: bytes) -> bytes:
    r = kafka_raw.Reader(request(sock, SASL_AUTHENTICATE, 1, correlation_id, kafka_raw.Writer().bytes_(token).bytes()))
    code, message = r.int16(), r.string()
    if code != 0:
        raise RuntimeError(f"SaslAuthenticate failed: {code} {message}")
    return r.bytes_() or b""


def handshake(sock, mechanism: str) -> None:
    r = kafka_raw.Reader(request(sock, SASL_HANDSHAKE, 1, 2, kafka_raw.Writer().string(mechanism).bytes()))
    if (code := r.int16()) != 0:
        raise RuntimeError(f"SaslHandshake {mechanism} failed: {code}")


def connect_once(port: int, tls: ssl.SSLContext | None, mechanism: str | None, scram: ScramClient,
                 password: str) -> float:
    """One connection set up to the point a client could send its first
    real request; its seconds."""
    began = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname="127.0.0.1")
        request(sock, API_VERSIONS, 0, 1, b"")
        if mechanism == "SCRAM-SHA-512":
            handshake(sock, mechanism)
            scram.login(sock, 3)
        elif mechanism == "PLAIN":
            handshake(sock, mechanism)
            authenticate(sock, 3, b"\0" + BENCH_USER.encode() + b"\0" + password.encode())
        return time.perf_counter() - began
    finally:
        sock.close()


def connect_rate(port: int, tls: ssl.SSLContext | None, mechanism: str | None, scram: ScramClient,
                 password: str, threads: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        mine: list[float] = []
        while time.perf_counter() < deadline:
            try:
                mine.append(connect_once(port, tls, mechanism, scram, password))
            except (OSError, RuntimeError) as e:
                with lock:
                    errors.append(str(e))
                return
        with lock:
            latencies.extend(mine)

    began = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"connection set-up failed: {errors[0]}")
    latencies.sort()
    return {
        "per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1e3 * latencies[len(latencies) // 2], 3),
        "p99_ms": round(1e3 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 3),
    }


# ---------------------------------------------------------------- stall probe


def probe_during(broker: SecureBroker, load: str, scram: ScramClient, password: str, seconds: float) -> dict:
    """ApiVersions round trips on one PLAINTEXT connection every
    PROBE_PERIOD_S while LOGIN_THREADS log in with `load` on
    SASL_PLAINTEXT (or nothing, for `idle`)."""
    stop = threading.Event()
    logins = [0]
    errors: list[str] = []
    mechanism = {"idle": None, "plain": "PLAIN", "scram": "SCRAM-SHA-512"}[load]

    def login_loop() -> None:
        while not stop.is_set():
            try:
                connect_once(broker.ports["SASL_PLAINTEXT"], None, mechanism, scram, password)
                logins[0] += 1
            except (OSError, RuntimeError) as e:
                errors.append(str(e))
                return

    threads = [threading.Thread(target=login_loop) for _ in range(LOGIN_THREADS if mechanism else 0)]
    rtts: list[float] = []
    sock = socket.create_connection(("127.0.0.1", broker.port), timeout=SOCKET_TIMEOUT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for t in threads:
            t.start()
        began = time.perf_counter()
        correlation_id = 0
        while time.perf_counter() - began < seconds:
            correlation_id += 1
            t0 = time.perf_counter()
            request(sock, API_VERSIONS, 0, correlation_id, b"")
            rtts.append(time.perf_counter() - t0)
            time.sleep(PROBE_PERIOD_S)
        elapsed = time.perf_counter() - began
    finally:
        stop.set()
        for t in threads:
            t.join()
        sock.close()
    if errors:
        raise RuntimeError(f"{load} logins failed: {errors[0]}")
    rtts.sort()
    return {
        "logins_per_s": round(logins[0] / elapsed, 1),
        "probe_p50_ms": round(1e3 * rtts[len(rtts) // 2], 3),
        "probe_p99_ms": round(1e3 * rtts[int(0.99 * len(rtts))], 3),
        "probe_max_ms": round(1e3 * rtts[-1], 3),
    }


# ---------------------------------------------------------------- driver


def median_of(rows: list[dict]) -> dict:
    """Per key, the median over the rounds (keys with no value left out)."""
    out = {}
    for k in rows[0]:
        values = [r[k] for r in rows if r.get(k) is not None]
        if values:
            out[k] = round(statistics.median(values), 3)
    return out


def rotate(items: tuple | list, n: int) -> list:
    n %= len(items)
    return list(items[n:]) + list(items[:n])


def throughput_and_connections(a, work: Path, pki: Path, password: str) -> dict:
    broker = SecureBroker(a.binary, str(work / "data"), str(work / "broker.log"), a.shards, pki,
                          ("SSL", "SASL_SSL"))
    tls = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    scram = ScramClient(password)
    cases = {
        "PLAINTEXT": (broker.ports["PLAINTEXT"], None, None),
        "SSL": (broker.ports["SSL"], tls, None),
        "SASL_SSL SCRAM-SHA-512": (broker.ports["SASL_SSL"], tls, "SCRAM-SHA-512"),
        "SASL_SSL PLAIN": (broker.ports["SASL_SSL"], tls, "PLAIN"),
    }
    load: dict[str, list] = {f"{p} {m}": [] for p in PROTOCOLS for m in ("produce", "consume")}
    conns: dict[str, list] = {f"{c}, {t} thread(s)": [] for c in cases for t in CONNECT_THREADS}
    broker.start()
    try:
        for rnd in range(a.rounds):
            for protocol in rotate(PROTOCOLS, rnd):
                topic = f"sec-{rnd}-{protocol.lower().replace('_', '-')}"
                create_topic(broker, topic)
                for mode in ("produce", "consume"):
                    r = loadgen(broker, protocol, password, mode, topic, a.records, work)
                    load[f"{protocol} {mode}"].append(r)
                    print(f"round {rnd} {protocol} {mode}: {r}", file=sys.stderr, flush=True)
            for threads in CONNECT_THREADS:
                for case in rotate(list(cases), rnd):
                    port, ctx, mechanism = cases[case]
                    r = connect_rate(port, ctx, mechanism, scram, password, threads, a.connect_seconds)
                    conns[f"{case}, {threads} thread(s)"].append(r)
                    print(f"round {rnd} connect {case} x{threads}: {r}", file=sys.stderr, flush=True)
    finally:
        broker.stop()
    return {"load": {k: {"median": median_of(v), "runs": v} for k, v in load.items()},
            "connections": {k: {"median": median_of(v), "runs": v} for k, v in conns.items()}}


def stall_probe(a, work: Path, pki: Path, password: str) -> dict:
    binaries = {"current": a.binary}
    if a.before:
        binaries["before"] = a.before
    scram = ScramClient(password)
    out: dict[str, list] = {f"{b} {load}": [] for b in binaries for load in ("idle", "scram", "plain")}
    for rnd in range(a.rounds):
        for name in rotate(list(binaries), rnd):
            d = work / f"stall-{name}-{rnd}"
            broker = SecureBroker(binaries[name], str(d / "data"), str(work / f"stall-{name}.log"), 1, pki,
                                  ("SASL_PLAINTEXT",))
            broker.start()
            try:
                for load in rotate(("idle", "scram", "plain"), rnd):
                    r = probe_during(broker, load, scram, password, a.probe_seconds)
                    out[f"{name} {load}"].append(r)
                    print(f"round {rnd} stall {name} {load}: {r}", file=sys.stderr, flush=True)
            finally:
                broker.stop()
    return {k: {"median": median_of(v), "runs": v} for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=str(REPO / "target/release/corestreamd"))
    ap.add_argument("--before", help="an earlier corestreamd for the stall probe's A/B")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--connect-seconds", type=float, default=CONNECT_SECONDS)
    ap.add_argument("--probe-seconds", type=float, default=PROBE_SECONDS)
    ap.add_argument("--skip", choices=("throughput", "stall"), action="append", default=[])
    ap.add_argument("--json", help="write the summary here")
    a = ap.parse_args()
    # The broker runs in its data dir: binaries by absolute path.
    a.binary = str(Path(a.binary).resolve())
    a.before = str(Path(a.before).resolve()) if a.before else None
    base = REPO / "target/bench-security"
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=base))
    pki = work / "pki"
    pki.mkdir()
    make_pki(pki)
    password = secrets.token_hex(16)
    # corestreamd reads the initial user's password from its environment.
    os.environ["CORESTREAM_INITIAL_USER_PASSWORD"] = password
    summary = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "rounds": a.rounds,
        "records": a.records,
        "record_bytes": RECORD_BYTES,
        "scram_iterations": SCRAM_ITERATIONS,
        "shards": a.shards,
    }
    if "throughput" not in a.skip:
        summary.update(throughput_and_connections(a, work, pki, password))
    if "stall" not in a.skip:
        summary["stall_probe"] = stall_probe(a, work, pki, password)
    summary["load_average_at_end"] = os.getloadavg()
    text = json.dumps(summary, indent=1)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
