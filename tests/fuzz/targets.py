"""Fuzz entry points shared by the atheris targets (``fuzz_sip.py``, ``fuzz_manscdp.py``) and the bounded
hypothesis run in the normal suite (``test_fuzz_targets.py``).

Each target takes raw bytes and must raise nothing but the documented protocol error: the SIP parser and stream
framer only ``RemoteProtocolError`` (with a 4xx/5xx hint), the MANSCDP codec only ``ManscdpError``; what parses
must survive serialise -> parse with the same meaning. Any other exception is a crash: keep its input as a
fixture under ``tests/fuzz/crashes/`` and fix the code.
"""

from __future__ import annotations

from pathlib import Path

from gb28181.manscdp import ManscdpError, parse_envelope
from gb28181.manscdp.codec import decode, encode
from sip import Limits, RemoteProtocolError, StreamFramer, parse_message, serialize
from sip.message import Request

ROOT = Path(__file__).resolve().parents[2]
SMALL = Limits(max_datagram=1500, max_head=600, max_headers=12, max_line=120, max_body=400, max_tcp_buffer=2000)


def _touch(msg: object) -> None:
    """Every lazy accessor a handler may read; each may raise RemoteProtocolError only."""
    for name in ("top_via", "cseq", "from_", "to", "call_id", "contacts", "record_routes", "content_type", "vias"):
        try:
            getattr(msg, name)
        except RemoteProtocolError:
            pass
        except AttributeError:
            pass
    if isinstance(msg, Request):
        try:
            msg.request_uri  # noqa: B018
        except RemoteProtocolError:
            pass


def sip_datagram(data: bytes) -> None:
    """parse_message on one datagram, under both the default and small limits; round trip what parses."""
    limits = SMALL if data[:1] in (b"a", b"b") else Limits()
    try:
        msg = parse_message(data, limits)
    except RemoteProtocolError as exc:
        assert 400 <= exc.status_hint <= 599, exc
        return
    _touch(msg)
    out = serialize(msg)
    try:
        again = parse_message(out, limits)
    except RemoteProtocolError as exc:
        assert exc.status_hint in (413, 414, 513), exc  # only a limit may bite: serialising can grow the text
        return
    assert again.body == msg.body
    assert serialize(again) == out


def sip_stream(data: bytes) -> None:
    """StreamFramer on a stream cut into chunks at positions taken from the first bytes; the outcome must not
    depend on the cuts."""
    cuts = sorted({b % (len(data) + 1) for b in data[:6]})
    body = data[6:]

    def run(points: list[int]) -> list[str]:
        framer = StreamFramer(SMALL)
        events: list[str] = []
        for a, b in zip([0, *points], [*points, len(body)], strict=True):
            framer.feed(body[a:b])
            for _ in range(len(body) + 2):  # bounded: at most one message per byte
                try:
                    msg = framer.next_message()
                except RemoteProtocolError as exc:
                    assert 400 <= exc.status_hint <= 599
                    if framer.broken is not None:
                        return [*events, f"broken:{exc.status_hint}"]
                    events.append(f"error:{exc.status_hint}")
                    continue
                if msg is None:
                    break
                _touch(msg)
                events.append(f"msg:{len(msg.body)}")
        return events

    points = [c for c in cuts if c <= len(body)]
    assert run(points) == run([]), "framing depends on how the stream was cut"


def manscdp(data: bytes) -> None:
    """parse_envelope and decode: ManscdpError only; what decodes round-trips through encode."""
    try:
        parse_envelope(data)
    except ManscdpError:
        pass
    try:
        out = decode(data)
    except ManscdpError as exc:
        assert isinstance(exc.raw, bytes)
        return
    for charset in ("utf-8", "GB2312"):
        again = decode(encode(out.message, charset=charset)).message
        if charset == "utf-8":
            assert again == out.message, (out.message, again)


TARGETS = {"sip": sip_datagram, "stream": sip_stream, "manscdp": manscdp}


def seeds(kind: str) -> list[bytes]:
    """Starting inputs: the repository's fixtures (valid and invalid, vendor styles) and kept crash inputs."""
    if kind == "manscdp":
        paths = [*sorted((ROOT / "fixtures" / "manscdp").rglob("*.xml"))]
    else:
        paths = [*sorted((ROOT / "fixtures" / "sip").rglob("*.txt"))]
    paths += sorted((Path(__file__).with_name("crashes") / kind).glob("*"))
    return [p.read_bytes() for p in paths if p.is_file()]
