"""Liveness of registered devices as a pure function of time (GB/T 28181-2022 §9.6; DECISIONS.md).

A device is online while registered and heard from within its keepalive window: its own
HeartBeatInterval x HeartBeatCount when it told us, else ``[keepalive] interval x max_missed``. Liveness is
not registration: a lapsed window makes it offline but still registered; expiry ends the registration.
Times here are one monotonic clock chosen by the caller; nothing reads a clock.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

KEEPALIVE_TIMEOUT = "keepalive-timeout"
EXPIRED = "expired"


@dataclass(frozen=True)
class LivenessPolicy:
    interval: int = 60
    max_missed: int = 3

    def window(self, interval: int | None = None, count: int | None = None) -> float:
        return float((interval or self.interval) * (count or self.max_missed))


@dataclass
class _State:
    online: bool
    window: float
    seen_deadline: float
    expiry: float


class Liveness:
    """Deadlines per device in a heap with lazy invalidation; ``due(now)`` yields the transitions."""

    def __init__(self) -> None:
        self._states: dict[str, _State] = {}
        self._heap: list[tuple[float, int, str, str]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._states)

    def is_online(self, device_id: str) -> bool:
        st = self._states.get(device_id)
        return st is not None and st.online

    def is_registered(self, device_id: str) -> bool:
        return device_id in self._states

    def registered(self, device_id: str, now: float, expires: float, window: float, *, online: bool = True) -> bool:
        """A (re-)registration: expiry at ``now + expires``. Returns True if the device came online."""
        st = self._states.get(device_id)
        was_online = st is not None and st.online
        st = _State(online=online, window=window, seen_deadline=now + window, expiry=now + expires)
        self._states[device_id] = st
        self._push(st.expiry, device_id, EXPIRED)
        if online:
            self._push(st.seen_deadline, device_id, KEEPALIVE_TIMEOUT)
        return online and not was_online

    def seen(self, device_id: str, now: float, window: float | None = None) -> bool:
        """A keepalive (or other proof of life) from a registered device. True if it came back online."""
        st = self._states.get(device_id)
        if st is None:
            return False
        if window is not None:
            st.window = window
        came_back = not st.online
        deadline = now + st.window
        if st.online and deadline == st.seen_deadline:
            return False  # same instant, same window: its timeout entry is already in the heap
        st.online = True
        st.seen_deadline = deadline
        self._push(deadline, device_id, KEEPALIVE_TIMEOUT)
        return came_back

    def set_offline(self, device_id: str) -> bool:
        """Offline without waiting (its TCP connection closed). True if it was online."""
        st = self._states.get(device_id)
        if st is None or not st.online:
            return False
        st.online = False
        return True

    def unregistered(self, device_id: str) -> bool:
        """Registration ended. True if the device was online."""
        st = self._states.pop(device_id, None)
        return st is not None and st.online

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            at, _, device_id, kind = heap[0]
            if self._valid(at, device_id, kind):
                return at
            heapq.heappop(heap)
        return None

    def due(self, now: float) -> list[tuple[str, str]]:
        """Transitions whose time has come: (device_id, EXPIRED | KEEPALIVE_TIMEOUT)."""
        out: list[tuple[str, str]] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, _, device_id, kind = heapq.heappop(heap)
            if not self._valid(at, device_id, kind):
                continue
            if kind == EXPIRED:
                del self._states[device_id]
                out.append((device_id, EXPIRED))
            else:
                self._states[device_id].online = False
                out.append((device_id, KEEPALIVE_TIMEOUT))
        return out

    def _valid(self, at: float, device_id: str, kind: str) -> bool:
        st = self._states.get(device_id)
        if st is None:
            return False
        if kind == EXPIRED:
            return st.expiry == at
        return st.online and st.seen_deadline == at

    def _push(self, at: float, device_id: str, kind: str) -> None:
        heapq.heappush(self._heap, (at, next(self._seq), device_id, kind))
        if len(self._heap) > 4 * len(self._states) + 1024:
            self._compact()

    def _compact(self) -> None:
        # Keep one valid entry per (device, kind): duplicates (a refresh at the same instant) are valid too,
        # and keeping them would let the heap grow without bound.
        kept: dict[tuple[str, str], tuple[float, int, str, str]] = {}
        for e in self._heap:
            if self._valid(e[0], e[2], e[3]):
                kept.setdefault((e[2], e[3]), e)
        self._heap = list(kept.values())
        heapq.heapify(self._heap)
