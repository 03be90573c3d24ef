"""Device operations end to end: `gb28181 serve`, a raw-socket NVR answering in the wild fixtures' GB2312 byte
format, and the CLI: PTZ with a timed stop, presets, record search in several packets with duplicates, record and
guard commands with their Results, reboot, timeouts, and a channels CSV export -> edit -> import round trip."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time

import pytest

from tests.e2e import gb_answers
from tests.e2e.conftest import PYTHON, run_tool
from tests.e2e.raw_device import RawDevice
from tests.e2e.serve_helpers import Server
from tests.e2e.test_catalog_e2e import NVR, channel, sync

pytestmark = pytest.mark.e2e

CH1, CH2, CH3 = channel(1), channel(2), channel(3)


async def started(tmp_path) -> tuple[Server, RawDevice]:  # type: ignore[no-untyped-def]
    srv = Server(tmp_path, sip_extra='password = "12345678"\nquery_timeout = 2',
                 catalog_extra="sync_on_register = false\ninter_packet_timeout = 2")  # fmt: skip
    await srv.start()
    device = await RawDevice.start(NVR, "12345678", ("127.0.0.1", srv.sip_port))
    assert await device.register() == 200
    summary = await sync(srv, device, [[(CH1, "大门口"), (CH2, "停车场东"), (CH3, "仓库北侧")]], 3)
    assert summary["added"] == 3
    return srv, device


def cli(srv: Server, *args: str) -> asyncio.Task[tuple[int, str, str]]:
    """A CLI command running while the test plays the device."""
    full = (*args, "--json", "--admin", srv.admin, "--db", str(srv.db))
    return asyncio.create_task(run_tool(PYTHON, "-m", "cli", *full, timeout=60))


async def ok(task: asyncio.Task[tuple[int, str, str]]) -> object:
    rc, out, err = await task
    assert rc == 0, err
    return json.loads(out)


async def test_ptz_presets_controls_and_record_search_round_trip(tmp_path):
    srv, device = await started(tmp_path)
    try:
        # PTZ right for 1 s: the move, then the platform's own stop, both to the NVR with DeviceID = the channel
        task = cli(srv, "ptz", CH1, "right", "--speed", "128", "--duration", "1")
        move = await device.next_request()
        moved = time.monotonic()
        stop = await device.next_request()
        gap = time.monotonic() - moved
        assert move.startswith(f"MESSAGE sip:{NVR}@".encode())
        assert b"<CmdType>DeviceControl</CmdType>" in move and f"<DeviceID>{CH1}</DeviceID>".encode() in move
        assert b"<PTZCmd>A50F0101808000B6</PTZCmd>" in move
        assert b"<PTZCmd>A50F0100000000B5</PTZCmd>" in stop and gap > 0.5
        row = await ok(task)
        assert (row["ptz_cmd"], row["stop"], row["duration"]) == ("A50F0101808000B6", "A50F0100000000B5", 1.0)

        # focus near until told otherwise: one message, the FI code
        row = await ok(cli(srv, "ptz", CH1, "focus-near", "--speed", "64"))
        assert b"<PTZCmd>A50F014240000037</PTZCmd>" in await device.next_request()

        # presets: the list in GB2312 with Chinese names, then goto 3
        task = cli(srv, "preset", "list", CH1)
        query = await device.next_request()
        assert b"<CmdType>PresetQuery</CmdType>" in query and f"<DeviceID>{CH1}</DeviceID>".encode() in query
        assert (
            await device.message(gb_answers.presets(gb_answers.sn_of(query), CH1, [(1, "预置点 1"), (2, "大门")]))
            == 200
        )
        assert await ok(task) == [{"preset": 1, "name": "预置点 1"}, {"preset": 2, "name": "大门"}]
        row = await ok(cli(srv, "preset", "goto", CH1, "3"))
        assert b"<PTZCmd>A50F01820003003A</PTZCmd>" in await device.next_request()

        # record search: three GB2312 packets, 7 items, 5 distinct files, sorted
        task = cli(srv, "records", CH1, "--start", "2024-05-01T00:00:00", "--end", "2024-05-01T23:59:59")
        query = await device.next_request()
        body = gb_answers.body_of(query)
        assert b"<CmdType>RecordInfo</CmdType>" in body and b"<Type>all</Type>" in body
        assert (
            b"<StartTime>2024-05-01T00:00:00</StartTime>" in body and b"<EndTime>2024-05-01T23:59:59</EndTime>" in body
        )
        for packet in gb_answers.record_packets(gb_answers.sn_of(query)):
            assert await device.message(packet) == 200
        files = await ok(task)
        assert [f["file_path"] for f in files] == [f"/record/ch1/0{n}.mp4" for n in range(5)]
        assert files[0]["name"] == "通道一" and files[4]["file_size"] == 262144004

        # record start: the device's Result OK comes back; guard arm: Result ERROR is an error, not a success
        task = cli(srv, "record", "start", CH1)
        command = await device.next_request()
        assert b"<RecordCmd>Record</RecordCmd>" in command
        assert await device.message(gb_answers.control_result(gb_answers.sn_of(command), CH1)) == 200
        assert (await ok(task))["result"] == "OK"
        task = cli(srv, "guard", "arm", NVR)
        command = await device.next_request()
        assert b"<GuardCmd>SetGuard</GuardCmd>" in command and f"<DeviceID>{NVR}</DeviceID>".encode() in command
        assert await device.message(gb_answers.control_result(gb_answers.sn_of(command), NVR, "ERROR")) == 200
        rc, _, err = await task
        assert rc != 0 and "Result ERROR" in err

        # reboot: TeleBoot to the device, no Result expected
        row = await ok(cli(srv, "reboot", NVR))
        assert b"<TeleBoot>Boot</TeleBoot>" in await device.next_request() and row["command"] == "TeleBoot"

        # clear errors: an unknown channel, a channel given to reboot
        rc, _, err = await cli(srv, "ptz", "34020000001310009999", "left")
        assert rc != 0 and "404" in err and "no device or channel 34020000001310009999" in err
        rc, _, err = await cli(srv, "reboot", CH1)
        assert rc != 0 and f"it is a channel of {NVR}" in err
        counters = (await srv.cli("stats"))["counters"]
        assert counters["control:PTZCmd"] == 4 and counters["records:complete"] == 1
    finally:
        device.close()
        await srv.stop()


async def test_unanswered_queries_and_controls_time_out_with_a_clear_error(tmp_path):
    srv, device = await started(tmp_path)
    try:
        for args, words in (
            (("records", CH2, "--start", "-1d"), "did not answer RecordInfo within 2 s"),
            (("record", "stop", CH2), "did not answer DeviceControl RecordCmd within 2 s"),
            (("preset", "list", CH2), "did not answer PresetQuery within 2 s"),
        ):
            began = time.monotonic()
            rc, _, err = await cli(srv, *args)
            assert rc == 1 and "504" in err and words in err, err
            assert time.monotonic() - began < 20  # a clear timeout, not a hang
            assert b"<SN>" in await device.next_request()  # the device did get the question
        # a record search answered in part, then silence: a partial result, flagged
        task = cli(srv, "records", CH1, "--start", "2024-05-01T00:00:00", "--end", "2024-05-02T00:00:00")
        query = await device.next_request()
        first = gb_answers.record_packets(gb_answers.sn_of(query))[0]
        assert await device.message(first) == 200
        rc, out, err = await task
        assert rc == 0 and "partial answer (inter-packet timeout): 2 of 5 files" in err
        assert len(json.loads(out)) == 2
    finally:
        device.close()
        await srv.stop()


async def test_channels_csv_export_edit_import_round_trip(tmp_path):
    srv, device = await started(tmp_path)
    path = tmp_path / "channels.csv"
    try:
        assert (await ok(cli(srv, "channels", "export", str(path))))["rows"] == 3
        data = path.read_bytes()
        assert data.startswith(b"\xef\xbb\xbf")  # Excel reads the Chinese names right
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
        assert [(r["id"], r["name"]) for r in rows] == [(CH1, "大门口"), (CH2, "停车场东"), (CH3, "仓库北侧")]
        rows[0]["name"] = "东大门"
        rows[1].update(longitude="117.25", latitude="31.83", point_class="1", civil_code="34020001")
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
        path.write_bytes(out.getvalue().encode("gbk"))  # saved again by Excel on a Chinese Windows

        dry = await ok(cli(srv, "channels", "import", str(path), "--dry-run"))
        assert (dry["rows"], dry["changed"], dry["applied"], dry["encoding"]) == (3, 2, False, "gbk")
        assert [c["after"] for c in dry["changes"]] == [
            {"name": "东大门"}, {"civil_code": "34020001", "latitude": 31.83, "longitude": 117.25, "point_class": 1},
        ]  # fmt: skip
        assert [c["name"] for c in await srv.cli("channels", "--device", NVR)] == ["大门口", "停车场东", "仓库北侧"]

        done = await ok(cli(srv, "channels", "import", str(path)))
        assert (done["changed"], done["applied"]) == (2, True)
        listed = await srv.cli("channels", "--device", NVR)
        assert [c["name"] for c in listed] == ["东大门", "停车场东", "仓库北侧"]
        assert (listed[1]["longitude"], listed[1]["latitude"], listed[1]["point_class"], listed[1]["civil_code"]) == (
            117.25, 31.83, 1, "34020001",
        )  # fmt: skip
        assert (await ok(cli(srv, "channels", "import", str(path))))["changed"] == 0  # the same file again

        # one bad row: a clear error naming it, and nothing applied
        rows[0]["name"], rows[2]["longitude"], rows[2]["latitude"] = "西门", "999", "31"
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
        path.write_text(out.getvalue(), encoding="utf-8")
        rc, _, err = await cli(srv, "channels", "import", str(path))
        assert rc == 1 and "400" in err and f"line 4 ({CH3}): longitude '999'" in err
        assert (await srv.cli("channels", "--device", NVR))[0]["name"] == "东大门"
    finally:
        device.close()
        await srv.stop()
