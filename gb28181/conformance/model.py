"""What a conformance run produces: one verdict per clause with why and the evidence, and the observations the
clauses judge (issue 11). Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gb28181.conformance.trace import TraceEntry

PASS, WARN, FAIL, SKIP = "PASS", "WARN", "FAIL", "SKIP"
VERDICTS = (PASS, WARN, FAIL, SKIP)
MEDIA_UNAVAILABLE = "media sessions not available in this build"
BROADCAST_UNAVAILABLE = "platform broadcast not available"
NO_VIDEO = "no video channel known to open a media session on"


@dataclass(frozen=True)
class Result:
    clause: str  # e.g. "catalog.sumnum"
    title: str
    reference: str  # GB/T 28181 clause (spec digest section)
    verdict: str  # one of VERDICTS
    why: str
    evidence: tuple[str, ...] = ()

    def json(self) -> dict[str, Any]:
        return {"clause": self.clause, "title": self.title, "reference": self.reference, "verdict": self.verdict,
                "why": self.why, "evidence": list(self.evidence)}  # fmt: skip


@dataclass(frozen=True)
class Probe:
    """One active probe the run performed through the platform's API: when, how long, and its outcome."""

    name: str  # "catalog", "info", "status", "config", "presets", "records", "ptz", "record", "guard", ...
    started: float  # monotonic
    elapsed: float
    ok: bool
    error: str = ""
    kind: str = ""  # the QueryError kind when not ok: timeout, refused, transport, error
    value: Any = None  # what the API returned

    @property
    def timed_out(self) -> bool:
        return not self.ok and self.kind == "timeout"


@dataclass
class Observations:
    """Everything the clauses look at. ``now``/``started`` are the platform's monotonic clock; ``wall`` its wall
    clock at the end of the run; ``utc_offset`` the platform timezone's offset in seconds (devices send local
    time, spec digest §4.4)."""

    device_id: str
    platform_id: str
    entries: list[TraceEntry] = field(default_factory=list)
    probes: dict[str, Probe] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0
    wall: float = 0.0
    utc_offset: float = 8 * 3600.0
    gb_version: str = ""  # the X-GB-ver the device registered with ("" for 2016 devices that send none)
    min_expires: int = 3600  # the platform's [sip] min_expires
    media: Any = None  # MediaObservations from Platform.media_probe; None when the platform has none

    def probe(self, name: str) -> Probe | None:
        return self.probes.get(name)


# ------------------------------------------------------------------------------------------ media
LIVE_MODES = ("live-udp", "live-tcp-passive", "live-tcp-active")
MEDIA_MODES = (*LIVE_MODES, "playback", "download")


@dataclass(frozen=True)
class MediaSession:
    """What one media session of the run showed, filled by ``Platform.media_probe`` (gb28181/media_probe.py: INVITE
    through the media service, RTP tapped at the receiver, PS walked); the clauses judge it (spec digest §10)."""

    mode: str  # one of MEDIA_MODES
    error: str = ""  # the INVITE failed or timed out, or no media came: why (the session then shows little else)
    skipped: str = ""  # the session was not attempted: why (no recording to play back, no packet access, ...)
    answer_time: float | None = None  # s from INVITE to the 200 OK
    offer_y: str = ""  # the SSRC our offer carried in y=
    answer_y: str = ""  # the y= of the device's answer ("" when absent)
    answer_f: str | None = None  # the f= line of the answer, None when absent
    offer_setup: str = ""  # a=setup of our offer (TCP modes): "passive" or "active"
    answer_setup: str = ""  # a=setup of the answer
    rtp_ssrcs: tuple[int, ...] = ()  # distinct SSRCs seen in RTP
    ps_pack_header: bool = False  # MPEG-PS pack header (0x000001BA) seen
    ps_system_header: bool = False  # system header (0x000001BB) on keyframes
    ps_psm: bool = False  # program stream map (0x000001BC)
    codec: str = ""  # detected video codec: "H264", "H265", "SVAC", ...
    first_keyframe: float | None = None  # s from the 200 OK to the first keyframe
    controls: tuple[tuple[str, bool], ...] = ()  # playback MANSRTSP: ("pause", ok), ("resume", ok), ("scale", ok)
    media_status_121: bool | None = None  # playback/download: MediaStatus NotifyType 121 at the end
    asked_speed: float | None = None  # download: the speed asked for in the INVITE (a=downloadspeed)
    speed: float | None = None  # download: achieved speed (media time / wall time)
    ended: bool = True  # the run ended the session (BYE answered): it never leaves a device streaming
    packets: int = 0  # RTP packets received
    bytes: int = 0  # their payload bytes
    lost: int = 0  # packets lost (sequence gaps)
    foreign: int = 0  # packets from a second SSRC, dropped
    evidence: tuple[str, ...] = ()  # what the probe saw, line by line (SDP answer, PS walk, timings, teardown)


@dataclass(frozen=True)
class BroadcastAttempt:
    """One short voice broadcast of the run (gb28181/conformance/broadcast_probe.py): what the broadcast service
    said; the clause reads the SIP exchange itself (Notify, Response, the device's INVITE, ACK, BYE) from the trace
    between ``started`` and ``ended`` (spec digest §7.11)."""

    target: str  # the TargetID (a 137 voice output, or the device for all its outputs)
    seconds: float  # length of the tone sent
    started: float  # monotonic: just before the Notify Broadcast
    ended: float  # monotonic: the broadcast was over (or given up)
    row: dict[str, Any] | None = None  # the service's row once it ended: reason, packets, payload, ssrc, transport
    error: str = ""  # why it failed: refused (Result ERROR, SIP error), no INVITE, no ACK, audio failed, timed out
    kind: str = ""  # the BroadcastError kind: refused, timeout, offline, invalid, busy
    over: bool = True  # False: it could not be ended (the run never leaves one running knowingly)
    notes: tuple[str, ...] = ()  # how the probe ended it when it had to (budget, bound)


@dataclass
class MediaObservations:
    sessions: dict[str, MediaSession] = field(default_factory=dict)  # by mode, filled as each session ends
    broadcast: BroadcastAttempt | None = None  # voice broadcast, when the device lists an audio output
    voice_output: bool = False  # the device lists a voice output (type 137) in its catalog
    broadcast_skip: str = ""  # why no broadcast was tried (not reached, no broadcast service, channels unreadable)
    skipped: str = ""  # why no media session was tried at all (every media clause is then SKIP with it)
