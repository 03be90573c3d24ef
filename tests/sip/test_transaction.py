"""RFC 3261 §17 / RFC 6026 transaction machines, driven by hand with a fake clock.

Every state and every timer of ICT, NICT, IST and NIST; exact retransmission schedules on UDP; reliable
transports; transport errors; TU misuse; and a walk over every (state, input) pair of every table.
"""

from __future__ import annotations

import pytest

from sip.errors import LocalProtocolError
from sip.message import Request, Response
from sip.serializer import serialize
from sip.timers import DEFAULT_TIMERS, TimerConfig
from sip.transaction import (
    ICT_TABLE,
    IST_TABLE,
    NICT_TABLE,
    NIST_TABLE,
    Action,
    ClientTransaction,
    Deliver,
    Input,
    Send,
    ServerTransaction,
    State,
    Terminated,
    Timeout,
    Transaction,
    TransportFailed,
    ack_for_failure,
)
from tests.sip.fakes import answer, parse_request, parse_response, raw_request

S, In = State, Input
ROUTE = ("Route", "<sip:proxy.example.com;lr>")


def _request(method: str, **kw: object) -> Request:
    return parse_request(raw_request(method, headers=(ROUTE,), **kw))  # type: ignore[arg-type]


def _resp(request: Request, status: int, to_tag: str | None = "uastag") -> Response:
    return parse_response(answer(request, status, to_tag=to_tag))


def _client(method: str, *, reliable: bool = False, timers: TimerConfig = DEFAULT_TIMERS) -> ClientTransaction:
    request = _request(method)
    return ClientTransaction(request, serialize(request), reliable=reliable, timers=timers)


_ORIGINAL: dict[int, Request] = {}  # a completed NIST lets its request go; tests still need it


def _server(method: str, *, reliable: bool = False, timers: TimerConfig = DEFAULT_TIMERS) -> ServerTransaction:
    tx = ServerTransaction(_request(method), reliable=reliable, timers=timers)
    _ORIGINAL[id(tx)] = tx.request
    return tx


def _req(tx: Transaction) -> Request:
    return _ORIGINAL.get(id(tx), tx.request)  # type: ignore[attr-defined]


def _respond(tx: ServerTransaction, status: int, now: float) -> list[Action]:
    response = _resp(_req(tx), status, to_tag=None if status == 100 else "uastag")
    return tx.respond(response, serialize(response), now)


def _ack(request: Request) -> Request:
    return parse_request(raw_request("ACK", to_tag="uastag", cseq=request.cseq.seq))


def _kinds(actions: list[Action]) -> list[type]:
    return [type(a) for a in actions]


def _run(tx: Transaction, until: float) -> list[tuple[float, list[Action]]]:
    """Fire every deadline up to ``until`` exactly when due, as the endpoint would."""
    log = []
    while (deadline := tx.next_deadline()) is not None and deadline <= until:
        log.append((deadline, tx.on_timer(deadline)))
        assert tx.next_deadline() is None or tx.next_deadline() > deadline
    return log


def _sends(log: list[tuple[float, list[Action]]]) -> list[float]:
    return [t for t, actions in log for a in actions if isinstance(a, Send)]


# --------------------------------------------------------------------------- ICT (§17.1.1, RFC 6026 §8.4)
def test_ict_timer_a_doubles_without_cap_until_timer_b() -> None:
    tx = _client("INVITE")  # T1 0.5, T2 4: A is never capped at T2 (§17.1.1.2)
    assert tx.start(0.0) == [Send(tx.data)]
    assert tx.state is S.CALLING
    log = _run(tx, 100.0)
    assert _sends(log) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # intervals 0.5 1 2 4 8 16
    assert all(a == Send(tx.data) for _, actions in log[:-1] for a in actions)
    assert log[-1] == (32.0, [Timeout("B"), Terminated()])
    assert tx.state is S.TERMINATED and tx.next_deadline() is None


def test_ict_schedule_follows_t1_setting() -> None:
    tx = _client("INVITE", timers=TimerConfig(t1=0.125, t2=0.25))
    tx.start(10.0)
    log = _run(tx, 100.0)
    assert _sends(log) == [10.125, 10.375, 10.875, 11.875, 13.875, 17.875]
    assert log[-1] == (18.0, [Timeout("B"), Terminated()])  # B = 64*T1 = 8


def test_ict_reliable_has_no_timer_a_and_zero_timer_d() -> None:
    tx = _client("INVITE", reliable=True)
    tx.start(0.0)
    assert tx.next_deadline() == 32.0  # only B
    out = tx.on_response(_resp(tx.request, 486), 5.0)
    assert _kinds(out) == [Deliver, Send]
    assert tx.state is S.COMPLETED and tx.next_deadline() == 5.0  # D = 0 on reliable transports
    assert tx.on_timer(5.0) == [Terminated()]


def test_ict_reliable_timer_b_still_fires() -> None:
    tx = _client("INVITE", reliable=True, timers=TimerConfig(t1=1.0))
    tx.start(0.0)
    assert _run(tx, 100.0) == [(64.0, [Timeout("B"), Terminated()])]


def test_ict_provisional_stops_a_and_b() -> None:
    tx = _client("INVITE")
    tx.start(0.0)
    ringing = _resp(tx.request, 180)
    assert tx.on_response(ringing, 0.2) == [Deliver(ringing)]
    assert tx.state is S.PROCEEDING and tx.next_deadline() is None
    again = _resp(tx.request, 183)
    assert tx.on_response(again, 40.0) == [Deliver(again)]
    assert tx.state is S.PROCEEDING


def test_ict_2xx_goes_to_accepted_until_timer_m() -> None:
    tx = _client("INVITE", timers=TimerConfig(t1=0.25))
    tx.start(0.0)
    tx.on_response(_resp(tx.request, 180), 0.1)
    ok = _resp(tx.request, 200)
    assert tx.on_response(ok, 1.0) == [Deliver(ok)]  # no ACK from the transaction (§17.1.1.2)
    assert tx.state is S.ACCEPTED and tx.next_deadline() == 17.0  # M = 64*T1
    # RFC 6026 §8.4: retransmissions and forked 2xx go to the TU; 1xx and failures are absorbed
    assert tx.on_response(ok, 2.0) == [Deliver(ok)]
    assert tx.on_response(_resp(tx.request, 180), 2.5) == []
    assert tx.on_response(_resp(tx.request, 486), 2.5) == []
    assert tx.on_transport_error(3.0) == []
    assert tx.last_response is ok
    assert _run(tx, 100.0) == [(17.0, [Terminated()])]


def test_ict_2xx_straight_from_calling() -> None:
    tx = _client("INVITE")
    tx.start(0.0)
    ok = _resp(tx.request, 200)
    assert tx.on_response(ok, 0.7) == [Deliver(ok)]
    assert tx.state is S.ACCEPTED and tx.next_deadline() == 0.7 + 32.0  # A and B stopped, M started


def test_ict_failure_acks_and_waits_timer_d() -> None:
    tx = _client("INVITE", timers=TimerConfig(timer_d=40.0))
    tx.start(0.0)
    busy = _resp(tx.request, 486)
    out = tx.on_response(busy, 0.7)
    assert out[0] == Deliver(busy)
    ack = parse_request(out[1].data)  # type: ignore[union-attr]
    assert tx.state is S.COMPLETED and tx.next_deadline() == 40.7
    # §17.1.1.3: same Request-URI, Call-ID, From, top Via and CSeq number; To from the response; Route kept
    assert ack.method == "ACK" and ack.uri == tx.request.uri
    assert str(ack.cseq) == "1 ACK"
    assert ack.call_id == tx.request.call_id
    assert ack.headers.get("from") == tx.request.headers.get("from")
    assert ack.to.tag == "uastag"
    assert ack.top_via.branch == tx.request.top_via.branch and len(ack.vias) == 1
    assert ack.headers.get_all("route") == ["<sip:proxy.example.com;lr>"]
    # each retransmitted failure is ACKed again with the same bytes, and not delivered
    assert tx.on_response(busy, 5.0) == [Send(out[1].data)]  # type: ignore[union-attr]
    assert tx.on_response(_resp(tx.request, 180), 5.0) == []
    assert tx.on_response(_resp(tx.request, 200), 5.0) == []
    assert tx.last_response is busy  # absorbed responses do not count
    assert _run(tx, 100.0) == [(40.7, [Terminated()])]


def test_ict_failure_after_provisional() -> None:
    tx = _client("INVITE")
    tx.start(0.0)
    tx.on_response(_resp(tx.request, 100, to_tag=None), 0.1)
    out = tx.on_response(_resp(tx.request, 603), 3.0)
    assert _kinds(out) == [Deliver, Send] and tx.state is S.COMPLETED
    assert tx.next_deadline() == 35.0


@pytest.mark.parametrize("state", [S.CALLING, S.PROCEEDING, S.COMPLETED])
def test_ict_transport_error(state: State) -> None:
    tx = _client("INVITE")
    tx.start(0.0)
    if state is not S.CALLING:
        tx.on_response(_resp(tx.request, 180 if state is S.PROCEEDING else 500), 0.1)
    assert tx.state is state
    assert tx.on_transport_error(1.0) == [TransportFailed(), Terminated()]
    assert tx.terminated and tx.next_deadline() is None


def test_ict_cancel_guard_restarts_timer_b_in_proceeding() -> None:
    """§9.1: no final response 64*T1 after the CANCEL went out -> the INVITE is given up."""
    tx = _client("INVITE")
    tx.start(0.0)
    assert tx.on_cancel_sent(0.1) == []  # Calling: absorbed (the endpoint holds the CANCEL)
    tx.on_response(_resp(tx.request, 180), 0.2)
    assert tx.next_deadline() is None
    assert tx.on_cancel_sent(10.0) == []
    assert tx.next_deadline() == 42.0
    assert _run(tx, 100.0) == [(42.0, [Timeout("B"), Terminated()])]


def test_ict_cancel_guard_ends_with_the_final() -> None:
    tx = _client("INVITE")
    tx.start(0.0)
    tx.on_response(_resp(tx.request, 180), 0.2)
    tx.on_cancel_sent(1.0)
    tx.on_response(_resp(tx.request, 487), 1.5)
    assert tx.state is S.COMPLETED and tx.next_deadline() == 33.5  # B stopped, D running
    assert tx.on_cancel_sent(2.0) == [] and tx.next_deadline() == 33.5


def test_ack_for_failure_keeps_only_the_top_via() -> None:
    invite = parse_request(
        raw_request("INVITE", headers=(("Via", "SIP/2.0/UDP proxy:5060;branch=z9hG4bKp"),), branch="z9hG4bKtop")
    )
    ack = ack_for_failure(invite, _resp(invite, 404))
    assert [v.branch for v in ack.vias] == ["z9hG4bKtop"]
    assert ack.body == b""


def test_client_transaction_misuse() -> None:
    with pytest.raises(LocalProtocolError):
        _client("ACK")
    tx = _client("OPTIONS")
    tx.start(0.0)
    with pytest.raises(LocalProtocolError):
        tx.start(1.0)


# --------------------------------------------------------------------------- NICT (§17.1.2)
def test_nict_timer_e_doubles_capped_at_t2_until_timer_f() -> None:
    tx = _client("MESSAGE")
    assert tx.start(0.0) == [Send(tx.data)]
    assert tx.state is S.TRYING
    log = _run(tx, 100.0)
    # intervals 0.5 1 2 4 4 4 ...
    assert _sends(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert log[-1] == (32.0, [Timeout("F"), Terminated()])


def test_nict_schedule_follows_t1_and_t2_settings() -> None:
    tx = _client("REGISTER", timers=TimerConfig(t1=0.25, t2=1.0))
    tx.start(0.0)
    log = _run(tx, 100.0)
    assert _sends(log) == [0.25, 0.75, 1.75, *[1.75 + k for k in range(1, 15)]]
    assert log[-1] == (16.0, [Timeout("F"), Terminated()])


def test_nict_timer_e_is_t2_in_proceeding() -> None:
    tx = _client("MESSAGE")
    tx.start(0.0)
    assert _sends(_run(tx, 1.0)) == [0.5]  # next E due at 1.5
    trying = _resp(tx.request, 100, to_tag=None)
    assert tx.on_response(trying, 1.2) == [Deliver(trying)]
    assert tx.state is S.PROCEEDING
    log = _run(tx, 100.0)
    # the pending E fires, then every T2 (4 s) whatever the doubling would have said (3.5, 7.5 ...)
    assert _sends(log) == [1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5]
    assert log[-1] == (32.0, [Timeout("F"), Terminated()])


@pytest.mark.parametrize("status", [200, 202, 404, 503])
@pytest.mark.parametrize("after_provisional", [False, True])
def test_nict_final_completes_and_waits_timer_k(status: int, after_provisional: bool) -> None:
    tx = _client("MESSAGE", timers=TimerConfig(t4=3.0))
    tx.start(0.0)
    if after_provisional:
        tx.on_response(_resp(tx.request, 100, to_tag=None), 0.1)
    final = _resp(tx.request, status)
    assert tx.on_response(final, 2.0) == [Deliver(final)]
    assert tx.state is S.COMPLETED and tx.next_deadline() == 5.0  # E and F stopped; K = T4
    assert tx.on_response(final, 3.0) == []  # retransmissions absorbed
    assert tx.on_response(_resp(tx.request, 180), 3.0) == []
    assert tx.on_transport_error(3.5) == []
    assert _run(tx, 100.0) == [(5.0, [Terminated()])]


def test_nict_reliable_no_timer_e_and_zero_timer_k() -> None:
    tx = _client("MESSAGE", reliable=True)
    tx.start(0.0)
    assert tx.next_deadline() == 32.0  # F only
    tx.on_response(_resp(tx.request, 200), 1.0)
    assert tx.next_deadline() == 1.0
    assert tx.on_timer(1.0) == [Terminated()]


def test_nict_timer_f_in_proceeding() -> None:
    tx = _client("MESSAGE", reliable=True)
    tx.start(0.0)
    tx.on_response(_resp(tx.request, 100, to_tag=None), 0.1)
    assert _run(tx, 100.0) == [(32.0, [Timeout("F"), Terminated()])]


@pytest.mark.parametrize("provisional", [False, True])
def test_nict_transport_error(provisional: bool) -> None:
    tx = _client("MESSAGE")
    tx.start(0.0)
    if provisional:
        tx.on_response(_resp(tx.request, 100, to_tag=None), 0.1)
    assert tx.on_transport_error(1.0) == [TransportFailed(), Terminated()]
    assert tx.next_deadline() is None


# --------------------------------------------------------------------------- IST (§17.2.1, RFC 6026 §7.1)
def test_ist_proceeding_resends_the_last_provisional() -> None:
    tx = _server("INVITE")
    assert tx.state is S.PROCEEDING
    assert tx.on_request(tx.request, 0.1) == []  # nothing sent yet: nothing to resend
    out = _respond(tx, 100, 0.2)
    assert _kinds(out) == [Send]
    assert tx.on_request(tx.request, 0.3) == out
    ringing = _respond(tx, 180, 0.4)
    assert tx.on_request(tx.request, 0.5) == ringing
    assert tx.state is S.PROCEEDING and tx.next_deadline() is None


def test_ist_failure_timer_g_doubles_capped_at_t2_until_timer_h() -> None:
    tx = _server("INVITE")
    out = _respond(tx, 486, 0.0)
    assert tx.state is S.COMPLETED
    log = _run(tx, 100.0)
    assert _sends(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert all(a == out[0] for _, actions in log[:-1] for a in actions)
    assert log[-1] == (32.0, [Timeout("H"), Terminated()])


def test_ist_timer_g_follows_settings() -> None:
    tx = _server("INVITE", timers=TimerConfig(t1=0.25, t2=0.5))
    _respond(tx, 404, 1.0)
    log = _run(tx, 100.0)
    assert _sends(log) == [1.25, 1.75, *[1.75 + 0.5 * k for k in range(1, 31)]]  # last at 16.75
    assert log[-1] == (17.0, [Timeout("H"), Terminated()])


def test_ist_completed_resends_final_on_invite_retransmission() -> None:
    tx = _server("INVITE")
    out = _respond(tx, 480, 0.0)
    assert tx.on_request(tx.request, 0.2) == out


def test_ist_ack_confirms_then_timer_i() -> None:
    tx = _server("INVITE", timers=TimerConfig(t4=3.0))
    _respond(tx, 486, 0.0)
    assert tx.on_request(_ack(tx.request), 2.0) == []
    assert tx.state is S.CONFIRMED and tx.next_deadline() == 5.0  # G and H stopped; I = T4
    assert tx.on_request(_ack(tx.request), 2.5) == []  # absorbed
    assert tx.on_request(tx.request, 2.5) == []
    assert tx.on_transport_error(2.7) == []
    assert _run(tx, 100.0) == [(5.0, [Terminated()])]


def test_ist_reliable_no_timer_g_and_zero_timer_i() -> None:
    tx = _server("INVITE", reliable=True)
    _respond(tx, 486, 0.0)
    assert tx.next_deadline() == 32.0  # H only
    tx.on_request(_ack(tx.request), 1.0)
    assert tx.next_deadline() == 1.0
    assert tx.on_timer(1.0) == [Terminated()]


def test_ist_reliable_timer_h() -> None:
    tx = _server("INVITE", reliable=True, timers=TimerConfig(t1=0.25))
    _respond(tx, 500, 1.0)
    assert _run(tx, 100.0) == [(17.0, [Timeout("H"), Terminated()])]


def test_ist_accepted_absorbs_invites_passes_2xx_and_acks_until_timer_l() -> None:
    tx = _server("INVITE", timers=TimerConfig(t1=0.25))
    _respond(tx, 180, 0.0)
    ok = _respond(tx, 200, 1.0)
    assert _kinds(ok) == [Send]
    assert tx.state is S.ACCEPTED and tx.next_deadline() == 17.0  # L = 64*T1
    assert tx.on_request(tx.request, 2.0) == []  # RFC 6026 §7.1: absorbed, no 2xx from the transaction
    assert _respond(tx, 200, 2.5) == ok  # the TU's retransmission passes through
    ack = _ack(tx.request)
    assert tx.on_request(ack, 3.0) == [Deliver(ack)]
    assert tx.on_transport_error(3.5) == [TransportFailed()]  # RFC 6026 Figure 7: inform TU, stay
    assert tx.state is S.ACCEPTED
    assert _run(tx, 100.0) == [(17.0, [Terminated()])]


@pytest.mark.parametrize("status", [180, 486])
def test_ist_transport_error_terminates(status: int) -> None:
    tx = _server("INVITE")
    _respond(tx, status, 0.0)
    assert tx.on_transport_error(0.5) == [TransportFailed(), Terminated()]
    assert tx.next_deadline() is None


def test_ist_tu_misuse() -> None:
    tx = _server("INVITE")
    _respond(tx, 486, 0.0)
    for status in (180, 200, 500):
        with pytest.raises(LocalProtocolError):
            _respond(tx, status, 0.1)
    assert tx.last_response is not None and tx.last_response.status == 486
    accepted = _server("INVITE")
    _respond(accepted, 200, 0.0)
    for status in (183, 603):
        with pytest.raises(LocalProtocolError):
            _respond(accepted, status, 0.1)


# --------------------------------------------------------------------------- NIST (§17.2.2)
def test_nist_trying_absorbs_retransmissions() -> None:
    tx = _server("MESSAGE")
    assert tx.state is S.TRYING
    assert tx.on_request(tx.request, 0.1) == []
    assert tx.on_transport_error(0.2) == []
    assert tx.state is S.TRYING and tx.next_deadline() is None


def test_nist_proceeding_and_completed_resend_last_response_until_timer_j() -> None:
    tx = _server("MESSAGE", timers=TimerConfig(t1=0.25))
    request = tx.request
    trying = _respond(tx, 100, 0.0)
    assert tx.state is S.PROCEEDING
    assert tx.on_request(request, 0.5) == trying
    assert _respond(tx, 180, 0.6) != trying
    final = _respond(tx, 200, 1.0)
    assert tx.state is S.COMPLETED and tx.next_deadline() == 17.0  # J = 64*T1 on UDP
    assert tx.request is None and tx.last_response is None  # only the bytes stay for 64*T1
    assert tx.on_request(request, 2.0) == final
    assert _run(tx, 100.0) == [(17.0, [Terminated()])]


@pytest.mark.parametrize("status", [200, 403])
def test_nist_final_straight_from_trying(status: int) -> None:
    tx = _server("REGISTER")
    assert _kinds(_respond(tx, status, 0.0)) == [Send]
    assert tx.state is S.COMPLETED and tx.next_deadline() == 32.0


def test_nist_reliable_zero_timer_j() -> None:
    tx = _server("MESSAGE", reliable=True)
    _respond(tx, 200, 4.0)
    assert tx.next_deadline() == 4.0
    assert tx.on_timer(4.0) == [Terminated()]


@pytest.mark.parametrize("status", [100, 200])
def test_nist_transport_error(status: int) -> None:
    tx = _server("MESSAGE")
    _respond(tx, status, 0.0)
    assert tx.on_transport_error(0.5) == [TransportFailed(), Terminated()]


def test_nist_tu_misuse() -> None:
    tx = _server("MESSAGE")
    _respond(tx, 200, 0.0)
    for status in (100, 200, 404):
        with pytest.raises(LocalProtocolError):
            _respond(tx, status, 0.5)
    tx.on_timer(32.0)
    with pytest.raises(LocalProtocolError):
        _respond(tx, 200, 33.0)


def test_timer_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        TimerConfig(t1=0)
    with pytest.raises(ValueError):
        TimerConfig(t2=-1)
    with pytest.raises(ValueError):
        TimerConfig(t4=-0.5)
    assert TimerConfig(t1=0.2).b == pytest.approx(12.8)


# --------------------------------------------------------------------------- every (state, input) pair
_OP_ACTION = {
    "deliver": Deliver,
    "send_ack": Send,
    "resend_request": Send,
    "send_response": Send,
    "resend_response": Send,
    "timeout_b": Timeout,
    "timeout_f": Timeout,
    "timeout_h": Timeout,
    "transport_failed": TransportFailed,
}
_TU = {In.SEND_1XX, In.SEND_2XX, In.SEND_FAIL}
_STATUS = {In.RECV_1XX: 180, In.RECV_2XX: 200, In.RECV_FAIL: 486, In.SEND_1XX: 180, In.SEND_2XX: 200}
_STATUS[In.SEND_FAIL] = 486


def _reach(machine: str, state: State) -> Transaction:
    """A fresh UDP transaction brought into ``state`` through its public API."""
    if machine in ("ICT", "NICT"):
        client = _client("INVITE" if machine == "ICT" else "MESSAGE")
        client.start(0.0)
        path = {
            S.PROCEEDING: [180],
            S.COMPLETED: [486] if machine == "ICT" else [200],
            S.ACCEPTED: [200],
            S.TERMINATED: [],
        }.get(state, [])
        for status in path:
            client.on_response(_resp(client.request, status), 0.0)
        if state is S.TERMINATED:
            client.on_transport_error(0.0)
        return client
    server = _server("INVITE" if machine == "IST" else "MESSAGE")
    path = {S.PROCEEDING: [180], S.COMPLETED: [486], S.CONFIRMED: [486], S.ACCEPTED: [200], S.TERMINATED: [180]}
    for status in path.get(state, []):
        _respond(server, status, 0.0)
    if state is S.CONFIRMED:
        server.on_request(_ack(server.request), 0.0)
    if state is S.TERMINATED:
        server.on_transport_error(0.0)
    return server


def _feed(tx: Transaction, inp: Input, now: float) -> list[Action]:
    """Apply ``inp`` through the public API where the machine has one, else straight to the table."""
    if isinstance(tx, ClientTransaction) and inp in (In.RECV_1XX, In.RECV_2XX, In.RECV_FAIL):
        return tx.on_response(_resp(tx.request, _STATUS[inp]), now)
    if isinstance(tx, ClientTransaction) and inp is In.CANCEL_SENT:
        return tx.on_cancel_sent(now)
    if isinstance(tx, ServerTransaction) and inp in _TU:
        return _respond(tx, _STATUS[inp], now)
    if isinstance(tx, ServerTransaction) and inp is In.RECV_REQUEST:
        return tx.on_request(_req(tx), now)
    if isinstance(tx, ServerTransaction) and inp is In.RECV_ACK:
        return tx.on_request(_ack(_req(tx)), now)
    if inp is In.TRANSPORT_ERROR:
        return tx.on_transport_error(now)
    message = _resp(tx.request, 200) if isinstance(tx, ClientTransaction) else _req(tx)
    return tx._feed(inp, now, message)  # timers (and inputs the machine has no API for)


_MACHINES = {
    "ICT": (ICT_TABLE, [S.CALLING, S.PROCEEDING, S.COMPLETED, S.ACCEPTED, S.TERMINATED]),
    "NICT": (NICT_TABLE, [S.TRYING, S.PROCEEDING, S.COMPLETED, S.TERMINATED]),
    "IST": (IST_TABLE, [S.PROCEEDING, S.COMPLETED, S.CONFIRMED, S.ACCEPTED, S.TERMINATED]),
    "NIST": (NIST_TABLE, [S.TRYING, S.PROCEEDING, S.COMPLETED, S.TERMINATED]),
}


@pytest.mark.parametrize("machine", list(_MACHINES))
def test_every_state_input_pair(machine: str) -> None:
    table, states = _MACHINES[machine]
    walked = set()
    for state in states:
        for inp in Input:
            tx = _reach(machine, state)
            assert tx.state is state, (machine, state)
            entry = table.get((state, inp))
            where = f"{machine} {state.value} + {inp.value}"
            if entry is None:
                if inp in _TU:
                    with pytest.raises(LocalProtocolError):
                        _feed(tx, inp, 1.0)
                else:
                    before = dict(tx._deadlines)
                    assert _feed(tx, inp, 1.0) == [], where
                    assert tx._deadlines == before, where  # absorbed: nothing moved
                assert tx.state is state, where
                continue
            walked.add((state, inp))
            next_state, ops = entry
            actions = _feed(tx, inp, 1.0)
            expected = [_OP_ACTION[op] for op in ops if op in _OP_ACTION]
            if next_state is S.TERMINATED:
                expected.append(Terminated)
                assert tx.next_deadline() is None, where
            assert _kinds(actions) == expected, where
            assert tx.state is next_state, where
            for op in ops:
                kind, _, timer = op.partition("_")
                if next_state is S.TERMINATED:
                    break
                if op == "e_at_t2":
                    assert "E" in tx._deadlines, where
                elif kind in ("start", "double"):
                    assert timer.upper() in tx._deadlines, (where, op)
                elif kind == "stop":
                    assert timer.upper() not in tx._deadlines, (where, op)
    assert walked == set(table), set(table) - walked
