"""The catalog a superior sees: share selection, per-superior <- local <- reported overrides, the App.J tree,
and App.M packetization (batch sizes, byte budget, charset bytes)."""

from __future__ import annotations

import re

import pytest

from gb28181.cascade.share import build, packets, select
from gb28181.manscdp.codec import decode
from gb28181.manscdp.messages import CatalogResponse
from registry.models import Channel, Share

OUR = "34020000002000000001"
UP = "44000000002000000001"
NVR = "34020000001110000001"
IPC = "34020000001320000009"
CH = [f"3402000000131000000{i}" for i in range(1, 6)]
BG = "34020000002150000001"
VO = "34020000002160000001"


def ch(cid: str, device: str = NVR, **kw: object) -> Channel:
    kw.setdefault("kind", "video")
    kw.setdefault("status", "online")
    return Channel(device_id=device, id=cid, **kw)  # type: ignore[arg-type]


CHANNELS = [
    ch(CH[0], name="东门", civil_code="340201"),
    ch(CH[1], name="西门", civil_code="340202", override_name="西门(本地)"),
    ch(CH[2], name="北门", civil_code="350101", status="offline"),
    ch(CH[3], name="in VO", parent_ids=(VO,)),
    ch(CH[4], device=IPC, name="IPC"),
    ch(BG, kind="group", name="业务分组"),
    ch(VO, kind="virtual-org", name="虚拟组织", parent_ids=(BG,), business_group_id=BG),
    ch("340201", kind="region", name="市辖区"),
    ch("34020000001340000001", kind="alarm-in", name="alarm"),
    ch("34020000002000000002", kind="system", name="a lower system"),
]


def ids(channels: list[Channel]) -> list[str]:
    return [c.id for c in channels]


def test_selection_by_all_device_channel_group_and_civil_code() -> None:
    everything = ids(select([Share(UP, "all")], CHANNELS))
    assert "340201" not in everything and "34020000002000000002" not in everything  # regions rebuilt, systems ours
    assert set(everything) == {*CH, BG, VO, "34020000001340000001"}
    assert ids(select([Share(UP, IPC)], CHANNELS)) == [CH[4]]
    assert ids(select([Share(UP, CH[1])], CHANNELS)) == [CH[1]]
    assert set(ids(select([Share(UP, "3402")], CHANNELS))) == {CH[0], CH[1]}
    assert set(ids(select([Share(UP, BG)], CHANNELS))) == {BG, VO, CH[3]}  # down the nested VO
    assert select([Share(UP, "99")], CHANNELS) == []


def test_the_tree_and_overrides() -> None:
    shares = [Share(UP, "all"), Share(UP, CH[0], as_id="44000000001310000001", as_name="东门(上级)"),
              Share(UP, CH[1], as_name=None, as_id=None)]  # fmt: skip
    cat = build(OUR, "县平台", shares, CHANNELS, {NVR: True, IPC: False})
    by_id = {i.device_id: i for i in cat.items}
    assert cat.items[0].device_id == OUR and cat.items[0].name == "县平台" and cat.items[0].status == "ON"
    # per-superior ID and name win; local override next; reported last
    up = by_id["44000000001310000001"]
    assert (up.name, up.parent_ids, up.civil_code, up.status) == ("东门(上级)", (OUR,), "340201", "ON")
    assert CH[0] not in by_id and cat.targets["44000000001310000001"] == (NVR, CH[0])
    assert cat.shared_ids[(NVR, CH[0])] == "44000000001310000001"
    assert by_id[CH[1]].name == "西门(本地)"
    assert by_id[CH[2]].status == "OFF" and by_id[CH[4]].status == "OFF"  # channel off; device offline
    # civil-code nodes with their ancestors; a stored region's name is used
    regions = ["34", "3402", "340200", "340201", "340202", "35", "3501", "350101"]  # 340200: ours, the default
    assert [i.device_id for i in cat.items[1:9]] == regions
    assert by_id["340201"].name == "市辖区" and by_id["3402"].name == "3402"
    assert by_id[BG].parent_ids == (OUR,) and by_id[VO].business_group_id == BG and by_id[VO].parent_ids == (BG,)
    assert by_id[CH[3]].parent_ids == (VO,)
    # subsets for Catalog queries aimed below our system node (App.J)
    assert cat.subset(OUR, OUR) == cat.items
    assert {i.device_id for i in cat.subset("340201", OUR)} == {"340201", "44000000001310000001"}
    assert {i.device_id for i in cat.subset("35", OUR)} == {"35", "3501", "350101", CH[2]}
    assert {i.device_id for i in cat.subset(VO, OUR)} == {VO, CH[3]}
    assert cat.subset("44000000001310000009", OUR) == ()


@pytest.mark.parametrize(("charset", "codec", "declared"), [("GB2312", "gb2312", "GB2312"),
                                                             ("UTF-8", "utf-8", "UTF-8")])  # fmt: skip
def test_packets_batches_sumnum_and_charset_bytes(charset: str, codec: str, declared: str) -> None:
    cat = build(OUR, "县平台", [Share(UP, "all"), Share(UP, CH[0], as_name="东门(上级)")], CHANNELS, {NVR: True})
    bodies = packets(cat.items, sn=77, device_id=OUR, batch=3, charset=charset)
    total = len(cat.items)
    assert len(bodies) == -(-total // 3)
    seen = []
    for body in bodies:
        assert re.match(rb'<\?xml version="1.0" encoding="' + declared.encode() + rb'"\?>', body)
        body.decode(codec)  # the bytes really are in that charset
        msg = decode(body).message
        assert isinstance(msg, CatalogResponse) and msg.sn == 77 and msg.device_id == OUR and msg.sum_num == total
        assert msg.num == len(msg.items) <= 3
        seen += [i.device_id for i in msg.items]
    assert seen == [i.device_id for i in cat.items]
    assert "东门(上级)".encode(codec) in b"".join(bodies)


def test_packets_split_to_fit_the_byte_budget_and_sumnum_0() -> None:
    cat = build(OUR, "", [Share(UP, "all")], CHANNELS, {NVR: True})
    small = packets(cat.items, sn=1, device_id=OUR, batch=8, charset="GB2312", max_body=900)
    assert all(len(b) <= 900 for b in small) and len(small) > -(-len(cat.items) // 8)
    assert sum(len(decode(b).message.items) for b in small) == len(cat.items)  # type: ignore[attr-defined]
    (empty,) = packets((), sn=2, device_id=OUR, batch=4, charset="GB2312")
    msg = decode(empty).message
    assert isinstance(msg, CatalogResponse) and msg.sum_num == 0 and msg.items == ()
