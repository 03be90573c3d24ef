"""Catalog tree semantics (GB/T 28181-2022 Appendix J; DECISIONS.md "What a channel is"): the 5,000-camera
lower-platform fixture (made by fixtures/manscdp/made/make_fixtures.py at test time) decoded, assembled as one
sync, turned into channels (gb28181/channels.py) and stored in both registry stores. Kinds by ID (civil-code
nodes of 2/4/6/8 digits are regions, 200 system, 215 group, 216 virtual-org, 131/132 video, 134 alarm-in),
multi-valued ParentID kept in order, "ParentID = our server ID" meaning no parent."""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest

from gb28181.catalog import CatalogAssembler
from gb28181.channels import channel_json, kind_of, to_channel
from gb28181.manscdp.codec import decode
from gb28181.manscdp.messages import CatalogItem, CatalogResponse
from registry.memory import MemoryStore
from registry.models import OFFLINE, ONLINE, Channel, Device
from registry.sqlite import SqliteStore

MADE = Path(__file__).resolve().parents[2] / "fixtures" / "manscdp" / "made"
SERVER = "34020000002000000001"  # our SIP ID, as the fixture's "upper platform"


def _make_fixtures() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_fixtures", MADE / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MF = _make_fixtures()
LOWER: str = MF.BIG_LOWER
CAMERAS = 5000
GROUPS = [f"61010000002150{g:06d}" for g in range(1, 5)]
VOS = [f"61010000002160{v:06d}" for v in range(1, 21)]


def assembled() -> list[CatalogItem]:
    """The fixture's packets through the catalog assembler as the answer to our query SN 6006."""
    assembler = CatalogAssembler()
    assembler.expect(LOWER, 6006, now=0.0)
    commit = None
    for i, body in enumerate(MF.generated()["lower-platform-5000-channels"]):
        msg = decode(body).message
        assert isinstance(msg, CatalogResponse)
        assert commit is None  # nothing commits before the last packet
        commit = assembler.packet(LOWER, msg.sn, msg.sum_num or 0, msg.items, now=float(i))
    assert commit is not None and commit.complete and commit.may_remove and commit.duplicates == 0
    assert commit.sum_num == len(commit.items) == len(MF.big_tree(CAMERAS))
    return list(commit.items)


ITEMS = assembled()


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MemoryStore | SqliteStore]:
    s: MemoryStore | SqliteStore = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "tree.db")
    if isinstance(s, SqliteStore):
        await s.open()
    await s.put_device(Device(LOWER, created_at=1.0))
    channels = [c for item in ITEMS if (c := to_channel(item, LOWER, SERVER, 1000.0, single=False)) is not None]
    await s.apply_catalog(LOWER, channels, ())
    yield s
    if isinstance(s, SqliteStore):
        await s.close()


async def stored(store: MemoryStore | SqliteStore) -> dict[str, Channel]:
    return {c.id: c for c in await store.list_channels(device_id=LOWER)}


# ------------------------------------------------------------------------------------------- the whole tree


async def test_every_item_lands_with_its_kind(store: MemoryStore | SqliteStore) -> None:
    got = await stored(store)
    assert len(got) == len(ITEMS)
    assert Counter(c.kind for c in got.values()) == {
        "region": 1 + 1 + 10 + 50,
        "system": 1,
        "group": 4,
        "virtual-org": 20,
        "video": CAMERAS,
        "alarm-in": CAMERAS // 50,
    }
    assert await store.count_video_channels(LOWER) == CAMERAS
    assert await store.count_channels(LOWER) == len(ITEMS)


async def test_civil_code_nodes_are_regions_under_their_reported_parent(store: MemoryStore | SqliteStore) -> None:
    regions = {i: c for i, c in (await stored(store)).items() if c.kind == "region"}
    assert Counter(len(i) for i in regions) == {2: 1, 4: 1, 6: 10, 8: 50}
    assert regions["61"].parent_ids == () and regions["6101"].parent_ids == ()
    assert regions["61"].name == "陕西省" and regions["610113"].name == "雁塔区"
    for code, node in regions.items():
        if len(code) == 6:
            assert node.parent_ids == ("6101",)
        elif len(code) == 8:
            assert node.parent_ids == (code[:6],) and node.name.endswith("街道")


async def test_system_node_whose_parent_is_our_server_has_none(store: MemoryStore | SqliteStore) -> None:
    system = (await stored(store))[LOWER]
    assert system.kind == "system"
    assert system.parent_ids == () and system.parent_id is None
    assert system.name == "西安市联网平台" and system.status == ONLINE


async def test_business_groups_and_virtual_organisations(store: MemoryStore | SqliteStore) -> None:
    got = await stored(store)
    for gid in GROUPS:
        assert got[gid].kind == "group" and got[gid].parent_ids == (LOWER,)
    assert [got[g].name for g in GROUPS] == ["治安监控", "交通监控", "校园安防", "社会资源"]
    for v, vid in enumerate(VOS):
        vo = got[vid]
        assert vo.kind == "virtual-org"
        assert vo.business_group_id == GROUPS[v // 5]
        assert vo.parent_ids == ((VOS[v - 1],) if v % 2 else ())  # every second one nested in the one before


async def test_cameras_keep_every_parent_in_order(store: MemoryStore | SqliteStore) -> None:
    got = await stored(store)
    cams = [c for c in got.values() if c.kind == "video"]
    shapes = Counter()
    for cam in cams:
        n = int(cam.id[-6:])
        vo, vo2 = VOS[n % 20], VOS[(n + 7) % 20]
        street = cam.civil_code
        want = [(LOWER, vo), (vo, vo2), (vo,), (street,)][n % 4]  # our server ID dropped from the third shape
        assert cam.parent_ids == want, cam.id
        assert cam.parent_id == want[0]
        assert cam.id[10:13] == ("132" if n % 10 == 9 else "131")
        assert cam.status == (OFFLINE if n % 7 == 6 else ONLINE)
        assert len(street) == 8 and street in got and got[street].kind == "region"
        shapes[len(want)] += 1
    assert shapes == {2: CAMERAS // 2, 1: CAMERAS // 2}
    assert all(SERVER not in c.parent_ids for c in got.values())


async def test_alarm_inputs_hang_under_their_camera(store: MemoryStore | SqliteStore) -> None:
    got = await stored(store)
    alarms = [c for c in got.values() if c.kind == "alarm-in"]
    assert len(alarms) == CAMERAS // 50
    for alarm in alarms:
        (camera,) = alarm.parent_ids
        assert got[camera].kind == "video" and alarm.name.endswith("号报警输入")


async def test_the_api_object_of_a_multi_parent_camera(store: MemoryStore | SqliteStore) -> None:
    cam = (await stored(store))["61010201001310000000"]
    out = channel_json(cam)
    assert out["parent_id"] == LOWER and out["parent_ids"] == [LOWER, VOS[0]]
    assert out["kind"] == "video" and out["name"] == "新城区第一街道1号摄像机"
    assert out["civil_code"] == "61010201" and out["ptz_type"] == 1
    assert (out["longitude"], out["latitude"]) == (108.9, 34.2)


async def test_listing_by_civil_code_prefix_finds_a_district(store: MemoryStore | SqliteStore) -> None:
    # 雁塔区 610113: its 5 street nodes, the district node itself and every 50th camera (10 districts x 5 streets)
    found = await store.list_channels(device_id=LOWER, civil_code_prefix="610113")
    cams = [c for c in found if c.kind == "video"]
    assert len(cams) == CAMERAS // 10
    assert all(c.civil_code.startswith("610113") for c in found)


# ------------------------------------------------------------------------------------------- kind_of and to_channel


@pytest.mark.parametrize(
    ("channel_id", "device_id", "single", "kind"),
    [
        ("61", LOWER, False, "region"),
        ("6101", LOWER, False, "region"),
        ("610105", LOWER, False, "region"),
        ("61010500", LOWER, False, "region"),
        ("6101050001", LOWER, False, "other"),  # 10 digits: a grassroots code, not a civil-code node
        ("٦١٠١", LOWER, False, "other"),  # digits, but not ASCII ones
        (LOWER, LOWER, False, "system"),  # a lower platform's own node in its tree
        (LOWER, LOWER, True, "system"),
        ("61010000002000000002", LOWER, False, "system"),
        ("61010000002150000001", LOWER, False, "group"),
        ("61010000002160000001", LOWER, False, "virtual-org"),
        ("61010000001310000001", LOWER, False, "video"),
        ("61010000001320000001", LOWER, False, "video"),
        ("61010000001340000001", LOWER, False, "alarm-in"),
        ("61010000001370000001", LOWER, False, "audio-out"),
        ("34020000001320000001", "34020000001320000001", True, "video"),  # an IPC listing itself alone
        ("34020000001320000001", "34020000001320000001", False, "video"),  # a camera ID is a camera
        ("34020000001110000001", "34020000001110000001", True, "video"),  # a DVR-typed ID, its only item
        ("34020000001110000001", "34020000001110000001", False, "device"),  # ... beside its channels
        ("34020000001180000001", LOWER, False, "device"),  # an NVR listed by a lower platform
        ("34020000002020000001", LOWER, False, "other"),
        ("3402000000131000000X", LOWER, False, "other"),
    ],
)
def test_kind_of(channel_id: str, device_id: str, single: bool, kind: str) -> None:
    assert kind_of(channel_id, device_id, single) == kind


def item(**fields: object) -> CatalogItem:
    return CatalogItem(**fields)  # type: ignore[arg-type]


def test_parent_ids_drop_our_server_the_item_itself_and_repeats() -> None:
    cam = "61010000001310000001"
    parents = (SERVER, "61010000002160000001", cam, "61010000002160000001", "61010000002160000002")
    ch = to_channel(item(device_id=cam, parent_ids=parents), LOWER, SERVER, 5.0, single=False)
    assert ch is not None and ch.parent_ids == ("61010000002160000001", "61010000002160000002")
    # another platform's ID is a real parent: only OUR server ID means "none"
    other = to_channel(item(device_id=cam, parent_ids=("34020000002000000009",)), LOWER, SERVER, 5.0, single=False)
    assert other is not None and other.parent_ids == ("34020000002000000009",)


def test_to_channel_fields_and_refusals() -> None:
    ch = to_channel(
        item(device_id=" 61010000001310000001 ", name="东门", status="OFF", business_group_id="", parent_ids=()),
        LOWER, SERVER, 7.0, single=False,
    )  # fmt: skip
    assert ch is not None
    assert (ch.id, ch.name, ch.status, ch.kind, ch.first_seen, ch.updated_at) == (
        "61010000001310000001", "东门", OFFLINE, "video", 7.0, 7.0,
    )  # fmt: skip
    vo = to_channel(
        item(device_id=VOS[0], info_business_group_id=GROUPS[0]), LOWER, SERVER, 7.0, single=False
    )  # 2016: BusinessGroupID inside Info
    assert vo is not None and vo.business_group_id == GROUPS[0] and vo.status == ONLINE
    assert to_channel(item(device_id=""), LOWER, SERVER, 7.0, single=False) is None
    assert to_channel(item(device_id="x" * 65), LOWER, SERVER, 7.0, single=False) is None


async def test_a_bad_channel_at_the_end_of_a_big_catalog_writes_nothing(tmp_path: Path) -> None:
    """The SQLite store writes a big catalog in chunks inside one transaction: a bad channel in the last chunk
    rolls back the chunks already written."""
    async with SqliteStore(tmp_path / "big.db") as s:
        await s.put_device(Device(LOWER, created_at=1.0))
        channels = [c for item in ITEMS if (c := to_channel(item, LOWER, SERVER, 1000.0, single=False)) is not None]
        assert len(channels) > 2 * 2000  # more than two chunks
        channels[-1].status = "lost"  # not a status: the store refuses it
        with pytest.raises(ValueError, match="status"):
            await s.apply_catalog(LOWER, channels, ())
        assert await s.count_channels(LOWER) == 0
        channels[-1].status = ONLINE
        await s.apply_catalog(LOWER, channels, ())
        assert await s.count_channels(LOWER) == len(ITEMS)
