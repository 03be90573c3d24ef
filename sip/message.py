"""Frozen SIP requests and responses (RFC 3261 §7). Structured headers are parsed lazily, once.

The body is raw bytes and is never re-encoded. Accessors for structured headers raise
``RemoteProtocolError`` when the peer's header is malformed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from dataclasses import replace as _dc_replace
from typing import Any

from sip.address import Address, parse_address
from sip.errors import RemoteProtocolError
from sip.headers import Headers, header_key, split_commas
from sip.params import is_digits
from sip.randomness import random_hex
from sip.uri import AbsoluteUri, SipUri, parse_uri
from sip.via import Via, parse_via


class cached_property:
    """Compute once per instance and store in its ``__dict__`` (later reads never reach the descriptor).

    functools.cached_property takes a lock on every first access in Python 3.11; messages are never shared
    between threads, so the hot path does without it.
    """

    __slots__ = ("func", "name")

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func
        self.name = func.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, cls: type | None = None) -> Any:
        if obj is None:
            return self
        value = self.func(obj)
        obj.__dict__[self.name] = value
        return value


# Views a rewritten copy of a message may keep (they do not depend on the Via).
CARRIED_VIEWS = ("call_id", "cseq", "from_", "to", "contacts", "expires", "content_type", "request_uri")


# RFC 3261 §21 reason phrases, with the extensions a GB/T 28181 platform uses.
REASONS: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    204: "No Notification",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


@dataclass(frozen=True, slots=True)
class CSeq:
    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_cseq(text: str) -> CSeq:
    parts = text.split()
    if len(parts) != 2 or not is_digits(parts[0]) or len(parts[0]) > 10:
        raise RemoteProtocolError(f"bad CSeq {text[:80]!r}")
    seq = int(parts[0])
    if seq >= 2**31:  # RFC 3261 §8.1.1.5: less than 2**31
        raise RemoteProtocolError(f"CSeq out of range {text[:80]!r}")
    return CSeq(seq, parts[1])


def warning_value(text: str, agent: str = "-") -> str:
    """A ``Warning`` value (RFC 3261 §20.43) with code 399 carrying ``text``, made safe for a header: printable
    ASCII only, no quotes or backslashes, at most 200 characters."""
    safe = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "?" for c in text)[:200]
    return f'399 {agent} "{safe}"'


def new_tag() -> str:
    return random_hex(6)


def new_branch() -> str:
    return "z9hG4bK" + random_hex(10)


def new_call_id(host: str = "") -> str:
    return random_hex(12) + (f"@{host}" if host else "")


class _Common:
    """Structured views shared by requests and responses; each is computed once per message."""

    headers: Headers
    body: bytes

    @cached_property
    def vias(self) -> list[Via]:
        values = self.headers.values("via")
        if not values:
            raise RemoteProtocolError("missing Via")
        return [parse_via(v) for v in values]

    @cached_property
    def top_via(self) -> Via:
        first = self.headers.get("via")
        if first is None:
            raise RemoteProtocolError("missing Via")
        return parse_via(split_commas(first)[0])

    @cached_property
    def call_id(self) -> str:
        value = self.headers.get("call-id")
        if not value:
            raise RemoteProtocolError("missing Call-ID")
        return value.strip()

    @cached_property
    def cseq(self) -> CSeq:
        value = self.headers.get("cseq")
        if value is None:
            raise RemoteProtocolError("missing CSeq")
        return parse_cseq(value)

    @cached_property
    def from_(self) -> Address:
        value = self.headers.get("from")
        if value is None:
            raise RemoteProtocolError("missing From")
        return parse_address(value)

    @cached_property
    def to(self) -> Address:
        value = self.headers.get("to")
        if value is None:
            raise RemoteProtocolError("missing To")
        return parse_address(value)

    @cached_property
    def contacts(self) -> list[Address]:
        return [parse_address(v) for v in self.headers.values("contact")]

    @cached_property
    def routes(self) -> list[Address]:
        return [parse_address(v) for v in self.headers.values("route")]

    @cached_property
    def record_routes(self) -> list[Address]:
        return [parse_address(v) for v in self.headers.values("record-route")]

    @cached_property
    def expires(self) -> int | None:
        """The Expires header as seconds, None when absent (RFC 3261 §20.19)."""
        return expires_value(self.headers.get("expires"))

    @cached_property
    def content_type(self) -> str | None:
        """Media type without parameters, lower case (``application/manscdp+xml``)."""
        value = self.headers.get("content-type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip().lower()

    @cached_property
    def content_type_params(self) -> dict[str, str]:
        value = self.headers.get("content-type") or ""
        out: dict[str, str] = {}
        for part in value.split(";")[1:]:
            k, _, v = part.partition("=")
            out[k.strip().lower()] = v.strip().strip('"')
        return out

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


@dataclass(frozen=True, eq=False)
class Request(_Common):
    method: str
    uri: str  # Request-URI as received; parsed on demand by ``request_uri``
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    @cached_property
    def request_uri(self) -> SipUri | AbsoluteUri:
        return parse_uri(self.uri)

    @cached_property
    def max_forwards(self) -> int | None:
        value = self.headers.get("max-forwards")
        if value is None:
            return None
        value = value.strip()
        if not is_digits(value) or len(value) > 10 or int(value) > 255:  # §20.22: 0-255
            raise RemoteProtocolError(f"bad Max-Forwards {value[:20]!r}")
        return int(value)

    def replace(self, **changes: object) -> Request:
        return _dc_replace(self, **changes)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} ({len(self.body)} B body)>"


@dataclass(frozen=True, eq=False)
class Response(_Common):
    status: int
    reason: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    @property
    def provisional(self) -> bool:
        return self.status < 200

    def replace(self, **changes: object) -> Response:
        return _dc_replace(self, **changes)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} ({len(self.body)} B body)>"


Message = Request | Response

def expires_value(value: str | None) -> int | None:
    """An Expires header value as seconds (RFC 3261 §20.19), None for None; RemoteProtocolError if malformed."""
    if value is None:
        return None
    value = value.strip()
    if not is_digits(value) or len(value) > 10:
        raise RemoteProtocolError(f"bad Expires {value[:40]!r}")
    return int(value)


# Headers a response copies from its request (RFC 3261 §8.2.6.2).
_COPIED = frozenset({"via", "from", "to", "call-id", "cseq"})


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> Response:
    """Build a response per RFC 3261 §8.2.6: Via, From, To, Call-ID and CSeq copied in order.

    A To tag is added when ``to_tag`` is given and the request's To has none (§8.2.6.2); a 100 never
    gets one.
    """
    items: list[tuple[str, str]] = []
    keys: list[str] = []
    for key, name, value in request.headers.keyed():
        if key in _COPIED:
            if key == "to" and to_tag and status != 100 and request.to.tag is None:
                value = f"{value};tag={to_tag}"
            items.append((name, value))
            keys.append(key)
    if headers:
        for name, value in headers:
            items.append((name, value))
            keys.append(header_key(name))
    if status == 100 and (ts := request.headers.get("timestamp")) is not None:
        items.append(("Timestamp", ts))  # RFC 3261 §8.2.6.1
        keys.append("timestamp")
    return Response(status, reason if reason is not None else REASONS.get(status, ""), Headers(items, keys), body)
