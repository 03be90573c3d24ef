"""Admin API hardening over real HTTP on loopback: the audit log of operator actions (who/when/what/status,
secrets redacted), the lockouts view, constant-time token checks."""

from __future__ import annotations

import inspect
import zoneinfo
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gb28181.admin import audit
from gb28181.admin.app import AdminApi
from gb28181.config import Config, RegistryConfig, SipConfig
from gb28181.server import Platform, Secrets
from registry.memory import MemoryStore

DEVICE = "34020000001320000001"


@pytest.fixture
async def rig(tmp_path: Path):
    cfg = Config(sip=SipConfig(password="pw"), registry=RegistryConfig(str(tmp_path / "x.db")))
    clock = {"wall": 1_764_000_000.0, "mono": 50.0}
    platform = Platform(cfg, Secrets("pw", "admin-tok", b"s" * 32, tmp_path / "s.json"), MemoryStore(),
                        wall=lambda: clock["wall"], mono=lambda: clock["mono"], batch_interval=3600)  # fmt: skip
    await platform.devices.start()
    named = {"view-tok": ("wall screen", "viewer"), "op-tok": ("duty operator", "operator")}
    api = AdminApi(platform, "admin-tok", zoneinfo.ZoneInfo("Asia/Shanghai"), named)
    async with TestClient(TestServer(api.app())) as c:
        yield c, platform, clock
    await platform.devices.stop()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_operator_actions_are_audited_with_who_what_and_outcome(rig) -> None:
    client, _, clock = rig
    r = await client.post("/api/devices", json={"id": DEVICE, "password": "s3cret"}, headers=auth("admin-tok"))
    assert r.status == 201
    clock["wall"] += 60
    r = await client.patch(f"/api/devices/{DEVICE}", json={"name": "gate"}, headers=auth("op-tok"))
    assert r.status == 200
    r = await client.delete(f"/api/devices/{DEVICE}", headers=auth("op-tok"))  # refused: operators may not
    assert r.status == 403
    r = await client.post(f"/api/devices/{DEVICE}/reboot", headers=auth("op-tok"))  # fails: not registered
    assert r.status >= 400
    r = await client.post("/api/channels.csv?dry_run=1", data=b"id,name\n", headers=auth("op-tok"))
    await client.get("/api/devices", headers=auth("op-tok"))  # reads are not audited
    r = await client.get("/api/audit", headers=auth("view-tok"))
    assert r.status == 200
    rows = await r.json()
    assert [(e["who"], e["action"]) for e in rows] == [
        ("admin", "POST /api/devices"),
        ("duty operator", "PATCH /api/devices/{id}"),
        ("duty operator", "DELETE /api/devices/{id}"),
        ("duty operator", "POST /api/devices/{id}/reboot"),
        ("duty operator", "POST /api/channels.csv"),
    ]
    assert rows[0]["status"] == 201 and "s3cret" not in rows[0]["detail"] and '"password": "***"' in rows[0]["detail"]
    assert rows[1]["target"] == DEVICE and rows[1]["detail"] == '{"name": "gate"}' and rows[1]["role"] == "operator"
    assert rows[2]["status"] == 403 and rows[3]["status"] >= 400
    assert rows[4]["detail"].startswith("?dry_run=1") and rows[0]["remote"] == "127.0.0.1"
    assert rows[1]["at"].endswith("+08:00")
    r = await client.get("/api/audit", params={"since": str(clock["wall"] - 30)}, headers=auth("view-tok"))
    assert len(await r.json()) == 4
    r = await client.get("/api/audit", params={"since": "yesterday-ish"}, headers=auth("view-tok"))
    assert r.status == 400


async def test_lockouts_are_visible_to_operators(rig) -> None:
    client, platform, clock = rig
    for _ in range(platform.cfg.guard.max_failures):
        platform.guard.failed("198.51.100.66", DEVICE, platform.mono())
    clock["mono"] += 10
    r = await client.get("/api/lockouts", headers=auth("view-tok"))
    (row,) = await r.json()
    assert row["source"] == "198.51.100.66" and row["device_id"] == DEVICE
    assert row["seconds_left"] == platform.cfg.guard.lockout_base - 10 and row["lockouts"] == 1


def test_tokens_are_compared_in_constant_time_and_secrets_redacted() -> None:
    assert "compare_digest" in inspect.getsource(AdminApi._identify)
    assert audit.redact({"a": [{"Password": "x", "n": 1}], "token": "t"}) == {"a": [{"Password": "***", "n": 1}],
                                                                              "token": "***"}  # fmt: skip
    assert audit.describe_body(b"\xff\xfe", "application/octet-stream") == "(2 bytes)"
    assert audit.describe_body(b"{not json", "application/json").startswith("(unreadable JSON")
