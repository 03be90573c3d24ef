"""Multi-packet answers staged until complete or quiet (GB/T 28181-2022 App. M: Catalog, RecordInfo...): the timing
rule both assemblers share. An answer that has started goes quiet after ``inter_packet`` seconds without a packet; a
query of ours that never got a first packet gives up after ``first_packet`` seconds. Pure: ``now`` is passed in."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, MutableMapping
from typing import Protocol, TypeVar


class Staged(Protocol):
    started: float
    last_packet: float | None


S = TypeVar("S", bound=Staged)

INTER_PACKET = "inter-packet timeout"
NO_ANSWER = "no answer"


def quiet_deadline(staged: Staged, inter_packet: float, first_packet: float) -> float:
    if staged.last_packet is not None:
        return staged.last_packet + inter_packet
    return staged.started + first_packet


def take_quiet(
    table: MutableMapping[Hashable, S], now: float, inter_packet: float, first_packet: float
) -> list[tuple[S, str]]:
    """Remove from ``table`` every answer that went quiet by ``now``; return them with why (INTER_PACKET for a
    partial answer, NO_ANSWER for a query that never got a packet), in table order."""
    out = []
    for key, staged in list(table.items()):
        if now >= quiet_deadline(staged, inter_packet, first_packet):
            del table[key]
            out.append((staged, INTER_PACKET if staged.last_packet is not None else NO_ANSWER))
    return out


def next_quiet(staged: Iterable[Staged], inter_packet: float, first_packet: float) -> float | None:
    """When the first of these answers goes quiet, or None."""
    return min((quiet_deadline(s, inter_packet, first_packet) for s in staged), default=None)
