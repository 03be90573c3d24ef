"""Admin API for superiors: status, shares with per-superior ID and name, the catalog a superior would get."""

from __future__ import annotations

import zoneinfo
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gb28181.admin.app import AdminApi
from gb28181.config import Config, RegistryConfig, SipConfig, UpstreamConfig
from gb28181.server import Platform, Secrets
from registry.memory import MemoryStore
from registry.models import Channel, Device

UP = "44000000002000000001"
NVR = "34020000001110000001"
CH = "34020000001310000001"
AS = "44000000001310000001"


@pytest.fixture
async def client(tmp_path: Path):
    up = UpstreamConfig(id=UP, host="127.0.0.1", port=15060, share=(NVR,), name="县平台").checked()
    cfg = Config(sip=SipConfig(password="pw"), registry=RegistryConfig(str(tmp_path / "x.db")), upstream=(up,))
    store = MemoryStore()
    platform = Platform(cfg, Secrets("pw", "admin-tok", b"s" * 32, tmp_path / "s.json"), store, batch_interval=3600)
    await platform.devices.start()
    await store.put_device(Device(NVR))
    await store.apply_catalog(NVR, [Channel(NVR, CH, name="东门", kind="video", status="online")], [])
    platform.endpoint.local_address = lambda peer: ("127.0.0.1", 5060)
    await platform.start_upstreams()  # no transport here: the registration fails and backs off
    named = {"view-tok": ("wall", "viewer"), "op-tok": ("duty", "operator")}
    api = AdminApi(platform, "admin-tok", zoneinfo.ZoneInfo("Asia/Shanghai"), named)
    async with TestClient(TestServer(api.app())) as c:
        yield c
    await platform.stop_upstreams()
    await platform.devices.stop()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_status_of_superiors(client: TestClient) -> None:
    r = await client.get("/api/upstreams", headers=auth("view-tok"))
    (row,) = await r.json()
    assert (row["id"], row["state"], row["online"], row["shares"]) == (UP, "failed", False, 1)  # share seeded
    assert "not running" in row["last_error"] and row["next_attempt"] and row["since"].endswith("+08:00")
    r = await client.get(f"/api/upstreams/{UP}", headers=auth("view-tok"))
    assert (await r.json())["id"] == UP
    r = await client.get("/api/upstreams/45000000002000000001", headers=auth("view-tok"))
    assert r.status == 404 and "[[upstream]]" in (await r.json())["error"]


async def test_shares_and_overrides(client: TestClient) -> None:
    path = f"/api/upstreams/{UP}/shares"
    r = await client.post(path, json={"items": [CH], "as": AS, "name": "东门(县)"}, headers=auth("view-tok"))
    assert r.status == 403
    r = await client.post(path, json={"items": [CH], "as": AS, "name": "东门(县)"}, headers=auth("op-tok"))
    assert r.status == 200
    assert {(s["item"], s["as"], s["name"]) for s in await r.json()} == {(NVR, None, None), (CH, AS, "东门(县)")}
    r = await client.get(f"/api/upstreams/{UP}/catalog", headers=auth("view-tok"))
    items = await r.json()
    assert items[0]["id"] == "34020000002000000001" and items[0]["name"] == "县平台"
    (shared,) = [i for i in items if i["channel_id"] == CH]
    assert (shared["id"], shared["name"], shared["device_id"], shared["status"]) == (AS, "东门(县)", NVR, "OFF")
    for body, needle in [
        ({"items": []}, "non-empty"),
        ({"items": ["abc"]}, "not a 20-digit"),
        ({"items": [CH, NVR], "as": AS}, "one item"),
        ({"items": [CH], "as": "12"}, "20-digit"),
        ({"items": ["all"], "name": "x"}, "all"),
    ]:
        r = await client.post(path, json=body, headers=auth("op-tok"))
        assert r.status == 400 and needle in (await r.json())["error"], body
    r = await client.post(path, json={"items": [NVR], "as": AS}, headers=auth("op-tok"))
    assert r.status == 409  # one per-superior ID per item
    r = await client.delete(f"{path}/{CH}", headers=auth("op-tok"))
    assert r.status == 403  # removing is for admins, as with devices
    r = await client.delete(f"{path}/{CH}", headers=auth("admin-tok"))
    assert r.status == 200
    r = await client.delete(f"{path}/{CH}", headers=auth("admin-tok"))
    assert r.status == 404
    r = await client.get(path, headers=auth("view-tok"))
    assert [s["item"] for s in await r.json()] == [NVR]
