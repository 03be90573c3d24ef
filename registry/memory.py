"""An in-memory RegistryStore for fast unit tests and throwaway runs. Same contract as the SQLite store
(tests/registry/test_store_contract.py): records are copied in and out, so callers never share state with it."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from registry.models import OFFLINE, ONLINE, Device, Keepalive, Registration, StatusEvent, event_code, kind_code
from registry.models import to_millis as _ms


class MemoryStore:
    def __init__(self) -> None:
        self._devices: dict[str, Device] = {}
        self._events: list[StatusEvent] = []

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    # devices
    async def get_device(self, device_id: str) -> Device | None:
        device = self._devices.get(device_id)
        return dataclasses.replace(device) if device is not None else None

    async def list_devices(self, *, status: str | None = None) -> list[Device]:
        return [
            dataclasses.replace(d) for _, d in sorted(self._devices.items()) if status is None or d.status == status
        ]

    async def put_device(self, device: Device) -> None:
        self._devices[device.id] = dataclasses.replace(device)

    async def remove_device(self, device_id: str) -> bool:
        return self._devices.pop(device_id, None) is not None

    # hot path
    async def save_registrations(self, registrations: Sequence[Registration]) -> None:
        for r in registrations:
            device = self._devices.get(r.device_id)
            if device is None:
                device = Device(
                    id=r.device_id,
                    transport=r.transport,
                    address=r.address,
                    local_address=r.local_address,
                    contact=r.contact,
                    user_agent=r.user_agent,
                    gb_version=r.gb_version,
                    created_at=r.at,
                )
                self._devices[r.device_id] = device
            if r.expires > 0:
                device.transport = r.transport
                device.address = r.address
                device.local_address = r.local_address
                device.contact = r.contact
                device.user_agent = r.user_agent
                device.gb_version = r.gb_version or device.gb_version
                if device.registered_at is None or not device.registered(r.at):
                    device.registered_at = r.at  # a refresh keeps when the registration began
                device.expires = r.expires
                device.expires_at = r.at + r.expires
                device.status = ONLINE
            else:
                device.expires = 0
                device.expires_at = None
                device.status = OFFLINE

    async def save_keepalives(self, keepalives: Sequence[Keepalive]) -> None:
        for k in keepalives:
            device = self._devices.get(k.device_id)
            if device is None:
                continue
            device.last_keepalive = k.at
            if k.transport:
                device.transport = k.transport
            if k.address:
                device.address = k.address

    async def set_status(self, changes: Sequence[tuple[str, str]]) -> None:
        for device_id, status in changes:
            if status not in (ONLINE, OFFLINE):
                raise ValueError(f"status of {device_id} must be {ONLINE!r} or {OFFLINE!r}, not {status!r}")
        for device_id, status in changes:
            device = self._devices.get(device_id)
            if device is not None:
                device.status = status

    # events
    async def append_events(self, events: Sequence[StatusEvent]) -> None:
        rows = []
        for e in events:
            event_code(e.event)
            kind_code(e.kind)
            rows.append(dataclasses.replace(e, at=_ms(e.at) / 1000, id=len(self._events) + len(rows) + 1))
        self._events.extend(rows)

    async def list_events(
        self,
        *,
        subject: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[StatusEvent]:
        lo = _ms(since) if since is not None else None
        hi = _ms(until) if until is not None else None
        found = [
            e
            for e in self._events
            if (subject is None or e.subject == subject)
            and (lo is None or _ms(e.at) >= lo)
            and (hi is None or _ms(e.at) < hi)
        ]
        found.sort(key=lambda e: (e.at, e.id))
        return found[-limit:] if limit > 0 else []
