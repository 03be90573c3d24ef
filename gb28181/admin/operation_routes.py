"""The admin API's operation routes: PTZ, presets, records, record start/stop, reboot, guard (gb28181/operations.py) and
the channels CSV export/import (gb28181/channel_csv.py). ``AdminApi`` (gb28181/admin/app.py) inherits it; IO lives here
and in app.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from typing import Any

from aiohttp import web

from gb28181.admin.responses import error
from gb28181.admin.views import parse_time
from gb28181.channel_csv import CsvImportError, export_csv, parse_csv, plan
from gb28181.manscdp.ptz import DEFAULT_SPEED
from gb28181.operations import OperationError
from gb28181.sn import QueryError

log = logging.getLogger("gb28181.admin")

CSV_MAX_BYTES = 32 << 20  # a channels CSV import: about 200,000 channels


class OperationRoutes:
    """Mixed into ``AdminApi``; uses its ``platform``, ``tz`` and request helpers (``_json_body``, ``_who``, ...)."""

    # ------------------------------------------------------------------ operations
    def _operation_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/channels.csv", self.export_channels)
        app.router.add_post("/api/channels.csv", self.import_channels)
        app.router.add_post("/api/channels/{id}/ptz", self.ptz)
        app.router.add_get("/api/channels/{id}/presets", self.list_presets)
        app.router.add_post("/api/channels/{id}/presets", self.preset)
        app.router.add_get("/api/channels/{id}/records", self.records)
        app.router.add_post("/api/channels/{id}/record", self.record)
        app.router.add_post("/api/devices/{id}/reboot", self.reboot)
        app.router.add_post("/api/devices/{id}/guard", self.guard)

    async def _operate(self, action: Awaitable[dict[str, Any]]) -> web.Response:
        """Run one action; unknown/offline/bad targets and device failures become clear JSON errors."""
        try:
            return web.json_response(await action)
        except OperationError as exc:
            status = {"unknown": 404, "offline": 409, "invalid": 400}.get(exc.kind, 400)
            return web.json_response({"error": exc.reason, "kind": exc.kind}, status=status)
        except QueryError as exc:
            status = 409 if "not registered" in exc.reason else 504 if exc.kind == "timeout" else 502
            return web.json_response({"error": exc.reason, "kind": exc.kind}, status=status)

    @staticmethod
    def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        value = body.get(name, default)
        if value is ...:
            raise web.HTTPBadRequest(text=json.dumps({"error": f"missing {name}"}), content_type="application/json")
        if value is not default and (not isinstance(value, kind) or isinstance(value, bool)):
            raise web.HTTPBadRequest(
                text=json.dumps({"error": f"bad {name}: {value!r}"}), content_type="application/json"
            )
        return value

    async def ptz(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        action = self._field(body, "action", str)
        speed = self._field(body, "speed", int, DEFAULT_SPEED)
        duration = self._field(body, "duration", (int, float), None)
        return await self._operate(self.platform.operations.ptz(request.match_info["id"], action, speed, duration))

    async def list_presets(self, request: web.Request) -> web.Response:
        return await self._operate(self.platform.operations.presets(request.match_info["id"]))

    async def preset(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        action, number = self._field(body, "action", str), self._field(body, "number", int)
        return await self._operate(self.platform.operations.preset(request.match_info["id"], action, number))

    async def records(self, request: web.Request) -> web.Response:
        q, now = request.query, self.platform.wall()
        try:
            start = parse_time(q["start"], self.tz, now) if "start" in q else now - 86400
            end = parse_time(q["end"], self.tz, now) if "end" in q else now
        except ValueError as exc:
            return error(400, str(exc))
        return await self._operate(self.platform.operations.record_search(request.match_info["id"], start, end))

    async def record(self, request: web.Request) -> web.Response:
        action = self._field(await self._json_body(request), "action", str)
        return await self._operate(self.platform.operations.record(request.match_info["id"], action))

    async def reboot(self, request: web.Request) -> web.Response:
        return await self._operate(self.platform.operations.reboot(request.match_info["id"]))

    async def guard(self, request: web.Request) -> web.Response:
        action = self._field(await self._json_body(request), "action", str)
        return await self._operate(self.platform.operations.guard(request.match_info["id"], action))

    async def export_channels(self, request: web.Request) -> web.Response:
        # off the event loop: 50,000 channels take about a second to write, and SIP must not wait for it
        data = await asyncio.to_thread(export_csv, await self.platform.store.list_channels())
        return web.Response(body=data, content_type="text/csv", charset="utf-8")

    async def import_channels(self, request: web.Request) -> web.Response:
        """Check every row, then apply all override changes in one transaction (or, with ``dry_run``, only say
        what would change). The body is read here with its own cap: a CSV of every channel outgrows the JSON one."""
        data = bytearray()
        while chunk := await request.content.read(1 << 16):
            data += chunk
            if len(data) > CSV_MAX_BYTES:
                return error(413, f"CSV larger than {CSV_MAX_BYTES} bytes")
        dry_run = request.query.get("dry_run", "0").lower() in ("1", "true", "yes")
        try:
            rows, encoding = await asyncio.to_thread(parse_csv, bytes(data))  # pure; seconds for 50,000 rows
            channels = {(c.device_id, c.id): c for c in await self.platform.store.list_channels()}
            changes = await asyncio.to_thread(plan, rows, channels)
        except CsvImportError as exc:
            log.info("admin API: channels CSV refused: %d problem(s), first: %s", exc.total, exc.errors[:1])
            return web.json_response({"error": str(exc), "errors": exc.errors, "total": exc.total}, status=400)
        if changes and not dry_run:
            await self.platform.store.set_channel_overrides_many([(c.device_id, c.id, c.overrides) for c in changes])
            log.info("admin API: channels CSV applied: %d row(s), %d channel(s) changed", len(rows), len(changes))
        return web.json_response({
            "rows": len(rows), "changed": len(changes), "dry_run": dry_run, "applied": bool(changes) and not dry_run,
            "encoding": encoding, "changes": [c.json() for c in changes],
        })  # fmt: skip
