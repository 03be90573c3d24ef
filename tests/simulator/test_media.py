"""The simulated device's media, without sockets and on a fake clock: the session machine (pacing at 25 fps,
looping live, end of a recording, pause/resume, Scale, Range, downloadspeed), MANSRTSP parsing, and the device's
INVITE / ACK / INFO / BYE handling with its SDP answers (y= kept, another y=, SSRC 0, TCP setup) and MediaStatus 121."""

from __future__ import annotations

import itertools

import pytest

from gb28181 import sdp
from gb28181.manscdp.codec import decode
from gb28181.manscdp.messages import BroadcastResponse, MediaStatusNotify
from gb28181.media import ps, rtp
from gb28181.simulator import media
from gb28181.simulator.device import (
    DialogRequest,
    InvitePlan,
    MediaStart,
    MediaStop,
    Reply,
    Send,
    SimDevice,
    TalkStart,
    TalkStop,
)
from gb28181.simulator.media import Ev, MediaSession, Phase, parse_mansrtsp
from gb28181.simulator.runtime import load_clip
from sip.message import make_response
from tests.simulator.helpers import SERVER, device, digest, platform_request, register

CLIP = load_clip()
WALL = 1_777_000_000.0


def _session(kind: str = sdp.PLAY, **kw: object) -> MediaSession:
    return MediaSession(kind, sdp.UDP, ("127.0.0.1", 30000), 200001234, CLIP, **kw)  # type: ignore[arg-type]


def _frames_until(s: MediaSession, now: float, step: float = 0.5) -> list[bytes]:
    """Ask the session every ``step`` seconds of fake time up to ``now``; all packets sent."""
    out: list[bytes] = []
    t = 0.0
    for _ in range(10_000):
        out += s.due(t)
        if t >= now:
            break
        t = min(t + step, now)
    return out


# ------------------------------------------------------------------------------------------------ machine


def test_the_table_ignores_what_it_does_not_list() -> None:
    s = _session()
    assert not s.fire(Ev.PLAY, 0.0) and s.phase == Phase.ANSWERED
    assert s.due(10.0) == [] and s.next_due() is None  # nothing before the ACK
    assert s.fire(Ev.ACK, 0.0) and s.phase == Phase.STREAMING
    assert not s.fire(Ev.ACK, 0.0)
    assert s.fire(Ev.BYE, 1.0) and s.ended and not s.fire(Ev.PLAY, 1.0)


def test_live_streams_25_frames_a_second_and_loops_the_clip() -> None:
    s = _session()
    s.fire(Ev.ACK, 0.0)
    _frames_until(s, 1.0)
    assert s.frames_sent == 26  # frames at 0, 0.04 ... 1.0
    _frames_until(s, 10.0)
    assert s.frames_sent == 251 and s.frame > len(CLIP)  # past the 100-frame clip: looped
    assert s.next_due() == pytest.approx(10.04)
    assert not s.ended


def test_a_late_driver_catches_up_in_bounded_bursts() -> None:
    s = _session()
    s.fire(Ev.ACK, 0.0)
    s.due(60.0)
    assert s.frames_sent == media.MAX_BURST


def test_packets_are_ps_over_rtp_with_the_ssrc_and_a_90khz_clock() -> None:
    s = _session()
    s.fire(Ev.ACK, 0.0)
    packets = [rtp.parse(p) for p in _frames_until(s, 3.96)]
    assert {p.ssrc for p in packets} == {200001234} and {p.payload_type for p in packets} == {96}
    assert all(rtp.seq_delta(b.sequence, a.sequence) == 1 for a, b in itertools.pairwise(packets))
    stamps = sorted({p.timestamp for p in packets})
    assert stamps[1] - stamps[0] == 3600 and len(stamps) == 100
    assert sum(p.marker for p in packets) == 100  # the marker closes each frame
    report = ps.walk(b"".join(p.payload for p in packets))
    assert report.video_frames == 100 and not report.errors
    assert report.stream_type_names()[ps.VIDEO_ID] == "h264"


def test_playback_ends_after_its_duration() -> None:
    s = _session(sdp.PLAYBACK, duration=2.0)
    s.fire(Ev.ACK, 0.0)
    _frames_until(s, 5.0)
    assert s.frames_sent == 50 and s.ended and s.reached_end


def test_pause_stops_sending_and_play_resumes_where_it_was() -> None:
    s = _session(sdp.PLAYBACK, duration=4.0)
    s.fire(Ev.ACK, 0.0)
    s.due(0.0)
    assert s.control(parse_mansrtsp(b"PAUSE RTSP/1.0\r\nCSeq: 1\r\nPauseTime: now\r\n"), 0.01)
    assert s.phase == Phase.PAUSED and s.next_due() is None and s.due(100.0) == []
    assert s.control(parse_mansrtsp(b"PLAY RTSP/1.0\r\nCSeq: 2\r\nRange: npt=now-\r\n"), 100.0)
    assert s.phase == Phase.STREAMING and s.frame == 1 and s.next_due() == 100.0


def test_scale_changes_the_pace_and_range_seeks_to_a_key_frame() -> None:
    s = _session(sdp.PLAYBACK, duration=8.0)
    s.fire(Ev.ACK, 0.0)
    s.control(parse_mansrtsp(b"PLAY RTSP/1.0\r\nCSeq: 3\r\nScale: 2.0\r\n"), 0.0)
    assert s.rate == 50
    _frames_until(s, 1.0, step=0.01)
    assert s.frames_sent == 51
    s.control(parse_mansrtsp(b"PLAY RTSP/1.0\r\nCSeq: 4\r\nRange: npt=6.5-\r\n"), 1.0)
    assert s.frame == 150  # 6 s: the key frame before 6.5 s


def test_download_goes_at_downloadspeed_and_a_live_stream_takes_no_control() -> None:
    s = _session(sdp.DOWNLOAD, duration=4.0, speed=4.0)
    s.fire(Ev.ACK, 0.0)
    _frames_until(s, 1.2, step=0.01)
    assert s.ended and s.frames_sent == 100  # 4 s of recording in about one second
    live = _session()
    live.fire(Ev.ACK, 0.0)
    assert not live.control(parse_mansrtsp(b"PAUSE RTSP/1.0\r\nCSeq: 1\r\n"), 0.0)


@pytest.mark.parametrize(
    "body",
    [b"", b"GET / HTTP/1.1\r\n", b"SETUP RTSP/1.0\r\nCSeq: 1\r\n", b"PLAY RTSP/1.0\r\nCSeq: x\r\n",
     b"PLAY RTSP/1.0\r\nCSeq: 1\r\nScale: -1\r\n", b"PLAY RTSP/1.0\r\nCSeq: 1\r\nRange: npt=abc-\r\n"],
)  # fmt: skip
def test_bad_mansrtsp_is_refused_with_a_reason(body: bytes) -> None:
    with pytest.raises(media.MansrtspError):
        parse_mansrtsp(body)


def test_mansrtsp_fields() -> None:
    r = parse_mansrtsp(b"PLAY RTSP/1.0\nCSeq: 7\nScale: 0.5\nRange: npt=12-\n")
    assert (r.method, r.cseq, r.scale, r.range_start) == ("PLAY", 7, 0.5, 12.0)
    assert parse_mansrtsp(b"TEARDOWN RTSP/1.0\r\nCSeq: 8\r\n").method == "TEARDOWN"


# ------------------------------------------------------------------------------------------------ device


def _registered(profile: str) -> SimDevice:
    d = device(profile)
    register(d, digest())
    d.drain()
    d.clip = CLIP
    return d


def _offer(kind: str = sdp.PLAY, transport: str = sdp.UDP, channel: str = "", speed: int = 1) -> bytes:
    history = kind != sdp.PLAY
    return sdp.build_offer(sdp.Offer(
        own_id=SERVER.id, address="127.0.0.1", port=30000, ssrc="1200001234" if history else "0200001234",
        kind=kind, transport=transport, channel_id=channel if history else "", start=1_777_000_000 if history else 0,
        stop=1_777_000_002 if history else 0, download_speed=speed,
    )).to_bytes()  # fmt: skip


def _invite(d: SimDevice, body: bytes, channel: str | None = None) -> tuple[Reply, tuple[str, str, str], InvitePlan]:
    ch = channel or d.inv.videos[0].id
    req = platform_request("INVITE", ch, body, [("Subject", f"{ch}:0200001234,{SERVER.id}:0")])
    plan = d.plan_invite(req)
    assert isinstance(plan, InvitePlan), plan
    reply = d.accept_invite(req, plan, "127.0.0.1", 41000, 1.0)
    assert reply.to_tag is not None
    return reply, (req.call_id, reply.to_tag, "pf1"), plan


@pytest.mark.parametrize(
    ("transport", "device_side", "setup"),
    [(sdp.UDP, sdp.UDP, None), (sdp.TCP_PASSIVE, sdp.TCP_ACTIVE, "active"),
     (sdp.TCP_ACTIVE, sdp.TCP_PASSIVE, "passive")],
)  # fmt: skip
def test_invite_is_answered_with_an_sdp_for_each_transport(transport: str, device_side: str, setup: str) -> None:
    d = _registered("tianwang-ipc")
    reply, dialog_id, plan = _invite(d, _offer(transport=transport))
    assert reply.status == 200 and plan.transport == device_side and plan.remote == ("127.0.0.1", 30000)
    answer = sdp.parse(reply.body)
    assert answer.ssrc == "0200001234" and answer.video is not None and answer.video.port == 41000
    assert answer.video.direction == "sendonly" and answer.video.setup == setup
    assert answer.format_line == "v/////a///" and answer.origin_user == d.device_id
    assert d.media[dialog_id].ssrc == 200001234 and d.media[dialog_id].phase == Phase.ANSWERED


def test_profile_quirks_other_y_and_ssrc_zero() -> None:
    d = _registered("lower-platform")
    reply, dialog_id, _ = _invite(d, _offer())
    y = sdp.parse(reply.body).ssrc
    assert y is not None and y != "0200001234" and len(y) == 10 and y.startswith("0")
    assert d.media[dialog_id].ssrc == int(y)  # the RTP really uses the answer's SSRC (wvp#127)
    d = _registered("mobile-4g-camera")
    reply, dialog_id, _ = _invite(d, _offer())
    assert sdp.parse(reply.body).ssrc == "0200001234" and d.media[dialog_id].ssrc == 0


def test_invite_errors() -> None:
    d = _registered("tianwang-nvr")
    req = platform_request("INVITE", "34020000001319999999", _offer())
    assert isinstance(r := d.plan_invite(req), Reply) and r.status == 404
    alarm_in = next(c for c in d.inv.channels if c not in d.inv.videos)
    assert isinstance(r := d.plan_invite(platform_request("INVITE", alarm_in.id, _offer())), Reply)
    assert r.status == 404
    body = _offer().replace(b"y=0200001234\r\n", b"")
    assert isinstance(r := d.plan_invite(platform_request("INVITE", d.inv.videos[0].id, body)), Reply)
    assert r.status == 400
    body = _offer().replace(b"s=Play", b"s=Talk")
    assert isinstance(r := d.plan_invite(platform_request("INVITE", d.inv.videos[0].id, body)), Reply)
    assert r.status == 488
    unregistered = device("tianwang-ipc")
    unregistered.power_on(0.0)
    assert isinstance(r := unregistered.plan_invite(req), Reply) and r.status == 403


def test_ack_starts_info_controls_bye_stops() -> None:
    d = _registered("tianwang-nvr")
    ch = d.inv.videos[1].id
    _, dialog_id, _ = _invite(d, _offer(sdp.PLAYBACK, channel=ch), ch)
    d.on_ack(dialog_id, 2.0)
    assert d.drain() == [MediaStart(dialog_id)]
    assert d.media_due(dialog_id, 2.0)
    info = platform_request("INFO", ch, b"PAUSE RTSP/1.0\r\nCSeq: 5\r\nPauseTime: now\r\n",
                            [("Content-Type", "Application/MANSRTSP")])  # fmt: skip
    reply = d.on_request(info, 2.1, WALL, dialog_id)
    assert reply is not None and reply.status == 200 and b"RTSP/1.0 200 OK\r\nCSeq: 5" in reply.body
    assert d.media[dialog_id].phase == Phase.PAUSED and d.media_due(dialog_id, 5.0) == []
    bad = platform_request("INFO", ch, b"JUMP RTSP/1.0\r\n", [("Content-Type", "Application/MANSRTSP")])
    assert (r := d.on_request(bad, 2.2, WALL, dialog_id)) is not None and r.status == 400
    bye = d.on_request(platform_request("BYE", ch), 3.0, WALL, dialog_id)
    assert bye is not None and bye.status == 200 and dialog_id not in d.media
    assert d.drain() == [MediaStop(dialog_id)]
    again = d.on_request(platform_request("BYE", ch), 3.0, WALL, dialog_id)
    assert again is not None and again.status == 481


def test_the_end_of_a_download_is_reported_with_media_status_121_in_the_dialog() -> None:
    d = _registered("xueliang-village-nvr")
    ch = d.inv.videos[0].id
    _, dialog_id, _ = _invite(d, _offer(sdp.DOWNLOAD, channel=ch, speed=4), ch)
    assert d.media[dialog_id].speed == 4 and d.media[dialog_id].duration == 2.0
    d.on_ack(dialog_id, 0.0)
    d.drain()
    sent = 0
    for i in range(200):
        sent += len(d.media_due(dialog_id, i * 0.01))
    assert sent > 0 and d.media[dialog_id].reached_end
    out = d.drain()
    assert isinstance(out[0], DialogRequest) and out[0].method == "MESSAGE" and out[1] == MediaStop(dialog_id)
    msg = decode(out[0].body).message
    assert isinstance(msg, MediaStatusNotify) and msg.notify_type == 121 and msg.device_id == ch
    assert d.media_due(dialog_id, 3.0) == [] and d.drain() == []  # reported once


def test_power_loss_stops_every_stream() -> None:
    d = _registered("tianwang-nvr")
    ids = []
    for ch in d.inv.videos[:2]:
        _, dialog_id, _ = _invite(d, _offer(), ch.id)
        d.on_ack(dialog_id, 1.0)
        ids.append(dialog_id)
    d.drain()
    d.power_off(2.0)
    assert not d.media and [o for o in d.drain() if isinstance(o, MediaStop)] == [MediaStop(i) for i in ids]
    assert d.media_due(ids[0], 3.0) == []


# ------------------------------------------------------------------------------------------------ broadcast


def _broadcast(d: SimDevice, target: str) -> list[object]:
    body = (f'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify><CmdType>Broadcast</CmdType><SN>9</SN>'
            f"<SourceID>{SERVER.id}</SourceID><TargetID>{target}</TargetID></Notify>\r\n").encode()  # fmt: skip
    reply = d.on_request(platform_request("MESSAGE", d.device_id, body), 1.0, WALL, None)
    assert reply is not None and reply.status == 200
    return d.drain()


def test_broadcast_is_answered_then_the_device_invites_the_source_for_audio() -> None:
    d = _registered("tianwang-ipc")
    out = _broadcast(d, d.device_id)
    (sent,) = [o for o in out if isinstance(o, Send)]
    response = decode(sent.request.body).message
    assert isinstance(response, BroadcastResponse) and (response.sn, response.result) == (9, "OK")
    assert TalkStart(SERVER.id) in out
    invite = d.talk_invite(SERVER.id, "127.0.0.1", 42000)
    offer = sdp.parse(invite.body)
    audio = offer.video  # the only media section
    assert audio is not None and audio.kind == "audio" and audio.port == 42000 and audio.direction == "recvonly"
    assert audio.rtpmap[8].startswith("PCMA/8000") and offer.ssrc is not None and len(offer.ssrc) == 10
    assert invite.to.user == SERVER.id and invite.headers.get("Subject", "").startswith(f"{SERVER.id}:")
    ok = make_response(invite, 200, to_tag="plat9")
    d.on_answer(f"talk:{invite.call_id}", ok, 2.0)
    dialog_id = d.talks[invite.call_id].dialog_id
    assert dialog_id is not None and d.stats["talk-established"] == 1
    bye = d.on_request(platform_request("BYE", d.device_id), 3.0, WALL, dialog_id)
    assert bye is not None and bye.status == 200 and not d.talks and d.drain() == [TalkStop(invite.call_id)]


def test_broadcast_for_someone_else_is_refused_and_a_refused_invite_closes_the_socket() -> None:
    d = _registered("tianwang-ipc")
    out = _broadcast(d, "34020000001370000099")
    (sent,) = [o for o in out if isinstance(o, Send)]
    assert decode(sent.request.body).message.result == "ERROR"
    assert not [o for o in out if isinstance(o, TalkStart)]
    invite = d.talk_invite(SERVER.id, "127.0.0.1", 42000)
    d.on_answer(f"talk:{invite.call_id}", make_response(invite, 486), 2.0)
    assert not d.talks and TalkStop(invite.call_id) in d.drain()
