"""A lower device's (or lower platform's) catalog NOTIFY changes what our superiors see: once stored, the platform
must tell its superiors' catalog subscriptions (GB/T 28181-2022 App.N; issue 7: a device going offline at the village
reaches the province through the town and county). Without sockets."""

from __future__ import annotations

from gb28181.server import Platform
from registry.models import Channel
from tests.gb28181.test_notify import MANSCDP, catalog_notify, ch, event_item, platform, settle  # noqa: F401
from tests.gb28181.test_server_router import DEVICE, exchange, register, request


async def test_a_stored_catalog_notify_tells_the_superiors(platform: Platform) -> None:  # noqa: F811
    await register(platform)
    await platform.store.apply_catalog(DEVICE, [Channel(DEVICE, ch(1)), Channel(DEVICE, ch(2))], [])
    told: list[int] = []
    platform.catalog_changed = lambda: told.append(1)  # type: ignore[method-assign]
    body = catalog_notify([event_item(1, "OFF"), event_item(2, "OFF")])
    (answer,) = await exchange(platform, request("NOTIFY", headers=MANSCDP + "Event: Catalog\r\n", body=body,
                                                 branch="up1"))  # fmt: skip
    assert answer.status == 200
    await settle(platform)
    assert {c.status for c in await platform.store.list_channels(device_id=DEVICE)} == {"offline"}
    assert told, "the superiors' catalog subscriptions were not told of the change"
