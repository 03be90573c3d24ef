"""Media signalling against SIPp as the device (signalling only, no media): INVITE/100/200/ACK and the platform's
BYE when no media comes; an operator's stop of a pending INVITE (CANCEL, 487, ACK); the INVITE timeout (CANCEL)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.e2e.conftest import PYTHON, SCENARIOS, free_port, run_tool, sipp_command, write_users
from tests.e2e.serve_helpers import Server

pytestmark = pytest.mark.e2e


async def started(tmp_path: Path, ooc: str, invite_timeout: float = 2) -> tuple[Server, str,
                                                                               asyncio.Task[tuple[int, str, str]]]:
    base = free_port()
    srv = Server(tmp_path, sip_extra='password = "12345678"',
                 extra=f'[media]\nrtp_ports = "{base}-{min(base + 10, 65535)}"\nbind = "127.0.0.1"\n'
                       f'invite_timeout = {invite_timeout}\nno_media_timeout = 1.5\n')  # fmt: skip
    await srv.start()
    (device,) = write_users(tmp_path / "u.csv", 1)
    args = sipp_command(srv.sip_port, "u1", 1, 1, "-sf", str(SCENARIOS / "sipp-device-registers-and-waits.xml"),
                        "-inf", str(tmp_path / "u.csv"), "-oocsf", str(SCENARIOS / ooc))  # fmt: skip
    sipp = asyncio.create_task(run_tool(*args, timeout=120))
    await srv.wait_for(lambda d: d.get(device, {}).get("status") == "online", 20, "the SIPp device registered")
    return srv, device, sipp


async def cli(srv: Server, *args: str) -> tuple[int, str, str]:
    return await run_tool(PYTHON, "-m", "cli", *args, "--json", "--admin", srv.admin, "--db", str(srv.db), timeout=60)


async def finish(srv: Server, sipp: asyncio.Task[tuple[int, str, str]]) -> None:
    rc, out, err = await sipp
    await srv.stop()
    assert rc == 0, f"SIPp failed ({rc}): {out[-1500:]} {err[-1500:]}"


async def test_invite_200_ack_then_bye_when_no_media_comes(tmp_path: Path) -> None:
    srv, device, sipp = await started(tmp_path, "sipp-uas-invite-answer.xml")
    try:
        rc, _, err = await cli(srv, "play", device)
        assert rc != 0 and "no media within 1.5 s after the 200 OK" in err
        rc, out, _ = await cli(srv, "sessions")
        assert rc == 0 and json.loads(out) == []
        counters = json.loads((await cli(srv, "stats"))[1])["counters"]
        assert counters["media:invite:play"] == 1 and counters["media:answered"] == 1
        assert counters["media:failed"] == 1
        assert "SSRC 0000630886 for our 0200000001" in srv.log()
    finally:
        await finish(srv, sipp)


async def test_operator_stop_cancels_a_pending_invite(tmp_path: Path) -> None:
    srv, device, sipp = await started(tmp_path, "sipp-uas-invite-cancel.xml", invite_timeout=12)  # the operator first
    try:
        play = asyncio.create_task(cli(srv, "play", device))
        for _ in range(200):
            rc, out, _ = await cli(srv, "sessions")
            rows = json.loads(out) if rc == 0 else []
            if rows and rows[0]["state"] == "proceeding":
                break
            await asyncio.sleep(0.05)
        assert rows and rows[0]["state"] == "proceeding", srv.log()
        rc, out, err = await cli(srv, "stop", device)  # the channel's pending live session
        assert rc == 0, err
        assert json.loads(out)["state"] == "ended"
        rc, _, err = await play
        assert rc != 0 and "stopped before the device answered" in err
    finally:
        await finish(srv, sipp)


async def test_invite_timeout_sends_cancel(tmp_path: Path) -> None:
    srv, device, sipp = await started(tmp_path, "sipp-uas-invite-cancel.xml")
    try:
        rc, _, err = await cli(srv, "play", device)
        assert rc != 0 and "504" in err and "did not answer the INVITE within 2 s" in err
        assert "CANCEL (the device did not answer" in srv.log()
    finally:
        await finish(srv, sipp)
