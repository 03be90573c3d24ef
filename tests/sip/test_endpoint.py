"""The sans-IO endpoint: matching, retransmission absorption, NAT routing, CANCEL, bad input, TCP streams,
lost connections and timers. Bytes in, bytes out, a fake clock; no sockets."""

from __future__ import annotations

import random

import pytest

from sip.endpoint import (
    CancelReceived,
    ConnectionBroken,
    ConnectionClosed,
    MessageRejected,
    Peer,
    RequestReceived,
    ResponseReceived,
    TransactionFailed,
    Transmit,
)
from sip.errors import LocalProtocolError
from sip.headers import Headers
from sip.message import Request, Response
from sip.parser import parse_message
from tests.sip.fakes import DEV_TCP, DEV_UDP, FAST, LOCAL, PLATFORM, Harness, answer, parse_request, raw_request

NAT = Peer("UDP", "203.0.113.5", 40000)


def _only(events: list, kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def _request_event(h: Harness) -> RequestReceived:
    events = h.events()
    assert len(events) == 1 and isinstance(events[0], RequestReceived), events
    return events[0]


# --------------------------------------------------------------------------- server side (§17.2.3)
def test_invite_gets_100_trying_and_reaches_the_application_once() -> None:
    h = Harness.make()
    invite = raw_request("INVITE")
    h.recv(invite)
    out = h.out()
    assert len(out) == 1 and out[0].peer == DEV_UDP
    trying = parse_message(out[0].data)
    assert isinstance(trying, Response) and trying.status == 100 and trying.to.tag is None
    event = _request_event(h)
    assert event.tx == ("z9hG4bK-dev-1", "192.168.1.10:5060", "INVITE")
    assert event.request.method == "INVITE" and event.dialog is None
    h.recv(invite)  # retransmission: the 100 again, nothing for the application
    assert [t.data for t in h.out()] == [out[0].data]
    assert h.events() == []
    assert h.endpoint.stats["retransmissions_absorbed"] == 1


def test_auto_trying_can_be_turned_off() -> None:
    from sip.endpoint import Endpoint, EndpointConfig

    h = Harness(Endpoint(EndpointConfig(timers=FAST, auto_trying=False)))
    h.recv(raw_request("INVITE"))
    assert h.out() == []
    assert isinstance(_request_event(h), RequestReceived)


def test_non_invite_retransmission_absorbed_then_last_response_resent() -> None:
    h = Harness.make()
    message = raw_request("MESSAGE", body=b"<xml/>")
    h.recv(message)
    event = _request_event(h)
    h.recv(message)  # NIST Trying: absorbed, nothing to resend yet
    assert h.out() == [] and h.events() == []
    sent = h.endpoint.reply(event, 200, now=h.now)
    first = h.out()
    assert len(first) == 1 and parse_message(first[0].data).status == 200  # type: ignore[union-attr]
    assert sent.to.tag is not None
    h.now = 3.0
    h.recv(message)
    assert h.out() == first  # the same bytes, to the same place
    assert h.events() == []
    assert h.endpoint.stats["retransmissions_absorbed"] == 2


def test_server_match_needs_the_same_sent_by() -> None:
    h = Harness.make()
    h.recv(raw_request("MESSAGE"))
    h.recv(raw_request("MESSAGE", via="SIP/2.0/UDP 192.168.1.11:5060"))  # same branch, other sent-by
    events = h.events()
    assert [e.tx[1] for e in events] == ["192.168.1.10:5060", "192.168.1.11:5060"]
    assert h.endpoint.transaction_count == 2


def test_server_match_needs_the_same_method_but_ack_matches_invite() -> None:
    h = Harness.make()
    h.recv(raw_request("INVITE"))
    invite_event = _request_event(h)
    h.out()
    h.endpoint.reply(invite_event, 486, now=h.now)
    busy = parse_message(h.out()[0].data)
    assert isinstance(busy, Response)
    # the ACK for a non-2xx carries the INVITE's branch: it belongs to the IST (Completed -> Confirmed)
    h.recv(raw_request("ACK", to_tag=busy.to.tag))
    assert h.events() == [] and h.out() == []
    # an OPTIONS with the same branch is another transaction
    h.recv(raw_request("OPTIONS"))
    assert _request_event(h).tx == ("z9hG4bK-dev-1", "192.168.1.10:5060", "OPTIONS")
    # the IST is Confirmed: ACK retransmissions stay absorbed and timer I ends it
    h.recv(raw_request("ACK", to_tag=busy.to.tag))
    assert h.events() == []
    h.advance(FAST.t4)
    assert h.endpoint.transaction_count == 1  # only the OPTIONS, still unanswered


def test_rfc2543_requests_match_on_call_id_tags_cseq_and_via() -> None:
    h = Harness.make()
    invite = raw_request("INVITE", branch=None)  # no branch at all: §17.2.3 fallback
    h.recv(invite)
    event = _request_event(h)
    assert event.tx[0] == "2543"
    h.out()
    h.recv(invite)
    assert h.events() == [] and len(h.out()) == 1  # retransmission: the 100 again
    h.recv(raw_request("INVITE", branch=None, cseq=2))  # another CSeq: a new transaction
    assert _request_event(h).tx != event.tx
    h.out()
    h.endpoint.reply(event, 404, now=h.now)
    not_found = parse_message(h.out()[0].data)
    assert isinstance(not_found, Response)
    # the ACK carries our To tag, which the INVITE did not: it still matches the INVITE transaction
    h.recv(raw_request("ACK", branch=None, to_tag=not_found.to.tag))
    assert h.events() == [] and h.out() == []
    server = h.endpoint._server[event.tx]
    assert server.state.value == "Confirmed"


def test_old_style_branch_without_magic_cookie_uses_the_fallback() -> None:
    h = Harness.make()
    h.recv(raw_request("MESSAGE", branch="1234"))
    assert _request_event(h).tx[0] == "2543"


# --------------------------------------------------------------------------- NAT: RFC 3581 and §18.2.2
def test_rport_sends_the_response_to_the_source_port() -> None:
    h = Harness.make()
    h.recv(raw_request("MESSAGE", via="SIP/2.0/UDP 10.1.1.1:5070"), NAT)
    event = _request_event(h)
    assert str(event.request.top_via) == (
        "SIP/2.0/UDP 10.1.1.1:5070;rport=40000;branch=z9hG4bK-dev-1;received=203.0.113.5"
    )
    h.endpoint.reply(event, 200, now=h.now)
    (out,) = h.out()
    assert out.peer == Peer("UDP", "203.0.113.5", 40000)
    response = parse_message(out.data)
    assert response.top_via.received == "203.0.113.5" and response.top_via.rport == 40000


@pytest.mark.parametrize(
    ("via", "dest"),
    [
        ("SIP/2.0/UDP 10.1.1.1:5070", ("203.0.113.5", 5070)),  # received + the Via's port
        ("SIP/2.0/UDP 10.1.1.1", ("203.0.113.5", 5060)),  # received + 5060
        ("SIP/2.0/UDP 203.0.113.5:5080", ("203.0.113.5", 5080)),  # same host: sent-by as is
    ],
)
def test_without_rport_the_response_goes_to_received_and_the_via_port(via: str, dest: tuple[str, int]) -> None:
    h = Harness.make()
    h.recv(raw_request("MESSAGE", via=via, rport=False), NAT)
    event = _request_event(h)
    expected_received = None if via.startswith("SIP/2.0/UDP 203.") else "203.0.113.5"
    assert event.request.top_via.received == expected_received
    assert event.request.top_via.rport is None
    h.endpoint.reply(event, 200, now=h.now)
    assert h.out()[0].peer == Peer("UDP", *dest)


def test_tcp_responses_use_the_connection() -> None:
    h = Harness.make()
    h.recv(raw_request("MESSAGE", via="SIP/2.0/TCP 10.1.1.1:5070"), DEV_TCP)
    event = _request_event(h)
    h.endpoint.reply(event, 200, now=h.now)
    assert h.out()[0].peer == DEV_TCP


# --------------------------------------------------------------------------- client side (§17.1.3)
def _message() -> Request:
    headers = Headers(
        [
            ("From", f"<sip:{PLATFORM}@3402000000>;tag=ourtag"),
            ("To", "<sip:34020000001320000001@3402000000>"),
            ("Call-ID", "out-1"),
            ("CSeq", "20 MESSAGE"),
        ]
    )
    return Request("MESSAGE", "sip:34020000001320000001@192.168.1.10:5060", headers, b"<Query/>")


def test_send_request_adds_our_via_and_matches_responses_by_branch_and_method() -> None:
    h = Harness.make()
    key = h.endpoint.send_request(_message(), DEV_UDP, h.now)
    (out,) = h.out()
    assert out.peer == DEV_UDP
    sent = parse_request(out.data)
    via = sent.top_via
    assert (via.transport, via.host, via.port, via.wants_rport) == ("UDP", *LOCAL, True)
    assert via.branch is not None and via.branch.startswith("z9hG4bK") and key == (via.branch, "MESSAGE")
    assert sent.headers.get("max-forwards") == "70"
    # same branch, other CSeq method: not ours
    wrong_method = answer(sent, 200).replace(b"20 MESSAGE", b"20 INFO")
    h.recv(wrong_method)
    # another branch: not ours either
    h.recv(answer(sent, 200).replace(via.branch.encode(), b"z9hG4bK-other"))
    events = h.events()
    assert [type(e) for e in events] == [MessageRejected, MessageRejected]
    assert all(e.status is None for e in events)
    assert h.out() == []  # never a response to a response
    h.recv(answer(sent, 200))
    (event,) = h.events()
    assert isinstance(event, ResponseReceived) and event.tx == key and event.response.status == 200
    assert event.request is not None and event.request.method == "MESSAGE"
    h.recv(answer(sent, 200))  # a retransmission in Completed: absorbed
    assert h.events() == []
    h.advance(100.0)
    assert h.endpoint.transaction_count == 0


def test_client_retransmissions_and_timeout_through_the_endpoint() -> None:
    h = Harness.make()
    key = h.endpoint.send_request(_message(), DEV_UDP, h.now)
    original = h.out()[0].data
    sent = h.advance(100.0)
    assert [t for t, _ in sent] == [0.25, 0.75, 1.75, *[1.75 + k for k in range(1, 15)]]
    assert all(tr.data == original for _, tr in sent)
    (failed,) = h.events()
    assert isinstance(failed, TransactionFailed) and failed.tx == key and failed.reason == "timeout"
    assert h.fired[-1] == 16.0
    assert h.endpoint.transaction_count == 0 and h.endpoint.next_deadline() is None


def test_duplicate_client_transaction_is_refused() -> None:
    h = Harness.make()
    request = _message().replace(
        headers=_message().headers.prepend("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKfixed")
    )
    assert h.endpoint.send_request(request, DEV_UDP, 0.0) == ("z9hG4bKfixed", "MESSAGE")
    with pytest.raises(LocalProtocolError):
        h.endpoint.send_request(request, DEV_UDP, 0.0)
    with pytest.raises(LocalProtocolError):
        h.endpoint.send_request(request.replace(method="ACK"), DEV_UDP, 0.0)


def test_respond_to_a_finished_transaction_is_misuse() -> None:
    h = Harness.make()
    h.recv(raw_request("MESSAGE"))
    event = _request_event(h)
    h.endpoint.reply(event, 200, now=0.0)
    with pytest.raises(LocalProtocolError):
        h.endpoint.reply(event, 500, now=0.1)
    h.advance(100.0)
    with pytest.raises(LocalProtocolError):
        h.endpoint.reply(event, 200, now=h.now)
    ack_event = RequestReceived(event.request, DEV_UDP, None)
    with pytest.raises(LocalProtocolError):
        h.endpoint.reply(ack_event, 200, now=h.now)


def test_reply_keeps_one_to_tag_per_transaction() -> None:
    h = Harness.make()
    h.recv(raw_request("INVITE"))
    event = _request_event(h)
    ringing = h.endpoint.reply(event, 180, now=0.0)
    ok = h.endpoint.reply(event, 200, now=0.1, headers=[("Contact", "<sip:p@10.0.0.1>")])
    assert ringing.to.tag is not None and ok.to.tag == ringing.to.tag


# --------------------------------------------------------------------------- CANCEL (§9)
def test_cancel_before_the_final_answers_200_and_487() -> None:
    h = Harness.make()
    h.recv(raw_request("INVITE"))
    invite_event = _request_event(h)
    h.endpoint.reply(invite_event, 180, now=h.now)
    h.out()
    h.recv(raw_request("CANCEL", contact=None))
    out = h.out()
    responses = [parse_message(t.data) for t in out]
    assert [(r.status, r.cseq.method) for r in responses] == [(200, "CANCEL"), (487, "INVITE")]  # type: ignore[union-attr]
    tags = {r.to.tag for r in responses}
    assert len(tags) == 1 and None not in tags  # the To tag of the 180, on both (§9.2)
    (event,) = h.events()
    assert isinstance(event, CancelReceived) and event.tx == invite_event.tx
    with pytest.raises(LocalProtocolError):
        h.endpoint.reply(invite_event, 200, now=h.now)  # too late: the INVITE got its 487
    h.recv(raw_request("ACK", to_tag=tags.pop()))  # ACK for the 487: absorbed by the IST
    assert h.events() == [] and h.out() == []
    h.advance(100.0)
    assert h.endpoint.transaction_count == 0


def test_cancel_after_only_the_100_gives_200_and_487_one_tag() -> None:
    h = Harness.make()
    h.recv(raw_request("INVITE"))
    h.events()
    h.out()  # the 100 has no tag: the endpoint picks one for both answers
    h.recv(raw_request("CANCEL", contact=None))
    responses = [parse_message(t.data) for t in h.out()]
    assert [r.status for r in responses] == [200, 487]  # type: ignore[union-attr]
    assert responses[0].to.tag is not None and responses[0].to.tag == responses[1].to.tag


def test_cancel_after_the_final_gets_200_and_changes_nothing() -> None:
    """§9.2: a CANCEL matching a transaction gets 200 even when the INVITE was already answered."""
    h = Harness.make()
    h.recv(raw_request("INVITE"))
    event = _request_event(h)
    final = h.endpoint.reply(event, 200, now=h.now, headers=[("Contact", "<sip:p@10.0.0.1>")])
    h.out()
    h.recv(raw_request("CANCEL", contact=None))
    (out,) = h.out()  # only the CANCEL's answer: no 487 after a 200
    response = parse_message(out.data)
    assert (response.status, response.cseq.method) == (200, "CANCEL")  # type: ignore[union-attr]
    assert response.to.tag == final.to.tag
    assert h.events() == []
    assert len(h.endpoint.dialogs) == 1  # the call goes on


def test_cancel_for_nothing_gets_481() -> None:
    h = Harness.make()
    h.recv(raw_request("CANCEL", contact=None, branch="z9hG4bK-nothing"))
    response = parse_message(h.out()[0].data)
    assert response.status == 481 and response.to.tag is not None  # type: ignore[union-attr]
    assert h.events() == []


def _invite() -> Request:
    headers = Headers(
        [
            ("From", f"<sip:{PLATFORM}@3402000000>;tag=ourtag"),
            ("To", "<sip:34020000001320000001@3402000000>"),
            ("Call-ID", "inv-1"),
            ("CSeq", "7 INVITE"),
            ("Contact", f"<sip:{PLATFORM}@10.0.0.1:5060>"),
            ("Route", "<sip:proxy.example.com;lr>"),
        ]
    )
    return Request("INVITE", "sip:34020000001320000001@192.168.1.10:5060", headers)


def test_uac_cancel_waits_for_a_provisional() -> None:
    h = Harness.make()
    key = h.endpoint.send_request(_invite(), DEV_UDP, 0.0)
    invite = parse_request(h.out()[0].data)
    assert h.endpoint.cancel(key, 0.1) is None  # §9.1: nothing received yet, the CANCEL waits
    assert h.out() == []
    h.now = 0.2
    h.recv(answer(invite, 180))
    (cancel_out,) = h.out()
    cancel = parse_request(cancel_out.data)
    assert cancel.method == "CANCEL" and cancel.uri == invite.uri and str(cancel.cseq) == "7 CANCEL"
    for name in ("from", "to", "call-id"):
        assert cancel.headers.get(name) == invite.headers.get(name)
    assert [v.branch for v in cancel.vias] == [invite.top_via.branch]
    assert cancel.headers.get_all("route") == ["<sip:proxy.example.com;lr>"]
    assert [type(e) for e in h.events()] == [ResponseReceived]
    assert h.endpoint.cancel(key, 0.3) == (invite.top_via.branch, "CANCEL")  # already sent: same key
    assert h.out() == []
    h.recv(answer(cancel, 200))
    h.recv(answer(invite, 487))
    acks = [parse_request(t.data) for t in h.out()]
    assert [(a.method, a.top_via.branch) for a in acks] == [("ACK", invite.top_via.branch)]
    statuses = [e.response.status for e in h.events()]
    assert statuses == [200, 487]
    assert h.endpoint.cancel(key, 0.4) is None  # the INVITE has its final answer
    h.advance(100.0)
    assert h.endpoint.transaction_count == 0


def test_uac_cancel_gives_up_on_the_invite_after_64_t1() -> None:
    h = Harness.make()
    key = h.endpoint.send_request(_invite(), DEV_UDP, 0.0)
    invite = parse_request(h.out()[0].data)
    h.recv(answer(invite, 180))
    h.events()
    h.now = 1.0
    cancel_key = h.endpoint.cancel(key, h.now)
    assert cancel_key is not None
    h.recv(answer(parse_request(h.out()[0].data), 200))  # the CANCEL is answered, the INVITE never
    h.events()
    h.advance(100.0)
    failed = _only(h.events(), TransactionFailed)
    assert [(e.tx, e.reason) for e in failed] == [(key, "timeout")]
    assert 1.0 + 64 * FAST.t1 in h.fired
    assert h.endpoint.transaction_count == 0


def test_cancel_of_unknown_or_non_invite_is_none() -> None:
    h = Harness.make()
    key = h.endpoint.send_request(_message(), DEV_UDP, 0.0)
    assert h.endpoint.cancel(key, 0.0) is None
    assert h.endpoint.cancel(("z9hG4bKnone", "INVITE"), 0.0) is None


# --------------------------------------------------------------------------- bad input
def test_malformed_request_gets_a_stateless_400_with_a_warning() -> None:
    h = Harness.make()
    bad = raw_request("MESSAGE", via="SIP/2.0/UDP 10.1.1.1:5070").replace(b"CSeq: 1 MESSAGE", b"CSeq: x MESSAGE")
    h.recv(bad, NAT)
    (out,) = h.out()
    assert out.peer == NAT  # rport honoured on the stateless answer too
    response = parse_message(out.data)
    assert isinstance(response, Response) and response.status == 400
    assert response.headers.get("warning", "").startswith('399 - "bad CSeq')
    assert response.to.tag is not None and response.headers.get("cseq") == "x MESSAGE"
    assert response.top_via.received == "203.0.113.5" and response.top_via.rport == 40000
    (event,) = h.events()
    assert isinstance(event, MessageRejected) and event.status == 400
    assert h.endpoint.transaction_count == 0


def test_unparseable_datagram_is_salvaged_for_its_400() -> None:
    h = Harness.make()
    bad = raw_request("MESSAGE", headers=(("Bad Header", "x"),))  # the parser refuses the whole message
    bad = bad.replace(b";rport;branch=z9hG4bK-dev-1", b";rport\r\n ;branch=z9hG4bK-dev-1")  # and a folded Via
    h.recv(bad)
    (out,) = h.out()
    response = parse_message(out.data)
    assert response.status == 400  # type: ignore[union-attr]
    assert response.top_via.branch == "z9hG4bK-dev-1"  # the continuation line was kept
    assert [e.status for e in h.events()] == [400]


def test_status_hint_is_used_for_the_stateless_answer() -> None:
    h = Harness.make()
    h.recv(raw_request("MESSAGE").replace(b"SIP/2.0\r\nVia", b"SIP/3.0\r\nVia", 1))
    assert parse_message(h.out()[0].data).status == 505  # type: ignore[union-attr]


@pytest.mark.parametrize("missing", [b"Call-ID", b"CSeq", b"From"])
def test_request_without_the_headers_of_a_response_is_dropped(missing: bytes) -> None:
    h = Harness.make()
    data = b"\r\n".join(ln for ln in raw_request("MESSAGE").split(b"\r\n") if not ln.startswith(missing))
    h.recv(data)
    assert h.out() == []
    (event,) = h.events()
    assert isinstance(event, MessageRejected) and event.status is None


def test_garbage_is_dropped() -> None:
    h = Harness.make()
    h.recv(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    assert h.out() == []
    assert [e.status for e in h.events()] == [None]


def test_bad_ack_and_bad_response_are_never_answered() -> None:
    h = Harness.make()
    h.recv(raw_request("ACK").replace(b"CSeq: 1 ACK", b"CSeq: one ACK"))
    h.recv(raw_request("ACK", headers=(("Bad Header", "x"),)))
    h.recv(answer(raw_request("MESSAGE"), 200).replace(b"CSeq: 1 MESSAGE", b"CSeq: bad"))
    h.recv(answer(raw_request("MESSAGE"), 200).replace(b"Call-ID", b"Bad Name"))
    assert h.out() == []
    assert [e.status for e in h.events()] == [None, None, None, None]


def test_cseq_method_must_match_the_request_line() -> None:
    h = Harness.make()
    h.recv(raw_request("MESSAGE", cseq_method="INFO"))
    assert parse_message(h.out()[0].data).status == 400  # type: ignore[union-attr]


def test_malformed_contact_in_invite_is_rejected_before_a_transaction_exists() -> None:
    h = Harness.make()
    h.recv(raw_request("INVITE", contact="<sip:broken"))
    (out,) = h.out()
    assert parse_message(out.data).status == 400  # type: ignore[union-attr]
    assert [e.status for e in h.events()] == [400]
    assert h.endpoint.transaction_count == 0 and h.endpoint.next_deadline() is None


def test_udp_crlf_keepalives_are_ignored() -> None:
    h = Harness.make()
    h.recv(b"\r\n\r\n")
    assert h.out() == [] and h.events() == []
    assert h.endpoint.stats["keepalives"] == 1


# --------------------------------------------------------------------------- TCP streams
def _two_requests() -> bytes:
    first = raw_request("MESSAGE", via="SIP/2.0/TCP 192.168.1.10:40000", body=b"<a>one</a>")
    second = raw_request(
        "MESSAGE", via="SIP/2.0/TCP 192.168.1.10:40000", branch="z9hG4bK-dev-2", cseq=2, body=b"<b>two</b>"
    )
    return b"\r\n\r\n" + first + second  # a keep-alive ping first


@pytest.mark.parametrize("seed", [None, 1, 2, 3, 4, 5])
def test_tcp_stream_in_any_chunking(seed: int | None) -> None:
    h = Harness.make()
    data = _two_requests()
    if seed is None:
        chunks = [data[i : i + 1] for i in range(len(data))]
    else:
        rng = random.Random(seed)
        cuts = sorted(rng.sample(range(1, len(data)), 12))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    for chunk in chunks:
        h.recv(chunk, DEV_TCP)
    events = h.events()
    assert [e.request.body for e in events] == [b"<a>one</a>", b"<b>two</b>"]
    assert all(e.peer == DEV_TCP for e in events)


def test_tcp_framing_error_closes_the_connection() -> None:
    h = Harness.make()
    no_length = b"MESSAGE sip:x@y SIP/2.0\r\nVia: SIP/2.0/TCP 1.2.3.4;branch=z9hG4bKa\r\n\r\n"
    h.recv(no_length, DEV_TCP)
    assert h.out() == [Transmit(b"", DEV_TCP, close=True)]
    (event,) = h.events()
    assert isinstance(event, ConnectionBroken) and event.peer == DEV_TCP
    assert "Content-Length" in event.reason
    h.recv(_two_requests(), DEV_TCP)  # still in flight on the broken stream: dropped
    assert h.out() == [] and h.events() == []
    h.endpoint.connection_lost(DEV_TCP, h.now)
    assert h.events() == [ConnectionClosed(DEV_TCP)]
    h.recv(_two_requests(), DEV_TCP)  # a new connection from the same address starts clean
    assert len(_only(h.events(), RequestReceived)) == 2


def test_tcp_framed_but_malformed_message_gets_400_and_the_stream_goes_on() -> None:
    h = Harness.make()
    bad = raw_request("MESSAGE", via="SIP/2.0/TCP 192.168.1.10:40000").replace(b"MESSAGE sip:", b"MESSAGE  sip:", 1)
    h.recv(bad + _two_requests(), DEV_TCP)
    out = h.out()
    assert [(t.peer, parse_message(t.data).status) for t in out] == [(DEV_TCP, 400)]  # type: ignore[union-attr]
    events = h.events()
    assert [type(e) for e in events] == [MessageRejected, RequestReceived, RequestReceived]


def test_connection_lost_fails_that_peers_transactions() -> None:
    h = Harness.make()
    other = Peer("TCP", "192.168.1.20", 40001)
    lost = h.endpoint.send_request(_message(), DEV_TCP, 0.0)
    kept = h.endpoint.send_request(_message(), other, 0.0)
    h.recv(raw_request("MESSAGE", via="SIP/2.0/TCP 192.168.1.10:40000"), DEV_TCP)
    server_event = _request_event(h)
    h.endpoint.reply(server_event, 100, now=0.0)  # NIST Proceeding
    h.out()
    assert h.endpoint.transaction_count == 3
    h.endpoint.connection_lost(DEV_TCP, 1.0)
    events = h.events()
    assert events[0] == ConnectionClosed(DEV_TCP)
    failed = _only(events, TransactionFailed)
    assert [(e.tx, e.reason, e.peer) for e in failed] == [(lost, "transport", DEV_TCP)]
    assert h.endpoint.transaction_count == 1 and kept in h.endpoint._client


def test_connection_lost_after_the_final_is_no_failure() -> None:
    h = Harness.make()
    key = h.endpoint.send_request(_invite(), DEV_TCP, 0.0)
    invite = parse_request(h.out()[0].data)
    h.recv(answer(invite, 486), DEV_TCP)  # ICT Completed (timer D is zero but not yet run)
    assert [(type(e), e.tx) for e in h.events()] == [(ResponseReceived, key)]
    h.endpoint.connection_lost(DEV_TCP, h.now)
    assert h.events() == [ConnectionClosed(DEV_TCP)]  # the application already has its answer
    assert h.endpoint.transaction_count == 0


def test_transport_error_on_udp_fails_without_connection_event() -> None:
    h = Harness.make()
    key = h.endpoint.send_request(_message(), DEV_UDP, 0.0)
    h.endpoint.transport_error(DEV_UDP, 0.1)  # ICMP unreachable, say
    events = h.events()
    assert [(type(e), e.tx, e.reason) for e in events] == [(TransactionFailed, key, "transport")]
    assert h.endpoint.transaction_count == 0


# --------------------------------------------------------------------------- timers
def test_deadlines_are_always_handled_and_transactions_leave_the_tables() -> None:
    h = Harness.make()
    ep = h.endpoint
    # a mix: UDP and TCP, client and server, INVITE and not, success and failure
    ep.send_request(_message(), DEV_UDP, 0.0)
    ep.send_request(_message(), DEV_TCP, 0.0)
    ep.send_request(_invite(), DEV_UDP, 0.0)
    h.recv(raw_request("MESSAGE"))
    h.recv(raw_request("INVITE", branch="z9hG4bK-inv", call_id="c2", contact="<sip:d@192.168.1.10>"))
    h.recv(
        raw_request("INVITE", via="SIP/2.0/TCP 192.168.1.10:40000", branch="z9hG4bK-tcp", call_id="c3"),
        DEV_TCP,
    )
    for event in h.events():
        status = 200 if event.request.method == "MESSAGE" else 486
        ep.reply(event, status, now=0.0)
    assert ep.transaction_count == 6
    h.advance(1000.0)
    assert ep.transaction_count == 0 and ep.next_deadline() is None
    assert h.fired == sorted(h.fired)


def test_zero_wait_timers_on_tcp_are_due_at_once() -> None:
    h = Harness.make()
    h.recv(raw_request("MESSAGE", via="SIP/2.0/TCP 192.168.1.10:40000"), DEV_TCP)
    h.now = 5.0
    h.endpoint.reply(_request_event(h), 200, now=h.now)
    assert h.endpoint.next_deadline() == 5.0  # timer J is zero on TCP
    h.endpoint.handle_timer(5.0)
    assert h.endpoint.transaction_count == 0 and h.endpoint.next_deadline() is None


def test_handle_timer_early_does_nothing() -> None:
    h = Harness.make()
    h.endpoint.send_request(_message(), DEV_UDP, 0.0)
    h.out()
    h.endpoint.handle_timer(0.2)
    assert h.out() == [] and h.endpoint.next_deadline() == 0.25
