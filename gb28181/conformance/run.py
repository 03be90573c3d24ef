"""A conformance run against one registered device (issue 11): arm a trace, wait for the device if it is not
registered yet (so that its REGISTER exchange is seen), probe it through the platform's own APIs, watch its
keepalives for as long as the time budget allows, undo what was changed, and judge the clauses.

This is the IO side (the clauses are pure). Everything is bounded by ``timeout``; the undo steps run even when
the budget runs out.

Media: the platform's ``async media_probe(device_id, channel_id, modes, into=MediaObservations)``
(gb28181/media_probe.py) runs the selected media modes on the device's first video channel (an IPC that listed no
catalog: the device itself) and fills ``into`` session by session, so that what finished before the budget ran out
is still judged. It ends every session it opened (BYE) before it returns or when it is cancelled, so that a run
never leaves a device streaming. A platform without it gets SKIP, "media sessions not available in this build".
Voice broadcast (``media.broadcast``) goes through the platform's ``broadcasts`` service
(gb28181/conformance/broadcast_probe.py) when the device lists a voice output, with or without a video channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gb28181.conformance.broadcast_probe import BroadcastProber
from gb28181.conformance.clauses import Clause, evaluate, select
from gb28181.conformance.model import (
    MEDIA_MODES,
    NO_VIDEO,
    MediaObservations,
    MediaSession,
    Observations,
    Probe,
    Result,
)
from gb28181.conformance.trace import Trace
from gb28181.operations import OperationError
from gb28181.sn import QueryError
from registry.store import StoreError

log = logging.getLogger("gb28181.conformance")

PRESET_CANDIDATES = range(250, 200, -1)  # a free preset number the run may set and delete again
UNDO_BUDGET = 10.0  # s the undo steps may take after the budget ran out

# Which probes a clause family needs (so that --only runs only what it judges).
_NEEDS: dict[str, tuple[str, ...]] = {
    "register.time-sync": ("status",),
    "keepalive.cadence": ("config",),
    "catalog": ("catalog",),
    "query.device-info": ("info",),
    "query.device-status": ("status",),
    "query.config-basic": ("config",),
    "query.presets": ("presets",),
    "query.record-info": ("records",),
    "control.ptz": ("ptz",),
    "control.record": ("status", "record"),
    "control.guard": ("status", "guard"),
    "control.reset-alarm": ("reset-alarm",),
    "response.cmd-type": ("info", "status", "config"),
    "subscribe.catalog": ("subscribe-catalog",),
    "subscribe.alarm": ("subscribe-alarm",),
    "subscribe.position": ("subscribe-position",),
}


def needed_probes(clauses: list[Clause]) -> set[str]:
    out: set[str] = set()
    for c in clauses:
        for prefix, probes in _NEEDS.items():
            if c.id == prefix or c.id.startswith(prefix + "."):
                out.update(probes)
    return out


@dataclass
class Report:
    device_id: str
    started_wall: float
    duration: float
    results: list[Result]
    notes: list[str] = field(default_factory=list)
    device: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out = {"PASS": 0, "WARN": 0, "FAIL": 0, "SKIP": 0}
        for r in self.results:
            out[r.verdict] += 1
        return out

    def summary(self) -> str:
        c = self.counts()
        return (f"{self.device_id}: {c['PASS']} pass, {c['WARN']} warn, {c['FAIL']} fail, {c['SKIP']} skip "
                f"in {self.duration:.1f} s")  # fmt: skip

    def json(self) -> dict[str, Any]:
        return {"device_id": self.device_id, "started": self.started_wall, "duration": round(self.duration, 3),
                "summary": self.summary(), "counts": self.counts(), "device": self.device, "notes": self.notes,
                "results": [r.json() for r in self.results]}  # fmt: skip


class ConformanceRun:
    """One run; ``platform`` is gb28181.server.Platform (duck-typed: its query/catalog/operation/subscribe APIs)."""

    def __init__(self, platform: Any, device_id: str, *, timeout: float, only: tuple[str, ...] = ()) -> None:
        self.platform = platform
        self.device_id = device_id
        self.timeout = timeout
        self.clauses = select(only)  # ValueError for an unknown clause: the caller's 400
        self.want = needed_probes(self.clauses)
        self.trace = Trace(device_id)
        self.probes: dict[str, Probe] = {}
        self.notes: list[str] = []
        self._undo: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
        self.media: MediaObservations | None = None

    async def run(self) -> Report:
        p = self.platform
        started, started_wall = p.mono(), p.wall()
        p.endpoint.arm(self.trace)
        log.info("conformance %s: run started (%d clauses, budget %g s)", self.device_id, len(self.clauses),
                 self.timeout)  # fmt: skip
        try:
            try:
                async with asyncio.timeout(self.timeout):
                    await self._probe_all(started)
            except TimeoutError:
                self.notes.append(f"the {self.timeout:g} s budget ran out; probes not run are SKIP")
            finally:
                await self._run_undo()
        finally:
            p.endpoint.disarm(self.trace)
        if self.trace.dropped:
            self.notes.append(f"trace kept the last {len(self.trace.entries)} messages ({self.trace.dropped} dropped)")
        device = p.devices.devices.get(self.device_id)
        obs = Observations(
            device_id=self.device_id, platform_id=p.cfg.sip.id, entries=list(self.trace.entries), probes=self.probes,
            started=started, ended=p.mono(), wall=p.wall(), utc_offset=_utc_offset(p.tz, p.wall()),
            gb_version=(device.gb_version if device is not None else "") or "", min_expires=p.cfg.sip.min_expires,
            media=self.media,
        )  # fmt: skip
        info = {}
        if device is not None:
            info = {"transport": device.transport, "address": device.address, "user_agent": device.user_agent,
                    "gb_version": device.gb_version, "manufacturer": device.manufacturer, "model": device.model,
                    "firmware": device.firmware}  # fmt: skip
        return Report(self.device_id, started_wall, obs.ended - started, evaluate(obs, self.clauses), self.notes, info)

    # ------------------------------------------------------------------ probes
    async def _probe(self, name: str, call: Callable[[], Awaitable[Any]]) -> Probe:
        p = self.platform
        t0 = p.mono()
        try:
            value = await call()
            probe = Probe(name, t0, p.mono() - t0, True, value=value)
        except (QueryError, OperationError) as exc:  # the probe's outcome; the run goes on
            reason = getattr(exc, "reason", None) or str(exc)
            probe = Probe(name, t0, p.mono() - t0, False, reason, getattr(exc, "kind", "error") or "error")
        self.probes[name] = probe
        log.info("conformance %s: probe %s %s in %.2f s%s", self.device_id, name, "ok" if probe.ok else "failed",
                 probe.elapsed, f" ({probe.error})" if probe.error else "")  # fmt: skip
        return probe

    async def _probe_all(self, started: float) -> None:
        p, dev = self.platform, self.device_id
        media_probe = getattr(p, "media_probe", None)
        media_wanted = media_probe is not None and any(c.media for c in self.clauses)
        if media_wanted:
            self.media = MediaObservations(skipped="not reached within the run's budget",
                                           broadcast_skip="not reached within the run's budget")  # fmt: skip
        if not p.devices.is_registered(dev):
            self.notes.append("waited for the device to register")
            for _ in range(int(self.timeout * 5) + 1):  # bounded by the run's budget as well
                if p.devices.is_registered(dev):
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # its first keepalive and the platform's own post-registration queries
        if not p.devices.is_registered(dev):
            self.notes.append("the device is not registered: nothing to probe")
            if self.media is not None:
                self.media.skipped = "the device is not registered"
            return
        want = self.want
        for verb in ("config", "info"):
            if verb in want:
                await self._probe(verb, lambda v=verb: p.query(dev, v))
        if "status" in want:
            await self._probe("status", self._status)
        if "catalog" in want:
            await self._probe("catalog", lambda: p.catalog_sync(dev, wait=True))
        media_modes = tuple(m for m in MEDIA_MODES if any(c.id == f"media.{m}" for c in self.clauses))
        channel_probes = want & {"presets", "records", "ptz", "record"}
        target = await self._video_target() if channel_probes or media_wanted else None
        if "presets" in want and target:
            await self._presets(target)
        if "records" in want and target:
            now = p.wall()
            await self._probe("records", lambda: p.operations.record_search(target, now - 86400, now))
        if "ptz" in want and target:
            await self._probe("ptz", lambda: p.operations.ptz(target, "left", 1, 0.3))
        if "record" in want and target:
            await self._record(target)
        if "guard" in want:
            await self._guard()
        if "reset-alarm" in want:
            await self._probe("reset-alarm", lambda: p.reset_alarm(dev, "conformance"))
        if media_wanted and self.media is not None:
            self.media.skipped = ""
            # an IPC (type 131/132, App. E) that listed no catalog streams under its own ID
            media_target = target or (dev if dev[10:13] in ("131", "132") else None)
            if media_modes and media_target is None:
                self.media.sessions.update({m: MediaSession(m, skipped=NO_VIDEO) for m in media_modes})
            elif media_modes:
                await media_probe(dev, media_target, media_modes, into=self.media)
            if any(c.id == "media.broadcast" for c in self.clauses):  # a voice output needs no video channel
                await BroadcastProber(service=getattr(p, "broadcasts", None), channels=self._channels, mono=p.mono,
                                      follow=self.trace.also.add).run(dev, self.media)  # fmt: skip
        for kind in ("catalog", "alarm", "position"):
            if f"subscribe-{kind}" in want:
                before = p.subs.get(dev, kind)
                if before is None:
                    self.notes.append(f"the {kind} subscription the run started stays with the platform, which "
                                      "refreshes it")  # fmt: skip
                ok = await self._probe(f"subscribe-{kind}", lambda k=kind: p.subscribe(dev, k))
                if ok.ok:
                    await self._probe(f"subscribe-{kind}-refresh", lambda k=kind: p.subscribe(dev, k))
        await self._watch_keepalives(started)

    async def _status(self) -> dict[str, Any]:
        value = dict(await self.platform.query(self.device_id, "status"))
        value["_wall"] = self.platform.wall()
        return value

    async def _channels(self, device_id: str) -> list[Any]:
        return await self.platform.store.list_channels(device_id=device_id)

    async def _video_target(self) -> str | None:
        """The device's first video channel (the device itself for a camera listing only itself)."""
        try:
            channels = await self.platform.store.list_channels(device_id=self.device_id)
        except StoreError as exc:  # channel probes are then skipped
            self.notes.append(f"channels unreadable ({exc}); channel probes skipped")
            return None
        videos = sorted(c.id for c in channels if c.kind == "video")
        if not videos:
            self.notes.append("no video channel known: preset, record, PTZ and RecordInfo probes skipped")
            return None
        return videos[0]

    async def _presets(self, target: str) -> None:
        ops = self.platform.operations
        listed = await self._probe("presets", lambda: ops.presets(target))
        if not listed.ok:
            return
        taken = {x.get("preset") for x in listed.value.get("presets", [])}
        number = next((n for n in PRESET_CANDIDATES if n not in taken), None)
        if number is None:
            return
        done = await self._probe("preset-set", lambda: ops.preset(target, "set", number))
        if done.ok:
            self.probes["preset-set"] = Probe("preset-set", done.started, done.elapsed, True, value=number)
            self._undo.append((f"delete preset {number} on {target}", lambda: ops.preset(target, "delete", number)))
            await self._probe("presets-after-set", lambda: ops.presets(target))

    async def _record(self, target: str) -> None:
        ops = self.platform.operations
        status = self.probes.get("status")
        was_on = status is not None and status.ok and str(status.value.get("Record", "")).upper() == "ON"
        done = await self._probe("record", lambda: ops.record(target, "start"))
        if done.ok and not was_on:
            self._undo.append((f"stop recording on {target}", lambda: ops.record(target, "stop")))

    async def _guard(self) -> None:
        ops, dev = self.platform.operations, self.device_id
        status = self.probes.get("status")
        items = status.value.get("Alarmstatus") or status.value.get("AlarmStatus") if status and status.ok else None
        armed = "ONDUTY" in str(items or "")
        done = await self._probe("guard", lambda: ops.guard(dev, "arm"))
        if done.ok and not armed:
            self._undo.append((f"disarm {dev}", lambda: ops.guard(dev, "disarm")))

    async def _watch_keepalives(self, started: float) -> None:
        """Watch keepalives until three were seen, or two intervals passed, or the budget runs out."""
        if not any(c.id.startswith("keepalive.") for c in self.clauses):
            return
        device = self.platform.devices.devices.get(self.device_id)
        interval = getattr(device, "keepalive_interval", None) or 60
        deadline = self.platform.mono() + 2.5 * interval + 1
        for _ in range(int((2.5 * interval + 1) * 5) + 1):
            seen = sum(1 for e in self.trace.entries if e.direction == "in" and b"Keepalive" in e.message.body)
            if seen >= 3 or self.platform.mono() >= deadline:
                return
            await asyncio.sleep(0.2)

    async def _run_undo(self) -> None:
        for what, call in reversed(self._undo):
            name = f"{what.split()[0]}-undo"
            try:
                async with asyncio.timeout(UNDO_BUDGET):
                    await call()
                self.notes.append(f"undone: {what}")
            except (QueryError, OperationError, TimeoutError) as exc:  # reported; the next undo still runs
                reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
                self.notes.append(f"could not undo: {what} ({reason})")
                log.warning("conformance %s: could not undo %s: %s", self.device_id, what, reason)
                key = {"delete": "preset-set", "stop": "record", "disarm": "guard"}.get(name.split("-")[0])
                if key:
                    self.probes[f"{key}-undo"] = Probe(f"{key}-undo", 0.0, 0.0, False, reason, "error")
        self._undo.clear()


def _utc_offset(tz: Any, wall: float) -> float:
    offset = datetime.fromtimestamp(wall, tz).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0
