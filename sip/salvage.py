"""Best-effort recovery of a request's head from bytes that failed to parse, so the endpoint can answer
them statelessly (RFC 3261 §8.2: a UAS answers a malformed request with 400 when it can).
"""

from __future__ import annotations

from sip.errors import RemoteProtocolError
from sip.headers import Headers
from sip.limits import Limits
from sip.parser import _find_head_end, _parse_head


def salvage_head(data: bytes, limits: Limits) -> tuple[str, Headers] | None:
    """Start line and headers of a bad datagram, or None when even those cannot be read."""
    if len(data) > limits.max_datagram:
        data = data[: limits.max_datagram]
    end, _ = _find_head_end(data)
    head = data if end < 0 else data[:end]
    # Drop lines that do not look like headers instead of failing on them.
    lines = head.split(b"\n")
    kept = [lines[0]] + [ln for ln in lines[1:] if b":" in ln and not ln[:1].isspace()]
    try:
        start, items = _parse_head(b"\n".join(kept), limits)
    except RemoteProtocolError:
        return None
    if not start or " " not in start:
        return None
    return start, Headers(items)
