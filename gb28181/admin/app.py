"""aiohttp admin API. Routes (all JSON; /health needs no token, everything under /api needs
``Authorization: Bearer <token>``):

GET /health · GET /api/devices[?status=online|offline] · GET/PATCH/DELETE /api/devices/{id} ·
POST /api/devices · GET /api/events[?device=&since=&until=&limit=] · GET /api/stats ·
GET /api/reports/online[?by=&level=&since=&until=] · GET /api/reports/report?period=day|week[&date=&format=] ·
GET /api/reports/quality[?format=json|csv]
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

from gb28181.admin.views import apply_settings, device_json, event_json, parse_time
from gb28181.channels import channel_json
from gb28181.ids import GbId, InvalidId
from gb28181.reports import gather
from gb28181.reports.online import CIVIL_LEVELS, GROUPINGS, midnight, span_period
from gb28181.reports.quality import offenders_csv
from gb28181.reports.render import FORMATS, Report, annotation_json, ids_json, online_json, render, report_json
from gb28181.sn import QueryError
from registry.models import VIDEO, Device
from registry.store import StoreError

log = logging.getLogger("gb28181.admin")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
        app.router.add_get("/api/reports/online", self.report_online)
        app.router.add_get("/api/reports/report", self.report)
        app.router.add_get("/api/reports/quality", self.report_quality)
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
                return _error(403, f"the {role} role may not {request.method} {request.path}")
            if request.method not in ("GET", "HEAD"):
                log.info("admin API: %s %s by %s (%s)", request.method, request.path, name, role)
        return await handler(request)

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
            }
        )

    # ------------------------------------------------------------------ reports (issue 10)
    async def report_online(self, request: web.Request) -> web.Response:
        """Time-weighted online rates over ``[since, until)`` (default: since local midnight, until now)."""
        q = request.query
        now = self.platform.wall()
        by = q.get("by") or None
        try:
            level = int(q.get("level", "3"))
            if by is not None and by not in GROUPINGS:
                raise ValueError(f"by must be one of {', '.join(GROUPINGS)}")
            if level not in CIVIL_LEVELS:
                raise ValueError("level must be 1 (province), 2 (city), 3 (county) or 4 (grassroots)")
            today = gather.parse_day("today", now, self.tz)
            since = parse_time(q["since"], self.tz, now) if "since" in q else midnight(today, self.tz)
            until = min(now, parse_time(q["until"], self.tz, now)) if "until" in q else now
            period = span_period(since, until, self.tz)
        except ValueError as exc:
            return _error(400, str(exc))
        await self.devices.flush()
        try:
            history = await gather.load_history(self.platform.store, period, now)
        except gather.ReportTooLarge as exc:
            return _error(413, str(exc))
        return web.json_response(online_json(history, by, level, self.tz))

    async def report(self, request: web.Request) -> web.Response:
        """The daily or weekly report: ``format`` json (default), text, csv or html."""
        q = request.query
        now = self.platform.wall()
        fmt = q.get("format", "json")
        try:
            if fmt not in ("json", *FORMATS):
                raise ValueError(f"format must be one of json, {', '.join(FORMATS)}")
            level = int(q.get("level", "3"))
            if level not in CIVIL_LEVELS:
                raise ValueError("level must be 1 (province), 2 (city), 3 (county) or 4 (grassroots)")
            day = gather.parse_day(q.get("date"), now, self.tz)
            period = gather.report_period(q.get("period", "day"), day, self.tz)
        except ValueError as exc:
            return _error(400, str(exc))
        if period.start >= now:
            return _error(400, f"the period {period.label} has not started yet")
        await self.devices.flush()
        try:
            history = await gather.load_history(self.platform.store, period, now)
        except gather.ReportTooLarge as exc:
            return _error(413, str(exc))
        annotation, ids = await gather.load_quality(self.platform.store, self.platform.cfg.sip.id)
        title = f"GB28181 {'daily' if period.step == 'hour' else 'weekly'} report {period.label}"
        doc = Report(title, history, annotation, tuple(ids), generated=now, tz=self.tz, level=level)
        if fmt == "json":
            return web.json_response(await asyncio.to_thread(report_json, doc))
        content_type = {"text": "text/plain", "csv": "text/csv", "html": "text/html"}[fmt]
        text = await asyncio.to_thread(render, doc, fmt)  # CPU for a large registry: off the SIP event loop
        return web.Response(text=text, content_type=content_type, charset="utf-8")

    async def report_quality(self, request: web.Request) -> web.Response:
        """Annotation, naming and ID compliance; ``format=csv`` gives the offenders as `channels import` reads."""
        fmt = request.query.get("format", "json")
        if fmt not in ("json", "csv"):
            return _error(400, "format must be json or csv")
        annotation, ids = await gather.load_quality(self.platform.store, self.platform.cfg.sip.id)
        if fmt == "csv":
            return web.Response(text=offenders_csv(annotation.offenders), content_type="text/csv", charset="utf-8")
        return web.json_response({"annotation": annotation_json(annotation), "ids": ids_json(ids)})
