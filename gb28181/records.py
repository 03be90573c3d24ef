"""Record search (GB/T 28181-2022 §9.7, A.2.4.5 query, A.2.6.7 response): the query body, and the answer's
assembly from several MESSAGEs.

A device answers one RecordInfo query in as many packets as it likes, all with the query's SN; ``SumNum`` is the
number of files in all, each packet's ``RecordList`` carries a few, and devices repeat items across packets
(fixtures/manscdp/made/recordinfo-*-duplicates.xml). Packets are staged per (device, SN); a search completes when the
distinct items reach SumNum (``SumNum 0`` or no list at all: nothing recorded), or after the inter-packet timeout
as a partial result flagged as such. Items are deduplicated and sorted by start time. Pure: ``now`` is passed in
(monotonic); packets of SNs we did not ask are not ours and are ignored.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gb28181.manscdp.codec import encode
from gb28181.manscdp.messages import RecordInfoQuery, RecordItem
from gb28181.staging import next_quiet, take_quiet

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # A.2.1: dateTime without zone, the device's local time


class RecordSearchError(ValueError):
    """A search that cannot be asked: bad time range."""


def device_time(epoch: float, tz: zoneinfo.ZoneInfo) -> str:
    """Wall time -> the zone-less local time MANSCDP carries (devices run on the platform's timezone)."""
    return dt.datetime.fromtimestamp(epoch, tz).strftime(TIME_FORMAT)


def build_query(sn: int, channel_id: str, start: float, end: float, tz: zoneinfo.ZoneInfo, charset: str) -> bytes:
    """A RecordInfo ``<Query>`` for every file of ``channel_id`` in [start, end] (epoch seconds). ``Type all`` is
    always sent (Dahua NVRs answer nothing without it, spec digest §7.4), Secrecy 0."""
    if not start < end:
        raise RecordSearchError(f"the start time must be before the end time ({start:g} >= {end:g})")
    query = RecordInfoQuery(
        sn=sn,
        device_id=channel_id,
        start_time=device_time(start, tz),
        end_time=device_time(end, tz),
        secrecy=0,
        type="all",
    )
    return encode(query, charset=charset)


def _key(item: RecordItem) -> tuple[Any, ...]:
    """What makes two items the same file: wvp keys on (StartTime, EndTime); the stream number and path keep a
    main-stream and a sub-stream recording of the same hour apart."""
    return (item.device_id, item.start_time, item.end_time, item.file_path, item.stream_number, item.type)


def _start(item: RecordItem) -> str:
    return (item.start_time or "").replace(" ", "T")


@dataclass
class _Staged:
    device_id: str
    sn: int
    started: float
    last_packet: float | None = None
    sum_num: int | None = None
    packets: int = 0
    items: dict[tuple[Any, ...], RecordItem] = field(default_factory=dict)
    duplicates: int = 0


@dataclass(frozen=True)
class RecordResult:
    """A finished search: ``complete`` when the distinct items reached SumNum; ``reason`` "complete",
    "inter-packet timeout" or "no answer"."""

    device_id: str
    sn: int
    items: tuple[RecordItem, ...]
    sum_num: int
    packets: int
    duplicates: int
    complete: bool
    reason: str


class RecordAssembler:
    def __init__(self, *, inter_packet_timeout: float = 5.0, first_packet_timeout: float = 10.0) -> None:
        self.inter_packet_timeout = inter_packet_timeout
        self.first_packet_timeout = first_packet_timeout
        self._staged: dict[tuple[str, int], _Staged] = {}

    def __len__(self) -> int:
        return len(self._staged)

    def expects(self, device_id: str) -> bool:
        """Whether a record search of this device is staging."""
        return any(dev == device_id for dev, _ in self._staged)

    def expect(self, device_id: str, sn: int, now: float) -> None:
        """We sent a RecordInfo query with this SN to this device."""
        self._staged[(device_id, sn)] = _Staged(device_id, sn, now)

    def cancel(self, device_id: str, sn: int) -> None:
        self._staged.pop((device_id, sn), None)

    def packet(
        self, device_id: str, sn: int | None, sum_num: int | None, items: Sequence[RecordItem], now: float
    ) -> RecordResult | None:
        """One RecordInfo Response packet; the result when the search is complete. Raises KeyError for a packet
        that answers no search of ours (a late packet after a partial result, another SN)."""
        staged = self._staged.get((device_id, sn if sn is not None else -1))
        if staged is None:
            raise KeyError((device_id, sn))
        staged.last_packet = now
        staged.packets += 1
        if sum_num is not None and sum_num >= 0:
            staged.sum_num = max(staged.sum_num or 0, sum_num)
        elif staged.sum_num is None:
            staged.sum_num = 0  # no SumNum at all: read as nothing recorded, once the list (if any) is in
        for item in items:
            key = _key(item)
            if key in staged.items:
                staged.duplicates += 1
            else:
                staged.items[key] = item
        if staged.sum_num is not None and len(staged.items) >= staged.sum_num:
            del self._staged[(staged.device_id, staged.sn)]
            return self._result(staged, complete=True, reason="complete")
        return None

    def due(self, now: float) -> list[RecordResult]:
        """Searches that went quiet: partial results after the inter-packet timeout, and queries never answered
        (an empty, incomplete result with reason "no answer")."""
        quiet = take_quiet(self._staged, now, self.inter_packet_timeout, self.first_packet_timeout)
        return [self._result(staged, complete=False, reason=why) for staged, why in quiet]

    def next_deadline(self) -> float | None:
        return next_quiet(self._staged.values(), self.inter_packet_timeout, self.first_packet_timeout)

    @staticmethod
    def _result(staged: _Staged, *, complete: bool, reason: str) -> RecordResult:
        items = tuple(sorted(staged.items.values(), key=_start))
        return RecordResult(
            staged.device_id, staged.sn, items, staged.sum_num or 0, staged.packets, staged.duplicates, complete,
            reason,
        )  # fmt: skip


def record_json(item: RecordItem) -> dict[str, Any]:
    """One file of a search as the admin API shows it."""
    return {
        "device_id": item.device_id,
        "name": item.name,
        "start_time": item.start_time,
        "end_time": item.end_time,
        "type": item.type,
        "file_path": item.file_path,
        "file_size": item.file_size,
        "address": item.address,
        "secrecy": item.secrecy,
        "recorder_id": item.recorder_id,
        "stream_number": item.stream_number,
        "record_location": item.record_location,
    }


def result_json(result: RecordResult, channel_id: str) -> dict[str, Any]:
    return {
        "channel_id": channel_id,
        "device_id": result.device_id,
        "sn": result.sn,
        "state": "complete" if result.complete else "partial",
        "reason": result.reason,
        "sum_num": result.sum_num,
        "received": len(result.items),
        "packets": result.packets,
        "duplicates": result.duplicates,
        "items": [record_json(i) for i in result.items],
    }
