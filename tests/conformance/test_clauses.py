"""Every clause on synthetic observations (fake clock, no sockets): what passes, what is flagged and why."""

from __future__ import annotations

import pytest

from gb28181.conformance.clauses import BY_ID, CLAUSES, evaluate, select
from gb28181.conformance.model import (
    FAIL,
    MEDIA_UNAVAILABLE,
    PASS,
    SKIP,
    WARN,
    BroadcastAttempt,
    MediaObservations,
    MediaSession,
)
from tests.conformance.helpers import DEV, PLATFORM, Builder, manscdp, request, response, sip, video_item

QOP = [("WWW-Authenticate", 'Digest realm="3402000000", nonce="abc", algorithm=MD5, qop="auth"')]


def verdict(b: Builder, clause: str) -> tuple[str, str]:
    r = BY_ID[clause].run(b.obs)
    return r.verdict, r.why


def evidence(b: Builder, clause: str) -> list[str]:
    return list(BY_ID[clause].run(b.obs).evidence)


def auth(username: str = DEV, qop: bool = True) -> list[tuple[str, str]]:
    extra = ', qop=auth, nc=00000001, cnonce="x1"' if qop else ""
    value = f'Digest username="{username}", realm="3402000000", nonce="abc", uri="sip:{PLATFORM}@3402000000", '
    return [("Authorization", value + f'response="0123"{extra}'), ("Expires", "3600")]


def registered(b: Builder, *, qop: bool = True, username: str = DEV, at: float = 0.0, version: str = "") -> None:
    extra = [("X-GB-ver", version)] if version else []
    b.exchange("REGISTER", 401, at=at, call_id="reg", headers=[("Expires", "3600"), *extra], answer=QOP)
    b.exchange("REGISTER", 200, at=at + 0.1, call_id="reg", headers=auth(username, qop) + extra,
               answer=[("Expires", "3600"), ("Date", "2026-11-25T10:00:00.000")])  # fmt: skip


# ------------------------------------------------------------------------------------------ registration
def test_digest_answered_with_qop_passes_and_without_it_fails() -> None:
    good, bad, none = Builder(), Builder(), Builder()
    registered(good)
    registered(bad, qop=False)
    assert verdict(good, "register.digest")[0] == PASS
    v, why = verdict(bad, "register.digest")
    assert v == FAIL and "no qop" in why
    assert verdict(none, "register.digest")[0] == SKIP


def test_digest_username_other_than_the_id_is_flagged() -> None:
    same, other = Builder(), Builder()
    registered(same)
    registered(other, username="34020000001320000088")
    assert verdict(same, "register.username")[0] == PASS
    v, why = verdict(other, "register.username")
    assert v == WARN and "34020000001320000088" in why


def test_expiry_after_423_must_be_at_least_min_expires() -> None:
    fixed, stubborn = Builder(), Builder()
    for b, retry in ((fixed, "3600"), (stubborn, "30")):
        b.exchange("REGISTER", 423, headers=[("Expires", "30")], answer=[("Min-Expires", "3600")])
        b.exchange("REGISTER", 200, headers=[("Expires", retry)], answer=[("Expires", retry)])
    v, why = verdict(fixed, "register.expiry")
    assert v == PASS and "first asked 30 s" in why and "granted 3600" in why
    v, why = verdict(stubborn, "register.expiry")
    assert v == FAIL and "Min-Expires 3600" in why


def test_refresh_before_expiry() -> None:
    ok, late, once = Builder(), Builder(), Builder()
    for b, second in ((ok, 3000.0), (late, 4000.0)):
        b.exchange("REGISTER", 200, at=0.0, headers=[("Expires", "3600")], answer=[("Expires", "3600")])
        b.exchange("REGISTER", 200, at=second, headers=[("Expires", "3600")], answer=[("Expires", "3600")])
    once.exchange("REGISTER", 200, headers=[("Expires", "3600")], answer=[("Expires", "3600")])
    assert verdict(ok, "register.refresh")[0] == PASS
    assert verdict(late, "register.refresh")[0] == FAIL
    assert verdict(once, "register.refresh")[0] == SKIP


@pytest.mark.parametrize(
    ("device_time", "expected"),
    [("2023-11-15T06:13:20", PASS), ("2023-11-15T06:23:20", WARN), ("15/11/2023 06:13", FAIL), ("", WARN)],
)
def test_time_sync_compares_device_time_with_the_platform_clock(device_time: str, expected: str) -> None:
    b = Builder()  # wall 1_700_000_000 = 2023-11-14T22:13:20Z = 2023-11-15T06:13:20 Beijing
    b.probe("status", value={"DeviceTime": device_time, "_wall": 1_700_000_000})
    assert verdict(b, "register.time-sync")[0] == expected


def test_time_sync_skips_without_device_status() -> None:
    b = Builder()
    b.probe("status", ok=False, error="device did not answer", kind="timeout")
    assert verdict(b, "register.time-sync")[0] == SKIP


def test_x_gb_ver() -> None:
    v2022, v2016, odd = Builder(), Builder(), Builder()
    registered(v2022, version="3.0")
    registered(v2016)
    registered(odd, version="GB2022")
    assert verdict(v2022, "register.x-gb-ver") == (PASS, "X-GB-ver 3.0")
    assert verdict(v2016, "register.x-gb-ver")[0] == PASS
    assert verdict(odd, "register.x-gb-ver")[0] == WARN


def test_retry_after_403_should_wait_a_minute() -> None:
    eager, patient, never = Builder(), Builder(), Builder()
    for b, gap in ((eager, 5.0), (patient, 70.0)):
        b.exchange("REGISTER", 403, at=0.0, headers=auth())
        b.exchange("REGISTER", 401, at=gap, headers=[("Expires", "3600")])
    registered(never)
    assert verdict(eager, "register.after-403")[0] == WARN
    assert verdict(patient, "register.after-403")[0] == PASS
    assert verdict(never, "register.after-403")[0] == SKIP


# ------------------------------------------------------------------------------------------ keepalive
def keepalives(b: Builder, times: list[float], status: str = "OK", peers: list[str] | None = None) -> None:
    for i, t in enumerate(times):
        body = manscdp("Notify", "Keepalive", i + 1, f"<Status>{status}</Status>\r\n")
        b.exchange("MESSAGE", 200, at=t, body=body, peer=(peers or ["UDP:127.0.0.1:5070"] * len(times))[i])


def basic(b: Builder, interval: str = "60") -> None:
    b.probe("config", value={"BasicParam": {"HeartBeatInterval": interval, "HeartBeatCount": "3"}})


def test_keepalive_cadence_against_its_own_settings() -> None:
    ok, fast, short, unknown = Builder(), Builder(), Builder(), Builder()
    for b in (ok, fast, short, unknown):
        if b is not unknown:
            basic(b)
    keepalives(ok, [0, 60, 121, 180])
    keepalives(fast, [0, 20, 40, 60])
    keepalives(short, [0, 60])
    keepalives(unknown, [0, 60, 120])
    assert verdict(ok, "keepalive.cadence")[0] == PASS
    v, why = verdict(fast, "keepalive.cadence")
    assert v == FAIL and "every 20.0 s" in why and "60 s" in why
    assert verdict(short, "keepalive.cadence")[0] == SKIP
    assert verdict(unknown, "keepalive.cadence")[0] == SKIP


def test_keepalive_status_values() -> None:
    ok, error, bad = Builder(), Builder(), Builder()
    keepalives(ok, [0, 60])
    keepalives(error, [0], status="ERROR")
    keepalives(bad, [0], status="Fine")
    assert verdict(ok, "keepalive.status")[0] == PASS
    assert verdict(error, "keepalive.status")[0] == WARN
    assert verdict(bad, "keepalive.status")[0] == FAIL
    assert verdict(Builder(), "keepalive.status")[0] == SKIP


def test_keepalive_address_stability() -> None:
    still, moving = Builder(), Builder()
    keepalives(still, [0, 60, 120])
    keepalives(moving, [0, 60, 120], peers=["UDP:10.0.0.1:5060", "UDP:10.0.0.1:40001", "UDP:10.0.0.1:40002"])
    assert verdict(still, "keepalive.address")[0] == PASS
    v, why = verdict(moving, "keepalive.address")
    assert v == WARN and "3 source addresses" in why


# ------------------------------------------------------------------------------------------ catalog
CH = ["34020000001310000001", "34020000001310000002", "34020000001310000003", "34020000001310000004"]


def catalog(b: Builder, packets: list[list[str]], *, sum_num: int | None = None, charset: str = "GB2312",
            encode: str = "gb18030", delay: float = 0.3, sn: int = 7) -> None:  # fmt: skip
    b.exchange("MESSAGE", 200, incoming=False, at=10.0, body=manscdp("Query", "Catalog", sn))
    total = sum(len(p) for p in packets) if sum_num is None else sum_num
    for i, items in enumerate(packets):
        inner = f'<SumNum>{total}</SumNum>\r\n<DeviceList Num="{len(items)}">{"".join(items)}</DeviceList>\r\n'
        b.exchange("MESSAGE", 200, at=10.0 + delay + i * 0.01, body=manscdp("Response", "Catalog", sn, inner,
                                                                            charset, encode))  # fmt: skip
    b.probe("catalog", value={"sn": sn, "state": "complete", "reason": "complete"})


def test_catalog_clean_answer_passes_every_catalog_clause() -> None:
    b = Builder(gb_version="3.0")
    catalog(b, [[video_item(c, **{"Info": "<PointType>1</PointType>"}) for c in CH]])
    results = {r.clause: r.verdict for r in evaluate(b.obs, select(["catalog"]))}
    assert set(results.values()) == {PASS}, results


def test_catalog_sumnum_and_duplicates() -> None:
    short, dup = Builder(), Builder()
    catalog(short, [[video_item(CH[0])], [video_item(CH[1])]], sum_num=3)
    catalog(dup, [[video_item(CH[0]), video_item(CH[1])], [video_item(CH[1])]], sum_num=2)
    v, why = verdict(short, "catalog.sumnum")
    assert v == FAIL and "SumNum 3 but 2" in why
    assert verdict(dup, "catalog.sumnum")[0] == WARN


def test_catalog_one_item_per_message_and_big_udp_packets() -> None:
    single, big = Builder(), Builder()
    catalog(single, [[video_item(c)] for c in CH])
    catalog(big, [[video_item(c, Address="长" * 400) for c in CH]])
    v, why = verdict(single, "catalog.packets")
    assert v == WARN and "one item per MESSAGE" in why
    v, why = verdict(big, "catalog.packets")
    assert v == WARN and "above 4000 B" in why


def test_catalog_charset_declared_vs_actual() -> None:
    liar, honest, utf8 = Builder(), Builder(), Builder()
    catalog(liar, [[video_item(CH[0])]], charset="GB2312", encode="utf-8")
    catalog(honest, [[video_item(CH[0])]], charset="GB2312", encode="gb18030")
    catalog(utf8, [[video_item(CH[0])]], charset="UTF-8", encode="utf-8")
    v, why = verdict(liar, "catalog.charset")
    assert v == FAIL and "declared GB2312 are UTF-8" in why
    assert verdict(honest, "catalog.charset")[0] == PASS
    assert verdict(utf8, "catalog.charset")[0] == PASS


def test_catalog_ids_type_codes_and_parent() -> None:
    bad, parent = Builder(), Builder()
    catalog(bad, [[video_item(CH[0]), video_item("3402000000131000000X")]])
    catalog(parent, [[video_item(CH[0], ParentID=PLATFORM)]])
    v, why = verdict(bad, "catalog.ids")
    assert v == FAIL and "1 item ID" in why
    v, why = verdict(parent, "catalog.ids")
    assert v == WARN and "ParentID" in why


def test_catalog_required_fields_placeholders_coordinates() -> None:
    b = Builder()
    catalog(b, [[video_item(CH[0], Manufacturer="-", Status="-"), video_item(CH[1], Owner="Owner",
                                                                             CivilCode="CivilCode")]])  # fmt: skip
    v, why = verdict(b, "catalog.required")
    assert v == FAIL and "1 video item" in why
    assert "Manufacturer, Status" in BY_ID["catalog.required"].run(b.obs).evidence[0]
    v, why = verdict(b, "catalog.placeholders")
    assert v == WARN and "2 placeholder" in why
    nowhere = Builder()
    catalog(nowhere, [[video_item(CH[0], Longitude="0", Latitude="0"), video_item(CH[1], Longitude="-")]])
    assert verdict(nowhere, "catalog.coordinates")[0] == WARN


def test_point_type_only_judged_on_2022_devices() -> None:
    v2016, v2022 = Builder(), Builder(gb_version="3.0")
    for b in (v2016, v2022):
        catalog(b, [[video_item(CH[0])]])
    assert verdict(v2016, "catalog.point-type")[0] == SKIP
    assert verdict(v2022, "catalog.point-type")[0] == WARN


def test_catalog_answer_time_and_silence() -> None:
    slow, silent = Builder(), Builder()
    catalog(slow, [[video_item(CH[0])]], delay=8.0)
    v, why = verdict(slow, "catalog.answer-time")
    assert v == WARN and "after 8.00 s" in why
    silent.probe("catalog", ok=False, error="device did not take the Catalog query", kind="timeout", elapsed=5.0)
    for clause in ("catalog.answer-time", "catalog.sumnum", "catalog.ids"):
        v, why = verdict(silent, clause)
        assert v == FAIL and why.startswith("Catalog query: no answer")


def test_catalog_only_the_runs_own_query_is_judged() -> None:
    b = Builder()
    catalog(b, [[video_item(CH[0])]], sn=3)  # the platform's own sync after registration
    catalog(b, [[video_item(CH[0])]], sn=9)  # the run's
    assert verdict(b, "catalog.sumnum") == (PASS, "SumNum 1 = items received")


# ------------------------------------------------------------------------------------------ queries, control
def test_queries_answered_with_their_fields() -> None:
    b = Builder()
    b.probe("info", value={"Manufacturer": "Dahua", "Model": "NVR", "Firmware": "V4"})
    b.probe("status", value={"Online": "ONLINE"})
    b.probe("config", ok=False, error="device did not answer ConfigDownload within 5 s", kind="timeout")
    assert verdict(b, "query.device-info")[0] == PASS
    v, why = verdict(b, "query.device-status")
    assert v == FAIL and "lacks Status" in why
    v, why = verdict(b, "query.config-basic")
    assert v == FAIL and "no answer" in why
    assert verdict(Builder(), "query.device-info")[0] == SKIP


def test_presets_set_listed_and_missing() -> None:
    ok, lost = Builder(), Builder()
    for b, listed in ((ok, [{"preset": 250, "name": "x"}]), (lost, [])):
        b.probe("presets", value={"presets": []})
        b.probe("preset-set", value=250)
        b.probe("presets-after-set", value={"presets": listed})
    assert verdict(ok, "query.presets")[0] == PASS
    v, why = verdict(lost, "query.presets")
    assert v == FAIL and "not listed" in why


def records(b: Builder, items: list[tuple[str, str]], sum_num: int) -> None:
    body = "".join(f"<Item><DeviceID>{CH[0]}</DeviceID><StartTime>{s}</StartTime><EndTime>{e}</EndTime></Item>"
                   for s, e in items)  # fmt: skip
    inner = f'<SumNum>{sum_num}</SumNum><RecordList Num="{len(items)}">{body}</RecordList>'
    b.exchange("MESSAGE", 200, body=manscdp("Response", "RecordInfo", 4, inner))
    b.probe("records", value={"records": len(items)})


def test_record_info_time_format_sumnum_duplicates() -> None:
    ok, badtime, short, dup = Builder(), Builder(), Builder(), Builder()
    t1, t2 = ("2026-11-25T08:00:00", "2026-11-25T09:00:00"), ("2026-11-25T09:00:00", "2026-11-25T10:00:00")
    records(ok, [t1, t2], 2)
    records(badtime, [("2026-11-25 08:00:00", "2026-11-25 09:00:00")], 1)
    records(short, [t1], 2)
    records(dup, [t1, t1], 2)
    assert verdict(ok, "query.record-info")[0] == PASS
    assert verdict(badtime, "query.record-info")[0] == FAIL
    assert verdict(short, "query.record-info")[0] == FAIL
    assert verdict(dup, "query.record-info")[0] == WARN


def test_controls_and_their_undo() -> None:
    b = Builder()
    b.probe("guard", value={"result": "OK"})
    b.probe("record", value={"result": "OK"})
    b.probe("record-undo", ok=False, error="device did not answer")
    b.probe("reset-alarm", ok=False, error="device did not answer ResetAlarm within 5 s", kind="timeout")
    b.probe("ptz", value={"result": None})
    assert verdict(b, "control.guard")[0] == PASS
    assert verdict(b, "control.record")[0] == WARN
    assert verdict(b, "control.reset-alarm")[0] == FAIL
    assert verdict(b, "control.ptz")[0] == PASS


def test_responses_echo_cmd_type_and_sn() -> None:
    ok, wrong, stray = Builder(), Builder(), Builder()
    for b, answer_cmd, answer_sn in ((ok, "DeviceInfo", 5), (wrong, "DeviceStatus", 5), (stray, "DeviceInfo", 99)):
        b.exchange("MESSAGE", 200, incoming=False, body=manscdp("Query", "DeviceInfo", 5))
        b.exchange("MESSAGE", 200, body=manscdp("Response", answer_cmd, answer_sn, "<Result>OK</Result>"))
    assert verdict(ok, "response.cmd-type")[0] == PASS
    v, why = verdict(wrong, "response.cmd-type")
    assert v == FAIL and "another CmdType" in why
    assert verdict(stray, "response.cmd-type")[0] == WARN


# ------------------------------------------------------------------------------------------ subscriptions, media
def test_subscriptions_accepted_refreshed_and_notify_event() -> None:
    ok, wrong_event, no_refresh = Builder(), Builder(), Builder()
    for b in (ok, wrong_event, no_refresh):
        b.probe("subscribe-alarm", value={"state": "active"})
        b.probe("subscribe-alarm-refresh", ok=b is not no_refresh, error="408 Request Timeout")
    body = manscdp("Notify", "Alarm", 3, "<AlarmPriority>1</AlarmPriority>")
    ok.exchange("NOTIFY", 200, body=body, headers=[("Event", "Alarm;id=1")])
    wrong_event.exchange("NOTIFY", 200, body=body, headers=[("Event", "presence")])
    v, why = verdict(ok, "subscribe.alarm")
    assert v == PASS and "refreshed" in why and "1 NOTIFY" in why
    assert verdict(wrong_event, "subscribe.alarm")[0] == FAIL
    assert verdict(no_refresh, "subscribe.alarm")[0] == FAIL
    assert verdict(Builder(), "subscribe.catalog")[0] == SKIP


def test_media_clauses_are_an_honest_skip_until_media_sessions_exist() -> None:
    media = [c for c in CLAUSES if c.media]
    assert {c.id for c in media} >= {"media.live-udp", "media.live-tcp-passive", "media.live-tcp-active",
                                     "media.playback", "media.download"}  # fmt: skip
    for c in media:
        r = c.run(Builder().obs)
        assert (r.verdict, r.why) == (SKIP, MEDIA_UNAVAILABLE)


def live(mode: str = "live-udp", **changes: object) -> MediaSession:
    base: dict[str, object] = {
        "mode": mode,
        "answer_time": 0.3,
        "offer_y": "0100000001",
        "answer_y": "0100000001",
        "answer_f": "v/2/4/25/1/4096a///",
        "rtp_ssrcs": (100000001,),
        "ps_pack_header": True,
        "ps_system_header": True,
        "ps_psm": True,
        "codec": "H264",
        "first_keyframe": 0.8,
    }
    if mode.startswith("live-tcp"):
        base.update(
            offer_setup="passive" if mode.endswith("passive") else "active",
            answer_setup="active" if mode.endswith("passive") else "passive",
        )
    base.update(changes)
    return MediaSession(**base)  # type: ignore[arg-type]


def with_media(**sessions: MediaSession) -> Builder:
    b = Builder()
    b.obs.media = MediaObservations({s.mode: s for s in sessions.values()})
    return b


def test_media_clauses_judge_sessions_once_the_media_layer_fills_them() -> None:
    ok = with_media(a=live(), b=live("live-tcp-passive"), c=live("live-tcp-active"))
    for mode in ("live-udp", "live-tcp-passive", "live-tcp-active"):
        assert verdict(ok, f"media.{mode}")[0] == PASS, verdict(ok, f"media.{mode}")
    assert verdict(ok, "media.playback") == (SKIP, "no playback session in this run")
    assert verdict(ok, "media.broadcast") == (SKIP, "the device lists no voice output")


@pytest.mark.parametrize(
    ("session", "expected", "words"),
    [
        (live(rtp_ssrcs=(0,)), FAIL, "SSRC 0 in RTP"),
        (live(answer_y="0100000099", rtp_ssrcs=(100000099,)), WARN, "y= changed in the 200 OK"),
        (live(rtp_ssrcs=(5,)), FAIL, "does not match y="),
        (live(ps_pack_header=False), FAIL, "no PS pack header"),
        (live(ps_psm=False), WARN, "PSM"),
        (live(answer_f=None), WARN, "no f="),
        (live(first_keyframe=9.0), WARN, "first keyframe after 9.0 s"),
        (live(error="no answer to INVITE within 10 s (timed out)"), FAIL, "timed out"),
        (live(ended=False), FAIL, "could not be ended"),
        (live("live-tcp-passive", answer_setup="passive"), FAIL, "a=setup:passive answering a=setup:passive"),
    ],
)
def test_media_quirks_are_flagged(session: MediaSession, expected: str, words: str) -> None:
    v, why = verdict(with_media(s=session), f"media.{session.mode}")
    assert v == expected and words in why, why


def test_playback_controls_media_status_and_download_speed() -> None:
    good = with_media(p=live("playback", controls=(("pause", True), ("resume", True), ("scale", True)),
                             media_status_121=True))  # fmt: skip
    bad = with_media(p=live("playback", controls=(("pause", True), ("scale", False)), media_status_121=False))
    slow = with_media(d=live("download", asked_speed=4.0, speed=1.0, media_status_121=True))
    assert verdict(good, "media.playback")[0] == PASS
    v, why = verdict(bad, "media.playback")
    assert v == FAIL and "MANSRTSP scale refused" in why and "MediaStatus 121" in why
    v, why = verdict(slow, "media.download")
    assert v == WARN and "1.0x, asked 4x" in why


def test_select_by_id_and_prefix() -> None:
    assert [c.id for c in select(["register.digest"])] == ["register.digest"]
    assert {c.id for c in select(["keepalive"])} == {"keepalive.cadence", "keepalive.status", "keepalive.address"}
    assert len(select([])) == len(CLAUSES)
    with pytest.raises(ValueError, match="unknown clause 'bogus'"):
        select(["bogus"])


def test_every_clause_has_a_reference_and_judges_an_empty_run_without_error() -> None:
    results = evaluate(Builder().obs)
    assert len(results) == len(CLAUSES) == len(BY_ID)
    for r in results:
        assert r.reference.startswith("§") and r.verdict in (PASS, WARN, FAIL, SKIP)
        assert r.verdict == SKIP or r.clause.startswith(("register.x-gb-ver",)), (r.clause, r.verdict, r.why)


def test_media_evidence_skips_loss_and_broadcast_reasons() -> None:
    seen = ("INVITE play over udp -> 200 OK in 0.01 s", "ended: stopped")
    ok = with_media(s=live(evidence=seen))
    assert evidence(ok, "media.live-udp") == list(seen)  # the probe's facts under a PASS too
    lossy = with_media(s=live(packets=90, lost=10, evidence=seen))
    v, why = verdict(lossy, "media.live-udp")
    assert v == WARN and "10 of 100 RTP packets lost" in why
    none_recorded = "no recording to play back: RecordInfo listed none in the last 24 h"
    skipped = with_media(s=live("playback", skipped=none_recorded))
    assert verdict(skipped, "media.playback") == (SKIP, none_recorded)
    failed = with_media(s=live(error="no media within 3 s after the 200 OK (timed out)", evidence=seen, ended=False))
    v, why = verdict(failed, "media.live-udp")
    assert v == FAIL and "timed out" in why and "could not be ended" in why
    assert evidence(failed, "media.live-udp") == list(seen)
    voice = with_media()
    voice.obs.media.voice_output, voice.obs.media.broadcast_skip = True, "platform broadcast not available"
    assert verdict(voice, "media.broadcast") == (SKIP, "platform broadcast not available")
    none = Builder()
    none.obs.media = MediaObservations(skipped="the device is not registered")
    for clause in ("media.live-udp", "media.download", "media.broadcast"):
        assert verdict(none, clause) == (SKIP, "the device is not registered")


def test_record_info_judges_only_the_records_probe_answer() -> None:
    inner = (f'<SumNum>1</SumNum><RecordList Num="1"><Item><DeviceID>{CH[0]}</DeviceID><StartTime>2026-11-25T08:00:00'
             "</StartTime><EndTime>2026-11-25T09:00:00</EndTime></Item></RecordList>")  # fmt: skip
    b = Builder()
    b.exchange("MESSAGE", 200, body=manscdp("Response", "RecordInfo", 4, inner))
    b.exchange("MESSAGE", 200, body=manscdp("Response", "RecordInfo", 9, inner))  # the media probe's own search
    b.probe("records", value={"sn": 4})
    assert verdict(b, "query.record-info") == (PASS, "1 records in 1 packet(s), SumNum 1")
    b.probe("records", value={"records": 2})  # without the SN every RecordInfo answer counts
    assert verdict(b, "query.record-info")[0] == FAIL


# ------------------------------------------------------------------------------------------ voice broadcast (§7.11)
OUTPUT = "34020000001370000001"
AUDIO_OFFER = ("v=0\r\no={dev} 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               "m=audio 16000 RTP/AVP 8 96\r\na=recvonly\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:96 PS/90000\r\n"
               "{y}f=v/////a/1/8/1\r\n")  # fmt: skip
OUR_ANSWER = (b"v=0\r\no=34020000002000000001 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
              b"m=audio 30000 RTP/AVP 8\r\na=sendonly\r\na=rtpmap:8 PCMA/8000\r\ny=0200000017\r\n"
              b"f=v/////a/1/8/1\r\n")  # fmt: skip
ROW = {"id": "b1", "state": "ended", "reason": "end of file", "error": False, "packets": 50, "sent_seconds": 1.0,
       "payload": 8, "transport": "udp", "media_address": "127.0.0.1:16000", "ssrc": "0200000017"}  # fmt: skip


def broadcast_run(result: str | None = "OK", *, invite: bool = True, y: bool = True, subject: bool = True,
                  response_at: float = 10.2, bye_from_device: bool = False, row: dict | None = ROW,
                  error: str = "", over: bool = True) -> Builder:  # fmt: skip
    """A traced broadcast: our Notify Broadcast, the device's Response, its audio INVITE, our 200, ACK, BYE."""
    b = Builder()
    b.obs.media = MediaObservations(voice_output=True)
    notify = manscdp("Notify", "Broadcast", 7, f"<SourceID>{PLATFORM}</SourceID><TargetID>{OUTPUT}</TargetID>\r\n")
    b.exchange("MESSAGE", 200, incoming=False, at=10.0, body=notify)
    if result is not None:
        answer = manscdp("Response", "Broadcast", 7, f"<Result>{result}</Result>")
        b.exchange("MESSAGE", 200, at=response_at, body=answer)
    if invite:
        offer = AUDIO_OFFER.format(dev=DEV, y="y=0200000017\r\n" if y else "").encode()
        headers = [("Subject", f"{PLATFORM}:0200000017,{DEV}:0")] if subject else []
        inv = request("INVITE", call_id="talk", cseq=1, headers=headers, body=offer)
        b.add("in", inv, response_at + 0.1)
        ok = response(inv, 200)
        framing = [(k, v) for k, v in ok.headers.items() if k.lower() != "content-length"]
        b.add("out", sip("SIP/2.0 200 OK", [*framing, ("Content-Type", "application/sdp")], OUR_ANSWER))
        b.add("in", request("ACK", call_id="talk", cseq=1), response_at + 0.15)
        bye = request("BYE", call_id="talk", cseq=2, incoming=bye_from_device)
        b.add("in" if bye_from_device else "out", bye, response_at + 1.2)
        b.add("out" if bye_from_device else "in", response(bye, 200))
    kind = "refused" if error else ""
    b.obs.media.broadcast = BroadcastAttempt(OUTPUT, 1.0, 9.9, response_at + 2, row, error, kind, over)
    return b


def test_broadcast_passes_with_the_whole_exchange_in_evidence() -> None:
    b = broadcast_run()
    v, why = verdict(b, "media.broadcast")
    assert v == PASS and "50 RTP packets (1 s) sent" in why and "end of file" in why, why
    ev = evidence(b, "media.broadcast")
    assert ev[1] == f"Notify Broadcast SN 7: SourceID {PLATFORM}, TargetID {OUTPUT} -> 200 answer to the MESSAGE"
    assert ev[2] == "Response Broadcast Result OK 0.20 s after the Notify"
    assert ev[3].startswith("device INVITE sip:34020000002000000001@3402000000 0.10 s after the Response: "
                            "m=audio 16000 RTP/AVP 8 96 (PCMA, PS), recvonly, y=0200000017, Subject ")
    assert ev[4:6] == ["our 200: sendonly, PCMA, y=0200000017", "ACK 0.05 s after our 200"]
    assert "RTP sent: 50 packets, 1 s of PCMA over udp to 127.0.0.1:16000, SSRC 0200000017" in ev
    assert "BYE (ours) answered 200" in ev and ev[-1] == "ended: end of file"


def test_broadcast_refused_with_result_error_fails_with_the_response() -> None:
    reason = "broadcast b1 to 34020000001370000001: the device refused the broadcast: Result ERROR"
    b = broadcast_run("ERROR", invite=False, row=None, error=reason)
    v, why = verdict(b, "media.broadcast")
    assert (v, why) == (FAIL, reason)
    ev = evidence(b, "media.broadcast")
    assert "Response Broadcast Result ERROR 0.20 s after the Notify" in ev and "no audio INVITE" not in " ".join(ev)
    assert ev[-1] == "ended: by the broadcast service, on the error"


@pytest.mark.parametrize(("changes", "expected", "words"), [
    ({"y": False}, WARN, "no y= in the audio INVITE"),
    ({"subject": False}, WARN, "no Subject in the audio INVITE"),
    ({"result": None}, WARN, "no Response Broadcast MESSAGE before the audio INVITE"),
    ({"response_at": 17.0}, WARN, "Response Broadcast after 7.0 s"),
    ({"bye_from_device": True, "row": {**ROW, "reason": "the device ended the broadcast (BYE)", "packets": 10,
                                       "sent_seconds": 0.2}}, WARN, "the device hung up after 0.2 s of 1 s"),
    ({"invite": False, "row": None, "error": "the device said OK but sent no INVITE within 5 s"}, FAIL,
     "sent no INVITE within 5 s"),
    ({"row": {**ROW, "packets": 0, "sent_seconds": 0}}, FAIL, "no RTP sent"),
    ({"over": False}, FAIL, "the broadcast could not be ended"),
])  # fmt: skip
def test_broadcast_deviations_are_flagged(changes: dict, expected: str, words: str) -> None:
    v, why = verdict(broadcast_run(**changes), "media.broadcast")
    assert v == expected and words in why, (v, why)


def test_broadcast_skips_say_why() -> None:
    b = Builder()
    b.obs.media = MediaObservations()
    assert verdict(b, "media.broadcast") == (SKIP, "the device lists no voice output")
    b.obs.media = MediaObservations(broadcast_skip="not reached within the run's budget")
    assert verdict(b, "media.broadcast") == (SKIP, "not reached within the run's budget")
    b.obs.media = MediaObservations(voice_output=True)
    assert verdict(b, "media.broadcast") == (SKIP, "no broadcast in this run")
    lost = broadcast_run()
    lost.obs.entries.clear()  # the trace kept none of it: not a PASS on the service's word alone
    v, why = verdict(lost, "media.broadcast")
    assert v == WARN and "not in the run's trace" in why, why


def test_the_response_broadcast_answers_our_notify() -> None:
    """A.2.6.11: the Notify Broadcast's SN is one the platform sent (not a stray Response)."""
    assert verdict(broadcast_run(), "response.cmd-type") == (PASS, "1 Response(s), CmdType and SN as asked")
