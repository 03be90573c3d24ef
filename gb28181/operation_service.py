"""Operator actions as the platform runs them (GB/T 28181-2022 §9.3 device control, §9.7 record search, A.2.4.8
presets): send, wait for the device's answer, run the timed PTZ stop. The protocol decisions are sans-IO in
gb28181/operations.py and gb28181/records.py; this is their async layer, built by the composition root
(gb28181/server.py) with the platform's store, correlator and send function, like gb28181/devices.py.
"""

from __future__ import annotations

import asyncio
import logging
import zoneinfo
from collections.abc import Awaitable, Callable
from typing import Any

from gb28181.devices import DeviceService
from gb28181.manscdp import ManscdpError
from gb28181.manscdp.codec import decode as decode_message
from gb28181.manscdp.control import PtzCmd
from gb28181.manscdp.messages import PresetResponse, RecordInfoResponse
from gb28181.operations import (
    OperationError,
    PtzPlan,
    Target,
    guard_command,
    preset_command,
    preset_query,
    presets_json,
    ptz_plan,
    reboot_command,
    record_command,
    resolve,
    responds,
)
from gb28181.records import RecordAssembler, RecordResult, RecordSearchError, result_json
from gb28181.records import build_query as build_record_query
from gb28181.sn import Correlator, QueryError
from registry.store import RegistryStore

log = logging.getLogger("gb28181.operations")


class OperationService:
    def __init__(
        self,
        *,
        store: RegistryStore,
        devices: DeviceService,
        correlator: Correlator,
        send: Callable[[str, str, bytes], Awaitable[None]],
        device_of: Callable[[str], Any],
        count: Callable[[str], None],
        mono: Callable[[], float],
        tz: zoneinfo.ZoneInfo,
        query_timeout: float,
        inter_packet_timeout: float,
    ) -> None:
        """``send(device_id, what, body)`` sends one MANSCDP MESSAGE where the device is (QueryError when it is
        refused or fails); ``device_of(device_id)`` is the registered device (QueryError otherwise)."""
        self.store = store
        self.devices = devices
        self.correlator = correlator
        self._send = send
        self._device_of = device_of
        self.count = count
        self.mono = mono
        self.tz = tz
        self.query_timeout = query_timeout
        self.records = RecordAssembler(inter_packet_timeout=inter_packet_timeout, first_packet_timeout=query_timeout)
        self._record_waiters: dict[tuple[str, int], asyncio.Future[RecordResult]] = {}
        # pending timed-PTZ stops by body DeviceID: the timer, and what it will send
        self._ptz_timers: dict[str, tuple[asyncio.Task[dict[str, Any]], Target, PtzCmd]] = {}

    def tick(self, now: float) -> None:
        """Called by the platform's clock: record searches that went quiet end now."""
        for result in self.records.due(now):
            self._records_done(result)

    def _status_of(self, device_id: str) -> str | None:
        device = self.devices.devices.get(device_id)
        return device.status if device is not None and self.devices.is_registered(device_id) else None

    async def _target(self, target_id: str, *, device_only: bool = False) -> Target:
        """The device a command for ``target_id`` (a device or a channel) goes to; OperationError when none is
        known, registered and online."""
        owners = [c.device_id for c in await self.store.find_channels(target_id)]
        return resolve(target_id, self._status_of, owners, device_only=device_only)

    async def ask(self, device_id: str, sn: int, cmd_type: str, answer_type: str, body: bytes) -> bytes:
        """Send one MANSCDP body and wait for the Response with its SN (A.1); silence past ``[sip] query_timeout``,
        a refusal and ``Result ERROR`` are QueryErrors."""
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.correlator.add(device_id, sn, answer_type, answer)
        try:
            async with asyncio.timeout(self.query_timeout):
                await self._send(device_id, cmd_type, body)
                return await answer
        except TimeoutError as exc:
            self.count("query:timeout")
            raise QueryError(
                f"device {device_id} did not answer {cmd_type} within {self.query_timeout:g} s", kind="timeout"
            ) from exc
        finally:
            self.correlator.cancel(device_id, sn)

    async def control(self, target: Target, command: Any) -> dict[str, Any]:
        """One DeviceControl (A.2.3.1) to ``target``; waits for the device's Result where one comes (RecordCmd,
        GuardCmd), else only for the SIP 200."""
        device = self._device_of(target.device_id)
        sn = self.correlator.new_sn(target.device_id)
        body = command.to_xml(sn, target.body_id, device.charset)
        what = f"DeviceControl {command.TAG}"
        self.count(f"control:{command.TAG}")
        out = {"device_id": target.device_id, "target": target.body_id, "command": command.TAG, "sn": sn}
        if responds(command):
            await self.ask(target.device_id, sn, what, "DeviceControl", body)
            return {**out, "result": "OK"}
        try:
            async with asyncio.timeout(self.query_timeout):
                await self._send(target.device_id, what, body)
        except TimeoutError as exc:
            raise QueryError(f"device {target.device_id} did not take {what}", kind="timeout") from exc
        return {**out, "result": None}

    async def ptz(self, target_id: str, verb: str, speed: int, duration: float | None) -> dict[str, Any]:
        """Move a camera; with ``duration``, stop it that many seconds later. The stop is the platform's timer
        (shielded: it goes out even when the caller gives up); a newer PTZ command to the channel supersedes it."""
        plan = ptz_plan(verb, speed, duration)
        target = await self._target(target_id)
        self._cancel_ptz_timer(target.body_id)
        out = await self.control(target, plan.move)
        out["ptz_cmd"] = plan.move.command.encode()
        if plan.stop is None:
            return out
        timer = asyncio.get_running_loop().create_task(self._ptz_stop(target, plan))
        self._ptz_timers[target.body_id] = (timer, target, plan.stop)
        timer.add_done_callback(lambda t: self._ptz_stop_done(target.body_id, t))
        try:
            stop = await asyncio.shield(timer)
        except asyncio.CancelledError:
            if not timer.cancelled():
                raise  # our caller went away; the stop still goes out
            return {**out, "stop": None, "superseded": True}
        return {**out, "stop": plan.stop.command.encode(), "stop_sn": stop["sn"], "duration": plan.duration}

    async def _ptz_stop(self, target: Target, plan: PtzPlan) -> dict[str, Any]:
        assert plan.stop is not None and plan.duration is not None
        await asyncio.sleep(plan.duration)
        return await self.control(target, plan.stop)

    def _ptz_stop_done(self, body_id: str, timer: asyncio.Task[dict[str, Any]]) -> None:
        if self._ptz_timers.get(body_id, (None,))[0] is timer:
            del self._ptz_timers[body_id]
        if not timer.cancelled() and (exc := timer.exception()) is not None:
            self.count("ptz:stop-failed")
            log.error("PTZ stop for %s not delivered: %s", body_id, exc)

    def _cancel_ptz_timer(self, body_id: str) -> None:
        timer, _, _ = self._ptz_timers.pop(body_id, (None, None, None))
        if timer is not None and not timer.done():
            log.info("PTZ command for %s supersedes the pending timed stop", body_id)
            timer.cancel()

    async def stop_moving(self) -> int:
        """At shutdown: the timed stops still pending go out now (a camera must not keep turning until someone
        notices). Returns how many were sent."""
        pending = list(self._ptz_timers.values())
        self._ptz_timers.clear()
        for timer, _, _ in pending:
            timer.cancel()
        results = await asyncio.gather(*(self.control(t, stop) for _, t, stop in pending), return_exceptions=True)
        for (_, target, _), result in zip(pending, results, strict=True):
            if isinstance(result, BaseException):
                log.error("PTZ stop for %s at shutdown not delivered: %s", target.body_id, result)
        return len(pending)

    async def presets(self, target_id: str) -> dict[str, Any]:
        """The channel's presets (PresetQuery, A.2.4.8 / A.2.6.10)."""
        target = await self._target(target_id)
        device = self._device_of(target.device_id)
        sn = self.correlator.new_sn(target.device_id)
        self.count("query:PresetQuery")
        data = await self.ask(target.device_id, sn, "PresetQuery", "PresetQuery",
                               preset_query(sn, target.body_id, device.charset))  # fmt: skip
        try:
            answer = decode_message(data).message
        except ManscdpError as exc:
            raise QueryError(f"unreadable PresetQuery answer: {exc.reason}", kind="error") from exc
        if not isinstance(answer, PresetResponse):
            raise QueryError("the PresetQuery answer is not a preset list", kind="error")
        return {"device_id": target.device_id, "channel_id": target.body_id, "presets": presets_json(answer)}

    async def preset(self, target_id: str, action: str, number: int) -> dict[str, Any]:
        """goto / set / delete a preset (PTZCmd 82 / 81 / 83, A.3.4)."""
        command = preset_command(action, number)
        target = await self._target(target_id)
        self._cancel_ptz_timer(target.body_id)
        return {**await self.control(target, command), "ptz_cmd": command.command.encode()}

    async def record(self, target_id: str, action: str) -> dict[str, Any]:
        command = record_command(action)  # the argument is checked before the target
        return await self.control(await self._target(target_id), command)

    async def guard(self, target_id: str, action: str) -> dict[str, Any]:
        command = guard_command(action)
        return await self.control(await self._target(target_id), command)

    async def reboot(self, device_id: str) -> dict[str, Any]:
        return await self.control(await self._target(device_id, device_only=True), reboot_command())

    async def record_search(self, target_id: str, start: float, end: float) -> dict[str, Any]:
        """The channel's recordings between two wall times (RecordInfo, §9.7): every packet of the answer, until
        SumNum distinct files, or partial after ``[catalog] inter_packet_timeout`` of silence."""
        target = await self._target(target_id)
        device = self._device_of(target.device_id)
        sn = self.correlator.new_sn(target.device_id)
        try:
            body = build_record_query(sn, target.body_id, start, end, self.tz, device.charset)
        except RecordSearchError as exc:
            raise OperationError(str(exc), kind="invalid") from exc
        key = (target.device_id, sn)
        done: asyncio.Future[RecordResult] = asyncio.get_running_loop().create_future()
        self._record_waiters[key] = done
        self.records.expect(target.device_id, sn, self.mono())
        self.count("query:RecordInfo")
        try:
            async with asyncio.timeout(self.query_timeout):
                await self._send(target.device_id, "RecordInfo", body)
            result = await done
        except TimeoutError as exc:
            raise QueryError(f"device {target.device_id} did not take the RecordInfo query", kind="timeout") from exc
        finally:
            self._record_waiters.pop(key, None)
            self.records.cancel(*key)
        if result.reason == "no answer":
            self.count("query:timeout")
            raise QueryError(
                f"device {target.device_id} did not answer RecordInfo within {self.query_timeout:g} s",
                kind="timeout",
            )
        return result_json(result, target.body_id)

    def on_records(self, user: str, body: bytes) -> None:
        try:
            message = decode_message(body).message
        except ManscdpError as exc:
            self.count("records:bad-xml")
            log.info("RecordInfo packet from %s unreadable: %s; raw %r", user, exc.reason, exc.raw[:300])
            return
        if not isinstance(message, RecordInfoResponse):
            return
        waiter = self._record_waiters.get((user, message.sn or -1))
        if not message.ok and waiter is not None:
            self.records.cancel(user, message.sn or -1)
            if not waiter.done():
                waiter.set_exception(QueryError(f"device answered RecordInfo {message.result}: "
                                                f"{message.reason or 'no reason given'}", kind="error"))  # fmt: skip
            return
        try:
            result = self.records.packet(user, message.sn, message.sum_num, message.items, self.mono())
        except KeyError:
            self.count("records:stray")
            log.info("RecordInfo SN %s from %s answers no search of ours", message.sn, user)
            return
        if result is not None:
            self._records_done(result)

    def _records_done(self, result: RecordResult) -> None:
        self.count("records:complete" if result.complete else f"records:{result.reason}")
        waiter = self._record_waiters.get((result.device_id, result.sn))
        if waiter is not None and not waiter.done():
            waiter.set_result(result)
