"""Via header values (RFC 3261 §20.42, §18.2.1) with RFC 3581 rport.

``SIP/2.0/UDP host:port;branch=z9hG4bK...;rport;received=1.2.3.4``
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from ipaddress import ip_address

from sip.errors import RemoteProtocolError
from sip.params import Params, format_params, get_param, has_param, is_digits, parse_params, set_param
from sip.uri import parse_host_port

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7
_TOKEN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
# ``SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK...``: the shape devices send, read in one match; the
# parameters must be plain (no quotes, no spaces). Anything else takes the general path in ``parse_via``.
_PLAIN = re.compile(r"SIP/2\.0/(UDP|TCP|TLS) ([0-9A-Za-z\-.]+)(?::([0-9]{1,5}))?((?:;[^;\s\"=]+(?:=[^;\s\"]*)?)*)")


@dataclass(frozen=True, slots=True)
class Via:
    transport: str  # upper case: UDP, TCP, TLS, SCTP, WS, WSS
    host: str
    port: int | None = None
    params: Params = ()
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return get_param(self.params, "branch")

    @property
    def received(self) -> str | None:
        return get_param(self.params, "received")

    @property
    def rport(self) -> int | None:
        """The filled-in rport value, or None (absent, or requested but empty)."""
        value = get_param(self.params, "rport")
        if value and is_digits(value) and len(value) <= 5:
            return int(value)
        return None

    @property
    def wants_rport(self) -> bool:
        return has_param(self.params, "rport")

    @property
    def sent_by(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def reliable(self) -> bool:
        return self.transport not in ("UDP", "DTLS")

    def param(self, name: str) -> str | None:
        """A parameter's value; ``""`` for a flag (``rport`` requested without a value); None if absent."""
        return get_param(self.params, name)

    def with_param(self, name: str, value: str | None) -> Via:
        return replace(self, params=set_param(self.params, name, value))

    def with_received(self, host: str, port: int) -> Via:
        """Record the packet's source address on a received request's top Via.

        RFC 3261 §18.2.1: ``received`` when the source IP differs from sent-by (a host name always
        differs). RFC 3581 §4: when the Via carries ``rport``, fill it with the source port and set
        ``received`` even when it equals sent-by (a value the sender put there itself is overwritten).
        """
        params = self.params
        rport = has_param(params, "rport")
        if rport and ("rport", None) in params and not has_param(params, "received"):
            # The usual request: ";rport;branch=..." as the device sent it. One new tuple instead of two edits.
            filled = tuple(("rport", str(port)) if kv == ("rport", None) else kv for kv in params)
            return Via(self.transport, self.host, self.port, (*filled, ("received", host)), self.protocol)
        if rport or not same_host(host, self.host):
            params = set_param(params, "received", host)
        if rport:
            params = set_param(params, "rport", str(port))
        if params is self.params:
            return self
        return Via(self.transport, self.host, self.port, params, self.protocol)

    def __str__(self) -> str:
        return f"{self.protocol}/{self.transport} {self.sent_by}{format_params(self.params)}"


def same_host(source: str, sent_by_host: str) -> bool:
    """Whether a packet's source IP equals the sent-by host (a host name never does, §18.2.1)."""
    if source == sent_by_host:
        return True
    try:
        return ip_address(source) == ip_address(sent_by_host)
    except ValueError:
        return False


def parse_via(text: str) -> Via:
    """Parse one via-parm (already split from its comma-separated siblings).

    ``sent-protocol`` is ``name SLASH version SLASH transport`` where SLASH may carry LWS (§25.1), and
    LWS separates it from ``sent-by`` (spaces or tabs; folding is already undone by the parser).
    """
    m = _PLAIN.fullmatch(text)
    if m is not None:
        port = m.group(3)
        if port is None or int(port) <= 65535:
            params = m.group(4)
            return Via(m.group(1), m.group(2), int(port) if port else None, parse_params(params[1:]) if params else ())
    return _parse_via_general(text)


def _parse_via_general(text: str) -> Via:
    text = text.strip(" \t")
    head, sp, rest = text.partition(" ")
    if not sp or "\t" in head or head.count("/") != 2:
        # Rare forms: tabs, or LWS around the slashes ("SIP / 2.0 / UDP host").
        parts = text.replace("\t", " ").split("/", 2)
        if len(parts) < 3:
            raise RemoteProtocolError(f"bad Via {text[:80]!r}")
        tail = parts[2].lstrip(" ")
        transport, sp, rest = tail.partition(" ")
        head = f"{parts[0].strip(' ')}/{parts[1].strip(' ')}/{transport}"
        if not sp:
            raise RemoteProtocolError(f"Via without sent-by: {text[:80]!r}")
    slash2 = head.rfind("/")
    protocol, transport = head[:slash2], head[slash2 + 1 :].upper()
    if protocol.upper() != "SIP/2.0" or not transport or not _TOKEN.issuperset(transport):
        raise RemoteProtocolError(f"bad Via protocol {head[:80]!r}")
    semi = rest.find(";")
    if semi >= 0:
        sent_by, params = rest[:semi], parse_params(rest[semi + 1 :])
    else:
        sent_by, params = rest, ()
    sent_by = sent_by.strip(" \t")
    if " " in sent_by or "\t" in sent_by:  # "host : port" (COLON = SWS ":" SWS)
        sent_by = sent_by.replace(" ", "").replace("\t", "")
    host, port = parse_host_port(sent_by)
    return Via(transport, host, port, params, protocol)
