"""Request/Response -> bytes. Content-Length is always the body's real length in bytes."""

from __future__ import annotations

from sip.headers import header_key
from sip.message import Request, Response


def serialize(msg: Request | Response) -> bytes:
    if isinstance(msg, Request):
        lines = [f"{msg.method} {msg.uri} {msg.version}"]
    else:
        lines = [f"{msg.version} {msg.status} {msg.reason}"]
    length = str(len(msg.body))
    have_length = False
    for name, value in msg.headers:
        if header_key(name) == "content-length":
            if not have_length:
                lines.append(f"{name}: {length}")
                have_length = True
        else:
            lines.append(f"{name}: {value}")
    if not have_length:
        lines.append(f"Content-Length: {length}")
    lines.append("")
    lines.append("")
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + msg.body
