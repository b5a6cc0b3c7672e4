"""Issue 22 (items 2-4): Kafka-style listeners, TLS, SASL PLAIN/SCRAM.

Real clients (confluent-kafka / librdkafka, kafka-python, kcat) against the
real binary over real sockets. The PKI is made here with the openssl CLI:
a CA, a server certificate for 127.0.0.1, a client certificate
(CN=alice,O=acme) and a second server certificate for the reload test.

Every broker gets the fixture's PLAINTEXT listener (`--listen`, used for
readiness and the admin CLI) plus SSL, SASL_PLAINTEXT and SASL_SSL
listeners on their own ports, and the initial user `admin` (SCRAM-SHA-512)
whose password comes from CORESTREAM_INITIAL_USER_PASSWORD.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import struct
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient

import kafka_raw
from conftest import free_port
from test_metrics import scrape, total
from test_ops import cli

ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-secret"
openssl_wait_s_max = 30
client_wait_s = 20.0
# How long a refused client's metadata request may take to fail: an accepted
# one answers in milliseconds, a refused one only ends at this timeout.
refused_metadata_wait_s = 1.5
MESSAGES = 20

SASL_HANDSHAKE = 17
SASL_AUTHENTICATE = 36
DESCRIBE_USER_SCRAM_CREDENTIALS = 50
RESOURCE_NOT_FOUND = 91
SASL_AUTHENTICATION_FAILED = 58
UNSUPPORTED_SASL_MECHANISM = 33


# ---------------------------------------------------------------- PKI


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=openssl_wait_s_max)


def make_cert(d: Path, name: str, subject: str, ca: str, ext: str) -> None:
    (d / f"{name}.ext").write_text(ext)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=corestream-test-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    server_ext = ("basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
                  "extendedKeyUsage=serverAuth\n")
    make_cert(d, "server", "/CN=corestream-first", "ca", server_ext)
    make_cert(d, "server2", "/CN=corestream-second", "ca", server_ext)
    make_cert(d, "client", "/O=acme/CN=alice", "ca",
              "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    return d


class Secure:
    """A broker with every listener kind, and how to reach each."""

    def __init__(self, broker, pki: Path, ports: dict[str, int], cert: Path, key: Path):
        self.broker = broker
        self.pki = pki
        self.ports = ports
        self.cert = cert
        self.key = key

    def addr(self, protocol: str) -> str:
        return f"127.0.0.1:{self.ports[protocol]}"

    def conf(self, protocol: str, mechanism: str | None = None, user: str = ADMIN_USER,
             password: str = ADMIN_PASSWORD) -> dict:
        c = {"bootstrap.servers": self.addr(protocol), "security.protocol": protocol}
        if "SSL" in protocol:
            c["ssl.ca.location"] = str(self.pki / "ca.pem")
        if protocol.startswith("SASL"):
            c.update({"sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password})
        return c


def start_secure(broker_factory, pki: Path, monkeypatch, client_ca: bool = False,
                 extra_args: tuple[str, ...] = ()) -> Secure:
    monkeypatch.setenv("CORESTREAM_INITIAL_USER_PASSWORD", ADMIN_PASSWORD)
    ports: dict[str, int] = {}
    for protocol in ("SSL", "SASL_PLAINTEXT", "SASL_SSL"):
        ports[protocol] = free_port(avoid=max(ports.values(), default=None))
    # The certificate files are copies, so the reload test can replace them.
    cert, key = pki / f"live-{uuid.uuid4().hex}.pem", pki / f"live-{uuid.uuid4().hex}.key"
    cert.write_bytes((pki / "server.pem").read_bytes())
    key.write_bytes((pki / "server.key").read_bytes())
    listeners = ",".join(f"{p}://127.0.0.1:{port}" for p, port in ports.items())
    args = ["--listeners", listeners, "--tls-cert", str(cert), "--tls-key", str(key),
            "--initial-user", ADMIN_USER]
    if client_ca:
        args += ["--tls-client-ca", str(pki / "ca.pem")]
    broker = broker_factory(extra_args=args + list(extra_args))
    return Secure(broker, pki, ports, cert, key)


@pytest.fixture
def secure(broker_factory, pki, monkeypatch) -> Secure:
    return start_secure(broker_factory, pki, monkeypatch)


# ---------------------------------------------------------------- clients


def confluent_roundtrip(conf: dict, topic: str, n: int = MESSAGES) -> list[bytes]:
    """Produces n records with confluent-kafka and consumes them back."""
    p = Producer({**conf, "acks": "all", "message.timeout.ms": 20000})
    for i in range(n):
        p.produce(topic, f"m{i}".encode())
    assert p.flush(client_wait_s) == 0, "records not delivered"
    c = Consumer({**conf, "group.id": f"g-{uuid.uuid4().hex}", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + client_wait_s
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m.value())
    c.close()
    return got


def confluent_fails(conf: dict, reason: str = "") -> str:
    """The errors a metadata request fails with (the client must fail):
    the request's own and those librdkafka reports through error_cb
    (where the authentication failure shows). Waits until error_cb has
    reported an error containing `reason` (any error when empty), rather
    than a fixed time: a refused client never gets its metadata, so the
    request only ends at its timeout, and the reason comes long before."""
    errors: list[str] = []
    admin = AdminClient({**conf, "socket.timeout.ms": 5000, "log_level": 0,
                         "error_cb": lambda e: errors.append(str(e))})
    with pytest.raises(KafkaException) as e:
        admin.list_topics(timeout=refused_metadata_wait_s)
    deadline = time.monotonic() + client_wait_s
    while not any(reason in x for x in errors) and time.monotonic() < deadline:
        admin.poll(0.1)
    admin.poll(0.1)  # whatever else is queued already
    return " | ".join([str(e.value), *errors])


def kafka_python_roundtrip(secure: Secure, protocol: str, mechanism: str | None, topic: str) -> list[bytes]:
    from kafka import KafkaConsumer, KafkaProducer

    conf = {"bootstrap_servers": secure.addr(protocol), "security_protocol": protocol,
            "request_timeout_ms": 20000}
    if "SSL" in protocol:
        conf["ssl_cafile"] = str(secure.pki / "ca.pem")
        conf["ssl_check_hostname"] = False
    if mechanism:
        conf.update({"sasl_mechanism": mechanism, "sasl_plain_username": ADMIN_USER,
                     "sasl_plain_password": ADMIN_PASSWORD})
    p = KafkaProducer(acks="all", **conf)
    for i in range(MESSAGES):
        p.send(topic, f"kp{i}".encode())
    p.flush(timeout=client_wait_s)
    p.close()
    c = KafkaConsumer(topic, auto_offset_reset="earliest", group_id=None, **conf)
    # Everything in the topic, read to its end offsets (nothing else writes
    # to it now), instead of iterating until an idle timeout.
    got: list[bytes] = []
    end: dict | None = None
    deadline = time.monotonic() + client_wait_s
    while time.monotonic() < deadline:
        for records in c.poll(timeout_ms=200).values():
            got.extend(m.value for m in records)
        if end is None and c.assignment():
            end = c.end_offsets(list(c.assignment()))
        if end is not None and all(c.position(tp) >= offset for tp, offset in end.items()):
            break
    c.close()
    return got


def kcat(secure: Secure, protocol: str, mechanism: str | None, *args: str, stdin: str | None = None):
    x = ["-X", f"security.protocol={protocol.lower()}"]
    if "SSL" in protocol:
        x += ["-X", f"ssl.ca.location={secure.pki / 'ca.pem'}"]
    if mechanism:
        x += ["-X", f"sasl.mechanisms={mechanism}", "-X", f"sasl.username={ADMIN_USER}",
              "-X", f"sasl.password={ADMIN_PASSWORD}"]
    return subprocess.run(["kcat", "-b", secure.addr(protocol), *x, *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


# ---------------------------------------------------------------- TLS


def test_ssl_listener_roundtrip_confluent_kafka_python_kcat(secure):
    got = confluent_roundtrip(secure.conf("SSL"), "ssl-topic")
    assert sorted(got) == sorted(f"m{i}".encode() for i in range(MESSAGES))
    assert len(kafka_python_roundtrip(secure, "SSL", None, "ssl-topic")) >= MESSAGES
    r = kcat(secure, "SSL", None, "-P", "-t", "ssl-kcat", stdin="a\nb\nc\n")
    assert r.returncode == 0, r.stderr
    r = kcat(secure, "SSL", None, "-C", "-t", "ssl-kcat", "-e", "-o", "beginning")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["a", "b", "c"]


def test_metadata_advertises_the_listener_the_client_came_in_on(secure):
    for protocol, conf in (("SSL", secure.conf("SSL")),
                           ("SASL_SSL", secure.conf("SASL_SSL", "SCRAM-SHA-512"))):
        md = AdminClient(conf).list_topics(timeout=10)
        ports = {b.port for b in md.brokers.values()}
        assert ports == {secure.ports[protocol]}, (protocol, ports)
    with secure.broker.raw() as conn:  # PLAINTEXT (the fixture's --listen)
        body = conn.roundtrip(kafka_raw.METADATA, 1, kafka_raw.Writer().int32(0).bytes())
        r = kafka_raw.Reader(body)
        brokers = r.array(lambda r: (r.int32(), r.string(), r.int32(), r.string()))
        assert [b[2] for b in brokers] == [secure.broker.port]


def test_plaintext_client_on_tls_port_is_closed_and_broker_keeps_serving(secure):
    host, port = secure.addr("SSL").split(":")
    with kafka_raw.RawConn(host, int(port), timeout_s=5) as conn:
        conn.send_frame(conn.request_bytes(kafka_raw.API_VERSIONS, 0, b"")[1])
        assert conn.wait_closed(10), "plaintext bytes on a TLS port must close the connection"
    wait_logged(secure.broker, "TLS handshake failed")
    assert len(confluent_roundtrip(secure.conf("SSL"), "after-bad", 3)) == 3


def wait_logged(broker, text: str, timeout_s: float = 10.0) -> None:
    """Waits until the broker's log holds `text` (lines are written
    asynchronously to the client's view of the connection)."""
    deadline = time.monotonic() + timeout_s
    while text not in broker.log_tail():
        assert time.monotonic() < deadline, f"not logged: {text!r}"
        time.sleep(0.05)


def tls_socket(secure: Secure, protocol: str = "SSL") -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(secure.pki / "ca.pem"))
    raw = socket.create_connection(("127.0.0.1", secure.ports[protocol]), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def api_versions_over(sock: ssl.SSLSocket, correlation_id: int) -> int:
    header = struct.pack(">hhi", kafka_raw.API_VERSIONS, 0, correlation_id) + struct.pack(">h", -1)
    sock.sendall(struct.pack(">i", len(header)) + header)
    (n,) = struct.unpack(">i", recv_exact(sock, 4))
    body = recv_exact(sock, n)
    (got,) = struct.unpack(">i", body[:4])
    return got


def recv_exact(sock, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        assert chunk, "connection closed"
        out += chunk
    return out


def peer_cn(sock: ssl.SSLSocket) -> str:
    subject = dict(x[0] for x in sock.getpeercert()["subject"])
    return subject["commonName"]


def test_tls_sighup_reloads_certificate_without_dropping_connections(secure):
    before = tls_socket(secure)
    assert peer_cn(before) == "corestream-first"
    assert api_versions_over(before, 1) == 1
    secure.cert.write_bytes((secure.pki / "server2.pem").read_bytes())
    secure.key.write_bytes((secure.pki / "server2.key").read_bytes())
    secure.broker.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "TLS certificates reloaded" not in secure.broker.log_tail():
        assert time.monotonic() < deadline, "no reload logged"
        time.sleep(0.1)
    assert api_versions_over(before, 2) == 2, "the existing connection must keep working"
    after = tls_socket(secure)
    assert peer_cn(after) == "corestream-second"
    assert api_versions_over(after, 3) == 3
    before.close()
    after.close()


def test_mtls_client_certificate_subject_is_the_principal(broker_factory, pki, monkeypatch):
    secure = start_secure(broker_factory, pki, monkeypatch, client_ca=True)
    conf = {**secure.conf("SSL"), "ssl.certificate.location": str(pki / "client.pem"),
            "ssl.key.location": str(pki / "client.key")}
    assert len(confluent_roundtrip(conf, "mtls", 5)) == 5
    wait_logged(secure.broker, "principal User:CN=alice,O=acme")
    confluent_fails(secure.conf("SSL"))  # no client certificate: refused
    assert secure.broker.alive()


# ---------------------------------------------------------------- SASL


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_plain_scram256_scram512_roundtrip_and_wrong_password(secure, tmp_path, protocol):
    pw = tmp_path / "pw"
    pw.write_text("bob-secret\n")
    cli(secure.broker, "users", "set", "bob", "--mechanism", "SCRAM-SHA-256", "--password-file", str(pw))
    for mechanism, user, password in (("PLAIN", ADMIN_USER, ADMIN_PASSWORD),
                                      ("SCRAM-SHA-256", "bob", "bob-secret"),
                                      ("SCRAM-SHA-512", ADMIN_USER, ADMIN_PASSWORD)):
        conf = secure.conf(protocol, mechanism, user, password)
        topic = f"{protocol}-{mechanism}".lower()
        got = confluent_roundtrip(conf, topic, 5)
        assert len(got) == 5, (protocol, mechanism)
        error = confluent_fails(secure.conf(protocol, mechanism, user, password + "x"), "uthentication")
        assert "uthentication" in error, error
    confluent_fails(secure.conf(protocol, "SCRAM-SHA-512", "nobody", "x"))
    # SCRAM-SHA-512 for bob has no credential: refused.
    confluent_fails(secure.conf(protocol, "SCRAM-SHA-512", "bob", "bob-secret"))
    log = secure.broker.log_tail()
    assert "authentication failed" in log and "invalid client proof" in log
    assert "bob-secret" not in log and ADMIN_PASSWORD not in log
    assert len(confluent_roundtrip(secure.conf(protocol, "SCRAM-SHA-512"), "still-serving", 3)) == 3


def test_sasl_kafka_python_and_kcat(secure):
    got = kafka_python_roundtrip(secure, "SASL_SSL", "SCRAM-SHA-512", "kp-sasl")
    assert len(got) == MESSAGES
    got = kafka_python_roundtrip(secure, "SASL_PLAINTEXT", "PLAIN", "kp-plain")
    assert len(got) == MESSAGES
    r = kcat(secure, "SASL_SSL", "SCRAM-SHA-512", "-P", "-t", "kcat-sasl", stdin="x\ny\n")
    assert r.returncode == 0, r.stderr
    r = kcat(secure, "SASL_SSL", "SCRAM-SHA-512", "-C", "-t", "kcat-sasl", "-e", "-o", "beginning")
    assert r.returncode == 0 and r.stdout.split() == ["x", "y"], r.stderr


def sasl_conn(secure: Secure) -> kafka_raw.RawConn:
    host, port = secure.addr("SASL_PLAINTEXT").split(":")
    return kafka_raw.RawConn(host, int(port), timeout_s=10)


def test_sasl_listener_closes_connection_on_metadata_before_authentication(secure):
    with sasl_conn(secure) as conn:
        assert conn.api_versions_v0().error_code == 0  # allowed
        conn.send_request(kafka_raw.METADATA, 1, kafka_raw.Writer().int32(0).bytes())
        assert conn.wait_closed(10)
    wait_logged(secure.broker, "Metadata request before SASL authentication")


def test_sasl_handshake_v0_then_raw_plain_token(secure):
    with sasl_conn(secure) as conn:
        body = conn.roundtrip(SASL_HANDSHAKE, 0, kafka_raw.Writer().string("PLAIN").bytes())
        r = kafka_raw.Reader(body)
        assert r.int16() == 0
        assert "SCRAM-SHA-512" in r.array(lambda r: r.string())
        conn.send_frame(b"\0" + ADMIN_USER.encode() + b"\0" + ADMIN_PASSWORD.encode())
        (n,) = struct.unpack(">i", conn._recv_exact(4))
        assert n == 0  # PLAIN's empty server token, raw
        body = conn.roundtrip(kafka_raw.METADATA, 1, kafka_raw.Writer().int32(0).bytes())
        assert len(body) > 0
    with sasl_conn(secure) as conn:
        conn.roundtrip(SASL_HANDSHAKE, 0, kafka_raw.Writer().string("PLAIN").bytes())
        conn.send_frame(b"\0" + ADMIN_USER.encode() + b"\0wrong")
        assert conn.wait_closed(10), "a wrong raw PLAIN token must close the connection"


def test_sasl_authenticate_v1_wrong_plain_password_answers_sasl_authentication_failed(secure):
    with sasl_conn(secure) as conn:
        body = conn.roundtrip(SASL_HANDSHAKE, 1, kafka_raw.Writer().string("PLAIN").bytes())
        assert kafka_raw.Reader(body).int16() == 0
        token = b"\0" + ADMIN_USER.encode() + b"\0nope"
        body = conn.roundtrip(SASL_AUTHENTICATE, 1, kafka_raw.Writer().bytes_(token).bytes())
        r = kafka_raw.Reader(body)
        assert r.int16() == 58  # SASL_AUTHENTICATION_FAILED
        assert "invalid credentials" in r.string()
        assert conn.wait_closed(10)


def test_sasl_failed_authentication_is_delayed_counted_and_logged_with_the_address(
        broker_factory, pki, monkeypatch):
    """Kafka's connection.failed.authentication.delay.ms: the failure is
    answered (and the connection closed) only after the delay; each
    failure and success is counted in /metrics; the log names the client's
    address and never the password."""
    delay_s = 0.7
    secure = start_secure(broker_factory, pki, monkeypatch, extra_args=(
        "--connection-failed-authentication-delay-ms", str(int(delay_s * 1000))))
    samples = scrape(secure.broker)[1]
    failed_before = total(samples, "corestream_authentication_failures_total")
    ok_before = total(samples, "corestream_authentications_total")
    with sasl_conn(secure) as conn:
        local_port = conn.sock.getsockname()[1]
        conn.roundtrip(SASL_HANDSHAKE, 1, kafka_raw.Writer().string("PLAIN").bytes())
        token = b"\0" + ADMIN_USER.encode() + b"\0guess-1"
        started = time.monotonic()
        body = conn.roundtrip(SASL_AUTHENTICATE, 1, kafka_raw.Writer().bytes_(token).bytes())
        took = time.monotonic() - started
        assert kafka_raw.Reader(body).int16() == 58  # SASL_AUTHENTICATION_FAILED
        assert took >= delay_s, f"failure answered after {took:.3f} s, before the delay"
        assert conn.wait_closed(10)
    with sasl_conn(secure) as conn:
        conn.roundtrip(SASL_HANDSHAKE, 1, kafka_raw.Writer().string("PLAIN").bytes())
        token = b"\0" + ADMIN_USER.encode() + b"\0" + ADMIN_PASSWORD.encode()
        body = conn.roundtrip(SASL_AUTHENTICATE, 1, kafka_raw.Writer().bytes_(token).bytes())
        assert kafka_raw.Reader(body).int16() == 0
    samples = scrape(secure.broker)[1]
    assert total(samples, "corestream_authentication_failures_total") == failed_before + 1
    assert total(samples, "corestream_authentications_total") == ok_before + 1
    wait_logged(secure.broker, f"peer=127.0.0.1:{local_port}")
    log = secure.broker.log_tail()
    assert "authentication failed" in log and "guess-1" not in log and ADMIN_PASSWORD not in log


# ---------------------------------------------------------------- users


def describe_users_raw(conn: kafka_raw.RawConn, names: list[str]) -> list[tuple[str, int, list]]:
    w = kafka_raw.Writer().uvarint(len(names) + 1)
    for name in names:
        w.uvarint(len(name) + 1).raw(name.encode()).uvarint(0)
    w.uvarint(0)
    cid = conn.send_request(DESCRIBE_USER_SCRAM_CREDENTIALS, 0, w.bytes(), flexible_header=True)
    r = kafka_raw.Reader(conn.recv_response(cid, flexible_header=True))

    def cstring():
        n = r.uvarint() - 1
        return None if n < 0 else r._take(n).decode()

    r.int32()
    assert r.int16() == 0
    cstring()
    out = []
    for _ in range(r.uvarint() - 1):
        user, code = cstring(), r.int16()
        cstring()
        infos = []
        for _ in range(r.uvarint() - 1):
            infos.append((r.int8(), r.int32()))
            r.uvarint()
        r.uvarint()
        out.append((user, code, infos))
    return out


def test_users_cli_round_trip_and_describe_user_scram_credentials(secure, tmp_path):
    listed = json_users(secure)
    assert {"user": ADMIN_USER, "mechanism": "SCRAM-SHA-512", "iterations": 4096} in listed
    pw = tmp_path / "pw"
    pw.write_text("carol-pw")
    cli(secure.broker, "users", "set", "carol", "--mechanism", "SCRAM-SHA-512",
        "--password-file", str(pw), "--iterations", "8192")
    assert {"user": "carol", "mechanism": "SCRAM-SHA-512", "iterations": 8192} in json_users(secure)
    conf = secure.conf("SASL_PLAINTEXT", "SCRAM-SHA-512", "carol", "carol-pw")
    assert len(confluent_roundtrip(conf, "carol-topic", 2)) == 2
    with secure.broker.raw() as conn:
        result = describe_users_raw(conn, ["carol", "nobody"])
        assert result[0] == ("carol", 0, [(2, 8192)])
        assert result[1][:2] == ("nobody", RESOURCE_NOT_FOUND)
    bad = cli(secure.broker, "users", "set", "dave", "--password-file", str(pw), "--iterations", "100",
              check=False)
    assert bad.returncode != 0 and "UnacceptableCredential" in (bad.stdout + bad.stderr)
    cli(secure.broker, "users", "delete", "carol")
    assert all(u["user"] != "carol" for u in json_users(secure))
    confluent_fails(conf)
    # Credentials survive a restart (stored with the metadata).
    secure.broker.stop()
    secure.broker.start()
    assert any(u["user"] == ADMIN_USER for u in json_users(secure))


def json_users(secure: Secure) -> list[dict]:
    import json

    return json.loads(cli(secure.broker, "--json", "users", "list").stdout)["users"]


# ---------------------------------------------------------------- SCRAM by hand


def scram_exchange(conn: kafka_raw.RawConn, mechanism: str, user: str, password: str,
                   lifetimes: list[int] | None = None) -> tuple[int, bytes]:
    """A SCRAM exchange written from RFC 5802 over SaslAuthenticate v1; the
    error code and the last server token. The server's signature is
    checked when the broker says yes. Each answer's session_lifetime_ms
    (KIP-368) is appended to `lifetimes` when given."""
    import base64
    import hashlib
    import hmac

    digest = {"SCRAM-SHA-256": hashlib.sha256, "SCRAM-SHA-512": hashlib.sha512}[mechanism]
    body = conn.roundtrip(SASL_HANDSHAKE, 1, kafka_raw.Writer().string(mechanism).bytes())
    assert kafka_raw.Reader(body).int16() == 0

    def authenticate(token: bytes) -> tuple[int, bytes]:
        r = kafka_raw.Reader(conn.roundtrip(SASL_AUTHENTICATE, 1, kafka_raw.Writer().bytes_(token).bytes()))
        code = r.int16()
        r.string()
        token = r.bytes_() or b""
        if lifetimes is not None:
            lifetimes.append(r.int64())
        return code, token

    bare = f"n={user},r={uuid.uuid4().hex}"
    code, first = authenticate(f"n,,{bare}".encode())
    if code != 0:
        return code, first
    attrs = dict(a.split("=", 1) for a in first.decode().split(","))
    salted = hashlib.pbkdf2_hmac(digest().name, password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", digest).digest()
    without_proof = f"c=biws,r={attrs['r']}"
    auth = f"{bare},{first.decode()},{without_proof}".encode()
    signature = hmac.new(digest(client_key).digest(), auth, digest).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    code, final = authenticate(f"{without_proof},p={base64.b64encode(proof).decode()}".encode())
    if code == 0:
        server_key = hmac.new(salted, b"Server Key", digest).digest()
        expected = base64.b64encode(hmac.new(server_key, auth, digest).digest())
        assert final == b"v=" + expected, "server signature does not verify"
    return code, final


def plain_login(secure: Secure, user: str, password: str, raw: bool = False) -> int:
    """A PLAIN login on a fresh SASL_PLAINTEXT connection: 0 when the broker
    authenticates it (and then serves Metadata), else the error code (a raw
    v0 token's failure is a close, reported as SASL_AUTHENTICATION_FAILED)."""
    token = b"\0" + user.encode() + b"\0" + password.encode()
    with sasl_conn(secure) as conn:
        body = conn.roundtrip(SASL_HANDSHAKE, 0 if raw else 1, kafka_raw.Writer().string("PLAIN").bytes())
        assert kafka_raw.Reader(body).int16() == 0
        if raw:
            conn.send_frame(token)
            try:
                (n,) = struct.unpack(">i", conn._recv_exact(4))
            except (kafka_raw.ConnectionClosed, OSError):
                return SASL_AUTHENTICATION_FAILED
            assert n == 0
        else:
            body = conn.roundtrip(SASL_AUTHENTICATE, 1, kafka_raw.Writer().bytes_(token).bytes())
            code = kafka_raw.Reader(body).int16()
            if code != 0:
                assert conn.wait_closed(10)
                return code
        assert len(conn.roundtrip(kafka_raw.METADATA, 1, kafka_raw.Writer().int32(0).bytes())) > 0
        return 0


@pytest.mark.parametrize("raw", [False, True], ids=["authenticate_v1", "raw_v0"])
def test_plain_off_shard_check_wrong_after_right_and_old_password_after_change(secure, tmp_path, raw):
    """PLAIN's PBKDF2 check runs on the blocking pool: a right password
    then a wrong one (nothing of the first carries over), then the password
    changed through AlterUserScramCredentials: the old one fails, the new
    one works, from the next login on."""
    assert plain_login(secure, ADMIN_USER, ADMIN_PASSWORD, raw) == 0
    assert plain_login(secure, ADMIN_USER, ADMIN_PASSWORD + "x", raw) == SASL_AUTHENTICATION_FAILED
    assert plain_login(secure, ADMIN_USER, ADMIN_PASSWORD, raw) == 0
    pw = tmp_path / "pw"
    pw.write_text("changed-secret")
    cli(secure.broker, "users", "set", ADMIN_USER, "--mechanism", "SCRAM-SHA-512", "--password-file", str(pw))
    assert plain_login(secure, ADMIN_USER, ADMIN_PASSWORD, raw) == SASL_AUTHENTICATION_FAILED
    assert plain_login(secure, ADMIN_USER, "changed-secret", raw) == 0
    wait_logged(secure.broker, f'PLAIN authentication failed for user "{ADMIN_USER}"')
    assert "changed-secret" not in secure.broker.log_tail()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_by_hand_wrong_proof_really_fails(secure, tmp_path, mechanism):
    pw = tmp_path / "pw"
    pw.write_text("erin-pw")
    cli(secure.broker, "users", "set", "erin", "--mechanism", mechanism, "--password-file", str(pw))
    with sasl_conn(secure) as conn:
        assert scram_exchange(conn, mechanism, "erin", "erin-pw")[0] == 0
        assert len(conn.roundtrip(kafka_raw.METADATA, 1, kafka_raw.Writer().int32(0).bytes())) > 0
    with sasl_conn(secure) as conn:
        assert scram_exchange(conn, mechanism, "erin", "erin-pW")[0] == SASL_AUTHENTICATION_FAILED
        assert conn.wait_closed(10)
    with sasl_conn(secure) as conn:
        assert scram_exchange(conn, mechanism, "nobody", "x")[0] == SASL_AUTHENTICATION_FAILED
    wait_logged(secure.broker, 'invalid client proof for user "erin"')
    assert "erin-pw" not in secure.broker.log_tail()


def test_wrong_mechanism_fails_cleanly_and_broker_keeps_serving(secure):
    with sasl_conn(secure) as conn:
        body = conn.roundtrip(SASL_HANDSHAKE, 1, kafka_raw.Writer().string("GSSAPI").bytes())
        r = kafka_raw.Reader(body)
        assert r.int16() == UNSUPPORTED_SASL_MECHANISM
        assert r.array(lambda r: r.string()) == ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
        assert conn.wait_closed(10)
    # librdkafka configured for a mechanism the broker does not offer.
    error = confluent_fails({**secure.conf("SASL_SSL", "OAUTHBEARER"),
                             "enable.sasl.oauthbearer.unsecure.jwt": True})
    assert "OAUTHBEARER" in error or "mechanism" in error.lower(), error
    assert len(confluent_roundtrip(secure.conf("SASL_SSL", "PLAIN"), "after-wrong-mech", 2)) == 2


# ---------------------------------------------------------------- aiokafka


def test_aiokafka_ssl_and_sasl_ssl_scram_and_plain(secure, tmp_path):
    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.helpers import create_ssl_context

    async def roundtrip(protocol: str, mechanism: str | None, topic: str) -> list[bytes]:
        conf = {"bootstrap_servers": secure.addr(protocol), "security_protocol": protocol,
                "ssl_context": create_ssl_context(cafile=str(secure.pki / "ca.pem"))}
        if mechanism:
            conf.update(sasl_mechanism=mechanism, sasl_plain_username=ADMIN_USER,
                        sasl_plain_password=ADMIN_PASSWORD)
        p = AIOKafkaProducer(acks="all", **conf)
        await p.start()
        try:
            for i in range(MESSAGES):
                await p.send_and_wait(topic, f"a{i}".encode())
        finally:
            await p.stop()
        c = AIOKafkaConsumer(topic, auto_offset_reset="earliest", **conf)
        await c.start()
        got: list[bytes] = []
        try:
            deadline = time.monotonic() + client_wait_s
            while len(got) < MESSAGES and time.monotonic() < deadline:
                batch = await c.getmany(timeout_ms=500)
                got += [m.value for msgs in batch.values() for m in msgs]
        finally:
            await c.stop()
        return got

    assert len(asyncio.run(roundtrip("SSL", None, "aio-ssl"))) == MESSAGES
    # The admin user has SCRAM-SHA-512; give it SCRAM-SHA-256 too.
    pw = tmp_path / "pw"
    pw.write_text(ADMIN_PASSWORD)
    cli(secure.broker, "users", "set", ADMIN_USER, "--mechanism", "SCRAM-SHA-256", "--password-file", str(pw))
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"):
        got = asyncio.run(roundtrip("SASL_SSL", mechanism, f"aio-{mechanism.lower()}"))
        assert len(got) == MESSAGES, mechanism


# ---------------------------------------------------------------- kafkajs


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_kafkajs_sasl_ssl(secure, mechanism):
    import shutil

    node = shutil.which("node")
    js = Path(__file__).resolve().parents[1] / "js"
    if node is None or not (js / "node_modules" / "kafkajs").exists():
        pytest.skip("node or kafkajs not installed")
    r = subprocess.run([node, str(js / "secure.js"), secure.addr("SASL_SSL"), str(secure.pki / "ca.pem"),
                        mechanism, ADMIN_USER, ADMIN_PASSWORD, f"js-{mechanism.lower()}", "10"],
                       capture_output=True, text=True, timeout=60, cwd=js)
    assert r.returncode == 0 and r.stdout.strip() == "10", r.stderr
