"""Catalog sync end to end: `gb28181 serve`, a raw-socket device sending GB2312 bytes exactly, the CLI."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from tests.e2e.conftest import PYTHON, run_tool
from tests.e2e.raw_device import RawDevice
from tests.e2e.serve_helpers import Server

pytestmark = pytest.mark.e2e

NVR = "34020000001180000001"
NAMES = ["大门口", "停车场东", "仓库北侧"]  # GB2312 Chinese names, one item per MESSAGE (Hikvision NVR style)


def channel(n: int) -> str:
    return f"3402000000131{n:07d}"


def packet(sn: int, sum_num: int, items: list[tuple[str, str]]) -> bytes:
    """A Catalog Response body in GB2312 with CRLF line ends, as an NVR sends it."""
    xml = [
        '<?xml version="1.0" encoding="GB2312"?>', "<Response>", "<CmdType>Catalog</CmdType>", f"<SN>{sn}</SN>",
        f"<DeviceID>{NVR}</DeviceID>", f"<SumNum>{sum_num}</SumNum>", f'<DeviceList Num="{len(items)}">',
    ]  # fmt: skip
    for channel_id, name in items:
        xml += [
            "<Item>", f"<DeviceID>{channel_id}</DeviceID>", f"<Name>{name}</Name>",
            "<Manufacturer>Hikvision</Manufacturer>", "<Model>IP Camera</Model>", "<Owner>Owner</Owner>",
            "<CivilCode>340200</CivilCode>", "<Address>Address</Address>", "<Parental>0</Parental>",
            f"<ParentID>{NVR}</ParentID>", "<SafetyWay>0</SafetyWay>", "<RegisterWay>1</RegisterWay>",
            "<Secrecy>0</Secrecy>", "<Status>ON</Status>", "</Item>",
        ]  # fmt: skip
    xml += ["</DeviceList>", "</Response>", ""]
    return "\r\n".join(xml).encode("gb2312")


async def sync(srv: Server, device: RawDevice, packets: list[list[tuple[str, str]]], sum_num: int) -> dict:
    """Run `gb28181 catalog sync --wait` while the device answers the query with these packets, serially."""
    args = ("catalog", "sync", NVR, "--wait", "--json", "--admin", srv.admin, "--db", str(srv.db))
    cli = asyncio.create_task(run_tool(PYTHON, "-m", "cli", *args, timeout=60))
    query = await device.next_request(timeout=20)
    assert b"<CmdType>Catalog</CmdType>" in query and b"<Query>" in query
    sn = int(re.search(rb"<SN>(\d+)</SN>", query).group(1))  # type: ignore[union-attr]
    for items in packets:
        assert await device.message(packet(sn, sum_num, items)) == 200
    rc, out, err = await cli
    assert rc == 0, err
    return json.loads(out)


async def test_a_three_packet_gb2312_catalog_lands_intact_and_a_stray_packet_does_not_shrink_it(tmp_path):
    srv = Server(
        tmp_path, sip_extra='password = "12345678"', catalog_extra="sync_on_register = false\ninter_packet_timeout = 3"
    )
    await srv.start()
    device = await RawDevice.start(NVR, "12345678", ("127.0.0.1", srv.sip_port))
    try:
        assert await device.register() == 200
        three = [[(channel(n + 1), name)] for n, name in enumerate(NAMES)]
        summary = await sync(srv, device, three, 3)
        assert (summary["state"], summary["received"], summary["packets"], summary["added"]) == ("complete", 3, 3, 3)
        listed = await srv.cli("channels", "--device", NVR)
        assert [(c["id"], c["name"]) for c in listed] == [(channel(n + 1), name) for n, name in enumerate(NAMES)]
        assert {c["kind"] for c in listed} == {"video"} and {c["status"] for c in listed} == {"online"}
        assert listed[0]["parent_ids"] == [NVR] and listed[0]["civil_code"] == "340200"
        (nvr,) = [d for d in await srv.cli("devices") if d["id"] == NVR]
        assert nvr["channel_count"] == 3
        # the operator fixes naming and annotation locally; later syncs keep it
        fixed = await srv.cli("channel", "set", channel(1), "--name", "东大门", "--lon", "117.25", "--lat", "31.83",
                              "--point-class", "1")  # fmt: skip
        assert (fixed["name"], fixed["longitude"], fixed["latitude"], fixed["point_class"]) == (
            "东大门",
            117.25,
            31.83,
            1,
        )

        # a stray SumNum=1 packet with another SN (the device pushing one change): updates, never shrinks
        assert await device.message(packet(999_999, 1, [(channel(2), "停车场东门")])) == 200
        for _ in range(50):
            listed = await srv.cli("channels", "--device", NVR)
            if listed[1]["name"] == "停车场东门":
                break
            await asyncio.sleep(0.1)
        assert [c["name"] for c in listed] == ["东大门", "停车场东门", "仓库北侧"]  # channel 1: the local override

        # a complete answer to our own query without channel 3 removes it
        summary = await sync(srv, device, [[(channel(1), NAMES[0]), (channel(2), NAMES[1])]], 2)
        assert (summary["state"], summary["removed"], summary["updated"]) == ("complete", 1, 2)
        after = await srv.cli("channels", "--device", NVR)
        assert [c["id"] for c in after] == [channel(1), channel(2)]
        assert (after[0]["name"], after[0]["point_class"]) == ("东大门", 1)  # the override survived the sync

        # a partial answer (2 of 3, then silence) adds what came and removes nothing
        summary = await sync(srv, device, [[(channel(4), "新增一")]], 3)
        assert (summary["state"], summary["reason"], summary["removed"]) == ("partial", "inter-packet timeout", 0)
        assert len(await srv.cli("channels", "--device", NVR)) == 3
        events = [e["event"] for e in await srv.cli("events", "--device", channel(3))]
        assert events == ["channel-added", "channel-removed"]
    finally:
        device.close()
        await srv.stop()


KEEPALIVE = (
    '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>9</SN>\r\n'
    f"<DeviceID>{NVR}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
).encode()


async def test_channels_follow_their_device_offline_and_back(tmp_path):
    srv = Server(tmp_path, sip_extra='password = "12345678"', extra="[keepalive]\ninterval = 2\nmax_missed = 2\n")
    await srv.start()
    device = await RawDevice.start(NVR, "12345678", ("127.0.0.1", srv.sip_port))
    try:
        assert await device.register() == 200
        summary = await sync(srv, device, [[(channel(1), "大门口"), (channel(2), "停车场东")]], 2)
        assert summary["added"] == 2
        assert {c["status"] for c in await srv.cli("channels", "--device", NVR)} == {"online"}
        # silence: the device's keepalive window (4 s) lapses and its channels go dark with it
        for _ in range(100):
            if {c["status"] for c in await srv.cli("channels", "--device", NVR)} == {"offline"}:
                break
            await asyncio.sleep(0.2)
        assert {c["status"] for c in await srv.cli("channels", "--device", NVR)} == {"offline"}
        assert await device.message(KEEPALIVE) == 200
        for _ in range(50):
            if {c["status"] for c in await srv.cli("channels", "--device", NVR)} == {"online"}:
                break
            await asyncio.sleep(0.1)
        assert {c["status"] for c in await srv.cli("channels", "--device", NVR)} == {"online"}
        events = [e["event"] for e in await srv.cli("events", "--device", channel(1))]
        assert events == ["channel-added", "channel-device-offline", "channel-on"]
    finally:
        device.close()
        await srv.stop()


async def test_a_device_that_registers_is_asked_for_its_catalog(tmp_path):
    srv = Server(tmp_path, sip_extra='password = "12345678"', catalog_extra="sync_on_register = true")
    await srv.start()
    device = await RawDevice.start(NVR, "12345678", ("127.0.0.1", srv.sip_port))
    try:
        assert await device.register() == 200
        query = await device.next_request(timeout=20)  # nobody asked: the platform did by itself
        assert b"<CmdType>Catalog</CmdType>" in query
        sn = int(re.search(rb"<SN>(\d+)</SN>", query).group(1))  # type: ignore[union-attr]
        assert await device.message(packet(sn, 1, [(channel(7), "东门")])) == 200
        for _ in range(50):
            listed = await srv.cli("channels", "--device", NVR)
            if listed:
                break
            await asyncio.sleep(0.1)
        assert [(c["id"], c["name"]) for c in listed] == [(channel(7), "东门")]
        assert await device.register() == 200  # a refresh while registered asks nothing more
        with pytest.raises(TimeoutError):
            await device.next_request(timeout=1.5)
    finally:
        device.close()
        await srv.stop()


async def test_progress_of_a_sync_is_visible_while_packets_arrive(tmp_path):
    """`catalog sync --wait` polls GET /api/devices/{id}/catalog: items received / SumNum mid-way, then the result."""
    import urllib.request

    srv = Server(
        tmp_path, sip_extra='password = "12345678"', catalog_extra="sync_on_register = false\ninter_packet_timeout = 30"
    )
    await srv.start()
    device = await RawDevice.start(NVR, "12345678", ("127.0.0.1", srv.sip_port))
    token = json.loads((srv.db.parent / (srv.db.name + ".secrets.json")).read_text())["token"]

    def progress(sn: int) -> dict:
        req = urllib.request.Request(f"{srv.admin}/api/devices/{NVR}/catalog?sn={sn}")
        req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    try:
        assert await device.register() == 200
        args = ("catalog", "sync", NVR, "--wait", "--json", "--admin", srv.admin, "--db", str(srv.db))
        cli = asyncio.create_task(run_tool(PYTHON, "-m", "cli", *args, timeout=60))
        query = await device.next_request(timeout=20)
        sn = int(re.search(rb"<SN>(\d+)</SN>", query).group(1))  # type: ignore[union-attr]
        waiting = await asyncio.to_thread(progress, sn)
        assert waiting["result"] is None and waiting["in_progress"][0]["received"] == 0
        assert await device.message(packet(sn, 3, [(channel(1), NAMES[0]), (channel(2), NAMES[1])])) == 200
        mid = await asyncio.to_thread(progress, sn)
        assert mid["result"] is None
        assert {k: mid["in_progress"][0][k] for k in ("received", "sum_num", "packets")} == {
            "received": 2, "sum_num": 3, "packets": 1,
        }  # fmt: skip
        assert not cli.done()  # still waiting for the third item
        assert await device.message(packet(sn, 3, [(channel(3), NAMES[2])])) == 200
        rc, out, err = await cli
        assert rc == 0, err
        assert json.loads(out)["state"] == "complete"
        done = await asyncio.to_thread(progress, sn)
        assert done["in_progress"] == [] and done["result"]["received"] == 3
    finally:
        device.close()
        await srv.stop()
