"""``POST /api/devices/{id}/trace[?seconds=N]``: a device's SIP exchanges streamed live as NDJSON (one JSON object
per line, chunked), for ``gb28181 trace DEVICE`` (issue 9). Operator role (a POST), and audited when it ends.

Lines: ``{"type": "start", ...}`` first; ``{"type": "sip", ...}`` per message (gb28181.trace.Exchange);
``{"type": "dropped", "count": n}`` when the client read too slowly and the bounded queue overflowed;
``{"type": "idle"}`` every ``IDLE`` seconds of silence (it also tells a vanished client apart); ``{"type": "end",
"reason": ...}`` last, when ``seconds`` ran out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zoneinfo
from datetime import datetime
from typing import Any

from aiohttp import web

from gb28181.trace import Exchange

log = logging.getLogger("gb28181.admin")

IDLE = 10.0  # seconds without traffic before an idle line
MAX_SECONDS = 86400


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


def _row(exchange: Exchange, tz: zoneinfo.ZoneInfo) -> dict[str, Any]:
    row = exchange.as_json()
    row["time"] = datetime.fromtimestamp(exchange.at, tz).isoformat(timespec="milliseconds")
    return row


async def stream_trace(request: web.Request, platform: Any, tz: zoneinfo.ZoneInfo) -> web.StreamResponse:
    device_id = request.match_info["id"]
    if not (0 < len(device_id) <= 64 and device_id.isascii() and device_id.isalnum()):
        return web.json_response({"error": f"not a device ID: {device_id[:40]!r}"}, status=400)
    text = request.query.get("seconds")
    try:
        seconds = float(text) if text else None
    except ValueError:
        seconds = -1.0
    if seconds is not None and not 0 < seconds <= MAX_SECONDS:
        return web.json_response({"error": f"seconds must be a number in (0, {MAX_SECONDS}]"}, status=400)
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    try:
        watcher = platform.tracer.watch(device_id, wake.set)
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=503)
    deadline = loop.time() + (seconds or MAX_SECONDS)  # without --seconds: until the client goes (a day at most)
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson", "Cache-Control": "no-cache"})
    reason = "client gone"
    log.info("trace of %s started for %s", device_id, request.remote)
    try:
        await response.prepare(request)
        device = platform.devices.devices.get(device_id)
        await response.write(_line({
            "type": "start", "device_id": device_id, "known": device is not None,
            "registered": platform.devices.is_registered(device_id),
            "address": device.address if device is not None else None, "seconds": seconds,
        }))  # fmt: skip
        reason = "seconds"
        while (left := deadline - loop.time()) > 0:  # bounded by the deadline; a vanished client ends it sooner
            try:
                await asyncio.wait_for(wake.wait(), min(IDLE, left))
            except TimeoutError:
                if deadline - loop.time() > 0:
                    await response.write(_line({"type": "idle"}))
                continue
            wake.clear()
            exchanges, dropped = watcher.drain()
            if dropped:
                await response.write(_line({"type": "dropped", "count": dropped}))
            if exchanges:
                await response.write(b"".join(_line(_row(e, tz)) for e in exchanges))
        exchanges, dropped = watcher.drain()  # what arrived with the deadline
        if dropped:
            await response.write(_line({"type": "dropped", "count": dropped}))
        if exchanges:
            await response.write(b"".join(_line(_row(e, tz)) for e in exchanges))
        await response.write(_line({"type": "end", "reason": reason, "dropped": watcher.dropped_total}))
        await response.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        reason = "client gone"
        raise
    finally:
        platform.tracer.unwatch(watcher)
        log.info("trace of %s ended (%s; %d dropped)", device_id, reason, watcher.dropped_total)
    return response
