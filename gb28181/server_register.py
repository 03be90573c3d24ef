"""The composition root's REGISTER part: the stateless answers (the digest challenge, keepalives) and the lean lane
(sip/lite.py) that take nearly all of the load, the full REGISTER path, the guard (rate limit, lockout) around both, and
the group-commit reply (the 200 goes out once the registration is durable). ``Platform`` (gb28181/server.py) inherits
it; IO lives here and in server.py only, the decisions in gb28181/registrar.py and gb28181/guard.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gb28181.guard import retry_after
from gb28181.peers import peer_address
from gb28181.registrar import Decision
from gb28181.storage import storage_refusal
from registry.models import Registration
from registry.store import STORAGE_KINDS, StoreError
from sip.address import Address, parse_address
from sip.endpoint import (
    Peer,
    RequestReceived,
    StatelessAnswer,
)
from sip.errors import LocalProtocolError, RemoteProtocolError
from sip.events import DEFER
from sip.headers import split_commas
from sip.lite import Lite
from sip.message import Request, expires_value

log = logging.getLogger("gb28181")


class RegisterLanes:
    """Mixed into ``Platform``; uses its registrar, guard, device service, endpoint and tracer, and its ``count``,
    ``flush``, ``trace_note``, ``_spawn``, ``_superior``, ``_screen_message`` and ``_subscriptions_follow``."""

    # ------------------------------------------------------------------ stateless answers
    def stateless(self, req: Request, peer: Peer) -> StatelessAnswer | None:
        """What the endpoint may answer without a transaction (RFC 3261 §8.2.7), because answering twice does no
        harm: the digest challenge to a REGISTER without credentials, and keepalives (a second one only
        refreshes the same timestamp). Everything else is declined (None) and goes through a transaction."""
        try:
            if req.method == "REGISTER":
                if "authorization" in req.headers:
                    return None
                limited = self._register_limited(req.from_.user or "", peer, req=req)
                if limited is not None:
                    return limited
                d = self.registrar.decide(req, self.wall())
                if d.status == 200:  # not reachable without credentials; keep the durable path if it ever is
                    return None
                self._note_register(d, peer)
                if self.tracer.watchers:  # a trace runs: say why (free otherwise)
                    self.tracer.note(req, _register_note(d))
                return StatelessAnswer(d.status, list(d.headers))
            if req.method == "MESSAGE" and b"Keepalive" in req.body:
                if self._superior(req.from_.user or "", peer) is not None:
                    return None  # a superior's MESSAGE: served in _on_message
                user = req.from_.user or ""
                return self._screen_message(user, req.content_type, req.body, peer, req)[0]  # None: not one
            return None
        except RemoteProtocolError:
            raise  # a malformed header: the endpoint answers 400
        except Exception:  # the error boundary, as in handle()
            self.count("internal-error")
            log.exception("internal error handling %s from %s; answered 500", req.method, peer)
            return StatelessAnswer(500)

    def fast(self, lite: Lite, peer: Peer, local: tuple[str, int] | None) -> StatelessAnswer | None:
        """The lean lane (sip/lite.py), for the plain REGISTERs and keepalives that are nearly all of the load:
        the same decisions as ``stateless`` and ``_on_register`` on the request's parts, without a ``Request``.
        A REGISTER with credentials is answered once (kept for retransmissions, so a nonce count is never seen
        twice); its 200 waits for the group commit (DEFER, then ``fast_reply``). None: the full path takes it."""
        try:
            user = lite.from_user
            if lite.method == "MESSAGE":
                if b"Keepalive" not in lite.body or self._superior(user, peer) is not None:
                    return None  # other MANSCDP, or a superior's MESSAGE (served in _on_message)
                return self._screen_message(user, lite.content_type, lite.body, peer)[0]  # None: not a keepalive
            authorization = lite.header(b"authorization")
            authorized = authorization is not None
            refused = self._register_guarded(user, authorized, peer)
            if refused is not None:
                return refused
            contact = lite.header(b"contact")
            parsed: list[Address] = []

            def contacts() -> list[Address]:
                if contact and not parsed:
                    parsed.extend(parse_address(v) for v in split_commas(contact))
                return parsed

            d = self.registrar.decide_parts(
                user, lite.header(b"x-gb-ver"), authorization, contact, contacts,
                lambda: expires_value(lite.header(b"expires")), self.wall(),
            )  # fmt: skip
            if not self._register_decided(d, peer):
                return StatelessAnswer(d.status, list(d.headers), keep=authorized)
            endpoint = self.endpoint

            def reply(status: int, headers: list[tuple[str, str]]) -> None:
                endpoint.fast_reply(lite, peer, status, headers=headers)
                self.flush()

            where = f"{local[0]}:{local[1]}" if local else ""
            self._start_commit(d, peer, where, lite.header(b"user-agent") or "", reply)
            return DEFER
        except RemoteProtocolError:
            return None  # a malformed header: the full path answers 400 with the reason
        except Exception:  # the error boundary, as in handle()
            self.count("internal-error")
            log.exception("internal error handling %s from %s; answered 500", lite.method, peer)
            return StatelessAnswer(500)

    def _note_register(self, d: Decision, peer: Peer) -> None:
        self.count(f"register:{d.outcome}")
        if d.status != 200 and d.outcome != "challenged":
            log.info("REGISTER %s from %s: %d %s (%s)", d.device_id, peer, d.status, d.outcome, d.detail)

    def _register_limited(
        self, user: str, peer: Peer, keep: bool = False, req: Request | None = None
    ) -> StatelessAnswer | None:
        """The per-(source, ID) REGISTER rate limit (gb28181.guard): 503 + Retry-After when exceeded."""
        wait = self.guard.register_wait(peer.host, user, self.mono())
        if not wait:
            return None
        self.count("ratelimit:register")
        self.trace_note(req, f"rate limited: retry in {retry_after(wait)} s")
        if self.guard.register_buckets.first_refusal:
            log.warning("REGISTER %s from %s: rate limit exceeded; answering 503 for %.1f s", user, peer, wait)
        return StatelessAnswer(503, [("Retry-After", retry_after(wait))], keep=keep)

    def _register_guarded(
        self, user: str, authorized: bool, peer: Peer, req: Request | None = None
    ) -> StatelessAnswer | None:
        """Rate limit, then lockout: a locked (source, ID) gets the 403 a wrong password gets (no oracle)."""
        limited = self._register_limited(user, peer, keep=authorized, req=req)
        if limited is not None or not authorized:
            return limited
        left = self.guard.locked(peer.host, user, self.mono())
        if not left:
            return None
        self.count("register:locked-out")
        self.trace_note(req, f"locked out: {left:.0f} s left (answered as a wrong password)")
        log.info("REGISTER %s from %s: 403, locked out for %.0f s more", user, peer, left)
        return StatelessAnswer(403, keep=True)

    def _register_decided(self, d: Decision, peer: Peer, req: Request | None = None) -> bool:
        """What both lanes do with a REGISTER decision: count and log it, say why to a running trace, feed the
        guard (failed digests toward a lockout). True when it is a 200 to commit."""
        self._note_register(d, peer)
        if d.status != 200 and req is not None and self.tracer.watchers:
            self.tracer.note(req, _register_note(d))
        self._guard_outcome(d, peer)
        return d.status == 200

    def _guard_outcome(self, d: Decision, peer: Peer) -> None:
        if d.outcome in ("wrong-password", "unknown-user"):
            lockout = self.guard.failed(peer.host, d.device_id, self.mono())
            if lockout is not None:
                self.count("guard:lockout")
                log.warning("REGISTER %s from %s: %d failed digests; locked out for %.0f s (lockout #%d)",
                            d.device_id, peer.host, lockout.failures, lockout.seconds, lockout.count)  # fmt: skip
        elif d.status == 200:
            self.guard.succeeded(peer.host, d.device_id)

    def _on_register(self, event: RequestReceived) -> None:
        req = event.request
        refused = self._register_guarded(req.from_.user or "", "authorization" in req.headers, event.peer, req)
        if refused is not None:
            self.endpoint.reply(event, refused.status, headers=refused.headers, now=self.mono())
            return
        d: Decision = self.registrar.decide(event.request, self.wall())
        if not self._register_decided(d, event.peer, req):
            self.endpoint.reply(event, d.status, headers=list(d.headers), now=self.mono())
            return
        local = f"{event.local[0]}:{event.local[1]}" if event.local else ""

        def reply(status: int, headers: list[tuple[str, str]]) -> None:
            self._reply_late(event, status, headers)

        self._start_commit(d, event.peer, local, req.headers.get("user-agent") or "", reply, req)

    def _start_commit(
        self, d: Decision, peer: Peer, local: str, agent: str, reply: Callable[..., None], req: Request | None = None
    ) -> None:
        """The 200 goes out only once the registration is durable (group commit, ``_committed``); ``reply`` sends
        an answer. No task per registration: the committer calls back."""
        reg = Registration(
            d.device_id,
            self.wall(),
            d.expires or 0,
            peer.transport,
            peer_address(peer),
            local,
            d.contact,
            agent,
            d.gb_version or "",
        )
        fresh = bool(d.expires) and not self.devices.is_registered(d.device_id)

        def done(error: BaseException | None) -> None:
            self._committed(d, peer, reply, req, fresh, error)

        try:
            self.devices.register_nowait(reg, str(peer), done)
        except StoreError as exc:  # overloaded or closed: answered now
            done(exc)

    def _committed(
        self,
        d: Decision,
        peer: Peer,
        reply: Callable[[int, list[tuple[str, str]]], None],
        req: Request | None,
        fresh: bool,
        error: BaseException | None,
    ) -> None:
        if isinstance(error, StoreError):
            self.count("register:store-error")
            if error.kind in STORAGE_KINDS:  # disk full, database locked: the store's WriteHealth logged it once
                status, headers = storage_refusal(error.kind)
                log.debug("REGISTER %s from %s: not stored (%s); answered %d", d.device_id, peer, error, status)
            else:
                status, headers = 500, [("Retry-After", "60")]
                log.error("REGISTER %s from %s: not stored (%s); answered 500", d.device_id, peer, error)
            self.trace_note(req, f"not stored: storage {error.kind}")
            reply(status, headers)
            return
        if error is not None:  # the error boundary of this registration: answer, log, keep serving
            self.count("internal-error")
            log.error("REGISTER %s from %s: internal error; answered 500", d.device_id, peer, exc_info=error)
            reply(500, [])
            return
        log.info("REGISTER %s from %s: 200 %s expires=%s", d.device_id, peer, d.outcome, d.expires)
        if self.tracer.watchers:
            self.trace_note(req, f"{d.outcome}, expires {d.expires}" if d.expires else d.outcome)
        reply(200, list(d.headers))
        self._subscriptions_follow(d.device_id, fresh, bool(d.expires))
        if not d.expires:
            self.catalog_schedule.forget(d.device_id)
        elif fresh:
            self.catalog_schedule.registered(d.device_id, self.mono())
        if fresh and self.cfg.catalog.sync_on_register:
            self._spawn(self._sync_after_register(d.device_id))

    def _reply_late(self, event: RequestReceived, status: int, headers: list[tuple[str, str]]) -> None:
        try:
            self.endpoint.reply(event, status, headers=headers, now=self.mono())
        except LocalProtocolError as exc:
            log.warning("REGISTER from %s: could not answer %d: %s", event.peer, status, exc)
        self.flush()


def _register_note(d: Decision) -> str:
    """A REGISTER refusal as a trace shows it: ``challenge``, ``wrong password``, ``too brief: ...``."""
    if d.outcome == "challenged":
        return "challenge"
    what = d.outcome.replace("-", " ")
    return f"{what}: {d.detail}" if d.detail and d.detail.replace(" ", "-") != d.outcome else what
