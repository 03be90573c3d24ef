"""The lean lane's reader (sip/lite.py) against the full parser: whatever ``peek`` accepts, ``parse_message`` reads
the same way, and ``response`` writes the bytes ``make_response`` + ``serialize`` write (RFC 3261 §8.2.6, §18.2.1,
RFC 3581 §4). What it declines goes to the full parser, so declining is always safe; accepting must be exact."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sip.endpoint import _replace_top_via, _response_peer
from sip.errors import RemoteProtocolError
from sip.events import Peer
from sip.lite import peek, response, target
from sip.message import Request, make_response
from sip.parser import parse_message
from sip.serializer import serialize

DEV = "34020000001320000001"
VIA = "Via: SIP/2.0/UDP 127.0.0.1:25170;rport;branch=z9hG4bK-1-1\r\n"
SIPP_REGISTER = (
    f"REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\n"
    f"Via: SIP/2.0/UDP 127.0.0.1:25170;rport;branch=z9hG4bK-1-1\r\n"
    f"From: <sip:{DEV}@3402000000>;tag=4242SIPpTag001\r\n"
    f"To: <sip:{DEV}@3402000000>\r\n"
    f"Call-ID: 1-4242@127.0.0.1\r\n"
    "CSeq: 1 REGISTER\r\n"
    f"Contact: <sip:{DEV}@127.0.0.1:25170>\r\n"
    "Max-Forwards: 70\r\nUser-Agent: SIPp\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
).encode()


def _message(body: bytes, *heads: str) -> bytes:
    base = [
        "MESSAGE sip:34020000002000000001@3402000000 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bK-ka-1",
        f"From: <sip:{DEV}@3402000000>;tag=ka1",
        "To: <sip:34020000002000000001@3402000000>",
        "Call-ID: ka-1@127.0.0.1",
        "CSeq: 20 MESSAGE",
        "Content-Type: Application/MANSCDP+xml",
        *heads,
        f"Content-Length: {len(body)}",
    ]
    return ("\r\n".join(base) + "\r\n\r\n").encode() + body


def full_response(data: bytes, status: int, source: tuple[str, int], headers: list[tuple[str, str]], server: str):
    req = parse_message(data)
    assert isinstance(req, Request)
    fixed = req.top_via.with_received(*source)
    if fixed.params != req.top_via.params:
        req = _replace_top_via(req, fixed)
    resp = make_response(req, status, to_tag="TAG", headers=headers)
    keys = resp.headers._keys
    extra = (("Server", server),) if server and "server" not in keys and "user-agent" not in keys else ()
    return serialize(resp, extra), _response_peer(fixed, Peer("UDP", *source))


def assert_same(data: bytes, source: tuple[str, int] = ("127.0.0.1", 25170)) -> None:
    """``peek`` accepted ``data``: every field and the response agree with the full parser's."""
    lite = peek(data)
    assert lite is not None
    full = parse_message(data)
    assert isinstance(full, Request)
    via = full.top_via
    assert (lite.method, lite.uri, lite.call_id, lite.body) == (full.method, full.uri, full.call_id, full.body)
    assert (lite.from_user, lite.to_user) == (full.from_.user, full.to.user)
    assert full.from_.tag and full.to.tag is None and full.cseq.method == full.method
    assert (lite.branch, lite.sent_by, lite.rport) == (via.branch, via.sent_by, via.param("rport") == "")
    assert lite.content_type == full.content_type
    for name in ("contact", "expires", "authorization", "x-gb-ver", "user-agent", "content-type"):
        assert lite.header(name.encode()) == full.headers.get(name), name
    for status, headers, server in (
        (401, [("WWW-Authenticate", 'Digest realm="3402000000", nonce="abc", qop="auth"')], "gb28181"),
        (200, [("Expires", "3600"), ("Date", "2026-11-25T10:00:00.000")], ""),
        (403, [("Server", "own")], "gb28181"),
    ):
        ours = response(lite, status, source, to_tag="TAG", headers=headers, server=server)
        theirs, peer = full_response(data, status, source, headers, server)
        assert ours == theirs
        assert target(lite, source) == (peer.host, peer.port)


def test_a_sipp_register_and_a_keepalive_take_the_lane_and_read_as_the_full_parser_reads_them() -> None:
    assert_same(SIPP_REGISTER)
    body = b'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify><CmdType>Keepalive</CmdType></Notify>\r\n'
    assert_same(_message(body))
    assert_same(_message(body), ("10.1.2.3", 40000))  # another source: received and rport as RFC 3581 says


def test_compact_forms_odd_case_blanks_and_display_names_are_read_alike() -> None:
    data = (
        "REGISTER sip:3402000000 SIP/2.0\r\n"
        "v :  SIP/2.0/UDP 192.168.1.64:5060;branch=z9hG4bK77;x-vendor=1  \r\n"
        f'f: "摄像机 1" <sip:{DEV}@3402000000>;tag=aa\r\n'
        f"t: Camera <sip:{DEV}@3402000000>;x=1\r\n"
        "i: abc@192.168.1.64\r\nCSEQ: 7   REGISTER\r\nm: <sip:x@192.168.1.64:5060>;expires=60\r\nl: 0\r\n\r\n"
    ).encode()
    assert_same(data, ("192.168.1.64", 5060))  # same host, no rport: the Via is copied as sent
    assert_same(data, ("10.0.0.9", 6000))  # NAT: received added, answered to the sent-by port


@pytest.mark.parametrize(
    "change",
    [
        (VIA, "Via: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2\r\n"),  # two Vias
        (VIA, "Via: SIP/2.0/UDP 127.0.0.1:25170;branch=1-1\r\n"),  # RFC 2543 branch
        (VIA, "Via: SIP/2.0/UDP 127.0.0.1:25170;rport=9;branch=z9hG4bK1\r\n"),
        (VIA, "Via: SIP/2.0/UDP 127.0.0.1:25170;received=1.2.3.4;branch=z9hG4bK1\r\n"),
        (VIA, "Via: SIP/2.0/UDP 127.0.0.1:025170;branch=z9hG4bK1\r\n"),
        (f"To: <sip:{DEV}@3402000000>\r\n", f"To: <sip:{DEV}@3402000000>;tag=in-dialog\r\n"),
        ("From: <sip:", "From: sip:"),  # addr-spec without brackets: the full parser's job
        ("tag=4242SIPpTag001", "x=1"),  # no From tag (RFC 2543)
        ("Max-Forwards: 70\r\n", "Require: 100rel\r\n"),
        ("Max-Forwards: 70\r\n", "Route: <sip:proxy>\r\n"),
        ("Max-Forwards: 70\r\n", "Max-Forwards: 0\r\n"),
        ("User-Agent: SIPp\r\n", "User-Agent: SIPp\r\n folded\r\n"),
        ("Expires: 3600\r\n", "Expires: 3600\r\nExpires: 60\r\n"),
        ("Content-Length: 0", "Content-Length: 5"),
        ("CSeq: 1 REGISTER", "CSeq: 1 MESSAGE"),
        ("Call-ID: 1-4242@127.0.0.1\r\n", ""),
        ("User-Agent: SIPp\r\n", "User-Agent: SIPp\n"),
        (f"sip:{DEV}@3402000000>;tag", "sip:%33402@3402000000>;tag"),  # an escape in the user part
    ],
)
def test_unusual_shapes_are_left_to_the_full_parser(change: tuple[str, str]) -> None:
    old, new = change
    assert old.encode() in SIPP_REGISTER
    assert peek(SIPP_REGISTER.replace(old.encode(), new.encode(), 1)) is None


def test_other_methods_and_broken_heads_are_declined() -> None:
    assert peek(SIPP_REGISTER.replace(b"REGISTER", b"OPTIONS")) is None
    assert peek(SIPP_REGISTER[:-4]) is None  # no end of head
    assert peek(SIPP_REGISTER.replace(b"SIP/2.0\r\n", b"SIP/2.1\r\n", 1)) is None
    assert peek(b"") is None


names = st.sampled_from
_VIA_HOSTS = ["127.0.0.1", "10.0.0.5", "dev.example.com", "[::1]", "[2001:db8::7]"]


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, tuple[str, int]]:
    method = draw(st.sampled_from(["REGISTER", "MESSAGE"]))
    host = draw(st.sampled_from(_VIA_HOSTS))
    port = draw(st.sampled_from([None, 5060, 25170]))
    params = [f"branch=z9hG4bK{draw(st.integers(0, 10**6))}"]
    if draw(st.booleans()):
        params.insert(draw(st.integers(0, 1)), "rport")
    if draw(st.booleans()):
        params.append("x-ok=1")
    sent_by = host if port is None else f"{host}:{port}"
    display = draw(st.sampled_from(["", '"摄像机" ', "Cam 1 ", '"a\'b" ']))
    user = draw(st.from_regex(r"[0-9]{20}", fullmatch=True))
    blank = draw(st.sampled_from([" ", "  ", "\t", ""]))
    lines = {
        "via": f"{draw(names(['Via', 'v', 'VIA']))}:{blank}SIP/2.0/UDP {sent_by};{';'.join(params)}",
        "from": f"{draw(names(['From', 'f']))}: {display}<sip:{user}@3402000000>;tag={draw(st.integers(1, 999))}",
        "to": f"{draw(names(['To', 't']))} : <sip:{user if method == 'REGISTER' else '3402'}@3402000000>",
        "call-id": f"{draw(names(['Call-ID', 'i', 'call-id']))}: {draw(st.integers(1, 10**9))}@host",
        "cseq": f"CSeq: {draw(st.integers(1, 2**31 - 1))} {method}",
    }
    extra = draw(
        st.lists(
            st.sampled_from(
                [
                    "Max-Forwards: 70",
                    f"Contact: <sip:{user}@{host}:5060>",
                    "Expires: 3600",
                    "User-Agent: IP Camera  ",
                    "X-GB-ver: 3.0",
                    'Authorization: Digest username="x", realm="r", nonce="n", uri="sip:a", response="0"',
                    "Content-Type: Application/MANSCDP+xml",
                ]
            ),
            unique=True,
        )
    )
    order = draw(st.permutations(list(lines.values()) + extra))
    body = b"" if method == "REGISTER" else b"<Notify>\r\n<CmdType>Keepalive</CmdType></Notify>"
    length = draw(st.sampled_from([None, "Content-Length", "l"]))
    head = [f"{method} sip:34020000002000000001@3402000000 SIP/2.0", *order]
    if length:
        head.append(f"{length}: {len(body)}")
    source = (draw(st.sampled_from(["127.0.0.1", "10.0.0.5", "192.0.2.9", "::1"])), draw(st.sampled_from([5060, 4000])))
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body, source


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_generated_plain_requests_take_the_lane_and_agree_with_the_full_parser(case: tuple[bytes, tuple[str, int]]):
    data, source = case
    assert_same(data, source)


@settings(max_examples=400, deadline=None)
@given(requests(), st.randoms(use_true_random=False), st.integers(1, 6))
def test_mutated_requests_are_declined_or_read_exactly_as_the_full_parser_reads_them(
    case: tuple[bytes, tuple[str, int]], rnd: random.Random, flips: int
) -> None:
    data, source = case
    raw = bytearray(data)
    for _ in range(flips):
        i = rnd.randrange(len(raw))
        raw[i] = rnd.choice(b" \t\r\n;:,<>\"@=0aZ\x00\xff")
    mutated = bytes(raw)
    lite = peek(mutated)  # never raises
    if lite is None:
        return
    try:
        parse_message(mutated)
    except RemoteProtocolError as exc:  # the lane accepted what the full parser refuses: a bug
        raise AssertionError(f"lane accepted a message the parser refuses ({exc.reason}): {mutated!r}") from exc
    assert_same(mutated, source)
