"""Catalog sync as a transaction: staging per (device, SN), completion, partial commits, removal rules."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from gb28181.catalog import CatalogAssembler, diff

DEV = "34020000001110000001"


@dataclass(frozen=True)
class Item:
    device_id: str
    name: str = ""


def items(*numbers: int) -> list[Item]:
    return [Item(f"3402000000131{n:07d}") for n in numbers]


def ids(*numbers: int) -> tuple[str, ...]:
    return tuple(i.device_id for i in items(*numbers))


def test_a_three_packet_answer_to_our_query_commits_complete_and_may_remove() -> None:
    a = CatalogAssembler()
    a.expect(DEV, 7, now=0.0)
    assert a.packet(DEV, 7, 3, items(1), 1.0) is None
    assert a.progress(DEV, 7) == (1, 3)
    assert a.packet(DEV, 7, 3, items(2), 1.1) is None
    commit = a.packet(DEV, 7, 3, items(3), 1.2)
    assert commit is not None and commit.complete and commit.ours and commit.may_remove
    assert (commit.sum_num, commit.packets, commit.reason) == (3, 3, "complete")
    assert len(a) == 0
    d = diff(ids(1, 2, 4), commit)
    assert (d.added, d.updated, d.removed) == (ids(3), ids(1, 2), ids(4))


def test_duplicates_count_once_toward_sumnum() -> None:
    a = CatalogAssembler()
    a.expect(DEV, 1, 0.0)
    assert a.packet(DEV, 1, 2, items(1, 1), 0.1) is None  # a device resending the same item
    commit = a.packet(DEV, 1, 2, items(1, 2), 0.2)
    assert commit is not None and commit.duplicates == 2 and len(commit.items) == 2


def test_a_stray_sumnum_1_packet_after_a_big_sync_does_not_shrink_it() -> None:
    """Issue 4 'Done means': a stray SumNum=1 packet (another SN, not ours) only adds or updates."""
    a = CatalogAssembler()
    commit = a.packet(DEV, 999, 1, items(5), 10.0)
    assert commit is not None and commit.complete and not commit.ours and not commit.may_remove
    d = diff(ids(*range(1, 101)), commit)
    assert d.removed == () and d.updated == ids(5)


def test_silence_commits_a_partial_sync_that_removes_nothing() -> None:
    a = CatalogAssembler(inter_packet_timeout=5.0)
    a.expect(DEV, 2, 0.0)
    a.packet(DEV, 2, 10, items(1, 2, 3), 1.0)
    assert a.due(5.9) == []
    assert a.next_deadline() == 6.0
    (commit,) = a.due(6.0)
    assert not commit.complete and commit.ours and not commit.may_remove and commit.reason == "inter-packet timeout"
    assert diff(ids(1, 2, 3, 4), commit).removed == ()


def test_a_query_that_never_gets_a_first_packet_ends_as_no_answer() -> None:
    a = CatalogAssembler(first_packet_timeout=120.0)
    a.expect(DEV, 3, 0.0)
    assert a.due(119.0) == [] and a.next_deadline() == 120.0
    (commit,) = a.due(120.0)
    assert commit.reason == "no answer" and commit.items == () and not commit.may_remove


def test_sumnum_0_clears_only_after_a_second_query_confirms() -> None:
    a = CatalogAssembler()
    a.expect(DEV, 4, 0.0)
    first = a.packet(DEV, 4, 0, [], 0.1)
    assert first is not None and first.complete and first.needs_confirmation and not first.may_remove
    a.expect(DEV, 5, 1.0)
    second = a.packet(DEV, 5, 0, [], 1.1)
    assert second is not None and second.may_remove and not second.needs_confirmation
    assert diff(ids(1, 2), second).removed == ids(1, 2)


def test_a_non_empty_answer_in_between_resets_the_sumnum_0_confirmation() -> None:
    a = CatalogAssembler()
    a.expect(DEV, 1, 0.0)
    assert a.packet(DEV, 1, 0, [], 0.1).needs_confirmation  # type: ignore[union-attr]
    a.expect(DEV, 2, 1.0)
    assert a.packet(DEV, 2, 1, items(1), 1.1).may_remove  # type: ignore[union-attr]
    a.expect(DEV, 3, 2.0)
    again = a.packet(DEV, 3, 0, [], 2.1)
    assert again is not None and again.needs_confirmation and not again.may_remove


def test_syncs_of_two_sns_and_two_devices_stay_apart() -> None:
    a = CatalogAssembler()
    other = "34020000001110000002"
    a.expect(DEV, 1, 0.0)
    a.expect(other, 1, 0.0)
    assert a.packet(DEV, 1, 2, items(1), 0.1) is None
    assert a.packet(other, 1, 2, items(9), 0.1) is None
    assert a.packet(DEV, 77, 5, items(2), 0.2) is None  # someone else's SN: its own staging
    done = a.packet(DEV, 1, 2, items(3), 0.3)
    assert done is not None and [i.device_id for i in done.items] == list(ids(1, 3))
    assert len(a) == 2


@settings(deadline=None, max_examples=200)
@given(st.lists(st.lists(st.integers(1, 30), max_size=5), min_size=1, max_size=12), st.integers(0, 40))
def test_never_removes_what_a_complete_answer_of_ours_reported(packets: list[list[int]], sum_num: int) -> None:
    a = CatalogAssembler()
    a.expect(DEV, 1, 0.0)
    commit = None
    for n, numbers in enumerate(packets):
        commit = a.packet(DEV, 1, sum_num, items(*numbers), float(n))
        if commit is not None:
            break
    if commit is None:
        (commit,) = a.due(1e9)
    reported = {i.device_id for i in commit.items}
    d = diff(ids(*range(1, 31)), commit)
    assert not reported & set(d.removed)
    assert commit.may_remove == (commit.complete and commit.sum_num > 0) or commit.needs_confirmation
    if not commit.complete:
        assert d.removed == ()
