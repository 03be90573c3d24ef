"""Property tests: whatever bytes arrive, the message layer raises nothing but RemoteProtocolError.

Covers parse_message and StreamFramer (random chunkings) on arbitrary bytes and on mutated valid messages
(the fixtures), every lazy accessor of what parses, and serialize -> parse round trips. Budgets are kept so
the whole file runs in well under 30 s.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sip import Limits, RemoteProtocolError, Request, StreamFramer, parse_message, serialize
from sip.address import parse_address
from sip.headers import Headers, header_key
from sip.message import Message
from sip.uri import parse_uri
from sip.via import parse_via

ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "sip"
FUZZ = settings(deadline=None, max_examples=1000, suppress_health_check=[HealthCheck.too_slow])


def _seeds() -> list[bytes]:
    """Valid wire messages: the edge fixtures that parse, and the wild pastes with CRLF heads."""
    out = []
    for path in sorted(ROOT.rglob("*.txt")):
        data = path.read_bytes()
        if b"\r\n" not in data:
            head, sep, body = data.partition(b"\n\n")
            data = head.replace(b"\n", b"\r\n") + b"\r\n\r\n" + body if sep else data
        try:
            parse_message(data)
        except RemoteProtocolError:
            continue
        out.append(data)
    assert len(out) > 50
    return out


SEEDS = _seeds()
SMALL = Limits(max_datagram=1500, max_head=600, max_headers=12, max_line=120, max_body=400, max_tcp_buffer=2000)
LIMITS = st.sampled_from([Limits(), SMALL])
SPECIAL = [b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\x00", b":", b'"', b"<", b">", b",", b";", b" ", b"\t", b"\\",
           b"@", b"[", b"]", b"%", b"=", b"?", b"\xff", b"\xc2\xb2", b"\xd9\xa1", b"SIP/2.0", b"Content-Length: 9\r\n",
           b"Via: ", b"\r\n "]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "duplicate", "insert", "delete", "swap-case"]))
        n = len(data)
        pos = draw(st.integers(0, max(0, n - 1)))
        if op == "flip" and n:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[pos:]
        elif op == "duplicate" and n:
            end = draw(st.integers(pos, min(n, pos + 80)))
            data[end:end] = data[pos:end]
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from(SPECIAL))
        elif op == "delete" and n:
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "swap-case" and n:
            data[pos : pos + 12] = bytes(data[pos : pos + 12]).swapcase()
    return bytes(data)


ACCESSORS = ("top_via", "vias", "from_", "to", "cseq", "call_id", "contacts", "routes", "record_routes", "expires",
             "content_type", "content_type_params")  # fmt: skip
DEEP = ("tag", "expires", "user", "display", "rport", "branch", "received", "wants_rport", "sent_by", "reliable",
        "transport", "host_port", "seq", "method")  # fmt: skip


def meaning(msg: Message) -> dict[str, object]:
    """Every lazy accessor, deeply: each must give a value or raise RemoteProtocolError (kept as its status)."""
    out: dict[str, object] = {}
    names = ACCESSORS + (("request_uri", "max_forwards") if isinstance(msg, Request) else ())
    for attr in names:
        try:
            value = getattr(msg, attr)
        except RemoteProtocolError as exc:
            out[attr] = ("error", exc.status_hint)
            continue
        out[attr] = value
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            for sub in DEEP:
                try:
                    out[f"{attr}[{i}].{sub}"] = getattr(item, sub, None)
                except RemoteProtocolError as exc:
                    out[f"{attr}[{i}].{sub}"] = ("error", exc.status_hint)
            uri = getattr(item, "uri", None)
            for sub in ("transport", "host_port"):
                out[f"{attr}[{i}].uri.{sub}"] = getattr(uri, sub, None)
    return out


def check_round_trip(msg: Message, limits: Limits) -> None:
    first = meaning(msg)
    out = serialize(msg)
    try:
        again = parse_message(out, limits)
    except RemoteProtocolError as exc:
        # Only a limit may bite: serialize adds Content-Length and CRLFs, so the text can grow.
        assert exc.status_hint in (413, 414, 513), exc
        return
    assert meaning(again) == first
    assert again.body == msg.body
    strip = [(n, v) for n, v in msg.headers if header_key(n) != "content-length"]
    assert [(n, v) for n, v in again.headers if header_key(n) != "content-length"] == strip
    assert serialize(again) == out


def parse_and_check(data: bytes, limits: Limits) -> None:
    try:
        msg = parse_message(data, limits)
    except RemoteProtocolError as exc:
        assert 400 <= exc.status_hint <= 599
        return
    check_round_trip(msg, limits)


def frame(data: bytes, cuts: list[int], limits: Limits) -> list[str]:
    """Feed ``data`` cut at ``cuts``; return what the framer yielded (Call-IDs and error codes)."""
    framer = StreamFramer(limits)
    events: list[str] = []
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    for a, b in itertools.pairwise(bounds):
        framer.feed(data[a:b])
        while True:
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
            meaning(msg)
            events.append(f"msg:{len(msg.body)}")
    return events


@FUZZ
@given(st.binary(max_size=3000), LIMITS)
def test_arbitrary_bytes(data: bytes, limits: Limits) -> None:
    parse_and_check(data, limits)


@FUZZ
@given(st.lists(st.sampled_from([*SPECIAL, b"a", b"1", b"INVITE", b"sip:", b"\r\n\r\n"]), max_size=60), LIMITS)
def test_soup_of_sip_tokens(parts: list[bytes], limits: Limits) -> None:
    parse_and_check(b"".join(parts), limits)


@settings(FUZZ, max_examples=4000)
@given(mutated(), LIMITS)
def test_mutated_messages(data: bytes, limits: Limits) -> None:
    parse_and_check(data, limits)


@settings(FUZZ, max_examples=1500)
@given(st.lists(mutated(), min_size=1, max_size=3), st.lists(st.integers(0, 10_000), max_size=8), LIMITS)
def test_stream_framer_with_random_chunking(messages: list[bytes], cuts: list[int], limits: Limits) -> None:
    data = b"\r\n\r\n".join(messages)
    whole = frame(data, [], limits)
    chunked = frame(data, cuts, limits)
    assert chunked == whole  # how the bytes were cut never changes what comes out


@settings(FUZZ, max_examples=300)
@given(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=4), st.lists(st.integers(0, 10_000), max_size=10))
def test_stream_framer_gives_back_valid_messages(seeds: list[bytes], cuts: list[int]) -> None:
    framed = [s for s in seeds if b"Content-Length" in s or b"\nl:" in s]
    data = b"".join(serialize(parse_message(s)) for s in framed)
    events = frame(data, cuts, Limits())
    assert events == [f"msg:{len(parse_message(s).body)}" for s in framed]


@FUZZ
@given(st.text(max_size=200))
def test_structured_parsers_on_arbitrary_text(text: str) -> None:
    for fn in (parse_uri, parse_address, parse_via):
        try:
            fn(text)
        except RemoteProtocolError:
            pass
    h = Headers([("Contact", text), ("Via", text), ("X", text)])
    for name in ("contact", "via", "x"):
        h.values(name)
