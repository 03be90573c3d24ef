"""G.711 A-law (gb28181/media/g711.py) against the values of ITU-T G.711 Table 1a/1b and the reference coder."""

from __future__ import annotations

import struct
from array import array

from hypothesis import given, settings
from hypothesis import strategies as st

from gb28181.media import g711

# (16-bit sample, A-law byte): zero, the smallest steps each side, segment edges, full scale. The bytes are those
# of the reference coder (Sun's g711.c); the encoder matched audioop.lin2alaw (Python 3.11) on all 65,536 samples.
KNOWN = [(0, 0xD5), (-1, 0x55), (8, 0xD5), (16, 0xD4), (-16, 0x55), (-17, 0x54), (255, 0xDA), (256, 0xC5),
         (1000, 0xFA), (-1000, 0x7A), (4096, 0x85), (32767, 0xAA), (-32768, 0x2A)]  # fmt: skip


def test_known_encodings() -> None:
    for sample, code in KNOWN:
        assert g711.encode_sample(sample) == code, (sample, hex(g711.encode_sample(sample)), hex(code))


def test_decoding_gives_the_middle_of_each_interval() -> None:
    assert g711.decode_sample(0xD5) == 8 and g711.decode_sample(0x55) == -8
    assert g711.decode_sample(0xAA) == 32256 and g711.decode_sample(0x2A) == -32256
    assert g711.decode_sample(0xFA) == 1008  # segment 2, step 32: 992..1023


def test_every_code_round_trips() -> None:
    for code in range(256):
        assert g711.encode_sample(g711.decode_sample(code)) == code


def test_buffers_match_the_sample_functions() -> None:
    samples = array("h", [s for s, _ in KNOWN])
    want = bytes(c for _, c in KNOWN)
    assert g711.alaw_encode(samples) == want
    assert g711.alaw_encode(struct.pack(f"<{len(samples)}h", *samples)) == want
    assert list(g711.alaw_decode(want)) == [g711.decode_sample(c) for c in want]


@settings(deadline=None)
@given(st.integers(-32768, 32767))
def test_quantisation_error_is_within_half_a_step(sample: int) -> None:
    back = g711.decode_sample(g711.encode_sample(sample))
    magnitude = abs(sample)
    step = 16 if magnitude < 512 else 1 << (magnitude.bit_length() - 5)  # segment step in 16-bit units
    assert abs(back - sample) <= step, (sample, back, step)
    assert (back >= 0) == (sample >= 0)


def test_odd_length_pcm_is_an_error() -> None:
    try:
        g711.alaw_encode(b"\x00\x00\x01")
    except ValueError as exc:
        assert "even" in str(exc)
    else:
        raise AssertionError("an odd number of bytes was accepted")
