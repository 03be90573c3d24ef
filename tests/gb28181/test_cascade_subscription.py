"""A superior's Catalog subscription: expiry, Event header, initial OFF report and change NOTIFY items."""

from __future__ import annotations

from gb28181.cascade.share import build
from gb28181.cascade.subscription import (
    changes,
    granted_expires,
    initial_items,
    is_catalog_subscription,
    notify_bodies,
    snapshot,
)
from gb28181.manscdp.codec import decode
from gb28181.manscdp.messages import CatalogNotify
from registry.models import Channel, Share

OUR = "34020000002000000001"
UP = "44000000002000000001"
NVR = "34020000001110000001"
C1, C2, C3 = (f"3402000000131000000{i}" for i in (1, 2, 3))


def cat(channels: list[Channel], online: bool = True, shares: list[Share] | None = None):  # type: ignore[no-untyped-def]
    return build(OUR, "", shares or [Share(UP, "all")], channels, {NVR: online})


def ch(cid: str, **kw: object) -> Channel:
    kw.setdefault("status", "online")
    return Channel(device_id=NVR, id=cid, kind="video", name=cid[-1], **kw)  # type: ignore[arg-type]


def test_expiry_and_event_header() -> None:
    assert [granted_expires(e) for e in (None, 0, 5, 10**9)] == [600, 0, 30, 86400]
    assert is_catalog_subscription("Catalog;id=7", "Catalog") and is_catalog_subscription(None, "Catalog")
    assert not is_catalog_subscription("presence", "Catalog") and not is_catalog_subscription(None, "Alarm")


def test_changes_on_off_add_del_update_and_overrides() -> None:
    first = cat([ch(C1), ch(C2, status="offline")])
    assert [(i.device_id, i.event) for i in initial_items(first)] == [(C2, "OFF")]
    before = snapshot(first)
    assert changes(before, first) == []
    # the device goes offline: every channel of it is OFF
    assert {(i.device_id, i.event) for i in changes(before, cat([ch(C1), ch(C2, status="offline")], online=False))} \
        == {(C1, "OFF")}  # fmt: skip
    # a new channel (full item), one gone, one renamed
    now = cat([ch(C1, override_name="renamed"), ch(C3)])
    got = {i.device_id: i for i in changes(before, now)}
    assert (got[C3].event, got[C3].name, got[C3].status) == ("ADD", "3", "ON")
    assert got[C2].event == "DEL" and got[C2].name is None
    assert (got[C1].event, got[C1].name) == ("UPDATE", "renamed")
    # a per-superior ID change is a DEL of the old ID and an ADD of the new one
    moved = cat([ch(C1), ch(C2, status="offline")], shares=[Share(UP, "all"), Share(UP, C1, as_id="44" + C1[2:])])
    assert {(i.device_id, i.event) for i in changes(before, moved)} == {(C1, "DEL"), ("44" + C1[2:], "ADD")}


def test_notify_bodies_sumnum_equals_num() -> None:
    items = [i for i in changes({}, cat([ch(C1), ch(C2), ch(C3)])) if i.device_id in (C1, C2, C3)]
    bodies = notify_bodies(items, sn=5, device_id=OUR, batch=2, charset="GB2312")
    decoded = [decode(b).message for b in bodies]
    assert all(isinstance(m, CatalogNotify) for m in decoded)
    assert [(m.sum_num, m.num, len(m.items)) for m in decoded] == [(2, 2, 2), (1, 1, 1)]  # type: ignore[union-attr]
    assert {i.event for m in decoded for i in m.items} == {"ADD"}  # type: ignore[union-attr]
