"""Batching for the hot path, so no message waits on one SQLite round trip of its own.

``GroupCommitter``: classic group commit for writes that must be durable before they are acknowledged
(registrations: the 200 goes out only after ``await submit(...)`` returned). One writer task; while it flushes
a batch, new submissions accumulate into the next one, so the batch size follows the load by itself.

``PeriodicBatcher``: for writes that may be lost in a crash (keepalive timestamps): ``add`` never waits, later
items for the same key replace earlier ones, and a background task flushes every ``interval`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from registry.store import StoreError

T = TypeVar("T")
log = logging.getLogger(__name__)


class GroupCommitter(Generic[T]):
    """``await submit(item)`` returns once a ``flush`` containing the item has returned (the item is durable),
    or raises that flush's exception. ``flush`` receives at most ``max_batch`` items in submission order.

    ``max_delay`` (seconds, default 0) lets the writer wait that long for a batch to fill before flushing;
    with 0 it flushes at once and batching comes only from submissions that arrive while a flush runs.
    At most ``max_pending`` items may wait; beyond that ``submit`` raises ``StoreError("overloaded")`` at once
    (the caller should answer "busy" rather than queue without bound).

    A submitter that is cancelled while waiting does not withdraw its item: it is still flushed.
    """

    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[None]],
        *,
        max_batch: int = 1000,
        max_delay: float = 0.0,
        max_pending: int = 10_000,
    ) -> None:
        if max_batch < 1 or max_pending < 1 or max_delay < 0:
            raise ValueError("max_batch and max_pending must be >= 1, max_delay >= 0")
        self._flush = flush
        self.max_batch = max_batch
        self.max_delay = max_delay
        self.max_pending = max_pending
        self._pending: list[tuple[T, _Waiter]] = []
        self._wakeup = asyncio.Event()
        self._full = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self.flushes = 0  # batches flushed (successfully or not), for stats and tests
        self.items = 0  # items flushed

    @property
    def pending(self) -> int:
        """Items waiting for a flush (not counting the batch being flushed)."""
        return len(self._pending)

    async def submit(self, item: T) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._enqueue(item, future)
        await future

    def submit_nowait(self, item: T, done: Callable[[BaseException | None], None]) -> None:
        """``submit`` without a coroutine for the caller to keep: ``done(None)`` runs once the item is durable,
        ``done(error)`` when its flush failed. Raises StoreError at once when closed or overloaded. (The hot path:
        a task and a future per registration cost more than the registration's share of the SQL.)"""
        self._enqueue(item, done)

    def _enqueue(self, item: T, waiter: _Waiter) -> None:
        if self._closed:
            raise StoreError("group committer is closed")
        if len(self._pending) >= self.max_pending:
            raise StoreError("overloaded")
        self._pending.append((item, waiter))
        self._wakeup.set()
        if len(self._pending) >= self.max_batch:
            self._full.set()
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._run(), name="group-commit")

    async def close(self) -> None:
        """Refuse new items, flush everything pending, stop the writer."""
        self._closed = True
        writer = self._writer
        if writer is None:
            return
        self._wakeup.set()
        self._full.set()
        await writer
        self._writer = None

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self.max_delay > 0 and len(self._pending) < self.max_batch and not self._closed:
                self._full.clear()
                try:
                    await asyncio.wait_for(self._full.wait(), self.max_delay)
                except TimeoutError:
                    pass
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            if len(self._pending) < self.max_batch:
                self._full.clear()
            await self._commit(batch)

    async def _commit(self, batch: list[tuple[T, _Waiter]]) -> None:
        self.flushes += 1
        self.items += len(batch)
        try:
            await self._flush([item for item, _ in batch])
        except asyncio.CancelledError:
            for _, waiter in batch:
                _settle(waiter, StoreError("flush cancelled"))
            raise
        except Exception as e:  # noqa: BLE001 - not swallowed: every submitter of the batch receives it
            for _, waiter in batch:
                _settle(waiter, e)
        else:
            for _, waiter in batch:
                _settle(waiter, None)


_Waiter = asyncio.Future[None] | Callable[[BaseException | None], None]


def _settle(waiter: _Waiter, error: BaseException | None) -> None:
    """Tell one submitter how its flush went: its future, or its ``done`` callback (whose errors are logged: they
    must not stop the writer, which serves every later submitter)."""
    if isinstance(waiter, asyncio.Future):
        if waiter.done():
            pass
        elif error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(None)
        return
    try:
        waiter(error)
    except Exception:
        log.exception("group commit: a submitter's callback failed")


class PeriodicBatcher(Generic[T]):
    """Collects items keyed by ``key(item)`` (the last one per key wins) and flushes them as one list every
    ``interval`` seconds once ``start()``ed, on ``flush_now()``, and on ``close()``.

    ``sleep`` is injected (default ``asyncio.sleep``) so tests can drive the period by hand. A failed flush keeps
    its items for the next one, unless a newer item for the same key arrived meanwhile.
    """

    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[None]],
        interval: float,
        *,
        key: Callable[[T], Hashable],
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0")
        self._flush = flush
        self.interval = interval
        self._key = key
        self._sleep = sleep
        self._pending: dict[Hashable, T] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.flushes = 0
        self.failures = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, item: T) -> None:
        key = self._key(item)
        self._pending.pop(key, None)  # re-insert at the end: flush order follows the latest arrival
        self._pending[key] = item

    def discard(self, key: Hashable) -> None:
        """Drop the pending item for ``key`` (a durable write made it stale)."""
        self._pending.pop(key, None)

    async def flush_now(self) -> int:
        """Flush what is pending now; return how many items were flushed. Raises the flush's exception."""
        async with self._lock:  # flushes never overlap, so an older batch cannot land after a newer one
            if not self._pending:
                return 0
            batch, self._pending = self._pending, {}
            try:
                await self._flush(list(batch.values()))
            except BaseException:
                self.failures += 1
                for key, item in batch.items():
                    self._pending.setdefault(key, item)
                raise
            self.flushes += 1
            return len(batch)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="periodic-batcher")

    async def close(self) -> None:
        """Stop the periodic task and flush what is pending.

        A periodic flush in progress is waited for, not cancelled: holding the lock while cancelling means the
        task is cancelled only while it sleeps or waits, never half-way through a write."""
        task, self._task = self._task, None
        if task is not None:
            async with self._lock:
                task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        await self.flush_now()

    async def _run(self) -> None:
        while True:
            await self._sleep(self.interval)
            try:
                await self.flush_now()
            except StoreError as exc:  # the store's WriteHealth logs the episode once; the items are retried
                log.debug("periodic flush failed (%s); %d items kept for the next one", exc, len(self._pending))
            except Exception:
                log.exception("periodic flush failed; %d items kept for the next one", len(self._pending))
