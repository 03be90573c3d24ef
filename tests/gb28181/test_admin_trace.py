"""The admin API's trace route (``POST /api/devices/{id}/trace``): operator role, checked input, an NDJSON stream
that starts, carries the device's exchanges with the platform's reasons, and ends when ``seconds`` run out,
leaving no tap behind."""

from __future__ import annotations

import json
import zoneinfo
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gb28181.admin.app import AdminApi
from gb28181.config import Config, RegistryConfig, SipConfig
from gb28181.server import Platform, Secrets
from registry.memory import MemoryStore
from sip.endpoint import Peer

DEVICE = "34020000001320000001"
PEER = Peer("UDP", "127.0.0.1", 5070)
REGISTER = (
    "REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bK1\r\n"
    f"From: <sip:{DEVICE}@3402000000>;tag=a\r\nTo: <sip:{DEVICE}@3402000000>\r\nCall-ID: trace-1\r\n"
    "CSeq: 1 REGISTER\r\nContact: <sip:x@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n"
).encode()


@pytest.fixture
async def rig(tmp_path: Path):
    cfg = Config(sip=SipConfig(password="pw"), registry=RegistryConfig(str(tmp_path / "x.db")))
    platform = Platform(cfg, Secrets("pw", "admin-tok", b"s" * 32, tmp_path / "s.json"), MemoryStore(),
                        batch_interval=3600)  # fmt: skip
    await platform.devices.start()
    named = {"view-tok": ("wall screen", "viewer"), "op-tok": ("duty operator", "operator")}
    api = AdminApi(platform, "admin-tok", zoneinfo.ZoneInfo("Asia/Shanghai"), named)
    async with TestClient(TestServer(api.app())) as c:
        yield c, platform
    await platform.devices.stop()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_viewer_may_not_trace_and_bad_input_is_refused(rig: tuple[TestClient, Platform]) -> None:
    client, _ = rig
    r = await client.post(f"/api/devices/{DEVICE}/trace", headers=auth("view-tok"))
    assert r.status == 403
    for seconds in ("soon", "0", "100000"):
        r = await client.post(f"/api/devices/{DEVICE}/trace", params={"seconds": seconds}, headers=auth("op-tok"))
        assert r.status == 400 and "seconds" in (await r.json())["error"]
    r = await client.post("/api/devices/bad-id/trace", headers=auth("op-tok"))
    assert r.status == 400


async def test_an_operator_trace_streams_the_exchanges_and_ends(rig: tuple[TestClient, Platform]) -> None:
    client, platform = rig
    r = await client.post(f"/api/devices/{DEVICE}/trace", params={"seconds": "1"}, headers=auth("op-tok"))
    assert r.status == 200 and r.headers["Content-Type"].startswith("application/x-ndjson")
    first = json.loads(await r.content.readline())
    assert first["type"] == "start" and first["device_id"] == DEVICE and first["known"] is False
    assert platform.endpoint.taps == (platform.tracer,)
    platform.endpoint.receive(REGISTER, PEER, platform.mono())  # answered 401 by the stateless path
    platform.endpoint.outgoing()  # what the runner does: the tap sees the answer go out
    rows = [json.loads(line) for line in (await r.read()).splitlines() if line.strip()]
    sip = [(row["direction"], row["label"], row["note"]) for row in rows if row["type"] == "sip"]
    assert sip == [("in", "REGISTER", ""), ("out", "401 Unauthorized", "challenge")]
    assert rows[-1] == {"type": "end", "reason": "seconds", "dropped": 0}
    assert platform.endpoint.taps == () and platform.tracer.watchers == {}
