"""NOTIFY and notifications in the platform, without sockets: catalog events applied in order with a catalog sync
that is staging, alarms and mobile positions stored (GB/T 28181-2022 §9.4, §9.11, App.N.4.3)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gb28181.catalog import CatalogAssembler
from gb28181.config import Config, RegistryConfig, SipConfig
from gb28181.manscdp.messages import CatalogItem
from gb28181.server import Platform, Secrets
from registry.memory import MemoryStore
from registry.models import Channel
from registry.sqlite import SqliteStore
from tests.gb28181.test_server_router import DEVICE, PEER, exchange, register, request

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "manscdp" / "made"
MANSCDP = "Content-Type: Application/MANSCDP+xml\r\n"


def ch(n: int) -> str:
    return f"3402000000131{n:07d}"


def item_xml(n: int, name: str, event: str | None = None, status: str = "ON") -> str:
    ev = f"<Event>{event}</Event>" if event else ""
    return (f"<Item><DeviceID>{ch(n)}</DeviceID>{ev}<Name>{name}</Name><ParentID>{DEVICE}</ParentID>"
            f"<Status>{status}</Status></Item>")  # fmt: skip


def catalog_packet(sn: int, sum_num: int, items: list[str]) -> bytes:
    return (
        f'<?xml version="1.0" encoding="GB2312"?>\r\n<Response><CmdType>Catalog</CmdType><SN>{sn}</SN>'
        f'<DeviceID>{DEVICE}</DeviceID><SumNum>{sum_num}</SumNum><DeviceList Num="{len(items)}">'
        + "".join(items) + "</DeviceList></Response>\r\n"
    ).encode("gb2312")


def catalog_notify(items: list[str]) -> bytes:
    return (
        '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify><CmdType>Catalog</CmdType><SN>5</SN>'
        f'<DeviceID>{DEVICE}</DeviceID><SumNum>{len(items)}</SumNum><DeviceList Num="{len(items)}">'
        + "".join(items) + "</DeviceList></Notify>\r\n"
    ).encode("gb2312")


def event_item(n: int, event: str) -> str:
    return f"<Item><DeviceID>{ch(n)}</DeviceID><Event>{event}</Event></Item>"


async def settle(p: Platform) -> None:
    for _ in range(50):
        await asyncio.sleep(0)
    while p._tasks:
        await asyncio.gather(*list(p._tasks))


async def send(p: Platform, method: str, body: bytes, branch: str, cseq: int) -> int:
    (answer,) = await exchange(p, request(method, cseq=cseq, headers=MANSCDP, body=body, branch=branch))
    return answer.status


async def test_catalog_notify_applies_every_event_and_records_channel_events(platform: Platform) -> None:
    await register(platform)
    store = platform.store
    known = [Channel(DEVICE, f"340200000013100000{n}", status="offline" if n == 10 else "online")
             for n in (10, 11, 12, 13, 14, 19)]  # fmt: skip
    await store.apply_catalog(DEVICE, known, [])
    body = (FIXTURES / "catalog-notify-all-events.xml").read_bytes()
    (answer,) = await exchange(platform, request("NOTIFY", headers=MANSCDP + "Event: Catalog\r\n", body=body,
                                                 branch="n1"))  # fmt: skip
    assert answer.status == 200
    await settle(platform)
    got = {c.id[-2:]: c for c in await store.list_channels(device_id=DEVICE)}
    assert {k: c.status for k, c in got.items()} == {
        "10": "online", "11": "offline", "12": "offline", "13": "offline", "18": "online", "19": "online",
    }  # fmt: skip
    assert (got["18"].name, got["19"].name, got["18"].address) == ("新增摄像机", "更名后的摄像机", "东门岗亭")
    assert "event" not in got["18"].info
    events = {e.subject[-2:]: e.event for e in await store.list_events() if e.kind == "channel"}
    assert events == {
        "10": "channel-on", "11": "channel-off", "12": "channel-vlost", "13": "channel-defect",
        "14": "channel-removed", "18": "channel-added", "19": "channel-updated",
    }  # fmt: skip
    assert platform.counters["notify:Catalog"] == 1


async def test_a_notify_during_a_staging_sync_is_neither_lost_nor_undone_by_its_commit(platform: Platform) -> None:
    await register(platform)
    store = platform.store
    await store.apply_catalog(DEVICE, [Channel(DEVICE, ch(9), name="old")], [])  # not in the sync: removed by it
    platform.catalog.expect(DEVICE, 77, platform.mono())  # our query, SN 77, answered in 3 packets of 4 items
    first = catalog_packet(77, 4, [item_xml(1, "一"), item_xml(2, "二")])
    assert await send(platform, "MESSAGE", first, "m1", 2) == 200
    # in the middle: channel 2 deleted, 5 added, 1 goes off, 3 (not received yet) gets renamed
    notify = catalog_notify([event_item(2, "DEL"), item_xml(5, "五", "ADD"), event_item(1, "OFF"),
                             item_xml(3, "三新", "UPDATE")])  # fmt: skip
    assert await send(platform, "NOTIFY", notify, "n1", 3) == 200
    await settle(platform)
    assert await send(platform, "MESSAGE", catalog_packet(77, 4, [item_xml(3, "三旧")]), "m2", 4) == 200
    assert await send(platform, "MESSAGE", catalog_packet(77, 4, [item_xml(4, "四")]), "m3", 5) == 200
    await settle(platform)
    got = {c.id: c for c in await store.list_channels(device_id=DEVICE)}
    assert sorted(got) == [ch(1), ch(3), ch(4), ch(5)]  # 2 stays deleted, 5 stays added, 9 removed by the sync
    assert got[ch(1)].status == "offline" and got[ch(3)].name == "三新" and got[ch(5)].name == "五"
    assert platform.counters["catalog:complete"] == 1


@pytest.fixture
async def platform(tmp_path: Path):  # type: ignore[no-untyped-def]
    cfg = Config(sip=SipConfig(password="pw"), registry=RegistryConfig(str(tmp_path / "x.db")))
    p = Platform(cfg, Secrets("pw", "tok", b"s" * 32, tmp_path / "s.json"), MemoryStore(), mono=lambda: 100.0,
                 batch_interval=3600)  # fmt: skip
    await p.devices.start()
    yield p
    await p.devices.stop()


@pytest.fixture
async def sqlite_platform(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A platform on SQLite: its writes really suspend, so two write tasks can interleave without the lock."""
    cfg = Config(sip=SipConfig(password="pw"), registry=RegistryConfig(str(tmp_path / "x.db")))
    store = SqliteStore(tmp_path / "x.db")
    await store.open()
    p = Platform(cfg, Secrets("pw", "tok", b"s" * 32, tmp_path / "s.json"), store, mono=lambda: 100.0,
                 batch_interval=3600)  # fmt: skip
    await p.devices.start()
    yield p
    await p.devices.stop()
    await store.close()


async def test_a_notify_after_the_commit_was_built_is_written_after_it(sqlite_platform: Platform) -> None:
    """The commit's store write and the NOTIFY's run under one per-device lock, in the order they were handled."""
    platform = sqlite_platform
    await register(platform)
    await platform.store.apply_catalog(DEVICE, [Channel(DEVICE, ch(2), name="known")], [])
    platform.catalog.expect(DEVICE, 78, platform.mono())
    # the last packet and the NOTIFY are handled back to back, before either write task has run
    platform.endpoint.receive(request("MESSAGE", cseq=2, headers=MANSCDP, body=catalog_packet(78, 1, [
        item_xml(1, "一")]), branch="m1"), PEER, platform.mono())  # fmt: skip
    platform.endpoint.receive(request("NOTIFY", cseq=3, headers=MANSCDP, body=catalog_notify([
        event_item(1, "OFF"), event_item(2, "DEL")]), branch="n1"), PEER, platform.mono())  # fmt: skip
    while (event := platform.endpoint.next_event()) is not None:
        platform.handle(event)
    await settle(platform)
    (channel,) = await platform.store.list_channels(device_id=DEVICE)  # 2: deleted (and not in the sync's answer)
    assert channel.status == "offline"


ALARM = (
    '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify><CmdType>Alarm</CmdType><SN>31</SN>'
    "<DeviceID>34020000001340000001</DeviceID><AlarmPriority>1</AlarmPriority><AlarmMethod>5</AlarmMethod>"
    "<AlarmTime>2024-05-01T10:00:00</AlarmTime><AlarmDescription>区域入侵</AlarmDescription>"
    "<Longitude>116.3</Longitude><Latitude>39.9</Latitude>"
    "<info><AlarmType>6</AlarmType><AlarmTypeParam><EventType>1</EventType></AlarmTypeParam></info></Notify>\r\n"
).encode("gb2312")


async def test_alarms_by_message_and_by_notify_are_stored(platform: Platform) -> None:
    await register(platform)
    assert await send(platform, "MESSAGE", ALARM, "a1", 2) == 200
    assert await send(platform, "NOTIFY", ALARM, "a2", 3) == 200
    await settle(platform)
    first, second = await platform.store.list_alarms()
    assert (first.device_id, first.source_id, first.priority, first.method) == (DEVICE, "34020000001340000001", 1, 5)
    assert (first.alarm_type, first.event_type, first.description, first.sn) == (6, 1, "区域入侵", 31)
    assert (first.via, second.via) == ("message", "notify")
    assert platform.counters["alarm"] == 2


async def test_mobile_positions_flat_and_2022_forms_keep_the_latest(platform: Platform) -> None:
    await register(platform)
    body = (FIXTURES / "mobileposition-2022-devicelist.xml").read_bytes()
    assert await send(platform, "NOTIFY", body, "p1", 2) == 200
    flat = (
        b'<?xml version="1.0" encoding="GB2312"?><Notify><CmdType>MobilePosition</CmdType><SN>8</SN>'
        b"<DeviceID>64000000001310000001</DeviceID><Time>2024-05-01T10:00:09</Time><Longitude>106.3</Longitude>"
        b"<Latitude>38.4</Latitude><Speed>0</Speed><Direction>90</Direction><Altitude>1000</Altitude></Notify>"
    )
    assert await send(platform, "MESSAGE", flat, "p2", 3) == 200
    await settle(platform)
    one, two = await platform.store.list_positions(device_id=DEVICE)
    assert (one.target_id, one.time, one.longitude, one.speed) == ("64000000001310000001", "2024-05-01T10:00:09",
                                                                   106.3, 0.0)  # fmt: skip
    assert (two.target_id, two.longitude, two.height) == ("64000000001310000002", 106.231, 2.5)


async def test_notify_refusals_and_empty_bodies(platform: Platform) -> None:
    assert await send(platform, "NOTIFY", ALARM, "r1", 2) == 403  # not registered
    await register(platform)
    assert await send(platform, "NOTIFY", b"<Notify><CmdType>", "r2", 3) == 400
    (empty,) = await exchange(platform, request("NOTIFY", cseq=4, headers="Subscription-State: terminated\r\n",
                                                branch="r3"))  # fmt: skip
    assert empty.status == 200
    plain = "Content-Type: text/plain\r\n"
    (other,) = await exchange(platform, request("NOTIFY", cseq=5, headers=plain, body=b"hi", branch="r4"))
    assert other.status == 415


def test_assembler_notify_rules_on_their_own() -> None:
    a = CatalogAssembler()
    a.expect("D", 1, 0.0)
    a.packet("D", 1, 3, [CatalogItem(device_id="A", status="ON"), CatalogItem(device_id="B", status="ON")], 0.0)
    touched = a.notify("D", [("A", "VLOST", None), ("B", "DEL", None), ("B", "ON", None),
                             ("C", "ADD", CatalogItem(device_id="C", name="c"))])  # fmt: skip
    assert touched == 1 and a.notify("other", [("A", "DEL", None)]) == 0
    commit = a.packet("D", 1, 3, [CatalogItem(device_id="B", status="ON")], 1.0)  # B again: counts, stays deleted
    assert commit is None  # 2 distinct items of 3
    commit = a.packet("D", 1, 3, [CatalogItem(device_id="E", status="ON")], 2.0)
    assert commit is not None and commit.complete
    assert {i.device_id: i.status for i in commit.items} == {"A": "OFF", "E": "ON", "C": None}
