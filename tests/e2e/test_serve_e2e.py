"""`gb28181 serve` end to end: a real server process, SIPp and pjsua2 devices, the CLI as the operator."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket

import pytest

from tests.e2e.conftest import PYTHON, SCENARIOS, free_port, require_module, require_tool, run_tool, write_users
from tests.e2e.serve_helpers import Server

pytestmark = pytest.mark.e2e


@pytest.fixture
async def server(tmp_path):
    srv = Server(tmp_path, sip_extra='password = "12345678"')
    yield srv
    if srv.proc is not None:
        await srv.stop()


def sipp(
    scenario: str, srv: Server, transport: str, users, count: int, rate: int, *extra: str, local: int | None = None
) -> list[str]:
    """A bounded SIPp device run. Pass the same ``local`` port to scenarios of one device population, as real
    devices keep theirs (a new port looks like a NAT move)."""
    local = local or free_port(socket.SOCK_STREAM if transport.startswith("t") else socket.SOCK_DGRAM)
    return [
        require_tool("sipp"),
        f"127.0.0.1:{srv.sip_port}",
        "-sf",
        str(SCENARIOS / scenario),
        "-inf",
        str(users),
        "-i",
        "127.0.0.1",
        "-p",
        str(local),
        "-t",
        transport,
        "-m",
        str(count),
        "-r",
        str(rate),
        "-timeout",
        "90s",
        "-nostdin",
        "-max_socket",
        "100",
        "-buff_size",
        "4194304",
        *extra,
    ]


async def test_sipp_devices_register_over_udp_and_tcp_and_are_listed(server, tmp_path):
    await server.start()
    udp_ids = write_users(tmp_path / "udp.csv", 500)
    tcp_ids = write_users(tmp_path / "tcp.csv", 100, start=501)
    rc, _, err = await run_tool(*sipp("sipp-register-auth.xml", server, "u1", tmp_path / "udp.csv", 500, 250))
    assert rc == 0, err[-2000:] + server.log()
    # TCP devices hold their connection open (the scenario pauses 8 s after each 200) while we look.
    tcp = asyncio.create_task(
        run_tool(*sipp("sipp-register-auth-hold.xml", server, "t1", tmp_path / "tcp.csv", 100, 100))
    )
    devices = await server.wait_for(
        lambda d: sum(1 for i in tcp_ids if d.get(i, {}).get("status") == "online") == 100, 30, "TCP devices online"
    )
    assert all(devices[i]["status"] == "online" and devices[i]["transport"] == "UDP" for i in udp_ids)
    assert all(devices[i]["transport"] == "TCP" for i in tcp_ids)
    assert all(re.fullmatch(r"127\.0\.0\.1:\d+", devices[i]["address"]) for i in udp_ids + tcp_ids)
    assert len({devices[i]["address"] for i in udp_ids}) == 1  # SIPp sends from one fixed port
    one = devices[udp_ids[0]]
    assert one["expires"] > 3500 and one["registered_at"].endswith("+08:00")  # Asia/Shanghai by default
    rc, _, err = await tcp
    assert rc == 0, err[-2000:]
    # SIPp closed its TCP connection on exit: those devices go offline, UDP ones stay online.
    devices = await server.wait_for(
        lambda d: all(d[i]["status"] == "offline" for i in tcp_ids), 30, "TCP devices offline after close"
    )
    assert all(devices[i]["status"] == "online" for i in udp_ids)
    events = await server.cli("events", "--device", tcp_ids[0])
    assert [e["event"] for e in events] == ["registered", "tcp-closed"]
    stats = await server.cli("stats")
    assert stats["counters"]["register:registered"] == 600 and stats["counters"]["register:challenged"] == 600


async def test_pjsua2_device_registers_keeps_alive_and_unregisters(server, tmp_path):
    require_module("pjsua2")
    await server.start()
    device = "34020000001320000901"
    rc, out, err = await run_tool(
        PYTHON, "-m", "tests.e2e.pjsua2_device", f"127.0.0.1:{server.sip_port}", device, "12345678", timeout=60
    )
    assert rc == 0, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {
        "registered": True,
        "register_codes": [200],
        "message_codes": [200],
        "unregister_codes": [200],
        "active_after_unregister": False,
    }
    shown = await server.cli("device", "show", device)
    assert shown["status"] == "offline" and shown["registered"] is False
    assert shown["user_agent"].startswith("pjsua2 GB28181 test device")
    assert shown["last_keepalive"] is not None  # the MANSCDP Keepalive was taken
    events = [e["event"] for e in await server.cli("events", "--device", device)]
    assert events == ["registered", "unregistered"]

    rc, out, _ = await run_tool(
        PYTHON,
        "-m",
        "tests.e2e.pjsua2_device",
        f"127.0.0.1:{server.sip_port}",
        "34020000001320000902",
        "bad",
        timeout=60,
    )
    assert json.loads(out.strip().splitlines()[-1])["register_codes"] == [403]
    assert "34020000001320000902" not in await server.devices()
    stats = await server.cli("stats")
    assert stats["counters"]["register:wrong-password"] == 1


async def test_keepalive_silence_takes_a_device_offline_and_a_keepalive_brings_it_back(tmp_path):
    srv = Server(tmp_path, sip_extra='password = "12345678"', extra="[keepalive]\ninterval = 1\nmax_missed = 2\n")
    await srv.start()
    try:
        write_users(tmp_path / "u.csv", 3)
        port = free_port()
        rc, _, err = await run_tool(*sipp("sipp-register-auth.xml", srv, "u1", tmp_path / "u.csv", 3, 10, local=port))
        assert rc == 0, err
        devices = await srv.devices()
        assert {d["status"] for d in devices.values()} == {"online"}
        await srv.wait_for(lambda d: {x["status"] for x in d.values()} == {"offline"}, 20, "keepalive timeout")
        rc, _, err = await run_tool(
            *sipp("sipp-message-keepalive.xml", srv, "u1", tmp_path / "u.csv", 1, 10, local=port)
        )
        assert rc == 0, err
        devices = await srv.devices()
        assert sorted(d["status"] for d in devices.values()) == ["offline", "offline", "online"]
        online = next(i for i, d in devices.items() if d["status"] == "online")
        events = [e["event"] for e in await srv.cli("events", "--device", online)]
        assert events == ["registered", "keepalive-timeout", "online"]
    finally:
        await srv.stop()


async def test_unregistered_device_messages_get_403(server, tmp_path):
    await server.start()
    write_users(tmp_path / "u.csv", 1)
    # the keepalive scenario expects 200: a 403 makes it fail, which is what we want to see
    rc, _, _ = await run_tool(*sipp("sipp-message-keepalive.xml", server, "u1", tmp_path / "u.csv", 1, 1))
    assert rc != 0
    stats = await server.cli("stats")
    assert stats["counters"]["message:not-registered"] == 1


def _registered_by_trace(trace: str) -> set[str]:
    """Device IDs that received a 200 to REGISTER, from SIPp's -trace_msg log."""
    ids = set()
    for block in trace.split("----------------------------------------------- ")[1:]:
        if "message received" in block and "SIP/2.0 200 OK" in block and "REGISTER" in block:
            m = re.search(r"^From: <sip:(\d{20})@", block, re.M)
            if m:
                ids.add(m.group(1))
    return ids


async def test_kill_9_under_load_loses_no_acknowledged_registration(tmp_path):
    srv = Server(tmp_path, sip_extra='password = "12345678"', extra="[keepalive]\ninterval = 2\nmax_missed = 2\n")
    await srv.start()
    write_users(tmp_path / "u.csv", 3000)
    run_dir = tmp_path / "sipp"
    run_dir.mkdir()
    load = asyncio.create_task(
        run_tool(
            *sipp(
                "sipp-register-auth.xml",
                srv,
                "u1",
                tmp_path / "u.csv",
                3000,
                600,
                "-trace_msg",
                "-message_file",
                str(run_dir / "msgs.log"),
                "-recv_timeout",
                "3000",
            ),
            timeout=120,
        )
    )
    await asyncio.sleep(2.0)
    await srv.stop(signal.SIGKILL)
    await load
    acked = _registered_by_trace((run_dir / "msgs.log").read_text(errors="replace"))
    assert 100 < len(acked) < 3000, f"the kill should land mid-load ({len(acked)} acknowledged)"
    assert srv.integrity() == "ok"
    await srv.start()
    try:
        devices = await srv.devices()
        missing = acked - set(devices)
        assert not missing, f"{len(missing)} acknowledged registrations lost"
        # restart rule: stored registrations stay valid; silent devices stay online for one window, then go
        assert all(devices[i]["registered"] for i in acked)
        await srv.wait_for(lambda d: all(d[i]["status"] == "offline" for i in acked), 30, "silent devices offline")
        events = await srv.cli("events", "--device", "platform")
        assert [e["event"] for e in events][-1] == "platform-start"
    finally:
        await srv.stop()
    assert srv.integrity() == "ok"
