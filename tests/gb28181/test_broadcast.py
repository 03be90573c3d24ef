"""Voice broadcast without sockets (gb28181/broadcast.py): the transition table, matching a device's INVITE to the
broadcast waiting for it (fake clock), the target channel, and the SDP read from the wild talk INVITEs."""

from __future__ import annotations

from pathlib import Path

import pytest

from gb28181 import sdp
from gb28181.broadcast import (
    ACCEPTED,
    ACK,
    ANSWERED,
    BYE_DONE,
    ENDED,
    ENDING,
    EOF,
    INVITE,
    MEDIA_FAILED,
    NO_ACK,
    NO_INVITE,
    NOTIFYING,
    REFUSED,
    REMOTE_BYE,
    RESULT_OK,
    SENDING,
    STOP,
    Answer,
    AudioPlan,
    Broadcast,
    BroadcastError,
    BroadcastTable,
    Release,
    SendBye,
    StartMedia,
    StopMedia,
    build_answer,
    choose_target,
    read_offer,
)

WILD = Path(__file__).resolve().parents[2] / "fixtures" / "sdp" / "wild"
DEV, OUT, US = "34020000001320000001", "34020000001370000001", "34020000002000000001"


def _bc(device: str = DEV, target: str = OUT, now: float = 100.0, ident: str = "b1") -> Broadcast:
    return Broadcast(id=ident, device_id=device, target_id=target, source_id=US, started=1.7e9, wait_until=now + 10,
                     invite_wait=10, samples=16000)  # fmt: skip


def test_the_usual_life_result_invite_ack_end_of_file_bye() -> None:
    bc = _bc()
    assert bc.handle(RESULT_OK) == [] and bc.state == ACCEPTED
    assert bc.handle(INVITE) == [Answer()] and bc.state == ANSWERED
    assert bc.handle(RESULT_OK) == []  # a late or repeated Response is ignored
    assert bc.handle(ACK) == [StartMedia()] and bc.state == SENDING
    assert bc.handle(EOF) == [SendBye()] and bc.state == ENDING
    assert bc.handle(BYE_DONE) == [Release("end of file", False)] and bc.over and not bc.error


def test_the_invite_may_come_before_the_response() -> None:
    bc = _bc()
    assert bc.handle(INVITE) == [Answer()] and bc.state == ANSWERED
    assert bc.handle(REFUSED, "late") == [] and bc.state == ANSWERED  # the audio is flowing: a late answer is moot


@pytest.mark.parametrize(("events", "reason"), [
    ([(REFUSED, "the device refused the broadcast: device answered Result ERROR: busy")],
     "the device refused the broadcast: device answered Result ERROR: busy"),
    ([(NO_INVITE, "")], "the device sent no INVITE for the audio within 10 s"),
    ([(RESULT_OK, ""), (NO_INVITE, "")], "the device said OK but sent no INVITE within 10 s"),
])  # fmt: skip
def test_refusals_and_silence_end_it_as_errors(events: list[tuple[str, str]], reason: str) -> None:
    bc = _bc()
    actions: list[object] = []
    for event, detail in events:
        actions = bc.handle(event, detail)
    assert actions == [Release(reason, True)] and bc.over and bc.error


def test_stop_bye_and_failures_while_sending() -> None:
    bc = _bc()
    bc.handle(INVITE)
    bc.handle(ACK)
    assert bc.handle(REMOTE_BYE) == [StopMedia(), Release("the device ended the broadcast (BYE)", False)]
    stopped = _bc()
    stopped.handle(INVITE)
    stopped.handle(ACK)
    assert stopped.handle(STOP) == [StopMedia(), SendBye()] and stopped.state == ENDING
    assert stopped.handle(STOP) == []  # a second stop
    assert stopped.handle(REMOTE_BYE) == [Release("stopped", False)]  # BYEs crossed
    broken = _bc()
    broken.handle(INVITE)
    broken.handle(ACK)
    assert broken.handle(MEDIA_FAILED, "connection refused") == [StopMedia(), SendBye()]
    assert broken.handle(BYE_DONE) == [Release("connection refused", True)]
    never = _bc()
    never.handle(INVITE)
    assert never.handle(NO_ACK) == [SendBye()] and never.error
    waiting = _bc()
    assert waiting.handle(STOP) == [Release("stopped before the device's INVITE", False)] and waiting.over


def test_the_table_matches_the_device_and_the_source_while_waiting() -> None:
    table = BroadcastTable()
    bc = table.add(_bc())
    other = table.add(_bc(device="34020000001320000002", target="34020000001320000002", ident="b2"))
    assert table.match_invite(DEV, (US, US)) is bc
    assert table.match_invite(OUT, ("", US)) is bc  # From = the 137 channel, Request-URI = the SourceID
    assert table.match_invite("34020000001320000002", (US,)) is other
    assert table.match_invite(DEV, ("34020000002000000009",)) is None  # another SourceID
    assert table.match_invite("34020000001320000009", (US,)) is None  # another device
    bc.handle(INVITE)
    assert table.match_invite(DEV, (US,)) is None  # answered already: a second INVITE is not this broadcast's
    with pytest.raises(BroadcastError) as busy:
        table.add(_bc(ident="b3"))
    assert busy.value.kind == "busy" and "b1" in busy.value.reason


def test_deadlines_with_a_fake_clock() -> None:
    table = BroadcastTable()
    first = table.add(_bc(now=100.0))
    table.add(_bc(device="34020000001320000002", now=103.0, ident="b2"))
    assert table.next_deadline() == 110.0
    assert table.due(109.9) == [] and table.due(110.0) == [first]
    first.handle(INVITE)
    assert table.due(200.0) == [table.items["b2"]] and table.next_deadline() == 113.0


def test_the_target_is_a_voice_output() -> None:
    outs = [OUT, "34020000001370000002"]
    assert choose_target(DEV, None, [DEV, OUT, "34020000001310000001"]) == OUT
    assert choose_target(DEV, None, [DEV, *outs]) == DEV  # several: the device means all of them
    assert choose_target(DEV, outs[1], outs) == outs[1] and choose_target(DEV, DEV, outs) == DEV
    with pytest.raises(BroadcastError, match="lists no voice output"):
        choose_target(DEV, None, ["34020000001310000001"])
    with pytest.raises(BroadcastError, match="is not a voice output"):
        choose_target(DEV, "34020000001310000001", outs)


def test_the_dahua_talk_invite_udp_pcma() -> None:
    offer = sdp.parse((WILD / "dahua" / "ipc-talk-invite-from-device.sdp").read_bytes())
    plan = read_offer(offer, "10.0.0.9")
    assert plan == AudioPlan(8, sdp.UDP, "192.168.0.100", 9776, 22440333)
    answer = build_answer(offer, plan, US, "192.168.0.110", 40000, "0022440333")
    back = sdp.parse(answer.to_bytes())
    m = back.media[0]
    assert (m.kind, m.port, m.proto, m.formats, m.direction) == ("audio", 40000, "RTP/AVP", ("8",), "sendonly")
    assert m.rtpmap == {8: "PCMA/8000"} and back.ssrc == "0022440333" and back.format_line == "v/////a/1/8/1"
    assert back.origin_user == US and back.media_address == "192.168.0.110" and m.setup is None


def test_the_hikvision_talk_invite_tcp_device_connects() -> None:
    offer = sdp.parse((WILD / "hikvision" / "ipc-talk-invite-tcp-from-device.sdp").read_bytes())
    plan = read_offer(offer, "10.0.0.9")
    assert plan == AudioPlan(8, sdp.TCP_PASSIVE, "192.168.0.65", 15066, 200000017)  # its setup:active: we listen
    m = sdp.parse(build_answer(offer, plan, US, "192.168.0.110", 40002, "0200000017").to_bytes()).media[0]
    assert m.proto == "TCP/RTP/AVP" and m.setup == "passive" and m.attr("connection") == "new"
    with pytest.raises(BroadcastError) as wrong:
        read_offer(offer, "10.0.0.9", asked=sdp.UDP)
    assert wrong.value.status == 488 and "tcp-passive" in wrong.value.reason


def _offer(media: str, extra: str = "") -> sdp.SessionDescription:
    return sdp.parse(f"v=0\r\no={DEV} 0 0 IN IP4 ***\r\ns=Play\r\nc=IN IP4 ***\r\nt=0 0\r\n{media}\r\n{extra}"
                     "y=0200000001\r\n")  # fmt: skip


def test_ps_only_masked_address_and_what_is_refused() -> None:
    plan = read_offer(_offer("m=audio 5000 TCP/RTP/AVP 96", "a=setup:passive\r\na=rtpmap:96 PS/90000\r\n"), "10.0.0.9")
    assert plan == AudioPlan(96, sdp.TCP_ACTIVE, "10.0.0.9", 5000, 200000001)  # masked c=: the signalling address
    unspecified = _offer("m=audio 5000 RTP/AVP 8").media[0]
    assert read_offer(sdp.SessionDescription(connection="0.0.0.0", media=(unspecified,)), "10.0.0.9").address == \
        "10.0.0.9"
    with pytest.raises(BroadcastError) as no_codec:
        read_offer(_offer("m=audio 5000 RTP/AVP 18", "a=rtpmap:18 G729/8000\r\n"), "10.0.0.9")
    assert no_codec.value.status == 415
    with pytest.raises(BroadcastError) as no_audio:
        read_offer(_offer("m=video 5000 RTP/AVP 96"), "10.0.0.9")
    assert no_audio.value.status == 488


def test_the_session_row() -> None:
    bc = _bc()
    row = bc.json()
    assert row["kind"] == "broadcast" and row["channel"] == OUT and row["state"] == NOTIFYING and row["seconds"] == 2.0
    bc.handle(INVITE)
    bc.payload, bc.packets, bc.bytes = 8, 50, 8000
    assert bc.json()["sent_seconds"] == 1.0 and bc.state == ANSWERED
    bc.handle(REMOTE_BYE)
    assert bc.json()["state"] == ENDED
