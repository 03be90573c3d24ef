"""G.711 A-law (ITU-T G.711 §2, the "PCMA" of RFC 3551 §4.5.14): 16-bit linear PCM <-> 8-bit A-law, the codec of
GB/T 28181 voice broadcast (spec digest §7.11, RTP payload type 8; App. C: PS stream type 0x90).

Written here because ``audioop`` is gone in Python 3.13. The tables follow the reference algorithm (13-bit
magnitude, segment search, even bits inverted with 0x55); encoding goes through a 8192-entry table of the 13-bit
value, decoding through a 256-entry one. Pure functions, no IO.
"""

from __future__ import annotations

import sys
from array import array

_SEGMENT_END = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)  # 13-bit magnitudes ending segments 0-7


def encode_sample(sample: int) -> int:
    """One 16-bit signed sample -> its A-law byte (G.711 Table 1a/1b); out-of-range input is clipped."""
    sample = max(-32768, min(32767, sample))
    value = sample >> 3  # 13-bit
    if value >= 0:
        mask = 0xD5  # sign bit set for positive values, even bits inverted
    else:
        mask = 0x55
        value = -value - 1
    for segment, end in enumerate(_SEGMENT_END):
        if value <= end:
            quant = (value >> 1) if segment < 2 else (value >> segment)
            return ((segment << 4) | (quant & 0x0F)) ^ mask
    return 0x7F ^ mask  # beyond the last segment: the largest code


def decode_sample(code: int) -> int:
    """One A-law byte -> the 16-bit linear value at the middle of its quantisation interval."""
    code ^= 0x55
    t = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    if segment == 0:
        t += 8
    elif segment == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (segment - 1)
    return t if code & 0x80 else -t


# index: the 13-bit value (sample >> 3) offset by 4096 so that it is never negative
_ENCODE = bytes(encode_sample(v << 3) for v in range(-4096, 4096))
_DECODE = array("h", (decode_sample(c) for c in range(256)))


def alaw_encode(pcm: bytes | array) -> bytes:
    """16-bit signed little-endian mono PCM (bytes, or an ``array('h')``) -> A-law bytes, one per sample."""
    samples = pcm if isinstance(pcm, array) else _samples(pcm)
    table = _ENCODE
    return bytes([table[(s >> 3) + 4096] for s in samples])


def alaw_decode(data: bytes) -> array:
    """A-law bytes -> ``array('h')`` of 16-bit samples."""
    table = _DECODE
    return array("h", [table[b] for b in data])


def _samples(pcm: bytes) -> array:
    if len(pcm) % 2:
        raise ValueError("16-bit PCM needs an even number of bytes")
    samples = array("h")
    samples.frombytes(pcm)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples
