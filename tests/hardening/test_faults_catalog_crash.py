"""kill -9 during a catalog sync (issue 9, Faults): a raw-socket lower platform (tests/hardening/raw_lower.py) with
2,000 cameras completes a first sync over many packets; its second answer (300 cameras gone, 300 new, the rest
renamed) is cut by SIGKILL of `gb28181 serve` after about half of its packets were answered 200. Restarted on the
same database: `PRAGMA integrity_check` is ok, every channel of the complete sync is there as it was committed
(staged packets live in memory until the sync commits, so nothing of the cut answer is stored, and only a complete
answer to our own SN may remove: DECISIONS.md "Registry and catalog"), no sync claims to be done or staging, and a
new sync completes, removing the 300 only then. Over UDP (small packets, the device keeps its registration across
the restart) and TCP (big packets, the device opens a new connection and registers again, as devices do). And once
with the cut answer committed as partial (inter-packet timeout) before the kill: its items are added and renamed,
nothing is removed, and after the restart nothing claims a complete sync either."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import PYTHON, run_tool
from tests.e2e.serve_helpers import Server
from tests.hardening.raw_lower import RawLower, catalog_packets

pytestmark = pytest.mark.e2e

LOWER = "34020000002000000777"  # a lower platform / NVR (type 200)
CAMERAS = 2000
PASSWORD = "12345678"


def cameras(first: int, count: int, label: str) -> list[tuple[str, str]]:
    return [(f"3402000000131{n:07d}", f"{label}摄像机{n}") for n in range(first, first + count)]


async def progress(srv: Server, sn: int | None = None) -> dict:
    """GET /api/devices/ID/catalog: the syncs of LOWER still staging, and the last result the platform holds."""
    token = json.loads((srv.tmp / "gb28181.db.secrets.json").read_text())["token"]
    params = {"sn": str(sn)} if sn is not None else {}
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{srv.admin}/api/devices/{LOWER}/catalog", params=params, headers={"Authorization": f"Bearer {token}"}
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def channels(srv: Server) -> dict[str, dict]:
    rows = await srv.cli("channels", "--device", LOWER)
    assert isinstance(rows, list)
    return {r["id"]: r for r in rows}


async def full_sync(srv: Server, lower: RawLower, items: list[tuple[str, str]], per_packet: int) -> dict:
    sync = asyncio.create_task(srv.cli("catalog", "sync", LOWER, "--wait"))
    sn = await lower.catalog_query()
    for body in catalog_packets(LOWER, sn, items, per_packet):
        assert await lower.message(body) == 200
    summary = await asyncio.wait_for(sync, 60)
    assert isinstance(summary, dict)
    return summary


INTER_PACKET = 3.0  # [catalog] inter_packet_timeout: no gap that long within a sync sent on loopback


@pytest.mark.parametrize(
    ("transport", "per_packet", "partial_first"), [("UDP", 4, False), ("TCP", 50, False), ("UDP", 4, True)]
)
async def test_kill_9_mid_catalog_sync_keeps_the_committed_catalog(
    tmp_path: Path, transport: str, per_packet: int, partial_first: bool
) -> None:
    """``partial_first``: the cut answer goes quiet for the inter-packet timeout, is committed as partial (it adds
    and renames, removes nothing), and only then is the platform killed."""
    srv = Server(tmp_path, sip_extra=f'password = "{PASSWORD}"',
                 catalog_extra=f"sync_on_register = false\ninter_packet_timeout = {INTER_PACKET}")  # fmt: skip
    await srv.start()
    lower = RawLower(LOWER, PASSWORD, transport, ("127.0.0.1", srv.sip_port))
    try:
        await lower.connect()
        assert await lower.register() == 200
        first = cameras(1, CAMERAS, "一期")
        summary = await full_sync(srv, lower, first, per_packet)
        packets = -(-CAMERAS // per_packet)
        got = (summary["state"], summary["received"], summary["added"], summary["packets"])
        assert got == ("complete", CAMERAS, CAMERAS, packets)
        committed = await channels(srv)
        assert set(committed) == {cid for cid, _ in first}

        # The second answer: cameras 301.. renamed, 2001..2300 new (sent first), 1..300 gone.
        second = cameras(CAMERAS + 1, 300, "二期") + cameras(301, CAMERAS - 300, "二期")
        cut = asyncio.create_task(run_tool(PYTHON, "-m", "cli", "catalog", "sync", LOWER, "--wait", "--json",
                                           "--admin", srv.admin, "--db", str(srv.db), timeout=60))  # fmt: skip
        sn = await lower.catalog_query()
        bodies = catalog_packets(LOWER, sn, second, per_packet)
        answered = len(bodies) // 2
        for body in bodies[:answered]:
            assert await lower.message(body) == 200
        sent = dict(second[: answered * per_packet])
        if partial_first:
            rc, out, err = await cut
            assert rc == 0, err
            result = json.loads(out)
            got = (result["state"], result["reason"], result["received"], result["removed"])
            assert got == ("partial", "inter-packet timeout", len(sent), 0), result
            expected = {**{cid: r["name"] for cid, r in committed.items()}, **sent}  # added and renamed, none gone
        else:
            staging = (await progress(srv, sn))["in_progress"]
            assert staging == [{"sn": sn, "received": len(sent), "sum_num": CAMERAS, "packets": answered,
                                "ours": True}]  # fmt: skip
            expected = {cid: r["name"] for cid, r in committed.items()}  # staged in memory: nothing stored
        await srv.stop(signal.SIGKILL)
        if not partial_first:
            rc, out, err = await cut
            assert rc != 0 and not out  # the operator's wait fails; it never reports a result
            assert "Error" in err, err

        assert srv.integrity() == "ok"
        await srv.start()
        assert srv.integrity() == "ok"
        after = await channels(srv)
        assert set(committed) <= set(after), "a channel of the complete sync was lost"
        assert {cid: r["name"] for cid, r in after.items()} == expected
        assert (await srv.devices())[LOWER]["channel_count"] == len(expected)
        state = await progress(srv)
        assert state == {"device_id": LOWER, "in_progress": [], "result": None}  # nothing claims to be complete

        if transport == "TCP":  # the kill closed its connection: a TCP device connects again and registers
            await lower.connect()
            assert await lower.register() == 200
        else:  # the stored registration stays valid across the restart: the platform reaches it as it was
            assert (await srv.devices())[LOWER]["status"] == "online"
        summary = await full_sync(srv, lower, second, per_packet)
        got = (summary["state"], summary["received"], summary["added"], summary["updated"], summary["removed"])
        new = 0 if partial_first else 300  # the partial commit had stored the new cameras already
        assert got == ("complete", CAMERAS, new, CAMERAS - new, 300)
        final = await channels(srv)
        assert set(final) == {cid for cid, _ in second}
        assert all(r["name"].startswith("二期") for r in final.values())
    finally:
        lower.close()
        await srv.stop()
    assert srv.integrity() == "ok"
