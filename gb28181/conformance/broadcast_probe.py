"""The conformance run's voice broadcast probe (issue 11; GB/T 28181-2016 §9.12, spec digest §7.11): when the device
lists a voice output (a 137 channel), one short broadcast of a generated tone through the platform's own
BroadcastService (gb28181/broadcast_service.py): Notify Broadcast, the device's Response and audio INVITE, our 200,
its ACK, our RTP, the BYE. The clause (clauses.py ``media_broadcast``) reads the SIP exchange from the run's trace;
this records what the service said and when.

It never leaves a broadcast running: on an error the service has ended it already; when the probe's own bound runs
out or the run's budget cancels it, it stops the broadcast (BYE, or nothing more once the device has not INVITEd)
before it returns or re-raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from array import array
from collections.abc import Awaitable, Callable
from typing import Any

from gb28181.broadcast import AUDIO_OUT, BroadcastError
from gb28181.conformance.model import BROADCAST_UNAVAILABLE, BroadcastAttempt, MediaObservations
from gb28181.media.wav import RATE, Pcm
from registry.store import StoreError

log = logging.getLogger("gb28181.conformance")

TONE_SECONDS = 1.0
TONE_HZ = 440
TONE_AMPLITUDE = 8000
BOUND_SLACK = 10.0  # s beyond the service's INVITE wait and the tone a broadcast may take before it is stopped
STOP_BUDGET = 5.0  # s beyond the service's own bound on stopping (its BYE answered or given up)


def tone(seconds: float = TONE_SECONDS) -> Pcm:
    """A 440 Hz sine at 8 kHz, 16-bit mono: the broadcast's audio, no file needed."""
    samples = array("h", (int(TONE_AMPLITUDE * math.sin(2 * math.pi * TONE_HZ * n / RATE))
                          for n in range(int(seconds * RATE))))  # fmt: skip
    return Pcm(samples, f"{seconds:g} s {TONE_HZ} Hz tone (generated)")


def voice_outputs(channels: list[Any]) -> list[str]:
    """The device's voice outputs: its 137 channels (Table E.1), as the catalog listed them."""
    return sorted(c.id for c in channels if c.kind == "audio-out" or (len(c.id) == 20 and c.id[10:13] == AUDIO_OUT))


class BroadcastProber:
    """``service`` is gb28181.broadcast_service.BroadcastService (None: the platform has none); ``channels(device)``
    the store's channel list; ``follow(id)`` adds a channel to the run's trace (a device may INVITE from its voice
    output's ID)."""

    def __init__(self, *, service: Any, channels: Callable[[str], Awaitable[list[Any]]], mono: Callable[[], float],
                 follow: Callable[[str], None] = lambda channel_id: None, seconds: float = TONE_SECONDS,
                 slack: float = BOUND_SLACK) -> None:
        self.service = service
        self.slack = slack
        self.channels = channels
        self.mono = mono
        self.follow = follow
        self.seconds = seconds
        self._cleanup: set[asyncio.Task[Any]] = set()  # stoppers that outlive a cancelled probe

    async def run(self, device_id: str, into: MediaObservations) -> MediaObservations:
        try:
            outputs = voice_outputs(await self.channels(device_id))
        except StoreError as exc:
            into.broadcast_skip = f"channels unreadable ({exc})"
            return into
        into.voice_output = bool(outputs)
        into.broadcast_skip = ""
        if not outputs:
            return into
        if self.service is None:
            into.broadcast_skip = BROADCAST_UNAVAILABLE
            return into
        busy = self._rows(device_id)
        if busy:
            into.broadcast_skip = (f"the device already has broadcast {busy[0]['id']} ({busy[0]['state']}): not "
                                   "interrupted")  # fmt: skip
            return into
        for output in outputs:
            self.follow(output)
        # the service's own choice (gb28181.broadcast.choose_target): the only output, or the device for several
        target = outputs[0] if len(outputs) == 1 else device_id
        into.broadcast_skip = "the run's budget ran out during the broadcast (it was stopped)"
        into.broadcast = await self._broadcast(device_id, target)
        into.broadcast_skip = ""
        log.info("conformance %s: broadcast to %s: %s", device_id, target, into.broadcast.error or "observed")
        return into

    async def _broadcast(self, device_id: str, target: str) -> BroadcastAttempt:
        bound = self.service.cfg.invite_timeout + self.seconds + self.slack
        started = self.mono()
        task = asyncio.get_running_loop().create_task(
            self.service.start(device_id, tone(self.seconds), channel=target, wait=True))
        row: dict[str, Any] | None = None
        error = kind = ""
        notes: list[str] = []
        try:
            async with asyncio.timeout(bound):
                row = await asyncio.shield(task)
        except BroadcastError as exc:  # refused, no INVITE, no ACK, audio failed: the service ended it
            error, kind = exc.reason, exc.kind
        except StoreError as exc:  # the device's channels unreadable: nothing was sent
            error, kind = f"channels unreadable ({exc})", "error"
        except TimeoutError:
            error, kind = f"not over within {bound:g} s (timed out); stopped", "timeout"
            notes.append(f"stopped by the probe after {bound:g} s")
        finally:
            over = await self._end(device_id, task)  # also when the run's budget cancelled the probe
        return BroadcastAttempt(target, self.seconds, started, self.mono(), row, error, kind, over, tuple(notes))

    def _rows(self, device_id: str) -> list[dict[str, Any]]:
        return [r for r in self.service.list() if r.get("device_id") == device_id and r.get("state") != "ended"]

    async def _end(self, device_id: str, task: asyncio.Task[Any]) -> bool:
        """Stop what is still running of this device's broadcast (shielded from the run's cancellation); True when
        nothing of it is left."""
        stopper = asyncio.get_running_loop().create_task(self._stop(device_id, task))
        self._cleanup.add(stopper)
        stopper.add_done_callback(self._cleanup.discard)
        try:
            async with asyncio.timeout(self.service.cfg.invite_timeout + STOP_BUDGET):
                await asyncio.shield(stopper)
        except TimeoutError:
            log.warning("conformance %s: the broadcast did not end in time", device_id)
        return task.done() and not self._rows(device_id)

    async def _stop(self, device_id: str, task: asyncio.Task[Any]) -> None:
        if not task.done() and not self._rows(device_id):
            task.cancel()  # not started yet (before its Notify), or just released: nothing to end
            with contextlib.suppress(asyncio.CancelledError, BroadcastError, StoreError):
                await task
        for row in self._rows(device_id):
            log.info("conformance %s: stopping broadcast %s (%s)", device_id, row["id"], row["state"])
            with contextlib.suppress(BroadcastError):  # it ended meanwhile
                await self.service.stop(row["id"])
        if not task.done():  # start(wait=True) returns once the stopped broadcast is released
            with contextlib.suppress(asyncio.CancelledError, BroadcastError, StoreError):
                await task
