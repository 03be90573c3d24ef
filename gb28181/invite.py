"""The platform's side of a GB/T 28181 media session (2016/2022 §9.2 live, §9.8 playback, §9.9 download; spec digest
§10): the INVITE/1xx/2xx/ACK/BYE/CANCEL life of one call as a transition table, its two timers (INVITE timeout, no
media), and the messages it sends besides the SDP (Subject header, MANSRTSP INFO bodies).

Sans-IO and clock-free: every input takes ``now``; the call returns actions for the async layer
(gb28181/media_sessions.py) to carry out and reports ``next_deadline()``. ACK of the 2xx is the SIP stack's job
(RFC 3261 §13.2.2.4, endpoint ``auto_ack``); the call only records that the 2xx came.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# States (RFC 3261 §13 from the caller's side, plus the GB media check).
IDLE = "idle"  # receiver opened, INVITE not yet sent
CALLING = "calling"  # INVITE sent, no answer yet
PROCEEDING = "proceeding"  # a 1xx came (100 Trying, 180/183)
CANCELLING = "cancelling"  # CANCEL sent; waiting for the 487 (or a 2xx that crossed it: then BYE)
WAITING_MEDIA = "waiting-media"  # 2xx + ACK; no RTP yet
STREAMING = "streaming"  # RTP arrives
ENDING = "ending"  # BYE sent, waiting for its answer
ENDED = "ended"

LIVE_STATES = (IDLE, CALLING, PROCEEDING, CANCELLING, WAITING_MEDIA, STREAMING, ENDING)

# Inputs.
SEND = "send"  # the INVITE went out
PROVISIONAL = "provisional"  # 1xx
ACCEPTED = "accepted"  # 2xx (the stack ACKs it)
REJECTED = "rejected"  # 3xx-6xx, or the transaction failed (timer B, transport)
INVITE_TIMEOUT = "invite-timeout"  # no final answer within [media] invite_timeout
MEDIA = "media"  # RTP seen
NO_MEDIA = "no-media"  # no RTP within [media] no_media_timeout (first packet or since the last one)
STOP = "stop"  # the operator (or the last consumer leaving) ends the session
REMOTE_BYE = "remote-bye"  # the device sent BYE
MEDIA_END = "media-end"  # MediaStatus 121: the device finished the file (§9.8.4, A.2.5.4); we send BYE
BYE_DONE = "bye-done"  # our BYE was answered (or failed: the dialog is over either way, §15.1.1)


@dataclass(frozen=True)
class SendInvite:
    pass


@dataclass(frozen=True)
class SendCancel:
    pass


@dataclass(frozen=True)
class SendBye:
    pass


@dataclass(frozen=True)
class ConnectMedia:
    """tcp-active / the answer's SSRC: tell the media backend what the 2xx said."""


@dataclass(frozen=True)
class Release:
    """Close the receiver, free the SSRC; the session is over (``reason`` says why, ``error`` if it failed)."""

    reason: str
    error: bool = False


Action = SendInvite | SendCancel | SendBye | ConnectMedia | Release

# (state, input) -> (next state, actions, reason template). A pair missing from the table is ignored explicitly
# (``Call.handle`` returns no actions): late 1xx after the 2xx, a second STOP, media after BYE, and so on.
_T: dict[tuple[str, str], tuple[str, tuple[type, ...], str]] = {
    (IDLE, SEND): (CALLING, (SendInvite,), ""),
    (IDLE, STOP): (ENDED, (Release,), "stopped before the INVITE was sent"),
    (CALLING, PROVISIONAL): (PROCEEDING, (), ""),
    (CALLING, ACCEPTED): (WAITING_MEDIA, (ConnectMedia,), ""),
    (PROCEEDING, ACCEPTED): (WAITING_MEDIA, (ConnectMedia,), ""),
    (CALLING, REJECTED): (ENDED, (Release,), "{detail}"),
    (PROCEEDING, REJECTED): (ENDED, (Release,), "{detail}"),
    # RFC 3261 §9.1: a CANCEL before any 1xx must wait for one; the stack holds it (cancel_pending).
    (CALLING, INVITE_TIMEOUT): (CANCELLING, (SendCancel,), ""),
    (PROCEEDING, INVITE_TIMEOUT): (CANCELLING, (SendCancel,), ""),
    (CALLING, STOP): (CANCELLING, (SendCancel,), ""),
    (PROCEEDING, STOP): (CANCELLING, (SendCancel,), ""),
    (CANCELLING, REJECTED): (ENDED, (Release,), "{why}"),
    (CANCELLING, INVITE_TIMEOUT): (ENDED, (Release,), "{why}"),  # not even the CANCEL got a 487
    (CANCELLING, ACCEPTED): (ENDING, (SendBye,), ""),  # the 2xx crossed our CANCEL (§9.1): end it by BYE
    (WAITING_MEDIA, MEDIA): (STREAMING, (), ""),
    (WAITING_MEDIA, NO_MEDIA): (ENDING, (SendBye,), "no media within {no_media:g} s after the 200 OK"),
    (STREAMING, NO_MEDIA): (ENDING, (SendBye,), "media stopped for {no_media:g} s"),
    (WAITING_MEDIA, STOP): (ENDING, (SendBye,), "stopped"),
    (STREAMING, STOP): (ENDING, (SendBye,), "stopped"),
    (WAITING_MEDIA, MEDIA_END): (ENDING, (SendBye,), "the device finished sending (MediaStatus 121)"),
    (STREAMING, MEDIA_END): (ENDING, (SendBye,), "the device finished sending (MediaStatus 121)"),
    (WAITING_MEDIA, REMOTE_BYE): (ENDED, (Release,), "the device ended the session (BYE)"),
    (STREAMING, REMOTE_BYE): (ENDED, (Release,), "the device ended the session (BYE)"),
    (ENDING, REMOTE_BYE): (ENDED, (Release,), "{why}"),  # BYEs crossed
    (ENDING, BYE_DONE): (ENDED, (Release,), "{why}"),
}

# Outcomes that are failures for the operator (a clear error), not normal ends.
_ERRORS = {(CALLING, REJECTED), (PROCEEDING, REJECTED), (WAITING_MEDIA, NO_MEDIA), (STREAMING, NO_MEDIA)}


@dataclass
class Call:
    """One media session's signalling state. ``invite_timeout`` / ``no_media_timeout`` are ``[media]`` settings."""

    invite_timeout: float
    no_media_timeout: float
    state: str = IDLE
    reason: str = ""  # why it ended (or is ending)
    error: bool = False  # it ended as a failure
    sent_at: float | None = None
    answered_at: float | None = None
    last_media: float | None = None
    cancel_sent_at: float | None = None
    history: list[tuple[str, str]] = field(default_factory=list)  # (input, new state), bounded

    def handle(self, event: str, now: float, detail: str = "") -> list[Action]:
        entry = _T.get((self.state, event))
        if entry is None:
            return []
        old = self.state
        new, kinds, template = entry
        if template:
            text = template.format(detail=detail, why=self.reason or detail, no_media=self.no_media_timeout)
            if not self.reason or (old, event) in _ERRORS:
                self.reason = text
        if (old, event) in _ERRORS or (event == INVITE_TIMEOUT and old in (CALLING, PROCEEDING)):
            self.error = True
        if event == INVITE_TIMEOUT and old in (CALLING, PROCEEDING):
            self.reason = f"the device did not answer the INVITE within {self.invite_timeout:g} s"
            self.cancel_sent_at = now
        elif event == STOP and old in (CALLING, PROCEEDING):
            self.reason = "stopped before the device answered"
            self.cancel_sent_at = now
        if event == SEND:
            self.sent_at = now
        elif event == ACCEPTED:
            self.answered_at = now
        elif event == MEDIA:
            self.last_media = now
        self.state = new
        if len(self.history) < 64:
            self.history.append((event, new))
        return [Release(self.reason, self.error) if k is Release else k() for k in kinds]

    def media_seen(self, now: float, last_packet: float | None) -> list[Action]:
        """What the receiver reported (its loop-time of the last packet); the first packet moves to STREAMING."""
        if last_packet is None:
            return []
        if self.last_media is None or last_packet > self.last_media:
            actions = self.handle(MEDIA, now) if self.state == WAITING_MEDIA else []
            self.last_media = last_packet
            return actions
        return []

    def next_deadline(self) -> float | None:
        if self.state in (CALLING, PROCEEDING) and self.sent_at is not None:
            return self.sent_at + self.invite_timeout
        if self.state == CANCELLING and self.cancel_sent_at is not None:
            return self.cancel_sent_at + self.invite_timeout
        if self.state == WAITING_MEDIA and self.answered_at is not None:
            return self.answered_at + self.no_media_timeout
        if self.state == STREAMING and self.last_media is not None:
            return self.last_media + self.no_media_timeout
        return None

    def handle_timer(self, now: float) -> list[Action]:
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        if self.state in (CALLING, PROCEEDING, CANCELLING):
            return self.handle(INVITE_TIMEOUT, now)
        return self.handle(NO_MEDIA, now)

    @property
    def over(self) -> bool:
        return self.state == ENDED


# ------------------------------------------------------------------------------------------- messages


def subject(channel_id: str, ssrc: str, receiver_id: str, receiver_seq: str = "0") -> str:
    """``Subject: sender:senderSeq,receiver:receiverSeq`` (2016/2022 App. L; spec digest §10.2): the media source's
    ID with our SSRC, then the requesting platform with its stream number (``0`` in practice)."""
    return f"{channel_id}:{ssrc},{receiver_id}:{receiver_seq}"


SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)  # App. B: what a device must support; 2022 adds negative (reverse) scales


class RtspError(ValueError):
    """A playback control the standard does not define (bad scale, negative position)."""


def mansrtsp(action: str, cseq: int, *, scale: float | None = None, position: float | None = None) -> bytes:
    """The MANSRTSP body of a playback-control INFO (App. B; spec digest §10.5): ``pause``, ``resume``,
    ``scale`` (speed), ``seek`` (seconds from the start of the requested range), ``teardown``. CRLF lines."""
    if not 1 <= cseq <= 2**31:
        raise RtspError("CSeq out of range")
    if action == "pause":
        lines = ["PAUSE RTSP/1.0", f"CSeq: {cseq}", "PauseTime: now"]
    elif action == "resume":
        lines = ["PLAY RTSP/1.0", f"CSeq: {cseq}", "Range: npt=now-"]
    elif action == "scale":
        if scale is None or not (abs(scale) in SCALES and scale >= -1):
            raise RtspError(f"scale must be one of {', '.join(f'{s:g}' for s in SCALES)} (or -1..-0.25), "
                            f"not {scale!r}")
        lines = ["PLAY RTSP/1.0", f"CSeq: {cseq}", f"Scale: {scale:g}" if scale != int(scale) else
                 f"Scale: {scale:.1f}"]
    elif action == "seek":
        if position is None or position < 0:
            raise RtspError("seek needs a position in seconds, 0 or more")
        lines = ["PLAY RTSP/1.0", f"CSeq: {cseq}", f"Range: npt={position:g}-"]
    elif action == "teardown":
        lines = ["TEARDOWN RTSP/1.0", f"CSeq: {cseq}"]
    else:
        raise RtspError(f"unknown playback control {action!r} (pause, resume, scale, seek, teardown)")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def read_mansrtsp(body: bytes) -> tuple[str, dict[str, str]]:
    """A MANSRTSP message -> (first line, headers by lower-case name); for tests and devices' INFO answers."""
    text = body.decode("utf-8", "replace").replace("\r\n", "\n")
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        raise RtspError("empty MANSRTSP body")
    fields = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return lines[0].strip(), fields


# ------------------------------------------------------------------------- Subject and App. K replacement


_SUBJECT = re.compile(r"^\s*([^:,\s]+)(?::([^,\s]*))?\s*(?:,\s*([^:,\s]+)(?::([^,\s]*))?)?\s*$")


@dataclass(frozen=True)
class Subject:
    """``sender:senderSeq,receiver:receiverSeq`` (App. L); parsed defensively, parts may be missing (spec digest
    §10.2: one-part Subjects exist, and Dahua puts 19-character hex strings in the sequences)."""

    sender: str = ""
    sender_seq: str = ""
    receiver: str = ""
    receiver_seq: str = ""


def parse_subject(value: str | None) -> Subject:
    m = _SUBJECT.match(value or "")
    if m is None:
        return Subject()
    return Subject(*(g or "" for g in m.groups()))


def replaces(old: Subject, new: Subject) -> bool:
    """2022 App. K (DECISIONS.md): a new INVITE replaces an old send only when its Subject's sender *and*
    receiver identities both match (one superior never kills another's stream). The receiver's identity is its
    ID with its receiver sequence (App. L: the receiver's window), so a superior may hold two streams of one
    channel for two windows; the sender's sequence is the SSRC, new in every INVITE, and is not compared. Which
    INVITEs are candidates (live vs history, stream number) is the caller's rule."""
    return bool(new.sender and new.receiver) and \
        (old.sender, old.receiver, old.receiver_seq) == (new.sender, new.receiver, new.receiver_seq)
