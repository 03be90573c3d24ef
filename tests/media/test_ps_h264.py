"""PS muxer -> demuxer round trip, PS structure checks, H.264 access-unit splitting. No sockets."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gb28181.media import h264, ps

CLIP = Path(__file__).resolve().parents[2] / "fixtures" / "media" / "testsrc-320x240-25fps-4s.h264"


def test_clip_splits_into_100_frames_with_a_key_frame_each_second() -> None:
    aus = h264.access_units(CLIP.read_bytes())
    assert len(aus) == 100
    assert [i for i, a in enumerate(aus) if a.keyframe] == [0, 25, 50, 75]
    assert aus[0].nal_types[:3] == (h264.NAL_AUD, h264.NAL_SPS, h264.NAL_PPS)


def _nal(t: int, first_mb_zero: bool = True) -> bytes:
    return bytes([0x60 | t, 0x80 if first_mb_zero else 0x40, 0x11, 0x22])


def test_access_units_without_delimiters() -> None:
    stream = b"".join(b"\x00\x00\x00\x01" + n for n in [
        _nal(7), _nal(8), _nal(5), _nal(5, first_mb_zero=False),  # IDR picture in two slices
        _nal(1), _nal(1, first_mb_zero=False),  # P picture in two slices
        _nal(6), _nal(1),  # SEI starts the third picture
    ])
    aus = h264.access_units(b"\x00junk" + stream)
    assert [a.nal_types for a in aus] == [(7, 8, 5, 5), (1, 1), (6, 1)]
    assert [a.keyframe for a in aus] == [True, False, False]
    assert h264.access_units(b"") == [] and h264.access_units(b"no start code") == []


def test_mux_demux_round_trip_of_the_clip() -> None:
    aus = h264.access_units(CLIP.read_bytes())
    mux = ps.PsMuxer("h264")
    stream = b"".join(mux.mux_video(a.data, 90000 + 3600 * i, a.keyframe) for i, a in enumerate(aus))
    report = ps.walk(stream, collect=True)
    assert report.packs == 100 and report.system_headers == 4 and report.psms == 4
    assert report.psm_crc_errors == 0 and report.errors == [] and report.skipped_bytes == 0
    assert report.stream_types == {0xE0: 0x1B} and report.stream_type_names() == {0xE0: "h264"}
    assert report.video_frames == 100 and report.duration(frame_ticks=3600) == pytest.approx(4.0)
    assert [bytes(f.data) for f in report.es] == [a.data for a in aus]
    assert [f.pts for f in report.es] == [90000 + 3600 * i for i in range(100)]


def test_large_frames_span_several_pes_and_dts_is_kept() -> None:
    frame = bytes(range(256)) * 700  # 179,200 bytes: three PES packets
    stream = ps.PsMuxer("h265", audio="g711a").mux_video(frame, pts=7200, keyframe=True, dts=3600)
    report = ps.walk(stream, collect=True)
    assert report.pes[0xE0] == 3 and report.frames[0xE0] == 1
    assert report.stream_type_names() == {0xE0: "h265", 0xC0: "g711a"}
    assert len(report.es) == 1 and bytes(report.es[0].data) == frame
    assert (report.es[0].pts, report.es[0].dts) == (7200, 3600)


def test_audio_pes() -> None:
    mux = ps.PsMuxer("h264", audio="g711a")
    report = ps.walk(mux.mux_audio(b"\xd5" * 320, 1000), collect=True)
    assert report.pes == {0xC0: 1} and report.es[0].pts == 1000 and bytes(report.es[0].data) == b"\xd5" * 320
    with pytest.raises(ValueError):
        ps.PsMuxer("h264").mux_audio(b"x", 0)


def test_timestamps_wrap_at_33_bits() -> None:
    report = ps.walk(ps.PsMuxer().mux_video(b"\x00\x00\x01\x65", (1 << 33) + 5, True), collect=True)
    assert report.es[0].pts == 5


def test_walker_reports_damage_instead_of_raising() -> None:
    good = ps.PsMuxer().mux_video(b"\x00\x00\x00\x01\x65abc", 3600, True)
    psm_at = good.index(b"\x00\x00\x01\xbc")
    corrupt = bytearray(good)
    corrupt[psm_at + 12] ^= 0xFF  # a byte inside the PSM: CRC no longer matches
    report = ps.walk(b"garbage" + bytes(corrupt) + good[:-3])
    assert report.skipped_bytes == 7 and report.psm_crc_errors == 1 and report.truncated
    assert report.packs == 2


def test_crc32_mpeg2_check_value() -> None:
    assert ps.crc32_mpeg2(b"123456789") == 0x0376E6E7  # the CRC-32/MPEG-2 catalogue check value


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=400))
def test_walker_never_crashes(data: bytes) -> None:
    ps.walk(b"\x00\x00\x01\xba" + data, collect=True)
