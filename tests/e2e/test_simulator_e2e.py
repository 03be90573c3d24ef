"""`gb28181 serve` driven by `gb28181 simulate` across every profile, checked through the CLI's --json output:
devices online with the right transport and address, channels with their Chinese names, kinds, parents and civil
codes (the lower platform's own tree included), and the injected events (power loss, power back, NAT move, video
loss, alarm, a platform that forgets a device) seen by the platform."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from gb28181.simulator.inventory import build
from gb28181.simulator.profile import assign, load_profile, profile_names
from tests.e2e.conftest import PYTHON, REPO, free_port, run_tool
from tests.e2e.serve_helpers import Server

pytestmark = pytest.mark.e2e

SERVER_ID = "34020000002000000001"
PASSWORD = "sim-pass-1"


class Sim:
    """`gb28181 simulate` as a subprocess with its control port."""

    def __init__(self, srv: Server, tmp: Path, *args: str) -> None:
        self.srv, self.tmp, self.args = srv, tmp, args
        self.control = free_port(socket.SOCK_STREAM)
        self.proc: asyncio.subprocess.Process | None = None
        self.err = tmp / f"simulate-{time.monotonic_ns()}.log"

    async def start(self) -> None:
        with open(self.err, "wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                PYTHON, "-m", "cli", "simulate", "--server", f"127.0.0.1:{self.srv.sip_port}", "--password", PASSWORD,
                "--control", str(self.control), "--json", "--log-level", "info", *self.args,
                cwd=str(REPO), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        for _ in range(100):
            try:
                _, w = await asyncio.open_connection("127.0.0.1", self.control)
                w.close()
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise AssertionError(f"simulator did not start:\n{self.log()}")

    async def command(self, line: str) -> str:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.control)
        writer.write(line.encode() + b"\n")
        reply = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        return reply.decode().strip()

    async def quit(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"quit\n")
        out, _ = await asyncio.wait_for(self.proc.communicate(), 30)
        assert self.proc.returncode == 0, self.log()
        return json.loads(out)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    def log(self) -> str:
        return self.err.read_text(errors="replace")[-4000:] if self.err.exists() else ""


async def channels(srv: Server, device_id: str | None = None) -> list[dict[str, Any]]:
    rows = await srv.cli("channels", *(("--device", device_id) if device_id else ()))
    assert isinstance(rows, list)
    return rows


async def wait_channels(srv: Server, expected: int, timeout: float = 40.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = await channels(srv)
        if len(rows) >= expected:
            return rows
        await asyncio.sleep(0.3)
    raise AssertionError(f"{len(rows)} channels of {expected} after {timeout} s\n{srv.log()}")


def expected_population(n: int, profile: str = "mixed") -> list[Any]:
    mix = assign(load_profile(profile))
    return [build(mix.profile_of(i), i, "3402000000") for i in range(n)]


async def test_every_profile_lands_exactly_in_the_registry(tmp_path: Path) -> None:
    population = expected_population(12)
    assert {inv.profile.name for inv in population} == set(profile_names()) - {"mixed"}
    srv = Server(tmp_path, sip_extra=f'password = "{PASSWORD}"', catalog_extra="sync_on_register = true")
    await srv.start()
    sim = Sim(srv, tmp_path, "--devices", "12", "--profile", "mixed")
    try:
        await sim.start()
        devices = await srv.wait_for(
            lambda d: len(d) == 12 and all(r["status"] == "online" for r in d.values()), 40, "12 devices online"
        )
        total = sum(len(inv.channels) for inv in population)
        rows = await wait_channels(srv, total)
        await asyncio.sleep(1.0)  # let a late packet show if there were one too many
        rows = await channels(srv)
        devices = await srv.devices()  # channel_count, now that the catalogs are in
        summary = await sim.quit()
    finally:
        await sim.kill()
        await srv.stop()
    assert summary["registered"] == 12 and summary["online"] == 12
    reported = {row["id"]: row for row in summary["device_list"]}
    by_device: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_device.setdefault(row["device_id"], {})[row["id"]] = row
    assert set(devices) == {inv.device_id for inv in population} == set(by_device)
    for inv in population:
        dev, p = devices[inv.device_id], inv.profile
        assert dev["transport"] == p.transport, inv.device_id
        if not p.has("nat-port-per-keepalive"):  # a 4G device's port moves with every keepalive
            assert dev["address"] == reported[inv.device_id]["address"], inv.device_id
        assert dev["channel_count"] == len(inv.videos), inv.device_id
        got = by_device[inv.device_id]
        assert set(got) == {c.id for c in inv.channels}, inv.device_id
        for c in inv.channels:
            row = got[c.id]
            assert row["name"] == c.name and row["status"] == "online"
            parents = [pid for pid in (c.parent_ids if not p.has("parent-is-server") else ()) if pid != SERVER_ID]
            assert row["parent_ids"] == parents, (inv.device_id, c.id)
            if c.type_code == 131 or c.id == inv.device_id:
                assert row["kind"] == "video"
                assert row["civil_code"] == ("" if p.has("placeholder-fields") else c.civil_code)  # placeholder dropped
                assert row["point_class"] == (1 if p.gb_version == "2022" else None)
                assert row["manufacturer"] == p.manufacturer
    # Spot checks written out by hand (not derived from the simulator's model).
    village = by_device["34020000001180000001"]
    assert sorted(r["name"] for r in village.values()) == sorted(f"张村{n}号探头" for n in range(1, 7))
    assert devices["34020000001320000003"]["transport"] == "TCP"  # department camera
    platform = by_device["34020000002000000109"]  # the lower platform (index 8)
    kinds = {r["id"]: r["kind"] for r in platform.values()}
    assert kinds["3402"] == kinds["340202"] == kinds["34020301"] == "region"
    assert platform["34020301"]["name"] == "白马街道" and platform["34020301"]["parent_ids"] == ["340203"]
    assert sorted(r["name"] for r in platform.values() if r["kind"] == "group") == ["交通局", "公安局"]
    orgs = {r["id"]: r for r in platform.values() if r["kind"] == "virtual-org"}
    assert {r["name"] for r in orgs.values()} == {"公安局监控中心", "交通局监控中心"}
    cams = [r for r in platform.values() if r["kind"] == "video"]
    assert len(cams) == 24 and {r["civil_code"] for r in cams} == {"340202", "34020301"}
    assert all(r["parent_ids"][0] in orgs and r["parent_ids"][1] == r["civil_code"] for r in cams)


async def test_injected_events_reach_the_platform(tmp_path: Path) -> None:
    srv = Server(
        tmp_path, sip_extra=f'password = "{PASSWORD}"', catalog_extra="sync_on_register = true",
        extra="[keepalive]\ninterval = 1\nmax_missed = 3\n",
    )  # fmt: skip
    await srv.start()
    sim = Sim(srv, tmp_path, "--devices", "3", "--profile", "xueliang-village-nvr", "--keepalive", "0.5")
    nvr, other, third = "34020000001180000001", "34020000001180000002", "34020000001180000003"
    try:
        await sim.start()
        await srv.wait_for(lambda d: len(d) == 3 and all(r["status"] == "online" for r in d.values()), 30, "online")
        await wait_channels(srv, 18)
        # Power loss: silence until the keepalive window lapses; power back: registered and online again.
        assert await sim.command(f"power-off {nvr}") == "ok: power-off 1 device"
        await srv.wait_for(lambda d: d[nvr]["status"] == "offline" and d[other]["status"] == "online", 20, "offline")
        assert await sim.command("power-on #0") == "ok: power-on 1 device"
        await srv.wait_for(lambda d: d[nvr]["status"] == "online", 20, "back online")
        # NAT move: the same device from a new source port.
        before = (await srv.devices())[other]["address"]
        assert await sim.command(f"nat-move {other}") == "ok: nat-move 1 device"
        await srv.wait_for(lambda d: d[other]["address"] != before and d[other]["status"] == "online", 20, "moved")
        # Video loss shows in the next catalog answer (the platform does not subscribe yet).
        cam = "34020000001310001003"  # the NVR #1's third camera
        assert await sim.command(f"vlost {cam}") == f"ok: {cam} video lost"
        result = await srv.cli("catalog", "sync", other, "--wait")
        assert isinstance(result, dict) and result["state"] == "complete"
        status = {r["id"]: r["status"] for r in await channels(srv, other)}
        assert status[cam] == "offline" and list(status.values()).count("online") == 5
        # An alarm is a MESSAGE the platform takes (counted by CmdType).
        assert await sim.command(f"alarm {third}") == "ok: alarm 1 device"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            stats = await srv.cli("stats")
            if isinstance(stats, dict) and stats["counters"].get("message:Alarm"):
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"no alarm counted: {stats}")
        # The platform forgets a device: its next keepalive gets 403 and it registers again.
        args = ("device", "remove", third, "--admin", srv.admin, "--db", str(srv.db))
        rc, _, err = await run_tool(PYTHON, "-m", "cli", *args, timeout=30)
        assert rc == 0, err
        await srv.wait_for(lambda d: third in d and d[third]["status"] == "online", 20, "re-registered")
        assert (await sim.command("bogus")).startswith("error: unknown command 'bogus'")
        assert (await sim.command("power-off #99")).startswith("error: no device #99")
        summary = await sim.quit()
    finally:
        await sim.kill()
        await srv.stop()
    assert summary["stats"]["nat-moves"] == 1 and summary["stats"]["alarms"] == 1
    assert summary["stats"]["keepalive-refused"] >= 1


async def test_tcp_for_every_device_and_a_wrong_password(tmp_path: Path) -> None:
    srv = Server(tmp_path, sip_extra=f'password = "{PASSWORD}"', catalog_extra="sync_on_register = true")
    await srv.start()
    good = Sim(srv, tmp_path, "--devices", "6", "--profile", "mixed", "--transport", "tcp")
    bad = Sim(srv, tmp_path, "--devices", "1", "--profile", "tianwang-ipc", "--id-prefix", "3402000099")
    bad.args = (*bad.args, "--password", "wrong")
    try:
        await good.start()
        await bad.start()
        devices = await srv.wait_for(
            lambda d: len([r for r in d.values() if r["status"] == "online"]) == 6, 30, "6 TCP devices online"
        )
        assert all(r["transport"] == "TCP" for r in devices.values() if r["status"] == "online")
        await wait_channels(srv, sum(len(inv.channels) for inv in expected_population(6)))
        summary = await good.quit()
        refused = await bad.quit()
    finally:
        await good.kill()
        await bad.kill()
        await srv.stop()
    assert {r["transport"] for r in summary["device_list"]} == {"TCP"}
    assert refused["registered"] == 0 and refused["device_list"][0]["state"] == "backoff"
    assert refused["stats"]["register-403"] >= 1  # the platform answers a wrong password 403


class RawSubscriber(asyncio.DatagramProtocol):
    """A subscriber on a raw UDP socket, written here from RFC 3261/6665 without our SIP stack: it sends requests
    as text and answers every request it receives with 200 (Via, From, To, Call-ID, CSeq copied)."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.responses: asyncio.Queue[str] = asyncio.Queue()
        self.requests: asyncio.Queue[str] = asyncio.Queue()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        text = data.decode("utf-8", "replace")
        if text.startswith("SIP/2.0 "):
            self.responses.put_nowait(text)
            return
        self.requests.put_nowait(text)
        head = text.split("\r\n\r\n", 1)[0].split("\r\n")
        copied = [h for h in head[1:] if h.split(":", 1)[0].lower() in ("via", "from", "to", "call-id", "cseq")]
        answer = "SIP/2.0 200 OK\r\n" + "\r\n".join(copied) + "\r\nContent-Length: 0\r\n\r\n"
        assert self.transport is not None
        self.transport.sendto(answer.encode(), addr)

    def send(self, method: str, target: tuple[str, int], user: str, headers: str, body: str = "") -> None:
        data = body.encode()
        text = (
            f"{method} sip:{user}@{target[0]}:{target[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch=z9hG4bK{time.monotonic_ns()}\r\n"
            f"{headers}Contact: <sip:{SERVER_ID}@127.0.0.1:{self.port}>\r\nMax-Forwards: 70\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        assert self.transport is not None
        self.transport.sendto(text.encode() + data, target)


def _header(message: str, name: str) -> str:
    for line in message.split("\r\n\r\n", 1)[0].split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return ""


async def test_a_raw_subscriber_gets_notifies_and_an_invite_without_media_is_refused(tmp_path: Path) -> None:
    srv = Server(tmp_path, sip_extra=f'password = "{PASSWORD}"')
    await srv.start()
    sim = Sim(srv, tmp_path, "--devices", "1", "--profile", "xueliang-village-nvr")
    loop = asyncio.get_running_loop()
    transport, sub = await loop.create_datagram_endpoint(RawSubscriber, local_addr=("127.0.0.1", 0))
    nvr, cam = "34020000001180000001", "34020000001310000002"
    try:
        await sim.start()
        devices = await srv.wait_for(lambda d: d.get(nvr, {}).get("status") == "online", 20, "the NVR online")
        host, _, port = devices[nvr]["address"].rpartition(":")
        target = (host, int(port))
        body = (
            '<?xml version="1.0" encoding="GB2312"?>\r\n'
            f"<Query><CmdType>Catalog</CmdType><SN>9</SN><DeviceID>{nvr}</DeviceID></Query>"
        )
        common = f"From: <sip:{SERVER_ID}@3402000000>;tag=sub1\r\nCall-ID: raw-sub-1\r\n"
        sub.send("SUBSCRIBE", target, nvr, f"{common}To: <sip:{nvr}@3402000000>\r\nCSeq: 1 SUBSCRIBE\r\n"
                 "Event: Catalog;id=1\r\nExpires: 60\r\nContent-Type: Application/MANSCDP+xml\r\n", body)  # fmt: skip
        ok = await asyncio.wait_for(sub.responses.get(), 10)
        assert ok.startswith("SIP/2.0 200") and _header(ok, "Expires") == "60"
        to = _header(ok, "To")
        assert ";tag=" in to
        assert await sim.command(f"vlost {cam}") == f"ok: {cam} video lost"
        notify = await asyncio.wait_for(sub.requests.get(), 10)
        assert notify.startswith("NOTIFY ") and _header(notify, "Event") == "Catalog;id=1"
        assert _header(notify, "Subscription-State").startswith("active;expires=")
        assert _header(notify, "Call-ID") == "raw-sub-1"
        assert f"<DeviceID>{cam}</DeviceID>" in notify and "<Event>VLOST</Event>" in notify
        # Unsubscribe in the dialog: 200, then a NOTIFY saying terminated.
        sub.send("SUBSCRIBE", target, nvr, f"{common}To: {to}\r\nCSeq: 2 SUBSCRIBE\r\nEvent: Catalog;id=1\r\n"
                 "Expires: 0\r\n")  # fmt: skip
        assert (await asyncio.wait_for(sub.responses.get(), 10)).startswith("SIP/2.0 200")
        last = await asyncio.wait_for(sub.requests.get(), 10)
        assert _header(last, "Subscription-State").startswith("terminated")
        # An INVITE whose SDP has no m= line: a clear 400 (streaming itself: test_simulator_media_e2e.py).
        sub.send("INVITE", target, cam, f"From: <sip:{SERVER_ID}@3402000000>;tag=inv1\r\nTo: <sip:{cam}@3402000000>\r\n"
                 "Call-ID: raw-inv-1\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n", "v=0\r\n")  # fmt: skip
        for _ in range(5):  # a 100 Trying may come first
            answer = await asyncio.wait_for(sub.responses.get(), 10)
            if not answer.startswith("SIP/2.0 100"):
                break
        assert answer.startswith("SIP/2.0 400") and "bad SDP" in answer
        await sim.quit()
    finally:
        transport.close()
        await sim.kill()
        await srv.stop()
