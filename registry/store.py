"""The RegistryStore protocol: what the platform needs from storage. SQLite and memory implement it, and
one contract suite (tests/registry/) runs against every implementation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from registry.models import Device, Keepalive, Registration, StatusEvent


class StoreError(Exception):
    """Storage failed (disk full, corrupt file, locked database): the operation did not happen."""


class RegistryStore(Protocol):
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
        """Delete a device; its events stay in the log. True if it existed."""

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
