"""Media sessions as the platform runs them (GB/T 28181 §9.2 live, §9.8 playback, §9.9 download): the async layer
over the sans-IO call (gb28181/invite.py), the session table (gb28181/sessions.py), the GB SDP codec
(gb28181/sdp.py) and a media backend (gb28181/media/). Built by the composition root (gb28181/server.py), which
routes INVITE/BYE responses, incoming BYEs and MediaStatus notifications here.

Each session has one supervisor task: it feeds the call the receiver's progress and its timers, and carries out
the call's actions (INVITE, CANCEL, BYE, release). Live sessions are shared (DECISIONS.md: stream sharing).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Any

from gb28181 import sdp
from gb28181.config import MediaConfig
from gb28181.invite import (
    ACCEPTED,
    BYE_DONE,
    MEDIA_END,
    PROVISIONAL,
    REJECTED,
    REMOTE_BYE,
    SEND,
    STOP,
    STREAMING,
    WAITING_MEDIA,
    Call,
    ConnectMedia,
    Release,
    RtspError,
    SendBye,
    SendCancel,
    SendInvite,
    mansrtsp,
    subject,
)
from gb28181.media.backend import MediaBackend, MediaError, ReceiverSpec
from gb28181.operations import OperationError, resolve
from gb28181.peers import peer_of
from gb28181.sessions import DOWNLOAD, KINDS, PLAY, PLAYBACK, Session, SessionError, SessionTable
from gb28181.sn import QueryError
from sip.endpoint import Endpoint, Peer, RequestReceived, ResponseReceived, TransactionFailed, TxKey
from sip.errors import LocalProtocolError
from sip.headers import Headers
from sip.message import Request, new_call_id, new_tag

log = logging.getLogger("gb28181.media")

SDP_KIND = {PLAY: sdp.PLAY, PLAYBACK: sdp.PLAYBACK, DOWNLOAD: sdp.DOWNLOAD}
POLL = 0.2  # seconds between looks at the call's timers while signalling
FIRST_PACKET_POLL = 0.01  # seconds between looks for the first RTP packet after the 200 OK
LIVE_QUEUE = 2048  # RTP payloads a slow HTTP viewer may fall behind before it is cut off


# ------------------------------------------------------------------------------- signed live URLs (DECISIONS.md)


def sign_live(secret: bytes, ident: str, expires: int) -> str:
    """A short-lived token for ``/live/IDENT``: expiry + HMAC-SHA256 of both, URL-safe."""
    mac = hmac.new(secret, f"live:{ident}:{expires}".encode(), hashlib.sha256).digest()[:16]
    return f"{expires}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def check_live(secret: bytes, ident: str, token: str, now: float) -> bool:
    expires, _, _ = token.partition(".")
    if not expires.isdigit() or len(expires) > 12 or int(expires) < now:
        return False
    return hmac.compare_digest(sign_live(secret, ident, int(expires)), token)


class LiveFeed:
    """One HTTP viewer's PS bytes: from the first pack that carries a system header (a keyframe, GB PS puts the
    system header and PSM there), so a late joiner starts on a decodable picture; None ends the feed."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(LIVE_QUEUE)
        self.started = False
        self.overflow = False

    def __call__(self, packet: Any) -> None:
        payload = packet.payload
        if not self.started:
            # a pack header followed by a system header; devices that do not align packs to RTP packets too
            at = bytes(payload).find(b"\x00\x00\x01\xba")
            if at < 0 or b"\x00\x00\x01\xbb" not in payload[at:at + 64]:
                return
            self.started = True
            payload = payload[at:]
        if self.overflow:
            return
        try:
            self.queue.put_nowait(bytes(payload))
        except asyncio.QueueFull:
            self.overflow = True
            self.end()

    def end(self) -> None:
        try:
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            self.queue.get_nowait()
            self.queue.put_nowait(None)


@dataclass
class _Pending:
    """What a session's supervisor waits on."""

    session: Session
    invite: Request | None = None
    invite_tx: TxKey | None = None
    bye_tx: TxKey | None = None
    dialog: Any = None
    answer: Any = None  # the device's 2xx
    wake: asyncio.Event | None = None
    ready: asyncio.Future[None] | None = None  # resolves when media flows or the session ended
    feeds: list[LiveFeed] | None = None
    offer: sdp.SessionDescription | None = None
    peer: Peer | None = None
    on_open: Callable[[Session], None] | None = None  # told when the receiver is open, before the INVITE goes out


class MediaService:
    def __init__(
        self,
        *,
        cfg: MediaConfig,
        platform_id: str,
        domain: str,
        backend: MediaBackend,
        endpoint: Endpoint,
        flush: Callable[[], None],
        device_of: Callable[[str], Any],
        status_of: Callable[[str], str | None],
        owners_of: Callable[[str], Awaitable[list[str]]],
        local_address: Callable[[Peer], tuple[str, int]],
        mono: Callable[[], float],
        wall: Callable[[], float],
        count: Callable[[str], None],
        live_secret: bytes,
        tz: tzinfo = UTC,
    ) -> None:
        """``device_of(id)`` is the registered device (with ``transport``/``address``; QueryError otherwise);
        ``status_of``/``owners_of`` resolve a channel to the device that serves it (operations.resolve)."""
        self.cfg = cfg
        self.platform_id = platform_id
        self.domain = domain
        self.backend = backend
        self.endpoint = endpoint
        self.flush = flush
        self.device_of = device_of
        self.status_of = status_of
        self.owners_of = owners_of
        self.local_address = local_address
        self.mono = mono
        self.wall = wall
        self.count = count
        self.live_secret = live_secret
        self.tz = tz
        self.table = SessionTable()
        self.ssrcs = sdp.SsrcAllocator(domain)
        self._pending: dict[str, _Pending] = {}  # session id ->
        self._by_tx: dict[TxKey, str] = {}  # INVITE / BYE transaction -> session id
        self._tasks: set[asyncio.Task[None]] = set()
        self._starting: dict[tuple[str, int], asyncio.Future[Session]] = {}  # a live stream being set up
        self._info_waiters: dict[TxKey, asyncio.Future[Any]] = {}
        self.on_ended: Callable[[Session], None] | None = None  # told when a session is released (cascade legs)

    # ------------------------------------------------------------------------------------------ operator API

    async def start(self, channel_id: str, kind: str, *, transport: str = sdp.UDP, start: int = 0, end: int = 0,
                    speed: int = 1, stream_number: int = 0, what: str = "api",
                    on_open: Callable[[Session, str], None] | None = None,
                    joined: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Open (or, for live, join) a session and add a consumer; returns the session row, the consumer id and
        the live path. Waits until media flows or the session failed; a failure raises SessionError.
        ``on_open(session, consumer)`` is told once a new session's receiver is open, before its INVITE goes out
        (the conformance media probe taps the packets from there and can always end what it opened); ``joined``
        hears the consumer id as soon as it exists (a cascade leg cancelled meanwhile leaves by it)."""
        if kind not in KINDS:
            raise SessionError(f"kind must be one of {', '.join(KINDS)}")
        if transport not in sdp.TRANSPORTS:
            raise SessionError(f"transport must be one of {', '.join(sdp.TRANSPORTS)}")
        if kind != PLAY and not 0 < start < end:
            raise SessionError("playback and download need a start before the end")
        if not 1 <= speed <= 32:
            raise SessionError("download speed must be 1-32")
        if kind == PLAY:
            shared = self.table.shared(channel_id, stream_number)
            if shared is None and (channel_id, stream_number) in self._starting:
                await asyncio.shield(self._starting[(channel_id, stream_number)])
                shared = self.table.shared(channel_id, stream_number)
                if shared is None:
                    raise SessionError(f"the live stream of {channel_id} failed to start", kind="failed")
            if shared is not None:
                self.count("media:shared")
                consumer = self.table.join(shared, what)
                if joined is not None:
                    joined(consumer)
                log.info("media %s: %s joins the live stream of %s (%d consumers)", shared.id, consumer, channel_id,
                         len(shared.consumers))  # fmt: skip
                await self._wait_ready(shared)
                return self._view(shared, consumer)
        try:
            owners = await self.owners_of(channel_id)
            target = resolve(channel_id, self.status_of, owners)
        except OperationError as exc:
            raise SessionError(exc.reason, kind=exc.kind) from exc
        session = Session(
            id=self.table.new_id(), channel_id=channel_id, device_id=target.device_id, kind=kind, transport=transport,
            ssrc=self.ssrcs.allocate(history=kind != PLAY), call=Call(self.cfg.invite_timeout,
                                                                      self.cfg.no_media_timeout),
            started=self.wall(), stream_number=stream_number, start=start, end=end, speed=speed,
        )  # fmt: skip
        key = (channel_id, stream_number)
        starting: asyncio.Future[Session] | None = None
        if kind == PLAY:
            starting = self._starting[key] = asyncio.get_running_loop().create_future()
        try:
            try:
                self.table.add(session)
            except SessionError:
                self.ssrcs.release(session.ssrc)
                raise
            consumer = self.table.join(session, what)
            if joined is not None:
                joined(consumer)
            pending = self._pending[session.id] = _Pending(
                session, wake=asyncio.Event(), ready=asyncio.get_running_loop().create_future(), feeds=[],
                on_open=(lambda s, c=consumer: on_open(s, c)) if on_open is not None else None)
            try:
                await self._open(session, pending)
            except SessionError:
                raise
            except Exception as exc:  # the device went away meanwhile, a bad offer: nothing may stay allocated
                log.warning("media %s: could not start: %s", session.id, exc)
                await self._discard(session)
                raise SessionError(f"cannot start {kind} of {channel_id}: {getattr(exc, 'reason', exc)}",
                                   kind="failed") from exc
        finally:
            if starting is not None:
                self._starting.pop(key, None)
                if not starting.done():
                    starting.set_result(session)
        await self._wait_ready(session)
        return self._view(session, consumer)

    async def _wait_ready(self, session: Session) -> None:
        pending = self._pending.get(session.id)
        if pending is not None and pending.ready is not None:
            await asyncio.shield(pending.ready)
        call = session.call
        if call.state == STREAMING:
            return
        reason = call.reason or call.state
        if call.error:
            raise SessionError(f"{session.kind} of {session.channel_id}: {reason}",
                               kind="timeout" if "within" in reason or "did not" in reason else "failed")
        raise SessionError(f"{session.kind} of {session.channel_id} ended: {reason}", kind="ended")

    def _view(self, session: Session, consumer: str) -> dict[str, Any]:
        return {**session.json(self.tz), "consumer": consumer, "live": self.live_path(consumer)}

    def live_path(self, ident: str) -> str:
        """The signed live URL of a consumer (its viewer rides on it, see ``attach``), else of the session."""
        session = self._find(ident)
        target = ident if self.table.session_of(ident) is session else session.id
        expires = int(self.wall()) + self.cfg.live_url_ttl
        return f"/live/{target}?token={sign_live(self.live_secret, target, expires)}"

    def list(self) -> list[dict[str, Any]]:
        out = []
        for session in self.table:
            self._refresh_stats(session)
            out.append(session.json(self.tz))
        return out

    def show(self, ident: str) -> dict[str, Any]:
        session = self._find(ident)
        self._refresh_stats(session)
        return session.json(self.tz)

    def _find(self, ident: str) -> Session:
        session = self.table.find(ident)
        if session is None:
            raise SessionError(f"no media session {ident!r} (a session, consumer or channel with a live stream)",
                               kind="unknown")  # fmt: skip
        return session

    async def stop(self, ident: str) -> dict[str, Any]:
        """A consumer id leaves its session (the stream ends with the last one); a session or channel id ends the
        session for every consumer."""
        session = self.table.session_of(ident)
        if session is not None:
            _, last = self.table.leave(ident)
            log.info("media %s: consumer %s left (%d left)", session.id, ident, len(session.consumers))
            if not last:
                return {**session.json(self.tz), "left": ident}
        else:
            session = self._find(ident)
        await self._end(session, STOP)
        return session.json(self.tz)

    def dialog_of(self, session_id: str) -> Any:
        """The device's dialog of an established session (a superior's INFO is relayed in it), else None."""
        pending = self._pending.get(session_id)
        return pending.dialog if pending is not None else None

    async def control(self, ident: str, action: str, *, scale: float | None = None,
                      position: float | None = None) -> dict[str, Any]:
        """Playback control by INFO with a MANSRTSP body in the session's dialog (§9.8.3, App. B)."""
        session = self._find(ident)
        pending = self._pending.get(session.id)
        if session.kind == PLAY:
            raise SessionError("live sessions have no playback control (only playback and download)")
        if pending is None or pending.dialog is None or session.call.state not in (WAITING_MEDIA, STREAMING):
            raise SessionError(f"session {session.id} is not established ({session.call.state})")
        session.rtsp_cseq += 1
        try:
            body = mansrtsp(action, session.rtsp_cseq, scale=scale, position=position)
        except RtspError as exc:
            raise SessionError(str(exc)) from exc
        self._follow_device(session, pending)
        key = self.endpoint.send_in_dialog(pending.dialog, "INFO", self.mono(), headers=[
            ("Content-Type", "Application/MANSRTSP")], body=body)  # fmt: skip
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._info_waiters[key] = waiter
        self.flush()
        try:
            async with asyncio.timeout(self.cfg.invite_timeout):
                response = await waiter
        except TimeoutError as exc:
            raise SessionError(f"the device did not answer the {action} INFO", kind="timeout") from exc
        finally:
            self._info_waiters.pop(key, None)
        if response is None or response.status >= 300:
            status = "no answer" if response is None else f"{response.status} {response.reason}"
            raise SessionError(f"the device refused {action}: {status}", kind="failed")
        if action == "pause":
            session.paused = True
        elif action in ("resume", "seek"):
            session.paused = False
        elif action == "scale" and scale is not None:
            session.scale = scale
        self.count(f"media:info:{action}")
        return {**session.json(self.tz), "action": action}

    # -------------------------------------------------------------------------------------- session life

    async def _open(self, session: Session, pending: _Pending) -> None:
        device = self.device_of(session.device_id)
        peer = peer_of(device.transport, device.address)
        try:
            port, handle = await self.backend.open_receiver(
                ReceiverSpec(session.transport, int(session.ssrc), None, self.cfg.no_media_timeout,
                             label=f"{session.id} {session.channel_id}"),
                on_no_media=lambda _h, _s, sid=session.id: self._poke(sid))  # fmt: skip
        except MediaError as exc:
            self._forget(session)
            raise SessionError(f"cannot open a media port: {exc}", kind="failed") from exc
        session.handle, session.media_port = handle, port
        if pending.on_open is not None:
            pending.on_open(session)
        host, sip_port = self.local_address(peer)
        address = self.cfg.advertise or host
        offer = sdp.build_offer(sdp.Offer(
            own_id=self.platform_id, address=address, port=port, ssrc=session.ssrc, kind=SDP_KIND[session.kind],
            transport=session.transport, channel_id=session.channel_id, start=session.start, stop=session.end,
            download_speed=session.speed))  # fmt: skip
        session.call_id = new_call_id()
        session.offer_sdp = offer.to_bytes()
        pending.invite = Request("INVITE", f"sip:{session.channel_id}@{device.address}", Headers([
            ("From", f"<sip:{self.platform_id}@{self.domain}>;tag={new_tag()}"),
            ("To", f"<sip:{session.channel_id}@{self.domain}>"),
            ("Call-ID", session.call_id),
            ("CSeq", "1 INVITE"),
            ("Contact", f"<sip:{self.platform_id}@{host}:{sip_port}>"),
            ("Subject", subject(session.channel_id, session.ssrc, self.platform_id)),
            ("Content-Type", "APPLICATION/SDP"),
        ]), session.offer_sdp)  # fmt: skip
        pending.offer, pending.peer = offer, peer
        self.count(f"media:invite:{session.kind}")
        log.info("media %s: INVITE %s %s of %s via %s, %s, port %d, SSRC %s", session.id, session.kind,
                 session.channel_id, session.device_id, peer, session.transport, port, session.ssrc)  # fmt: skip
        self._act(session, session.call.handle(SEND, self.mono()))
        task = asyncio.get_running_loop().create_task(self._supervise(session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _poke(self, session_id: str) -> None:
        pending = self._pending.get(session_id)
        if pending is not None and pending.wake is not None:
            pending.wake.set()

    async def _supervise(self, session: Session) -> None:
        """Feed the call its timers and the receiver's progress until it is over."""
        pending = self._pending[session.id]
        assert pending.wake is not None
        try:
            while not session.call.over:
                now = self.mono()
                if session.call.state in (WAITING_MEDIA, STREAMING):
                    stats = self._refresh_stats(session)
                    if stats is not None and stats.last_packet is not None:
                        self._act(session, session.call.media_seen(now, stats.last_packet))
                        if session.call.state == STREAMING:
                            self._ready(pending)
                self._act(session, session.call.handle_timer(now))
                deadline = session.call.next_deadline()
                # the first packet is looked for often (it ends the operator's wait), a flowing stream rarely
                poll = {WAITING_MEDIA: FIRST_PACKET_POLL, STREAMING: 1.0}.get(session.call.state, POLL)
                wait = poll if deadline is None else max(0.0, min(poll, deadline - now))
                if session.call.over:
                    break
                pending.wake.clear()
                try:
                    async with asyncio.timeout(wait):
                        await pending.wake.wait()
                except TimeoutError:
                    pass
        except Exception:  # the error boundary of this task: the session ends, the platform keeps serving
            self.count("internal-error")
            log.exception("media %s: internal error; ending the session", session.id)
            if not session.call.over:
                session.call.reason = "internal error"
                await self._release(session, Release("internal error", True))

    def _ready(self, pending: _Pending) -> None:
        if pending.ready is not None and not pending.ready.done():
            pending.ready.set_result(None)

    def _refresh_stats(self, session: Session) -> Any:
        if not session.handle:
            return None
        try:
            session.stats = self.backend.stats(session.handle)
        except MediaError:
            return None
        return session.stats

    def _act(self, session: Session, actions: list[Any]) -> None:
        pending = self._pending.get(session.id)
        if pending is None:
            return
        now = self.mono()
        for action in actions:
            if isinstance(action, SendInvite):
                assert pending.invite is not None
                assert pending.peer is not None
                pending.invite_tx = self.endpoint.send_request(pending.invite, pending.peer, now)
                self._by_tx[pending.invite_tx] = session.id
            elif isinstance(action, SendCancel):
                if pending.invite_tx is not None:
                    self.endpoint.cancel(pending.invite_tx, now)
                    log.info("media %s: CANCEL (%s)", session.id, session.call.reason)
            elif isinstance(action, ConnectMedia):
                connect_to = self._apply_answer(session, pending)
                if connect_to is not None:
                    self._spawn(self._connect(session, connect_to))
            elif isinstance(action, SendBye):
                self._send_bye(session, pending)
            elif isinstance(action, Release):
                self._spawn(self._release(session, action))
        self.flush()
        self._poke(session.id)

    def _follow_device(self, session: Session, pending: _Pending) -> None:
        """In-dialog requests go where the device is now: a 4G device behind NAT takes a new source port between
        keepalives (spec digest §13 q23), and the dialog's destination is where the INVITE reached it."""
        try:
            device = self.device_of(session.device_id)
        except QueryError:  # no longer registered: the dialog's address is all there is
            return
        peer = peer_of(device.transport, device.address)
        if pending.dialog is not None and pending.dialog.peer != peer:
            log.info("media %s: the device moved from %s to %s; in-dialog requests follow", session.id,
                     pending.dialog.peer, peer)  # fmt: skip
            pending.dialog.peer = peer

    def _send_bye(self, session: Session, pending: _Pending) -> None:
        if pending.dialog is None:
            self._act(session, session.call.handle(BYE_DONE, self.mono()))
            return
        self._follow_device(session, pending)
        try:
            pending.bye_tx = self.endpoint.send_in_dialog(pending.dialog, "BYE", self.mono())
        except LocalProtocolError as exc:
            log.info("media %s: BYE not sent (%s)", session.id, exc)
            self._act(session, session.call.handle(BYE_DONE, self.mono()))
            return
        self._by_tx[pending.bye_tx] = session.id
        log.info("media %s: BYE (%s)", session.id, session.call.reason)

    def _apply_answer(self, session: Session, pending: _Pending) -> tuple[str, int] | None:
        """The 2xx's y= wins (DECISIONS.md: SSRC), told to the receiver before the first packet can arrive; returns
        where a tcp-active session connects."""
        assert pending.offer is not None and pending.peer is not None
        session.answer_sdp = pending.answer.body
        try:
            answer = sdp.parse(pending.answer.body)
            view = sdp.read_answer(pending.offer, answer, session.transport, fallback_address=pending.peer.host)
        except sdp.SdpError as exc:
            self._fail(session, f"unusable SDP in the 200 OK: {exc}")
            return None
        if view.ssrc_changed:
            log.info("media %s: the device answered SSRC %s for our %s; using its", session.id, view.ssrc_text,
                     session.ssrc)  # fmt: skip
        self.backend.expect_ssrc(session.handle, view.ssrc)
        session.ssrc = view.ssrc_text
        session.media_address = f"{view.address}:{view.port}" if view.address else f"?:{view.port}"
        session.filesize = view.filesize
        if view.time_shift:
            log.info("media %s: the device shifted t= by %d s (time zone); ignored", session.id, view.time_shift)
        return view.connect_to

    def _fail(self, session: Session, reason: str) -> None:
        session.call.reason = reason
        session.call.error = True
        self._spawn(self._end(session, STOP))

    async def _connect(self, session: Session, connect_to: tuple[str, int]) -> None:
        try:
            await self.backend.connect(session.handle, *connect_to)
        except MediaError as exc:
            self._fail(session, f"cannot connect to the device's media port: {exc}")

    async def _end(self, session: Session, event: str) -> None:
        self._act(session, session.call.handle(event, self.mono()))
        pending = self._pending.get(session.id)
        if pending is not None and pending.ready is not None:
            self._ready(pending)
        # wait (bounded) for the BYE / CANCEL to be answered and the session released
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.invite_timeout + 1
        while session.id in self._pending and loop.time() < deadline:
            await asyncio.sleep(0.05)

    async def _release(self, session: Session, action: Release) -> None:
        pending = self._pending.pop(session.id, None)
        if pending is None:
            return
        for tx in (pending.invite_tx, pending.bye_tx):
            if tx is not None:
                self._by_tx.pop(tx, None)
        if pending.dialog is not None:
            self.endpoint.drop_dialog(pending.dialog)
        for feed in pending.feeds or []:
            feed.end()
        self._ready(pending)
        stats = None
        if session.handle:
            try:
                stats = await self.backend.close(session.handle)
            except MediaError as exc:
                log.info("media %s: closing the receiver: %s", session.id, exc)
        if stats is not None:
            session.stats = stats
        self.ssrcs.release(session.offered_ssrc)
        session.ended_at = self.wall()
        self.table.remove(session)
        self.count("media:failed" if action.error else "media:ended")
        (log.warning if action.error else log.info)(
            "media %s: %s of %s ended: %s (%d packets, %d bytes, %d lost)", session.id, session.kind,
            session.channel_id, action.reason, stats.packets if stats else 0, stats.bytes if stats else 0,
            stats.lost if stats else 0)  # fmt: skip
        if self.on_ended is not None:
            self.on_ended(session)

    async def _discard(self, session: Session) -> None:
        if session.handle:
            try:
                await self.backend.close(session.handle)
            except MediaError:
                pass
        self._forget(session)

    def _forget(self, session: Session) -> None:
        self._pending.pop(session.id, None)
        self.ssrcs.release(session.offered_ssrc)
        self.table.remove(session)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ----------------------------------------------------------------------------------- SIP events routed in

    def on_response(self, event: ResponseReceived | TransactionFailed) -> bool:
        """A response (or a failure) of one of our INVITE / BYE / INFO transactions; False if not ours."""
        waiter = self._info_waiters.get(event.tx)
        if waiter is not None:
            if not waiter.done() and (isinstance(event, TransactionFailed) or event.response.status >= 200):
                waiter.set_result(None if isinstance(event, TransactionFailed) else event.response)
            return True
        sid = self._by_tx.get(event.tx)
        pending = self._pending.get(sid) if sid else None
        if pending is None:
            return False
        session = pending.session
        now = self.mono()
        if event.tx == pending.bye_tx:
            if isinstance(event, TransactionFailed) or event.response.status >= 200:
                self._act(session, session.call.handle(BYE_DONE, now))
            return True
        if isinstance(event, TransactionFailed):
            self._act(session, session.call.handle(REJECTED, now, f"the INVITE failed ({event.reason})"))
            return True
        resp = event.response
        if resp.status < 200:
            self._act(session, session.call.handle(PROVISIONAL, now))
        elif resp.status < 300:
            if event.dialog is None:
                return True  # a second 2xx (forked): the stack ACKs; the first one is the session
            if pending.dialog is not None and pending.dialog is not event.dialog:
                return True
            pending.dialog, pending.answer = event.dialog, resp
            self.count("media:answered")
            log.info("media %s: %d %s from the device", session.id, resp.status, resp.reason)
            self._act(session, session.call.handle(ACCEPTED, now))
        else:
            warning = resp.headers.get("warning")
            detail = f"the device refused the INVITE: {resp.status} {resp.reason}" + (f" ({warning})" if warning
                                                                                      else "")  # fmt: skip
            self._act(session, session.call.handle(REJECTED, now, detail))
        return True

    def on_bye(self, event: RequestReceived) -> bool:
        """The device ends a session (BYE in its dialog); answered 200 (which ends the dialog in the stack)."""
        session = self.table.by_call_id(event.request.call_id)
        self.endpoint.reply(event, 200, now=self.mono())
        if session is None:
            return False
        self.count("media:remote-bye")
        pending = self._pending.get(session.id)
        if pending is not None:
            pending.dialog = None  # the stack ended it with our 200
        self._act(session, session.call.handle(REMOTE_BYE, self.mono()))
        return True

    def on_media_status(self, device_id: str, channel_id: str, notify_type: str, call_id: str) -> bool:
        """MediaStatus (A.2.5.4): NotifyType 121 = the device finished the file of a playback/download (§9.8.4);
        matched by Call-ID when it comes in the dialog, else the device's newest history session of that channel."""
        if notify_type.strip() != "121":
            log.info("MediaStatus %s from %s ignored: only 121 (end of file) is defined", notify_type, device_id)
            return False
        session = self.table.by_call_id(call_id)
        if session is None:
            candidates = self.table.history_of(device_id, channel_id) or self.table.history_of(device_id, None)
            session = candidates[0] if candidates else None
        if session is None or session.kind == PLAY:
            log.info("MediaStatus 121 from %s (%s) matches no playback or download", device_id, channel_id)
            return False
        self.count("media:media-status-121")
        log.info("media %s: MediaStatus 121 from %s: the file is complete", session.id, device_id)
        self._act(session, session.call.handle(MEDIA_END, self.mono()))
        return True

    # ------------------------------------------------------------------------------------------- live HTTP

    def attach(self, ident: str) -> tuple[Session, LiveFeed, Callable[[], None]]:
        """A live viewer fed the PS payloads; the returned detach ends it. On a session's URL the viewer is a
        consumer of its own, leaving when it disconnects. On a consumer's URL (what `gb28181 play` gets) it is that
        consumer's viewer: no second consumer, so stopping the consumer ends the stream at once, rather than when
        the platform notices the viewer's socket close (the stop's answer then said "streaming", 1 consumer left)."""
        session = self._find(ident)
        pending = self._pending.get(session.id)
        subscribe = getattr(self.backend, "subscribe", None)
        if subscribe is None:
            raise SessionError("this media backend serves no live HTTP stream (use its own URLs)", kind="failed")
        if pending is None or session.call.over:
            raise SessionError(f"session {session.id} is over", kind="ended")
        feed = LiveFeed()
        remove = subscribe(session.handle, feed)
        own = self.table.session_of(ident) is session
        consumer = ident if own else self.table.join(session, "http")
        assert pending.feeds is not None
        pending.feeds.append(feed)

        def detach() -> None:
            remove()
            if feed in (pending.feeds or []):
                pending.feeds.remove(feed)  # type: ignore[union-attr]
            if own:
                return  # the consumer stays until it is stopped (gb28181 stop), as without a viewer
            _, last = self.table.leave(consumer)
            if last and not session.call.over:
                self._spawn(self._end(session, STOP))

        return session, feed, detach

    async def aclose(self) -> None:
        """Platform shutdown: BYE every session (bounded wait), then close the backend."""
        sessions = list(self.table)
        if sessions:
            await asyncio.gather(*(self._end(s, STOP) for s in sessions), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await self.backend.aclose()
