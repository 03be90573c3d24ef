"""The session tests of test_receiver_e2e.py, run against ZlmBackend + the ZLMediaKit fake over real loopback
sockets, with ZLMediaKit's hooks posted to the admin app's /zlm/hook route. ZLMediaKit writes no PS file of ours,
so each stream is relayed (startSendRtp, the consumer's SSRC) to an embedded receiver that writes it: the file is
then checked as in the embedded tests (byte-exact, PS structure, ffprobe)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gb28181.media import rtp
from gb28181.media.backend import TCP_ACTIVE, TCP_PASSIVE, UDP, ForwardSpec, ReceiverSpec
from tests.media.test_receiver_e2e import OUR_SSRC, WAIT, check_ps_file, clip_stream, send_tcp, send_udp, wait_for
from tests.media.zlm_rig import Rig, primer

pytestmark = pytest.mark.e2e


async def relay_to_file(rig: Rig, handle: str, path: Path, ssrc: int = 200000077) -> str:
    """Wait for the stream (on_stream_changed), then relay it over UDP to an embedded receiver writing ``path``."""
    await wait_for(lambda: rig.zlm.stats(handle).first_packet is not None, "on_stream_changed regist=true")
    port, sink = await rig.sink.open_receiver(ReceiverSpec(UDP, ssrc=ssrc, output=str(path)))
    await rig.zlm.forward(handle, ForwardSpec(ssrc, UDP, "127.0.0.1", port))
    return sink


async def finish(rig: Rig, handle: str, sink: str, n: int, path: Path, expected: bytes, ssrc: int = 200000077) -> None:
    await wait_for(lambda: rig.sink.stats(sink).packets == n, "the relayed stream")
    stats = await rig.zlm.close(handle)
    assert stats.bytes == len(expected) and stats.forwards == 1 and not stats.no_media
    final = await rig.sink.close(sink)
    assert (final.ssrc, final.lost, final.foreign) == (ssrc, 0, 0)  # the consumer's SSRC, nothing lost
    check_ps_file(path, expected)


async def test_udp_live_stream_through_zlmediakit(rig: Rig, tmp_path: Path) -> None:
    expected, packets = clip_stream(OUR_SSRC, first_seq=65500)  # the sequence number wraps mid-stream
    port, handle = await rig.zlm.open_receiver(ReceiverSpec(UDP, ssrc=OUR_SSRC, label="udp"))
    await send_udp(port, primer(OUR_SSRC, 65500))
    sink = await relay_to_file(rig, handle, tmp_path / "udp.ps")
    await wait_for(lambda: rig.hooks.counts.get("on_stream_changed") == 2, "on_stream_changed for rtsp and rtmp")
    assert rig.hooks.counts.get("on_publish") == 1
    assert [answer for name, _, answer in rig.fake.hooks if name == "on_publish"] == [{"code": 0, "msg": "success"}]
    await send_udp(port, packets)
    await finish(rig, handle, sink, len(packets), tmp_path / "udp.ps", expected)


async def test_tcp_passive_stream_through_zlmediakit(rig: Rig, tmp_path: Path) -> None:
    expected, packets = clip_stream(OUR_SSRC)
    port, handle = await rig.zlm.open_receiver(ReceiverSpec(TCP_PASSIVE, ssrc=OUR_SSRC))
    _, writer = await asyncio.open_connection("127.0.0.1", port)  # the device connects to ZLMediaKit
    await send_tcp(writer, primer(OUR_SSRC, 0))
    sink = await relay_to_file(rig, handle, tmp_path / "passive.ps")
    await rig.zlm.refresh(handle)
    assert rig.zlm.stats(handle).connected
    await send_tcp(writer, packets)
    await finish(rig, handle, sink, len(packets), tmp_path / "passive.ps", expected)
    writer.close()


async def test_tcp_active_stream_through_zlmediakit(rig: Rig, tmp_path: Path) -> None:
    expected, packets = clip_stream(OUR_SSRC)
    port, handle = await rig.zlm.open_receiver(ReceiverSpec(TCP_ACTIVE, ssrc=OUR_SSRC))
    go = asyncio.Event()
    peers: list[tuple[str, int]] = []

    async def device(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername"))
        await send_tcp(writer, primer(OUR_SSRC, 0))
        await go.wait()
        await send_tcp(writer, packets)
        await reader.read()
        writer.close()

    server = await asyncio.start_server(device, "127.0.0.1", 0)
    try:
        await rig.zlm.connect(handle, "127.0.0.1", server.sockets[0].getsockname()[1])  # after the 200 OK
        assert rig.zlm.stats(handle).connected
        sink = await relay_to_file(rig, handle, tmp_path / "active.ps")
        assert peers == [("127.0.0.1", port)]  # ZLMediaKit connects from the port in our SDP
        go.set()
        await finish(rig, handle, sink, len(packets), tmp_path / "active.ps", expected)
    finally:
        server.close()


@pytest.mark.parametrize("device_ssrc", [0, 703001718], ids=["ssrc-0", "device-chosen"])
async def test_a_stream_with_another_ssrc_is_accepted(rig: Rig, tmp_path: Path, device_ssrc: int) -> None:
    expected, packets = clip_stream(device_ssrc)  # Dahua sends 0; Hikvision NCG answers its own y=
    port, handle = await rig.zlm.open_receiver(ReceiverSpec(UDP, ssrc=OUR_SSRC))
    rig.zlm.expect_ssrc(handle, device_ssrc)
    await send_udp(port, primer(device_ssrc, 0))
    sink = await relay_to_file(rig, handle, tmp_path / "other.ps")
    await send_udp(port, packets)
    await finish(rig, handle, sink, len(packets), tmp_path / "other.ps", expected)


async def test_forwarder_relays_with_the_rewritten_ssrc(rig: Rig, tmp_path: Path) -> None:
    expected, packets = clip_stream(OUR_SSRC)
    port_a, a = await rig.zlm.open_receiver(ReceiverSpec(UDP, ssrc=OUR_SSRC))
    await send_udp(port_a, primer(OUR_SSRC, 0))
    await wait_for(lambda: rig.zlm.stats(a).first_packet is not None, "the stream to arrive")
    udp_ssrc, tcp_ssrc, passive_ssrc = 200000077, 1200000088, 200000099
    port_b, b = await rig.sink.open_receiver(ReceiverSpec(UDP, ssrc=udp_ssrc, output=str(tmp_path / "b.ps")))
    port_c, c = await rig.sink.open_receiver(ReceiverSpec(TCP_PASSIVE, ssrc=tcp_ssrc, output=str(tmp_path / "c.ps")))
    await rig.zlm.forward(a, ForwardSpec(udp_ssrc, UDP, "127.0.0.1", port_b))
    await rig.zlm.forward(a, ForwardSpec(tcp_ssrc, TCP_ACTIVE, "127.0.0.1", port_c))
    listen_port, passive = await rig.zlm.forward(a, ForwardSpec(passive_ssrc, TCP_PASSIVE))
    assert listen_port > 0 and rig.zlm.stats(a).forwards == 3
    reader, writer = await asyncio.open_connection("127.0.0.1", listen_port)
    await wait_for(lambda: rig.sink.stats(c).connected, "the tcp-active forward to connect")
    await asyncio.sleep(0.05)  # the passive forward's accept callback
    await send_udp(port_a, packets)
    n = len(packets)
    await wait_for(lambda: rig.sink.stats(b).packets == n and rig.sink.stats(c).packets == n, "the relayed streams")
    decoder = rtp.Rfc4571Decoder()
    got: list[bytes] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while len(got) < n and loop.time() < deadline:
        got += decoder.feed(await asyncio.wait_for(reader.read(65536), WAIT))
    writer.close()
    assert [rtp.parse(p).ssrc for p in got] == [passive_ssrc] * n
    assert b"".join(rtp.parse(p).payload for p in got) == expected
    await rig.zlm.stop_forward(a, passive)
    assert rig.zlm.stats(a).forwards == 2 and len(rig.fake.servers[a].senders) == 2
    await rig.zlm.close(a)
    for handle, ssrc, name in ((b, udp_ssrc, "b.ps"), (c, tcp_ssrc, "c.ps")):
        stats = await rig.sink.close(handle)
        assert stats.ssrc == ssrc and stats.lost == 0 and stats.foreign == 0
        check_ps_file(tmp_path / name, expected)


async def test_no_media_from_the_rtp_server_timeout_hook(rig: Rig) -> None:
    rig.fake.rtp_timeout = 0.2  # ZLMediaKit's rtp_proxy.timeoutSec, shorter than our watchdog
    fired: list[str] = []
    port, handle = await rig.zlm.open_receiver(ReceiverSpec(UDP, no_media_timeout=600),
                                               on_no_media=lambda h, stats: fired.append(h))
    await wait_for(lambda: fired == [handle], "the no-media callback")
    await wait_for(lambda: handle not in rig.fake.servers, "ZLMediaKit to drop the RTP server after the hook")
    assert rig.hooks.counts == {"on_rtp_server_timeout": 1}
    stats = await rig.zlm.close(handle)  # closeRtpServer answers hit=0: already gone
    assert stats.no_media and stats.port == port


async def test_no_media_after_the_stream_stops(rig: Rig) -> None:
    _, packets = clip_stream(OUR_SSRC)
    rig.fake.rtp_timeout = 0.5
    fired: list[int] = []
    port, handle = await rig.zlm.open_receiver(ReceiverSpec(UDP, no_media_timeout=600),
                                               on_no_media=lambda h, stats: fired.append(stats.packets))
    await send_udp(port, packets[:30])
    await wait_for(lambda: bool(fired), "the no-media callback")
    assert rig.zlm.stats(handle).first_packet is not None  # it fired after media had flowed (regist=false)
    await wait_for(lambda: rig.hooks.counts.get("on_stream_changed") == 4, "regist=false for rtsp and rtmp")
    assert fired == [0] and "on_rtp_server_timeout" not in rig.hooks.counts  # once; packets are not ZLM's figure
    await rig.zlm.close(handle)
