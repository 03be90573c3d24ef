"""`gb28181 simulate` streaming media over real sockets to a "platform" written here: the raw-socket superior
(tests/e2e/raw_superior.py) takes the registration, a raw-socket caller below sends INVITE / ACK / INFO / BYE by
hand (RFC 3261 text, not our SIP stack) and takes the MediaStatus MESSAGE in the dialog, and the media layer's
embedded receiver (gb28181/media/receiver.py) takes the RTP into a file that our PS walker and, when installed,
ffprobe read as H.264 in MPEG-PS. Live over UDP, TCP passive (we listen) and TCP active (we connect); playback
paused, resumed and sped up; a download at downloadspeed 4; each history stream ends with MediaStatus 121; a
Broadcast answered with a Response and an audio INVITE back to the source, which takes G.711A until BYE; and
`gb28181 demo`."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import socket
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gb28181 import sdp
from gb28181.manscdp.codec import decode
from gb28181.manscdp.messages import BroadcastResponse, MediaStatusNotify
from gb28181.media import ps, rtp
from gb28181.media.backend import ReceiverSpec
from gb28181.media.receiver import EmbeddedBackend
from gb28181.simulator.inventory import build
from gb28181.simulator.profile import load_profile
from tests.e2e.conftest import PYTHON, REPO, free_port, run_tool
from tests.e2e.raw_device import _headers
from tests.e2e.raw_superior import RawSuperior
from tests.e2e.test_simulator_e2e import PASSWORD, SERVER_ID, Sim

pytestmark = pytest.mark.e2e


class RawCaller(asyncio.DatagramProtocol):
    """Sends INVITE and its in-dialog requests from its own UDP socket, and answers the device's in-dialog
    requests (the MediaStatus MESSAGE) 200, keeping their bodies in ``messages``."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.responses: asyncio.Queue[bytes] = asyncio.Queue()
        self.messages: asyncio.Queue[bytes] = asyncio.Queue()
        self.cseq = 1

    @classmethod
    async def start(cls) -> RawCaller:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.startswith(b"SIP/2.0 "):
            self.responses.put_nowait(data)
            return
        start, fields, body = _headers(data)
        status = 200 if start.startswith("MESSAGE ") else 405
        if status == 200:
            self.messages.put_nowait(body)
        answer = (
            f"SIP/2.0 {status} X\r\nVia: {fields['via']}\r\nFrom: {fields['from']}\r\nTo: {fields['to']}\r\n"
            f"Call-ID: {fields['call-id']}\r\nCSeq: {fields['cseq']}\r\nContent-Length: 0\r\n\r\n"
        )
        assert self.transport is not None
        self.transport.sendto(answer.encode(), addr)

    def send(self, method: str, to: tuple[str, int], channel: str, call_id: str, to_tag: str, body: bytes = b"",
             content_type: str = "", extra: str = "", cseq: int | None = None) -> None:
        assert self.transport is not None
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        head = (
            f"{method} sip:{channel}@{to[0]}:{to[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch=z9hG4bK{secrets.token_hex(6)}\r\n"
            f"From: <sip:{SERVER_ID}@3402000000>;tag=caller1\r\n"
            f"To: <sip:{channel}@3402000000>{';tag=' + to_tag if to_tag else ''}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n"
            f"Contact: <sip:{SERVER_ID}@127.0.0.1:{self.port}>\r\n{extra}"
            f"{'Content-Type: ' + content_type + chr(13) + chr(10) if content_type else ''}"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.transport.sendto(head.encode() + body, to)

    async def final(self, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        """The next final response (1xx skipped)."""
        deadline = time.monotonic() + timeout
        for _ in range(100):
            data = await asyncio.wait_for(self.responses.get(), max(0.1, deadline - time.monotonic()))
            start, fields, body = _headers(data)
            status = int(start.split(" ")[1])
            if status >= 200:
                return status, fields, body
        raise AssertionError("no final response")


class Call:
    """One INVITE dialog with its receiver."""

    def __init__(self, caller: RawCaller, device: tuple[str, int], channel: str, backend: EmbeddedBackend) -> None:
        self.caller, self.device, self.channel, self.backend = caller, device, channel, backend
        self.call_id = f"media-{secrets.token_hex(6)}"
        self.to_tag = ""
        self.handle = ""
        self.answer: sdp.SessionDescription | None = None

    async def invite(self, kind: str, transport: str, output: Path, seconds: int = 0, speed: int = 1) -> None:
        ssrc = "1200000042" if kind != sdp.PLAY else "0200000042"
        port, self.handle = await self.backend.open_receiver(
            ReceiverSpec(transport=transport, ssrc=int(ssrc), output=str(output), label=kind))
        start = int(time.time()) - 3600
        offer = sdp.build_offer(sdp.Offer(
            own_id=SERVER_ID, address="127.0.0.1", port=port, ssrc=ssrc, kind=kind, transport=transport,
            channel_id=self.channel if kind != sdp.PLAY else "", start=start if kind != sdp.PLAY else 0,
            stop=start + seconds if kind != sdp.PLAY else 0, download_speed=speed,
        ))  # fmt: skip
        subject = f"Subject: {self.channel}:{ssrc},{SERVER_ID}:0\r\n"
        self.caller.send("INVITE", self.device, self.channel, self.call_id, "", offer.to_bytes(), "APPLICATION/SDP",
                         subject, cseq=1)  # fmt: skip
        status, fields, body = await self.caller.final()
        assert status == 200, (status, fields)
        self.to_tag = fields["to"].split("tag=")[1].split(";")[0]
        self.answer = sdp.parse(body)
        view = sdp.read_answer(offer, self.answer, transport, "127.0.0.1")
        self.backend.expect_ssrc(self.handle, view.ssrc)
        self.caller.send("ACK", self.device, self.channel, self.call_id, self.to_tag, cseq=1)
        if transport == sdp.TCP_ACTIVE:
            assert view.connect_to is not None
            await self.backend.connect(self.handle, *view.connect_to)

    async def info(self, body: str) -> int:
        self.caller.send("INFO", self.device, self.channel, self.call_id, self.to_tag, body.encode(),
                         "Application/MANSRTSP")  # fmt: skip
        status, _, _ = await self.caller.final()
        return status

    async def bye(self) -> int:
        self.caller.send("BYE", self.device, self.channel, self.call_id, self.to_tag)
        status, _, _ = await self.caller.final()
        return status

    async def packets_at_least(self, n: int, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        for _ in range(10_000):
            got = self.backend.stats(self.handle).packets
            if got >= n or time.monotonic() > deadline:
                return got
            await asyncio.sleep(0.05)
        return self.backend.stats(self.handle).packets


async def _setup(tmp: Path, profile: str = "tianwang-nvr") -> tuple[RawSuperior, Sim, RawCaller, tuple[str, int]]:
    sup = await RawSuperior.start(SERVER_ID, PASSWORD)
    sim = Sim(SimpleNamespace(sip_port=sup.port), tmp, "--devices", "1", "--profile", profile)  # type: ignore[arg-type]
    await sim.start()
    await sup.wait_for(lambda: sup.known and sup.lower is not None, 20, "the simulated device registered")
    caller = await RawCaller.start()
    assert sup.lower is not None
    return sup, sim, caller, sup.lower


def _channel(sup: RawSuperior, profile: str = "tianwang-nvr") -> str:
    inv = build(load_profile(profile), 0, "3402000000")  # what `simulate --devices 1` builds
    assert sup.known == {inv.device_id}
    return inv.videos[0].id


async def _ffprobe(path: Path) -> dict[str, Any] | None:
    if shutil.which("ffprobe") is None:
        return None
    rc, out, err = await run_tool("ffprobe", "-v", "error", "-show_entries", "format=format_name:stream=codec_name",
                                  "-of", "json", str(path), timeout=60)  # fmt: skip
    assert rc == 0, err
    return json.loads(out)


async def _check_file(path: Path, min_frames: int) -> ps.PsReport:
    report = ps.walk(path.read_bytes())
    assert report.video_frames >= min_frames, (report.video_frames, report.errors)
    assert report.stream_type_names().get(ps.VIDEO_ID) == "h264" and report.psms > 0
    probed = await _ffprobe(path)
    if probed is not None:
        assert "mpeg" in probed["format"]["format_name"]
        assert [s["codec_name"] for s in probed["streams"]] == ["h264"]
    return report


@pytest.mark.parametrize("transport", [sdp.UDP, sdp.TCP_PASSIVE, sdp.TCP_ACTIVE])
async def test_live_stream_over_each_transport(tmp_path: Path, transport: str) -> None:
    sup, sim, caller, device = await _setup(tmp_path)
    backend = EmbeddedBackend((free_port(socket.SOCK_STREAM),) * 2, host="127.0.0.1")
    out = tmp_path / f"live-{transport}.ps"
    try:
        call = Call(caller, device, _channel(sup), backend)
        await call.invite(sdp.PLAY, transport, out)
        assert call.answer is not None and call.answer.ssrc == "0200000042"
        video = call.answer.video
        assert video is not None and video.direction == "sendonly"
        if transport != sdp.UDP:
            assert video.is_tcp and video.setup == ("active" if transport == sdp.TCP_PASSIVE else "passive")
        # 5 s of a 4 s clip: the live stream loops it
        await call.packets_at_least(10_000, timeout=5.0)
        assert await call.bye() == 200
        stats = await backend.close(call.handle)
        assert stats.ssrc == 200000042 and stats.foreign == 0 and stats.malformed == 0
        report = await _check_file(out, 100)
        assert report.video_frames < 200  # paced at 25 fps, not as fast as the socket goes
        summary = await sim.quit()
        assert summary["stats"].get("invite:play") == 1
    finally:
        await backend.aclose()
        await sim.kill()
        caller.transport.close()  # type: ignore[union-attr]
        sup.close()


async def test_playback_pause_resume_scale_then_media_status_121(tmp_path: Path) -> None:
    sup, sim, caller, device = await _setup(tmp_path)
    backend = EmbeddedBackend((free_port(),) * 2, host="127.0.0.1")
    out = tmp_path / "playback.ps"
    try:
        call = Call(caller, device, _channel(sup), backend)
        await call.invite(sdp.PLAYBACK, sdp.UDP, out, seconds=6)
        await call.packets_at_least(20)
        assert await call.info("PAUSE RTSP/1.0\r\nCSeq: 1\r\nPauseTime: now\r\n") == 200
        await asyncio.sleep(0.3)  # packets already on their way arrive
        paused_at = backend.stats(call.handle).packets
        await asyncio.sleep(1.0)
        assert backend.stats(call.handle).packets == paused_at  # a paused device sends nothing
        assert caller.messages.empty()
        t0 = time.monotonic()
        assert await call.info("PLAY RTSP/1.0\r\nCSeq: 2\r\nRange: npt=now-\r\n") == 200
        assert await call.info("PLAY RTSP/1.0\r\nCSeq: 3\r\nScale: 4.0\r\n") == 200
        body = await asyncio.wait_for(caller.messages.get(), 20)
        elapsed = time.monotonic() - t0
        msg = decode(body).message
        assert isinstance(msg, MediaStatusNotify) and msg.notify_type == 121 and msg.device_id == call.channel
        assert await call.bye() == 200
        stats = await backend.close(call.handle)
        assert stats.packets > paused_at
        await _check_file(out, 150)  # all 6 s (150 frames) of the recording
        summary = await sim.quit()
        assert summary["stats"].get("mansrtsp:pause") == 1 and summary["stats"].get("media-status-sent") == 1
        print(f"playback: resumed x4 to the end in {elapsed:.2f} s")  # informational; pace is asserted in units
    finally:
        await backend.aclose()
        await sim.kill()
        caller.transport.close()  # type: ignore[union-attr]
        sup.close()


async def test_download_at_downloadspeed_over_tcp_ends_with_media_status_121(tmp_path: Path) -> None:
    sup, sim, caller, device = await _setup(tmp_path)
    backend = EmbeddedBackend((free_port(socket.SOCK_STREAM),) * 2, host="127.0.0.1")
    out = tmp_path / "download.ps"
    try:
        call = Call(caller, device, _channel(sup), backend)
        await call.invite(sdp.DOWNLOAD, sdp.TCP_PASSIVE, out, seconds=8, speed=4)
        body = await asyncio.wait_for(caller.messages.get(), 20)
        msg = decode(body).message
        assert isinstance(msg, MediaStatusNotify) and msg.notify_type == 121
        last = -1
        for _ in range(40):  # the tail may still be in flight (a loaded machine): wait until nothing more arrives
            packets = backend.stats(call.handle).packets
            if packets == last:
                break
            last = packets
            await asyncio.sleep(0.3)
        assert await call.bye() == 200
        await backend.close(call.handle)
        await _check_file(out, 200)  # the 8 s recording, whole
        summary = await sim.quit()
        assert summary["stats"].get("invite:download") == 1
    finally:
        await backend.aclose()
        await sim.kill()
        caller.transport.close()  # type: ignore[union-attr]
        sup.close()


async def test_demo_runs_the_county_and_says_plainly_whether_it_recorded(tmp_path: Path) -> None:
    """`gb28181 demo`: exit 0 with a recording ffprobe reads when this build has `gb28181 play`; otherwise exit 3
    and a plain NOT RECORDED line, after the devices and catalogs were checked all the same."""
    has_play, _, _ = await run_tool(PYTHON, "-m", "cli", "play", "--help", cwd=REPO, timeout=60)
    rc, out, err = await run_tool(PYTHON, "-m", "cli", "demo", "--dir", str(tmp_path), "--seconds", "3", cwd=REPO,
                                  timeout=240)  # fmt: skip
    assert "devices online: 6 of 6" in out, out + err
    assert "catalogs: 38 of 38 channels" in out
    assert "gb28181 devices --admin http://127.0.0.1:" in out
    if has_play == 0:
        assert rc == 0, out + err
        (recording,) = tmp_path.glob("*.ps")
        await _check_file(recording, 25)
    else:
        assert rc == 3, out + err
        assert "NOT RECORDED: this build has no `gb28181 play` command" in out
        assert not list(tmp_path.glob("*.ps"))


class TalkSuperior(RawSuperior):
    """The raw superior, also answering the device's talk INVITE 200 (sendonly PCMA, as wvp's sendOk does)."""

    def __init__(self, sip_id: str, password: str) -> None:
        super().__init__(sip_id, password)
        self.invites: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()
        self.acks = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.startswith(b"ACK "):
            self.acks += 1
            return
        if not data.startswith(b"INVITE "):
            super().datagram_received(data, addr)
            return
        _, fields, body = _headers(data)
        self.invites.put_nowait((fields, body))
        answer_sdp = (f"v=0\r\no={SERVER_ID} 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                      f"m=audio {self.port} RTP/AVP 8\r\na=sendonly\r\na=rtpmap:8 PCMA/8000\r\ny=0200000077\r\n"
                      "f=v/////a/1/8/1\r\n").encode()  # fmt: skip
        answer = (
            f"SIP/2.0 200 OK\r\nVia: {fields['via']}\r\nFrom: {fields['from']}\r\nTo: {fields['to']};tag=talk1\r\n"
            f"Call-ID: {fields['call-id']}\r\nCSeq: {fields['cseq']}\r\n"
            f"Contact: <sip:{SERVER_ID}@127.0.0.1:{self.port}>\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(answer_sdp)}\r\n\r\n"
        ).encode()
        assert self.transport is not None
        self.transport.sendto(answer + answer_sdp, addr)


async def test_broadcast_makes_the_device_invite_for_audio_and_take_it(tmp_path: Path) -> None:
    sup = await TalkSuperior.start(SERVER_ID, PASSWORD)
    sim = Sim(SimpleNamespace(sip_port=sup.port), tmp_path, "--devices", "1",  # type: ignore[arg-type]
              "--profile", "tianwang-nvr")  # fmt: skip
    audio = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        await sim.start()
        await sup.wait_for(lambda: sup.known and sup.lower is not None, 20, "the simulated device registered")
        assert sup.lower is not None
        (device_id,) = sup.known
        body = (f'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify><CmdType>Broadcast</CmdType><SN>31</SN>'
                f"<SourceID>{SERVER_ID}</SourceID><TargetID>{device_id}</TargetID></Notify>\r\n").encode()  # fmt: skip
        assert await sup.query(sup.lower, device_id, body) == 200
        response = decode(await asyncio.wait_for(sup.messages.get(), 10)).message
        assert isinstance(response, BroadcastResponse) and response.sn == 31 and response.result == "OK"
        fields, offer_body = await asyncio.wait_for(sup.invites.get(), 10)
        offer = sdp.parse(offer_body)
        media = offer.video
        assert media is not None and media.kind == "audio" and media.direction == "recvonly" and 8 in media.rtpmap
        assert fields["to"].startswith(f"<sip:{SERVER_ID}@") and fields["subject"].startswith(f"{SERVER_ID}:")
        await sup.wait_for(lambda: sup.acks >= 1, 10, "the ACK to our 200")
        for seq in range(50):  # one second of G.711A
            audio.sendto(rtp.build(8, seq, seq * 160, 200000077, b"\xd5" * 160), (offer.media_address, media.port))
        await asyncio.sleep(0.5)
        assert sup.transport is not None
        bye = (
            f"BYE sip:{device_id}@{sup.lower[0]}:{sup.lower[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{sup.port};rport;branch=z9hG4bK{secrets.token_hex(6)}\r\n"
            f"From: {fields['to']};tag=talk1\r\nTo: {fields['from']}\r\nCall-ID: {fields['call-id']}\r\n"
            f"CSeq: 1 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        sup.transport.sendto(bye.encode(), sup.lower)
        answer = await asyncio.wait_for(sup._responses.get(), 10)
        assert answer.startswith(b"SIP/2.0 200"), answer[:200]
        summary = await sim.quit()
        stats = summary["stats"]
        assert stats.get("broadcast") == 1 and stats.get("talk-established") == 1 and stats.get("talk-ended") == 1
        assert stats.get("talk-rtp-received", 0) >= 45  # loopback UDP; a handful lost on a loaded machine at most
    finally:
        audio.close()
        await sim.kill()
        sup.close()
