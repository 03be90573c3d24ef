"""Request/Response -> bytes. Content-Length is always the body's real length in bytes."""

from __future__ import annotations

from collections.abc import Sequence

from sip.message import Request, Response


def serialize(msg: Request | Response, extra: Sequence[tuple[str, str]] = ()) -> bytes:
    """The wire form of ``msg``; ``extra`` headers go after its own (the endpoint's Server/User-Agent)."""
    if isinstance(msg, Request):
        lines = [f"{msg.method} {msg.uri} {msg.version}"]
    else:
        lines = [f"{msg.version} {msg.status} {msg.reason}"]
    length = str(len(msg.body))
    length_line = None
    headers = msg.headers
    for key, (name, value) in zip(headers._keys, headers._items, strict=True):
        if key == "content-length":
            if length_line is None:
                length_line = len(lines)
                lines.append(f"{name}: {length}")
        else:
            lines.append(f"{name}: {value}")
    for name, value in extra:
        lines.append(f"{name}: {value}")
    if length_line is None:
        lines.append(f"Content-Length: {length}")
    lines.append("")
    lines.append("")
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + msg.body
