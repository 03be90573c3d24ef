"""The conformance run's media probe (issue 11; spec digest §10, §7.10): short, bounded media sessions against one
channel through the platform's own media service, observed from the INVITE to the BYE.

For each mode (live over UDP, tcp-passive, tcp-active; playback with MANSRTSP pause/resume/scale; download at a
speed) it opens a session, taps the receiver's RTP packets from before the INVITE goes out, and records what the
clauses judge (gb28181/conformance/model.py ``MediaSession``): INVITE→200 time, the SDP answer (``y=``, ``f=``,
``a=setup``), the RTP SSRCs, the PS structure (pack header, system header, PSM), the codec from the PSM's stream
type, the time to the first keyframe, packets/bytes/loss, MediaStatus 121 and the teardown.

Every session it opened is ended (BYE, or CANCEL while the INVITE is pending) before the probe returns, also when
the device fails, a bound runs out or the probe is cancelled (the run's budget): it never leaves a device streaming.
``StreamScanner`` is sans-IO (the caller passes ``now``); ``MediaProber`` is the async side.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import Any

from gb28181 import sdp
from gb28181.conformance.model import MediaObservations, MediaSession
from gb28181.invite import MEDIA_END
from gb28181.media import ps
from gb28181.media.backend import MediaError
from gb28181.operations import OperationError
from gb28181.sessions import DOWNLOAD, PLAY, PLAYBACK, Session, SessionError
from gb28181.sn import QueryError

log = logging.getLogger("gb28181.conformance")

# mode -> (session kind, transport named from our side, DECISIONS.md)
MODES: dict[str, tuple[str, str]] = {
    "live-udp": (PLAY, sdp.UDP),
    "live-tcp-passive": (PLAY, sdp.TCP_PASSIVE),
    "live-tcp-active": (PLAY, sdp.TCP_ACTIVE),
    "playback": (PLAYBACK, sdp.UDP),
    "download": (DOWNLOAD, sdp.UDP),
}
CODECS = {0x1B: "H264", 0x24: "H265", 0x10: "MPEG4", 0x80: "SVAC"}  # PSM stream types (2022 App. C.2)
START = b"\x00\x00\x01"
PSM_MAX = 1024  # bytes a PSM may take (a handful of elementary streams); a longer one is not parsed
MAX_SSRCS = 8
_GB_TIME = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})[T ](\d{1,2}):(\d{1,2}):(\d{1,2})")  # spec digest §13 q15


@dataclass(frozen=True)
class ProbeSettings:
    """How long each session is watched; short by default so that a conformance run stays small."""

    live_seconds: float = 1.5  # a live stream is watched this long after its first keyframe
    keyframe_wait: float = 6.0  # s after the 200 OK the first keyframe may take before the watch gives up
    history_seconds: int = 4  # length of the recording range a playback asks for
    pause_seconds: float = 0.5  # between the MANSRTSP PAUSE and the PLAY that resumes
    scale: float = 2.0  # the MANSRTSP Scale asked after resuming
    download_seconds: int = 6  # length of the range a download asks for
    download_speed: int = 4  # a=downloadspeed
    end_slack: float = 5.0  # s beyond the expected end a history stream has for its MediaStatus 121
    record_window: float = 86400.0  # s back a RecordInfo search looks for a recording to play back
    poll: float = 0.05  # s between looks at a running session

    def __post_init__(self) -> None:
        if min(self.live_seconds, self.keyframe_wait, self.pause_seconds, self.end_slack, self.poll) <= 0:
            raise ValueError("probe durations must be positive")
        if self.history_seconds < 1 or self.download_seconds < 1 or not 1 <= self.download_speed <= 32:
            raise ValueError("history ranges need at least 1 s and a download speed of 1-32")


# ------------------------------------------------------------------------------------------ sans-IO scanner


def _keyframe_nal(codec: str, header: int) -> bool:
    """An IDR / IRAP NAL unit header (H.264 §7.4.1.2: type 5; H.265 §7.4.2.2: types 16-21)."""
    if header & 0x80:  # forbidden_zero_bit
        return False
    if codec == "H264":
        return header & 0x1F == 5
    if codec == "H265":
        return 16 <= (header >> 1) & 0x3F <= 21
    return False


class StreamScanner:
    """The RTP packets of one session, fed in order with the time each arrived: SSRCs, RTP clock span, and the PS
    structure (ISO/IEC 13818-1 §2.5 as 2022 App. C carries it) found start code by start code across packets.

    The codec comes from the PSM's video stream type; the first keyframe is the first IDR/IRAP NAL unit of an H.264
    or H.265 stream, or for other codecs the first system header (GB PS sends it with the PSM on keyframes)."""

    def __init__(self) -> None:
        self.packets = 0
        self.ssrcs: list[int] = []
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.ts_span = 0  # RTP clock ticks covered (wraps handled packet to packet)
        self.packs = 0
        self.system_headers = 0
        self.psms = 0
        self.stream_types: dict[int, int] = {}  # stream_id -> stream_type from the PSM
        self.keyframe_at: float | None = None
        self._tail = b""
        self._psm: bytearray | None = None
        self._system_at: float | None = None

    def feed(self, ssrc: int, timestamp: int, payload: bytes, now: float) -> None:
        self.packets += 1
        if ssrc not in self.ssrcs and len(self.ssrcs) < MAX_SSRCS:
            self.ssrcs.append(ssrc)
        if self.first_at is None:
            self.first_at, self.first_ts = now, timestamp
        elif self.last_ts is not None:
            step = (timestamp - self.last_ts) & 0xFFFFFFFF
            if step < 0x80000000:  # forward in RTP time (a late packet does not count back)
                self.ts_span += step
        self.last_at, self.last_ts = now, timestamp
        payload = bytes(payload)
        if self._psm is not None:
            self._psm += payload[: max(0, PSM_MAX - len(self._psm))]
            self._complete_psm()
        self._scan(self._tail + payload, now)

    def _scan(self, data: bytes, now: float) -> None:
        pos = data.find(START)
        for _ in range(len(data)):  # bounded: every step moves past a start code
            if pos < 0 or pos + 3 >= len(data):
                break
            code = data[pos + 3]
            if code == ps.PACK_START:
                self.packs += 1
            elif code == ps.SYSTEM_HEADER:
                self.system_headers += 1
                self._system_at = now  # a keyframe's, if the PSM that follows names no H.264/H.265
                self._system_keyframe()
            elif code == ps.PSM:
                self.psms += 1
                if self._psm is None:
                    self._psm = bytearray(data[pos:pos + PSM_MAX])
                    self._complete_psm()
            elif self.keyframe_at is None and _keyframe_nal(self.codec, code):
                self.keyframe_at = now
            pos = data.find(START, pos + 3)
        self._tail = data[-3:]

    def _complete_psm(self) -> None:
        psm = self._psm
        if psm is None or len(psm) < 6:
            return
        total = 6 + ((psm[4] << 8) | psm[5])
        if total > PSM_MAX:
            self._psm = None
            return
        if len(psm) >= total:
            self.stream_types.update(ps.walk(bytes(psm[:total])).stream_types)
            self._psm = None
            self._system_keyframe()

    def _system_keyframe(self) -> None:
        if self.keyframe_at is None and self._system_at is not None and self.codec not in ("", "H264", "H265"):
            self.keyframe_at = self._system_at

    @property
    def codec(self) -> str:
        for sid, stream_type in sorted(self.stream_types.items()):
            if 0xE0 <= sid <= 0xEF:
                return CODECS.get(stream_type, f"stream type 0x{stream_type:02x}")
        return ""

    def speed(self) -> float | None:
        """Media time over wall time (a download's achieved speed): the RTP 90 kHz clock against arrival."""
        if self.first_at is None or self.last_at is None or self.last_at - self.first_at < 0.2:
            return None
        return self.ts_span / 90000 / (self.last_at - self.first_at)


def parse_gb_time(text: str, tz: tzinfo) -> float | None:
    """``2024-05-01T08:03:09`` or the loose ``2024-5-1T8:3:9`` (quirk 15), local time of the platform's zone."""
    m = _GB_TIME.match(text or "")
    if m is None:
        return None
    try:
        return datetime(*(int(g) for g in m.groups()), tzinfo=tz).timestamp()  # type: ignore[misc]
    except ValueError:
        return None


def pick_range(items: list[dict[str, Any]], seconds: int, tz: tzinfo) -> tuple[int, int] | None:
    """The latest recording at least ``seconds`` long (else the longest), as [start, start + seconds]."""
    spans = []
    for item in items:
        a, b = parse_gb_time(str(item.get("start_time") or ""), tz), parse_gb_time(str(item.get("end_time") or ""), tz)
        if a is not None and b is not None and b - a >= 1:
            spans.append((int(a), int(b)))
    if not spans:
        return None
    long_enough = [s for s in spans if s[1] - s[0] >= seconds]
    a, b = max(long_enough) if long_enough else max(spans, key=lambda s: s[1] - s[0])
    return a, min(b, a + seconds)


# ------------------------------------------------------------------------------------------ the async probe


@dataclass
class _Opened:
    session: Session | None = None
    consumer: str = ""
    abandoned: bool = False  # the probe gave up before the receiver opened: end the session as soon as it does


class MediaProber:
    """Runs the media sessions of one conformance run. ``media`` is gb28181.media_sessions.MediaService;
    ``record_search(channel, start, end)`` the operation service's RecordInfo search; ``channels(device)`` the
    store's channel list (kept for its caller, gb28181/server.py; the voice outputs it was read for are now the
    broadcast probe's, gb28181/conformance/broadcast_probe.py)."""

    def __init__(self, *, media: Any, record_search: Callable[[str, float, float], Awaitable[dict[str, Any]]],
                 channels: Callable[[str], Awaitable[list[Any]]], mono: Callable[[], float],
                 wall: Callable[[], float], tz: tzinfo, settings: ProbeSettings | None = None) -> None:
        self.media = media
        self.record_search = record_search
        self.channels = channels
        self.mono = mono
        self.wall = wall
        self.tz = tz
        self.settings = settings or ProbeSettings()
        self._cleanup: set[asyncio.Task[Any]] = set()

    async def run(self, device_id: str, channel_id: str, modes: tuple[str, ...],
                  into: MediaObservations) -> MediaObservations:
        """Fill ``into`` session by session (what finished stays there if the run's budget cancels the rest). Voice
        broadcast is not a session of the channel: gb28181/conformance/broadcast_probe.py runs it."""
        if not callable(getattr(self.media.backend, "subscribe", None)):
            why = "the configured media backend gives no access to the RTP packets (use the embedded receiver)"
            for mode in modes:
                into.sessions[mode] = MediaSession(mode, skipped=why)
            return into
        recording: tuple[int, int] | str | None = None
        for mode in modes:
            if mode not in MODES:
                continue
            kind = MODES[mode][0]
            start = end = 0
            if kind != PLAY:
                if recording is None:
                    recording = await self._recording(channel_id)
                if isinstance(recording, str):
                    into.sessions[mode] = MediaSession(mode, skipped=recording)
                    continue
                seconds = self.settings.history_seconds if kind == PLAYBACK else self.settings.download_seconds
                start, end = recording[0], min(recording[1], recording[0] + seconds)
            into.sessions[mode] = await self.session(mode, channel_id, start, end)
            log.info("conformance %s: media %s: %s", device_id, mode, into.sessions[mode].error or "observed")
        return into

    async def _recording(self, channel_id: str) -> tuple[int, int] | str:
        """A recorded range to play back (RecordInfo over the last ``record_window``), or why there is none."""
        now = self.wall()
        try:
            found = await self.record_search(channel_id, now - self.settings.record_window, now)
        except (QueryError, OperationError) as exc:
            return f"no recording to play back: RecordInfo failed ({getattr(exc, 'reason', None) or exc})"
        longest = max(self.settings.history_seconds, self.settings.download_seconds)
        picked = pick_range(list(found.get("items") or []), longest, self.tz)
        if picked is None:
            hours = self.settings.record_window / 3600
            return f"no recording to play back: RecordInfo listed none in the last {hours:g} h"
        return picked

    async def session(self, mode: str, channel_id: str, start: int = 0, end: int = 0) -> MediaSession:
        kind, transport = MODES[mode]
        if kind == PLAY and self.media.table.shared(channel_id) is not None:
            return MediaSession(mode, skipped="the channel's live stream is already open (a viewer): not INVITEd "
                                              "again")  # fmt: skip
        s = self.settings
        scanner = StreamScanner()
        opened = _Opened()

        def tap(packet: Any) -> None:
            scanner.feed(packet.ssrc, packet.timestamp, packet.payload, self.mono())

        def on_open(session: Session, consumer: str) -> None:
            opened.session, opened.consumer = session, consumer
            try:
                self.media.backend.subscribe(session.handle, tap)
            except MediaError as exc:  # the receiver is gone already: the session fails on its own
                log.info("conformance: cannot tap media session %s: %s", session.id, exc)
            if opened.abandoned:
                self._spawn(self._stop(opened))

        task = asyncio.get_running_loop().create_task(self.media.start(
            channel_id, kind, transport=transport, start=start, end=end,
            speed=s.download_speed if kind == DOWNLOAD else 1, what="conformance", on_open=on_open))  # fmt: skip
        task.add_done_callback(_retrieve)
        cfg = self.media.cfg
        error, controls, status_wait = "", [], 0.0
        try:
            try:
                async with asyncio.timeout(cfg.invite_timeout + cfg.no_media_timeout + 5):
                    await asyncio.shield(task)
            except SessionError as exc:
                error = exc.reason + (" (timed out)" if exc.kind == "timeout" else "")
            except TimeoutError:
                error = f"no media within {cfg.invite_timeout + cfg.no_media_timeout + 5:g} s (timed out)"
            session = opened.session
            if not error and session is not None:
                await self._until(lambda: scanner.keyframe_at is not None, s.keyframe_wait, session)
                if kind == PLAY:
                    kf = scanner.keyframe_at
                    await self._until(lambda: kf is not None and self.mono() >= kf + s.live_seconds,
                                      s.live_seconds, session)  # fmt: skip
                elif kind == PLAYBACK:
                    controls = await self._controls(session)
                    status_wait = s.history_seconds / s.scale + s.end_slack
                else:
                    status_wait = s.download_seconds + s.end_slack  # a device ignoring the speed still ends
                if status_wait:
                    await self._until(lambda: False, status_wait, session)
        finally:
            ended = await self._end(opened, task)
        return self._observe(mode, opened.session, scanner, error, tuple(controls), status_wait, ended)

    async def _until(self, done: Callable[[], bool], seconds: float, session: Session) -> None:
        """Wait until ``done()``, the session is over, or ``seconds`` passed (bounded polling)."""
        deadline = self.mono() + seconds
        for _ in range(int(seconds / self.settings.poll) + 2):
            if done() or session.call.over or self.mono() >= deadline:
                return
            await asyncio.sleep(self.settings.poll)

    async def _controls(self, session: Session) -> list[tuple[str, bool]]:
        """MANSRTSP PAUSE, PLAY (resume), PLAY with Scale (App. B; spec digest §10.5): which the device took."""
        out: list[tuple[str, bool]] = []
        steps: list[tuple[str, dict[str, Any]]] = [("pause", {}), ("resume", {}),
                                                   ("scale", {"scale": self.settings.scale})]
        for name, kw in steps:
            if session.call.over:
                break
            try:
                await self.media.control(session.id, name, **kw)
                out.append((name, True))
            except SessionError as exc:
                log.info("conformance: MANSRTSP %s on %s: %s", name, session.id, exc.reason)
                out.append((name, False))
            if name == "pause":
                await asyncio.sleep(self.settings.pause_seconds)
        return out

    async def _stop(self, opened: _Opened) -> None:
        session = opened.session
        if session is None or session.call.over:
            return
        try:
            await self.media.stop(opened.consumer)
        except SessionError:  # it ended meanwhile
            pass

    async def _end(self, opened: _Opened, task: asyncio.Task[Any]) -> bool:
        """End what this session opened (BYE / CANCEL), shielded from the run's cancellation; True when over."""
        if opened.session is None:
            if not task.done():
                opened.abandoned = True  # on_open ends it the moment its receiver opens
            return True
        stopper = self._spawn(self._stop(opened))
        try:
            async with asyncio.timeout(self.media.cfg.invite_timeout + 2):
                await asyncio.shield(stopper)
        except TimeoutError:
            log.warning("conformance: media session %s did not end in time", opened.session.id)
        # another viewer joined the stream meanwhile: it is theirs now, not left streaming by the run
        return opened.session.call.over or bool(opened.session.consumers)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._cleanup.add(task)
        task.add_done_callback(self._cleanup.discard)
        return task

    def _observe(self, mode: str, session: Session | None, scanner: StreamScanner, error: str,
                 controls: tuple[tuple[str, bool], ...], status_wait: float, ended: bool) -> MediaSession:
        kind, transport = MODES[mode]
        if session is None:
            return MediaSession(mode, error=error or "the session did not open", ended=ended)
        call = session.call
        if not error and call.error:
            error = call.reason  # the stream broke off during the watch (no media for the timeout)
        offer = _parse(session.offer_sdp)
        answer = _parse(session.answer_sdp)
        offer_media = offer.video if offer else None
        answer_media = answer.video if answer else None
        stats = session.stats
        status_121 = None
        if kind != PLAY and not error:
            status_121 = any(event == MEDIA_END for event, _ in call.history)
        answered = call.answered_at
        found = MediaSession(
            mode=mode, error=error,
            answer_time=answered - call.sent_at if answered is not None and call.sent_at is not None else None,
            offer_y=session.offered_ssrc, answer_y=(answer.ssrc or "").strip() if answer else "",
            answer_f=answer.format_line if answer else None,
            offer_setup=(offer_media.setup or "") if offer_media and transport != sdp.UDP else "",
            answer_setup=(answer_media.setup or "") if answer_media and transport != sdp.UDP else "",
            rtp_ssrcs=tuple(scanner.ssrcs), ps_pack_header=scanner.packs > 0,
            ps_system_header=scanner.system_headers > 0, ps_psm=scanner.psms > 0, codec=scanner.codec,
            first_keyframe=scanner.keyframe_at - answered if scanner.keyframe_at is not None and answered is not None
            else None,
            controls=controls, media_status_121=status_121,
            asked_speed=float(session.speed) if kind == DOWNLOAD else None,
            speed=scanner.speed() if kind == DOWNLOAD else None, ended=ended,
            packets=stats.packets if stats else scanner.packets, bytes=stats.bytes if stats else 0,
            lost=stats.lost if stats else 0, foreign=stats.foreign if stats else 0,
        )  # fmt: skip
        return replace(found, evidence=evidence(found, scanner, session, answer is not None, status_wait))


def evidence(s: MediaSession, scanner: StreamScanner, session: Session, answered: bool,
             status_wait: float) -> tuple[str, ...]:
    """What the report shows under a media clause, one fact per line."""
    kind, transport = MODES[s.mode]
    lines = []
    if s.answer_time is not None:
        lines.append(f"INVITE {kind} over {transport} -> 200 OK in {s.answer_time:.2f} s")
    if answered:
        setup = f", a=setup:{s.answer_setup or '(none)'} to our a=setup:{s.offer_setup}" if s.offer_setup else ""
        lines.append(f"answer: y={s.answer_y or '(none)'} (offered {s.offer_y}), "
                     f"f={s.answer_f if s.answer_f is not None else '(none)'}{setup}")  # fmt: skip
    if s.rtp_ssrcs:
        ssrcs = ", ".join(f"{x} (0x{x:08x})" for x in s.rtp_ssrcs)
        lines.append(f"RTP: SSRC {ssrcs}; {s.packets} packets, {s.bytes} bytes, {s.lost} lost"
                     + (f", {s.foreign} from another SSRC dropped" if s.foreign else ""))
        types = ", ".join(f"0x{sid:02x}: type 0x{st:02x}" for sid, st in sorted(scanner.stream_types.items()))
        lines.append(f"PS: {scanner.packs} pack headers, {scanner.system_headers} system headers, {scanner.psms} "
                     f"PSMs ({types or 'no stream types'}); video codec {s.codec or '(none)'}")  # fmt: skip
        if s.first_keyframe is not None:
            lines.append(f"first keyframe {s.first_keyframe:.2f} s after the 200 OK")
    if s.controls:
        lines.append("MANSRTSP " + ", ".join(f"{n} {'ok' if ok else 'refused'}" for n, ok in s.controls))
    if s.speed is not None:
        lines.append(f"download at {s.speed:.1f}x (asked {s.asked_speed or 1:g}x)")
    if s.media_status_121 is not None:
        lines.append("MediaStatus 121 received" if s.media_status_121 else
                     f"no MediaStatus 121 within {status_wait:g} s of the expected end")  # fmt: skip
    over = session.call.over
    lines.append(f"ended: {session.call.reason or session.call.state}" if over else
                 "not ended: the session is still open" if not s.ended else "handed over to another viewer")
    return tuple(lines)


def _parse(body: bytes) -> sdp.SessionDescription | None:
    if not body:
        return None
    try:
        return sdp.parse(body)
    except sdp.SdpError:
        return None


def _retrieve(task: asyncio.Task[Any]) -> None:
    """The start task's outcome is read through the session; this keeps asyncio from logging it as lost."""
    if not task.cancelled():
        task.exception()
