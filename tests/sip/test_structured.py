"""URIs, name-addrs, Via, the Headers container, parameters, and make_response."""

from __future__ import annotations

import pytest

from sip import RemoteProtocolError, Request, Response, make_response, parse_message, serialize
from sip.address import STAR, parse_address
from sip.headers import COMPACT_FORMS, MULTI_VALUED, Headers, header_key, split_commas
from sip.message import REASONS, CSeq, parse_cseq
from sip.params import (
    format_params,
    get_param,
    has_param,
    is_digits,
    parse_params,
    quote,
    remove_param,
    set_param,
    unquote,
)
from sip.uri import AbsoluteUri, SipUri, parse_host_port, parse_sip_uri, parse_uri
from sip.via import Via, parse_via

# --- URIs ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, scheme, user, password, host, port, params, headers",
    [
        ("sip:34020000001320000001@3402000000", "sip", "34020000001320000001", None, "3402000000", None, (), None),
        ("SIP:alice@Example.COM:5070", "sip", "alice", None, "Example.COM", 5070, (), None),
        ("sips:bob@192.0.2.4", "sips", "bob", None, "192.0.2.4", None, (), None),
        ("sip:192.168.1.64:5060", "sip", None, None, "192.168.1.64", 5060, (), None),
        ("sip:alice:secret@host;transport=TCP;lr", "sip", "alice", "secret", "host", None,
         (("transport", "TCP"), ("lr", None)), None),
        ("sip:alice:@host", "sip", "alice", "", "host", None, (), None),
        ("sip:[2001:db8::1]:5061;maddr=[2001:db8::2]", "sip", None, None, "2001:db8::1", 5061,
         (("maddr", "[2001:db8::2]"),), None),
        ("sip:u@[::1]", "sip", "u", None, "::1", None, (), None),
        ("sip:carol@chicago.com?Subject=next%20meeting&Priority=urgent", "sip", "carol", None, "chicago.com", None,
         (), "Subject=next%20meeting&Priority=urgent"),
        ("sip:%61lice@host;x=%20", "sip", "%61lice", None, "host", None, (("x", "%20"),), None),
        ("sip:host?", "sip", None, None, "host", None, (), ""),
    ],
)  # fmt: skip
def test_parse_sip_uri(text, scheme, user, password, host, port, params, headers) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (scheme, user, password, host, port)
    assert (uri.params, uri.headers) == (params, headers)
    assert parse_uri(str(uri)) == uri


def test_uri_helpers() -> None:
    uri = parse_sip_uri("sip:a@h:5060;transport=tcp")
    assert uri.transport == "TCP" and uri.param("TRANSPORT") == "tcp" and uri.param("lr") is None
    assert str(uri.with_param("lr", None)) == "sip:a@h:5060;transport=tcp;lr"
    assert str(uri.with_param("transport", "udp")) == "sip:a@h:5060;transport=udp"
    assert str(uri.with_host("2001:db8::9", 5070)) == "sip:a@[2001:db8::9]:5070;transport=tcp"
    assert uri.host_port == "h:5060"


@pytest.mark.parametrize("text", ["tel:+86-10-1234", "urn:uuid:f81d4fae", "http://example.com/x", "isbn:2983792873"])
def test_other_schemes_are_opaque(text: str) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, AbsoluteUri) and str(uri) == text
    with pytest.raises(RemoteProtocolError) as info:
        parse_sip_uri(text)
    assert info.value.status_hint == 416


@pytest.mark.parametrize(
    "text, status",
    [
        ("", 416), ("nocolon", 416), (":x", 416), ("1sip:a@b", 416), ("<sip:a@b>", 416),
        ("sip:", 400), ("sip:a@", 400), ("sip:a@b:", 400), ("sip:a@b:65536", 400), ("sip:a@b:123456", 400),
        ("sip:a@b:5x", 400), ("sip:a@b:\u00b2", 400), ("sip:a@b:-1", 400), ("sip:a@[::1", 400),
        ("sip:a@[::1]x", 400), ("sip:a@[zz::1]", 400), ("sip:a@[]", 400), ("sip:a b@c", 400),
        ("sip:a@b@c", 400), ("sip:a@b,c", 400), ("tel:1 2", 400), ('sip:a@"b"', 400),
    ],
)  # fmt: skip
def test_bad_uris(text: str, status: int) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_uri(text)
    assert info.value.status_hint == status


def test_parse_host_port() -> None:
    assert parse_host_port("h") == ("h", None)
    assert parse_host_port("1.2.3.4:0") == ("1.2.3.4", 0)
    assert parse_host_port("[fe80::1]:65535") == ("fe80::1", 65535)
    with pytest.raises(RemoteProtocolError):
        parse_host_port("")


# --- name-addr / addr-spec -----------------------------------------------------------------------------


def test_name_addr_with_header_params() -> None:
    a = parse_address('"Zhang \\"San\\", cam" <sip:34020000001320000001@3402000000;transport=udp>;tag=9;expires=60')
    assert a.display == 'Zhang "San", cam'
    assert a.user == "34020000001320000001" and a.uri.transport == "UDP"
    assert (a.tag, a.expires, a.param("EXPIRES")) == ("9", 60, "60")
    assert parse_address(str(a)) == a


def test_addr_spec_params_belong_to_the_header() -> None:
    # RFC 3261 §20.10: without <>, parameters after the URI are header parameters.
    a = parse_address("sip:alice@atlanta.com;tag=88;transport=tcp")
    assert a.uri == parse_uri("sip:alice@atlanta.com")
    assert (a.tag, a.param("transport")) == ("88", "tcp")
    b = parse_address("<sip:alice@atlanta.com;transport=tcp>;tag=88")
    assert b.uri.transport == "TCP" and b.tag == "88"


@pytest.mark.parametrize(
    "text, display",
    [
        ("Bob <sip:bob@b>", "Bob"),
        ("Platform  One <sip:p@b>", "Platform  One"),
        ('"" <sip:bob@b>', None),
        ('"a\\\\b" <sip:bob@b>', "a\\b"),
        ('"<not a uri>" <sip:bob@b>', "<not a uri>"),
        ("caller<sip:caller@example.com>", "caller"),
        ('"  padded " <sip:p@b>', "  padded "),
    ],
)
def test_display_names(text: str, display: str | None) -> None:
    a = parse_address(text)
    assert a.display == display and a.user in ("bob", "caller", "p")
    assert parse_address(str(a)) == a  # quoting when written back keeps the meaning


def test_star_and_tag_helpers() -> None:
    assert parse_address(" * ") is STAR and str(STAR) == "*" and STAR.star
    a = parse_address("<sip:a@b>")
    assert a.tag is None and a.expires is None and a.user == "a"
    assert a.with_tag("t1").tag == "t1" and str(a.with_tag("t1")) == "<sip:a@b>;tag=t1"
    assert str(a.with_param("expires", "0")) == "<sip:a@b>;expires=0"
    assert parse_address("<tel:+123>").user is None


@pytest.mark.parametrize("value", ["soon", "-1", "\u00b2", "12345678901", ""])
def test_bad_expires_param(value: str) -> None:
    with pytest.raises(RemoteProtocolError):
        _ = parse_address(f"<sip:a@b>;expires={value}").expires


def test_expires_flag_is_bad_too() -> None:
    with pytest.raises(RemoteProtocolError):
        _ = parse_address("<sip:a@b>;expires").expires


@pytest.mark.parametrize(
    "text",
    ["", "   ", "<sip:a@b", "<sip:a@b> junk", '"unterminated <sip:a@b>', '"Bob" sip:bob@b', "Bob sip:bob@b", "<>"],
)
def test_bad_addresses(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_address(text)


# --- Via -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, transport, host, port, params",
    [
        ("SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1", "UDP", "192.168.1.64", 5060,
         (("rport", None), ("branch", "z9hG4bK1"))),
        ("SIP/2.0/tcp host.example.com", "TCP", "host.example.com", None, ()),
        ("SIP/2.0/UDP [2001:db8::9]:5062;received=2001:db8::1", "UDP", "2001:db8::9", 5062,
         (("received", "2001:db8::1"),)),
        ("SIP / 2.0 / UDP 10.0.0.1 ; branch = z9hG4bKx", "UDP", "10.0.0.1", None, (("branch", "z9hG4bKx"),)),
        ("SIP/2.0/UDP\t10.0.0.1:5060", "UDP", "10.0.0.1", 5060, ()),
        ("SIP/2.0/UDP 10.0.0.1 : 5060;rport=5060", "UDP", "10.0.0.1", 5060, (("rport", "5060"),)),
        ("sip/2.0/WSS h;branch=z9hG4bK;x=\"a;b,c\"", "WSS", "h", None, (("branch", "z9hG4bK"), ("x", '"a;b,c"'))),
    ],
)  # fmt: skip
def test_parse_via(text, transport, host, port, params) -> None:
    via = parse_via(text)
    assert (via.transport, via.host, via.port, via.params) == (transport, host, port, params)
    assert parse_via(str(via)) == via


def test_via_accessors() -> None:
    via = parse_via("SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1;received=1.2.3.4")
    assert (via.branch, via.received, via.rport, via.wants_rport) == ("z9hG4bK1", "1.2.3.4", None, True)
    assert via.param("rport") == "" and via.param("maddr") is None
    assert via.sent_by == "192.168.1.64:5060" and not via.reliable
    assert parse_via("SIP/2.0/TCP h;rport=40469").rport == 40469
    assert parse_via("SIP/2.0/TCP h").reliable and parse_via("SIP/2.0/TCP h").rport is None
    assert parse_via("SIP/2.0/UDP [::1]:5").sent_by == "[::1]:5"
    for odd in ("x", "\u00b2", "999999", "-1"):
        assert parse_via(f"SIP/2.0/UDP h;rport={odd}").rport is None


@pytest.mark.parametrize(
    "text",
    ["", "SIP/2.0/UDP", "SIP/2.0 host", "SIP/3.0/UDP host", "HTTP/1.1/UDP host", "SIP/2.0/ host",
     "SIP/2.0/UDP host:x", "SIP/2.0/UDP [::1", "SIP/2.0/U(DP host", "SIP/2.0/UDP ;branch=x", "SIP/2.0/UDP/x host"],
)  # fmt: skip
def test_bad_vias(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_via(text)


def test_with_received_rfc3581_rport() -> None:
    # RFC 3581 §4: rport requested -> filled with the source port; received added even when equal to sent-by.
    via = parse_via("SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKkjshdyff")
    out = via.with_received("10.1.1.1", 4540)
    assert str(out) == "SIP/2.0/UDP 10.1.1.1:4540;rport=4540;branch=z9hG4bKkjshdyff;received=10.1.1.1"
    natted = via.with_received("192.0.2.1", 9988)
    assert (natted.received, natted.rport, natted.branch) == ("192.0.2.1", 9988, "z9hG4bKkjshdyff")


def test_with_received_rfc3261_without_rport() -> None:
    via = parse_via("SIP/2.0/UDP 10.1.1.1:5060;branch=z9hG4bK1")
    assert via.with_received("10.1.1.1", 6000) == via  # same IP, no rport: nothing to add
    differs = via.with_received("192.0.2.1", 6000)
    assert (differs.received, differs.rport, differs.param("rport")) == ("192.0.2.1", None, None)
    named = parse_via("SIP/2.0/UDP cam.example.com;branch=z9hG4bK1").with_received("192.0.2.1", 5060)
    assert named.received == "192.0.2.1"  # a host name always gets received (§18.2.1)
    v6 = parse_via("SIP/2.0/UDP [2001:DB8:0::1]:5060;branch=z9hG4bK1")
    assert v6.with_received("2001:db8::1", 5060) == v6  # the same address, written differently


def test_with_received_overwrites_what_the_device_filled_in() -> None:
    # Hikvision domes send rport=5060 themselves; behind NAT the real source port must win.
    via = parse_via("SIP/2.0/UDP 192.168.1.222:5060;rport=5060;received=192.168.1.222;branch=z9hG4bK2")
    out = via.with_received("203.0.113.9", 40001)
    assert (out.rport, out.received) == (40001, "203.0.113.9")
    assert [k for k, _ in out.params] == ["rport", "received", "branch"]


def test_via_is_a_value() -> None:
    via = Via("UDP", "h", 5060, (("branch", "z9hG4bK1"),))
    assert str(via) == "SIP/2.0/UDP h:5060;branch=z9hG4bK1"
    assert str(via.with_param("rport", None)) == "SIP/2.0/UDP h:5060;branch=z9hG4bK1;rport"


# --- Headers -------------------------------------------------------------------------------------------


def test_headers_lookup_is_case_insensitive_and_keeps_spelling() -> None:
    h = Headers([("cAll-iD", "x"), ("VIA", "a"), ("v", "b, c"), ("X-GB-ver", "3.0")])
    assert h.get("call-id") == h.get("CALL-ID") == h.get("i") == "x"
    assert h.get_all("Via") == ["a", "b, c"]
    assert h.values("via") == ["a", "b", "c"]
    assert [n for n, _ in h] == ["cAll-iD", "VIA", "v", "X-GB-ver"]
    assert "x-gb-VER" in h and "Contact" not in h and 5 not in h
    assert h.get("missing") is None and h.get("missing", "d") == "d"
    assert len(h) == 4 and h.keys() == {"call-id", "via", "x-gb-ver"}


@pytest.mark.parametrize("compact, full", sorted(COMPACT_FORMS.items()))
def test_compact_forms(compact: str, full: str) -> None:
    h = Headers([(compact.upper() if compact in "ft" else compact, "v1"), (full.title(), "v2")])
    assert header_key(compact) == header_key(compact.upper()) == full
    assert h.get_all(full) == ["v1", "v2"] and h.get_all(compact) == ["v1", "v2"]


def test_the_compact_forms_gb28181_peers_use_are_known() -> None:
    assert set("iftvmlckseou") <= set(COMPACT_FORMS)  # RFC 3261 §7.3.3 plus RFC 6665's o and u


def test_values_splits_only_multi_valued_headers() -> None:
    h = Headers(
        [
            ("Contact", '"a, b" <sip:a@b;x=1,2>;expires=5, <sip:c@d>'),
            ("Allow", "INVITE,ACK , BYE,,"),
            ("Subject", "a, b"),
            ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
            ("Authorization", 'Digest username="a", realm="b", uri="sip:x"'),
            ("WWW-Authenticate", 'Digest realm="r", nonce="n"'),
            ("X-Custom", "1, 2"),
            ("Warning", '399 devnull "a, b", 301 x "c"'),
        ]
    )
    assert h.values("contact") == ['"a, b" <sip:a@b;x=1,2>;expires=5', "<sip:c@d>"]
    assert h.values("allow") == ["INVITE", "ACK", "BYE"]
    for single in ("subject", "date", "authorization", "www-authenticate", "x-custom"):
        assert h.values(single) == h.get_all(single)
    assert h.values("warning") == ['399 devnull "a, b"', '301 x "c"']
    assert {"via", "contact", "route", "record-route"} <= MULTI_VALUED
    assert not {"authorization", "www-authenticate", "proxy-authenticate", "date"} & MULTI_VALUED


@pytest.mark.parametrize(
    "value, parts",
    [
        ("a", ["a"]),
        ("", [""]),
        (",", [""]),
        (" , ,", [""]),
        (" a ,, b ", ["a", "b"]),
        ('"x\\", y" <u>, z', ['"x\\", y" <u>', "z"]),
        ("<a,b>,c", ["<a,b>", "c"]),
        ("a>, b", ["a>", "b"]),
        ('"unterminated, x', ['"unterminated, x']),
    ],
)
def test_split_commas(value: str, parts: list[str]) -> None:
    assert split_commas(value) == parts


def test_headers_are_copy_on_write() -> None:
    h = Headers([("Via", "v1"), ("From", "f"), ("via", "v2"), ("Content-Length", "0")])
    assert h.replace("VIA", "new").items() == [("Via", "new"), ("From", "f"), ("Content-Length", "0")]
    assert h.replace("Expires", "60").items()[-1] == ("Expires", "60")
    assert h.remove("v").items() == [("From", "f"), ("Content-Length", "0")]
    assert h.append("X", "1").items()[-1] == ("X", "1")
    assert h.prepend("Via", "v0").items()[:2] == [("Via", "v0"), ("Via", "v1")]
    assert h.prepend("Route", "r").items()[0] == ("Route", "r")
    assert h.items() == [("Via", "v1"), ("From", "f"), ("via", "v2"), ("Content-Length", "0")]
    assert h == Headers(h.items()) and h != h.append("X", "1")


def test_header_key_cache_is_bounded() -> None:
    import sip.headers as H

    for i in range(5000):
        header_key(f"X-Generated-{i}")
    assert len(H._key_cache) <= 4096
    assert header_key("X-Generated-4999") == "x-generated-4999"


# --- parameters ----------------------------------------------------------------------------------------


def test_params() -> None:
    p = parse_params('a=1; B ;c="x;y\\"z";;d=')
    assert p == (("a", "1"), ("B", None), ("c", '"x;y\\"z"'), ("d", ""))
    assert get_param(p, "b") == "" and get_param(p, "A") == "1" and get_param(p, "zz", "dflt") == "dflt"
    assert has_param(p, "C") and not has_param(p, "e")
    assert format_params(set_param(p, "a", None)) == ';a;B;c="x;y\\"z";d='
    assert remove_param(p, "B") == (("a", "1"), ("c", '"x;y\\"z"'), ("d", ""))
    assert unquote('"x;y\\"z"') == 'x;y"z' and unquote("plain") == "plain"
    assert unquote(quote('a"b\\c')) == 'a"b\\c'
    assert parse_params("") == ()


@pytest.mark.parametrize("text, ok", [("0", True), ("0123", True), ("", False), ("\u00b2", False), ("\u0661", False),
                                      ("1 ", False), ("+1", False), ("1_0", False)])  # fmt: skip
def test_is_digits(text: str, ok: bool) -> None:
    assert is_digits(text) is ok


# --- CSeq ----------------------------------------------------------------------------------------------


def test_cseq_value() -> None:
    assert parse_cseq("20 MESSAGE") == CSeq(20, "MESSAGE") and str(CSeq(1, "ACK")) == "1 ACK"


# --- make_response -------------------------------------------------------------------------------------

INVITE = (
    b"INVITE sip:34020000001310000001@192.168.1.64:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK-top, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-2\r\n"
    b"Max-Forwards: 70\r\n"
    b"v: SIP/2.0/TCP 10.0.0.2;branch=z9hG4bK-3\r\n"
    b"f: <sip:34020000002000000001@3402000000>;tag=abc\r\n"
    b"To: <sip:34020000001310000001@3402000000>\r\n"
    b"Contact: <sip:34020000002000000001@192.168.1.10:5060>\r\n"
    b"Call-ID: inv-1\r\n"
    b"CSeq: 20 INVITE\r\n"
    b"Subject: 34020000001310000001:0,34020000002000000001:0\r\n"
    b"Timestamp: 54.2\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n\r\nv=0\n"
)


def _request() -> Request:
    msg = parse_message(INVITE)
    assert isinstance(msg, Request)
    return msg


def test_make_response_copies_the_five_headers_in_order() -> None:
    resp = make_response(_request(), 200, to_tag="t9", headers=[("Contact", "<sip:cam@192.168.1.64>")], body=b"v=0\r\n")
    assert resp.status == 200 and resp.reason == "OK" and resp.body == b"v=0\r\n"
    assert [n for n, _ in resp.headers] == ["Via", "v", "f", "To", "Call-ID", "CSeq", "Contact"]
    assert [v.branch for v in resp.vias] == ["z9hG4bK-top", "z9hG4bK-2", "z9hG4bK-3"]
    assert resp.to.tag == "t9" and resp.from_.tag == "abc"
    assert (resp.call_id, resp.cseq) == ("inv-1", CSeq(20, "INVITE"))
    again = parse_message(serialize(resp))
    assert isinstance(again, Response) and again.headers == resp.headers.replace("Content-Length", "5")


def test_make_response_to_tag_rules() -> None:
    req = _request()
    assert make_response(req, 100, to_tag="t9").to.tag is None  # never on 100 Trying
    assert make_response(req, 180, to_tag="t9").to.tag == "t9"
    assert make_response(req, 486).to.tag is None  # the caller decides; no tag given
    tagged = req.replace(headers=req.headers.replace("to", "<sip:x@y>;tag=old"))
    assert make_response(tagged, 200, to_tag="new").to.tag == "old"  # an in-dialog request keeps its tag


def test_make_response_reason_and_timestamp() -> None:
    req = _request()
    trying = make_response(req, 100)
    assert trying.reason == "Trying" and trying.header("timestamp") == "54.2"  # RFC 3261 §8.2.6.1
    assert make_response(req, 200).header("timestamp") is None
    assert make_response(req, 488, "Not Here").reason == "Not Here"
    assert make_response(req, 299).reason == "" and REASONS[513] == "Message Too Large"


def test_make_response_on_a_wild_register() -> None:
    data = (
        b"REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.168.137.11:5060;rport;branch=z9hG4bK1371463273\r\n"
        b"From: <sip:34020000001320000003@3402000000>;tag=2043466181\r\n"
        b"To: <sip:34020000001320000003@3402000000>\r\n"
        b"Call-ID: 1011047669\r\nCSeq: 1 REGISTER\r\n"
        b"Contact: <sip:34020000001320000003@192.168.137.11:5060>\r\n"
        b"Max-Forwards: 70\r\nUser-Agent: IP Camera\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
    )
    req = parse_message(data)
    assert isinstance(req, Request)
    via = req.top_via.with_received("10.8.0.3", 40011)
    req = req.replace(headers=req.headers.replace("via", str(via)))
    resp = make_response(req, 401, to_tag="srv1", headers=[("WWW-Authenticate", 'Digest realm="3402000000"')])
    out = serialize(resp)
    assert out.startswith(b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 192.168.137.11:5060;rport=40011;")
    assert b";received=10.8.0.3\r\n" in out
    assert b"To: <sip:34020000001320000003@3402000000>;tag=srv1\r\n" in out
    assert out.endswith(b'WWW-Authenticate: Digest realm="3402000000"\r\nContent-Length: 0\r\n\r\n')
