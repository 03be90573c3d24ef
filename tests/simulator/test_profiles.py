"""Profiles load and validate; inventories give unique IDs and the trees the profiles describe."""

from __future__ import annotations

from pathlib import Path

import pytest

from gb28181.simulator.inventory import build
from gb28181.simulator.profile import ProfileError, assign, load_profile, parse_profile, profile_names

REQUIRED = {"tianwang-ipc", "tianwang-nvr", "xueliang-village-nvr", "department-camera", "lower-platform", "mixed"}


def test_the_required_profiles_ship_and_load() -> None:
    assert set(profile_names()) >= REQUIRED
    for name in profile_names():
        p = load_profile(name)
        assert p.name == name and p.description


def test_mixed_spreads_every_member_over_its_first_cycle() -> None:
    mix = assign(load_profile("mixed"))
    members = set(mix.profiles)
    assert members == {n for n in profile_names() if n != "mixed"}
    cycle = len(mix.order)
    assert {mix.profile_of(i).name for i in range(cycle)} == members
    weights = dict(load_profile("mixed").mix)
    assert {n: mix.order.count(n) for n in members} == weights


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"transport": "SCTP"}, "transport must be UDP or TCP"),
        ({"catalog_per_packet": 0}, "catalog_per_packet must be 1-100"),
        ({"keepalive_interval": "60"}, "keepalive_interval must be int"),
        ({"quirks": ["sings"]}, "unknown quirks ['sings']"),
        ({"kind": "ipc", "channels": 4}, "an ipc has exactly one channel"),
        ({"channel_name": "{nope}"}, "bad template"),
        ({"kind": "platform", "device_type": 200}, "a platform profile needs regions"),
        ({"mix": {"a": 0}}, "positive integer weights"),
        ({"keepalive_count": True}, "keepalive_count must be int"),
    ],
)
def test_bad_profiles_are_refused_with_the_key_at_fault(data: dict, message: str) -> None:
    with pytest.raises(ProfileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_profile("x", data)


def test_an_unknown_profile_names_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "one.toml").write_text('description = "d"\n')
    with pytest.raises(ProfileError, match="known: one"):
        load_profile("two", tmp_path)
    with pytest.raises(ProfileError, match="no profile"):
        load_profile("../etc/passwd", tmp_path)


def test_ids_are_unique_across_a_mixed_population() -> None:
    mix = assign(load_profile("mixed"))
    seen: set[str] = set()
    for i in range(240):
        inv = build(mix.profile_of(i), i, "3402000000")
        assert inv.device_id not in seen
        seen.add(inv.device_id)
        own = [c.id for c in inv.channels if c.id != inv.device_id and len(c.id) == 20]
        assert not seen & set(own), inv.device_id
        seen.update(own)
    assert "34020000002000000001" not in seen  # never the platform's own ID


def test_village_nvr_has_six_named_cameras() -> None:
    inv = build(load_profile("xueliang-village-nvr"), 0, "3402000000")
    assert inv.device_id == "34020000001180000001"
    assert [c.name for c in inv.videos] == [f"张村{n}号探头" for n in range(1, 7)]
    assert all(c.parent_ids == (inv.device_id,) and c.civil_code == "34020203" for c in inv.videos)


def test_lower_platform_tree() -> None:
    inv = build(load_profile("lower-platform"), 4, "3402000000", channels=10)
    assert inv.device_id == "34020000002000000105"
    regions = {c.id: c for c in inv.channels if c.type_code == 0}
    assert regions["3402"].parent_ids == ()
    assert regions["340202"].parent_ids == ("3402",)
    assert regions["34020301"].parent_ids == ("340203",)
    groups = [c for c in inv.channels if c.type_code == 215]
    orgs = [c for c in inv.channels if c.type_code == 216]
    assert [g.name for g in groups] == ["公安局", "交通局"]
    assert [o.parent_ids for o in orgs] == [(g.id,) for g in groups]
    assert len(inv.videos) == 10
    leaves = {"340202", "34020301"}
    for cam in inv.videos:
        assert cam.civil_code in leaves
        assert cam.parent_ids[0] in {o.id for o in orgs} and cam.parent_ids[1] == cam.civil_code
        assert cam.business_group_id in {g.id for g in groups}


def test_self_item_camera_lists_itself() -> None:
    inv = build(load_profile("department-camera"), 2, "3402000000")
    (item,) = inv.catalog_items("34020000002000000001")
    assert item.device_id == inv.device_id and item.name == "实验小学校门3"
    assert item.point_class == 1  # a 2022 profile: Info/PointType on its camera


def test_parent_is_server_and_placeholders() -> None:
    inv = build(load_profile("tianwang-ipc"), 0, "3402000000")
    (item,) = inv.catalog_items("34020000002000000001")
    assert item.parent_ids == ("34020000002000000001",)
    assert (item.owner, item.civil_code, item.address) == ("Owner", "CivilCode", "Address")
