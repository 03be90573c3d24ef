"""ZLMediaKit's web hooks, on their own path and secret (ARCHITECTURE.md admin/; DECISIONS.md: not the operator token).

ZLMediaKit POSTs JSON to the URL configured per hook in its config.ini, e.g.
``hook.on_stream_changed=http://PLATFORM:18080/zlm/hook/on_stream_changed?secret=<[media] zlm_hook_secret>``;
ZLMediaKit adds ``mediaServerId`` and ``hook_index`` to each body. The answer is ``{"code": 0, "msg": "success"}``
(plus ``close`` for on_stream_none_reader). Hooks become ``ZlmBackend`` events:

- on_stream_changed (regist true/false) -> the stream arrived / went away (-> no-media callback)
- on_rtp_server_timeout -> nothing arrived on the port (-> no-media callback)
- on_stream_none_reader -> close only what is not ours, or what the session layer lets go
- on_publish -> only streams of ours may publish under app ``rtp``; other apps are not ours to judge
- on_server_started -> ZLMediaKit restarted: every stream of ours is lost
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from aiohttp import web

from gb28181.media.zlm import APP, ZlmBackend

log = logging.getLogger("gb28181.admin.zlm")

PATH = "/zlm/hook/{name}"
# Hooks ZLMediaKit may be configured to send that need nothing from us but a success answer.
INFORMATIONAL = frozenset({"on_server_keepalive", "on_flow_report", "on_send_rtp_stopped", "on_record_mp4",
                           "on_record_ts", "on_server_exited", "on_stream_not_found", "on_play", "on_http_access",
                           "on_rtsp_realm", "on_rtsp_auth", "on_shell_login"})


def _answer(code: int = 0, msg: str = "success", status: int = 200, **extra: Any) -> web.Response:
    return web.json_response({"code": code, "msg": msg, **extra}, status=status)


class ZlmHooks:
    def __init__(self, backend: ZlmBackend, secret: str) -> None:
        if not secret:
            raise ValueError("ZLMediaKit hooks need their own secret ([media] zlm_hook_secret)")
        self.backend = backend
        self.secret = secret
        self.counts: dict[str, int] = {}  # hook name -> accepted calls (for stats and tests)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(PATH, self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        given = request.query.get("secret", "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            log.warning("ZLMediaKit hook %s from %s refused: %s secret", name, request.remote,
                        "wrong" if given else "no")
            return _answer(-100, "Incorrect secret", status=401)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            log.warning("ZLMediaKit hook %s: body is not JSON (%s)", name, exc)
            return _answer(-300, f"body is not JSON: {exc}", status=400)
        if not isinstance(body, dict):
            return _answer(-300, "body must be a JSON object", status=400)
        handler = getattr(self, f"_{name}", None) if name.startswith("on_") else None
        if handler is None:
            if name in INFORMATIONAL:
                self.counts[name] = self.counts.get(name, 0) + 1
                return _answer()
            log.warning("ZLMediaKit hook %s: not a hook we know", name)
            return _answer(-500, f"unknown hook {name}", status=404)
        self.counts[name] = self.counts.get(name, 0) + 1
        result: web.Response = handler(body)
        return result

    def _on_stream_changed(self, body: dict[str, Any]) -> web.Response:
        app, stream, regist = str(body.get("app", "")), str(body.get("stream", "")), body.get("regist")
        if not isinstance(regist, bool):
            return _answer(-300, "regist must be true or false", status=400)
        log.debug("ZLMediaKit: %s/%s %s (%s)", app, stream, "registered" if regist else "unregistered",
                  body.get("schema"))
        self.backend.stream_changed(app, stream, regist)
        return _answer()

    def _on_rtp_server_timeout(self, body: dict[str, Any]) -> web.Response:
        self.backend.rtp_server_timeout(str(body.get("stream_id", "")))
        return _answer()

    def _on_stream_none_reader(self, body: dict[str, Any]) -> web.Response:
        close = self.backend.none_reader(str(body.get("app", "")), str(body.get("stream", "")))
        return _answer(close=close)

    def _on_publish(self, body: dict[str, Any]) -> web.Response:
        app, stream = str(body.get("app", "")), str(body.get("stream", ""))
        if app == APP and not self.backend.owns(app, stream):
            log.warning("ZLMediaKit: refused a publisher of %s/%s from %s: no session of ours", app, stream,
                        body.get("ip"))
            return _answer(-1, f"no session for {app}/{stream}")
        return _answer()  # ZLMediaKit's own protocol settings apply (HLS, FLV, RTSP for live_urls)

    def _on_server_started(self, body: dict[str, Any]) -> web.Response:
        log.warning("ZLMediaKit %s (re)started", body.get("general.mediaServerId") or body.get("mediaServerId") or "")
        self.backend.server_started()
        return _answer()


def mount(app: web.Application, hooks: ZlmHooks | None) -> None:
    """The admin app's one line: the hook routes when the platform runs the zlmediakit backend."""
    if hooks is not None:
        hooks.add_routes(app)


def make_hooks(media: Any, backend: object) -> ZlmHooks | None:
    """Hooks for a ``ZlmBackend`` built from ``[media]`` (``gb28181.config.MediaConfig``); None otherwise."""
    if isinstance(backend, ZlmBackend):
        return ZlmHooks(backend, media.zlm_hook_secret)
    return None
