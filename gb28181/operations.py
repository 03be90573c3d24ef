"""Operator actions on devices and channels (GB/T 28181-2022 §9.3 device control, A.2.3.1; A.2.4.8 PresetQuery):
which device a command goes to, which body it carries, whether the device answers it. No IO, no clock: the
platform (gb28181/server.py) sends, waits and runs the PTZ stop timer.

Addressing (§9.3.2): a DeviceControl for a channel is a MESSAGE to the channel's device whose body DeviceID is the
channel ID; for a device, both are the device ID. Answers (spec digest §7.5): PTZCmd and TeleBoot get none beyond
the SIP 200; RecordCmd and GuardCmd get a ``Response DeviceControl`` with ``Result`` (``RESPONDS``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gb28181.manscdp.codec import encode
from gb28181.manscdp.control import GuardCmd, PtzCmd, RecordCmd, TeleBoot
from gb28181.manscdp.messages import PresetQuery, PresetResponse
from gb28181.manscdp.ptz import VERBS, PtzError, from_verb, preset_delete, preset_goto, preset_set, stop_for

PRESET_ACTIONS = ("goto", "set", "delete")
MAX_PTZ_DURATION = 300.0  # s: a timed move longer than this is a mistake, not a plan


class OperationError(Exception):
    """An action that cannot be sent: unknown or offline target, bad argument. ``kind``: "unknown", "offline",
    "invalid" (the admin API maps them to 404, 409 and 400)."""

    def __init__(self, reason: str, *, kind: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class Target:
    device_id: str  # where the MESSAGE goes (a registered device)
    body_id: str  # the body's DeviceID: the channel, or the device itself

    @property
    def is_channel(self) -> bool:
        return self.body_id != self.device_id


def resolve(
    target_id: str,
    status_of: Callable[[str], str | None],
    owners: Iterable[str],
    *,
    device_only: bool = False,
) -> Target:
    """The device to send to for ``target_id``.

    ``status_of(device_id)`` is "online"/"offline" for a registered device, None otherwise; ``owners`` are the
    devices whose catalog lists ``target_id`` as a channel. A registered device ID addresses itself (an IPC is
    its own channel); a channel goes through the first of its devices that is online (an IPC registered
    directly and through an NVR has two). ``device_only``: the command addresses devices (TeleBoot)."""
    if not target_id or len(target_id) > 64 or not target_id.isascii() or not target_id.isalnum():
        raise OperationError(f"not a device or channel ID: {target_id[:80]!r}", kind="invalid")
    own = status_of(target_id)
    if own == "online":
        return Target(target_id, target_id)
    holders = sorted(set(owners) - {target_id})
    if device_only:
        if own is not None:
            raise OperationError(f"device {target_id} is offline", kind="offline")
        where = f" (it is a channel of {', '.join(holders)})" if holders else ""
        raise OperationError(f"no registered device {target_id}{where}", kind="unknown")
    for device_id in holders:
        if status_of(device_id) == "online":
            return Target(device_id, target_id)
    if own is not None:
        raise OperationError(f"device {target_id} is offline", kind="offline")
    if holders:
        raise OperationError(
            f"channel {target_id} is on {', '.join(holders)}, none of them online and registered", kind="offline"
        )
    raise OperationError(f"no device or channel {target_id}", kind="unknown")


# ------------------------------------------------------------------------------------------- PTZ


@dataclass(frozen=True)
class PtzPlan:
    """Send ``move``; when ``duration`` is set, send ``stop`` that many seconds later (the platform's timer)."""

    move: PtzCmd
    stop: PtzCmd | None
    duration: float | None


def ptz_plan(verb: str, speed: int, duration: float | None) -> PtzPlan:
    """A PTZ verb (left|right|up|down|zoom-in|zoom-out|focus-near|focus-far|iris-open|iris-close|stop) at
    ``speed`` 0-255, for ``duration`` seconds or until the next command. Focus and iris moves are ended by the FI
    stop (A.3.3), the others by the PTZ stop (A.3.2)."""
    if verb not in VERBS:
        raise OperationError(f"unknown PTZ action {verb!r}; expected one of {', '.join(VERBS)}", kind="invalid")
    try:
        move = from_verb(verb, speed)
    except PtzError as exc:
        raise OperationError(str(exc), kind="invalid") from exc
    if duration is None:
        return PtzPlan(PtzCmd(move), None, None)
    if verb == "stop":
        raise OperationError("stop takes no duration", kind="invalid")
    if not isinstance(duration, int | float) or not math.isfinite(duration) or not 0 < duration <= MAX_PTZ_DURATION:
        raise OperationError(f"duration must be more than 0 and at most {MAX_PTZ_DURATION:g} s", kind="invalid")
    return PtzPlan(PtzCmd(move), PtzCmd(stop_for(verb)), float(duration))


def preset_command(action: str, number: int) -> PtzCmd:
    """goto / set / delete preset ``number`` (1-255): PTZCmd 82 / 81 / 83 (A.3.4)."""
    build = {"goto": preset_goto, "set": preset_set, "delete": preset_delete}.get(action)
    if build is None:
        raise OperationError(f"unknown preset action {action!r}; expected one of goto, set, delete", kind="invalid")
    if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= 255:
        raise OperationError(f"preset number must be 1-255, got {number!r}", kind="invalid")
    return PtzCmd(build(number))


def preset_query(sn: int, channel_id: str, charset: str) -> bytes:
    return encode(PresetQuery(sn=sn, device_id=channel_id), charset=charset)


def presets_json(response: PresetResponse) -> list[dict[str, Any]]:
    """The presets a PresetQuery answer lists (A.2.6.10), by number; items without a number are dropped."""
    found = {i.preset_id: i.preset_name for i in response.items if i.preset_id is not None}
    return [{"preset": n, "name": name} for n, name in sorted(found.items())]


# ------------------------------------------------------------------------------------------- other controls


def record_command(action: str) -> RecordCmd:
    """start / stop recording on the device (RecordCmd Record / StopRecord)."""
    if action not in ("start", "stop"):
        raise OperationError(f"record action must be start or stop, got {action!r}", kind="invalid")
    return RecordCmd(start=action == "start")


def guard_command(action: str) -> GuardCmd:
    """arm / disarm (GuardCmd SetGuard / ResetGuard)."""
    if action not in ("arm", "disarm"):
        raise OperationError(f"guard action must be arm or disarm, got {action!r}", kind="invalid")
    return GuardCmd(arm=action == "arm")


def reboot_command() -> TeleBoot:
    return TeleBoot()


def responds(command: Any) -> bool:
    """Whether the device answers this control with a Response DeviceControl Result (spec digest §7.5)."""
    return bool(getattr(command, "RESPONDS", False))
