"""Catalog sync as a transaction (GB/T 28181-2022 §9.5, Appendix M; DECISIONS.md "Registry and catalog").

A Catalog answer arrives as many MESSAGEs with the same SN: ``SumNum`` is the grand total, each packet carries a
few items. Packets are staged per (device, SN); a sync commits when the distinct items reach SumNum, or after the
inter-packet timeout as a partial result flagged as such. Only a complete answer to one of our own SNs may remove
channels; ``SumNum = 0`` removes everything only when a second query of ours confirms it. Pure: ``now`` is passed in
(monotonic), items are opaque objects with a ``device_id`` attribute (the channel ID).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from gb28181.staging import next_quiet, take_quiet


class HasId(Protocol):
    device_id: str


@dataclass
class _Staged:
    device_id: str
    sn: int
    ours: bool
    started: float
    last_packet: float | None = None
    sum_num: int | None = None
    packets: int = 0
    items: dict[str, Any] = field(default_factory=dict)  # channel ID -> item; a repeated ID keeps the last one
    duplicates: int = 0
    # Catalog NOTIFY changes that arrived while this sync was staging, newer than its packets (see ``notify``)
    newer: dict[str, tuple[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Commit:
    """What a finished (or abandoned) sync hands to storage."""

    device_id: str
    sn: int
    items: tuple[Any, ...]
    sum_num: int
    packets: int
    complete: bool  # distinct items reached SumNum
    ours: bool  # an answer to one of our own queries
    may_remove: bool  # channels missing from ``items`` may be deleted
    needs_confirmation: bool = False  # SumNum 0 from our query: ask again before clearing the device
    reason: str = ""  # why it ended: "complete", "inter-packet timeout", "no answer", "superseded"
    duplicates: int = 0


@dataclass(frozen=True)
class Diff:
    added: tuple[str, ...]
    updated: tuple[str, ...]
    removed: tuple[str, ...]


class CatalogAssembler:
    def __init__(self, *, inter_packet_timeout: float = 5.0, first_packet_timeout: float = 120.0) -> None:
        """``first_packet_timeout``: how long our query may wait for its first packet (a lower platform may take
        minutes); ``inter_packet_timeout``: the silence after which a started answer is committed as partial."""
        self.inter_packet_timeout = inter_packet_timeout
        self.first_packet_timeout = first_packet_timeout
        self._staged: dict[tuple[str, int], _Staged] = {}
        self._empty_once: set[str] = set()  # devices whose last answer to our query was SumNum 0

    def __len__(self) -> int:
        return len(self._staged)

    def expect(self, device_id: str, sn: int, now: float) -> None:
        """We sent a Catalog query with this SN."""
        self._staged[(device_id, sn)] = _Staged(device_id, sn, ours=True, started=now)

    def expects(self, device_id: str) -> bool:
        """Whether a sync of this device is staging (its packets are answers, not unsolicited traffic)."""
        return any(dev == device_id for dev, _ in self._staged)

    def in_progress(self, device_id: str) -> list[dict[str, Any]]:
        """Every sync of this device still staging: SN, distinct items so far, SumNum (None before the first
        packet), packets, and whether it answers one of our queries."""
        return [
            {"sn": st.sn, "received": len(st.items), "sum_num": st.sum_num, "packets": st.packets, "ours": st.ours}
            for (dev, _), st in self._staged.items()
            if dev == device_id
        ]

    def progress(self, device_id: str, sn: int) -> tuple[int, int | None] | None:
        """(distinct items so far, SumNum) of a sync in progress, or None."""
        staged = self._staged.get((device_id, sn))
        return None if staged is None else (len(staged.items), staged.sum_num)

    def packet(self, device_id: str, sn: int | None, sum_num: int, items: Sequence[HasId], now: float) -> Commit | None:
        """One Catalog Response (or catalog NOTIFY carrying a full list) packet; a Commit when the sync is done."""
        key = (device_id, sn if sn is not None else -1)
        staged = self._staged.get(key)
        if staged is None:
            staged = self._staged[key] = _Staged(device_id, key[1], ours=False, started=now)
        staged.last_packet = now
        staged.packets += 1
        if sum_num >= 0:
            staged.sum_num = max(staged.sum_num or 0, sum_num)
        for item in items:
            if item.device_id in staged.items:
                staged.duplicates += 1
            staged.items[item.device_id] = item
        if staged.sum_num == 0 or (staged.sum_num is not None and len(staged.items) >= staged.sum_num):
            del self._staged[key]
            return self._commit(staged, complete=True, reason="complete")
        return None

    def due(self, now: float) -> list[Commit]:
        """Syncs that went quiet: partial commits after the inter-packet timeout, and our queries that never got
        a first packet (an empty, non-removing Commit with reason "no answer")."""
        quiet = take_quiet(self._staged, now, self.inter_packet_timeout, self.first_packet_timeout)
        return [self._commit(staged, complete=False, reason=why) for staged, why in quiet]

    def next_deadline(self) -> float | None:
        return next_quiet(self._staged.values(), self.inter_packet_timeout, self.first_packet_timeout)

    def _commit(self, staged: _Staged, *, complete: bool, reason: str) -> Commit:
        sum_num = staged.sum_num or 0
        may_remove = complete and staged.ours
        confirm = False
        if complete and staged.ours and sum_num == 0:
            # DECISIONS.md: SumNum = 0 clears a device only after a second query confirms it.
            if staged.device_id in self._empty_once:
                self._empty_once.discard(staged.device_id)
            else:
                self._empty_once.add(staged.device_id)
                may_remove, confirm = False, True
        elif staged.ours and complete:
            self._empty_once.discard(staged.device_id)
        return Commit(
            staged.device_id, staged.sn, _merged(staged), sum_num, staged.packets, complete,
            staged.ours, may_remove, confirm, reason, staged.duplicates,
        )  # fmt: skip

    # ------------------------------------------------------------------ catalog NOTIFY vs staged syncs
    def notify(self, device_id: str, changes: Sequence[tuple[str, str, Any]]) -> int:
        """Catalog NOTIFY changes (channel ID, event, item) that the platform has just applied to the store:
        recorded on every sync of the device still staging, so that its commit neither loses nor undoes them.

        Ordering rule (notes/decisions-subs.md): a NOTIFY is newer than every packet of a sync staging when it
        arrives, whether those packets came before or after it (a device builds its answer from the catalog it
        had when asked). So at commit: DEL drops the channel from the sync's items; ADD/UPDATE replace (or add)
        it with the NOTIFY's item; ON/OFF/VLOST/DEFECT set its status on the sync's item when the sync has one.
        Items still count towards SumNum as received, so completion is not affected. Returns how many staged
        syncs were touched."""
        staged = [s for s in self._staged.values() if s.device_id == device_id]
        for sync in staged:
            for channel_id, event, item in changes:
                previous = sync.newer.get(channel_id)
                if event == "DEL":
                    sync.newer[channel_id] = ("del", None)
                elif event in ("ADD", "UPDATE"):
                    sync.newer[channel_id] = ("item", item)
                elif previous is not None and previous[0] == "item":
                    sync.newer[channel_id] = ("item", replace(previous[1], status=_status_of(event)))
                elif previous is None or previous[0] == "status":
                    sync.newer[channel_id] = ("status", _status_of(event))
                # a status change after a DEL: the channel stays deleted
        return len(staged)


def _status_of(event: str) -> str:
    """A NOTIFY status event as the Status an item would carry (spec digest §9: VLOST and DEFECT are off)."""
    return "ON" if event == "ON" else "OFF"


def _merged(staged: _Staged) -> tuple[Any, ...]:
    """The sync's items with the NOTIFY changes that arrived while it was staging applied on top."""
    if not staged.newer:
        return tuple(staged.items.values())
    out = []
    for channel_id, item in staged.items.items():
        change = staged.newer.get(channel_id)
        if change is None:
            out.append(item)
        elif change[0] == "item":
            out.append(change[1])
        elif change[0] == "status":
            out.append(replace(item, status=change[1]))
    out.extend(change[1] for cid, change in staged.newer.items() if change[0] == "item" and cid not in staged.items)
    return tuple(out)


def diff(existing: Iterable[str], commit: Commit) -> Diff:
    """Channel IDs added, updated and removed by a commit; nothing is removed unless ``may_remove``."""
    known = set(existing)
    reported = [item.device_id for item in commit.items]
    added = tuple(i for i in reported if i not in known)
    updated = tuple(i for i in reported if i in known)
    removed = tuple(sorted(known - set(reported))) if commit.may_remove else ()
    return Diff(added, updated, removed)
