"""Admin API routes of alarms, positions and subscriptions: roles (viewer reads, operator acts), validation."""

from __future__ import annotations

import zoneinfo
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gb28181.admin.app import AdminApi
from gb28181.config import Config, RegistryConfig, SipConfig
from gb28181.server import Platform, Secrets
from registry.memory import MemoryStore
from registry.models import Alarm, Device, Position

DEVICE = "34020000001320000001"


@pytest.fixture
async def client(tmp_path: Path):
    cfg = Config(sip=SipConfig(password="pw"), registry=RegistryConfig(str(tmp_path / "x.db")))
    store = MemoryStore()
    await store.put_device(Device(DEVICE))
    await store.add_alarms([Alarm(DEVICE, DEVICE, 1000.0, priority=1, description="门磁"),
                            Alarm(DEVICE, DEVICE, 2000.0)])  # fmt: skip
    await store.save_positions([Position(DEVICE, DEVICE, 1500.0, longitude=117.2, latitude=31.8)])
    platform = Platform(cfg, Secrets("pw", "admin-tok", b"s" * 32, tmp_path / "s.json"), store, batch_interval=3600)
    await platform.devices.start()
    named = {"view-tok": ("wall screen", "viewer"), "op-tok": ("duty operator", "operator")}
    api = AdminApi(platform, "admin-tok", zoneinfo.ZoneInfo("Asia/Shanghai"), named)
    async with TestClient(TestServer(api.app())) as c:
        yield c
    await platform.devices.stop()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_viewers_list_alarms_and_positions_operators_acknowledge(client: TestClient) -> None:
    r = await client.get("/api/alarms", params={"since": "1500"}, headers=auth("view-tok"))
    assert r.status == 200 and [a["id"] for a in await r.json()] == [2]
    r = await client.get("/api/alarms", params={"device": DEVICE}, headers=auth("view-tok"))
    first = (await r.json())[0]
    assert (first["description"], first["received_at"]) == ("门磁", "1970-01-01T08:16:40+08:00")
    r = await client.post("/api/alarms/1/ack", headers=auth("view-tok"))
    assert r.status == 403
    r = await client.post("/api/alarms/1/ack", headers=auth("op-tok"))
    assert r.status == 200 and (await r.json())["acked_by"] == "duty operator"
    r = await client.post("/api/alarms/99/ack", headers=auth("op-tok"))
    assert r.status == 404
    r = await client.get("/api/alarms", params={"since": "yesterday"}, headers=auth("view-tok"))
    assert r.status == 400
    r = await client.get("/api/positions", headers=auth("view-tok"))
    assert [(p["id"], p["longitude"]) for p in await r.json()] == [(DEVICE, 117.2)]


async def test_acting_on_a_device_that_is_not_registered_is_a_clear_conflict(client: TestClient) -> None:
    r = await client.post(f"/api/devices/{DEVICE}/subscriptions/catalog", headers=auth("op-tok"))
    assert r.status == 409 and "not registered" in (await r.json())["error"]
    r = await client.post(f"/api/devices/{DEVICE}/alarm-reset", json={"type": "x"}, headers=auth("op-tok"))
    assert r.status == 400 and "digits" in (await r.json())["error"]
    r = await client.post(f"/api/devices/{DEVICE}/alarm-reset", json={"type": "2"}, headers=auth("op-tok"))
    assert r.status == 409
    r = await client.post(f"/api/devices/{DEVICE}/subscriptions/weather", headers=auth("op-tok"))
    assert r.status == 404
    r = await client.get("/api/subscriptions", headers=auth("view-tok"))
    assert r.status == 200 and await r.json() == []
