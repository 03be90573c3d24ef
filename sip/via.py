"""Via header values (RFC 3261 §20.42, §18.2.1) with RFC 3581 rport.

``SIP/2.0/UDP host:port;branch=z9hG4bK...;rport;received=1.2.3.4``
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sip.errors import RemoteProtocolError
from sip.params import Params, format_params, get_param, has_param, parse_params, set_param
from sip.uri import parse_host_port

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7


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
        return int(value) if value and value.isdigit() else None

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

    def with_param(self, name: str, value: str | None) -> Via:
        return replace(self, params=set_param(self.params, name, value))

    def with_received(self, host: str, port: int) -> Via:
        """RFC 3261 §18.2.1 (received when the source differs from sent-by) and RFC 3581 §4 (rport)."""
        params = self.params
        if host != self.host:
            params = set_param(params, "received", host)
        if has_param(params, "rport"):
            params = set_param(params, "rport", str(port))
            if get_param(params, "received") is None:
                params = set_param(params, "received", host)
        return replace(self, params=params)

    def __str__(self) -> str:
        return f"{self.protocol}/{self.transport} {self.sent_by}{format_params(self.params)}"


def parse_via(text: str) -> Via:
    text = text.strip()
    slash2 = -1
    # "SIP / 2.0 / UDP" may carry LWS around the slashes (§25.1); normalise the common no-space form fast.
    head, sp, rest = text.partition(" ")
    if head.count("/") != 2:
        # spaced form: collapse "SIP / 2.0 / UDP host" to "SIP/2.0/UDP host"
        parts = text.replace("\t", " ").split("/")
        if len(parts) < 3:
            raise RemoteProtocolError(f"bad Via {text[:80]!r}")
        name, version = parts[0].strip(), parts[1].strip()
        tail = "/".join(parts[2:]).strip()
        transport, sp, rest = tail.partition(" ")
        head = f"{name}/{version}/{transport}"
    if not sp:
        raise RemoteProtocolError(f"Via without sent-by: {text[:80]!r}")
    slash2 = head.rfind("/")
    protocol, transport = head[:slash2], head[slash2 + 1 :].upper()
    if protocol.upper() != "SIP/2.0" or not transport:
        raise RemoteProtocolError(f"bad Via protocol {head!r}")
    rest = rest.strip()
    semi = rest.find(";")
    if semi >= 0:
        sent_by, params = rest[:semi].strip(), parse_params(rest[semi + 1 :])
    else:
        sent_by, params = rest, ()
    host, port = parse_host_port(sent_by.replace(" ", ""))
    return Via(transport, host, port, params, protocol)
