"""Group commit (registrations) and periodic batching (keepalives)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from registry.batching import GroupCommitter, PeriodicBatcher
from registry.models import ONLINE, Keepalive, Registration
from registry.sqlite import SqliteStore
from registry.store import StoreError


class GatedFlush:
    """A flush that records its batches and, while the gate is closed, does not return."""

    def __init__(self, fail_on: object = None) -> None:
        self.batches: list[list[object]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.started = asyncio.Event()
        self.fail_on = fail_on

    async def __call__(self, items: list[object]) -> None:
        self.batches.append(list(items))
        self.started.set()
        await self.gate.wait()
        if self.fail_on is not None and self.fail_on in items:
            raise RuntimeError(f"cannot write {self.fail_on}")


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


# GroupCommitter


async def test_submit_returns_only_after_its_flush() -> None:
    flush = GatedFlush()
    flush.gate.clear()
    committer = GroupCommitter(flush)
    task = asyncio.create_task(committer.submit("a"))
    await flush.started.wait()
    await settle()
    assert not task.done(), "not durable yet"
    flush.gate.set()
    await task
    assert flush.batches == [["a"]]
    await committer.close()


async def test_concurrent_submitters_share_one_flush() -> None:
    flush = GatedFlush()
    flush.gate.clear()
    committer = GroupCommitter(flush)
    first = asyncio.create_task(committer.submit(0))
    await flush.started.wait()
    # while the first flush runs, 100 more arrive: they must go out together, not one transaction each
    rest = [asyncio.create_task(committer.submit(i)) for i in range(1, 101)]
    await settle()
    assert committer.pending == 100
    flush.gate.set()
    await asyncio.gather(first, *rest)
    assert flush.batches == [[0], list(range(1, 101))]
    assert (committer.flushes, committer.items) == (2, 101)
    await committer.close()


async def test_max_batch_splits_in_submission_order() -> None:
    flush = GatedFlush()
    flush.gate.clear()
    committer = GroupCommitter(flush, max_batch=10)
    tasks = [asyncio.create_task(committer.submit(i)) for i in range(25)]
    await flush.started.wait()
    flush.gate.set()
    await asyncio.gather(*tasks)
    assert [len(b) for b in flush.batches] == [10, 10, 5]
    assert [i for b in flush.batches for i in b] == list(range(25))
    await committer.close()


async def test_a_failing_flush_fails_exactly_its_batch() -> None:
    flush = GatedFlush(fail_on="bad")
    flush.gate.clear()
    committer = GroupCommitter(flush)
    before = asyncio.create_task(committer.submit("before"))
    await flush.started.wait()
    same_batch = [asyncio.create_task(committer.submit(x)) for x in ("a", "bad", "b")]
    await settle()
    flush.gate.set()
    await before
    results = await asyncio.gather(*same_batch, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and str(r) == "cannot write bad" for r in results)
    await committer.submit("after")  # the writer survives a failed batch
    assert flush.batches == [["before"], ["a", "bad", "b"], ["after"]]
    await committer.close()


async def test_overload_is_refused_at_once() -> None:
    flush = GatedFlush()
    flush.gate.clear()
    committer = GroupCommitter(flush, max_pending=3)
    in_flight = asyncio.create_task(committer.submit("in flight"))
    await flush.started.wait()
    queued = [asyncio.create_task(committer.submit(i)) for i in range(3)]
    await settle()
    with pytest.raises(StoreError, match="overloaded"):
        await committer.submit("one too many")
    flush.gate.set()
    await asyncio.gather(in_flight, *queued)
    await committer.submit("room again")
    assert flush.batches == [["in flight"], [0, 1, 2], ["room again"]]
    await committer.close()


async def test_submit_nowait_calls_back_after_its_flush_with_its_batchs_outcome() -> None:
    flush = GatedFlush(fail_on="bad")
    flush.gate.clear()
    committer = GroupCommitter(flush, max_pending=3)
    heard: list[tuple[str, object]] = []
    committer.submit_nowait("first", lambda e: heard.append(("first", e)))
    await flush.started.wait()
    assert heard == []  # not durable yet
    for item in ("a", "bad"):
        committer.submit_nowait(item, lambda e, item=item: heard.append((item, e)))

    def broken(_e: object) -> None:
        raise KeyError("a bug in one callback")

    committer.submit_nowait("c", broken)
    with pytest.raises(StoreError, match="overloaded"):
        committer.submit_nowait("one too many", lambda e: heard.append(("late", e)))
    flush.gate.set()
    await settle()
    await committer.submit("after")  # the writer survived the failed batch and the broken callback
    assert heard[0] == ("first", None)
    assert [(i, str(e)) for i, e in heard[1:]] == [("a", "cannot write bad"), ("bad", "cannot write bad")]
    assert flush.batches == [["first"], ["a", "bad", "c"], ["after"]]
    await committer.close()


async def test_close_flushes_what_is_pending_and_refuses_more() -> None:
    flush = GatedFlush()
    flush.gate.clear()
    committer = GroupCommitter(flush, max_batch=4)
    tasks = [asyncio.create_task(committer.submit(i)) for i in range(10)]
    await flush.started.wait()
    closing = asyncio.create_task(committer.close())
    await settle()
    with pytest.raises(StoreError, match="closed"):
        await committer.submit("late")
    flush.gate.set()
    await closing
    assert all(t.done() and t.exception() is None for t in tasks)
    assert [i for b in flush.batches for i in b] == list(range(10))


async def test_close_when_idle_or_never_used() -> None:
    await GroupCommitter(GatedFlush()).close()
    flush = GatedFlush()
    committer = GroupCommitter(flush)
    await committer.submit(1)
    await committer.close()
    assert flush.batches == [[1]]


async def test_max_delay_gathers_a_batch() -> None:
    flush = GatedFlush()
    committer = GroupCommitter(flush, max_delay=0.05)
    tasks = []
    for i in range(5):
        tasks.append(asyncio.create_task(committer.submit(i)))
        await asyncio.sleep(0.001)
    await asyncio.gather(*tasks)
    assert flush.batches == [[0, 1, 2, 3, 4]]
    await committer.close()


async def test_a_full_batch_does_not_wait_for_max_delay() -> None:
    flush = GatedFlush()
    committer = GroupCommitter(flush, max_batch=3, max_delay=30.0)
    await asyncio.wait_for(asyncio.gather(*(committer.submit(i) for i in range(3))), 2.0)
    assert flush.batches == [[0, 1, 2]]
    await asyncio.wait_for(committer.close(), 2.0)


async def test_a_cancelled_submitter_does_not_withdraw_its_item() -> None:
    flush = GatedFlush()
    flush.gate.clear()
    committer = GroupCommitter(flush)
    first = asyncio.create_task(committer.submit("first"))
    await flush.started.wait()
    impatient = asyncio.create_task(committer.submit("impatient"))
    await settle()
    impatient.cancel()
    flush.gate.set()
    await first
    await committer.close()
    assert flush.batches == [["first"], ["impatient"]]


async def test_group_commit_on_sqlite(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "g.db") as store:
        committer: GroupCommitter[Registration] = GroupCommitter(store.save_registrations)
        ids = [f"340200000013201{i:05d}" for i in range(500)]
        await asyncio.gather(*(committer.submit(Registration(i, at=1.0, expires=3600)) for i in ids))
        await committer.close()
        assert committer.flushes < 50, f"{committer.flushes} transactions for 500 concurrent registrations"
        assert [d.id for d in await store.list_devices(status=ONLINE)] == ids


# PeriodicBatcher


class FakeSleep:
    """An injected sleep that returns only when the test ticks it."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self._waiters: list[asyncio.Future[None]] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        await future

    async def tick(self) -> None:
        await settle()
        assert self._waiters, "nobody is sleeping"
        self._waiters.pop(0).set_result(None)
        await settle()


def ka(device: str, at: float, address: str = "") -> Keepalive:
    return Keepalive(device_id=device, at=at, address=address)


def batcher(flush: GatedFlush, sleep: FakeSleep | None = None) -> PeriodicBatcher[Keepalive]:
    return PeriodicBatcher(flush, 5.0, key=lambda k: k.device_id, sleep=sleep or FakeSleep())


async def test_later_items_replace_earlier_ones_for_the_same_key() -> None:
    flush = GatedFlush()
    b = batcher(flush)
    b.add(ka("A", 1.0))
    b.add(ka("B", 1.0))
    b.add(ka("A", 2.0, "10.0.0.9:5060"))
    assert b.pending == 2
    assert await b.flush_now() == 2
    assert flush.batches == [[ka("B", 1.0), ka("A", 2.0, "10.0.0.9:5060")]]
    assert await b.flush_now() == 0
    assert len(flush.batches) == 1, "nothing pending, no flush"


async def test_the_background_task_flushes_every_interval() -> None:
    flush, sleep = GatedFlush(), FakeSleep()
    b = batcher(flush, sleep)
    b.start()
    b.add(ka("A", 1.0))
    await sleep.tick()
    assert flush.batches == [[ka("A", 1.0)]]
    await sleep.tick()  # an empty period flushes nothing
    b.add(ka("A", 7.0))
    b.add(ka("B", 7.0))
    await sleep.tick()
    assert flush.batches == [[ka("A", 1.0)], [ka("A", 7.0), ka("B", 7.0)]]
    assert set(sleep.asked) == {5.0}
    await b.close()


async def test_a_failed_flush_keeps_its_items_unless_newer_ones_arrived() -> None:
    flush, sleep = GatedFlush(fail_on=ka("B", 1.0)), FakeSleep()
    b = batcher(flush, sleep)
    b.start()
    b.add(ka("A", 1.0))
    b.add(ka("B", 1.0))
    await sleep.tick()  # fails; the task logs and carries on
    assert b.failures == 1 and b.pending == 2
    flush.fail_on = None
    b.add(ka("A", 2.0))
    await sleep.tick()
    assert sorted(flush.batches[-1], key=lambda k: k.device_id) == [ka("A", 2.0), ka("B", 1.0)]
    assert b.pending == 0
    await b.close()


async def test_flush_now_raises_the_flush_error() -> None:
    flush = GatedFlush(fail_on=ka("A", 1.0))
    b = batcher(flush)
    b.add(ka("A", 1.0))
    with pytest.raises(RuntimeError):
        await b.flush_now()
    assert b.pending == 1


async def test_close_stops_the_task_and_flushes() -> None:
    flush, sleep = GatedFlush(), FakeSleep()
    b = batcher(flush, sleep)
    b.start()
    await settle()
    b.add(ka("A", 1.0))
    await b.close()
    assert flush.batches == [[ka("A", 1.0)]]
    assert b._task is None


async def test_keepalives_batched_into_sqlite(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "k.db") as store:
        await store.save_registrations([Registration("A", at=1.0, expires=60), Registration("B", at=1.0, expires=60)])
        b = PeriodicBatcher(store.save_keepalives, 5.0, key=lambda k: k.device_id, sleep=FakeSleep())
        for t in range(100):
            b.add(ka("A" if t % 2 else "B", float(t)))
        await b.flush_now()
        assert ((await store.get_device("A")).last_keepalive, (await store.get_device("B")).last_keepalive) == (
            99.0,
            98.0,
        )


async def test_close_waits_for_a_periodic_flush_in_progress() -> None:
    """close() during the periodic task's flush lets that flush finish instead of cancelling it half-way."""
    started, release = asyncio.Event(), asyncio.Event()
    flushed: list[list[Keepalive]] = []

    async def slow_flush(items: list[Keepalive]) -> None:
        started.set()
        await release.wait()
        flushed.append(items)

    sleep = FakeSleep()
    b = PeriodicBatcher(slow_flush, 5.0, key=lambda k: k.device_id, sleep=sleep)
    b.start()
    b.add(ka("A", 1.0))
    await sleep.tick()
    await asyncio.wait_for(started.wait(), 5)
    b.add(ka("B", 2.0))
    closing = asyncio.ensure_future(b.close())
    await settle()
    assert not closing.done()
    release.set()
    await asyncio.wait_for(closing, 5)
    assert flushed == [[ka("A", 1.0)], [ka("B", 2.0)]]


async def test_a_write_cancelled_half_way_leaves_the_sqlite_store_usable(tmp_path: Path) -> None:
    """aiosqlite runs a cancelled statement anyway: the store must not be left inside a transaction."""
    async with SqliteStore(tmp_path / "c.db") as store:
        for attempt in range(20):  # cancel at varying points of the transaction
            task = asyncio.ensure_future(store.save_registrations([Registration("A", at=1.0, expires=60)]))
            for _ in range(attempt % 5):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await store.save_registrations([Registration("B", at=2.0, expires=60)])
        assert (await store.get_device("B")) is not None
