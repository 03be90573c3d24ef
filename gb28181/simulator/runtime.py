"""The simulator's composition root (ARCHITECTURE.md rule 6): profiles -> devices -> SIP endpoints and sockets,
timers, the control channel, the progress line and the summary.

Each device gets its own ``sip.Endpoint`` and ``SipRunner`` with its own UDP socket (or TCP connection), as real
devices each have their own source port. ``--shared-socket`` puts every device on one endpoint and one UDP socket
instead (requests are routed to a device by the user part of their Request-URI): no file-descriptor limit, but
every device then shares one address, which the platform sees as one NAT gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import socket
import stat
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gb28181.media import rtp
from gb28181.media.h264 import AccessUnit, access_units
from gb28181.sdp import TCP_ACTIVE, TCP_PASSIVE, UDP
from gb28181.simulator.control import HELP, Command, CommandError, parse_command, select
from gb28181.simulator.device import (
    DialogId,
    DialogRequest,
    InvitePlan,
    MediaStart,
    MediaStop,
    Notify,
    Options,
    Rebind,
    Reply,
    Send,
    ServerInfo,
    SimDevice,
    TalkStart,
    TalkStop,
)
from gb28181.simulator.inventory import build
from gb28181.simulator.profile import Profile, assign, load_profile
from gb28181.simulator.registration import State
from sip.aio import SipRunner, TransactionError, tune_gc
from sip.endpoint import AckReceived, ConnectionClosed, Endpoint, EndpointConfig, Event, Peer, RequestReceived
from sip.errors import LocalProtocolError
from sip.message import Response
from sip.timers import TimerConfig

log = logging.getLogger("gb28181.simulator")

FD_RESERVE = 64  # descriptors kept for the event loop, stdio, the control port and logs
CLIP = Path(__file__).resolve().parents[2] / "fixtures" / "media" / "testsrc-320x240-25fps-4s.h264"
ACK_TIMEOUT = 32.0  # s: an INVITE 200 never ACKed ends its session (RFC 3261 §13.3.1.4, 64*T1)
MEDIA_CONNECT_TIMEOUT = 10.0  # s for the platform to connect (device listens) or to accept our connection
PAUSED_POLL = 0.05  # s between looks at a paused or waiting session


@dataclass
class SimConfig:
    server_host: str
    server_port: int
    devices: int
    profile: str = "mixed"
    transport: str | None = None  # None: each profile's own
    channels: int | None = None
    password: str = "12345678"
    id_prefix: str = "3402000000"
    server_id: str = "34020000002000000001"
    domain: str = ""  # default: the first 10 digits of server_id
    duration: float | None = None
    rate: float = 200.0  # devices powered on per second
    keepalive: float | None = None
    expires: int | None = None
    control_port: int | None = None
    shared_socket: bool = False
    bind: str | None = None
    stdin: bool = True
    progress: bool = True
    t1: float = 0.5
    audio_outputs: int = 0  # voice outputs (137 channels) per device
    max_streams: int = 0  # media streams per channel at once (0: no limit); beyond, 486


@dataclass
class Link:
    """One SIP endpoint with its runner; per device, or shared by all of them."""

    endpoint: Endpoint
    runner: SipRunner
    peer: Peer  # the platform
    owner: Slot | None = None  # the device of a dedicated link; None when shared


@dataclass
class Slot:
    index: int
    device: SimDevice
    link: Link | None = None
    timer: asyncio.TimerHandle | None = None
    timer_at: float | None = None


@dataclass
class MediaLink:
    """The socket of one media session and the task streaming on it (runtime side of media.MediaSession)."""

    sock: socket.socket
    transport: str  # the device's side: udp | tcp-active | tcp-passive
    task: asyncio.Task[None] | None = None
    ack_timer: asyncio.TimerHandle | None = None


class _AudioSink(asyncio.DatagramProtocol):
    """The device's loudspeaker: counts the broadcast's RTP packets and what they decode to (SimDevice.hear)."""

    def __init__(self, device: SimDevice) -> None:
        self.device = device

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.device.stats["talk-rtp-received"] += 1
        self.device.hear(data)

    def error_received(self, exc: Exception) -> None:
        pass


def load_clip(path: Path = CLIP) -> list[AccessUnit]:
    """The fixture clip as access units (read once per process, shared by every device)."""
    try:
        return access_units(path.read_bytes())
    except OSError as exc:
        raise SimulatorError(f"cannot read the media clip {path}: {exc.strerror}") from exc


@dataclass
class Simulator:
    cfg: SimConfig
    slots: list[Slot] = field(default_factory=list)
    started_at: float = 0.0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.wall: Callable[[], float] = time.time
        self._by_id: dict[str, Slot] = {}
        self._shared: Link | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._bind = self.cfg.bind or ("127.0.0.1" if self.cfg.server_host.startswith("127.") else "0.0.0.0")
        self._last_progress = ""
        self._closing = False
        self._media: dict[tuple[int, DialogId], MediaLink] = {}
        self._talks: dict[tuple[int, str], asyncio.DatagramTransport] = {}

    # ------------------------------------------------------------------ building
    @classmethod
    async def create(cls, cfg: SimConfig, profile: Profile | None = None) -> Simulator:
        if not (cfg.id_prefix.isdigit() and len(cfg.id_prefix) == 10):
            raise SimulatorError(f"--id-prefix must be 10 digits (centre code + industry), not {cfg.id_prefix!r}")
        if not (cfg.server_id.isdigit() and len(cfg.server_id) == 20):
            raise SimulatorError(f"--server-id must be 20 digits, not {cfg.server_id!r}")
        try:  # a name is resolved once: every device sends to, and expects answers from, that address
            cfg.server_host = socket.getaddrinfo(cfg.server_host, cfg.server_port, type=socket.SOCK_DGRAM)[0][4][0]
        except (OSError, IndexError) as exc:
            raise SimulatorError(f"cannot resolve the server {cfg.server_host!r}: {exc}") from exc
        sim = cls(cfg)
        chosen = assign(profile or load_profile(cfg.profile))
        server = ServerInfo(cfg.server_id, cfg.domain or cfg.server_id[:10], cfg.server_host, cfg.server_port)
        options = Options(keepalive_interval=cfg.keepalive, register_expires=cfg.expires, max_streams=cfg.max_streams)
        clip = load_clip()
        for i in range(cfg.devices):
            p = chosen.profile_of(i)
            inv = build(p, i, cfg.id_prefix, cfg.channels, cfg.audio_outputs)
            transport = cfg.transport or p.transport
            device = SimDevice(inv, server, cfg.password, transport, options)
            device.clip = clip
            slot = Slot(i, device)
            sim.slots.append(slot)
            sim._by_id[inv.device_id] = slot
            for ch in inv.channels:
                sim._by_id.setdefault(ch.id, slot)
        return sim

    def _new_link(self, transport: str) -> Link:
        endpoint = Endpoint(EndpointConfig(timers=TimerConfig(t1=self.cfg.t1), auto_trying=True))
        peer = Peer(transport, self.cfg.server_host, self.cfg.server_port)
        holder: list[Link] = []
        runner = SipRunner(endpoint, lambda ev: self._on_event(holder[0], ev), tcp_connect_timeout=5.0)
        holder.append(Link(endpoint, runner, peer))
        return holder[0]

    async def _attach(self, slot: Slot) -> None:
        transport = slot.device.transport
        if self.cfg.shared_socket and transport == "UDP":
            if self._shared is None:
                self._shared = self._new_link("UDP")
                await self._shared.runner.listen_udp(self._bind, 0)
            slot.link = self._shared
        else:
            slot.link = self._new_link(transport)
            slot.link.owner = slot
            if transport == "UDP":
                await slot.link.runner.listen_udp(self._bind, 0)
        slot.device.local = slot.link.runner.local_address(slot.link.peer)

    # ------------------------------------------------------------------ running
    async def run(self) -> dict[str, Any]:
        self.started_at = self.loop.time()
        raise_fd_limit(self.needed_fds())
        tune_gc()  # the inventories are built
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self.loop.add_signal_handler(sig, self.stop.set)
        self._spawn(self._power_on_all())
        if self.cfg.progress:
            self._spawn(self._progress_loop())
        if self.cfg.stdin:
            self._spawn(self._read_stdin())
        server = None
        if self.cfg.control_port is not None:
            server = await asyncio.start_server(self._control_client, "127.0.0.1", self.cfg.control_port)
            log.info("control channel on 127.0.0.1:%d", server.sockets[0].getsockname()[1])
        try:
            if self.cfg.duration is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), self.cfg.duration)
            else:
                await self.stop.wait()
        finally:
            if server is not None:
                server.close()
            for task in list(self._tasks):
                task.cancel()
            summary = self.summary()
            if self.cfg.progress:
                self._print_progress(final=True)
            await self.close()
        return summary

    def needed_fds(self) -> int:
        if self.cfg.shared_socket:
            return FD_RESERVE + sum(1 for s in self.slots if s.device.transport == "TCP") + 1
        return FD_RESERVE + len(self.slots)

    async def _power_on_all(self) -> None:
        """Power devices on at ``rate`` per second (a whole county switching on at once is a storm of its own)."""
        t0 = self.loop.time()
        for slot in self.slots:
            try:
                await self._attach(slot)
            except OSError as exc:
                log.error("device %s: cannot open its socket: %s", slot.device.device_id, exc)
                continue
            slot.device.power_on(self.loop.time())
            self._pump(slot)
            delay = t0 + (slot.index + 1) / self.cfg.rate - self.loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        # Devices, endpoints and sockets live as long as the run: keep full collections from walking them all
        # (a pause of a second lets a shared socket's buffer overflow; see sip.aio.tune_gc).
        tune_gc()

    def _spawn(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ SIP events in
    def _on_event(self, link: Link, event: Event) -> None:
        if self._closing:
            return
        if isinstance(event, ConnectionClosed):
            owner = link.owner  # TCP links are never shared
            if owner is not None:
                owner.device.connection_lost(self.loop.time())
                self.loop.call_soon(self._pump, owner)
            return
        if isinstance(event, AckReceived):
            if link.owner is not None and event.dialog is not None:
                self._on_ack(link.owner, event.dialog.id)
            return
        if not isinstance(event, RequestReceived) or event.tx is None:
            return
        slot = self._slot_for(link, event)
        now = self.loop.time()
        try:
            if slot is None:
                link.endpoint.reply(event, 404, now=now)
                return
            if event.request.method == "INVITE" and event.dialog is None:
                self._on_invite(slot, link, event, now)
                return
            dialog_id = event.dialog.id if event.dialog is not None else None
            reply = slot.device.on_request(event.request, now, self.wall(), dialog_id)
            if reply is not None:
                link.endpoint.reply(
                    event, reply.status, reply.reason, headers=list(reply.headers), body=reply.body, now=now,
                    to_tag=reply.to_tag,
                )  # fmt: skip
        except LocalProtocolError as exc:
            log.info("could not answer %s: %s", event.request.method, exc)
            return
        except Exception:  # the error boundary: one device's bug must not stop the others
            log.exception("device %s failed on %s", slot.device.device_id if slot else "?", event.request.method)
            with contextlib.suppress(LocalProtocolError):
                link.endpoint.reply(event, 500, now=now)
            return
        if slot is not None:
            self.loop.call_soon(self._pump, slot)

    # ------------------------------------------------------------------ media (device.py has the protocol)
    def _on_invite(self, slot: Slot, link: Link, event: RequestReceived, now: float) -> None:
        device = slot.device
        if device.state == State.OFF:
            device.stats["unanswered-while-off"] += 1
            return
        device.stats["in:INVITE"] += 1
        plan = device.plan_invite(event.request)
        if isinstance(plan, Reply):
            link.endpoint.reply(event, plan.status, plan.reason, headers=list(plan.headers), now=now)
            return
        if link is self._shared:
            link.endpoint.reply(event, 488, headers=[("Warning", '399 simulator "media needs --no-shared-socket"')],
                                now=now)  # fmt: skip
            return
        try:
            sock = self._media_socket(plan, device.local[0])
        except OSError as exc:
            log.warning("%s: no media socket: %s", device.device_id, exc)
            link.endpoint.reply(event, 500, headers=[("Warning", '399 simulator "no media socket"')], now=now)
            return
        reply = device.accept_invite(event.request, plan, device.local[0], sock.getsockname()[1], now)
        link.endpoint.reply(event, reply.status, headers=list(reply.headers), body=reply.body, now=now,
                            to_tag=reply.to_tag)  # fmt: skip
        if plan.replaces:  # App. K: the replaced sends' MediaStop and BYE
            self.loop.call_soon(self._pump, slot)
        dialog_id: DialogId = (event.request.call_id, reply.to_tag or "", event.request.from_.tag or "")
        ml = MediaLink(sock, plan.transport)
        ml.ack_timer = self.loop.call_later(ACK_TIMEOUT, self._ack_missing, slot, dialog_id)
        self._media[(slot.index, dialog_id)] = ml

    def _media_socket(self, plan: InvitePlan, host: str) -> socket.socket:
        """UDP: the RTP source socket; tcp-passive: a listening socket; tcp-active: bound now, connected on ACK
        (its port is the one in our SDP)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM if plan.transport == UDP else socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            if plan.transport != UDP:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, 0))
            if plan.transport == TCP_PASSIVE:
                sock.listen(1)
        except OSError:
            sock.close()
            raise
        return sock

    def _ack_missing(self, slot: Slot, dialog_id: DialogId) -> None:
        ml = self._media.get((slot.index, dialog_id))
        if ml is not None and ml.task is None:
            log.info("%s: no ACK for the INVITE 200 in %.0f s: media session dropped", slot.device.device_id,
                     ACK_TIMEOUT)  # fmt: skip
            slot.device.media_lost(dialog_id, self.loop.time())
            slot.device.media.pop(dialog_id, None)
            self._close_media(slot, dialog_id)

    def _on_ack(self, slot: Slot, dialog_id: DialogId) -> None:
        slot.device.on_ack(dialog_id, self.loop.time())
        self._pump(slot)

    def _start_media(self, slot: Slot, dialog_id: DialogId) -> None:
        ml = self._media.get((slot.index, dialog_id))
        if ml is None or ml.task is not None:
            return
        if ml.ack_timer is not None:
            ml.ack_timer.cancel()
        ml.task = self.loop.create_task(self._stream(slot, dialog_id, ml))
        self._tasks.add(ml.task)
        ml.task.add_done_callback(self._tasks.discard)

    def _close_media(self, slot: Slot, dialog_id: DialogId) -> None:
        ml = self._media.pop((slot.index, dialog_id), None)
        if ml is None:
            return
        if ml.ack_timer is not None:
            ml.ack_timer.cancel()
        if ml.task is not None and ml.task is not asyncio.current_task():
            ml.task.cancel()
        ml.sock.close()

    async def _stream(self, slot: Slot, dialog_id: DialogId, ml: MediaLink) -> None:
        """Send the session's packets at its pace: UDP datagrams, or RFC 4571 frames on TCP."""
        device = slot.device
        session = device.media.get(dialog_id)
        if session is None:
            return
        sock = ml.sock
        try:
            if ml.transport == TCP_ACTIVE:
                await asyncio.wait_for(self.loop.sock_connect(sock, session.remote), MEDIA_CONNECT_TIMEOUT)
            elif ml.transport == TCP_PASSIVE:
                conn, _ = await asyncio.wait_for(self.loop.sock_accept(sock), MEDIA_CONNECT_TIMEOUT)
                sock.close()
                sock = ml.sock = conn
            for _ in range(1 << 40):  # bounded: one turn per frame time
                now = self.loop.time()
                packets = device.media_due(dialog_id, now)
                if packets:
                    if ml.transport == UDP:
                        for packet in packets:
                            try:
                                sock.sendto(packet, session.remote)
                            except (BlockingIOError, InterruptedError):
                                device.stats["rtp-dropped"] += 1  # a full socket buffer: as a network drops
                    else:
                        await self.loop.sock_sendall(sock, b"".join(rtp.frame(p) for p in packets))
                if device.drain_pending():
                    self._pump(slot)
                if session.ended or (slot.index, dialog_id) not in self._media:
                    return
                due = session.next_due()
                await asyncio.sleep(PAUSED_POLL if due is None else min(max(due - self.loop.time(), 0.0), 0.5))
        except (OSError, TimeoutError) as exc:
            log.info("%s: media to %s:%d over %s ended: %s", device.device_id, *session.remote, ml.transport,
                     exc or type(exc).__name__)  # fmt: skip
            device.media_lost(dialog_id, self.loop.time())
        finally:
            if self._media.get((slot.index, dialog_id)) is ml:
                self._media.pop((slot.index, dialog_id))
                if ml.ack_timer is not None:
                    ml.ack_timer.cancel()
            sock.close()

    async def _start_talk(self, slot: Slot, source_id: str) -> None:
        """Voice broadcast (§9.12): a UDP socket that takes (and counts) the platform's audio, then the INVITE."""
        device, link = slot.device, slot.link
        if link is None or self._closing:
            return
        try:
            transport, _ = await self.loop.create_datagram_endpoint(
                lambda: _AudioSink(device), local_addr=(device.local[0], 0))
        except OSError as exc:
            log.warning("%s: no audio socket for the broadcast: %s", device.device_id, exc)
            return
        port = transport.get_extra_info("sockname")[1]
        request = device.talk_invite(source_id, device.local[0], port)
        self._talks[(slot.index, request.call_id)] = transport
        self._request(slot, f"talk:{request.call_id}", request, link.peer)
        self._arm(slot)

    def _slot_for(self, link: Link, event: RequestReceived) -> Slot | None:
        if link is not self._shared:
            return link.owner
        req = event.request
        for user in (req.request_uri.user if hasattr(req.request_uri, "user") else None, req.to.user):
            if user and user in self._by_id:
                return self._by_id[user]
        return None

    # ------------------------------------------------------------------ device output
    def _pump(self, slot: Slot) -> None:
        if self._closing:
            return
        outs = slot.device.drain()
        if any(isinstance(o, Rebind) for o in outs):
            self._spawn(self._pump_after_rebind(slot, outs))
            return
        self._send_all(slot, outs)

    async def _pump_after_rebind(self, slot: Slot, outs: list[Any]) -> None:
        for i, out in enumerate(outs):
            if isinstance(out, Rebind):
                await self._rebind(slot)
            else:
                self._send_all(slot, [out], arm=i == len(outs) - 1)
        self._arm(slot)

    def _send_all(self, slot: Slot, outs: list[Any], *, arm: bool = True) -> None:
        link = slot.link
        if link is None:
            return
        for out in outs:
            if isinstance(out, Send):
                self._request(slot, out.purpose, out.request, link.peer)
            elif isinstance(out, Notify):
                dialog = link.endpoint.dialogs.get(out.dialog_id)
                if dialog is None or not isinstance(dialog.peer, Peer):
                    log.info("%s: NOTIFY for a subscription without its dialog", slot.device.device_id)
                    continue
                request = dialog.build_request("NOTIFY", list(out.headers), out.body)
                self._request(slot, "notify", request, dialog.peer)
                if any(k == "Subscription-State" and v.startswith("terminated") for k, v in out.headers):
                    link.endpoint.dialogs.remove(out.dialog_id)
            elif isinstance(out, DialogRequest):
                dialog = link.endpoint.dialogs.get(out.dialog_id)
                if dialog is None or not isinstance(dialog.peer, Peer):
                    log.info("%s: %s for a dialog that is gone", slot.device.device_id, out.method)
                    continue
                request = dialog.build_request(out.method, list(out.headers), out.body)
                self._request(slot, "in-dialog", request, dialog.peer)
            elif isinstance(out, MediaStart):
                self._start_media(slot, out.dialog_id)
            elif isinstance(out, MediaStop):
                self._close_media(slot, out.dialog_id)
            elif isinstance(out, TalkStart):
                self._spawn(self._start_talk(slot, out.source_id))
            elif isinstance(out, TalkStop):
                transport = self._talks.pop((slot.index, out.call_id), None)
                if transport is not None:
                    transport.close()
        if arm:
            self._arm(slot)

    def _request(self, slot: Slot, purpose: str, request: Any, peer: Peer) -> None:
        assert slot.link is not None
        try:
            fut = slot.link.runner.request(request, peer)
        except LocalProtocolError as exc:
            log.info("%s: cannot send %s: %s", slot.device.device_id, request.method, exc)
            slot.device.on_answer(purpose, None, self.loop.time())
            return
        fut.add_done_callback(lambda f: self._answered(slot, purpose, f))

    def _answered(self, slot: Slot, purpose: str, fut: asyncio.Future[Response]) -> None:
        response: Response | None = None
        if not fut.cancelled():
            exc = fut.exception()
            if exc is None:
                response = fut.result()
            elif not isinstance(exc, TransactionError):
                log.info("%s: %s failed: %s", slot.device.device_id, purpose, exc)
        if self._closing:
            return
        if slot.link is not None and slot.link is not self._shared:
            slot.device.local = slot.link.runner.local_address(slot.link.peer)  # TCP: known once connected
        slot.device.on_answer(purpose, response, self.loop.time())
        self._pump(slot)

    def _arm(self, slot: Slot) -> None:
        deadline = slot.device.next_deadline()
        if deadline == slot.timer_at:
            return
        if slot.timer is not None:
            slot.timer.cancel()
        slot.timer_at = deadline
        slot.timer = None if deadline is None else self.loop.call_at(deadline, self._on_timer, slot)

    def _on_timer(self, slot: Slot) -> None:
        slot.timer = slot.timer_at = None
        slot.device.on_timer(self.loop.time())
        self._pump(slot)

    async def _rebind(self, slot: Slot) -> None:
        """A new source port: a fresh UDP socket in the runner (the old one closes, as a NAT forgets a mapping),
        or, over TCP, the connection closes and the next request opens a new one."""
        link = slot.link
        if link is None or link is self._shared:
            log.info("%s: NAT move needs a socket of its own (not with --shared-socket)", slot.device.device_id)
            return
        runner = link.runner
        if link.peer.transport == "UDP":
            try:
                await runner.rebind_udp(self._bind, 0)
            except OSError as exc:
                log.warning("%s: no new socket for the NAT move: %s", slot.device.device_id, exc)
                return
        else:
            runner.drop_connection(link.peer)
        slot.device.stats["nat-moves"] += 1

    # ------------------------------------------------------------------ control channel
    def apply(self, line: str) -> str:
        """One control command -> the reply line."""
        try:
            cmd = parse_command(line)
        except CommandError as exc:
            return f"error: {exc}"
        if cmd is None:
            return ""
        try:
            return self._apply(cmd)
        except CommandError as exc:
            return f"error: {exc}"

    def _apply(self, cmd: Command) -> str:
        now, wall = self.loop.time(), self.wall()
        ids = [s.device.device_id for s in self.slots]
        if cmd.verb == "help":
            return HELP
        if cmd.verb == "status":
            return self.progress_line()
        if cmd.verb == "quit":
            self.stop.set()
            return "ok: stopping"
        if cmd.verb in ("vlost", "video-ok"):
            slot = self._by_id.get(cmd.args[0])
            if slot is None or not slot.device.video_lost(cmd.args[0], cmd.verb == "vlost", now):
                raise CommandError(f"no powered camera channel {cmd.args[0]}")
            self._pump(slot)
            return f"ok: {cmd.args[0]} {'video lost' if cmd.verb == 'vlost' else 'video back'}"
        chosen = [self.slots[i] for i in select(cmd.args[0], ids)]
        done = 0
        for slot in chosen:
            d = slot.device
            if cmd.verb == "power-off":
                d.power_off(now)
            elif cmd.verb == "power-on":
                d.power_on(now, delay=0.0)
            elif cmd.verb == "reboot":
                d.reboot(now)
            elif cmd.verb == "nat-move":
                d.nat_move()
            elif cmd.verb == "alarm" and not d.alarm(cmd.args[1] if len(cmd.args) > 1 else None, now, wall):
                continue
            done += 1
            self._pump(slot)
        return f"ok: {cmd.verb} {done} device{'s' if done != 1 else ''}"

    async def _read_stdin(self) -> None:
        try:
            mode = os.fstat(sys.stdin.fileno()).st_mode
        except (OSError, ValueError, AttributeError):
            return
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or sys.stdin.isatty()):
            return  # /dev/null or a regular file: nothing to wait for (epoll refuses them)
        reader = asyncio.StreamReader()
        try:
            await self.loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        except (ValueError, OSError) as exc:  # a regular file or no stdin: no console commands
            log.debug("no stdin control: %s", exc)
            return
        for _ in range(10_000_000):  # bounded: one iteration per line
            line = await reader.readline()
            if not line:
                return
            reply = self.apply(line.decode("utf-8", "replace"))
            if reply:
                print(reply, file=sys.stderr, flush=True)

    async def _control_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(100_000):
                line = await reader.readline()
                if not line:
                    break
                writer.write((self.apply(line.decode("utf-8", "replace")) + "\n").encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    # ------------------------------------------------------------------ reporting
    def counts(self) -> Counter[str]:
        c: Counter[str] = Counter()
        for s in self.slots:
            c["devices"] += 1
            c[s.device.state.value] += 1
            c["online"] += s.device.online
        return c

    def progress_line(self) -> str:
        c = self.counts()
        elapsed = self.loop.time() - self.started_at
        return (
            f"simulate: {c['registered']}/{c['devices']} registered, {c['online']} online, "
            f"{c['registering'] + c['backoff']} trying, {c['off']} off, {elapsed:.0f} s"
        )

    def _print_progress(self, final: bool = False) -> None:
        line = self.progress_line()
        if sys.stderr.isatty():
            print("\r" + line.ljust(len(self._last_progress)), end="\n" if final else "", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)
        self._last_progress = line

    async def _progress_loop(self) -> None:
        period = 1.0 if sys.stderr.isatty() else 5.0
        while not self.stop.is_set():
            await asyncio.sleep(period)
            self._print_progress()

    def summary(self) -> dict[str, Any]:
        c = self.counts()
        by_profile: dict[str, Counter[str]] = {}
        stats: Counter[str] = Counter()
        rows = []
        for s in self.slots:
            d = s.device
            p = by_profile.setdefault(d.profile.name, Counter())
            p["devices"] += 1
            p["registered"] += d.state == State.REGISTERED
            p["channels"] += len(d.inv.channels)
            stats.update(d.stats)
            local = s.link.runner.local_address(s.link.peer) if s.link is not None else None
            rows.append({
                "id": d.device_id, "profile": d.profile.name, "transport": d.transport, "state": d.state.value,
                "online": d.online, "address": f"{local[0]}:{local[1]}" if local else None,
                "channels": len(d.inv.channels), "video_channels": len(d.inv.videos),
                "talk_ssrcs": sorted(d.heard.ssrcs),
            })  # fmt: skip
        return {
            "devices": c["devices"],
            "registered": c["registered"],
            "online": c["online"],
            "off": c["off"],
            "elapsed": round(self.loop.time() - self.started_at, 1),
            "by_profile": {k: dict(v) for k, v in sorted(by_profile.items())},
            "stats": {k: v for k, v in sorted(stats.items()) if not k.startswith("ignored:")},
            "device_list": rows,
        }

    async def close(self) -> None:
        self._closing = True
        for index, dialog_id in list(self._media):
            self._close_media(self.slots[index], dialog_id)
        for transport in self._talks.values():
            transport.close()
        self._talks.clear()
        for slot in self.slots:
            if slot.timer is not None:
                slot.timer.cancel()
        links = {id(s.link): s.link for s in self.slots if s.link is not None}
        for link in links.values():
            await link.runner.close()


def raise_fd_limit(needed: int) -> None:
    """Raise the soft RLIMIT_NOFILE to the hard limit; refuse clearly when even that is too few."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed and soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise SimulatorError(
            f"{needed} file descriptors needed, the limit is {soft} (hard {hard}): use --shared-socket, fewer "
            "devices per process, or raise the hard limit (ulimit -Hn)"
        )


class SimulatorError(RuntimeError):
    pass
