"""What device notifications mean for the registry (GB/T 28181-2022 §9.4, §9.11, A.2.5.3, A.2.5.6, App.N.4.3).
Pure functions: decoded MANSCDP messages in, registry records and JSON views out; times are passed in.
"""

from __future__ import annotations

import dataclasses
import logging
import zoneinfo
from typing import Any

from gb28181.admin.views import iso
from gb28181.manscdp.messages import CATALOG_EVENTS, AlarmNotify, CatalogItem, CatalogNotify, MobilePositionNotify
from registry.models import Alarm, Position

log = logging.getLogger("gb28181.notify")

# Catalog NOTIFY Event -> status event log name (registry EVENT_CODES); ADD/UPDATE are refined by existence.
CHANNEL_EVENT = {
    "ON": "channel-on",
    "OFF": "channel-off",
    "VLOST": "channel-vlost",
    "DEFECT": "channel-defect",
    "ADD": "channel-added",
    "DEL": "channel-removed",
    "UPDATE": "channel-updated",
}
STATUS_EVENTS = frozenset({"ON", "OFF", "VLOST", "DEFECT"})


def catalog_changes(message: CatalogNotify) -> list[tuple[str, str, CatalogItem]]:
    """(channel ID, Event, item) in body order. An item without Event is a full item pushed by the device (some
    send their whole list in NOTIFYs): an UPDATE. An unknown Event is skipped with a log line."""
    out = []
    for item in message.items:
        channel_id = (item.device_id or "").strip()
        if not channel_id:
            continue
        event = (item.event or "UPDATE").strip().upper()
        if event not in CATALOG_EVENTS:
            log.info("catalog NOTIFY item %s: unknown Event %r skipped", channel_id, item.event)
            continue
        out.append((channel_id, event, dataclasses.replace(item, event=None)))
    return out


def alarm_record(message: AlarmNotify, device_id: str, now: float, via: str) -> Alarm:
    return Alarm(
        device_id=device_id,
        source_id=(message.device_id or device_id).strip()[:64],
        received_at=now,
        priority=message.alarm_priority,
        method=message.alarm_method,
        alarm_type=message.alarm_type,
        event_type=message.event_type,
        alarm_time=(message.alarm_time or "")[:64],
        description=(message.alarm_description or "")[:500],
        longitude=message.longitude,
        latitude=message.latitude,
        via=via,
        sn=message.sn,
    )


def position_records(message: MobilePositionNotify, device_id: str, now: float) -> list[Position]:
    """The flat 2016 form is one position of the body's DeviceID; the 2022 DeviceList form one per item."""
    if message.items:
        return [
            Position(device_id, item.device_id.strip()[:64], now, time=(item.capture_time or "")[:64],
                     longitude=item.longitude, latitude=item.latitude, speed=item.speed, direction=item.direction,
                     altitude=item.altitude, height=item.height)
            for item in message.items
            if item.device_id and item.device_id.strip()
        ]
    if message.longitude is None and message.latitude is None:
        return []
    return [
        Position(device_id, (message.device_id or device_id).strip()[:64], now, time=(message.time or "")[:64],
                 longitude=message.longitude, latitude=message.latitude, speed=message.speed,
                 direction=message.direction, altitude=message.altitude)
    ]


def alarm_json(a: Alarm, tz: zoneinfo.ZoneInfo) -> dict[str, Any]:
    return {
        "id": a.id,
        "device_id": a.device_id,
        "source_id": a.source_id,
        "received_at": iso(a.received_at, tz),
        "alarm_time": a.alarm_time or None,
        "priority": a.priority,
        "method": a.method,
        "type": a.alarm_type,
        "event_type": a.event_type,
        "description": a.description,
        "longitude": a.longitude,
        "latitude": a.latitude,
        "via": a.via,
        "acked_at": iso(a.acked_at, tz),
        "acked_by": a.acked_by or None,
        "reset_at": iso(a.reset_at, tz),
        "reset_by": a.reset_by or None,
    }


def position_json(p: Position, tz: zoneinfo.ZoneInfo) -> dict[str, Any]:
    return {
        "device_id": p.device_id,
        "id": p.target_id,
        "time": p.time or None,
        "received_at": iso(p.received_at, tz),
        "longitude": p.longitude,
        "latitude": p.latitude,
        "speed": p.speed,
        "direction": p.direction,
        "altitude": p.altitude,
        "height": p.height,
    }
