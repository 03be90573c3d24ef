"""The audit-log part of the RegistryStore contract (issue 9), run against every store (conftest ``store``)."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from registry.migrations import SCHEMA_VERSION
from registry.models import AUDIT_DETAIL_MAX, AuditEntry
from registry.sqlite import SqliteStore
from registry.store import RegistryStore


def entry(at: float, **kw: object) -> AuditEntry:
    kw.setdefault("action", "POST /api/devices/{id}/reboot")
    return AuditEntry(at=at, who=str(kw.pop("who", "ops")), role=str(kw.pop("role", "operator")), **kw)  # type: ignore[arg-type]


async def test_audit_round_trips_in_order_with_since_and_limit(store: RegistryStore) -> None:
    full = entry(1000.5, target="34020000001320000001", detail='{"action": "up"}', status=200, remote="127.0.0.1")
    ids = [
        await store.append_audit(full),
        await store.append_audit(entry(1002.0)),
        await store.append_audit(entry(1001)),
    ]
    assert ids[0] < ids[1] < ids[2]
    listed = await store.list_audit()
    assert [e.at for e in listed] == [1000.5, 1001, 1002.0]
    assert listed[0] == AuditEntry(**{**full.__dict__, "id": ids[0]})
    assert [e.at for e in await store.list_audit(since=1001)] == [1001, 1002.0]
    assert [e.at for e in await store.list_audit(limit=2)] == [1001, 1002.0]  # the newest two
    assert await store.list_audit(limit=0) == []


async def test_audit_detail_is_truncated_and_bad_entries_refused(store: RegistryStore) -> None:
    await store.append_audit(entry(1.0, detail="x" * (AUDIT_DETAIL_MAX + 500)))
    (got,) = await store.list_audit()
    assert len(got.detail) == AUDIT_DETAIL_MAX
    for bad in (entry(2.0, action=""), entry(math.nan)):
        with pytest.raises(ValueError):
            await store.append_audit(bad)
    assert len(await store.list_audit()) == 1


async def test_migration_5_adds_the_audit_table_to_a_version_4_database(tmp_path: Path) -> None:
    assert SCHEMA_VERSION == 5
    path = tmp_path / "old.db"
    from registry.migrations import MIGRATIONS

    with sqlite3.connect(path) as db:  # a database as the version-4 code left it
        for step in MIGRATIONS[:4]:
            for statement in step.statements:
                db.execute(statement)
        db.execute("PRAGMA user_version = 4")
    store = SqliteStore(path)
    await store.open()
    try:
        await store.append_audit(entry(5.0))
        assert [e.at for e in await store.list_audit()] == [5.0]
        assert (await store.pragmas())["user_version"] == 5
    finally:
        await store.close()
