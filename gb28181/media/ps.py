"""MPEG-2 Program Stream as GB/T 28181 carries it (2016/2022 App. C; ISO/IEC 13818-1 §2.5): a muxer and a
demuxer/validator.

Muxer, GB style: one pack per frame; a key frame's pack carries the system header and the program stream map
(PSM) before its PES packets; video PES stream id 0xE0 with PTS and DTS, audio 0xC0 with PTS; stream types in the
PSM: 0x1B H.264, 0x24 H.265, 0x10 MPEG-4, 0x80 SVAC, 0x90 G.711A (App. C.2). Sans-IO, no clock: the caller gives
90 kHz timestamps.

Demuxer: walks pack headers, system headers, PSMs (CRC checked) and PES packets; reports what it saw and,
optionally, reassembles the elementary-stream frames. Garbage between start codes is skipped and counted, never
raised: devices send odd streams and the report says how odd.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

PACK_START, SYSTEM_HEADER, PSM, PADDING, END = 0xBA, 0xBB, 0xBC, 0xBE, 0xB9
VIDEO_ID, AUDIO_ID = 0xE0, 0xC0
STREAM_TYPES = {"h264": 0x1B, "h265": 0x24, "mpeg4": 0x10, "svac": 0x80, "g711a": 0x90, "g711u": 0x91}
STREAM_TYPE_NAMES = {v: k for k, v in STREAM_TYPES.items()}
MAX_PES_PAYLOAD = 65535 - 3 - 10  # PES_packet_length is 16 bits; 3 flag bytes + PTS and DTS
MUX_RATE = 0x3FFFFF  # program_mux_rate in 50-byte/s units: largest value, as most GB devices write


def _crc32_table() -> list[int]:
    table = []
    for i in range(256):
        c = i << 24
        for _ in range(8):
            c = ((c << 1) ^ 0x04C11DB7) if c & 0x80000000 else c << 1
        table.append(c & 0xFFFFFFFF)
    return table


_CRC_TABLE = _crc32_table()


def crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2 (ISO/IEC 13818-1 App. A): poly 0x04C11DB7, init all ones, no reflection, no final xor."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[((crc >> 24) ^ b) & 0xFF]
    return crc


def _timestamp(prefix: int, ts: int) -> bytes:
    """A 33-bit PTS/DTS in its 5-byte PES form (13818-1 §2.4.3.7)."""
    ts &= 0x1FFFFFFFF
    return bytes((
        (prefix << 4) | (((ts >> 30) & 0x07) << 1) | 1,
        (ts >> 22) & 0xFF,
        (((ts >> 15) & 0x7F) << 1) | 1,
        (ts >> 7) & 0xFF,
        ((ts & 0x7F) << 1) | 1,
    ))


def _read_timestamp(b: bytes | memoryview, i: int) -> int:
    return (((b[i] >> 1) & 0x07) << 30) | (b[i + 1] << 22) | ((b[i + 2] >> 1) << 15) | (b[i + 3] << 7) | (b[i + 4] >> 1)


def pack_header(scr: int, mux_rate: int = MUX_RATE) -> bytes:
    """MPEG-2 pack header, 14 bytes, no stuffing (§2.5.3.3). ``scr`` is the 90 kHz base (extension 0)."""
    scr &= 0x1FFFFFFFF
    return b"\x00\x00\x01\xba" + bytes((
        0x44 | (((scr >> 30) & 0x07) << 3) | ((scr >> 28) & 0x03),
        (scr >> 20) & 0xFF,
        (((scr >> 15) & 0x1F) << 3) | 0x04 | ((scr >> 13) & 0x03),
        (scr >> 5) & 0xFF,
        ((scr & 0x1F) << 3) | 0x04,
        0x01,
        (mux_rate >> 14) & 0xFF,
        (mux_rate >> 6) & 0xFF,
        ((mux_rate & 0x3F) << 2) | 0x03,
        0xF8,
    ))


def system_header(has_video: bool, has_audio: bool, rate_bound: int = MUX_RATE) -> bytes:
    """System header (§2.5.3.5) with one P-STD entry per elementary stream."""
    body = bytearray((
        0x80 | ((rate_bound >> 15) & 0x7F),
        (rate_bound >> 7) & 0xFF,
        ((rate_bound & 0x7F) << 1) | 0x01,
        (int(has_audio) << 2) | 0x00,  # audio_bound, fixed_flag 0, CSPS_flag 0
        0xE0 | int(has_video),  # system_audio_lock, system_video_lock, marker, video_bound
        0x7F,  # packet_rate_restriction 0, reserved
    ))
    if has_video:
        body += bytes((VIDEO_ID, 0xE0 | 0x08, 0x00))  # buffer scale 1 (1024 B), size 2048 -> 2 MiB
    if has_audio:
        body += bytes((AUDIO_ID, 0xC0, 0x20))  # buffer scale 0 (128 B), size 32 -> 4 KiB
    return b"\x00\x00\x01\xbb" + struct.pack("!H", len(body)) + bytes(body)


def program_stream_map(streams: list[tuple[int, int]], version: int = 0) -> bytes:
    """PSM (§2.5.4) listing (stream_type, stream_id) pairs, CRC-32 at the end."""
    es_map = b"".join(struct.pack("!BBH", st, sid, 0) for st, sid in streams)
    length = 6 + len(es_map) + 4
    head = b"\x00\x00\x01\xbc" + struct.pack("!HBBHH", length, 0x80 | (version & 0x1F), 0xFF, 0, len(es_map))
    data = head + es_map
    return data + struct.pack("!I", crc32_mpeg2(data))


def pes_packets(stream_id: int, payload: bytes, pts: int, dts: int | None = None) -> list[bytes]:
    """PES packets for one frame: the first carries PTS (and DTS if given and different), the rest none."""
    out = []
    pos = 0
    first = True
    while first or pos < len(payload):
        if first:
            flags, stamps = (0xC0, _timestamp(3, pts) + _timestamp(1, dts)) if dts is not None and dts != pts \
                else (0x80, _timestamp(2, pts))
            header = bytes((0x84 if stream_id == VIDEO_ID else 0x80, flags, len(stamps))) + stamps
        else:
            header = b"\x80\x00\x00"
        room = 65535 - len(header)
        chunk = payload[pos:pos + room]
        pos += len(chunk)
        out.append(b"\x00\x00\x01" + bytes((stream_id,)) + struct.pack("!H", len(header) + len(chunk)) + header
                   + chunk)
        first = False
    return out


class PsMuxer:
    """Frames in, PS packs out: ``mux_video(access_unit, pts, keyframe)`` gives one pack per frame."""

    def __init__(self, video: str = "h264", audio: str | None = None) -> None:
        if video not in STREAM_TYPES or (audio is not None and audio not in STREAM_TYPES):
            raise ValueError(f"stream types: {sorted(STREAM_TYPES)}")
        self._streams = [(STREAM_TYPES[video], VIDEO_ID)]
        if audio:
            self._streams.append((STREAM_TYPES[audio], AUDIO_ID))
        self._has_audio = audio is not None
        self._psm = program_stream_map(self._streams)
        self._system = system_header(True, self._has_audio)

    def mux_video(self, access_unit: bytes, pts: int, keyframe: bool, dts: int | None = None) -> bytes:
        scr = (dts if dts is not None else pts) - 3600  # SCR leads decoding by 40 ms
        parts = [pack_header(max(scr, 0))]
        if keyframe:
            parts += [self._system, self._psm]
        parts += pes_packets(VIDEO_ID, access_unit, pts, dts)
        return b"".join(parts)

    def mux_audio(self, frame: bytes, pts: int) -> bytes:
        if not self._has_audio:
            raise ValueError("this muxer was built without an audio stream")
        return pack_header(max(pts - 3600, 0)) + b"".join(pes_packets(AUDIO_ID, frame, pts))


# --------------------------------------------------------------------------------------------- demuxer


@dataclass
class PsFrame:
    stream_id: int
    pts: int | None
    dts: int | None
    data: bytearray


@dataclass
class PsReport:
    """What a walk over a PS byte stream found (13818-1 §2.5)."""

    packs: int = 0
    mpeg1_packs: int = 0
    system_headers: int = 0
    psms: int = 0
    psm_crc_errors: int = 0
    stream_types: dict[int, int] = field(default_factory=dict)  # stream_id -> stream_type, from the PSM
    pes: dict[int, int] = field(default_factory=dict)  # stream_id -> PES packet count
    frames: dict[int, int] = field(default_factory=dict)  # stream_id -> PES packets carrying a PTS
    first_pts: dict[int, int] = field(default_factory=dict)
    last_pts: dict[int, int] = field(default_factory=dict)
    skipped_bytes: int = 0  # bytes between structures that belong to none
    truncated: bool = False  # the data ended inside a structure
    errors: list[str] = field(default_factory=list)  # first few problems, for the log
    es: list[PsFrame] = field(default_factory=list)  # reassembled frames when collected

    @property
    def video_frames(self) -> int:
        return sum(n for sid, n in self.frames.items() if 0xE0 <= sid <= 0xEF)

    def stream_type_names(self) -> dict[int, str]:
        return {sid: STREAM_TYPE_NAMES.get(st, f"0x{st:02x}") for sid, st in self.stream_types.items()}

    def duration(self, stream_id: int = VIDEO_ID, frame_ticks: int = 0) -> float:
        """Seconds between the first and last PTS of a stream, plus one frame's ticks (90 kHz)."""
        if stream_id not in self.first_pts:
            return 0.0
        return ((self.last_pts[stream_id] - self.first_pts[stream_id]) & 0x1FFFFFFFF) / 90000 + frame_ticks / 90000

    def _error(self, text: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(text)


def _find_start(data: bytes, pos: int) -> int:
    return data.find(b"\x00\x00\x01", pos)


def walk(data: bytes, collect: bool = False) -> PsReport:
    """Walk a whole PS byte stream. With ``collect``, ``report.es`` holds each stream's frames in order (a PES
    with a PTS starts a frame, PES without one continue it)."""
    report = PsReport()
    view = memoryview(data)
    current: dict[int, PsFrame] = {}
    pos = 0
    n = len(data)
    for _ in range(n + 1):  # bounded: every iteration advances pos
        if pos >= n:
            break
        start = _find_start(data, pos)
        if start < 0:
            report.skipped_bytes += n - pos
            break
        if start > pos:
            report.skipped_bytes += start - pos
        if start + 4 > n:
            report.truncated = True
            break
        code = data[start + 3]
        if code == PACK_START:
            pos = _pack(data, start, report)
        elif code == END:
            pos = start + 4
        elif code in (SYSTEM_HEADER, PSM, PADDING) or code >= 0xBD:
            if start + 6 > n:
                report.truncated = True
                break
            length = (data[start + 4] << 8) | data[start + 5]
            end = start + 6 + length
            if end > n:
                report.truncated = True
                break
            if code == SYSTEM_HEADER:
                report.system_headers += 1
            elif code == PSM:
                _psm(view[start:end], report)
            elif code != PADDING:
                _pes(view, start, end, code, report, current if collect else None)
            pos = end
        else:
            report.skipped_bytes += 4
            report._error(f"unexpected start code 0x{code:02x} at {start}")
            pos = start + 4
        if pos < 0:
            report.truncated = True
            break
    return report


def _pack(data: bytes, start: int, report: PsReport) -> int:
    if start + 5 > len(data):
        report.truncated = True
        return -1
    if data[start + 4] >> 6 == 0b01:  # MPEG-2
        if start + 14 > len(data):
            report.truncated = True
            return -1
        if not (data[start + 4] & 0x04 and data[start + 6] & 0x04 and data[start + 8] & 0x04):
            report._error(f"pack header at {start}: SCR marker bits missing")
        report.packs += 1
        return start + 14 + (data[start + 13] & 0x07)
    if data[start + 4] >> 4 == 0b0010:  # MPEG-1 pack header, 12 bytes
        report.packs += 1
        report.mpeg1_packs += 1
        return start + 12
    report._error(f"pack header at {start}: neither MPEG-2 nor MPEG-1")
    return start + 4


def _psm(psm: memoryview, report: PsReport) -> None:
    report.psms += 1
    if len(psm) < 16:
        report._error("PSM too short")
        return
    if crc32_mpeg2(bytes(psm[:-4])) != struct.unpack("!I", psm[-4:])[0]:
        report.psm_crc_errors += 1
    info_len = (psm[8] << 8) | psm[9]
    i = 10 + info_len
    if i + 2 > len(psm):
        report._error("PSM info length runs past its end")
        return
    map_len = (psm[i] << 8) | psm[i + 1]
    i += 2
    end = min(i + map_len, len(psm) - 4)
    while i + 4 <= end:
        stream_type, stream_id = psm[i], psm[i + 1]
        report.stream_types[stream_id] = stream_type
        i += 4 + ((psm[i + 2] << 8) | psm[i + 3])


def _pes(view: memoryview, start: int, end: int, sid: int, report: PsReport,
         current: dict[int, PsFrame] | None) -> None:
    report.pes[sid] = report.pes.get(sid, 0) + 1
    if sid in (0xBF, 0xF0, 0xF1, 0xF2, 0xF8, 0xFF):  # streams without the PES header extension (Table 2-22)
        return
    h = start + 6
    if end - h < 3 or view[h] >> 6 != 0b10:
        report._error(f"PES 0x{sid:02x} at {start}: not an MPEG-2 PES header")
        return
    flags = view[h + 1] >> 6
    header_len = view[h + 2]
    payload_at = h + 3 + header_len
    if payload_at > end:
        report._error(f"PES 0x{sid:02x} at {start}: header longer than the packet")
        return
    pts = dts = None
    if flags & 0b10 and header_len >= 5:
        pts = _read_timestamp(view, h + 3)
        dts = _read_timestamp(view, h + 8) if flags == 0b11 and header_len >= 10 else pts
        report.frames[sid] = report.frames.get(sid, 0) + 1
        report.first_pts.setdefault(sid, pts)
        report.last_pts[sid] = pts
    if current is None:
        return
    payload = view[payload_at:end]
    frame = current.get(sid)
    if pts is not None or frame is None:
        frame = PsFrame(sid, pts, dts, bytearray())
        current[sid] = frame
        report.es.append(frame)
    frame.data += payload
