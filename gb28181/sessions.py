"""The media session table: one row per stream the platform receives, with its consumers (DECISIONS.md: stream
sharing — one live stream per (channel, stream number) serves every viewer without a second INVITE; it is torn
down when the last consumer leaves). Playback and download sessions are private to the consumer that asked.

Sans-IO and clock-free: callers pass ``now`` (wall time, for ``started``) and get decisions back.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from gb28181.invite import Call

PLAY, PLAYBACK, DOWNLOAD = "play", "playback", "download"
KINDS = (PLAY, PLAYBACK, DOWNLOAD)


@dataclass
class Session:
    id: str
    channel_id: str
    device_id: str
    kind: str  # PLAY | PLAYBACK | DOWNLOAD
    transport: str  # udp | tcp-passive | tcp-active (our side)
    ssrc: str  # the 10-digit y= we offered; replaced by the answer's (DECISIONS.md: the 200 OK wins)
    call: Call
    started: float  # wall time
    stream_number: int = 0
    start: int = 0  # history range (Unix seconds)
    end: int = 0
    speed: int = 1
    consumers: dict[str, str] = field(default_factory=dict)  # consumer id -> what it is ("api", "http", ...)
    media_port: int = 0  # our receive port
    media_address: str = ""  # the device's media ip:port from the 2xx
    handle: str = ""  # media backend handle
    call_id: str = ""
    stats: Any = None  # the last ReceiverStats seen
    filesize: int | None = None
    ended_at: float | None = None
    rtsp_cseq: int = 0
    scale: float = 1.0
    paused: bool = False
    offered_ssrc: str = ""  # ours, held in the allocator until the session ends
    offer_sdp: bytes = b""  # our INVITE's SDP
    answer_sdp: bytes = b""  # the device's 2xx SDP, as received

    def __post_init__(self) -> None:
        self.offered_ssrc = self.offered_ssrc or self.ssrc

    @property
    def state(self) -> str:
        return self.call.state

    def json(self, tz: tzinfo = UTC) -> dict[str, Any]:
        """The session table row (DECISIONS.md: times ISO 8601 with offset, in the platform timezone)."""
        s = self.stats
        return {
            "id": self.id, "channel": self.channel_id, "device_id": self.device_id, "kind": self.kind,
            "transport": self.transport, "ssrc": self.ssrc, "media_port": self.media_port,
            "media_address": self.media_address, "consumers": sorted(self.consumers),
            "consumer_names": dict(sorted(self.consumers.items())),  # id -> "api", "http", "upstream <superior>"
            "started": datetime.fromtimestamp(self.started, tz).isoformat(timespec="seconds"),
            "state": self.state, "reason": self.call.reason, "error": self.call.error,
            "packets": s.packets if s else 0, "bytes": s.bytes if s else 0, "lost": s.lost if s else 0,
            "start": self.start or None, "end": self.end or None, "paused": self.paused, "scale": self.scale,
            "filesize": self.filesize,
        }  # fmt: skip


class SessionError(ValueError):
    def __init__(self, reason: str, kind: str = "invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind  # invalid | unknown


@dataclass
class SessionTable:
    """Sessions by id, the live ones also by (channel, stream number); consumers by id."""

    max_sessions: int = 10_000
    sessions: dict[str, Session] = field(default_factory=dict)
    _live: dict[tuple[str, int], str] = field(default_factory=dict)
    _consumer_of: dict[str, str] = field(default_factory=dict)  # consumer -> session
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def shared(self, channel_id: str, stream_number: int = 0) -> Session | None:
        """The live session of a channel that a new viewer may join: one not ending or ended."""
        sid = self._live.get((channel_id, stream_number))
        session = self.sessions.get(sid) if sid else None
        if session is None or session.call.state in ("ending", "ended", "cancelling"):
            return None
        return session

    def add(self, session: Session) -> Session:
        if len(self.sessions) >= self.max_sessions:
            raise SessionError(f"too many media sessions ({self.max_sessions})")
        if session.kind not in KINDS:
            raise SessionError(f"kind must be one of {', '.join(KINDS)}")
        self.sessions[session.id] = session
        if session.kind == PLAY:
            self._live[(session.channel_id, session.stream_number)] = session.id
        return session

    def new_id(self, prefix: str = "s") -> str:
        return f"{prefix}{next(self._ids)}"

    def join(self, session: Session, what: str) -> str:
        """A new consumer of the session; returns its id."""
        consumer = self.new_id("c")
        session.consumers[consumer] = what
        self._consumer_of[consumer] = session.id
        return consumer

    def leave(self, consumer: str) -> tuple[Session | None, bool]:
        """Remove a consumer: (its session, whether it was the last one so the stream should end)."""
        sid = self._consumer_of.pop(consumer, None)
        session = self.sessions.get(sid) if sid else None
        if session is None:
            return None, False
        session.consumers.pop(consumer, None)
        return session, not session.consumers

    def session_of(self, consumer: str) -> Session | None:
        sid = self._consumer_of.get(consumer)
        return self.sessions.get(sid) if sid else None

    def find(self, ident: str) -> Session | None:
        """A session by its id, by a consumer id, or a channel's live session."""
        return self.sessions.get(ident) or self.session_of(ident) or self.shared(ident)

    def by_call_id(self, call_id: str) -> Session | None:
        for session in self.sessions.values():
            if session.call_id == call_id:
                return session
        return None

    def history_of(self, device_id: str, channel_id: str | None) -> list[Session]:
        """Playback/download sessions of a device (and channel, when the MediaStatus names one) still running,
        newest first: where a MediaStatus 121 that matches no dialog belongs."""
        found = [s for s in self.sessions.values() if s.kind != PLAY and s.device_id == device_id
                 and not s.call.over and (channel_id is None or s.channel_id == channel_id)]  # fmt: skip
        return sorted(found, key=lambda s: s.started, reverse=True)

    def remove(self, session: Session) -> None:
        self.sessions.pop(session.id, None)
        if self._live.get((session.channel_id, session.stream_number)) == session.id:
            del self._live[(session.channel_id, session.stream_number)]
        for consumer in list(session.consumers):
            self._consumer_of.pop(consumer, None)
        session.consumers.clear()

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(self.sessions.values()))

    def __len__(self) -> int:
        return len(self.sessions)
