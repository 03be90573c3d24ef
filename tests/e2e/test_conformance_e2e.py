"""`gb28181 conformance` against a running `gb28181 serve`: every simulator profile with a known quirk is flagged
for exactly its quirks and passes the rest, media included (live over UDP, tcp-passive and tcp-active, playback
with MANSRTSP and MediaStatus 121, download at a speed: SSRC 0 in RTP from the 4G camera, another y= in the lower
platform's 200 OK); a clean profile passes everything it supports; a raw-socket device that registers but answers
no query gets FAILs that say it timed out, and one that answers the INVITE but never sends RTP gets media FAILs
that say so, each within the run's budget (no hang) and with the session ended by BYE."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PYTHON, free_port, run_tool
from tests.e2e.raw_device import RawDevice
from tests.e2e.raw_media_device import Behaviour, MediaDevice
from tests.e2e.serve_helpers import Server
from tests.e2e.test_simulator_e2e import PASSWORD, Sim

pytestmark = pytest.mark.e2e

# Clauses a short run cannot observe: no registration refresh (expiry 3600 s) and no 403 to retry after.
UNOBSERVABLE = {"register.refresh", "register.after-403"}
MEDIA = {"media.live-udp", "media.live-tcp-passive", "media.live-tcp-active", "media.playback", "media.download",
         "media.broadcast"}  # fmt: skip

LIVE = {"media.live-udp", "media.live-tcp-passive", "media.live-tcp-active"}
STREAMS = LIVE | {"media.playback", "media.download"}  # every session: an SSRC quirk shows in each

# profile -> (device ID of its first device, the clauses its quirks must flag, written out by hand)
PROFILES: dict[str, tuple[str, set[str]]] = {
    # ignores-qop, utf8-declared-gb2312, one catalog item per MESSAGE
    "xueliang-village-nvr": ("34020000001180000001", {"register.digest", "catalog.charset", "catalog.packets"}),
    # digest username differing from the ID, placeholder fields, ParentID = the platform's ID
    "tianwang-ipc": ("34020000001320000001", {"register.username", "catalog.placeholders", "catalog.ids"}),
    "tianwang-nvr": ("34020000001180000001", {"catalog.placeholders"}),
    # a new source port per keepalive; RTP with SSRC 0 whatever y= said
    "mobile-4g-camera": ("34020000001320000001", {"keepalive.address"} | STREAMS),
    "department-camera": ("34020000001320000001", set()),  # clean: lists itself; asks 30 s, then takes Min-Expires
    # 20 catalog items per UDP MESSAGE: 7.6 KB datagrams, beyond what eXosip-based peers take (App.M: use TCP)
    # ... and its own y= in every 200 OK (App. G note 16), streamed with that SSRC
    "lower-platform": ("34020000002000000101", {"catalog.packets"} | STREAMS),
}
# the quirk each media clause must name (the verdict's why)
MEDIA_WHY = {"mobile-4g-camera": ("FAIL", "SSRC 0 in RTP"), "lower-platform": ("WARN", "y= changed in the 200 OK")}
SIP = f'password = "{PASSWORD}"\nquery_timeout = 5'
V2016 = {"xueliang-village-nvr", "tianwang-ipc", "tianwang-nvr"}  # no X-GB-ver: PointType does not apply
VOICE = {"department-camera"}  # run with --audio-outputs 1: a 137 voice output beside its camera


def media(invite_timeout: float = 5, no_media: float = 3) -> str:
    """[media]: the embedded receiver on free loopback ports, short timers."""
    base = free_port()
    return (f'[media]\nrtp_ports = "{base}-{min(base + 30, 65535)}"\nbind = "127.0.0.1"\nadvertise = "127.0.0.1"\n'
            f"invite_timeout = {invite_timeout}\nno_media_timeout = {no_media}\n")


async def conformance(srv: Server, device_id: str, *args: str, timeout: float = 120) -> tuple[int, dict[str, Any]]:
    rc, out, err = await run_tool(
        PYTHON, "-m", "cli", "conformance", device_id, "--format", "json", "--admin", srv.admin, "--db", str(srv.db),
        *args, timeout=timeout,
    )  # fmt: skip
    assert rc in (0, 1), f"conformance failed ({rc}): {err}\n{srv.log()}"
    return rc, json.loads(out)


async def armed(srv: Server, device_id: str) -> None:
    """Until the platform logged the run's start (its trace is armed: the device's REGISTER will be seen)."""
    for _ in range(200):
        if f"conformance {device_id}: run started" in srv.log():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the conformance run did not start\n{srv.log()}")


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    return {r["clause"]: r["verdict"] for r in report["results"]}


@pytest.mark.parametrize("profile", sorted(PROFILES))
async def test_a_profile_is_flagged_for_exactly_its_quirks(tmp_path: Path, profile: str) -> None:
    device_id, quirks = PROFILES[profile]
    srv = Server(tmp_path, sip_extra=SIP, catalog_extra="sync_on_register = true", extra=media())
    await srv.start()
    # --keepalive 2: the cadence and address clauses see three keepalives within the run; the device reports the
    # same interval in its BasicParam.
    voice = ("--audio-outputs", "1") if profile in VOICE else ()
    sim = Sim(srv, tmp_path, "--devices", "1", "--profile", profile, "--keepalive", "2", *voice)
    try:
        run = asyncio.create_task(conformance(srv, device_id, "--timeout", "90"))
        await armed(srv, device_id)  # the run is armed before the device registers: its REGISTER is judged too
        await sim.start()
        rc, report = await run
        devices = await srv.devices()
    finally:
        await sim.kill()
        await srv.stop()
    got = verdicts(report)
    flagged = {c for c, v in got.items() if v in ("WARN", "FAIL")}
    skipped = {c for c, v in got.items() if v == "SKIP"}
    # a profile lists a voice output (137) only with --audio-outputs: the others' broadcast is SKIP with that reason
    no_voice = set() if profile in VOICE else {"media.broadcast"}
    expected_skips = UNOBSERVABLE | no_voice | ({"catalog.point-type"} if profile in V2016 else set())
    results = {r["clause"]: r for r in report["results"]}
    odd = [results[c] for c in sorted((flagged ^ quirks) | (skipped ^ expected_skips))]
    assert flagged == quirks, json.dumps([odd, report["notes"]], ensure_ascii=False, indent=1)
    assert skipped == expected_skips, json.dumps([odd, report["notes"]], ensure_ascii=False, indent=1)
    if profile in VOICE:  # after every video session of the run, the broadcast too
        assert results["media.broadcast"]["verdict"] == "PASS", results["media.broadcast"]
    else:
        assert results["media.broadcast"]["why"] == "the device lists no voice output"
    for clause in STREAMS:
        r = results[clause]
        shown = json.dumps(r, ensure_ascii=False, indent=1)
        if profile in MEDIA_WHY:
            verdict, why = MEDIA_WHY[profile]
            assert r["verdict"] == verdict and why in r["why"], shown
        # the evidence shows what the probe saw, and every session was ended
        assert any(e.startswith("PS: ") and "video codec H264" in e for e in r["evidence"]), shown
        assert any(e.startswith("ended: ") for e in r["evidence"]), shown
    for clause in ("media.playback", "media.download"):
        assert "MediaStatus 121 received" in results[clause]["evidence"], results[clause]
    assert "MANSRTSP pause ok, resume ok, scale ok" in results["media.playback"]["evidence"]
    assert rc == (1 if "FAIL" in got.values() else 0)
    # The run undid what it changed: the preset it set was deleted, recording stopped, guard disarmed.
    assert any(n.startswith("undone: delete preset") for n in report["notes"]), report["notes"]
    assert not any(n.startswith("could not undo") for n in report["notes"]), report["notes"]
    assert devices[device_id]["status"] == "online"


async def test_text_and_offline_html_reports(tmp_path: Path) -> None:
    srv = Server(tmp_path, sip_extra=SIP, catalog_extra="sync_on_register = true", extra=media())
    await srv.start()
    sim = Sim(srv, tmp_path, "--devices", "1", "--profile", "tianwang-ipc")
    device_id = "34020000001320000001"
    html = tmp_path / "report.html"
    try:
        await sim.start()
        await srv.wait_for(lambda d: d.get(device_id, {}).get("status") == "online", 20, "online")
        common = ("--admin", srv.admin, "--db", str(srv.db), "--only", "catalog,query.device-info,media.live-udp")
        rc, out, err = await run_tool(PYTHON, "-m", "cli", "conformance", device_id, *common, timeout=120)
        assert rc == 0, err
        rc, _, err = await run_tool(PYTHON, "-m", "cli", "conformance", device_id, "--format", "html", "--output",
                                    str(html), *common, timeout=120)  # fmt: skip
        assert rc == 0, err
        bad = await run_tool(PYTHON, "-m", "cli", "conformance", device_id, "--only", "nonsense", *common[:4])
    finally:
        await sim.kill()
        await srv.stop()
    lines = out.splitlines()
    assert lines[0].startswith(f"GB/T 28181 conformance of {device_id}")
    assert any(line.startswith("WARN  catalog.placeholders") for line in lines), out
    assert any(line.startswith("ok    query.device-info") for line in lines), out
    assert not any("register." in line for line in lines)  # --only
    assert lines[-1].startswith(f"{device_id}: ") and "1 warn" not in lines[-1]  # placeholders + ParentID: 2 warn
    page = html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page and "catalog.placeholders" in page
    # the media evidence: what the probe saw of the live session
    assert any(line.startswith("ok    media.live-udp") for line in lines), out
    assert "video codec H264" in page and "INVITE play over udp -&gt; 200 OK" in page and "ended: stopped" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page  # opens offline
    assert bad[0] == 1 and "unknown clause 'nonsense'" in bad[2]


async def test_a_device_that_answers_nothing_fails_with_timeouts_not_a_hang(tmp_path: Path) -> None:
    srv = Server(tmp_path, sip_extra="query_timeout = 1.5", catalog_extra="first_packet_timeout = 2")
    await srv.start()
    device_id = "34020000001320000077"
    device: RawDevice | None = None
    try:
        run = asyncio.create_task(conformance(srv, device_id, "--timeout", "25", "--only",
                                              "register,catalog,query,control,response"))  # fmt: skip
        await armed(srv, device_id)
        device = await RawDevice.start(device_id, srv.password, ("127.0.0.1", srv.sip_port))
        assert await device.register() == 200
        started = time.monotonic()
        rc, report = await run
        elapsed = time.monotonic() - started
    finally:
        if device is not None:
            device.close()
        await srv.stop()
    got = verdicts(report)
    assert rc == 1 and elapsed < 25 + 15
    assert got["register.digest"] == "PASS" and got["register.username"] == "PASS"  # RFC 2617 qop=auth, own ID
    for clause in ("query.device-info", "query.device-status", "query.config-basic", "catalog.sumnum",
                   "control.guard", "control.reset-alarm"):  # fmt: skip
        assert got[clause] == "FAIL", (clause, report)
        why = next(r["why"] for r in report["results"] if r["clause"] == clause)
        assert "no answer" in why or "did not" in why, (clause, why)
    # No channel is known, so the channel probes were not run: SKIP with the reason, not a false PASS.
    assert got["query.presets"] == got["control.ptz"] == "SKIP"
    assert any("no video channel" in n for n in report["notes"])


async def test_a_device_that_answers_the_invite_but_sends_no_rtp_fails_with_timeouts(tmp_path: Path) -> None:
    """Raw-socket cameras (tests/e2e/raw_media_device.py), no catalog (an IPC streams under its own ID): one answers
    every INVITE 200 and never sends RTP, one answers 100 Trying and nothing else. Every media clause says what
    timed out, the run ends within its budget, and each session was ended: BYE after the 200, CANCEL before it."""
    srv = Server(tmp_path, sip_extra='password = "12345678"\nquery_timeout = 1.5',
                 extra=media(invite_timeout=2, no_media=2))  # fmt: skip
    await srv.start()
    mute, silent = "34020000001320000007", "34020000001320000008"
    devices: list[MediaDevice] = []
    try:
        for device_id, behaviour in ((mute, Behaviour(send_media=False)), (silent, Behaviour(answer=False))):
            device = await MediaDevice.start(device_id, "12345678", ("127.0.0.1", srv.sip_port))
            device.behaviour = behaviour
            devices.append(device)
            assert await device.register() == 200
        started = time.monotonic()
        rc, report = await conformance(srv, mute, "--timeout", "40", "--only", "media")
        rc2, report2 = await conformance(srv, silent, "--timeout", "20", "--only", "media.live-udp")
        elapsed = time.monotonic() - started
        rc3, out, err = await run_tool(PYTHON, "-m", "cli", "sessions", "--json", "--admin", srv.admin, "--db",
                                       str(srv.db))  # fmt: skip
    finally:
        for device in devices:
            device.close()
        await srv.stop()
    assert rc == rc2 == 1 and elapsed < 60 + 15
    results = {r["clause"]: r for r in report["results"]}
    for clause in LIVE:
        r = results[clause]
        assert r["verdict"] == "FAIL" and "no media within 2 s after the 200 OK (timed out)" in r["why"], r
        assert any(e.startswith("INVITE play over") for e in r["evidence"]), r
    for clause in ("media.playback", "media.download"):  # it 200s the RecordInfo MESSAGE and never answers it
        r = results[clause]
        assert r["verdict"] == "SKIP" and r["why"].startswith("no recording to play back: RecordInfo failed"), r
    assert results["media.broadcast"]["verdict"] == "SKIP"
    (live,) = report2["results"]
    assert live["verdict"] == "FAIL" and "did not answer the INVITE within 2 s (timed out)" in live["why"], live
    mute_device, silent_device = devices
    assert len(mute_device.invites) == len(mute_device.byes) == 3  # one BYE per live mode: nothing left streaming
    assert len(silent_device.invites) == 1 and silent_device.cancels == 1
    assert rc3 == 0 and json.loads(out) == [], err


async def test_voice_broadcast_to_a_simulated_voice_output_passes(tmp_path: Path) -> None:
    """`gb28181 simulate --audio-outputs 1` lists a 137 voice output: the run broadcasts a 1 s tone to it through
    the platform's broadcast service and sees the whole §9.12 exchange; the device heard about 1 s of it."""
    srv = Server(tmp_path, sip_extra=SIP, extra=media())
    await srv.start()
    device_id = "34020000001320000001"
    sim = Sim(srv, tmp_path, "--devices", "1", "--profile", "department-camera", "--audio-outputs", "1")
    try:
        await sim.start()
        await srv.wait_for(lambda d: d.get(device_id, {}).get("status") == "online", 20, "online")
        rc, report = await conformance(srv, device_id, "--timeout", "60", "--only", "catalog.sumnum,media.broadcast")
        rc2, out, err = await run_tool(PYTHON, "-m", "cli", "sessions", "--json", "--admin", srv.admin, "--db",
                                       str(srv.db))  # fmt: skip
        summary = await sim.quit()
    finally:
        await sim.kill()
        await srv.stop()
    results = {r["clause"]: r for r in report["results"]}
    r = results["media.broadcast"]
    shown = json.dumps([r, report["notes"]], ensure_ascii=False, indent=1)
    assert rc == 0 and r["verdict"] == "PASS" and "50 RTP packets (1 s) sent" in r["why"], shown
    assert results["catalog.sumnum"]["verdict"] == "PASS", results["catalog.sumnum"]  # itself and its output
    ev = r["evidence"]
    output = f"{device_id[:10]}137{device_id[13:]}"
    assert ev[0] == f"broadcast of a 1 s tone to {output}", shown
    assert any(e.startswith("Notify Broadcast SN ") and f"TargetID {output} -> 200" in e for e in ev), shown
    assert any(e.startswith("Response Broadcast Result OK") for e in ev), shown
    assert any(e.startswith("device INVITE ") and "(PCMA, PS), recvonly, y=0" in e for e in ev), shown
    assert any(e.startswith("our 200: sendonly, PCMA") for e in ev) and any(e.startswith("ACK ") for e in ev), shown
    assert any(e.startswith("RTP sent: 50 packets, 1 s of PCMA over udp") for e in ev), shown
    assert "BYE (ours) answered 200" in ev and ev[-1] == "ended: end of file", shown
    assert rc2 == 0 and json.loads(out) == [], err  # nothing left running
    stats = summary["stats"]
    assert stats.get("broadcast") == 1 and stats.get("talk-ended") == 1, stats
    assert 0.8 <= stats.get("talk-audio-samples", 0) / 8000 <= 1.2, stats  # heard about the 1 s (loopback UDP)


async def test_a_device_refusing_the_broadcast_fails_with_its_response(tmp_path: Path) -> None:
    """A raw-socket device with a voice output answers the Notify Broadcast Result ERROR: FAIL, the Notify and the
    Response in the evidence, nothing left running."""
    from tests.e2e.test_broadcast_e2e import RAW_DEVICE, RAW_OUTPUT, TalkDevice, _catalog, _result

    srv = Server(tmp_path, sip_extra=SIP, extra=media(invite_timeout=2))
    await srv.start()
    dev = await TalkDevice.start(RAW_DEVICE, PASSWORD, ("127.0.0.1", srv.sip_port))
    try:
        assert await dev.register() == 200
        sync = asyncio.create_task(run_tool(PYTHON, "-m", "cli", "catalog", "sync", RAW_DEVICE, "--wait", "--admin",
                                            srv.admin, "--db", str(srv.db)))  # fmt: skip
        await dev.answer("Catalog", _catalog)
        assert (await sync)[0] == 0
        run = asyncio.create_task(conformance(srv, RAW_DEVICE, "--timeout", "30", "--only", "media.broadcast"))
        notify = await dev.answer("Broadcast", _result("ERROR"))
        rc, report = await run
        rc2, out, err = await run_tool(PYTHON, "-m", "cli", "sessions", "--json", "--admin", srv.admin, "--db",
                                       str(srv.db))  # fmt: skip
    finally:
        dev.close()
        await srv.stop()
    assert notify["TargetID"] == RAW_OUTPUT
    (r,) = report["results"]
    shown = json.dumps(r, ensure_ascii=False, indent=1)
    assert rc == 1 and r["verdict"] == "FAIL" and "refused the broadcast" in r["why"], shown
    assert "Result ERROR" in r["why"], shown
    assert any(e.startswith(f"Notify Broadcast SN {notify['SN']}: ") and f"TargetID {RAW_OUTPUT}" in e
               for e in r["evidence"]), shown  # fmt: skip
    assert any(e.startswith("Response Broadcast Result ERROR") for e in r["evidence"]), shown
    assert not any(e.startswith("RTP sent") for e in r["evidence"]), shown
    assert rc2 == 0 and json.loads(out) == [], err
