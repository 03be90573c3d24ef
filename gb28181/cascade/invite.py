"""A superior's INVITE for a shared channel, our side of it (GB/T 28181 §9.2.2 / §9.8 / §9.9 across domains; spec
digest §10.6 and §11; DECISIONS.md: SSRC, stream sharing, App. K replacement).

The up-leg (superior -> us) as a transition table: 100 Trying went out at once (the stack's ``auto_trying``); we get
the stream below (relay: through our media backend's forwarder; direct: the device streams to the superior's
address); the 200 goes up only when the leg below is ready; the superior's ACK confirms; BYE or CANCEL from either
side tears down the other. Plus the pure pieces around it: reading the superior's GB SDP, the SSRC we answer with,
the SDP of our 200, the offer we send a device in direct mode, the failure -> SIP status map and App. K matching.

Sans-IO and clock-free: inputs take ``now``; the driver (gb28181/server_cascade_media.py) carries out the actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from gb28181 import sdp

# States of the up-leg (RFC 3261 §13.3 from the called side).
TRYING = "trying"  # 100 sent; the stream below is being set up
ANSWERED = "answered"  # 200 sent with our SDP; waiting for the superior's ACK
CONFIRMED = "confirmed"  # ACK came: media flows to the superior
ENDED = "ended"

# Inputs.
READY = "ready"  # the leg below is up (relay: forward started; direct: the device's 200)
FAILED = "failed"  # the leg below could not be set up (``status`` says how to answer)
CANCELLED = "cancelled"  # CANCEL from the superior (the stack already answered 200 + 487, RFC 3261 §9.2)
ACK = "ack"
ACK_TIMEOUT = "ack-timeout"  # no ACK for our 200 within 64*T1 (RFC 3261 §13.3.1.4)
UP_BYE = "up-bye"  # BYE from the superior (answered 200)
DOWN_ENDED = "down-ended"  # the device side ended (its BYE, no media, MediaStatus 121)
STOP = "stop"  # replaced by a newer INVITE for the same Subject (App. K), or platform shutdown
SETUP_TIMEOUT = "setup-timeout"  # the leg below was not ready in time


@dataclass(frozen=True)
class Reject:
    """Answer the superior's INVITE with this final non-2xx status."""

    status: int
    reason: str


@dataclass(frozen=True)
class Accept:
    """Answer 200 with our SDP (the leg below is ready)."""


@dataclass(frozen=True)
class ByeUp:
    """End the superior's dialog with BYE."""


@dataclass(frozen=True)
class ReleaseDown:
    """Stop what serves this leg below: the forward and our consumer of the stream (relay; the device stream ends
    with its last consumer), or CANCEL / BYE the device's dialog (direct)."""


Action = Reject | Accept | ByeUp | ReleaseDown

# (state, input) -> (next state, actions). Pairs not in the table are ignored explicitly (``UpCall.handle`` returns
# no actions): a retransmitted ACK, a BYE crossing ours, the device ending after the superior did, and so on.
_T: dict[tuple[str, str], tuple[str, tuple[type, ...]]] = {
    (TRYING, READY): (ANSWERED, (Accept,)),
    (TRYING, FAILED): (ENDED, (Reject, ReleaseDown)),
    (TRYING, SETUP_TIMEOUT): (ENDED, (Reject, ReleaseDown)),
    (TRYING, DOWN_ENDED): (ENDED, (Reject, ReleaseDown)),
    (TRYING, CANCELLED): (ENDED, (ReleaseDown,)),
    (TRYING, STOP): (ENDED, (Reject, ReleaseDown)),
    (ANSWERED, ACK): (CONFIRMED, ()),
    (ANSWERED, ACK_TIMEOUT): (ENDED, (ByeUp, ReleaseDown)),
    (ANSWERED, UP_BYE): (ENDED, (ReleaseDown,)),
    (ANSWERED, DOWN_ENDED): (ENDED, (ByeUp, ReleaseDown)),
    (ANSWERED, STOP): (ENDED, (ByeUp, ReleaseDown)),
    (CONFIRMED, UP_BYE): (ENDED, (ReleaseDown,)),
    (CONFIRMED, DOWN_ENDED): (ENDED, (ByeUp, ReleaseDown)),
    (CONFIRMED, STOP): (ENDED, (ByeUp, ReleaseDown)),
}

# Final statuses when the leg below fails (spec digest §11; issue 7: unknown 404, offline 480, timeout 408).
STATUS_OF = {"unknown": 404, "offline": 480, "timeout": 408, "sdp": 488, "invalid": 400, "busy": 486}


def status_for(kind: str) -> int:
    """The SIP status for a failure ``kind`` (SessionError / OperationError kinds); 502 for a refusal below."""
    return STATUS_OF.get(kind, 502)


@dataclass
class UpCall:
    """One superior INVITE's state. ``setup_timeout``: how long the leg below may take before we answer 408."""

    setup_timeout: float
    started: float
    state: str = TRYING
    status: int = 0  # the final status sent up (0 while trying)
    reason: str = ""
    history: list[tuple[str, str]] = field(default_factory=list)  # (input, new state), bounded

    def handle(self, event: str, now: float, *, status: int = 0, reason: str = "") -> list[Action]:
        entry = _T.get((self.state, event))
        if entry is None:
            return []
        new, kinds = entry
        if event == SETUP_TIMEOUT:
            status, reason = 408, reason or f"the stream below was not ready within {self.setup_timeout:g} s"
        elif event == STOP and self.state == TRYING:
            status, reason = status or 503, reason or "stopped"
        elif event == DOWN_ENDED and self.state == TRYING:
            status, reason = status or 502, reason or "the stream below ended before it was ready"
        if self.state == TRYING and event == READY:
            self.status = 200
        elif Reject in kinds:
            self.status = status or 500
        if reason and not self.reason:
            self.reason = reason
        self.state = new
        if len(self.history) < 32:
            self.history.append((event, new))
        return [Reject(self.status, self.reason or "failed") if k is Reject else k() for k in kinds]

    def next_deadline(self) -> float | None:
        return self.started + self.setup_timeout if self.state == TRYING else None

    def handle_timer(self, now: float) -> list[Action]:
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        return self.handle(SETUP_TIMEOUT, now)

    @property
    def over(self) -> bool:
        return self.state == ENDED


# ------------------------------------------------------------------------------------------ the superior's SDP

KIND_OF = {"play": "play", "playback": "playback", "download": "download"}  # s= -> gb28181.sessions kind


@dataclass(frozen=True)
class UpOffer:
    """What a superior asks for: the session kind, where it receives, its transport, SSRC and history range."""

    sd: sdp.SessionDescription
    kind: str  # play | playback | download (gb28181.sessions)
    host: str
    port: int
    their_transport: str  # named from the superior's side: udp, tcp-passive (it listens), tcp-active (it connects)
    ssrc: str | None  # its y= when 10 digits
    start: int = 0
    end: int = 0
    speed: int = 1
    stream_number: int = 0

    @property
    def forward_transport(self) -> str:
        """Our forward's transport, named from our side (DECISIONS.md): it listens -> we connect, and back."""
        return {sdp.TCP_PASSIVE: sdp.TCP_ACTIVE, sdp.TCP_ACTIVE: sdp.TCP_PASSIVE}.get(self.their_transport, sdp.UDP)


def read_offer(body: bytes) -> UpOffer:
    """The superior's INVITE body (App. G; spec digest §10.1): SdpError (-> 488) when it cannot be served."""
    if not body.strip():
        raise sdp.SdpError("the INVITE has no SDP offer (a third-party INVITE without SDP is not served)")
    sd = sdp.parse(body)
    kind = KIND_OF.get(sd.session_name.strip().lower())
    if kind is None:
        raise sdp.SdpError(f"s={sd.session_name[:40]!r}: only Play, Playback and Download are served")
    m = sd.video
    if m is None or m.port == 0:
        raise sdp.SdpError("no media port in the offer")
    host = sd.media_address
    if host is None or host in ("0.0.0.0", "::"):
        raise sdp.SdpError("the offer's c= is not an address we can send to")
    if kind != "play" and not 0 < sd.start < sd.stop:
        raise sdp.SdpError(f"{sd.session_name} needs t= with a start before the end")
    speed = sd.download_speed or 1 if kind == "download" else 1
    if not 1 <= speed <= 32:
        raise sdp.SdpError(f"downloadspeed {speed} out of range 1-32")
    y = (sd.ssrc or "").strip()
    return UpOffer(sd=sd, kind=kind, host=host, port=m.port, their_transport=sd.transport,
                   ssrc=y if len(y) == 10 and y.isdigit() else None, start=sd.start if kind != "play" else 0,
                   end=sd.stop if kind != "play" else 0, speed=speed,
                   stream_number=sd.stream_number or 0)  # fmt: skip


def choose_ssrc(allocator: sdp.SsrcAllocator, offered: str | None, history: bool) -> str:
    """DECISIONS.md: in a cascade we are the called domain (2022 App. G note 16): the superior's y= when it offers
    one that is free in our allocator, else one of ours. Either way it is held until ``release``."""
    if offered is not None and allocator.reserve(offered):
        return offered
    return allocator.allocate(history=history)


def answer_sdp(offer: UpOffer, channel_id: str, address: str, port: int, ssrc: str) -> bytes:
    """Our 200's body (spec digest §11): o= the channel, the offer's s=/t=, sendonly PS 96, y= the SSRC we send
    with, the complementary a=setup on TCP (RFC 4145): where our forward sends from or listens."""
    return sdp.build_answer(offer.sd, channel_id, address, port, ssrc=ssrc).to_bytes()


def direct_offer(offer: UpOffer, own_id: str, channel_id: str, ssrc: str) -> bytes:
    """Direct mode: the superior's offer sent on to the device (its c=/m= so the device streams straight there),
    with our o= and the real channel in u= for history streams, and the SSRC we chose."""
    uri = offer.sd.uri
    if offer.kind != "play":
        uri = f"{channel_id}:{(uri or '').rpartition(':')[2] or '0'}" if uri and ":" in uri else f"{channel_id}:0"
    return replace(offer.sd, origin_user=own_id, uri=uri, ssrc=ssrc).to_bytes()


def answer_up(answer: bytes, channel_id: str, ssrc: str) -> tuple[bytes, str]:
    """Direct mode: the device's 200 body, sent up with o= the shared channel; its y= wins (DECISIONS.md), ours is
    filled in when it gave none. Returns (body, SSRC in it). SdpError when the device's answer is unusable."""
    sd = sdp.parse(answer)
    if sd.video is None or sd.video.port == 0:
        raise sdp.SdpError("the device's answer has no media port")
    y = sd.ssrc_value
    chosen = f"{y:010d}" if y is not None else ssrc
    return replace(sd, origin_user=channel_id, ssrc=chosen).to_bytes(), chosen
