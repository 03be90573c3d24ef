"""Registration to a superior platform (we are its lower platform): a sans-IO client state machine.

GB/T 28181-2022 §9.1 (register, refresh before expiry, unregister with Expires 0, retry after a failure "after an
adjustable interval, normally >= 60 s, with a random delay"), §9.6 (keepalive MESSAGEs; three unanswered ones and
the peer is offline), spec digest §11 (WVP's practice). Digest answers per RFC 3261 §22.2 via sip.auth.DigestClient.

The machine never reads the clock and does no IO: every input takes ``now`` (monotonic seconds) and returns
actions (``Send`` a request whose outcome the driver reports back with its key, ``StateChanged``); the driver
arms one timer for ``next_deadline()`` and calls ``timer(now)``. Transitions are the table ``TRANSITIONS``;
an input with no entry there is ignored on purpose (a late answer to a request we gave up on).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from gb28181.config import UpstreamConfig
from gb28181.manscdp.codec import encode as encode_message
from gb28181.manscdp.messages import KeepaliveNotify
from sip.auth import DigestClient
from sip.errors import RemoteProtocolError
from sip.headers import Headers
from sip.message import Request, Response, new_call_id, new_tag

# States. "backoff" is reported to operators as "failed" (with the next attempt's time).
IDLE, REGISTERING, REGISTERED, BACKOFF, UNREGISTERING, STOPPED = (
    "idle", "registering", "registered", "backoff", "unregistering", "stopped"
)  # fmt: skip
REPORTED = {IDLE: "idle", REGISTERING: "registering", REGISTERED: "registered", BACKOFF: "failed",
            UNREGISTERING: "unregistering", STOPPED: "stopped"}  # fmt: skip

# (state, input) -> handler. Inputs: start, stop, register-ok, register-challenge, register-retry (423),
# register-refused, register-failed, keepalive-ok, keepalive-refused (401/403/404: the superior forgot us,
# e.g. it restarted), keepalive-failed, refresh-due, keepalive-due, retry-due.
TRANSITIONS: dict[tuple[str, str], str] = {
    (IDLE, "start"): "_register",
    (IDLE, "stop"): "_stopped",
    (REGISTERING, "register-ok"): "_registered",
    (REGISTERING, "register-challenge"): "_answer_challenge",
    (REGISTERING, "register-retry"): "_register_again",
    (REGISTERING, "register-refused"): "_failed",
    (REGISTERING, "register-failed"): "_failed",
    (REGISTERING, "keepalive-due"): "_keepalive",  # a refresh in progress: still registered meanwhile
    (REGISTERING, "keepalive-ok"): "_keepalive_ok",
    (REGISTERING, "keepalive-failed"): "_keepalive_failed",
    (REGISTERING, "stop"): "_unregister",
    (REGISTERED, "refresh-due"): "_register",
    (REGISTERED, "keepalive-due"): "_keepalive",
    (REGISTERED, "keepalive-ok"): "_keepalive_ok",
    (REGISTERED, "keepalive-failed"): "_keepalive_failed",
    (REGISTERED, "keepalive-refused"): "_lost",
    (REGISTERED, "stop"): "_unregister",
    (BACKOFF, "retry-due"): "_register",
    (BACKOFF, "stop"): "_stopped",
    (UNREGISTERING, "register-challenge"): "_answer_challenge",
    (UNREGISTERING, "register-ok"): "_stopped",
    (UNREGISTERING, "register-retry"): "_stopped",
    (UNREGISTERING, "register-refused"): "_stopped",
    (UNREGISTERING, "register-failed"): "_stopped",
}


@dataclass(frozen=True)
class Send:
    """Send ``request`` to the superior; report its final response (``response``) or failure (``failure``)
    with ``key``."""

    key: int
    kind: str  # "register" | "keepalive"
    request: Request


@dataclass(frozen=True)
class StateChanged:
    state: str  # as reported (REPORTED)
    reason: str
    online: bool | None = None  # True: it just came online; False: it just went offline; None: no change


Action = Send | StateChanged


class UpstreamRegistration:
    def __init__(
        self,
        cfg: UpstreamConfig,
        our_id: str,
        our_domain: str,
        contact: str,
        *,
        rng: Callable[[], float],
        call_id: str | None = None,
        cnonce_factory: Callable[[], str] | None = None,
    ) -> None:
        """``contact`` is our ``sip:ID@host:port`` as the superior reaches us; ``rng`` returns [0, 1) for jitter."""
        self.cfg = cfg
        self.our_id = our_id
        self.our_domain = our_domain
        self.contact = contact
        self.rng = rng
        self.state = IDLE
        self.online = False
        self.last_error = ""
        self.changed_at = 0.0
        self.failures = 0  # consecutive failed registrations (backoff exponent)
        self.missed = 0  # consecutive unanswered keepalives
        self.granted = 0  # expiry the superior granted
        self.registered_at: float | None = None
        self.refresh_at: float | None = None
        self.keepalive_at: float | None = None
        self.retry_at: float | None = None
        self.keepalives_sent = 0
        self.keepalives_answered = 0
        self._digest = DigestClient(cfg.username or our_id, cfg.password, cnonce_factory=cnonce_factory)
        self._call_id = call_id or new_call_id()
        self._from_tag = new_tag()
        self._cseq = 0
        self._keys = itertools.count(1)
        self._register_key: int | None = None
        self._register_expires = cfg.register_expires
        self._challenges = 0  # challenges answered in this attempt
        self._keepalive_keys: set[int] = set()
        self._sn = itertools.count(1)

    # ------------------------------------------------------------------ inputs
    def start(self, now: float) -> list[Action]:
        return self._input("start", now)

    def stop(self, now: float) -> list[Action]:
        """Graceful shutdown: unregister (Expires 0) when registered; the driver waits for its outcome."""
        return self._input("stop", now)

    def response(self, key: int, response: Response, now: float) -> list[Action]:
        """The final response to the request sent with ``key``."""
        if key == self._register_key:
            self._register_key = None
            status = response.status
            if 200 <= status < 300:
                return self._input("register-ok", now, response)
            if status in (401, 407):
                return self._input("register-challenge", now, response)
            if status == 423:
                return self._input("register-retry", now, response)
            reason = f"REGISTER answered {status} {response.reason}".strip()
            return self._input("register-refused", now, reason)
        if key in self._keepalive_keys:
            self._keepalive_keys.discard(key)
            if 200 <= response.status < 300:
                return self._input("keepalive-ok", now)
            if response.status in (401, 403, 404):
                return self._input("keepalive-refused", now, f"keepalive answered {response.status}")
            return self._input("keepalive-failed", now, f"keepalive answered {response.status}")
        return []  # a request we no longer wait for

    def failure(self, key: int, reason: str, now: float) -> list[Action]:
        """The request sent with ``key`` got no final response (timeout, transport error)."""
        if key == self._register_key:
            self._register_key = None
            return self._input("register-failed", now, f"REGISTER: {reason}")
        if key in self._keepalive_keys:
            self._keepalive_keys.discard(key)
            return self._input("keepalive-failed", now, f"keepalive: {reason}")
        return []

    def timer(self, now: float) -> list[Action]:
        out: list[Action] = []
        if self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
            out += self._input("retry-due", now)
        if self.refresh_at is not None and now >= self.refresh_at:
            self.refresh_at = None
            out += self._input("refresh-due", now)
        if self.keepalive_at is not None and now >= self.keepalive_at:
            self.keepalive_at = None
            out += self._input("keepalive-due", now)
        return out

    def next_deadline(self) -> float | None:
        times = [t for t in (self.retry_at, self.refresh_at, self.keepalive_at) if t is not None]
        return min(times) if times else None

    @property
    def reported_state(self) -> str:
        return REPORTED[self.state]

    # ------------------------------------------------------------------ the table's handlers
    def _input(self, name: str, now: float, arg: object = None) -> list[Action]:
        handler = TRANSITIONS.get((self.state, name))
        if handler is None:
            return []  # explicit ignore: e.g. a keepalive answer arriving after we went to backoff
        return getattr(self, handler)(now, arg)

    def _set(self, state: str, now: float, reason: str, online: bool | None = None) -> StateChanged:
        self.state = state
        self.changed_at = now
        return StateChanged(REPORTED[state], reason, online)

    def _register(self, now: float, _: object = None) -> list[Action]:
        self._challenges = 0
        self._register_expires = self.cfg.register_expires
        send = self._send_register(self._register_expires, None)
        if self.state == REGISTERED:  # a refresh: stays online meanwhile
            self.state = REGISTERING
            return [send]
        return [self._set(REGISTERING, now, "registering"), send]

    def _register_again(self, now: float, response: object) -> list[Action]:
        """423 Interval Too Brief: retry at once with the superior's Min-Expires (RFC 3261 §10.2.8), once."""
        assert isinstance(response, Response)
        value = (response.headers.get("min-expires") or "").strip()
        if not value.isdigit() or int(value) <= self._register_expires or self._challenges > 2:
            return self._failed(now, f"REGISTER answered 423 with an unusable Min-Expires {value!r}")
        self._register_expires = int(value)
        self._challenges += 1
        return [self._send_register(self._register_expires, None)]

    def _answer_challenge(self, now: float, response: object) -> list[Action]:
        assert isinstance(response, Response)
        header = "www-authenticate" if response.status == 401 else "proxy-authenticate"
        challenge = response.headers.get(header)
        stale = challenge is not None and "stale=true" in challenge.lower().replace(" ", "").replace('"', "")
        if challenge is None or (self._challenges >= 1 and not stale) or self._challenges >= 3:
            why = "no challenge in the 401" if challenge is None else "credentials refused (wrong username/password?)"
            return self._refused_or_stopped(now, f"REGISTER answered {response.status}: {why}")
        self._challenges += 1
        expires = 0 if self.state == UNREGISTERING else self._register_expires
        try:
            value = self._digest.authorization(challenge, "REGISTER", self._uri)
        except RemoteProtocolError as exc:
            return self._refused_or_stopped(now, f"cannot answer the superior's challenge: {exc.reason}")
        auth = ("Authorization" if response.status == 401 else "Proxy-Authorization", value)
        return [self._send_register(expires, auth)]

    def _refused_or_stopped(self, now: float, reason: str) -> list[Action]:
        if self.state == UNREGISTERING:
            return self._stopped(now, reason)
        return self._failed(now, reason)

    def _registered(self, now: float, response: object) -> list[Action]:
        assert isinstance(response, Response)
        try:
            granted = response.expires
        except RemoteProtocolError:
            granted = None
        if granted is None or granted <= 0:
            granted = self._register_expires
        self.granted = granted
        self.failures = 0
        self.last_error = ""
        # Refresh before expiry (§9.1.1): halfway for short expiries, a minute ahead for long ones.
        self.refresh_at = now + max(granted / 2, granted - 60)
        came_online = not self.online
        self.online = True
        self.registered_at = now if came_online else self.registered_at
        out: list[Action] = []
        if came_online:
            self.missed = 0
            out.append(self._set(REGISTERED, now, f"registered, expires {granted}", online=True))
            out += self._keepalive(now)  # the first keepalive right away: the superior sees us alive at once
        else:
            self.state = REGISTERED
        return out

    def _failed(self, now: float, reason: object) -> list[Action]:
        """Back off: the floor doubles per consecutive failure up to retry_max, plus up to retry_jitter more
        (2022 §9.1.1: a random delay, so that many lower platforms do not return at once)."""
        self.failures += 1
        base = min(self.cfg.retry_max, self.cfg.retry_interval * 2 ** min(self.failures - 1, 30))
        delay = base * (1 + self.cfg.retry_jitter * self.rng())
        self.retry_at = now + delay
        self.refresh_at = self.keepalive_at = None
        self._keepalive_keys.clear()
        self.last_error = str(reason)
        went_offline = self.online
        self.online = False
        return [self._set(BACKOFF, now, f"{reason}; next attempt in {delay:.1f} s", online=False if went_offline
                          else None)]  # fmt: skip

    def _lost(self, now: float, reason: object) -> list[Action]:
        """The superior no longer knows us (keepalives refused or unanswered: it restarted or dropped us):
        offline now, and register again at once (spec digest §11, WVP)."""
        self.last_error = str(reason)
        self.online = False
        self.refresh_at = self.keepalive_at = None
        self._keepalive_keys.clear()
        changed = self._set(REGISTERING, now, f"registration lost ({reason}); registering again", online=False)
        self._challenges = 0
        self._register_expires = self.cfg.register_expires
        return [changed, self._send_register(self._register_expires, None)]

    def _keepalive(self, now: float, _: object = None) -> list[Action]:
        self.keepalive_at = now + self.cfg.keepalive_interval
        key = next(self._keys)
        self._keepalive_keys.add(key)
        self.keepalives_sent += 1
        body = encode_message(
            KeepaliveNotify(sn=next(self._sn), device_id=self.our_id, status="OK"), charset=self.cfg.charset
        )
        request = Request(
            "MESSAGE",
            f"sip:{self.cfg.id}@{self.cfg.sip_domain}",
            Headers([
                ("From", f"<sip:{self.our_id}@{self.our_domain}>;tag={new_tag()}"),
                ("To", f"<sip:{self.cfg.id}@{self.cfg.sip_domain}>"),
                ("Call-ID", new_call_id()),
                ("CSeq", "1 MESSAGE"),
                ("Content-Type", "Application/MANSCDP+xml"),
            ]),
            body,
        )  # fmt: skip
        return [Send(key, "keepalive", request)]

    def _keepalive_ok(self, now: float, _: object = None) -> list[Action]:
        self.missed = 0
        self.keepalives_answered += 1
        return []

    def _keepalive_failed(self, now: float, reason: object) -> list[Action]:
        self.missed += 1
        self.last_error = str(reason)
        if self.missed >= self.cfg.keepalive_max_missed and self.state == REGISTERED:
            return self._lost(now, f"{self.missed} keepalives unanswered, last: {reason}")
        return []

    def _unregister(self, now: float, _: object = None) -> list[Action]:
        if not self.online:
            return self._stopped(now, "stopped before registering")
        self.refresh_at = self.keepalive_at = self.retry_at = None
        self._keepalive_keys.clear()
        self._challenges = 0
        changed = self._set(UNREGISTERING, now, "unregistering (Expires 0)")
        return [changed, self._send_register(0, None)]

    def _stopped(self, now: float, reason: object = None) -> list[Action]:
        went_offline = self.online
        self.online = False
        self.refresh_at = self.keepalive_at = self.retry_at = None
        self._register_key = None
        self._keepalive_keys.clear()
        why = "stopped" if reason is None or isinstance(reason, Response) else f"stopped ({reason})"
        return [self._set(STOPPED, now, why, online=False if went_offline else None)]

    # ------------------------------------------------------------------ requests
    @property
    def _uri(self) -> str:
        host = f"[{self.cfg.host}]" if ":" in self.cfg.host else self.cfg.host
        return f"sip:{self.cfg.id}@{host}:{self.cfg.port}"

    def _send_register(self, expires: int, auth: tuple[str, str] | None) -> Send:
        """REGISTER per spec digest §11: R-URI the superior's ID at its address, From/To our ID at our domain,
        one Call-ID and From tag for the whole boot cycle (RFC 3261 §10.2.4), CSeq increasing."""
        self._cseq += 1
        key = next(self._keys)
        self._register_key = key
        items = [
            ("From", f"<sip:{self.our_id}@{self.our_domain}>;tag={self._from_tag}"),
            ("To", f"<sip:{self.our_id}@{self.our_domain}>"),
            ("Call-ID", self._call_id),
            ("CSeq", f"{self._cseq} REGISTER"),
            ("Contact", f"<{self.contact}>"),
            ("Expires", str(expires)),
        ]
        if auth is not None:
            items.append(auth)
        return Send(key, "register", Request("REGISTER", self._uri, Headers(items), b""))

    def status(self) -> dict[str, object]:
        """What operators see (times monotonic; the driver turns them into wall times)."""
        return {
            "id": self.cfg.id,
            "host": self.cfg.host,
            "port": self.cfg.port,
            "transport": self.cfg.transport.upper(),
            "state": self.reported_state,
            "online": self.online,
            "last_error": self.last_error or None,
            "since": self.changed_at,
            "next_attempt": self.retry_at if self.state == BACKOFF else None,
            "expires": self.granted if self.online else None,
            "failures": self.failures,
            "missed_keepalives": self.missed,
            "keepalives_sent": self.keepalives_sent,
            "keepalives_answered": self.keepalives_answered,
        }
