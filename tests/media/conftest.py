from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.media.zlm_rig import Rig, make_rig


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """ZLMediaKit fake + ZlmBackend + hook route + consumers' embedded receivers (tests/media/zlm_rig.py)."""
    async with make_rig() as r:
        yield r
