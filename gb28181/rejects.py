"""Rejected input by reason: one short name per kind of refusal, for counters (``gb28181 stats``) and metrics.

The SIP stack reports refusals as MessageRejected / ConnectionBroken events with a human reason (RFC 3261 §21.4
status hints: 413 too large, 513 datagram too large, 400 malformed); this maps them to a fixed, small vocabulary
so counters stay bounded whatever peers send.
"""

from __future__ import annotations

# Checked in order; the first substring found names the reason.
_PATTERNS: tuple[tuple[str, str], ...] = (
    ("read deadline", "slow-sender"),
    ("connections already open", "connection-flood"),
    ("more than", "header-flood"),
    ("content-length is mandatory", "no-content-length"),
    ("unframed bytes", "stream-overflow"),
    ("exceeds", "too-large"),
    ("too long", "too-large"),
    ("stray", "stray-response"),
    ("transaction table full", "overload"),
)


def reject_reason(reason: str) -> str:
    """The counter name for a stack refusal's reason text (``malformed`` when nothing more specific fits)."""
    text = reason.lower()
    for needle, name in _PATTERNS:
        if needle in text:
            return name
    return "malformed"
