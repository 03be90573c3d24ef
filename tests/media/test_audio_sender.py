"""Broadcast audio out (gb28181/media/audio_sender.py): the RTP packets of a file (PCMA and PS), and the sender
over loopback UDP and TCP with either side opening the connection (RFC 4571 framing), read back here."""

from __future__ import annotations

import asyncio
import socket

import pytest

from gb28181.media import g711, ps, rtp
from gb28181.media.audio_sender import AudioSender, rtp_packets

ALAW = bytes(range(256)) * 2 + b"\x01" * 8  # 520 samples: three full packets and one padded with silence


def test_pcma_packets() -> None:
    packets = [rtp.parse(p) for p in rtp_packets(ALAW, 8, 123456789, first_seq=65534, first_ts=100)]
    assert len(packets) == 4
    assert [p.sequence for p in packets] == [65534, 65535, 0, 1]  # wraps
    assert [p.timestamp for p in packets] == [100, 260, 420, 580] and {p.ssrc for p in packets} == {123456789}
    assert [p.marker for p in packets] == [True, False, False, False] and {p.payload_type for p in packets} == {8}
    assert b"".join(bytes(p.payload) for p in packets) == ALAW + b"\xd5" * 120


def test_ps_packets_carry_the_audio_in_its_own_stream() -> None:
    packets = [rtp.parse(p) for p in rtp_packets(ALAW, 96, 7)]
    assert [p.timestamp for p in packets] == [0, 1800, 3600, 5400]  # 90 kHz
    report = ps.walk(b"".join(bytes(p.payload) for p in packets), collect=True)
    assert report.packs == 4 and report.system_headers == 1 and report.stream_types == {ps.AUDIO_ID: 0x90}
    assert b"".join(bytes(f.data) for f in report.es if f.stream_id == ps.AUDIO_ID) == ALAW + b"\xd5" * 120
    assert not report.errors


async def _udp_peer() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock, sock.getsockname()[1]


async def test_udp_sends_every_packet_in_order() -> None:
    peer, port = await _udp_peer()
    loop = asyncio.get_running_loop()
    sender = AudioSender("udp", "127.0.0.1", ("127.0.0.1", port))
    try:
        sender.open()
        packets = rtp_packets(g711.alaw_encode(bytes(3200)), 8, 42)  # 0.2 s of silence
        sent: list[bytes] = []
        await sender.run(packets, sent.append, loop.time)
        got = [await asyncio.wait_for(loop.sock_recv(peer, 2048), 5) for _ in packets]
        assert got == packets == sent
    finally:
        sender.close()
        peer.close()


async def _read_frames(reader: asyncio.StreamReader, count: int) -> list[bytes]:
    decoder = rtp.Rfc4571Decoder()
    out: list[bytes] = []
    for _ in range(1000):
        if len(out) >= count:
            break
        data = await asyncio.wait_for(reader.read(4096), 5)
        if not data:
            break
        out += decoder.feed(data)
    return out


@pytest.mark.parametrize("transport", ["tcp-passive", "tcp-active"])
async def test_tcp_either_side_connects(transport: str) -> None:
    loop = asyncio.get_running_loop()
    packets = rtp_packets(bytes(range(256)) * 5, 8, 99)
    got: asyncio.Future[list[bytes]] = loop.create_future()

    async def device_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.set_result(await _read_frames(reader, len(packets)))
        writer.close()

    server = None
    if transport == "tcp-active":  # the device listens (its setup:passive), we connect
        server = await asyncio.start_server(device_side, "127.0.0.1", 0)
        remote = server.sockets[0].getsockname()[:2]
    else:
        remote = ("127.0.0.1", 9)  # unused: the device connects to us
    sender = AudioSender(transport, "127.0.0.1", remote)
    try:
        port = sender.open()
        task = asyncio.create_task(sender.run(packets, lambda p: None, loop.time))
        if transport == "tcp-passive":
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await device_side(reader, writer)
        await asyncio.wait_for(task, 10)
        assert await asyncio.wait_for(got, 10) == packets
    finally:
        sender.close()
        if server is not None:
            server.close()


async def test_a_device_that_never_connects_is_a_timeout() -> None:
    sender = AudioSender("tcp-passive", "127.0.0.1", ("127.0.0.1", 9), connect_timeout=0.2)
    try:
        sender.open()
        with pytest.raises(TimeoutError):
            await sender.run(rtp_packets(b"\xd5" * 160, 8, 1), lambda p: None, asyncio.get_running_loop().time)
    finally:
        sender.close()
