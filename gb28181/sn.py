"""Query/Response correlation (GB/T 28181-2022 §9.3.3, §9.5.3, A.1): a query MESSAGE gets an immediate 200, the
answer comes later in its own MESSAGE carrying the query's SN. No IO and no clock: the caller owns the timeout
and cancels what it gave up on.

Tolerances seen in the field: some devices answer with another CmdType than asked (a Dahua PTZ answers
``HomePosition`` to ``HomePositionQuery``), so a response matches on (device, SN) and its CmdType only needs to be
one of the accepted answers for the query. ``Result ERROR`` is an error, never a success.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

# Answers accepted for a query besides its own CmdType (postmortem in fixtures/manscdp/wild/PROVENANCE.md).
ALSO_ACCEPTED: dict[str, frozenset[str]] = {
    "HomePositionQuery": frozenset({"HomePosition"}),
    "CruiseTrackListQuery": frozenset({"CruiseTrackList"}),
    "CruiseTrackQuery": frozenset({"CruiseTrack"}),
}


class QueryError(Exception):
    """A query failed: the device refused it, answered ERROR, or did not answer in time."""

    def __init__(self, reason: str, *, kind: str = "error") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind  # "refused" | "error" | "timeout" | "transport"


@dataclass
class Pending:
    device_id: str
    sn: int
    cmd_type: str
    handle: Any = None  # the caller's future or callback; opaque here
    answers: list[Any] = field(default_factory=list)


class Correlator:
    """Outstanding queries by (device, SN). SNs are allocated per platform, never reused while pending."""

    def __init__(self, start: int = 0, max_pending: int = 100_000) -> None:
        self._pending: dict[tuple[str, int], Pending] = {}
        self._per_device: dict[str, int] = {}  # device -> its pending queries (for ``expects``)
        self._next = itertools.count(start)
        self.max_pending = max_pending

    def __len__(self) -> int:
        return len(self._pending)

    def new_sn(self, device_id: str) -> int:
        """An SN in 1..2**31-1 not pending for this device (A.2.1.3: SN is a positive integer)."""
        for _ in range(1000):
            sn = next(self._next) % (2**31 - 1) + 1
            if (device_id, sn) not in self._pending:
                return sn
        raise QueryError("no free SN")  # unreachable unless a million queries are pending for one device

    def add(self, device_id: str, sn: int, cmd_type: str, handle: Any = None) -> Pending:
        if len(self._pending) >= self.max_pending:
            raise QueryError(f"too many queries outstanding ({self.max_pending})", kind="error")
        pending = Pending(device_id, sn, cmd_type, handle)
        if (device_id, sn) not in self._pending:
            self._per_device[device_id] = self._per_device.get(device_id, 0) + 1
        self._pending[(device_id, sn)] = pending
        return pending

    def expects(self, device_id: str) -> bool:
        """Whether a query of ours to this device is still waiting for its Response."""
        return device_id in self._per_device

    def _forget(self, device_id: str) -> None:
        left = self._per_device.get(device_id, 0) - 1
        if left > 0:
            self._per_device[device_id] = left
        else:
            self._per_device.pop(device_id, None)

    def match(self, device_id: str, sn: int | None, cmd_type: str) -> Pending | None:
        """The pending query a Response belongs to, removed from the table; None for a stray answer."""
        if sn is None:
            return None
        pending = self._pending.get((device_id, sn))
        if pending is None:
            return None
        if cmd_type != pending.cmd_type and cmd_type not in ALSO_ACCEPTED.get(pending.cmd_type, ()):
            return None
        del self._pending[(device_id, sn)]
        self._forget(device_id)
        return pending

    def cancel(self, device_id: str, sn: int) -> Pending | None:
        pending = self._pending.pop((device_id, sn), None)
        if pending is not None:
            self._forget(device_id)
        return pending


def check_result(fields: dict[str, str]) -> None:
    """Raise QueryError for ``<Result>ERROR</Result>`` (with the device's Reason when given)."""
    result = fields.get("Result", "").strip().upper()
    if result and result != "OK":
        reason = fields.get("Reason", "").strip() or "no reason given"
        raise QueryError(f"device answered Result {result}: {reason}", kind="error")
