"""The sans-IO SIP endpoint: transport in, transactions, dialogs, events out (the pjsip module order).

IO adapters call ``receive(data, peer, now)`` for every datagram or stream chunk, ``handle_timer(now)``
when ``next_deadline()`` is reached and ``connection_lost(peer)`` when a stream closes, and put
``outgoing()`` on the wire. The application reads ``next_event()`` and answers through ``respond`` /
``send_request`` / ``cancel``. Retransmissions and stray ACKs are absorbed here and never reach the
application. Nothing here does IO or reads a clock.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from sip.dialog import DIALOG_METHODS, Dialog, DialogTable
from sip.errors import LocalProtocolError, RemoteProtocolError
from sip.events import (
    DEFER,
    AckReceived,
    AckTimeout,
    CancelReceived,
    ConnectionBroken,
    ConnectionClosed,
    Event,
    MessageRejected,
    Peer,
    RequestReceived,
    ResponseReceived,
    StatelessAnswer,
    TransactionFailed,
    Transmit,
    TxKey,
)
from sip.headers import Headers, header_key, split_commas
from sip.limits import DEFAULT_LIMITS, Limits
from sip.lite import Lite, peek
from sip.lite import response as lite_response
from sip.lite import target as lite_target
from sip.message import CARRIED_VIEWS, REASONS, Request, Response, make_response, new_branch, new_tag, warning_value
from sip.parser import StreamFramer, parse_message
from sip.salvage import salvage_head
from sip.serializer import serialize
from sip.timers import DEFAULT_TIMERS, TimerConfig
from sip.transaction import (
    ClientTransaction,
    Deliver,
    Send,
    ServerTransaction,
    Terminated,
    Timeout,
    Transaction,
    TransportFailed,
)
from sip.via import MAGIC_COOKIE, Via, parse_via


@dataclass(frozen=True)
class EndpointConfig:
    timers: TimerConfig = DEFAULT_TIMERS
    limits: Limits = DEFAULT_LIMITS
    user_agent: str | None = None
    # The address put in our Via when sending a request, when the adapter cannot tell (see local_address).
    default_local: tuple[str, int] = ("127.0.0.1", 5060)
    auto_trying: bool = True  # answer INVITE with 100 at once (§17.2.1)
    auto_ack: bool = True  # ACK every 2xx to our INVITEs (§13.2.2.4)
    max_transactions: int = 500_000
    overload_retry_after: int = 5  # seconds, in the 503 sent while overloaded


@dataclass
class _Uas2xx:
    """A 2xx to INVITE retransmitted by the UAS core until its ACK arrives (§13.3.1.4)."""

    dialog: Dialog
    data: bytes
    peer: Peer
    cseq: int
    interval: float
    give_up: float
    deadline: float


@dataclass
class _ClientInfo:
    peer: Peer
    cancel_pending: bool = False
    extra: dict[str, object] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)  # To tags of the 2xx (to INVITE) already taken


__all__ = [
    "AckReceived",
    "AckTimeout",
    "CancelReceived",
    "ConnectionBroken",
    "ConnectionClosed",
    "Endpoint",
    "EndpointConfig",
    "Event",
    "MessageRejected",
    "Peer",
    "RequestReceived",
    "ResponseReceived",
    "StatelessAnswer",
    "Tap",
    "TransactionFailed",
    "Transmit",
    "TxKey",
]


class Tap(Protocol):
    """Sees an endpoint's traffic (a live trace, a conformance run): every message it parsed, as it is dispatched,
    and every batch of transmits as the adapter takes them. Taps must not raise. With none added, each of the two
    hooks costs one truthiness test."""

    def received(self, message: Request | Response, peer: Peer, now: float) -> None: ...

    def sent(self, transmits: list[Transmit]) -> None: ...


class Endpoint:
    def __init__(
        self,
        config: EndpointConfig | None = None,
        *,
        on_unknown_dialog: Callable[[Request], bool] | None = None,
        local_address: Callable[[Peer], tuple[str, int]] | None = None,
        stateless: Callable[[Request, Peer], StatelessAnswer | None] | None = None,
        fast: Callable[[Lite, Peer, tuple[str, int] | None], StatelessAnswer | None] | None = None,
    ) -> None:
        self.config = config or EndpointConfig()
        self.dialogs = DialogTable()
        self._on_unknown_dialog = on_unknown_dialog
        # Offered every new out-of-dialog request other than INVITE, ACK and CANCEL before a transaction is made.
        # An answer is sent at once and nothing is kept (RFC 3261 §8.2.7: a UAS may answer statelessly; Kamailio's
        # registrar challenges this way): a retransmission is offered again and answered again. Only for
        # requests whose handling is idempotent (a digest challenge, a keepalive); None means "handle it
        # normally", through a server transaction and a RequestReceived event.
        self._stateless = stateless
        # The lean lane (sip/lite.py): plain REGISTER and MESSAGE datagrams offered to ``fast`` before any parse.
        # Its answers are built from the request's bytes; the ones it keeps (``keep``, ``DEFER``) answer the
        # request's retransmissions for 64*T1 (Timer J, §17.2.2), as the full path's server transaction would.
        self._fast = fast
        self._fast_cache: dict[TxKey, bytes | None] = {}
        self._fast_expiry: deque[tuple[float, TxKey]] = deque()
        self.local_address = local_address
        self._server: dict[TxKey, ServerTransaction] = {}
        self._server_peer: dict[TxKey, Peer] = {}
        self._client: dict[TxKey, ClientTransaction] = {}
        self._client_info: dict[TxKey, _ClientInfo] = {}
        self._framers: dict[Peer, StreamFramer] = {}
        self._out: list[Transmit] = []
        self._events: deque[Event] = deque()
        self._heap: list[tuple[float, int, object]] = []
        self._scheduled: dict[int, float] = {}  # id(obj) -> the deadline currently valid for it
        self._seq = itertools.count()
        self._uas_2xx: dict[tuple[str, str, str], _Uas2xx] = {}
        self._acks: dict[tuple[str, str, str], tuple[int, bytes, Peer]] = {}
        self.stats: dict[str, int] = {
            "received": 0,
            "retransmissions_absorbed": 0,
            "rejected": 0,
            "dropped": 0,
            "keepalives": 0,
            "overload_rejected": 0,
            "stateless": 0,
            "fast": 0,
        }
        # Set by the IO adapter when it cannot keep up (event-loop lag): new requests then get 503 + Retry-After.
        self.overloaded = False
        self.taps: tuple[Tap, ...] = ()  # add_tap / remove_tap

    def add_tap(self, tap: Tap) -> None:
        """Let ``tap`` see every message received and sent from now on (once, however often added)."""
        if tap not in self.taps:
            self.taps = (*self.taps, tap)

    def remove_tap(self, tap: Tap) -> None:
        self.taps = tuple(t for t in self.taps if t is not tap)

    # ------------------------------------------------------------------ adapter side
    def receive(self, data: bytes, peer: Peer, now: float, local: tuple[str, int] | None = None) -> None:
        """Bytes from the network: one datagram (UDP) or a chunk of a stream (TCP)."""
        if peer.reliable:
            framer = self._framers.get(peer)
            if framer is None:
                framer = self._framers[peer] = StreamFramer(self.config.limits)
            elif framer.broken:
                # §18.3: a stream that lost its framing cannot be resynchronised. Bytes still in flight
                # before the adapter closed it are dropped, not parsed as the start of a new stream.
                self.stats["dropped"] += 1
                return
            framer.feed(data)
            for _ in range(10_000):  # bounded: a chunk cannot hold more messages than bytes
                try:
                    msg = framer.next_message()
                except RemoteProtocolError as exc:
                    head = getattr(exc, "framed_head", None)
                    if head is None:
                        self._out.append(Transmit(b"", peer, close=True))
                        self._events.append(ConnectionBroken(peer, exc.reason))
                        self.stats["dropped"] += 1
                        return
                    self._reject_head(head[0], head[1], peer, exc)
                    continue
                if msg is None:
                    return
                self._dispatch(msg, peer, now, local)
            return
        # The lane steps aside while a tap (a trace) watches: taps see parsed messages, and only the full path has them.
        if self._fast is not None and len(data) <= FAST_MAX_DATAGRAM and not self.taps:
            lite = peek(data, self.config.limits.max_headers)
            if lite is not None and self._fast_lane(lite, peer, now, local):
                return
        if not data.strip(b"\r\n"):
            # A CRLF keep-alive datagram (RFC 5626 §4.4.1 style, sent by many devices): nothing to answer.
            self.stats["keepalives"] += 1
            return
        try:
            msg = parse_message(data, self.config.limits)
        except RemoteProtocolError as exc:
            self._reject_raw(data, peer, exc)
            return
        self._dispatch(msg, peer, now, local)

    def _fast_lane(self, lite: Lite, peer: Peer, now: float, local: tuple[str, int] | None) -> bool:
        """Offer ``lite`` to the ``fast`` hook. False: the full path takes the datagram (parsed from scratch)."""
        cache, expiry = self._fast_cache, self._fast_expiry
        while expiry and expiry[0][0] <= now:
            cache.pop(expiry.popleft()[1], None)
        key = (lite.branch, lite.sent_by, lite.method)
        if key in cache:  # a retransmission: absorbed, or answered again with the kept answer
            self.stats["received"] += 1
            self.stats["retransmissions_absorbed"] += 1
            kept = cache[key]
            if kept is not None:
                self._out.append(Transmit(kept, _lite_peer(lite, peer)))
            return True
        if key in self._server or len(cache) >= self.config.max_transactions:
            return False  # the full path has its transaction (or its own table-full answer)
        if self.overloaded and b"authorization" not in lite.headers:
            return False  # §21.5.4: the full path answers 503 + Retry-After
        answer = self._fast(lite, peer, local)  # type: ignore[misc]
        if answer is None:
            return False
        self.stats["received"] += 1
        self.stats["fast"] += 1
        if answer.keep:
            cache[key] = None
            expiry.append((now + 64 * self.config.timers.t1, key))
            if answer is DEFER:
                return True
        self._fast_send(lite, peer, answer.status, answer.reason, answer.headers, key if answer.keep else None)
        return True

    def fast_reply(
        self, lite: Lite, peer: Peer, status: int, reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:  # fmt: skip
        """The final answer to a request the ``fast`` hook deferred (``DEFER``); kept for its retransmissions."""
        self._fast_send(lite, peer, status, reason, headers, (lite.branch, lite.sent_by, lite.method))

    def _fast_send(
        self, lite: Lite, peer: Peer, status: int, reason: str | None, headers: list[tuple[str, str]] | None,
        key: TxKey | None,
    ) -> None:  # fmt: skip
        data = lite_response(
            lite, status, (peer.host, peer.port), reason=reason, to_tag=new_tag(), headers=headers,
            server=self.config.user_agent or "",
        )  # fmt: skip
        if key is not None and key in self._fast_cache:
            self._fast_cache[key] = data
        self._out.append(Transmit(data, _lite_peer(lite, peer)))

    def stream_buffered(self, peer: Peer) -> int:
        """Bytes of an unfinished message held for a stream peer (0: between messages). The adapter uses it for
        read deadlines: a peer that starts a message must finish it in time (slow senders, slowloris)."""
        framer = self._framers.get(peer)
        return framer.buffered if framer is not None else 0

    def connection_lost(self, peer: Peer, now: float) -> None:
        """A stream closed: its framer goes, and transactions waiting on it fail (§17.1.4, §17.2.4)."""
        self._framers.pop(peer, None)
        if peer.reliable:
            self._events.append(ConnectionClosed(peer))
        for key, info in list(self._client_info.items()):
            if info.peer == peer and key in self._client:
                self._run_client(key, self._client[key].on_transport_error(now), now)
        for key, tx_peer in list(self._server_peer.items()):
            if tx_peer == peer and key in self._server:
                self._run_server(key, self._server[key].on_transport_error(now))

    def transport_error(self, peer: Peer, now: float) -> None:
        """Sending to ``peer`` failed (connect refused, ICMP): same handling as a lost connection."""
        self.connection_lost(peer, now)

    def outgoing(self) -> list[Transmit]:
        out, self._out = self._out, []
        if self.taps and out:
            for tap in self.taps:
                tap.sent(out)
        return out

    def has_pending(self) -> bool:
        """Whether events or bytes are waiting to be taken."""
        return bool(self._out or self._events)

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            deadline, _, obj = heap[0]
            if self._scheduled.get(id(obj)) == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    def handle_timer(self, now: float) -> None:
        heap = self._heap
        for _ in range(100_000):
            if not heap or heap[0][0] > now:
                return
            deadline, _, obj = heapq.heappop(heap)
            if self._scheduled.get(id(obj)) != deadline:
                continue
            del self._scheduled[id(obj)]
            if isinstance(obj, Transaction):
                key = obj.key  # type: ignore[attr-defined]
                if isinstance(obj, ClientTransaction):
                    self._run_client(key, obj.on_timer(now), now)
                else:
                    self._run_server(key, obj.on_timer(now))
            elif isinstance(obj, _Uas2xx):
                self._uas_2xx_timer(obj, now)

    # ------------------------------------------------------------------ application side
    def respond(self, tx: TxKey, response: Response, now: float) -> None:
        """Answer a request received in server transaction ``tx``."""
        server = self._server.get(tx)
        if server is None:
            raise LocalProtocolError(f"no server transaction {tx!r} (already answered and gone?)")
        request = server.request
        data = self._serialize_response(response)
        peer = self._server_peer[tx]
        self._run_server(tx, server.respond(response, data, now))
        status = response.status
        if 200 <= status < 300 and request.method in DIALOG_METHODS and response.to.tag:
            dialog = self.dialogs.get((request.call_id, response.to.tag, request.from_.tag or ""))
            if dialog is None:
                dialog = self.dialogs.add(Dialog.from_uas(request, response))
                dialog.peer = peer
            if request.method == "INVITE":
                self._start_uas_2xx(dialog, data, peer, request.cseq.seq, now)
        elif 200 <= status < 300 and request.method == "BYE":
            self._end_dialog((request.call_id, request.to.tag or "", request.from_.tag or ""))

    def _serialize_response(self, response: Response) -> bytes:
        keys = response.headers._keys
        if self.config.user_agent and "server" not in keys and "user-agent" not in keys:
            return serialize(response, (("Server", self.config.user_agent),))
        return serialize(response)

    def reply(
        self,
        event: RequestReceived,
        status: int,
        reason: str | None = None,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        now: float,
        to_tag: str | None = None,
    ) -> Response:
        """Convenience: build a response to ``event.request`` and send it."""
        if event.tx is None:
            raise LocalProtocolError("ACK gets no response")
        if to_tag is None and status > 100 and event.request.to.tag is None:
            # §12.1.1/§8.2.6.2: every response of the transaction carries the same To tag, so a 200
            # after a 180 confirms the early dialog the 180 made rather than a second one.
            server = self._server.get(event.tx)
            to_tag = (_tag_of(server) if server is not None else None) or new_tag()
        response = make_response(event.request, status, reason, to_tag=to_tag, headers=headers, body=body)
        self.respond(event.tx, response, now)
        return response

    def send_request(self, request: Request, peer: Peer, now: float) -> TxKey:
        """Send an out-of-dialog or in-dialog request in a new client transaction; returns its key.

        A top Via is added (with ``rport`` and a fresh branch) unless the request has one with a branch.
        """
        if request.method == "ACK":
            raise LocalProtocolError("send ACK with send_ack or let auto_ack do it")
        request = self._prepare(request, peer)
        key = (request.top_via.branch or "", request.cseq.method)
        if key in self._client:
            raise LocalProtocolError(f"duplicate client transaction {key!r}")
        if len(self._client) >= self.config.max_transactions:
            raise LocalProtocolError("too many client transactions")
        data = serialize(request)
        tx = ClientTransaction(request, data, reliable=peer.reliable, timers=self.config.timers)
        tx.key = key  # type: ignore[attr-defined]
        self._client[key] = tx
        self._client_info[key] = _ClientInfo(peer)
        if request.method in DIALOG_METHODS and request.to.tag is None:
            self.dialogs.add_pending(request)
        self._run_client(key, tx.start(now), now)
        return key

    def send_in_dialog(
        self,
        dialog: Dialog,
        method: str,
        now: float,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> TxKey:
        """Build (§12.2.1.1) and send a request inside ``dialog``."""
        request = dialog.build_request(method, headers, body)
        return self.send_request(request, self._dialog_peer(dialog), now)

    def cancel(self, tx: TxKey, now: float) -> TxKey | None:
        """CANCEL a pending INVITE (§9.1). Before any provisional the CANCEL waits for one."""
        client = self._client.get(tx)
        if client is None or not client.invite:
            return None
        if client.last_response is not None and client.last_response.status >= 200:
            return None
        cancel_key = (tx[0], "CANCEL")
        if cancel_key in self._client:
            return cancel_key  # already sent
        if client.last_response is None:
            self._client_info[tx].cancel_pending = True
            return None
        return self._send_cancel(tx, now)

    def send_ack(
        self, dialog: Dialog, cseq: int, now: float, *, headers: list[tuple[str, str]] | None = None, body: bytes = b""
    ) -> None:
        """ACK a 2xx to INVITE (§13.2.2.4): end to end, new branch, never in a transaction."""
        request = dialog.build_request("ACK", headers, body, cseq=cseq)
        peer = self._dialog_peer(dialog)
        request = self._prepare(request, peer)
        data = serialize(request)
        self._acks[dialog.id] = (cseq, data, peer)
        self._out.append(Transmit(data, peer))

    def drop_dialog(self, dialog: Dialog) -> None:
        self._end_dialog(dialog.id)

    def _end_dialog(self, dialog_id: tuple[str, str, str]) -> Dialog | None:
        """Forget a dialog with its cached ACK and any 2xx still being retransmitted."""
        self._acks.pop(dialog_id, None)
        pending = self._uas_2xx.pop(dialog_id, None)
        if pending is not None:
            self._unschedule(pending)
        return self.dialogs.remove(dialog_id)

    def send_stateless(self, message: Request | Response, peer: Peer) -> None:
        self._out.append(Transmit(serialize(message), peer))

    @property
    def transaction_count(self) -> int:
        return len(self._server) + len(self._client)

    # ------------------------------------------------------------------ internals: requests
    def _dispatch(self, msg: Request | Response, peer: Peer, now: float, local: tuple[str, int] | None) -> None:
        self.stats["received"] += 1
        if self.taps:
            for tap in self.taps:
                tap.received(msg, peer, now)
        try:
            if isinstance(msg, Request):
                self._on_request(msg, peer, now, local)
            else:
                self._on_response(msg, peer, now)
        except RemoteProtocolError as exc:
            if isinstance(msg, Request) and msg.method != "ACK":
                self._reject_head(f"{msg.method} {msg.uri} {msg.version}", msg.headers, peer, exc)
            else:
                self.stats["dropped"] += 1
                self._events.append(MessageRejected(peer, exc.reason, None))

    def _on_request(self, req: Request, peer: Peer, now: float, local: tuple[str, int] | None) -> None:
        via = req.top_via
        cseq = req.cseq
        if cseq.method != req.method:
            raise RemoteProtocolError(f"CSeq method {cseq.method} does not match {req.method}")
        req.from_, req.to  # noqa: B018  (parse now: a malformed From/To gets its 400 here)
        if req.method in DIALOG_METHODS or req.to.tag:
            # What the dialog layer will read (§12.1.1, §12.2.2), parsed before a transaction exists so
            # a malformed Contact or Record-Route gets a stateless 400 instead of failing half-way.
            req.contacts, req.record_routes  # noqa: B018
            if req.method in DIALOG_METHODS:
                req.request_uri  # noqa: B018
        fixed = via.with_received(peer.host, peer.port)
        if fixed.params != via.params:
            req = _replace_top_via(req, fixed)
            via = fixed
        key = _server_key(req, via)
        server = self._server.get(key)
        if server is None and req.method == "ACK" and key[0] == "2543" and key[-2]:
            # RFC 2543 peers: the ACK carries the To tag of our response, which the INVITE lacked.
            alt = (*key[:-2], "", key[-1])
            if alt in self._server:
                key, server = alt, self._server[alt]
        if server is not None:
            self.stats["retransmissions_absorbed"] += req.method != "ACK"
            actions = server.on_request(req, now)
            if any(isinstance(a, Deliver) for a in actions):  # ACK in IST Accepted (RFC 6026 §7.1)
                self._on_2xx_ack(req, peer)
            self._run_server(key, [a for a in actions if not isinstance(a, Deliver)])
            return
        if req.method == "ACK":
            self._on_2xx_ack(req, peer)
            return
        if (
            self._stateless is not None
            and req.method not in _NOT_STATELESS
            and not req.to.tag
            and not (self.overloaded and not _answers_a_challenge(req))
        ):
            answer = self._stateless(req, peer)
            if answer is not None:
                self.stats["stateless"] += 1
                response = make_response(req, answer.status, answer.reason, to_tag=new_tag(), headers=answer.headers)
                target = peer if peer.reliable else _response_peer(via, peer)
                self._out.append(Transmit(self._serialize_response(response), target))
                return
        if len(self._server) >= self.config.max_transactions:
            self._reject_head(
                f"{req.method} {req.uri} SIP/2.0", req.headers, peer, RemoteProtocolError("transaction table full", 503)
            )
            return
        server = ServerTransaction(req, reliable=peer.reliable, timers=self.config.timers)
        server.key = key  # type: ignore[attr-defined]
        self._server[key] = server
        self._server_peer[key] = peer if peer.reliable else _response_peer(via, peer)
        if self.overloaded and req.method != "CANCEL" and not req.to.tag and not _answers_a_challenge(req):
            # RFC 3261 §21.5.4: 503 with Retry-After while the adapter reports overload. Only new out-of-dialog
            # requests: retransmissions, ACKs, CANCELs, in-dialog requests and requests answering our digest
            # challenge keep being served, so work already started finishes instead of being thrown away.
            self.stats["overload_rejected"] += 1
            retry = str(self.config.overload_retry_after)
            self.respond(key, make_response(req, 503, to_tag=new_tag(), headers=[("Retry-After", retry)]), now)
            return
        if req.method == "CANCEL":
            self._on_cancel(req, key, via, peer, now)
            return
        if req.method == "INVITE" and self.config.auto_trying:
            self.respond(key, make_response(req, 100), now)
        dialog = None
        if req.to.tag:
            dialog = self.dialogs.match_incoming(req)
            if dialog is None and req.method == "NOTIFY":
                pending = self.dialogs.pending(req.call_id, req.to.tag)
                if pending is not None and pending.method == "SUBSCRIBE":
                    # RFC 6665 §4.1.2.4: the NOTIFY may overtake the SUBSCRIBE's 2xx.
                    dialog = self.dialogs.add(Dialog.from_uac(pending, req))
                    dialog.peer = self._dialog_peer_from(pending, peer)
            if dialog is None:
                if self._on_unknown_dialog is not None and self._on_unknown_dialog(req):
                    self._events.append(RequestReceived(req, peer, key, None, local))
                    return
                self.respond(key, make_response(req, 481), now)
                return
            if not dialog.check_remote_seq(req):
                self.respond(key, make_response(req, 500, "CSeq Out Of Order"), now)
                return
            if req.method in ("INVITE", "UPDATE", "NOTIFY", "SUBSCRIBE"):  # target refresh (§12.2.2, RFC 6665 §4.1.2.1)
                dialog.refresh_target(req)
        self._events.append(RequestReceived(req, peer, key, dialog, local))

    def _on_cancel(self, req: Request, key: TxKey, via: Via, peer: Peer, now: float) -> None:
        """§9.2: match the INVITE by the CANCEL's branch. A match gets 200 whatever the INVITE's state; only
        an INVITE still without a final answer is ended with 487 and reported. No match gets 481."""
        invite_key = (*key[:-1], "INVITE")
        invite = self._server.get(invite_key)
        if invite is None:
            self.respond(key, make_response(req, 481, to_tag=new_tag()), now)  # §8.2.6.2: a tag of our own
            return
        tag = _tag_of(invite) or new_tag()  # §9.2: the 200 and the 487 SHOULD carry the same To tag
        self.respond(key, make_response(req, 200, to_tag=tag), now)
        if invite.final_sent:
            return  # "the CANCEL request has no effect on the processing of the original request"
        self.respond(invite_key, make_response(invite.request, 487, to_tag=tag), now)
        self._events.append(CancelReceived(invite.request, invite_key, peer))

    def _on_2xx_ack(self, ack: Request, peer: Peer) -> None:
        dialog = self.dialogs.match_incoming(ack)
        if dialog is None:
            # An ACK for no dialog is absorbed (rule 5), unless the application claims it as it may
            # claim any unknown in-dialog request (DECISIONS.md).
            if self._on_unknown_dialog is None or not self._on_unknown_dialog(ack):
                self.stats["dropped"] += 1
                return
        else:
            pending = self._uas_2xx.get(dialog.id)
            if pending is not None and pending.cseq == ack.cseq.seq:
                self._unschedule(pending)
                del self._uas_2xx[dialog.id]
            elif pending is None and dialog.data.get("_acked") == ack.cseq.seq:
                self.stats["retransmissions_absorbed"] += 1
                return  # a retransmitted ACK
            dialog.data["_acked"] = ack.cseq.seq
        self._events.append(AckReceived(ack, dialog, peer))

    # ------------------------------------------------------------------ internals: responses
    def _on_response(self, resp: Response, peer: Peer, now: float) -> None:
        via = resp.top_via
        key = (via.branch or "", resp.cseq.method)
        if 200 <= resp.status < 300 and resp.cseq.method in DIALOG_METHODS:
            # What the dialog will be built from (§12.1.2), parsed before the transaction moves: a 2xx
            # with a malformed Contact or Record-Route is dropped like any malformed response.
            resp.from_, resp.to, resp.contacts, resp.record_routes  # noqa: B018
        client = self._client.get(key)
        if client is None:
            # A 2xx retransmission after the ICT is gone: re-ACK from the dialog's cache (§13.2.2.4).
            if 200 <= resp.status < 300 and resp.cseq.method == "INVITE":
                cached = self._acks.get((resp.call_id, resp.from_.tag or "", resp.to.tag or ""))
                if cached is not None and cached[0] == resp.cseq.seq:
                    self._out.append(Transmit(cached[1], cached[2]))
                    self.stats["retransmissions_absorbed"] += 1
                    return
            self.stats["dropped"] += 1
            self._events.append(MessageRejected(peer, f"stray {resp.status} response (no transaction)", None))
            return
        self._run_client(key, client.on_response(resp, now), now)

    def _deliver_response(self, key: TxKey, client: ClientTransaction, resp: Response, now: float) -> None:
        info = self._client_info[key]
        request = client.request
        dialog = None
        status = resp.status
        method = request.method
        in_dialog = request.to.tag is not None
        if 200 <= status < 300 and method in DIALOG_METHODS:
            dialog_id = (request.call_id, request.from_.tag or "", resp.to.tag or "")
            dialog = self.dialogs.get(dialog_id)
            if method == "INVITE" and dialog_id[2] in info.answered:
                # A retransmission of a 2xx already taken (RFC 6026 §8.4): re-send its ACK (§13.2.2.4)
                # and tell no one; never bring back a dialog that ended meanwhile (BYE).
                cached = self._acks.get(dialog_id)
                if cached is not None and cached[0] == resp.cseq.seq:
                    self._out.append(Transmit(cached[1], cached[2]))
                    self.stats["retransmissions_absorbed"] += 1
                    return
                if dialog is None:
                    self.stats["retransmissions_absorbed"] += 1
                    return
                # auto_ack off and not ACKed yet: the application sees it again
            elif method == "INVITE":
                info.answered.add(dialog_id[2])
            if dialog is None:
                dialog = self.dialogs.add(Dialog.from_uac(request, resp))
                dialog.peer = self._dialog_peer_from(request, info.peer)
            else:
                # §12.2.1.2: a 2xx to a target refresh (re-INVITE, re-SUBSCRIBE; or the SUBSCRIBE whose
                # NOTIFY made the dialog) replaces the remote target.
                dialog.refresh_target(resp)
            if method == "INVITE" and self.config.auto_ack:
                self.send_ack(dialog, resp.cseq.seq, now)
        elif method == "BYE" and status >= 200:
            # §15.1.1: whatever the final answer, the dialog is over.
            dialog = self._end_dialog((request.call_id, request.from_.tag or "", request.to.tag or ""))
        elif in_dialog:
            dialog = self.dialogs.match_response(resp)
            if dialog is not None and status == 481:
                self._end_dialog(dialog.id)  # §12.2.1.2: the peer does not know the dialog
            elif dialog is not None and 200 <= status < 300 and method == "UPDATE":
                dialog.refresh_target(resp)  # RFC 3311 §5.1: UPDATE is a target refresh
        if status < 200 and info.cancel_pending:
            info.cancel_pending = False
            self._send_cancel(key, now)
        if status >= 200 and method in DIALOG_METHODS:
            self.dialogs.drop_pending(request.call_id, request.from_.tag or "")
        self._events.append(ResponseReceived(resp, request, info.peer, key, dialog))

    def _send_cancel(self, key: TxKey, now: float) -> TxKey:
        """§9.1: same Request-URI, Call-ID, To, From, CSeq number and top Via (branch) as the INVITE."""
        invite = self._client[key].request
        items: list[tuple[str, str]] = []
        for name, value in invite.headers:
            k = header_key(name)
            if k == "via":
                if not any(header_key(n) == "via" for n, _ in items):
                    items.append((name, split_commas(value)[0]))
            elif k in ("from", "to", "call-id", "route", "max-forwards"):
                items.append((name, value))
            elif k == "cseq":
                items.append((name, f"{invite.cseq.seq} CANCEL"))
        cancel = Request("CANCEL", invite.uri, Headers(items))
        cancel_key = self.send_request(cancel, self._client_info[key].peer, now)
        self._run_client(key, self._client[key].on_cancel_sent(now), now)
        return cancel_key

    # ------------------------------------------------------------------ internals: machinery
    def _run_client(self, key: TxKey, actions: list, now: float = 0.0) -> None:
        client = self._client.get(key)
        if client is None:
            return
        info = self._client_info[key]
        for action in actions:
            if isinstance(action, Send):
                self._out.append(Transmit(action.data, info.peer))
            elif isinstance(action, Deliver):
                self._deliver_response(key, client, action.message, now)  # type: ignore[arg-type]
            elif isinstance(action, Timeout | TransportFailed):
                last = client.last_response
                if last is None or last.status < 200:  # after a final (ICT Completed) there is no news
                    reason = "timeout" if isinstance(action, Timeout) else "transport"
                    self._events.append(TransactionFailed(client.request, info.peer, key, reason))
                    request = client.request
                    if request.method == "BYE":  # §15.1.1: no answer to a BYE still ends the dialog
                        self._end_dialog((request.call_id, request.from_.tag or "", request.to.tag or ""))
            elif isinstance(action, Terminated):
                del self._client[key]
                del self._client_info[key]
                self._unschedule(client)
                if client.request.method in DIALOG_METHODS:
                    self.dialogs.drop_pending(client.request.call_id, client.request.from_.tag or "")
                return
        self._schedule(client)

    def _run_server(self, key: TxKey, actions: list) -> None:
        server = self._server.get(key)
        if server is None:
            return
        peer = self._server_peer[key]
        for action in actions:
            if isinstance(action, Send):
                self._out.append(Transmit(action.data, peer))
            elif isinstance(action, Terminated):
                # Timer H (no ACK for our final) and transport failures end here too: nothing the
                # application can still do for a request it already answered.
                del self._server[key]
                del self._server_peer[key]
                self._unschedule(server)
                return
        self._schedule(server)

    def _schedule(self, obj: Transaction | _Uas2xx) -> None:
        deadline = obj.next_deadline() if isinstance(obj, Transaction) else obj.deadline
        oid = id(obj)
        if deadline is None:
            self._scheduled.pop(oid, None)
            return
        if self._scheduled.get(oid) == deadline:
            return
        self._scheduled[oid] = deadline
        heapq.heappush(self._heap, (deadline, next(self._seq), obj))

    def _unschedule(self, obj: object) -> None:
        self._scheduled.pop(id(obj), None)

    def _start_uas_2xx(self, dialog: Dialog, data: bytes, peer: Peer, cseq: int, now: float) -> None:
        # §13.3.1.4: retransmitted even on a reliable transport, since hops beyond it may be UDP.
        t1 = self.config.timers.t1
        entry = _Uas2xx(dialog, data, peer, cseq, t1, now + 64 * t1, now + t1)
        old = self._uas_2xx.get(dialog.id)
        if old is not None:
            self._unschedule(old)
        self._uas_2xx[dialog.id] = entry
        self._schedule(entry)

    def _uas_2xx_timer(self, entry: _Uas2xx, now: float) -> None:
        if self._uas_2xx.get(entry.dialog.id) is not entry:
            return
        if now >= entry.give_up:
            del self._uas_2xx[entry.dialog.id]
            self._events.append(AckTimeout(entry.dialog))
            return
        self._out.append(Transmit(entry.data, entry.peer))
        entry.interval = min(2 * entry.interval, self.config.timers.t2)
        entry.deadline = min(now + entry.interval, entry.give_up)
        self._schedule(entry)

    def _prepare(self, request: Request, peer: Peer) -> Request:
        headers = request.headers
        first_via = headers.get("via")
        if first_via is None or "branch=" not in first_via:
            host, port = self.local_address(peer) if self.local_address else self.config.default_local
            via = Via(peer.transport, host, port, (("rport", None), ("branch", new_branch())))
            headers = headers.prepend("Via", str(via)) if first_via is None else headers.replace("Via", str(via))
        if "max-forwards" not in headers:
            headers = headers.append("Max-Forwards", "70")
        if self.config.user_agent and "user-agent" not in headers:
            headers = headers.append("User-Agent", self.config.user_agent)
        return request if headers is request.headers else request.replace(headers=headers)

    def _dialog_peer(self, dialog: Dialog) -> Peer:
        if isinstance(dialog.peer, Peer):
            return dialog.peer
        raise LocalProtocolError("dialog has no transport destination")

    @staticmethod
    def _dialog_peer_from(request: Request, fallback: Peer) -> Peer:
        # GB/T 28181 devices are reached where we reached them (NAT); keep the transaction's peer.
        return fallback

    # ------------------------------------------------------------------ internals: bad input
    def _reject_raw(self, data: bytes, peer: Peer, exc: RemoteProtocolError) -> None:
        """A datagram that did not parse: answer statelessly if a response can be built, else drop."""
        head = salvage_head(data, self.config.limits)
        if head is None:
            self.stats["dropped"] += 1
            self._events.append(MessageRejected(peer, exc.reason, None))
            return
        self._reject_head(head[0], head[1], peer, exc)

    def _reject_head(self, start: str, headers: Headers, peer: Peer, exc: RemoteProtocolError) -> None:
        if start.startswith("SIP/") or start.split(" ", 1)[0] == "ACK":
            self.stats["dropped"] += 1
            self._events.append(MessageRejected(peer, exc.reason, None))
            return
        try:
            via: Via | None = parse_via(split_commas(headers.get("via") or "")[0])
        except RemoteProtocolError:
            via = None
        if via is not None:
            via = via.with_received(peer.host, peer.port)
        items: list[tuple[str, str]] = []
        via_done = False
        for name, value in headers:
            key = header_key(name)
            if key == "via" and via is not None and not via_done:
                # §18.2.1: the top Via carries received/rport in our answer too
                rest = split_commas(value)[1:]
                items.append((name, ", ".join([str(via), *rest])))
                via_done = True
            elif key == "to" and "tag=" not in value.lower():
                items.append((name, f"{value};tag={new_tag()}"))  # §8.2.6.2
            elif key in ("via", "from", "to", "call-id", "cseq"):
                items.append((name, value))
        present = {header_key(n) for n, _ in items}
        if not {"via", "from", "to", "call-id", "cseq"} <= present:
            self.stats["dropped"] += 1
            self._events.append(MessageRejected(peer, exc.reason, None))
            return
        status = exc.status_hint if 300 <= exc.status_hint <= 699 else 400
        items.append(("Warning", warning_value(exc.reason)))
        response = Response(status, REASONS.get(status, "Bad Request"), Headers(items))
        dest = peer if peer.reliable or via is None else _response_peer(via, peer)
        self.stats["rejected"] += 1
        self._out.append(Transmit(serialize(response), dest))
        self._events.append(MessageRejected(peer, exc.reason, status))


# Never answered statelessly: INVITE needs its 100/2xx machinery, ACK gets no answer, CANCEL must find its INVITE.
# The lean lane reads small datagrams only: registrations and keepalives are a few hundred bytes.
FAST_MAX_DATAGRAM = 4096
_NOT_STATELESS = frozenset({"INVITE", "ACK", "CANCEL"})


def _tag_of(server: ServerTransaction) -> str | None:
    last = server.last_response
    if last is not None:
        return last.to.tag
    return None


def _answers_a_challenge(req: Request) -> bool:
    headers = req.headers
    return "authorization" in headers or "proxy-authorization" in headers


def _server_key(req: Request, via: Via) -> TxKey:
    """RFC 3261 §17.2.3: branch + sent-by + method (ACK matches INVITE); RFC 2543 fallback otherwise."""
    method = "INVITE" if req.method == "ACK" else req.method
    branch = via.branch
    if branch and branch.startswith(MAGIC_COOKIE):
        return (branch, via.sent_by, method)
    # RFC 2543 (§17.2.3 last paragraph): Request-URI, tags, Call-ID, CSeq number, top Via.
    return ("2543", req.call_id, req.from_.tag or "", str(req.cseq.seq), via.sent_by, req.uri, req.to.tag or "", method)


def _lite_peer(lite: Lite, source: Peer) -> Peer:
    host, port = lite_target(lite, (source.host, source.port))
    return source if port == source.port and host == source.host else Peer(source.transport, host, port)


def _response_peer(via: Via, source: Peer) -> Peer:
    """§18.2.2 with RFC 3581 §4: received (+ rport) from the top Via, else sent-by (default port 5060)."""
    host = via.received or via.host
    port = via.rport or via.port or 5060
    return Peer(source.transport, host, port)


def _replace_top_via(req: Request, via: Via) -> Request:
    """The request with received/rport in its top Via (§18.2.1), keeping the views already parsed."""
    first = req.headers.get("via") or ""
    rest = split_commas(first)[1:] if "," in first else ()
    headers = req.headers.replace_first_value("via", ", ".join([str(via), *rest]) if rest else str(via))
    new = Request(req.method, req.uri, headers, req.body, req.version)
    cache = new.__dict__
    old = req.__dict__
    for name in CARRIED_VIEWS:
        if name in old:
            cache[name] = old[name]
    cache["top_via"] = via
    return new
