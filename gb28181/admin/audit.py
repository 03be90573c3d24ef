"""The operator audit log (issue 9): what an admin API request did, by whom, as an AuditEntry; and the JSON
shapes of audit entries and guard lockouts. Pure functions: the API middleware does the IO.

Every state-changing request under /api (PTZ, presets, record, reboot, guard, alarm ack/reset, device
add/remove/set, channel overrides, CSV import, subscriptions, shares...) is recorded, also when refused or
failed: the status says how it ended. Secrets in request bodies are never stored.
"""

from __future__ import annotations

import json
import zoneinfo
from typing import Any

from gb28181.admin.views import iso
from registry.models import AUDIT_DETAIL_MAX, AuditEntry

SECRET_KEYS = frozenset({"password", "token", "secret", "zlm_secret"})


def redact(value: Any) -> Any:
    """A copy of a JSON value with every secret-named key's value replaced."""
    if isinstance(value, dict):
        return {k: "***" if str(k).lower() in SECRET_KEYS else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def describe_body(body: bytes, content_type: str) -> str:
    """A short, secret-free text of a request body: JSON re-dumped with secrets redacted; CSV and other text
    as its first characters; binary as its size."""
    if not body:
        return ""
    if "json" in content_type:
        try:
            return json.dumps(redact(json.loads(body)), ensure_ascii=False, sort_keys=True)[:AUDIT_DETAIL_MAX]
        except ValueError:
            return f"(unreadable JSON, {len(body)} bytes)"
    try:
        text = body[:AUDIT_DETAIL_MAX].decode("utf-8")
    except UnicodeDecodeError:
        return f"({len(body)} bytes)"
    return text if len(body) <= AUDIT_DETAIL_MAX else f"{text}... ({len(body)} bytes)"


def entry(
    *,
    at: float,
    who: str,
    role: str,
    method: str,
    route: str,
    match: dict[str, str],
    query: str,
    body: bytes,
    content_type: str,
    status: int,
    remote: str,
) -> AuditEntry:
    """``route`` is the matched route's template (``/api/devices/{id}``), ``match`` its values."""
    target = "/".join(match[k] for k in ("device", "id", "alarm_id", "kind") if match.get(k))
    detail = describe_body(body, content_type)
    if query:
        detail = f"?{query} {detail}".strip()
    return AuditEntry(at, who, role, f"{method} {route}", target, detail[:AUDIT_DETAIL_MAX], status, remote)


def audit_json(e: AuditEntry, tz: zoneinfo.ZoneInfo) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": iso(e.at, tz),
        "who": e.who,
        "role": e.role,
        "action": e.action,
        "target": e.target,
        "detail": e.detail,
        "status": e.status,
        "remote": e.remote,
    }


def lockout_json(lockout: Any, now_mono: float, now_wall: float, tz: zoneinfo.ZoneInfo) -> dict[str, Any]:
    """A gb28181.guard.Lockout for operators: ``until`` converted from the monotonic clock to wall time."""
    left = max(0.0, lockout.until - now_mono)
    return {
        "source": lockout.source,
        "device_id": lockout.device_id,
        "seconds_left": round(left, 1),
        "until": iso(now_wall + left, tz),
        "lockouts": lockout.count,
    }
