"""gb28181.guard without a platform: lockout with exponential backoff, token buckets, bounded tables."""

from __future__ import annotations

from gb28181.guard import Guard, GuardSettings, TokenBuckets, retry_after

A, B = "198.51.100.7", "198.51.100.8"
CAM, CAM2 = "34020000001320000001", "34020000001320000002"


def test_lockout_after_max_failures_and_backoff_doubles() -> None:
    g = Guard(GuardSettings(max_failures=3, lockout_base=60, lockout_max=200))
    assert g.failed(A, CAM, 0) is None and g.failed(A, CAM, 1) is None
    first = g.failed(A, CAM, 2)
    assert first is not None and first.seconds == 60 and first.failures == 3 and first.count == 1
    assert g.locked(A, CAM, 30) == 32 and g.locked(A, CAM, 62) == 0
    # failures during a lockout extend nothing; after it, three more lock for twice as long, then capped
    assert g.failed(A, CAM, 10) is None
    for t in (70, 71):
        assert g.failed(A, CAM, t) is None
    second = g.failed(A, CAM, 72)
    assert second is not None and second.seconds == 120 and second.count == 2
    for t in (200, 201):
        g.failed(A, CAM, t)
    third = g.failed(A, CAM, 202)
    assert third is not None and third.seconds == 200  # lockout_max


def test_keyed_on_source_and_id_not_on_source_alone() -> None:
    g = Guard(GuardSettings(max_failures=2))
    g.failed(A, CAM, 0)
    assert g.failed(A, CAM, 1) is not None
    assert g.locked(A, CAM, 2) > 0
    assert g.locked(A, CAM2, 2) == 0  # another device behind the same NAT
    assert g.locked(B, CAM, 2) == 0  # the real device at its own address
    assert [(lo.source, lo.device_id) for lo in g.lockouts(2)] == [(A, CAM)]


def test_success_clears_and_old_failures_age_out() -> None:
    g = Guard(GuardSettings(max_failures=3, failure_window=100))
    g.failed(A, CAM, 0)
    g.failed(A, CAM, 1)
    g.succeeded(A, CAM)
    assert g.failed(A, CAM, 2) is None and g.failed(A, CAM, 3) is None
    assert g.failed(A, CAM, 500) is None  # window passed: counting restarts
    assert g.lockouts(500) == []


def test_zero_max_failures_never_locks() -> None:
    g = Guard(GuardSettings(max_failures=0))
    assert all(g.failed(A, CAM, t) is None for t in range(100))
    assert g.locked(A, CAM, 100) == 0


def test_token_bucket_burst_then_rate() -> None:
    b = TokenBuckets(rate=2.0, burst=3, max_entries=1000)
    key = (A, CAM)
    assert [b.take(key, 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = b.take(key, 0.0)
    assert wait == 0.5 and b.first_refusal
    b.take(key, 0.0)
    assert not b.first_refusal  # the second refusal in a row is not logged again
    assert b.take(key, 0.5) == 0.0  # one token back after 1/rate
    assert b.take((B, CAM), 0.0) == 0.0  # other keys unaffected
    assert retry_after(0.2) == "1" and retry_after(2.1) == "3"


def test_rate_zero_means_unlimited() -> None:
    b = TokenBuckets(rate=0, burst=1, max_entries=1000)
    assert all(b.take((A, CAM), 0.0) == 0.0 for _ in range(1000)) and len(b) == 0


def test_tables_stay_bounded_under_a_flood_of_keys() -> None:
    g = Guard(GuardSettings(max_entries=1000, register_burst=1))
    for i in range(50_000):
        g.register_wait(f"10.0.{i // 250}.{i % 250}", f"3402000000132{i:07d}", 0.0)
        g.failed(f"10.1.{i // 250}.{i % 250}", CAM, float(i))
    assert len(g.register_buckets) <= 1000
    assert len(g._strikes) <= 1000
