"""Storage errors are typed (StoreError.kind) and grouped into episodes by the store's WriteHealth: a full database
(PRAGMA max_page_count makes SQLite return SQLITE_FULL exactly as a full disk does) and a database locked by another
connection past busy_timeout; nothing is corrupted and writes succeed again once the cause is gone."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from registry.health import WriteHealth
from registry.models import Channel, Registration, StatusEvent
from registry.sqlite import SqliteStore, store_error
from registry.store import BUSY, CORRUPT, FULL, IO, OTHER, StoreError


def _sqlite_error(code: int, text: str = "x") -> sqlite3.Error:
    exc = sqlite3.OperationalError(text)
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(
    ("code", "kind"),
    [(13, FULL), (5, BUSY), (6, BUSY), (517, BUSY), (10, IO), (8, IO), (11, CORRUPT), (26, CORRUPT), (19, OTHER)],
)
def test_sqlite_result_codes_become_kinds(code: int, kind: str) -> None:
    assert store_error(_sqlite_error(code), "op", "db").kind == kind


def test_a_locked_message_without_a_code_is_busy() -> None:
    assert store_error(sqlite3.OperationalError("database is locked"), "op", "db").kind == BUSY
    assert StoreError("anything").kind == OTHER


def _events(n: int, start: int = 0) -> list[StatusEvent]:
    return [StatusEvent(1_700_000_000.0 + i, "34020000001320000001", "registered", reason="x" * 200)
            for i in range(start, start + n)]  # fmt: skip


async def test_full_database_raises_full_logs_once_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="registry.health")
    store = SqliteStore(tmp_path / "r.db")
    await store.open()
    try:
        await store.save_registrations([Registration("34020000001320000001", 1.0, 3600, "UDP", "127.0.0.1:5060")])
        limit = await store.limit_pages(1)  # SQLite keeps it at the current size: the file may not grow
        stored = 0
        failures: list[StoreError] = []
        for _ in range(1000):  # bounded: a 4 KiB page holds about 15 of these events
            try:
                await store.append_events(_events(1, stored))
                stored += 1
            except StoreError as exc:
                failures.append(exc)
                if len(failures) == 3:
                    break
        assert [f.kind for f in failures] == [FULL] * 3
        assert "disk full" in str(failures[0])
        h = store.health
        assert h.kind == FULL and h.errors == {FULL: 3} and h.episodes == 1 and h.failed_writes == 3
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "disk full" in errors[0].getMessage()  # once per episode, not per write
        await store.limit_pages(limit + 1000)  # space returns
        await store.append_events(_events(5, stored))
        assert store.health.ok and store.health.episodes == 1
        assert any("writable again" in r.getMessage() for r in caplog.records)
        assert len(await store.list_events(limit=10_000)) == stored + 5  # nothing committed lost
        assert await store.integrity_check() == "ok"
    finally:
        await store.close()


async def test_a_database_locked_past_busy_timeout_is_busy_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    store = SqliteStore(path, busy_timeout=0.2)
    await store.open()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreError) as caught:
            await store.save_registrations([Registration("34020000001320000001", 1.0, 3600, "UDP", "127.0.0.1:1")])
        assert caught.value.kind == BUSY and "locked" in str(caught.value)
        assert store.health.kind == BUSY
        assert await store.get_device("34020000001320000001") is None  # reads go on (WAL); nothing half-written
        other.execute("ROLLBACK")
        await store.save_registrations([Registration("34020000001320000001", 1.0, 3600, "UDP", "127.0.0.1:1")])
        assert store.health.ok
        assert (await store.get_device("34020000001320000001")) is not None
        assert await store.integrity_check() == "ok"
    finally:
        other.close()
        await store.close()


def test_health_episodes_and_json() -> None:
    h = WriteHealth()
    h.failed(StoreError("constraint", OTHER), 1.0)
    assert h.ok and h.errors == {}  # not a storage error
    h.failed(StoreError("full", FULL), 1.0)
    h.failed(StoreError("locked", BUSY), 2.0)  # the kind changes inside one episode
    assert h.kind == BUSY and h.episodes == 1
    assert h.as_json(4.0)["for_s"] == 3.0 and h.as_json(4.0)["state"] == BUSY
    h.succeeded(5.0)
    assert h.ok and h.as_json(6.0) == {"state": "ok", "for_s": 0, "errors": {BUSY: 1, FULL: 1}, "episodes": 1,
                                       "failed_writes": 0, "last_error": "locked"}  # fmt: skip


def test_an_episode_ends_only_when_every_failed_operation_succeeded_again() -> None:
    h = WriteHealth()
    h.failed(StoreError("full", FULL), 1.0, "append_events")
    h.failed(StoreError("full", FULL), 1.0, "save_registrations")
    h.succeeded(2.0, "set_status")  # an update in place fits on a full disk: says little
    h.succeeded(2.0, "save_registrations")
    assert h.kind == FULL
    h.succeeded(3.0, "append_events")
    assert h.ok and h.episodes == 1


async def test_a_catalog_that_does_not_fit_is_not_half_written(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "r.db")
    await store.open()
    try:
        device = "34020000001180000001"
        await store.save_registrations([Registration(device, 1.0, 3600, "UDP", "127.0.0.1:5060")])
        await store.limit_pages(1)
        channels = [Channel(device_id=device, id=f"3402000000131{i:07d}", name="camera " + "x" * 100)
                    for i in range(500)]  # fmt: skip
        with pytest.raises(StoreError) as caught:
            await store.apply_catalog(device, channels, [])
        assert caught.value.kind == FULL
        assert await store.list_channels(device_id=device) == []  # one transaction: all or nothing
        await store.limit_pages(1_000_000)
        await store.apply_catalog(device, channels, [])
        assert len(await store.list_channels(device_id=device)) == 500
        assert await store.integrity_check() == "ok"
    finally:
        await store.close()
