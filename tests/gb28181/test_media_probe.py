"""The conformance media probe without sockets: the stream scanner on PS muxed here (our muxer and packetizer, the
H.264 test clip; H.265 and SVAC stream types; a PSM split across RTP packets; download speed from the RTP clock),
the recording picked for playback, and the prober driving the media service (our sans-IO SIP endpoint, a fake
backend whose packets the test pushes): a live session observed and ended by BYE, a device that answers but sends
nothing gets an error that says it timed out and a BYE, and a probe cancelled mid-session still ends it."""

from __future__ import annotations

import asyncio
import zoneinfo
from pathlib import Path
from typing import Any

import pytest

from gb28181 import sdp
from gb28181.conformance.model import MediaObservations
from gb28181.media import h264, ps, rtp
from gb28181.media.packetizer import RtpPacketizer
from gb28181.media_probe import (
    MediaProber,
    ProbeSettings,
    StreamScanner,
    parse_gb_time,
    pick_range,
)
from tests.gb28181.test_media_service import DEVICE, FakeBackend, Harness

CLIP = Path(__file__).resolve().parents[2] / "fixtures" / "media" / "testsrc-320x240-25fps-4s.h264"
FRAMES = h264.access_units(CLIP.read_bytes())
TZ = zoneinfo.ZoneInfo("Asia/Shanghai")


def packets(frames: list[h264.AccessUnit], ssrc: int = 200000001, video: str = "h264",
            max_payload: int = 1400) -> list[list[rtp.RtpPacket]]:
    """Per frame, its RTP packets (one PS pack per frame, 25 fps timestamps)."""
    mux, pk = ps.PsMuxer(video), RtpPacketizer(ssrc, max_payload=max_payload)
    out = []
    for i, au in enumerate(frames):
        pts = 3600 * (i + 1)
        out.append([rtp.parse(p) for p in pk.packetize(mux.mux_video(au.data, pts, au.keyframe), pts)])
    return out


def feed(scanner: StreamScanner, frames: list[list[rtp.RtpPacket]], start: float = 0.0, step: float = 0.04) -> None:
    for i, frame in enumerate(frames):
        for p in frame:
            scanner.feed(p.ssrc, p.timestamp, p.payload, start + i * step)


def test_scanner_sees_ps_structure_codec_and_the_first_keyframe() -> None:
    assert FRAMES[0].keyframe and not FRAMES[1].keyframe
    s = StreamScanner()
    feed(s, packets(FRAMES[1:30]), start=10.0)  # starts on a P frame: the keyframe comes with frame 25
    first_key = next(i for i, au in enumerate(FRAMES[1:30]) if au.keyframe)
    assert (s.packs, s.codec, s.ssrcs) == (29, "H264", [200000001])
    assert s.system_headers == s.psms == 1 and s.stream_types == {0xE0: 0x1B}
    assert s.keyframe_at == pytest.approx(10.0 + first_key * 0.04)


def test_a_psm_split_across_packets_is_still_read() -> None:
    pack = ps.PsMuxer("h264").mux_video(FRAMES[0].data, 3600, True)
    at = pack.find(b"\x00\x00\x01\xbc")
    s = StreamScanner()
    for i, chunk in enumerate((pack[:at + 2], pack[at + 2:at + 9], pack[at + 9:])):  # start code split too
        s.feed(7, 3600, chunk, float(i))
    assert (s.psms, s.codec, s.keyframe_at) == (1, "H264", 2.0)


def test_h265_irap_and_svac_keyframes() -> None:
    vps_idr = b"\x00\x00\x00\x01\x40\x01\x0c" + b"\x00\x00\x01\x26\x01\xaf\x11"  # VPS, then IDR_W_RADL (19)
    trail = b"\x00\x00\x01\x02\x01\xd0\x22"  # TRAIL_R (1)
    s = StreamScanner()
    mux = ps.PsMuxer("h265")
    s.feed(1, 0, mux.mux_video(trail, 3600, False), 1.0)
    s.feed(1, 3600, mux.mux_video(vps_idr, 7200, True), 2.0)
    assert (s.codec, s.keyframe_at) == ("H265", 2.0)
    svac = StreamScanner()
    svac.feed(1, 0, ps.PsMuxer("svac").mux_video(b"\x00\x00\x01\x65\x88", 3600, True), 3.0)
    assert (svac.codec, svac.keyframe_at) == ("SVAC", 3.0)  # no NAL parsing: the keyframe's system header


def test_no_ps_and_download_speed() -> None:
    raw = StreamScanner()  # raw H.264 over RTP, not PS
    raw.feed(5, 0, FRAMES[0].data[:1000], 0.0)
    assert (raw.packs, raw.psms, raw.codec, raw.keyframe_at) == (0, 0, "", None)
    fast = StreamScanner()
    feed(fast, packets(FRAMES[:100]), step=0.01)  # 4 s of media in about 1 s
    assert fast.speed() == pytest.approx(4.0, rel=0.05)


def test_recording_range_and_loose_times() -> None:
    assert parse_gb_time("2024-5-1T8:3:9", TZ) == parse_gb_time("2024-05-01T08:03:09", TZ)
    assert parse_gb_time("yesterday", TZ) is None and parse_gb_time("2024-13-01T00:00:00", TZ) is None
    items = [{"start_time": "2026-11-25T08:00:00", "end_time": "2026-11-25T09:00:00"},
             {"start_time": "2026-11-25T10:00:00", "end_time": "2026-11-25T10:00:02"},  # too short: not the latest
             {"start_time": "bad", "end_time": "2026-11-25T10:00:02"}]  # fmt: skip
    a = int(parse_gb_time("2026-11-25T08:00:00", TZ) or 0)
    assert pick_range(items, 6, TZ) == (a, a + 6)
    assert pick_range(items[1:], 6, TZ) == (a + 7200, a + 7202)
    assert pick_range([], 6, TZ) is None


# ------------------------------------------------------------------------------------------ the prober


class TapBackend(FakeBackend):
    def __init__(self) -> None:
        super().__init__()
        self.sinks: dict[str, list[Any]] = {}

    def subscribe(self, handle: str, sink: Any) -> Any:
        self.sinks.setdefault(handle, []).append(sink)
        return lambda: None

    def push(self, handle: str, frames: list[list[rtp.RtpPacket]]) -> None:
        self.media(handle)
        for frame in frames:
            for p in frame:
                for sink in self.sinks.get(handle, []):
                    sink(p)


def prober(h: Harness, **settings: Any) -> MediaProber:
    async def records(channel: str, start: float, end: float) -> dict[str, Any]:
        return {"items": []}

    async def channels(device: str) -> list[Any]:
        return [type("C", (), {"kind": "audio-out"})()]

    short = ProbeSettings(**{"live_seconds": 0.1, "keyframe_wait": 1.0, "poll": 0.01, **settings})
    return MediaProber(media=h.media, record_search=records, channels=channels, mono=h.loop.time,
                       wall=lambda: 1_764_000_000.0, tz=TZ, settings=short)  # fmt: skip


def harness() -> tuple[Harness, TapBackend]:
    h = Harness()
    backend = TapBackend()
    h.backend = h.media.backend = backend
    return h, backend


async def answer(h: Harness, n: int = 1) -> bytes:
    invite = await h.invite(n)
    offer = sdp.parse(invite.split(b"\r\n\r\n", 1)[1])
    h.respond(invite, "200 OK", sdp.build_answer(offer, DEVICE, "127.0.0.1", 15060).to_bytes())
    return invite


async def answer_bye(h: Harness) -> None:
    for _ in range(1000):
        if h.requests("BYE"):
            h.respond(h.requests("BYE")[0], "200 OK")
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no BYE")


async def test_a_live_session_is_observed_and_ended_by_bye() -> None:
    h, backend = harness()
    probe = asyncio.create_task(prober(h).run(DEVICE, DEVICE, ("live-tcp-passive",), MediaObservations()))
    await answer(h)
    backend.push("h1", packets(FRAMES[:10], ssrc=0))  # the SSRC 0 quirk: accepted, and reported
    await answer_bye(h)
    obs = await probe
    s = obs.sessions["live-tcp-passive"]
    assert (s.error, s.offer_setup, s.answer_setup, s.rtp_ssrcs, s.codec, s.ended) == (
        "", "passive", "active", (0,), "H264", True)
    assert s.ps_pack_header and s.ps_system_header and s.ps_psm and s.first_keyframe is not None
    assert s.answer_y == s.offer_y and s.answer_time is not None and s.packets == 10
    assert any(line.startswith("ended: stopped") for line in s.evidence)
    assert h.backend.closed == ["h1"] and h.media.list() == []
    assert not obs.voice_output and obs.broadcast is None  # voice broadcast is the broadcast probe's


async def test_no_media_after_the_200_is_a_timeout_error_and_a_bye() -> None:
    h, _ = harness()
    h.media.cfg = type(h.media.cfg)(invite_timeout=30, no_media_timeout=0.2)
    probe = asyncio.create_task(prober(h).run(DEVICE, DEVICE, ("live-udp",), MediaObservations()))
    await answer(h)
    await answer_bye(h)
    s = (await probe).sessions["live-udp"]
    assert "no media within 0.2 s after the 200 OK" in s.error and "timed out" in s.error
    assert s.ended and h.media.list() == []


async def test_a_cancelled_probe_still_ends_its_session() -> None:
    h, backend = harness()
    probe = asyncio.create_task(prober(h, live_seconds=30).run(DEVICE, DEVICE, ("live-udp",), MediaObservations()))
    await answer(h)
    backend.push("h1", packets(FRAMES[:3]))
    for _ in range(200):
        await asyncio.sleep(0.01)
    probe.cancel()  # the run's budget ran out mid-watch
    await answer_bye(h)
    with pytest.raises(asyncio.CancelledError):
        await probe
    for _ in range(200):
        if h.media.list() == []:
            break
        await asyncio.sleep(0.01)
    assert h.media.list() == [] and h.backend.closed == ["h1"]


async def test_history_modes_skip_without_a_recording_and_a_backend_without_packets_skips_all() -> None:
    h, _ = harness()
    obs = await prober(h).run(DEVICE, DEVICE, ("playback", "download"), MediaObservations())
    assert {m: s.skipped for m, s in obs.sessions.items()} == {
        "playback": "no recording to play back: RecordInfo listed none in the last 24 h",
        "download": "no recording to play back: RecordInfo listed none in the last 24 h"}
    assert h.requests("INVITE") == []
    plain = Harness()
    plain.backend.subscribe = None  # type: ignore[assignment]  (no packet access, like the ZLMediaKit client)
    obs = await prober(plain).run(DEVICE, DEVICE, ("live-udp",), MediaObservations())
    assert "no access to the RTP packets" in obs.sessions["live-udp"].skipped and plain.requests("INVITE") == []
