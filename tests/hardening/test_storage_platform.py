"""Disk full / database locked through the platform (no sockets, fake clocks): a REGISTER whose registration
cannot be made durable gets 503 with Retry-After and a Warning (never 200), keepalives of registered devices are
answered from memory, the error is in ``stats``/``/metrics``, and the kept keepalives are written once the store
takes writes again."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from gb28181.storage import storage_refusal
from registry.memory import MemoryStore
from registry.models import Keepalive, Registration
from registry.store import BUSY, FULL, StoreError
from tests.hardening.test_platform_guard import DEVICE_PEER, KNOWN, OTHER, Rig, make


class FailingStore(MemoryStore):
    """A MemoryStore whose writes fail with ``failing`` (a StoreError kind) while it is set, recording the episode
    in its WriteHealth as the SQLite store does."""

    failing: str | None = None

    def _check(self, op: str) -> None:
        if self.failing:
            exc = StoreError(f"{op}: simulated {self.failing}", self.failing)
            self.health.failed(exc, 0.0, op)
            raise exc
        self.health.succeeded(0.0, op)

    async def save_registrations(self, registrations: Sequence[Registration]) -> None:
        self._check("save_registrations")
        await super().save_registrations(registrations)

    async def save_keepalives(self, keepalives: Sequence[Keepalive]) -> None:
        self._check("save_keepalives")
        await super().save_keepalives(keepalives)


@pytest.fixture
async def rig(tmp_path: Path):
    r = await make(tmp_path)
    store = FailingStore()
    for device in await r.p.store.list_devices():
        await store.put_device(device)
    r.p.store = r.p.devices.store = store
    r.p.devices._registrations._flush = store.save_registrations
    r.p.devices._keepalives._flush = store.save_keepalives
    yield r
    store.failing = None
    await r.p.devices.stop()


@pytest.mark.parametrize(("kind", "retry", "why"), [(FULL, "60", "storage full"), (BUSY, "5", "database locked")])
async def test_register_refused_503_while_storage_fails_keepalives_still_200(rig: Rig, kind: str, retry: str,
                                                                             why: str) -> None:  # fmt: skip
    store: FailingStore = rig.p.store  # type: ignore[assignment]
    assert (await rig.register(KNOWN, DEVICE_PEER, "pw")).status == 200
    store.failing = kind
    answer = await rig.register(OTHER, DEVICE_PEER, "pw")
    assert answer.status == 503
    assert answer.headers.get("retry-after") == retry
    assert why in (answer.headers.get("warning") or "")
    assert not rig.p.devices.is_registered(OTHER)
    assert (await rig.keepalive(KNOWN, DEVICE_PEER)).status == 200  # from memory
    with pytest.raises(StoreError):
        await rig.p.devices.flush()  # the batched keepalive cannot be written now ...
    assert rig.p.devices._keepalives.pending == 1  # ... and is kept for the next flush
    assert rig.p.counters["register:store-error"] == 1
    assert store.health.kind == kind and store.health.errors[kind] >= 2
    store.failing = None
    await rig.p.devices.flush()
    assert rig.p.devices._keepalives.pending == 0
    assert (await store.get_device(KNOWN)).last_keepalive is not None  # type: ignore[union-attr]
    assert (await rig.register(OTHER, DEVICE_PEER, "pw")).status == 200
    assert store.health.ok


def test_storage_refusal_is_503_with_retry_after_and_a_warning() -> None:
    status, headers = storage_refusal("io")
    assert status == 503 and dict(headers)["Retry-After"] == "30"
    assert dict(headers)["Warning"].startswith('399 gb28181 "registry storage error (io)')
