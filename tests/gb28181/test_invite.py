"""The media call state machine (gb28181/invite.py) on a fake clock: happy path, INVITE timeout -> CANCEL, a 2xx
crossing the CANCEL, no media after the 200 and after a pause, BYE from either side, MediaStatus 121; MANSRTSP
bodies and the Subject header; the session table's sharing; signed live URLs."""

from __future__ import annotations

import pytest

from gb28181 import invite
from gb28181.invite import (
    ACCEPTED,
    BYE_DONE,
    CANCELLING,
    ENDED,
    ENDING,
    MEDIA_END,
    PROCEEDING,
    PROVISIONAL,
    REJECTED,
    REMOTE_BYE,
    SEND,
    STOP,
    STREAMING,
    WAITING_MEDIA,
    Call,
    ConnectMedia,
    Release,
    RtspError,
    SendBye,
    SendCancel,
    SendInvite,
    mansrtsp,
    read_mansrtsp,
    subject,
)
from gb28181.media_sessions import check_live, sign_live
from gb28181.sessions import DOWNLOAD, PLAY, PLAYBACK, Session, SessionError, SessionTable


def kinds(actions: list) -> list[type]:  # type: ignore[type-arg]
    return [type(a) for a in actions]


def test_happy_path_play_then_operator_stop() -> None:
    call = Call(invite_timeout=10, no_media_timeout=5)
    assert call.next_deadline() is None
    assert kinds(call.handle(SEND, 100.0)) == [SendInvite]
    assert call.next_deadline() == 110.0
    assert call.handle(PROVISIONAL, 100.1) == [] and call.state == PROCEEDING
    assert kinds(call.handle(ACCEPTED, 100.5)) == [ConnectMedia] and call.state == WAITING_MEDIA
    assert call.next_deadline() == 105.5  # no media within 5 s of the 200 OK
    assert call.handle(PROVISIONAL, 100.6) == [] and call.state == WAITING_MEDIA  # a late 1xx: ignored
    call.media_seen(101.0, 100.9)
    assert call.state == STREAMING and call.next_deadline() == pytest.approx(105.9)
    call.media_seen(103.0, 102.9)
    assert call.next_deadline() == pytest.approx(107.9)
    assert call.handle_timer(107.0) == []
    assert kinds(call.handle(STOP, 107.0)) == [SendBye] and call.state == ENDING
    assert call.handle(STOP, 107.1) == []  # a second stop changes nothing
    actions = call.handle(BYE_DONE, 107.2)
    assert actions == [Release("stopped", False)] and call.over


def test_invite_timeout_sends_cancel_and_ends_with_a_clear_error() -> None:
    call = Call(invite_timeout=3, no_media_timeout=5)
    call.handle(SEND, 0.0)
    assert call.handle_timer(2.9) == []
    assert kinds(call.handle_timer(3.0)) == [SendCancel] and call.state == CANCELLING
    assert call.error and call.reason == "the device did not answer the INVITE within 3 s"
    actions = call.handle(REJECTED, 3.2, "487 Request Terminated")
    assert actions == [Release("the device did not answer the INVITE within 3 s", True)] and call.over


def test_a_cancel_that_gets_no_487_still_ends() -> None:
    call = Call(invite_timeout=3, no_media_timeout=5)
    call.handle(SEND, 0.0)
    call.handle_timer(3.0)
    assert call.next_deadline() == 6.0
    assert kinds(call.handle_timer(6.0)) == [Release] and call.over


def test_stop_before_the_answer_cancels_and_a_crossing_2xx_gets_bye() -> None:
    call = Call(invite_timeout=3, no_media_timeout=5)
    call.handle(SEND, 0.0)
    call.handle(PROVISIONAL, 0.1)
    assert kinds(call.handle(STOP, 0.2)) == [SendCancel] and not call.error
    assert kinds(call.handle(ACCEPTED, 0.3)) == [SendBye] and call.state == ENDING  # RFC 3261 §9.1
    assert call.handle(BYE_DONE, 0.4) == [Release("stopped before the device answered", False)]


def test_refusal_is_an_error_with_the_device_reason() -> None:
    call = Call(invite_timeout=3, no_media_timeout=5)
    call.handle(SEND, 0.0)
    actions = call.handle(REJECTED, 0.5, "the device refused the INVITE: 486 Busy Here")
    assert actions == [Release("the device refused the INVITE: 486 Busy Here", True)]


def test_no_media_after_the_200_and_after_a_pause_send_bye() -> None:
    call = Call(invite_timeout=3, no_media_timeout=2)
    call.handle(SEND, 0.0)
    call.handle(ACCEPTED, 1.0)
    assert kinds(call.handle_timer(3.0)) == [SendBye]
    assert call.reason == "no media within 2 s after the 200 OK" and call.error
    assert call.handle(BYE_DONE, 3.1) == [Release("no media within 2 s after the 200 OK", True)]

    call = Call(invite_timeout=3, no_media_timeout=2)
    call.handle(SEND, 0.0)
    call.handle(ACCEPTED, 1.0)
    call.media_seen(1.5, 1.4)
    assert call.media_seen(2.0, 1.4) == []  # nothing new
    assert kinds(call.handle_timer(3.4)) == [SendBye] and call.reason == "media stopped for 2 s"


def test_device_bye_and_media_status_121() -> None:
    call = Call(invite_timeout=3, no_media_timeout=2)
    call.handle(SEND, 0.0)
    call.handle(ACCEPTED, 0.1)
    call.media_seen(0.2, 0.2)
    assert call.handle(REMOTE_BYE, 0.5) == [Release("the device ended the session (BYE)", False)]

    call = Call(invite_timeout=3, no_media_timeout=2)
    call.handle(SEND, 0.0)
    call.handle(ACCEPTED, 0.1)
    assert kinds(call.handle(MEDIA_END, 0.5)) == [SendBye]
    assert call.handle(MEDIA_END, 0.6) == []  # a repeated 121
    assert call.handle(REMOTE_BYE, 0.7) == [Release("the device finished sending (MediaStatus 121)", False)]


def test_every_table_entry_names_known_states() -> None:
    states = {invite.IDLE, invite.CALLING, PROCEEDING, CANCELLING, WAITING_MEDIA, STREAMING, ENDING, ENDED}
    for (state, _event), (new, actions, _) in invite._T.items():
        assert state in states and new in states
        assert state != ENDED  # an ended call takes no input
        assert (Release in actions) == (new == ENDED)


def test_mansrtsp_bodies_and_subject() -> None:
    assert mansrtsp("pause", 1) == b"PAUSE RTSP/1.0\r\nCSeq: 1\r\nPauseTime: now\r\n\r\n"
    assert mansrtsp("resume", 2) == b"PLAY RTSP/1.0\r\nCSeq: 2\r\nRange: npt=now-\r\n\r\n"
    assert mansrtsp("scale", 3, scale=2) == b"PLAY RTSP/1.0\r\nCSeq: 3\r\nScale: 2.0\r\n\r\n"
    assert mansrtsp("scale", 4, scale=0.25) == b"PLAY RTSP/1.0\r\nCSeq: 4\r\nScale: 0.25\r\n\r\n"
    assert mansrtsp("scale", 4, scale=-1) == b"PLAY RTSP/1.0\r\nCSeq: 4\r\nScale: -1.0\r\n\r\n"
    assert mansrtsp("seek", 5, position=100) == b"PLAY RTSP/1.0\r\nCSeq: 5\r\nRange: npt=100-\r\n\r\n"
    assert mansrtsp("teardown", 6) == b"TEARDOWN RTSP/1.0\r\nCSeq: 6\r\n\r\n"
    for bad in (lambda: mansrtsp("scale", 1, scale=3), lambda: mansrtsp("scale", 1, scale=-2),
                lambda: mansrtsp("seek", 1, position=-1), lambda: mansrtsp("rewind", 1),
                lambda: mansrtsp("pause", 0), lambda: read_mansrtsp(b"\r\n")):  # fmt: skip
        with pytest.raises(RtspError):
            bad()
    assert read_mansrtsp(b"RTSP/1.0 200 OK\nCSeq: 3\nRTP-Info: seq=1;rtptime=0\n") == (
        "RTSP/1.0 200 OK", {"cseq": "3", "rtp-info": "seq=1;rtptime=0"})
    assert subject("34020000001320000001", "0200001234", "34020000002000000001") == (
        "34020000001320000001:0200001234,34020000002000000001:0")


def session(table: SessionTable, channel: str, kind: str = PLAY, started: float = 0.0) -> Session:
    return table.add(Session(table.new_id(), channel, "34020000001110000001", kind, "udp", "0200000001",
                             Call(3, 3), started))  # fmt: skip


def test_session_table_shares_live_streams_and_counts_consumers() -> None:
    table = SessionTable()
    live = session(table, "ch1")
    assert table.shared("ch1") is live and table.shared("ch2") is None
    a, b = table.join(live, "api"), table.join(live, "http")
    assert table.find(a) is live and table.find("ch1") is live and table.find(live.id) is live
    assert table.leave(a) == (live, False)
    assert table.leave(a) == (None, False)  # twice: unknown
    assert table.leave(b) == (live, True)
    history = session(table, "ch1", PLAYBACK, started=1.0)
    newer = session(table, "ch1", DOWNLOAD, started=2.0)
    assert table.shared("ch1") is live  # history sessions are never shared
    assert table.history_of("34020000001110000001", "ch1") == [newer, history]
    assert table.history_of("34020000001110000001", "other") == []
    live.call.state = ENDING
    assert table.shared("ch1") is None  # a stream being torn down takes no new viewer
    table.remove(live)
    assert table.find(live.id) is None and len(table) == 2
    assert live.json()["consumers"] == [] and live.json()["kind"] == PLAY
    assert live.json()["started"] == "1970-01-01T00:00:00+00:00"  # ISO 8601 with offset (DECISIONS.md)
    with pytest.raises(SessionError):
        session(table, "ch3", "talk")
    full = SessionTable(max_sessions=1)
    session(full, "a")
    with pytest.raises(SessionError):
        session(full, "b")


def test_signed_live_urls() -> None:
    secret = b"k" * 32
    token = sign_live(secret, "s1", 1000)
    assert check_live(secret, "s1", token, 999.0)
    assert not check_live(secret, "s1", token, 1001.0)  # expired
    assert not check_live(secret, "s2", token, 999.0)  # another session
    assert not check_live(b"x" * 32, "s1", token, 999.0)  # another platform
    assert not check_live(secret, "s1", token[:-1] + ("A" if token[-1] != "A" else "B"), 999.0)
    assert not check_live(secret, "s1", "2000.", 999.0) and not check_live(secret, "s1", "", 0.0)
    assert not check_live(secret, "s1", "1" * 40 + ".x", 0.0)


async def test_live_feed_starts_on_a_keyframe_pack_even_when_packs_are_not_rtp_aligned() -> None:
    from types import SimpleNamespace

    from gb28181.media_sessions import LiveFeed

    pack = b"\x00\x00\x01\xba" + b"\x44" * 10
    system = b"\x00\x00\x01\xbb" + b"\x00" * 8
    feed = LiveFeed()
    feed(SimpleNamespace(payload=pack + b"\x00\x00\x01\xe0 p-frame"))  # no system header: not a start
    feed(SimpleNamespace(payload=b"tail of a frame" + pack + system + b"I"))
    feed(SimpleNamespace(payload=b"next"))
    assert feed.queue.get_nowait() == pack + system + b"I" and feed.queue.get_nowait() == b"next"
    feed.end()
    assert feed.queue.get_nowait() is None
