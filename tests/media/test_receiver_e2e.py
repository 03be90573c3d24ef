"""The embedded receiver over real loopback sockets: a sender written here (the clip through our PS muxer and RTP
packetizer) streams over UDP, TCP passive and TCP active; the file written is checked by ffprobe (H.264 in MPEG-PS,
about 4 s) and by our PS walker; SSRC 0 and a device-chosen SSRC are accepted; shuffled packets are put back in
order; no-media fires; the forwarder delivers to a second receiver with the rewritten SSRC."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gb28181.media import h264, ps, rtp
from gb28181.media.backend import (
    TCP_ACTIVE,
    TCP_PASSIVE,
    UDP,
    ForwardSpec,
    MediaBackend,
    MediaError,
    ReceiverSpec,
    parse_port_range,
)
from gb28181.media.packetizer import RtpPacketizer
from gb28181.media.receiver import EmbeddedBackend
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e

CLIP = Path(__file__).resolve().parents[2] / "fixtures" / "media" / "testsrc-320x240-25fps-4s.h264"
OUR_SSRC = 200000001  # y=0200000001
WAIT = 20.0  # generous bound for a loaded 2-core machine; never a speed assertion


def clip_stream(ssrc: int, first_seq: int = 0) -> tuple[bytes, list[bytes]]:
    """The clip as GB PS (what the file must contain) and as RTP packets (what the sender sends)."""
    mux = ps.PsMuxer("h264")
    pk = RtpPacketizer(ssrc, first_sequence=first_seq)
    packs, packets = [], []
    for i, au in enumerate(h264.access_units(CLIP.read_bytes())):
        pts = 90000 + 3600 * i
        pack = mux.mux_video(au.data, pts, au.keyframe)
        packs.append(pack)
        packets += pk.packetize(pack, pts)
    return b"".join(packs), packets


@pytest.fixture
async def backend() -> AsyncIterator[EmbeddedBackend]:
    base = free_port()
    b = EmbeddedBackend((base, min(base + 40, 65535)), host="127.0.0.1")
    yield b
    await b.aclose()


async def wait_for(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def send_udp(port: int, packets: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i, p in enumerate(packets):
            s.sendto(p, ("127.0.0.1", port))
            if i % 16 == 15:
                await asyncio.sleep(0.002)  # let the receiver (same loop) drain its socket


async def send_tcp(writer: asyncio.StreamWriter, packets: list[bytes]) -> None:
    for i in range(0, len(packets), 8):
        # split frames at odd places: the receiver must reassemble RFC 4571 frames from any segmentation
        chunk = b"".join(rtp.frame(p) for p in packets[i:i + 8])
        writer.write(chunk[:7])
        await writer.drain()
        writer.write(chunk[7:])
        await writer.drain()


def check_ps_file(path: Path, expected: bytes) -> None:
    data = path.read_bytes()
    assert data == expected  # RTP stripped, nothing lost, nothing reordered
    report = ps.walk(data)
    assert report.packs == 100 and report.system_headers == 4 and report.psms == 4 and report.psm_crc_errors == 0
    assert report.stream_type_names() == {0xE0: "h264"} and report.video_frames == 100
    assert report.skipped_bytes == 0 and not report.truncated
    if shutil.which("ffprobe") is None:  # .ci/run installs ffmpeg; the structure checks above have run
        pytest.skip("ffprobe not installed: the PS file was checked by our walker only")
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=format_name,duration:stream=codec_name,codec_type",
         "-of", "json", str(path)], capture_output=True, text=True, timeout=60, check=True).stdout
    info = json.loads(out)
    assert info["format"]["format_name"] == "mpeg"
    assert [(s["codec_type"], s["codec_name"]) for s in info["streams"]] == [("video", "h264")]
    assert float(info["format"]["duration"]) == pytest.approx(4.0, abs=0.25)


def test_the_backend_satisfies_the_interface() -> None:
    assert isinstance(EmbeddedBackend((30000, 30010)), MediaBackend)
    assert not isinstance(object(), MediaBackend)
    assert parse_port_range("30000-30500") == (30000, 30500)
    for bad in ("30000", "a-b", "40000-30000", "80-90"):
        with pytest.raises(ValueError):
            parse_port_range(bad)


async def test_udp_live_stream_lands_in_a_ps_file(backend: EmbeddedBackend, tmp_path: Path) -> None:
    expected, packets = clip_stream(OUR_SSRC, first_seq=65500)  # the sequence number wraps mid-stream
    out = tmp_path / "udp.ps"
    port, handle = await backend.open_receiver(ReceiverSpec(UDP, ssrc=OUR_SSRC, output=str(out), label="udp"))
    await send_udp(port, packets)
    await wait_for(lambda: backend.stats(handle).packets == len(packets), "all packets")
    stats = await backend.close(handle)
    assert (stats.lost, stats.late, stats.foreign, stats.malformed, stats.ssrc) == (0, 0, 0, 0, OUR_SSRC)
    assert stats.bytes == len(expected)
    check_ps_file(out, expected)


async def test_tcp_passive_stream(backend: EmbeddedBackend, tmp_path: Path) -> None:
    expected, packets = clip_stream(OUR_SSRC)
    out = tmp_path / "passive.ps"
    port, handle = await backend.open_receiver(ReceiverSpec(TCP_PASSIVE, ssrc=OUR_SSRC, output=str(out)))
    _, writer = await asyncio.open_connection("127.0.0.1", port)  # the device connects to us
    await send_tcp(writer, packets)
    await wait_for(lambda: backend.stats(handle).packets == len(packets), "all packets")
    assert backend.stats(handle).connected
    writer.close()
    stats = await backend.close(handle)
    assert (stats.lost, stats.malformed) == (0, 0)
    check_ps_file(out, expected)


async def test_tcp_active_stream(backend: EmbeddedBackend, tmp_path: Path) -> None:
    expected, packets = clip_stream(OUR_SSRC)
    out = tmp_path / "active.ps"
    port, handle = await backend.open_receiver(ReceiverSpec(TCP_ACTIVE, ssrc=OUR_SSRC, output=str(out)))
    peers: list[tuple[str, int]] = []

    async def device(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername"))
        await send_tcp(writer, packets)
        await reader.read()  # until we close
        writer.close()

    server = await asyncio.start_server(device, "127.0.0.1", 0)
    device_port = server.sockets[0].getsockname()[1]
    try:
        await backend.connect(handle, "127.0.0.1", device_port)  # after the 200 OK
        await wait_for(lambda: backend.stats(handle).packets == len(packets), "all packets")
        assert peers == [("127.0.0.1", port)]  # we connect from the port in our SDP
        stats = await backend.close(handle)
    finally:
        server.close()
    assert stats.lost == 0
    check_ps_file(out, expected)


async def test_tcp_active_connect_refused_is_a_media_error(backend: EmbeddedBackend) -> None:
    _, handle = await backend.open_receiver(ReceiverSpec(TCP_ACTIVE))
    with pytest.raises(MediaError, match="connecting"):
        await backend.connect(handle, "127.0.0.1", free_port(socket.SOCK_STREAM))
    with pytest.raises(MediaError):
        await backend.connect("rtp-999", "127.0.0.1", 1)


async def test_ssrc_zero_is_accepted_silently(backend: EmbeddedBackend, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    expected, packets = clip_stream(0)  # Dahua cameras send SSRC 0 whatever y= said
    out = tmp_path / "zero.ps"
    port, handle = await backend.open_receiver(ReceiverSpec(UDP, ssrc=OUR_SSRC, output=str(out)))
    with caplog.at_level(logging.WARNING, logger="gb28181.media"):
        await send_udp(port, packets)
        await wait_for(lambda: backend.stats(handle).packets == len(packets), "all packets")
    assert "differs" not in caplog.text
    await backend.close(handle)
    check_ps_file(out, expected)


async def test_a_device_chosen_ssrc_is_accepted_logged_once_and_a_second_sender_kept_out(
        backend: EmbeddedBackend, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    expected, packets = clip_stream(703001718)  # Hikvision NCG answers its own y= (wvp#127)
    _, intruder = clip_stream(5)
    out = tmp_path / "ncg.ps"
    port, handle = await backend.open_receiver(ReceiverSpec(UDP, ssrc=OUR_SSRC, output=str(out)))
    with caplog.at_level(logging.WARNING, logger="gb28181.media"):
        await send_udp(port, packets[:10])
        await wait_for(lambda: backend.stats(handle).packets >= 6, "the first packets")
        await send_udp(port, intruder[:20])
        await send_udp(port, packets[10:])
        await wait_for(lambda: backend.stats(handle).packets == len(packets), "all packets")
    assert caplog.text.count("differs from the expected") == 1
    stats = await backend.close(handle)
    assert stats.foreign == 20 and stats.ssrc == 703001718
    check_ps_file(out, expected)


async def test_shuffled_packets_are_reordered(backend: EmbeddedBackend, tmp_path: Path) -> None:
    expected, packets = clip_stream(OUR_SSRC)
    rng = random.Random(28181)
    shuffled = list(packets)
    for i in range(0, len(shuffled) - 3, 3):
        window = shuffled[i:i + 3]
        rng.shuffle(window)
        shuffled[i:i + 3] = window
    assert shuffled != packets
    out = tmp_path / "shuffled.ps"
    port, handle = await backend.open_receiver(ReceiverSpec(UDP, ssrc=OUR_SSRC, output=str(out)))
    await send_udp(port, shuffled)
    await wait_for(lambda: backend.stats(handle).packets == len(packets), "all packets")
    stats = await backend.close(handle)
    assert stats.lost == 0 and stats.late == 0 and stats.reordered > 0
    check_ps_file(out, expected)


async def test_loss_is_counted(backend: EmbeddedBackend) -> None:
    _, packets = clip_stream(OUR_SSRC)
    port, handle = await backend.open_receiver(ReceiverSpec(UDP, ssrc=OUR_SSRC, reorder_capacity=8))
    dropped = {5, 6, 40, 100}
    await send_udp(port, [p for i, p in enumerate(packets) if i not in dropped])
    await wait_for(lambda: backend.stats(handle).packets + backend.stats(handle).lost == len(packets), "the stream")
    stats = await backend.close(handle)
    assert stats.lost == len(dropped) and stats.packets == len(packets) - len(dropped)


async def test_no_media_callback_and_port_freed_on_close(backend: EmbeddedBackend) -> None:
    fired: list[str] = []
    port, handle = await backend.open_receiver(ReceiverSpec(UDP, no_media_timeout=0.2),
                                               on_no_media=lambda h, stats: fired.append(h))
    await wait_for(lambda: fired == [handle], "the no-media callback")
    assert backend.stats(handle).no_media
    await backend.close(handle)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))  # free again
    assert backend.pool.in_use == 0
    with pytest.raises(MediaError):
        backend.stats(handle)


async def test_no_media_after_the_stream_stops(backend: EmbeddedBackend) -> None:
    _, packets = clip_stream(OUR_SSRC)
    fired: list[int] = []
    port, handle = await backend.open_receiver(ReceiverSpec(UDP, no_media_timeout=0.5),
                                               on_no_media=lambda h, stats: fired.append(stats.packets))
    await send_udp(port, packets[:30])
    await wait_for(lambda: bool(fired), "the no-media callback")
    assert fired[0] > 0  # it fired after media had flowed, not before
    await backend.close(handle)


async def test_unwritable_output_is_a_media_error(backend: EmbeddedBackend, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="cannot write"):
        await backend.open_receiver(ReceiverSpec(UDP, output=str(tmp_path / "missing" / "x.ps")))
    assert backend.pool.in_use == 0


async def test_forwarder_relays_with_the_rewritten_ssrc(backend: EmbeddedBackend, tmp_path: Path) -> None:
    expected, packets = clip_stream(OUR_SSRC)
    port_a, a = await backend.open_receiver(ReceiverSpec(UDP, ssrc=OUR_SSRC, output=str(tmp_path / "a.ps")))
    # consumers with their own SSRCs: one over UDP, one over TCP where we connect, one over TCP where it connects
    udp_ssrc, tcp_ssrc, passive_ssrc = 200000077, 1200000088, 200000099
    port_b, b = await backend.open_receiver(ReceiverSpec(UDP, ssrc=udp_ssrc, output=str(tmp_path / "b.ps")))
    port_c, c = await backend.open_receiver(ReceiverSpec(TCP_PASSIVE, ssrc=tcp_ssrc, output=str(tmp_path / "c.ps")))
    await backend.forward(a, ForwardSpec(udp_ssrc, UDP, "127.0.0.1", port_b))
    await backend.forward(a, ForwardSpec(tcp_ssrc, TCP_ACTIVE, "127.0.0.1", port_c))
    listen_port, _ = await backend.forward(a, ForwardSpec(passive_ssrc, TCP_PASSIVE))
    reader, writer = await asyncio.open_connection("127.0.0.1", listen_port)
    await wait_for(lambda: backend.stats(c).connected, "the tcp-active forward to connect")
    await asyncio.sleep(0.05)  # the passive forward's accept callback
    await send_udp(port_a, packets)
    n = len(packets)
    await wait_for(lambda: backend.stats(b).packets == n and backend.stats(c).packets == n, "the forwarded streams")
    decoder = rtp.Rfc4571Decoder()
    got: list[bytes] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while len(got) < n and loop.time() < deadline:
        got += decoder.feed(await asyncio.wait_for(reader.read(65536), WAIT))
    writer.close()
    assert [rtp.parse(p).ssrc for p in got] == [passive_ssrc] * n
    assert b"".join(rtp.parse(p).payload for p in got) == expected
    stats_a = await backend.close(a)
    assert stats_a.forwards == 3 and stats_a.forwarded_packets == 3 * n and stats_a.forward_dropped == 0
    for handle, ssrc, name in ((b, udp_ssrc, "b.ps"), (c, tcp_ssrc, "c.ps")):
        stats = await backend.close(handle)
        assert stats.ssrc == ssrc and stats.lost == 0 and stats.foreign == 0
        check_ps_file(tmp_path / name, expected)


async def test_port_range_exhaustion_is_a_media_error(tmp_path: Path) -> None:
    port = free_port()
    small = EmbeddedBackend((port, port), host="127.0.0.1")
    try:
        await small.open_receiver(ReceiverSpec(UDP))
        with pytest.raises(MediaError, match="no free media port"):
            await small.open_receiver(ReceiverSpec(UDP))
    finally:
        await small.aclose()


async def test_garbage_is_counted_and_broken_tcp_framing_closes_the_connection(backend: EmbeddedBackend) -> None:
    _, packets = clip_stream(OUR_SSRC)
    port, handle = await backend.open_receiver(ReceiverSpec(UDP))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"\x00" * 20, ("127.0.0.1", port))  # not RTP v2
    await send_udp(port, packets[:5])
    await wait_for(lambda: backend.stats(handle).malformed == 1, "the malformed datagram")
    await backend.close(handle)

    port, handle = await backend.open_receiver(ReceiverSpec(TCP_PASSIVE))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await wait_for(lambda: backend.stats(handle).connected, "the connection")
    reader2, writer2 = await asyncio.open_connection("127.0.0.1", port)  # a second device on the same port
    assert await asyncio.wait_for(reader2.read(), WAIT) == b""  # refused: closed at once
    writer2.close()
    writer.write(rtp.frame(packets[0]) + b"\x00\x04abcd")  # a frame too short to be RTP: framing lost
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), WAIT) == b""
    await wait_for(lambda: not backend.stats(handle).connected, "the close")
    assert backend.stats(handle).malformed == 1
    writer.close()
    # the device may reconnect and go on
    _, writer3 = await asyncio.open_connection("127.0.0.1", port)
    await send_tcp(writer3, packets[1:20])
    await wait_for(lambda: backend.stats(handle).packets >= 15, "packets after the reconnection")
    writer3.close()
    await backend.close(handle)
