"""``gb28181 trace``: the TraceHub tap picks one device's exchanges (by ID or by its known address), carries the
platform's reason for each refusal on the response line, bounds each watcher's queue with a drop counter, and is
not on the endpoint at all while nobody watches. Driven through a Platform without sockets (fake clocks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gb28181.guard import GuardSettings
from gb28181.trace import Exchange, TraceHub, Watcher, ladder
from sip.endpoint import Endpoint, Peer
from sip.parser import parse_message
from tests.hardening.test_platform_guard import DEVICE_PEER, KNOWN, OTHER, Rig, make, request


def _watch(rig: Rig, device_id: str = KNOWN, limit: int = 1000) -> tuple[Watcher, list[int]]:
    woken: list[int] = []
    return rig.p.tracer.watch(device_id, lambda: woken.append(1), limit), woken


def _lines(w: Watcher) -> list[tuple[str, str, str]]:
    exchanges, _ = w.drain()
    return [(e.direction, e.label, e.note) for e in exchanges]


@pytest.fixture
async def rig(tmp_path: Path):
    r = await make(tmp_path, GuardSettings(max_failures=2, lockout_base=60))
    yield r
    await r.p.devices.stop()


async def test_no_tap_while_nobody_watches_and_the_tap_goes_with_the_last_watcher(rig: Rig) -> None:
    assert rig.p.endpoint.taps == ()
    w1, _ = _watch(rig)
    w2, _ = _watch(rig, OTHER)
    assert rig.p.endpoint.taps == (rig.p.tracer,)
    rig.p.tracer.unwatch(w1)
    assert rig.p.endpoint.taps == (rig.p.tracer,)
    rig.p.tracer.unwatch(w2)
    assert rig.p.endpoint.taps == () and rig.p.tracer.watchers == {}


async def test_a_registration_ladder_with_challenge_wrong_password_and_success_after_the_lockout(rig: Rig) -> None:
    w, woken = _watch(rig)
    other, _ = _watch(rig, OTHER)
    assert (await rig.register(KNOWN, DEVICE_PEER, "bad")).status == 403
    assert _lines(w) == [
        ("in", "REGISTER", ""), ("out", "401 Unauthorized", "challenge"),
        ("in", "REGISTER", ""), ("out", "403 Forbidden", "wrong password"),
    ]  # fmt: skip
    assert woken
    await rig.register(KNOWN, DEVICE_PEER, "bad")  # the second failure locks (source, ID) out for 60 s
    rig.clock["mono"] += 61
    assert (await rig.register(KNOWN, DEVICE_PEER, "pw")).status == 200
    lines = _lines(w)
    assert lines[-1] == ("out", "200 OK", "registered, expires 3600")
    assert _lines(other) == []  # another device's watcher saw none of it


async def test_a_locked_out_register_says_so(rig: Rig) -> None:
    w, _ = _watch(rig)
    for _ in range(2):
        await rig.register(KNOWN, DEVICE_PEER, "bad")
    w.drain()
    assert (await rig.register(KNOWN, DEVICE_PEER, "pw")).status == 403
    last = _lines(w)[-1]
    assert last[:2] == ("out", "403 Forbidden") and last[2].startswith("locked out: 60 s left")


async def test_keepalives_answered_statelessly_and_refusals_are_traced(rig: Rig) -> None:
    w, _ = _watch(rig)
    assert (await rig.keepalive(KNOWN, DEVICE_PEER)).status == 403
    assert _lines(w) == [("in", "MESSAGE Keepalive", ""), ("out", "403 Forbidden", "not registered")]
    await rig.register(KNOWN, DEVICE_PEER, "pw")
    w.drain()
    assert (await rig.keepalive(KNOWN, DEVICE_PEER)).status == 200
    assert _lines(w) == [("in", "MESSAGE Keepalive", ""), ("out", "200 OK", "")]


async def test_messages_from_the_devices_address_are_picked_even_under_another_id(rig: Rig) -> None:
    await rig.register(KNOWN, DEVICE_PEER, "pw")
    w, _ = _watch(rig)
    # an NVR's channel speaking from the device's registered address
    await rig.send(request("OPTIONS", "34020000001310000077", DEVICE_PEER), DEVICE_PEER)
    await rig.send(request("OPTIONS", "34020000001310000077", Peer("UDP", "192.0.2.99", 5060)),
                   Peer("UDP", "192.0.2.99", 5060))  # fmt: skip
    assert [line[:2] for line in _lines(w)] == [("in", "OPTIONS"), ("out", "200 OK")]


def test_a_slow_watcher_drops_and_counts_instead_of_growing() -> None:
    hub = TraceHub(Endpoint(), wall=lambda: 0.0, address_of=lambda _d: None)
    w = hub.watch(KNOWN, lambda: None, limit=3)
    data = request("OPTIONS", KNOWN, DEVICE_PEER)
    for _ in range(10):
        hub.received(parse_message(data), DEVICE_PEER, 0.0)
    assert len(w.queue) == 3 and w.dropped == 7
    exchanges, dropped = w.drain()
    assert len(exchanges) == 3 and dropped == 7 and w.dropped == 0 and w.dropped_total == 7


def test_watchers_are_bounded() -> None:
    hub = TraceHub(Endpoint(), wall=lambda: 0.0, address_of=lambda _d: None)
    for _ in range(32):
        hub.watch(KNOWN, lambda: None)
    with pytest.raises(ValueError, match="traces are running"):
        hub.watch(OTHER, lambda: None)


def test_notes_are_kept_only_while_someone_watches() -> None:
    hub = TraceHub(Endpoint(), wall=lambda: 0.0, address_of=lambda _d: None)
    req = parse_message(request("REGISTER", KNOWN, DEVICE_PEER))
    hub.note(req, "x")  # type: ignore[arg-type]
    assert not hub._notes


def test_ladder_line() -> None:
    exchange = Exchange(0.0, "out", KNOWN, "UDP:192.0.2.10:5060", "401 Unauthorized", "c-340200", "1 REGISTER", 401)
    row = exchange.as_json()
    line = ladder(row, "12:00:00.000")
    assert line.startswith(f"12:00:00.000  platform -------------> {KNOWN}  401 Unauthorized")
    assert line.endswith("(challenge)") and "1 REGISTER" in line
    assert "<-------------" in ladder({**row, "direction": "in", "label": "REGISTER", "status": None}, "t")


async def test_a_rate_limited_register_says_so(tmp_path: Path) -> None:
    r = await make(tmp_path, GuardSettings(register_rate=0.01, register_burst=1))
    try:
        w, _ = _watch(r)
        await r.challenge(KNOWN, DEVICE_PEER)
        (answer,) = await r.send(request("REGISTER", KNOWN, DEVICE_PEER, cseq=2), DEVICE_PEER)
        assert answer.status == 503
        assert _lines(w)[-1] == ("out", "503 Service Unavailable", "rate limited: retry in 100 s")
    finally:
        await r.p.devices.stop()
