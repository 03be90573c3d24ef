"""The share part of the RegistryStore contract (cascade: what each superior sees, per-superior ID and name),
run against every store."""

from __future__ import annotations

import pytest

from registry.models import Share
from registry.store import RegistryStore

UP = "44000000002000000001"
UP2 = "45000000002000000001"
CH1 = "34020000001310000001"
CH2 = "34020000001310000002"
NVR = "34020000001110000001"


async def test_put_list_and_remove(store: RegistryStore) -> None:
    assert await store.list_shares() == []
    await store.put_shares([Share(UP, CH1, as_id="44000000001310000001", as_name="东门", created_at=5.0),
                            Share(UP, NVR), Share(UP2, "all")])  # fmt: skip
    assert await store.list_shares(UP) == [  # ordered by item
        Share(UP, NVR, None, None, 0.0),
        Share(UP, CH1, "44000000001310000001", "东门", 5.0),
    ]
    assert [s.upstream_id for s in await store.list_shares()] == [UP, UP, UP2]
    assert await store.remove_shares(UP, [NVR, NVR, "3402"]) == 1
    assert await store.list_shares(UP) == [Share(UP, CH1, "44000000001310000001", "东门", 5.0)]
    assert await store.list_shares(UP2) == [Share(UP2, "all")]


async def test_a_replaced_share_keeps_created_at_and_takes_new_overrides(store: RegistryStore) -> None:
    await store.put_shares([Share(UP, CH1, as_name="old", created_at=1.0)])
    await store.put_shares([Share(UP, CH1, as_id="44000000001310000009", created_at=9.0)])
    assert await store.list_shares(UP) == [Share(UP, CH1, "44000000001310000009", None, 1.0)]


async def test_one_superior_cannot_see_two_items_under_one_id(store: RegistryStore) -> None:
    await store.put_shares([Share(UP, CH1, as_id="44000000001310000001")])
    with pytest.raises(ValueError, match="already what"):
        await store.put_shares([Share(UP, CH2, as_id="44000000001310000001")])
    with pytest.raises(ValueError, match="already what"):
        await store.put_shares([Share(UP2, CH1, as_id="X1"), Share(UP2, CH2, as_id="X1")])
    # another superior may use the same ID; moving the ID from one item to another in one call is fine
    await store.put_shares([Share(UP2, CH2, as_id="44000000001310000001")])
    await store.put_shares([Share(UP, CH1, as_id=None), Share(UP, CH2, as_id="44000000001310000001")])
    assert [(s.item, s.as_id) for s in await store.list_shares(UP)] == [(CH1, None), (CH2, "44000000001310000001")]
    assert [s.item for s in await store.list_shares(UP2)] == [CH2]


@pytest.mark.parametrize(
    "bad",
    [Share("", CH1), Share(UP, ""), Share(UP, "x" * 65), Share(UP, CH1, as_id=""), Share(UP, CH1, as_name="n" * 201)],
)
async def test_bad_shares_are_refused_whole(store: RegistryStore, bad: Share) -> None:
    with pytest.raises(ValueError):
        await store.put_shares([Share(UP2, CH2), bad])
    assert await store.list_shares() == []
