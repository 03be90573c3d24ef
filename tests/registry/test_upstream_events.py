"""Status events of superior platforms (cascade): stored and read back by every store, codes never renumbered."""

from __future__ import annotations

import pytest

from registry.models import EVENT_CODES, EVENT_NAMES, StatusEvent
from registry.store import RegistryStore

UP = "44000000002000000001"


def test_upstream_codes_are_fixed_and_distinct() -> None:
    assert (EVENT_CODES["upstream-online"], EVENT_CODES["upstream-offline"]) == (50, 51)
    assert EVENT_NAMES[50] == "upstream-online" and len(set(EVENT_CODES.values())) == len(EVENT_CODES)


async def test_upstream_events_round_trip(store: RegistryStore) -> None:
    await store.append_events([
        StatusEvent(10.0, UP, "upstream-online", kind="platform", reason="registered expires=3600"),
        StatusEvent(20.5, UP, "upstream-offline", kind="platform", reason="3 keepalives unanswered"),
    ])  # fmt: skip
    got = await store.list_events(subject=UP)
    assert [(e.at, e.event, e.kind, e.reason) for e in got] == [
        (10.0, "upstream-online", "platform", "registered expires=3600"),
        (20.5, "upstream-offline", "platform", "3 keepalives unanswered"),
    ]


async def test_an_unknown_upstream_event_is_refused(store: RegistryStore) -> None:
    with pytest.raises(ValueError, match="unknown status event"):
        await store.append_events([StatusEvent(1.0, UP, "upstream-lost", kind="platform")])
