"""The up-leg of a superior's INVITE (gb28181/cascade/invite.py): its transition table on a fake clock, the
superior's SDP read, the SSRC we answer with, our answer, the direct-mode offer and answer, Subject and App. K."""

from __future__ import annotations

import pytest

from gb28181 import sdp
from gb28181.cascade.invite import (
    ACK,
    ACK_TIMEOUT,
    ANSWERED,
    CANCELLED,
    CONFIRMED,
    DOWN_ENDED,
    ENDED,
    FAILED,
    READY,
    STOP,
    TRYING,
    UP_BYE,
    Accept,
    ByeUp,
    Reject,
    ReleaseDown,
    UpCall,
    answer_sdp,
    answer_up,
    choose_ssrc,
    direct_offer,
    read_offer,
    status_for,
)
from gb28181.invite import Subject, parse_subject, replaces

CHANNEL = "34020000001310000001"
SUPERIOR = "44000000002000000001"


def offer_text(kind: str = "Play", *, transport: str = "udp", y: str | None = "0440000001", t: str = "0 0",
               extra: str = "", c: str = "127.0.0.1") -> bytes:  # fmt: skip
    proto = "RTP/AVP" if transport == "udp" else "TCP/RTP/AVP"
    lines = ["v=0", f"o={SUPERIOR} 0 0 IN IP4 {c}", f"s={kind}", f"c=IN IP4 {c}", f"t={t}",
             f"m=video 40000 {proto} 96", "a=recvonly", "a=rtpmap:96 PS/90000"]  # fmt: skip
    if kind != "Play":
        lines.insert(3, f"u={CHANNEL}:0")
    if transport != "udp":
        lines.append(f"a=setup:{transport.split('-')[1]}")
    if extra:
        lines.append(extra)
    if y is not None:
        lines.append(f"y={y}")
    return ("\r\n".join(lines) + "\r\n").encode()


def kinds(actions: list[object]) -> list[type]:
    return [type(a) for a in actions]


# (inputs in order, final state, action types of the last input, final status sent up)
CASES = [
    ([READY], ANSWERED, [Accept], 200),
    ([READY, ACK], CONFIRMED, [], 200),
    ([READY, ACK, UP_BYE], ENDED, [ReleaseDown], 200),
    ([READY, ACK, DOWN_ENDED], ENDED, [ByeUp, ReleaseDown], 200),
    ([READY, ACK_TIMEOUT], ENDED, [ByeUp, ReleaseDown], 200),
    ([READY, UP_BYE], ENDED, [ReleaseDown], 200),
    ([READY, STOP], ENDED, [ByeUp, ReleaseDown], 200),
    ([READY, ACK, STOP], ENDED, [ByeUp, ReleaseDown], 200),
    ([CANCELLED], ENDED, [ReleaseDown], 0),
    ([DOWN_ENDED], ENDED, [Reject, ReleaseDown], 502),
    ([STOP], ENDED, [Reject, ReleaseDown], 503),
    # explicit ignores: a retransmitted ACK, CANCEL after the 200, the device ending after the superior did
    ([READY, ACK, ACK], CONFIRMED, [], 200),
    ([READY, CANCELLED], ANSWERED, [], 200),
    ([READY, ACK, UP_BYE, DOWN_ENDED], ENDED, [], 200),
    ([CANCELLED, READY], ENDED, [], 0),
]


@pytest.mark.parametrize(("inputs", "state", "last", "status"), CASES)
def test_transition_table(inputs: list[str], state: str, last: list[type], status: int) -> None:
    call = UpCall(setup_timeout=10, started=100.0)
    actions: list[object] = []
    for i, event in enumerate(inputs):
        actions = call.handle(event, 100.0 + i)
    assert call.state == state and kinds(actions) == last and call.status == status


@pytest.mark.parametrize(("kind", "status"), [("unknown", 404), ("offline", 480), ("timeout", 408), ("sdp", 488),
                                              ("invalid", 400), ("failed", 502), ("transport", 502)])  # fmt: skip
def test_a_failure_below_is_answered_with_its_status(kind: str, status: int) -> None:
    call = UpCall(setup_timeout=10, started=0.0)
    (reject, release) = call.handle(FAILED, 1.0, status=status_for(kind), reason="why")
    assert reject == Reject(status, "why") and isinstance(release, ReleaseDown) and call.over


def test_setup_timeout_on_a_fake_clock() -> None:
    call = UpCall(setup_timeout=7, started=50.0)
    assert call.next_deadline() == 57.0
    assert call.handle_timer(56.9) == [] and call.state == TRYING
    reject, _ = call.handle_timer(57.0)
    assert isinstance(reject, Reject) and reject.status == 408 and "7 s" in reject.reason
    assert call.next_deadline() is None and call.handle_timer(1000.0) == []


def test_no_deadline_once_answered() -> None:
    call = UpCall(setup_timeout=7, started=0.0)
    call.handle(READY, 1.0)
    assert call.next_deadline() is None and call.handle_timer(100.0) == []


# ------------------------------------------------------------------------------------------ the superior's SDP


@pytest.mark.parametrize(("transport", "theirs", "ours"), [
    ("udp", sdp.UDP, sdp.UDP),
    ("tcp-passive", sdp.TCP_PASSIVE, sdp.TCP_ACTIVE),  # it listens: we connect
    ("tcp-active", sdp.TCP_ACTIVE, sdp.TCP_PASSIVE),  # it connects: we listen
])  # fmt: skip
def test_read_offer_transports_named_from_each_side(transport: str, theirs: str, ours: str) -> None:
    up = read_offer(offer_text(transport=transport))
    assert (up.kind, up.host, up.port, up.ssrc) == ("play", "127.0.0.1", 40000, "0440000001")
    assert up.their_transport == theirs and up.forward_transport == ours


def test_read_offer_playback_and_download() -> None:
    up = read_offer(offer_text("Playback", t="1714492800 1714496400", y="1440000001"))
    assert (up.kind, up.start, up.end, up.speed) == ("playback", 1714492800, 1714496400, 1)
    down = read_offer(offer_text("Download", t="1714492800 1714496400", extra="a=downloadspeed:4"))
    assert (down.kind, down.speed) == ("download", 4)


@pytest.mark.parametrize(("body", "why"), [
    (b"", "no SDP"),
    (offer_text("Talk"), "only Play"),
    (offer_text("Playback", t="0 0"), "start before the end"),
    (offer_text(c="0.0.0.0"), "not an address"),
    (offer_text("Download", t="1 2", extra="a=downloadspeed:64"), "out of range"),
    (b"v=0\r\ns=Play\r\n", "no m= line"),
])  # fmt: skip
def test_unusable_offers_are_sdp_errors(body: bytes, why: str) -> None:
    with pytest.raises(sdp.SdpError, match=why):
        read_offer(body)


def test_a_garbled_y_is_no_ssrc() -> None:
    assert read_offer(offer_text(y="12345")).ssrc is None
    assert read_offer(offer_text(y=None)).ssrc is None


def test_ssrc_echoes_a_free_offered_one_else_allocates() -> None:
    alloc = sdp.SsrcAllocator("3402000000")
    assert choose_ssrc(alloc, "0440000001", history=False) == "0440000001"
    again = choose_ssrc(alloc, "0440000001", history=False)  # taken: one of ours
    assert again != "0440000001" and again.startswith("020000")
    assert choose_ssrc(alloc, None, history=True).startswith("120000")
    alloc.release("0440000001")
    assert choose_ssrc(alloc, "0440000001", history=False) == "0440000001"


@pytest.mark.parametrize(("transport", "setup"), [("udp", None), ("tcp-passive", "active"), ("tcp-active", "passive")])
def test_our_answer(transport: str, setup: str | None) -> None:
    up = read_offer(offer_text(transport=transport))
    answer = sdp.parse(answer_sdp(up, "44000000001310000077", "127.0.0.2", 31000, "0440000001"))
    m = answer.video
    assert m is not None and m.port == 31000 and m.direction == "sendonly" and m.setup == setup
    assert (answer.origin_user, answer.connection, answer.ssrc, answer.session_name) == \
        ("44000000001310000077", "127.0.0.2", "0440000001", "Play")  # fmt: skip


def test_direct_offer_and_answer() -> None:
    up = read_offer(offer_text("Playback", t="1714492800 1714496400", y="1440000001").replace(
        CHANNEL.encode(), b"44000000001310000077"))  # the superior names the shared ID in u=
    down = sdp.parse(direct_offer(up, "34020000002000000001", CHANNEL, "1440000001"))
    assert down.uri == f"{CHANNEL}:0" and down.origin_user == "34020000002000000001"
    assert (down.connection, down.video.port, down.ssrc, down.start) == ("127.0.0.1", 40000, "1440000001",  # type: ignore[union-attr]
                                                                         1714492800)  # fmt: skip
    device = sdp.build_answer(down, CHANNEL, "127.0.0.9", 15060, ssrc="1000000123").to_bytes()
    body, ssrc = answer_up(device, "44000000001310000077", "1440000001")
    parsed = sdp.parse(body)
    assert ssrc == "1000000123" and parsed.ssrc == ssrc and parsed.origin_user == "44000000001310000077"
    no_y = sdp.build_answer(down, CHANNEL, "127.0.0.9", 15060).to_bytes().replace(b"y=1440000001\r\n", b"")
    assert answer_up(no_y, "44000000001310000077", "1440000001")[1] == "1440000001"  # ours filled in
    with pytest.raises(sdp.SdpError):
        answer_up(b"v=0\r\nm=video 0 RTP/AVP 96\r\n", "x", "1440000001")


@pytest.mark.parametrize(("value", "parsed"), [
    (f"{CHANNEL}:0440000001,{SUPERIOR}:0", Subject(CHANNEL, "0440000001", SUPERIOR, "0")),
    (f"{CHANNEL}:0440000001", Subject(CHANNEL, "0440000001", "", "")),
    (f" {CHANNEL} , {SUPERIOR}:1 ", Subject(CHANNEL, "", SUPERIOR, "1")),
    ("", Subject()),
    (None, Subject()),
    ("a,b,c", Subject()),
])  # fmt: skip
def test_parse_subject_defensively(value: str | None, parsed: Subject) -> None:
    assert parse_subject(value) == parsed


def test_app_k_replacement_needs_sender_and_receiver() -> None:
    old = parse_subject(f"{CHANNEL}:0440000001,{SUPERIOR}:0")
    assert replaces(old, parse_subject(f"{CHANNEL}:0440000002,{SUPERIOR}:0"))  # the SSRC is new every time
    assert not replaces(old, parse_subject(f"{CHANNEL}:0440000002,{SUPERIOR}:1"))  # another window
    assert not replaces(old, parse_subject(f"{CHANNEL}:0440000002,45000000002000000001:0"))  # another superior
    assert not replaces(old, parse_subject(f"34020000001310000002:0440000002,{SUPERIOR}:0"))  # another channel
    assert not replaces(old, parse_subject(f"{CHANNEL}:0440000002"))  # no receiver: nothing to match
