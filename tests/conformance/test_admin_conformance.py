"""The conformance route of the admin API (aiohttp's test server on loopback): the operator role, validation, and
a run for a device that never registers ending within its budget with a report that says so."""

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
PATH = f"/api/devices/{DEVICE}/conformance"


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


async def test_a_viewer_may_not_run_it(client: TestClient) -> None:
    r = await client.post(PATH, json={"timeout": 1}, headers=auth("view-tok"))
    assert r.status == 403


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        ("/api/devices/123/conformance", {}, "20-digit"),
        (PATH, {"timeout": 0}, "timeout"),
        (PATH, {"timeout": "60"}, "timeout"),
        (PATH, {"only": "catalog"}, "list"),
        (PATH, {"only": ["catalog", "nonsense"]}, "unknown clause 'nonsense'"),
    ],
)
async def test_bad_requests_get_a_clear_400(client: TestClient, path: str, body: dict, error: str) -> None:
    r = await client.post(path, json=body, headers=auth("op-tok"))
    assert r.status == 400 and error in (await r.json())["error"]


async def test_a_device_that_never_registers_ends_within_the_budget(client: TestClient) -> None:
    r = await client.post(PATH, json={"timeout": 1, "only": ["query.device-info", "media"]}, headers=auth("op-tok"))
    assert r.status == 200
    report = await r.json()
    assert report["results"][0]["clause"] == "query.device-info"
    assert {x["verdict"] for x in report["results"]} == {"SKIP"}
    assert any("budget ran out" in n or "not registered" in n for n in report["notes"])
    assert report["counts"]["SKIP"] == len(report["results"]) == 7
