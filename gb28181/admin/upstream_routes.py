"""The admin API's cascade routes: the superiors we register to (GET /api/upstreams[/{id}]), what is shared with each
(GET|POST /api/upstreams/{id}/shares, DELETE .../shares/{item}) and the catalog a superior sees. ``AdminApi``
(gb28181/admin/app.py) inherits it; IO lives here and in app.py.
"""

from __future__ import annotations

import json
import logging
import zoneinfo
from collections import Counter
from typing import Any

from aiohttp import web

from gb28181.admin.responses import error
from gb28181.admin.views import iso
from registry.models import SHARE_ALL, Share

log = logging.getLogger("gb28181.admin")


class UpstreamRoutes:
    """Mixed into ``AdminApi``; uses its ``platform``, ``tz`` and request helpers (``_json_body``, ``_who``, ...)."""

    # ------------------------------------------------------------------ superiors (cascade)
    def _upstream_json(self, status: dict[str, Any]) -> dict[str, Any]:
        return {**status, "since": iso(status["since"], self.tz), "next_attempt": iso(status["next_attempt"], self.tz)}

    def _upstream_or_404(self, upstream_id: str) -> None:
        if upstream_id not in self.platform.upstreams:
            raise web.HTTPNotFound(
                text=json.dumps({"error": f"no superior {upstream_id} in [[upstream]]"}),
                content_type="application/json",
            )

    async def list_upstreams(self, request: web.Request) -> web.Response:
        shares = await self.platform.store.list_shares()
        counts = Counter(s.upstream_id for s in shares)
        return web.json_response(
            [{**self._upstream_json(st), "shares": counts[st["id"]]} for st in self.platform.upstream_status()]
        )

    async def show_upstream(self, request: web.Request) -> web.Response:
        upstream_id = request.match_info["id"]
        self._upstream_or_404(upstream_id)
        (status,) = [st for st in self.platform.upstream_status() if st["id"] == upstream_id]
        shares = await self.platform.store.list_shares(upstream_id)
        return web.json_response({**self._upstream_json(status), "shares": len(shares)})

    async def list_shares(self, request: web.Request) -> web.Response:
        upstream_id = request.match_info["id"]
        self._upstream_or_404(upstream_id)
        return web.json_response([_share_json(s, self.tz) for s in await self.platform.store.list_shares(upstream_id)])

    async def add_shares(self, request: web.Request) -> web.Response:
        """Share items with a superior: ``{"items": [...], "as": ID, "name": NAME}``; ``as``/``name`` (one item
        only) set what that superior is told instead of the item's own ID and name."""
        upstream_id = request.match_info["id"]
        self._upstream_or_404(upstream_id)
        body = await self._json_body(request)
        items = body.get("items")
        as_id, name = body.get("as"), body.get("name")
        if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
            return error(400, 'items must be a non-empty list of IDs, civil codes or "all"')
        for item in items:
            if item != SHARE_ALL and not (item.isascii() and item.isdigit() and len(item) in (2, 4, 6, 8, 20)):
                return error(400, f'{item!r} is not a 20-digit ID, a 2/4/6/8-digit civil code or "all"')
        if (as_id is not None or name is not None) and len(items) != 1:
            return error(400, "--as and --name apply to one item at a time")
        if as_id is not None and not (
            isinstance(as_id, str) and as_id.isascii() and as_id.isdigit() and len(as_id) == 20
        ):
            return error(400, "as must be a 20-digit ID")
        if name is not None and not isinstance(name, str):
            return error(400, "name must be a string")
        if SHARE_ALL in items and (as_id is not None or name is not None):
            return error(400, '"all" takes no --as or --name')
        now = self.platform.wall()
        try:
            await self.platform.store.put_shares([Share(upstream_id, i, as_id, name, now) for i in items])
        except ValueError as exc:
            return error(409 if "already what" in str(exc) else 400, str(exc))
        log.info("admin API: shared %s with %s (as %s, name %r)", items, upstream_id, as_id, name)
        self.platform.catalog_changed()
        return web.json_response([_share_json(s, self.tz) for s in await self.platform.store.list_shares(upstream_id)])

    async def remove_share(self, request: web.Request) -> web.Response:
        upstream_id, item = request.match_info["id"], request.match_info["item"]
        self._upstream_or_404(upstream_id)
        if not await self.platform.store.remove_shares(upstream_id, [item]):
            return error(404, f"{item} is not shared with {upstream_id}")
        log.info("admin API: %s no longer shared with %s", item, upstream_id)
        self.platform.catalog_changed()
        return web.json_response({"removed": item, "upstream": upstream_id})

    async def upstream_catalog(self, request: web.Request) -> web.Response:
        """The catalog this superior would get now (its shares, overrides applied)."""
        upstream_id = request.match_info["id"]
        self._upstream_or_404(upstream_id)
        catalog = await self.platform.shared_catalog(upstream_id)
        return web.json_response([
            {"id": i.device_id, "name": i.name, "status": i.status, "parent_ids": list(i.parent_ids),
             "civil_code": i.civil_code, "device_id": catalog.targets.get(i.device_id or "", (None, None))[0],
             "channel_id": catalog.targets.get(i.device_id or "", (None, None))[1]}
            for i in catalog.items
        ])  # fmt: skip


def _share_json(s: Share, tz: zoneinfo.ZoneInfo) -> dict[str, Any]:
    return {
        "upstream": s.upstream_id,
        "item": s.item,
        "as": s.as_id,
        "name": s.as_name,
        "created_at": iso(s.created_at, tz),
    }
