"""The channel part of the RegistryStore contract, run against every store (the ``store`` fixture of conftest.py)."""

from __future__ import annotations

import dataclasses

import pytest

from registry.models import (
    EVENT_CODES,
    OFFLINE,
    ONLINE,
    OVERRIDE_FIELDS,
    Channel,
    Device,
    StatusEvent,
)
from registry.store import RegistryStore

NVR = "34020000001110000001"
IPC = "34020000001320000001"
OTHER = "34020000001110000002"
CH1 = "34020000001310000001"
CH2 = "34020000001310000002"
CH3 = "34020000001310000003"
ALARM = "34020000001340000001"
REGION = "340200"


def ch(channel_id: str = CH1, device_id: str = NVR, **kw: object) -> Channel:
    kw.setdefault("kind", "video")
    kw.setdefault("updated_at", 1000.0)
    return Channel(device_id=device_id, id=channel_id, **kw)  # type: ignore[arg-type]


async def devices(store: RegistryStore, *ids: str) -> None:
    for device_id in ids or (NVR,):
        await store.put_device(Device(id=device_id))


def full_channel() -> Channel:
    return Channel(
        device_id=NVR,
        id=CH1,
        name="东门 入口 1",
        manufacturer="Dahua",
        model="DH-NVR4208",
        owner="Owner",
        civil_code="340200",
        block="Block A",
        address="合肥市 长江路 1 号",
        parental=0,
        parent_ids=("34020000002160000001", "34020000002150000001", "340200"),
        business_group_id="34020000002150000001",
        safety_way=0,
        register_way=1,
        cert_num="CERT-1",
        certifiable=0,
        err_code=400,
        end_time="2030-01-01T00:00:00",
        secrecy=0,
        ip_address="rtsp://192.168.1.64:554/cam/realmonitor?channel=1&subtype=0",
        port=554,
        status=ONLINE,
        longitude=117.2272,
        latitude=31.8206,
        ptz_type=1,
        point_class=2,
        kind="video",
        info={"Resolution": "6/3", "PointCommonName": "东门广场", "MAC": ""},
        first_seen=900.5,
        updated_at=1000.25,
    )


# reading and the round trip


async def test_no_channels(store: RegistryStore) -> None:
    await devices(store)
    assert await store.get_channel(NVR, CH1) is None
    assert await store.list_channels() == []
    assert await store.list_channels(device_id=NVR) == []
    assert (await store.count_channels(NVR), await store.count_video_channels(NVR)) == (0, 0)
    assert (await store.count_channels(IPC), await store.count_video_channels(IPC)) == (0, 0), "unknown device"
    assert await store.channel_ids(NVR) == set() and await store.channel_ids(IPC) == set()


async def test_channel_ids_are_one_devices_ids(store: RegistryStore) -> None:
    await devices(store, NVR, OTHER)
    await store.apply_catalog(NVR, [ch(CH1), ch(CH2), ch(ALARM, kind="alarm-in")], [])
    await store.apply_catalog(OTHER, [ch(CH3, device_id=OTHER)], [])
    assert await store.channel_ids(NVR) == {CH1, CH2, ALARM}
    assert await store.channel_ids(OTHER) == {CH3}
    await store.apply_catalog(NVR, [], [CH2])
    assert await store.channel_ids(NVR) == {CH1, ALARM}


async def test_every_field_round_trips(store: RegistryStore) -> None:
    await devices(store)
    channel = full_channel()
    await store.apply_catalog(NVR, [channel], [])
    assert await store.get_channel(NVR, CH1) == channel
    assert await store.list_channels() == [channel]
    got = await store.get_channel(NVR, CH1)
    assert got.parent_ids == ("34020000002160000001", "34020000002150000001", "340200")
    assert got.parent_id == "34020000002160000001"
    assert got.info["PointCommonName"] == "东门广场"


async def test_info_and_parents_round_trip_json_edge_cases(store: RegistryStore) -> None:
    await devices(store)
    tricky = {
        "名称": '引号 " 反斜杠 \\ 换行 \n 制表 \t',
        "Emoji": "摄像机 📷",
        "GB18030 rare": "𠀀䶵",
        "": "empty key",
        "json-looking": '{"a": [1, 2]}',
    }
    channels = [
        ch(CH1, info=tricky, parent_ids=("a/b", "", "340200")),
        ch(CH2, info={}, parent_ids=()),
    ]
    await store.apply_catalog(NVR, channels, [])
    a, b = await store.list_channels()
    assert a.info == tricky and a.parent_ids == ("a/b", "", "340200")
    assert (b.info, b.parent_ids, b.parent_id) == ({}, (), None)
    assert isinstance(a.parent_ids, tuple)


async def test_none_and_zero_are_different_values(store: RegistryStore) -> None:
    await devices(store)
    zeros = ch(CH1, longitude=0.0, latitude=0.0, port=0, parental=0, ptz_type=0, err_code=0, secrecy=0)
    nones = ch(CH2)
    await store.apply_catalog(NVR, [zeros, nones], [])
    z = await store.get_channel(NVR, CH1)
    n = await store.get_channel(NVR, CH2)
    assert (z.longitude, z.latitude, z.port, z.parental, z.ptz_type, z.err_code, z.secrecy) == (0.0, 0.0, 0, 0, 0, 0, 0)
    assert z.longitude is not None and z.port is not None and z.parental is not None
    assert (n.longitude, n.latitude, n.port, n.parental, n.ptz_type, n.err_code, n.secrecy) == (None,) * 7
    await store.set_channel_overrides(NVR, CH1, override_longitude=0.0, override_latitude=0)
    z = await store.get_channel(NVR, CH1)
    assert (z.override_longitude, z.override_latitude) == (0.0, 0.0)
    assert z.override_longitude is not None and isinstance(z.override_latitude, float)
    assert (z.shown_longitude, z.shown_latitude) == (0.0, 0.0)
    assert (await store.get_channel(NVR, CH2)).override_longitude is None


async def test_coordinates_come_back_as_floats(store: RegistryStore) -> None:
    await devices(store)
    await store.apply_catalog(NVR, [ch(longitude=117, latitude=31)], [])
    got = await store.get_channel(NVR, CH1)
    assert (got.longitude, got.latitude) == (117.0, 31.0)
    assert isinstance(got.longitude, float) and isinstance(got.latitude, float)


async def test_records_are_copies(store: RegistryStore) -> None:
    await devices(store)
    given = ch(info={"k": "original"}, name="original")
    await store.apply_catalog(NVR, [given], [])
    given.info["k"] = "changed by the caller after apply"
    given.name = "changed"
    got = await store.get_channel(NVR, CH1)
    assert (got.info, got.name) == ({"k": "original"}, "original")
    got.info["k"] = "changed by the caller after get"
    got.status = ONLINE
    listed = await store.list_channels()
    listed[0].info["x"] = "y"
    returned = await store.set_channel_overrides(NVR, CH1, override_name="N")
    returned.info["z"] = "z"
    again = await store.get_channel(NVR, CH1)
    assert (again.info, again.status) == ({"k": "original"}, OFFLINE)


# catalog upserts


async def test_a_catalog_for_an_unknown_device_is_refused(store: RegistryStore) -> None:
    with pytest.raises(KeyError):
        await store.apply_catalog(IPC, [ch(CH1, IPC)], [])
    with pytest.raises(KeyError):
        await store.apply_catalog(IPC, [], [CH1])
    assert await store.list_channels() == []


async def test_a_new_channel_takes_no_override_from_a_catalog(store: RegistryStore) -> None:
    await devices(store)
    sneaky = ch(override_name="from the catalog", override_longitude=1.0, override_point_class=1)
    await store.apply_catalog(NVR, [sneaky], [])
    got = await store.get_channel(NVR, CH1)
    assert all(getattr(got, name) is None for name in OVERRIDE_FIELDS)


async def test_first_seen_defaults_to_updated_at_and_is_kept(store: RegistryStore) -> None:
    await devices(store)
    await store.apply_catalog(NVR, [ch(CH1, updated_at=100.0), ch(CH2, first_seen=50.0, updated_at=100.0)], [])
    assert [(c.first_seen, c.updated_at) for c in await store.list_channels()] == [(100.0, 100.0), (50.0, 100.0)]
    await store.apply_catalog(NVR, [ch(CH1, updated_at=200.0, first_seen=150.0), ch(CH2, updated_at=200.0)], [])
    assert [(c.first_seen, c.updated_at) for c in await store.list_channels()] == [(100.0, 200.0), (50.0, 200.0)]


async def test_an_upsert_replaces_every_reported_field(store: RegistryStore) -> None:
    await devices(store)
    await store.apply_catalog(NVR, [full_channel()], [])
    sparse = ch(CH1, name="renamed", status=OFFLINE, kind="other", updated_at=2000.0)
    await store.apply_catalog(NVR, [sparse], [])
    assert await store.get_channel(NVR, CH1) == dataclasses.replace(sparse, first_seen=900.5)


async def test_overrides_survive_a_later_catalog_upsert(store: RegistryStore) -> None:
    await devices(store)
    await store.apply_catalog(NVR, [full_channel()], [])
    await store.set_channel_overrides(
        NVR,
        CH1,
        override_name="东门(运维改名)",
        override_longitude=117.3,
        override_latitude=31.9,
        override_civil_code="34020001",
        override_point_class=1,
    )
    update = dataclasses.replace(full_channel(), name="Camera 01", longitude=1.0, point_class=None, updated_at=3000.0)
    await store.apply_catalog(NVR, [update], [])  # the device reports again, overrides and all
    got = await store.get_channel(NVR, CH1)
    assert (got.name, got.longitude, got.point_class, got.updated_at) == ("Camera 01", 1.0, None, 3000.0)
    assert (got.override_name, got.override_longitude, got.override_latitude) == ("东门(运维改名)", 117.3, 31.9)
    assert (got.override_civil_code, got.override_point_class) == ("34020001", 1)
    assert (got.shown_name, got.shown_longitude, got.shown_point_class) == ("东门(运维改名)", 117.3, 1)


async def test_later_upserts_of_one_id_win(store: RegistryStore) -> None:
    await devices(store)
    await store.apply_catalog(NVR, [ch(name="first", updated_at=1.0), ch(name="second", updated_at=2.0)], [])
    got = await store.list_channels()
    assert [(c.name, c.first_seen, c.updated_at) for c in got] == [("second", 1.0, 2.0)]


async def test_removes_delete_only_the_named_channels_of_that_device(store: RegistryStore) -> None:
    await devices(store, NVR, OTHER)
    await store.apply_catalog(NVR, [ch(CH1), ch(CH2), ch(CH3)], [])
    await store.apply_catalog(OTHER, [ch(CH1, OTHER), ch(CH2, OTHER)], [])
    await store.apply_catalog(NVR, [], [CH1, CH3, "34020000001319999999"])  # an unknown ID is ignored
    assert [(c.device_id, c.id) for c in await store.list_channels()] == [(NVR, CH2), (OTHER, CH1), (OTHER, CH2)]


async def test_upserts_and_removes_in_one_call(store: RegistryStore) -> None:
    await devices(store)
    await store.apply_catalog(NVR, [ch(CH1), ch(CH2)], [])
    await store.apply_catalog(NVR, [ch(CH2, name="updated"), ch(CH3)], [CH1])
    assert [(c.id, c.name) for c in await store.list_channels()] == [(CH2, "updated"), (CH3, "")]


async def test_two_devices_with_the_same_channel_id_are_independent(store: RegistryStore) -> None:
    await devices(store, NVR, IPC)
    await store.apply_catalog(IPC, [ch(CH1, IPC, name="via the camera", status=ONLINE)], [])
    await store.apply_catalog(NVR, [ch(CH1, NVR, name="via the NVR", status=ONLINE)], [])
    await store.set_channel_overrides(NVR, CH1, override_name="NVR's")
    await store.set_channel_status([(IPC, CH1, OFFLINE)])
    via_nvr, via_ipc = await store.get_channel(NVR, CH1), await store.get_channel(IPC, CH1)
    assert (via_nvr.name, via_nvr.shown_name, via_nvr.status) == ("via the NVR", "NVR's", ONLINE)
    assert (via_ipc.name, via_ipc.shown_name, via_ipc.status) == ("via the camera", "via the camera", OFFLINE)
    await store.apply_catalog(IPC, [], [CH1])
    assert await store.get_channel(IPC, CH1) is None
    assert (await store.get_channel(NVR, CH1)).shown_name == "NVR's"
    assert (await store.count_channels(NVR), await store.count_channels(IPC)) == (1, 0)


async def test_a_large_catalog_in_one_call(store: RegistryStore) -> None:
    await devices(store)
    ids = [f"340200000013100{i:05d}" for i in range(5000)]
    await store.apply_catalog(NVR, [ch(i, name=f"通道 {i[-5:]}") for i in reversed(ids)], [])
    got = await store.list_channels(device_id=NVR)
    assert [c.id for c in got] == ids
    assert got[1234].name == "通道 01234"
    assert await store.count_video_channels(NVR) == 5000


# catalog validation: a bad change applies nothing


@pytest.mark.parametrize(
    "bad",
    [
        ch(CH3, status="ON"),
        ch(CH3, kind="camera"),
        ch(CH3, point_class=4),
        ch(CH3, point_class=0),
        ch(CH3, info={"Resolution": 6}),
        ch(CH3, longitude="117.2"),
        ch(CH3, latitude=float("nan")),
        ch(CH3, parent_ids=("340200", 340201)),
        ch(""),
        ch(CH3, device_id=OTHER),  # a channel of another device in this device's catalog
        ch(CH3, longitude=True),
        ch(CH3, latitude=float("-inf")),
        ch(CH3, point_class=True),
        ch(CH3, info={1: "x"}),
        ch(CH3, info=[("Resolution", "6")]),  # type: ignore[arg-type]
    ],
    ids=[
        "status",
        "kind",
        "point-class-4",
        "point-class-0",
        "info",
        "longitude",
        "nan",
        "parents",
        "empty-id",
        "device",
        "bool-longitude",
        "infinite",
        "bool-point-class",
        "info-key",
        "info-not-dict",
    ],
)
async def test_an_invalid_upsert_applies_nothing(store: RegistryStore, bad: Channel) -> None:
    await devices(store, NVR, OTHER)
    await store.apply_catalog(NVR, [ch(CH1, name="before")], [])
    with pytest.raises(ValueError):
        await store.apply_catalog(NVR, [ch(CH1, name="after"), ch(CH2), bad], [CH1 + "0"])
    assert [(c.id, c.name) for c in await store.list_channels()] == [(CH1, "before")]


async def test_an_id_both_upserted_and_removed_is_refused(store: RegistryStore) -> None:
    await devices(store)
    await store.apply_catalog(NVR, [ch(CH1), ch(CH2)], [])
    with pytest.raises(ValueError, match="both"):
        await store.apply_catalog(NVR, [ch(CH1, name="new")], [CH2, CH1])
    assert [(c.id, c.name) for c in await store.list_channels()] == [(CH1, ""), (CH2, "")]
    with pytest.raises(ValueError):
        await store.apply_catalog(NVR, [], CH1)  # one string is not a list of IDs
    assert await store.count_channels(NVR) == 2


# overrides


def test_shown_fields_prefer_the_override() -> None:
    reported = ch(name="Camera 01", longitude=117.0, latitude=31.0, civil_code="340200", point_class=2)
    assert (
        reported.shown_name,
        reported.shown_longitude,
        reported.shown_latitude,
        reported.shown_civil_code,
        reported.shown_point_class,
    ) == ("Camera 01", 117.0, 31.0, "340200", 2)
    overridden = dataclasses.replace(
        reported,
        override_name="东门",
        override_longitude=0.0,
        override_latitude=-1.5,
        override_civil_code="",
        override_point_class=9,
    )
    assert (
        overridden.shown_name,
        overridden.shown_longitude,
        overridden.shown_latitude,
        overridden.shown_civil_code,
        overridden.shown_point_class,
    ) == ("东门", 0.0, -1.5, "", 9), "an override of 0.0 or '' is still an override"
    assert dataclasses.replace(reported, override_name="").shown_name == "", "None, not '', means no override"
    bare = ch(override_name="N", override_longitude=1.0, override_point_class=3)
    assert (bare.shown_name, bare.shown_longitude, bare.shown_latitude, bare.shown_point_class) == ("N", 1.0, None, 3)


async def test_set_and_clear_overrides(store: RegistryStore) -> None:
    await devices(store)
    await store.apply_catalog(NVR, [ch(name="Camera 01", civil_code="340200", longitude=117.0, point_class=2)], [])
    got = await store.set_channel_overrides(NVR, CH1, override_name="东门", override_point_class=3)
    assert got == await store.get_channel(NVR, CH1)
    assert (got.shown_name, got.shown_point_class, got.shown_civil_code) == ("东门", 3, "340200")
    got = await store.set_channel_overrides(NVR, CH1, override_civil_code="34020002", override_longitude=117.5)
    assert (got.override_name, got.override_point_class) == ("东门", 3), "names not given are kept"
    assert (got.shown_civil_code, got.shown_longitude) == ("34020002", 117.5)
    got = await store.set_channel_overrides(NVR, CH1, override_name=None, override_longitude=None)
    assert (got.override_name, got.shown_name, got.shown_longitude) == (None, "Camera 01", 117.0)
    assert (got.shown_civil_code, got.shown_point_class) == ("34020002", 3)
    assert await store.set_channel_overrides(NVR, CH1) == got, "no names: the channel as it is"
    assert (await store.get_channel(NVR, CH1)).updated_at == 1000.0, "an override is not a catalog report"


async def test_bad_overrides_are_refused_whole(store: RegistryStore) -> None:
    await devices(store)
    await store.apply_catalog(NVR, [ch()], [])
    with pytest.raises(ValueError, match="name"):
        await store.set_channel_overrides(NVR, CH1, override_name="kept?", name="not an override")
    with pytest.raises(ValueError):
        await store.set_channel_overrides(NVR, CH1, override_name="kept?", status=ONLINE)
    with pytest.raises(ValueError):
        await store.set_channel_overrides(NVR, CH1, override_name="kept?", override_point_class=5)
    with pytest.raises(ValueError):
        await store.set_channel_overrides(NVR, CH1, override_latitude="31.8")
    with pytest.raises(ValueError):
        await store.set_channel_overrides(NVR, CH1, override_civil_code=340200)
    with pytest.raises(ValueError):
        await store.set_channel_overrides(NVR, CH1, override_longitude=float("inf"))
    got = await store.get_channel(NVR, CH1)
    assert all(getattr(got, name) is None for name in OVERRIDE_FIELDS)


async def test_overrides_of_an_unknown_channel(store: RegistryStore) -> None:
    await devices(store, NVR, IPC)
    await store.apply_catalog(NVR, [ch(CH1)], [])
    with pytest.raises(KeyError):
        await store.set_channel_overrides(IPC, CH1, override_name="x")  # same ID, other device
    with pytest.raises(KeyError):
        await store.set_channel_overrides(NVR, CH2, override_name="x")
    with pytest.raises(KeyError):
        await store.set_channel_overrides(NVR, CH2)
    assert [c.id for c in await store.list_channels()] == [CH1]
    assert (await store.get_channel(NVR, CH1)).override_name is None


# status


async def test_channel_status_changes_are_one_batch(store: RegistryStore) -> None:
    await devices(store, NVR, OTHER)
    await store.apply_catalog(NVR, [ch(CH1), ch(CH2), ch(CH3, status=ONLINE)], [])
    await store.apply_catalog(OTHER, [ch(CH1, OTHER)], [])
    await store.set_channel_status(
        [
            (NVR, CH1, ONLINE),
            (NVR, CH2, ONLINE),
            (NVR, CH2, OFFLINE),  # later items win
            (NVR, CH3, OFFLINE),
            (NVR, "34020000001319999999", ONLINE),  # unknown: ignored, not created
            (IPC, CH1, ONLINE),  # unknown device: ignored
        ]
    )
    got = {(c.device_id, c.id): (c.status, c.updated_at) for c in await store.list_channels()}
    assert got == {
        (NVR, CH1): (ONLINE, 1000.0),
        (NVR, CH2): (OFFLINE, 1000.0),
        (NVR, CH3): (OFFLINE, 1000.0),
        (OTHER, CH1): (OFFLINE, 1000.0),
    }
    await store.set_channel_status([])


async def test_a_bad_channel_status_applies_nothing(store: RegistryStore) -> None:
    await devices(store)
    await store.apply_catalog(NVR, [ch(CH1), ch(CH2)], [])
    with pytest.raises(ValueError):
        await store.set_channel_status([(NVR, CH1, ONLINE), (NVR, CH2, "VLOST")])
    assert [c.status for c in await store.list_channels()] == [OFFLINE, OFFLINE]


# listing and counting


async def test_list_order_and_filters(store: RegistryStore) -> None:
    await devices(store, NVR, IPC, OTHER)
    await store.apply_catalog(OTHER, [ch(CH2, OTHER, civil_code="340201", status=ONLINE)], [])
    await store.apply_catalog(
        NVR,
        [
            ch(CH3, civil_code="340202", status=ONLINE),
            ch(CH1, civil_code="340201"),
            ch(REGION, civil_code="340200", kind="region", status=ONLINE),
            ch(CH2, civil_code="350100", status=ONLINE),
        ],
        [],
    )
    await store.apply_catalog(IPC, [ch(IPC, IPC, civil_code="3402019", status=ONLINE)], [])

    def keys(channels: list[Channel]) -> list[tuple[str, str]]:
        return [(c.device_id, c.id) for c in channels]

    everything = [(NVR, CH1), (NVR, CH2), (NVR, CH3), (NVR, REGION), (OTHER, CH2), (IPC, IPC)]
    everything.sort()
    assert keys(await store.list_channels()) == everything, "ordered by (device_id, id)"
    nvr = [(NVR, REGION), (NVR, CH1), (NVR, CH2), (NVR, CH3)]  # "340200" < "34020000001310000001"
    assert keys(await store.list_channels(device_id=NVR)) == nvr
    assert keys(await store.list_channels(device_id=NVR, status=OFFLINE)) == [(NVR, CH1)]
    assert keys(await store.list_channels(status=OFFLINE)) == [(NVR, CH1)]
    assert keys(await store.list_channels(civil_code_prefix="340201")) == [(NVR, CH1), (OTHER, CH2), (IPC, IPC)]
    assert keys(await store.list_channels(civil_code_prefix="3402")) == [k for k in everything if k != (NVR, CH2)], (
        "a prefix, not an equality"
    )
    assert keys(await store.list_channels(civil_code_prefix="340201", status=ONLINE, device_id=OTHER)) == [(OTHER, CH2)]
    assert keys(await store.list_channels(civil_code_prefix="35")) == [(NVR, CH2)]
    assert keys(await store.list_channels(civil_code_prefix="4")) == []
    assert keys(await store.list_channels(civil_code_prefix="")) == everything
    assert await store.list_channels(device_id="34020000001110009999") == []


async def test_the_civil_code_filter_uses_the_shown_code(store: RegistryStore) -> None:
    await devices(store)
    await store.apply_catalog(NVR, [ch(CH1, civil_code="340201"), ch(CH2, civil_code="340202")], [])
    await store.set_channel_overrides(NVR, CH1, override_civil_code="350100")
    assert [c.id for c in await store.list_channels(civil_code_prefix="3402")] == [CH2]
    assert [c.id for c in await store.list_channels(civil_code_prefix="3501")] == [CH1]
    await store.set_channel_overrides(NVR, CH1, override_civil_code=None)
    assert [c.id for c in await store.list_channels(civil_code_prefix="3402")] == [CH1, CH2]


async def test_counts_all_kinds_and_video_channels(store: RegistryStore) -> None:
    await devices(store, NVR, OTHER)
    await store.apply_catalog(
        NVR,
        [
            ch(CH1),
            ch(CH2),
            ch(ALARM, kind="alarm-in"),
            ch(REGION, kind="region"),
            ch("34020000002150000001", kind="group"),
            ch("34020000002160000001", kind="virtual-org"),
        ],
        [],
    )
    await store.apply_catalog(OTHER, [ch(CH3, OTHER)], [])
    assert (await store.count_channels(NVR), await store.count_video_channels(NVR)) == (6, 2)
    assert (await store.count_channels(OTHER), await store.count_video_channels(OTHER)) == (1, 1)
    await store.apply_catalog(NVR, [ch(CH2, kind="other")], [CH1])
    assert (await store.count_channels(NVR), await store.count_video_channels(NVR)) == (5, 0)


async def test_removing_a_device_removes_its_channels(store: RegistryStore) -> None:
    await devices(store, NVR, OTHER)
    await store.apply_catalog(NVR, [ch(CH1), ch(CH2)], [])
    await store.apply_catalog(OTHER, [ch(CH1, OTHER)], [])
    await store.set_channel_overrides(NVR, CH1, override_name="gone with it")
    assert await store.remove_device(NVR) is True
    assert [(c.device_id, c.id) for c in await store.list_channels()] == [(OTHER, CH1)]
    assert await store.count_channels(NVR) == 0
    await devices(store, NVR)  # the same device added again starts without channels
    assert await store.get_channel(NVR, CH1) is None
    assert await store.list_channels(device_id=NVR) == []


# events


def test_channel_event_codes_are_appended_never_renumbered() -> None:
    released = {
        "registered": 1,
        "unregistered": 2,
        "expired": 3,
        "keepalive-timeout": 4,
        "tcp-closed": 5,
        "online": 6,
        "offline": 7,
        "address-changed": 8,
        "channel-on": 20,
        "channel-off": 21,
        "channel-vlost": 22,
        "channel-defect": 23,
        "channel-device-offline": 24,
        "platform-start": 40,
        "platform-stop": 41,
    }
    assert {k: EVENT_CODES[k] for k in released} == released
    assert len(set(EVENT_CODES.values())) == len(EVENT_CODES)
    assert {"channel-added", "channel-removed", "channel-updated"} <= EVENT_CODES.keys()


async def test_channel_set_events_round_trip(store: RegistryStore) -> None:
    events = [
        StatusEvent(at=1.0, subject=CH1, event=name, kind="channel", reason=f"catalog of {NVR}")
        for name in ("channel-added", "channel-updated", "channel-removed")
    ]
    await store.append_events(events)
    assert await store.list_events(subject=CH1) == events


async def test_overrides_of_many_channels_apply_in_one_transaction(store: RegistryStore) -> None:
    await devices(store, NVR, OTHER)
    await store.apply_catalog(NVR, [ch(CH1, name="A"), ch(CH2, name="B")], [])
    await store.apply_catalog(OTHER, [ch(CH1, OTHER, name="C")], [])
    await store.set_channel_overrides(NVR, CH2, override_name="old")
    await store.set_channel_overrides_many([
        (NVR, CH1, {"override_name": "东门", "override_longitude": 117.5, "override_latitude": 31.5}),
        (NVR, CH2, {"override_name": None, "override_point_class": 2}),
        (OTHER, CH1, {}),
    ])  # fmt: skip
    one, two, other = (
        await store.get_channel(NVR, CH1),
        await store.get_channel(NVR, CH2),
        await store.get_channel(OTHER, CH1),
    )
    assert (one.shown_name, one.shown_longitude, one.shown_latitude) == ("东门", 117.5, 31.5)
    assert (two.override_name, two.shown_name, two.shown_point_class) == (None, "B", 2)
    assert other.override_name is None and other.shown_name == "C", "same channel ID on another device untouched"


async def test_overrides_of_many_channels_are_all_or_nothing(store: RegistryStore) -> None:
    await devices(store)
    await store.apply_catalog(NVR, [ch(CH1, name="A"), ch(CH2, name="B")], [])
    with pytest.raises(KeyError):
        await store.set_channel_overrides_many(
            [(NVR, CH1, {"override_name": "set?"}), (NVR, CH3, {"override_name": "no such channel"})]
        )
    with pytest.raises(ValueError):
        await store.set_channel_overrides_many(
            [(NVR, CH1, {"override_name": "set?"}), (NVR, CH2, {"override_point_class": 7})]
        )
    with pytest.raises(ValueError):
        await store.set_channel_overrides_many([(NVR, CH1, {"override_name": "set?"}), (NVR, CH2, {"name": "x"})])
    assert [c.override_name for c in await store.list_channels(device_id=NVR)] == [None, None]


async def test_find_channels_lists_a_channel_on_every_device_that_has_it(store: RegistryStore) -> None:
    await devices(store, NVR, OTHER)
    await store.apply_catalog(OTHER, [ch(CH1, OTHER, name="C")], [])
    await store.apply_catalog(NVR, [ch(CH1, name="A"), ch(CH2, name="B")], [])
    assert [(c.device_id, c.name) for c in await store.find_channels(CH1)] == [(NVR, "A"), (OTHER, "C")]
    assert [c.device_id for c in await store.find_channels(CH2)] == [NVR]
    assert await store.find_channels(CH3) == []


async def test_numbers_and_lists_are_stored_as_checked(store: RegistryStore) -> None:
    """Integer coordinates become floats and a list of parent IDs a tuple, in every store alike."""
    await devices(store)
    given = ch(CH1, longitude=117, latitude=31, parent_ids=["34020000", "340200"], info={"Resolution": "6/4"})  # type: ignore[arg-type]
    await store.apply_catalog(NVR, [given], [])
    got = await store.get_channel(NVR, CH1)
    assert got is not None
    assert (got.longitude, got.latitude, got.parent_ids) == (117.0, 31.0, ("34020000", "340200"))
    assert got.info == {"Resolution": "6/4"}
    assert type(got.longitude) is float and type(got.latitude) is float


async def test_upserts_may_come_from_a_generator(store: RegistryStore) -> None:
    """The platform hands its catalog commit over as a generator, read once while earlier chunks are written:
    every channel lands, and a bad one anywhere (here the last of 5,001) or an ID also removed applies nothing."""
    await devices(store)
    ids = [f"340200000013100{i:05d}" for i in range(5001)]
    await store.apply_catalog(NVR, (ch(i, name="v1") for i in ids), [])
    assert await store.count_channels(NVR) == 5001
    with pytest.raises(ValueError):
        await store.apply_catalog(NVR, (ch(i, name="v2", status="ON" if i == ids[-1] else "online") for i in ids), [])
    with pytest.raises(ValueError, match="both"):
        await store.apply_catalog(NVR, (ch(i, name="v3") for i in ids), [ids[-1]])
    assert {c.name for c in await store.list_channels(device_id=NVR)} == {"v1"}
