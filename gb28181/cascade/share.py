"""What a superior sees of us: the shared catalog and its Response packets (GB/T 28181-2022 App.J tree, App.M
serial multi-packet sending, A.2.6.4; spec digest §11; DECISIONS.md: Overrides, Encoding out).

Shares name ``"all"``, devices (every channel of the device), channels, business groups / virtual organisations
(the node and what hangs under it) and civil codes (channels whose shown civil code starts with it). What is sent
is per-superior <- local <- reported: a share's ``as_id``/``as_name`` wins over the operator's local override,
which wins over what the device reported. The tree sent up: our system node (type 200) first, civil-code nodes,
shared groups, then the channels, each under its shared group or under our system node. No IO here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gb28181.manscdp.codec import encode as encode_message
from gb28181.manscdp.messages import CatalogItem, CatalogResponse
from registry.models import ONLINE, SHARE_ALL, Channel, Share

# Kinds a superior is sent (regions are rebuilt from civil codes; systems and devices of lower platforms stay ours).
SHAREABLE = frozenset({"video", "alarm-in", "alarm-out", "audio-in", "audio-out", "group", "virtual-org"})
GROUP_KINDS = frozenset({"group", "virtual-org"})
# A UDP body budget: well under the 65,507-byte datagram limit and the 8 KB many device stacks read at once.
UDP_MAX_BODY = 4000
TCP_MAX_BODY = 60000


@dataclass(frozen=True)
class SharedCatalog:
    """The items one superior is sent, in order, and where each shared channel ID really is."""

    items: tuple[CatalogItem, ...]
    targets: dict[str, tuple[str, str]] = field(default_factory=dict)  # shared ID -> (device ID, channel ID)
    shared_ids: dict[tuple[str, str], str] = field(default_factory=dict)  # (device ID, channel ID) -> shared ID

    def subset(self, target: str, our_id: str) -> tuple[CatalogItem, ...]:
        """The answer to a Catalog query for ``target`` (App.J): our ID is everything; a civil code is its
        region nodes and the items in it; a shared group is the group and what hangs under it; a shared channel
        is itself; anything else is nothing (SumNum 0)."""
        if target == our_id:
            return self.items
        if target.isdigit() and len(target) in (2, 4, 6, 8):
            return tuple(i for i in self.items if i.device_id != our_id and (
                (i.device_id or "").startswith(target) if _is_region(i.device_id) else
                (i.civil_code or "").startswith(target)))  # fmt: skip
        out = [i for i in self.items if i.device_id == target]
        if out:
            out += [i for i in self.items if target in i.parent_ids or i.business_group_id == target]
        return tuple(out)


def _is_region(item_id: str | None) -> bool:
    return bool(item_id) and item_id.isdigit() and len(item_id) in (2, 4, 6, 8)  # type: ignore[union-attr]


def _civil(code: str) -> str | None:
    return code if code.isascii() and code.isdigit() and len(code) in (2, 4, 6, 8) else None


def select(shares: Sequence[Share], channels: Iterable[Channel]) -> list[Channel]:
    """The channels these shares name (one superior's shares), in (device, id) order, each ID once."""
    items = {s.item for s in shares}
    everything = SHARE_ALL in items
    civil = [i for i in items if _civil(i)]
    pool = [c for c in channels if c.kind in SHAREABLE]
    chosen: dict[tuple[str, str], Channel] = {}
    for c in pool:
        if everything or c.id in items or c.device_id in items or any(c.shown_civil_code.startswith(p) for p in civil):
            chosen[(c.device_id, c.id)] = c
    # What hangs under a shared group or virtual organisation, down nested VOs (bounded: a tree is not deeper)
    groups = {c.id for c in chosen.values() if c.kind in GROUP_KINDS} | (items & {c.id for c in pool})
    for _ in range(16):
        added = [c for c in pool if (c.device_id, c.id) not in chosen
                 and (groups.intersection(c.parent_ids) or c.business_group_id in groups)]  # fmt: skip
        if not added:
            break
        for c in added:
            chosen[(c.device_id, c.id)] = c
            if c.kind in GROUP_KINDS:
                groups.add(c.id)
    seen: set[str] = set()
    out = []
    for key in sorted(chosen):
        if chosen[key].id not in seen:  # one ID reached through two devices (camera and NVR): the first
            seen.add(chosen[key].id)
            out.append(chosen[key])
    return out


def build(
    our_id: str,
    our_name: str,
    shares: Sequence[Share],
    channels: Iterable[Channel],
    device_online: Mapping[str, bool],
) -> SharedCatalog:
    """The catalog one superior sees (its own ``shares``); a channel is ON only while its device is online."""
    overrides = {s.item: s for s in shares if s.as_id is not None or s.as_name is not None}
    channels = list(channels)
    chosen = select(shares, channels)
    region_names = {c.id: c.shown_name for c in channels if c.kind == "region" and c.shown_name}
    shared_ids: dict[tuple[str, str], str] = {}
    for c in chosen:
        share = overrides.get(c.id)
        shared_ids[(c.device_id, c.id)] = share.as_id if share is not None and share.as_id else c.id
    by_real_id = {c.id: shared_ids[(c.device_id, c.id)] for c in chosen}
    default_civil = our_id[:6]

    system = CatalogItem(
        device_id=our_id, name=our_name or "gb28181-py", manufacturer="gb28181-py", model="platform",
        owner="0", civil_code=default_civil, address="", parental=1, register_way=1, secrecy=0, status="ON",
    )  # fmt: skip
    regions: set[str] = set()
    groups: list[CatalogItem] = []
    leaves: list[CatalogItem] = []
    for c in chosen:
        civil = _civil(c.shown_civil_code) or default_civil
        regions.update(civil[:n] for n in (2, 4, 6, 8) if n <= len(civil))
        share = overrides.get(c.id)
        name = share.as_name if share is not None and share.as_name is not None else c.shown_name
        parents = tuple(by_real_id[p] for p in c.parent_ids if p in by_real_id)
        group = by_real_id.get(c.business_group_id) if c.business_group_id else None
        on = c.status == ONLINE and device_online.get(c.device_id, False)
        if c.kind == "group":  # business group (215): under the system (App.J)
            groups.append(CatalogItem(device_id=shared_ids[(c.device_id, c.id)], name=name, civil_code=civil,
                                      parent_ids=(our_id,)))  # fmt: skip
        elif c.kind == "virtual-org":  # virtual organisation (216): under its parent VO, in its business group
            groups.append(CatalogItem(device_id=shared_ids[(c.device_id, c.id)], name=name,
                                      parent_ids=parents, business_group_id=group))  # fmt: skip
        else:
            leaves.append(CatalogItem(
                device_id=shared_ids[(c.device_id, c.id)], name=name, manufacturer=c.manufacturer or "unknown",
                model=c.model or "unknown", owner=c.owner or "0", civil_code=civil, block=c.block or None,
                address=c.address or "unknown", parental=0, parent_ids=parents or (our_id,),
                business_group_id=group, register_way=c.register_way or 1, secrecy=c.secrecy or 0,
                status="ON" if on else "OFF", longitude=c.shown_longitude, latitude=c.shown_latitude,
                ptz_type=c.ptz_type, point_class=c.shown_point_class,
            ))  # fmt: skip
    region_items = [CatalogItem(device_id=r, name=region_names.get(r, r)) for r in sorted(regions)]
    targets = {shared: key for key, shared in shared_ids.items()}
    return SharedCatalog((system, *region_items, *groups, *leaves), targets, shared_ids)


def packets(
    items: Sequence[CatalogItem],
    *,
    sn: int,
    device_id: str,
    batch: int,
    charset: str,
    max_body: int = UDP_MAX_BODY,
) -> list[bytes]:
    """Response Catalog bodies (A.2.6.4) for serial sending (App.M): ``batch`` items per packet, fewer when a
    packet would pass ``max_body`` bytes; SumNum is the total in every packet; SumNum 0 is one empty packet."""
    total = len(items)
    if total == 0:
        return [encode_message(CatalogResponse(sn=sn, device_id=device_id, sum_num=0), charset=charset)]
    out: list[bytes] = []
    chunks = [tuple(items[i : i + batch]) for i in range(0, total, batch)]
    while chunks:  # bounded: every split halves a chunk, and a single item is sent whatever its size
        chunk = chunks.pop(0)
        body = encode_message(
            CatalogResponse(sn=sn, device_id=device_id, sum_num=total, num=len(chunk), items=chunk), charset=charset
        )
        if len(body) > max_body and len(chunk) > 1:
            half = len(chunk) // 2
            chunks[:0] = [chunk[:half], chunk[half:]]
            continue
        out.append(body)
    return out
