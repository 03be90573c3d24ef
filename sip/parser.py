"""Bytes -> Request/Response (RFC 3261 §7), and TCP stream framing (§18.3).

Lenient where the field is (bare LF line ends, LWS around the colon, folded lines, padded
Content-Length), strict where it matters (start line, version, Content-Length vs body, limits) and where
two parsers could read one message differently: a NUL or a bare CR in the head, or two Content-Length
values, are refused. The only exception raised is ``RemoteProtocolError`` carrying the status the stack
should answer with.

Framing only: the start line, header lines and Content-Length are checked here; structured headers (Via,
From, To, CSeq...) are parsed lazily by the message accessors, which raise ``RemoteProtocolError`` too.
"""

from __future__ import annotations

import re

from sip.errors import RemoteProtocolError
from sip.headers import Headers
from sip.limits import DEFAULT_LIMITS, Limits
from sip.message import Request, Response
from sip.params import is_digits

_TOKEN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
# RFC 3261 §8.1.1: mandatory in every request; a response needs the same minus Max-Forwards.
_REQUIRED = ("via", "from", "to", "call-id", "cseq")

# The common head, parsed in C: header lines only, none folded, one match per line. Anything else takes the
# line loop below, which gives the precise error.
_TOKEN_RE = r"[A-Za-z0-9\-.!%*_+`'~]+"
# value: greedy up to its last non-blank character (a lazy match backtracks at every character)
_PLAIN_LINE = re.compile(rf"^({_TOKEN_RE})[ \t]*:[ \t]*((?:[^\r\n]*[^\r\n \t])?)[ \t]*\r?$", re.M)


def _find_head_end(data: bytes | bytearray, start: int = 0) -> tuple[int, int]:
    """Where the first empty line is: (end of the head, start of the body), or (-1, -1).

    The empty line may follow a CRLF or a bare LF line end, and be CRLF or bare LF itself. The head
    (``data[start:head_end]``) may end with the ``\r`` of its last line's CRLF.
    """
    crlf = data.find(b"\n\r\n", start)
    # A "\n\n" can only come first if it starts before the "\n\r\n" does.
    lf = data.find(b"\n\n", start, len(data) if crlf < 0 else crlf + 1)
    if lf >= 0:
        return lf, lf + 2
    if crlf >= 0:
        return crlf, crlf + 3
    return -1, -1


def _parse_head(head: bytes, limits: Limits) -> tuple[str, list[tuple[str, str]]]:
    if len(head) > limits.max_head:
        raise RemoteProtocolError(f"header section of {len(head)} bytes exceeds {limits.max_head}", 413)
    text = head.decode("utf-8", "surrogateescape")
    if "\x00" in text:
        raise RemoteProtocolError("NUL byte in the header section")
    if "\r" in text:
        # Only CRLF line ends: a bare CR is a line end to some parsers and not to others (smuggling).
        inner = text[:-1] if text[-1] == "\r" else text
        if inner.count("\r") != inner.count("\r\n"):
            raise RemoteProtocolError("bare CR in the header section")
    nl = text.find("\n")
    if nl >= 0 and len(text) <= limits.max_line:
        rest = text[nl + 1 :]
        if "\n " not in rest and "\n\t" not in rest:
            # Every line is a plain header line exactly when the line pattern matched once per line.
            plain = _PLAIN_LINE.findall(rest)
            if len(plain) == rest.count("\n") + 1:
                if len(plain) > limits.max_headers:
                    raise RemoteProtocolError(f"more than {limits.max_headers} headers", 413)
                return text[:nl].rstrip("\r"), plain
    lines = text.split("\n")
    start = lines[0].rstrip("\r")
    if len(start) > limits.max_line:
        raise RemoteProtocolError("start line too long", 414)
    items: list[tuple[str, str]] = []
    max_line = limits.max_line
    for raw in lines[1:]:
        line = raw[:-1] if raw.endswith("\r") else raw
        if len(line) > max_line:
            raise RemoteProtocolError(f"header line of {len(line)} characters exceeds {max_line}", 413)
        if not line:
            continue
        if line[0] in " \t":  # folded continuation (RFC 3261 §7.3.1): joined with one SP
            if not items:
                raise RemoteProtocolError("continuation line before any header")
            more = line.strip(" \t")
            if more:
                name, value = items[-1]
                items[-1] = (name, f"{value} {more}" if value else more)
            continue
        colon = line.find(":")
        if colon <= 0:
            raise RemoteProtocolError(f"malformed header line {line[:80]!r}")
        name = line[:colon].rstrip(" \t")  # LWS before the colon is allowed (HCOLON)
        if not name or not _TOKEN.issuperset(name):
            raise RemoteProtocolError(f"bad header name {name[:80]!r}")
        items.append((name, line[colon + 1 :].strip(" \t")))
        if len(items) > limits.max_headers:
            raise RemoteProtocolError(f"more than {limits.max_headers} headers", 413)
    return start, items


def _content_length(headers: Headers) -> int | None:
    fields = headers.get_all("content-length")
    if not fields:
        return None
    value = fields[0]
    if not is_digits(value) or len(value) > 9:
        raise RemoteProtocolError(f"bad Content-Length {value[:40]!r}")
    length = int(value)
    for other in fields[1:]:  # two framings of one message: refuse rather than pick one
        if not is_digits(other) or len(other) > 9 or int(other) != length:
            raise RemoteProtocolError("conflicting Content-Length headers")
    return length


def _bad_version(version: str) -> RemoteProtocolError:
    """505 for a well-formed SIP version we do not speak (SIP/3.0), 400 for a malformed one."""
    major, dot, minor = version[4:].partition(".")
    if version[:4].upper() == "SIP/" and dot and is_digits(major) and is_digits(minor):
        return RemoteProtocolError(f"unsupported version {version[:20]!r}", 505)
    return RemoteProtocolError(f"malformed SIP version {version[:20]!r}")


def _build(start: str, headers: Headers, body: bytes) -> Request | Response:
    if start[:4].upper() == "SIP/":
        version, _, rest = start.partition(" ")
        if version.upper() != "SIP/2.0":  # §7.1: SIP-Version is case-insensitive
            raise _bad_version(version)
        code, _, reason = rest.partition(" ")
        if len(code) != 3 or not is_digits(code) or not 100 <= int(code) <= 699:
            raise RemoteProtocolError(f"bad status code {code[:20]!r}")
        index = headers._idx()
        for key in _REQUIRED:
            if key not in index:
                raise RemoteProtocolError(f"response without {key}")
        return Response(int(code), reason.strip(" \t"), headers, body)
    parts = start.split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise RemoteProtocolError(f"malformed request line {start[:80]!r}")
    method, uri, version = parts
    if not _TOKEN.issuperset(method):
        raise RemoteProtocolError(f"bad method {method[:40]!r}")
    if version != "SIP/2.0":
        if version.upper() != "SIP/2.0":
            raise _bad_version(version)
        version = "SIP/2.0"
    index = headers._idx()
    for key in _REQUIRED:
        if key not in index:
            raise RemoteProtocolError(f"request without {key}")
    return Request(method, uri, headers, body, version)


def parse_message(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Request | Response:
    """Parse one datagram (RFC 3261 §18.3): bytes after Content-Length are discarded, fewer is an error.

    A missing Content-Length on a datagram means "the rest of the datagram".
    """
    if len(data) > limits.max_datagram:
        raise RemoteProtocolError(f"datagram of {len(data)} bytes exceeds {limits.max_datagram}", 513)
    # RFC 3261 §7.5: ignore CRLFs before the start line.
    offset = 0
    while data[offset : offset + 2] == b"\r\n" or data[offset : offset + 1] == b"\n":
        offset += 2 if data[offset : offset + 1] == b"\r" else 1
    head_end, body_start = _find_head_end(data, offset)
    if head_end < 0:
        # A message with no body may arrive without the final blank line.
        stripped = data.rstrip(b"\r\n")
        head_end, body_start = len(stripped), len(data)
        if head_end <= offset:
            raise RemoteProtocolError("empty message")
    start, items = _parse_head(data[offset:head_end], limits)
    headers = Headers(items)
    length = _content_length(headers)
    rest = len(data) - body_start
    if length is None:
        length = rest
    elif length > rest:
        raise RemoteProtocolError(f"body of {rest} bytes shorter than Content-Length {length}")
    if length > limits.max_body:
        raise RemoteProtocolError(f"body of {length} bytes exceeds {limits.max_body}", 413)
    return _build(start, headers, data[body_start : body_start + length])


class StreamFramer:
    """Split a TCP byte stream into messages (RFC 3261 §18.3: Content-Length is mandatory on streams).

    Feed bytes with ``feed``; iterate ``messages()`` for complete ones. CRLF keep-alives (RFC 5626 §3.5.1)
    between messages are counted in ``keepalives`` and dropped, also when a ping is split across reads.
    After a framing error the stream cannot be resynchronised: ``messages()`` raises
    ``RemoteProtocolError`` and the connection should be closed. A message that is framed correctly but
    malformed (bad start line, missing Call-ID...) raises once with ``framed_head`` set; the stream
    stays usable.

    Bytes are scanned once: the search for the end of a head resumes where it stopped, and a parsed
    head is kept while its body arrives, so a message fed byte by byte costs linear time.
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._buf = bytearray()
        self._limits = limits
        self.keepalives = 0  # double-CRLF pings seen
        self.broken: RemoteProtocolError | None = None
        self._scan = 0  # where the search for the end of the head resumes
        self._pending: tuple[int, str, Headers, int] | None = None  # body_start, start, headers, length
        self._crlf = b""  # CR/LF run between messages so far (a ping may be split across reads)

    def feed(self, data: bytes) -> None:
        """Append bytes read from the connection; call ``next_message``/``messages`` after each read."""
        if self.broken:
            return
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def _need_more(self) -> None:
        """Waiting for more bytes: what is held now may not exceed the TCP buffer limit. Checked here, not
        in ``feed``, so that how the peer's bytes were cut into reads never changes the outcome."""
        if len(self._buf) > self._limits.max_tcp_buffer:
            limit = self._limits.max_tcp_buffer
            raise self._fail(RemoteProtocolError(f"{len(self._buf)} unframed bytes exceed {limit}", 413))

    def _fail(self, exc: RemoteProtocolError) -> RemoteProtocolError:
        self.broken = exc
        self._buf.clear()
        self._pending = None
        return exc

    def next_message(self) -> Request | Response | None:
        """The next complete message, or None if more bytes are needed."""
        if self.broken:
            raise self.broken
        buf = self._buf
        if self._pending is None:
            # CR/LF between messages: keep-alive pings ("\r\n\r\n") or stray line ends.
            skip = 0
            n = len(buf)
            while skip < n and buf[skip] in (13, 10):
                skip += 1
            if skip:
                run = self._crlf + bytes(buf[:skip])
                pos = 0
                while (ping := run.find(b"\r\n\r\n", pos)) >= 0:
                    self.keepalives += 1
                    pos = ping + 4
                self._crlf = run[pos:][-3:]
                del buf[:skip]
                self._scan = 0
            if not buf:
                return None
            self._crlf = b""
            head_end, body_start = _find_head_end(buf, self._scan)
            if head_end < 0:
                if len(buf) - 2 > self._limits.max_head:  # up to 2 bytes may begin the empty line
                    raise self._fail(RemoteProtocolError("header section too long on stream", 413))
                self._scan = max(0, len(buf) - 2)
                self._need_more()
                return None
            try:
                start, items = _parse_head(bytes(buf[:head_end]), self._limits)
                headers = Headers(items)
                length = _content_length(headers)
                if length is None:
                    raise RemoteProtocolError("Content-Length is mandatory on stream transports")
                if length > self._limits.max_body:
                    raise RemoteProtocolError(f"body of {length} bytes exceeds {self._limits.max_body}", 413)
            except RemoteProtocolError as exc:
                raise self._fail(exc) from None
            self._pending = (body_start, start, headers, length)
        body_start, start, headers, length = self._pending
        end = body_start + length
        if len(buf) < end:
            self._need_more()
            return None
        body = bytes(buf[body_start:end])
        del buf[:end]
        self._pending = None
        self._scan = 0
        try:
            return _build(start, headers, body)
        except RemoteProtocolError as exc:
            # The framing was sound; only this message is bad. The stream stays usable.
            exc.framed_head = (start, headers)  # type: ignore[attr-defined]
            raise

    def messages(self) -> list[Request | Response]:
        out = []
        while (msg := self.next_message()) is not None:
            out.append(msg)
        return out
