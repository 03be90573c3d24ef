"""The platform's operations without sockets: a Platform on a MemoryStore, a fake SIP runner that records what
would be sent, device answers fed through the endpoint; no time is waited for."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path

import pytest

from gb28181.config import CatalogConfig, Config, RegistryConfig, SipConfig
from gb28181.operations import OperationError
from gb28181.server import Platform, Secrets
from gb28181.sn import QueryError
from registry.memory import MemoryStore
from registry.models import Channel
from sip.message import Request, Response
from tests.gb28181.test_server_router import DEVICE, exchange, register, request

CH1 = "34020000001310000001"
MADE = Path(__file__).resolve().parents[2] / "fixtures" / "manscdp" / "made"


class FakeRunner:
    """What Platform needs of a SipRunner: ``request`` answered 200 at once (or ``status``), and ``flush``."""

    def __init__(self) -> None:
        self.sent: list[Request] = []
        self.status = 200

    def request(self, req: Request, peer: object) -> asyncio.Future[Response]:
        self.sent.append(req)
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        fut.set_result(Response(self.status, "OK" if self.status == 200 else "Forbidden"))
        return fut

    def flush(self) -> None:
        pass

    def bodies(self) -> list[bytes]:
        return [r.body for r in self.sent]


@pytest.fixture
async def platform(tmp_path: Path):
    cfg = Config(sip=SipConfig(password="pw", query_timeout=0.2), registry=RegistryConfig(str(tmp_path / "x.db")),
                 catalog=CatalogConfig(sync_on_register=False))  # fmt: skip
    clock = {"mono": 100.0}
    p = Platform(cfg, Secrets("pw", "tok", b"s" * 32, tmp_path / "s.json"), MemoryStore(), mono=lambda: clock["mono"],
                 batch_interval=3600)  # fmt: skip
    p.clock = clock  # type: ignore[attr-defined]
    await p.devices.start()
    await register(p)
    p.runner = FakeRunner()  # type: ignore[assignment]
    await p.store.apply_catalog(DEVICE, [Channel(DEVICE, CH1, name="ch", kind="video")], [])
    yield p
    await p.devices.stop()


def sent_sn(p: Platform, index: int = -1) -> int:
    found = re.search(rb"<SN>(\d+)</SN>", p.runner.bodies()[index])  # type: ignore[union-attr]
    assert found is not None
    return int(found.group(1))


async def answer(p: Platform, body: bytes, branch: str) -> None:
    headers = "Content-Type: Application/MANSCDP+xml\r\n"
    (ok,) = await exchange(p, request("MESSAGE", headers=headers, body=body, branch=branch))
    assert ok.status == 200


async def test_a_timed_ptz_move_is_superseded_by_a_newer_command(platform: Platform) -> None:
    first = asyncio.create_task(platform.operations.ptz(CH1, "left", 0x80, 300))
    for _ in range(50):
        await asyncio.sleep(0)
        if platform.runner.sent:  # type: ignore[union-attr]
            break
    stopped = await platform.operations.ptz(CH1, "stop", 0x80, None)
    assert stopped["ptz_cmd"] == "A50F0100000000B5"
    superseded = await asyncio.wait_for(first, 5)
    assert superseded["superseded"] is True and superseded["stop"] is None
    bodies = platform.runner.bodies()  # type: ignore[union-attr]
    assert [re.search(rb"<PTZCmd>(\w+)</PTZCmd>", b).group(1) for b in bodies] == [  # type: ignore[union-attr]
        b"A50F0102808000B7", b"A50F0100000000B5",
    ]  # fmt: skip
    assert platform.operations._ptz_timers == {}


async def test_a_record_search_assembles_its_packets_and_ignores_strays(platform: Platform) -> None:
    search = asyncio.create_task(platform.operations.record_search(CH1, 1714492800.0, 1714579199.0))
    for _ in range(50):
        await asyncio.sleep(0)
        if platform.runner.sent:  # type: ignore[union-attr]
            break
    sn = sent_sn(platform)
    assert b"<StartTime>2024-05-01T00:00:00</StartTime>" in platform.runner.bodies()[0]  # type: ignore[union-attr]
    stray = (MADE / "recordinfo-1of3-duplicates.xml").read_bytes()  # SN 4004: not ours
    await answer(platform, stray, "s0")
    assert platform.counters["records:stray"] == 1
    for n in (1, 2, 3):
        body = (MADE / f"recordinfo-{n}of3-duplicates.xml").read_bytes().replace(b"4004", str(sn).encode())
        await answer(platform, body, f"s{n}")
    result = await asyncio.wait_for(search, 5)
    assert (result["state"], result["received"], result["duplicates"], result["packets"]) == ("complete", 5, 2, 3)
    assert len(platform.operations.records) == 0 and platform.operations._record_waiters == {}


async def test_record_search_silence_times_out_and_result_error_fails(platform: Platform) -> None:
    search = asyncio.create_task(platform.operations.record_search(CH1, 1714492800.0, 1714579199.0))
    for _ in range(50):
        await asyncio.sleep(0)
        if platform.runner.sent:  # type: ignore[union-attr]
            break
    platform.clock["mono"] += 1.0  # type: ignore[attr-defined]  # past query_timeout: the liveness tick's due()
    for result in platform.operations.records.due(platform.mono()):
        platform.operations._records_done(result)
    with pytest.raises(QueryError, match=r"did not answer RecordInfo within 0\.2 s") as info:
        await search
    assert info.value.kind == "timeout"

    search = asyncio.create_task(platform.operations.record_search(CH1, 1714492800.0, 1714579199.0))
    for _ in range(50):
        await asyncio.sleep(0)
        if len(platform.runner.sent) == 2:  # type: ignore[union-attr]
            break
    sn = sent_sn(platform)
    error = (f'<?xml version="1.0" encoding="GB2312"?>\r\n<Response>\r\n<CmdType>RecordInfo</CmdType>\r\n<SN>{sn}'
             f"</SN>\r\n<DeviceID>{CH1}</DeviceID>\r\n<Result>ERROR</Result>\r\n</Response>\r\n").encode()  # fmt: skip
    await answer(platform, error, "e1")
    with pytest.raises(QueryError, match="RecordInfo ERROR"):
        await search
    assert len(platform.operations.records) == 0


async def test_controls_refused_timed_out_or_aimed_wrong_are_clear_errors(platform: Platform) -> None:
    with pytest.raises(QueryError, match=r"did not answer DeviceControl GuardCmd within 0\.2 s"):
        await platform.operations.guard(DEVICE, "arm")
    platform.runner.status = 403  # type: ignore[union-attr]
    with pytest.raises(QueryError, match="refused DeviceControl PTZCmd: 403") as refused:
        await platform.operations.ptz(CH1, "up", 1, None)
    assert refused.value.kind == "refused"
    with pytest.raises(OperationError, match="no device or channel") as unknown:
        await platform.operations.preset("34020000001310000009", "goto", 1)
    assert unknown.value.kind == "unknown"
    device = platform.devices.devices[DEVICE]
    platform.devices.devices[DEVICE] = dataclasses.replace(device, status="offline")
    with pytest.raises(OperationError, match="none of them online") as offline:
        await platform.operations.record(CH1, "start")
    assert offline.value.kind == "offline"


async def test_timed_stops_still_pending_go_out_at_shutdown(platform: Platform) -> None:
    moving = asyncio.create_task(platform.operations.ptz(CH1, "zoom-in", 0x80, 300))
    for _ in range(50):
        await asyncio.sleep(0)
        if platform.operations._ptz_timers:
            break
    assert await platform.operations.stop_moving() == 1
    assert (await asyncio.wait_for(moving, 5))["superseded"] is True
    codes = [re.search(rb"<PTZCmd>(\w+)</PTZCmd>", b).group(1) for b in platform.runner.bodies()]  # type: ignore[union-attr]
    assert codes == [b"A50F011000008045", b"A50F0100000000B5"]
    assert await platform.operations.stop_moving() == 0
