"""WAV reading for voice broadcast (gb28181/media/wav.py): what is accepted, and the errors for the rest."""

from __future__ import annotations

import io
import struct
import wave
from array import array

import pytest

from gb28181.media.wav import WavError, read_wav, write_wav


def _wav(frames: bytes, *, channels: int = 1, width: int = 2, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()


def test_8khz_16bit_mono_is_taken_as_it_is() -> None:
    samples = array("h", [0, 1000, -1000, 32767, -32768] * 1600)  # 1 s
    pcm = read_wav(write_wav(samples))
    assert list(pcm.samples) == list(samples) and pcm.seconds == 1.0
    assert pcm.source == "PCM 16-bit mono 8000 Hz"


def test_stereo_is_averaged_and_8bit_is_widened() -> None:
    stereo = struct.pack("<4h", 1000, 3000, -200, -400)
    assert list(read_wav(_wav(stereo, channels=2)).samples) == [2000, -300]
    assert list(read_wav(_wav(bytes([128, 255, 0]), width=1)).samples) == [0, 127 << 8, -128 << 8]


@pytest.mark.parametrize(("data", "words"), [
    (b"not a wav file at all", "no RIFF/WAVE"),
    (_wav(b"\x00\x00" * 100, rate=44100), "44100 Hz"),
    (_wav(b"\x00\x00\x00" * 100, width=3), "only 8- or 16-bit"),
    (_wav(b"\x00\x00" * 300, channels=3), "only mono or stereo"),
    (_wav(b""), "no audio"),
])  # fmt: skip
def test_what_cannot_be_broadcast_is_refused_saying_why(data: bytes, words: str) -> None:
    with pytest.raises(WavError) as info:
        read_wav(data)
    assert words in str(info.value)


def test_a_compressed_or_broken_file_gets_the_conversion_hint() -> None:
    alaw = _wav(b"\xd5" * 100)
    alaw = alaw[:20] + struct.pack("<H", 6) + alaw[22:]  # format tag 6: A-law, which `wave` does not read
    with pytest.raises(WavError) as info:
        read_wav(alaw)
    assert "only uncompressed PCM" in str(info.value) and "ffmpeg -i IN -ar 8000" in str(info.value)
    with pytest.raises(WavError):
        read_wav(_wav(b"\x00\x00" * 100)[:30])
