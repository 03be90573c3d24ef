"""Media routes of the admin API (aiohttp's test server, no SIP transport): roles (a viewer lists, an operator starts
and stops), argument checks, clear errors for unknown channels, offline devices and unknown sessions, and the
/live route's signed token."""

from __future__ import annotations

import hmac
import zoneinfo
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gb28181.admin.app import AdminApi
from gb28181.config import Config, ConfigError, MediaConfig, RegistryConfig, SipConfig, media_settings
from gb28181.media_sessions import sign_live
from gb28181.server import Platform, Secrets
from registry.memory import MemoryStore


@pytest.fixture
async def client(tmp_path: Path):
    cfg = Config(sip=SipConfig(password="pw"), registry=RegistryConfig(str(tmp_path / "x.db")),
                 media={"rtp_ports": "40000-40010", "bind": "127.0.0.1"})  # fmt: skip
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


async def test_roles_and_clear_errors(client: TestClient) -> None:
    r = await client.get("/api/sessions", headers=auth("view-tok"))
    assert r.status == 200 and await r.json() == []
    r = await client.post("/api/channels/34020000001320000001/play", json={}, headers=auth("view-tok"))
    assert r.status == 403
    r = await client.post("/api/sessions/s1/stop", json={}, headers=auth("view-tok"))
    assert r.status == 403
    r = await client.post("/api/channels/34020000001320000001/play", json={}, headers=auth("op-tok"))
    body = await r.json()
    assert r.status == 404 and body["kind"] == "unknown" and "34020000001320000001" in body["error"]
    r = await client.post("/api/channels/34020000001320000001/play", json={"transport": "sctp"},
                          headers=auth("op-tok"))  # fmt: skip
    assert r.status == 400 and "transport" in (await r.json())["error"]
    r = await client.post("/api/channels/34020000001320000001/playback", json={"start": "-1h"},
                          headers=auth("op-tok"))  # fmt: skip
    assert r.status == 400 and "end" in (await r.json())["error"]
    r = await client.post("/api/channels/34020000001320000001/download", json={"start": "tomorrow", "end": "-1h"},
                          headers=auth("op-tok"))  # fmt: skip
    assert r.status == 400
    r = await client.post("/api/sessions/s9/stop", json={}, headers=auth("op-tok"))
    assert r.status == 404 and "no media session" in (await r.json())["error"]
    r = await client.post("/api/sessions/s9/control", json={"action": "pause"}, headers=auth("op-tok"))
    assert r.status == 404
    r = await client.get("/api/sessions/s9", headers=auth("view-tok"))
    assert r.status == 404


async def test_live_needs_a_signed_token(client: TestClient) -> None:
    r = await client.get("/live/s1")
    assert r.status == 403 and "token" in (await r.json())["error"]
    r = await client.get("/live/s1?token=99999999999.AAAA")
    assert r.status == 403
    secret = hmac.digest(b"s" * 32, b"live-urls", "sha256")  # the platform's live key (server.py)
    r = await client.get(f"/live/s1?token={sign_live(secret, 's1', 99999999999)}")
    assert r.status == 404 and "no media session" in (await r.json())["error"]


def test_media_settings_are_checked() -> None:
    assert media_settings({}) == MediaConfig()
    assert media_settings({"invite_timeout": 3, "zlm_url": "http://127.0.0.1:80"}).invite_timeout == 3.0
    for bad, words in (({"backend": "gstreamer"}, "backend"), ({"rtp_ports": "80-90"}, "rtp_ports"),
                       ({"rtp_ports": "40000"}, "rtp_ports"), ({"invite_timeout": 0}, "invite_timeout"),
                       ({"no_media_timeout": "x"}, "number"), ({"live_url_ttl": 1}, "live_url_ttl"),
                       ({"colour": 1}, "unknown key")):  # fmt: skip
        with pytest.raises(ConfigError, match=words):
            media_settings(bad)
