"""The ZLMediaKit media backend: the ``MediaBackend`` calls mapped onto ZLMediaKit's RESTful API.

ZLMediaKit (server/WebApi.cpp) answers every ``/index/api/*`` call with JSON ``{"code": 0, ...}``; errors carry a
non-zero code and ``msg``: -100 wrong secret (``Incorrect secret``), -300 invalid or missing arguments
(``Required parameter missed: ...``), -500 not found, -400 an exception, -1 the operation failed. Mapping:

- ``open_receiver``  -> ``openRtpServer`` (port 0: ZLMediaKit picks from ``rtp_proxy.port_range``; tcp_mode 0 UDP,
  1 TCP passive, 2 TCP active). No ``ssrc`` is passed: the port identifies the stream and ZLMediaKit would drop
  devices that send SSRC 0 or their own (spec digest §13 quirk 17; DECISIONS.md "SSRC").
- ``connect``        -> ``connectRtpServer`` (tcp-active, after the 200 OK)
- ``forward``        -> ``startSendRtp`` (UDP / we connect) or ``startSendRtpPassive`` (the consumer connects), PS
  over RTP with the consumer's SSRC; ``stop_forward`` -> ``stopSendRtp``
- ``stats``          -> cached; ``refresh`` fills it from ``getMediaList`` and ``getRtpInfo``
- ``close``          -> ``closeRtpServer``

Hooks (``gb28181/admin/zlm_hooks.py``) report streams arriving and leaving and RTP servers timing out; a watchdog
per session calls ``on_no_media`` too when the hooks cannot reach us. Streams live under app ``rtp``; ZLMediaKit
serves them as HTTP-FLV, HLS, RTSP and RTMP (``live_urls``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from gb28181.media.backend import (
    TCP_ACTIVE,
    TCP_PASSIVE,
    UDP,
    ForwardSpec,
    MediaError,
    NoMediaCallback,
    ReceiverSpec,
    ReceiverStats,
)

log = logging.getLogger("gb28181.media.zlm")

APP = "rtp"  # ZLMediaKit's kRtpAppName: the app of streams received by openRtpServer
VHOST = "__defaultVhost__"
TCP_MODES = {UDP: 0, TCP_PASSIVE: 1, TCP_ACTIVE: 2}  # openRtpServer tcp_mode
PS = 1  # startSendRtp type: MPEG-PS over RTP (GB/T 28181 §4.2.2)
PAYLOAD_TYPE = 96  # a=rtpmap:96 PS/90000

# ZLMediaKit's API error codes (server/WebApi.h ApiErr)
AUTH_FAILED, INVALID_ARGS, EXCEPTION, NOT_FOUND, OTHER_FAILED = -100, -300, -400, -500, -1
_CODE_NAMES = {AUTH_FAILED: "authentication failed", INVALID_ARGS: "invalid arguments", EXCEPTION: "internal error",
               NOT_FOUND: "not found", OTHER_FAILED: "failed"}
# Calls that may be repeated after a timeout (the first may have been done): reads and closes.
IDEMPOTENT = frozenset({"getMediaList", "getRtpInfo", "listRtpServer", "getServerConfig", "closeRtpServer",
                        "stopSendRtp"})
RETRY_DELAY = 0.2  # seconds before the first retry; doubles


class ZlmError(MediaError):
    """ZLMediaKit answered a call with a non-zero code."""

    def __init__(self, api: str, code: int, msg: str) -> None:
        self.api, self.code, self.msg = api, code, msg
        hint = " (check [media] zlm_secret against api.secret in ZLMediaKit's config.ini)" \
            if code == AUTH_FAILED else ""
        super().__init__(f"ZLMediaKit {api}: {_CODE_NAMES.get(code, 'error')} (code {code}: {msg}){hint}")


@dataclass
class _Stream:
    """One openRtpServer stream and what we know of it."""

    handle: str  # = ZLMediaKit's stream_id
    spec: ReceiverSpec
    stats: ReceiverStats
    on_no_media: NoMediaCallback | None
    forwards: dict[str, int] = field(default_factory=dict)  # forward name -> consumer SSRC
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # the media source is registered
    watchdog: asyncio.TimerHandle | None = None
    last_bytes: int = -1  # totalBytes at the watchdog's previous look
    closed: bool = False


class ZlmBackend:
    """``MediaBackend`` over a ZLMediaKit server's HTTP API. The aiohttp session is the caller's (composition root)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, secret: str, *, timeout: float = 5.0,
                 retries: int = 2, stream_prefix: str = "gb") -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"ZLMediaKit URL {url!r}: expected http://HOST[:PORT]")
        self.http = session
        self.url = url.rstrip("/")
        self.host = parts.hostname
        self.http_port = parts.port or (443 if parts.scheme == "https" else 80)
        self.secret = secret
        self.timeout = timeout
        self.retries = retries
        self.prefix = stream_prefix
        self.rtsp_port, self.rtmp_port = 554, 1935  # until load_server_config() reads ZLMediaKit's
        self.on_none_reader: Callable[[str], bool] | None = None  # the INVITE layer's answer; default: keep ours
        self._streams: dict[str, _Stream] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        # What operators see (/health, stats), from the last call: "unknown" before any, "ok" once ZLMediaKit
        # answered, "unreachable" when a call ran out of retries, "auth-failed" on a wrong secret, "error" when
        # something else answers there.
        self.state = "unknown"
        self.error = ""
        self.failures = 0  # calls in a row that could not reach ZLMediaKit

    # ------------------------------------------------------------------------------------------ HTTP API

    async def call(self, api: str, **params: Any) -> dict[str, Any]:
        """POST ``/index/api/<api>`` (form-encoded, so the secret stays out of URL logs); the answer's JSON on code 0,
        else ``ZlmError``. Unreachable (refused, reset) is retried ``retries`` times; a timeout only for reads and
        closes, whose repetition is harmless."""
        form = {"secret": self.secret, **{k: _text(v) for k, v in params.items() if v is not None}}
        attempts = 1 + self.retries
        delay = RETRY_DELAY
        for attempt in range(1, attempts + 1):
            try:
                answer = await self._post(api, form)
            except _Retryable as exc:
                if attempt == attempts or (exc.timeout and api not in IDEMPOTENT):
                    error = MediaError(f"ZLMediaKit at {self.url}: {exc} ({attempt} attempt"
                                       f"{'s' if attempt > 1 else ''} for {api})")  # fmt: skip
                    self._note("unreachable", str(error))
                    raise error from exc.__cause__
                log.warning("ZLMediaKit %s: %s; retrying in %.1f s", api, exc, delay)
                await asyncio.sleep(delay)
                delay *= 2
            except ZlmError as exc:  # it answered: reachable, though this call failed
                self._note("auth-failed" if exc.code == AUTH_FAILED else "ok", str(exc) if exc.code == AUTH_FAILED
                           else "")  # fmt: skip
                raise
            except MediaError as exc:
                self._note("error", str(exc))
                raise
            else:
                self._note("ok", "")
                return answer
        raise AssertionError("unreachable")  # the loop returns or raises

    def _note(self, state: str, error: str) -> None:
        if state != self.state:
            (log.info if state == "ok" else log.warning)("ZLMediaKit at %s: %s%s", self.url, state,
                                                         f" ({error})" if error else "")  # fmt: skip
        self.failures = self.failures + 1 if state == "unreachable" else 0
        self.state, self.error = state, error

    def status(self) -> dict[str, Any]:
        """The backend's state for /health and stats (see ``state``)."""
        return {"backend": "zlmediakit", "url": self.url, "state": self.state, "error": self.error,
                "failures": self.failures}  # fmt: skip

    async def probe(self) -> dict[str, Any]:
        """Ask ZLMediaKit how it is (``getServerConfig``, bounded by ``timeout`` and ``retries``), so that its state
        is known without waiting for a play; learns its RTSP and RTMP ports on the way. Never raises."""
        try:
            await self.load_server_config()
        except MediaError:
            pass  # recorded by call()
        return self.status()

    async def _post(self, api: str, form: dict[str, str]) -> dict[str, Any]:
        try:
            async with self.http.post(f"{self.url}/index/api/{api}", data=form,
                                      timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                text = await resp.text()
                status = resp.status
        except TimeoutError as exc:
            raise _Retryable(f"no answer within {self.timeout:g} s", timeout=True) from exc
        except aiohttp.ClientConnectionError as exc:
            raise _Retryable(f"unreachable ({exc})") from exc
        try:
            answer = json.loads(text) if text else None
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("code"), int):
            if status >= 500:
                raise _Retryable(f"HTTP {status}")
            raise MediaError(f"ZLMediaKit {api}: HTTP {status}, not a ZLMediaKit API answer: {text[:200]!r}")
        if answer["code"] != 0:
            raise ZlmError(api, answer["code"], str(answer.get("msg", "")))
        return answer

    async def load_server_config(self) -> dict[str, str]:
        """``getServerConfig``: learns the RTSP and RTMP ports for ``live_urls``; returns the settings."""
        data = (await self.call("getServerConfig")).get("data") or [{}]
        settings = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
        for key, attr in (("rtsp.port", "rtsp_port"), ("rtmp.port", "rtmp_port")):
            value = str(settings.get(key, ""))
            if value.isdigit():
                setattr(self, attr, int(value))
        return settings

    # ----------------------------------------------------------------------------------------- receivers

    async def open_receiver(self, spec: ReceiverSpec,
                            on_no_media: NoMediaCallback | None = None) -> tuple[int, str]:
        if spec.output:
            raise MediaError("the zlmediakit backend writes no PS file: ZLMediaKit serves and records the stream "
                             "itself (see the live URLs); forward it to an embedded receiver to get a file")
        handle = f"{self.prefix}_{spec.ssrc if spec.ssrc is not None else 'x'}_{next(self._ids)}"
        params = {"port": 0, "tcp_mode": TCP_MODES[spec.transport], "stream_id": handle}
        try:
            answer = await self.call("openRtpServer", **params)
        except ZlmError as exc:
            if exc.code != INVALID_ARGS or "exists" not in exc.msg:
                raise
            # a stream of that name survived a restart of ours (the prefix is ours alone: [media]
            # zlm_stream_prefix): no session of ours uses it now, so take it over
            log.warning("ZLMediaKit: stream %s already open there; closing and reopening it", handle)
            await self.call("closeRtpServer", stream_id=handle)
            answer = await self.call("openRtpServer", **params)
        port = answer.get("port")
        if not isinstance(port, int) or not 0 < port <= 65535:
            await self._close_quietly(handle)
            raise MediaError(f"ZLMediaKit openRtpServer: no port in the answer {answer}")
        loop = asyncio.get_running_loop()
        stream = _Stream(handle, spec, ReceiverStats(port=port, transport=spec.transport, expected_ssrc=spec.ssrc),
                         on_no_media)
        stream.watchdog = loop.call_later(spec.no_media_timeout, self._watch, stream)
        self._streams[handle] = stream
        log.info("media %s: ZLMediaKit receives %s on port %d as %s/%s", spec.label or handle, spec.transport, port,
                 APP, handle)
        return port, handle

    def _stream(self, handle: str) -> _Stream:
        stream = self._streams.get(handle)
        if stream is None:
            raise MediaError(f"no media session {handle!r}")
        return stream

    def expect_ssrc(self, handle: str, ssrc: int) -> None:
        # the port identifies the stream (no ssrc given to openRtpServer), so this is bookkeeping only
        self._stream(handle).stats.expected_ssrc = ssrc

    async def connect(self, handle: str, host: str, port: int) -> None:
        stream = self._stream(handle)
        if stream.spec.transport != TCP_ACTIVE:
            raise MediaError(f"media session {handle} is not a tcp-active receiver")
        try:
            await self.call("connectRtpServer", stream_id=handle, dst_url=host, dst_port=port)
        except ZlmError as exc:
            raise MediaError(f"media {stream.spec.label or handle}: ZLMediaKit connecting to {host}:{port} failed: "
                             f"{exc.msg}") from exc
        stream.stats.connected = True

    def stats(self, handle: str) -> ReceiverStats:
        """The last known figures (``refresh`` asks ZLMediaKit; hooks update arrival and loss of the stream)."""
        return self._stream(handle).stats

    def handles(self) -> list[str]:
        return list(self._streams)

    async def refresh(self, handle: str) -> ReceiverStats:
        """Ask ZLMediaKit for the stream's bytes (``getMediaList``) and its sender (``getRtpInfo``)."""
        stream = self._stream(handle)
        media = await self.call("getMediaList", vhost=VHOST, app=APP, stream=handle)
        items = [m for m in media.get("data") or [] if isinstance(m, dict) and m.get("stream") == handle]
        stats = stream.stats
        if items:
            total = max(int(m.get("totalBytes", 0) or 0) for m in items)
            grew = total > stats.bytes
            stats.bytes = total
            self._arrived(stream, fresh=grew)
        info = await self.call("getRtpInfo", stream_id=handle)
        if info.get("exist"):
            stats.connected = stats.connected or stream.spec.transport != UDP
            self._arrived(stream, fresh=False)
        return stats

    def _arrived(self, stream: _Stream, fresh: bool = True) -> None:
        """The stream is there (hook or API); ``fresh``: media was seen just now (loop time in the stats)."""
        now = asyncio.get_running_loop().time()
        if not stream.arrived.is_set():
            stream.arrived.set()
            stream.stats.first_packet = stream.stats.first_packet or now
            fresh = True
        if fresh:
            stream.stats.last_packet = now

    async def close(self, handle: str) -> ReceiverStats:
        stream = self._stream(handle)
        stream.closed = True  # the watchdog and hooks leave it alone from now on
        if stream.watchdog is not None:
            stream.watchdog.cancel()
        try:
            await self.refresh(handle)
        except MediaError as exc:
            log.info("media %s: final figures unavailable (%s)", handle, exc)
        finally:
            self._streams.pop(handle, None)
        try:
            answer = await self.call("closeRtpServer", stream_id=handle)
        except MediaError as exc:
            log.error("media %s: ZLMediaKit closeRtpServer failed (%s); its rtp_proxy timeout will free the port",
                      handle, exc)
        else:
            if not answer.get("hit"):
                log.info("media %s: ZLMediaKit had already closed the RTP server", handle)
        log.info("media %s: closed, %d bytes", stream.spec.label or handle, stream.stats.bytes)
        return stream.stats

    async def _close_quietly(self, handle: str) -> None:
        try:
            await self.call("closeRtpServer", stream_id=handle)
        except MediaError as exc:
            log.warning("ZLMediaKit: closing %s failed: %s", handle, exc)

    async def aclose(self) -> None:
        for handle in list(self._streams):
            await self.close(handle)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------------------------------ forwards

    async def forward(self, handle: str, spec: ForwardSpec) -> tuple[int, str]:
        """Relay to a consumer with its SSRC. ZLMediaKit can send only a stream that has arrived: wait for it up to
        ``timeout`` (a relay usually joins a flowing stream; at session start the first packets may be in flight)."""
        stream = self._stream(handle)
        name = f"{handle}/{spec.ssrc}"
        if name in stream.forwards:  # ZLMediaKit keys its senders by SSRC: a second one would replace the first
            raise MediaError(f"media {handle} already forwards with SSRC {spec.ssrc}")
        params: dict[str, Any] = {"vhost": VHOST, "app": APP, "stream": handle, "ssrc": spec.ssrc,
                                  "pt": PAYLOAD_TYPE, "type": PS}
        if spec.transport == TCP_PASSIVE:
            api = "startSendRtpPassive"
            params["is_udp"] = 0
        else:
            api = "startSendRtp"
            params.update(dst_url=spec.host, dst_port=spec.port, is_udp=1 if spec.transport == UDP else 0)
        try:
            answer = await self._send_when_arrived(stream, api, params)
        except ZlmError as exc:
            raise MediaError(f"forward of {handle} to {spec.host or '(listening)'}:{spec.port} over {spec.transport} "
                             f"failed: {exc}") from exc
        stream.forwards[name] = spec.ssrc
        stream.stats.forwards = len(stream.forwards)
        local_port = answer.get("local_port")
        log.info("media %s: ZLMediaKit forwards to %s:%s over %s as SSRC %d", handle, spec.host or "(listening)",
                 spec.port or local_port, spec.transport, spec.ssrc)
        return (local_port if isinstance(local_port, int) else 0), name

    async def _send_when_arrived(self, stream: _Stream, api: str, params: dict[str, Any]) -> dict[str, Any]:
        """The send call, repeated while ZLMediaKit has no such stream yet, for at most ``timeout``: woken by the
        on_stream_changed hook, or every half second without hooks."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            try:
                return await self.call(api, **params)
            except ZlmError as exc:
                remaining = deadline - loop.time()
                if exc.code != NOT_FOUND or remaining <= 0 or stream.closed:
                    if exc.code == NOT_FOUND:
                        raise MediaError(f"media {stream.handle}: no stream from the device yet, nothing to forward "
                                         f"(waited {self.timeout:g} s)") from exc
                    raise
            pause = min(0.5, remaining)
            if stream.arrived.is_set():  # ZLMediaKit lost it again, or has not finished registering: no busy loop
                await asyncio.sleep(pause)
                continue
            try:
                await asyncio.wait_for(stream.arrived.wait(), pause)
            except TimeoutError:
                pass

    async def stop_forward(self, handle: str, forward: str) -> None:
        stream = self._stream(handle)
        ssrc = stream.forwards.pop(forward, None)
        if ssrc is None:
            raise MediaError(f"no forward {forward!r}")
        stream.stats.forwards = len(stream.forwards)
        try:
            await self.call("stopSendRtp", vhost=VHOST, app=APP, stream=handle, ssrc=ssrc)
        except ZlmError as exc:  # the stream (and with it the sender) may already be gone
            log.info("media %s: stopSendRtp SSRC %d: %s", handle, ssrc, exc)

    # --------------------------------------------------------------------------------------- live URLs

    def live_urls(self, handle: str, host: str | None = None) -> dict[str, str]:
        """Where players open the stream on ZLMediaKit (app ``rtp``, stream = the handle). ``host``: the address
        players reach ZLMediaKit on, when not the API's."""
        h = host or self.host
        h = f"[{h}]" if ":" in h else h
        return {
            "flv": f"http://{h}:{self.http_port}/{APP}/{handle}.live.flv",
            "hls": f"http://{h}:{self.http_port}/{APP}/{handle}/hls.m3u8",
            "rtsp": f"rtsp://{h}:{self.rtsp_port}/{APP}/{handle}",
            "rtmp": f"rtmp://{h}:{self.rtmp_port}/{APP}/{handle}",
        }

    # ---------------------------------------------------------------------- events (from hooks, watchdog)

    def owns(self, app: str, stream_id: str) -> bool:
        return app == APP and stream_id in self._streams

    def stream_changed(self, app: str, stream_id: str, registered: bool) -> None:
        """on_stream_changed: the media source appeared (first packets demuxed) or went away."""
        stream = self._streams.get(stream_id) if app == APP else None
        if stream is None:
            return
        if registered:
            self._arrived(stream)
        elif stream.arrived.is_set():
            log.warning("media %s: ZLMediaKit reports the stream gone", stream_id)
            self._no_media(stream)

    def rtp_server_timeout(self, stream_id: str) -> None:
        """on_rtp_server_timeout: nothing arrived on the port within ZLMediaKit's rtp_proxy.timeoutSec."""
        stream = self._streams.get(stream_id)
        if stream is not None:
            log.warning("media %s: ZLMediaKit's RTP server timed out without media", stream_id)
            self._no_media(stream)

    def none_reader(self, app: str, stream_id: str) -> bool:
        """on_stream_none_reader: whether ZLMediaKit may close the stream. Ours end with a BYE to the device, which
        only the session layer sends: it decides (``on_none_reader``); by default ours stay, strangers close."""
        if not self.owns(app, stream_id):
            return True
        if self.on_none_reader is None:
            return False
        return bool(self.on_none_reader(stream_id))

    def server_started(self) -> None:
        """on_server_started: ZLMediaKit restarted, every RTP server of ours is gone."""
        for stream in list(self._streams.values()):
            log.warning("media %s: ZLMediaKit restarted; the stream is lost", stream.handle)
            self._no_media(stream)

    def _no_media(self, stream: _Stream) -> None:
        if stream.closed or stream.stats.no_media:
            return
        stream.stats.no_media = True
        if stream.watchdog is not None:
            stream.watchdog.cancel()
        if stream.on_no_media is not None:
            try:
                stream.on_no_media(stream.handle, stream.stats)
            except Exception:  # a callback's bug must not break hook handling
                log.exception("media %s: no-media callback failed", stream.handle)

    def _watch(self, stream: _Stream) -> None:
        """Every no_media_timeout: media flowed since the last look (ZLMediaKit's byte count grew)? Works when
        ZLMediaKit's hooks cannot reach us."""
        if stream.closed or stream.stats.no_media:
            return
        task = asyncio.get_running_loop().create_task(self._check(stream))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _check(self, stream: _Stream) -> None:
        before = stream.last_bytes
        try:
            await self.refresh(stream.handle)
        except MediaError as exc:
            log.warning("media %s: cannot ask ZLMediaKit about the stream (%s)", stream.handle, exc)
            if not stream.closed:
                self._no_media(stream)
            return
        if stream.closed:
            return
        stream.last_bytes = stream.stats.bytes
        if stream.stats.bytes == 0 or stream.stats.bytes == before:
            log.warning("media %s: no media for %.1f s (ZLMediaKit)", stream.handle, stream.spec.no_media_timeout)
            self._no_media(stream)
            return
        stream.watchdog = asyncio.get_running_loop().call_later(stream.spec.no_media_timeout, self._watch, stream)


class _Retryable(Exception):
    def __init__(self, message: str, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
