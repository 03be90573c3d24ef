"""The admin API's media routes: sessions (§9.2, §9.8, §9.9) started, listed, controlled and stopped, the signed
/live/{id} stream, and voice broadcast with a WAV body (§9.12). ``AdminApi`` (gb28181/admin/app.py) inherits it; IO
lives here and in app.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from aiohttp import web

from gb28181.admin.responses import error
from gb28181.admin.views import parse_time
from gb28181.broadcast import BroadcastError
from gb28181.media.wav import WavError, read_wav
from gb28181.media_sessions import check_live
from gb28181.sessions import SessionError
from gb28181.sn import QueryError

log = logging.getLogger("gb28181.admin")

WAV_MAX_BYTES = 64 << 20  # a broadcast's WAV (an hour of 8 kHz 16-bit mono is 57.6 MB)


class MediaRoutes:
    """Mixed into ``AdminApi``; uses its ``platform``, ``tz`` and request helpers (``_json_body``, ``_who``, ...)."""

    # ------------------------------------------------------------------ media sessions (issue 6)
    def _media_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/channels/{id}/{kind:play|playback|download}", self.start_session)
        app.router.add_get("/api/sessions", self.list_sessions)
        app.router.add_get("/api/sessions/{id}", self.show_session)
        app.router.add_post("/api/sessions/{id}/stop", self.stop_session)
        app.router.add_post("/api/sessions/{id}/control", self.control_session)
        app.router.add_get("/live/{id}", self.live)
        app.router.add_post("/api/devices/{id}/broadcast", self.broadcast)

    async def _media(self, action: Awaitable[Any]) -> web.Response:
        try:
            return web.json_response(await action)
        except SessionError as exc:
            status = {"unknown": 404, "offline": 409, "invalid": 400, "timeout": 504, "ended": 410}.get(exc.kind, 502)
            return web.json_response({"error": exc.reason, "kind": exc.kind}, status=status)
        except QueryError as exc:
            return web.json_response({"error": exc.reason, "kind": exc.kind}, status=409)

    async def start_session(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        kind = request.match_info["kind"]
        transport = self._field(body, "transport", str, "udp")
        speed = self._field(body, "speed", int, 1)
        start = end = 0
        if kind != "play":
            now = self.platform.wall()
            try:
                start = int(parse_time(str(self._field(body, "start", (str, int))), self.tz, now))
                end = int(parse_time(str(self._field(body, "end", (str, int))), self.tz, now))
            except ValueError as exc:
                return error(400, str(exc))
        return await self._media(self.platform.media.start(request.match_info["id"], kind, transport=transport,
                                                           start=start, end=end, speed=speed))  # fmt: skip

    async def list_sessions(self, request: web.Request) -> web.Response:
        return web.json_response(self.platform.media.list() + self.platform.broadcasts.list())

    async def show_session(self, request: web.Request) -> web.Response:
        if self.platform.broadcasts.owns(request.match_info["id"]):
            return web.json_response(self.platform.broadcasts.show(request.match_info["id"]))

        async def show() -> dict[str, Any]:
            return {**self.platform.media.show(request.match_info["id"]),
                    "live": self.platform.media.live_path(request.match_info["id"])}  # fmt: skip

        return await self._media(show())

    async def stop_session(self, request: web.Request) -> web.Response:
        if self.platform.broadcasts.owns(request.match_info["id"]):
            return await self._broadcast_answer(self.platform.broadcasts.stop(request.match_info["id"]))
        return await self._media(self.platform.media.stop(request.match_info["id"]))

    async def control_session(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        action = self._field(body, "action", str)
        scale = self._field(body, "scale", (int, float), None)
        position = self._field(body, "position", (int, float), None)
        return await self._media(self.platform.media.control(request.match_info["id"], action, scale=scale,
                                                             position=position))  # fmt: skip

    async def live(self, request: web.Request) -> web.StreamResponse:
        """The PS stream of a session as it arrives (video/MP2P), for ffplay/VLC; the URL's signed token is the
        credential (DECISIONS.md: live URLs), checked once when the viewer connects."""
        ident = request.match_info["id"]
        media = self.platform.media
        if not check_live(media.live_secret, ident, request.query.get("token", ""), self.platform.wall()):
            log.info("live %s refused for %s: bad or expired token", ident, request.remote)
            return error(403, "bad or expired live token (ask for a new URL: gb28181 play or sessions)")
        try:
            session, feed, detach = media.attach(ident)
        except SessionError as exc:
            return error(404 if exc.kind == "unknown" else 410, exc.reason)
        response = web.StreamResponse(headers={"Content-Type": "video/MP2P", "Cache-Control": "no-store"})
        log.info("live %s: viewer %s connected", session.id, request.remote)
        try:
            await response.prepare(request)
            while True:
                chunk = await feed.queue.get()
                if chunk is None:
                    break
                await response.write(chunk)
            if feed.overflow:
                log.info("live %s: viewer %s too slow; disconnected", session.id, request.remote)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            detach()
            log.info("live %s: viewer %s left", session.id, request.remote)
        return response
    async def broadcast(self, request: web.Request) -> web.Response:
        """Voice broadcast (§9.12) of the WAV file in the body; query: channel (a 137 voice output, or the device),
        transport (what the device must offer; default: as it offers), wait=1 (answer when it ended, else once
        the audio flows)."""
        data = bytearray()
        while chunk := await request.content.read(1 << 16):
            data += chunk
            if len(data) > WAV_MAX_BYTES:
                return error(413, f"WAV larger than {WAV_MAX_BYTES} bytes")
        try:
            pcm = await asyncio.to_thread(read_wav, bytes(data))
        except WavError as exc:
            return error(400, f"{exc}")
        q = request.query
        return await self._broadcast_answer(self.platform.broadcasts.start(
            request.match_info["id"], pcm, channel=q.get("channel") or None, transport=q.get("transport") or None,
            wait=q.get("wait", "0").lower() in ("1", "true", "yes")))  # fmt: skip

    async def _broadcast_answer(self, action: Awaitable[Any]) -> web.Response:
        try:
            return web.json_response(await action)
        except BroadcastError as exc:
            status = {"unknown": 404, "offline": 409, "busy": 409, "invalid": 400, "timeout": 504}.get(exc.kind, 502)
            return web.json_response({"error": exc.reason, "kind": exc.kind}, status=status)
