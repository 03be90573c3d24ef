"""aiohttp admin API. Routes (all JSON; /health needs no token, everything under /api needs
``Authorization: Bearer <token>``):

GET /health · GET /metrics (Prometheus text; bearer token) · GET /api/devices[?status=online|offline] ·
GET/PATCH/DELETE /api/devices/{id} ·
POST /api/devices · GET /api/events[?device=&since=&until=&limit=] · GET /api/stats ·
POST /api/devices/{id}/catalog[?wait=1] · GET /api/devices/{id}/catalog[?sn=] (progress and result) ·
GET /api/subscriptions[?device=] · POST /api/devices/{id}/subscriptions/{catalog|alarm|position} ·
GET /api/alarms[?device=&since=&limit=] · POST /api/alarms/{id}/ack · POST /api/devices/{id}/alarm-reset ·
GET /api/positions[?device=]

Operations (a channel, or a device that is its own channel): POST /api/channels/{id}/ptz {action, speed,
duration} · GET /api/channels/{id}/presets · POST /api/channels/{id}/presets {action, number} ·
GET /api/channels/{id}/records?start=&end= · POST /api/channels/{id}/record {action} ·
POST /api/devices/{id}/reboot · POST /api/devices/{id}/guard {action} · GET /api/channels.csv ·
POST /api/channels.csv[?dry_run=1] (text/csv body)

Cascade: GET /api/upstreams · GET /api/upstreams/{id} · GET|POST /api/upstreams/{id}/shares ·
DELETE /api/upstreams/{id}/shares/{item} · GET /api/upstreams/{id}/catalog (what the superior sees)

Reports: GET /api/reports/online[?by=&level=&since=&until=] · GET /api/reports/report?period=day|week[&date=&format=] ·
GET /api/reports/quality[?format=json|csv]

Media sessions (§9.2, §9.8, §9.9): POST /api/channels/{id}/{play|playback|download} {transport, start, end, speed} ·
GET /api/sessions · GET /api/sessions/{id} · POST /api/sessions/{id}/stop (a session, or one consumer) ·
POST /api/sessions/{id}/control {action: pause|resume|scale|seek, scale, position} ·
GET /live/{session or consumer}?token= (no bearer: the signed token of the live URL, DECISIONS.md) serves the PS stream.
Voice broadcast (§9.12): POST /api/devices/{id}/broadcast?channel=&transport=&wait= with a WAV body; its session
(kind "broadcast") is listed and stopped with the media sessions.
Hardening (issue 9): GET /api/audit[?since=&limit=] (operator actions: every non-GET request under /api is
recorded with who/when/what/status, see gb28181.admin.audit) · GET /api/lockouts (keys the guard locked out)

The route groups live beside this module as mixins ``AdminApi`` inherits: notification_routes.py,
operation_routes.py, upstream_routes.py, report_routes.py, media_routes.py (and trace_route.py, called from here).
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import zoneinfo
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gb28181.admin import audit, zlm_hooks
from gb28181.admin.media_routes import MediaRoutes
from gb28181.admin.notification_routes import NotificationRoutes
from gb28181.admin.operation_routes import OperationRoutes
from gb28181.admin.report_routes import ReportRoutes
from gb28181.admin.responses import error
from gb28181.admin.trace_route import stream_trace
from gb28181.admin.upstream_routes import UpstreamRoutes
from gb28181.admin.views import apply_settings, device_json, event_json, parse_time
from gb28181.channels import channel_json
from gb28181.ids import GbId, InvalidId
from gb28181.sn import QueryError
from registry.health import WriteHealth
from registry.models import VIDEO, Device
from registry.store import StoreError

log = logging.getLogger("gb28181.admin")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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


class AdminApi(NotificationRoutes, OperationRoutes, UpstreamRoutes, ReportRoutes, MediaRoutes):
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
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/api/devices", self.list_devices)
        app.router.add_post("/api/devices", self.add_device)
        app.router.add_get("/api/devices/{id}", self.show_device)
        app.router.add_patch("/api/devices/{id}", self.set_device)
        app.router.add_delete("/api/devices/{id}", self.remove_device)
        app.router.add_get("/api/devices/{id}/{verb:info|status|config}", self.query_device)
        app.router.add_post("/api/devices/{id}/catalog", self.catalog_sync)
        app.router.add_get("/api/devices/{id}/catalog", self.catalog_progress)
        app.router.add_get("/api/channels", self.list_channels)
        app.router.add_patch("/api/channels/{device}/{id}", self.set_channel)
        app.router.add_get("/api/events", self.events)
        app.router.add_get("/api/stats", self.stats)
        app.router.add_get("/api/audit", self.list_audit)
        app.router.add_get("/api/lockouts", self.list_lockouts)
        self._add_notification_routes(app)
        self._operation_routes(app)
        app.router.add_get("/api/upstreams", self.list_upstreams)
        app.router.add_get("/api/upstreams/{id}", self.show_upstream)
        app.router.add_get("/api/upstreams/{id}/shares", self.list_shares)
        app.router.add_post("/api/upstreams/{id}/shares", self.add_shares)
        app.router.add_delete("/api/upstreams/{id}/shares/{item}", self.remove_share)
        app.router.add_get("/api/upstreams/{id}/catalog", self.upstream_catalog)
        app.router.add_get("/api/reports/online", self.report_online)
        app.router.add_get("/api/reports/report", self.report)
        app.router.add_get("/api/reports/quality", self.report_quality)
        app.router.add_post("/api/devices/{id}/conformance", self.conformance)  # operator role (POST)
        app.router.add_post("/api/devices/{id}/trace", self.trace)  # operator role (POST); NDJSON stream
        zlm_hooks.mount(app, getattr(self.platform, "zlm_hooks", None))  # /zlm/hook/{name}, its own secret
        self._media_routes(app)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/api/") or request.path == "/metrics":
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
                return error(401, "missing or wrong bearer token")
            name, role = who
            if request.method not in ROLE_METHODS.get(role, frozenset()) or (_admin_only(request) and role != "admin"):
                log.info("admin API: refused %s %s for %s (role %s)", request.method, request.path, name, role)
                refused = error(403, f"the {role} role may not {request.method} {request.path}")
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
            return error(400, str(exc))
        if not 1 <= limit <= 100_000:
            return error(400, "limit must be between 1 and 100000")
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
            return error(503, f"storage error: {exc}")

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
                "media": self.platform.media_status(),
            }
        )

    async def list_devices(self, request: web.Request) -> web.Response:
        status = request.query.get("status")
        if status not in (None, "online", "offline"):
            return error(400, "status must be online or offline")
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
            return error(400, str(exc))
        if self.devices.snapshot(device_id) is not None:
            return error(409, f"device {device_id} already exists (use device set)")
        device = Device(device_id, provisioned=True, created_at=self.platform.wall())
        try:
            apply_settings(device, body)
        except ValueError as exc:
            return error(400, str(exc))
        device = await self.devices.put(device)
        log.info("admin API: device %s added", device_id)
        return web.json_response(device_json(device, self.tz, self.platform.wall()), status=201)

    async def set_device(self, request: web.Request) -> web.Response:
        device = self._device_or_404(request.match_info["id"])
        body = await self._json_body(request)
        try:
            apply_settings(device, body)
        except ValueError as exc:
            return error(400, str(exc))
        device = dataclasses.replace(device, provisioned=True)
        device = await self.devices.put(device)
        log.info("admin API: device %s set %s", device.id, sorted(k for k in body if k != "password"))
        return web.json_response(device_json(device, self.tz, self.platform.wall()))

    async def remove_device(self, request: web.Request) -> web.Response:
        device_id = request.match_info["id"]
        if not await self.devices.remove(device_id):
            return error(404, f"no device {device_id}")
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

    async def catalog_progress(self, request: web.Request) -> web.Response:
        """Syncs of a device in progress (items received / SumNum) and the result of ``?sn=`` or of the latest."""
        device_id = request.match_info["id"]
        self._device_or_404(device_id)
        sn_text = request.query.get("sn")
        if sn_text is not None and not sn_text.isdigit():
            return error(400, "sn must be a number")
        return web.json_response(self.platform.catalog_progress(device_id, int(sn_text) if sn_text else None))

    async def list_channels(self, request: web.Request) -> web.Response:
        q = request.query
        status = q.get("status")
        if status not in (None, "online", "offline"):
            return error(400, "status must be online or offline")
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
            return error(
                400, f"unknown settings: {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(allowed))})"
            )
        try:
            changed = await self.platform.store.set_channel_overrides(
                request.match_info["device"], request.match_info["id"], **{f"override_{k}": v for k, v in body.items()}
            )
        except KeyError:
            return error(404, f"no channel {request.match_info['id']} on device {request.match_info['device']}")
        except (ValueError, TypeError) as exc:
            return error(400, str(exc))
        return web.json_response(channel_json(changed))

    async def events(self, request: web.Request) -> web.Response:
        q = request.query
        now = self.platform.wall()
        try:
            since = parse_time(q["since"], self.tz, now) if "since" in q else None
            until = parse_time(q["until"], self.tz, now) if "until" in q else None
            limit = int(q.get("limit", "1000"))
        except ValueError as exc:
            return error(400, str(exc))
        if not 1 <= limit <= 100_000:
            return error(400, "limit must be between 1 and 100000")
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
                "storage": self._storage().as_json(self.platform.mono()),
                "media": self.platform.media_status(),
            }
        )

    UP_STATES = ("ok", "unknown")  # media backend states counted as up in /metrics

    def _storage(self) -> WriteHealth:
        """The registry's write health (disk full, database locked; registry/health.py)."""
        return getattr(self.platform.store, "health", None) or WriteHealth()

    async def metrics(self, request: web.Request) -> web.Response:
        """The platform's figures in the Prometheus text format (0.0.4), behind the same bearer token as /api/
        (Prometheus: ``authorization: {credentials: TOKEN}``): devices by status, every counter by name (its
        outcomes, rejected inputs by reason, lockouts, catalog syncs, keepalives...), the SIP endpoint's
        counters, media sessions and current lockouts."""
        devs = list(self.devices.devices.values())
        online = sum(1 for d in devs if d.status == "online")
        counters = {**self.platform.counters, **self.devices.counters}
        media = getattr(self.platform, "media", None)
        lines = [
            "# HELP gb28181_devices Devices known to the platform, by status.",
            "# TYPE gb28181_devices gauge",
            f'gb28181_devices{{status="online"}} {online}',
            f'gb28181_devices{{status="offline"}} {len(devs) - online}',
            "# HELP gb28181_events_total Platform counters by name (register outcomes, keepalives, rejects...).",
            "# TYPE gb28181_events_total counter",
            *(f'gb28181_events_total{{name="{_label(k)}"}} {v}' for k, v in sorted(counters.items())),
            "# HELP gb28181_sip_total SIP endpoint counters (received, retransmissions absorbed, rejected...).",
            "# TYPE gb28181_sip_total counter",
            *(f'gb28181_sip_total{{name="{_label(k)}"}} {v}' for k, v in sorted(self.platform.endpoint.stats.items())),
            "# HELP gb28181_sip_transactions Server and client transactions alive now.",
            "# TYPE gb28181_sip_transactions gauge",
            f"gb28181_sip_transactions {self.platform.endpoint.transaction_count}",
            "# HELP gb28181_lockouts (source, device) pairs locked out now for failed digests.",
            "# TYPE gb28181_lockouts gauge",
            f"gb28181_lockouts {len(self.platform.guard.lockouts(self.platform.mono()))}",
            "# HELP gb28181_media_sessions Media sessions open now.",
            "# TYPE gb28181_media_sessions gauge",
            f"gb28181_media_sessions {len(media.list()) if media is not None else 0}",
            *_storage_metrics(self._storage()),
            "# HELP gb28181_media_backend_up Whether the media backend answered its last call (ZLMediaKit), else 1.",
            "# TYPE gb28181_media_backend_up gauge",
            f"gb28181_media_backend_up {int(media is None or self.platform.media_status()['state'] in self.UP_STATES)}",
        ]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})  # fmt: skip

    # ------------------------------------------------------------------ conformance (issue 11)
    async def conformance(self, request: web.Request) -> web.Response:
        """Run the conformance clauses against a device; body {"timeout": s, "only": ["catalog", ...]}. Answers
        the report as JSON (the CLI renders text/HTML) once the run ends, within ``timeout`` plus the undo."""
        device_id = request.match_info["id"]  # may be unknown yet: the run waits for it to register
        if not (len(device_id) == 20 and device_id.isascii() and device_id.isdigit()):
            return error(400, f"not a 20-digit device ID: {device_id[:40]!r}")
        body = await self._json_body(request) if request.can_read_body else {}
        timeout, only = body.get("timeout", 60), body.get("only", [])
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 1 <= timeout <= 3600:
            return error(400, "timeout must be a number of seconds between 1 and 3600")
        if not isinstance(only, list) or not all(isinstance(c, str) for c in only):
            return error(400, "only must be a list of clause IDs or prefixes")
        try:
            report = await self.platform.conformance(device_id, timeout=float(timeout), only=tuple(only))
        except ValueError as exc:
            return error(400, str(exc))
        except QueryError as exc:
            return self._query_error(exc)
        return web.json_response(report.json())

    async def trace(self, request: web.Request) -> web.StreamResponse:
        """A device's SIP exchanges, live, as NDJSON (gb28181/admin/trace_route.py)."""
        return await stream_trace(request, self.platform, self.tz)


def _storage_metrics(health: WriteHealth) -> list[str]:
    """Registry write errors by kind (full, busy, io, corrupt) and whether writes are failing now."""
    return [
        "# HELP gb28181_storage_errors_total Registry writes failed by storage error kind (full, busy, io, corrupt).",
        "# TYPE gb28181_storage_errors_total counter",
        *(f'gb28181_storage_errors_total{{kind="{kind}"}} {health.errors.get(kind, 0)}'
          for kind in sorted({"full", "busy", *health.errors})),
        "# HELP gb28181_storage_failing 1 while registry writes fail (an episode of that kind), else 0.",
        "# TYPE gb28181_storage_failing gauge",
        *(f'gb28181_storage_failing{{kind="{kind}"}} {int(health.kind == kind)}'
          for kind in sorted({"full", "busy", *health.errors})),
        "# HELP gb28181_storage_episodes_total Storage error episodes (writes failing, then succeeding again).",
        "# TYPE gb28181_storage_episodes_total counter",
        f"gb28181_storage_episodes_total {health.episodes}",
    ]  # fmt: skip


def _label(value: str) -> str:
    """A Prometheus label value: backslash, double quote and newline escaped (exposition format 0.0.4)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
