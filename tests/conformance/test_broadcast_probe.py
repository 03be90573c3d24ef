"""The conformance run's voice broadcast probe against a fake broadcast service (no sockets): a broadcast that ends,
one the device refuses, one that never ends (stopped at the probe's bound) and one the run's budget cancels (stopped
too: a run never leaves a broadcast running); no voice output, no broadcast service, a device already busy."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from gb28181.broadcast import BroadcastError
from gb28181.conformance.broadcast_probe import BroadcastProber, tone, voice_outputs
from gb28181.conformance.model import BROADCAST_UNAVAILABLE, MediaObservations
from gb28181.conformance.run import ConformanceRun
from gb28181.media.wav import Pcm
from registry.store import StoreError
from tests.conformance.helpers import DEV
from tests.conformance.test_trace_render_run import MediaPlatform

OUTPUT = "34020000001370000001"
REFUSED = f"broadcast b1 to {OUTPUT}: the device refused the broadcast: Result ERROR"


class FakeService:
    """BroadcastService's operator API: ``behaviour`` ok | refused | hang (sending until stopped)."""

    def __init__(self, behaviour: str = "ok") -> None:
        self.behaviour = behaviour
        self.cfg = SimpleNamespace(invite_timeout=0.2)
        self.rows: dict[str, dict[str, Any]] = {}
        self.started: list[tuple[str, str | None, int, bool]] = []
        self.stopped: list[str] = []
        self.released = asyncio.Event()

    def list(self) -> list[dict[str, Any]]:
        return list(self.rows.values())

    async def start(self, device_id: str, pcm: Pcm, *, channel: str | None = None, transport: str | None = None,
                    wait: bool = False) -> dict[str, Any]:  # fmt: skip
        self.started.append((device_id, channel, len(pcm.samples), wait))
        row = self.rows["b1"] = {"id": "b1", "device_id": device_id, "channel": channel, "state": "notifying"}
        await asyncio.sleep(0)
        if self.behaviour == "refused":
            del self.rows["b1"]
            raise BroadcastError(REFUSED, kind="refused")
        if self.behaviour == "hang":
            row["state"] = "sending"
            await self.released.wait()
            return {**row, "state": "ended", "reason": "stopped"}
        del self.rows["b1"]
        return {**row, "state": "ended", "reason": "end of file", "packets": 50, "sent_seconds": 1.0}

    async def stop(self, ident: str) -> dict[str, Any]:
        self.stopped.append(ident)
        row = self.rows.pop(ident)
        self.released.set()
        return {**row, "state": "ended", "reason": "stopped"}


def channels(*ids: str) -> Any:
    async def listed(device_id: str) -> list[Any]:
        return [SimpleNamespace(id=i, kind="audio-out" if i[10:13] == "137" else "video") for i in ids]

    return listed


def prober(service: Any, *ids: str, followed: list[str] | None = None) -> BroadcastProber:
    clock = iter(range(1000))
    return BroadcastProber(service=service, channels=channels(*ids), mono=lambda: float(next(clock)),
                           follow=(followed if followed is not None else []).append, seconds=0.05, slack=0.1)


def test_the_tone_and_the_voice_outputs() -> None:
    pcm = tone(1.0)
    assert len(pcm.samples) == 8000 and max(pcm.samples) > 7900 and min(pcm.samples) < -7900
    listed = [SimpleNamespace(id="34020000001370000002", kind="audio-out"),
              SimpleNamespace(id="34020000001310000001", kind="video")]  # fmt: skip
    assert voice_outputs(listed) == ["34020000001370000002"]


async def test_a_broadcast_that_ends_is_recorded_and_its_output_followed() -> None:
    service, followed = FakeService(), []
    obs = await prober(service, "34020000001310000001", OUTPUT, followed=followed).run(DEV, MediaObservations())
    assert obs.voice_output and obs.broadcast_skip == "" and followed == [OUTPUT]
    assert service.started == [(DEV, OUTPUT, 400, True)] and service.stopped == []  # 0.05 s of tone, waited for
    a = obs.broadcast
    assert a is not None and (a.target, a.error, a.over) == (OUTPUT, "", True) and a.ended > a.started
    assert a.row is not None and a.row["reason"] == "end of file" and a.row["packets"] == 50


async def test_several_outputs_target_the_device_and_a_refusal_is_the_error() -> None:
    service = FakeService("refused")
    obs = await prober(service, OUTPUT, "34020000001370000002").run(DEV, MediaObservations())
    a = obs.broadcast
    assert service.started[0][1] == DEV  # several outputs: TargetID the device, all of them (§9.12)
    assert a is not None and (a.error, a.kind, a.over, a.row) == (REFUSED, "refused", True, None)
    assert service.stopped == []


async def test_a_broadcast_that_never_ends_is_stopped_at_the_bound() -> None:
    service = FakeService("hang")
    obs = await prober(service, OUTPUT).run(DEV, MediaObservations())
    a = obs.broadcast
    assert a is not None and "timed out" in a.error and a.kind == "timeout" and a.over
    assert service.stopped == ["b1"] and service.rows == {} and a.notes == ("stopped by the probe after 0.35 s",)


async def test_a_cancelled_probe_still_stops_the_broadcast() -> None:
    service = FakeService("hang")
    obs = MediaObservations()
    probe = asyncio.create_task(prober(service, OUTPUT).run(DEV, obs))
    for _ in range(1000):
        if service.rows.get("b1", {}).get("state") == "sending":
            break
        await asyncio.sleep(0)
    probe.cancel()  # the run's budget ran out mid-broadcast
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert service.stopped == ["b1"] and service.rows == {}
    assert obs.broadcast is None and obs.broadcast_skip == "the run's budget ran out during the broadcast (it was " \
                                                           "stopped)"  # fmt: skip


async def test_skips_no_output_no_service_busy_unreadable() -> None:
    service = FakeService()
    obs = await prober(service, "34020000001310000001").run(DEV, MediaObservations(broadcast_skip="not reached"))
    assert (obs.voice_output, obs.broadcast_skip, obs.broadcast) == (False, "", None)
    obs = await prober(None, OUTPUT).run(DEV, MediaObservations())
    assert (obs.voice_output, obs.broadcast_skip) == (True, BROADCAST_UNAVAILABLE)
    service.rows["b9"] = {"id": "b9", "device_id": DEV, "state": "sending"}  # an operator's broadcast
    obs = await prober(service, OUTPUT).run(DEV, MediaObservations())
    assert obs.broadcast_skip == "the device already has broadcast b9 (sending): not interrupted"
    assert service.started == [] and service.stopped == []

    async def broken(device_id: str) -> list[Any]:
        raise StoreError("database is locked")

    unreadable = BroadcastProber(service=service, channels=broken, mono=lambda: 0.0)
    obs = await unreadable.run(DEV, MediaObservations())
    assert obs.broadcast_skip == "channels unreadable (database is locked)"


class BroadcastPlatform(MediaPlatform):
    """A camera with a voice output and the fake broadcast service (it sends no SIP: the trace stays empty)."""

    def __init__(self) -> None:
        super().__init__()
        self.broadcasts = FakeService()

    async def list_channels(self, device_id: str) -> list[Any]:
        return await channels(OUTPUT)(device_id)


async def test_the_run_reaches_the_broadcast_service_and_judges_it() -> None:
    p = BroadcastPlatform()
    run = ConformanceRun(p, DEV, timeout=10, only=("media.broadcast",))
    report = await asyncio.wait_for(run.run(), 10)
    (result,) = report.results
    # the service says it went well, but the run's trace shows none of it: not a PASS on its word alone
    assert (result.verdict, result.why) == ("WARN", "the broadcast's Notify is not in the run's trace")
    assert p.broadcasts.started[0][:2] == (DEV, OUTPUT) and p.probed == [] and run.trace.also == {OUTPUT}
    assert any(e.startswith("RTP sent: 50 packets, 1 s of audio") for e in result.evidence), result.evidence
