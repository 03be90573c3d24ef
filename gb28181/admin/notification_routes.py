"""The admin API's subscription, alarm and position routes (§9.11, §9.4, §9.13): GET /api/subscriptions, POST
/api/devices/{id}/subscriptions/{kind}, GET /api/alarms, POST /api/alarms/{id}/ack, POST /api/devices/{id}/alarm-reset,
GET /api/positions. ``AdminApi`` (gb28181/admin/app.py) inherits it; IO lives here and in app.py.
"""

from __future__ import annotations

from aiohttp import web

from gb28181.admin.responses import error
from gb28181.admin.views import parse_time
from gb28181.notifications import alarm_json, position_json
from gb28181.sn import QueryError


class NotificationRoutes:
    """Mixed into ``AdminApi``; uses its ``platform``, ``tz`` and request helpers (``_json_body``, ``_who``, ...)."""

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
            return error(400, str(exc))
        if not 1 <= limit <= 100_000:
            return error(400, "limit must be between 1 and 100000")
        alarms = await self.platform.store.list_alarms(device_id=q.get("device") or None, since=since, limit=limit)
        return web.json_response([alarm_json(a, self.tz) for a in alarms])

    async def ack_alarm(self, request: web.Request) -> web.Response:
        alarm_id = int(request.match_info["alarm_id"])
        try:
            alarm = await self.platform.store.ack_alarm(alarm_id, self._who(request), self.platform.wall())
        except KeyError:
            return error(404, f"no alarm {alarm_id}")
        return web.json_response(alarm_json(alarm, self.tz))

    async def reset_alarm(self, request: web.Request) -> web.Response:
        """DeviceControl AlarmCmd ResetAlarm; body {"method": "5", "type": "2"} optional (2022 Info)."""
        device_id = request.match_info["id"]
        self._device_or_404(device_id)
        body = await self._json_body(request) if request.can_read_body else {}
        method, alarm_type = body.get("method"), body.get("type")
        for name, value in (("method", method), ("type", alarm_type)):
            if value is not None and not (isinstance(value, str | int) and str(value).isdigit()):
                return error(400, f"{name} must be digits, not {value!r}")
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
