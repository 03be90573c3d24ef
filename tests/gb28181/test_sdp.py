"""GB SDP codec: every body in fixtures/sdp/ against EXPECTED.toml (LF and CRLF forms, round trip), offers for
Play / Playback / Download over the three transports, answers read against offers, SSRC allocation."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gb28181 import sdp

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sdp"
EXPECTED: dict[str, dict[str, Any]] = tomllib.loads((FIXTURES / "EXPECTED.toml").read_text(encoding="utf-8"))
MEANING = ("session_name", "origin_user", "connection", "media_address", "uri", "start", "stop", "media_kind", "port",
           "proto", "sender_transport", "direction", "setup", "payloads", "rtpmap", "ssrc", "ssrc_value",
           "format_line", "filesize", "download_speed", "stream_number", "info")


def meaning(sd: sdp.SessionDescription) -> dict[str, Any]:
    m = sd.video
    assert m is not None
    return {
        "session_name": sd.session_name, "origin_user": sd.origin_user, "connection": sd.connection,
        "media_address": sd.media_address, "uri": sd.uri, "start": sd.start, "stop": sd.stop,
        "media_kind": m.kind, "port": m.port, "proto": m.proto, "sender_transport": sd.transport,
        "direction": m.direction, "setup": m.setup, "payloads": list(m.payload_types),
        "rtpmap": {str(k): v for k, v in m.rtpmap.items()}, "ssrc": sd.ssrc, "ssrc_value": sd.ssrc_value,
        "format_line": sd.format_line, "filesize": sd.filesize, "download_speed": sd.download_speed,
        "stream_number": sd.stream_number, "info": sd.info,
    }


def test_every_fixture_has_an_expectation_and_back() -> None:
    files = {str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.sdp")}
    assert files == set(EXPECTED)
    assert len([f for f in files if f.startswith("wild/")]) == 13  # every SDP body of shared/fixtures-wild


@pytest.mark.parametrize("key", sorted(EXPECTED))
@pytest.mark.parametrize("line_end", ["as-stored", "crlf"])
def test_fixture_meaning(key: str, line_end: str) -> None:
    data = (FIXTURES / key).read_bytes()
    if line_end == "crlf":
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    got = meaning(sdp.parse(data))
    want = {k: EXPECTED[key].get(k) for k in MEANING}
    assert got == want


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_fixture_round_trips(key: str) -> None:
    parsed = sdp.parse((FIXTURES / key).read_bytes())
    wire = parsed.to_bytes()
    assert b"\n" not in wire.replace(b"\r\n", b"")
    assert sdp.parse(wire) == parsed


ANSWERS = sorted(k for k, v in EXPECTED.items() if "use_ssrc" in v)


def _offer_for(case: dict[str, Any]) -> sdp.SessionDescription:
    if "offer" in case:
        return sdp.parse((FIXTURES / case["offer"]).read_bytes())
    return sdp.SessionDescription(ssrc=case.get("offer_ssrc"), start=case.get("offer_start", 0),
                                  media=(sdp.Media("video", 30000, "RTP/AVP", ("96",)),))


@pytest.mark.parametrize("key", ANSWERS)
def test_answer_read_against_our_offer(key: str) -> None:
    case = EXPECTED[key]
    answer = sdp.parse((FIXTURES / key).read_bytes())
    view = sdp.read_answer(_offer_for(case), answer, case["offer_transport"], case.get("fallback_address"))
    assert view.ssrc_text == case["use_ssrc"]
    assert view.ssrc == int(case["use_ssrc"])
    assert view.ssrc_changed is case["ssrc_changed"]
    assert view.time_shift == case["time_shift"]
    assert view.transport == case.get("use_transport", case["offer_transport"])
    assert view.port == case["port"]
    assert view.address == case.get("use_address", case.get("media_address"))
    want_connect = case.get("connect_to")
    assert (f"{view.connect_to[0]}:{view.connect_to[1]}" if view.connect_to else None) == want_connect
    assert view.encoding == "PS/90000" and view.payload == 96


def test_the_answer_fixtures_cover_the_issue_quirks() -> None:
    quirks = {k: v for k, v in EXPECTED.items() if "use_ssrc" in v}
    assert any(v["ssrc_changed"] for v in quirks.values())  # different y=
    assert any(v["ssrc"] != v["use_ssrc"] or len(v.get("offer_ssrc", "0" * 10)) != 10 for v in quirks.values())
    assert any(v["time_shift"] for v in quirks.values())  # shifted t=
    assert any(v.get("setup") and v["proto"] == "RTP/AVP" for v in quirks.values())  # a=setup on UDP
    assert any("media_address" not in v for v in quirks.values())  # masked c=


# ------------------------------------------------------------------------------------------------ offers


def _offer(**kw: Any) -> sdp.Offer:
    base = dict(own_id="34020000002000000001", address="10.0.0.5", port=30000, ssrc="0200000001")
    base.update(kw)
    return sdp.Offer(**base)


def test_live_udp_offer_is_the_gb_profile() -> None:
    text = sdp.build_offer(_offer()).to_bytes().decode()
    assert text == (
        "v=0\r\no=34020000002000000001 0 0 IN IP4 10.0.0.5\r\ns=Play\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
        "m=video 30000 RTP/AVP 96 97 98\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\na=rtpmap:97 MPEG4/90000\r\n"
        "a=rtpmap:98 H264/90000\r\ny=0200000001\r\nf=v/////a///\r\n"
    )


@pytest.mark.parametrize(("transport", "setup"), [(sdp.TCP_PASSIVE, "passive"), (sdp.TCP_ACTIVE, "active")])
def test_tcp_offers(transport: str, setup: str) -> None:
    parsed = sdp.parse(sdp.build_offer(_offer(transport=transport)).to_bytes())
    m = parsed.video
    assert m is not None and m.proto == "TCP/RTP/AVP" and m.setup == setup and m.attr("connection") == "new"
    assert parsed.transport == transport and m.direction == "recvonly"


def test_playback_and_download_offers() -> None:
    pb = sdp.parse(sdp.build_offer(_offer(kind=sdp.PLAYBACK, channel_id="34020000001320000001", start=1714492800,
                                          stop=1714496400, ssrc="1200000001")).to_bytes())
    assert (pb.session_name, pb.uri, pb.start, pb.stop, pb.download_speed) == (
        "Playback", "34020000001320000001:0", 1714492800, 1714496400, None)
    dl = sdp.parse(sdp.build_offer(_offer(kind=sdp.DOWNLOAD, channel_id="34020000001320000001:3", start=1, stop=2,
                                          download_speed=4, ssrc="1200000002")).to_bytes())
    assert (dl.session_name, dl.uri, dl.download_speed) == ("Download", "34020000001320000001:3", 4)


def test_offer_payload_types_and_stream_number() -> None:
    parsed = sdp.parse(sdp.build_offer(_offer(payloads=(96, 98, 100), stream_number=1)).to_bytes())
    assert list(sdp.payload_encodings(parsed)) == [(96, "PS/90000"), (98, "H264/90000"), (100, "H265/90000")]
    assert parsed.stream_number == 1


@pytest.mark.parametrize("bad", [
    {"ssrc": "630886"}, {"ssrc": "02000000x1"}, {"kind": "Talk"}, {"transport": "tcp"}, {"port": 0},
    {"kind": sdp.PLAYBACK}, {"kind": sdp.DOWNLOAD, "channel_id": "c", "start": 5, "stop": 5}, {"payloads": (96, 7)},
])
def test_bad_offers_are_refused_with_a_reason(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        sdp.build_offer(_offer(**bad))


def test_answer_built_for_an_offer_reads_back() -> None:
    offer = sdp.build_offer(_offer(transport=sdp.TCP_PASSIVE))
    answer = sdp.parse(sdp.build_answer(offer, "34020000001320000001", "10.0.0.9", 15060).to_bytes())
    m = answer.video
    assert m is not None and m.direction == "sendonly" and m.setup == "active" and answer.ssrc == "0200000001"
    view = sdp.read_answer(offer, answer, sdp.TCP_PASSIVE)
    assert (view.address, view.port, view.ssrc_changed, view.connect_to) == ("10.0.0.9", 15060, False, None)


def test_answer_without_y_falls_back_to_ours() -> None:
    offer = sdp.build_offer(_offer())
    answer = sdp.parse(b"v=0\r\nc=IN IP4 10.0.0.9\r\nm=video 9000 RTP/AVP 96\r\n")
    view = sdp.read_answer(offer, answer, sdp.UDP)
    assert (view.ssrc_text, view.ssrc_changed, view.encoding) == ("0200000001", False, "PS/90000")


@pytest.mark.parametrize("body", [b"", b"v=0\r\ns=Play\r\n", b"m=video\r\n", b"m=video x RTP/AVP 96\r\n",
                                  b"m=video 70000 RTP/AVP 96\r\n"])
def test_unusable_bodies_raise_sdp_error(body: bytes) -> None:
    with pytest.raises(sdp.SdpError):
        sdp.parse(body)


def test_answer_with_port_zero_is_refused() -> None:
    with pytest.raises(sdp.SdpError):
        sdp.read_answer(sdp.build_offer(_offer()), sdp.parse(b"m=video 0 RTP/AVP 96\r\n"), sdp.UDP)


@settings(deadline=None, max_examples=200)
@given(st.binary(max_size=600))
def test_parser_never_crashes(data: bytes) -> None:
    try:
        parsed = sdp.parse(b"m=video 1 RTP/AVP 96\n" + data)
    except sdp.SdpError:
        return
    assert sdp.parse(parsed.to_bytes()).video is not None


# -------------------------------------------------------------------------------------------------- SSRC


def test_ssrc_layout_follows_the_domain() -> None:
    alloc = sdp.SsrcAllocator("3402000000")
    assert alloc.allocate() == "0200000001"
    assert alloc.allocate(history=True) == "1200000001"
    assert sdp.SsrcAllocator("1301000000").allocate() == "0100000001"  # digits 4-8 of the domain


def test_ssrc_never_reused_while_in_use_and_not_at_once_after_release() -> None:
    alloc = sdp.SsrcAllocator("3402000000")
    first = [alloc.allocate() for _ in range(5)]
    assert len(set(first)) == 5
    alloc.release(first[0])
    assert alloc.allocate() not in first
    assert not alloc.reserve(first[1])  # a superior's y= that is ours in use: allocate instead
    assert alloc.reserve("0200009999") and "0200009999" in alloc.in_use()
    assert not alloc.reserve("12345")


def test_ssrc_exhaustion_is_an_error_not_a_loop() -> None:
    alloc = sdp.SsrcAllocator("3402000000")
    for _ in range(9999):
        alloc.allocate()
    with pytest.raises(RuntimeError, match="in use"):
        alloc.allocate()
    alloc.release("0200000500")
    assert alloc.allocate() == "0200000500"


def test_bad_domain() -> None:
    with pytest.raises(ValueError):
        sdp.SsrcAllocator("34ab")
