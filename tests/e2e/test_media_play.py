"""Media sessions end to end: `gb28181 serve` with the embedded receiver, a raw-socket camera (tests/e2e/
raw_media_device.py) that answers INVITE like the wild devices and streams the H.264 clip as PS over RTP, and the
CLI: 5 s of live video over UDP, tcp-passive and tcp-active land in a file ffprobe reads as H.264 in MPEG-PS (and our
PS walker checks its structure); two viewers of a channel cause one INVITE and the stream ends with the last one;
playback with pause / resume / scale (MANSRTSP bodies checked at the device); a download runs to MediaStatus 121;
a silent device gets CANCEL after the INVITE timeout; a device that sends no media gets BYE; a device BYE ends it."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gb28181.invite import read_mansrtsp
from gb28181.media import ps
from tests.e2e.conftest import PYTHON, free_port, run_tool
from tests.e2e.raw_device import _headers
from tests.e2e.raw_media_device import MediaDevice
from tests.e2e.serve_helpers import Server

pytestmark = pytest.mark.e2e

CAMERA = "34020000001320000007"  # an IPC: its own channel
WAIT = 30.0  # bounds for a loaded machine, never speed assertions


async def started(tmp_path: Path, *, invite_timeout: float = 3, no_media: float = 3) -> tuple[Server, MediaDevice]:
    base = free_port()
    srv = Server(tmp_path, sip_extra='password = "12345678"\nquery_timeout = 3',
                 extra=f'[media]\nrtp_ports = "{base}-{min(base + 30, 65535)}"\nbind = "127.0.0.1"\n'
                       f'advertise = "127.0.0.1"\ninvite_timeout = {invite_timeout}\nno_media_timeout = {no_media}\n')
    await srv.start()
    device = await MediaDevice.start(CAMERA, "12345678", ("127.0.0.1", srv.sip_port))
    assert await device.register() == 200
    return srv, device


async def cli(srv: Server, *args: str, ok: bool = True, timeout: float = 90) -> object:
    rc, out, err = await run_tool(PYTHON, "-m", "cli", *args, "--json", "--admin", srv.admin, "--db", str(srv.db),
                                  timeout=timeout)  # fmt: skip
    if not ok:
        assert rc != 0, out
        return err
    assert rc == 0, f"{args}: {err}\n{srv.log()}"
    return json.loads(out)


async def wait_for(predicate, what: str, srv: Server) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}\n{srv.log()}"
        await asyncio.sleep(0.05)


def check_ps(path: Path, seconds: float) -> None:
    data = path.read_bytes()
    report = ps.walk(data)
    assert data.startswith(b"\x00\x00\x01\xba")  # a pack header first ...
    assert report.system_headers >= 1 and report.psms >= 1 and report.psm_crc_errors == 0  # ... of a keyframe
    assert report.stream_type_names() == {0xE0: "h264"} and report.skipped_bytes == 0
    assert report.packs >= 25 * seconds * 0.7  # 25 frames/s, one pack each (paced by the device)
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe not installed: the PS file was checked by our walker only")
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=format_name,duration:stream=codec_name,codec_type",
         "-of", "json", str(path)], capture_output=True, text=True, timeout=60, check=True).stdout
    info = json.loads(out)
    assert info["format"]["format_name"] == "mpeg"
    assert [(s["codec_type"], s["codec_name"]) for s in info["streams"]] == [("video", "h264")]
    assert float(info["format"]["duration"]) == pytest.approx(seconds, abs=1.0)


@pytest.mark.parametrize("transport", ["udp", "tcp-passive", "tcp-active"])
async def test_five_seconds_of_live_video_over_each_transport(tmp_path: Path, transport: str) -> None:
    srv, device = await started(tmp_path)
    try:
        out = tmp_path / f"live-{transport}.ps"
        row = await cli(srv, "play", CAMERA, "--seconds", "5", "--output", str(out), "--transport", transport)
        assert isinstance(row, dict) and row["written"] > 0
        assert (row["state"], row["consumers"]) == ("ended", [])  # its stop ended the stream (its viewer rode on it)
        assert len(device.invites) == 1
        start, fields, body = _headers(device.invites[0])
        assert start.startswith(f"INVITE sip:{CAMERA}@")
        assert fields["subject"].startswith(f"{CAMERA}:0") and fields["subject"].endswith(",34020000002000000001:0")
        sdp = body.decode()
        assert "s=Play" in sdp and "a=recvonly" in sdp and ("TCP/RTP/AVP" in sdp) == (transport != "udp")
        if transport != "udp":
            assert f"a=setup:{transport.split('-')[1]}" in sdp
        await wait_for(lambda: len(device.byes) == 1, "the BYE after the last consumer left", srv)
        assert await cli(srv, "sessions") == []
        check_ps(out, 5)
    finally:
        device.close()
        await srv.stop()


async def test_two_viewers_share_one_stream_and_the_last_one_ends_it(tmp_path: Path) -> None:
    srv, device = await started(tmp_path)
    try:
        first = await cli(srv, "play", CAMERA)
        second = await cli(srv, "play", CAMERA, "--transport", "tcp-passive")  # joins: transport is the first's
        assert isinstance(first, dict) and isinstance(second, dict)
        assert first["id"] == second["id"] and first["consumer"] != second["consumer"]
        assert len(device.invites) == 1
        assert first["ssrc"] == "0" + first["ssrc"][1:]  # the device's zero-padded y= won
        rows = await cli(srv, "sessions")
        assert isinstance(rows, list) and len(rows) == 1 and len(rows[0]["consumers"]) == 2
        assert rows[0]["state"] == "streaming" and rows[0]["packets"] > 0
        left = await cli(srv, "stop", first["consumer"])
        assert isinstance(left, dict) and left["left"] == first["consumer"] and not device.byes
        await cli(srv, "stop", second["consumer"])
        await wait_for(lambda: len(device.byes) == 1, "BYE", srv)
        assert await cli(srv, "sessions") == []
        err = await cli(srv, "play", "34020000001329999999", ok=False)
        assert "34020000001329999999" in str(err)
        row = await cli(srv, "play", CAMERA)
        assert isinstance(row, dict)
        url = srv.admin + row["live"]
        status = await asyncio.to_thread(http_status, url[:-2] + ("AA" if not url.endswith("AA") else "BB"))
        assert status == 403  # a tampered live token
        assert await asyncio.to_thread(http_status, srv.admin + f"/live/{row['id']}") == 403  # none at all
        assert await srv.stop() == 0
        assert len(device.byes) == 2  # shutdown ends the open session with BYE
    finally:
        device.close()
        await srv.stop()


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=20) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


async def test_playback_pause_resume_scale_then_stop(tmp_path: Path) -> None:
    srv, device = await started(tmp_path)
    try:
        row = await cli(srv, "playback", CAMERA, "--start", "1764000000", "--end", "1764003600", "--speed", "2")
        assert isinstance(row, dict) and row["kind"] == "playback" and row["scale"] == 2
        sdp = _headers(device.invites[0])[2].decode()
        assert "s=Playback" in sdp and f"u={CAMERA}:0" in sdp and "t=1764000000 1764003600" in sdp
        assert row["ssrc"].startswith("0")  # history y= starts with 1; the device answered it zero-padded
        for action in (["pause"], ["resume"], ["scale", "0.5"], ["seek", "100"]):
            await cli(srv, "playback-control", row["id"], *action)
        bodies = [read_mansrtsp(b) for b in device.infos]
        assert [b[0] for b in bodies] == ["PLAY RTSP/1.0", "PAUSE RTSP/1.0", "PLAY RTSP/1.0", "PLAY RTSP/1.0",
                                          "PLAY RTSP/1.0"]  # fmt: skip
        assert bodies[0][1]["scale"] == "2.0" and bodies[1][1]["pausetime"] == "now"
        assert bodies[2][1]["range"] == "npt=now-" and bodies[3][1]["scale"] == "0.5"
        assert bodies[4][1]["range"] == "npt=100-"
        assert [int(b[1]["cseq"]) for b in bodies] == [1, 2, 3, 4, 5]
        await cli(srv, "stop", row["id"])
        assert len(device.byes) == 1
        err = await cli(srv, "playback-control", row["id"], "pause", ok=False)
        assert "no media session" in str(err)
    finally:
        device.close()
        await srv.stop()


async def test_download_runs_to_media_status_121(tmp_path: Path) -> None:
    srv, device = await started(tmp_path)
    device.behaviour.loops = 1
    device.behaviour.media_status = True
    try:
        out = tmp_path / "download.ps"
        row = await cli(srv, "download", CAMERA, "--start", "1764000000", "--end", "1764000004", "--speed", "4",
                        "--output", str(out))  # fmt: skip
        assert isinstance(row, dict) and row["written"] > 0
        sdp = _headers(device.invites[0])[2].decode()
        assert "s=Download" in sdp and "a=downloadspeed:4" in sdp
        await wait_for(lambda: len(device.byes) == 1, "the BYE after MediaStatus 121", srv)
        check_ps(out, 4)
        assert "MediaStatus 121" in srv.log()
    finally:
        device.close()
        await srv.stop()


async def test_invite_timeout_cancels_and_no_media_and_device_bye_end_sessions(tmp_path: Path) -> None:
    srv, device = await started(tmp_path, invite_timeout=1.5, no_media=1.5)
    try:
        device.behaviour.answer = False
        err = await cli(srv, "play", CAMERA, ok=False)
        assert "did not answer the INVITE within 1.5 s" in str(err)
        assert device.cancels == 1
        device.behaviour.answer, device.behaviour.send_media = True, False
        err = await cli(srv, "play", CAMERA, ok=False)
        assert "no media within 1.5 s" in str(err)
        await wait_for(lambda: len(device.byes) == 1, "BYE after no media", srv)
        device.behaviour.send_media, device.behaviour.bye_after = True, 1.0
        row = await cli(srv, "play", CAMERA)
        assert isinstance(row, dict)
        await wait_for(lambda: "the device ended the session (BYE)" in srv.log(), "the device's BYE handled", srv)
        assert await cli(srv, "sessions") == []
    finally:
        device.close()
        await srv.stop()
