"""The simulated device's voice outputs, its loudspeaker (simulator/talk.py Heard) and App. K stream replacement
on the device side: a second live INVITE with the same Subject identities replaces the first send (its MediaStop
and a BYE in the old dialog) instead of being refused 486; another receiver is refused when the channel is full."""

from __future__ import annotations

from gb28181 import sdp
from gb28181.manscdp.codec import decode
from gb28181.media import g711, ps, rtp
from gb28181.media.audio_sender import rtp_packets
from gb28181.simulator.device import DialogRequest, InvitePlan, MediaStop, Reply, Send, SimDevice, TalkStart
from gb28181.simulator.inventory import build
from gb28181.simulator.profile import load_profile
from gb28181.simulator.runtime import load_clip
from gb28181.simulator.talk import Heard
from sip.headers import Headers
from sip.message import Request
from tests.simulator.helpers import PREFIX, SERVER, device, digest, platform_request, register

WALL = 1_777_000_000.0
CLIP = load_clip()
SUPERIOR = "44000000002000000001"


def _registered(profile: str = "tianwang-nvr", **options: object) -> SimDevice:
    d = device(profile, **options)
    d.inv = build(d.profile, 0, PREFIX, None, audio_outputs=2)
    register(d, digest())
    d.drain()
    d.clip = CLIP
    return d


def _offer(kind: str, channel: str) -> bytes:
    history = kind != sdp.PLAY
    return sdp.build_offer(sdp.Offer(
        own_id=SERVER.id, address="127.0.0.1", port=30000, ssrc="1200000001" if history else "0200000001", kind=kind,
        channel_id=channel if history else "", start=1_777_000_000 if history else 0,
        stop=1_777_000_009 if history else 0,
    )).to_bytes()  # fmt: skip


def _invite(d: SimDevice, call: str, receiver: str, kind: str = sdp.PLAY) -> tuple[Reply, InvitePlan | Reply]:
    ch = d.inv.videos[0].id
    req = platform_request("INVITE", ch, _offer(kind, ch), [("Subject", f"{ch}:0200000001,{receiver}:0")])
    req = Request(req.method, req.uri, Headers([(k, f"{call}" if k == "Call-ID" else v) for k, v in req.headers]),
                  req.body)  # fmt: skip
    plan = d.plan_invite(req)
    if isinstance(plan, Reply):
        return plan, plan
    return d.accept_invite(req, plan, "127.0.0.1", 41000, 1.0), plan


def test_voice_outputs_are_137_items_under_the_device() -> None:
    inv = build(load_profile("tianwang-ipc"), 3, PREFIX, None, audio_outputs=2)
    outs = [c for c in inv.channels if c.type_code == 137]
    assert [c.id[10:13] for c in outs] == ["137", "137"] and all(c.parent_ids == (inv.device_id,) for c in outs)
    assert len(inv.videos) == 1 and inv.item(outs[0], SERVER.id).model == "AudioOut"


def test_broadcast_to_a_voice_output_or_the_device_only() -> None:
    out_id = next(c.id for c in _registered().inv.channels if c.type_code == 137)
    for target, result in ((out_id, "OK"), (_registered().device_id, "OK"), (_registered().inv.videos[0].id, "ERROR")):
        d = _registered()  # a fresh device each time: a device sends its MESSAGEs one at a time (App. M)
        body = (f'<?xml version="1.0"?>\r\n<Notify><CmdType>Broadcast</CmdType><SN>4</SN><SourceID>{SERVER.id}'
                f"</SourceID><TargetID>{target}</TargetID></Notify>\r\n").encode()  # fmt: skip
        assert d.on_request(platform_request("MESSAGE", d.device_id, body), 1.0, WALL, None) == Reply(200)
        out = d.drain()
        (sent,) = [o for o in out if isinstance(o, Send)]
        assert decode(sent.request.body).message.result == result
        assert (TalkStart(SERVER.id) in out) == (result == "OK")


def test_the_loudspeaker_decodes_pcma_and_ps() -> None:
    heard = Heard()
    tone = g711.alaw_encode(bytes(2) * 80 + (1000).to_bytes(2, "little", signed=True) * 80)
    for packet in rtp_packets(tone * 5, 8, 22440333) + rtp_packets(tone, 96, 22440333):
        heard.hear(packet)
    assert (heard.packets, heard.samples, heard.ssrcs, heard.bad) == (6, 960, {22440333}, 0)
    assert heard.peak == g711.decode_sample(g711.encode_sample(1000))
    heard.hear(b"junk")
    heard.hear(rtp.build(96, 1, 0, 5, ps.pack_header(0)))  # a pack without audio
    assert heard.bad == 2 and heard.packets == 6


def test_app_k_same_identities_replace_the_old_send() -> None:
    d = _registered(max_streams=1)
    first, plan = _invite(d, "c1", SERVER.id)
    assert first.status == 200 and isinstance(plan, InvitePlan) and plan.replaces == ()
    old = ("c1", first.to_tag or "", "pf1")
    again, plan = _invite(d, "c2", SERVER.id)
    assert again.status == 200 and isinstance(plan, InvitePlan) and plan.replaces == (old,)
    out = d.drain()
    assert MediaStop(old) in out and DialogRequest(old, "BYE", (), b"") in out
    assert old not in d.media and len(d.media) == 1 and d.stats["app-k-replaced"] == 1


def test_app_k_another_receiver_is_busy_and_history_never_replaces() -> None:
    d = _registered(max_streams=1)
    assert _invite(d, "c1", SERVER.id)[0].status == 200
    busy, _ = _invite(d, "c2", SUPERIOR)
    assert busy.status == 486 and "already sends 1" in dict(busy.headers)["Warning"]
    d2 = _registered(max_streams=2)
    assert _invite(d2, "p1", SERVER.id, sdp.PLAYBACK)[0].status == 200
    reply, plan = _invite(d2, "p2", SERVER.id, sdp.PLAYBACK)
    assert reply.status == 200 and isinstance(plan, InvitePlan) and plan.replaces == () and len(d2.media) == 2
    assert _invite(d2, "p3", SERVER.id, sdp.PLAYBACK)[0].status == 486
