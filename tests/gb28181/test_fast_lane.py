"""The platform's lean lane (``Platform.fast``, sip/lite.py) gives the answers the full path gives: the same
exchange is run with ``[sip] fast_lane`` on and off and must produce the same statuses, headers and registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from gb28181.config import Config, RegistryConfig, SipConfig
from gb28181.server import Platform, Secrets
from registry.memory import MemoryStore
from sip.auth import DigestClient
from tests.gb28181.test_server_router import DEVICE, KEEPALIVE, exchange, request

SERVER_URI = "sip:34020000002000000001@3402000000"
MESSAGE_HEADERS = "Content-Type: Application/MANSCDP+xml\r\n"


async def make(tmp_path: Path, fast: bool) -> Platform:
    cfg = Config(sip=SipConfig(password="pw", fast_lane=fast, min_expires=60), registry=RegistryConfig(str(tmp_path)))
    clock = {"mono": 100.0}
    p = Platform(cfg, Secrets("pw", "tok", b"s" * 32, tmp_path / "s.json"), MemoryStore(), mono=lambda: clock["mono"],
                 batch_interval=3600)  # fmt: skip
    await p.devices.start()
    return p


def summary(responses: list) -> list[tuple[int, tuple[str, ...]]]:
    """Status and the names of the headers that matter to a device, per answer."""
    wanted = ("www-authenticate", "contact", "expires", "min-expires", "date", "retry-after", "warning", "server")
    return [(r.status, tuple(n for n in wanted if r.headers.get(n) is not None)) for r in responses]


async def script(p: Platform) -> list[tuple[int, tuple[str, ...]]]:
    seen = []
    (challenge,) = await exchange(p, request("REGISTER", headers="Expires: 3600\r\nX-GB-ver: 3.0\r\n", branch="r1"))
    seen.append(challenge)
    www = challenge.headers.get("www-authenticate")

    def auth(password: str, method: str = "REGISTER") -> str:
        return DigestClient(DEVICE, password).authorization(www, method, SERVER_URI)

    good = request("REGISTER", cseq=2, headers=f"Expires: 3600\r\nAuthorization: {auth('pw')}\r\n", branch="r2")
    seen += await exchange(p, good)
    seen += await exchange(p, good)  # a retransmission: the same 200, never a nonce-count replay
    wrong = request("REGISTER", cseq=3, headers=f"Expires: 3600\r\nAuthorization: {auth('nope')}\r\n", branch="r3")
    seen += await exchange(p, wrong)
    seen += await exchange(p, request("REGISTER", cseq=4, headers="Expires: 10\r\n", branch="r4"))
    seen += await exchange(p, request("MESSAGE", headers=MESSAGE_HEADERS, body=KEEPALIVE, branch="k1"))
    seen += await exchange(p, request("MESSAGE", headers=MESSAGE_HEADERS, body=b"<Keepalive", branch="k2"))
    seen += await exchange(p, request("MESSAGE", headers="Content-Type: text/plain\r\n", body=KEEPALIVE, branch="k3"))
    seen += await exchange(p, request("REGISTER", cseq=5, headers="Expires: x\r\n", branch="r5"))
    (fresh,) = await exchange(p, request("REGISTER", cseq=6, branch="r6"))
    seen.append(fresh)
    www = fresh.headers.get("www-authenticate")
    bye = request("REGISTER", cseq=7, headers=f"Expires: 0\r\nAuthorization: {auth('pw')}\r\n", branch="r7")
    seen += await exchange(p, bye)
    seen += await exchange(p, request("MESSAGE", headers=MESSAGE_HEADERS, body=KEEPALIVE, branch="k4"))
    return summary(seen)


@pytest.mark.parametrize("qop", [True, False])
async def test_both_lanes_answer_the_same_exchange_alike(tmp_path: Path, qop: bool) -> None:
    results = {}
    for fast in (True, False):
        p = await make(tmp_path / f"{fast}-{qop}.db", fast)
        p.registrar.auth.qop = qop
        try:
            results[fast] = (await script(p), p.counters.get("register:registered"), p.devices.snapshot(DEVICE))
            took = p.endpoint.stats["fast"]
            assert (took > 0) if fast else (took == 0)
        finally:
            await p.devices.stop()
    (fast_answers, fast_count, fast_dev), (full_answers, full_count, full_dev) = results[True], results[False]
    assert fast_answers == full_answers
    assert [s for s, _ in fast_answers] == [401, 200, 200, 403, 423, 200, 400, 415, 400, 401, 200, 403]
    assert fast_count == full_count == 1
    assert fast_dev is not None and full_dev is not None
    assert (fast_dev.status, fast_dev.address, fast_dev.expires) == (full_dev.status, full_dev.address, 0)


async def test_the_lane_keeps_the_guards_lockout(tmp_path: Path) -> None:
    p = await make(tmp_path / "x.db", True)
    try:
        p.guard.settings = p.guard.settings  # the defaults: a handful of failures locks the (source, ID) out
        (challenge,) = await exchange(p, request("REGISTER", branch="c0"))
        www = challenge.headers.get("www-authenticate")
        statuses = []
        for i in range(12):
            bad = DigestClient(DEVICE, f"guess{i}").authorization(www, "REGISTER", SERVER_URI)
            (answer,) = await exchange(p, request("REGISTER", cseq=10 + i, headers=f"Authorization: {bad}\r\n",
                                                  branch=f"g{i}"))  # fmt: skip
            statuses.append(answer.status)
        good = DigestClient(DEVICE, "pw").authorization(www, "REGISTER", SERVER_URI)
        (answer,) = await exchange(p, request("REGISTER", cseq=40, headers=f"Authorization: {good}\r\n", branch="ok"))
        assert set(statuses) <= {403, 503} and p.counters.get("guard:lockout", 0) >= 1
        assert answer.status in (403, 503) and not p.devices.is_registered(DEVICE)  # locked: the password is no key
        assert p.endpoint.stats["fast"] >= 13
    finally:
        await p.devices.stop()
