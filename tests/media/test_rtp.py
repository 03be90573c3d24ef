"""RTP header parse/build (RFC 3550 §5.1), sequence arithmetic, RFC 4571 framing, the packetizer. No sockets."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gb28181.media import rtp
from gb28181.media.packetizer import RtpPacketizer


def test_build_then_parse() -> None:
    data = rtp.build(96, 65535, 0xFFFFFFFF, 0x0C0000001 & 0xFFFFFFFF, b"abc", marker=True)
    assert data[:2] == b"\x80\xe0" and len(data) == 15
    p = rtp.parse(data)
    assert (p.payload_type, p.sequence, p.timestamp, p.marker, p.payload) == (96, 65535, 0xFFFFFFFF, True, b"abc")


def test_csrc_extension_and_padding_are_parsed() -> None:
    header = struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 2, 96, 7, 9000, 200000001)
    data = header + struct.pack("!II", 11, 12) + struct.pack("!HH", 0xBEDE, 1) + b"\x01\x02\x03\x04" + b"PS" + \
        b"\x00\x00\x03"
    p = rtp.parse(data)
    assert p.csrcs == (11, 12) and p.extension == (0xBEDE, b"\x01\x02\x03\x04") and p.payload == b"PS"
    assert p.padding == 3
    again = rtp.parse(p.to_bytes())
    assert (again.csrcs, again.extension, again.payload) == (p.csrcs, p.extension, p.payload)


@pytest.mark.parametrize("data", [
    b"", b"\x80\x60\x00", b"\x40" + bytes(11),  # short, short, version 1
    b"\x83" + bytes(11),  # 3 CSRCs announced, none present
    b"\x90" + bytes(11) + b"\x00\x00\x00\x05",  # extension longer than the packet
    b"\xa0" + bytes(11) + b"\x00",  # padding count 0
    b"\xa0" + bytes(11) + b"x\x09",  # padding larger than the payload
])
def test_malformed_packets_raise(data: bytes) -> None:
    with pytest.raises(rtp.RtpError):
        rtp.parse(data)


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=80))
def test_parse_never_crashes(data: bytes) -> None:
    try:
        rtp.parse(data)
    except rtp.RtpError:
        pass


def test_rewrite_ssrc() -> None:
    data = rtp.build(96, 1, 2, 3, b"x")
    assert rtp.parse(rtp.rewrite_ssrc(data, 0xDEADBEEF)).ssrc == 0xDEADBEEF


@pytest.mark.parametrize(("a", "b", "d"), [(5, 3, 2), (3, 5, -2), (0, 65535, 1), (65535, 0, -1), (32767, 0, 32767)])
def test_seq_delta_wraps(a: int, b: int, d: int) -> None:
    assert rtp.seq_delta(a, b) == d


def test_rfc4571_frames_split_anywhere() -> None:
    packets = [rtp.build(96, i, i * 3600, 1, bytes([i]) * (i * 50)) for i in range(1, 6)]
    stream = b"".join(rtp.frame(p) for p in packets)
    for split in range(len(stream) + 1):
        dec = rtp.Rfc4571Decoder()
        assert dec.feed(stream[:split]) + dec.feed(stream[split:]) == packets
        assert dec.pending == 0
    dec = rtp.Rfc4571Decoder()
    assert [p for i in range(len(stream)) for p in dec.feed(stream[i:i + 1])] == packets


@pytest.mark.parametrize("stream", [b"\x00\x05\x80\x60\x00\x01\x00", b"\x00\x20\x40" + bytes(31)])
def test_rfc4571_lost_framing_raises(stream: bytes) -> None:
    with pytest.raises(rtp.RtpError):
        rtp.Rfc4571Decoder().feed(stream)


def test_frame_refuses_oversize() -> None:
    with pytest.raises(ValueError):
        rtp.frame(bytes(65536))


def test_packetizer_marks_the_last_packet_and_runs_the_sequence_on() -> None:
    pk = RtpPacketizer(ssrc=200000001, max_payload=1400, first_sequence=65534)
    first = [rtp.parse(p) for p in pk.packetize(bytes(3000), 3600)]
    second = [rtp.parse(p) for p in pk.packetize(bytes(10), 7200)]
    assert [p.sequence for p in first + second] == [65534, 65535, 0, 1]
    assert [p.marker for p in first + second] == [False, False, True, True]
    assert [len(p.payload) for p in first] == [1400, 1400, 200]
    assert {p.timestamp for p in first} == {3600} and {p.payload_type for p in first} == {96}
    assert {p.ssrc for p in first + second} == {200000001}
