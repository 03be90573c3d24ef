"""Every SIP fixture under fixtures/sip/ against its written expectation in fixtures/sip/EXPECTED.toml.

The loader turns pasted text into wire bytes exactly as the table's ``loader`` says (the schema is described
at the top of EXPECTED.toml). Expectations are meanings (Call-ID, tags, Via fields...), not echoed bytes;
accepted messages must also survive parse -> serialize -> parse with the same meaning.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any

import pytest

from sip import Limits, RemoteProtocolError, Request, StreamFramer, parse_message, serialize
from sip.headers import header_key
from sip.message import Message
from sip.uri import SipUri

ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "sip"
EXPECTED: dict[str, dict[str, Any]] = tomllib.loads((ROOT / "EXPECTED.toml").read_text(encoding="utf-8"))
UDP = sorted(k for k, v in EXPECTED.items() if v["loader"].get("transport", "udp") == "udp")
TCP = sorted(k for k, v in EXPECTED.items() if v["loader"].get("transport") == "tcp")
ACCEPTED_UDP = [k for k in UDP if EXPECTED[k]["outcome"] in ("accept", "repair")]

# Compared on every accepted message: a key absent from the table means the value is absent (None).
CORE = (
    "kind", "method", "request_uri", "status", "reason", "call_id", "cseq", "cseq_method",
    "from_user", "from_tag", "to_user", "to_tag", "via_count", "via_transport", "via_host", "via_port",
    "via_branch", "via_rport", "via_received", "contact_users", "contact_star", "expires", "content_type",
    "body_length",
)  # fmt: skip
# Compared only where the table gives them.
OPTIONAL = (
    "ruri_scheme", "ruri_user", "ruri_password", "ruri_host", "ruri_port", "ruri_params", "ruri_headers",
    "from_display", "to_display", "from_uri", "via_sent_by", "via_transports", "contact_displays",
    "contact_expires", "contact_hosts",
)  # fmt: skip
ACCESSORS = (
    "top_via", "vias", "from_", "to", "cseq", "call_id", "contacts", "routes", "record_routes", "expires",
    "content_type", "content_type_params",
)  # fmt: skip


def _latin1(text: str) -> bytes:
    return text.encode("latin-1")


def load_wire(name: str) -> bytes:
    """The wire bytes for a fixture, built as its ``loader`` table says."""
    raw = (ROOT / name).read_bytes()
    loader = EXPECTED[name]["loader"]
    if loader["head"] == "raw":
        return raw
    assert loader["head"] == "lf-to-crlf", loader
    text = raw.decode("utf-8")
    head, sep, body = text.partition("\n\n")
    assert sep, f"{name}: no empty line after the head"
    assert "\r" not in head, f"{name}: a pasted head must be LF-only"
    for old, new in loader.get("body_replace", []):
        assert old in body, (name, old)
        body = body.replace(old, new)
    mode = loader.get("body", "as-is")
    if mode in ("crlf", "crlf-no-final-eol"):
        body = body.replace("\n", "\r\n")
        if mode == "crlf-no-final-eol":
            assert body.endswith("\r\n")
            body = body[:-2]
    else:
        assert mode == "as-is", loader
    wire_body = body.encode(loader.get("body_encoding", "utf-8")) + _latin1(loader.get("body_append", ""))
    return head.replace("\n", "\r\n").encode("utf-8") + b"\r\n\r\n" + wire_body


def limits_for(name: str) -> Limits:
    return Limits(**EXPECTED[name].get("limits", {}))


def describe(msg: Message) -> dict[str, Any]:
    """The meaning of a message, in EXPECTED.toml's vocabulary (None = absent)."""
    d: dict[str, Any] = {}
    if isinstance(msg, Request):
        d.update(kind="request", method=msg.method, request_uri=msg.uri)
        ruri = msg.request_uri
        if isinstance(ruri, SipUri):
            d.update(
                ruri_scheme=ruri.scheme, ruri_user=ruri.user, ruri_password=ruri.password, ruri_host=ruri.host,
                ruri_port=ruri.port, ruri_params={k: v or "" for k, v in ruri.params}, ruri_headers=ruri.headers,
            )  # fmt: skip
    else:
        d.update(kind="response", status=msg.status, reason=msg.reason)
    d.update(call_id=msg.call_id, cseq=msg.cseq.seq, cseq_method=msg.cseq.method)
    frm, to = msg.from_, msg.to
    d.update(from_user=frm.user, from_tag=frm.tag, from_display=frm.display, from_uri=str(frm.uri))
    d.update(to_user=to.user, to_tag=to.tag, to_display=to.display)
    top = msg.top_via
    d.update(
        via_count=len(msg.vias), via_transport=top.transport, via_host=top.host, via_port=top.port,
        via_branch=top.branch, via_rport=top.param("rport"), via_received=top.received,
        via_sent_by=[v.sent_by for v in msg.vias], via_transports=[v.transport for v in msg.vias],
    )  # fmt: skip
    contacts = [c for c in msg.contacts if not c.star]
    d["contact_star"] = True if any(c.star for c in msg.contacts) else None
    if contacts:
        d["contact_users"] = [c.user or "" for c in contacts]
        d["contact_displays"] = [c.display or "" for c in contacts]
        d["contact_expires"] = [c.expires for c in contacts]
        d["contact_hosts"] = [getattr(c.uri, "host", None) for c in contacts]
    d.update(expires=msg.expires, content_type=msg.content_type, body_length=len(msg.body))
    return d


def check_meaning(name: str, msg: Message) -> None:
    exp = EXPECTED[name]
    got = describe(msg)
    for key in CORE:
        assert got.get(key) == exp.get(key), f"{name}: {key}"
    for key in OPTIONAL:
        if key in exp:
            assert got.get(key) == exp[key], f"{name}: {key}"
    body = msg.body
    if "body_prefix" in exp:
        assert body.startswith(_latin1(exp["body_prefix"])), name
    if "body_suffix" in exp:
        assert body.endswith(_latin1(exp["body_suffix"])), name
    if "body_sha256" in exp:
        assert hashlib.sha256(body).hexdigest() == exp["body_sha256"], name
    if "body_gb18030_contains" in exp:
        assert exp["body_gb18030_contains"] in body.decode("gb18030"), name
    if "from_display_gb18030" in exp:
        display = msg.from_.display or ""
        assert display.encode("utf-8", "surrogateescape").decode("gb18030") == exp["from_display_gb18030"]
    for header, text in exp.get("header_gb18030", {}).items():
        value = msg.header(header) or ""
        assert value.encode("utf-8", "surrogateescape").decode("gb18030") == text, (name, header)
    if "names" in exp:
        assert [n for n, _ in msg.headers] == exp["names"], name
    for header, value in exp.get("header", {}).items():
        assert msg.header(header) == value, (name, header)
    for header, values in exp.get("values", {}).items():
        assert msg.headers.values(header) == values, (name, header)


def touch_all(msg: Message) -> None:
    """Every lazy accessor either works or raises RemoteProtocolError, never anything else."""
    names = ACCESSORS + (("request_uri", "max_forwards") if isinstance(msg, Request) else ())
    for attr in names:
        try:
            value = getattr(msg, attr)
        except RemoteProtocolError:
            continue
        for item in value if isinstance(value, list) else [value]:
            for sub in ("tag", "expires", "rport", "branch", "received", "user", "transport"):
                try:
                    getattr(item, sub, None)
                except RemoteProtocolError:
                    pass


def without_length(msg: Message) -> list[tuple[str, str]]:
    return [(n, v) for n, v in msg.headers if header_key(n) != "content-length"]


# --- bookkeeping ---------------------------------------------------------------------------------------


def test_every_fixture_has_an_expectation_and_back() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.txt")}
    assert files == set(EXPECTED), (sorted(files - set(EXPECTED)), sorted(set(EXPECTED) - files))


def test_expectations_are_well_formed() -> None:
    for name, exp in EXPECTED.items():
        assert exp["outcome"] in ("accept", "repair", "reject"), name
        assert exp["loader"]["head"] in ("raw", "lf-to-crlf"), name
        if exp["outcome"] == "reject":
            assert isinstance(exp["status"], int), name
        if exp["outcome"] == "repair":
            assert exp["loader"].get("note"), f"{name}: a repair must say what it restores"
        if name.startswith("wild/"):
            assert exp.get("cl_check"), name


def test_copies_are_byte_exact_where_it_matters() -> None:
    # The two files whose line ends carry meaning must not have been normalised by an editor or git.
    exact = (ROOT / "wild/hikvision/ipc-catalog-exact-bytes-crlf-headers-lf-body.txt").read_bytes()
    assert len(exact) == 907 and exact.count(b"\r\n") == 11
    assert b"\r\n\r\n<?xml" in exact and b"</Response>\n" in exact
    tiandy = ROOT.parent / "manscdp/wild/tiandy/dvr-tc2808an-deviceinfo-body.txt"
    assert tiandy.read_bytes().count(b"\r\n") == 13


# --- datagrams -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", UDP)
def test_datagram(name: str) -> None:
    exp = EXPECTED[name]
    wire = load_wire(name)
    limits = limits_for(name)
    if exp["outcome"] == "reject":
        if exp["stage"] == "parse":
            with pytest.raises(RemoteProtocolError) as info:
                parse_message(wire, limits)
        else:
            msg = parse_message(wire, limits)
            with pytest.raises(RemoteProtocolError) as info:
                getattr(msg, exp["accessor"])
        assert info.value.status_hint == exp["status"]
        return
    msg = parse_message(wire, limits)
    check_meaning(name, msg)
    touch_all(msg)


@pytest.mark.parametrize("name", ACCEPTED_UDP)
def test_round_trip(name: str) -> None:
    limits = limits_for(name)
    wire = load_wire(name)
    first = parse_message(wire, limits)
    out = serialize(first)
    second = parse_message(out, limits)
    assert describe(second) == describe(first)
    check_meaning(name, second)
    assert without_length(second) == without_length(first)
    assert second.header("content-length") == str(len(first.body))
    assert second.body == first.body
    assert serialize(second) == out  # canonical after one pass
    if EXPECTED[name].get("byte_exact_roundtrip"):
        assert out == wire


WITH_LENGTH = [k for k in ACCEPTED_UDP if "content-length" in parse_message(load_wire(k), limits_for(k)).headers]


@pytest.mark.parametrize("name", WITH_LENGTH)
def test_datagram_bytes_also_frame_on_a_stream(name: str) -> None:
    """The same bytes on TCP give the same first message (every one of these carries Content-Length)."""
    framer = StreamFramer(limits_for(name))
    framer.feed(load_wire(name))
    msg = framer.next_message()
    assert msg is not None
    check_meaning(name, msg)


@pytest.mark.parametrize("name", [k for k in UDP if EXPECTED[k].get("short_body")])
def test_short_body_waits_on_a_stream(name: str) -> None:
    wire = load_wire(name)
    framer = StreamFramer(limits_for(name))
    framer.feed(wire)
    assert framer.next_message() is None
    assert framer.broken is None
    assert framer.buffered == len(wire)


# --- streams -------------------------------------------------------------------------------------------


def _drain(framer: StreamFramer, events: list[str], seen: list[Message]) -> bool:
    """Collect what the framer yields now; False once the stream is broken."""
    while True:
        try:
            msg = framer.next_message()
        except RemoteProtocolError as exc:
            if framer.broken is not None:
                events.append(f"broken:{exc.status_hint}")
                return False
            assert hasattr(exc, "framed_head")
            events.append(f"error:{exc.status_hint}")
            continue
        if msg is None:
            return True
        events.append(msg.call_id)
        seen.append(msg)


def run_stream(data: bytes, chunks: list[bytes], limits: Limits) -> tuple[list[str], list[Message], int]:
    framer = StreamFramer(limits)
    events: list[str] = []
    seen: list[Message] = []
    for chunk in chunks:
        framer.feed(chunk)
        if not _drain(framer, events, seen):
            break
    return events, seen, framer.keepalives


def chunkings(data: bytes, mode: str) -> list[list[bytes]]:
    if mode == "whole":
        return [[data]]
    if mode == "bytewise":
        return [[data[i : i + 1] for i in range(len(data))]]
    assert mode == "every-split", mode
    return [[data[:i], data[i:]] for i in range(len(data) + 1)]


@pytest.mark.parametrize("name", TCP)
def test_stream(name: str) -> None:
    exp = EXPECTED[name]
    data = load_wire(name)
    modes = exp["loader"]["chunks"]
    for mode in modes:
        for chunks in chunkings(data, mode):
            events, seen, keepalives = run_stream(data, chunks, limits_for(name))
            assert events == exp["events"], (mode, [len(c) for c in chunks])
            assert keepalives == exp["keepalives"], (mode, [len(c) for c in chunks])
            if "kind" in exp:
                check_meaning(name, seen[0])
    if exp["outcome"] == "reject":
        assert f":{exp['status']}" in " ".join(exp["events"])


def test_every_wild_file_has_its_provenance_row() -> None:
    for base in (ROOT / "wild", ROOT.parent / "manscdp" / "wild"):
        provenance = (base / "PROVENANCE.md").read_text(encoding="utf-8")
        assert "2026-11-25" in provenance
        for path in base.rglob("*.txt"):
            assert f"| {path.relative_to(base).as_posix()} |" in provenance, path
