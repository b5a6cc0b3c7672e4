"""Issue 22: KIP-368 SASL re-authentication (`connections_max_reauth_ms`).

A broker with sessions of a few seconds, checked three ways: by hand over
SaslHandshake/SaslAuthenticate v1 (the lifetime answered, a
re-authentication extending the session, a request after the end closing
the connection, another user or mechanism refused); with librdkafka
(confluent-kafka 2.16, which re-authenticates on its own) producing through
several lifetimes on the same connections; and with kafka-python (3.0 here),
which re-authenticates too.

Debian's kcat (librdkafka 2.0.2) cannot re-authenticate: its connection is
closed at its first request after the session, and with a single broker
kcat then exits ("All broker connections are down"), as it would against
Kafka. That is documented (docs/CONFIG.md), not tested here.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer

import kafka_raw
from test_metrics import scrape, total
from test_ops import cli
from test_security import (  # noqa: F401 (pki is a fixture)
    ADMIN_PASSWORD, ADMIN_USER, SASL_AUTHENTICATION_FAILED, SASL_HANDSHAKE,
    UNSUPPORTED_SASL_MECHANISM, pki, sasl_conn, scram_exchange, start_secure, wait_logged,
)

# Short enough to pass several times in a test, long enough that a loaded CI
# machine still answers well inside one.
LIFETIME_MS = 3000
LIFETIME_S = LIFETIME_MS / 1000
MECHANISM = "SCRAM-SHA-512"


@pytest.fixture
def reauth(broker_factory, pki, monkeypatch):
    return start_secure(broker_factory, pki, monkeypatch,
                        extra_args=("--connections-max-reauth-ms", str(LIFETIME_MS)))


def metadata(conn: kafka_raw.RawConn) -> bytes:
    return conn.roundtrip(kafka_raw.METADATA, 1, kafka_raw.Writer().int32(0).bytes())


def sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.monotonic()))


def counter(secure, name: str) -> float:
    return total(scrape(secure.broker)[1], name)


def test_sasl_authenticate_v1_reauth_extends_the_session_and_expiry_closes(reauth):
    lifetimes: list[int] = []
    with sasl_conn(reauth) as conn:
        assert scram_exchange(conn, MECHANISM, ADMIN_USER, ADMIN_PASSWORD, lifetimes)[0] == 0
        first_done = time.monotonic()
        # Only the final answer carries the lifetime (Kafka sends 0 before).
        assert lifetimes == [0, LIFETIME_MS]
        sleep_until(first_done + LIFETIME_S / 2)
        lifetimes.clear()
        assert scram_exchange(conn, MECHANISM, ADMIN_USER, ADMIN_PASSWORD, lifetimes)[0] == 0
        second_done = time.monotonic()
        assert lifetimes == [0, LIFETIME_MS]
        # Past the first session's end: the second one serves the request.
        sleep_until(first_done + LIFETIME_S + 0.5)
        assert len(metadata(conn)) > 0
        # Past the second one's end: the next request closes the connection.
        sleep_until(second_done + LIFETIME_S + 0.3)
        conn.send_request(kafka_raw.METADATA, 1, kafka_raw.Writer().int32(0).bytes())
        assert conn.wait_closed(10), "a request after the session ended must close the connection"
    wait_logged(reauth.broker, "SASL session ended")
    assert counter(reauth, "corestream_reauthentications_total") >= 1
    assert counter(reauth, "corestream_expired_sessions_closed_total") >= 1


def test_sasl_reauth_as_another_user_fails_and_closes(reauth, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("carol-pw")
    cli(reauth.broker, "users", "set", "carol", "--mechanism", MECHANISM, "--password-file", str(pw))
    with sasl_conn(reauth) as conn:
        assert scram_exchange(conn, MECHANISM, ADMIN_USER, ADMIN_PASSWORD)[0] == 0
        time.sleep(1.1)  # Kafka refuses a re-authentication within a second
        code, _ = scram_exchange(conn, MECHANISM, "carol", "carol-pw")
        assert code == SASL_AUTHENTICATION_FAILED
        assert conn.wait_closed(10)
    wait_logged(reauth.broker, "cannot change principals during re-authentication from User:admin to User:carol")


def test_sasl_reauth_with_another_mechanism_is_refused(reauth):
    with sasl_conn(reauth) as conn:
        assert scram_exchange(conn, MECHANISM, ADMIN_USER, ADMIN_PASSWORD)[0] == 0
        time.sleep(1.1)
        body = conn.roundtrip(SASL_HANDSHAKE, 1, kafka_raw.Writer().string("PLAIN").bytes())
        assert kafka_raw.Reader(body).int16() == UNSUPPORTED_SASL_MECHANISM
        assert conn.wait_closed(10)
    wait_logged(reauth.broker, 're-authentication with mechanism "PLAIN", the session used SCRAM-SHA-512')


def test_sasl_reauth_librdkafka_producer_reauthenticates_on_its_connections(reauth):
    """librdkafka (2.2+) re-authenticates before each session ends, so a
    producer sending through three lifetimes never sees its connection
    closed and every record is delivered."""
    before_auth = counter(reauth, "corestream_authentications_total")
    conf = reauth.conf("SASL_PLAINTEXT", MECHANISM)
    p = Producer({**conf, "acks": "all", "message.timeout.ms": 20000})
    errors: list = []
    delivered: list[bytes] = []

    def on_delivery(err, msg):
        (errors if err else delivered).append(err or msg.value())

    deadline = time.monotonic() + 3 * LIFETIME_S
    i = 0
    while time.monotonic() < deadline:
        p.produce("reauth-librdkafka", f"r{i}".encode(), on_delivery=on_delivery)
        p.poll(0.1)
        i += 1
    assert p.flush(20) == 0
    assert errors == []
    assert len(delivered) == i
    assert counter(reauth, "corestream_reauthentications_total") >= 2
    assert counter(reauth, "corestream_expired_sessions_closed_total") == 0
    # No connection had to log in again from scratch to go on.
    logins = counter(reauth, "corestream_authentications_total") - before_auth
    assert logins <= 2, f"{logins} fresh logins: connections were closed and reopened"


def test_sasl_reauth_kafka_python_reauthenticates_between_sends(reauth):
    """kafka-python (3.0 here) re-authenticates too: a send after the first session
    ended goes through on the same connection."""
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=reauth.addr("SASL_PLAINTEXT"), security_protocol="SASL_PLAINTEXT",
                      sasl_mechanism=MECHANISM, sasl_plain_username=ADMIN_USER,
                      sasl_plain_password=ADMIN_PASSWORD, acks="all", request_timeout_ms=20000)
    try:
        p.send("reauth-kafka-python", b"before").get(timeout=20)
        time.sleep(LIFETIME_S + 0.5)
        p.send("reauth-kafka-python", b"after").get(timeout=20)
    finally:
        p.close()
    assert counter(reauth, "corestream_reauthentications_total") >= 1
    assert counter(reauth, "corestream_expired_sessions_closed_total") == 0

