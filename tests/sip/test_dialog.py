"""Dialogs (RFC 3261 §12, §13, §15; RFC 6665 §4.1.2.4): the Dialog model and the endpoint's dialog layer."""

from __future__ import annotations

import pytest

from sip.address import parse_address
from sip.dialog import Dialog, DialogTable
from sip.endpoint import (
    AckReceived,
    AckTimeout,
    Endpoint,
    EndpointConfig,
    MessageRejected,
    Peer,
    RequestReceived,
    ResponseReceived,
    TransactionFailed,
)
from sip.errors import LocalProtocolError
from sip.headers import Headers
from sip.message import Request, Response
from sip.parser import parse_message
from tests.sip.fakes import DEV_TCP, DEV_UDP, DEVICE, FAST, LOCAL, PLATFORM, Harness, answer, parse_request, raw_request

DEV_CONTACT = f"<sip:{DEVICE}@192.168.1.10:5060>"
OUR_CONTACT = f"<sip:{PLATFORM}@10.0.0.1:5060>"


def _outgoing(method: str, *, call_id: str = "out-1", cseq: int = 1, extra: tuple = ()) -> Request:
    headers = Headers(
        [
            ("From", f"<sip:{PLATFORM}@3402000000>;tag=ourtag"),
            ("To", f"<sip:{DEVICE}@3402000000>"),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", OUR_CONTACT),
            *extra,
        ]
    )
    return Request(method, f"sip:{DEVICE}@192.168.1.10:5060", headers)


# --------------------------------------------------------------------------- the Dialog model
def _uac_dialog(record_route: list[str]) -> Dialog:
    request = _outgoing("INVITE", cseq=5)
    response = parse_message(
        answer(
            raw_request("INVITE"),
            200,
            headers=[("Contact", "<sip:dev@192.168.1.10:5062;transport=udp>")]
            + [("Record-Route", r) for r in record_route],
        )
    )
    assert isinstance(response, Response)
    return Dialog.from_uac(request, response)


def test_uac_dialog_from_2xx() -> None:
    dialog = _uac_dialog(["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"])
    assert dialog.id == ("out-1", "ourtag", "uastag")
    assert str(dialog.remote_target) == "sip:dev@192.168.1.10:5062;transport=udp"
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p1.example.com;lr", "sip:p2.example.com;lr"]  # reversed
    assert dialog.local_seq == 5 and dialog.remote_seq is None
    assert dialog.local_uri.tag is None and dialog.remote_uri.tag is None


def test_uas_dialog_from_request_and_response() -> None:
    request = parse_request(
        raw_request(
            "INVITE",
            cseq=9,
            headers=(("Record-Route", "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>"),),
        )
    )
    response = parse_message(answer(request, 200, to_tag="mytag"))
    assert isinstance(response, Response)
    dialog = Dialog.from_uas(request, response)
    assert dialog.id == ("call-1@192.168.1.10", "mytag", "devtag")
    assert str(dialog.remote_target) == f"sip:{DEVICE}@192.168.1.10:5060"
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p1.example.com;lr", "sip:p2.example.com;lr"]  # in order
    assert dialog.remote_seq == 9
    with pytest.raises(LocalProtocolError):
        Dialog.from_uas(request, parse_message(answer(request, 200, to_tag=None)))  # type: ignore[arg-type]


def test_notify_dialog_takes_the_route_set_in_order() -> None:
    subscribe = _outgoing("SUBSCRIBE")
    notify = parse_request(
        raw_request(
            "NOTIFY",
            call_id="out-1",
            to_tag="ourtag",
            from_tag="notifier",
            headers=(("Record-Route", "<sip:near.example.com;lr>"), ("Record-Route", "<sip:far.example.com;lr>")),
        )
    )
    dialog = Dialog.from_uac(subscribe, notify)
    assert dialog.id == ("out-1", "ourtag", "notifier")
    assert [r.uri.host for r in dialog.route_set] == ["near.example.com", "far.example.com"]  # type: ignore[union-attr]
    assert str(dialog.remote_target) == f"sip:{DEVICE}@192.168.1.10:5060"


def test_build_request_loose_routing() -> None:
    dialog = _uac_dialog(["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"])
    bye = dialog.build_request("BYE")
    assert bye.uri == "sip:dev@192.168.1.10:5062;transport=udp"  # the remote target
    assert bye.headers.get_all("route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert str(bye.cseq) == "6 BYE"
    assert bye.from_.tag == "ourtag" and bye.to.tag == "uastag" and bye.call_id == "out-1"
    info = dialog.build_request("INFO", [("Content-Type", "Application/MANSRTSP")], b"PLAY")
    assert str(info.cseq) == "7 INFO" and info.body == b"PLAY"
    ack = dialog.build_request("ACK", cseq=5)
    assert str(ack.cseq) == "5 ACK" and dialog.local_seq == 7  # ACK reuses the INVITE's number


def test_build_request_strict_routing() -> None:
    dialog = _uac_dialog(["<sip:p2.example.com;lr>", "<sip:p1.example.com;method=INVITE?x=y>"])
    request = dialog.build_request("BYE")
    assert request.uri == "sip:p1.example.com"  # §12.2.1.1: params a Request-URI may not carry are gone
    assert request.headers.get_all("route") == [
        "<sip:p2.example.com;lr>",
        "<sip:dev@192.168.1.10:5062;transport=udp>",  # the remote target last
    ]


def test_build_request_without_routes() -> None:
    request = _uac_dialog([]).build_request("BYE")
    assert "route" not in request.headers


def test_remote_cseq_checks() -> None:
    dialog = _uac_dialog([])

    def req(method: str, cseq: int) -> Request:
        return parse_request(raw_request(method, cseq=cseq, to_tag="ourtag"))

    assert dialog.check_remote_seq(req("INFO", 10)) and dialog.remote_seq == 10  # empty: set
    assert dialog.check_remote_seq(req("INFO", 10))  # equal is not lower
    assert not dialog.check_remote_seq(req("INFO", 9)) and dialog.remote_seq == 10
    assert dialog.check_remote_seq(req("ACK", 1)) and dialog.check_remote_seq(req("CANCEL", 1))
    assert dialog.check_remote_seq(req("BYE", 11)) and dialog.remote_seq == 11


def test_refresh_target() -> None:
    dialog = _uac_dialog([])
    dialog.refresh_target(parse_request(raw_request("INVITE", contact="<sip:dev@192.168.1.99:5070>")))
    assert str(dialog.remote_target) == "sip:dev@192.168.1.99:5070"
    dialog.refresh_target(parse_request(raw_request("INVITE", contact="*")))
    dialog.refresh_target(parse_request(raw_request("INVITE", contact=None)))
    assert str(dialog.remote_target) == "sip:dev@192.168.1.99:5070"


def test_dialog_table() -> None:
    table = DialogTable(max_dialogs=1)
    first = _uac_dialog([])
    assert table.add(first) is first
    again = _uac_dialog([])
    assert table.add(again) is first  # same id: the existing one
    other = _uac_dialog([])
    other.call_id = "other"
    with pytest.raises(LocalProtocolError):
        table.add(other)
    assert len(table) == 1 and list(table) == [first]
    assert table.remove(first.id) is first and table.remove(first.id) is None
    table.add_pending(_outgoing("SUBSCRIBE"))
    assert table.pending("out-1", "ourtag") is not None
    table.drop_pending("out-1", "ourtag")
    assert table.pending("out-1", "ourtag") is None


def test_untagged_uris_keep_other_params() -> None:
    request = _outgoing("INVITE")
    request = request.replace(headers=request.headers.replace("From", f"<sip:{PLATFORM}@x>;tag=t;foo=bar"))
    response = parse_message(answer(raw_request("INVITE"), 200))
    dialog = Dialog.from_uac(request, response)  # type: ignore[arg-type]
    assert dialog.local_uri == parse_address(f"<sip:{PLATFORM}@x>;foo=bar")


# --------------------------------------------------------------------------- UAC dialogs through the endpoint
def _uac_invite(h: Harness, peer: Peer = DEV_UDP, record_route: tuple[str, ...] = ()) -> tuple[Request, bytes]:
    key = h.endpoint.send_request(_outgoing("INVITE", cseq=3), peer, h.now)
    invite = parse_request(h.out()[0].data)
    assert key == (invite.top_via.branch, "INVITE")
    ok = answer(
        invite, 200, headers=[("Contact", "<sip:dev@192.168.1.10:5062>"), *(("Record-Route", r) for r in record_route)]
    )
    return invite, ok


def test_uac_2xx_creates_the_dialog_and_is_acked() -> None:
    h = Harness.make()
    invite, ok = _uac_invite(h, record_route=("<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"))
    h.now = 0.1
    h.recv(ok)
    (event,) = h.events()
    assert isinstance(event, ResponseReceived) and event.dialog is not None
    dialog = event.dialog
    assert dialog.id == ("out-1", "ourtag", "uastag") and h.endpoint.dialogs.get(dialog.id) is dialog
    (out,) = h.out()
    ack = parse_request(out.data)
    assert out.peer == DEV_UDP
    assert ack.method == "ACK" and str(ack.cseq) == "3 ACK" and ack.uri == "sip:dev@192.168.1.10:5062"
    assert ack.top_via.branch != invite.top_via.branch  # §13.2.2.4: the ACK for a 2xx is a new transaction
    assert ack.headers.get_all("route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert ack.to.tag == "uastag"
    # a retransmitted 2xx while the ICT is Accepted: the same ACK again, nothing for the application
    h.recv(ok)
    assert h.out() == [out] and h.events() == []
    h.advance(100.0)  # timer M ends the ICT...
    assert h.endpoint.transaction_count == 0
    h.recv(ok)  # ...and the dialog still re-ACKs
    assert [t.data for t in h.out()] == [out.data]
    assert h.events() == []


def test_auto_ack_off_leaves_the_ack_to_the_application() -> None:
    h = Harness(Endpoint(EndpointConfig(timers=FAST, default_local=LOCAL, auto_ack=False)))
    _, ok = _uac_invite(h)
    h.recv(ok)
    assert h.out() == []
    (event,) = h.events()
    assert event.dialog is not None
    h.endpoint.send_ack(event.dialog, 3, h.now, body=b"v=0")
    ack = parse_request(h.out()[0].data)
    assert (ack.method, ack.body, ack.cseq.seq) == ("ACK", b"v=0", 3)
    h.recv(ok)
    assert parse_request(h.out()[0].data).body == b"v=0"  # re-sent from the cache


def test_uac_in_dialog_requests_increment_cseq_and_bye_ends_the_dialog() -> None:
    h = Harness.make()
    _, ok = _uac_invite(h)
    h.recv(ok)
    dialog = h.events()[0].dialog
    h.out()
    h.endpoint.send_in_dialog(dialog, "INFO", h.now, body=b"PLAY")
    h.endpoint.send_in_dialog(dialog, "BYE", h.now)
    info, bye = (parse_request(t.data) for t in h.out())
    assert (str(info.cseq), str(bye.cseq)) == ("4 INFO", "5 BYE")
    assert bye.uri == "sip:dev@192.168.1.10:5062" and bye.to.tag == "uastag"
    h.recv(answer(info, 200))
    (event,) = h.events()
    assert event.dialog is dialog  # responses to in-dialog requests carry their dialog
    h.recv(answer(bye, 200))
    (event,) = h.events()
    assert event.dialog is dialog and len(h.endpoint.dialogs) == 0
    h.recv(ok)  # the ICT is still Accepted, but the dialog is gone: absorbed, not brought back
    assert h.out() == [] and h.events() == [] and len(h.endpoint.dialogs) == 0
    h.advance(100.0)
    h.recv(ok)  # and after timer M it is a stray response
    assert h.out() == []
    assert [type(e) for e in h.events()] == [MessageRejected]


@pytest.mark.parametrize("outcome", [481, 408, 500, "timeout"])
def test_bye_ends_the_dialog_whatever_the_answer(outcome: int | str) -> None:
    h = Harness.make()
    _, ok = _uac_invite(h)
    h.recv(ok)
    dialog = h.events()[0].dialog
    h.out()
    h.endpoint.send_in_dialog(dialog, "BYE", h.now)
    bye = parse_request(h.out()[0].data)
    if outcome == "timeout":
        h.advance(h.now + 64 * FAST.t1)
        assert [e.reason for e in h.events() if isinstance(e, TransactionFailed)] == ["timeout"]
    else:
        h.recv(answer(bye, outcome))  # type: ignore[arg-type]
    assert len(h.endpoint.dialogs) == 0  # §15.1.1


def test_481_to_an_in_dialog_request_ends_the_dialog() -> None:
    h = Harness.make()
    _, ok = _uac_invite(h)
    h.recv(ok)
    dialog = h.events()[0].dialog
    h.out()
    h.endpoint.send_in_dialog(dialog, "INFO", h.now)
    info = parse_request(h.out()[0].data)
    h.recv(answer(info, 481))
    assert len(h.endpoint.dialogs) == 0


def test_reinvite_2xx_refreshes_the_remote_target() -> None:
    h = Harness.make()
    _, ok = _uac_invite(h)
    h.recv(ok)
    dialog = h.events()[0].dialog
    h.out()
    h.endpoint.send_in_dialog(dialog, "INVITE", h.now, headers=[("Contact", OUR_CONTACT)])
    reinvite = parse_request(h.out()[0].data)
    h.recv(answer(reinvite, 200, headers=[("Contact", "<sip:dev@192.168.1.77:5062>")]))
    ack = parse_request(h.out()[0].data)
    assert str(dialog.remote_target) == "sip:dev@192.168.1.77:5062"
    assert ack.uri == "sip:dev@192.168.1.77:5062" and str(ack.cseq) == "4 ACK"


def test_2xx_with_a_bad_contact_is_dropped() -> None:
    h = Harness.make()
    invite, _ = _uac_invite(h)
    h.recv(answer(invite, 200, headers=[("Contact", "<sip:broken")]))
    assert [(type(e), e.status) for e in h.events()] == [(MessageRejected, None)]
    assert h.out() == [] and len(h.endpoint.dialogs) == 0
    assert h.endpoint.transaction_count == 1  # still Calling: the next (good) 2xx is taken
    h.recv(answer(invite, 200, headers=[("Contact", "<sip:dev@192.168.1.10:5062>")]))
    (event,) = h.events()
    assert isinstance(event, ResponseReceived) and event.dialog is not None
    assert parse_request(h.out()[0].data).method == "ACK"


# --------------------------------------------------------------------------- UAS dialogs through the endpoint
def _uas_invite(h: Harness, peer: Peer = DEV_UDP) -> RequestReceived:
    via = "SIP/2.0/TCP 192.168.1.10:40000" if peer.reliable else "SIP/2.0/UDP 192.168.1.10:5060"
    h.recv(raw_request("INVITE", via=via, cseq=20), peer)
    h.out()  # the 100
    (event,) = h.events()
    return event


def test_uas_2xx_creates_the_dialog_and_is_retransmitted_until_the_ack() -> None:
    h = Harness.make()  # T1 0.25, T2 1
    event = _uas_invite(h)
    ok = h.endpoint.reply(event, 200, now=0.0, headers=[("Contact", OUR_CONTACT)])
    first = h.out()
    assert len(first) == 1
    dialog = h.endpoint.dialogs.get(("call-1@192.168.1.10", ok.to.tag, "devtag"))
    assert dialog is not None and dialog.remote_seq == 20 and dialog.peer == DEV_UDP
    sent = h.advance(2.9)
    assert [t for t, _ in sent] == [0.25, 0.75, 1.75, 2.75]  # T1, 2T1, 4T1 then capped at T2
    assert all(tr.data == first[0].data for _, tr in sent)
    h.recv(raw_request("ACK", branch="z9hG4bK-ack", to_tag=ok.to.tag, cseq=20))
    (ack_event,) = h.events()
    assert isinstance(ack_event, AckReceived) and ack_event.dialog is dialog
    assert h.advance(100.0) == []  # no more 2xx
    h.recv(raw_request("ACK", branch="z9hG4bK-ack", to_tag=ok.to.tag, cseq=20))  # retransmitted ACK
    assert h.events() == []
    assert h.endpoint.transaction_count == 0 and len(h.endpoint.dialogs) == 1


def test_uas_2xx_is_retransmitted_over_tcp_too() -> None:
    """§13.3.1.4: end to end, so even on a reliable transport."""
    h = Harness.make()
    event = _uas_invite(h, DEV_TCP)
    h.endpoint.reply(event, 200, now=0.0, headers=[("Contact", OUR_CONTACT)])
    h.out()
    sent = h.advance(1.0)
    assert [(t, tr.peer) for t, tr in sent] == [(0.25, DEV_TCP), (0.75, DEV_TCP)]


def test_ack_timeout_after_64_t1() -> None:
    h = Harness.make(timers=FAST)
    event = _uas_invite(h)
    ok = h.endpoint.reply(event, 200, now=0.0, headers=[("Contact", OUR_CONTACT)])
    h.out()
    sent = h.advance(100.0)
    assert [t for t, _ in sent] == [0.25, 0.75, 1.75, *[1.75 + k for k in range(1, 15)]]  # last at 15.75
    (timeout,) = h.events()
    assert isinstance(timeout, AckTimeout) and timeout.dialog.id[1] == ok.to.tag
    assert 16.0 in h.fired
    assert h.endpoint.next_deadline() is None and h.endpoint.transaction_count == 0


def test_bye_received_ends_the_dialog_and_its_2xx_retransmissions() -> None:
    h = Harness.make()
    event = _uas_invite(h)
    ok = h.endpoint.reply(event, 200, now=0.0, headers=[("Contact", OUR_CONTACT)])
    h.out()
    h.recv(raw_request("BYE", branch="z9hG4bK-bye", to_tag=ok.to.tag, cseq=21))  # the ACK was lost
    (bye,) = h.events()
    assert isinstance(bye, RequestReceived) and bye.dialog is not None
    h.endpoint.reply(bye, 200, now=h.now)
    assert len(h.endpoint.dialogs) == 0
    h.out()
    assert h.advance(100.0) == [] and h.events() == []  # no 2xx retransmission, no AckTimeout
    h.recv(raw_request("INFO", branch="z9hG4bK-late", to_tag=ok.to.tag, cseq=22))
    assert parse_message(h.out()[0].data).status == 481  # type: ignore[union-attr]


def test_in_dialog_cseq_out_of_order_gets_500() -> None:
    h = Harness.make()
    event = _uas_invite(h)
    ok = h.endpoint.reply(event, 200, now=0.0, headers=[("Contact", OUR_CONTACT)])
    h.out()
    h.recv(raw_request("INFO", branch="z9hG4bK-i1", to_tag=ok.to.tag, cseq=25))
    assert isinstance(h.events()[0], RequestReceived)
    h.recv(raw_request("INFO", branch="z9hG4bK-i2", to_tag=ok.to.tag, cseq=24))
    response = parse_message(h.out()[0].data)
    assert isinstance(response, Response) and (response.status, response.reason) == (500, "CSeq Out Of Order")
    assert h.events() == []


def test_in_dialog_invite_refreshes_the_target() -> None:
    h = Harness.make()
    event = _uas_invite(h)
    ok = h.endpoint.reply(event, 200, now=0.0, headers=[("Contact", OUR_CONTACT)])
    h.recv(raw_request("INVITE", branch="z9hG4bK-re", to_tag=ok.to.tag, cseq=30, contact="<sip:dev@192.168.1.50:5090>"))
    (reinvite,) = h.events()
    assert str(reinvite.dialog.remote_target) == "sip:dev@192.168.1.50:5090"


def test_stray_ack_is_absorbed() -> None:
    h = Harness.make()
    h.recv(raw_request("ACK", branch="z9hG4bK-stray", to_tag="nobody"))
    assert h.events() == [] and h.out() == []
    assert h.endpoint.stats["dropped"] == 1


# --------------------------------------------------------------------------- unknown dialogs
def test_unknown_in_dialog_request_gets_481() -> None:
    h = Harness.make()
    h.recv(raw_request("MESSAGE", to_tag="gone"))
    response = parse_message(h.out()[0].data)
    assert response.status == 481 and response.to.tag == "gone"  # type: ignore[union-attr]
    assert h.events() == []


def test_unknown_dialog_hook_claims_or_declines() -> None:
    offered: list[Request] = []

    def hook(request: Request) -> bool:
        offered.append(request)
        return request.call_id == "claimed"

    h = Harness.make(on_unknown_dialog=hook)
    h.recv(raw_request("MESSAGE", to_tag="x", call_id="claimed", body=b"<MediaStatus/>"))
    (event,) = h.events()
    assert isinstance(event, RequestReceived) and event.dialog is None and event.tx is not None
    assert h.out() == []  # the application answers
    h.endpoint.reply(event, 200, now=h.now)
    assert parse_message(h.out()[0].data).status == 200  # type: ignore[union-attr]
    h.recv(raw_request("MESSAGE", to_tag="x", call_id="declined", branch="z9hG4bK-2"))
    assert parse_message(h.out()[0].data).status == 481  # type: ignore[union-attr]
    assert h.events() == []
    h.recv(raw_request("ACK", to_tag="x", call_id="claimed", branch="z9hG4bK-3"))  # ACKs are offered too
    (ack,) = h.events()
    assert isinstance(ack, AckReceived) and ack.dialog is None
    assert [r.call_id for r in offered] == ["claimed", "declined", "claimed"]


# --------------------------------------------------------------------------- SUBSCRIBE / NOTIFY (RFC 6665)
def _notify(to_tag: str = "ourtag", cseq: int = 1, branch: str = "z9hG4bK-n1") -> bytes:
    return raw_request(
        "NOTIFY",
        call_id="sub-1",
        from_tag="notifier",
        to_tag=to_tag,
        cseq=cseq,
        branch=branch,
        contact="<sip:dev@192.168.1.10:5066>",
        headers=(("Event", "Catalog"), ("Subscription-State", "active")),
    )


def test_notify_before_the_subscribe_2xx_creates_the_dialog() -> None:
    h = Harness.make()
    key = h.endpoint.send_request(_outgoing("SUBSCRIBE", call_id="sub-1", extra=(("Event", "Catalog"),)), DEV_UDP, 0)
    subscribe = parse_request(h.out()[0].data)
    h.recv(_notify())
    (event,) = h.events()
    assert isinstance(event, RequestReceived) and event.dialog is not None
    dialog = event.dialog
    assert dialog.id == ("sub-1", "ourtag", "notifier") and dialog.remote_seq == 1
    assert str(dialog.remote_target) == "sip:dev@192.168.1.10:5066" and dialog.method == "SUBSCRIBE"
    h.endpoint.reply(event, 200, now=h.now)
    h.out()
    h.recv(answer(subscribe, 200, to_tag="notifier", headers=[("Contact", "<sip:dev@192.168.1.10:5066>")]))
    (response,) = h.events()
    assert isinstance(response, ResponseReceived) and response.tx == key and response.dialog is dialog
    assert len(h.endpoint.dialogs) == 1
    h.recv(_notify(cseq=2, branch="z9hG4bK-n2"))
    assert h.events()[0].dialog is dialog
    h.endpoint.send_in_dialog(dialog, "SUBSCRIBE", h.now, headers=[("Expires", "0")])
    assert str(parse_request(h.out()[-1].data).cseq) == "2 SUBSCRIBE"


def test_notify_for_no_subscription_gets_481() -> None:
    h = Harness.make()
    h.recv(_notify(to_tag="unknown"))
    assert parse_message(h.out()[0].data).status == 481  # type: ignore[union-attr]
    assert len(h.endpoint.dialogs) == 0


def test_pending_subscribe_is_forgotten_when_it_fails() -> None:
    h = Harness.make()
    h.endpoint.send_request(_outgoing("SUBSCRIBE", call_id="sub-1"), DEV_UDP, 0.0)
    h.advance(100.0)  # timer F: no answer at all
    assert [type(e) for e in h.events()] == [TransactionFailed]
    h.recv(_notify())
    assert parse_message(h.out()[0].data).status == 481  # type: ignore[union-attr]
    assert h.endpoint.dialogs.pending("sub-1", "ourtag") is None


def test_send_in_dialog_needs_a_destination() -> None:
    h = Harness.make()
    with pytest.raises(LocalProtocolError):
        h.endpoint.send_in_dialog(_uac_dialog([]), "BYE", 0.0)


def test_forked_2xx_make_two_dialogs_each_acked() -> None:
    h = Harness.make()
    invite, ok = _uac_invite(h)
    h.recv(ok)
    h.recv(answer(invite, 200, to_tag="fork2", headers=[("Contact", "<sip:other@192.168.1.11>")]))
    events = h.events()
    assert [e.dialog.remote_tag for e in events] == ["uastag", "fork2"]
    acks = [parse_request(t.data) for t in h.out()]
    assert [(a.to.tag, a.uri) for a in acks] == [
        ("uastag", "sip:dev@192.168.1.10:5062"),
        ("fork2", "sip:other@192.168.1.11"),
    ]
    assert len(h.endpoint.dialogs) == 2


def test_auto_ack_off_retransmitted_2xx_reaches_the_application_until_acked() -> None:
    h = Harness(Endpoint(EndpointConfig(timers=FAST, default_local=LOCAL, auto_ack=False)))
    _, ok = _uac_invite(h)
    h.recv(ok)
    h.recv(ok)  # RFC 6026 §8.4: the TU has not ACKed yet, so it is told again
    first, second = h.events()
    assert first.dialog is second.dialog and h.out() == []
