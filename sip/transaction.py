"""RFC 3261 §17 transactions, with RFC 6026 (Accepted states), as transition tables.

Four machines: INVITE client (ICT, §17.1.1), non-INVITE client (NICT, §17.1.2), INVITE server (IST,
§17.2.1) and non-INVITE server (NIST, §17.2.2). Each takes inputs with the current monotonic time ``now``
and returns actions; ``next_deadline()`` reports when ``on_timer(now)`` must next be called. Nothing here
does IO or reads a clock. On reliable transports the retransmission timers (A, E, G) never start and the
wait timers (D, I, J, K) are zero (§17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sip.errors import LocalProtocolError
from sip.headers import Headers, header_key, split_commas
from sip.message import Request, Response
from sip.serializer import serialize
from sip.timers import DEFAULT_TIMERS, TimerConfig


class State(enum.Enum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class Input(enum.Enum):
    # from the network
    RECV_1XX = "1xx received"
    RECV_2XX = "2xx received"
    RECV_FAIL = "300-699 received"
    RECV_REQUEST = "request retransmission"
    RECV_ACK = "ACK received"
    # from the transaction user
    SEND_1XX = "TU sends 1xx"
    SEND_2XX = "TU sends 2xx"
    SEND_FAIL = "TU sends 300-699"
    CANCEL_SENT = "TU sent CANCEL"
    # from the transport
    TRANSPORT_ERROR = "transport error"
    # timers
    TIMER_A = "A"
    TIMER_B = "B"
    TIMER_D = "D"
    TIMER_E = "E"
    TIMER_F = "F"
    TIMER_G = "G"
    TIMER_H = "H"
    TIMER_I = "I"
    TIMER_J = "J"
    TIMER_K = "K"
    TIMER_L = "L"
    TIMER_M = "M"


# Actions handed to the endpoint.
@dataclass(frozen=True, slots=True)
class Send:
    """Put these bytes on the wire towards the transaction's peer."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Deliver:
    """Give this response (client) or ACK (IST Accepted) to the transaction user."""

    message: Request | Response


@dataclass(frozen=True, slots=True)
class Timeout:
    """Timer B, F or H fired: the transaction failed for lack of an answer (§17.1.1.2, §17.1.2.2, §17.2.1).

    Also timer B restarted by a CANCEL (§9.1): no final response 64*T1 after the CANCEL was sent.
    """

    timer: str


@dataclass(frozen=True, slots=True)
class TransportFailed:
    pass


@dataclass(frozen=True, slots=True)
class Terminated:
    pass


Action = Send | Deliver | Timeout | TransportFailed | Terminated

S, In = State, Input
# (state, input) -> (next state, operations). An input absent from a table is an explicit ignore
# ("absorbed", e.g. a 1xx in Completed) unless it comes from the TU (_TU_INPUTS), where it is the caller's mistake.
ICT_TABLE: dict[tuple[State, Input], tuple[State, tuple[str, ...]]] = {
    (S.CALLING, In.TIMER_A): (S.CALLING, ("resend_request", "double_a")),
    (S.CALLING, In.TIMER_B): (S.TERMINATED, ("timeout_b",)),
    (S.CALLING, In.RECV_1XX): (S.PROCEEDING, ("stop_a", "stop_b", "deliver")),
    (S.CALLING, In.RECV_2XX): (S.ACCEPTED, ("stop_a", "stop_b", "deliver", "start_m")),
    (S.CALLING, In.RECV_FAIL): (S.COMPLETED, ("stop_a", "stop_b", "deliver", "send_ack", "start_d")),
    (S.CALLING, In.TRANSPORT_ERROR): (S.TERMINATED, ("transport_failed",)),
    (S.PROCEEDING, In.RECV_1XX): (S.PROCEEDING, ("deliver",)),
    (S.PROCEEDING, In.RECV_2XX): (S.ACCEPTED, ("stop_b", "deliver", "start_m")),  # stop_b: the §9.1 guard
    (S.PROCEEDING, In.RECV_FAIL): (S.COMPLETED, ("stop_b", "deliver", "send_ack", "start_d")),
    (S.PROCEEDING, In.TRANSPORT_ERROR): (S.TERMINATED, ("transport_failed",)),
    # §9.1: once the CANCEL is out, give the INVITE 64*T1 (timer B's value) to see a final response.
    (S.PROCEEDING, In.CANCEL_SENT): (S.PROCEEDING, ("start_b",)),
    (S.PROCEEDING, In.TIMER_B): (S.TERMINATED, ("timeout_b",)),
    (S.COMPLETED, In.RECV_FAIL): (S.COMPLETED, ("send_ack",)),
    (S.COMPLETED, In.TIMER_D): (S.TERMINATED, ()),
    (S.COMPLETED, In.TRANSPORT_ERROR): (S.TERMINATED, ("transport_failed",)),
    # RFC 6026 §8.4: 2xx retransmissions go to the TU, which re-sends its ACK.
    (S.ACCEPTED, In.RECV_2XX): (S.ACCEPTED, ("deliver",)),
    (S.ACCEPTED, In.TIMER_M): (S.TERMINATED, ()),
}

NICT_TABLE: dict[tuple[State, Input], tuple[State, tuple[str, ...]]] = {
    (S.TRYING, In.TIMER_E): (S.TRYING, ("resend_request", "double_e")),
    (S.TRYING, In.TIMER_F): (S.TERMINATED, ("timeout_f",)),
    (S.TRYING, In.RECV_1XX): (S.PROCEEDING, ("deliver",)),
    (S.TRYING, In.RECV_2XX): (S.COMPLETED, ("stop_e", "stop_f", "deliver", "start_k")),
    (S.TRYING, In.RECV_FAIL): (S.COMPLETED, ("stop_e", "stop_f", "deliver", "start_k")),
    (S.TRYING, In.TRANSPORT_ERROR): (S.TERMINATED, ("transport_failed",)),
    (S.PROCEEDING, In.TIMER_E): (S.PROCEEDING, ("resend_request", "e_at_t2")),
    (S.PROCEEDING, In.TIMER_F): (S.TERMINATED, ("timeout_f",)),
    (S.PROCEEDING, In.RECV_1XX): (S.PROCEEDING, ("deliver",)),
    (S.PROCEEDING, In.RECV_2XX): (S.COMPLETED, ("stop_e", "stop_f", "deliver", "start_k")),
    (S.PROCEEDING, In.RECV_FAIL): (S.COMPLETED, ("stop_e", "stop_f", "deliver", "start_k")),
    (S.PROCEEDING, In.TRANSPORT_ERROR): (S.TERMINATED, ("transport_failed",)),
    (S.COMPLETED, In.TIMER_K): (S.TERMINATED, ()),
}

IST_TABLE: dict[tuple[State, Input], tuple[State, tuple[str, ...]]] = {
    (S.PROCEEDING, In.RECV_REQUEST): (S.PROCEEDING, ("resend_response",)),
    (S.PROCEEDING, In.SEND_1XX): (S.PROCEEDING, ("send_response",)),
    (S.PROCEEDING, In.SEND_2XX): (S.ACCEPTED, ("send_response", "start_l")),
    (S.PROCEEDING, In.SEND_FAIL): (S.COMPLETED, ("send_response", "start_g", "start_h")),
    (S.PROCEEDING, In.TRANSPORT_ERROR): (S.TERMINATED, ("transport_failed",)),
    (S.COMPLETED, In.RECV_REQUEST): (S.COMPLETED, ("resend_response",)),
    (S.COMPLETED, In.TIMER_G): (S.COMPLETED, ("resend_response", "double_g")),
    (S.COMPLETED, In.TIMER_H): (S.TERMINATED, ("timeout_h",)),
    (S.COMPLETED, In.RECV_ACK): (S.CONFIRMED, ("stop_g", "stop_h", "start_i")),
    (S.COMPLETED, In.TRANSPORT_ERROR): (S.TERMINATED, ("transport_failed",)),
    (S.CONFIRMED, In.TIMER_I): (S.TERMINATED, ()),
    # RFC 6026 §7.1: in Accepted, INVITE retransmissions are absorbed, the TU's 2xx retransmissions
    # pass through, and an ACK (none should match, but a broken peer may reuse the branch) goes to the TU.
    (S.ACCEPTED, In.SEND_2XX): (S.ACCEPTED, ("send_response",)),
    (S.ACCEPTED, In.RECV_ACK): (S.ACCEPTED, ("deliver",)),
    (S.ACCEPTED, In.TRANSPORT_ERROR): (S.ACCEPTED, ("transport_failed",)),  # RFC 6026 Figure 7
    (S.ACCEPTED, In.TIMER_L): (S.TERMINATED, ()),
}

NIST_TABLE: dict[tuple[State, Input], tuple[State, tuple[str, ...]]] = {
    (S.TRYING, In.SEND_1XX): (S.PROCEEDING, ("send_response",)),
    (S.TRYING, In.SEND_2XX): (S.COMPLETED, ("send_response", "start_j")),
    (S.TRYING, In.SEND_FAIL): (S.COMPLETED, ("send_response", "start_j")),
    (S.PROCEEDING, In.RECV_REQUEST): (S.PROCEEDING, ("resend_response",)),
    (S.PROCEEDING, In.SEND_1XX): (S.PROCEEDING, ("send_response",)),
    (S.PROCEEDING, In.SEND_2XX): (S.COMPLETED, ("send_response", "start_j")),
    (S.PROCEEDING, In.SEND_FAIL): (S.COMPLETED, ("send_response", "start_j")),
    (S.PROCEEDING, In.TRANSPORT_ERROR): (S.TERMINATED, ("transport_failed",)),
    (S.COMPLETED, In.RECV_REQUEST): (S.COMPLETED, ("resend_response",)),
    (S.COMPLETED, In.TIMER_J): (S.TERMINATED, ()),
    (S.COMPLETED, In.TRANSPORT_ERROR): (S.TERMINATED, ("transport_failed",)),
}

# Inputs that are the transaction user's mistake rather than something to absorb.
_TU_INPUTS = frozenset({In.SEND_1XX, In.SEND_2XX, In.SEND_FAIL})

_TIMER_INPUT = {t: Input[f"TIMER_{t}"] for t in "ABDEFGHIJKLM"}
# Table operation names -> method names, spelt once per distinct tuple of operations.
_OPS: dict[tuple[str, ...], tuple[str, ...]] = {}


def _classify_status(status: int) -> Input:
    if status < 200:
        return Input.RECV_1XX
    return Input.RECV_2XX if status < 300 else Input.RECV_FAIL


class Transaction:
    """Shared machinery: the table walk and the timers."""

    table: dict[tuple[State, Input], tuple[State, tuple[str, ...]]]
    state: State

    def __init__(self, reliable: bool, timers: TimerConfig) -> None:
        self.reliable = reliable
        self.cfg = timers
        self._deadlines: dict[str, float] = {}
        self._intervals: dict[str, float] = {}
        self._now = 0.0
        self._out: list[Action] = []
        self._pending: Request | Response | None = None

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    def next_deadline(self) -> float | None:
        return min(self._deadlines.values()) if self._deadlines else None

    def on_timer(self, now: float) -> list[Action]:
        out: list[Action] = []
        # Fire due timers in deadline order; each may start or stop others.
        for _ in range(16):
            due = [(t, name) for name, t in self._deadlines.items() if t <= now]
            if not due:
                break
            _, name = min(due)
            del self._deadlines[name]
            out.extend(self._feed(_TIMER_INPUT[name], now))
        return out

    def on_transport_error(self, now: float) -> list[Action]:
        return self._feed(Input.TRANSPORT_ERROR, now)

    def _feed(self, inp: Input, now: float, message: Request | Response | None = None) -> list[Action]:
        entry = self.table.get((self.state, inp))
        if entry is None:
            if inp in _TU_INPUTS:
                raise LocalProtocolError(f"{type(self).__name__}: {inp.value} not allowed in {self.state.value}")
            return []  # absorbed: a retransmission or a late timer the table ignores
        next_state, ops = entry
        self._now = now
        self._pending = message
        self._out = []
        methods = _OPS.get(ops)
        if methods is None:
            methods = _OPS[ops] = tuple("_op_" + op for op in ops)
        for op in methods:
            getattr(self, op)()
        self.state = next_state
        if next_state is State.TERMINATED:
            self._deadlines.clear()
            self._out.append(Terminated())
        out, self._out, self._pending = self._out, [], None
        return out

    # timers
    def _start(self, name: str, interval: float) -> None:
        self._intervals[name] = interval
        self._deadlines[name] = self._now + interval

    def _stop(self, name: str) -> None:
        self._deadlines.pop(name, None)

    def _start_wait(self, name: str, interval: float) -> None:
        """D, I, J, K: zero on reliable transports, i.e. terminate straight away."""
        self._start(name, 0.0 if self.reliable else interval)

    def _op_deliver(self) -> None:
        assert self._pending is not None
        self._out.append(Deliver(self._pending))

    def _op_transport_failed(self) -> None:
        self._out.append(TransportFailed())


class ClientTransaction(Transaction):
    """ICT or NICT, chosen by the request method. Created in Calling/Trying; ``start`` sends the request."""

    def __init__(self, request: Request, data: bytes, *, reliable: bool, timers: TimerConfig = DEFAULT_TIMERS) -> None:
        super().__init__(reliable, timers)
        if request.method == "ACK":
            raise LocalProtocolError("ACK is never sent in a client transaction (RFC 3261 §17.1.1.3)")
        self.request = request
        self.data = data
        self.invite = request.method == "INVITE"
        self.table = ICT_TABLE if self.invite else NICT_TABLE
        self.state = State.CALLING if self.invite else State.TRYING
        self.last_response: Response | None = None
        self.ack_data: bytes | None = None  # set by the endpoint: the ACK for a non-2xx final (§17.1.1.3)
        self._started = False

    def start(self, now: float) -> list[Action]:
        if self._started:
            raise LocalProtocolError("client transaction already started")
        self._started = True
        self._now = now
        cfg = self.cfg
        if self.invite:
            if not self.reliable:
                self._start("A", cfg.t1)
            self._start("B", cfg.b)
        else:
            if not self.reliable:
                self._start("E", cfg.t1)
            self._start("F", cfg.b)
        return [Send(self.data)]

    def on_response(self, response: Response, now: float) -> list[Action]:
        inp = _classify_status(response.status)
        if (self.state, inp) in self.table:
            # Only responses the machine takes count: a late 1xx absorbed in Completed must not make a
            # finished INVITE look cancellable again (§9.1).
            self.last_response = response
        return self._feed(inp, now, response)

    def on_cancel_sent(self, now: float) -> list[Action]:
        """The TU sent a CANCEL for this INVITE (§9.1); absorbed unless still in Proceeding."""
        return self._feed(Input.CANCEL_SENT, now)

    # operations
    def _op_resend_request(self) -> None:
        self._out.append(Send(self.data))

    def _op_double_a(self) -> None:
        self._start("A", 2 * self._intervals["A"])

    def _op_double_e(self) -> None:
        self._start("E", min(2 * self._intervals["E"], self.cfg.t2))

    def _op_e_at_t2(self) -> None:
        self._start("E", self.cfg.t2)

    def _op_stop_a(self) -> None:
        self._stop("A")

    def _op_stop_b(self) -> None:
        self._stop("B")

    def _op_start_b(self) -> None:
        self._start("B", self.cfg.b)

    def _op_stop_e(self) -> None:
        self._stop("E")

    def _op_stop_f(self) -> None:
        self._stop("F")

    def _op_timeout_b(self) -> None:
        self._out.append(Timeout("B"))

    def _op_timeout_f(self) -> None:
        self._out.append(Timeout("F"))

    def _op_send_ack(self) -> None:
        if self.ack_data is None:
            self.ack_data = serialize(ack_for_failure(self.request, self._pending))  # type: ignore[arg-type]
        self._out.append(Send(self.ack_data))

    def _op_start_d(self) -> None:
        self._start_wait("D", self.cfg.timer_d)

    def _op_start_k(self) -> None:
        self._start_wait("K", self.cfg.t4)

    def _op_start_m(self) -> None:
        self._start("M", self.cfg.b)


class ServerTransaction(Transaction):
    """IST or NIST. Created in Proceeding/Trying on a new request; the TU answers through ``respond``."""

    def __init__(self, request: Request, *, reliable: bool, timers: TimerConfig = DEFAULT_TIMERS) -> None:
        super().__init__(reliable, timers)
        self.request = request
        self.invite = request.method == "INVITE"
        self.table = IST_TABLE if self.invite else NIST_TABLE
        self.state = State.PROCEEDING if self.invite else State.TRYING
        self.last_response: Response | None = None
        self.last_data: bytes | None = None
        self._pending_data: bytes | None = None
        self._final = False

    def on_request(self, request: Request, now: float) -> list[Action]:
        """A retransmission of the request, or (IST) the ACK for our non-2xx final."""
        inp = Input.RECV_ACK if request.method == "ACK" else Input.RECV_REQUEST
        return self._feed(inp, now, request)

    def respond(self, response: Response, data: bytes, now: float) -> list[Action]:
        status = response.status
        inp = Input.SEND_1XX if status < 200 else Input.SEND_2XX if status < 300 else Input.SEND_FAIL
        self._pending_data = data
        out = self._feed(inp, now, response)
        self.last_response = response
        if status >= 200:
            self._final = True
            if not self.invite:
                # A completed NIST only re-sends bytes: let the request and response go. On UDP it lives 64*T1
                # (timer J), so at load tens of thousands of them exist at once (and the GC scans them all).
                self.last_response = None
                self.request = None  # type: ignore[assignment]
        return out

    @property
    def final_sent(self) -> bool:
        return self._final

    def _op_send_response(self) -> None:
        self.last_data = self._pending_data
        assert self.last_data is not None
        self._out.append(Send(self.last_data))

    def _op_resend_response(self) -> None:
        if self.last_data is not None:
            self._out.append(Send(self.last_data))

    def _op_start_g(self) -> None:
        if not self.reliable:
            self._start("G", self.cfg.t1)

    def _op_double_g(self) -> None:
        self._start("G", min(2 * self._intervals["G"], self.cfg.t2))

    def _op_stop_g(self) -> None:
        self._stop("G")

    def _op_start_h(self) -> None:
        self._start("H", self.cfg.b)

    def _op_stop_h(self) -> None:
        self._stop("H")

    def _op_timeout_h(self) -> None:
        self._out.append(Timeout("H"))

    def _op_start_i(self) -> None:
        self._start_wait("I", self.cfg.t4)

    def _op_start_j(self) -> None:
        self._start_wait("J", self.cfg.b)

    def _op_start_l(self) -> None:
        self._start("L", self.cfg.b)


def ack_for_failure(request: Request, response: Response) -> Request:
    """The ACK a client transaction sends for a 300-699 (RFC 3261 §17.1.1.3).

    Same Request-URI, Call-ID, From, CSeq number and top Via as the INVITE; To from the response
    (with its tag); the INVITE's Route headers.
    """
    items: list[tuple[str, str]] = []
    via_done = False
    for name, value in request.headers:
        key = header_key(name)
        if key == "via":
            if not via_done:
                items.append((name, split_commas(value)[0]))
                via_done = True
        elif key in ("from", "call-id", "route", "max-forwards"):
            items.append((name, value))
        elif key == "to":
            items.append((name, response.headers.get("to") or value))
        elif key == "cseq":
            items.append((name, f"{request.cseq.seq} ACK"))
    return Request("ACK", request.uri, Headers(items), b"")
