"""The platform's composition root: config -> SIP endpoint, runner, registrar; the request router.

Registrations are held in memory in this version; persistence in SQLite (registry/) arrives with the
registrar issue. Every registration outcome is logged on one line with its reason and counted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from gb28181.config import Config
from gb28181.registrar import Decision, RegisterPolicy, Registrar
from sip.aio import SipRunner
from sip.auth import DigestServer
from sip.endpoint import Endpoint, EndpointConfig, Event, Peer, RequestReceived
from sip.errors import LocalProtocolError
from sip.timers import TimerConfig

log = logging.getLogger("gb28181")

ALLOW = "REGISTER, MESSAGE, OPTIONS, ACK, BYE, CANCEL"
USER_AGENT = "gb28181-py/0.1"


@dataclass
class Binding:
    device_id: str
    peer: Peer
    contact: str
    expires_at: float  # wall clock
    registered_at: float
    gb_version: str | None = None
    last_keepalive: float | None = None


@dataclass
class Secrets:
    password: str
    token: str
    nonce_secret: bytes
    path: Path | None = None
    generated: bool = False


def load_secrets(cfg: Config) -> Secrets:
    """Password, admin token and nonce secret: from the config, else generated once and kept (0600) beside
    the database (DECISIONS.md: operator surface)."""
    db = Path(cfg.registry.database)
    path = db.with_name(db.name + ".secrets.json")
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
    generated = False
    if not stored.get("password") or not stored.get("token") or not stored.get("nonce_secret"):
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
class Platform:
    cfg: Config
    secrets: Secrets
    endpoint: Endpoint = field(init=False)
    registrar: Registrar = field(init=False)
    bindings: dict[str, Binding] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        s = self.cfg.sip
        self.endpoint = Endpoint(EndpointConfig(timers=TimerConfig(t1=s.t1), user_agent=USER_AGENT))
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
        self.registrar = Registrar(policy, auth, self._password_for)

    def _password_for(self, device_id: str) -> str | None:
        if not self.cfg.sip.allow_unknown:
            return None  # provisioned devices only: none can be provisioned before the registry lands
        return self.secrets.password

    def count(self, key: str) -> None:
        self.counters[key] = self.counters.get(key, 0) + 1

    def registered(self, device_id: str, now: float) -> Binding | None:
        b = self.bindings.get(device_id)
        if b is not None and b.expires_at <= now:
            del self.bindings[device_id]
            log.info("device %s expired", device_id)
            return None
        return b

    # ------------------------------------------------------------------ routing
    def handle(self, event: Event) -> None:
        if not isinstance(event, RequestReceived) or event.tx is None:
            return
        try:
            self._route(event)
        except LocalProtocolError as exc:  # answering a transaction that went away
            log.warning("could not answer %s from %s: %s", event.request.method, event.peer, exc)

    def _route(self, event: RequestReceived) -> None:
        method = event.request.method
        now = time.time()
        mono = asyncio.get_running_loop().time()
        if method == "REGISTER":
            self._on_register(event, now, mono)
        elif method == "MESSAGE":
            user = event.request.from_.user or ""
            binding = self.registered(user, now)
            if binding is None:
                # DECISIONS.md: 403 for any device not currently registered, which prompts a re-REGISTER.
                self.count("message:not-registered")
                log.info("MESSAGE from %s (%s) refused: not registered", user, event.peer)
                self.endpoint.reply(event, 403, now=mono)
                return
            binding.peer = event.peer  # NAT/4G moves are tracked from every request
            binding.last_keepalive = now
            self.endpoint.reply(event, 200, now=mono)
        elif method == "OPTIONS":
            self.endpoint.reply(event, 200, headers=[("Allow", ALLOW)], now=mono)
        elif method == "BYE":
            self.endpoint.reply(event, 481, now=mono)
        else:
            self.endpoint.reply(event, 405, headers=[("Allow", ALLOW)], now=mono)

    def _on_register(self, event: RequestReceived, now: float, mono: float) -> None:
        d: Decision = self.registrar.decide(event.request, now)
        self.count(f"register:{d.outcome}")
        if d.status == 200 and d.expires:
            existing = self.bindings.get(d.device_id)
            self.bindings[d.device_id] = Binding(
                d.device_id,
                event.peer,
                d.contact,
                now + d.expires,
                existing.registered_at if existing else now,
                d.gb_version,
            )
        elif d.status == 200:
            self.bindings.pop(d.device_id, None)
        if d.status != 401 or d.outcome != "challenged":
            log.info("REGISTER %s from %s: %d %s %s", d.device_id, event.peer, d.status, d.outcome, d.detail)
        self.endpoint.reply(event, d.status, headers=list(d.headers), now=mono)


async def serve(cfg: Config, *, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> int:
    """Run the platform until SIGTERM/SIGINT (or ``stop``). Returns a process exit code."""
    sec = load_secrets(cfg)
    platform = Platform(cfg, sec)
    runner = SipRunner(platform.endpoint, platform.handle)
    try:
        for addr in cfg.sip.listen:
            if addr.transport == "udp":
                bound = await runner.listen_udp(addr.host, addr.port)
            else:
                bound = await runner.listen_tcp(addr.host, addr.port)
            log.info("listening on %s://%s:%d", addr.transport, bound[0], bound[1])
    except OSError as exc:
        await runner.close()
        log.error("cannot listen: %s", exc)
        return 2
    if sec.generated:
        log.warning("generated device password and admin token, stored in %s (mode 0600)", sec.path)
    log.info("platform %s domain %s realm %s; device password in %s", cfg.sip.id, cfg.domain, cfg.realm, sec.path)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    if ready is not None:
        ready.set()
    await stop.wait()
    log.info("stopping: %d devices registered", len(platform.bindings))
    await runner.close()
    return 0
