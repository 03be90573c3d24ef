"""`gb28181 serve` end to end: a real server process, SIPp and pjsua2 devices, the CLI as the operator."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sqlite3
import urllib.request

import pytest

from registry.models import EVENT_CODES
from tests.e2e.conftest import PYTHON, SCENARIOS, free_port, require_module, run_tool, sipp_command, write_users
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
    """A bounded SIPp device population run against ``srv`` (see conftest.sipp_command for ``local``)."""
    scenario_args = ("-sf", str(SCENARIOS / scenario), "-inf", str(users))
    return sipp_command(srv.sip_port, transport, count, rate, *scenario_args, *extra, local=local)


async def test_sipp_devices_register_over_udp_and_tcp_and_are_listed(server, tmp_path):
    await server.start()
    udp_ids = write_users(tmp_path / "udp.csv", 500)
    tcp_ids = write_users(tmp_path / "tcp.csv", 100, start=501)
    rc, _, err = await run_tool(*sipp("sipp-register-auth.xml", server, "u1", tmp_path / "udp.csv", 500, 250))
    assert rc == 0, err[-2000:] + server.log()
    # TCP devices hold their connection open (the scenario pauses 12 s after each 200) while we look.
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
    # the same figures for Prometheus, behind the admin token
    token = json.loads((server.db.parent / (server.db.name + ".secrets.json")).read_text())["token"]
    req = urllib.request.Request(f"{server.admin}/metrics", headers={"Authorization": f"Bearer {token}"})
    text = (await asyncio.to_thread(lambda: urllib.request.urlopen(req, timeout=10).read())).decode()
    assert 'gb28181_events_total{name="register:registered"} 600' in text
    assert 'gb28181_devices{status="online"} 500' in text


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
    # A 6 s window: short enough to wait for, long enough that the CLI calls after the keepalive (about a second
    # each on a loaded machine) read the device before it lapses again.
    srv = Server(tmp_path, sip_extra='password = "12345678"', extra="[keepalive]\ninterval = 2\nmax_missed = 3\n")
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
        assert events[:3] == ["registered", "keepalive-timeout", "online"]  # later it may lapse again
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


async def test_operator_provisions_devices_with_their_own_passwords(tmp_path):
    srv = Server(tmp_path, sip_extra='password = "12345678"\nallow_unknown = false')
    await srv.start()
    try:
        ids = write_users(tmp_path / "known.csv", 2, password="per-device-pw")
        write_users(tmp_path / "unknown.csv", 1, password="12345678", start=50)
        for device_id in ids:
            added = await srv.cli("device", "add", device_id, "--password", "per-device-pw", "--charset", "GB18030")
            assert added["provisioned"] is True and added["has_password"] is True and added["status"] == "offline"
        port = free_port()
        rc, _, err = await run_tool(
            *sipp("sipp-register-auth.xml", srv, "u1", tmp_path / "known.csv", 2, 10, local=port)
        )
        assert rc == 0, err
        rc, _, _ = await run_tool(*sipp("sipp-register-auth.xml", srv, "u1", tmp_path / "unknown.csv", 1, 10))
        assert rc != 0  # provisioned devices only: the unknown one got 403
        devices = await srv.devices()
        assert set(devices) == set(ids) and {d["status"] for d in devices.values()} == {"online"}
        assert devices[ids[0]]["charset"] == "GB18030"

        changed = await srv.cli("device", "set", ids[0], "--disabled")
        assert changed["enabled"] is False and changed["status"] == "offline"
        rc, _, _ = await run_tool(*sipp("sipp-register-auth.xml", srv, "u1", tmp_path / "known.csv", 1, 10, local=port))
        assert rc != 0  # a disabled device cannot register
        rc, out, err = await run_tool(
            PYTHON, "-m", "cli", "device", "remove", ids[1], "--admin", srv.admin, "--db", str(srv.db)
        )
        assert rc == 0 and "removed" in out, err
        assert set(await srv.devices()) == {ids[0]}
        rc, _, err = await run_tool(
            PYTHON, "-m", "cli", "device", "show", ids[1], "--admin", srv.admin, "--db", str(srv.db)
        )
        assert rc != 0 and "404" in err
        stats = await srv.cli("stats")
        assert stats["counters"]["register:unknown-user"] >= 1
    finally:
        await srv.stop()
    # a graceful stop is recorded for the online-rate reports
    with sqlite3.connect(srv.db) as conn:
        codes = [row[0] for row in conn.execute("SELECT code FROM events WHERE subject = 'platform' ORDER BY ts, id")]
    assert codes[-2:] == [EVENT_CODES["platform-start"], EVENT_CODES["platform-stop"]]


async def test_bad_config_and_busy_port_exit_2_with_a_clear_message(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[sip]\nmin_expires = 7200\n")
    rc, out, err = await run_tool(PYTHON, "-m", "cli", "serve", "--config", str(bad), timeout=30)
    assert rc == 2 and "min_expires" in err
    rc, _, err = await run_tool(PYTHON, "-m", "cli", "serve", "--config", str(tmp_path / "nope.toml"), timeout=30)
    assert rc == 2 and "does not exist" in err
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    port = busy.getsockname()[1]
    try:
        rc, out, err = await run_tool(
            PYTHON,
            "-m",
            "cli",
            "serve",
            "--listen",
            f"udp://127.0.0.1:{port}",
            "--db",
            str(tmp_path / "x.db"),
            "--admin-listen",
            f"127.0.0.1:{free_port(socket.SOCK_STREAM)}",
            timeout=30,
        )
    finally:
        busy.close()
    assert rc == 2 and "cannot listen" in (out + err)


async def test_device_queries_round_trip_and_an_unanswered_one_times_out(tmp_path):
    srv = Server(tmp_path, sip_extra='password = "12345678"\nquery_timeout = 2')
    await srv.start()
    try:
        (device,) = write_users(tmp_path / "u.csv", 1)
        # The device registers (main scenario) and answers the platform's queries, which come with Call-IDs of
        # their own, in SIPp's out-of-call scenario.
        answers = str(SCENARIOS / "sipp-device-query-answers.xml")
        sipp_run = asyncio.create_task(
            run_tool(
                *sipp("sipp-device-registers-and-waits.xml", srv, "u1", tmp_path / "u.csv", 1, 1, "-oocsf", answers),
                timeout=120,
            )
        )
        await srv.wait_for(lambda d: d.get(device, {}).get("status") == "online", 20, "the SIPp device registered")
        info = await srv.cli("device", "info", device)
        assert (info["CmdType"], info["Manufacturer"], info["Model"], info["Firmware"]) == (
            "DeviceInfo", "Hikvision", "DS-2CD5024EFWD", "V5.5.85",
        )  # fmt: skip
        config = await srv.cli("device", "config", device)
        assert config["BasicParam"]["HeartBeatInterval"] == "20"
        shown = await srv.cli("device", "show", device)
        # what the answers taught: identity, and the device's own keepalive window (DECISIONS.md)
        assert (shown["manufacturer"], shown["model"], shown["firmware"]) == ("Hikvision", "DS-2CD5024EFWD", "V5.5.85")
        assert (shown["keepalive_interval"], shown["keepalive_count"]) == (20, 4)
        started = asyncio.get_running_loop().time()
        rc, _, err = await run_tool(
            PYTHON, "-m", "cli", "device", "status", device, "--admin", srv.admin, "--db", str(srv.db), timeout=60
        )
        waited = asyncio.get_running_loop().time() - started
        assert rc != 0 and "504" in err and "did not answer DeviceStatus within 2 s" in err
        assert waited < 15  # a clear timeout, not a hang
        assert (await srv.cli("stats"))["counters"]["query:timeout"] == 1
        rc, _, err = await run_tool(
            PYTHON, "-m", "cli", "device", "info", "34020000001320000999", "--admin", srv.admin, "--db", str(srv.db)
        )
        assert rc != 0 and "404" in err
        rc, _, err = await sipp_run  # the device's 15 s are up: it exits after its one call
        assert rc == 0, err[-2000:]
    finally:
        await srv.stop()


async def test_backup_copies_a_running_database_consistently(server, tmp_path):
    """`gb28181 backup` takes an online copy while the server runs and writes; the copy opens with its devices."""
    from registry.sqlite import SqliteStore

    await server.start()
    ids = write_users(tmp_path / "u.csv", 20)
    rc, _, err = await run_tool(*sipp("sipp-register-auth.xml", server, "u1", tmp_path / "u.csv", 20, 20))
    assert rc == 0, err[-2000:]
    copy = tmp_path / "copy.db"
    rc, out, err = await run_tool(PYTHON, "-m", "cli", "backup", str(copy), "--db", str(server.db), "--json")
    assert rc == 0, err
    result = json.loads(out)
    assert result["bytes"] > 0 and result["schema_version"] >= 5
    async with SqliteStore(copy) as store:
        assert {d.id for d in await store.list_devices()} >= set(ids)
    rc, _, err = await run_tool(PYTHON, "-m", "cli", "backup", str(copy), "--db", str(server.db))
    assert rc != 0 and "exists" in err  # never overwrites
    rc, _, err = await run_tool(PYTHON, "-m", "cli", "backup", str(tmp_path / "x.db"), "--db", str(tmp_path / "no.db"))
    assert rc != 0 and "no such database" in err
