"""Voice broadcast as the platform runs it (GB/T 28181-2016/2022 §9.12, A.2.5.5, A.2.6.11; spec digest §7.11):
the platform sends MESSAGE Notify Broadcast (SourceID = us or a voice input, TargetID = a 137 audio output or the
device), the device answers Response Broadcast Result, then INVITEs the SourceID for the audio (To / Request-URI
= SourceID, ``m=audio`` recvonly, PCMA 8 and/or PS 96, its ``y=``), we answer 200 sendonly and send G.711A RTP.

Sans-IO and clock-free: one broadcast's life as a transition table (inputs -> state, actions), the table of
broadcasts that matches a device's INVITE to the broadcast waiting for it, the choice of target channel, and the
SDP reading/answering. gb28181/broadcast_service.py carries the actions out.
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from gb28181 import sdp

# States.
NOTIFYING = "notifying"  # Notify Broadcast sent; neither the Response nor the device's INVITE yet
ACCEPTED = "accepted"  # Response Broadcast Result OK; waiting for the device's INVITE
ANSWERED = "answered"  # our 200 to its INVITE went out; waiting for the ACK
SENDING = "sending"  # RTP flows
ENDING = "ending"  # our BYE sent
ENDED = "ended"
WAITING = (NOTIFYING, ACCEPTED)

# Inputs.
RESULT_OK = "result-ok"
REFUSED = "refused"  # SIP error to the Notify, Result ERROR, no Response
INVITE = "invite"  # the device's INVITE matched this broadcast
NO_INVITE = "no-invite"  # the wait for the INVITE ran out
ACK = "ack"
NO_ACK = "no-ack"  # the stack gave up retransmitting our 200 (RFC 3261 §13.3.1.4)
EOF = "eof"  # the whole file was sent
MEDIA_FAILED = "media-failed"  # the media connection could not be opened or broke
STOP = "stop"  # the operator
REMOTE_BYE = "remote-bye"
BYE_DONE = "bye-done"


@dataclass(frozen=True)
class Answer:
    """Answer the device's INVITE 200 with our sendonly SDP."""


@dataclass(frozen=True)
class StartMedia:
    """Start sending the audio (the ACK came)."""


@dataclass(frozen=True)
class StopMedia:
    pass


@dataclass(frozen=True)
class SendBye:
    pass


@dataclass(frozen=True)
class Release:
    reason: str
    error: bool = False


Action = Answer | StartMedia | StopMedia | SendBye | Release

_T: dict[tuple[str, str], tuple[str, tuple[type, ...], str]] = {
    (NOTIFYING, RESULT_OK): (ACCEPTED, (), ""),
    (NOTIFYING, INVITE): (ANSWERED, (Answer,), ""),  # some devices INVITE before their Response MESSAGE
    (ACCEPTED, INVITE): (ANSWERED, (Answer,), ""),
    (NOTIFYING, REFUSED): (ENDED, (Release,), "{detail}"),
    (ACCEPTED, REFUSED): (ENDED, (Release,), "{detail}"),
    (NOTIFYING, NO_INVITE): (ENDED, (Release,), "the device sent no INVITE for the audio within {wait:g} s"),
    (ACCEPTED, NO_INVITE): (ENDED, (Release,), "the device said OK but sent no INVITE within {wait:g} s"),
    (NOTIFYING, STOP): (ENDED, (Release,), "stopped before the device's INVITE"),
    (ACCEPTED, STOP): (ENDED, (Release,), "stopped before the device's INVITE"),
    (ANSWERED, ACK): (SENDING, (StartMedia,), ""),
    (ANSWERED, NO_ACK): (ENDING, (SendBye,), "the device never ACKed our 200 OK"),
    (ANSWERED, STOP): (ENDING, (StopMedia, SendBye), "stopped"),
    (SENDING, STOP): (ENDING, (StopMedia, SendBye), "stopped"),
    (SENDING, EOF): (ENDING, (SendBye,), "end of file"),
    (ANSWERED, MEDIA_FAILED): (ENDING, (StopMedia, SendBye), "{detail}"),
    (SENDING, MEDIA_FAILED): (ENDING, (StopMedia, SendBye), "{detail}"),
    (ANSWERED, REMOTE_BYE): (ENDED, (StopMedia, Release), "the device ended the broadcast (BYE)"),
    (SENDING, REMOTE_BYE): (ENDED, (StopMedia, Release), "the device ended the broadcast (BYE)"),
    (ENDING, REMOTE_BYE): (ENDED, (Release,), "{why}"),  # BYEs crossed
    (ENDING, BYE_DONE): (ENDED, (Release,), "{why}"),
}
_ERRORS = {(NOTIFYING, REFUSED), (ACCEPTED, REFUSED), (NOTIFYING, NO_INVITE), (ACCEPTED, NO_INVITE),
           (ANSWERED, NO_ACK), (ANSWERED, MEDIA_FAILED), (SENDING, MEDIA_FAILED)}  # fmt: skip


@dataclass
class Broadcast:
    """One voice broadcast: who, what, its state and what was sent."""

    id: str
    device_id: str
    target_id: str  # TargetID: a 137 channel, or the device for all its outputs
    source_id: str  # SourceID: our ID or a voice input's; the device INVITEs it
    started: float  # wall time
    wait_until: float  # monotonic: the device's INVITE must come before
    invite_wait: float
    samples: int = 0  # of the file, at 8 kHz
    transport: str | None = None  # asked by the operator (None: as the device offers); ours once answered
    state: str = NOTIFYING
    reason: str = ""
    error: bool = False
    sn: int = 0
    call_id: str = ""
    ssrc: str = ""  # 10 digits, from the device's y=
    payload: int | None = None  # 8 PCMA or 96 PS
    media_port: int = 0  # ours
    media_address: str = ""  # the device's ip:port
    packets: int = 0
    bytes: int = 0
    ended_at: float | None = None
    history: list[tuple[str, str]] = field(default_factory=list)

    @property
    def over(self) -> bool:
        return self.state == ENDED

    def handle(self, event: str, detail: str = "") -> list[Action]:
        """Apply one input; a pair missing from the table is ignored (a late Response after the INVITE, a second
        STOP, an ACK after our BYE) and returns no actions."""
        entry = _T.get((self.state, event))
        if entry is None:
            return []
        new, kinds, template = entry
        if template:
            text = template.format(detail=detail, why=self.reason or detail, wait=self.invite_wait)
            if not self.reason or (self.state, event) in _ERRORS:
                self.reason = text
        if (self.state, event) in _ERRORS:
            self.error = True
        self.state = new
        if len(self.history) < 32:
            self.history.append((event, new))
        return [Release(self.reason, self.error) if k is Release else k() for k in kinds]

    def json(self, tz: tzinfo = UTC) -> dict[str, Any]:
        """A row of ``gb28181 sessions`` (the media session fields, kind "broadcast")."""
        return {
            "id": self.id, "channel": self.target_id, "device_id": self.device_id, "kind": "broadcast",
            "transport": self.transport or "", "ssrc": self.ssrc, "media_port": self.media_port,
            "media_address": self.media_address, "consumers": [], "source_id": self.source_id,
            "started": datetime.fromtimestamp(self.started, tz).isoformat(timespec="seconds"),
            "state": self.state, "reason": self.reason, "error": self.error, "packets": self.packets,
            "bytes": self.bytes, "lost": 0, "payload": self.payload, "seconds": round(self.samples / 8000, 3),
            "sent_seconds": round(self.bytes / 8000, 3) if self.payload == 8 else round(self.packets * 0.02, 3),
        }  # fmt: skip


class BroadcastError(ValueError):
    """A broadcast that cannot start or an INVITE we refuse; ``kind`` maps to the admin API status, ``status``
    to the SIP answer."""

    def __init__(self, reason: str, kind: str = "invalid", status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.status = status


@dataclass
class BroadcastTable:
    """Broadcasts by id; at most one not ended per device (its INVITE could not be told apart otherwise)."""

    max_broadcasts: int = 1000
    items: dict[str, Broadcast] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def new_id(self) -> str:
        return f"b{next(self._ids)}"

    def add(self, bc: Broadcast) -> Broadcast:
        busy = self.of_device(bc.device_id)
        if busy is not None:
            raise BroadcastError(f"device {bc.device_id} already has broadcast {busy.id} ({busy.state}); stop it "
                                 f"first: gb28181 stop {busy.id}", kind="busy")  # fmt: skip
        if len(self.items) >= self.max_broadcasts:
            raise BroadcastError(f"too many broadcasts ({self.max_broadcasts})", kind="busy")
        self.items[bc.id] = bc
        return bc

    def of_device(self, device_id: str) -> Broadcast | None:
        for bc in self.items.values():
            if bc.device_id == device_id and not bc.over:
                return bc
        return None

    def match_invite(self, from_user: str, to_users: tuple[str, ...]) -> Broadcast | None:
        """The broadcast a device's INVITE answers: From = the device (or its 137 channel: some devices use the
        channel), To or Request-URI = the SourceID, and the broadcast still waiting for an INVITE."""
        for bc in self.items.values():
            if bc.state in WAITING and from_user in (bc.device_id, bc.target_id) and bc.source_id in to_users:
                return bc
        return None

    def by_call_id(self, call_id: str) -> Broadcast | None:
        for bc in self.items.values():
            if bc.call_id and bc.call_id == call_id and not bc.over:
                return bc
        return None

    def due(self, now: float) -> list[Broadcast]:
        """Broadcasts whose INVITE wait ran out."""
        return [bc for bc in self.items.values() if bc.state in WAITING and now >= bc.wait_until]

    def next_deadline(self) -> float | None:
        times = [bc.wait_until for bc in self.items.values() if bc.state in WAITING]
        return min(times) if times else None

    def remove(self, bc: Broadcast) -> None:
        self.items.pop(bc.id, None)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(self.items.values()))


# --------------------------------------------------------------------------------------------- target


AUDIO_OUT = "137"  # type code of a voice output channel (Table E.1); §9.12.1.1: a device with one lists it


def choose_target(device_id: str, channel: str | None, channel_ids: list[str]) -> str:
    """The TargetID: ``channel`` when it is one of the device's 137 channels (or the device itself, meaning all its
    outputs); without one, the device's only 137 channel, or the device when it lists several. A device that lists
    no 137 channel has no voice output to broadcast to."""
    outputs = sorted(c for c in channel_ids if len(c) == 20 and c[10:13] == AUDIO_OUT)
    if not outputs:
        raise BroadcastError(f"device {device_id} lists no voice output (a 137 channel) in its catalog; sync its "
                             f"catalog (gb28181 catalog sync {device_id}) if it has one", kind="invalid")  # fmt: skip
    if channel is None:
        return outputs[0] if len(outputs) == 1 else device_id
    if channel == device_id or channel in outputs:
        return channel
    raise BroadcastError(f"{channel} is not a voice output (137) of device {device_id} (it lists "
                         f"{', '.join(outputs)})", kind="invalid")  # fmt: skip


# ------------------------------------------------------------------------------------------------ SDP

PCMA, PS = 8, 96


@dataclass(frozen=True)
class AudioPlan:
    """What the device's offer asks for, from our side."""

    payload: int  # PCMA (8) or PS (96)
    transport: str  # ours: udp | tcp-passive (we listen) | tcp-active (we connect)
    address: str  # the device's media address
    port: int
    ssrc: int  # from its y= (DECISIONS.md: the receiver's y=); 0 when it gave none


def read_offer(offer: sdp.SessionDescription, fallback_address: str, asked: str | None = None) -> AudioPlan:
    """The device's audio INVITE (fixtures-wild dahua/ipc-talk-invite-from-device, hikvision/ipc-talk-invite-tcp-
    from-device): ``m=audio`` with PCMA and/or PS, RTP/AVP or TCP/RTP/AVP with ``a=setup``. Raises BroadcastError
    with the SIP status to answer (488 no usable audio, 415 no PCMA or PS)."""
    m = next((m for m in offer.media if m.kind == "audio" and m.port > 0), None)
    if m is None:
        raise BroadcastError("the INVITE offers no audio media line with a port", status=488)
    rtpmap = m.rtpmap
    payload = None
    for pt in m.payload_types:
        encoding = rtpmap.get(pt, "").upper()
        if encoding.startswith("PCMA/8000") or (pt == PCMA and not encoding):
            payload = PCMA
            break
    if payload is None:
        for pt in m.payload_types:
            encoding = rtpmap.get(pt, "").upper()
            if encoding.startswith("PS/90000") or (pt == PS and not encoding):
                payload = pt
                break
    if payload is None:
        raise BroadcastError(f"the INVITE offers neither PCMA nor PS audio ({' '.join(m.formats)})", status=415)
    # RFC 4145: the device's setup:passive means it listens and we connect; otherwise it connects to us
    transport = sdp.UDP if not m.is_tcp else sdp.TCP_ACTIVE if m.setup == "passive" else sdp.TCP_PASSIVE
    if asked is not None and asked != transport:
        raise BroadcastError(f"the device offered {transport} audio and {asked} was asked", status=488)
    address = (m.connection or offer.connection or "").strip()
    try:
        if ipaddress.ip_address(address).is_unspecified:  # 0.0.0.0: the signalling address is all we know
            address = fallback_address
    except ValueError:  # masked (***) or missing
        address = fallback_address
    return AudioPlan(payload, transport, address, m.port, offer.ssrc_value or 0)


def build_answer(offer: sdp.SessionDescription, plan: AudioPlan, own_id: str, address: str, port: int,
                 ssrc: str) -> sdp.SessionDescription:
    """Our 200 OK body: sendonly audio, the chosen payload, the device's y= (spec digest §7.11 step 4)."""
    encoding = "PCMA/8000" if plan.payload == PCMA else "PS/90000"
    attrs: list[tuple[str, str | None]] = [("sendonly", None), ("rtpmap", f"{plan.payload} {encoding}")]
    if plan.transport != sdp.UDP:
        attrs += [("setup", "active" if plan.transport == sdp.TCP_ACTIVE else "passive"), ("connection", "new")]
    proto = "RTP/AVP" if plan.transport == sdp.UDP else "TCP/RTP/AVP"
    return sdp.SessionDescription(
        origin_user=own_id, origin_address=address, session_name=offer.session_name or sdp.PLAY,
        connection=address, media=(sdp.Media("audio", port, proto, (str(plan.payload),), tuple(attrs)),),
        ssrc=ssrc, format_line="v/////a/1/8/1",
    )  # fmt: skip
