"""Issue 7's done-means through the whole chain (village -> town -> county, three `serve` processes, a simulated NVR
at the village, tests/e2e/raw_superior.py as the province above the county), beyond the media path proven in
test_cascade_media_e2e.py: the province's Catalog query of the county brings the village's channel under the ID and
name the county shares it as; an alarm raised at the village reaches the province under that ID (§9.4, each level
forwarding up); and, with each level subscribed to the catalog of the one below (App.N), the NVR losing power at the
village reaches the province as a Catalog NOTIFY OFF for that ID."""

from __future__ import annotations

import asyncio
import re
import secrets
from pathlib import Path

import pytest

from tests.e2e.raw_superior import RawSuperior
from tests.e2e.serve_helpers import Server
from tests.e2e.test_cascade_media_e2e import AS_ID, COUNTY, NAME, TOWN, VILLAGE, WAIT, chain

pytestmark = pytest.mark.e2e


async def province_catalog(province: RawSuperior, servers: list[Server]) -> dict[str, bytes]:
    """The province's Catalog query of the county (§9.5.1); every item of the answer by its DeviceID."""
    assert province.lower is not None
    sn = 4000 + secrets.randbelow(1000)
    body = (f'<?xml version="1.0" encoding="GB2312"?>\r\n<Query><CmdType>Catalog</CmdType><SN>{sn}</SN>'
            f"<DeviceID>{COUNTY}</DeviceID></Query>\r\n").encode()  # fmt: skip
    assert await province.query(province.lower, COUNTY, body) == 200
    items: dict[str, bytes] = {}
    for _ in range(100):  # bounded: one packet per iteration
        try:
            data = await asyncio.wait_for(province.messages.get(), WAIT)
        except TimeoutError:
            raise AssertionError("the county's catalog answer\n" + "\n".join(s.log() for s in servers)) from None
        if f"<SN>{sn}</SN>".encode() not in data:
            continue
        for item in re.findall(rb"<Item>.*?</Item>", data, re.S):
            found = re.search(rb"<DeviceID>(\d+)</DeviceID>", item)
            assert found is not None, item
            items[found.group(1).decode()] = item
        total = int(re.search(rb"<SumNum>(\d+)</SumNum>", data).group(1))  # type: ignore[union-attr]
        if len(items) >= total:
            return items
    raise AssertionError("the county's catalog never completed")


async def test_the_province_queries_the_village_channel_and_hears_its_alarm(tmp_path: Path) -> None:
    async with chain(tmp_path) as c:
        # (1) the province's Catalog query: the village's channel, under the county's ID and name for it
        items = await province_catalog(c.province, c.servers)
        assert AS_ID in items and c.channel not in items, sorted(items)
        assert f"<Name>{NAME}</Name>".encode() in items[AS_ID] and b"<Status>ON</Status>" in items[AS_ID]
        assert COUNTY in items  # the county's own system item

        # (3) an alarm at the village's NVR channel: village -> town -> county -> province (MESSAGEs, §9.4),
        # under the ID the province knows the channel by
        assert (await c.sim.command(f"alarm {c.device_id} {c.channel}")).startswith("ok: alarm 1")
        alarm = b""
        for _ in range(100):  # bounded: one packet per iteration
            try:
                alarm = await asyncio.wait_for(c.province.messages.get(), WAIT)
            except TimeoutError:
                raise AssertionError("the alarm at the province\n" + c.logs()) from None
            if b"<CmdType>Alarm</CmdType>" in alarm:
                break
        assert f"<DeviceID>{AS_ID}</DeviceID>".encode() in alarm and c.channel.encode() not in alarm, alarm
        for srv in c.servers:
            assert (await srv.cli("stats"))["counters"]["alarm:up"] == 1  # type: ignore[index]


async def test_a_device_going_offline_at_the_village_reaches_the_province_as_notify_off(tmp_path: Path) -> None:
    async with chain(tmp_path) as c:
        # each level subscribes to the catalog of the one below (App.N); the province to the county's
        for upper, lower in ((c.servers[1], VILLAGE), (c.servers[0], TOWN)):
            row = await upper.cli("subscribe", "catalog", lower)
            assert row["state"] == "active", row  # type: ignore[index]
        assert c.province.lower is not None
        status, _ = await c.province.subscribe(c.province.lower, COUNTY)
        assert status == 200

        # (2) the NVR loses power: the village takes it offline, and the OFF climbs to the province as a NOTIFY
        assert (await c.sim.command(f"power-off {c.device_id}")).startswith("ok")
        seen: set[tuple[str, str]] = set()
        for _ in range(100):  # bounded: one NOTIFY per iteration
            if (AS_ID, "OFF") in seen:
                break
            try:
                headers, body = await asyncio.wait_for(c.province.notifies.get(), WAIT)
            except TimeoutError:
                raise AssertionError(f"NOTIFY OFF at the province (seen {seen})\n" + c.logs()) from None
            assert headers["event"] == "Catalog;id=7" and b"<CmdType>Catalog</CmdType>" in body
            assert c.channel.encode() not in body  # only the ID the province knows
            seen |= {(i.decode(), e.decode()) for i, e in
                     re.findall(rb"<Item>\s*<DeviceID>(\d+)</DeviceID>\s*<Event>(\w+)</Event>", body)}  # fmt: skip
        assert (AS_ID, "OFF") in seen, seen
        notified = [(await s.cli("stats"))["counters"].get("upstream:notified", 0) for s in c.servers]  # type: ignore[index]
        assert all(n >= 1 for n in notified), notified  # every level told the one above
