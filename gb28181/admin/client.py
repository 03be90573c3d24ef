"""A small client of the admin API (stdlib only), for ``gb28181`` (cli.py, which turns ``AdminError`` into its own
error exit). IO lives here: it is the admin API's other end."""

from __future__ import annotations

import contextlib
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any


class AdminError(Exception):
    """A call failed: the API answered with an error status (its ``error`` text), or could not be reached."""


def error_text(exc: urllib.error.HTTPError) -> str:
    """The ``error`` of the API's JSON error answer, else the HTTP reason."""
    try:
        return str(json.loads(exc.read()).get("error", exc.reason))
    except (ValueError, AttributeError):
        return str(exc.reason)


class AdminClient:
    def __init__(self, url: str, token: str | None, context: ssl.SSLContext | None = None) -> None:
        """``context``: the TLS trust for an https:// URL (None: the system CAs)."""
        self.url = url.rstrip("/")
        self.token = token
        self.context = context

    @contextlib.contextmanager
    def _answer(
        self, req: urllib.request.Request, what: str, timeout: float, *, tls: bool = True, hint: str = ""
    ) -> Iterator[Any]:
        """Open ``req`` and hand over the response; failures (while reading it too) are AdminErrors."""
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.context if tls else None) as resp:
                yield resp
        except urllib.error.HTTPError as exc:
            raise AdminError(f"{what}: {exc.code} {error_text(exc)}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AdminError(f"cannot reach the admin API at {self.url} ({reason}){hint}") from exc

    def text(self, path: str, query: dict[str, Any] | None = None, timeout: float = 120) -> str:
        """GET a text answer (a rendered report, a CSV); errors as in ``call``."""
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        with self._answer(urllib.request.Request(url, method="GET"), f"GET {path}", timeout, tls=False) as resp:
            return str(resp.read().decode("utf-8"))

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        timeout: float = 15,
    ) -> Any:
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        hint = "; is `gb28181 serve` running? (set --admin or GB28181_ADMIN)"
        with self._answer(req, f"{method} {path}", timeout, hint=hint) as resp:
            return json.loads(resp.read() or b"null")

    def raw(
        self,
        method: str,
        path: str,
        data: bytes | None = None,
        content_type: str | None = None,
        query: dict[str, Any] | None = None,
        timeout: float = 120,
    ) -> bytes:
        """Like ``call`` for bodies that are not JSON (CSV); returns the response bytes."""
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        req = urllib.request.Request(url, data=data, method=method)
        if content_type:
            req.add_header("Content-Type", content_type)
        with self._answer(req, f"{method} {path}", timeout) as resp:
            return bytes(resp.read())

    def stream(self, path: str, query: dict[str, Any] | None = None, idle_timeout: float = 60) -> Any:
        """POST ``path`` and yield the NDJSON objects of the streamed answer as they arrive (``gb28181 trace``)."""
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        with self._answer(urllib.request.Request(url, data=b"", method="POST"), f"POST {path}", idle_timeout) as resp:
            for line in resp:
                if line.strip():
                    yield json.loads(line)
