"""Reorder buffer, loss counting and the SSRC policy, driven packet by packet (no sockets, no clock)."""

from __future__ import annotations

import random

import pytest

from gb28181.media.jitter import ReorderBuffer, SsrcPolicy
from gb28181.media.rtp import RtpPacket


def pkt(seq: int) -> RtpPacket:
    return RtpPacket(96, seq & 0xFFFF, 0, 1, b"")


def run(buf: ReorderBuffer, seqs: list[int]) -> list[int]:
    out = [p.sequence for s in seqs for p in buf.push(pkt(s))]
    return out + [p.sequence for p in buf.flush()]


def test_in_order_passes_straight_through() -> None:
    buf = ReorderBuffer(8, warmup=1)
    assert [p.sequence for p in buf.push(pkt(10))] == [10]
    assert [p.sequence for p in buf.push(pkt(11))] == [11]
    assert buf.stats.lost == 0 and buf.held == 0


def test_small_shuffle_is_put_back_in_order() -> None:
    buf = ReorderBuffer(8, warmup=1)
    assert run(buf, [0, 2, 1, 3, 6, 4, 5, 7]) == list(range(8))
    assert buf.stats.lost == 0 and buf.stats.reordered == 3 and buf.stats.delivered == 8  # 1, 4, 5: after a later one


def test_warmup_holds_the_first_packets_so_a_swapped_start_is_not_late() -> None:
    buf = ReorderBuffer(8, warmup=3)
    assert buf.push(pkt(11)) == [] and buf.push(pkt(10)) == []
    assert [p.sequence for p in buf.push(pkt(12))] == [10, 11, 12]
    assert buf.stats.late == 0 and buf.stats.lost == 0


def test_a_hole_is_waited_out_for_capacity_packets_then_counted_lost() -> None:
    buf = ReorderBuffer(4, warmup=1)
    out = [p.sequence for s in [0, 2, 3, 4, 5] for p in buf.push(pkt(s))]
    assert out == [0] and buf.held == 4
    out = [p.sequence for p in buf.push(pkt(6))]
    assert out == [2, 3, 4, 5, 6] and buf.stats.lost == 1
    assert [p.sequence for p in buf.push(pkt(1))] == [] and buf.stats.late == 1  # too late now


def test_flush_counts_holes_at_the_end() -> None:
    buf = ReorderBuffer(16)
    assert run(buf, [0, 3, 7]) == [0, 3, 7]
    assert buf.stats.lost == 5


def test_duplicates_and_wraparound() -> None:
    buf = ReorderBuffer(8)
    assert run(buf, [65534, 0, 65535, 65535, 1, 0]) == [65534, 65535, 0, 1]
    assert buf.stats.duplicates == 1 and buf.stats.late == 1 and buf.stats.lost == 0


def test_a_restarted_sender_resyncs_instead_of_counting_thousands_lost() -> None:
    buf = ReorderBuffer(8)
    assert run(buf, [100, 101, 40000, 40001]) == [100, 101, 40000, 40001]
    assert buf.stats.resyncs == 1 and buf.stats.lost == 0


@pytest.mark.parametrize("seed", range(5))
def test_random_jitter_within_capacity_loses_nothing(seed: int) -> None:
    rng = random.Random(seed)
    seqs = list(range(65000, 65000 + 1000))
    for i in range(0, len(seqs) - 4, 4):  # swap neighbours within a window of 4
        window = seqs[i:i + 4]
        rng.shuffle(window)
        seqs[i:i + 4] = window
    buf = ReorderBuffer(8)
    assert run(buf, seqs) == [s & 0xFFFF for s in range(65000, 66000)]
    assert buf.stats.lost == 0


def test_random_loss_is_counted_exactly() -> None:
    rng = random.Random(7)
    sent = list(range(2000))
    dropped = set(rng.sample(sent, 37))
    buf = ReorderBuffer(16)
    out = run(buf, [s for s in sent if s not in dropped or s == 0])
    assert buf.stats.lost == len(dropped - {0}) and len(out) == 2000 - len(dropped - {0})


def test_capacity_is_bounded() -> None:
    with pytest.raises(ValueError):
        ReorderBuffer(0)
    buf = ReorderBuffer(4)
    for s in range(2, 200, 2):  # every other packet missing
        buf.push(pkt(s))
        assert buf.held <= 4


def test_ssrc_policy() -> None:
    zero = SsrcPolicy(expected=200000001)
    assert zero.accept(0) == (True, False)  # Dahua SSRC 0: silently accepted
    assert zero.accept(200000001) == (False, False) and zero.foreign == 1  # locked to 0 now

    other = SsrcPolicy(expected=200000001)
    assert other.accept(703001718) == (True, True)  # the device chose its own: accepted, reported
    assert other.accept(703001718) == (True, False)  # reported once
    assert other.accept(5) == (False, False)

    exact = SsrcPolicy(expected=200000001)
    assert exact.accept(200000001) == (True, False)
