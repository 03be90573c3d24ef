"""The one-match fast paths (URI, Via, Via received/rport) read exactly what the general parsers read.

Each fast path may decline a shape it does not know; whatever it accepts must equal the general result,
and whatever the general parser rejects the fast path must reject too.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from sip import address as address_mod
from sip import uri as uri_mod
from sip import via as via_mod
from sip.address import parse_address
from sip.errors import RemoteProtocolError
from sip.params import set_param
from sip.uri import parse_uri
from sip.via import Via, parse_via

_pieces = st.sampled_from(
    ["sip", "SIP", "sips", "tel", ":", "@", "3402", "0000", "a", "-", ".", ";", "=", "?", "x", "5060", "99999",
     "[", "]", " ", "%", "!", "\t", "host", "1.2.3.4", "transport=udp", "lr", '"']
)  # fmt: skip
_text = st.lists(_pieces, max_size=12).map("".join)


def _outcome(fn: Callable[[str], object], text: str) -> object:
    try:
        return fn(text)
    except RemoteProtocolError as exc:
        return ("error", exc.status_hint)


@settings(deadline=None, max_examples=1500)
@given(_text)
def test_uri_fast_path_agrees(text: str) -> None:
    assert _outcome(parse_uri, text) == _outcome(uri_mod._parse_uri_general, text)


@settings(deadline=None, max_examples=300)
@given(st.from_regex(r"sips?:[0-9a-z]{1,20}@[0-9a-z.\-]{1,15}(:[0-9]{1,6})?", fullmatch=True))
def test_uri_fast_path_agrees_on_plain_uris(text: str) -> None:
    assert _outcome(parse_uri, text) == _outcome(uri_mod._parse_uri_general, text)


_via_pieces = st.sampled_from(
    ["SIP/2.0/", "UDP", "TCP", "udp", "TLS", " ", "\t", "192.168.1.64", "host", ":", "5060", "70000", ";rport",
     ";rport=5", ";branch=z9hG4bK1", ";received=1.2.3.4", ";", "=", '"', "x", "[::1]", "/", "SIP/3.0/"]
)  # fmt: skip
_via_text = st.lists(_via_pieces, max_size=10).map("".join)


@settings(deadline=None, max_examples=1500)
@given(_via_text)
def test_via_fast_path_agrees(text: str) -> None:
    assert _outcome(parse_via, text) == _outcome(via_mod._parse_via_general, text)


def _general_with_received(via: Via, host: str, port: int) -> Via:
    """RFC 3261 §18.2.1 + RFC 3581 §4 spelt out with the general editing helpers."""
    params = via.params
    if via.wants_rport or not via_mod.same_host(host, via.host):
        params = set_param(params, "received", host)
    if via.wants_rport:
        params = set_param(params, "rport", str(port))
    return Via(via.transport, via.host, via.port, params, via.protocol)


@settings(deadline=None, max_examples=500)
@given(
    st.lists(st.sampled_from([";rport", ";branch=z9hG4bKx", ";received=9.9.9.9", ";rport=7", ";x", ";RPORT"]),
             max_size=4).map("".join),
    st.sampled_from(["1.2.3.4", "5.6.7.8", "host.example"]),
    st.integers(1, 65535),
)  # fmt: skip
def test_with_received_agrees_with_the_general_edit(params: str, host: str, port: int) -> None:
    via = parse_via(f"SIP/2.0/UDP 1.2.3.4:5060{params}")
    if len([k for k, _ in via.params if k.lower() == "rport"]) > 1:
        return  # set_param semantics for a repeated rport are covered by the unit tests
    assert via.with_received(host, port) == _general_with_received(via, host, port)


_addr_pieces = st.sampled_from(
    ["<", ">", "sip:3402@3402000000", "sip:a@1.2.3.4:5060", "tel:+86", '"', "Cam", " ", ";tag=1", ";tag=", ";",
     "=", ";expires=60", "sip:x", "*", "\t", ",", "@"]
)  # fmt: skip
_addr_text = st.lists(_addr_pieces, max_size=8).map("".join)


@settings(deadline=None, max_examples=1500)
@given(_addr_text)
def test_address_fast_path_agrees(text: str) -> None:
    assert _outcome(parse_address, text) == _outcome(address_mod._parse_address_general, text)
