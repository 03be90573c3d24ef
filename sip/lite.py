"""A lean reading of the plain out-of-dialog requests that make up a registrar's load (REGISTER, MESSAGE).

``peek(data)`` reads one datagram without building a ``Request``: it checks the start line and the headers a
response copies (RFC 3261 §8.2.6.2: Via, From, To, Call-ID, CSeq) against strict patterns, keeps every other header
as raw bytes, and returns None for anything outside the common shape (several Vias, folded lines, a To tag,
Require, Route, escapes in a user part, a Content-Length that does not match...). None is not an error: such a
message takes the full parser, which answers or rejects it precisely. So the lane needs to be right only about
what it accepts, and the tests compare it with the full parser on every message it accepts.

``response(lite, ...)`` writes the answer the way ``make_response`` + ``serialize`` would: the copied headers in
the request's order, with ``received``/``rport`` set on the top Via (RFC 3261 §18.2.1, RFC 3581 §4) and a To tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sip.message import REASONS
from sip.via import same_host

METHODS = (b"REGISTER", b"MESSAGE")

_TOKEN = rb"[A-Za-z0-9\-.!%*_+`'~]+"
_START = re.compile(rb"(REGISTER|MESSAGE) (sips?:[!-~]+) SIP/2\.0")
_VIA = re.compile(
    rb"SIP/2\.0/(UDP|TCP) ([A-Za-z0-9][A-Za-z0-9.\-]*|\[[0-9A-Fa-f:.]+\])(?::([1-9][0-9]{0,4}))?((?:;" + _TOKEN
    + rb"(?:=" + _TOKEN + rb")?)*)"
)
# name-addr with a plain user part (no escapes, no ';' or '?' user parameters), then tokens as parameters.
_HOSTPORT = rb"(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}))?"
_NAME_ADDR = re.compile(
    rb'(?:"[^"\\\r\n]*"[ \t]*|[A-Za-z0-9\-.!%*_+`\'~ \t]*)<sips?:([A-Za-z0-9\-_.!~*\'()&=+$,]+)@' + _HOSTPORT + rb">"
    rb"((?:[ \t]*;[ \t]*" + _TOKEN + rb"(?:=" + _TOKEN + rb")?)*)"
)
_CSEQ = re.compile(rb"([0-9]{1,10})[ \t]+(REGISTER|MESSAGE)")
_CALL_ID = re.compile(rb"[!-~]+")
_DIGITS = re.compile(rb"[0-9]{1,9}")
# Compact forms (RFC 3261 §7.3.3 and the extensions' RFCs) of the headers read here.
_COMPACT = {b"v": b"via", b"f": b"from", b"t": b"to", b"i": b"call-id", b"l": b"content-length", b"c": b"content-type",
            b"m": b"contact", b"k": b"supported", b"s": b"subject", b"e": b"content-encoding"}  # fmt: skip
_COPIED_SET = frozenset({b"via", b"from", b"to", b"call-id", b"cseq"})
# Headers that need the full stack: Require/Proxy-Require (420, §8.2.2.3), Route (a request to route on).
_REFUSED = frozenset({b"require", b"proxy-require", b"route"})


# One header line after its predecessor's line end: name, value (blanks around the colon and at the end dropped).
# Matches follow each other line by line; a line that does not match (folded, malformed) leaves the count short.
_LINE = re.compile(rb"\n(" + _TOKEN + rb")[ \t]*:[ \t]*((?:[^\r\n]*[^\r\n \t])?)[ \t]*\r")
_PARAM = re.compile(rb";(" + _TOKEN + rb")(?:=(" + _TOKEN + rb"))?")
_TAG = re.compile(rb";[ \t]*tag[ \t]*=", re.I)
_KEYS: dict[bytes, bytes] = {}  # header names as sent -> lower-case full names (bounded: see _key)


def _key(name: bytes) -> bytes:
    key = _KEYS.get(name)
    if key is None:
        key = name.lower()
        key = _COMPACT.get(key, key)
        if len(_KEYS) < 512:
            _KEYS[name] = key
    return key


@dataclass(slots=True, eq=False)
class Lite:
    """One request as the lane reads it. Header values are bytes, as sent (surrounding blanks removed)."""

    method: str
    uri: str
    branch: str
    sent_by: str  # host[:port] of the top Via, as ``Via.sent_by`` writes it
    via_host: str
    rport: bool  # the top Via asks for rport (RFC 3581)
    from_user: str
    to_user: str
    call_id: str
    headers: dict[bytes, bytes]  # lower-case full names
    lines: list[tuple[bytes, bytes]]  # every header (name as sent, value) in request order
    via_params: list[tuple[bytes, bytes]]  # (name, value or b"" for a flag)
    body: bytes

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("utf-8", "surrogateescape")

    @property
    def content_type(self) -> str | None:
        """Media type without parameters, lower case, as ``Request.content_type``."""
        value = self.header(b"content-type")
        return None if value is None else value.split(";", 1)[0].strip().lower()


def peek(data: bytes, max_headers: int = 100) -> Lite | None:
    """``data`` read as a plain REGISTER or MESSAGE, or None (take the full parser)."""
    if not data.startswith(METHODS):
        return None
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    first = data.find(b"\r\n")
    start = _START.fullmatch(data, 0, first)
    if start is None:
        return None
    head = data[first : head_end + 2]  # CRLF, then the header lines, each with its CRLF
    lines = _LINE.findall(head)
    count = head.count(b"\n") - 1
    if len(lines) != count or head.count(b"\r") != count + 1 or count > max_headers or b"\x00" in head:
        return None  # a folded or malformed line, a bare CR or LF, too many headers: the full parser decides
    known = _KEYS.get
    headers = {known(name) or _key(name): value for name, value in lines}
    if len(headers) != len(lines) or not _REFUSED.isdisjoint(headers):
        return None  # a repeated header (several Vias, two Contacts...) or one that needs the full stack
    try:
        via = _VIA.fullmatch(headers[b"via"])
        frm = _NAME_ADDR.fullmatch(headers[b"from"])
        to = _NAME_ADDR.fullmatch(headers[b"to"])
        cseq = _CSEQ.fullmatch(headers[b"cseq"])
        call_id = headers[b"call-id"]
    except KeyError:
        return None
    if via is None or frm is None or to is None or cseq is None or not _CALL_ID.fullmatch(call_id):
        return None
    method = start.group(1)
    if cseq.group(2) != method or int(cseq.group(1)) > 2**31 - 1:
        return None
    if len(_TAG.findall(frm.group(2))) != 1 or _TAG.search(to.group(2)):
        return None  # no From tag (RFC 2543), or a To tag (in-dialog): the full stack
    via_params = _PARAM.findall(via.group(4))
    branch = b""
    rport = False
    for name, value in via_params:
        if name == b"branch":
            if branch or not value:
                return None
            branch = value
        elif name == b"rport" and not value and not rport:
            rport = True
        elif name.lower() in (b"branch", b"rport", b"received"):
            return None  # a filled rport, a received, odd case: as rare as unusual, the full stack handles them
    if not branch.startswith(b"z9hG4bK"):
        return None  # RFC 2543 transaction matching: the full stack
    body = data[head_end + 4 :]
    length = headers.get(b"content-length")
    if length is not None and (not _DIGITS.fullmatch(length) or int(length) != len(body)):
        return None
    forwards = headers.get(b"max-forwards")
    if forwards is not None and (not _DIGITS.fullmatch(forwards) or forwards.strip(b"0") == b""):
        return None
    host = via.group(2).decode("ascii")
    port = via.group(3)
    if port is not None and int(port) > 65535:
        return None
    return Lite(
        method.decode("ascii"),
        start.group(2).decode("ascii"),
        branch.decode("ascii"),
        host if port is None else f"{host}:{int(port)}",
        host.strip("[]"),
        rport,
        frm.group(1).decode("ascii"),
        to.group(1).decode("ascii"),
        call_id.decode("ascii"),
        headers,
        lines,
        via_params,
        body,
    )


def response(
    lite: Lite,
    status: int,
    source: tuple[str, int],
    *,
    reason: str | None = None,
    to_tag: str,
    headers: list[tuple[str, str]] | None = None,
    server: str = "",
) -> bytes:
    """The answer to ``lite`` (received from ``source``) as ``make_response`` + ``serialize`` write it."""
    host, port = source
    parts = [f"SIP/2.0 {status} {reason if reason is not None else REASONS.get(status, '')}".encode()]
    for name, value in lite.lines:
        key = _key(name)
        if key not in _COPIED_SET:
            continue
        if key == b"via":
            value = _via_received(value, lite, host, port)
        elif key == b"to":
            value = b"%s;tag=%s" % (value, to_tag.encode())
        parts.append(name + b": " + value)
    own = False
    for name, value in headers or ():
        low = name.lower()
        own = own or low in ("server", "user-agent")
        parts.append(f"{name}: {value}".encode("utf-8", "surrogateescape"))
    if server and not own:
        parts.append(b"Server: " + server.encode("utf-8", "surrogateescape"))
    parts.append(b"Content-Length: 0\r\n\r\n")
    return b"\r\n".join(parts)


def _via_received(value: bytes, lite: Lite, host: str, port: int) -> bytes:
    """RFC 3261 §18.2.1 and RFC 3581 §4, as ``Via.with_received``: rport filled in place and received added last
    when rport was asked; else received only when the source differs from sent-by."""
    if lite.rport:
        semi = value.find(b";")
        params = [(n, str(port).encode() if n == b"rport" else v) for n, v in lite.via_params]
        params.append((b"received", host.encode()))
        return value[:semi] + b"".join(b";" + n + b"=" + v if v else b";" + n for n, v in params)
    if host == lite.via_host:
        return value
    if same_host(host, lite.via_host):  # the rare path: sent-by a host name or another spelling of the address
        return value
    return value + b";received=" + host.encode()


def target(lite: Lite, source: tuple[str, int]) -> tuple[str, int]:
    """Where a UDP response goes (§18.2.2, RFC 3581 §4): the source address; its port when rport was asked, else
    the sent-by port (default 5060)."""
    if lite.rport:
        return source
    _, _, port = lite.sent_by.rpartition(":") if not lite.sent_by.endswith("]") else ("", "", "")
    return source[0], int(port) if port.isdigit() else 5060
