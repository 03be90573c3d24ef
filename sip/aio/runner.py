"""Drive a sans-IO ``Endpoint`` from asyncio (the aioquic adapter model).

Every input (datagram, stream bytes, closed connection, timer) goes to the endpoint with ``loop.time()``;
then the endpoint's events go to the application handler, its outgoing bytes go on the wire, and one
``loop.call_at`` is armed for the endpoint's earliest deadline.

The handler is called synchronously for each event and must not raise: the application owns its error
boundary. Applications that answer later (after a database commit, say) call the endpoint and then
``flush()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
from collections.abc import Callable

from sip.aio.tcp import TcpConnection
from sip.aio.udp import UdpProtocol, open_udp
from sip.endpoint import (
    Endpoint,
    Event,
    MessageRejected,
    Peer,
    ResponseReceived,
    TransactionFailed,
    TxKey,
)
from sip.message import Request, Response

log = logging.getLogger("sip.aio")


def tune_gc() -> None:
    """Garbage-collector policy for a SIP server process; call once after start-up loading.

    The hot path allocates many short-lived, acyclic objects (messages, transactions kept 64*T1): with the
    default thresholds, full collections scanning every live transaction paused the loop for up to 165 ms
    at 6,000 keepalives/s, and SIPp retransmitted (bench/RESULTS.md). Collect cycles less often, and move
    what start-up loaded out of the collector's way.
    """
    gc.set_threshold(50_000, 50, 100)
    gc.freeze()


class TransactionError(Exception):
    """A request got no final response: timeout (timer B/F) or transport failure."""

    def __init__(self, request: Request, reason: str) -> None:
        super().__init__(f"{request.method} {request.uri}: {reason}")
        self.request = request
        self.reason = reason


class SipRunner:
    def __init__(
        self,
        endpoint: Endpoint,
        handler: Callable[[Event], None] | None = None,
        *,
        tcp_idle_timeout: float = 900.0,
        tcp_connect_timeout: float = 5.0,
        overload_lag: float | None = None,
        overload_backlog: int | None = None,
    ) -> None:
        """Overload (new requests get 503 + Retry-After) is on while the event loop runs ``overload_lag``
        seconds late or, when set, ``overload_backlog`` bytes of datagrams wait unread in the kernel (1 MiB is
        about 800 requests), and off once both fall under a fifth of that. ``overload_lag=None``: never."""
        self.endpoint = endpoint
        self.handler = handler
        self.loop = asyncio.get_event_loop()
        self.tcp_idle_timeout = tcp_idle_timeout
        self.tcp_connect_timeout = tcp_connect_timeout
        self._udp: list[UdpProtocol] = []
        self._tcp_servers: list[asyncio.base_events.Server] = []
        self._tcp_listen_port: int | None = None
        self._conns: dict[Peer, TcpConnection] = {}
        self._connecting: dict[Peer, list[bytes]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._waiters: dict[TxKey, asyncio.Future[Response]] = {}
        self._local_cache: dict[str, str] = {}
        self._idle_task: asyncio.Task[None] | None = None
        self._closing = False
        self._rejected_logged = 0
        if endpoint.local_address is None:
            endpoint.local_address = self.local_address
        self.overload_lag = overload_lag
        self.overload_backlog = overload_backlog
        self._lag_handle: asyncio.TimerHandle | None = None
        if overload_lag is not None:
            self._watch_lag(self.loop.time())

    _LAG_PERIOD = 0.1

    def _watch_lag(self, expected: float) -> None:
        """Measure how late the loop runs a timer; flip the endpoint's overload flag with hysteresis."""
        if self._closing or self.overload_lag is None:
            return
        lag = self.loop.time() - expected
        limit = self.overload_backlog
        backlog = sum(b for proto in self._udp if (b := proto.backlog()) is not None) if limit else 0
        endpoint = self.endpoint
        if not endpoint.overloaded and (lag > self.overload_lag or (limit and backlog > limit)):
            endpoint.overloaded = True
            log.warning("falling behind (loop %.0f ms late, %d bytes unread): answering new requests 503",
                        lag * 1000, backlog)  # fmt: skip
        elif endpoint.overloaded and lag < self.overload_lag / 5 and (not limit or backlog < limit / 5):
            endpoint.overloaded = False
            log.warning("caught up: accepting new requests again (%d refused meanwhile in total)",
                        endpoint.stats["overload_rejected"])  # fmt: skip
        nxt = self.loop.time() + self._LAG_PERIOD
        self._lag_handle = self.loop.call_at(nxt, self._watch_lag, nxt)

    # ------------------------------------------------------------------ listening
    async def listen_udp(self, host: str, port: int) -> tuple[str, int]:
        proto = await open_udp(host, port, self._on_datagram)
        self._udp.append(proto)
        return proto.local

    async def rebind_udp(self, host: str, port: int = 0) -> tuple[str, int]:
        """Replace the UDP socket of this address family with a new one (another source port, as after a NAT
        rebinding or a 4G reconnect); the old one closes. Returns the new local address. Raises OSError."""
        proto = await open_udp(host, port, self._on_datagram)
        v6 = ":" in host
        for i, old in enumerate(self._udp):
            if (":" in old.local[0]) == v6:
                self._udp[i] = proto
                if old.transport is not None:
                    old.transport.close()
                break
        else:
            self._udp.append(proto)
        return proto.local

    def drop_connection(self, peer: Peer) -> bool:
        """Close our TCP connection to ``peer`` (the next request opens a new one, from a new port). Returns
        whether there was one."""
        conn = self._conns.get(peer)
        if conn is None:
            return False
        conn.close()
        return True

    async def listen_tcp(self, host: str, port: int) -> tuple[str, int]:
        server = await self.loop.create_server(self._new_conn, host, port, reuse_address=True, backlog=4096)
        self._tcp_servers.append(server)
        bound = server.sockets[0].getsockname()[:2]
        self._tcp_listen_port = self._tcp_listen_port or bound[1]
        if self._idle_task is None:
            self._idle_task = self.loop.create_task(self._idle_reaper())
        return bound

    def local_address(self, peer: Peer) -> tuple[str, int]:
        """Our address as ``peer`` sees it: the source address the kernel would pick, our listening port."""
        if peer.reliable:
            conn = self._conns.get(peer)
            port = self._tcp_listen_port or (conn.local[1] if conn else 5060)
            if conn is not None:
                return conn.local[0], port
        else:
            port = self._udp_for(peer).local[1] if self._udp else 5060
        host = self._local_cache.get(peer.host)
        if host is None:
            host = _route_source(peer.host)
            if len(self._local_cache) < 10_000:
                self._local_cache[peer.host] = host
        return host, port

    # ------------------------------------------------------------------ requests with futures
    def request(self, request: Request, peer: Peer) -> asyncio.Future[Response]:
        """Send a request; the future resolves to the final response or fails with TransactionError."""
        key = self.endpoint.send_request(request, peer, self.loop.time())
        fut: asyncio.Future[Response] = self.loop.create_future()
        self._waiters[key] = fut
        self.flush()
        return fut

    # ------------------------------------------------------------------ inputs
    def _on_datagram(self, data: bytes, addr: tuple[str, int], proto: UdpProtocol) -> None:
        peer = Peer("UDP", addr[0], addr[1])
        self.endpoint.receive(data, peer, self.loop.time(), proto.local)
        self.flush()

    def _new_conn(self) -> TcpConnection:
        return TcpConnection(self._on_tcp_data, self._on_tcp_made, self._on_tcp_lost)

    def _on_tcp_made(self, conn: TcpConnection) -> None:
        peer = Peer("TCP", conn.remote[0], conn.remote[1])
        old = self._conns.get(peer)
        if old is not None and old is not conn:
            old.close()
        self._conns[peer] = conn
        queued = self._connecting.pop(peer, None)
        if queued:
            for data in queued:
                conn.send(data)

    def _on_tcp_data(self, data: bytes, conn: TcpConnection) -> None:
        peer = Peer("TCP", conn.remote[0], conn.remote[1])
        self.endpoint.receive(data, peer, self.loop.time(), conn.local)
        self.flush()

    def _on_tcp_lost(self, conn: TcpConnection) -> None:
        peer = Peer("TCP", conn.remote[0], conn.remote[1])
        if self._conns.get(peer) is conn:
            del self._conns[peer]
            self.endpoint.connection_lost(peer, self.loop.time())
            self.flush()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.endpoint.handle_timer(self.loop.time())
        self.flush()

    # ------------------------------------------------------------------ outputs
    def flush(self) -> None:
        """Deliver pending events, send pending bytes, re-arm the timer."""
        endpoint = self.endpoint
        try:
            for _ in range(100_000):
                event = endpoint.next_event()
                if event is None:
                    break
                self._route_event(event)
            for item in endpoint.outgoing():
                if item.close:
                    conn = self._conns.get(item.peer)
                    if conn is not None:
                        conn.close()
                elif item.peer.transport == "UDP":
                    if self._udp:
                        self._udp_for(item.peer).send(item.data, (item.peer.host, item.peer.port))
                else:
                    self._send_tcp(item.data, item.peer)
        finally:
            self._arm()
        # Handlers may have produced more output while we sent.
        if endpoint.has_pending():
            self.loop.call_soon(self.flush)

    def _route_event(self, event: Event) -> None:
        if isinstance(event, ResponseReceived) and event.response.status >= 200:
            fut = self._waiters.pop(event.tx, None)
            if fut is not None and not fut.done():
                fut.set_result(event.response)
        elif isinstance(event, TransactionFailed):
            fut = self._waiters.pop(event.tx, None)
            if fut is not None and not fut.done():
                fut.set_exception(TransactionError(event.request, event.reason))
        elif isinstance(event, MessageRejected) and self._rejected_logged < 1000:
            self._rejected_logged += 1
            log.info("rejected message from %s: %s (answered %s)", event.peer, event.reason, event.status or "nothing")
        if self.handler is not None:
            self.handler(event)

    def _udp_for(self, peer: Peer) -> UdpProtocol:
        v6 = ":" in peer.host
        for proto in self._udp:
            if (":" in proto.local[0]) == v6:
                return proto
        return self._udp[0]

    def _send_tcp(self, data: bytes, peer: Peer) -> None:
        conn = self._conns.get(peer)
        if conn is not None and not conn.closed:
            conn.send(data)
            return
        queued = self._connecting.get(peer)
        if queued is not None:
            queued.append(data)
            return
        self._connecting[peer] = [data]
        self.loop.create_task(self._connect(peer))

    async def _connect(self, peer: Peer) -> None:
        try:
            await asyncio.wait_for(
                self.loop.create_connection(self._new_conn, peer.host, peer.port), self.tcp_connect_timeout
            )
        except (TimeoutError, OSError) as exc:
            log.info("TCP connect to %s failed: %s", peer, exc)
            self._connecting.pop(peer, None)
            self.endpoint.transport_error(peer, self.loop.time())
            self.flush()

    def _arm(self) -> None:
        deadline = self.endpoint.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None and not self._closing:
            self._timer = self.loop.call_at(deadline, self._on_timer)

    async def _idle_reaper(self) -> None:
        while not self._closing:
            await asyncio.sleep(min(60.0, self.tcp_idle_timeout / 4))
            cutoff = self.loop.time() - self.tcp_idle_timeout
            for conn in list(self._conns.values()):
                if conn.last_activity < cutoff:
                    log.info("closing idle TCP connection %s", conn.remote)
                    conn.close()

    # ------------------------------------------------------------------ shutdown
    async def close(self) -> None:
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
        if self._lag_handle is not None:
            self._lag_handle.cancel()
        if self._idle_task is not None:
            self._idle_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._idle_task
        for server in self._tcp_servers:
            server.close()
        for conn in list(self._conns.values()):
            conn.close()
        for proto in self._udp:
            if proto.transport is not None:
                proto.transport.close()
        for server in self._tcp_servers:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        for fut in self._waiters.values():
            if not fut.done():
                fut.cancel()


def _route_source(host: str) -> str:
    """The local IP the kernel would use towards ``host`` (a UDP connect sends nothing)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((host, 9))
            return s.getsockname()[0]
    except OSError:
        return "::1" if family == socket.AF_INET6 else "127.0.0.1"
