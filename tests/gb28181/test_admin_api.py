"""The admin API over real HTTP on loopback (aiohttp's test server): tokens, roles, validation, errors."""

from __future__ import annotations

import zoneinfo
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gb28181.admin.app import AdminApi
from gb28181.config import Config, RegistryConfig, SipConfig
from gb28181.server import Platform, Secrets
from registry.memory import MemoryStore

DEVICE = "34020000001320000001"


@pytest.fixture
async def client(tmp_path: Path):
    cfg = Config(sip=SipConfig(password="pw"), registry=RegistryConfig(str(tmp_path / "x.db")))
    platform = Platform(cfg, Secrets("pw", "admin-tok", b"s" * 32, tmp_path / "s.json"), MemoryStore(),
                        batch_interval=3600)  # fmt: skip
    await platform.devices.start()
    named = {"view-tok": ("wall screen", "viewer"), "op-tok": ("duty operator", "operator")}
    api = AdminApi(platform, "admin-tok", zoneinfo.ZoneInfo("Asia/Shanghai"), named)
    async with TestClient(TestServer(api.app())) as c:
        yield c
    await platform.devices.stop()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_health_needs_no_token_and_api_does(client: TestClient) -> None:
    r = await client.get("/health")
    assert r.status == 200 and (await r.json())["status"] == "ok"
    r = await client.get("/api/devices")
    assert r.status == 401 and "bearer" in (await r.json())["error"]
    r = await client.get("/api/devices", headers=auth("wrong"))
    assert r.status == 401


async def test_roles_limit_what_a_token_may_do(client: TestClient) -> None:
    r = await client.post("/api/devices", json={"id": DEVICE, "password": "secret"}, headers=auth("op-tok"))
    assert r.status == 403 and "operator" in (await r.json())["error"]
    r = await client.post("/api/devices", json={"id": DEVICE, "password": "secret"}, headers=auth("admin-tok"))
    assert r.status == 201
    body = await r.json()
    assert body["provisioned"] is True and body["has_password"] is True and "password" not in body
    r = await client.patch(f"/api/devices/{DEVICE}", json={"name": "gate"}, headers=auth("view-tok"))
    assert r.status == 403
    r = await client.patch(f"/api/devices/{DEVICE}", json={"name": "gate"}, headers=auth("op-tok"))
    assert r.status == 200 and (await r.json())["name"] == "gate"
    r = await client.get("/api/devices", headers=auth("view-tok"))
    assert r.status == 200 and [d["id"] for d in await r.json()] == [DEVICE]
    r = await client.delete(f"/api/devices/{DEVICE}", headers=auth("op-tok"))
    assert r.status == 403
    r = await client.delete(f"/api/devices/{DEVICE}", headers=auth("admin-tok"))
    assert r.status == 200


async def test_bad_input_gets_a_clear_error(client: TestClient) -> None:
    admin = auth("admin-tok")
    r = await client.post("/api/devices", data=b"{not json", headers={**admin, "Content-Type": "application/json"})
    assert r.status == 400 and "JSON" in (await r.json())["error"]
    r = await client.post("/api/devices", json={"id": "123"}, headers=admin)
    assert r.status == 400 and "20-digit" in (await r.json())["error"]
    r = await client.post("/api/devices", json={"id": DEVICE, "charset": "latin-1"}, headers=admin)
    assert r.status == 400 and "charset" in (await r.json())["error"]
    r = await client.post("/api/devices", json={"id": DEVICE}, headers=admin)
    assert r.status == 201
    r = await client.post("/api/devices", json={"id": DEVICE}, headers=admin)
    assert r.status == 409
    r = await client.get("/api/devices/34020000001320000099", headers=admin)
    assert r.status == 404
    r = await client.get("/api/events", params={"since": "yesterday-ish"}, headers=admin)
    assert r.status == 400 and "not a time" in (await r.json())["error"]
    r = await client.get("/api/devices", params={"status": "sleeping"}, headers=admin)
    assert r.status == 400
    r = await client.post("/api/devices", data=b"x" * 100_000, headers=admin)
    assert r.status == 413  # the body limit holds


async def test_events_and_stats(client: TestClient) -> None:
    admin = auth("admin-tok")
    r = await client.get("/api/events", params={"device": "platform"}, headers=admin)
    events = await r.json()
    assert [e["event"] for e in events] == ["platform-start"] and events[0]["at"].endswith("+08:00")
    r = await client.get("/api/stats", headers=admin)
    stats = await r.json()
    assert stats["devices"] == 0 and stats["online"] == 0 and "sip" in stats


async def test_operation_routes_check_roles_and_arguments(client: TestClient) -> None:
    ch = "/api/channels/34020000001310000001"
    r = await client.post(f"{ch}/ptz", json={"action": "left"}, headers=auth("view-tok"))
    assert r.status == 403, "a viewer may not move cameras"
    r = await client.post(f"{ch}/ptz", json={"action": "left"}, headers=auth("op-tok"))
    assert r.status == 404 and "no device or channel" in (await r.json())["error"]
    for body, words in (
        ({"action": "left", "speed": "fast"}, "bad speed"),
        ({"action": "left", "speed": True}, "bad speed"),
        ({"action": "left", "duration": "1s"}, "bad duration"),
        ({"speed": 3}, "missing action"),
        ({"action": "sideways"}, "unknown PTZ action"),
    ):
        r = await client.post(f"{ch}/ptz", json=body, headers=auth("op-tok"))
        assert r.status == 400 and words in (await r.json())["error"], body
    r = await client.post(f"{ch}/presets", json={"action": "goto", "number": 0}, headers=auth("op-tok"))
    assert r.status == 400 and "1-255" in (await r.json())["error"]
    r = await client.get(f"{ch}/presets", headers=auth("view-tok"))
    assert r.status == 404, "a viewer may read presets; this channel does not exist"
    r = await client.get(f"{ch}/records?start=yesterday", headers=auth("view-tok"))
    assert r.status == 400 and "not a time" in (await r.json())["error"]
    r = await client.post(f"/api/devices/{DEVICE}/reboot", json={}, headers=auth("view-tok"))
    assert r.status == 403
    r = await client.post(f"/api/devices/{DEVICE}/guard", json={"action": "on"}, headers=auth("op-tok"))
    assert r.status == 400 and "arm or disarm" in (await r.json())["error"]


async def test_channels_csv_routes(client: TestClient) -> None:
    r = await client.get("/api/channels.csv", headers=auth("view-tok"))
    assert r.status == 200 and r.content_type == "text/csv"
    assert (await r.read()).startswith(b"\xef\xbb\xbfdevice_id,id,")
    r = await client.post("/api/channels.csv", data=b"device_id,id,name\r\n", headers=auth("view-tok"))
    assert r.status == 403, "a viewer may not import"
    bad = f"device_id,id,name\r\n{DEVICE},34020000001310000001,x\r\n".encode()
    r = await client.post("/api/channels.csv", data=bad, headers=auth("op-tok"))
    body = await r.json()
    assert r.status == 400 and body["errors"] == [f"line 2: no channel 34020000001310000001 on device {DEVICE}"]
    r = await client.post("/api/channels.csv?dry_run=1", data=b"device_id,id,name\r\n", headers=auth("op-tok"))
    assert r.status == 200 and (await r.json())["changed"] == 0


async def test_metrics_are_prometheus_text_behind_the_token(client: TestClient) -> None:
    r = await client.get("/metrics")
    assert r.status == 401  # the same bearer token as the API (Prometheus: authorization credentials)
    r = await client.get("/metrics", headers=auth("view-tok"))
    assert r.status == 200 and r.content_type == "text/plain"
    text = await r.text()
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert line.startswith(("# HELP gb28181_", "# TYPE gb28181_"))
            continue
        name, _, value = line.rpartition(" ")
        samples[name] = float(value)
    assert samples['gb28181_devices{status="online"}'] == 0 and samples["gb28181_media_sessions"] == 0
    assert samples["gb28181_lockouts"] == 0 and 'gb28181_sip_total{name="received"}' in samples
    assert all(n.startswith("gb28181_") for n in samples)


def test_prometheus_label_values_are_escaped() -> None:
    from gb28181.admin.app import _label

    assert _label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
