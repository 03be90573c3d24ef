"""JSON shapes of the admin API (gb28181/admin/views.py): device objects, settings validation, time parsing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import zoneinfo
from typing import Any

import pytest

from gb28181.admin.views import apply_settings, device_json, event_json, iso, parse_time
from registry.models import Device, StatusEvent

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
UTC = zoneinfo.ZoneInfo("UTC")
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z == 2023-11-15T06:13:20+08:00
CAM = "34020000001320000001"

CONTRACT_FIELDS = {
    "id",
    "name",
    "status",
    "transport",
    "address",
    "manufacturer",
    "model",
    "firmware",
    "channel_count",
    "registered_at",
    "last_keepalive",
    "expires",
    "expires_at",
}


def registered_device() -> Device:
    return Device(
        CAM,
        name="前门",
        manufacturer="Hikvision",
        model="DS-2CD5024",
        firmware="V5.4.0",
        transport="UDP",
        address="192.0.2.10:5060",
        registered_at=T0 - 600,
        expires=3600,
        expires_at=T0 - 600 + 3600,
        last_keepalive=T0 - 30,
        status="online",
    )


def test_device_json_has_the_contract_fields() -> None:
    out = device_json(registered_device(), SHANGHAI, T0, channel_count=4)
    assert set(out) >= CONTRACT_FIELDS
    assert out["id"] == CAM and out["name"] == "前门"
    assert (out["status"], out["transport"], out["address"]) == ("online", "UDP", "192.0.2.10:5060")
    assert (out["manufacturer"], out["model"], out["firmware"]) == ("Hikvision", "DS-2CD5024", "V5.4.0")
    assert out["channel_count"] == 4
    assert out["registered_at"] == "2023-11-15T06:03:20+08:00"
    assert out["last_keepalive"] == "2023-11-15T06:12:50+08:00"
    assert out["expires"] == 3000  # seconds left
    assert out["expires_at"] == "2023-11-15T07:03:20+08:00"
    assert out["registered"] is True
    assert "password" not in out and out["has_password"] is False
    json.dumps(out)  # serialisable as is


def test_device_json_times_are_iso8601_with_offset_in_the_given_zone() -> None:
    out = device_json(registered_device(), UTC, T0)
    assert out["registered_at"] == "2023-11-14T22:03:20+00:00"
    for key in ("registered_at", "last_keepalive", "expires_at"):
        parsed = dt.datetime.fromisoformat(out[key])
        assert parsed.utcoffset() is not None
    assert dt.datetime.fromisoformat(out["expires_at"]).timestamp() == T0 + 3000


def test_device_json_unregistered_device() -> None:
    d = Device(CAM, provisioned=True, password="s3cr3tPW")
    out = device_json(d, SHANGHAI, T0)
    assert out["status"] == "offline"
    assert out["transport"] is None and out["address"] is None
    assert out["registered_at"] is None and out["last_keepalive"] is None and out["expires_at"] is None
    assert out["expires"] == 0 and out["registered"] is False
    assert out["has_password"] is True and "s3cr3tPW" not in json.dumps(out)


def test_device_json_expired_registration() -> None:
    d = dataclasses.replace(registered_device(), expires_at=T0 - 1, status="offline")
    out = device_json(d, SHANGHAI, T0)
    assert out["registered"] is False and out["expires"] == 0 and out["expires_at"] is None


def test_event_json() -> None:
    e = StatusEvent(T0, CAM, "keepalive-timeout", reason="silent", id=5)
    assert event_json(e, SHANGHAI) == {
        "at": "2023-11-15T06:13:20+08:00",
        "subject": CAM,
        "kind": "device",
        "event": "keepalive-timeout",
        "reason": "silent",
    }


def test_iso() -> None:
    assert iso(None, UTC) is None
    assert iso(0, UTC) == "1970-01-01T00:00:00+00:00"
    assert iso(T0 + 0.9, SHANGHAI) == "2023-11-15T06:13:20+08:00"


# ------------------------------------------------------------------------------------------------ settings


def test_apply_settings_valid() -> None:
    d = Device(CAM)
    body: dict[str, Any] = {
        "id": CAM,
        "name": "后门",
        "password": "pw123456",
        "charset": "gb18030",
        "stream_mode": "TCP-Passive",
        "keepalive_interval": 30,
        "keepalive_count": 2,
        "enabled": False,
    }
    out = apply_settings(d, body)
    assert out is d
    assert (d.name, d.password, d.charset, d.stream_mode) == ("后门", "pw123456", "GB18030", "tcp-passive")
    assert (d.keepalive_interval, d.keepalive_count, d.enabled) == (30, 2, False)
    apply_settings(d, {"password": None, "keepalive_interval": None})
    assert d.password is None and d.keepalive_interval is None


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"colour": "red"}, "unknown settings: colour"),
        ({"name": 5}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"password": ""}, "password"),
        ({"password": "x" * 65}, "password"),
        ({"password": 12345678}, "password"),
        ({"charset": "latin-1"}, "charset"),
        ({"charset": None}, "charset"),
        ({"stream_mode": "rtsp"}, "stream_mode"),
        ({"keepalive_interval": 0}, "keepalive_interval"),
        ({"keepalive_interval": 86401}, "keepalive_interval"),
        ({"keepalive_interval": True}, "keepalive_interval"),
        ({"keepalive_interval": "60"}, "keepalive_interval"),
        ({"keepalive_count": 1.5}, "keepalive_count"),
        ({"enabled": "yes"}, "enabled"),
        ({"enabled": 1}, "enabled"),
    ],
)
def test_apply_settings_rejects(body: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError) as info:
        apply_settings(Device(CAM), body)
    assert needle in str(info.value)


def test_rejected_settings_change_nothing() -> None:
    d = registered_device()
    before = dataclasses.replace(d)
    with pytest.raises(ValueError):
        apply_settings(d, {"name": "renamed", "password": "newpass1", "charset": "EBCDIC"})
    assert d == before


# ------------------------------------------------------------------------------------------------ times


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-1h", T0 - 3600),
        ("-30m", T0 - 1800),
        ("-2d", T0 - 2 * 86400),
        ("-45s", T0 - 45),
        (" -1h ", T0 - 3600),
        ("1700000000", 1_700_000_000.0),
        ("1700000000.5", 1_700_000_000.5),
        ("2023-11-15T06:13:20", T0),  # platform timezone
        ("2023-11-15 06:13:20", T0),
        ("2023-11-15T06:13", T0 - 20),
        ("2023-11-15", T0 - (6 * 3600 + 13 * 60 + 20)),  # midnight in Shanghai
        ("2023-11-14T22:13:20+00:00", T0),  # an explicit offset wins
        ("2023-11-14T22:13:20Z", T0),
        ("2023-11-15T06:13:20.500+08:00", T0 + 0.5),
    ],
)
def test_parse_time(text: str, expected: float) -> None:
    assert parse_time(text, SHANGHAI, T0) == expected


def test_parse_time_uses_the_given_zone() -> None:
    assert parse_time("2023-11-14T22:13:20", UTC, 0) == T0


@pytest.mark.parametrize("text", ["", "yesterday", "-1w", "-h", "1h", "2023-13-01", "nan", "inf", "-inf", "1e400"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text, SHANGHAI, T0)
