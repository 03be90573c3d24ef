"""SIP and SIPS URIs (RFC 3261 §19.1): ``sip:user:password@host:port;params?headers``.

Hosts may be IPv4, ``[IPv6]`` or a hostname. Parameters keep their order and spelling.
Other schemes (tel:, http:) are kept as opaque ``AbsoluteUri`` values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from sip.errors import RemoteProtocolError
from sip.params import Params, format_params, get_param, is_digits, parse_params, set_param

_HOST_BAD = frozenset(' \t<>"@,;?')
_HEX6 = frozenset("0123456789abcdefABCDEF:.")
_URI_BAD = frozenset(" \t<>")
_SIP_URI_BAD = frozenset(" \t<>\r\n")
# The shape nearly every GB/T 28181 URI has, ``sip:34020000001320000001@3402000000[:5060]``: read in one match.
# Anything else (parameters, headers, a password, IPv6, odd characters) takes the general path below.
_PLAIN = re.compile(r"(sips?|SIPS?|Sips?):([0-9A-Za-z\-_.!~*'()&=+$%]+)@([0-9A-Za-z\-.]+)(?::([0-9]{1,5}))?")


@dataclass(frozen=True, slots=True)
class SipUri:
    scheme: str  # "sip" or "sips", lower case
    host: str  # IPv6 without brackets
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = ()
    headers: str | None = None  # raw text after "?", kept verbatim

    @property
    def host_port(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def transport(self) -> str | None:
        t = get_param(self.params, "transport")
        return t.upper() if t else None

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    def with_param(self, name: str, value: str | None) -> SipUri:
        return replace(self, params=set_param(self.params, name, value))

    def with_host(self, host: str, port: int | None) -> SipUri:
        return replace(self, host=host, port=port)

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":" + self.password)
            out.append("@")
        out.append(self.host_port)
        if self.params:
            out.append(format_params(self.params))
        if self.headers is not None:
            out.append("?" + self.headers)
        return "".join(out)


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """A URI of another scheme (tel:, urn:, http:), kept verbatim (RFC 3261 §19.1.6)."""

    scheme: str
    text: str

    def __str__(self) -> str:
        return self.text


def parse_host_port(text: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` -> (host, port)."""
    if not text:
        raise RemoteProtocolError("empty host")
    if text[0] == "[":
        end = text.find("]")
        if end < 0:
            raise RemoteProtocolError(f"unterminated IPv6 reference in {text!r}")
        host = text[1:end]
        rest = text[end + 1 :]
        if not host or not _HEX6.issuperset(host):
            raise RemoteProtocolError(f"bad IPv6 reference in {text!r}")
        if not rest:
            return host, None
        if rest[0] != ":":
            raise RemoteProtocolError(f"junk after IPv6 reference in {text!r}")
        return host, _port(rest[1:], text)
    host, sep, port = text.partition(":")
    if not host or not _HOST_BAD.isdisjoint(host):
        raise RemoteProtocolError(f"bad host in {text!r}")
    return host, _port(port, text) if sep else None


def _port(text: str, whole: str) -> int:
    if not is_digits(text) or len(text) > 5:
        raise RemoteProtocolError(f"bad port in {whole!r}")
    port = int(text)
    if port > 65535:
        raise RemoteProtocolError(f"port out of range in {whole!r}")
    return port


def parse_uri(text: str) -> SipUri | AbsoluteUri:
    """Parse a URI. Raises ``RemoteProtocolError`` (416 for a bad scheme, 400 otherwise)."""
    m = _PLAIN.fullmatch(text)
    if m is not None:
        port = m.group(4)
        if port is None:
            return SipUri(m.group(1).lower(), m.group(3), m.group(2))
        if int(port) <= 65535:
            return SipUri(m.group(1).lower(), m.group(3), m.group(2), None, int(port))
    return _parse_uri_general(text)


def _parse_uri_general(text: str) -> SipUri | AbsoluteUri:
    text = text.strip()
    scheme, sep, rest = text.partition(":")
    if not sep or not scheme or not scheme[0].isalpha():
        raise RemoteProtocolError(f"not a URI: {text[:80]!r}", 416)
    low = scheme.lower()
    if low not in ("sip", "sips"):
        if not _URI_BAD.isdisjoint(text):
            raise RemoteProtocolError(f"bad URI: {text[:80]!r}", 400)
        return AbsoluteUri(low, text)
    if not rest or not _SIP_URI_BAD.isdisjoint(rest):
        raise RemoteProtocolError(f"bad SIP URI: {text[:80]!r}")
    user = password = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, psep, pw = userinfo.partition(":")
        if psep:
            password = pw
    headers = None
    q = rest.find("?")
    if q >= 0:
        rest, headers = rest[:q], rest[q + 1 :]
    semi = rest.find(";")
    if semi >= 0:
        hostport, params = rest[:semi], parse_params(rest[semi + 1 :])
    else:
        hostport, params = rest, ()
    host, port = parse_host_port(hostport)
    return SipUri(low, host, user, password, port, params, headers)


def parse_sip_uri(text: str) -> SipUri:
    uri = parse_uri(text)
    if not isinstance(uri, SipUri):
        raise RemoteProtocolError(f"unsupported URI scheme {uri.scheme!r}", 416)
    return uri
