"""The endpoint's public tap (``Endpoint.add_tap``): a tap sees every message dispatched (stateless answers'
requests included) and every transmit the adapter takes; removed, it sees nothing more."""

from __future__ import annotations

from sip.endpoint import Peer, StatelessAnswer, Transmit
from sip.message import Request, Response
from sip.parser import parse_message
from tests.sip.fakes import DEV_UDP, Harness, raw_request


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, float]] = []
        self.out: list[Transmit] = []

    def received(self, message: Request | Response, peer: Peer, now: float) -> None:
        self.seen.append((message.method if isinstance(message, Request) else str(message.status), str(peer), now))

    def sent(self, transmits: list[Transmit]) -> None:
        self.out.extend(transmits)


def _challenge(req: Request, peer: Peer) -> StatelessAnswer | None:
    return StatelessAnswer(401) if req.method == "REGISTER" else None


def test_a_tap_sees_requests_and_answers_both_stateless_and_transactional() -> None:
    h = Harness.make(stateless=_challenge)
    tap = Recorder()
    h.endpoint.add_tap(tap)
    h.endpoint.add_tap(tap)  # added once however often
    assert h.endpoint.taps == (tap,)
    h.recv(raw_request("REGISTER"))
    h.recv(raw_request("OPTIONS", branch="z9hG4bK-o"))
    (event,) = h.events()
    h.endpoint.reply(event, 200, now=h.now)
    sent = [parse_message(t.data) for t in h.out()]
    assert [m.status for m in sent] == [401, 200]  # type: ignore[union-attr]
    assert [s[0] for s in tap.seen] == ["REGISTER", "OPTIONS"]
    assert tap.seen[0][1] == str(DEV_UDP)
    assert [parse_message(t.data).status for t in tap.out] == [401, 200]  # type: ignore[union-attr]


def test_a_removed_tap_sees_nothing_and_an_untapped_endpoint_has_no_taps() -> None:
    h = Harness.make(stateless=_challenge)
    assert h.endpoint.taps == ()
    tap = Recorder()
    h.endpoint.add_tap(tap)
    h.endpoint.remove_tap(tap)
    h.recv(raw_request("REGISTER"))
    assert len(h.out()) == 1
    assert tap.seen == [] and tap.out == []
