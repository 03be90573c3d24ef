"""The endpoint's stateless answers (RFC 3261 §8.2.7): offered only new out-of-dialog non-INVITE requests,
answered at once with nothing kept; anything the hook declines goes through a server transaction as before."""

from __future__ import annotations

from sip.endpoint import Peer, RequestReceived, StatelessAnswer
from sip.message import Request, Response
from sip.parser import parse_message
from tests.sip.fakes import DEV_UDP, Harness, raw_request

NAT = Peer("UDP", "203.0.113.5", 40000)


def challenge_register(req: Request, peer: Peer) -> StatelessAnswer | None:
    if req.method == "REGISTER" and "authorization" not in req.headers:
        return StatelessAnswer(401, [("WWW-Authenticate", 'Digest realm="3402000000", nonce="n1"')])
    return None


def test_a_stateless_answer_is_sent_at_once_and_leaves_nothing_behind() -> None:
    offered: list[str] = []

    def hook(req: Request, peer: Peer) -> StatelessAnswer | None:
        offered.append(req.method)
        return challenge_register(req, peer)

    h = Harness.make(stateless=hook)
    h.recv(raw_request("REGISTER"), NAT)
    out = h.out()
    assert len(out) == 1 and out[0].peer == NAT  # §18.2.2 + RFC 3581: back to the packet's source
    (resp,) = [parse_message(t.data) for t in out]
    assert isinstance(resp, Response) and resp.status == 401 and resp.to.tag
    assert resp.top_via.received == NAT.host and resp.top_via.rport == NAT.port
    assert resp.headers.get("www-authenticate", "").startswith("Digest")
    assert h.events() == [] and h.endpoint.transaction_count == 0
    assert h.endpoint.next_deadline() is None  # no timer J to run later
    h.recv(raw_request("REGISTER"), NAT)  # a retransmission is simply answered again
    assert [m.status for m in h.sent()] == [401]  # type: ignore[union-attr]
    assert offered == ["REGISTER", "REGISTER"] and h.endpoint.stats["stateless"] == 2


def test_declined_requests_take_the_transaction_path() -> None:
    h = Harness.make(stateless=challenge_register)
    h.recv(raw_request("REGISTER", headers=(("Authorization", 'Digest username="x"'),)))
    assert h.out() == []
    (event,) = h.events()
    assert isinstance(event, RequestReceived) and event.tx is not None
    assert h.endpoint.transaction_count == 1


def test_invite_ack_cancel_and_in_dialog_requests_are_never_offered() -> None:
    offered: list[str] = []

    def hook(req: Request, peer: Peer) -> StatelessAnswer | None:
        offered.append(req.method)
        return StatelessAnswer(200)

    h = Harness.make(stateless=hook)
    h.recv(raw_request("INVITE", branch="z9hG4bK-i"))
    h.recv(raw_request("CANCEL", branch="z9hG4bK-i", cseq_method="CANCEL"))
    h.recv(raw_request("ACK", branch="z9hG4bK-a"))
    h.recv(raw_request("MESSAGE", branch="z9hG4bK-d", to_tag="t1"))
    assert offered == []
    h.recv(raw_request("OPTIONS", branch="z9hG4bK-o"))
    assert offered == ["OPTIONS"]


def test_a_retransmission_of_a_stateful_request_is_absorbed_not_offered() -> None:
    offered: list[str] = []

    def hook(req: Request, peer: Peer) -> StatelessAnswer | None:
        offered.append(req.method)
        return None

    h = Harness.make(stateless=hook)
    h.recv(raw_request("MESSAGE"))
    h.recv(raw_request("MESSAGE"))
    assert offered == ["MESSAGE"] and h.endpoint.stats["retransmissions_absorbed"] == 1


def test_while_overloaded_new_requests_get_503_before_the_hook() -> None:
    h = Harness.make(stateless=lambda req, peer: StatelessAnswer(200))
    h.endpoint.overloaded = True
    h.recv(raw_request("MESSAGE"), DEV_UDP)
    assert [m.status for m in h.sent()] == [503]  # type: ignore[union-attr]
