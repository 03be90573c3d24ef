"""Cascading upward end to end: `gb28181 serve` with an [[upstream]] pointing at a raw-socket superior written in
the test (digest checked with hashlib, GB2312 bytes read as sent), a raw-socket device registered below us, the CLI;
the superior down for a while then back; and a chain of two of our own processes (town registers up to county)."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from tests.e2e.raw_device import RawDevice
from tests.e2e.raw_superior import RawSuperior
from tests.e2e.serve_helpers import Server
from tests.e2e.test_catalog_e2e import NVR, channel, packet

pytestmark = pytest.mark.e2e

OUR = "34020000002000000001"
UP = "44000000002000000001"
UP_PASSWORD = "up-secret"
AS_ID = "44010000001310000077"


def upstream(port: int, **extra: object) -> str:
    lines = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in extra.items())
    return f'[[upstream]]\nid = "{UP}"\nhost = "127.0.0.1"\nport = {port}\npassword = "{UP_PASSWORD}"\n{lines}'


async def device_with_catalog(srv: Server) -> RawDevice:
    """A raw NVR below us with three GB2312-named channels, synced into our registry."""
    device = await RawDevice.start(NVR, "12345678", ("127.0.0.1", srv.sip_port))
    assert await device.register() == 200
    args = ("catalog", "sync", NVR, "--wait")
    task = asyncio.create_task(srv.cli(*args))
    query = await device.next_request(timeout=20)
    sn = int(re.search(rb"<SN>(\d+)</SN>", query).group(1))  # type: ignore[union-attr]
    items = [(channel(1), "大门口"), (channel(2), "停车场东"), (channel(3), "仓库北侧")]
    assert await device.message(packet(sn, 3, items)) == 200
    summary = await task
    assert summary["state"] == "complete"  # type: ignore[index]
    return device


async def collect_catalog(sup: RawSuperior, to: tuple[str, int], sn: int, target: str = OUR) -> list[bytes]:
    body = (f'<?xml version="1.0" encoding="GB2312"?>\r\n<Query><CmdType>Catalog</CmdType><SN>{sn}</SN>'
            f"<DeviceID>{target}</DeviceID></Query>\r\n").encode()  # fmt: skip
    assert await sup.query(to, OUR, body) == 200
    bodies: list[bytes] = []
    ids: set[bytes] = set()
    while True:
        data = await asyncio.wait_for(sup.messages.get(), 15)
        bodies.append(data)
        ids.update(re.findall(rb"<Item>\s*<DeviceID>(\d+)</DeviceID>", data))
        total = int(re.search(rb"<SumNum>(\d+)</SumNum>", data).group(1))  # type: ignore[union-attr]
        if len(ids) >= total:
            return bodies


async def test_register_keepalive_catalog_with_overrides_outage_and_unregister(tmp_path):
    sup = await RawSuperior.start(UP, UP_PASSWORD)
    srv = Server(
        tmp_path,
        sip_extra='password = "12345678"\nt1 = 0.05',  # timer F = 64*T1 = 3.2 s: a dead superior is seen fast
        extra=upstream(
            sup.port,
            keepalive_interval=1,
            keepalive_max_missed=2,
            retry_interval=0.5,
            retry_max=2.0,
            catalog_batch=2,
            charset="GB2312",
            share=[NVR],
            register_expires=3600,
        ),
    )
    await srv.start()
    device = None
    try:
        await sup.wait_for(lambda: sup.registrations and len(sup.keepalives) >= 2, 20, "REGISTER and 2 keepalives")
        assert sup.registrations[0][1:] == (OUR, 3600) and sup.bad_auth == 0
        assert b"<DeviceID>34020000002000000001</DeviceID>" in sup.keepalives[0][1]
        (row,) = await srv.cli("upstream", "list")  # type: ignore[misc]
        assert (row["id"], row["state"], row["shares"]) == (UP, "registered", 1)  # seeded from the config's share
        device = await device_with_catalog(srv)

        shared = await srv.cli("share", "add", UP, channel(2), "--as", AS_ID, "--name", "东侧停车场")
        assert {(s["item"], s["as"], s["name"]) for s in shared} == {
            (NVR, None, None),
            (channel(2), AS_ID, "东侧停车场"),
        }  # type: ignore[union-attr]
        assert sup.lower is not None
        bodies = await collect_catalog(sup, sup.lower, 4711)
        for body in bodies:
            assert body.startswith(b'<?xml version="1.0" encoding="GB2312"?>')
            text = body.decode("gb2312")  # real GB2312 bytes
            assert "<SN>4711</SN>" in text and text.count("<Item>") <= 2  # catalog_batch
        everything = b"".join(bodies)
        assert "东侧停车场".encode("gb2312") in everything and "大门口".encode("gb2312") in everything
        assert AS_ID.encode() in everything and channel(2).encode() not in everything  # the per-superior ID
        items = re.findall(rb"<Item>\s*<DeviceID>(\d+)</DeviceID>", everything)
        assert items[0] == OUR.encode() and len(set(items)) == int(re.search(rb"<SumNum>(\d+)", bodies[0]).group(1))  # type: ignore[union-attr]
        # DeviceInfo about us is answered by us, with the superior's SN
        info = f'<?xml version="1.0"?><Query><CmdType>DeviceInfo</CmdType><SN>9</SN><DeviceID>{OUR}</DeviceID></Query>'
        assert await sup.query(sup.lower, OUR, info.encode()) == 200
        answer = await asyncio.wait_for(sup.messages.get(), 15)
        assert (
            b"<CmdType>DeviceInfo</CmdType>" in answer and b"<SN>9</SN>" in answer and b"<Result>OK</Result>" in answer
        )
        # DeviceStatus for a shared channel goes to the device, which answers; we answer up with SN and shared ID
        status = (f"<?xml version=\"1.0\"?><Query><CmdType>DeviceStatus</CmdType><SN>10</SN>"
                  f"<DeviceID>{AS_ID}</DeviceID></Query>")  # fmt: skip
        assert await sup.query(sup.lower, OUR, status.encode()) == 200
        relayed = await device.next_request(timeout=15)
        assert f"<DeviceID>{channel(2)}</DeviceID>".encode() in relayed
        dev_sn = int(re.search(rb"<SN>(\d+)</SN>", relayed).group(1))  # type: ignore[union-attr]
        reply = (f'<?xml version="1.0" encoding="GB2312"?><Response><CmdType>DeviceStatus</CmdType><SN>{dev_sn}</SN>'
                 f"<DeviceID>{channel(2)}</DeviceID><Result>OK</Result><Online>ONLINE</Online><Status>OK</Status>"
                 "</Response>").encode()  # fmt: skip
        assert await device.message(reply) == 200
        up_answer = await asyncio.wait_for(sup.messages.get(), 15)
        assert b"<SN>10</SN>" in up_answer and AS_ID.encode() in up_answer and b"<Online>ONLINE</Online>" in up_answer

        # RecordInfo comes back in several packets: each goes up as it arrives, with the superior's SN and IDs
        query = (
            f'<?xml version="1.0"?><Query><CmdType>RecordInfo</CmdType><SN>11</SN><DeviceID>{AS_ID}</DeviceID>'
            "<StartTime>2026-11-25T00:00:00</StartTime><EndTime>2026-11-25T23:59:59</EndTime><Type>all</Type></Query>"
        )
        assert await sup.query(sup.lower, OUR, query.encode()) == 200
        relayed = await device.next_request(timeout=15)
        assert f"<DeviceID>{channel(2)}</DeviceID>".encode() in relayed and b"<Type>all</Type>" in relayed
        dev_sn = int(re.search(rb"<SN>(\d+)</SN>", relayed).group(1))  # type: ignore[union-attr]
        for hour in (1, 2):
            record = (
                f'<?xml version="1.0" encoding="GB2312"?><Response><CmdType>RecordInfo</CmdType><SN>{dev_sn}</SN>'
                f'<DeviceID>{channel(2)}</DeviceID><Name>停车场东</Name><SumNum>2</SumNum><RecordList Num="1"><Item>'
                f"<DeviceID>{channel(2)}</DeviceID><Name>停车场东</Name><StartTime>2026-11-25T0{hour}:00:00</StartTime>"
                f"<EndTime>2026-11-25T0{hour}:59:59</EndTime><Type>time</Type></Item></RecordList></Response>"
            ).encode("gb2312")
            assert await device.message(record) == 200
        ups = [await asyncio.wait_for(sup.messages.get(), 15) for _ in range(2)]
        assert all(b"<SN>11</SN>" in u and b"<SumNum>2</SumNum>" in u and channel(2).encode() not in u for u in ups)
        assert [u.count(AS_ID.encode()) for u in ups] == [2, 2] and b"T01:00:00" in ups[0] and b"T02:00:00" in ups[1]

        # the superior goes away: keepalives go unanswered, we go offline and retry with backoff
        sup.down = True
        down_at = time.monotonic()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            (row,) = await srv.cli("upstream", "status", UP)  # type: ignore[misc]
            if row["state"] == "failed":
                break
            await asyncio.sleep(0.2)
        assert row["state"] == "failed" and row["next_attempt"] and row["last_error"], row
        await asyncio.sleep(2.0)
        # back (restarted: it forgot us); we re-register within the backoff window: retry_max 2 s (+25 % jitter)
        # plus one REGISTER transaction that may have been started just before (timer F 3.2 s)
        sup.forget()
        n = len(sup.registrations)
        sup.down = False
        back_at = time.monotonic()
        await sup.wait_for(lambda: len(sup.registrations) > n, 15, "re-REGISTER after the outage")
        took = sup.registrations[n][0] - back_at
        assert took <= 2.0 * 1.25 + 3.2 + 1.0, took
        await sup.wait_for(lambda: any(t > back_at for t, _ in sup.keepalives), 10, "keepalives again")
        (row,) = await srv.cli("upstream", "status", UP)  # type: ignore[misc]
        assert row["state"] == "registered" and row["failures"] == 0
        events = await srv.cli("events", "--device", UP)
        names = [e["event"] for e in events]  # type: ignore[union-attr]
        assert names[:3] == ["upstream-online", "upstream-offline", "upstream-online"], names
        print(f"superior down {back_at - down_at:.1f} s; re-registered {took:.2f} s after it came back")
    finally:
        rc = await srv.stop()
        if device is not None:
            device.close()
        sup.close()
    assert rc == 0
    # graceful shutdown unregistered us (authorised, Expires 0)
    assert sup.registrations[-1][1:] == (OUR, 0) and UP not in sup.known and OUR not in sup.known


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_town_registers_to_county_which_syncs_its_catalog(tmp_path, transport):
    county_dir, town_dir = tmp_path / "county", tmp_path / "town"
    county_dir.mkdir()
    town_dir.mkdir()
    county_id = "34000000002000000001"
    county = Server(county_dir, sip_extra=f'id = "{county_id}"\npassword = "county-pw"',
                    catalog_extra="sync_on_register = false")  # fmt: skip
    await county.start()
    town = Server(town_dir, sip_extra='password = "12345678"', extra=(
        f'[[upstream]]\nid = "{county_id}"\nhost = "127.0.0.1"\nport = {county.sip_port}\npassword = "county-pw"\n'
        f'keepalive_interval = 1\nshare = "all"\nname = "town platform"\ncharset = "UTF-8"\ntransport = "{transport}"\n'
    ))  # fmt: skip
    device = None
    try:
        await town.start()
        device = await device_with_catalog(town)
        as_id = "34000000001310000042"
        await town.cli("share", "add", county_id, channel(3), "--as", as_id, "--name", "仓库(县)")
        devices = await county.wait_for(lambda d: d.get(OUR, {}).get("status") == "online", 20, "the town online")
        assert devices[OUR]["transport"] == transport.upper()
        summary = await county.cli("catalog", "sync", OUR, "--wait")
        assert summary["state"] == "complete", summary  # type: ignore[index]
        listed = {c["id"]: c for c in await county.cli("channels", "--device", OUR)}  # type: ignore[union-attr]
        # the town's own system item (type 200): gb28181.channels.kind_of names an item with the device's own ID
        # "device" before looking at its type code, so it is not "system" here
        assert OUR[10:13] == "200" and listed[OUR]["name"] == "town platform" and listed[OUR]["status"] == "online"
        assert {channel(1), channel(2), as_id} <= listed.keys() and channel(3) not in listed
        assert listed[channel(1)]["name"] == "大门口" and listed[channel(1)]["kind"] == "video"
        assert listed[as_id]["name"] == "仓库(县)" and listed[channel(1)]["status"] == "online"
        (up,) = await town.cli("upstream", "list")  # type: ignore[misc]
        assert (up["state"], up["transport"]) == ("registered", transport.upper())
    finally:
        rc_town = await town.stop() if town.proc else 0
        if device is not None:
            device.close()
        rc_county = await county.stop()
    assert (rc_town, rc_county) == (0, 0)


async def test_a_subscribed_superior_hears_channels_go_off_and_on_with_their_device(tmp_path):
    sup = await RawSuperior.start(UP, UP_PASSWORD)
    srv = Server(tmp_path, sip_extra='password = "12345678"', extra=upstream(sup.port, share="all"))
    await srv.start()
    device = None
    try:
        await sup.wait_for(lambda: sup.registrations, 20, "REGISTER")
        device = await device_with_catalog(srv)
        assert sup.lower is not None
        status, fields = await sup.subscribe(sup.lower, OUR)
        assert status == 200 and fields["expires"] == "600" and ";tag=" in fields["to"]
        assert await device.register(expires=0) == 200  # the device leaves: its channels go offline with it

        async def events_until(wanted: set[tuple[str, str]]) -> set[tuple[str, str]]:
            seen: set[tuple[str, str]] = set()
            while not wanted <= seen:
                headers, body = await asyncio.wait_for(sup.notifies.get(), 15)
                assert headers["event"] == "Catalog;id=7" and headers["subscription-state"].startswith("active")
                assert b"<CmdType>Catalog</CmdType>" in body and b"<Notify>" in body
                seen |= {(i.decode(), e.decode()) for i, e in
                         re.findall(rb"<Item>\s*<DeviceID>(\d+)</DeviceID>\s*<Event>(\w+)</Event>", body)}  # fmt: skip
            return seen

        channels = {channel(1), channel(2), channel(3)}
        assert await events_until({(c, "OFF") for c in channels})
        assert await device.register() == 200  # back: the channels it took down come back
        assert await events_until({(c, "ON") for c in channels})
        listed = await srv.cli("share", "list", UP, "--catalog")
        assert channels <= {row["id"] for row in listed}  # type: ignore[union-attr]
        await srv.cli("share", "remove", UP, "all")  # sharing nothing any more: the superior hears DEL
        assert await events_until({(c, "DEL") for c in channels})
        assert await srv.cli("share", "list", UP) == []
    finally:
        rc = await srv.stop()
        if device is not None:
            device.close()
        sup.close()
    assert rc == 0


async def test_an_alarm_below_reaches_the_superior_with_its_shared_id(tmp_path):
    """GB/T 28181 §9.4: a device's alarm goes up the hierarchy, under the ID the superior knows the channel by."""
    sup = await RawSuperior.start(UP, UP_PASSWORD)
    srv = Server(tmp_path, sip_extra='password = "12345678"', extra=upstream(sup.port, share="all"))
    await srv.start()
    device = None
    try:
        await sup.wait_for(lambda: sup.registrations, 20, "REGISTER")
        device = await device_with_catalog(srv)
        await srv.cli("share", "add", UP, channel(2), "--as", AS_ID, "--name", "东门")
        alarm = (
            '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Alarm</CmdType>\r\n<SN>88</SN>\r\n'
            f"<DeviceID>{channel(2)}</DeviceID>\r\n<AlarmPriority>1</AlarmPriority>\r\n<AlarmMethod>5</AlarmMethod>\r\n"
            "<AlarmTime>2026-11-25T10:00:00</AlarmTime>\r\n<AlarmDescription>移动侦测</AlarmDescription>\r\n"
            "<Info>\r\n<AlarmType>2</AlarmType>\r\n</Info>\r\n</Notify>\r\n"
        ).encode("gb2312")
        assert await device.message(alarm) == 200
        while True:
            body = await asyncio.wait_for(sup.messages.get(), 15)
            if b"<CmdType>Alarm</CmdType>" in body:
                break
        assert f"<DeviceID>{AS_ID}</DeviceID>".encode() in body  # the superior's ID for the channel
        assert "移动侦测".encode("gb2312") in body and b"<SN>88</SN>" not in body  # our SN, GB2312 as configured
        stats = await srv.cli("stats")
        assert stats["counters"]["alarm:up"] == 1  # type: ignore[index]
    finally:
        rc = await srv.stop()
        if device is not None:
            device.close()
        sup.close()
    assert rc == 0


async def test_a_superiors_alarm_and_position_subscriptions_get_notifies_with_shared_ids(tmp_path):
    """2022 §9.11: a superior subscribes to our alarms and mobile positions (Event presence, CmdType in the body);
    a device's alarm and position then reach it as NOTIFYs in those dialogs, under its IDs; other packages: 489."""
    sup = await RawSuperior.start(UP, UP_PASSWORD)
    srv = Server(tmp_path, sip_extra='password = "12345678"', extra=upstream(sup.port, share="all"))
    await srv.start()
    device = None
    try:
        await sup.wait_for(lambda: sup.registrations, 20, "REGISTER")
        device = await device_with_catalog(srv)
        await srv.cli("share", "add", UP, channel(2), "--as", AS_ID)
        assert sup.lower is not None
        status, _ = await sup.subscribe(sup.lower, OUR, cmd_type="Alarm", event="presence;id=9")
        assert status == 200
        status, _ = await sup.subscribe(sup.lower, OUR, cmd_type="MobilePosition", event="presence;id=10")
        assert status == 200
        status, fields = await sup.subscribe(sup.lower, OUR, cmd_type="Weather", event="weather")
        assert status == 489 and "Catalog" in fields.get("allow-events", "")
        alarm = (
            '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Alarm</CmdType>\r\n<SN>88</SN>\r\n'
            f"<DeviceID>{channel(2)}</DeviceID>\r\n<AlarmPriority>1</AlarmPriority>\r\n<AlarmMethod>5</AlarmMethod>\r\n"
            "<AlarmTime>2026-11-25T10:00:00</AlarmTime>\r\n<Info>\r\n<AlarmType>2</AlarmType>\r\n</Info>\r\n</Notify>\r\n"
        ).encode("gb2312")
        assert await device.message(alarm) == 200
        position = (
            '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>MobilePosition</CmdType>\r\n'
            "<SN>89</SN>\r\n"
            f"<DeviceID>{channel(2)}</DeviceID>\r\n<Time>2026-11-25T10:00:01</Time>\r\n<Longitude>117.25</Longitude>\r\n"
            "<Latitude>31.83</Latitude>\r\n<Speed>0</Speed>\r\n<Direction>90</Direction>\r\n</Notify>\r\n"
        ).encode("gb2312")
        assert await device.message(position) == 200
        seen: dict[str, tuple[dict[str, str], bytes]] = {}
        while len(seen) < 2:
            headers, body = await asyncio.wait_for(sup.notifies.get(), 15)
            kind = re.search(rb"<CmdType>(\w+)</CmdType>", body).group(1).decode()  # type: ignore[union-attr]
            seen[kind] = (headers, body)
        assert seen["Alarm"][0]["event"] == "presence;id=9" and seen["MobilePosition"][0]["event"] == "presence;id=10"
        for _, body in seen.values():
            assert f"<DeviceID>{AS_ID}</DeviceID>".encode() in body and channel(2).encode() not in body
        while not sup.messages.empty():  # subscribed: the alarm came as a NOTIFY, not also as a MESSAGE
            assert b"<CmdType>Alarm</CmdType>" not in sup.messages.get_nowait()
        stats = await srv.cli("stats")
        assert stats["counters"]["alarm:up"] == 1 and stats["counters"]["position:up"] == 1  # type: ignore[index]
    finally:
        rc = await srv.stop()
        if device is not None:
            device.close()
        sup.close()
    assert rc == 0
