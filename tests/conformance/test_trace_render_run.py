"""The trace recorder on the platform's endpoint, the report renderings, and a run against a fake platform whose
device answers nothing (fake clock; no sockets)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from gb28181.conformance.model import MEDIA_MODES, MediaObservations, MediaSession
from gb28181.conformance.render import render
from gb28181.conformance.run import ConformanceRun
from gb28181.conformance.trace import Trace, TracingEndpoint
from gb28181.sn import QueryError
from sip.endpoint import EndpointConfig, RequestReceived
from sip.events import Peer
from tests.conformance.helpers import DEV, PLATFORM, request

OTHER = "34020000001320000002"


def options_from(user: str, call_id: str) -> bytes:
    return (
        f"OPTIONS sip:{PLATFORM}@3402000000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{call_id}\r\n"
        f"From: <sip:{user}@3402000000>;tag=t{call_id}\r\nTo: <sip:{PLATFORM}@3402000000>\r\nCall-ID: {call_id}\r\n"
        "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def test_tracing_endpoint_records_the_device_under_test_both_ways_and_nothing_else() -> None:
    clock = [100.0]
    ep = TracingEndpoint(EndpointConfig())
    ep.clock = lambda: clock[0]
    trace = Trace(DEV)
    ep.arm(trace)
    peer = Peer("UDP", "127.0.0.1", 5070)
    for user, call_id in ((DEV, "a1"), (OTHER, "b1")):
        ep.receive(options_from(user, call_id), peer, 99.5)
        event = ep.next_event()
        assert isinstance(event, RequestReceived)
        ep.reply(event, 200, now=99.5)
    clock[0] = 101.0
    assert len(ep.outgoing()) == 2  # both answers still go out
    assert [(e.direction, e.method, e.status, e.at) for e in trace.entries] == [
        ("in", "OPTIONS", None, 99.5), ("out", "OPTIONS", 200, 101.0)]  # fmt: skip
    ep.disarm(trace)
    ep.receive(options_from(DEV, "a2"), peer, 102.0)
    assert len(trace.entries) == 2  # disarmed: nothing more recorded


def test_a_followed_channel_is_traced_too() -> None:
    """A device may send its broadcast audio INVITE from its voice output's ID (§9.12): the run follows it."""
    ep = TracingEndpoint(EndpointConfig())
    trace = Trace(DEV)
    trace.also.add(OTHER)
    ep.arm(trace)
    peer = Peer("UDP", "127.0.0.1", 5070)
    ep.receive(options_from(OTHER, "c1"), peer, 1.0)
    event = ep.next_event()
    assert isinstance(event, RequestReceived)
    ep.reply(event, 200, now=1.0)
    assert len(ep.outgoing()) == 1
    assert [(e.direction, e.method, e.status) for e in trace.entries] == [("in", "OPTIONS", None),
                                                                         ("out", "OPTIONS", 200)]  # fmt: skip


def test_trace_is_bounded_and_counts_what_it_dropped() -> None:
    trace = Trace(DEV, limit=3)
    peer = Peer("UDP", "127.0.0.1", 5070)
    for i in range(5):
        trace.record("in", request("MESSAGE", call_id=f"m{i}", cseq=i + 1), peer, float(i))
    assert [e.at for e in trace.entries] == [2.0, 3.0, 4.0] and trace.dropped == 2


REPORT = {
    "device_id": DEV, "started": 1_700_000_000, "duration": 6.5, "summary": f"{DEV}: 1 pass, 1 warn, 0 fail, 1 skip",
    "counts": {"PASS": 1, "WARN": 1, "FAIL": 0, "SKIP": 1}, "device": {"transport": "UDP"}, "notes": ["undone: x"],
    "results": [
        {"clause": "catalog.sumnum", "title": "SumNum", "reference": "§7.1", "verdict": "PASS", "why": "ok",
         "evidence": []},
        {"clause": "catalog.placeholders", "title": "placeholders", "reference": "§13 q10", "verdict": "WARN",
         "why": "1 placeholder value(s)", "evidence": ["<Owner>Owner</Owner> & <script>alert(1)</script>"]},
        {"clause": "media.live-udp", "title": "live", "reference": "§10", "verdict": "SKIP",
         "why": "media sessions not available in this build", "evidence": []},
    ],
}  # fmt: skip


def test_text_report_lists_every_clause_and_ends_with_the_summary() -> None:
    text = render(REPORT, "text")
    lines = text.splitlines()
    assert lines[0].startswith(f"GB/T 28181 conformance of {DEV}")
    assert any(line.startswith("WARN  catalog.placeholders") for line in lines)
    assert any(line.startswith("skip  media.live-udp") and "not available" in line for line in lines)
    assert "        | <Owner>Owner</Owner>" in text and lines[-1] == REPORT["summary"]


def test_html_report_is_self_contained_and_escapes_device_text() -> None:
    page = render(REPORT, "html")
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "<script" not in page and "&lt;script&gt;" in page and "&lt;Owner&gt;Owner" in page
    assert "http://" not in page and "https://" not in page


def test_json_report_round_trips() -> None:
    assert json.loads(render(REPORT, "json")) == REPORT


# ------------------------------------------------------------------------------------------ a run, fake platform
@dataclass
class FakeDevice:
    gb_version: str = ""
    transport: str = "UDP"
    address: str = "127.0.0.1:5070"
    user_agent: str = "fake"
    manufacturer: str = ""
    model: str = ""
    firmware: str = ""
    keepalive_interval: int | None = 1


@dataclass
class FakeOps:
    calls: list[tuple[str, ...]] = field(default_factory=list)

    async def guard(self, target: str, action: str) -> dict[str, Any]:
        self.calls.append(("guard", target, action))
        return {"result": "OK"}


class FakeDevices:
    def __init__(self) -> None:
        self.devices = {DEV: FakeDevice()}

    def is_registered(self, device_id: str) -> bool:
        return device_id == DEV


class FakePlatform:
    """A registered device that answers no query (every one times out) but takes GuardCmd; the clock is fake."""

    def __init__(self) -> None:
        self.t = 0.0
        self.endpoint = TracingEndpoint(EndpointConfig())
        self.operations = FakeOps()
        self.devices = FakeDevices()
        self.cfg = type("Cfg", (), {"sip": type("Sip", (), {"id": PLATFORM, "min_expires": 3600})()})()
        self.tz = None
        self.store = self

    async def list_channels(self, device_id: str) -> list[Any]:
        return []  # no catalog yet: the channel probes are skipped

    def mono(self) -> float:
        self.t += 0.5
        return self.t

    def wall(self) -> float:
        return 1_700_000_000 + self.t

    async def query(self, device_id: str, verb: str) -> dict[str, Any]:
        raise QueryError(f"device {device_id} did not answer {verb} within 5 s", kind="timeout")


async def test_a_silent_device_gets_timeout_fails_and_the_guard_is_undone() -> None:
    p = FakePlatform()
    run = ConformanceRun(p, DEV, timeout=30, only=("query", "control.guard", "keepalive.status"))
    report = await asyncio.wait_for(run.run(), 10)
    got = {r.clause: (r.verdict, r.why) for r in report.results}
    assert got["query.device-info"][0] == "FAIL" and "no answer" in got["query.device-info"][1]
    assert got["query.config-basic"][0] == "FAIL"
    assert got["control.guard"][0] == "PASS"
    assert got["query.presets"] == ("SKIP", "PresetQuery was not probed in this run")
    assert any("no video channel" in n for n in report.notes)
    assert got["keepalive.status"] == ("SKIP", "no keepalive during the run")
    # Armed, then disarmed; the guard it armed was disarmed again (the device was not armed before).
    assert p.endpoint.traces == {}
    assert p.operations.calls == [("guard", DEV, "arm"), ("guard", DEV, "disarm")]
    assert f"undone: disarm {DEV}" in report.notes
    assert report.counts()["FAIL"] >= 3 and report.summary().startswith(f"{DEV}: ")


class MediaPlatform(FakePlatform):
    """Its media probe judges one session, then hangs in the next one (the run's budget cancels it)."""

    def __init__(self) -> None:
        super().__init__()
        self.probed: list[tuple[str, tuple[str, ...]]] = []

    async def media_probe(self, device_id: str, channel_id: str, modes: tuple[str, ...], *,
                          into: MediaObservations) -> MediaObservations:  # fmt: skip
        self.probed.append((channel_id, modes))
        into.sessions["live-udp"] = MediaSession("live-udp", error="no media within 3 s after the 200 OK (timed out)")
        await asyncio.sleep(3600)
        return into


async def test_media_sessions_judged_before_the_budget_ran_out_are_kept() -> None:
    p = MediaPlatform()
    report = await asyncio.wait_for(ConformanceRun(p, DEV, timeout=1, only=("media",)).run(), 10)
    got = {r.clause: (r.verdict, r.why) for r in report.results}
    assert p.probed == [(DEV, MEDIA_MODES)]  # a camera without a catalog streams under its own ID
    assert got["media.live-udp"] == ("FAIL", "live-udp: no media within 3 s after the 200 OK (timed out)")
    assert got["media.live-tcp-passive"] == ("SKIP", "no live-tcp-passive session in this run")
    assert got["media.broadcast"] == ("SKIP", "not reached within the run's budget")
    assert any("budget ran out" in n for n in report.notes)


async def test_media_clauses_say_why_nothing_was_probed() -> None:
    p = MediaPlatform()
    p.devices.devices = {"34020000001180000001": FakeDevice()}  # an NVR without a catalog: no channel to play
    p.devices.is_registered = lambda d: True  # type: ignore[method-assign]
    report = await asyncio.wait_for(ConformanceRun(p, "34020000001180000001", timeout=5, only=("media",)).run(), 10)
    got = {r.clause: (r.verdict, r.why) for r in report.results}
    assert got.pop("media.broadcast") == ("SKIP", "the device lists no voice output")  # it has no catalog at all
    assert set(got.values()) == {("SKIP", "no video channel known to open a media session on")}
    assert p.probed == []
