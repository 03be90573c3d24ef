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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.raw_superior import RawSuperior
from tests.e2e.serve_helpers import Server
from tests.e2e.test_cascade_media_e2e import (
    AS_ID,
    COUNTY,
    PROFILE,
    PROVINCE,
    TOWN,
    VILLAGE,
    WAIT,
    _online,
    has_channel,
    media,
    sim_channel,
    until,
    upstream,
)
from tests.e2e.test_simulator_e2e import PASSWORD, Sim

pytestmark = pytest.mark.e2e

NAME = "village gate"


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


@dataclass
class Chain:
    province: RawSuperior
    servers: list[Server]  # county, town, village
    sim: Sim
    device_id: str
    channel: str

    def logs(self) -> str:
        return "\n".join(s.log() for s in self.servers)


@asynccontextmanager
async def chain(tmp_path: Path) -> AsyncIterator[Chain]:
    """village -> town -> county -> province, the village NVR's channel synced up to the county and shared with the
    province as AS_ID / NAME; every process stopped (exit 0) afterwards."""
    province = await RawSuperior.start(PROVINCE, "province-pw")
    dirs = {name: tmp_path / name for name in ("county", "town", "village")}
    for d in dirs.values():
        d.mkdir()
    sync = "sync_on_register = false"
    county = Server(dirs["county"], sip_extra=f'id = "{COUNTY}"\npassword = "county-pw"\nt1 = 0.1',
                    catalog_extra=sync, extra=media() + upstream(PROVINCE, province.port, "province-pw",
                                                                 share="all"))  # fmt: skip
    servers = [county]
    sim: Sim | None = None
    try:
        await county.start()
        town = Server(dirs["town"], sip_extra=f'id = "{TOWN}"\npassword = "town-pw"\nt1 = 0.1', catalog_extra=sync,
                      extra=media() + upstream(COUNTY, county.sip_port, "county-pw", share="all"))  # fmt: skip
        servers.append(town)
        await town.start()
        village = Server(dirs["village"], sip_extra=f'password = "{PASSWORD}"\nt1 = 0.1',
                         catalog_extra="sync_on_register = true",
                         extra=media() + "[keepalive]\ninterval = 1\nmax_missed = 2\n" +
                         upstream(TOWN, town.sip_port, "town-pw", share="all"))  # fmt: skip
        servers.append(village)
        await village.start()
        sim = Sim(village, dirs["village"], "--devices", "1", "--profile", PROFILE, "--keepalive", "0.5")
        await sim.start()
        device_id, channel = sim_channel()
        await until(lambda: has_channel(village, channel), "the NVR's catalog at the village", *servers)
        await until(lambda: _online(town, VILLAGE), "the village registered at the town", *servers)
        assert (await town.cli("catalog", "sync", VILLAGE, "--wait"))["state"] == "complete"  # type: ignore[index]
        await until(lambda: has_channel(town, channel), "the channel at the town", *servers)
        await until(lambda: _online(county, TOWN), "the town registered at the county", *servers)
        assert (await county.cli("catalog", "sync", TOWN, "--wait"))["state"] == "complete"  # type: ignore[index]
        await until(lambda: has_channel(county, channel), "the channel at the county", *servers)
        await county.cli("share", "add", PROVINCE, channel, "--as", AS_ID, "--name", NAME)
        await until(lambda: province.lower is not None, "the county registered at the province", *servers)
        yield Chain(province, servers, sim, device_id, channel)
        await sim.quit()
    finally:
        if sim is not None:
            await sim.kill()
        codes = [await srv.stop() if srv.proc else 0 for srv in reversed(servers)]
        province.close()
    assert codes == [0] * len(servers)


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
