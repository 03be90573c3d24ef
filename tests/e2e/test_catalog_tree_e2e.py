"""The 5,000-camera lower-platform tree end to end: `gb28181 serve`, a raw-socket lower platform (type 200 ID)
answering `gb28181 catalog sync --wait` with the generated fixture's GB2312 packets (fixtures/manscdp/made/
make_fixtures.py, 104 MESSAGEs of 50 items, each waiting for its 200), and the CLI listing the tree as the
interface contract says: kinds, multi-valued parent_ids, "ParentID = our server ID" meaning none."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from tests.e2e.conftest import PYTHON, run_tool
from tests.e2e.raw_device import RawDevice
from tests.e2e.serve_helpers import Server

pytestmark = pytest.mark.e2e

MADE = Path(__file__).resolve().parents[2] / "fixtures" / "manscdp" / "made"


def _make_fixtures() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_fixtures", MADE / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MF = _make_fixtures()
LOWER: str = MF.BIG_LOWER
VO = [f"61010000002160{v:06d}" for v in range(1, 21)]


async def test_a_lower_platform_tree_of_5000_cameras_lands_as_a_tree(tmp_path: Path) -> None:
    srv = Server(
        tmp_path, sip_extra='password = "12345678"', catalog_extra="sync_on_register = false\ninter_packet_timeout = 20"
    )
    await srv.start()
    lower = await RawDevice.start(LOWER, "12345678", ("127.0.0.1", srv.sip_port))
    try:
        assert await lower.register() == 200
        args = ("catalog", "sync", LOWER, "--wait", "--json", "--admin", srv.admin, "--db", str(srv.db))
        cli = asyncio.create_task(run_tool(PYTHON, "-m", "cli", *args, timeout=120))
        query = await lower.next_request(timeout=20)
        sn = int(re.search(rb"<SN>(\d+)</SN>", query).group(1))  # type: ignore[union-attr]
        packets = list(MF.big_lower_platform(sn=sn))
        for body in packets:
            assert await lower.message(body) == 200
        rc, out, err = await cli
        assert rc == 0, err
        summary = json.loads(out)
        items = len(MF.big_tree())
        assert (summary["state"], summary["received"], summary["packets"]) == ("complete", items, len(packets))

        listed = await srv.cli("channels", "--device", LOWER)
        assert isinstance(listed, list) and len(listed) == items
        by_id = {c["id"]: c for c in listed}
        assert Counter(c["kind"] for c in listed) == {
            "region": 62, "system": 1, "group": 4, "virtual-org": 20, "video": 5000, "alarm-in": 100,
        }  # fmt: skip
        system = by_id[LOWER]
        assert (system["kind"], system["parent_id"], system["parent_ids"]) == ("system", None, [])
        assert system["name"] == "西安市联网平台"
        first = by_id["61010201001310000000"]  # system node + VO, GB2312 name intact
        assert (first["name"], first["parent_id"], first["parent_ids"]) == (
            "新城区第一街道1号摄像机",
            LOWER,
            [LOWER, VO[0]],
        )
        assert by_id["61010202001310000001"]["parent_ids"] == [VO[1], VO[8]]  # two VOs
        assert by_id["61010203001310000002"]["parent_ids"] == [VO[2]]  # our server ID dropped
        assert by_id["61010204001310000003"]["parent_ids"] == ["61010204"]  # a street's civil-code node
        assert by_id["61010000002160000002"]["business_group_id"] == "61010000002150000001"
        assert by_id["610113"]["kind"] == "region" and by_id["610113"]["name"] == "雁塔区"
        assert sum(c["status"] == "offline" for c in listed) == 5000 // 7  # every seventh camera is OFF

        district = await srv.cli("channels", "--device", LOWER, "--civil-code", "610113")
        assert isinstance(district, list) and sum(c["kind"] == "video" for c in district) == 500
        (device,) = [d for d in await srv.cli("devices") if d["id"] == LOWER]
        assert device["channel_count"] == 5000
    finally:
        lower.close()
        await srv.stop()
