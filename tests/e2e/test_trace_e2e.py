"""``gb28181 trace DEVICE`` end to end: a real ``gb28181 serve`` process, a raw-socket device (tests/e2e/raw_device.py)
over UDP, and two CLI traces at once (ladder text and --json) that must show the device's exchanges, the stateless
ones (digest challenge, keepalive) included, each refusal with its reason, and nothing of another device."""

from __future__ import annotations

import asyncio
import json

from tests.e2e.conftest import PYTHON, REPO
from tests.e2e.raw_device import RawDevice
from tests.e2e.serve_helpers import Server

DEVICE = "34020000001320000011"
OTHER = "34020000001320000012"
KEEPALIVE = (
    '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>1</SN>\r\n'
    f"<DeviceID>{DEVICE}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
).encode()


async def _trace(srv: Server, *flags: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        PYTHON, "-m", "cli", "trace", DEVICE, *flags, "--admin", srv.admin, "--db", str(srv.db), cwd=str(REPO),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return proc


async def test_trace_shows_the_ladder_with_reasons(tmp_path) -> None:
    srv = Server(tmp_path, sip_extra='password = "12345678"')
    await srv.start()
    procs: list[asyncio.subprocess.Process] = []
    devices: list[RawDevice] = []
    try:
        text = await _trace(srv, "--seconds", "12")
        as_json = await _trace(srv, "--json", "--seconds", "12")
        procs = [text, as_json]
        assert text.stderr is not None and as_json.stdout is not None
        started = await asyncio.wait_for(text.stderr.readline(), 30)
        assert f"tracing {DEVICE} (not known to the platform)".encode() in started
        first = json.loads(await asyncio.wait_for(as_json.stdout.readline(), 30))
        assert first["type"] == "start" and first["device_id"] == DEVICE and first["known"] is False
        server = ("127.0.0.1", srv.sip_port)
        wrong = await RawDevice.start(DEVICE, "not-the-password", server)
        right = await RawDevice.start(DEVICE, "12345678", server)
        other = await RawDevice.start(OTHER, "12345678", server)
        devices = [wrong, right, other]
        assert await wrong.message(KEEPALIVE) == 403  # not registered yet
        assert await wrong.register() == 403
        assert await right.register() == 200
        assert await right.message(KEEPALIVE) == 200
        assert await other.register() == 200  # another device: not in this trace
        out_text, err_text = await asyncio.wait_for(text.communicate(), 40)
        out_json, _ = await asyncio.wait_for(as_json.communicate(), 40)
        assert text.returncode == 0 and as_json.returncode == 0, err_text.decode()
    finally:
        for dev in devices:
            dev.close()
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await srv.stop()
    lines = out_text.decode().splitlines()
    assert all(DEVICE in line for line in lines) and not any(OTHER in line for line in lines), lines

    def seen(*parts: str) -> bool:
        return any(all(p in line for p in parts) for line in lines)

    assert seen(f"platform <------------- {DEVICE}", "MESSAGE Keepalive")
    assert seen("------------->", "403 Forbidden", "(not registered)")
    assert seen(f"platform <------------- {DEVICE}", "REGISTER", "REGISTER")
    assert seen("------------->", "401 Unauthorized", "(challenge)")
    assert seen("------------->", "403 Forbidden", "(wrong password)")
    assert seen("------------->", "200 OK", "(registered, expires 3600)")
    assert seen("------------->", "200 OK", "1 MESSAGE") or seen("------------->", "200 OK", "MESSAGE")
    rows = [json.loads(line) for line in out_json.decode().splitlines()]
    sip = [r for r in rows if r["type"] == "sip"]
    assert rows[-1]["type"] == "end" and rows[-1]["reason"] == "seconds" and rows[-1]["dropped"] == 0
    assert [(r["direction"], r["status"], r["note"]) for r in sip if r["status"]] == [
        ("out", 403, "not registered"),
        ("out", 401, "challenge"),
        ("out", 403, "wrong password"),
        ("out", 401, "challenge"),
        ("out", 200, "registered, expires 3600"),
        ("out", 200, ""),
    ]
    assert len(sip) == 12 and all(r["device_id"] == DEVICE for r in sip)
