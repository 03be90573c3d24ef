"""The media server unreachable (issue 9, Faults): `gb28181 serve` with the ZLMediaKit backend pointed at a closed
port. `gb28181 play` fails fast with a clear error after the bounded retries ([media] zlm_retries), before any INVITE
reaches the camera; `/health` and `gb28181 stats` say the media backend is unreachable and why; when ZLMediaKit (the
faithful fake, tests/media/zlm_fake.py) comes up on that port, the state turns ok and a play streams through it:
INVITE, RTP into its RTP server (its on_publish / on_stream_changed hooks reach the admin API), BYE on stop."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import PYTHON, free_port, run_tool
from tests.e2e.raw_media_device import MediaDevice
from tests.e2e.serve_helpers import Server
from tests.media.zlm_fake import FakeZlm

pytestmark = pytest.mark.e2e

CAMERA = "34020000001320000007"  # an IPC: its own channel
SECRET = "zlm-api-secret"
HOOK_SECRET = "hook-secret-0123456789"
RETRIES = 2
WAIT = 30.0  # bounds for a loaded machine, never speed assertions


async def health(srv: Server) -> dict:
    async with aiohttp.ClientSession() as http, http.get(f"{srv.admin}/health") as resp:
        assert resp.status == 200
        return await resp.json()


async def media_state(srv: Server, state: str) -> dict:
    """/health's media part once it says ``state`` (the platform probes the backend at start and every few s)."""
    deadline = time.monotonic() + WAIT
    last: dict = {}
    while time.monotonic() < deadline:
        last = (await health(srv))["media"]
        if last["state"] == state:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"media backend never {state}: {last}\n{srv.log()}")


async def backend_up(srv: Server) -> str:
    """The `gb28181_media_backend_up` line of /metrics (bearer token)."""
    token = json.loads((srv.tmp / "gb28181.db.secrets.json").read_text())["token"]
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{srv.admin}/metrics", headers={"Authorization": f"Bearer {token}"}) as resp,
    ):
        assert resp.status == 200
        return next(line for line in (await resp.text()).splitlines() if line.startswith("gb28181_media_backend_up"))


async def play(srv: Server) -> tuple[int, str, str]:
    return await run_tool(PYTHON, "-m", "cli", "play", CAMERA, "--json", "--admin", srv.admin, "--db", str(srv.db),
                          timeout=90)  # fmt: skip


async def test_zlmediakit_unreachable_fails_play_fast_shows_in_health_and_recovers(tmp_path: Path) -> None:
    zlm_port = free_port(socket.SOCK_STREAM)  # nothing listens there yet
    base = free_port()
    srv = Server(
        tmp_path, sip_extra='password = "12345678"\nquery_timeout = 3',
        extra=f'[media]\nbackend = "zlmediakit"\nzlm_url = "http://127.0.0.1:{zlm_port}"\nzlm_secret = "{SECRET}"\n'
              f'zlm_hook_secret = "{HOOK_SECRET}"\nzlm_timeout = 2\nzlm_retries = {RETRIES}\nbind = "127.0.0.1"\n'
              'advertise = "127.0.0.1"\ninvite_timeout = 5\nno_media_timeout = 5\n',
    )  # fmt: skip
    await srv.start()
    device = await MediaDevice.start(CAMERA, "12345678", ("127.0.0.1", srv.sip_port))
    fake = FakeZlm(SECRET, (base, min(base + 20, 65535)), rtp_timeout=30.0)
    try:
        assert await device.register() == 200
        down = await media_state(srv, "unreachable")
        assert down["backend"] == "zlmediakit" and down["url"] == f"http://127.0.0.1:{zlm_port}"
        assert "unreachable" in down["error"] and down["failures"] >= 1
        assert (await health(srv))["status"] == "ok"  # the SIP side keeps working
        assert await backend_up(srv) == "gb28181_media_backend_up 0"

        started = time.monotonic()
        rc, out, err = await play(srv)
        took = time.monotonic() - started
        assert rc != 0 and not out
        assert f"ZLMediaKit at http://127.0.0.1:{zlm_port}: unreachable" in err, err
        assert f"({RETRIES + 1} attempts for openRtpServer)" in err, err
        assert device.invites == []  # it failed before any signalling: the camera was not bothered
        print(f"play with ZLMediaKit down failed in {took:.2f} s: {err.strip()[-200:]}")
        stats = await srv.cli("stats")
        assert isinstance(stats, dict) and stats["media"]["state"] == "unreachable", stats
        rc, text, err = await run_tool(PYTHON, "-m", "cli", "stats", "--admin", srv.admin, "--db", str(srv.db))
        assert rc == 0 and f"media backend zlmediakit: unreachable (ZLMediaKit at http://127.0.0.1:{zlm_port}" in text
        assert await srv.cli("sessions") == []

        # ZLMediaKit comes up on its configured port: the state turns ok by itself, and a play goes through it
        fake.hook_url = f"{srv.admin}/zlm/hook/{{name}}?secret={HOOK_SECRET}"
        await fake.start(zlm_port)
        up = await media_state(srv, "ok")
        assert up["error"] == "" and up["failures"] == 0
        assert await backend_up(srv) == "gb28181_media_backend_up 1"
        rc, out, err = await play(srv)
        assert rc == 0, f"{err}\n{srv.log()}"
        row = json.loads(out)
        assert row["state"] == "streaming" and len(device.invites) == 1
        assert [name for name, _ in fake.calls].count("openRtpServer") == 1
        rc, out, err = await run_tool(PYTHON, "-m", "cli", "stop", row["consumer"], "--json", "--admin", srv.admin,
                                      "--db", str(srv.db), timeout=60)  # fmt: skip
        assert rc == 0 and json.loads(out)["state"] == "ended", err
        assert len(device.byes) == 1
        assert "closeRtpServer" in [name for name, _ in fake.calls]
    finally:
        device.close()
        await srv.stop()
        await fake.stop()
