"""The composition root's cascade media part: a registered superior's INVITE for a shared channel, routed down (issue
7; spec digest §10.6, §11; DECISIONS.md: SSRC, stream sharing). ``Platform`` (gb28181/server.py) inherits it.

Each INVITE is an up-leg driven by the sans-IO machine of gb28181/cascade/invite.py. Relay mode (the default) takes
the stream through our MediaService (a live stream already flowing is joined, no second device INVITE) and has the
media backend forward it to the superior with its SSRC; direct mode INVITEs the device with the superior's address
(a second device stream). The 200 goes up only when the leg below is ready; ACK, BYE, CANCEL, INFO (MANSRTSP) and
MediaStatus 121 cross between the legs. IO lives here; the decisions in gb28181/cascade/invite.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gb28181 import sdp
from gb28181.cascade.invite import (
    ACK,
    ACK_TIMEOUT,
    CANCELLED,
    DOWN_ENDED,
    FAILED,
    READY,
    STOP,
    TRYING,
    UP_BYE,
    Accept,
    ByeUp,
    Reject,
    ReleaseDown,
    UpCall,
    UpOffer,
    answer_sdp,
    answer_up,
    choose_ssrc,
    direct_offer,
    read_offer,
    status_for,
)
from gb28181.cascade.relay import rewrite
from gb28181.config import Config, media_settings
from gb28181.invite import Subject, parse_subject, replaces
from gb28181.invite import subject as subject_header
from gb28181.manscdp import ManscdpError, parse_envelope
from gb28181.manscdp.codec import encode as encode_message
from gb28181.manscdp.messages import MediaStatusNotify
from gb28181.media.backend import ForwardSpec, MediaError
from gb28181.operations import OperationError, resolve
from gb28181.peers import peer_of
from gb28181.sessions import Session, SessionError
from gb28181.sn import QueryError
from registry.store import StoreError
from sip.dialog import Dialog
from sip.endpoint import (
    AckReceived,
    AckTimeout,
    CancelReceived,
    Endpoint,
    Peer,
    RequestReceived,
    ResponseReceived,
    TransactionFailed,
    TxKey,
)
from sip.errors import LocalProtocolError
from sip.headers import Headers
from sip.message import Request, Response, new_call_id, new_tag, warning_value

log = logging.getLogger("gb28181.cascade.media")

RELAY, DIRECT = "relay", "direct"


@dataclass
class UpLeg:
    """One superior INVITE: the up-leg's machine and what serves it below."""

    link: Any  # gb28181.server_upstream.UpstreamLink
    event: RequestReceived  # the INVITE; its server transaction gets our final answer
    call: UpCall
    offer: UpOffer
    subject: Subject
    shared_id: str
    mode: str
    ssrc: str  # the SSRC we answer with (held in the media service's allocator until the leg ends)
    channel_id: str = ""
    device_id: str = ""
    answer: bytes = b""
    ssrc_answered: str = ""  # direct mode: the device's y= (it wins, DECISIONS.md)
    dialog: Dialog | None = None  # the superior's dialog, from our 200
    # relay
    consumer: str = ""
    session_id: str = ""
    media_handle: str = ""
    forward: str = ""
    # direct
    down_call_id: str = ""
    down_tx: TxKey | None = None
    down_dialog: Dialog | None = None
    timer: asyncio.TimerHandle | None = None
    released: bool = False
    replacing: list[UpLeg] = field(default_factory=list)  # older sends this one replaces when answered (App. K)

    @property
    def call_id(self) -> str:
        return self.event.request.call_id

    def row(self) -> dict[str, Any]:
        return {"superior": self.link.cfg.id, "call_id": self.call_id, "channel": self.shared_id,
                "real_channel": self.channel_id, "mode": self.mode, "state": self.call.state, "ssrc": self.ssrc,
                "kind": self.offer.kind, "to": f"{self.offer.host}:{self.offer.port}",
                "transport": self.offer.forward_transport, "session": self.session_id or None,
                "status": self.call.status, "reason": self.call.reason}  # fmt: skip


class CascadeMediaDriver:
    """Mixed into ``Platform``; uses its config, endpoint, media service, ``_superior``, ``shared_catalog``,
    ``_registered``, ``count``, ``flush`` and ``_spawn``."""

    cfg: Config
    endpoint: Endpoint
    media: Any  # gb28181.media_sessions.MediaService
    mono: Callable[[], float]
    up_legs: dict[str, UpLeg]
    down_legs: dict[str, UpLeg]

    def _init_cascade_media(self) -> None:
        self.up_legs = {}  # the superior's Call-ID ->
        self.down_legs = {}  # direct mode: our Call-ID toward the device ->
        self._cascade_tx: dict[TxKey, UpLeg] = {}  # direct mode: our INVITE to the device ->
        self._cascade_info: dict[TxKey, asyncio.Future[Response | None]] = {}  # an INFO relayed down ->
        self.media.on_ended = self._cascade_session_ended

    def cascade_legs(self, upstream_id: str) -> list[dict[str, Any]]:
        """The INVITEs of this superior we serve now (``gb28181 upstream status``)."""
        return [leg.row() for leg in self.up_legs.values() if leg.link.cfg.id == upstream_id]

    # ------------------------------------------------------------------------------------- INVITE from above
    def _on_superior_invite(self, event: RequestReceived) -> bool:
        """An INVITE from a configured superior (matched as its MESSAGEs are); False when it is not one."""
        req = event.request
        now = self.mono()
        if event.dialog is not None:  # a re-INVITE in a leg's dialog (session refresh): the same answer
            leg = self.up_legs.get(req.call_id)
            if leg is None or not leg.answer:
                return False
            self.endpoint.reply(event, 200, headers=[*self._contact(event.peer), ("Content-Type", "APPLICATION/SDP")],
                                body=leg.answer, now=now)  # fmt: skip
            return True
        link = self._superior(req.from_.user or "", event.peer)  # type: ignore[attr-defined]
        if link is None:
            return False
        subject = parse_subject(req.headers.get("subject"))
        uri = req.request_uri
        shared_id = (getattr(uri, "user", None) or subject.sender or "").strip()
        self.count("cascade:invite")  # type: ignore[attr-defined]
        try:
            offer = read_offer(req.body)
        except sdp.SdpError as exc:
            self._refuse(event, 488, f"unusable SDP offer: {exc}", link.cfg.id)
            return True
        if req.call_id in self.up_legs:
            self._refuse(event, 482, "a second INVITE with this Call-ID", link.cfg.id)
            return True
        try:
            ssrc = choose_ssrc(self.media.ssrcs, offer.ssrc, history=offer.kind != "play")
        except RuntimeError as exc:
            self._refuse(event, 486, str(exc), link.cfg.id)
            return True
        mode = DIRECT if link.cfg.media == DIRECT else RELAY
        m = media_settings(self.cfg.media)
        setup = m.invite_timeout + (m.no_media_timeout + 1.0 if mode == RELAY else 0.5)
        leg = UpLeg(link, event, UpCall(setup, now), offer, subject, shared_id, mode, ssrc)
        # 2022 App. K: the new INVITE replaces an old send with the same Subject sender and receiver; the old one
        # ends once the new one is answered, so a relayed device stream is kept rather than torn down and re-asked
        leg.replacing = [o for o in self.up_legs.values() if o.link is link and not o.call.over
                         and replaces(o.subject, subject)]  # fmt: skip
        self.up_legs[req.call_id] = leg
        log.info("superior %s: INVITE %s %s for %s (%s to %s:%d, SSRC %s, %s)", link.cfg.id, req.call_id, offer.kind,
                 shared_id, offer.their_transport, offer.host, offer.port, ssrc, mode)  # fmt: skip
        self._leg_timer(leg)
        self._spawn(self._setup_leg(leg))  # type: ignore[attr-defined]
        return True

    def _refuse(self, event: RequestReceived, status: int, reason: str, who: str) -> None:
        log.info("superior %s: INVITE %s refused %d: %s", who, event.request.call_id, status, reason)
        self.count(f"cascade:refused:{status}")  # type: ignore[attr-defined]
        self.endpoint.reply(event, status, headers=[("Warning", _warning(reason))], now=self.mono())

    def _contact(self, peer: Peer) -> list[tuple[str, str]]:
        host, port = self.media.local_address(peer)
        return [("Contact", f"<sip:{self.cfg.sip.id}@{host}:{port}>")]

    async def _setup_leg(self, leg: UpLeg) -> None:
        """Map the shared ID to the real channel, then get the stream below."""
        now = self.mono()
        try:
            target = (await self.shared_catalog(leg.link.cfg.id)).targets.get(leg.shared_id)  # type: ignore[attr-defined]
        except StoreError as exc:  # the store failed: the superior gets a clear 500, not silence
            log.warning("superior %s: shares not readable: %s", leg.link.cfg.id, exc)
            self._leg_apply(leg, leg.call.handle(FAILED, now, status=500, reason="shares not readable"))
            return
        if target is None:
            self._leg_apply(leg, leg.call.handle(FAILED, now, status=404,
                                                 reason=f"{leg.shared_id} is not a channel shared with you"))
            return
        leg.device_id, leg.channel_id = target
        try:
            if leg.mode == RELAY:
                await self._relay_leg(leg)
            else:
                await self._direct_leg(leg)
        except Exception as exc:  # the error boundary of this leg: the superior gets 500, the platform serves on
            self.count("internal-error")  # type: ignore[attr-defined]
            log.exception("superior %s: INVITE %s: internal error", leg.link.cfg.id, leg.call_id)
            self._leg_apply(leg, leg.call.handle(FAILED, self.mono(), status=500, reason=f"internal error: {exc}"))

    async def _relay_leg(self, leg: UpLeg) -> None:
        """Relay: our own session (or a live one already flowing), then a forward to the superior."""
        offer = leg.offer

        def joined(consumer: str) -> None:
            leg.consumer = consumer

        try:
            view = await self.media.start(leg.channel_id, offer.kind, start=offer.start, end=offer.end,
                                          speed=offer.speed, stream_number=offer.stream_number,
                                          what=f"upstream {leg.link.cfg.id}", joined=joined)  # fmt: skip
        except SessionError as exc:
            self._leg_apply(leg, leg.call.handle(FAILED, self.mono(), status=status_for(exc.kind), reason=exc.reason))
            return
        leg.session_id = view["id"]
        session = self.media.table.sessions.get(leg.session_id)
        if leg.call.over:  # cancelled meanwhile: our consumer is leaving (ReleaseDown)
            return
        if session is None or session.call.over:
            self._leg_apply(leg, leg.call.handle(DOWN_ENDED, self.mono()))
            return
        host = "" if offer.forward_transport == sdp.TCP_PASSIVE else offer.host
        port = 0 if offer.forward_transport == sdp.TCP_PASSIVE else offer.port
        try:
            local_port, forward = await self.media.backend.forward(
                session.handle, ForwardSpec(int(leg.ssrc), offer.forward_transport, host, port))
        except (MediaError, ValueError) as exc:
            self._leg_apply(leg, leg.call.handle(FAILED, self.mono(), status=502, reason=f"cannot forward: {exc}"))
            return
        leg.media_handle, leg.forward = session.handle, forward
        if leg.call.over:
            await self._stop_forward(leg)
            return
        address = media_settings(self.cfg.media).advertise or self.media.local_address(leg.event.peer)[0]
        leg.answer = answer_sdp(offer, leg.shared_id, address, local_port, leg.ssrc)
        self._leg_apply(leg, leg.call.handle(READY, self.mono()))

    async def _direct_leg(self, leg: UpLeg) -> None:
        """Direct: INVITE the device (or the lower platform) with the superior's address; its 200 goes up."""
        now = self.mono()
        try:
            owners = await self.media.owners_of(leg.channel_id)
            target = resolve(leg.channel_id, self.media.status_of, owners)
            device = self._registered(target.device_id)  # type: ignore[attr-defined]
        except (OperationError, QueryError) as exc:
            kind = "offline" if exc.kind == "refused" else exc.kind  # QueryError "refused": not registered
            self._leg_apply(leg, leg.call.handle(FAILED, now, status=status_for(kind), reason=exc.reason))
            return
        if leg.call.over:
            return
        peer = peer_of(device.transport, device.address)
        local, sip_port = self.media.local_address(peer)
        leg.down_call_id = new_call_id()
        request = Request("INVITE", f"sip:{leg.channel_id}@{device.address}", Headers([
            ("From", f"<sip:{self.cfg.sip.id}@{self.cfg.domain}>;tag={new_tag()}"),
            ("To", f"<sip:{leg.channel_id}@{self.cfg.domain}>"),
            ("Call-ID", leg.down_call_id),
            ("CSeq", "1 INVITE"),
            ("Contact", f"<sip:{self.cfg.sip.id}@{local}:{sip_port}>"),
            # the superior's window (receiver sequence) goes down with it: App. K must not take a second window of
            # one superior for a re-INVITE of its first
            ("Subject", subject_header(leg.channel_id, leg.ssrc, leg.link.cfg.id, leg.subject.receiver_seq or "0")),
            ("Content-Type", "APPLICATION/SDP"),
        ]), direct_offer(leg.offer, self.cfg.sip.id, leg.channel_id, leg.ssrc))  # fmt: skip
        try:
            leg.down_tx = self.endpoint.send_request(request, peer, self.mono())
        except LocalProtocolError as exc:
            self._leg_apply(leg, leg.call.handle(FAILED, self.mono(), status=503, reason=str(exc)))
            return
        self._cascade_tx[leg.down_tx] = leg
        self.down_legs[leg.down_call_id] = leg
        self.flush()  # type: ignore[attr-defined]
        log.info("superior %s: INVITE %s sent on to %s for %s (direct, Call-ID %s)", leg.link.cfg.id, leg.call_id,
                 target.device_id, leg.channel_id, leg.down_call_id)  # fmt: skip

    # ------------------------------------------------------------------------------------- the machine's actions
    def _leg_apply(self, leg: UpLeg, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, Reject):
                self._leg_reject(leg, action)
            elif isinstance(action, Accept):
                self._leg_accept(leg)
            elif isinstance(action, ByeUp):
                self._leg_bye_up(leg)
            elif isinstance(action, ReleaseDown):
                self._spawn(self._leg_release(leg))  # type: ignore[attr-defined]
        self._leg_timer(leg)
        self.flush()  # type: ignore[attr-defined]

    def _leg_timer(self, leg: UpLeg) -> None:
        if leg.timer is not None:
            leg.timer.cancel()
            leg.timer = None
        deadline = leg.call.next_deadline()
        if deadline is not None:
            leg.timer = asyncio.get_running_loop().call_later(max(0.0, deadline - self.mono()), self._leg_tick, leg)

    def _leg_tick(self, leg: UpLeg) -> None:
        leg.timer = None
        self._leg_apply(leg, leg.call.handle_timer(self.mono()))

    def _leg_reject(self, leg: UpLeg, action: Reject) -> None:
        self.count(f"cascade:rejected:{action.status}")  # type: ignore[attr-defined]
        log.info("superior %s: INVITE %s for %s answered %d: %s", leg.link.cfg.id, leg.call_id, leg.shared_id,
                 action.status, action.reason)  # fmt: skip
        try:
            self.endpoint.reply(leg.event, action.status, headers=[("Warning", _warning(action.reason))],
                                now=self.mono())  # fmt: skip
        except LocalProtocolError as exc:  # its transaction is gone (the superior gave up)
            log.info("superior %s: INVITE %s: final answer not sent (%s)", leg.link.cfg.id, leg.call_id, exc)

    def _leg_accept(self, leg: UpLeg) -> None:
        req = leg.event.request
        headers = [*self._contact(leg.event.peer), ("Content-Type", "APPLICATION/SDP")]
        try:
            response = self.endpoint.reply(leg.event, 200, headers=headers, body=leg.answer, now=self.mono())
        except LocalProtocolError as exc:  # the superior's transaction is gone: nothing up there to serve
            log.info("superior %s: INVITE %s: 200 not sent (%s)", leg.link.cfg.id, leg.call_id, exc)
            self._leg_apply(leg, leg.call.handle(UP_BYE, self.mono()))
            return
        leg.dialog = self.endpoint.dialogs.get((req.call_id, response.to.tag or "", req.from_.tag or ""))
        self.count("cascade:answered")  # type: ignore[attr-defined]
        log.info("superior %s: INVITE %s for %s answered 200 (%s, SSRC %s)", leg.link.cfg.id, leg.call_id,
                 leg.shared_id, leg.mode, leg.ssrc)  # fmt: skip
        for old in leg.replacing:
            log.info("superior %s: INVITE %s replaces %s (same Subject sender and receiver, App. K)", leg.link.cfg.id,
                     leg.call_id, old.call_id)  # fmt: skip
            self._leg_apply(old, old.call.handle(STOP, self.mono(), reason="replaced by a new INVITE (App. K)"))
        leg.replacing = []

    def _leg_bye_up(self, leg: UpLeg) -> None:
        if leg.dialog is None:
            return
        try:
            self.endpoint.send_in_dialog(leg.dialog, "BYE", self.mono())
            log.info("superior %s: BYE up for %s (%s)", leg.link.cfg.id, leg.call_id, leg.call.reason or "ended")
        except LocalProtocolError as exc:
            log.info("superior %s: BYE for %s not sent (%s)", leg.link.cfg.id, leg.call_id, exc)
        self.endpoint.drop_dialog(leg.dialog)
        leg.dialog = None

    async def _leg_release(self, leg: UpLeg) -> None:
        """What served the leg below goes; the leg is forgotten."""
        if leg.released:
            return
        leg.released = True
        if leg.mode == RELAY:
            await self._stop_forward(leg)
            if leg.consumer and self.media.table.session_of(leg.consumer) is not None:
                try:
                    await self.media.stop(leg.consumer)  # the device stream ends with its last consumer
                except SessionError as exc:
                    log.info("superior %s: leaving the stream of %s: %s", leg.link.cfg.id, leg.channel_id, exc)
        else:
            self._bye_or_cancel_down(leg)
        self.media.ssrcs.release(leg.ssrc)
        self.up_legs.pop(leg.call_id, None)
        log.info("superior %s: INVITE %s for %s over: %s", leg.link.cfg.id, leg.call_id, leg.shared_id,
                 leg.call.reason or "ended")

    async def _stop_forward(self, leg: UpLeg) -> None:
        if not leg.forward:
            return
        forward, leg.forward = leg.forward, ""
        try:
            await self.media.backend.stop_forward(leg.media_handle, forward)
        except MediaError:
            pass  # the session closed, and its forwards with it

    def _bye_or_cancel_down(self, leg: UpLeg) -> None:
        now = self.mono()
        if leg.down_dialog is not None:
            try:
                self.endpoint.send_in_dialog(leg.down_dialog, "BYE", now)
            except LocalProtocolError as exc:
                log.info("direct leg %s: BYE to the device not sent (%s)", leg.down_call_id, exc)
            self.endpoint.drop_dialog(leg.down_dialog)
            leg.down_dialog = None
            self.down_legs.pop(leg.down_call_id, None)
        elif leg.down_tx is not None and leg.down_tx in self._cascade_tx:
            self.endpoint.cancel(leg.down_tx, now)  # its 487 (or a crossing 2xx, then BYE) comes later
        else:
            self.down_legs.pop(leg.down_call_id, None)
        self.flush()  # type: ignore[attr-defined]

    # ------------------------------------------------------------------------------------- events routed in
    def cascade_event(self, event: AckReceived | AckTimeout | CancelReceived) -> None:
        """ACK / ACK timeout / CANCEL of a superior's INVITE (the endpoint answered the CANCEL 200 and 487)."""
        now = self.mono()
        if isinstance(event, AckReceived):
            leg = self.up_legs.get(event.request.call_id)
            if leg is not None:
                self._leg_apply(leg, leg.call.handle(ACK, now))
        elif isinstance(event, AckTimeout):
            leg = self.up_legs.get(event.dialog.call_id)
            if leg is not None:
                self._leg_apply(leg, leg.call.handle(ACK_TIMEOUT, now, reason="no ACK for our 200"))
        else:
            leg = self.up_legs.get(event.invite.call_id)
            if leg is not None and leg.call.state == TRYING:
                self.count("cascade:cancelled")  # type: ignore[attr-defined]
                log.info("superior %s: CANCEL of INVITE %s", leg.link.cfg.id, leg.call_id)
                self._leg_apply(leg, leg.call.handle(CANCELLED, now, reason="cancelled by the superior"))

    def cascade_bye(self, event: RequestReceived) -> bool:
        """BYE from a superior in a leg's dialog, or from the device in a direct leg's; False if neither."""
        call_id = event.request.call_id
        leg = self.up_legs.get(call_id)
        if leg is not None and event.dialog is not None and leg.dialog is not None and event.dialog.id == leg.dialog.id:
            self.endpoint.reply(event, 200, now=self.mono())
            leg.dialog = None  # ended by our 200
            self.count("cascade:bye-from-superior")  # type: ignore[attr-defined]
            self._leg_apply(leg, leg.call.handle(UP_BYE, self.mono(), reason="the superior ended it (BYE)"))
            return True
        leg = self.down_legs.get(call_id)
        if leg is not None:
            self.endpoint.reply(event, 200, now=self.mono())
            leg.down_dialog = None
            self.down_legs.pop(call_id, None)
            self._leg_apply(leg, leg.call.handle(DOWN_ENDED, self.mono(), reason="the device ended it (BYE)"))
            return True
        return False

    def cascade_response(self, event: ResponseReceived | TransactionFailed) -> bool:
        """A response to our INVITE or INFO of a direct leg (or an INFO relayed down); False if not ours."""
        waiter = self._cascade_info.get(event.tx)
        if waiter is not None:
            if not waiter.done() and (isinstance(event, TransactionFailed) or event.response.status >= 200):
                waiter.set_result(None if isinstance(event, TransactionFailed) else event.response)
            return True
        leg = self._cascade_tx.get(event.tx)
        if leg is None:
            return False
        now = self.mono()
        if isinstance(event, TransactionFailed):
            self._cascade_tx.pop(event.tx, None)
            self.down_legs.pop(leg.down_call_id, None)
            status = 408 if event.reason == "timeout" else 502
            self._leg_apply(leg, leg.call.handle(FAILED, now, status=status, reason=f"the device: {event.reason}"))
            return True
        resp = event.response
        if resp.status < 200:
            return True
        self._cascade_tx.pop(event.tx, None)
        if resp.status >= 300:
            self.down_legs.pop(leg.down_call_id, None)
            status = resp.status if resp.status not in (401, 407) else 502
            self._leg_apply(leg, leg.call.handle(FAILED, now, status=status,
                                                 reason=f"the device answered {resp.status} {resp.reason}"))
            return True
        if event.dialog is None:
            return True
        leg.down_dialog = event.dialog
        if leg.call.over:  # the 2xx crossed our CANCEL (RFC 3261 §9.1): end it
            self._bye_or_cancel_down(leg)
            return True
        try:
            leg.answer, leg.ssrc_answered = answer_up(resp.body, leg.shared_id, leg.ssrc)
        except sdp.SdpError as exc:
            self._leg_apply(leg, leg.call.handle(FAILED, now, status=502, reason=f"the device's SDP: {exc}"))
            return True
        self._leg_apply(leg, leg.call.handle(READY, now))
        return True

    def cascade_info(self, event: RequestReceived) -> bool:
        """INFO (MANSRTSP, §9.8.3) from a superior in a leg's dialog: relayed to the device's dialog."""
        leg = self.up_legs.get(event.request.call_id)
        if leg is None or event.dialog is None:
            return False
        self._spawn(self._relay_info(leg, event))  # type: ignore[attr-defined]
        return True

    async def _relay_info(self, leg: UpLeg, event: RequestReceived) -> None:
        dialog = leg.down_dialog if leg.mode == DIRECT else self.media.dialog_of(leg.session_id)
        now = self.mono()
        if dialog is None:
            self.endpoint.reply(event, 481, headers=[("Warning", _warning("no established session below"))], now=now)
            return
        content_type = event.request.headers.get("content-type") or "Application/MANSRTSP"
        try:
            tx = self.endpoint.send_in_dialog(dialog, "INFO", now, headers=[("Content-Type", content_type)],
                                              body=event.request.body)  # fmt: skip
        except LocalProtocolError as exc:
            self.endpoint.reply(event, 500, headers=[("Warning", _warning(str(exc)))], now=now)
            return
        waiter: asyncio.Future[Response | None] = asyncio.get_running_loop().create_future()
        self._cascade_info[tx] = waiter
        self.flush()  # type: ignore[attr-defined]
        try:
            async with asyncio.timeout(media_settings(self.cfg.media).invite_timeout):
                response = await waiter
        except TimeoutError:
            response = None
        finally:
            self._cascade_info.pop(tx, None)
        self.count("cascade:info")  # type: ignore[attr-defined]
        try:
            if response is None:
                self.endpoint.reply(event, 408, now=self.mono())
            else:
                headers = [("Content-Type", response.headers.get("content-type") or "Application/MANSRTSP")] \
                    if response.body else []  # fmt: skip
                self.endpoint.reply(event, response.status, response.reason, headers=headers, body=response.body,
                                    now=self.mono())  # fmt: skip
        except LocalProtocolError as exc:
            log.info("superior %s: INFO answer not sent (%s)", leg.link.cfg.id, exc)
        self.flush()  # type: ignore[attr-defined]

    def media_status_by_call_id(self, event: RequestReceived) -> bool:
        """MediaStatus (A.2.5.4) in the dialog of one of our media sessions or direct legs, routed by Call-ID
        (DECISIONS.md: Dialog layer). In a dialog with an NVR its From is the channel, which never registered, so
        it must not be screened as a device's MESSAGE. False when the Call-ID is none of ours."""
        req = event.request
        if req.call_id not in self.down_legs and self.media.table.by_call_id(req.call_id) is None:
            return False
        try:
            env = parse_envelope(req.body)
        except ManscdpError as exc:
            self.endpoint.reply(event, 400, "Bad MANSCDP Body", headers=[("Warning", _warning(exc.reason))],
                                now=self.mono())  # fmt: skip
            return True
        self.endpoint.reply(event, 200, now=self.mono())
        if env.cmd_type != "MediaStatus":
            return True
        self.count("message:MediaStatus")  # type: ignore[attr-defined]
        if not self.cascade_media_status(req.call_id, req.body):
            session = self.media.table.by_call_id(req.call_id)  # its device speaks, From an NVR's channel or not
            device = session.device_id if session is not None else req.from_.user or ""
            self.media.on_media_status(device, env.device_id, env.fields.get("NotifyType", ""), req.call_id)
        return True

    def cascade_media_status(self, call_id: str, body: bytes) -> bool:
        """MediaStatus 121 from the device in a direct leg's dialog: relayed up in the superior's dialog (spec
        digest §7.10, §11); the superior then ends the session with BYE, which we pass down."""
        leg = self.down_legs.get(call_id)
        if leg is None:
            return False
        self._media_status_up(leg, body)
        return True

    def _media_status_up(self, leg: UpLeg, body: bytes | None = None) -> None:
        if leg.dialog is None:
            return
        sn = self.correlator.new_sn(leg.link.cfg.id)  # type: ignore[attr-defined]
        try:
            up = (rewrite(body, sn=sn, device_id=leg.shared_id, charset=leg.link.cfg.charset) if body else
                  encode_message(MediaStatusNotify(sn=sn, device_id=leg.shared_id, notify_type=121),
                                 charset=leg.link.cfg.charset))  # fmt: skip
            self.endpoint.send_in_dialog(leg.dialog, "MESSAGE", self.mono(),
                                         headers=[("Content-Type", "Application/MANSCDP+xml")], body=up)  # fmt: skip
        except (ManscdpError, LocalProtocolError, ValueError) as exc:
            log.info("superior %s: MediaStatus for %s not sent up: %s", leg.link.cfg.id, leg.call_id, exc)
            return
        self.count("cascade:media-status-up")  # type: ignore[attr-defined]
        log.info("superior %s: MediaStatus 121 for %s sent up", leg.link.cfg.id, leg.call_id)
        self.flush()  # type: ignore[attr-defined]

    def _cascade_session_ended(self, session: Session) -> None:
        """A media session was released (device BYE, no media, MediaStatus 121, last consumer gone): every leg it
        served hears of it (a MediaStatus 121 goes up first in that superior's dialog)."""
        for leg in [x for x in self.up_legs.values() if x.session_id == session.id and not x.call.over]:
            if "MediaStatus 121" in (session.call.reason or ""):
                self._media_status_up(leg)
            self._leg_apply(leg, leg.call.handle(DOWN_ENDED, self.mono(),
                                                 reason=f"the stream below ended: {session.call.reason}"))

    async def cascade_aclose(self) -> None:
        """Platform shutdown: BYE (or refuse) every superior leg and release what serves it."""
        now = self.mono()
        for leg in list(self.up_legs.values()):
            self._leg_apply(leg, leg.call.handle(STOP, now, reason="platform shutting down"))
        await asyncio.sleep(0)


def _warning(text: str) -> str:
    return warning_value(text[:200])
