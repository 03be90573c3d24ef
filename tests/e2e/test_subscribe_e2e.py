"""Subscriptions end to end: `gb28181 serve`, a raw-socket device that accepts SUBSCRIBE and NOTIFYs GB2312 bytes
exactly, and the CLI (GB/T 28181-2022 §9.4, §9.11, App.N)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from tests.e2e.conftest import PYTHON, REPO, run_tool
from tests.e2e.raw_notifier import RawNotifier
from tests.e2e.serve_helpers import Server
from tests.e2e.test_catalog_e2e import NVR, channel, packet

pytestmark = pytest.mark.e2e

FIXTURES = REPO / "fixtures" / "manscdp" / "made"


def notify_body(items: list[str]) -> bytes:
    return "\r\n".join([
        '<?xml version="1.0" encoding="GB2312"?>', "<Notify>", "<CmdType>Catalog</CmdType>", "<SN>41</SN>",
        f"<DeviceID>{NVR}</DeviceID>", f"<SumNum>{len(items)}</SumNum>", f'<DeviceList Num="{len(items)}">',
        *items, "</DeviceList>", "</Notify>", "",
    ]).encode("gb2312")  # fmt: skip


def sn_of(data: bytes) -> int:
    return int(re.search(rb"<SN>(\d+)</SN>", data).group(1))  # type: ignore[union-attr]


def header(data: bytes, name: str) -> str:
    found = re.search(rb"\r\n" + name.encode() + rb":\s*([^\r\n]*)", data, re.IGNORECASE)
    return found.group(1).decode() if found else ""


async def cli(srv: Server, *args: str, timeout: float = 60) -> asyncio.Task:
    return asyncio.create_task(
        run_tool(PYTHON, "-m", "cli", *args, "--json", "--admin", srv.admin, "--db", str(srv.db), timeout=timeout)
    )


async def done(task: asyncio.Task) -> object:
    rc, out, err = await task
    assert rc == 0, err
    return json.loads(out)


async def start(tmp_path: Path, extra: str = "") -> tuple[Server, RawNotifier]:
    srv = Server(tmp_path, sip_extra='password = "12345678"\nquery_timeout = 3',
                 catalog_extra="sync_on_register = false\ninter_packet_timeout = 5", extra=extra)  # fmt: skip
    await srv.start()
    device = await RawNotifier.start(NVR, "12345678", ("127.0.0.1", srv.sip_port))
    assert await device.register() == 200
    return srv, device


async def test_catalog_subscription_refreshes_in_dialog_and_a_notify_during_a_sync_loses_nothing(tmp_path):
    srv, device = await start(tmp_path)
    try:
        device.grant = 4  # the device shortens 600 s to 4 s: the platform refreshes at half of it
        task = await cli(srv, "subscribe", "catalog", NVR)
        first = await device.next_subscribe()  # already answered with Expires: 4
        device.grant = 600  # the refresh gets the full time: no further refresh during the test
        assert header(first, "Event").startswith("Catalog;id=") and header(first, "Expires") == "600"
        assert b"<Query>" in first and b"<CmdType>Catalog</CmdType>" in first
        state = await done(task)
        assert (state["state"], state["expires"], state["kind"]) == ("active", 4, "catalog")
        refresh = await device.next_subscribe(timeout=10)  # in the same dialog (RFC 6665 §4.1.2.1)
        assert header(refresh, "Call-ID") == header(first, "Call-ID") and ";tag=" in header(refresh, "To")
        (dialog,) = device.dialogs.values()

        # a 4-item catalog in 3 packets; in the middle the device NOTIFYs: 2 deleted, 5 added (GB2312 name), 1 off
        sync = await cli(srv, "catalog", "sync", NVR, "--wait")
        query = await device.next_request(timeout=20)
        sn = sn_of(query)
        assert await device.message(packet(sn, 4, [(channel(1), "大门口"), (channel(2), "停车场东")])) == 200
        added = ("<Item>", f"<DeviceID>{channel(5)}</DeviceID>", "<Event>ADD</Event>", "<Name>新增摄像机</Name>",
                 f"<ParentID>{NVR}</ParentID>", "<Status>ON</Status>", "</Item>")  # fmt: skip
        body = notify_body([f"<Item><DeviceID>{channel(2)}</DeviceID><Event>DEL</Event></Item>", *added,
                            f"<Item><DeviceID>{channel(1)}</DeviceID><Event>OFF</Event></Item>"])  # fmt: skip
        assert await device.notify(dialog, body) == 200
        assert await device.message(packet(sn, 4, [(channel(3), "仓库北侧")])) == 200
        assert await device.message(packet(sn, 4, [(channel(4), "后门")])) == 200
        summary = await done(sync)
        assert (summary["state"], summary["received"]) == ("complete", 4)
        listed = {c["id"]: c for c in await srv.cli("channels", "--device", NVR)}  # type: ignore[union-attr]
        assert sorted(listed) == [channel(1), channel(3), channel(4), channel(5)]
        assert listed[channel(1)]["status"] == "offline" and listed[channel(5)]["name"] == "新增摄像机"
        assert await srv.cli("events", "--device", channel(2)) == []  # deleted before it was ever stored
        events = [e["event"] for e in await srv.cli("events", "--device", channel(5))]  # type: ignore[union-attr]
        assert events == ["channel-added"]  # by the NOTIFY; the sync's commit found it there
        subs = await srv.cli("subscriptions")
        assert [(s["kind"], s["state"], s["notifies"]) for s in subs] == [("catalog", "active", 1)]  # type: ignore

        # the device ends the subscription: the platform subscribes again in a new dialog
        assert await device.notify(dialog, b"", state="terminated;reason=noresource") == 200
        again = await device.next_subscribe(timeout=15)
        assert header(again, "Call-ID") != header(first, "Call-ID")

        # the device re-registers (a reboot): the platform subscribes again at once, in a new dialog
        assert await device.register(expires=0) == 200
        assert await device.register() == 200
        after = await device.next_subscribe(timeout=10)
        assert header(after, "Call-ID") not in (header(first, "Call-ID"), header(again, "Call-ID"))
    finally:
        device.close()
        await srv.stop()


ALARM = "\r\n".join([
    '<?xml version="1.0" encoding="GB2312"?>', "<Notify>", "<CmdType>Alarm</CmdType>", "<SN>{sn}</SN>",
    "<DeviceID>34020000001340000001</DeviceID>", "<AlarmPriority>1</AlarmPriority>", "<AlarmMethod>2</AlarmMethod>",
    "<AlarmTime>2024-05-01T10:00:00</AlarmTime>", "<AlarmDescription>视频丢失</AlarmDescription>",
    "<Info>", "<AlarmType>2</AlarmType>", "</Info>", "</Notify>", "",
])  # fmt: skip


async def test_alarm_and_position_subscriptions_and_alarm_list_ack_reset_through_the_cli(tmp_path):
    srv, device = await start(tmp_path)
    try:
        task = await cli(srv, "subscribe", "alarm", NVR)
        sub = await device.next_subscribe()
        assert header(sub, "Event").startswith("presence;id=") and b"<CmdType>Alarm</CmdType>" in sub
        assert (await done(task))["state"] == "active"  # type: ignore[index]
        alarm_dialog = device.dialogs[header(sub, "Call-ID")]
        assert await device.notify(alarm_dialog, ALARM.format(sn=51).encode("gb2312")) == 200

        # an alarm by MESSAGE (no subscription needed): 200, then the platform's Response Alarm Result OK
        assert await device.message(ALARM.format(sn=52).encode("gb2312")) == 200
        answer = await device.next_request(timeout=10)
        assert b"<Response>" in answer and b"<CmdType>Alarm</CmdType>" in answer and b"<Result>OK</Result>" in answer
        assert sn_of(answer) == 52

        rows = await srv.cli("alarms", "--device", NVR)
        assert [(a["via"], a["description"], a["type"], a["acked_by"]) for a in rows] == [  # type: ignore[union-attr]
            ("notify", "视频丢失", 2, None), ("message", "视频丢失", 2, None),
        ]  # fmt: skip
        acked = await srv.cli("alarm", "ack", str(rows[0]["id"]))  # type: ignore[index]
        assert acked["acked_by"] == "admin" and acked["acked_at"]  # type: ignore[index]

        reset = await cli(srv, "alarm", "reset", NVR, "--type", "2")
        control = await device.next_request(timeout=10)
        assert b"<AlarmCmd>ResetAlarm</AlarmCmd>" in control and b"<AlarmType>2</AlarmType>" in control
        result = (
            '<?xml version="1.0" encoding="GB2312"?>\r\n<Response>\r\n<CmdType>DeviceControl</CmdType>\r\n'
            f"<SN>{sn_of(control)}</SN>\r\n<DeviceID>{NVR}</DeviceID>\r\n<Result>OK</Result>\r\n</Response>\r\n"
        ).encode()
        assert await device.message(result) == 200
        assert (await done(reset))["reset"] == 2  # type: ignore[index]
        assert all(a["reset_at"] for a in await srv.cli("alarms"))  # type: ignore[union-attr]

        # the position subscription's first NOTIFY overtakes the 200 (RFC 6665 §4.1.2.4): accepted all the same
        device.notify_first = (FIXTURES / "mobileposition-2022-devicelist.xml").read_bytes()
        task = await cli(srv, "subscribe", "position", NVR)
        sub = await device.next_subscribe()
        assert b"<CmdType>MobilePosition</CmdType>" in sub and b"<Interval>5</Interval>" in sub
        assert (await done(task))["state"] == "active"  # type: ignore[index]
        status, _ = await device._response()
        assert status == 200
        for _ in range(50):
            positions = await srv.cli("positions", "--device", NVR)
            if positions:
                break
            await asyncio.sleep(0.1)
        assert [(p["id"], p["longitude"], p["speed"]) for p in positions] == [  # type: ignore[union-attr]
            ("64000000001310000001", 106.230909, 36.5), ("64000000001310000002", 106.231, 36.5),
        ]  # fmt: skip
        assert {(s["kind"], s["state"]) for s in await srv.cli("subscriptions")} == {  # type: ignore[union-attr]
            ("alarm", "active"), ("position", "active"),
        }  # fmt: skip
    finally:
        device.close()
        await srv.stop()


async def test_auto_subscription_and_a_device_that_does_not_answer_gets_a_clear_timeout_not_a_hang(tmp_path):
    srv, device = await start(tmp_path, extra="[subscribe]\nalarm = true\n")
    try:
        auto = await device.next_subscribe()  # nobody asked: [subscribe] alarm = true on registration
        assert b"<CmdType>Alarm</CmdType>" in auto
        device.silent = {"SUBSCRIBE", "MESSAGE"}
        for args in (("subscribe", "catalog", NVR), ("alarm", "reset", NVR)):
            rc, _, err = await (await cli(srv, *args, timeout=30))
            assert rc == 1 and "504" in err and ("did not answer" in err or "timed out" in err), err
        alarm, catalog = await srv.cli("subscriptions")  # type: ignore[misc]
        assert (alarm["kind"], alarm["state"]) == ("alarm", "active")
        assert catalog["state"] == "pending" and catalog["failures"] >= 1 and "timed out" in catalog["last_error"]
    finally:
        device.close()
        await srv.stop()
