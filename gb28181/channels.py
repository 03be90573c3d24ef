"""Catalog items -> registry channels (GB/T 28181-2022 A.2.1.9, Appendix E/J; DECISIONS.md "What a channel is").

A video channel is an item of type 131 or 132, or a camera whose single catalog item is its own ID. Items with
2/4/6/8-digit IDs are civil-code nodes; 200 is a system (platform) node; 215/216 are business groups and
virtual organisations. "ParentID = our server ID" means no parent. The tree is kept as reported: each channel
records its parents (``parent_ids``, all of them, in order) and its business group; civil-code nodes hang under
their ParentID when they send one (a node's code prefix is not turned into a parent).
"""

from __future__ import annotations

import operator

from gb28181.manscdp.messages import CatalogItem
from registry.models import OFFLINE, ONLINE, Channel

_KINDS = {131: "video", 132: "video", 134: "alarm-in", 135: "alarm-out", 136: "audio-in", 137: "audio-out",
          140: "alarm-out", 200: "system", 215: "group", 216: "virtual-org"}  # fmt: skip


_TREE_NODES = frozenset({200, 215, 216})  # what an item of these types is does not depend on who lists it


def kind_of(channel_id: str, device_id: str, single: bool) -> str:
    """The kind of a catalog item by its ID (Appendix E type code, App.J tree nodes). A lower platform lists
    its own ID as the system node (200) of its tree; a device listing its own ID is a camera when that item is
    its only one (Dahua/Kedacom IPCs, fixtures/manscdp/wild), else the device itself."""
    if len(channel_id) in (2, 4, 6, 8) and channel_id.isascii() and channel_id.isdigit():
        return "region"
    if len(channel_id) != 20 or not channel_id.isascii() or not channel_id.isdigit():
        return "other"
    type_code = int(channel_id[10:13])
    if channel_id == device_id and type_code not in _TREE_NODES:
        return "video" if single or type_code in (131, 132) else "device"
    if type_code in _KINDS:
        return _KINDS[type_code]
    if 111 <= type_code <= 130:
        return "device"
    return "other"


def _civil_code(text: str | None) -> str:
    """A reported CivilCode kept only when it is one (digits, at most 8: 2/4/6/8-digit region codes, GB/T 2260
    style); vendors' placeholders such as Hikvision's ``<CivilCode>CivilCode</CivilCode>`` become empty (spec
    digest §13 q10, as WVP does), so they never count as a region in listings and statistics."""
    value = (text or "").strip()
    return value if value.isascii() and value.isdigit() and len(value) <= 8 else ""


# Item fields kept in a channel's ``info`` (by field name) when the item has them.
_INFO_FIELDS = ("position_type", "room_type", "use_type", "supply_light_type", "direction_type", "resolution",
                "download_speed", "event")  # fmt: skip
_info_values = operator.attrgetter(*_INFO_FIELDS)
_NO_INFO = (None,) * len(_INFO_FIELDS)


def to_channel(item: CatalogItem, device_id: str, server_id: str, now: float, *, single: bool) -> Channel | None:
    """The registry record for one item, or None when the item has no usable ID."""
    channel_id = (item.device_id or "").strip()
    if not channel_id or len(channel_id) > 64:
        return None
    # "ParentID = our server ID" means no parent (the item sits at a superior's root); a parent that is the item
    # itself would make a cycle; a repeated one is kept once, in the order sent (2022 A.2.1.9: "/"-separated).
    parents = tuple(item.parent_ids)  # the same tuple (items carry tuples)
    if server_id in parents or channel_id in parents or "" in parents or len(set(parents)) != len(parents):
        parents = tuple(dict.fromkeys(p for p in parents if p and p != server_id and p != channel_id))
    info = {k: v for k, v in item.extra.items() if isinstance(v, str)} if item.extra else {}
    values = _info_values(item)
    if values != _NO_INFO:  # most items carry none of these
        for name, value in zip(_INFO_FIELDS, values, strict=True):
            if value is not None:
                info[name] = str(value)
    return Channel(
        device_id=device_id,
        id=channel_id,
        name=item.name or "",
        manufacturer=item.manufacturer or "",
        model=item.model or "",
        owner=item.owner or "",
        civil_code=_civil_code(item.civil_code),
        block=item.block or "",
        address=item.address or "",
        parental=item.parental,
        parent_ids=parents,
        business_group_id=item.group_id or "",
        safety_way=item.safety_way,
        register_way=item.register_way,
        cert_num=item.cert_num or "",
        certifiable=item.certifiable,
        err_code=item.err_code,
        end_time=item.end_time or "",
        secrecy=item.secrecy,
        ip_address=item.ip_address or "",
        port=item.port,
        status=OFFLINE if item.is_on is False else ONLINE,
        longitude=item.longitude,
        latitude=item.latitude,
        ptz_type=item.ptz_type,
        point_class=item.point_class,
        kind=kind_of(channel_id, device_id, single),
        info=info,
        first_seen=now,
        updated_at=now,
    )


def channel_json(c: Channel) -> dict[str, object]:
    """The channel object of the admin API (ARCHITECTURE.md: interface contract): shown values are
    override <- reported (DECISIONS.md: Overrides)."""
    return {
        "id": c.id,
        "device_id": c.device_id,
        "name": c.shown_name,
        "status": c.status,
        "parent_id": c.parent_id,
        "parent_ids": list(c.parent_ids),
        "civil_code": c.shown_civil_code,
        "longitude": c.shown_longitude,
        "latitude": c.shown_latitude,
        "ptz_type": c.ptz_type,
        "point_class": c.shown_point_class,
        "manufacturer": c.manufacturer,
        "model": c.model,
        "address": c.address,
        "kind": c.kind,
        "ip_address": c.ip_address or None,
        "business_group_id": c.business_group_id or None,
    }
