"""The admin API's report routes (gb28181/reports/): GET /api/reports/online, GET /api/reports/report, GET
/api/reports/quality. ``AdminApi`` (gb28181/admin/app.py) inherits it; IO lives here and in app.py.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from gb28181.admin.responses import error
from gb28181.admin.views import parse_time
from gb28181.reports import gather
from gb28181.reports.online import CIVIL_LEVELS, GROUPINGS, midnight, span_period
from gb28181.reports.quality import offenders_csv
from gb28181.reports.render import FORMATS, Report, annotation_json, ids_json, online_json, render, report_json


class ReportRoutes:
    """Mixed into ``AdminApi``; uses its ``platform``, ``tz`` and request helpers (``_json_body``, ``_who``, ...)."""

    # ------------------------------------------------------------------ reports
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
            return error(400, str(exc))
        await self.devices.flush()
        try:
            history = await gather.load_history(self.platform.store, period, now)
        except gather.ReportTooLarge as exc:
            return error(413, str(exc))
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
            return error(400, str(exc))
        if period.start >= now:
            return error(400, f"the period {period.label} has not started yet")
        await self.devices.flush()
        try:
            history = await gather.load_history(self.platform.store, period, now)
        except gather.ReportTooLarge as exc:
            return error(413, str(exc))
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
            return error(400, "format must be json or csv")
        annotation, ids = await gather.load_quality(self.platform.store, self.platform.cfg.sip.id)
        if fmt == "csv":
            return web.Response(text=offenders_csv(annotation.offenders), content_type="text/csv", charset="utf-8")
        return web.json_response({"annotation": annotation_json(annotation), "ids": ids_json(ids)})
