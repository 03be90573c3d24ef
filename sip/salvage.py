"""Best-effort recovery of a request's head from bytes that failed to parse, so the endpoint can answer
them statelessly (RFC 3261 §8.2: a UAS answers a malformed request with 400 when it can).

Only the start line and the headers a response copies (§8.2.6.2: Via, From, To, Call-ID, CSeq) are
recovered. Lines that broke the parse (NUL, bare CR, bad names, oversize) are skipped rather than fatal,
so a request whose fault lies elsewhere still gets its 400 with a Warning.
"""

from __future__ import annotations

from sip.headers import Headers, header_key
from sip.limits import Limits

_NEEDED = frozenset({"via", "from", "to", "call-id", "cseq"})
_TOKEN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")


def salvage_head(data: bytes, limits: Limits) -> tuple[str, Headers] | None:
    """Start line and the response-building headers of a bad datagram, or None when even those cannot
    be read (no start line; the caller then checks that all five headers came back)."""
    data = data[: limits.max_datagram].lstrip(b"\r\n")  # §7.5: CRLFs before the start line
    ends = [i for i in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if i >= 0]
    head = data[: min(ends)] if ends else data
    if len(head) > limits.max_head:  # keep the top (where Via and friends live), whole lines only
        head = head[: head.rfind(b"\n", 0, limits.max_head) + 1]
    lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in head.split(b"\n")]
    start_raw = lines[0]
    if not start_raw or b" " not in start_raw or b"\0" in start_raw or b"\r" in start_raw:
        return None
    if len(start_raw) > limits.max_line:
        return None
    items: list[tuple[str, str]] = []
    keep = False  # whether the header a continuation line belongs to was kept
    for raw in lines[1:]:
        if len(raw) > limits.max_line or b"\0" in raw or b"\r" in raw:
            keep = False
            continue
        text = raw.decode("utf-8", "surrogateescape")
        if text[:1] in (" ", "\t"):  # folded continuation (§7.3.1)
            more = text.strip(" \t")
            if keep and more:
                name, value = items[-1]
                items[-1] = (name, f"{value} {more}" if value else more)
            continue
        name, colon, value = text.partition(":")
        name = name.rstrip(" \t")
        keep = bool(colon and name and _TOKEN.issuperset(name) and header_key(name) in _NEEDED)
        if keep:
            items.append((name, value.strip(" \t")))
    return start_raw.decode("utf-8", "surrogateescape"), Headers(items)
