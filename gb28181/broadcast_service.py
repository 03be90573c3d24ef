"""Voice broadcast as the platform runs it (§9.12; spec digest §7.11): the async layer over gb28181/broadcast.py.
Built by the composition root (gb28181/server.py), which routes the device's INVITE, its ACK (or the stack's
AckTimeout), BYEs and our BYE's answer here; the admin API starts and stops broadcasts.

One broadcast per device at a time: the Notify Broadcast goes out through the operations layer (which waits for the
Response Broadcast by SN); the device's INVITE is matched by its From (the device) and To / Request-URI (our
SourceID); our 200 carries a sendonly SDP with the device's y=; after the ACK the file is sent as RTP in real
time (gb28181/media/audio_sender.py), and BYE ends it at the end of the file.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from typing import Any

from gb28181 import sdp
from gb28181.broadcast import (
    ACK,
    BYE_DONE,
    EOF,
    INVITE,
    MEDIA_FAILED,
    NO_ACK,
    NO_INVITE,
    REFUSED,
    REMOTE_BYE,
    RESULT_OK,
    SENDING,
    STOP,
    WAITING,
    Answer,
    AudioPlan,
    Broadcast,
    BroadcastError,
    BroadcastTable,
    Release,
    SendBye,
    StartMedia,
    StopMedia,
    build_answer,
    choose_target,
    read_offer,
)
from gb28181.config import MediaConfig
from gb28181.manscdp.codec import encode
from gb28181.manscdp.messages import BroadcastNotify
from gb28181.media import g711
from gb28181.media.audio_sender import AudioSender, rtp_packets
from gb28181.media.wav import Pcm
from gb28181.sn import QueryError
from sip.endpoint import (
    AckReceived,
    AckTimeout,
    Endpoint,
    Peer,
    RequestReceived,
    ResponseReceived,
    TransactionFailed,
    TxKey,
)
from sip.errors import LocalProtocolError
from sip.message import new_tag

log = logging.getLogger("gb28181.broadcast")


@dataclass
class _Run:
    """What the async layer holds for one broadcast."""

    bc: Broadcast
    alaw: bytes
    established: asyncio.Future[None]  # resolves once audio flows, or the broadcast ended
    done: asyncio.Future[None]  # resolves when it ended
    invite: RequestReceived | None = None
    plan: AudioPlan | None = None
    answer: bytes = b""
    to_tag: str = ""
    dialog: Any = None
    sender: AudioSender | None = None
    bye_tx: TxKey | None = None
    send_task: asyncio.Task[None] | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


class BroadcastService:
    def __init__(
        self,
        *,
        cfg: MediaConfig,
        platform_id: str,
        domain: str,
        endpoint: Endpoint,
        flush: Callable[[], None],
        status_of: Callable[[str], str | None],
        charset_of: Callable[[str], str],
        channels_of: Callable[[str], Awaitable[list[str]]],
        ask: Callable[[str, int, str, str, bytes], Awaitable[bytes]],
        new_sn: Callable[[str], int],
        local_address: Callable[[Peer], tuple[str, int]],
        mono: Callable[[], float],
        wall: Callable[[], float],
        count: Callable[[str], None],
        voice_input: str = "",
        host_of: Callable[[str], str | None] = lambda device_id: None,
        tz: tzinfo = UTC,
    ) -> None:
        """``status_of(id)`` is a registered device's status (None: not registered); ``ask`` is
        OperationService.ask (sends a MANSCDP body, waits for the Response with its SN); ``host_of(id)`` the IP the
        device registered from (None: unknown), which its audio INVITE must come from."""
        self.cfg = cfg
        self.platform_id = platform_id
        self.source_id = voice_input or platform_id
        self.endpoint = endpoint
        self.flush = flush
        self.status_of = status_of
        self.charset_of = charset_of
        self.channels_of = channels_of
        self.ask = ask
        self.new_sn = new_sn
        self.local_address = local_address
        self.mono = mono
        self.wall = wall
        self.count = count
        self.host_of = host_of
        self.tz = tz
        self.table = BroadcastTable()
        self.ssrcs = sdp.SsrcAllocator(domain)  # only for a device whose INVITE carries no y=
        self._runs: dict[str, _Run] = {}
        self._by_tx: dict[TxKey, str] = {}

    # ------------------------------------------------------------------------------------------ operator API

    async def start(self, device_id: str, pcm: Pcm, *, channel: str | None = None, transport: str | None = None,
                    wait: bool = False) -> dict[str, Any]:
        """Broadcast ``pcm`` to a device; returns the row once audio flows (or, with ``wait``, when it ended).
        Raises BroadcastError (offline, no voice output, refused, no INVITE...)."""
        if transport is not None and transport not in sdp.TRANSPORTS:
            raise BroadcastError(f"transport must be one of {', '.join(sdp.TRANSPORTS)}")
        status = self.status_of(device_id)
        if status is None:
            raise BroadcastError(f"device {device_id} is not registered", kind="offline")
        if status != "online":
            raise BroadcastError(f"device {device_id} is {status}", kind="offline")
        target = choose_target(device_id, channel, await self.channels_of(device_id))
        alaw = await asyncio.to_thread(g711.alaw_encode, pcm.samples)  # 80 ms per minute of audio: off the SIP loop
        loop = asyncio.get_running_loop()
        bc = Broadcast(
            id=self.table.new_id(), device_id=device_id, target_id=target, source_id=self.source_id,
            started=self.wall(), wait_until=self.mono() + self.cfg.invite_timeout,
            invite_wait=self.cfg.invite_timeout, samples=len(pcm.samples), transport=transport,
        )  # fmt: skip
        self.table.add(bc)
        run = self._runs[bc.id] = _Run(bc, alaw, loop.create_future(), loop.create_future())
        self.count("broadcast:start")
        log.info("broadcast %s: %s (%.1f s) to %s of %s, source %s", bc.id, pcm.source, pcm.seconds, target,
                 device_id, bc.source_id)  # fmt: skip
        self._spawn(run, self._notify(run))
        self._spawn(run, self._invite_timer(run))
        await asyncio.shield(run.done if wait else run.established)
        if bc.error:
            kind = "timeout" if "within" in bc.reason else "refused"
            raise BroadcastError(f"broadcast {bc.id} to {target}: {bc.reason}", kind=kind)
        return bc.json(self.tz)

    def owns(self, ident: str) -> bool:
        return ident in self.table.items

    def list(self) -> list[dict[str, Any]]:
        return [bc.json(self.tz) for bc in self.table]

    def show(self, ident: str) -> dict[str, Any]:
        return self._find(ident).json(self.tz)

    async def stop(self, ident: str) -> dict[str, Any]:
        run = self._runs.get(self._find(ident).id)
        if run is not None:
            self._act(run, run.bc.handle(STOP))
            try:
                async with asyncio.timeout(self.cfg.invite_timeout + 1):
                    await asyncio.shield(run.done)
            except TimeoutError:
                log.info("broadcast %s: the BYE was not answered in time", ident)
        return self.table.items.get(ident, run.bc if run else self._find(ident)).json(self.tz)

    def _find(self, ident: str) -> Broadcast:
        bc = self.table.items.get(ident)
        if bc is None:
            raise BroadcastError(f"no broadcast {ident!r}", kind="unknown")
        return bc

    # -------------------------------------------------------------------------------------- the broadcast

    async def _notify(self, run: _Run) -> None:
        """MESSAGE Notify Broadcast (A.2.5.5) and its Response Broadcast (A.2.6.11)."""
        bc = run.bc
        bc.sn = self.new_sn(bc.device_id)
        body = encode(BroadcastNotify(sn=bc.sn, source_id=bc.source_id, target_id=bc.target_id),
                      charset=self.charset_of(bc.device_id))  # fmt: skip
        try:
            await self.ask(bc.device_id, bc.sn, "Notify Broadcast", "Broadcast", body)
        except QueryError as exc:
            self.count("broadcast:refused")
            self._act(run, bc.handle(REFUSED, f"the device refused the broadcast: {exc.reason}"))
            return
        log.info("broadcast %s: %s answered Result OK", bc.id, bc.device_id)
        self._act(run, bc.handle(RESULT_OK))

    async def _invite_timer(self, run: _Run) -> None:
        await asyncio.sleep(max(0.0, run.bc.wait_until - self.mono()))
        if run.bc.state in WAITING:
            self.count("broadcast:no-invite")
            self._act(run, run.bc.handle(NO_INVITE))

    def _act(self, run: _Run, actions: list[Any]) -> None:
        bc = run.bc
        for action in actions:
            if isinstance(action, Answer):
                self._answer(run)
            elif isinstance(action, StartMedia):
                run.send_task = self._spawn(run, self._send(run))
            elif isinstance(action, StopMedia):
                if run.send_task is not None and run.send_task is not asyncio.current_task():
                    run.send_task.cancel()
            elif isinstance(action, SendBye):
                self._send_bye(run)
            elif isinstance(action, Release):
                self._release(run, action)
        if bc.state == SENDING or bc.over:
            _resolve(run.established)
        self.flush()

    def _answer(self, run: _Run) -> None:
        assert run.invite is not None
        run.bc.call_id = run.invite.request.call_id
        response = self.endpoint.reply(run.invite, 200, headers=[
            ("Contact", self._contact(run.invite.peer)), ("Content-Type", "application/sdp")],
            body=run.answer, now=self.mono(), to_tag=run.to_tag)  # fmt: skip
        req = run.invite.request
        run.dialog = self.endpoint.dialogs.get((req.call_id, response.to.tag or "", req.from_.tag or ""))
        self.count("broadcast:answered")
        log.info("broadcast %s: answered the INVITE of %s: %s %s to %s, SSRC %s", run.bc.id, run.bc.device_id,
                 "PCMA" if run.bc.payload == 8 else "PS", run.bc.transport, run.bc.media_address, run.bc.ssrc)

    def _contact(self, peer: Peer) -> str:
        host, port = self.local_address(peer)
        host = f"[{host}]" if ":" in host else host
        return f"<sip:{self.source_id}@{host}:{port}>"

    async def _send(self, run: _Run) -> None:
        bc, sender, plan = run.bc, run.sender, run.plan
        assert sender is not None and plan is not None
        packets = await asyncio.to_thread(rtp_packets, run.alaw, plan.payload, int(bc.ssrc))

        def sent(packet: bytes) -> None:
            bc.packets += 1
            bc.bytes += len(packet) - 12

        try:
            await sender.run(packets, sent, asyncio.get_running_loop().time)
        except (OSError, TimeoutError) as exc:
            self.count("broadcast:media-failed")
            self._act(run, bc.handle(MEDIA_FAILED, f"the audio to {bc.media_address} over {bc.transport} failed: "
                                                   f"{exc or type(exc).__name__}"))  # fmt: skip
            return
        self._act(run, bc.handle(EOF))

    def _send_bye(self, run: _Run) -> None:
        if run.dialog is None:
            self._act(run, run.bc.handle(BYE_DONE))
            return
        try:
            run.bye_tx = self.endpoint.send_in_dialog(run.dialog, "BYE", self.mono())
        except LocalProtocolError as exc:
            log.info("broadcast %s: BYE not sent (%s)", run.bc.id, exc)
            self._act(run, run.bc.handle(BYE_DONE))
            return
        self._by_tx[run.bye_tx] = run.bc.id
        log.info("broadcast %s: BYE (%s)", run.bc.id, run.bc.reason)

    def _release(self, run: _Run, action: Release) -> None:
        bc = run.bc
        if run.sender is not None:
            run.sender.close()
        if run.bye_tx is not None:
            self._by_tx.pop(run.bye_tx, None)
        if run.dialog is not None:
            self.endpoint.drop_dialog(run.dialog)
        if run.plan is not None and not run.plan.ssrc:
            self.ssrcs.release(bc.ssrc)
        for task in list(run.tasks):
            if task is not asyncio.current_task():
                task.cancel()
        bc.ended_at = self.wall()
        self.table.remove(bc)
        self._runs.pop(bc.id, None)
        self.count("broadcast:failed" if action.error else "broadcast:ended")
        (log.warning if action.error else log.info)(
            "broadcast %s to %s ended: %s (%d packets, %.1f s of audio)", bc.id, bc.target_id, action.reason,
            bc.packets, bc.packets * 0.02)  # fmt: skip
        _resolve(run.established)
        _resolve(run.done)

    def _spawn(self, run: _Run, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        run.tasks.add(task)
        task.add_done_callback(run.tasks.discard)
        return task

    # ----------------------------------------------------------------------------------- SIP events routed in

    def on_invite(self, event: RequestReceived) -> bool:
        """A device's INVITE: ours when it answers a waiting broadcast (From = the device, To or Request-URI =
        the SourceID); then answered here (200 with our SDP, or an error status saying why). False otherwise."""
        req = event.request
        if event.dialog is not None:
            return False  # a re-INVITE: not a broadcast's
        uri_user = getattr(req.request_uri, "user", None) or ""
        bc = self.table.match_invite(req.from_.user or "", (req.to.user or "", uri_user))
        if bc is None:
            return False
        run = self._runs[bc.id]
        now = self.mono()
        host = self.host_of(bc.device_id)
        if host is not None and host != event.peer.host:  # GB INVITEs carry no credentials: the address must match
            self.count("broadcast:invite-foreign")
            log.warning("broadcast %s: INVITE from %s claims device %s, registered from %s: refused 403", bc.id,
                        event.peer, bc.device_id, host)  # fmt: skip
            self.endpoint.reply(event, 403, now=now)
            self.flush()
            return True
        try:
            offer = sdp.parse(req.body)
            plan = read_offer(offer, event.peer.host, bc.transport)
        except (sdp.SdpError, BroadcastError) as exc:
            status = exc.status if isinstance(exc, BroadcastError) else 488
            reason = exc.reason if isinstance(exc, BroadcastError) else f"unusable SDP: {exc}"
            self.endpoint.reply(event, status, headers=[("Warning", f'399 gb28181 "{reason[:100]}"')], now=now)
            self._act(run, bc.handle(REFUSED, f"the device's INVITE was refused {status}: {reason}"))
            return True
        local_ip = self.cfg.advertise or self.local_address(event.peer)[0]
        sender = AudioSender(plan.transport, self.cfg.bind if self.cfg.bind else local_ip,
                             (plan.address, plan.port), connect_timeout=self.cfg.invite_timeout)  # fmt: skip
        try:
            port = sender.open()
        except OSError as exc:
            self.endpoint.reply(event, 500, now=now)
            self._act(run, bc.handle(REFUSED, f"no media socket for the audio: {exc}"))
            return True
        ssrc = f"{plan.ssrc:010d}" if plan.ssrc else self.ssrcs.allocate()
        run.invite, run.plan, run.sender, run.to_tag = event, plan, sender, new_tag()
        run.answer = build_answer(offer, plan, bc.source_id, local_ip, port, ssrc).to_bytes()
        bc.transport, bc.payload, bc.ssrc, bc.media_port = plan.transport, plan.payload, ssrc, port
        bc.media_address = f"{plan.address}:{plan.port}"
        self.count("broadcast:invite")
        self._act(run, bc.handle(INVITE))
        return True

    def on_ack(self, event: AckReceived | AckTimeout) -> bool:
        dialog = event.dialog
        bc = self.table.by_call_id(dialog.call_id) if dialog is not None else None
        if bc is None:
            return False
        run = self._runs[bc.id]
        self._act(run, bc.handle(ACK if isinstance(event, AckReceived) else NO_ACK))
        return True

    def on_bye(self, event: RequestReceived) -> bool:
        """The device ends the broadcast; answered 200 here when it is ours."""
        bc = self.table.by_call_id(event.request.call_id)
        if bc is None:
            return False
        self.endpoint.reply(event, 200, now=self.mono())
        run = self._runs[bc.id]
        run.dialog = None  # our 200 ended it in the stack
        self.count("broadcast:remote-bye")
        self._act(run, bc.handle(REMOTE_BYE))
        return True

    def on_response(self, event: ResponseReceived | TransactionFailed) -> bool:
        sid = self._by_tx.get(event.tx)
        run = self._runs.get(sid) if sid else None
        if run is None:
            return False
        if isinstance(event, TransactionFailed) or event.response.status >= 200:
            self._act(run, run.bc.handle(BYE_DONE))
        return True

    async def aclose(self) -> None:
        """Platform shutdown: stop every broadcast (BYE, bounded wait)."""
        runs = list(self._runs.values())
        if runs:
            await asyncio.gather(*(self.stop(r.bc.id) for r in runs), return_exceptions=True)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
