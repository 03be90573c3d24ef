from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from registry.memory import MemoryStore
from registry.sqlite import SqliteStore
from registry.store import RegistryStore


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RegistryStore]:
    """Every RegistryStore implementation; the contract suite runs once per store."""
    s: RegistryStore = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "registry.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()
