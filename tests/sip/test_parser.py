"""Unit tests of sip.parser (datagrams and the TCP StreamFramer) and sip.serializer.

Every failure must be a RemoteProtocolError whose status_hint is what the stack would answer. The last part
holds a few RFC 4475-style torture messages, written for this file from the RFC's descriptions.
"""

from __future__ import annotations

import pytest

import sip.parser as parser_mod
from sip import Limits, RemoteProtocolError, Request, Response, StreamFramer, parse_message, serialize
from sip.address import Address
from sip.uri import AbsoluteUri, SipUri

CRLF = "\r\n"


def wire(start: str, *headers: str, body: bytes = b"", length: bool | str = True, eol: str = CRLF) -> bytes:
    lines = [start, *headers]
    if length is True:
        lines.append(f"Content-Length: {len(body)}")
    elif length:
        lines.append(f"Content-Length: {length}")
    return (eol.join(lines) + eol + eol).encode("utf-8", "surrogateescape") + body


BASE_HEADERS = (
    "Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK-1",
    "From: <sip:34020000001320000001@3402000000>;tag=f1",
    "To: <sip:34020000002000000001@3402000000>",
    "Call-ID: c1@192.168.1.64",
    "CSeq: 20 MESSAGE",
)
REQ = "MESSAGE sip:34020000002000000001@3402000000 SIP/2.0"


def request(*extra: str, body: bytes = b"", length: bool | str = True, start: str = REQ, eol: str = CRLF) -> bytes:
    return wire(start, *BASE_HEADERS, *extra, body=body, length=length, eol=eol)


def status_of(data: bytes, limits: Limits | None = None) -> int:
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(data, limits or Limits())
    return info.value.status_hint


# --- framing a datagram --------------------------------------------------------------------------------


def test_minimal_request() -> None:
    msg = parse_message(request(body=b"<x/>"))
    assert isinstance(msg, Request)
    assert (msg.method, msg.uri, msg.version, msg.body) == ("MESSAGE", REQ.split()[1], "SIP/2.0", b"<x/>")
    assert msg.call_id == "c1@192.168.1.64"


def test_leading_crlfs_are_ignored() -> None:
    assert parse_message(b"\r\n\r\n\n" + request()).call_id == "c1@192.168.1.64"


@pytest.mark.parametrize("data", [b"", b"\r\n", b"\r\n\r\n", b"\n\n\n"])
def test_empty_datagram_is_400(data: bytes) -> None:
    assert status_of(data) == 400


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_line_ends(eol: str) -> None:
    msg = parse_message(request(body=b"a\r\n\nb", eol=eol))
    assert msg.body == b"a\r\n\nb"
    assert msg.cseq.seq == 20


@pytest.mark.parametrize("blank", [b"\n\r\n", b"\r\n\n", b"\n\n", b"\r\n\r\n"])
def test_any_mix_of_line_ends_ends_the_head(blank: bytes) -> None:
    data = request(length=False).rstrip(b"\r\n") + b"\r\nContent-Length: 3" + blank + b"abc"
    assert parse_message(data).body == b"abc"


def test_message_without_final_empty_line() -> None:
    data = request(length=False).rstrip(b"\r\n") + b"\r\n"
    assert parse_message(data).body == b""
    assert parse_message(data.rstrip(b"\r\n")).body == b""


def test_missing_content_length_takes_the_rest_of_the_datagram() -> None:
    assert parse_message(request(body=b"<a>\r\n</a>\r\n", length=False)).body == b"<a>\r\n</a>\r\n"


def test_bytes_beyond_content_length_are_discarded() -> None:
    assert parse_message(request(body=b"12345", length="3")).body == b"123"


@pytest.mark.parametrize(
    "value, body",
    [("   5", b"12345"), ("5   ", b"12345"), ("0005", b"12345"), ("\t5", b"12345"), ("0", b"")],
)
def test_content_length_forms_accepted(value: str, body: bytes) -> None:
    assert parse_message(request(f"Content-Length:{value}", body=body, length=False)).body == body


@pytest.mark.parametrize("value", ["-1", "+5", "0x5", "5 5", "", "1e3", "1234567890", "\u00b2", "\u0665", "5;x"])
def test_bad_content_length_is_400(value: str) -> None:
    assert status_of(request(f"Content-Length: {value}", body=b"12345", length=False)) == 400


def test_content_length_longer_than_datagram_is_400() -> None:
    assert status_of(request(body=b"123", length="4")) == 400


def test_compact_content_length() -> None:
    assert parse_message(request("l: 2", body=b"hi!", length=False)).body == b"hi"


def test_duplicate_content_length() -> None:
    same = request("Content-Length: 2", "l: 02", body=b"hi", length=False)
    assert parse_message(same).body == b"hi"
    assert status_of(request("Content-Length: 2", "Content-Length: 1", body=b"hi", length=False)) == 400


# --- start line ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "start, status",
    [
        ("MESSAGE sip:a@b SIP/3.0", 505),
        ("MESSAGE sip:a@b SIP/1.0", 505),
        ("SIP/3.0 200 OK", 505),
        ("MESSAGE sip:a@b HTTP/1.1", 400),
        ("MESSAGE  sip:a@b SIP/2.0", 400),
        ("MESSAGE sip:a@b SIP/2.0 ", 400),
        ("MESSAGE sip:a@b", 400),
        ("MES(SAGE sip:a@b SIP/2.0", 400),
        ("SIP/2.0 20 OK", 400),
        ("SIP/2.0 2000 OK", 400),
        ("MESSAGE sip:a@b SIP/2", 400),
        ("MESSAGE sip:a@b SIP/2.0.1", 400),
        ("SIP/2.0/UDP 200 OK", 400),
        ("SIP/2.1 200 OK", 505),
        ("SIP/2.0 099 Early", 400),
        ("SIP/2.0 700 Late", 400),
        ("SIP/2.0 2x0 OK", 400),
        ("SIP/2.0 \u00b2\u00b2\u00b2 OK", 400),
        (" MESSAGE sip:a@b SIP/2.0", 400),
    ],
)
def test_bad_start_lines(start: str, status: int) -> None:
    assert status_of(wire(start, *BASE_HEADERS)) == status


def test_version_is_case_insensitive_and_normalised() -> None:
    msg = parse_message(request(start="MESSAGE sip:a@b sip/2.0"))
    assert msg.version == "SIP/2.0"
    resp = parse_message(wire("sip/2.0 200 OK", *BASE_HEADERS))
    assert isinstance(resp, Response) and resp.version == "SIP/2.0"
    assert serialize(msg).startswith(b"MESSAGE sip:a@b SIP/2.0\r\n")


@pytest.mark.parametrize("code", [100, 101, 199, 200, 487, 699])
def test_status_codes(code: int) -> None:
    msg = parse_message(wire(f"SIP/2.0 {code} Some Reason  Here", *BASE_HEADERS))
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason, msg.provisional) == (code, "Some Reason  Here", code < 200)


@pytest.mark.parametrize("missing", ["Via", "From", "To", "Call-ID", "CSeq"])
@pytest.mark.parametrize("start", [REQ, "SIP/2.0 200 OK"])
def test_mandatory_headers(missing: str, start: str) -> None:
    headers = [h for h in BASE_HEADERS if not h.startswith(missing + ":")]
    assert status_of(wire(start, *headers)) == 400


def test_max_forwards_is_not_mandatory() -> None:
    assert parse_message(request()).max_forwards is None


# --- header lines --------------------------------------------------------------------------------------


def test_folding_and_lws() -> None:
    msg = parse_message(request("Subject :\t first\r\n  second \r\n\tthird", "X-Empty:", "X-Fold:\r\n value"))
    assert msg.header("subject") == "first second third"
    assert msg.header("x-empty") == ""
    assert msg.header("x-fold") == "value"
    assert [n for n, _ in msg.headers][-4:-1] == ["Subject", "X-Empty", "X-Fold"]


def test_whitespace_only_continuation_is_ignored() -> None:
    assert parse_message(request("Subject: a\r\n   \r\n\t")).header("subject") == "a"


def test_continuation_before_any_header_is_400() -> None:
    assert status_of(wire(REQ, " folded", *BASE_HEADERS)) == 400


@pytest.mark.parametrize("line", ["NoColon", ": empty-name", "Bad Name: x", "Bad(Name): x", "Ca\u00e9ll: x", "\x7f: x"])
def test_bad_header_lines_are_400(line: str) -> None:
    assert status_of(request(line)) == 400


def test_only_sp_and_htab_are_stripped_from_values() -> None:
    msg = parse_message(request("Subject:  \u3000wide\u3000 ", "X-VT: a\x0b"))
    assert msg.header("subject") == "\u3000wide\u3000"
    assert msg.header("x-vt") == "a\x0b"


def test_nul_in_head_is_400_but_fine_in_body() -> None:
    assert status_of(request("Subject: a\x00b")) == 400
    assert status_of(request(start="MESSAGE sip:a\x00@b SIP/2.0")) == 400
    assert parse_message(request(body=b"a\x00b")).body == b"a\x00b"


@pytest.mark.parametrize("line", ["Subject: a\rb", "Subject: a\r", "Subject\r: a", "X: \r\r"])
def test_bare_cr_in_head_is_400(line: str) -> None:
    assert status_of(request(line)) == 400


def test_bare_cr_in_body_is_fine() -> None:
    assert parse_message(request(body=b"a\rb")).body == b"a\rb"


def test_non_utf8_header_bytes_round_trip() -> None:
    data = request().replace(b"Call-ID: c1", b"Call-ID: c1\xb6\xab\xc3\xc5")
    msg = parse_message(data)
    assert msg.call_id.encode("utf-8", "surrogateescape") == b"c1\xb6\xab\xc3\xc5@192.168.1.64"
    assert serialize(msg) == data


# --- limits (all are settings) -------------------------------------------------------------------------


def test_datagram_limit() -> None:
    data = request()
    assert parse_message(data, Limits(max_datagram=len(data)))
    assert status_of(data, Limits(max_datagram=len(data) - 1)) == 513


def test_header_count_limit() -> None:
    data = request("X-A: 1", "X-B: 2")  # 5 base + 2 + Content-Length = 8
    assert parse_message(data, Limits(max_headers=8))
    assert status_of(data, Limits(max_headers=7)) == 413


def test_line_length_limit() -> None:
    line = "Subject: " + "s" * 91  # 100 characters
    assert parse_message(request(line), Limits(max_line=100))
    assert status_of(request(line), Limits(max_line=99)) == 413
    long_uri = "MESSAGE sip:" + "u" * 200 + "@b SIP/2.0"
    assert status_of(request(start=long_uri), Limits(max_line=100)) == 414


def test_folded_line_counts_per_physical_line() -> None:
    data = request("Subject: " + "a" * 50 + "\r\n " + "b" * 50)
    assert parse_message(data, Limits(max_line=60)).header("subject") == "a" * 50 + " " + "b" * 50


def test_head_size_limit() -> None:
    data = request("Subject: " + "s" * 500)
    assert status_of(data, Limits(max_head=400)) == 413


def test_body_limit() -> None:
    assert parse_message(request(body=b"x" * 64), Limits(max_body=64)).body == b"x" * 64
    assert status_of(request(body=b"x" * 65), Limits(max_body=64)) == 413
    assert status_of(request(body=b"x" * 65, length=False), Limits(max_body=64)) == 413


def test_default_limits() -> None:
    limits = Limits()
    assert limits.max_datagram == 65507
    assert limits.max_body >= 1 << 20 and limits.max_tcp_buffer >= limits.max_body


# --- lazy accessors ------------------------------------------------------------------------------------


def test_structured_headers_are_parsed_lazily_and_raise_remote_errors() -> None:
    bad = (
        b'MESSAGE ht<tp://x SIP/2.0\r\nVia: nonsense\r\nFrom: <sip:a@b\r\nTo: "x <sip:a@b>\r\nCall-ID: \r\n'
        b"CSeq: 1\r\nExpires: soon\r\nMax-Forwards: many\r\nContact: <sip:a@b:99999>\r\n\r\n"
    )
    msg = parse_message(bad)  # framing is fine; the meaning is checked when asked for
    lazy = ("top_via", "vias", "from_", "to", "call_id", "cseq", "expires", "max_forwards", "contacts", "request_uri")
    for attr in lazy:
        with pytest.raises(RemoteProtocolError) as info:
            getattr(msg, attr)
        assert info.value.status_hint in (400, 416), attr


@pytest.mark.parametrize(
    "cseq, ok",
    [("1 INVITE", True), ("0 INVITE", True), ("2147483647 INVITE", True), ("2147483648 INVITE", False),
     ("99999999999 INVITE", False), ("1INVITE", False), ("1 INVITE x", False), ("-1 INVITE", False),
     ("\u0661 INVITE", False), ("  7\tINVITE ", True)],
)  # fmt: skip
def test_cseq(cseq: str, ok: bool) -> None:
    msg = parse_message(wire(REQ, *BASE_HEADERS[:4], f"CSeq: {cseq}"))
    if ok:
        assert msg.cseq.seq == int(cseq.split()[0])
    else:
        with pytest.raises(RemoteProtocolError):
            _ = msg.cseq


@pytest.mark.parametrize("value, expected", [("3600", 3600), (" 0 ", 0), ("4294967295", 4294967295)])
def test_expires(value: str, expected: int) -> None:
    assert parse_message(request(f"Expires: {value}")).expires == expected


@pytest.mark.parametrize("value", ["-1", "1h", "99999999999", "\u00b3", ""])
def test_bad_expires(value: str) -> None:
    with pytest.raises(RemoteProtocolError):
        _ = parse_message(request(f"Expires: {value}")).expires


def test_max_forwards() -> None:
    assert parse_message(request("Max-Forwards: 70")).max_forwards == 70
    for bad in ("1000", "x", "\u00b9"):
        with pytest.raises(RemoteProtocolError):
            _ = parse_message(request(f"Max-Forwards: {bad}")).max_forwards


def test_content_type() -> None:
    msg = parse_message(request('Content-Type: Application/MANSCDP+xml ; charset="GB2312"'))
    assert msg.content_type == "application/manscdp+xml"
    assert msg.content_type_params == {"charset": "GB2312"}
    assert parse_message(request()).content_type is None


def test_empty_via_field() -> None:
    msg = parse_message(wire(REQ, "Via: ,", *BASE_HEADERS[1:]))
    for attr in ("top_via", "vias"):
        with pytest.raises(RemoteProtocolError):
            getattr(msg, attr)


# --- serializer ----------------------------------------------------------------------------------------


def test_serialize_normalises_content_length_and_keeps_the_rest() -> None:
    data = request("x-Odd-Case: a,b", "Content-Length:   005", body=b"12345", length=False)
    msg = parse_message(data)
    out = serialize(msg)
    assert b"Content-Length: 5\r\n" in out and b"x-Odd-Case: a,b\r\n" in out
    assert out.endswith(b"\r\n\r\n12345")
    assert serialize(parse_message(request(body=b"abc", length=False))).count(b"Content-Length: 3") == 1


def test_serialize_fixes_a_stale_content_length_after_replace() -> None:
    msg = parse_message(request(body=b"abc"))
    out = serialize(msg.replace(body=b"abcdef"))
    assert parse_message(out).body == b"abcdef"


def test_serialize_response() -> None:
    msg = parse_message(wire("SIP/2.0 404 Not here", *BASE_HEADERS))
    assert serialize(msg).startswith(b"SIP/2.0 404 Not here\r\nVia: ")


# --- StreamFramer --------------------------------------------------------------------------------------


def test_stream_waits_for_head_and_body() -> None:
    data = request(body=b"0123456789")
    framer = StreamFramer()
    framer.feed(data[:30])
    assert framer.next_message() is None
    framer.feed(data[30:-3])
    assert framer.next_message() is None
    framer.feed(data[-3:])
    msg = framer.next_message()
    assert msg is not None and msg.body == b"0123456789"
    assert framer.next_message() is None and framer.buffered == 0


def test_stream_requires_content_length_and_then_stays_broken() -> None:
    framer = StreamFramer()
    framer.feed(request(length=False))
    with pytest.raises(RemoteProtocolError) as info:
        framer.next_message()
    assert info.value.status_hint == 400
    framer.feed(request())
    with pytest.raises(RemoteProtocolError):
        framer.messages()
    assert framer.broken is not None and framer.buffered == 0


def test_stream_bad_message_does_not_break_the_stream() -> None:
    framer = StreamFramer()
    framer.feed(request(start="MESSAGE sip:a@b SIP/3.0") + request())
    with pytest.raises(RemoteProtocolError) as info:
        framer.next_message()
    assert info.value.status_hint == 505
    start, headers = info.value.framed_head  # enough to build a response
    assert start.endswith("SIP/3.0") and headers.get("call-id") == "c1@192.168.1.64"
    assert framer.broken is None
    assert [m.call_id for m in framer.messages()] == ["c1@192.168.1.64"]


def test_stream_keepalives() -> None:
    framer = StreamFramer()
    for chunk in (b"\r\n", b"\r\n", b"\r\n\r", b"\n"):
        framer.feed(chunk)
        assert framer.next_message() is None
    assert framer.keepalives == 2
    framer.feed(b"\r\n" + request())  # a stray CRLF before a message is not a ping
    assert framer.next_message() is not None
    assert framer.keepalives == 2


def test_stream_limits() -> None:
    framer = StreamFramer(Limits(max_head=200))
    framer.feed(b"MESSAGE sip:a@b SIP/2.0\r\nSubject: " + b"x" * 300)
    with pytest.raises(RemoteProtocolError) as info:
        framer.next_message()
    assert info.value.status_hint == 413

    framer = StreamFramer(Limits(max_body=10))
    framer.feed(request(body=b"x" * 11)[:-11])  # the head alone tells
    with pytest.raises(RemoteProtocolError) as info:
        framer.next_message()
    assert info.value.status_hint == 413

    framer = StreamFramer(Limits(max_tcp_buffer=100))
    framer.feed(b"x" * 100)
    assert framer.next_message() is None
    framer.feed(b"x")
    with pytest.raises(RemoteProtocolError) as info:
        framer.next_message()
    assert info.value.status_hint == 413 and framer.buffered == 0


def test_stream_buffer_limit_counts_only_what_waits() -> None:
    # Complete messages in one large read are framed before the limit is looked at.
    data = request(body=b"x" * 100) * 5
    framer = StreamFramer(Limits(max_tcp_buffer=len(data) // 3))
    framer.feed(data)
    assert len(framer.messages()) == 5
    big = request(body=b"y" * len(data))  # an incomplete message may not grow past it
    framer.feed(big[: len(data) // 3])
    assert framer.messages() == []
    framer.feed(big[len(data) // 3 : len(data) // 3 + 1])
    with pytest.raises(RemoteProtocolError) as info:
        framer.messages()
    assert info.value.status_hint == 413


def test_stream_parses_each_head_once_when_fed_byte_by_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = parser_mod._parse_head

    def counting(head: bytes, limits: Limits) -> object:
        calls.append(len(head))
        return real(head, limits)

    monkeypatch.setattr(parser_mod, "_parse_head", counting)
    data = request(body=b"b" * 5000) * 2
    framer = StreamFramer()
    got = []
    for i in range(len(data)):
        framer.feed(data[i : i + 1])
        got += framer.messages()
    assert [len(m.body) for m in got] == [5000, 5000]
    assert len(calls) == 2


def test_stream_large_body_in_small_reads_is_fast() -> None:
    import time

    body = b"<Item/>" * 40000  # 280 kB, as a big NVR catalog over TCP
    data = request(body=body)
    framer = StreamFramer()
    started = time.perf_counter()
    got = []
    for i in range(0, len(data), 64):
        framer.feed(data[i : i + 64])
        got += framer.messages()
    assert len(got) == 1 and got[0].body == body
    assert time.perf_counter() - started < 5


# --- RFC 4475-style torture messages (our own text, after the RFC's descriptions) -----------------------


def test_torture_whitespace_everywhere() -> None:
    # 3.1.1.1 style: LWS and folding in odd but legal places.
    data = (
        "OPTIONS sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\n"
        "TO :\r\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n"
        'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8\r\n'
        "MaX-fOrWaRdS: 0068\r\n"
        "Call-ID: wsinv.ndaksdj@192.0.2.1\r\n"
        "Content-Length   : 0\r\n"
        "cseq: 0009\r\n  INVITE\r\n"
        "Via  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;rport ; branch=z9hG4bKkdjuw\r\n"
        "s :\r\n"
        "NewFangledHeader:   newfangled value\r\n continued newfangled value\r\n"
        "UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n"
        "\r\n"
    ).encode("ascii")
    msg = parse_message(data)
    assert msg.to.user == "vivekg" and msg.to.tag == "1918181833n"
    assert msg.from_.display == 'J Rosenberg \\"' and msg.from_.tag == "98asjd8"
    assert msg.max_forwards == 68
    assert (msg.cseq.seq, msg.cseq.method) == (9, "INVITE")
    via = msg.top_via
    assert (via.transport, via.host, via.branch, via.wants_rport) == ("UDP", "192.0.2.2", "z9hG4bKkdjuw", True)
    assert msg.header("subject") == ""
    assert msg.header("newfangledheader") == "newfangled value continued newfangled value"
    assert msg.header("unknownheaderwithunusualvalue") == ";;,,;;,;"


def test_torture_odd_method_token() -> None:
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    user = "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    data = wire(f"{method} sip:{user}:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0",
                "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~",
                "To: <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>",
                "From: <sip:mundane@example.com>;tag=_i_n_t_m_e_t_h_",
                "Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{",
                f"CSeq: 139122385 {method}")  # fmt: skip
    msg = parse_message(data)
    assert isinstance(msg, Request) and msg.method == method == msg.cseq.method
    assert msg.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert msg.call_id.startswith("intmeth.word%ZK")
    ruri = msg.request_uri
    assert isinstance(ruri, SipUri) and ruri.host == "example.com"
    assert ruri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert msg.to.user == ruri.user


def test_torture_escapes_and_escaped_nul_in_uri() -> None:
    msg = parse_message(request(start="REGISTER sip:null-%00-null@example.com SIP/2.0"))
    assert msg.request_uri.user == "null-%00-null"  # escapes are kept verbatim, a %00 is not a NUL byte


def test_torture_user_with_semicolon_and_escaped_at() -> None:
    msg = parse_message(request(start="OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0"))
    ruri = msg.request_uri
    assert (ruri.user, ruri.host, ruri.params) == ("user;par=u%40example.net", "example.com", ())


def test_torture_display_name_without_space() -> None:
    msg = parse_message(wire(REQ, *BASE_HEADERS[:1], "From: caller<sip:caller@example.com>;tag=323", *BASE_HEADERS[2:]))
    assert (msg.from_.display, msg.from_.user, msg.from_.tag) == ("caller", "caller", "323")


def test_torture_unusual_reason_phrase_and_transports() -> None:
    reason = "= 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e \u0434\u0435\u0432\u044f\u043d\u043e\u0441\u0442\u043e"
    data = wire(f"SIP/2.0 200 {reason}", "Via: SIP/2.0/SCTP t1.example.com;branch=z9hG4bKkdjuw",
                "Via: SIP/2.0/TLS-SCTP t2.example.com;branch=z9hG4bKkdjuw2",
                "Via: SIP/2.0/UNKNOWN t3.example.com;branch=z9hG4bKkdjuw3", *BASE_HEADERS[1:])  # fmt: skip
    msg = parse_message(data)
    assert msg.reason == reason
    assert [v.transport for v in msg.vias] == ["SCTP", "TLS-SCTP", "UNKNOWN"]
    assert serialize(msg) == data


def test_torture_two_messages_in_one_datagram() -> None:
    data = request() + request(start="INVITE sip:evil@example.com SIP/2.0")
    msg = parse_message(data)
    assert msg.method == "MESSAGE" and msg.body == b""


def test_torture_novel_schemes() -> None:
    data = wire("OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0", *BASE_HEADERS[:1],
                "From: <sip:a@example.com>;tag=1", "To: isbn:2983792873", *BASE_HEADERS[3:])  # fmt: skip
    msg = parse_message(data)
    assert msg.request_uri == AbsoluteUri("soap.beep", "soap.beep://192.0.2.103:3002")
    assert isinstance(msg.to, Address) and msg.to.uri == AbsoluteUri("isbn", "isbn:2983792873")
    assert msg.to.user is None


@pytest.mark.parametrize(
    "start, status",
    [
        ("INVITE sip:user@example.com; lr SIP/2.0", 400),  # LWS inside the Request-URI
        ("INVITE  sip:user@example.com SIP/2.0", 400),  # two SPs in the request line
        ("INVITE sip:user@example.com SIP/2.0\t", 400),  # trailing whitespace
        ("INVITE sip:user@example.com SIP/7.0", 505),
    ],
)
def test_torture_bad_request_lines(start: str, status: int) -> None:
    assert status_of(wire(start, *BASE_HEADERS)) == status


def test_torture_enclosed_request_uri_and_unbalanced_quotes() -> None:
    msg = parse_message(request(start="INVITE <sip:user@example.com> SIP/2.0"))
    with pytest.raises(RemoteProtocolError):
        _ = msg.request_uri
    msg = parse_message(wire(REQ, *BASE_HEADERS[:2], 'To: "Mr. J. User <sip:j.user@example.com>', *BASE_HEADERS[3:]))
    with pytest.raises(RemoteProtocolError):
        _ = msg.to


def test_torture_huge_scalars() -> None:
    assert status_of(request("Content-Length: 9999999999999999999999", length=False)) == 400
    msg = parse_message(wire(REQ, *BASE_HEADERS[:4], "CSeq: 36893488147419103232 INVITE",
                             "Expires: 10000000000000000000000000"))  # fmt: skip
    for attr in ("cseq", "expires"):
        with pytest.raises(RemoteProtocolError):
            getattr(msg, attr)


def test_stream_head_limit_matches_the_datagram_one() -> None:
    data = request()
    head = len(data) - 4 + 1  # the head as the datagram parser measures it: up to its last line's CR
    assert parse_message(data, Limits(max_head=head))
    for cut in range(len(data) - 6, len(data)):  # the head arrives without (all of) its empty line
        framer = StreamFramer(Limits(max_head=head))
        framer.feed(data[:cut])
        assert framer.next_message() is None
        framer.feed(data[cut:])
        assert framer.next_message() is not None
