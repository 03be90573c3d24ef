"""An in-memory RegistryStore for fast unit tests and throwaway runs. Same contract as the SQLite store
(tests/registry/test_store_contract.py): records are copied in and out, so callers never share state with it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from registry.health import WriteHealth
from registry.models import (
    OFFLINE,
    ONLINE,
    OVERRIDE_FIELDS,
    VIDEO,
    Alarm,
    AuditEntry,
    Channel,
    Device,
    Keepalive,
    Position,
    Registration,
    Share,
    StatusEvent,
    check_channel_status,
    checked_alarm,
    checked_audit,
    checked_catalog,
    checked_overrides,
    checked_position,
    checked_shares,
    event_code,
    kind_code,
)
from registry.models import to_millis as _ms


class MemoryStore:
    def __init__(self) -> None:
        self.health = WriteHealth()  # never fails: always "ok" (the same surface as the SQLite store)
        self._devices: dict[str, Device] = {}
        self._events: list[StatusEvent] = []
        self._channels: dict[str, dict[str, Channel]] = {}  # device ID -> channel ID -> channel
        self._alarms: list[Alarm] = []
        self._positions: dict[tuple[str, str], Position] = {}
        self._shares: dict[tuple[str, str], Share] = {}  # (upstream ID, item) -> share
        self._audit: list[AuditEntry] = []

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
        self._channels.pop(device_id, None)
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

    async def last_events(self, *, before: float, events: Sequence[str]) -> list[StatusEvent]:
        codes = {event_code(name) for name in events}
        hi = _ms(before)
        last: dict[str, StatusEvent] = {}
        for e in self._events:  # append order: a later row of the same millisecond wins the tie
            if event_code(e.event) in codes and _ms(e.at) < hi:
                seen = last.get(e.subject)
                if seen is None or _ms(e.at) >= _ms(seen.at):
                    last[e.subject] = e
        return [last[s] for s in sorted(last)]

    # channels
    async def channel_ids(self, device_id: str) -> set[str]:
        return set(self._channels.get(device_id, {}))

    async def list_channels(
        self,
        *,
        device_id: str | None = None,
        status: str | None = None,
        civil_code_prefix: str | None = None,
    ) -> list[Channel]:
        if device_id is None:
            devices = sorted(self._channels.items())
        else:
            devices = [(device_id, self._channels.get(device_id, {}))]
        return [
            _copy(c)
            for _, channels in devices
            for _, c in sorted(channels.items())
            if (status is None or c.status == status)
            and (not civil_code_prefix or c.shown_civil_code.startswith(civil_code_prefix))
        ]

    async def get_channel(self, device_id: str, channel_id: str) -> Channel | None:
        channel = self._channels.get(device_id, {}).get(channel_id)
        return _copy(channel) if channel is not None else None

    async def apply_catalog(self, device_id: str, upserts: Iterable[Channel], removes: Sequence[str]) -> None:
        checked = checked_catalog(device_id, upserts, removes)
        if device_id not in self._devices:
            raise KeyError(device_id)
        channels = self._channels.setdefault(device_id, {})
        for new in checked:
            old = channels.get(new.id)
            if old is not None:
                new.first_seen = old.first_seen
                for name in OVERRIDE_FIELDS:
                    setattr(new, name, getattr(old, name))
            channels[new.id] = new
        for channel_id in removes:
            channels.pop(channel_id, None)

    async def set_channel_status(self, changes: Sequence[tuple[str, str, str]]) -> None:
        check_channel_status(changes)
        for device_id, channel_id, status in changes:
            channel = self._channels.get(device_id, {}).get(channel_id)
            if channel is not None:
                channel.status = status

    async def set_channel_overrides(self, device_id: str, channel_id: str, **overrides: object) -> Channel:
        values = checked_overrides(overrides)
        channel = self._channels.get(device_id, {}).get(channel_id)
        if channel is None:
            raise KeyError((device_id, channel_id))
        for name, value in values.items():
            setattr(channel, name, value)
        return _copy(channel)

    async def find_channels(self, channel_id: str) -> list[Channel]:
        return [_copy(chs[channel_id]) for _, chs in sorted(self._channels.items()) if channel_id in chs]

    async def set_channel_overrides_many(self, changes: Sequence[tuple[str, str, dict[str, object]]]) -> None:
        checked = [(device_id, channel_id, checked_overrides(values)) for device_id, channel_id, values in changes]
        for device_id, channel_id, _ in checked:
            if channel_id not in self._channels.get(device_id, {}):
                raise KeyError((device_id, channel_id))
        for device_id, channel_id, values in checked:
            channel = self._channels[device_id][channel_id]
            for name, value in values.items():
                setattr(channel, name, value)

    async def count_channels(self, device_id: str) -> int:
        return len(self._channels.get(device_id, {}))

    async def count_video_channels(self, device_id: str) -> int:
        return sum(c.kind == VIDEO for c in self._channels.get(device_id, {}).values())

    # alarms and positions
    async def add_alarms(self, alarms: Sequence[Alarm]) -> list[int]:
        checked = [checked_alarm(a) for a in alarms]
        ids = []
        for alarm in checked:
            alarm.id = len(self._alarms) + 1
            self._alarms.append(alarm)
            ids.append(alarm.id)
        return ids

    async def list_alarms(
        self, *, device_id: str | None = None, since: float | None = None, limit: int = 1000
    ) -> list[Alarm]:
        found = [
            dataclasses.replace(a)
            for a in self._alarms
            if (device_id is None or device_id in (a.device_id, a.source_id))
            and (since is None or a.received_at >= since)
        ]
        found.sort(key=lambda a: (a.received_at, a.id))
        return found[-limit:] if limit > 0 else []

    async def get_alarm(self, alarm_id: int) -> Alarm | None:
        if isinstance(alarm_id, int) and 1 <= alarm_id <= len(self._alarms):
            return dataclasses.replace(self._alarms[alarm_id - 1])
        return None

    async def ack_alarm(self, alarm_id: int, by: str, at: float) -> Alarm:
        if not (isinstance(alarm_id, int) and 1 <= alarm_id <= len(self._alarms)):
            raise KeyError(alarm_id)
        alarm = self._alarms[alarm_id - 1]
        if alarm.acked_at is None:
            alarm.acked_at, alarm.acked_by = at, by
        return dataclasses.replace(alarm)

    async def mark_alarms_reset(self, device_id: str, by: str, at: float, alarm_type: int | None = None) -> int:
        count = 0
        for alarm in self._alarms:
            if alarm.device_id == device_id and alarm.reset_at is None and (
                alarm_type is None or alarm.alarm_type == alarm_type
            ):
                alarm.reset_at, alarm.reset_by = at, by
                count += 1
        return count

    async def save_positions(self, positions: Sequence[Position]) -> None:
        checked = [checked_position(p) for p in positions]
        for p in checked:
            self._positions[(p.device_id, p.target_id)] = p

    async def list_positions(self, *, device_id: str | None = None) -> list[Position]:
        return [
            dataclasses.replace(p)
            for key, p in sorted(self._positions.items())
            if device_id is None or key[0] == device_id
        ]
    async def list_shares(self, upstream_id: str | None = None) -> list[Share]:
        return [s for key, s in sorted(self._shares.items()) if upstream_id is None or key[0] == upstream_id]

    async def put_shares(self, shares: Sequence[Share]) -> None:
        for share in checked_shares(list(self._shares.values()), shares):
            key = (share.upstream_id, share.item)
            old = self._shares.get(key)
            if old is not None:
                share = dataclasses.replace(share, created_at=old.created_at)
            self._shares[key] = share

    async def remove_shares(self, upstream_id: str, items: Sequence[str]) -> int:
        return sum(self._shares.pop((upstream_id, item), None) is not None for item in dict.fromkeys(items))

    async def append_audit(self, entry: AuditEntry) -> int:
        e = checked_audit(entry)
        self._audit.append(dataclasses.replace(e, id=len(self._audit) + 1))
        return len(self._audit)

    async def list_audit(self, *, since: float | None = None, limit: int = 1000) -> list[AuditEntry]:
        if limit <= 0:
            return []
        rows = [e for e in self._audit if since is None or e.at >= since]
        rows.sort(key=lambda e: (e.at, e.id or 0))
        return [dataclasses.replace(e) for e in rows[-limit:]]


def _copy(channel: Channel) -> Channel:
    return dataclasses.replace(channel, info=dict(channel.info))
