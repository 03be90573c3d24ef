"""Periodic catalog syncs as a fallback (GB/T 28181-2022 §9.5: the catalog is queried; subscriptions, §9.11, are
optional and often unreliable in the field): every registered device is asked again once per ``interval``.

Pure and time-injected. A device enters the schedule when it registers (its first periodic sync falls at a stable
point inside the first interval, taken from its ID, so a platform restart does not ask every device at once), is
skipped while the caller says it needs no sync (not registered, or an active catalog subscription keeps it fresh),
and is asked at most ``max_per_tick`` at a time so ten thousand devices never get their queries in one burst.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable


class CatalogSchedule:
    def __init__(self, interval: float, *, max_per_tick: int = 20) -> None:
        if interval < 0 or max_per_tick < 1:
            raise ValueError("interval must be >= 0 (0 = off) and max_per_tick >= 1")
        self.interval = interval
        self.max_per_tick = max_per_tick
        self._next: dict[str, float] = {}  # device -> when its next periodic sync is due (monotonic)
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._next)

    def next_at(self, device_id: str) -> float | None:
        return self._next.get(device_id)

    def registered(self, device_id: str, now: float) -> None:
        """A device (re)registered: schedule its first periodic sync, unless one is already scheduled."""
        if self.interval <= 0 or device_id in self._next:
            return
        self._set(device_id, now + self.interval * _fraction(device_id))

    def synced(self, device_id: str, now: float) -> None:
        """A sync of this device started (any reason: registration, operator, schedule): the next is one interval
        later."""
        if self.interval > 0:
            self._set(device_id, now + self.interval)

    def forget(self, device_id: str) -> None:
        """The device is gone (unregistered, removed): nothing is scheduled until it registers again."""
        self._next.pop(device_id, None)

    def due(self, now: float, wanted: Callable[[str], bool]) -> list[str]:
        """Devices whose periodic sync is due now and ``wanted`` (registered, no live catalog subscription);
        at most ``max_per_tick``; the rest stay due for the next tick. A device not wanted now is looked at
        again one interval later."""
        out: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= now and len(out) < self.max_per_tick:
            at, device_id = heapq.heappop(heap)
            if self._next.get(device_id) != at:
                continue  # superseded by a later entry, or forgotten
            if wanted(device_id):
                out.append(device_id)
            self._set(device_id, now + self.interval)
        return out

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and self._next.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _set(self, device_id: str, at: float) -> None:
        self._next[device_id] = at
        heapq.heappush(self._heap, (at, device_id))
        if len(self._heap) > 4 * len(self._next) + 1024:  # bounded: drop superseded entries now and then
            self._heap = [(t, d) for t, d in self._heap if self._next.get(d) == t]
            heapq.heapify(self._heap)


def _fraction(device_id: str) -> float:
    """A stable point in [0, 1) for this ID (not Python's salted hash: the same after a restart)."""
    digest = hashlib.blake2b(device_id.encode("utf-8", "surrogateescape"), digest_size=4).digest()
    return int.from_bytes(digest, "big") / 2**32
