"""A superior's Catalog subscription to us (GB/T 28181-2022 §9.11, App.N; RFC 6665 as the notifier): how long it
lasts, and which NOTIFY items tell it what changed in the catalog it sees. No IO, no clock.

Changes are found by comparing the catalog the superior was last told about with the catalog as it is now
(gb28181.cascade.share): a new shared ID is ADD (full item), a gone one DEL, a status change ON/OFF (the channel
itself or its device going offline), any other change to what is sent UPDATE (full item) (App.N.4.3.2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from gb28181.cascade.share import SharedCatalog
from gb28181.manscdp.codec import encode as encode_message
from gb28181.manscdp.messages import CatalogItem, CatalogNotify

DEFAULT_EXPIRES = 600  # App.N: configurable, 600 s by default
MIN_EXPIRES = 30  # WVP's minimum
MAX_EXPIRES = 86400

Snapshot = dict[str, tuple[str, CatalogItem]]  # shared ID -> (status, the item as sent)


def granted_expires(requested: int | None) -> int:
    """The expiry we grant: the default when absent, clamped to [MIN_EXPIRES, MAX_EXPIRES]; 0 stays 0 (end)."""
    if requested is None:
        return DEFAULT_EXPIRES
    if requested == 0:
        return 0
    return max(MIN_EXPIRES, min(MAX_EXPIRES, requested))


# A superior's event subscriptions other than the catalog (2022 §9.11; App.N): the body's CmdType names what is
# subscribed, the Event package (``presence`` in the field, as wvp sends) does not.
EVENT_KINDS = {"alarm": "alarm", "mobileposition": "position"}


def subscription_kind(event_header: str | None, cmd_type: str) -> str | None:
    """"catalog", "alarm", "position", or None for something we do not notify."""
    if is_catalog_subscription(event_header, cmd_type):
        return "catalog"
    kind = EVENT_KINDS.get(cmd_type.lower())
    if kind is not None:
        return kind
    if event_header is not None:
        return EVENT_KINDS.get(event_header.split(";", 1)[0].strip().lower())
    return None


def is_catalog_subscription(event_header: str | None, cmd_type: str) -> bool:
    """``Event: Catalog[;id=n]``; a missing Event header is tolerated when the body is a Catalog query (Monibuca
    sends none, spec digest §9)."""
    if event_header is None:
        return cmd_type == "Catalog"
    return event_header.split(";", 1)[0].strip().lower() == "catalog"


def snapshot(catalog: SharedCatalog) -> Snapshot:
    return {i.device_id or "": (i.status or "", i) for i in catalog.items if i.device_id}


def initial_items(catalog: SharedCatalog) -> list[CatalogItem]:
    """App.N: right after the subscription the notifier reports what is offline; the rest is assumed ON."""
    return [CatalogItem(device_id=i.device_id, event="OFF") for i in catalog.items if i.status == "OFF"]


def changes(before: Mapping[str, tuple[str, CatalogItem]], catalog: SharedCatalog) -> list[CatalogItem]:
    """NOTIFY items for what changed since ``before`` (in catalog order, then deletions)."""
    out: list[CatalogItem] = []
    now = snapshot(catalog)
    for shared_id, (status, item) in now.items():
        old = before.get(shared_id)
        if old is None:
            out.append(dataclasses.replace(item, event="ADD"))
        elif old[0] != status and status in ("ON", "OFF"):
            out.append(CatalogItem(device_id=shared_id, event=status))
        elif dataclasses.replace(old[1], status=None) != dataclasses.replace(item, status=None):
            out.append(dataclasses.replace(item, event="UPDATE"))
    out += [CatalogItem(device_id=shared_id, event="DEL") for shared_id in before if shared_id not in now]
    return out


def notify_bodies(items: Sequence[CatalogItem], *, sn: int, device_id: str, batch: int, charset: str) -> list[bytes]:
    """Catalog NOTIFY bodies, ``batch`` items each; SumNum equals DeviceList Num in NOTIFYs (2022 App.N)."""
    out = []
    for i in range(0, len(items), batch):
        chunk = tuple(items[i : i + batch])
        message = CatalogNotify(sn=sn, device_id=device_id, sum_num=len(chunk), num=len(chunk), items=chunk)
        out.append(encode_message(message, charset=charset))
    return out
