"""JSON shapes of the admin API (ARCHITECTURE.md: device object fields). Pure functions, no IO."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from typing import Any

from registry.models import EVENT_CODES, Device, StatusEvent

CHARSETS = ("GB2312", "GB18030", "UTF-8")
STREAM_MODES = ("udp", "tcp-passive", "tcp-active")


def iso(ts: float | None, tz: zoneinfo.ZoneInfo) -> str | None:
    """ISO 8601 with offset in the platform's timezone (DECISIONS.md: Time)."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")


def parse_time(text: str, tz: zoneinfo.ZoneInfo, now: float) -> float:
    """``2026-11-25T08:00``, ``2026-11-25`` (platform timezone unless an offset is given), epoch seconds,
    or a relative ``-1h`` / ``-30m`` / ``-2d``."""
    text = text.strip()
    if text.startswith("-") and text[1:-1].isdigit() and text[-1] in "smhd":
        mult = {"s": 1, "m": 60, "h": 3600, "d": 86400}[text[-1]]
        return now - int(text[1:-1]) * mult
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):  # "nan", "inf", "1e400" parse as floats but name no time
            raise ValueError(f"not a time: {text!r} (use ISO 8601, epoch seconds or -1h/-30m/-2d)")
        return value
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"not a time: {text!r} (use ISO 8601, epoch seconds or -1h/-30m/-2d)") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.timestamp()


def device_json(d: Device, tz: zoneinfo.ZoneInfo, now: float, *, channel_count: int = 0) -> dict[str, Any]:
    registered = d.registered(now)
    return {
        "id": d.id,
        "name": d.name,
        "status": d.status,
        "registered": registered,
        "transport": d.transport or None,
        "address": d.address or None,
        "local_address": d.local_address or None,
        "manufacturer": d.manufacturer,
        "model": d.model,
        "firmware": d.firmware,
        "user_agent": d.user_agent,
        "gb_version": d.gb_version or None,
        "channel_count": channel_count,
        "registered_at": iso(d.registered_at, tz) if registered else None,
        "last_keepalive": iso(d.last_keepalive, tz),
        "expires": max(0, int(d.expires_at - now)) if registered and d.expires_at else 0,
        "expires_at": iso(d.expires_at, tz) if registered else None,
        "charset": d.charset,
        "stream_mode": d.stream_mode,
        "keepalive_interval": d.keepalive_interval,
        "keepalive_count": d.keepalive_count,
        "enabled": d.enabled,
        "provisioned": d.provisioned,
        "has_password": bool(d.password),
    }


def event_json(e: StatusEvent, tz: zoneinfo.ZoneInfo) -> dict[str, Any]:
    return {"at": iso(e.at, tz), "subject": e.subject, "kind": e.kind, "event": e.event, "reason": e.reason}


def apply_settings(device: Device, body: dict[str, Any]) -> Device:
    """Validate and apply operator settings (``device add``/``device set``). Raises ValueError, in which case
    ``device`` is left unchanged (every setting is checked before any is applied)."""
    allowed = {"name", "password", "charset", "stream_mode", "keepalive_interval", "keepalive_count", "enabled"}
    unknown = set(body) - allowed - {"id"}
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(allowed))})")
    changes: dict[str, Any] = {}
    if "name" in body:
        if not isinstance(body["name"], str) or len(body["name"]) > 100:
            raise ValueError("name must be a string of at most 100 characters")
        changes["name"] = body["name"]
    if "password" in body:
        pw = body["password"]
        if pw is not None and (not isinstance(pw, str) or not 1 <= len(pw) <= 64):
            raise ValueError("password must be 1-64 characters, or null to use the global one")
        changes["password"] = pw or None
    if "charset" in body:
        cs = str(body["charset"]).upper()
        if cs not in CHARSETS:
            raise ValueError(f"charset must be one of {', '.join(CHARSETS)}")
        changes["charset"] = cs
    if "stream_mode" in body:
        sm = str(body["stream_mode"]).lower()
        if sm not in STREAM_MODES:
            raise ValueError(f"stream_mode must be one of {', '.join(STREAM_MODES)}")
        changes["stream_mode"] = sm
    for key in ("keepalive_interval", "keepalive_count"):
        if key in body:
            v = body[key]
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 86400):
                raise ValueError(f"{key} must be an integer between 1 and 86400, or null for the default")
            changes[key] = v
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise ValueError("enabled must be true or false")
        changes["enabled"] = body["enabled"]
    for key, value in changes.items():
        setattr(device, key, value)
    return device


KNOWN_EVENTS = tuple(EVENT_CODES)
