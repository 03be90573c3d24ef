"""The report routes of the admin API, on a history the real device service writes under a fake wall clock:
the platform starts at 23:00 the day before, an IPC registers at 00:00 (its catalog: itself, class 1), its
second channel appears at 04:00 (no coordinates, a placeholder name), and it unregisters at 06:00; the
reports are asked at 08:00."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import zoneinfo
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gb28181.admin.app import AdminApi
from gb28181.config import Config, RegistryConfig, SipConfig
from gb28181.server import Platform, Secrets
from registry.memory import MemoryStore
from registry.models import VIDEO, Channel, Registration

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
T0 = dt.datetime(2026, 11, 23, tzinfo=TZ).timestamp()
H = 3600.0
IPC = "34020000001320000001"
CH2 = "34020000001310000002"


class Clock:
    def __init__(self) -> None:
        self.now = T0 - H

    def __call__(self) -> float:
        return self.now


async def settle(platform: Platform) -> None:
    for _ in range(20):  # the channel-follow tasks of a device going offline
        if not platform.devices._tasks:
            break
        await asyncio.sleep(0)
    await platform.devices.flush()


@pytest.fixture
async def client(tmp_path: Path):
    clock = Clock()
    cfg = Config(sip=SipConfig(password="pw"), registry=RegistryConfig(str(tmp_path / "x.db")))
    platform = Platform(cfg, Secrets("pw", "admin-tok", b"s" * 32, tmp_path / "s.json"), MemoryStore(),
                        wall=clock, batch_interval=3600)  # fmt: skip
    await platform.devices.start()
    clock.now = T0
    await platform.devices.register(Registration(IPC, T0, 3600, "UDP", "127.0.0.1:5060"), "udp:127.0.0.1:5060")
    cam = Channel(IPC, IPC, name="北门广场", kind=VIDEO, point_class=1, civil_code="340200", longitude=117.2,
                  latitude=31.8, status="online", updated_at=T0)  # fmt: skip
    await platform.store.apply_catalog(IPC, [cam], [])
    clock.now = T0 + 4 * H
    await platform.store.apply_catalog(IPC, [cam, Channel(IPC, CH2, name="Camera 02", kind=VIDEO, status="online",
                                                          updated_at=clock.now)], [])  # fmt: skip
    clock.now = T0 + 6 * H
    await platform.devices.register(Registration(IPC, clock.now, 0, "UDP", "127.0.0.1:5060"), "udp:127.0.0.1:5060")
    await settle(platform)
    clock.now = T0 + 8 * H
    api = AdminApi(platform, "admin-tok", TZ, {"view-tok": ("wall screen", "viewer")})
    async with TestClient(TestServer(api.app())) as c:
        yield c
    await platform.devices.stop()


VIEWER = {"Authorization": "Bearer view-tok"}


async def test_online_rates_since_midnight(client: TestClient) -> None:
    r = await client.get("/api/reports/online", params={"by": "point-class"}, headers=VIEWER)
    assert r.status == 200
    data = await r.json()
    assert data["period"]["start"] == "2026-11-23T00:00:00+08:00" and data["period"]["until"].endswith("08:00:00+08:00")
    total = data["total"]
    assert (total["channel_online_s"], total["channel_observed_s"]) == (6 * H + 2 * H, 8 * H + 4 * H)
    assert (total["device_online_s"], total["device_observed_s"]) == (6 * H, 8 * H)
    assert total["channels_online"] == 0 and total["devices_online"] == 0
    groups = {g["key"]: g for g in data["groups"]}
    assert groups["1"]["channel_rate"] == 0.75 and groups["1"]["meets_target"] is False
    assert groups["unknown"]["channel_rate"] == 0.5
    assert data["platform"] == {"downtime_s": 0, "downtime": [], "restarts": 0, "unclean_restarts": 0}
    r = await client.get("/api/reports/online", params={"since": "2026-11-23T05:00", "until": "-1h"}, headers=VIEWER)
    total = (await r.json())["total"]
    assert (total["channel_online_s"], total["channel_observed_s"]) == (2 * H, 4 * H)


async def test_day_report_in_every_format(client: TestClient) -> None:
    r = await client.get("/api/reports/report", params={"period": "day", "date": "2026-11-23"}, headers=VIEWER)
    doc = await r.json()
    assert doc["title"] == "GB28181 daily report 2026-11-23" and doc["total"]["channel_rate"] == round(8 / 12, 6)
    assert [b["rate"] for b in doc["over_time"][:9]] == [1.0] * 6 + [0.0] * 2 + [None]
    assert doc["annotation"]["offenders"] == 1 and doc["ids"] == []
    r = await client.get("/api/reports/report", params={"date": "today", "format": "html"}, headers=VIEWER)
    assert r.status == 200 and r.content_type == "text/html"
    page = await r.text()
    assert page.count('id="chart-time"') == 1 and "北门广场" in page
    r = await client.get("/api/reports/report", params={"period": "week", "format": "text"}, headers=VIEWER)
    assert r.status == 200 and "GB28181 weekly report 2026-W48" in await r.text()
    r = await client.get("/api/reports/report", params={"format": "csv"}, headers=VIEWER)
    rows = list(csv.reader(io.StringIO(await r.text())))
    assert [row[1] for row in rows[1:]] == [CH2, IPC]


async def test_quality_and_the_offenders_csv(client: TestClient) -> None:
    r = await client.get("/api/reports/quality", headers=VIEWER)
    data = await r.json()
    assert data["annotation"]["share"] == {"coordinates": 0.5, "civil-code": 0.5, "name": 0.5}
    r = await client.get("/api/reports/quality", params={"format": "csv"}, headers=VIEWER)
    assert r.content_type == "text/csv"
    rows = list(csv.reader(io.StringIO(await r.text())))
    assert rows == [
        ["device_id", "id", "name", "longitude", "latitude", "civil_code", "point_class", "problem"],
        [IPC, CH2, "Camera 02", "", "", "", "", "no coordinates; no civil code; placeholder name 'Camera 02'"],
    ]


@pytest.mark.parametrize(
    ("path", "params", "error"),
    [
        ("/api/reports/online", {"by": "colour"}, "by must be one of"),
        ("/api/reports/online", {"by": "civil-code", "level": "9"}, "level must be"),
        ("/api/reports/online", {"level": "x"}, "invalid literal"),
        ("/api/reports/online", {"since": "soon"}, "not a time"),
        ("/api/reports/online", {"since": "-1h", "until": "-2h"}, "must end after it starts"),
        ("/api/reports/report", {"period": "month"}, "period must be one of"),
        ("/api/reports/report", {"date": "2026-13-01"}, "not a date"),
        ("/api/reports/report", {"format": "pdf"}, "format must be one of"),
        ("/api/reports/report", {"date": "2026-12-01"}, "has not started yet"),
        ("/api/reports/quality", {"format": "xml"}, "format must be json or csv"),
    ],
)
async def test_bad_arguments_get_a_clear_400(client: TestClient, path: str, params: dict[str, str], error: str) -> None:
    r = await client.get(path, params=params, headers=VIEWER)
    assert r.status == 400 and error in (await r.json())["error"]


async def test_reports_need_a_token(client: TestClient) -> None:
    assert (await client.get("/api/reports/online")).status == 401


async def test_a_platform_restart_written_by_the_device_service_is_excluded(tmp_path: Path) -> None:
    """Stop at 02:00 (platform-stop), start again at 03:00 on the same store: the IPC's registration (24 h) is
    still valid, so it stays online; the hour down is out of every rate. A second IPC whose registration ran out
    while the platform was down is taken offline at the restart (expired)."""
    clock, store = Clock(), MemoryStore()
    cfg = Config(sip=SipConfig(password="pw"), registry=RegistryConfig(str(tmp_path / "x.db")))
    secrets = Secrets("pw", "admin-tok", b"s" * 32, tmp_path / "s.json")
    first = Platform(cfg, secrets, store, wall=clock, batch_interval=3600)
    await first.devices.start()
    clock.now = T0
    other = "34020000001320000002"
    await first.devices.register(Registration(IPC, T0, 86400, "UDP", "127.0.0.1:5060"), "udp:127.0.0.1:5060")
    await first.devices.register(Registration(other, T0, 5400, "UDP", "127.0.0.1:5062"), "udp:127.0.0.1:5062")
    clock.now = T0 + 2 * H
    await first.devices.stop()
    clock.now = T0 + 3 * H
    second = Platform(cfg, secrets, store, wall=clock, batch_interval=3600)
    await second.devices.start()
    await settle(second)
    clock.now = T0 + 8 * H
    api = AdminApi(second, "admin-tok", TZ)
    async with TestClient(TestServer(api.app())) as c:
        r = await c.get("/api/reports/online", params={"by": "type"}, headers={"Authorization": "Bearer admin-tok"})
        data = await r.json()
    await second.devices.stop()
    assert data["platform"]["downtime"] == [{"from": "2026-11-23T02:00:00+08:00", "to": "2026-11-23T03:00:00+08:00",
                                             "seconds": 3600}]  # fmt: skip
    assert (data["platform"]["restarts"], data["platform"]["unclean_restarts"]) == (1, 0)
    total = data["total"]
    assert (total["devices"], total["devices_online"]) == (2, 1)
    assert (total["device_online_s"], total["device_observed_s"]) == (7 * H + 2 * H, 2 * 7 * H)
    events = [e.event for e in await store.list_events(subject=other)]
    assert events == ["registered", "expired"]
