"""The alarm and mobile-position part of the RegistryStore contract, run against every store (conftest ``store``)."""

from __future__ import annotations

import math

import pytest

from registry.models import Alarm, Position
from registry.store import RegistryStore

DEV = "34020000001180000001"
CAM = "34020000001340000001"
OTHER = "34020000001180000002"


def alarm(at: float, device: str = DEV, **kw: object) -> Alarm:
    kw.setdefault("source_id", CAM)
    return Alarm(device_id=device, received_at=at, **kw)  # type: ignore[arg-type]


async def test_alarms_round_trip_every_field_and_get_ids_in_order(store: RegistryStore) -> None:
    full = alarm(
        1000.5, priority=1, method=5, alarm_type=2, event_type=1, alarm_time="2024-05-01T10:00:00",
        description="移动侦测 motion", longitude=116.3, latitude=39.9, via="notify", sn=17,
    )  # fmt: skip
    ids = await store.add_alarms([full, alarm(1001.0)])
    assert len(ids) == 2 and ids[0] < ids[1]
    listed = await store.list_alarms()
    assert listed == [full, alarm(1001.0)] and [a.id for a in listed] == ids
    assert await store.get_alarm(ids[0]) == full
    assert await store.get_alarm(999_999) is None


async def test_list_alarms_filters_by_device_or_source_since_and_keeps_the_newest(store: RegistryStore) -> None:
    await store.add_alarms([alarm(10), alarm(20, OTHER, source_id=OTHER), alarm(30), alarm(40)])
    assert [a.received_at for a in await store.list_alarms(device_id=DEV)] == [10, 30, 40]
    assert [a.received_at for a in await store.list_alarms(device_id=CAM)] == [10, 30, 40]  # the source
    assert [a.received_at for a in await store.list_alarms(device_id=OTHER)] == [20]
    assert [a.received_at for a in await store.list_alarms(since=20)] == [20, 30, 40]
    assert [a.received_at for a in await store.list_alarms(limit=2)] == [30, 40]
    assert await store.list_alarms(limit=0) == []


async def test_ack_keeps_the_first_acknowledgement_and_unknown_ids_are_key_errors(store: RegistryStore) -> None:
    (alarm_id,) = await store.add_alarms([alarm(10)])
    acked = await store.ack_alarm(alarm_id, "alice", 50.0)
    assert (acked.acked_by, acked.acked_at) == ("alice", 50.0)
    again = await store.ack_alarm(alarm_id, "bob", 60.0)
    assert (again.acked_by, again.acked_at) == ("alice", 50.0)
    with pytest.raises(KeyError):
        await store.ack_alarm(alarm_id + 100, "alice", 1.0)


async def test_reset_marks_the_devices_open_alarms_optionally_of_one_type(store: RegistryStore) -> None:
    await store.add_alarms([alarm(10, alarm_type=1), alarm(20, alarm_type=2), alarm(30, OTHER, source_id=OTHER)])
    assert await store.mark_alarms_reset(DEV, "op", 100.0, alarm_type=2) == 1
    assert await store.mark_alarms_reset(DEV, "op", 200.0) == 1  # only the one still open
    assert await store.mark_alarms_reset(DEV, "op", 300.0) == 0
    by_time = {a.received_at: a for a in await store.list_alarms()}
    assert (by_time[10].reset_at, by_time[20].reset_at, by_time[30].reset_at) == (200.0, 100.0, None)


async def test_invalid_alarms_store_nothing(store: RegistryStore) -> None:
    with pytest.raises(ValueError):
        await store.add_alarms([alarm(1), alarm(2, via="carrier pigeon")])
    with pytest.raises(ValueError):
        await store.add_alarms([alarm(1, longitude=math.nan)])
    assert await store.list_alarms() == []


def position(target: str, at: float, lon: float, device: str = DEV) -> Position:
    return Position(device, target, at, time=f"t{at}", longitude=lon, latitude=38.5, speed=36.5, direction=270.0,
                    altitude=1100.0, height=2.5)  # fmt: skip


async def test_positions_keep_the_latest_per_device_and_target(store: RegistryStore) -> None:
    await store.save_positions([position(CAM, 1, 106.1), position(DEV, 1, 106.2), position(CAM, 2, 106.3)])
    await store.save_positions([position(CAM, 3, 106.4, device=OTHER)])
    assert await store.list_positions(device_id=DEV) == [position(DEV, 1, 106.2), position(CAM, 2, 106.3)]
    assert [p.device_id for p in await store.list_positions()] == [DEV, DEV, OTHER]
    bare = Position(DEV, "34020000001310000009", 5.0)
    await store.save_positions([bare])
    assert bare in await store.list_positions(device_id=DEV)
    with pytest.raises(ValueError):
        await store.save_positions([Position(DEV, "", 1.0)])
