"""The SIP stack over real loopback sockets, against peers we did not write: SIPp and pjsua2.

The server side is tests/e2e/uas_app.py (a small registrar/UAS on our stack), run in the test's own event
loop so its state can be inspected.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from tests.e2e import uas_app
from tests.e2e.conftest import PYTHON, SCENARIOS, free_port, require_module, run_tool, sipp_command, write_users

pytestmark = pytest.mark.e2e


@pytest.fixture
async def uas():
    port = free_port()
    app, runner, udp, tcp = await uas_app.start(("127.0.0.1", port), ("127.0.0.1", port))
    assert udp == ("127.0.0.1", port) and tcp == ("127.0.0.1", port)
    yield app, port
    await runner.close()


def sipp_args(scenario: str | None, port: int, transport: str, count: int, rate: int, tmp: Path) -> list[str]:
    errors = ("-trace_err", "-error_file", str(tmp / "sipp_errors.log"))
    scenario_args = () if scenario is None else ("-sf", str(SCENARIOS / scenario))
    return sipp_command(port, transport, count, rate, *errors, *scenario_args, timeout=60)


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_sipp_devices_register_with_digest_and_keep_alive(uas, tmp_path, transport):
    app, port = uas
    ids = write_users(tmp_path / "users.csv", 200)
    rc, _out, err = await run_tool(
        *sipp_args("sipp-register-auth.xml", port, transport, 200, 200, tmp_path), "-inf", str(tmp_path / "users.csv")
    )
    assert rc == 0, err[-2000:] + (tmp_path / "sipp_errors.log").read_text(errors="replace")[-2000:]
    assert set(app.registrations) == set(ids)
    expected_transport = "udp" if transport == "u1" else "tcp"
    assert all(r.peer.startswith(expected_transport + ":127.0.0.1:") for r in app.registrations.values())
    assert app.counters["auth:missing"] == 200  # each device was challenged exactly once
    assert app.counters["REGISTER"] == 400

    rc, _out, err = await run_tool(
        *sipp_args("sipp-message-keepalive.xml", port, transport, 200, 200, tmp_path),
        "-inf",
        str(tmp_path / "users.csv"),
    )
    assert rc == 0, err[-2000:]
    assert app.counters["MESSAGE"] == 200
    senders = {m[0] for m in app.messages}
    assert senders == set(ids)
    ctype, body = app.messages[0][1], app.messages[0][2]
    assert ctype == "Application/MANSCDP+xml"
    assert body.startswith(b'<?xml version="1.0" encoding="GB2312"?>') and b"<CmdType>Keepalive</CmdType>" in body
    assert app.endpoint.stats["rejected"] == 0


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_sipp_invite_dialogs_end_cleanly(uas, tmp_path, transport):
    """SIPp's built-in UAC: INVITE, 100/200, ACK, BYE, 200 - the dialog layer end to end."""
    app, port = uas
    rc, _out, err = await run_tool(*sipp_args(None, port, transport, 20, 20, tmp_path), "-sn", "uac", "-d", "50")
    assert rc == 0, err[-2000:]
    assert app.counters["INVITE"] == 20 and app.counters["BYE"] == 20
    assert len(app.endpoint.dialogs) == 0  # every BYE's 200 removed its dialog


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_pjsua2_registers_with_digest_and_sends_manscdp_message(uas, transport):
    require_module("pjsua2")
    app, port = uas
    device = "34020000001320000077"
    rc, out, err = await run_tool(
        PYTHON,
        "-m",
        "tests.e2e.pjsua2_device",
        f"127.0.0.1:{port}",
        device,
        "12345678",
        "--transport",
        transport,
        timeout=60,
    )
    assert rc == 0, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["registered"] is True and result["register_codes"] == [200]
    assert result["message_codes"] == [200]
    assert result["unregister_codes"] == [200] and result["active_after_unregister"] is False
    assert device not in app.registrations  # unregistered
    assert app.counters["auth:missing"] >= 2  # REGISTER and un-REGISTER were both challenged
    (sender, ctype, body) = app.messages[-1]
    assert sender == device and ctype.lower() == "application/manscdp+xml"
    assert f"<DeviceID>{device}</DeviceID>".encode() in body


async def test_pjsua2_wrong_password_is_refused(uas):
    require_module("pjsua2")
    app, port = uas
    rc, out, err = await run_tool(
        PYTHON,
        "-m",
        "tests.e2e.pjsua2_device",
        f"127.0.0.1:{port}",
        "34020000001320000078",
        "not-the-password",
        timeout=60,
    )
    assert rc == 0, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["registered"] is False and result["register_codes"][-1] == 403
    assert app.counters["auth:wrong password"] >= 1
    assert app.registrations == {}


async def _udp_exchange(port: int, data: bytes, wait: float = 2.0) -> bytes | None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind(("127.0.0.1", 0))
    try:
        await loop.sock_sendto(sock, data, ("127.0.0.1", port))
        try:
            return await asyncio.wait_for(loop.sock_recv(sock, 65535), wait)
        except TimeoutError:
            return None
    finally:
        sock.close()


async def test_bad_requests_get_a_clear_answer_or_are_dropped(uas):
    app, port = uas
    bad_cseq = (
        b"MESSAGE sip:34020000002000000001@3402000000 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:1;rport;branch=z9hG4bKbad1\r\n"
        b"From: <sip:34020000001320000001@3402000000>;tag=1\r\n"
        b"To: <sip:34020000002000000001@3402000000>\r\n"
        b"Call-ID: bad-1\r\nCSeq: twenty MESSAGE\r\nContent-Length: 0\r\n\r\n"
    )
    answer = await _udp_exchange(port, bad_cseq)
    assert answer is not None and answer.startswith(b"SIP/2.0 400 Bad Request\r\n")
    assert b'Warning: 399 - "bad CSeq' in answer
    assert b"rport=" in answer  # answered to the source port per RFC 3581
    assert await _udp_exchange(port, b"\x00\xff garbage \r\n\r\n", wait=0.5) is None  # nothing to answer to
    bad_version = bad_cseq.replace(b"SIP/2.0\r\nVia", b"SIP/3.0\r\nVia").replace(b"twenty", b"20")
    answer = await _udp_exchange(port, bad_version)
    assert answer is not None and answer.startswith(b"SIP/2.0 505 ")
    # the server still works afterwards
    ok = bad_cseq.replace(b"twenty", b"20").replace(b"bad1", b"good1")
    answer = await _udp_exchange(port, ok)
    assert answer is not None and answer.startswith(b"SIP/2.0 200 OK\r\n")
    assert app.counters["MESSAGE"] == 1
    assert app.endpoint.stats["rejected"] == 2 and app.endpoint.stats["dropped"] == 1
