"""What only the SQLite store has: schema versions, pragmas, errors as StoreError, durability across kill -9."""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from registry.migrations import MIGRATIONS, SCHEMA_VERSION, Migration
from registry.models import OFFLINE, ONLINE, Channel, Device, Registration, StatusEvent
from registry.sqlite import CHANNEL_COLUMNS, DEVICE_COLUMNS, SqliteStore, store_error
from registry.store import StoreError

ROOT = Path(__file__).resolve().parents[2]
A = "34020000001320000001"


def reg(device_id: str = A, at: float = 1000.0, expires: int = 3600) -> Registration:
    return Registration(device_id=device_id, at=at, expires=expires, transport="UDP", address="10.0.0.1:5060")


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


# schema and settings


async def test_a_new_file_gets_the_whole_schema_and_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    async with SqliteStore(path) as store:
        assert await store.pragmas() == {
            "journal_mode": "wal",
            "synchronous": "FULL",
            "busy_timeout": 5000,
            "foreign_keys": 1,
            "user_version": SCHEMA_VERSION,
        }
        assert await store.integrity_check() == "ok"
    with raw(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
        assert {"devices", "events", "events_subject_ts", "events_ts"} <= tables
        assert {"channels", "channels_device_status", "channels_civil_code"} <= tables
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal", "WAL is persistent"
        assert tuple(r[1] for r in db.execute("PRAGMA table_info(devices)")) == DEVICE_COLUMNS
        assert tuple(r[1] for r in db.execute("PRAGMA table_info(channels)")) == CHANNEL_COLUMNS
        assert [r[5] for r in db.execute("PRAGMA table_info(channels)") if r[5]] == [1, 2], "key (device_id, id)"


def test_device_columns_cover_every_device_field() -> None:
    assert tuple(f.name for f in dataclasses.fields(Device)) == DEVICE_COLUMNS


def test_channel_columns_cover_every_channel_field() -> None:
    assert tuple(f.name for f in dataclasses.fields(Channel)) == CHANNEL_COLUMNS


async def test_normal_synchronous_is_an_option(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "n.db", synchronous="normal", busy_timeout=0.25) as store:
        settings = await store.pragmas()
        assert (settings["synchronous"], settings["busy_timeout"]) == ("NORMAL", 250)
    with pytest.raises(ValueError):
        SqliteStore(tmp_path / "x.db", synchronous="OFF")


async def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    async with SqliteStore(path) as store:
        await store.put_device(Device(id="34020000001320000009", name="provisioned", password="pw"))
        await store.save_registrations([reg()])
        await store.append_events([StatusEvent(at=1000.0, subject=A, event="registered")])
    async with SqliteStore(path) as store:
        assert (await store.pragmas())["user_version"] == SCHEMA_VERSION
        assert [d.id for d in await store.list_devices()] == [A, "34020000001320000009"]
        assert (await store.get_device(A)).status == ONLINE
        assert (await store.get_device("34020000001320000009")).password == "pw"
        assert [e.event for e in await store.list_events()] == ["registered"]


async def test_a_later_migration_applies_to_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    async with SqliteStore(path) as store:
        await store.save_registrations([reg()])
    step = Migration(SCHEMA_VERSION + 1, "test column", ("ALTER TABLE devices ADD COLUMN note TEXT DEFAULT 'x'",))
    async with SqliteStore(path, migrations=(*MIGRATIONS, step)) as store:
        assert (await store.pragmas())["user_version"] == SCHEMA_VERSION + 1
        assert (await store.get_device(A)).status == ONLINE
    with raw(path) as db:
        assert db.execute("SELECT note FROM devices").fetchone() == ("x",)


async def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    async with SqliteStore(path) as store:
        await store.save_registrations([reg()])
    bad = Migration(SCHEMA_VERSION + 1, "broken", ("CREATE TABLE half (x)", "INSERT INTO missing VALUES (1)"))
    with pytest.raises(StoreError, match="no such table: missing"):
        await SqliteStore(path, migrations=(*MIGRATIONS, bad)).open()
    with raw(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half'").fetchone()[0] == 0
    async with SqliteStore(path) as store:
        assert (await store.get_device(A)) is not None


async def test_a_version_1_database_upgrades_to_channels(tmp_path: Path) -> None:
    """A file written by the release that had only migration 1 (devices, events) gains the channels table and
    keeps its data."""
    path = tmp_path / "v1.db"
    async with SqliteStore(path, migrations=MIGRATIONS[:1]) as store:
        await store.put_device(Device(id="34020000001110000001", name="NVR 东门", password="pw", provisioned=True))
        await store.save_registrations([reg()])
        await store.append_events([StatusEvent(at=1000.0, subject=A, event="registered")])
        assert (await store.pragmas())["user_version"] == 1
    with raw(path) as db:
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'channels'").fetchone()[0] == 0
        before = db.execute("SELECT * FROM devices ORDER BY id").fetchall()
    async with SqliteStore(path) as store:
        assert (await store.pragmas())["user_version"] == SCHEMA_VERSION >= 2
        assert await store.integrity_check() == "ok"
        nvr = await store.get_device("34020000001110000001")
        assert (nvr.name, nvr.password, nvr.provisioned) == ("NVR 东门", "pw", True)
        assert (await store.get_device(A)).status == ONLINE
        assert [e.event for e in await store.list_events()] == ["registered"]
        channel = Channel(device_id=A, id=A, name="Camera", kind="video", updated_at=2000.0)
        await store.apply_catalog(A, [channel], [])
        assert await store.list_channels() == [dataclasses.replace(channel, first_seen=2000.0)]
        assert await store.count_video_channels(A) == 1
    with raw(path) as db:
        assert db.execute("SELECT * FROM devices ORDER BY id").fetchall() == before
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []


async def test_migration_versions_must_be_consecutive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="versions must be"):
        await SqliteStore(tmp_path / "v.db", migrations=(*MIGRATIONS, Migration(9, "gap", ()))).open()


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    async with SqliteStore(path) as store:
        await store.save_registrations([reg()])
    with raw(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    store = SqliteStore(path)
    with pytest.raises(StoreError, match=rf"schema version {SCHEMA_VERSION + 1} is newer"):
        await store.open()
    with pytest.raises(StoreError, match="not open"):
        await store.get_device(A)
    with raw(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert db.execute("SELECT count(*) FROM devices").fetchone()[0] == 1


# errors


async def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    content = b"this is not a database, it is a text file of some length\n" * 100
    path.write_bytes(content)
    with pytest.raises(StoreError, match="not a SQLite database"):
        await SqliteStore(path).open()
    assert path.read_bytes() == content


async def test_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open"):
        await SqliteStore(tmp_path / "no" / "such" / "dir.db").open()


async def test_a_closed_store_raises_store_error(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    with pytest.raises(StoreError, match="not open"):
        await store.list_devices()
    await store.open()
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="not open"):
        await store.save_registrations([reg()])


async def test_a_locked_database_fails_the_batch_and_the_store_recovers(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    async with SqliteStore(path, busy_timeout=0.1) as store:
        other = raw(path)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(StoreError, match="locked"):
            await store.save_registrations([reg()])
        other.execute("ROLLBACK")
        other.close()
        await store.save_registrations([reg()])
        assert (await store.get_device(A)).status == ONLINE


async def test_disk_full_rolls_the_whole_batch_back(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "full.db") as store:
        await store.save_registrations([reg()])
        pages = (await store._db.execute_fetchall("PRAGMA page_count"))[0][0]
        await store._db.execute(f"PRAGMA max_page_count = {pages + 2}")  # the disk fills up
        batch = [reg(f"340200000013201{i:05d}") for i in range(3000)]
        with pytest.raises(StoreError, match="disk full"):
            await store.save_registrations(batch)
        assert [d.id for d in await store.list_devices()] == [A], "nothing of the failed batch is kept"
        assert await store.integrity_check() == "ok"
        await store._db.execute("PRAGMA max_page_count = 1073741823")
        await store.save_registrations(batch)
        assert len(await store.list_devices()) == 3001


def test_store_error_messages_name_the_cause(tmp_path: Path) -> None:
    db = raw(tmp_path / "e.db")
    try:
        db.execute("SELECT * FROM nowhere")
    except sqlite3.Error as e:
        err = store_error(e, "list_devices", "e.db")
    assert str(err) == "list_devices on e.db: no such table: nowhere"


async def test_one_transaction_per_batch(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "t.db") as store:
        statements: list[str] = []
        await store._db.set_trace_callback(statements.append)
        await store.save_registrations([reg(f"340200000013201{i:05d}") for i in range(500)])
        assert [s for s in statements if not s.startswith("INSERT")] == ["BEGIN IMMEDIATE", "COMMIT"]
        assert len(statements) == 502


def non_query(statements: list[str]) -> list[str]:
    return [s for s in statements if s.split()[0] not in ("INSERT", "UPDATE", "DELETE", "SELECT")]


async def test_one_transaction_per_channel_call(tmp_path: Path) -> None:
    nvr = "34020000001110000001"
    ids = [f"340200000013100{i:05d}" for i in range(300)]
    async with SqliteStore(tmp_path / "ct.db") as store:
        await store.put_device(Device(id=nvr))
        statements: list[str] = []
        await store._db.set_trace_callback(statements.append)

        await store.apply_catalog(nvr, [Channel(device_id=nvr, id=i, kind="video") for i in ids], [])
        assert non_query(statements) == ["BEGIN IMMEDIATE", "COMMIT"]
        assert sum(s.startswith("INSERT") for s in statements) == 300
        statements.clear()
        await store.apply_catalog(nvr, [Channel(device_id=nvr, id=i, name="x") for i in ids[:100]], ids[200:])
        assert non_query(statements) == ["BEGIN IMMEDIATE", "COMMIT"]
        assert (sum(s.startswith("INSERT") for s in statements), sum(s.startswith("DELETE") for s in statements)) == (
            100,
            100,
        )
        statements.clear()
        await store.set_channel_status([(nvr, i, ONLINE) for i in ids[:150]])
        assert non_query(statements) == ["BEGIN IMMEDIATE", "COMMIT"]
        assert sum(s.startswith("UPDATE") for s in statements) == 150
        statements.clear()
        await store.set_channel_overrides(nvr, ids[0], override_name="东门", override_point_class=1)
        assert non_query(statements) == ["BEGIN IMMEDIATE", "COMMIT"]
        statements.clear()
        with pytest.raises(KeyError):
            await store.apply_catalog("34020000001110000009", [], ids[:1])
        assert non_query(statements) == ["BEGIN IMMEDIATE", "ROLLBACK"]
        statements.clear()
        assert await store.remove_device(nvr)
        assert non_query(statements) == ["BEGIN IMMEDIATE", "COMMIT"]
        await store._db.set_trace_callback(None)
        assert await store.list_channels() == []


async def test_a_failing_catalog_rolls_back_the_whole_change(tmp_path: Path) -> None:
    nvr = "34020000001110000001"
    async with SqliteStore(tmp_path / "rb.db") as store:
        await store.put_device(Device(id=nvr))
        await store.apply_catalog(nvr, [Channel(device_id=nvr, id="a", name="before")], [])
        # a row the database refuses (here: a trigger standing in for a full disk) after others were written
        await store._db.execute(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON channels WHEN NEW.id = 'z' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
        upserts = [Channel(device_id=nvr, id=i, name="after") for i in ("a", "b", "z")]
        with pytest.raises(StoreError, match="refused"):
            await store.apply_catalog(nvr, upserts, [])
        assert [(c.id, c.name) for c in await store.list_channels()] == [("a", "before")]


async def test_removing_a_device_does_not_rely_on_the_foreign_key(tmp_path: Path) -> None:
    nvr = "34020000001110000001"
    async with SqliteStore(tmp_path / "fk.db") as store:
        await store.put_device(Device(id=nvr))
        await store.apply_catalog(nvr, [Channel(device_id=nvr, id="a")], [])
        await store._db.execute("PRAGMA foreign_keys = OFF")  # as on a connection that forgot the pragma
        assert await store.remove_device(nvr)
        with raw(tmp_path / "fk.db") as db:
            assert db.execute("SELECT count(*) FROM channels").fetchone()[0] == 0


async def test_channel_rows_and_indexes(tmp_path: Path) -> None:
    path = tmp_path / "ci.db"
    nvr = "34020000001110000001"
    async with SqliteStore(path) as store:
        await store.put_device(Device(id=nvr))
        channel = Channel(
            device_id=nvr,
            id="34020000001310000001",
            parent_ids=("34020000002160000001", "340200"),
            info={"PointCommonName": "东门广场"},
            status=OFFLINE,
            kind="video",
        )
        await store.apply_catalog(nvr, [channel], [])
        statements: list[str] = []
        await store._db.set_trace_callback(statements.append)
        await store.list_channels(civil_code_prefix="3402")
        await store.list_channels(device_id=nvr, status=ONLINE)
        await store._db.set_trace_callback(None)
    with raw(path) as db:
        row = db.execute("SELECT parent_ids, info, json_extract(info, '$.PointCommonName') FROM channels").fetchone()
        assert row == ('["34020000002160000001","340200"]', '{"PointCommonName":"东门广场"}', "东门广场")
        by_civil_code, by_device_status = (s for s in statements if s.startswith("SELECT"))
        plan = " ".join(str(r[-1]) for r in db.execute("EXPLAIN QUERY PLAN " + by_civil_code))
        assert "channels_civil_code" in plan
        plan = " ".join(str(r[-1]) for r in db.execute("EXPLAIN QUERY PLAN " + by_device_status))
        assert "channels_device_status" in plan


async def test_event_rows_are_compact_and_indexed(tmp_path: Path) -> None:
    path = tmp_path / "ev.db"
    async with SqliteStore(path) as store:
        await store.append_events([StatusEvent(at=1700000000.25, subject=A, event="keepalive-timeout")])
    with raw(path) as db:
        row = db.execute("SELECT typeof(ts), ts, typeof(code), code, kind FROM events").fetchone()
        assert row == ("integer", 1700000000250, "integer", 4, 0)
        plan = " ".join(
            str(r[-1])
            for r in db.execute("EXPLAIN QUERY PLAN SELECT * FROM events WHERE subject = ? AND ts >= ?", (A, 0))
        )
        assert "events_subject_ts" in plan
        plan = " ".join(str(r[-1]) for r in db.execute("EXPLAIN QUERY PLAN SELECT * FROM events WHERE ts >= 0"))
        assert "events_ts" in plan


# durability


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
async def test_acknowledged_registrations_survive_kill_9(tmp_path: Path, synchronous: str) -> None:
    """The child prints a device ID only after its registration was committed; SIGKILL it mid-stream, three
    times on the same file, and every printed ID must be there with an intact database."""
    path = tmp_path / "crash.db"
    rng = random.Random(28181)
    acknowledged: list[str] = []
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.registry.crash_child", str(path), str(round_ * 1_000_000), synchronous],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        watchdog = threading.Timer(15.0, proc.kill)
        watchdog.start()
        try:
            assert proc.stdout.readline() == "ready\n"
            kill_after = rng.randrange(200, 2000)
            seen = 0
            while seen < kill_after:
                line = proc.stdout.readline()
                assert line, "the child stopped early"
                acknowledged.append(line.strip())
                seen += 1
            os.kill(proc.pid, signal.SIGKILL)
            rest = proc.stdout.read()  # acknowledged before the kill landed
            acknowledged.extend(line for line in rest.split("\n")[:-1])  # a line cut by the kill has no "\n"
        finally:
            watchdog.cancel()
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
    async with SqliteStore(path) as store:
        assert await store.integrity_check() == "ok"
        stored = {d.id for d in await store.list_devices(status=ONLINE)}
    missing = [i for i in acknowledged if i not in stored]
    assert not missing, f"{len(missing)} acknowledged registrations lost, e.g. {missing[:3]}"
    assert len(acknowledged) >= 600
