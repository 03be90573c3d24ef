"""The admin API's error answer, shared by the route modules: ``{"error": message}`` with an HTTP status."""

from __future__ import annotations

from aiohttp import web


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
