"""The SQLite RegistryStore (aiosqlite). With registry/migrations.py, the only SQL of the project.

Durability. The connection runs in WAL mode with ``synchronous=FULL`` by default: every COMMIT fsyncs the WAL, so a
registration acknowledged with 200 survives not only kill -9 of the process but also an OS crash or power loss.
``NORMAL`` would also survive kill -9 (a committed transaction is in the OS page cache, and WAL replays it on the
next open), but a power cut can drop the last commits. We pay for FULL because the hot path group-commits (see
registry/batching.py): one fsync (~0.3 ms on the development VM) covers a whole batch of registrations, so it costs
latency for a lone REGISTER, not throughput under load. ``synchronous="NORMAL"`` is a constructor option for disks
whose fsync is slow; losing an acknowledged registration is recoverable (the device's next MESSAGE gets 403 and it
re-registers, DECISIONS.md), which is why it is an acceptable setting, not a corruption risk.

Concurrency. One connection in autocommit mode (``isolation_level=None``), every write an explicit
``BEGIN IMMEDIATE ... COMMIT`` (rolled back on error) serialised by an asyncio lock; ``busy_timeout`` covers other
processes (an admin CLI, a backup). Every batch method is ONE transaction with ``executemany``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import operator
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite

from registry.health import WriteHealth
from registry.migrations import MIGRATIONS, Migration, SchemaTooNew, migrate
from registry.models import (
    EVENT_NAMES,
    OFFLINE,
    ONLINE,
    OVERRIDE_FIELDS,
    SUBJECT_KINDS,
    VIDEO,
    Alarm,
    AuditEntry,
    Channel,
    Device,
    Keepalive,
    Position,
    Registration,
    Share,
    StatusEvent,
    check_channel_status,
    checked_alarm,
    checked_audit,
    checked_catalog,
    checked_overrides,
    checked_position,
    checked_shares,
    checked_values,
    event_code,
    kind_code,
    to_millis,
)
from registry.store import BUSY, CORRUPT, FULL, IO, OTHER, StoreError

# Columns of the devices table, in Device field order (tests check they cover every Device field).
DEVICE_COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "manufacturer",
    "model",
    "firmware",
    "transport",
    "address",
    "local_address",
    "contact",
    "user_agent",
    "gb_version",
    "charset",
    "stream_mode",
    "keepalive_interval",
    "keepalive_count",
    "enabled",
    "password",
    "provisioned",
    "registered_at",
    "expires",
    "expires_at",
    "last_keepalive",
    "status",
    "created_at",
)
_BOOL_COLUMNS = frozenset({"enabled", "provisioned"})
_SELECT_DEVICES = f"SELECT {', '.join(DEVICE_COLUMNS)} FROM devices"
# An upsert, not INSERT OR REPLACE: REPLACE deletes the row first, which would cascade to rows that reference it.
_PUT_DEVICE = (
    f"INSERT INTO devices ({', '.join(DEVICE_COLUMNS)}) VALUES ({', '.join('?' * len(DEVICE_COLUMNS))}) "
    f"ON CONFLICT (id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in DEVICE_COLUMNS[1:])}"
)
# A registration (expires > 0) replaces the binding; an unregistration (expires == 0) only clears the expiry and
# takes the device offline. Rows of one executemany apply in order, so later items for a device win.
# registered_at is when the current registration began: a refresh while still registered keeps it. A refresh
# without X-GB-ver keeps the version the device announced before.
_REG_FIELDS = ("transport", "address", "local_address", "contact", "user_agent")
_SAVE_REGISTRATION = (
    "INSERT INTO devices (id, transport, address, local_address, contact, user_agent, gb_version, registered_at, "
    "expires, expires_at, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = CASE WHEN excluded.expires > 0 THEN excluded.{c} ELSE devices.{c} END" for c in _REG_FIELDS)
    + ", gb_version = CASE WHEN excluded.expires > 0 THEN COALESCE(NULLIF(excluded.gb_version, ''), "
    "devices.gb_version) ELSE devices.gb_version END"
    ", registered_at = CASE WHEN excluded.expires > 0 AND (devices.registered_at IS NULL "
    "OR COALESCE(devices.expires_at, 0) <= excluded.registered_at) THEN excluded.registered_at "
    "ELSE devices.registered_at END"
    ", expires = excluded.expires, expires_at = excluded.expires_at, status = excluded.status"
)
_SAVE_KEEPALIVE = (
    "UPDATE devices SET last_keepalive = ?, transport = COALESCE(NULLIF(?, ''), transport), "
    "address = COALESCE(NULLIF(?, ''), address) WHERE id = ?"
)
_SET_STATUS = "UPDATE devices SET status = ? WHERE id = ?"
_APPEND_EVENT = "INSERT INTO events (ts, code, kind, subject, reason) VALUES (?, ?, ?, ?, ?)"

# Columns of the channels table, in Channel field order (tests check they cover every Channel field).
CHANNEL_COLUMNS: tuple[str, ...] = (
    "device_id",
    "id",
    "name",
    "manufacturer",
    "model",
    "owner",
    "civil_code",
    "block",
    "address",
    "parental",
    "parent_ids",
    "business_group_id",
    "safety_way",
    "register_way",
    "cert_num",
    "certifiable",
    "err_code",
    "end_time",
    "secrecy",
    "ip_address",
    "port",
    "status",
    "longitude",
    "latitude",
    "ptz_type",
    "point_class",
    "kind",
    "info",
    "first_seen",
    "updated_at",
    *OVERRIDE_FIELDS,
)
# What a catalog writes: everything but the overrides. On conflict every reported field and updated_at are
# replaced; first_seen and the overrides are kept.
_CATALOG_COLUMNS = tuple(c for c in CHANNEL_COLUMNS if c not in OVERRIDE_FIELDS)
_UPSERT_CHANNEL = (
    f"INSERT INTO channels ({', '.join(_CATALOG_COLUMNS)}) VALUES ({', '.join('?' * len(_CATALOG_COLUMNS))}) "
    "ON CONFLICT (device_id, id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _CATALOG_COLUMNS if c not in ("device_id", "id", "first_seen"))
)
_SELECT_CHANNELS = f"SELECT {', '.join(CHANNEL_COLUMNS)} FROM channels"
_CATALOG_CHUNK = 2000  # rows per executemany in apply_catalog
_SHOWN_CIVIL_CODE = "COALESCE(override_civil_code, civil_code)"  # the expression of the channels_civil_code index
_SET_CHANNEL_STATUS = "UPDATE channels SET status = ? WHERE device_id = ? AND id = ?"
_REMOVE_CHANNEL = "DELETE FROM channels WHERE device_id = ? AND id = ?"

# Alarms and positions (migration 3), in Alarm / Position field order.
ALARM_COLUMNS: tuple[str, ...] = (
    "device_id", "source_id", "received_at", "priority", "method", "alarm_type", "event_type", "alarm_time",
    "description", "longitude", "latitude", "via", "sn", "acked_at", "acked_by", "reset_at", "reset_by",
)  # fmt: skip
_ADD_ALARM = f"INSERT INTO alarms ({', '.join(ALARM_COLUMNS)}) VALUES ({', '.join('?' * len(ALARM_COLUMNS))})"
_SELECT_ALARMS = f"SELECT id, {', '.join(ALARM_COLUMNS)} FROM alarms"
POSITION_COLUMNS: tuple[str, ...] = (
    "device_id", "target_id", "received_at", "time", "longitude", "latitude", "speed", "direction", "altitude",
    "height",
)  # fmt: skip
_SAVE_POSITION = (
    f"INSERT INTO positions ({', '.join(POSITION_COLUMNS)}) VALUES ({', '.join('?' * len(POSITION_COLUMNS))}) "
    "ON CONFLICT (device_id, target_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in POSITION_COLUMNS[2:])
)
_SELECT_SHARES = "SELECT upstream_id, item, as_id, as_name, created_at FROM upstream_shares"

AUDIT_COLUMNS: tuple[str, ...] = ("at", "who", "role", "action", "target", "detail", "status", "remote")
_ADD_AUDIT = f"INSERT INTO audit ({', '.join(AUDIT_COLUMNS)}) VALUES ({', '.join('?' * len(AUDIT_COLUMNS))})"

_SYNC_MODES = ("NORMAL", "FULL", "EXTRA")
_SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}

# Primary SQLite result codes (https://sqlite.org/rescode.html) -> what an operator should read.
_WHAT = {
    3: "permission denied",
    5: "database is locked by another connection or process (busy_timeout elapsed)",
    6: "database table is locked",
    8: "database is read-only",
    10: "disk I/O error",
    11: "database file is corrupt",
    13: "disk full (or the database size limit was reached)",
    14: "cannot open the database file",
    26: "file is not a SQLite database",
}


# Primary result codes -> StoreError kinds (registry/store.py).
_KIND = {13: FULL, 5: BUSY, 6: BUSY, 3: IO, 8: IO, 10: IO, 14: IO, 11: CORRUPT, 26: CORRUPT}


def store_error(exc: BaseException, op: str, path: str) -> StoreError:
    """A StoreError naming the operation, the file and the cause of a sqlite3 error, with its kind."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    what = _WHAT.get(primary) if primary is not None else None
    detail = f"{what} ({exc})" if what else str(exc)
    kind = _KIND.get(primary, OTHER) if primary is not None else OTHER
    if kind == OTHER and "database is locked" in str(exc):  # raised by the sqlite3 module without a code
        kind = BUSY
    return StoreError(f"{op} on {path}: {detail}", kind)


def _device_row(d: Device) -> tuple[Any, ...]:
    return tuple(int(getattr(d, c)) if c in _BOOL_COLUMNS else getattr(d, c) for c in DEVICE_COLUMNS)


def _device(row: Sequence[Any]) -> Device:
    values = dict(zip(DEVICE_COLUMNS, row, strict=True))
    for c in _BOOL_COLUMNS:
        values[c] = bool(values[c])
    return Device(**values)


def _registration_row(r: Registration) -> tuple[Any, ...]:
    on = r.expires > 0
    return (
        r.device_id,
        r.transport,
        r.address,
        r.local_address,
        r.contact,
        r.user_agent,
        r.gb_version,
        r.at if on else None,
        r.expires if on else 0,
        r.at + r.expires if on else None,
        ONLINE if on else OFFLINE,
        r.at,
    )


def _event(row: Sequence[Any]) -> StatusEvent:
    id_, ts, code, kind, subject, reason = row
    return StatusEvent(
        at=ts / 1000,
        subject=subject,
        event=EVENT_NAMES.get(code, f"unknown-{code}"),
        kind=SUBJECT_KINDS[kind] if 0 <= kind < len(SUBJECT_KINDS) else f"unknown-{kind}",
        reason=reason,
        id=id_,
    )


# One encoder for every row (json.dumps with options builds a new one per call); same text as
# json.dumps(value, ensure_ascii=False, separators=(",", ":")).
_to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_catalog_values = operator.attrgetter(*_CATALOG_COLUMNS)
_PARENT_IDS_AT, _INFO_AT = _CATALOG_COLUMNS.index("parent_ids"), _CATALOG_COLUMNS.index("info")
_LONGITUDE_AT, _LATITUDE_AT = _CATALOG_COLUMNS.index("longitude"), _CATALOG_COLUMNS.index("latitude")
_POINT_CLASS_AT, _FIRST_SEEN_AT = _CATALOG_COLUMNS.index("point_class"), _CATALOG_COLUMNS.index("first_seen")


def _channel_row(c: Channel) -> list[Any]:
    """The values of ``_UPSERT_CHANNEL`` for one reported channel, validated as ``checked_channel`` validates it
    (ValueError), in _CATALOG_COLUMNS order (JSON for the JSON columns): the row is made straight from the
    caller's channel, without the checked copy in between."""
    ids, info, longitude, latitude, point_class, first_seen = checked_values(c)
    row = list(_catalog_values(c))
    # IDs are digits: letters and digits need no JSON escaping, so the text is built directly
    row[_PARENT_IDS_AT] = '["' + '","'.join(ids) + '"]' if ids and "".join(ids).isalnum() else _to_json(list(ids))
    row[_INFO_AT] = _to_json(info) if info else "{}"
    row[_LONGITUDE_AT], row[_LATITUDE_AT], row[_POINT_CLASS_AT] = longitude, latitude, point_class
    row[_FIRST_SEEN_AT] = first_seen
    return row


def _channel(row: Sequence[Any]) -> Channel:
    values = dict(zip(CHANNEL_COLUMNS, row, strict=True))
    values["parent_ids"] = tuple(json.loads(values["parent_ids"]))
    values["info"] = json.loads(values["info"])
    return Channel(**values)


def _alarm(row: Sequence[Any]) -> Alarm:
    return Alarm(**dict(zip(ALARM_COLUMNS, row[1:], strict=True)), id=row[0])


def _prefix_upper(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix`` (None when there is none), so that a
    prefix match is a range ``prefix <= x < upper`` an index serves (BINARY collation orders by code point)."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            return prefix[:-1] + chr(last + 1 if last + 1 != 0xD800 else 0xE000)
        prefix = prefix[:-1]
    return None


def _check_status(changes: Sequence[tuple[str, str]]) -> None:
    for device_id, status in changes:
        if status not in (ONLINE, OFFLINE):
            raise ValueError(f"status of {device_id} must be {ONLINE!r} or {OFFLINE!r}, not {status!r}")


def _probe(path: str) -> None:
    sqlite3.connect(path).close()


def backup(source: str | os.PathLike[str], target: str | os.PathLike[str], *, pages: int = 1024) -> dict[str, Any]:
    """A consistent copy of a registry database, taken while a server may be writing to it (SQLite's online backup
    API, in steps of ``pages`` so the writer is not held up), then checked with ``PRAGMA integrity_check``.
    Refuses to overwrite ``target``; StoreError names what failed. Returns the copy's schema version, pages and
    size."""
    src_path, dst_path = os.fspath(source), os.fspath(target)
    if not os.path.exists(src_path):
        raise StoreError(f"backup of {src_path}: no such database")
    if os.path.exists(dst_path):
        raise StoreError(f"backup to {dst_path}: the file exists (choose a new name)")
    try:
        src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True, timeout=5.0)
        try:
            dst = sqlite3.connect(dst_path)
            try:
                src.backup(dst, pages=pages)
                check = dst.execute("PRAGMA integrity_check").fetchone()[0]
                version = dst.execute("PRAGMA user_version").fetchone()[0]
                page_count = dst.execute("PRAGMA page_count").fetchone()[0]
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        with contextlib.suppress(OSError):
            os.remove(dst_path)
        raise store_error(exc, "backup", src_path) from exc
    if check != "ok":
        raise StoreError(f"backup to {dst_path}: the copy fails integrity_check ({check})")
    return {"path": dst_path, "schema_version": version, "pages": page_count, "bytes": os.path.getsize(dst_path)}


class SqliteStore:
    """RegistryStore on one SQLite file. ``open()`` before use (or ``async with``); ``close()`` after."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 5.0,
        migrations: Sequence[Migration] = MIGRATIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if synchronous.upper() not in _SYNC_MODES:
            raise ValueError(f"synchronous must be one of {_SYNC_MODES}, not {synchronous!r}")
        self.path = os.fspath(path)
        self.synchronous = synchronous.upper()
        self.busy_timeout = busy_timeout
        self._migrations = tuple(migrations)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._clock = clock
        self.health = WriteHealth()  # storage errors of writes, by episode (logged once each)

    async def __aenter__(self) -> SqliteStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self._db is not None:
            return
        try:
            # Probe first: when aiosqlite's own connect fails, its worker thread may report to an event loop
            # that is already gone. A file that cannot be opened is caught here, before that thread exists.
            await asyncio.to_thread(_probe, self.path)
            db = await aiosqlite.connect(self.path, isolation_level=None, timeout=self.busy_timeout)
        except sqlite3.Error as e:
            raise store_error(e, "open", self.path) from e
        try:
            # journal_mode is persistent and cannot change inside a transaction; it is also the first read of
            # the file, so a file that is not a database fails here.
            rows = await db.execute_fetchall("PRAGMA journal_mode = WAL")
            mode = str(next(iter(rows))[0]).lower()
            if mode != "wal" and self.path != ":memory:":
                raise StoreError(f"open on {self.path}: cannot switch to WAL journal mode (got {mode!r})")
            await db.execute(f"PRAGMA synchronous = {self.synchronous}")
            await db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            await db.execute("PRAGMA foreign_keys = ON")
            await migrate(db, self._migrations)
        except BaseException as e:
            await db.close()
            if isinstance(e, sqlite3.Error):
                raise store_error(e, "open", self.path) from e
            if isinstance(e, SchemaTooNew):
                raise StoreError(f"open on {self.path}: {e}") from e
            raise
        self._db = db

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is None:
            return
        async with self._lock:
            try:
                await db.close()
            except sqlite3.Error as e:
                raise store_error(e, "close", self.path) from e

    # plumbing
    def _conn(self, op: str) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError(f"{op} on {self.path}: the store is not open")
        return self._db

    @asynccontextmanager
    async def _read(self, op: str) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            db = self._conn(op)
            try:
                yield db
            except sqlite3.Error as e:
                raise store_error(e, op, self.path) from e

    @asynccontextmanager
    async def _write(self, op: str) -> AsyncIterator[aiosqlite.Connection]:
        """One explicit transaction: BEGIN IMMEDIATE (takes the write lock now, honouring busy_timeout, rather
        than failing at the first write), COMMIT on success, ROLLBACK on any error."""
        async with self._lock:
            db = self._conn(op)
            try:
                await db.execute("BEGIN IMMEDIATE")
                yield db
                await db.execute("COMMIT")
            except BaseException as e:
                # Always, even when SQLite reports no open transaction: after a cancellation, statements whose
                # futures were cancelled (BEGIN included) still run in aiosqlite's worker thread, in order, before
                # this ROLLBACK; checking ``in_transaction`` first would leave the connection inside a transaction
                # and make every later write fail ("cannot start a transaction within a transaction").
                try:
                    await db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # no transaction left (SQLite rolled back itself: disk full, I/O error); report the cause
                if isinstance(e, sqlite3.Error):
                    raise self._write_failed(e, op) from e
                raise
            self._write_succeeded(op)

    async def _write_rows(self, op: str, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """``_write`` of one ``executemany`` in a single trip to aiosqlite's thread (BEGIN IMMEDIATE, the rows,
        COMMIT, or ROLLBACK on error, run there as one function): the hot batches (registrations, keepalives,
        statuses, events) would otherwise take three trips, each waking both threads, which at a few hundred small
        group commits a second cost the event loop more than the SQL. A cancelled caller leaves the transaction to
        finish or roll back whole in the thread."""
        async with self._lock:
            db = self._conn(op)
            try:
                await db._execute(_transaction, db._conn, sql, rows)  # aiosqlite: one function, one trip
            except sqlite3.Error as e:
                raise self._write_failed(e, op) from e
            self._write_succeeded(op)

    def _write_failed(self, e: sqlite3.Error, op: str) -> StoreError:
        """The typed error of a failed write, recorded in the write health (one log line per episode)."""
        error = store_error(e, op, self.path)
        self.health.failed(error, self._clock(), op)
        return error

    def _write_succeeded(self, op: str) -> None:
        if not self.health.ok:
            self.health.succeeded(self._clock(), op)

    async def limit_pages(self, pages: int) -> int:
        """Cap the database at ``pages`` pages on this connection (``PRAGMA max_page_count``): a write that would
        grow the file past it fails with SQLITE_FULL exactly as on a full disk. SQLite never sets it below the
        current size; returns the limit in force. Used to reproduce a full disk without root (tests, drills)."""
        async with self._read("limit_pages") as db:
            rows = list(await db.execute_fetchall(f"PRAGMA max_page_count = {int(pages)}"))
        return int(rows[0][0])

    # devices
    async def get_device(self, device_id: str) -> Device | None:
        async with self._read("get_device") as db:
            rows = list(await db.execute_fetchall(_SELECT_DEVICES + " WHERE id = ?", (device_id,)))
        return _device(rows[0]) if rows else None

    async def list_devices(self, *, status: str | None = None) -> list[Device]:
        async with self._read("list_devices") as db:
            if status is None:
                rows = await db.execute_fetchall(_SELECT_DEVICES + " ORDER BY id")
            else:
                rows = await db.execute_fetchall(_SELECT_DEVICES + " WHERE status = ? ORDER BY id", (status,))
        return [_device(r) for r in rows]

    async def put_device(self, device: Device) -> None:
        row = _device_row(device)
        async with self._write("put_device") as db:
            await db.execute(_PUT_DEVICE, row)

    async def remove_device(self, device_id: str) -> bool:
        async with self._write("remove_device") as db:
            # explicit, not only the foreign key's cascade: that needs PRAGMA foreign_keys on every connection
            await db.execute("DELETE FROM channels WHERE device_id = ?", (device_id,))
            cursor = await db.execute("DELETE FROM devices WHERE id = ?", (device_id,))
            return cursor.rowcount > 0

    # hot path: one transaction per batch
    async def save_registrations(self, registrations: Sequence[Registration]) -> None:
        rows = [_registration_row(r) for r in registrations]
        if not rows:
            return
        await self._write_rows("save_registrations", _SAVE_REGISTRATION, rows)

    async def save_keepalives(self, keepalives: Sequence[Keepalive]) -> None:
        rows = [(k.at, k.transport, k.address, k.device_id) for k in keepalives]
        if not rows:
            return
        await self._write_rows("save_keepalives", _SAVE_KEEPALIVE, rows)

    async def set_status(self, changes: Sequence[tuple[str, str]]) -> None:
        _check_status(changes)
        rows = [(status, device_id) for device_id, status in changes]
        if not rows:
            return
        await self._write_rows("set_status", _SET_STATUS, rows)

    # the status event log
    async def append_events(self, events: Sequence[StatusEvent]) -> None:
        rows = [(to_millis(e.at), event_code(e.event), kind_code(e.kind), e.subject, e.reason) for e in events]
        if not rows:
            return
        await self._write_rows("append_events", _APPEND_EVENT, rows)

    async def list_events(
        self,
        *,
        subject: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[StatusEvent]:
        if limit <= 0:
            return []
        where: list[str] = []
        args: list[Any] = []
        if subject is not None:
            where.append("subject = ?")
            args.append(subject)
        if since is not None:
            where.append("ts >= ?")
            args.append(to_millis(since))
        if until is not None:
            where.append("ts < ?")
            args.append(to_millis(until))
        sql = "SELECT id, ts, code, kind, subject, reason FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts DESC, id DESC LIMIT ?"
        args.append(limit)
        async with self._read("list_events") as db:
            rows = list(await db.execute_fetchall(sql, args))
        rows.reverse()
        return [_event(r) for r in rows]

    async def last_events(self, *, before: float, events: Sequence[str]) -> list[StatusEvent]:
        codes = sorted({event_code(name) for name in events})
        if not codes:
            return []
        # Index seeks on events_subject_ts, not a scan of the whole log: the subjects are walked one by one
        # (a skip-scan written as a recursive CTE), and for each the newest wanted row before ``before`` is read
        # backwards from the index (its entries are ordered by subject, ts, rowid).
        sql = (
            "WITH RECURSIVE s(subject) AS (SELECT min(subject) FROM events UNION ALL "
            "SELECT (SELECT min(subject) FROM events WHERE subject > s.subject) FROM s WHERE s.subject IS NOT NULL) "
            "SELECT e.id, e.ts, e.code, e.kind, e.subject, e.reason FROM s JOIN events e ON e.id = ("
            "SELECT id FROM events WHERE subject = s.subject AND ts < ? "
            f"AND code IN ({', '.join('?' * len(codes))}) ORDER BY ts DESC, id DESC LIMIT 1) ORDER BY e.subject"
        )
        async with self._read("last_events") as db:
            rows = await db.execute_fetchall(sql, (to_millis(before), *codes))
        return [_event(r) for r in rows]

    # channels
    async def channel_ids(self, device_id: str) -> set[str]:
        async with self._read("channel_ids") as db:
            rows = await db.execute_fetchall("SELECT id FROM channels WHERE device_id = ?", (device_id,))
        return {r[0] for r in rows}

    async def list_channels(
        self,
        *,
        device_id: str | None = None,
        status: str | None = None,
        civil_code_prefix: str | None = None,
    ) -> list[Channel]:
        where: list[str] = []
        args: list[Any] = []
        if device_id is not None:
            where.append("device_id = ?")
            args.append(device_id)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if civil_code_prefix:
            where.append(f"{_SHOWN_CIVIL_CODE} >= ?")
            args.append(civil_code_prefix)
            upper = _prefix_upper(civil_code_prefix)
            if upper is not None:
                where.append(f"{_SHOWN_CIVIL_CODE} < ?")
                args.append(upper)
        sql = _SELECT_CHANNELS
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY device_id, id"
        async with self._read("list_channels") as db:
            rows = await db.execute_fetchall(sql, args)
        return [_channel(r) for r in rows]

    async def get_channel(self, device_id: str, channel_id: str) -> Channel | None:
        async with self._read("get_channel") as db:
            rows = list(
                await db.execute_fetchall(_SELECT_CHANNELS + " WHERE device_id = ? AND id = ?", (device_id, channel_id))
            )
        return _channel(rows[0]) if rows else None

    async def apply_catalog(self, device_id: str, upserts: Iterable[Channel], removes: Sequence[str]) -> None:
        """One transaction. ``upserts`` is read once, in chunks of ``_CATALOG_CHUNK`` channels, each validated and
        made rows while SQLite's thread writes the one before (the sqlite3 module releases the GIL while SQLite
        works), so the two overlap on two cores; a generator that makes the channels (the platform's catalog
        commit) is thus consumed alongside the writes. A bad channel in any chunk raises ValueError and rolls back
        the whole change: nothing is written."""
        upserts = iter(upserts)

        def next_rows() -> list[list[Any]]:
            return checked_catalog(device_id, list(itertools.islice(upserts, _CATALOG_CHUNK)), removes, _channel_row)

        rows = next_rows()
        gone = [(device_id, channel_id) for channel_id in removes]
        async with self._write("apply_catalog") as db:
            found = await db.execute_fetchall("SELECT 1 FROM devices WHERE id = ?", (device_id,))
            if not list(found):
                raise KeyError(device_id)
            while rows:
                writing = asyncio.ensure_future(db.executemany(_UPSERT_CHANNEL, rows))
                try:
                    await asyncio.sleep(0)  # let it reach SQLite's thread before this one makes the next chunk
                    rows = next_rows()
                finally:
                    await writing  # also on an error or a cancellation: its outcome is never left unread
            if gone:
                await db.executemany(_REMOVE_CHANNEL, gone)

    async def set_channel_status(self, changes: Sequence[tuple[str, str, str]]) -> None:
        check_channel_status(changes)
        rows = [(status, device_id, channel_id) for device_id, channel_id, status in changes]
        if not rows:
            return
        async with self._write("set_channel_status") as db:
            await db.executemany(_SET_CHANNEL_STATUS, rows)

    async def set_channel_overrides(self, device_id: str, channel_id: str, **overrides: object) -> Channel:
        values = checked_overrides(overrides)
        key = (device_id, channel_id)
        async with self._write("set_channel_overrides") as db:
            if values:
                sets = ", ".join(f"{name} = ?" for name in values)  # names checked against OVERRIDE_FIELDS
                await db.execute(f"UPDATE channels SET {sets} WHERE device_id = ? AND id = ?", (*values.values(), *key))
            rows = list(await db.execute_fetchall(_SELECT_CHANNELS + " WHERE device_id = ? AND id = ?", key))
            if not rows:
                raise KeyError(key)
        return _channel(rows[0])

    async def find_channels(self, channel_id: str) -> list[Channel]:
        async with self._read("find_channels") as db:
            rows = await db.execute_fetchall(_SELECT_CHANNELS + " WHERE id = ? ORDER BY device_id", (channel_id,))
        return [_channel(r) for r in rows]

    async def set_channel_overrides_many(self, changes: Sequence[tuple[str, str, dict[str, object]]]) -> None:
        checked = [(device_id, channel_id, checked_overrides(values)) for device_id, channel_id, values in changes]
        async with self._write("set_channel_overrides_many") as db:
            for device_id, channel_id, values in checked:
                key = (device_id, channel_id)
                if values:
                    sets = ", ".join(f"{name} = ?" for name in values)  # names checked against OVERRIDE_FIELDS
                    cursor = await db.execute(
                        f"UPDATE channels SET {sets} WHERE device_id = ? AND id = ?", (*values.values(), *key)
                    )
                    found = cursor.rowcount > 0
                else:
                    rows = await db.execute_fetchall("SELECT 1 FROM channels WHERE device_id = ? AND id = ?", key)
                    found = bool(list(rows))
                if not found:
                    raise KeyError(key)  # rolls the whole import back

    async def count_channels(self, device_id: str) -> int:
        async with self._read("count_channels") as db:
            rows = await db.execute_fetchall("SELECT count(*) FROM channels WHERE device_id = ?", (device_id,))
        return int(next(iter(rows))[0])

    async def count_video_channels(self, device_id: str) -> int:
        async with self._read("count_video_channels") as db:
            rows = await db.execute_fetchall(
                "SELECT count(*) FROM channels WHERE device_id = ? AND kind = ?", (device_id, VIDEO)
            )
        return int(next(iter(rows))[0])

    # alarms and positions (separate from the channel code on purpose: other work tunes that part)
    async def add_alarms(self, alarms: Sequence[Alarm]) -> list[int]:
        rows = [tuple(getattr(a, c) for c in ALARM_COLUMNS) for a in (checked_alarm(a) for a in alarms)]
        ids: list[int] = []
        if not rows:
            return ids
        async with self._write("add_alarms") as db:
            for row in rows:  # one transaction; each insert reports its rowid
                cursor = await db.execute(_ADD_ALARM, row)
                ids.append(int(cursor.lastrowid or 0))
        return ids

    async def list_alarms(
        self, *, device_id: str | None = None, since: float | None = None, limit: int = 1000
    ) -> list[Alarm]:
        if limit <= 0:
            return []
        where: list[str] = []
        args: list[Any] = []
        if device_id is not None:
            where.append("(device_id = ? OR source_id = ?)")
            args += [device_id, device_id]
        if since is not None:
            where.append("received_at >= ?")
            args.append(since)
        sql = _SELECT_ALARMS + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY received_at DESC, id DESC LIMIT ?"
        args.append(limit)
        async with self._read("list_alarms") as db:
            rows = list(await db.execute_fetchall(sql, args))
        rows.reverse()
        return [_alarm(r) for r in rows]

    async def get_alarm(self, alarm_id: int) -> Alarm | None:
        async with self._read("get_alarm") as db:
            rows = list(await db.execute_fetchall(_SELECT_ALARMS + " WHERE id = ?", (alarm_id,)))
        return _alarm(rows[0]) if rows else None

    async def ack_alarm(self, alarm_id: int, by: str, at: float) -> Alarm:
        async with self._write("ack_alarm") as db:
            await db.execute(
                "UPDATE alarms SET acked_at = ?, acked_by = ? WHERE id = ? AND acked_at IS NULL", (at, by, alarm_id)
            )
            rows = list(await db.execute_fetchall(_SELECT_ALARMS + " WHERE id = ?", (alarm_id,)))
            if not rows:
                raise KeyError(alarm_id)
        return _alarm(rows[0])

    async def mark_alarms_reset(self, device_id: str, by: str, at: float, alarm_type: int | None = None) -> int:
        sql = "UPDATE alarms SET reset_at = ?, reset_by = ? WHERE device_id = ? AND reset_at IS NULL"
        args: list[Any] = [at, by, device_id]
        if alarm_type is not None:
            sql += " AND alarm_type = ?"
            args.append(alarm_type)
        async with self._write("mark_alarms_reset") as db:
            cursor = await db.execute(sql, args)
            return cursor.rowcount

    async def save_positions(self, positions: Sequence[Position]) -> None:
        rows = [tuple(getattr(p, c) for c in POSITION_COLUMNS) for p in (checked_position(p) for p in positions)]
        if not rows:
            return
        async with self._write("save_positions") as db:
            await db.executemany(_SAVE_POSITION, rows)

    async def list_positions(self, *, device_id: str | None = None) -> list[Position]:
        sql = f"SELECT {', '.join(POSITION_COLUMNS)} FROM positions"
        args: tuple[Any, ...] = ()
        if device_id is not None:
            sql += " WHERE device_id = ?"
            args = (device_id,)
        async with self._read("list_positions") as db:
            rows = await db.execute_fetchall(sql + " ORDER BY device_id, target_id", args)
        return [Position(**dict(zip(POSITION_COLUMNS, r, strict=True))) for r in rows]
    # shares
    async def list_shares(self, upstream_id: str | None = None) -> list[Share]:
        where, args = (" WHERE upstream_id = ?", (upstream_id,)) if upstream_id is not None else ("", ())
        async with self._read("list_shares") as db:
            rows = await db.execute_fetchall(_SELECT_SHARES + where + " ORDER BY upstream_id, item", args)
        return [Share(*row) for row in rows]

    async def put_shares(self, shares: Sequence[Share]) -> None:
        async with self._write("put_shares") as db:
            existing = [Share(*row) for row in await db.execute_fetchall(_SELECT_SHARES)]
            checked = checked_shares(existing, shares)
            await db.executemany(
                "INSERT INTO upstream_shares (upstream_id, item, as_id, as_name, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (upstream_id, item) DO UPDATE SET as_id = excluded.as_id, as_name = excluded.as_name",
                [(s.upstream_id, s.item, s.as_id, s.as_name, s.created_at) for s in checked],
            )

    async def remove_shares(self, upstream_id: str, items: Sequence[str]) -> int:
        async with self._write("remove_shares") as db:
            removed = 0
            for item in dict.fromkeys(items):
                cursor = await db.execute(
                    "DELETE FROM upstream_shares WHERE upstream_id = ? AND item = ?", (upstream_id, item)
                )
                removed += cursor.rowcount
        return removed

    # audit log (issue 9)
    async def append_audit(self, entry: AuditEntry) -> int:
        e = checked_audit(entry)
        row = tuple(getattr(e, c) for c in AUDIT_COLUMNS)
        async with self._write("append_audit") as db:
            cursor = await db.execute(_ADD_AUDIT, row)
            return int(cursor.lastrowid or 0)

    async def list_audit(self, *, since: float | None = None, limit: int = 1000) -> list[AuditEntry]:
        if limit <= 0:
            return []
        sql = f"SELECT id, {', '.join(AUDIT_COLUMNS)} FROM audit"
        args: list[Any] = []
        if since is not None:
            sql += " WHERE at >= ?"
            args.append(since)
        async with self._read("list_audit") as db:
            rows = list(await db.execute_fetchall(sql + " ORDER BY at DESC, id DESC LIMIT ?", [*args, limit]))
        rows.reverse()
        return [AuditEntry(**dict(zip(AUDIT_COLUMNS, r[1:], strict=True)), id=r[0]) for r in rows]

    # operations
    async def integrity_check(self) -> str:
        """The result of ``PRAGMA integrity_check``: "ok", or the problems found, one per line."""
        async with self._read("integrity_check") as db:
            rows = await db.execute_fetchall("PRAGMA integrity_check")
        return "\n".join(str(r[0]) for r in rows)

    async def pragmas(self) -> dict[str, Any]:
        """The connection's settings, for diagnostics: journal_mode, synchronous, busy_timeout (ms),
        foreign_keys, user_version (the schema version)."""
        out: dict[str, Any] = {}
        async with self._read("pragmas") as db:
            for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys", "user_version"):
                rows = await db.execute_fetchall(f"PRAGMA {name}")
                out[name] = next(iter(rows))[0]
        out["synchronous"] = _SYNC_NAMES.get(out["synchronous"], out["synchronous"])
        return out


def _transaction(conn: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """In aiosqlite's thread: one explicit transaction of ``rows`` (``SqliteStore._write_rows``)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
    except BaseException:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite rolled back itself (disk full, I/O error): the caller reports the cause
        raise
