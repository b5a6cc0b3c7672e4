"""Pipelined raw requests: many requests written to one socket before any
answer is read, as clients pipeline them. Bodies are encoded and answers
decoded with kafka-python's generated protocol classes (from Kafka's own
JSON schemas), framed by `kafka_raw.RawConn`.
"""

from __future__ import annotations

import kafka_raw


def build(cls, data: dict):
    """A kafka-python message or struct of `cls` from a dict; nested dicts
    and lists of dicts become the field's struct class."""
    kwargs = {}
    for key, value in data.items():
        field = cls.fields[key]
        if field.is_struct_array() and value is not None:
            value = [build(field.data_class, v) for v in value]
        elif field.is_struct() and isinstance(value, dict):
            value = build(field.data_class, value)
        kwargs[key] = value
    return cls(**kwargs)


def send(conn: kafka_raw.RawConn, request) -> tuple[int, type, int]:
    """Writes one request; returns what `receive` needs to read its answer."""
    version = request.version
    flexible = request.flexible_version_q(version)
    cid = conn.send_request(request.API_KEY, version, bytes(request.encode()), flexible_header=flexible)
    return cid, request, version


def receive(conn: kafka_raw.RawConn, sent: tuple[int, type, int], response_cls):
    cid, request, version = sent
    flexible = response_cls[version].flexible_version_q(version)
    payload = conn.recv_response(cid, flexible_header=flexible)
    return response_cls[version].decode(payload)


def pipeline(conn: kafka_raw.RawConn, requests: list, response_cls) -> list:
    """Writes every request, then reads every answer, in order."""
    sent = [send(conn, r) for r in requests]
    return [receive(conn, s, response_cls) for s in sent]


def roundtrip(conn: kafka_raw.RawConn, request, response_cls):
    return pipeline(conn, [request], response_cls)[0]
