"""How the platform answers when its registry cannot write (issue 9: disk full / database locked).

A REGISTER whose registration cannot be made durable is never answered 200: it gets 503 with Retry-After
(RFC 3261 §21.5.4) and a Warning saying why (§20.43), so the device retries later and an operator reading a
capture sees the reason. Keepalives are answered from memory meanwhile (their timestamps are batched and retried).
"""

from __future__ import annotations

from registry.store import BUSY, FULL

# Retry-After per kind: a locked database usually frees within seconds (a backup, an admin tool); a full disk
# needs someone to free space.
_RETRY_AFTER = {BUSY: 5, FULL: 60}
_WHY = {FULL: "registry storage full", BUSY: "registry database locked"}


def storage_refusal(kind: str) -> tuple[int, list[tuple[str, str]]]:
    """The status and headers of a REGISTER refused because the registry could not store it."""
    why = _WHY.get(kind, f"registry storage error ({kind})")
    return 503, [
        ("Retry-After", str(_RETRY_AFTER.get(kind, 30))),
        ("Warning", f'399 gb28181 "{why}: registration not stored, retry later"'),
    ]
