"""Versioned schema of the SQLite store.

The schema version lives in ``PRAGMA user_version``. ``MIGRATIONS`` is append-only: step N takes a database at
version N-1 to N, and a released step is never edited (write a new one). ``migrate`` applies every pending step
in order inside ONE ``BEGIN IMMEDIATE`` transaction (the version is re-read under the write lock, so two processes
opening the same file cannot both migrate it), and refuses a database written by newer code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "devices and the status event log",
        (
            """
            CREATE TABLE devices (
                id                 TEXT PRIMARY KEY NOT NULL,
                name               TEXT NOT NULL DEFAULT '',
                manufacturer       TEXT NOT NULL DEFAULT '',
                model              TEXT NOT NULL DEFAULT '',
                firmware           TEXT NOT NULL DEFAULT '',
                transport          TEXT NOT NULL DEFAULT '',
                address            TEXT NOT NULL DEFAULT '',
                local_address      TEXT NOT NULL DEFAULT '',
                contact            TEXT NOT NULL DEFAULT '',
                user_agent         TEXT NOT NULL DEFAULT '',
                gb_version         TEXT NOT NULL DEFAULT '',
                charset            TEXT NOT NULL DEFAULT 'GB2312',
                stream_mode        TEXT NOT NULL DEFAULT 'udp',
                keepalive_interval INTEGER,
                keepalive_count    INTEGER,
                enabled            INTEGER NOT NULL DEFAULT 1,
                password           TEXT,
                provisioned        INTEGER NOT NULL DEFAULT 0,
                registered_at      REAL,
                expires            INTEGER NOT NULL DEFAULT 0,
                expires_at         REAL,
                last_keepalive     REAL,
                status             TEXT NOT NULL DEFAULT 'offline',
                created_at         REAL NOT NULL DEFAULT 0
            )
            """,
            # Append-only status event log, shaped for online-rate reports: one compact row per transition.
            # ts: wall-clock milliseconds (INTEGER, varint-encoded); code: registry.models.EVENT_CODES;
            # kind: index in SUBJECT_KINDS (0 device, 1 channel, 2 platform). No foreign key to devices:
            # a removed device's history stays.
            """
            CREATE TABLE events (
                id      INTEGER PRIMARY KEY,
                ts      INTEGER NOT NULL,
                code    INTEGER NOT NULL,
                kind    INTEGER NOT NULL,
                subject TEXT NOT NULL,
                reason  TEXT NOT NULL DEFAULT ''
            )
            """,
            "CREATE INDEX events_subject_ts ON events (subject, ts)",
            "CREATE INDEX events_ts ON events (ts)",
        ),
    ),
    Migration(
        2,
        "channels",
        (
            # One row per catalog item as its device reported it, keyed by (device_id, id): the same channel ID
            # can reach us through two devices. parent_ids and info are JSON (an array, an object of strings).
            # override_* are set by operators only; NULL = no override. Times are wall-clock seconds.
            """
            CREATE TABLE channels (
                device_id            TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
                id                   TEXT NOT NULL,
                name                 TEXT NOT NULL DEFAULT '',
                manufacturer         TEXT NOT NULL DEFAULT '',
                model                TEXT NOT NULL DEFAULT '',
                owner                TEXT NOT NULL DEFAULT '',
                civil_code           TEXT NOT NULL DEFAULT '',
                block                TEXT NOT NULL DEFAULT '',
                address              TEXT NOT NULL DEFAULT '',
                parental             INTEGER,
                parent_ids           TEXT NOT NULL DEFAULT '[]',
                business_group_id    TEXT NOT NULL DEFAULT '',
                safety_way           INTEGER,
                register_way         INTEGER,
                cert_num             TEXT NOT NULL DEFAULT '',
                certifiable          INTEGER,
                err_code             INTEGER,
                end_time             TEXT NOT NULL DEFAULT '',
                secrecy              INTEGER,
                ip_address           TEXT NOT NULL DEFAULT '',
                port                 INTEGER,
                status               TEXT NOT NULL DEFAULT 'offline',
                longitude            REAL,
                latitude             REAL,
                ptz_type             INTEGER,
                point_class          INTEGER,
                kind                 TEXT NOT NULL DEFAULT 'other',
                info                 TEXT NOT NULL DEFAULT '{}',
                first_seen           REAL NOT NULL DEFAULT 0,
                updated_at           REAL NOT NULL DEFAULT 0,
                override_name        TEXT,
                override_longitude   REAL,
                override_latitude    REAL,
                override_civil_code  TEXT,
                override_point_class INTEGER,
                PRIMARY KEY (device_id, id)
            )
            """,
            # id last: rows come out in (device_id, id) order, so listings need no sort and the planner takes it
            "CREATE INDEX channels_device_status ON channels (device_id, status, id)",
            # Listing and statistics by civil code use the code as shown (override <- reported).
            "CREATE INDEX channels_civil_code ON channels (COALESCE(override_civil_code, civil_code))",
        ),
    ),
    Migration(
        3,
        "alarms and mobile positions",
        (
            # One row per alarm a device reported (GB/T 28181-2022 §9.4). No foreign key to devices: an alarm's
            # history outlives its device, like the event log. Times are wall-clock seconds.
            """
            CREATE TABLE alarms (
                id          INTEGER PRIMARY KEY,
                device_id   TEXT NOT NULL,
                source_id   TEXT NOT NULL,
                received_at REAL NOT NULL,
                priority    INTEGER,
                method      INTEGER,
                alarm_type  INTEGER,
                event_type  INTEGER,
                alarm_time  TEXT NOT NULL DEFAULT '',
                description TEXT NOT NULL DEFAULT '',
                longitude   REAL,
                latitude    REAL,
                via         TEXT NOT NULL DEFAULT 'message',
                sn          INTEGER,
                acked_at    REAL,
                acked_by    TEXT NOT NULL DEFAULT '',
                reset_at    REAL,
                reset_by    TEXT NOT NULL DEFAULT ''
            )
            """,
            "CREATE INDEX alarms_received ON alarms (received_at)",
            "CREATE INDEX alarms_device_received ON alarms (device_id, received_at)",
            # The latest position per (device, target): MobilePosition NOTIFYs arrive every few seconds, so only
            # the last one is kept.
            """
            CREATE TABLE positions (
                device_id   TEXT NOT NULL,
                target_id   TEXT NOT NULL,
                received_at REAL NOT NULL,
                time        TEXT NOT NULL DEFAULT '',
                longitude   REAL,
                latitude    REAL,
                speed       REAL,
                direction   REAL,
                altitude    REAL,
                height      REAL,
                PRIMARY KEY (device_id, target_id)
            )
            """,
        ),
    ),
    Migration(
        4,
        "shares with superior platforms",
        (
            # What each superior ([[upstream]] id) sees: "all", device/channel/group IDs, civil codes; as_id and
            # as_name are per-superior overrides (NULL = none). No foreign keys: a share may name a channel that
            # a catalog sync has not brought yet.
            """
            CREATE TABLE upstream_shares (
                upstream_id TEXT NOT NULL,
                item        TEXT NOT NULL,
                as_id       TEXT,
                as_name     TEXT,
                created_at  REAL NOT NULL DEFAULT 0,
                PRIMARY KEY (upstream_id, item)
            )
            """,
        ),
    ),
    Migration(
        5,
        "the operator audit log",
        (
            # Append-only record of operator actions through the admin API (issue 9): who, when, what.
            """
            CREATE TABLE audit (
                id      INTEGER PRIMARY KEY AUTOINCREMENT,
                at      REAL NOT NULL,
                who     TEXT NOT NULL,
                role    TEXT NOT NULL DEFAULT '',
                action  TEXT NOT NULL,
                target  TEXT NOT NULL DEFAULT '',
                detail  TEXT NOT NULL DEFAULT '',
                status  INTEGER NOT NULL DEFAULT 0,
                remote  TEXT NOT NULL DEFAULT ''
            )
            """,
            "CREATE INDEX audit_at ON audit (at)",
        ),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


class SchemaTooNew(Exception):
    def __init__(self, found: int, supported: int) -> None:
        super().__init__(
            f"database schema version {found} is newer than this program supports ({supported}); "
            "upgrade the program or use a backup made for this version"
        )
        self.found = found
        self.supported = supported


def check_steps(migrations: Sequence[Migration]) -> None:
    for number, step in enumerate(migrations, start=1):
        if step.version != number:
            raise ValueError(f"migration #{number} has version {step.version}: versions must be 1, 2, 3, ...")


async def user_version(db: aiosqlite.Connection) -> int:
    rows = await db.execute_fetchall("PRAGMA user_version")
    return int(next(iter(rows))[0])


async def migrate(db: aiosqlite.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the database to the last version of ``migrations``; return that version.

    ``db`` must be in autocommit mode (``isolation_level=None``). On any error the transaction is rolled back
    and the database stays at the version it had. Raises SchemaTooNew for a database newer than ``migrations``.
    """
    check_steps(migrations)
    target = migrations[-1].version if migrations else 0
    await db.execute("BEGIN IMMEDIATE")
    try:
        current = await user_version(db)
        if current > target:
            raise SchemaTooNew(current, target)
        for step in migrations[current:]:
            for statement in step.statements:
                await db.execute(statement)
        if current != target:
            await db.execute(f"PRAGMA user_version = {int(target)}")
        await db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            await db.execute("ROLLBACK")
        raise
    return target
