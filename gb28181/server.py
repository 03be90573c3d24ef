"""The platform's composition root: config -> store, SIP endpoint and runner, registrar, device service,
admin API; and the request router. Its concerns live in mixins ``Platform`` inherits, one module each:
server_register.py (REGISTER lanes), server_messages.py (MESSAGE, queries), server_catalog.py (catalog syncs),
server_subscriptions.py (SUBSCRIBE, NOTIFY, alarms), server_media.py (media, broadcast, conformance),
server_upstream.py and server_cascade_media.py (we as a lower platform). IO lives there and here only.

Every registration outcome is logged on one line with its reason and counted (``gb28181 stats``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import ssl
import time
import zoneinfo
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gb28181.admin.app import AdminApi
from gb28181.admin.tls import admin_tls, is_loopback
from gb28181.admin.zlm_hooks import make_hooks
from gb28181.catalog import CatalogAssembler
from gb28181.catalog_schedule import CatalogSchedule
from gb28181.config import Config, media_settings
from gb28181.conformance.trace import TracingEndpoint
from gb28181.devices import DeviceService
from gb28181.guard import Guard
from gb28181.keepalive import EXPIRED, LivenessPolicy
from gb28181.media.factory import make_backend
from gb28181.operation_service import OperationService
from gb28181.registrar import RegisterPolicy, Registrar
from gb28181.rejects import reject_reason
from gb28181.server_cascade_media import CascadeMediaDriver
from gb28181.server_catalog import CatalogSync
from gb28181.server_media import MediaWiring
from gb28181.server_messages import MessageRouting
from gb28181.server_register import RegisterLanes
from gb28181.server_subscriptions import SubscriptionDriver
from gb28181.server_upstream import RelayRoute, UpstreamDriver, UpstreamLink
from gb28181.sn import Correlator
from gb28181.trace import TraceHub
from registry.models import StatusEvent
from registry.sqlite import SqliteStore
from registry.store import RegistryStore, StoreError
from sip.aio import SipRunner, tune_gc
from sip.auth import DigestServer
from sip.endpoint import (
    AckReceived,
    AckTimeout,
    CancelReceived,
    ConnectionBroken,
    ConnectionClosed,
    EndpointConfig,
    Event,
    MessageRejected,
    RequestReceived,
    ResponseReceived,
    TransactionFailed,
)
from sip.errors import LocalProtocolError, RemoteProtocolError
from sip.message import Request
from sip.timers import TimerConfig

log = logging.getLogger("gb28181")

ALLOW = "REGISTER, MESSAGE, NOTIFY, SUBSCRIBE, OPTIONS, ACK, BYE, CANCEL"
USER_AGENT = "gb28181-py/0.1"


@dataclass
class Secrets:
    password: str
    token: str
    nonce_secret: bytes
    path: Path
    generated: bool = False


def secrets_path(database: str) -> Path:
    db = Path(database)
    return db.with_name(db.name + ".secrets.json")


def load_secrets(cfg: Config) -> Secrets:
    """Password, admin token and nonce secret: from the config, else generated once and kept (0600) beside
    the database (DECISIONS.md: operator surface). The nonce secret survives restarts so outstanding
    challenges stay valid."""
    path = secrets_path(cfg.registry.database)
    stored: dict[str, str] = {}
    if path.exists():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read {path}: {exc}") from exc
    generated = False
    if not all(stored.get(k) for k in ("password", "token", "nonce_secret")):
        stored.setdefault("password", secrets.token_urlsafe(9))
        stored.setdefault("token", secrets.token_urlsafe(24))
        stored.setdefault("nonce_secret", secrets.token_hex(32))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(stored, f)
        generated = True
    return Secrets(
        password=cfg.sip.password or stored["password"],
        token=cfg.admin.token or stored["token"],
        nonce_secret=bytes.fromhex(stored["nonce_secret"]),
        path=path,
        generated=generated,
    )


@dataclass
class Platform(
    RegisterLanes, MessageRouting, CatalogSync, SubscriptionDriver, MediaWiring, UpstreamDriver, CascadeMediaDriver
):
    cfg: Config
    secrets: Secrets
    store: RegistryStore
    wall: Callable[[], float] = time.time
    mono: Callable[[], float] = time.monotonic
    batch_interval: float = 1.0
    counters: dict[str, int] = field(default_factory=dict)
    media_backend: Any = None  # a gb28181.media.backend.MediaBackend; run() builds it from [media]
    zlm_hooks: Any = None  # gb28181.admin.zlm_hooks.ZlmHooks when the backend is ZLMediaKit; run() sets it

    def __post_init__(self) -> None:
        s = self.cfg.sip
        self.tz = zoneinfo.ZoneInfo(self.cfg.platform.timezone)
        self.endpoint = TracingEndpoint(  # an Endpoint whose traffic a conformance run can trace (issue 11)
            EndpointConfig(timers=TimerConfig(t1=s.t1), user_agent=USER_AGENT),
            on_unknown_dialog=self._claim_unknown,
            stateless=self.stateless,
            fast=self.fast if s.fast_lane else None,
        )
        self.endpoint.clock = self.mono
        self.runner: SipRunner | None = None
        auth = DigestServer(self.secrets.nonce_secret, self.cfg.realm, nonce_ttl=s.nonce_ttl, offer_qop=s.qop)
        policy = RegisterPolicy(
            realm=self.cfg.realm,
            min_expires=s.min_expires,
            max_expires=s.max_expires,
            default_expires=s.default_expires,
            strict_ids=s.strict_ids,
            allow_unknown=s.allow_unknown,
            timezone=self.cfg.platform.timezone,
        )
        self.devices = DeviceService(
            self.store,
            LivenessPolicy(self.cfg.keepalive.interval, self.cfg.keepalive.max_missed),
            wall=self.wall,
            mono=self.mono,
            batch_interval=self.batch_interval,
            strict_address=s.strict_address,
        )
        self.registrar = Registrar(
            policy, auth, lambda device_id: self.devices.password_for(device_id, self.secrets.password, s.allow_unknown)
        )
        self.guard = Guard(self.cfg.guard)
        self._tasks: set[asyncio.Task[None]] = set()
        self.correlator = Correlator()
        self.catalog = CatalogAssembler(
            inter_packet_timeout=self.cfg.catalog.inter_packet_timeout,
            first_packet_timeout=self.cfg.catalog.first_packet_timeout,
        )
        self._catalog_waiters: dict[tuple[str, int], asyncio.Future[dict[str, Any]]] = {}
        self.catalog_schedule = CatalogSchedule(self.cfg.catalog.sync_interval)
        self._catalog_results: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
        self._init_subscriptions()
        self.operations = OperationService(
            store=self.store, devices=self.devices, correlator=self.correlator, send=self._send_to_device,
            device_of=self._registered, count=self.count, mono=self.mono, tz=self.tz, query_timeout=s.query_timeout,
            inter_packet_timeout=self.cfg.catalog.inter_packet_timeout,
        )  # fmt: skip
        self.upstreams: dict[str, UpstreamLink] = {}  # superiors we register to, by ID (cascade)
        self.relay_routes: dict[tuple[str, int], RelayRoute] = {}  # (device, our SN) -> a superior's query
        self.devices.on_channel_status = self.catalog_changed  # superiors' catalog subscriptions hear of it
        self._init_media()
        self.tracer = TraceHub(self.endpoint, wall=self.wall, address_of=self._address_of)  # gb28181 trace
        self._init_cascade_media()  # a superior's INVITEs routed down (gb28181/server_cascade_media.py)

    def _address_of(self, device_id: str) -> str | None:
        device = self.devices.devices.get(device_id)
        return device.address if device is not None else None

    def trace_note(self, req: Request | None, text: str) -> None:
        """Why ``req`` is answered as it is, for a running ``gb28181 trace`` (free when none runs). The lean lane
        passes no request: it steps aside while any tap, a trace's included, is on the endpoint."""
        if req is not None and self.tracer.watchers:
            self.tracer.note(req, text)

    def count(self, key: str) -> None:
        self.counters[key] = self.counters.get(key, 0) + 1

    def flush(self) -> None:
        if self.runner is not None:
            self.runner.flush()

    # ------------------------------------------------------------------ routing
    def handle(self, event: Event) -> None:
        if isinstance(event, ConnectionClosed):
            self.devices.connection_closed(str(event.peer))
            return
        if isinstance(event, ResponseReceived | TransactionFailed):
            try:
                # media sessions, then voice broadcasts (our BYE ending one), then cascade legs
                if not self.media.on_response(event) and not self.broadcasts.on_response(event):
                    self.cascade_response(event)
            except Exception:  # the error boundary, as below
                self.count("internal-error")
                log.exception("internal error handling a %s response", event.request.method)
        if isinstance(event, AckReceived | AckTimeout) and self.broadcasts.on_ack(event):
            return  # the ACK to our 200 for a broadcast's audio starts the sending; other ACKs: cascade legs, below
        if isinstance(event, (MessageRejected, ConnectionBroken)):  # logged by the runner; counted by reason
            self.count(f"rejected:{reject_reason(event.reason)}")
            return
        if isinstance(event, AckReceived | AckTimeout | CancelReceived):
            try:
                self.cascade_event(event)  # a superior's INVITE: ACK, no ACK, CANCEL
            except Exception:  # the error boundary, as below
                self.count("internal-error")
                log.exception("internal error handling %s", type(event).__name__)
            return
        if not isinstance(event, RequestReceived) or event.tx is None:
            return
        try:
            self._route(event)
        except LocalProtocolError as exc:  # answering a transaction that went away
            log.warning("could not answer %s from %s: %s", event.request.method, event.peer, exc)
        except RemoteProtocolError as exc:  # a header the handler needed was malformed
            log.info("bad %s from %s: %s", event.request.method, event.peer, exc.reason)
            self.endpoint.reply(event, exc.status_hint, now=self.mono())
        except Exception:  # the error boundary: a bug in one handler must not stop the server
            self.count("internal-error")
            log.exception("internal error handling %s from %s; answered 500", event.request.method, event.peer)
            try:
                self.endpoint.reply(event, 500, now=self.mono())
            except LocalProtocolError:
                pass  # already answered before the error

    def _route(self, event: RequestReceived) -> None:
        method = event.request.method
        if method == "REGISTER":
            self._on_register(event)
        elif method == "MESSAGE":
            self._on_message(event)
        elif method == "NOTIFY":
            self._on_notify(event)
        elif method == "SUBSCRIBE":
            self._on_subscribe(event)  # a superior's Catalog subscription (gb28181/server_upstream.py)
        elif method == "OPTIONS":
            self.endpoint.reply(event, 200, headers=[("Allow", ALLOW)], now=self.mono())
        elif method == "BYE":
            if not self.broadcasts.on_bye(event) and not self.cascade_bye(event):  # server_cascade_media.py
                self.media.on_bye(event)
        elif method == "INVITE" and self.broadcasts.on_invite(event):
            pass  # a device's audio INVITE answering our Notify Broadcast (gb28181/broadcast_service.py)
        elif method == "INVITE" and self._on_superior_invite(event):
            pass  # a superior's INVITE for a shared channel
        elif method == "INFO" and self.cascade_info(event):
            pass  # MANSRTSP from a superior, relayed to the device's dialog
        else:
            self.endpoint.reply(event, 405, headers=[("Allow", ALLOW)], now=self.mono())

    async def _append_events(self, events: list[StatusEvent], what: str) -> None:
        try:
            await self.store.append_events(events)
        except StoreError as exc:
            self.count("events:store-error")
            log.error("%s: %d status events not stored: %s", what, len(events), exc)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ liveness clock
    async def liveness_loop(self, interval: float = 1.0) -> None:
        while True:
            self.tick()
            await asyncio.sleep(interval)

    def tick(self) -> None:
        """The platform's clock work: liveness, subscriptions, periodic syncs, quiet catalog answers, PTZ stops."""
        for device_id, reason in self.devices.tick():
            if reason == EXPIRED:
                self._subscriptions_gone(device_id, "registration expired")
                self.catalog_schedule.forget(device_id)
        self._drive_subscriptions()
        for device_id in self.catalog_schedule.due(self.mono(), self._wants_periodic_sync):
            self._spawn(self._periodic_sync(device_id))
        for commit in self.catalog.due(self.mono()):
            self._spawn(self._commit_catalog(commit))
        self.operations.tick(self.mono())


async def run(
    cfg: Config,
    *,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    tick: float = 1.0,
    batch_interval: float = 1.0,
    store: SqliteStore | None = None,
) -> int:
    """Run the platform until SIGTERM/SIGINT (or ``stop``). Returns a process exit code. ``store``: a registry the
    caller built on ``cfg.registry.database`` (tests: a short busy_timeout, a size limit); run() opens and closes
    it."""
    try:
        sec = load_secrets(cfg)
        store = store or SqliteStore(cfg.registry.database)
        await store.open()
    except StoreError as exc:
        log.error("cannot open the registry %s: %s", cfg.registry.database, exc)
        return 2
    loop = asyncio.get_running_loop()
    media = media_settings(cfg.media)
    # ZLMediaKit is reached over HTTP: one client session for the platform's life, closed at the end.
    http = aiohttp.ClientSession() if media.backend == "zlmediakit" else None
    try:
        backend = make_backend(media, http, host=media.bind)
    except ValueError as exc:
        log.error("media: %s", exc)
        if http is not None:
            await http.close()
        await store.close()
        return 2
    platform = Platform(cfg, sec, store, wall=time.time, mono=loop.time, batch_interval=batch_interval,
                        media_backend=backend)
    platform.zlm_hooks = make_hooks(media, backend)  # mounted by the admin API on /zlm/hook/ (its own secret)
    await platform.devices.start()
    runner = SipRunner(
        platform.endpoint,
        platform.handle,
        tcp_read_deadline=cfg.sip.tcp_read_deadline,
        tcp_idle_timeout=cfg.sip.tcp_idle_timeout,
        overload_lag=cfg.sip.overload_lag or None,
        overload_backlog=cfg.sip.overload_backlog or None,
    )
    platform.runner = runner
    if cfg.sip.advertise:  # DECISIONS.md: Advertised addresses (a platform behind NAT or with several IPs)
        advertised = cfg.sip.advertise
        platform.endpoint.local_address = lambda peer: (advertised, runner.local_address(peer)[1])
    tune_gc()  # after the registry cache is loaded: see sip.aio.tune_gc
    admin_runner: web.AppRunner | None = None
    try:
        for addr in cfg.sip.listen:
            bound = await (runner.listen_udp if addr.transport == "udp" else runner.listen_tcp)(addr.host, addr.port)
            log.info("SIP listening on %s://%s:%d", addr.transport, bound[0], bound[1])
        host, _, port = cfg.admin.listen.rpartition(":")
        named = {t.token: (t.name, t.role) for t in cfg.admin.tokens}
        admin_runner = web.AppRunner(AdminApi(platform, sec.token, platform.tz, named).app(), access_log=None)
        await admin_runner.setup()
        tls = admin_tls(cfg.admin.tls_cert, cfg.admin.tls_key)
        await web.TCPSite(admin_runner, host.strip("[]"), int(port), ssl_context=tls).start()
        log.info("admin API on %s://%s", "https" if tls else "http", cfg.admin.listen)
        if tls is None and not is_loopback(host.strip("[]")):
            log.warning("admin API listens on %s without TLS: tokens cross the network in clear; set [admin] "
                        "tls_cert and tls_key", host)  # fmt: skip
    except (OSError, ssl.SSLError) as exc:
        log.error("cannot listen: %s", exc)
        await runner.close()
        if admin_runner is not None:
            await admin_runner.cleanup()
        await platform.devices.stop()
        if http is not None:
            await http.close()
        await store.close()
        return 2
    if sec.generated:
        log.warning("generated a device password and an admin token in %s (mode 0600)", sec.path)
    log.info(
        "platform %s, domain %s, realm %s, database %s; device password and admin token in %s",
        cfg.sip.id,
        cfg.domain,
        cfg.realm,
        cfg.registry.database,
        sec.path,
    )
    stop = stop or asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    # Check liveness often enough that a lapse is seen within a quarter of the shortest window.
    tick = min(tick, cfg.keepalive.interval * cfg.keepalive.max_missed / 4)
    ticker = loop.create_task(platform.liveness_loop(tick))
    backend_watch = loop.create_task(platform.media_backend_loop())
    await platform.start_upstreams()
    if ready is not None:
        ready.set()
    await stop.wait()
    log.info("stopping: %d devices online", sum(1 for d in platform.devices.devices.values() if d.status == "online"))
    ticker.cancel()
    backend_watch.cancel()
    await platform.broadcasts.aclose()
    await platform.cascade_aclose()  # BYE every superior's leg ...
    await platform.media.aclose()  # ... and every media session while the transport is still up
    await platform.operations.stop_moving()  # timed PTZ stops still pending go out before the transport closes
    await platform.stop_upstreams()  # unregister from superiors (Expires 0) while the transport still runs
    await runner.close()
    await admin_runner.cleanup()
    await platform.devices.stop()  # records platform-stop and flushes the batches
    if http is not None:
        await http.close()
    await store.close()
    return 0
