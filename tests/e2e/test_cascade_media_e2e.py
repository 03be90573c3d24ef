"""A superior's INVITE routed down (issue 7) end to end over real sockets: `gb28181 serve` with `gb28181 simulate`
below it and the raw-socket superior (tests/e2e/raw_superior.py: SIP as text, its own RTP receiver reading SSRCs and
PS bytes) above it. Relay: RTP reaches the superior with the SSRC it offered, over UDP and over TCP; a second
INVITE for the channel joins the flowing stream (no second device INVITE); an INVITE with the same Subject replaces
the old send (App. K); BYE tears every leg down; CANCEL before the 200 gets 487; unknown 404, silent device 408,
offline device 480. Direct: the device streams straight to the superior. With a raw-socket camera below: CANCEL
reaches the device, and the device's BYE goes up (relay and direct). And the issue's chain: village -> town ->
county (three `serve` processes) with the raw "province" above the county."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gb28181.simulator.inventory import build
from gb28181.simulator.profile import load_profile
from tests.e2e.conftest import free_port
from tests.e2e.raw_media_device import Behaviour, MediaDevice
from tests.e2e.raw_superior import RawSuperior, RtpSink, offer
from tests.e2e.serve_helpers import Server
from tests.e2e.test_catalog_e2e import NVR, packet
from tests.e2e.test_simulator_e2e import PASSWORD, Sim

pytestmark = pytest.mark.e2e

OUR = "34020000002000000001"
UP = "44000000002000000001"
UP_PASSWORD = "up-secret"
PROFILE = "tianwang-nvr"
WAIT = 30.0  # bounds for a loaded machine, never speed assertions


def media(invite_timeout: float = 3, no_media: float = 3) -> str:
    base = free_port()
    return (f'[media]\nrtp_ports = "{base}-{min(base + 40, 65535)}"\nbind = "127.0.0.1"\nadvertise = "127.0.0.1"\n'
            f"invite_timeout = {invite_timeout}\nno_media_timeout = {no_media}\n")  # fmt: skip


def upstream(up_id: str, port: int, password: str, **extra: object) -> str:
    lines = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in extra.items())
    return (f'[[upstream]]\nid = "{up_id}"\nhost = "127.0.0.1"\nport = {port}\npassword = "{password}"\n'
            f"keepalive_interval = 1\n{lines}")  # fmt: skip


def sim_channel(domain: str = "3402000000") -> tuple[str, str]:
    inv = build(load_profile(PROFILE), 0, domain)  # what `simulate --devices 1` builds
    return inv.device_id, inv.videos[0].id


async def until(predicate: Any, what: str, *servers: Server, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            logs = "\n".join(s.log() for s in servers)
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        await asyncio.sleep(0.1)


async def has_channel(srv: Server, channel: str) -> bool:
    rows = await srv.cli("channels")
    return any(r["id"] == channel and r["status"] == "online" for r in rows)  # type: ignore[union-attr]


def sdp_value(body: bytes, key: str) -> str:
    m = re.search(rf"^{key}=(.*)$", body.decode(), re.M)
    assert m is not None, body
    return m.group(1).strip()


async def platform_with_device(tmp: Path, sup: RawSuperior, **up: object) -> tuple[Server, Sim, str, str]:
    srv = Server(tmp, sip_extra=f'password = "{PASSWORD}"\nt1 = 0.1', catalog_extra="sync_on_register = true",
                 extra=media() + "[keepalive]\ninterval = 1\nmax_missed = 2\n" +
                 upstream(UP, sup.port, UP_PASSWORD, share="all", **up))  # fmt: skip
    await srv.start()
    sim = Sim(srv, tmp, "--devices", "1", "--profile", PROFILE, "--keepalive", "0.5")
    await sim.start()
    device_id, channel = sim_channel()
    await until(lambda: has_channel(srv, channel), "the simulated NVR's catalog", srv)
    await until(lambda: sup.known and sup.lower is not None, "our REGISTER at the superior", srv)
    return srv, sim, device_id, channel


async def counters(srv: Server) -> dict[str, int]:
    stats = await srv.cli("stats")
    return stats["counters"]  # type: ignore[index,return-value]


async def test_relay_shares_one_device_stream_and_bye_cancel_and_errors(tmp_path: Path) -> None:
    sup = await RawSuperior.start(UP, UP_PASSWORD)
    srv, sim, device_id, channel = await platform_with_device(tmp_path, sup)
    sinks: list[RtpSink] = []
    try:
        assert sup.lower is not None
        lower = sup.lower
        # 1. live over UDP: 100 at once, 200 after the device's, our y= echoed, RTP with it at our receiver
        udp = await RtpSink.start_udp()
        sinks.append(udp)
        first = sup.invite(lower, OUR, channel, offer("Play", udp.port, "0440000001"))
        status, fields, body = await sup.final(first)
        assert status == 200, srv.log()
        assert first.provisional[:1] == [100] and sdp_value(body, "y") == "0440000001"
        assert "a=sendonly" in body.decode() and sdp_value(body, "s") == "Play"
        assert sdp_value(body, "o").startswith(channel) and fields["contact"].startswith(f"<sip:{OUR}@")
        sup.ack(first)
        await until(lambda: udp.packets >= 50, "RTP at the superior over UDP", srv)
        assert set(udp.ssrcs) == {440000001} and udp.pack_headers > 0 and udp.ps_bytes > 10_000

        # 2. a second INVITE (another window: receiver seq 1) over TCP, the superior listening: the flowing stream is
        # joined, no second device INVITE; its own SSRC
        tcp = await RtpSink.start_tcp_listen()
        sinks.append(tcp)
        second = sup.invite(lower, OUR, channel, offer("Play", tcp.port, "0440000002", transport="tcp-passive"),
                            subject_seq="1")  # fmt: skip
        status, _, body = await sup.final(second)
        assert status == 200 and "a=setup:active" in body.decode() and "TCP/RTP/AVP" in body.decode()
        sup.ack(second)
        await until(lambda: tcp.packets >= 50, "RTP at the superior over TCP", srv)
        assert set(tcp.ssrcs) == {440000002} and tcp.pack_headers > 0
        c = await counters(srv)
        assert c["media:invite:play"] == 1 and c["media:shared"] == 1 and c["cascade:answered"] == 2
        (session,) = await srv.cli("sessions")  # type: ignore[misc]
        assert sorted(session["consumer_names"].values()) == [f"upstream {UP}"] * 2
        assert session["channel"] == channel and session["device_id"] == device_id
        (up,) = await srv.cli("upstream", "status", UP)  # type: ignore[misc]
        legs = {leg["call_id"]: leg for leg in up["media_legs"]}
        assert legs.keys() == {first.call_id, second.call_id}
        assert {leg["state"] for leg in legs.values()} == {"confirmed"} and legs[second.call_id]["ssrc"] == "0440000002"
        assert legs[second.call_id]["transport"] == "tcp-active" and legs[first.call_id]["session"] == session["id"]

        # 3. BYE of the first leaves the stream to the second; BYE of the last ends the device stream
        assert (await sup.request(first, "BYE"))[0] == 200
        before = tcp.packets
        await until(lambda: tcp.packets > before + 25, "the second leg still fed", srv)
        (session,) = await srv.cli("sessions")  # type: ignore[misc]
        assert len(session["consumers"]) == 1
        assert (await sup.request(second, "BYE"))[0] == 200
        await until(lambda: _empty(srv), "no session left (the device got BYE)", srv)

        # 4. App. K: an INVITE with the same Subject sender and receiver replaces the old send, which gets BYE
        old = sup.invite(lower, OUR, channel, offer("Play", udp.port, "0440000003"))
        assert (await sup.final(old))[0] == 200
        sup.ack(old)
        new = sup.invite(lower, OUR, channel, offer("Play", udp.port, "0440000004"))
        assert (await sup.final(new))[0] == 200
        sup.ack(new)
        await until(lambda: old.call_id in sup.byes, "BYE for the replaced send", srv)
        assert new.call_id not in sup.byes
        (session,) = await srv.cli("sessions")  # type: ignore[misc]
        assert len(session["consumers"]) == 1
        assert (await sup.request(new, "BYE"))[0] == 200
        await until(lambda: _empty(srv), "no session left after App. K", srv)

        # 5. unknown channel 404 (not shared: nothing of ours is called that); bad SDP 488
        unknown = sup.invite(lower, OUR, "44000000001310009999", offer("Play", udp.port, "0440000005"))
        assert (await sup.final(unknown))[0] == 404
        bad = sup.invite(lower, OUR, channel, offer("Play", udp.port, "0440000006").replace("s=Play", "s=Talk"))
        assert (await sup.final(bad))[0] == 488

        # 6. the device goes silent: CANCEL before the 200 gets 487 (and CANCEL goes down); no CANCEL: 408
        assert (await sim.command(f"power-off {device_id}")).startswith("ok")
        cancelled = sup.invite(lower, OUR, channel, offer("Play", udp.port, "0440000007"))
        await until(lambda: cancelled.provisional or not cancelled.responses.empty(), "100 Trying", srv)
        await asyncio.sleep(0.3)  # the INVITE is on its way down
        sup.cancel(cancelled)
        assert (await sup.final(cancelled))[0] == 487
        timed_out = sup.invite(lower, OUR, channel, offer("Play", udp.port, "0440000008"))
        assert (await sup.final(timed_out))[0] == 408
        # 7. the device is offline now (no keepalive for interval x max_missed): 480
        await until(lambda: _offline(srv, device_id), "the device offline", srv)
        offline = sup.invite(lower, OUR, channel, offer("Play", udp.port, "0440000009"))
        assert (await sup.final(offline))[0] == 480
        await until(lambda: _empty(srv), "no session left after the failures", srv)
        c = await counters(srv)
        assert c["cascade:cancelled"] == 1 and c["cascade:rejected:408"] == 1 and c["cascade:rejected:480"] == 1
        assert c["cascade:refused:488"] == 1 and c["cascade:rejected:404"] == 1
        summary = await sim.quit()
        stats = summary["stats"]
        assert stats["in:INVITE"] == 2 and stats["in:BYE"] == 2, stats  # one per device stream, each ended by BYE
    finally:
        for sink in sinks:
            sink.close()
        await sim.kill()
        rc = await srv.stop()
        sup.close()
    assert rc == 0


async def _empty(srv: Server) -> bool:
    return await srv.cli("sessions") == []


async def _offline(srv: Server, device_id: str) -> bool:
    return (await srv.devices()).get(device_id, {}).get("status") == "offline"


async def test_history_info_and_media_status_in_relay_then_direct(tmp_path: Path) -> None:
    """Relay: a playback's INFO (MANSRTSP) reaches the device's dialog and its answer comes back; a download at
    speed 4 ends with MediaStatus 121, relayed up in the superior's dialog, then BYE up."""
    sup = await RawSuperior.start(UP, UP_PASSWORD)
    srv, sim, _, channel = await platform_with_device(tmp_path, sup)
    sink = await RtpSink.start_udp()
    try:
        assert sup.lower is not None
        now = int(time.time())
        playback = sup.invite(sup.lower, OUR, channel, offer("Playback", sink.port, "1440000001", start=now - 3600,
                                                              end=now - 1800, channel=channel))  # fmt: skip
        status, _, body = await sup.final(playback)
        assert status == 200 and sdp_value(body, "s") == "Playback" and sdp_value(body, "y") == "1440000001"
        sup.ack(playback)
        await until(lambda: sink.packets >= 10, "playback RTP at the superior", srv)
        pause = b"PAUSE RTSP/1.0\r\nCSeq: 1\r\nPauseTime: now\r\n\r\n"
        assert (await sup.request(playback, "INFO", pause, "Application/MANSRTSP"))[0] == 200
        resume = b"PLAY RTSP/1.0\r\nCSeq: 2\r\nRange: npt=now-\r\n\r\n"
        assert (await sup.request(playback, "INFO", resume, "Application/MANSRTSP"))[0] == 200
        assert (await sup.request(playback, "BYE"))[0] == 200
        await until(lambda: _empty(srv), "the playback session ended", srv)

        download = sup.invite(sup.lower, OUR, channel, offer("Download", sink.port, "1440000002", start=now - 3600,
                                                              end=now - 3590, channel=channel, speed=4))  # fmt: skip
        assert (await sup.final(download))[0] == 200
        sup.ack(download)
        call_id, status_body = await asyncio.wait_for(sup.dialog_messages.get(), WAIT)
        assert call_id == download.call_id and b"<NotifyType>121</NotifyType>" in status_body
        assert f"<DeviceID>{channel}</DeviceID>".encode() in status_body
        await until(lambda: download.call_id in sup.byes, "BYE up after the download's end", srv)
        await until(lambda: _empty(srv), "the download session ended", srv)
        c = await counters(srv)
        assert c["cascade:info"] == 2 and c["cascade:media-status-up"] == 1
        stats = (await sim.quit())["stats"]
        assert stats["mansrtsp:pause"] == 1 and stats["mansrtsp:play"] == 1, stats
    finally:
        sink.close()
        await sim.kill()
        rc = await srv.stop()
        sup.close()
    assert rc == 0


async def test_direct_mode_the_device_streams_to_the_superior(tmp_path: Path) -> None:
    """Direct: the device is INVITEd with the superior's address; the device's 200 goes up (its y= wins); RTP
    goes straight from the device to the superior's receiver; BYE goes down; a second INVITE costs a second
    device stream; a download's MediaStatus 121 goes up in the superior's dialog."""
    sup = await RawSuperior.start(UP, UP_PASSWORD)
    srv, sim, _, channel = await platform_with_device(tmp_path, sup, media="direct")
    sinks = [await RtpSink.start_udp(), await RtpSink.start_tcp_listen()]
    try:
        assert sup.lower is not None
        udp, tcp = sinks
        first = sup.invite(sup.lower, OUR, channel, offer("Play", udp.port, "0440000011"))
        status, _, body = await sup.final(first)
        assert status == 200 and first.provisional[:1] == [100]
        ssrc = int(sdp_value(body, "y"))
        assert sdp_value(body, "o").split()[0] == channel
        sup.ack(first)
        await until(lambda: udp.packets >= 50, "RTP from the device at the superior", srv)
        assert set(udp.ssrcs) == {ssrc} and udp.pack_headers > 0
        second = sup.invite(sup.lower, OUR, channel, offer("Play", tcp.port, "0440000012", transport="tcp-passive"),
                            subject_seq="1")  # fmt: skip
        status, _, body = await sup.final(second)
        assert status == 200 and "TCP/RTP/AVP" in body.decode()
        sup.ack(second)
        await until(lambda: tcp.packets >= 50, "RTP over TCP from the device at the superior", srv)
        assert await srv.cli("sessions") == []  # nothing passes through us
        assert (await sup.request(first, "BYE"))[0] == 200
        assert (await sup.request(second, "BYE"))[0] == 200
        now = int(time.time())
        download = sup.invite(sup.lower, OUR, channel, offer("Download", udp.port, "1440000013", start=now - 3600,
                                                              end=now - 3590, channel=channel, speed=4))  # fmt: skip
        assert (await sup.final(download))[0] == 200
        sup.ack(download)
        call_id, status_body = await asyncio.wait_for(sup.dialog_messages.get(), WAIT)
        assert call_id == download.call_id and b"<NotifyType>121</NotifyType>" in status_body
        assert (await sup.request(download, "BYE"))[0] == 200  # the superior ends it, as §9.9 says
        unknown = sup.invite(sup.lower, OUR, "44000000001310009999", offer("Play", udp.port, "0440000014"))
        assert (await sup.final(unknown))[0] == 404
        await asyncio.sleep(0.5)
        stats = (await sim.quit())["stats"]
        assert stats["in:INVITE"] == 3 and stats["in:BYE"] == 3, stats  # a device stream per INVITE, each ended
        c = await counters(srv)
        assert c["cascade:answered"] == 3 and c.get("media:invite:play", 0) == 0
    finally:
        for sink in sinks:
            sink.close()
        await sim.kill()
        rc = await srv.stop()
        sup.close()
    assert rc == 0


VILLAGE, TOWN, COUNTY, PROVINCE = OUR, "34021000002000000001", "34100000002000000001", "34000000002000000001"
AS_ID = "34000000001310000042"  # the county's ID for the village channel, as the province knows it


NAME = "village gate"


@dataclass
class Chain:
    province: RawSuperior
    servers: list[Server]  # county, town, village
    sim: Sim
    device_id: str
    channel: str

    summary: dict[str, Any] | None = None

    def logs(self) -> str:
        return "\n".join(s.log() for s in self.servers)

    async def quit(self) -> dict[str, Any]:
        """Stop the simulator (once) and return its summary."""
        if self.summary is None:
            self.summary = await self.sim.quit()
        return self.summary


@asynccontextmanager
async def chain(tmp_path: Path, town_mode: str = "relay") -> AsyncIterator[Chain]:
    """village -> town -> county -> province, the village NVR's channel synced up to the county and shared with the
    province as AS_ID / NAME; the town's media mode toward the county is ``town_mode``; every process stopped
    (exit 0) afterwards."""
    province = await RawSuperior.start(PROVINCE, "province-pw")
    dirs = {name: tmp_path / name for name in ("county", "town", "village")}
    for d in dirs.values():
        d.mkdir()
    sync = "sync_on_register = false"
    county = Server(dirs["county"], sip_extra=f'id = "{COUNTY}"\npassword = "county-pw"\nt1 = 0.1',
                    catalog_extra=sync, extra=media() + upstream(PROVINCE, province.port, "province-pw",
                                                                 share="all"))  # fmt: skip
    servers = [county]
    sim: Sim | None = None
    try:
        await county.start()
        town = Server(dirs["town"], sip_extra=f'id = "{TOWN}"\npassword = "town-pw"\nt1 = 0.1', catalog_extra=sync,
                      extra=media() + upstream(COUNTY, county.sip_port, "county-pw", share="all",
                                               media=town_mode))  # fmt: skip
        servers.append(town)
        await town.start()
        village = Server(dirs["village"], sip_extra=f'password = "{PASSWORD}"\nt1 = 0.1',
                         catalog_extra="sync_on_register = true",
                         extra=media() + "[keepalive]\ninterval = 1\nmax_missed = 2\n" +
                         upstream(TOWN, town.sip_port, "town-pw", share="all"))  # fmt: skip
        servers.append(village)
        await village.start()
        sim = Sim(village, dirs["village"], "--devices", "1", "--profile", PROFILE, "--keepalive", "0.5")
        await sim.start()
        device_id, channel = sim_channel()
        await until(lambda: has_channel(village, channel), "the NVR's catalog at the village", *servers)
        await until(lambda: _online(town, VILLAGE), "the village registered at the town", *servers)
        assert (await town.cli("catalog", "sync", VILLAGE, "--wait"))["state"] == "complete"  # type: ignore[index]
        await until(lambda: has_channel(town, channel), "the channel at the town", *servers)
        await until(lambda: _online(county, TOWN), "the town registered at the county", *servers)
        assert (await county.cli("catalog", "sync", TOWN, "--wait"))["state"] == "complete"  # type: ignore[index]
        await until(lambda: has_channel(county, channel), "the channel at the county", *servers)
        await county.cli("share", "add", PROVINCE, channel, "--as", AS_ID, "--name", NAME)
        await until(lambda: province.lower is not None, "the county registered at the province", *servers)
        c = Chain(province, servers, sim, device_id, channel)
        yield c
        await c.quit()
    finally:
        if sim is not None:
            await sim.kill()
        codes = [await srv.stop() if srv.proc else 0 for srv in reversed(servers)]
        province.close()
    assert codes == [0] * len(servers)


@pytest.mark.parametrize("town_mode", ["relay", "direct"])
async def test_village_town_county_chain_streams_to_the_province(tmp_path: Path, town_mode: str) -> None:
    """The issue's done-means: three of our processes, a simulated NVR at the village, the raw province above the
    county. The province INVITEs the village channel by the county's shared ID; the 200's SDP leads to RTP at the
    province's receiver with its SSRC; BYE from the province tears down every leg down to the device. With
    ``town_mode = "direct"`` the town hands the county's receive address down (the village sends there)."""
    sink = await RtpSink.start_udp()
    try:
        async with chain(tmp_path, town_mode) as c:
            province, servers = c.province, c.servers
            county, town, village = servers
            assert province.lower is not None
            call = province.invite(province.lower, COUNTY, AS_ID, offer("Play", sink.port, "0000000777",
                                                                         own_id=PROVINCE))  # fmt: skip
            status, _, body = await province.final(call, timeout=WAIT)
            assert status == 200, c.logs()
            assert call.provisional[:1] == [100] and sdp_value(body, "y") == "0000000777"
            assert sdp_value(body, "o").split()[0] == AS_ID  # the county answers for the ID the province knows
            province.ack(call)
            await until(lambda: sink.packets >= 50, "RTP at the province", *servers)
            assert set(sink.ssrcs) == {777} and sink.pack_headers > 0 and sink.ps_bytes > 10_000
            (row,) = await county.cli("sessions")  # type: ignore[misc]
            assert row["device_id"] == TOWN and row["consumer_names"] == {row["consumers"][0]: f"upstream {PROVINCE}"}
            (row,) = await village.cli("sessions")  # type: ignore[misc]
            assert row["device_id"] == c.device_id and list(row["consumer_names"].values()) == [f"upstream {TOWN}"]
            assert len(await town.cli("sessions")) == (1 if town_mode == "relay" else 0)  # type: ignore[arg-type]

            assert (await province.request(call, "BYE"))[0] == 200
            for srv in servers:
                await until(lambda srv=srv: _empty(srv), "every leg torn down", *servers)
            summary = await c.quit()
            assert summary["stats"]["in:INVITE"] == 1 and summary["stats"]["in:BYE"] == 1, summary["stats"]
            print(f"chain ({town_mode} at the town): {sink.packets} RTP packets, {sink.ps_bytes} PS bytes at the "
                  "province")
    finally:
        sink.close()


async def _online(srv: Server, device_id: str) -> bool:
    return (await srv.devices()).get(device_id, {}).get("status") == "online"


@pytest.mark.parametrize("mode", ["relay", "direct"])
async def test_cancel_goes_down_and_a_device_bye_goes_up(tmp_path: Path, mode: str) -> None:
    """A raw-socket camera (tests/e2e/raw_media_device.py) that answers 100 and then nothing: the superior's CANCEL
    gets 487 and a CANCEL reaches the device. Then one that ends the stream itself: its BYE goes up."""
    sup = await RawSuperior.start(UP, UP_PASSWORD)
    srv = Server(tmp_path, sip_extra='password = "12345678"\nt1 = 0.1',
                 extra=media(invite_timeout=10) + upstream(UP, sup.port, UP_PASSWORD, share="all", media=mode))
    await srv.start()
    dev_id, ch = "34020000001180000009", "34020000001310000009"
    device = await MediaDevice.start(dev_id, "12345678", ("127.0.0.1", srv.sip_port))
    sink = await RtpSink.start_udp()
    try:
        assert await device.register() == 200
        assert await device.message(packet(1, 1, [(ch, "门口")]).replace(NVR.encode(), dev_id.encode())) == 200
        await until(lambda: has_channel(srv, ch), "the camera's channel", srv)
        await until(lambda: sup.lower is not None, "our REGISTER at the superior", srv)
        assert sup.lower is not None
        device.behaviour = Behaviour(answer=False)
        call = sup.invite(sup.lower, OUR, ch, offer("Play", sink.port, "0440000021"))
        await until(lambda: len(device.invites) == 1, "the INVITE at the device", srv)
        sup.cancel(call)
        assert (await sup.final(call))[0] == 487
        await until(lambda: device.cancels == 1, "the CANCEL at the device", srv)
        await until(lambda: _empty(srv), "nothing left after the CANCEL", srv)

        device.behaviour = Behaviour(bye_after=1.0)
        call = sup.invite(sup.lower, OUR, ch, offer("Play", sink.port, "0440000022"))
        assert (await sup.final(call))[0] == 200
        sup.ack(call)
        await until(lambda: sink.packets >= 10, "RTP at the superior", srv)
        await until(lambda: call.call_id in sup.byes, "BYE up after the device's BYE", srv)
        await until(lambda: _empty(srv), "nothing left after the device's BYE", srv)
        (up,) = await srv.cli("upstream", "status", UP)  # type: ignore[misc]
        assert up["media_legs"] == []
        c = await counters(srv)
        assert c["cascade:cancelled"] == 1 and c["cascade:answered"] == 1
    finally:
        sink.close()
        device.close()
        rc = await srv.stop()
        sup.close()
    assert rc == 0
