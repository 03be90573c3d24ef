"""H.264 Annex-B elementary streams (ITU-T H.264 Annex B, §7.4.1.2.3): NAL units and access units.

Sans-IO. ``access_units`` groups NAL units into frames the way §7.4.1.2.3 detects the first VCL NAL unit of a new
primary picture, simplified to what encoders emit: an access unit delimiter, SPS/PPS/SEI after a picture, or a
slice whose ``first_mb_in_slice`` is 0 after a picture starts a new one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

NAL_SLICE, NAL_IDR, NAL_SEI, NAL_SPS, NAL_PPS, NAL_AUD = 1, 5, 6, 7, 8, 9


@dataclass(frozen=True)
class AccessUnit:
    data: bytes  # Annex-B bytes of every NAL unit of the frame, start codes included
    keyframe: bool  # holds an IDR slice
    nal_types: tuple[int, ...]


def nal_units(stream: bytes) -> Iterator[bytes]:
    """NAL units (without start codes) of an Annex-B byte stream; bytes before the first start code are skipped."""
    starts = []
    pos = stream.find(b"\x00\x00\x01")
    for _ in range(len(stream)):
        if pos < 0:
            break
        starts.append(pos + 3)
        pos = stream.find(b"\x00\x00\x01", pos + 3)
    for i, begin in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(stream)
        nal = stream[begin:end]
        # a 4-byte start code's leading zero (and trailing_zero_8bits) belong to no NAL unit
        nal = nal.rstrip(b"\x00") if i + 1 < len(starts) else nal
        if nal:
            yield nal


def _first_mb_is_zero(nal: bytes) -> bool:
    # first_mb_in_slice is ue(v): the value 0 is the single bit "1"
    return len(nal) > 1 and bool(nal[1] & 0x80)


def access_units(stream: bytes) -> list[AccessUnit]:
    units: list[AccessUnit] = []
    current: list[bytes] = []
    seen_vcl = False

    def close() -> None:
        if current:
            types = tuple(n[0] & 0x1F for n in current)
            units.append(AccessUnit(b"".join(b"\x00\x00\x00\x01" + n for n in current), NAL_IDR in types, types))

    for nal in nal_units(stream):
        t = nal[0] & 0x1F
        vcl = 1 <= t <= 5
        starts_new = seen_vcl and (t in (NAL_AUD, NAL_SPS, NAL_PPS, NAL_SEI) or 14 <= t <= 18
                                   or (vcl and _first_mb_is_zero(nal)))
        if starts_new:
            close()
            current = []
            seen_vcl = False
        current.append(nal)
        seen_vcl = seen_vcl or vcl
    close()
    return units
