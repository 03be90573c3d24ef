"""WAV files for voice broadcast (spec digest §7.11): read with the stdlib ``wave`` module into 8 kHz 16-bit mono
PCM, the input of the G.711 A-law encoder (gb28181/media/g711.py).

Accepted: uncompressed PCM, 8 or 16 bits per sample, mono or stereo (averaged to mono), at 8000 Hz, the rate
G.711 carries. Other sample rates are refused with a clear error naming the ffmpeg line that converts the file:
no resampler here (a correct one needs a low-pass filter; ffmpeg has a good one). Pure: bytes in, samples out.
"""

from __future__ import annotations

import io
import sys
import wave
from array import array
from dataclasses import dataclass

RATE = 8000  # G.711 (PCMA/8000)
MAX_SECONDS = 3600.0  # a longer file is refused (an hour of broadcast is 28.8 MB of PCM)
CONVERT_HINT = "convert it with: ffmpeg -i IN -ar 8000 -ac 1 -c:a pcm_s16le OUT.wav"


class WavError(ValueError):
    """The file is not a WAV we can broadcast; the message says why and what to do."""


@dataclass(frozen=True)
class Pcm:
    samples: array  # array('h'): 16-bit signed mono at RATE
    source: str  # what the file was, e.g. "PCM 16-bit stereo 8000 Hz"

    @property
    def seconds(self) -> float:
        return len(self.samples) / RATE


def read_wav(data: bytes) -> Pcm:
    """Decode a WAV file's bytes. Raises WavError for anything else than 8/16-bit PCM mono/stereo at 8 kHz."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError("not a WAV file (no RIFF/WAVE header)")
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            describe = f"PCM {8 * width}-bit {'mono' if channels == 1 else f'{channels} channels'} {rate} Hz"
            if width not in (1, 2):
                raise WavError(f"{describe}: only 8- or 16-bit samples are accepted; {CONVERT_HINT}")
            if channels not in (1, 2):
                raise WavError(f"{describe}: only mono or stereo is accepted; {CONVERT_HINT}")
            if rate != RATE:
                raise WavError(f"{describe}: G.711 carries 8000 Hz and this file is {rate} Hz; {CONVERT_HINT}")
            if frames / rate > MAX_SECONDS:
                raise WavError(f"{describe}: {frames / rate:.0f} s is longer than {MAX_SECONDS:.0f} s")
            raw = w.readframes(frames)
    except wave.Error as exc:  # compressed formats (A-law, float, ADPCM...) and broken headers
        raise WavError(f"unreadable WAV ({exc}); only uncompressed PCM is accepted; {CONVERT_HINT}") from exc
    except EOFError as exc:
        raise WavError("truncated WAV file") from exc
    samples = _to_int16(raw, width)
    if channels == 2:
        samples = array("h", ((a + b) >> 1 for a, b in zip(samples[0::2], samples[1::2], strict=False)))
    if not samples:
        raise WavError(f"{describe}: the file holds no audio")
    return Pcm(samples, describe)


def _to_int16(raw: bytes, width: int) -> array:
    if width == 1:  # 8-bit WAV is unsigned, centred on 128
        return array("h", ((b - 128) << 8 for b in raw))
    usable = len(raw) - len(raw) % 2
    samples = array("h")
    samples.frombytes(raw[:usable])
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def write_wav(samples: array, rate: int = RATE) -> bytes:
    """16-bit mono WAV bytes (for tests and tools that generate a broadcast file)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        data = array("h", samples)
        if sys.byteorder == "big":
            data.byteswap()
        w.writeframes(data.tobytes())
    return out.getvalue()
