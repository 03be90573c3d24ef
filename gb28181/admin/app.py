"""aiohttp admin API. Routes (all JSON; /health needs no token, everything under /api needs
``Authorization: Bearer <token>``):

GET /health · GET /api/devices[?status=online|offline] · GET/PATCH/DELETE /api/devices/{id} ·
POST /api/devices · GET /api/events[?device=&since=&until=&limit=] · GET /api/stats ·
GET /api/subscriptions[?device=] · POST /api/devices/{id}/subscriptions/{catalog|alarm|position} ·
GET /api/alarms[?device=&since=&limit=] · POST /api/alarms/{id}/ack · POST /api/devices/{id}/alarm-reset ·
GET /api/positions[?device=]

Operations (a channel, or a device that is its own channel): POST /api/channels/{id}/ptz {action, speed,
duration} · GET /api/channels/{id}/presets · POST /api/channels/{id}/presets {action, number} ·
GET /api/channels/{id}/records?start=&end= · POST /api/channels/{id}/record {action} ·
POST /api/devices/{id}/reboot · POST /api/devices/{id}/guard {action} · GET /api/channels.csv ·
POST /api/channels.csv[?dry_run=1] (text/csv body)

Hardening (issue 9): GET /api/audit[?since=&limit=] (operator actions: every non-GET request under /api is
recorded with who/when/what/status, see gb28181.admin.audit) · GET /api/lockouts (keys the guard locked out)
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import logging
import zoneinfo
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gb28181.admin import audit
from gb28181.admin.views import apply_settings, device_json, event_json, parse_time
from gb28181.channel_csv import CsvImportError, export_csv, parse_csv, plan
from gb28181.channels import channel_json
from gb28181.ids import GbId, InvalidId
from gb28181.manscdp.ptz import DEFAULT_SPEED
from gb28181.notifications import alarm_json, position_json
from gb28181.operations import OperationError
from gb28181.sn import QueryError
from registry.models import VIDEO, Device
from registry.store import StoreError

log = logging.getLogger("gb28181.admin")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CSV_MAX_BYTES = 32 << 20  # a channels CSV import: about 200,000 channels


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


# What each role may do (ARCHITECTURE.md: [[admin.tokens]] roles). Reads are for everyone; an operator may
# change how known devices are handled and ask them things (catalog syncs); only an admin decides which devices
# exist (adding and removing them).
ROLE_METHODS = {
    "viewer": frozenset({"GET", "HEAD"}),
    "operator": frozenset({"GET", "HEAD", "PATCH", "POST"}),
    "admin": frozenset({"GET", "HEAD", "PATCH", "POST", "DELETE"}),
}


def _admin_only(request: web.Request) -> bool:
    return request.method == "DELETE" or (request.method == "POST" and request.path.rstrip("/") == "/api/devices")


class AdminApi:
    def __init__(
        self,
        platform: Any,
        token: str,
        tz: zoneinfo.ZoneInfo,
        tokens: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        """``token`` is the admin token; ``tokens`` maps further tokens to (name, role)."""
        self.platform = platform  # gb28181.server.Platform (duck-typed to keep this module small)
        self.tokens: dict[str, tuple[str, str]] = {**(tokens or {}), token: ("admin", "admin")}
        self.tz = tz

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth, self._errors], client_max_size=64 * 1024)
        app.router.add_get("/health", self.health)
        app.router.add_get("/api/devices", self.list_devices)
        app.router.add_post("/api/devices", self.add_device)
        app.router.add_get("/api/devices/{id}", self.show_device)
        app.router.add_patch("/api/devices/{id}", self.set_device)
        app.router.add_delete("/api/devices/{id}", self.remove_device)
        app.router.add_get("/api/devices/{id}/{verb:info|status|config}", self.query_device)
        app.router.add_post("/api/devices/{id}/catalog", self.catalog_sync)
        app.router.add_get("/api/channels", self.list_channels)
        app.router.add_patch("/api/channels/{device}/{id}", self.set_channel)
        app.router.add_get("/api/events", self.events)
        app.router.add_get("/api/stats", self.stats)
        app.router.add_get("/api/audit", self.list_audit)
        app.router.add_get("/api/lockouts", self.list_lockouts)
        self._add_notification_routes(app)
        self._operation_routes(app)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/api/"):
            header = request.headers.get("Authorization", "")
            scheme, _, given = header.partition(" ")
            who = self._identify(given.strip()) if scheme.lower() == "bearer" else None
            if who is None:
                log.info(
                    "admin API: refused %s %s from %s (bad or missing token)",
                    request.method,
                    request.path,
                    request.remote,
                )
                return _error(401, "missing or wrong bearer token")
            name, role = who
            if request.method not in ROLE_METHODS.get(role, frozenset()) or (_admin_only(request) and role != "admin"):
                log.info("admin API: refused %s %s for %s (role %s)", request.method, request.path, name, role)
                refused = _error(403, f"the {role} role may not {request.method} {request.path}")
                if request.method not in ("GET", "HEAD"):
                    await self._audit(request, name, role, refused.status)
                return refused
            if request.method not in ("GET", "HEAD"):
                log.info("admin API: %s %s by %s (%s)", request.method, request.path, name, role)
                return await self._audited(request, handler, name, role)
        return await handler(request)

    async def _audited(self, request: web.Request, handler: Handler, name: str, role: str) -> web.StreamResponse:
        """Run an operator action and record it in the audit log, however it ends."""
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            await self._audit(request, name, role, status)

    async def _audit(self, request: web.Request, name: str, role: str, status: int) -> None:
        route = request.match_info.route.resource
        body = b""
        kind = request.content_type or ""
        if "json" in kind:
            try:
                body = await request.read()  # cached when the handler read it; bounded by client_max_size
            except (web.HTTPException, OSError, ValueError):
                body = b""
        elif request.content_length:
            body = f"({request.content_length} bytes {kind})".encode()
            kind = "text/plain"
        record = audit.entry(
            at=self.platform.wall(), who=name, role=role, method=request.method,
            route=route.canonical if route is not None else request.path, match=dict(request.match_info),
            query=request.query_string, body=body, content_type=kind, status=status, remote=request.remote or "",
        )  # fmt: skip
        try:
            await self.platform.store.append_audit(record)
        except (StoreError, ValueError) as exc:  # the action happened; losing its record must not undo it
            log.error("admin API: audit entry not stored (%s): %s", exc, record)

    async def list_audit(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            since = parse_time(q["since"], self.tz, self.platform.wall()) if q.get("since") else None
            limit = int(q.get("limit", "1000"))
        except ValueError as exc:
            return _error(400, str(exc))
        if not 1 <= limit <= 100_000:
            return _error(400, "limit must be between 1 and 100000")
        rows = await self.platform.store.list_audit(since=since, limit=limit)
        return web.json_response([audit.audit_json(e, self.tz) for e in rows])

    async def list_lockouts(self, request: web.Request) -> web.Response:
        mono, wall = self.platform.mono(), self.platform.wall()
        rows = self.platform.guard.lockouts(mono)
        return web.json_response([audit.lockout_json(lo, mono, wall, self.tz) for lo in rows])

    def _identify(self, given: str) -> tuple[str, str] | None:
        """The (name, role) of a bearer token; every candidate is compared in constant time."""
        found = None
        for token, who in self.tokens.items():
            if hmac.compare_digest(given.encode(), token.encode()):
                found = who
        return found

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except StoreError as exc:
            log.error("admin API: storage error on %s %s: %s", request.method, request.path, exc)
            return _error(503, f"storage error: {exc}")

    @property
    def devices(self) -> Any:
        return self.platform.devices

    async def _json_body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise web.HTTPBadRequest(
                text=json.dumps({"error": f"body is not JSON: {exc}"}), content_type="application/json"
            ) from exc
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(
                text=json.dumps({"error": "body must be a JSON object"}), content_type="application/json"
            )
        return body

    async def health(self, request: web.Request) -> web.Response:
        devs = self.devices.devices.values()
        return web.json_response(
            {
                "status": "ok",
                "sip_id": self.platform.cfg.sip.id,
                "devices": len(self.devices.devices),
                "online": sum(1 for d in devs if d.status == "online"),
            }
        )

    async def list_devices(self, request: web.Request) -> web.Response:
        status = request.query.get("status")
        if status not in (None, "online", "offline"):
            return _error(400, "status must be online or offline")
        now = self.platform.wall()
        counts = Counter(c.device_id for c in await self.platform.store.list_channels() if c.kind == VIDEO)
        out = [
            device_json(d, self.tz, now, channel_count=counts[d.id])
            for _, d in sorted(self.devices.devices.items())
            if status is None or d.status == status
        ]
        return web.json_response(out)

    def _device_or_404(self, device_id: str) -> Device:
        device = self.devices.snapshot(device_id)
        if device is None:
            raise web.HTTPNotFound(
                text=json.dumps({"error": f"no device {device_id}"}), content_type="application/json"
            )
        return device

    async def show_device(self, request: web.Request) -> web.Response:
        device = self._device_or_404(request.match_info["id"])
        count = await self.platform.store.count_video_channels(device.id)
        return web.json_response(device_json(device, self.tz, self.platform.wall(), channel_count=count))

    async def add_device(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        device_id = str(body.get("id", ""))
        try:
            GbId.parse(device_id)
        except InvalidId as exc:
            return _error(400, str(exc))
        if self.devices.snapshot(device_id) is not None:
            return _error(409, f"device {device_id} already exists (use device set)")
        device = Device(device_id, provisioned=True, created_at=self.platform.wall())
        try:
            apply_settings(device, body)
        except ValueError as exc:
            return _error(400, str(exc))
        device = await self.devices.put(device)
        log.info("admin API: device %s added", device_id)
        return web.json_response(device_json(device, self.tz, self.platform.wall()), status=201)

    async def set_device(self, request: web.Request) -> web.Response:
        device = self._device_or_404(request.match_info["id"])
        body = await self._json_body(request)
        try:
            apply_settings(device, body)
        except ValueError as exc:
            return _error(400, str(exc))
        device = dataclasses.replace(device, provisioned=True)
        device = await self.devices.put(device)
        log.info("admin API: device %s set %s", device.id, sorted(k for k in body if k != "password"))
        return web.json_response(device_json(device, self.tz, self.platform.wall()))

    async def remove_device(self, request: web.Request) -> web.Response:
        device_id = request.match_info["id"]
        if not await self.devices.remove(device_id):
            return _error(404, f"no device {device_id}")
        log.info("admin API: device %s removed", device_id)
        return web.json_response({"removed": device_id})

    async def query_device(self, request: web.Request) -> web.Response:
        """Ask the device itself (DeviceInfo / DeviceStatus / ConfigDownload BasicParam) and return its answer."""
        device_id, verb = request.match_info["id"], request.match_info["verb"]
        self._device_or_404(device_id)
        try:
            result = await self.platform.query(device_id, verb)
        except QueryError as exc:
            status = {"refused": 502, "timeout": 504, "transport": 502, "error": 502}.get(exc.kind, 502)
            if "not registered" in exc.reason:
                status = 409
            return web.json_response({"error": exc.reason, "kind": exc.kind}, status=status)
        return web.json_response(result)

    async def catalog_sync(self, request: web.Request) -> web.Response:
        """Start a catalog sync; with ``?wait=1`` answer once it committed (complete or partial)."""
        device_id = request.match_info["id"]
        self._device_or_404(device_id)
        wait = request.query.get("wait", "0").lower() in ("1", "true", "yes")
        try:
            result = await self.platform.catalog_sync(device_id, wait=wait)
        except QueryError as exc:
            status = 409 if "not registered" in exc.reason else 504 if exc.kind == "timeout" else 502
            return web.json_response({"error": exc.reason, "kind": exc.kind}, status=status)
        return web.json_response(result, status=200 if wait else 202)

    async def list_channels(self, request: web.Request) -> web.Response:
        q = request.query
        status = q.get("status")
        if status not in (None, "online", "offline"):
            return _error(400, "status must be online or offline")
        channels = await self.platform.store.list_channels(
            device_id=q.get("device") or None, status=status, civil_code_prefix=q.get("civil_code") or None
        )
        return web.json_response([channel_json(c) for c in channels])

    async def set_channel(self, request: web.Request) -> web.Response:
        """Local overrides of what a channel reported (DECISIONS.md: Overrides): name, longitude, latitude,
        civil_code, point_class; null clears one."""
        body = await self._json_body(request)
        allowed = {"name", "longitude", "latitude", "civil_code", "point_class"}
        unknown = set(body) - allowed
        if unknown:
            return _error(
                400, f"unknown settings: {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(allowed))})"
            )
        try:
            changed = await self.platform.store.set_channel_overrides(
                request.match_info["device"], request.match_info["id"], **{f"override_{k}": v for k, v in body.items()}
            )
        except KeyError:
            return _error(404, f"no channel {request.match_info['id']} on device {request.match_info['device']}")
        except (ValueError, TypeError) as exc:
            return _error(400, str(exc))
        return web.json_response(channel_json(changed))

    async def events(self, request: web.Request) -> web.Response:
        q = request.query
        now = self.platform.wall()
        try:
            since = parse_time(q["since"], self.tz, now) if "since" in q else None
            until = parse_time(q["until"], self.tz, now) if "until" in q else None
            limit = int(q.get("limit", "1000"))
        except ValueError as exc:
            return _error(400, str(exc))
        if not 1 <= limit <= 100_000:
            return _error(400, "limit must be between 1 and 100000")
        await self.devices.flush()
        events = await self.devices.store.list_events(subject=q.get("device"), since=since, until=until, limit=limit)
        return web.json_response([event_json(e, self.tz) for e in events])

    async def stats(self, request: web.Request) -> web.Response:
        devs = list(self.devices.devices.values())
        online = sum(1 for d in devs if d.status == "online")
        now = self.platform.wall()
        return web.json_response(
            {
                "devices": len(devs),
                "online": online,
                "offline": len(devs) - online,
                "registered": sum(1 for d in devs if d.registered(now)),
                "counters": dict(sorted({**self.platform.counters, **self.devices.counters}.items())),
                "sip": dict(self.platform.endpoint.stats),
                "lockouts": len(self.platform.guard.lockouts(self.platform.mono())),
            }
        )

    # ------------------------------------------------------------------ subscriptions, alarms, positions
    def _add_notification_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/subscriptions", self.list_subscriptions)
        app.router.add_post("/api/devices/{id}/subscriptions/{kind:catalog|alarm|position}", self.subscribe)
        app.router.add_get("/api/alarms", self.list_alarms)
        app.router.add_post(r"/api/alarms/{alarm_id:\d+}/ack", self.ack_alarm)
        app.router.add_post("/api/devices/{id}/alarm-reset", self.reset_alarm)
        app.router.add_get("/api/positions", self.list_positions)

    def _who(self, request: web.Request) -> str:
        """The name of the token that made this (already authenticated) request, for records of who acted."""
        given = request.headers.get("Authorization", "").partition(" ")[2].strip()
        who = self._identify(given)
        return who[0] if who is not None else ""

    @staticmethod
    def _query_error(exc: QueryError) -> web.Response:
        status = 409 if "not registered" in exc.reason else 504 if exc.kind == "timeout" else 400 if (
            exc.kind == "error") else 502  # fmt: skip
        return web.json_response({"error": exc.reason, "kind": exc.kind}, status=status)

    async def list_subscriptions(self, request: web.Request) -> web.Response:
        return web.json_response(self.platform.subscriptions(request.query.get("device") or None))

    async def subscribe(self, request: web.Request) -> web.Response:
        """Start (or refresh now) a subscription; answers once the device accepted or refused it."""
        device_id, kind = request.match_info["id"], request.match_info["kind"]
        self._device_or_404(device_id)
        try:
            return web.json_response(await self.platform.subscribe(device_id, kind))
        except QueryError as exc:
            return self._query_error(exc)

    async def list_alarms(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            since = parse_time(q["since"], self.tz, self.platform.wall()) if "since" in q else None
            limit = int(q.get("limit", "1000"))
        except ValueError as exc:
            return _error(400, str(exc))
        if not 1 <= limit <= 100_000:
            return _error(400, "limit must be between 1 and 100000")
        alarms = await self.platform.store.list_alarms(device_id=q.get("device") or None, since=since, limit=limit)
        return web.json_response([alarm_json(a, self.tz) for a in alarms])

    async def ack_alarm(self, request: web.Request) -> web.Response:
        alarm_id = int(request.match_info["alarm_id"])
        try:
            alarm = await self.platform.store.ack_alarm(alarm_id, self._who(request), self.platform.wall())
        except KeyError:
            return _error(404, f"no alarm {alarm_id}")
        return web.json_response(alarm_json(alarm, self.tz))

    async def reset_alarm(self, request: web.Request) -> web.Response:
        """DeviceControl AlarmCmd ResetAlarm; body {"method": "5", "type": "2"} optional (2022 Info)."""
        device_id = request.match_info["id"]
        self._device_or_404(device_id)
        body = await self._json_body(request) if request.can_read_body else {}
        method, alarm_type = body.get("method"), body.get("type")
        for name, value in (("method", method), ("type", alarm_type)):
            if value is not None and not (isinstance(value, str | int) and str(value).isdigit()):
                return _error(400, f"{name} must be digits, not {value!r}")
        try:
            result = await self.platform.reset_alarm(
                device_id, self._who(request),
                alarm_method=None if method is None else str(method),
                alarm_type=None if alarm_type is None else str(alarm_type),
            )  # fmt: skip
        except QueryError as exc:
            return self._query_error(exc)
        return web.json_response(result)

    async def list_positions(self, request: web.Request) -> web.Response:
        positions = await self.platform.store.list_positions(device_id=request.query.get("device") or None)
        return web.json_response([position_json(p, self.tz) for p in positions])
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
            return _error(400, str(exc))
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
                return _error(413, f"CSV larger than {CSV_MAX_BYTES} bytes")
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
