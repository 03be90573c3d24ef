"""The RegistryStore contract: every store (memory, SQLite, a future PostgreSQL one) must pass this suite."""

from __future__ import annotations

import dataclasses

import pytest

from registry.models import OFFLINE, ONLINE, Device, Keepalive, Registration, StatusEvent
from registry.store import RegistryStore

A = "34020000001320000001"
B = "34020000001320000002"
C = "34020000001320000003"


def reg(device_id: str, at: float = 1000.0, expires: int = 3600, **kw: str) -> Registration:
    kw.setdefault("transport", "UDP")
    kw.setdefault("address", "10.0.0.1:5060")
    return Registration(device_id=device_id, at=at, expires=expires, **kw)


# devices


async def test_unknown_device_is_none(store: RegistryStore) -> None:
    assert await store.get_device(A) is None
    assert await store.list_devices() == []


async def test_put_get_round_trips_every_field(store: RegistryStore) -> None:
    device = Device(
        id=A,
        name="Gate 东门",
        manufacturer="Hikvision",
        model="DS-2CD",
        firmware="V5.5",
        transport="TCP",
        address="10.0.0.1:5060",
        local_address="10.0.0.254:5060",
        contact="<sip:34020000001320000001@10.0.0.1:5060>",
        user_agent="IP Camera",
        gb_version="3.0",
        charset="GB18030",
        stream_mode="tcp-passive",
        keepalive_interval=30,
        keepalive_count=4,
        enabled=False,
        password="secret",
        provisioned=True,
        registered_at=1000.5,
        expires=3600,
        expires_at=4600.5,
        last_keepalive=1030.25,
        status=ONLINE,
        created_at=999.0,
    )
    await store.put_device(device)
    assert await store.get_device(A) == device
    assert await store.list_devices() == [device]


async def test_put_replaces_the_whole_record(store: RegistryStore) -> None:
    await store.put_device(Device(id=A, name="old", password="p", keepalive_interval=30))
    await store.put_device(Device(id=A, name="new"))
    got = await store.get_device(A)
    assert got == Device(id=A, name="new")
    assert got.password is None and got.keepalive_interval is None


async def test_list_is_ordered_by_id_and_filters_by_status(store: RegistryStore) -> None:
    for device_id, status in ((C, ONLINE), (A, OFFLINE), (B, ONLINE)):
        await store.put_device(Device(id=device_id, status=status))
    assert [d.id for d in await store.list_devices()] == [A, B, C]
    assert [d.id for d in await store.list_devices(status=ONLINE)] == [B, C]
    assert [d.id for d in await store.list_devices(status=OFFLINE)] == [A]


async def test_remove(store: RegistryStore) -> None:
    await store.put_device(Device(id=A))
    await store.append_events([StatusEvent(at=1.0, subject=A, event="registered")])
    assert await store.remove_device(A) is True
    assert await store.get_device(A) is None
    assert await store.remove_device(A) is False
    assert [e.subject for e in await store.list_events()] == [A], "a removed device's events stay"


async def test_records_are_copies(store: RegistryStore) -> None:
    device = Device(id=A, name="original")
    await store.put_device(device)
    device.name = "changed by the caller after put"
    got = await store.get_device(A)
    assert got.name == "original"
    got.name = "changed by the caller after get"
    assert (await store.get_device(A)).name == "original"
    listed = await store.list_devices()
    listed[0].status = ONLINE
    assert (await store.get_device(A)).status == OFFLINE
    assert await store.get_device(A) is not await store.get_device(A)


# registrations


async def test_registration_creates_an_unknown_device(store: RegistryStore) -> None:
    await store.save_registrations(
        [
            reg(
                A,
                at=1000.0,
                expires=3600,
                transport="TCP",
                address="10.0.0.1:40000",
                local_address="10.0.0.254:5060",
                contact="<sip:a@10.0.0.1:40000;transport=tcp>",
                user_agent="cam/1.0",
                gb_version="3.0",
            )
        ]
    )
    got = await store.get_device(A)
    assert got == Device(
        id=A,
        transport="TCP",
        address="10.0.0.1:40000",
        local_address="10.0.0.254:5060",
        contact="<sip:a@10.0.0.1:40000;transport=tcp>",
        user_agent="cam/1.0",
        gb_version="3.0",
        registered_at=1000.0,
        expires=3600,
        expires_at=4600.0,
        status=ONLINE,
        created_at=1000.0,
    )
    assert got.registered(4599.0) and not got.registered(4600.0)


async def test_registration_updates_a_known_device_and_keeps_operator_fields(store: RegistryStore) -> None:
    provisioned = Device(id=A, name="Gate", password="pw", provisioned=True, charset="UTF-8", created_at=5.0)
    await store.put_device(provisioned)
    await store.save_registrations([reg(A, at=2000.0, expires=600, address="10.0.0.9:5070")])
    got = await store.get_device(A)
    assert (got.name, got.password, got.provisioned, got.charset, got.created_at) == ("Gate", "pw", True, "UTF-8", 5.0)
    assert (got.address, got.transport, got.registered_at, got.expires, got.expires_at, got.status) == (
        "10.0.0.9:5070",
        "UDP",
        2000.0,
        600,
        2600.0,
        ONLINE,
    )


async def test_unregistration_clears_expiry_and_sets_offline(store: RegistryStore) -> None:
    await store.save_registrations([reg(A, at=1000.0, address="10.0.0.1:5060", user_agent="cam")])
    await store.save_keepalives([Keepalive(A, at=1010.0)])
    await store.save_registrations([reg(A, at=1020.0, expires=0, address="", user_agent="")])
    got = await store.get_device(A)
    assert (got.expires, got.expires_at, got.status) == (0, None, OFFLINE)
    assert not got.registered(1021.0)
    # what the last registration said stays for the operator to see
    assert (got.address, got.user_agent, got.registered_at, got.last_keepalive) == (
        "10.0.0.1:5060",
        "cam",
        1000.0,
        1010.0,
    )


async def test_unregistration_of_an_unknown_device_leaves_it_offline(store: RegistryStore) -> None:
    await store.save_registrations([reg(A, at=1000.0, expires=0)])
    got = await store.get_device(A)
    assert (got.status, got.expires, got.expires_at, got.registered_at) == (OFFLINE, 0, None, None)


async def test_later_items_in_a_batch_win(store: RegistryStore) -> None:
    await store.save_registrations(
        [
            reg(A, at=1.0, address="10.0.0.1:1"),
            reg(B, at=1.0, expires=3600),
            reg(A, at=2.0, address="10.0.0.1:2", expires=60),
            reg(B, at=2.0, expires=0),
            reg(C, at=1.0, expires=0),
            reg(C, at=3.0, expires=120, address="10.0.0.3:3"),
        ]
    )
    a, b, c = [await store.get_device(x) for x in (A, B, C)]
    assert (a.address, a.expires_at, a.status) == ("10.0.0.1:2", 62.0, ONLINE)
    assert (b.expires_at, b.status) == (None, OFFLINE)
    assert (c.address, c.expires_at, c.status) == ("10.0.0.3:3", 123.0, ONLINE)


async def test_empty_batches_are_fine(store: RegistryStore) -> None:
    await store.save_registrations([])
    await store.save_keepalives([])
    await store.set_status([])
    await store.append_events([])
    assert await store.list_devices() == []


async def test_a_large_registration_batch(store: RegistryStore) -> None:
    ids = [f"340200000013200{i:05d}" for i in range(2000)]
    await store.save_registrations([reg(i, at=10.0) for i in ids])
    devices = await store.list_devices(status=ONLINE)
    assert [d.id for d in devices] == ids


# keepalives and status


async def test_keepalive_batch(store: RegistryStore) -> None:
    await store.save_registrations([reg(A, address="10.0.0.1:5060"), reg(B, transport="TCP", address="10.0.0.2:1")])
    await store.save_keepalives(
        [
            Keepalive(A, at=1100.0),
            Keepalive(B, at=1100.0, transport="TCP", address="10.0.0.2:2"),
            Keepalive(A, at=1160.0, address="10.9.9.9:5060"),  # a 4G device moved: later item wins
            Keepalive(C, at=1100.0),  # unknown: ignored, not created
        ]
    )
    a, b = await store.get_device(A), await store.get_device(B)
    assert (a.last_keepalive, a.address, a.transport) == (1160.0, "10.9.9.9:5060", "UDP")
    assert (b.last_keepalive, b.address, b.transport) == (1100.0, "10.0.0.2:2", "TCP")
    assert await store.get_device(C) is None


async def test_keepalive_does_not_change_status_or_registration(store: RegistryStore) -> None:
    await store.save_registrations([reg(A, at=1000.0)])
    await store.set_status([(A, OFFLINE)])
    await store.save_keepalives([Keepalive(A, at=1100.0)])
    got = await store.get_device(A)
    assert (got.status, got.expires_at, got.registered_at) == (OFFLINE, 4600.0, 1000.0)


async def test_set_status(store: RegistryStore) -> None:
    await store.save_registrations([reg(A), reg(B)])
    await store.set_status([(A, OFFLINE), (B, OFFLINE), (B, ONLINE), (C, OFFLINE)])
    assert (await store.get_device(A)).status == OFFLINE
    assert (await store.get_device(B)).status == ONLINE
    assert await store.get_device(C) is None
    assert (await store.get_device(A)).expires_at == 4600.0, "liveness is not registration"


async def test_set_status_rejects_an_unknown_status(store: RegistryStore) -> None:
    await store.save_registrations([reg(A)])
    with pytest.raises(ValueError):
        await store.set_status([(A, OFFLINE), (A, "sleeping")])
    assert (await store.get_device(A)).status == ONLINE, "nothing of a rejected batch applies"


# the status event log


def ev(at: float, subject: str = A, event: str = "registered", **kw: str) -> StatusEvent:
    return StatusEvent(at=at, subject=subject, event=event, **kw)


async def test_events_round_trip(store: RegistryStore) -> None:
    events = [
        ev(10.0, A, "registered", reason="REGISTER expires=3600"),
        ev(11.5, "34020000001310000001", "channel-off", kind="channel"),
        ev(12.001, "34020000002000000001", "platform-stop", kind="platform", reason="SIGTERM"),
    ]
    await store.append_events(events)
    got = await store.list_events()
    assert got == events  # id is not compared
    assert all(e.id is not None for e in got)
    assert len({e.id for e in got}) == 3


async def test_events_are_listed_in_time_order(store: RegistryStore) -> None:
    await store.append_events([ev(30.0, event="expired"), ev(10.0), ev(20.0, event="keepalive-timeout")])
    await store.append_events([ev(20.0, event="online"), ev(5.0, B)])
    got = await store.list_events()
    assert [(e.at, e.subject, e.event) for e in got] == [
        (5.0, B, "registered"),
        (10.0, A, "registered"),
        (20.0, A, "keepalive-timeout"),  # equal times: append order
        (20.0, A, "online"),
        (30.0, A, "expired"),
    ]


async def test_event_filters(store: RegistryStore) -> None:
    await store.append_events([ev(float(t), A if t % 2 else B) for t in range(1, 11)])
    assert [e.at for e in await store.list_events(subject=A)] == [1, 3, 5, 7, 9]
    assert [e.at for e in await store.list_events(subject=B, since=4.0)] == [4, 6, 8, 10]
    assert [e.at for e in await store.list_events(since=3.0, until=6.0)] == [3, 4, 5], "since <= at < until"
    assert [e.at for e in await store.list_events(until=3.0)] == [1, 2]
    assert [e.at for e in await store.list_events(limit=3)] == [8, 9, 10], "the newest, oldest first"
    assert [e.at for e in await store.list_events(subject=A, until=9.0, limit=2)] == [5, 7]
    assert await store.list_events(subject=C) == []
    assert await store.list_events(limit=0) == []


async def test_last_events_give_each_subjects_state_before_a_time(store: RegistryStore) -> None:
    await store.append_events(
        [
            ev(10.0, A, "registered"),
            ev(30.0, A, "expired"),
            ev(20.0, A, "address-changed"),  # not asked for
            ev(40.0, A, "registered"),  # not before 40
            ev(15.0, B, "registered"),
            ev(15.0, B, "keepalive-timeout"),  # same millisecond: the last appended wins
            ev(50.0, C, "registered"),
        ]
    )
    await store.append_events([ev(25.0, B, "address-changed"), ev(5.0, "platform", "platform-start", kind="platform")])
    states = ["registered", "expired", "keepalive-timeout", "platform-start"]
    got = await store.last_events(before=40.0, events=states)
    assert [(e.subject, e.at, e.event) for e in got] == [
        (A, 30.0, "expired"),
        (B, 15.0, "keepalive-timeout"),
        ("platform", 5.0, "platform-start"),
    ]
    assert all(e.id is not None for e in got)
    assert [e.at for e in await store.last_events(before=40.001, events=["registered"])] == [40.0, 15.0]
    assert await store.last_events(before=1.0, events=states) == []
    assert await store.last_events(before=100.0, events=[]) == []
    with pytest.raises(ValueError):
        await store.last_events(before=100.0, events=["no-such-event"])


async def test_event_times_are_kept_to_the_millisecond(store: RegistryStore) -> None:
    await store.append_events([ev(1700000000.1234), ev(1700000000.5)])
    got = await store.list_events(since=1700000000.123, until=1700000000.124)
    assert [e.at for e in got] == [1700000000.123]


async def test_unknown_event_or_kind_is_rejected_whole(store: RegistryStore) -> None:
    with pytest.raises(ValueError):
        await store.append_events([ev(1.0), ev(2.0, event="rebooted")])
    with pytest.raises(ValueError):
        await store.append_events([ev(1.0, kind="camera")])
    assert await store.list_events() == []


async def test_given_event_ids_are_ignored(store: RegistryStore) -> None:
    await store.append_events([dataclasses.replace(ev(1.0), id=777), dataclasses.replace(ev(2.0), id=777)])
    ids = [e.id for e in await store.list_events()]
    assert len(set(ids)) == 2


async def test_reopen_is_harmless(store: RegistryStore) -> None:
    await store.save_registrations([reg(A)])
    await store.open()
    assert (await store.get_device(A)).status == ONLINE


async def test_a_refresh_keeps_when_the_registration_began(store: RegistryStore) -> None:
    await store.save_registrations([reg(A, at=1000.0, expires=3600, gb_version="3.0")])
    await store.save_registrations([reg(A, at=2000.0, expires=3600, gb_version="")])  # refresh, no X-GB-ver
    got = await store.get_device(A)
    assert (got.registered_at, got.expires_at, got.gb_version) == (1000.0, 5600.0, "3.0")
    await store.save_registrations([reg(A, at=9000.0, expires=60, gb_version="2.0")])  # after it expired
    got = await store.get_device(A)
    assert (got.registered_at, got.expires_at, got.gb_version) == (9000.0, 9060.0, "2.0")
    await store.save_registrations([reg(A, at=9010.0, expires=0), reg(A, at=9020.0, expires=60)])
    assert (await store.get_device(A)).registered_at == 9020.0, "a registration after an unregistration is new"
    await store.save_registrations([reg(B, at=1.0, expires=60), reg(B, at=30.0, expires=60)])
    assert (await store.get_device(B)).registered_at == 1.0, "within one batch too"
