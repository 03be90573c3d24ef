"""The endpoint's lean lane (``fast`` hook, sip/lite.py): answers built from the request's bytes; kept and deferred
answers behave as a non-INVITE server transaction does for the request's retransmissions (RFC 3261 §17.2.2,
Timer J = 64*T1 on UDP); everything the hook declines, and every unusual shape, takes the full path."""

from __future__ import annotations

from sip.endpoint import DEFER, Peer, RequestReceived, StatelessAnswer
from sip.lite import Lite
from sip.message import Response
from sip.parser import parse_message
from tests.sip.fakes import FAST, Harness, raw_request

NAT = Peer("UDP", "203.0.113.5", 40000)
AUTH = (("Authorization", 'Digest username="x", realm="r", nonce="n", uri="sip:a", response="0"'),)


class Hook:
    """A ``fast`` hook answering what it is told and recording what it was offered."""

    def __init__(self, answer: StatelessAnswer | None) -> None:
        self.answer = answer
        self.offered: list[Lite] = []

    def __call__(self, lite: Lite, peer: Peer, local: tuple[str, int] | None) -> StatelessAnswer | None:
        self.offered.append(lite)
        return self.answer


def statuses(h: Harness) -> list[int]:
    return [m.status for m in h.sent() if isinstance(m, Response)]


def test_an_unkept_answer_is_sent_at_once_and_a_retransmission_is_offered_again() -> None:
    hook = Hook(StatelessAnswer(401, [("WWW-Authenticate", 'Digest realm="r", nonce="n"')]))
    h = Harness.make(fast=hook)
    h.recv(raw_request("REGISTER"), NAT)
    (out,) = h.out()
    assert out.peer == NAT  # rport: back to the source port
    resp = parse_message(out.data)
    assert isinstance(resp, Response) and resp.status == 401 and resp.to.tag
    assert resp.top_via.received == NAT.host and resp.top_via.rport == NAT.port
    assert h.events() == [] and h.endpoint.transaction_count == 0 and h.endpoint.next_deadline() is None
    h.recv(raw_request("REGISTER"), NAT)
    assert statuses(h) == [401] and len(hook.offered) == 2
    assert h.endpoint.stats["fast"] == 2 and h.endpoint.stats["received"] == 2


def test_a_kept_answer_is_repeated_byte_for_byte_to_retransmissions_until_timer_j() -> None:
    hook = Hook(StatelessAnswer(403, keep=True))
    h = Harness.make(fast=hook)
    h.recv(raw_request("REGISTER", headers=AUTH))
    (first,) = h.out()
    h.now = 64 * FAST.t1 - 0.01
    h.recv(raw_request("REGISTER", headers=AUTH))
    (again,) = h.out()
    assert again.data == first.data and len(hook.offered) == 1  # the same To tag: one answer, not two
    assert h.endpoint.stats["retransmissions_absorbed"] == 1
    h.now = 64 * FAST.t1 + 0.01  # Timer J has run out: a copy now is a new request to the lane
    h.recv(raw_request("REGISTER", headers=AUTH))
    assert statuses(h) == [403] and len(hook.offered) == 2


def test_a_deferred_request_absorbs_retransmissions_until_fast_reply_then_repeats_that_reply() -> None:
    hook = Hook(DEFER)
    h = Harness.make(fast=hook)
    h.recv(raw_request("REGISTER", headers=AUTH), NAT)
    h.recv(raw_request("REGISTER", headers=AUTH), NAT)  # the commit is still running: absorbed
    assert h.out() == [] and len(hook.offered) == 1
    h.endpoint.fast_reply(hook.offered[0], NAT, 200, headers=[("Expires", "3600")])
    (out,) = h.out()
    resp = parse_message(out.data)
    assert isinstance(resp, Response) and resp.status == 200 and resp.headers.get("expires") == "3600"
    h.recv(raw_request("REGISTER", headers=AUTH), NAT)
    (again,) = h.out()
    assert again.data == out.data and again.peer == NAT and len(hook.offered) == 1


def test_declined_requests_and_unusual_shapes_take_the_full_path() -> None:
    hook = Hook(None)
    h = Harness.make(fast=hook)
    h.recv(raw_request("MESSAGE", body=b"<Notify/>", headers=(("Content-Type", "Application/MANSCDP+xml"),)))
    (event,) = h.events()
    assert isinstance(event, RequestReceived) and len(hook.offered) == 1
    h.recv(raw_request("MESSAGE", body=b"<Notify/>", headers=(("Content-Type", "Application/MANSCDP+xml"),)))
    assert len(hook.offered) == 1  # the retransmission goes to the full path's transaction, not to the lane
    assert h.endpoint.stats["retransmissions_absorbed"] == 1
    h.recv(raw_request("REGISTER", branch="z9hG4bK-2", headers=(("Require", "100rel"),)))
    h.recv(raw_request("OPTIONS", branch="z9hG4bK-3"))
    h.recv(raw_request("REGISTER", branch="z9hG4bK-4", to_tag="t1"))
    assert len(hook.offered) == 1  # Require, another method, a To tag: the lane never saw them
    assert h.endpoint.stats["fast"] == 0


def test_when_overloaded_new_requests_get_the_full_paths_503_but_answers_to_a_challenge_are_served() -> None:
    hook = Hook(StatelessAnswer(401))
    h = Harness.make(fast=hook)
    h.endpoint.overloaded = True
    h.recv(raw_request("REGISTER"))
    assert statuses(h) == [503] and hook.offered == []
    h.recv(raw_request("REGISTER", branch="z9hG4bK-2", headers=AUTH))
    assert statuses(h) == [401] and len(hook.offered) == 1


class Watcher:
    """A tap (sip.endpoint.Tap) that only counts."""

    def __init__(self) -> None:
        self.seen = 0

    def received(self, message: object, peer: Peer, now: float) -> None:
        self.seen += 1

    def sent(self, transmits: list) -> None:
        pass


def test_while_a_tap_watches_everything_takes_the_full_path_where_the_tap_sees_it() -> None:
    hook = Hook(StatelessAnswer(200))
    h = Harness.make(fast=hook)
    tap = Watcher()
    h.endpoint.add_tap(tap)
    h.recv(raw_request("REGISTER"))
    assert hook.offered == [] and isinstance(h.events()[0], RequestReceived) and tap.seen == 1
    h.endpoint.remove_tap(tap)
    h.recv(raw_request("REGISTER", branch="z9hG4bK-2"))
    assert len(hook.offered) == 1 and tap.seen == 1


def test_without_rport_the_answer_goes_to_the_sent_by_port() -> None:
    hook = Hook(StatelessAnswer(200))
    h = Harness.make(fast=hook)
    h.recv(raw_request("REGISTER", rport=False, via="SIP/2.0/UDP 192.168.1.10:5062"), Peer("UDP", "192.168.1.10", 7000))
    (out,) = h.out()
    assert out.peer == Peer("UDP", "192.168.1.10", 5062)  # RFC 3261 §18.2.2
