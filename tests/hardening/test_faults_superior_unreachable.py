"""A superior platform unreachable from the start (issue 9, Faults; test_cascade_e2e.py covers one that goes away
after we registered): `gb28181 serve` with an [[upstream]] whose port is closed. Every REGISTER goes unanswered (an
unconnected UDP socket is not told of the ICMP error) and ends with timer F (64 T1); the retries follow the backoff
(retry_interval doubling to retry_max), never a storm; `gb28181 upstream status` says failed, why, and when it tries
next; the platform keeps serving its devices; when the superior (the raw-socket one of tests/e2e/raw_superior.py,
digest checked with hashlib) comes up on that port, we register at the next step of the backoff and keepalives
follow."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import free_port
from tests.e2e.raw_device import RawDevice
from tests.e2e.raw_superior import RawSuperior
from tests.e2e.serve_helpers import Server
from tests.e2e.test_cascade_e2e import OUR, UP, UP_PASSWORD, upstream

pytestmark = pytest.mark.e2e

RETRY_INTERVAL, RETRY_MAX = 0.5, 2.0
WINDOW = 6.0  # seconds of outage watched


def max_attempts(seconds: float) -> int:
    """REGISTER attempts the backoff allows in ``seconds`` (first at once; then waits of retry_interval doubling
    up to retry_max, each with at most -25 % jitter), plus one: a bound that a retry storm breaks at once."""
    attempts, spent, wait = 1, 0.0, RETRY_INTERVAL
    for _ in range(1000):
        spent += wait * 0.75
        if spent > seconds:
            break
        attempts += 1
        wait = min(wait * 2, RETRY_MAX)
    return attempts + 1


async def status(srv: Server) -> dict:
    (row,) = await srv.cli("upstream", "status", UP)  # type: ignore[misc]
    return row


async def test_a_superior_unreachable_from_the_start_is_retried_with_backoff_and_joined_when_it_comes(
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens there
    srv = Server(
        tmp_path,
        sip_extra='password = "12345678"\nt1 = 0.05',
        extra=upstream(port, keepalive_interval=1, keepalive_max_missed=2, retry_interval=RETRY_INTERVAL,
                       retry_max=RETRY_MAX, register_expires=3600),
    )  # fmt: skip
    await srv.start()
    sup: RawSuperior | None = None
    device: RawDevice | None = None
    try:
        started = time.monotonic()
        deadline = started + 20
        row = await status(srv)
        while row["state"] != "failed" and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            row = await status(srv)
        assert row["state"] == "failed" and row["last_error"] and row["next_attempt"], row
        print(f"superior unreachable: {row['last_error']!r}")
        await asyncio.sleep(WINDOW)
        row = await status(srv)
        elapsed = time.monotonic() - started
        # between attempts "failed", during one "registering" again
        assert row["state"] in ("failed", "registering") and 2 <= row["failures"] <= max_attempts(elapsed), (
            row, elapsed)  # fmt: skip
        # the platform keeps serving below
        device = await RawDevice.start("34020000001320000031", "12345678", ("127.0.0.1", srv.sip_port))
        assert await device.register() == 200

        loop = asyncio.get_running_loop()
        _, sup = await loop.create_datagram_endpoint(lambda: RawSuperior(UP, UP_PASSWORD),
                                                     local_addr=("127.0.0.1", port))  # fmt: skip
        back_at = time.monotonic()
        await sup.wait_for(lambda: sup.registrations and sup.keepalives, 20, "REGISTER and a keepalive")
        took = sup.registrations[0][0] - back_at
        assert sup.registrations[0][1:] == (OUR, 3600) and sup.bad_auth == 0
        # the next attempt of the backoff (retry_max + 25 % jitter), after one REGISTER transaction that may have
        # been started just before into the void (timer F = 64 T1 = 3.2 s; its retransmissions may reach it sooner)
        assert took <= RETRY_MAX * 1.25 + 3.2 + 1.0, took
        row = await status(srv)
        assert (row["state"], row["failures"], row["last_error"]) == ("registered", 0, None), row
        print(f"registered {took:.2f} s after the superior came up; {elapsed:.1f} s of outage")
    finally:
        if device is not None:
            device.close()
        await srv.stop()
        if sup is not None:
            sup.close()
