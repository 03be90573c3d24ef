"""A fake ZLMediaKit written from its documented RESTful API and hooks (server/WebApi.cpp, server/WebHook.cpp), for
testing ``gb28181.media.zlm`` without the C++ server (DECISIONS.md: fakes reject what the real one rejects).

What it does as ZLMediaKit does:
- every API is ``/index/api/<name>``, GET or POST, arguments from the query string, a form or a JSON body (the
  query wins); the answer is HTTP 200 with JSON ``{"code": ..., ...}``; an unknown API path is HTTP 404;
- the secret is checked first: missing -> -300 ``Required parameter missed: "secret"``, wrong -> -100
  ``Incorrect secret``; then required arguments: -300 ``Required parameter missed: "port", "stream_id"`` (the whole
  list, as the CHECK_ARGS macro prints it); an existing stream -> -300 ``This stream already exists``; a send
  from a stream that has not arrived -> -500 ``can not find the source stream``; a failed connect -> -1;
- openRtpServer really listens (an ``EmbeddedBackend`` inside receives the RTP), the stream "registers" at its
  first packet (on_publish, then on_stream_changed regist=true for each schema), startSendRtp really relays with
  the consumer's SSRC, and a port without media times out (on_rtp_server_timeout, or on_stream_changed
  regist=false once media had flowed), after which the RTP server is gone.

Where it is stricter or smaller, on purpose:
- an argument the API does not document is REJECTED (-300 ``Unknown parameter: NAME``). The real server ignores it
  silently, so a misspelt argument from our client would go unnoticed against it; here it fails the test;
- tcp_mode 1 listens on TCP only (ZLMediaKit listens on UDP too); only PS relays (type=1); one vhost.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from gb28181.media import rtp
from gb28181.media.backend import TCP_ACTIVE, TCP_PASSIVE, UDP, ForwardSpec, MediaError, ReceiverSpec, ReceiverStats
from gb28181.media.receiver import EmbeddedBackend

SECRET_ARGS = ("secret",)
# Documented arguments per API (besides secret); the first list is what CHECK_ARGS requires.
APIS: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "getServerConfig": ((), frozenset()),
    "openRtpServer": (("port", "stream_id"), frozenset({"port", "stream_id", "tcp_mode", "enable_tcp", "only_track",
                                                         "only_audio", "local_ip", "re_use_port", "ssrc", "vhost",
                                                         "app"})),
    "closeRtpServer": (("stream_id",), frozenset({"stream_id", "vhost", "app"})),
    "connectRtpServer": (("stream_id", "dst_url", "dst_port"), frozenset({"stream_id", "dst_url", "dst_port", "vhost",
                                                                          "app"})),
    "listRtpServer": ((), frozenset()),
    "getRtpInfo": (("stream_id",), frozenset({"stream_id", "vhost", "app"})),
    "getMediaList": ((), frozenset({"schema", "vhost", "app", "stream"})),
    "startSendRtp": (("vhost", "app", "stream", "ssrc", "dst_url", "dst_port", "is_udp"),
                     frozenset({"vhost", "app", "stream", "ssrc", "dst_url", "dst_port", "is_udp", "src_port", "pt",
                                "type", "use_ps", "only_audio", "udp_rtcp_timeout", "recv_stream_id",
                                "close_delay_ms", "ssrc_multi_send", "from_mp4", "enable_origin_recv_limit"})),
    "startSendRtpPassive": (("vhost", "app", "stream", "ssrc"),
                            frozenset({"vhost", "app", "stream", "ssrc", "is_udp", "src_port", "pt", "type", "use_ps",
                                       "only_audio", "recv_stream_id", "close_delay_ms", "ssrc_multi_send",
                                       "from_mp4", "enable_origin_recv_limit"})),
    "stopSendRtp": (("vhost", "app", "stream"), frozenset({"vhost", "app", "stream", "ssrc"})),
}
VHOST, APP = "__defaultVhost__", "rtp"
SCHEMAS = ("rtsp", "rtmp")  # each registered stream is one media source per schema (on_stream_changed per schema)
TRANSPORT_OF_MODE = {0: UDP, 1: TCP_PASSIVE, 2: TCP_ACTIVE}


class ApiError(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


def _required(names: tuple[str, ...]) -> str:
    return "Required parameter missed: " + ", ".join(f'"{n}"' for n in names)


@dataclass
class RtpServer:
    stream_id: str
    port: int
    tcp_mode: int
    ssrc: int
    handle: str
    backend: EmbeddedBackend
    opened: float = field(default_factory=time.monotonic)
    registered: bool = False
    bytes: int = 0
    senders: dict[int, str] = field(default_factory=dict)  # SSRC -> forward name in the embedded backend
    own_backend: bool = False  # a backend made for an explicit port


class FakeZlm:
    def __init__(self, secret: str, rtp_ports: tuple[int, int], *, hook_url: str = "",
                 rtp_timeout: float = 10.0, server_id: str = "fake-zlm") -> None:
        """``hook_url``: a template with ``{name}`` (e.g. ``http://127.0.0.1:P/zlm/hook/{name}?secret=S``); empty:
        no hooks. ``rtp_timeout``: rtp_proxy.timeoutSec."""
        self.secret = secret
        self.hook_url = hook_url
        self.rtp_timeout = rtp_timeout
        self.server_id = server_id
        self.media = EmbeddedBackend(rtp_ports, host="127.0.0.1")
        self.servers: dict[str, RtpServer] = {}
        self.calls: list[tuple[str, dict[str, str]]] = []  # every API call with its arguments
        self.hooks: list[tuple[str, dict[str, Any], Any]] = []  # (hook, body, our answer)
        self.delay = 0.0  # seconds before each answer (timeouts)
        self.fail_next = 0  # answer this many calls with HTTP 503 (a proxy in front while ZLMediaKit restarts)
        self.config = {"api.secret": secret, "rtsp.port": "10554", "rtmp.port": "11935", "http.port": "0",
                       "rtp_proxy.timeoutSec": str(rtp_timeout), "general.mediaServerId": server_id}
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._hook_index = itertools.count()

    # ---------------------------------------------------------------------------------------------- life

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_route("*", "/index/api/{api}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.config["http.port"] = str(self.port)
        self._http = aiohttp.ClientSession()
        return self.url

    async def stop(self) -> None:
        """ZLMediaKit goes down: the API stops answering and every RTP server closes."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for stream_id in list(self.servers):
            await self._drop(stream_id)
        await self.media.aclose()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    # ------------------------------------------------------------------------------------------ dispatch

    async def _dispatch(self, request: web.Request) -> web.Response:
        api = request.match_info["api"]
        if api not in APIS:
            return web.Response(status=404, text="404 Not Found")
        args = await self._args(request)
        self.calls.append((api, args))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=503, text="Service Unavailable")
        required, known = APIS[api]
        try:
            if "secret" not in args or args["secret"] == "":
                raise ApiError(-300, _required(SECRET_ARGS))
            if args["secret"] != self.secret:
                raise ApiError(-100, "Incorrect secret")
            unknown = sorted(k for k in args if k != "secret" and k not in known)
            if unknown:
                raise ApiError(-300, f"Unknown parameter: {unknown[0]}")
            if any(args.get(k, "") == "" for k in required):
                raise ApiError(-300, _required(required))
            answer = await getattr(self, f"_{api}")(args)
        except ApiError as exc:
            return web.json_response({"code": exc.code, "msg": exc.msg})
        return web.json_response({"code": 0, **answer})

    @staticmethod
    async def _args(request: web.Request) -> dict[str, str]:
        args: dict[str, str] = {}
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("application/x-www-form-urlencoded"):
            args.update({k: str(v) for k, v in (await request.post()).items()})
        elif ctype.startswith("application/json"):
            try:
                body = json.loads(await request.text())
            except ValueError:
                body = {}
            if isinstance(body, dict):
                args.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()})
        args.update(request.query)  # URL arguments win, as in getAllArgs()
        return args

    def _server(self, args: dict[str, str], key: str = "stream_id") -> RtpServer | None:
        if args.get("vhost", VHOST) != VHOST or args.get("app", APP) != APP:
            return None
        return self.servers.get(args.get(key, ""))

    @staticmethod
    def _int(args: dict[str, str], key: str, default: int = 0) -> int:
        text = args.get(key, "")
        try:
            return int(text) if text != "" else default
        except ValueError:
            return 0  # ZLMediaKit's variant.as<int>() reads garbage as 0

    # -------------------------------------------------------------------------------------------- APIs

    async def _getServerConfig(self, args: dict[str, str]) -> dict[str, Any]:
        return {"data": [dict(self.config)]}

    async def _openRtpServer(self, args: dict[str, str]) -> dict[str, Any]:
        stream_id = args["stream_id"]
        if stream_id in self.servers:
            raise ApiError(-300, "This stream already exists")
        tcp_mode = self._int(args, "tcp_mode")
        if tcp_mode == 0 and self._int(args, "enable_tcp"):
            tcp_mode = 1
        transport = TRANSPORT_OF_MODE.get(tcp_mode)
        if transport is None:
            raise ApiError(-400, f"invalid tcp_mode {tcp_mode}")
        port = self._int(args, "port")
        backend, own = self.media, False
        if port:
            backend, own = EmbeddedBackend((port, port), host="127.0.0.1"), True
        ssrc = self._int(args, "ssrc")
        try:
            got, handle = await backend.open_receiver(
                ReceiverSpec(transport, ssrc=ssrc or None, no_media_timeout=self.rtp_timeout, label=stream_id),
                on_no_media=lambda h, stats, s=stream_id: self._timeout(s))
        except MediaError as exc:
            raise ApiError(-400, f"bind port {port} failed: {exc}") from exc
        server = RtpServer(stream_id, got, tcp_mode, ssrc, handle, backend, own_backend=own)
        backend.subscribe(handle, lambda packet, s=server: self._packet(s, packet))
        self.servers[stream_id] = server
        return {"port": got}

    async def _closeRtpServer(self, args: dict[str, str]) -> dict[str, Any]:
        server = self._server(args)
        if server is None:
            return {"hit": 0}
        await self._drop(server.stream_id)
        return {"hit": 1}

    async def _connectRtpServer(self, args: dict[str, str]) -> dict[str, Any]:
        server = self._server(args)
        if server is None:
            raise ApiError(-1, "can not find the stream")
        try:
            await server.backend.connect(server.handle, args["dst_url"], self._int(args, "dst_port"))
        except MediaError as exc:
            raise ApiError(-1, str(exc)) from exc
        return {}

    async def _listRtpServer(self, args: dict[str, str]) -> dict[str, Any]:
        data = [{"vhost": VHOST, "app": APP, "stream_id": s.stream_id, "port": s.port, "ssrc": s.ssrc,
                 "tcp_mode": s.tcp_mode, "only_track": 0} for s in self.servers.values()]
        return {"data": data} if data else {}  # jsoncpp leaves "data" out when nothing was appended

    async def _getRtpInfo(self, args: dict[str, str]) -> dict[str, Any]:
        server = self._server(args)
        if server is None or not server.registered:
            return {"exist": False}
        return {"exist": True, "local_ip": "127.0.0.1", "local_port": server.port,
                "identifier": f"{server.stream_id}-{server.port}"}

    async def _getMediaList(self, args: dict[str, str]) -> dict[str, Any]:
        items = []
        for server in self.servers.values():
            if not server.registered:
                continue
            for schema in SCHEMAS:
                item = self._source_json(server, schema)
                if all(args.get(k, "") in ("", item[k]) for k in ("schema", "vhost", "app", "stream")):
                    items.append(item)
        return {"data": items} if items else {}  # jsoncpp leaves "data" out when nothing was appended

    def _source_json(self, server: RtpServer, schema: str) -> dict[str, Any]:
        alive = int(time.monotonic() - server.opened)
        return {"schema": schema, "vhost": VHOST, "app": APP, "stream": server.stream_id, "params": "",
                "totalBytes": server.bytes, "bytesSpeed": server.bytes // max(alive, 1), "aliveSecond": alive,
                "readerCount": len(server.senders), "totalReaderCount": len(server.senders), "originType": 3,
                "originTypeStr": "rtp_push", "originUrl": "",
                "tracks": [{"codec_id": 0, "codec_id_name": "H264", "codec_type": 0, "ready": True}]}

    def _source(self, args: dict[str, str]) -> RtpServer:
        server = self._server(args, "stream")
        if server is None or not server.registered:
            raise ApiError(-500, "can not find the source stream")
        return server

    async def _send(self, args: dict[str, str], passive: bool) -> dict[str, Any]:
        server = self._source(args)
        kind = self._int(args, "type", 1) if args.get("use_ps", "") == "" else self._int(args, "use_ps")
        if kind != 1:
            raise ApiError(-1, "this fake relays PS only (type=1)")
        ssrc = self._int(args, "ssrc")
        if passive:
            spec = ForwardSpec(ssrc, TCP_PASSIVE)
        else:
            transport = UDP if self._int(args, "is_udp") else TCP_ACTIVE
            port = self._int(args, "dst_port")
            if not 0 < port <= 65535:
                raise ApiError(-1, f"invalid dst_port {args['dst_port']!r}")
            spec = ForwardSpec(ssrc, transport, args["dst_url"], port)
        if ssrc in server.senders:  # same SSRC: the new sender replaces the old one
            await server.backend.stop_forward(server.handle, server.senders.pop(ssrc))
        try:
            local_port, name = await server.backend.forward(server.handle, spec)
        except MediaError as exc:
            raise ApiError(-1, str(exc)) from exc
        server.senders[ssrc] = name
        return {"local_port": local_port}

    async def _startSendRtp(self, args: dict[str, str]) -> dict[str, Any]:
        return await self._send(args, passive=False)

    async def _startSendRtpPassive(self, args: dict[str, str]) -> dict[str, Any]:
        return await self._send(args, passive=True)

    async def _stopSendRtp(self, args: dict[str, str]) -> dict[str, Any]:
        server = self._server(args, "stream")
        if server is None or not server.registered:
            raise ApiError(-500, "can not find the stream")
        wanted = [self._int(args, "ssrc")] if args.get("ssrc", "") else list(server.senders)
        if not wanted or any(s not in server.senders for s in wanted):
            raise ApiError(-1, "stopSendRtp failed")
        for ssrc in wanted:
            await server.backend.stop_forward(server.handle, server.senders.pop(ssrc))
        return {}

    # ------------------------------------------------------------------------------------ media events

    def _packet(self, server: RtpServer, packet: rtp.RtpPacket) -> None:
        server.bytes += len(packet.payload)
        if not server.registered:
            server.registered = True
            self._spawn(self._publish(server))

    async def _publish(self, server: RtpServer) -> None:
        answer = await self.post_hook("on_publish", {"schema": "rtp", "vhost": VHOST, "app": APP,
                                                     "stream": server.stream_id, "params": "", "ip": "127.0.0.1",
                                                     "port": 0, "id": server.stream_id, "originType": 3})
        if isinstance(answer, dict) and answer.get("code") not in (0, None):
            await self._drop(server.stream_id)  # refused publisher: ZLMediaKit closes the stream
            return
        for schema in SCHEMAS:
            await self.post_hook("on_stream_changed", {**self._source_json(server, schema), "regist": True})

    def _timeout(self, stream_id: str) -> None:
        self._spawn(self._expire(stream_id))

    async def _expire(self, stream_id: str) -> None:
        server = self.servers.get(stream_id)
        if server is None:
            return
        if server.registered:
            for schema in SCHEMAS:
                await self.post_hook("on_stream_changed", {"regist": False, "schema": schema, "vhost": VHOST,
                                                           "app": APP, "stream": stream_id})
        else:
            await self.post_hook("on_rtp_server_timeout", {"local_port": server.port, "vhost": VHOST, "app": APP,
                                                           "stream_id": stream_id, "tcp_mode": server.tcp_mode,
                                                           "re_use_port": False, "ssrc": server.ssrc})
        await self._drop(stream_id)

    async def no_reader(self, stream_id: str) -> Any:
        """The last player left: on_stream_none_reader; the stream closes when the answer says close."""
        answer = await self.post_hook("on_stream_none_reader", {"schema": "rtsp", "vhost": VHOST, "app": APP,
                                                                "stream": stream_id})
        if isinstance(answer, dict) and answer.get("close") is True:
            await self._drop(stream_id)
        return answer

    async def restarted(self) -> Any:
        """on_server_started after a restart: every RTP server is gone."""
        for stream_id in list(self.servers):
            await self._drop(stream_id)
        return await self.post_hook("on_server_started", dict(self.config))

    async def _drop(self, stream_id: str) -> None:
        server = self.servers.pop(stream_id, None)
        if server is None:
            return
        try:
            await server.backend.close(server.handle)
        except MediaError:
            pass  # already closed
        if server.own_backend:
            await server.backend.aclose()

    def stats(self, stream_id: str) -> ReceiverStats:
        server = self.servers[stream_id]
        return server.backend.stats(server.handle)

    # ------------------------------------------------------------------------------------------- hooks

    async def post_hook(self, name: str, body: dict[str, Any]) -> Any:
        """POST a hook as ZLMediaKit does (mediaServerId and hook_index added); the answer's JSON, or None."""
        if not self.hook_url or self._http is None:
            return None
        body = {**body, "mediaServerId": self.server_id, "hook_index": next(self._hook_index)}
        try:
            async with self._http.post(self.hook_url.format(name=name), json=body,
                                       timeout=aiohttp.ClientTimeout(total=10)) as resp:
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            answer: Any = f"unreachable: {exc}"
        else:
            try:
                answer = json.loads(text)
            except ValueError:
                answer = text
        self.hooks.append((name, body, answer))
        return answer

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

