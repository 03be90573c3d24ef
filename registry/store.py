"""The RegistryStore protocol: what the platform needs from storage. SQLite and memory implement it, and
one contract suite (tests/registry/) runs against every implementation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from registry.models import (
    Alarm,
    AuditEntry,
    Channel,
    Device,
    Keepalive,
    Position,
    Registration,
    Share,
    StatusEvent,
)

if TYPE_CHECKING:
    from registry.health import WriteHealth


# StoreError kinds: what failed, so callers can answer (a REGISTER gets 503 + Retry-After on FULL or BUSY) and
# operators can read it. Storage kinds open an episode in registry.health.WriteHealth; OTHER does not.
FULL = "full"  # SQLITE_FULL: disk full, or the database size limit (PRAGMA max_page_count) reached
BUSY = "busy"  # SQLITE_BUSY / SQLITE_LOCKED: another connection or process holds the lock past busy_timeout
IO = "io"  # SQLITE_IOERR, SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PERM: the file cannot be written
CORRUPT = "corrupt"  # SQLITE_CORRUPT, SQLITE_NOTADB
OTHER = "other"  # a constraint, a closed store, an overloaded queue: not the storage's health
STORAGE_KINDS = frozenset({FULL, BUSY, IO, CORRUPT})


class StoreError(Exception):
    """Storage failed (disk full, corrupt file, locked database): the operation did not happen. ``kind`` says
    why (FULL, BUSY, IO, CORRUPT or OTHER)."""

    def __init__(self, message: str, kind: str = OTHER) -> None:
        super().__init__(message)
        self.kind = kind


class RegistryStore(Protocol):
    health: WriteHealth  # storage errors of writes, by episode (registry/health.py)

    async def open(self) -> None:
        """Create or migrate the schema; safe to call on an existing database."""

    async def close(self) -> None: ...

    # devices
    async def get_device(self, device_id: str) -> Device | None: ...

    async def list_devices(self, *, status: str | None = None) -> list[Device]:
        """All devices ordered by ID, optionally only those with that ``status``."""

    async def put_device(self, device: Device) -> None:
        """Insert or replace a device's whole record (operator add/set). Durable on return."""

    async def remove_device(self, device_id: str) -> bool:
        """Delete a device and its channels (one transaction); its events stay in the log. True if it existed."""

    # hot path, batched by the caller
    async def save_registrations(self, registrations: Sequence[Registration]) -> None:
        """Apply many registrations/unregistrations in ONE transaction; durable on return.

        Creates the device row when unknown (``created_at`` = the registration's time). ``expires > 0``:
        expires/expires_at/address/transport/contact/... are set and status becomes online; ``registered_at``
        is when the current registration began (a refresh while still registered keeps it); an empty
        ``gb_version`` keeps the stored one. ``expires == 0``: expires cleared (0, expires_at None), status
        offline, the other fields kept. Later items for the same device win, applied in order.
        """

    async def save_keepalives(self, keepalives: Sequence[Keepalive]) -> None:
        """Store last_keepalive (and address/transport when non-empty) for many devices in one transaction.

        Keepalives for unknown devices are ignored (a keepalive never creates a device); status is not touched
        (liveness decisions are the caller's, through ``set_status``). Later items for the same device win.
        """

    async def set_status(self, changes: Sequence[tuple[str, str]]) -> None:
        """Set (device_id, status) pairs in one transaction; unknown devices are ignored. ValueError for a status
        other than "online"/"offline"."""

    # the status event log: append-only
    async def append_events(self, events: Sequence[StatusEvent]) -> None:
        """Append in one transaction. Times are kept to the millisecond; the store assigns ``id`` (the ``id`` of
        the given events is ignored). ValueError for an event or kind outside EVENT_CODES / SUBJECT_KINDS."""

    async def list_events(
        self,
        *,
        subject: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[StatusEvent]:
        """Events in time order (oldest first; ties in append order), filtered on ``since <= at < until``;
        at most ``limit`` (the newest ones)."""

    async def last_events(self, *, before: float, events: Sequence[str]) -> list[StatusEvent]:
        """For every subject, its last event named in ``events`` with ``at < before`` (ties: the last appended),
        ordered by subject: the state each subject was in when a report period starts. ValueError for a name
        outside EVENT_CODES."""

    # channels: keyed by (device_id, id); filled by catalog syncs and NOTIFYs, annotated by operators
    async def list_channels(
        self,
        *,
        device_id: str | None = None,
        status: str | None = None,
        civil_code_prefix: str | None = None,
    ) -> list[Channel]:
        """Channels of every kind ordered by (device_id, id), optionally only those of one device, with that
        reported ``status``, or whose *shown* civil code (override <- reported) starts with the prefix."""

    async def channel_ids(self, device_id: str) -> set[str]:
        """The IDs of one device's channels (what a catalog diff needs, without reading whole rows)."""

    async def get_channel(self, device_id: str, channel_id: str) -> Channel | None: ...

    async def apply_catalog(self, device_id: str, upserts: Iterable[Channel], removes: Sequence[str]) -> None:
        """Apply one catalog change of a device in ONE transaction: insert or update ``upserts`` (read once, maybe
        while earlier ones are written: a generator is fine), then delete the channels of that device named in
        ``removes`` (unknown IDs are ignored).

        An upsert replaces every reported field and ``updated_at``; it never touches the ``override_*`` fields
        (a new channel starts with none, whatever the given record holds) and keeps a known channel's
        ``first_seen`` (a new one takes the given ``first_seen``, or ``updated_at`` when that is 0). Later items
        for the same ID win. ValueError (nothing applied) for an upsert of another device, an ID both upserted
        and removed, or an invalid record (``registry.models.checked_channel``); KeyError for an unknown device.
        """

    async def set_channel_status(self, changes: Sequence[tuple[str, str, str]]) -> None:
        """Set (device_id, channel_id, status) in one transaction; unknown channels are ignored, later items win.
        ValueError (nothing applied) for a status other than "online"/"offline". ``updated_at`` is not touched."""

    async def set_channel_overrides(self, device_id: str, channel_id: str, **overrides: object) -> Channel:
        """Set local overrides (``override_name``, ``override_longitude``, ``override_latitude``,
        ``override_civil_code``, ``override_point_class``) in one transaction; ``None`` clears one, names not
        given are kept. Returns the updated channel. ValueError for another name or a bad value (nothing set);
        KeyError for an unknown channel."""

    async def find_channels(self, channel_id: str) -> list[Channel]:
        """The channel ``channel_id`` on every device that lists it (a camera and the NVR recording it), by device."""

    async def set_channel_overrides_many(self, changes: Sequence[tuple[str, str, dict[str, object]]]) -> None:
        """Set the overrides of many channels, (device_id, channel_id, {override name: value}) each, in one
        transaction (a CSV import): all or nothing. ValueError for a bad name or value, KeyError for an unknown
        channel; nothing is set then."""

    async def count_channels(self, device_id: str) -> int:
        """Channels of the device, of every kind."""

    async def count_video_channels(self, device_id: str) -> int:
        """Video channels of the device (kind "video"): the device's ``channel_count`` (DECISIONS.md)."""

    # alarms (GB/T 28181-2022 §9.4) and mobile positions (A.2.5.6)
    async def add_alarms(self, alarms: Sequence[Alarm]) -> list[int]:
        """Append in one transaction; returns the ids the store assigned, in order (the given ``id`` is ignored).
        ValueError (nothing stored) for an invalid record (``registry.models.checked_alarm``)."""

    async def list_alarms(
        self, *, device_id: str | None = None, since: float | None = None, limit: int = 1000
    ) -> list[Alarm]:
        """Alarms in arrival order (oldest first; ties by id), optionally of one device (the reporting device or
        the alarm source) and with ``received_at >= since``; at most ``limit`` (the newest ones)."""

    async def get_alarm(self, alarm_id: int) -> Alarm | None: ...

    async def ack_alarm(self, alarm_id: int, by: str, at: float) -> Alarm:
        """Record an operator's acknowledgement; an alarm already acknowledged keeps its first one. Returns the
        alarm; KeyError for an unknown id."""

    async def mark_alarms_reset(self, device_id: str, by: str, at: float, alarm_type: int | None = None) -> int:
        """Mark the device's alarms not reset yet (only those of ``alarm_type`` when given) as reset; returns
        how many were marked."""

    async def save_positions(self, positions: Sequence[Position]) -> None:
        """Keep the latest position per (device_id, target_id), in one transaction; later items win. ValueError
        (nothing stored) for an invalid record."""

    async def list_positions(self, *, device_id: str | None = None) -> list[Position]:
        """Latest positions ordered by (device_id, target_id), optionally of one device."""
    # shares with superior platforms (cascade): the database is their source of truth (DECISIONS.md: Overrides)
    async def list_shares(self, upstream_id: str | None = None) -> list[Share]:
        """Shares ordered by (upstream_id, item), optionally of one superior only."""

    async def put_shares(self, shares: Sequence[Share]) -> None:
        """Insert or replace shares keyed by (upstream_id, item) in one transaction; a replaced share keeps its
        ``created_at``. ValueError (nothing stored) per ``registry.models.checked_shares``."""

    async def remove_shares(self, upstream_id: str, items: Sequence[str]) -> int:
        """Delete these items of one superior in one transaction; returns how many existed."""

    async def append_audit(self, entry: AuditEntry) -> int:
        """Record one operator action (its detail truncated to AUDIT_DETAIL_MAX); returns its id. ValueError for
        an entry without an action."""

    async def list_audit(self, *, since: float | None = None, limit: int = 1000) -> list[AuditEntry]:
        """Audit entries oldest first, with ``at >= since``; at most ``limit`` (the newest ones)."""
