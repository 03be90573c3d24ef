"""The embedded media backend: RTP/PS receive over UDP, TCP passive and TCP active, and forwarding (relay).

One port per session identifies the stream (spec digest §13 quirk 17); the SSRC is checked only to keep a second
sender out (``jitter.SsrcPolicy``). Packets go through a bounded reorder buffer, then to the session's sinks: the
PS file (RTP stripped) and any forwards, each of which rewrites the SSRC to the one its consumer was given.
asyncio IO lives here by design (ARCHITECTURE.md rule 6); the per-packet logic is the sans-IO ``rtp`` and
``jitter`` modules.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import Callable
from typing import BinaryIO, cast

from gb28181.media import rtp
from gb28181.media.backend import (
    TCP_ACTIVE,
    TCP_PASSIVE,
    UDP,
    ForwardSpec,
    MediaError,
    NoMediaCallback,
    ReceiverSpec,
    ReceiverStats,
)
from gb28181.media.jitter import ReorderBuffer, SsrcPolicy

log = logging.getLogger("gb28181.media")

Sink = Callable[[rtp.RtpPacket], None]
UDP_RCVBUF = 4 * 1024 * 1024  # asked for; the kernel caps it at net.core.rmem_max
FORWARD_TCP_HIGH_WATER = 4 * 1024 * 1024  # a TCP consumer further behind than this loses packets, not our memory


class PortPool:
    """Ports of ``[media] rtp_ports``, handed out round-robin so a freed port is not reused at once. Sans-IO."""

    def __init__(self, first: int, last: int) -> None:
        if not 0 < first <= last <= 65535:
            raise ValueError("port range must be 1-65535, first <= last")
        self.first, self.last = first, last
        self._next = first
        self._used: set[int] = set()

    def candidates(self) -> list[int]:
        """Free ports in the order to try them (binding may still fail: another process holds the port)."""
        size = self.last - self.first + 1
        order = [self.first + (self._next - self.first + i) % size for i in range(size)]
        return [p for p in order if p not in self._used]

    def take(self, port: int) -> None:
        self._used.add(port)
        self._next = port + 1 if port < self.last else self.first

    def free(self, port: int) -> None:
        self._used.discard(port)

    @property
    def in_use(self) -> int:
        return len(self._used)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, session: _Session) -> None:
        self.session = session

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.session.on_rtp(data)

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable and the like: not fatal for a receiver
        log.debug("media %s: UDP error %s", self.session.label, exc)


class _TcpIn(asyncio.Protocol):
    """One RFC 4571 media connection into a session."""

    def __init__(self, session: _Session) -> None:
        self.session = session
        self.decoder = rtp.Rfc4571Decoder()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport subclasses
        if self.session.tcp is not None or self.session.closed:
            log.warning("media %s: second TCP connection from %s refused", self.session.label,
                        transport.get_extra_info("peername"))
            transport.close()
            return
        self.transport = transport
        self.session.tcp = transport
        self.session.stats.connected = True

    def data_received(self, data: bytes) -> None:
        try:
            packets = self.decoder.feed(data)
        except rtp.RtpError as exc:
            log.warning("media %s: TCP framing lost (%s); closing the media connection", self.session.label, exc)
            self.session.stats.malformed += 1
            if self.transport:
                self.transport.close()
            return
        for packet in packets:
            self.session.on_rtp(packet)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None and self.session.tcp is self.transport:
            self.session.stats.connected = False
            self.session.tcp = None
            self.session.deliver(self.session.reorder.flush())


class _Forward:
    """Relays a session's packets to one consumer with that consumer's SSRC."""

    def __init__(self, spec: ForwardSpec, stats: ReceiverStats) -> None:
        self.spec = spec
        self.stats = stats
        self.port = 0
        self.udp: asyncio.DatagramTransport | None = None
        self.tcp: asyncio.Transport | None = None
        self.server: asyncio.AbstractServer | None = None

    def __call__(self, packet: rtp.RtpPacket) -> None:
        data = rtp.build(packet.payload_type, packet.sequence, packet.timestamp, self.spec.ssrc, packet.payload,
                         packet.marker)
        if self.udp is not None:
            self.udp.sendto(data, (self.spec.host, self.spec.port))
        elif self.tcp is not None and not self.tcp.is_closing() and \
                self.tcp.get_write_buffer_size() < FORWARD_TCP_HIGH_WATER:
            self.tcp.write(rtp.frame(data))
        else:
            self.stats.forward_dropped += 1
            return
        self.stats.forwarded_packets += 1

    def close(self) -> None:
        for t in (self.udp, self.tcp, self.server):
            if t is not None:
                t.close()


class _ForwardConn(asyncio.Protocol):
    """The consumer's side of a TCP forward: we only write; whatever it sends is ignored (RTCP at most)."""

    def __init__(self, forward: _Forward) -> None:
        self.forward = forward
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport subclasses
        if self.forward.tcp is not None and not self.forward.tcp.is_closing():
            transport.close()
            return
        self.transport = transport
        self.forward.tcp = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.forward.tcp is self.transport:
            self.forward.tcp = None


class _Session:
    def __init__(self, handle: str, spec: ReceiverSpec, port: int, loop: asyncio.AbstractEventLoop,
                 on_no_media: NoMediaCallback | None) -> None:
        self.handle = handle
        self.spec = spec
        self.port = port
        self.loop = loop
        self.label = spec.label or handle
        self.stats = ReceiverStats(port=port, transport=spec.transport, expected_ssrc=spec.ssrc)
        self.policy = SsrcPolicy(spec.ssrc)
        self.reorder = ReorderBuffer(spec.reorder_capacity)
        self.on_no_media = on_no_media
        self.sinks: list[Sink] = []
        self.file: BinaryIO | None = None
        self.udp: asyncio.DatagramTransport | None = None
        self.tcp: asyncio.Transport | None = None
        self.server: asyncio.AbstractServer | None = None
        self.active_sock: socket.socket | None = None
        self.forwards: dict[str, _Forward] = {}
        self.closed = False
        self.opened_at = loop.time()
        self.timer = loop.call_at(self.opened_at + spec.no_media_timeout, self.check_media)

    def on_rtp(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            packet = rtp.parse(data)
        except rtp.RtpError:
            self.stats.malformed += 1
            return
        ok, mismatch = self.policy.accept(packet.ssrc)
        if mismatch:
            log.warning("media %s: SSRC %d (0x%08x) differs from the expected %s; stream accepted by its port",
                        self.label, packet.ssrc, packet.ssrc, self.policy.expected)
        if not ok:
            self.stats.foreign = self.policy.foreign
            return
        now = self.loop.time()
        if self.stats.first_packet is None:
            self.stats.first_packet = now
            self.stats.ssrc = packet.ssrc
        self.stats.last_packet = now
        self.deliver(self.reorder.push(packet))

    def deliver(self, packets: list[rtp.RtpPacket]) -> None:
        for packet in packets:
            self.stats.packets += 1
            self.stats.bytes += len(packet.payload)
            for sink in self.sinks:
                sink(packet)
        r = self.reorder.stats
        self.stats.lost, self.stats.late, self.stats.duplicates, self.stats.reordered = (
            r.lost, r.late, r.duplicates, r.reordered)

    def write_file(self, packet: rtp.RtpPacket) -> None:
        if self.file is not None:
            try:
                self.file.write(packet.payload)
            except OSError as exc:
                log.error("media %s: writing %s failed (%s); recording stopped", self.label, self.spec.output, exc)
                self.file.close()
                self.file = None

    def check_media(self) -> None:
        if self.closed:
            return
        last = self.stats.last_packet if self.stats.last_packet is not None else self.opened_at
        due = last + self.spec.no_media_timeout
        if self.loop.time() < due:
            self.timer = self.loop.call_at(due, self.check_media)
            return
        self.stats.no_media = True
        log.warning("media %s: no media for %.1f s on port %d", self.label, self.spec.no_media_timeout, self.port)
        if self.on_no_media is not None:
            try:
                self.on_no_media(self.handle, self.stats)
            except Exception:  # a callback's bug must not kill the event loop's timer handling
                log.exception("media %s: no-media callback failed", self.label)

    def close(self) -> None:
        if self.closed:
            return
        self.deliver(self.reorder.flush())
        self.closed = True
        self.timer.cancel()
        for t in (self.udp, self.tcp, self.server):
            if t is not None:
                t.close()
        if self.active_sock is not None:
            self.active_sock.close()
        for f in self.forwards.values():
            f.close()
        self.forwards.clear()
        if self.file is not None:
            try:
                self.file.close()  # flushes the buffer: a full disk shows here
            except OSError as exc:
                log.error("media %s: closing %s failed (%s)", self.label, self.spec.output, exc)
            self.file = None


class EmbeddedBackend:
    """``MediaBackend`` with its own sockets, for one event loop. ``host`` is the address bound (127.0.0.1 in
    tests, 0.0.0.0 in production); the SDP's advertised address is the INVITE layer's business."""

    def __init__(self, ports: tuple[int, int], host: str = "0.0.0.0") -> None:
        self.pool = PortPool(*ports)
        self.host = host
        self._sessions: dict[str, _Session] = {}
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------------------- receivers

    async def open_receiver(self, spec: ReceiverSpec,
                            on_no_media: NoMediaCallback | None = None) -> tuple[int, str]:
        loop = asyncio.get_running_loop()
        handle = f"rtp-{next(self._ids)}"
        file = None
        if spec.output:
            try:
                file = open(spec.output, "wb", buffering=256 * 1024)  # noqa: SIM115 - closed by the session
            except OSError as exc:
                raise MediaError(f"cannot write {spec.output}: {exc.strerror}") from exc
        try:
            port, session = await self._bind(spec, handle, loop, on_no_media)
        except BaseException:
            if file is not None:
                file.close()
            raise
        session.file = file
        if file is not None:
            session.sinks.append(session.write_file)
        self._sessions[handle] = session
        log.info("media %s: receiving %s on port %d (SSRC %s)", session.label, spec.transport, port, spec.ssrc)
        return port, handle

    async def _bind(self, spec: ReceiverSpec, handle: str, loop: asyncio.AbstractEventLoop,
                    on_no_media: NoMediaCallback | None) -> tuple[int, _Session]:
        for port in self.pool.candidates():
            session = _Session(handle, spec, port, loop, on_no_media)
            try:
                if spec.transport == UDP:
                    session.udp, _ = await loop.create_datagram_endpoint(lambda s=session: _Udp(s),
                                                                         local_addr=(self.host, port))
                    sock = session.udp.get_extra_info("socket")
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RCVBUF)
                    except OSError:
                        pass
                elif spec.transport == TCP_PASSIVE:
                    session.server = await loop.create_server(lambda s=session: _TcpIn(s), self.host, port,
                                                              reuse_address=True, backlog=4)
                else:  # tcp-active: hold the port now (it is in our SDP); connect after the 200 OK
                    sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET,
                                         socket.SOCK_STREAM)
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                        sock.bind((self.host, port))
                    except OSError:
                        sock.close()
                        raise
                    session.active_sock = sock
            except OSError:
                session.closed = True
                session.timer.cancel()
                continue
            self.pool.take(port)
            return port, session
        raise MediaError(f"no free media port in {self.pool.first}-{self.pool.last} ({self.pool.in_use} in use)")

    def _session(self, handle: str) -> _Session:
        session = self._sessions.get(handle)
        if session is None:
            raise MediaError(f"no media session {handle!r}")
        return session

    def expect_ssrc(self, handle: str, ssrc: int) -> None:
        session = self._session(handle)
        session.policy.expected = ssrc
        session.stats.expected_ssrc = ssrc

    async def connect(self, handle: str, host: str, port: int) -> None:
        session = self._session(handle)
        sock = session.active_sock
        if session.spec.transport != TCP_ACTIVE or sock is None:
            raise MediaError(f"media session {handle} is not a waiting tcp-active receiver")
        session.active_sock = None
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (host, port))
            await loop.create_connection(lambda: _TcpIn(session), sock=sock)
        except OSError as exc:
            sock.close()
            raise MediaError(f"media {session.label}: connecting to {host}:{port} failed: {exc}") from exc

    def subscribe(self, handle: str, sink: Sink) -> Callable[[], None]:
        """Add a consumer of the session's ordered RTP packets (live HTTP, tests); returns its remover."""
        session = self._session(handle)
        session.sinks.append(sink)

        def remove() -> None:
            if sink in session.sinks:
                session.sinks.remove(sink)

        return remove

    def stats(self, handle: str) -> ReceiverStats:
        return self._session(handle).stats

    def handles(self) -> list[str]:
        return list(self._sessions)

    async def close(self, handle: str) -> ReceiverStats:
        session = self._sessions.pop(handle, None)
        if session is None:
            raise MediaError(f"no media session {handle!r}")
        for f in session.forwards.values():
            if f.server is not None:
                self.pool.free(f.port)
        session.close()
        self.pool.free(session.port)
        await asyncio.sleep(0)  # let the transports' close callbacks run
        log.info("media %s: closed, %d packets, %d bytes, %d lost", session.label, session.stats.packets,
                 session.stats.bytes, session.stats.lost)
        return session.stats

    async def aclose(self) -> None:
        for handle in list(self._sessions):
            await self.close(handle)

    # ------------------------------------------------------------------------------------ forwards

    async def forward(self, handle: str, spec: ForwardSpec) -> tuple[int, str]:
        session = self._session(handle)
        loop = asyncio.get_running_loop()
        fwd = _Forward(spec, session.stats)
        try:
            if spec.transport == UDP:
                fwd.udp, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                                 local_addr=(self.host, 0))
            elif spec.transport == TCP_ACTIVE:
                await loop.create_connection(lambda: _ForwardConn(fwd), spec.host, spec.port)
            else:
                for port in self.pool.candidates():
                    try:
                        fwd.server = await loop.create_server(lambda: _ForwardConn(fwd), self.host, port,
                                                              reuse_address=True, backlog=2)
                    except OSError:
                        continue
                    self.pool.take(port)
                    fwd.port = port
                    break
                else:
                    raise MediaError(f"no free media port in {self.pool.first}-{self.pool.last} for a forward")
        except OSError as exc:
            fwd.close()
            raise MediaError(f"forward to {spec.host}:{spec.port} over {spec.transport} failed: {exc}") from exc
        if fwd.udp is not None:
            fwd.port = fwd.udp.get_extra_info("sockname")[1]
        elif fwd.tcp is not None:
            fwd.port = fwd.tcp.get_extra_info("sockname")[1]
        name = f"{handle}/fwd-{next(self._ids)}"
        session.forwards[name] = fwd
        session.sinks.append(fwd)
        session.stats.forwards = len(session.forwards)
        log.info("media %s: forwarding to %s:%s over %s as SSRC %d", session.label, spec.host or "(listening)",
                 spec.port or fwd.port, spec.transport, spec.ssrc)
        return fwd.port, name

    async def stop_forward(self, handle: str, forward: str) -> None:
        session = self._session(handle)
        fwd = session.forwards.pop(forward, None)
        if fwd is None:
            raise MediaError(f"no forward {forward!r}")
        if fwd in session.sinks:
            session.sinks.remove(fwd)
        fwd.close()
        if fwd.server is not None:
            self.pool.free(fwd.port)
        session.stats.forwards = len(session.forwards)
        await asyncio.sleep(0)
