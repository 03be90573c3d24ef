"""Periodic catalog syncs (the fallback where subscriptions are unreliable): spread, rate-limited, skipped for
devices that need none, rescheduled after any sync. Fake clock, no IO."""

from __future__ import annotations

import pytest

from gb28181.catalog_schedule import CatalogSchedule

DAY = 86400.0


def ids(n: int) -> list[str]:
    return [f"3402000000132{i:07d}" for i in range(n)]


def test_first_syncs_are_spread_over_the_first_interval_and_stable() -> None:
    s = CatalogSchedule(DAY)
    for d in ids(1000):
        s.registered(d, 0.0)
    at = [s.next_at(d) for d in ids(1000)]
    assert all(0.0 <= a < DAY for a in at)  # type: ignore[operator]
    buckets = [0] * 10
    for a in at:
        buckets[int(a / DAY * 10)] += 1  # type: ignore[operator]
    assert min(buckets) > 50  # roughly uniform: no burst at one instant
    again = CatalogSchedule(DAY)  # a restart puts every device at the same point
    for d in ids(1000):
        again.registered(d, 0.0)
    assert [again.next_at(d) for d in ids(1000)] == at


def test_due_devices_are_asked_at_most_max_per_tick_and_rescheduled() -> None:
    s = CatalogSchedule(100.0, max_per_tick=3)
    for d in ids(5):
        s.registered(d, 0.0)
    first = s.due(100.0, lambda d: True)
    second = s.due(100.0, lambda d: True)
    assert len(first) == 3 and len(second) == 2 and set(first) | set(second) == set(ids(5))
    assert s.due(100.0, lambda d: True) == []
    assert all(s.next_at(d) == 200.0 for d in ids(5))


def test_a_device_not_wanted_now_is_looked_at_again_an_interval_later() -> None:
    s = CatalogSchedule(100.0)
    (d,) = ids(1)
    s.registered(d, 0.0)
    at = s.next_at(d)
    assert s.due(at, lambda _: False) == []  # type: ignore[arg-type]
    assert s.next_at(d) == at + 100.0  # type: ignore[operator]
    assert s.due(at + 100.0, lambda _: True) == [d]  # type: ignore[operator]


def test_any_sync_pushes_the_next_periodic_one_back_and_reregistering_does_not_reset_it() -> None:
    s = CatalogSchedule(100.0)
    (d,) = ids(1)
    s.registered(d, 0.0)
    s.synced(d, 50.0)  # e.g. the sync after registration, or an operator's
    assert s.next_at(d) == 150.0
    s.registered(d, 60.0)  # a refresh REGISTER
    assert s.next_at(d) == 150.0
    assert s.due(149.0, lambda _: True) == [] and s.due(150.0, lambda _: True) == [d]
    assert s.next_deadline() == 250.0


def test_forgotten_devices_are_never_due_and_off_means_off() -> None:
    s = CatalogSchedule(100.0)
    for d in ids(3):
        s.registered(d, 0.0)
    s.forget(ids(3)[1])
    assert ids(3)[1] not in s.due(1000.0, lambda _: True)
    off = CatalogSchedule(0)
    off.registered(ids(1)[0], 0.0)
    off.synced(ids(1)[0], 0.0)
    assert len(off) == 0 and off.due(1e9, lambda _: True) == [] and off.next_deadline() is None


def test_the_heap_stays_bounded_under_many_reschedules() -> None:
    s = CatalogSchedule(100.0)
    (d,) = ids(1)
    for t in range(10_000):
        s.synced(d, float(t))
    assert len(s._heap) <= 4 * len(s) + 1025


def test_bad_settings() -> None:
    with pytest.raises(ValueError):
        CatalogSchedule(-1)
    with pytest.raises(ValueError):
        CatalogSchedule(10, max_per_tick=0)
