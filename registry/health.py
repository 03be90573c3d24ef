"""Write health of a store: storage failures (disk full, database locked, I/O errors) grouped into episodes, so an
operator reads one clear error when writes start failing and one line when they succeed again, not one per message
(issue 9: disk full / database locked). Counted by kind for ``/metrics`` and ``gb28181 stats``.

No clock of its own: the store passes ``now`` (monotonic seconds).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from registry.store import FULL, STORAGE_KINDS, StoreError

log = logging.getLogger("registry.health")

_WHAT = {
    FULL: "disk full (or the database size limit reached)",
    "busy": "database locked by another process (busy_timeout elapsed)",
    "io": "I/O error",
    "corrupt": "database corrupt",
}


@dataclass
class WriteHealth:
    errors: dict[str, int] = field(default_factory=dict)  # storage errors by kind, since start
    episodes: int = 0  # episodes since start
    kind: str | None = None  # the kind of the episode going on, None when writes succeed
    since: float | None = None  # when it began (monotonic)
    failed_writes: int = 0  # writes failed in the current episode
    last_error: str = ""
    failing: set[str] = field(default_factory=set)  # operations whose last write failed


    @property
    def ok(self) -> bool:
        return self.kind is None

    def failed(self, exc: StoreError, now: float, op: str = "") -> None:
        """A write (``op``) failed. A storage kind opens an episode (logged once) or extends the current one."""
        if exc.kind not in STORAGE_KINDS:
            return
        self.failing.add(op)
        self.errors[exc.kind] = self.errors.get(exc.kind, 0) + 1
        self.last_error = str(exc)
        self.failed_writes += 1
        if self.kind == exc.kind:
            return
        if self.kind is None:
            self.episodes += 1
            self.since = now
        self.kind = exc.kind
        log.error(
            "registry storage error: %s: %s. Registrations are refused (503) and batched writes (keepalives, "
            "events) kept in memory and retried until writes succeed again%s",
            _WHAT.get(exc.kind, exc.kind), exc,
            "; free disk space" if exc.kind == FULL else "",
        )  # fmt: skip

    def succeeded(self, now: float, op: str = "") -> None:
        """A write (``op``) committed. The episode is over (logged once) when every operation that failed in it
        has succeeded since: on a full disk, updates in place still fit while inserts do not, so one update
        going through says little."""
        if self.kind is None:
            return
        self.failing.discard(op)
        if self.failing:
            return
        log.warning(
            "registry storage writable again after %.1f s (%s); %d writes failed meanwhile",
            now - (self.since or now), _WHAT.get(self.kind, self.kind), self.failed_writes,
        )  # fmt: skip
        self.kind, self.since, self.failed_writes = None, None, 0

    def as_json(self, now: float) -> dict[str, object]:
        return {
            "state": self.kind or "ok",
            "for_s": round(now - self.since, 1) if self.since is not None else 0,
            "errors": dict(sorted(self.errors.items())),
            "episodes": self.episodes,
            "failed_writes": self.failed_writes,
            "last_error": self.last_error,
        }
