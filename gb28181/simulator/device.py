"""One simulated GB/T 28181 device, sans-IO: requests in, answers and requests out, time passed in.

The driver (runtime.py) feeds it the platform's requests (``on_request``), the outcome of what it sent
(``on_answer``), timer expiries (``on_timer`` at ``next_deadline()``) and injected events (power, NAT move, alarm,
video loss), and sends what ``drain()`` returns: ``Send`` (a request to the platform), ``Notify`` (a NOTIFY in a
subscription dialog) and ``Rebind`` (take a new source port). Nothing here does IO or reads a clock.

Implements: registration with digest, refresh, 423 and stale nonces (§9.1.2, RFC 3261 §10.2, §22), keepalives
(§9.6, A.2.5.2) with re-registration when refused or lost, MANSCDP answers (answers.py) sent one at a time
(App.M serial sending), catalog/alarm/position subscriptions (§9.11, App.N; RFC 6665), and media: INVITE
Play/Playback/Download answered with an SDP (§9.2, App. G), one ``media.MediaSession`` per INVITE dialog started
by the ACK, controlled by INFO/MANSRTSP (App. B), ended by BYE, and MediaStatus 121 at the end of a file (A.2.5.4).
The driver owns the media sockets: it asks ``plan_invite`` what the INVITE needs, binds, and calls
``accept_invite`` with the port; ``MediaStart``/``MediaStop`` tell it when to stream and when to close.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from gb28181 import sdp
from gb28181.manscdp import ManscdpError, parse_envelope
from gb28181.manscdp.codec import encode
from gb28181.manscdp.messages import MediaStatusNotify, Unknown
from gb28181.media.h264 import AccessUnit
from gb28181.simulator import answers, media, talk
from gb28181.simulator.inventory import Inventory
from gb28181.simulator.registration import Action, Input, State, Timing, step
from sip.auth import DigestClient, parse_credentials
from sip.errors import RemoteProtocolError
from sip.headers import Headers
from sip.message import Request, Response, new_call_id, new_tag

log = logging.getLogger("gb28181.simulator")

MANSCDP = "Application/MANSCDP+xml"
SUBSCRIPTION_KINDS = ("catalog", "alarm", "mobileposition")
DEFAULT_SUBSCRIBE_EXPIRES = 600  # 2022 App.N
BOOT_DELAY = 2.0  # s between power coming back and the first REGISTER
DialogId = tuple[str, str, str]


@dataclass(frozen=True)
class ServerInfo:
    id: str
    domain: str
    host: str
    port: int


@dataclass(frozen=True)
class Send:
    purpose: str  # register | keepalive | message
    request: Request


@dataclass(frozen=True)
class Notify:
    dialog_id: DialogId
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class Rebind:
    """Take a new source port (NAT rebinding, a 4G device); the device's Contact stays as it was."""


@dataclass(frozen=True)
class DialogRequest:
    """A request in an existing dialog other than a subscription NOTIFY (MediaStatus in the INVITE dialog)."""

    dialog_id: DialogId
    method: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class MediaStart:
    """The ACK came: open the media connection and stream ``device.media[dialog_id]``."""

    dialog_id: DialogId


@dataclass(frozen=True)
class MediaStop:
    """Close the media socket of the session (BYE, TEARDOWN, end of file)."""

    dialog_id: DialogId


@dataclass(frozen=True)
class TalkStart:
    """A Broadcast was accepted (§9.12): bind an audio receive socket, then send ``talk_invite``'s INVITE."""

    source_id: str


@dataclass(frozen=True)
class TalkStop:
    """The talk INVITE failed or its dialog ended: close the audio socket."""

    call_id: str


@dataclass
class Talk:
    source_id: str
    dialog_id: DialogId | None = None  # once the platform answered 2xx


@dataclass(frozen=True)
class InvitePlan:
    """What an acceptable INVITE needs from the driver: a media socket of ``transport`` (the device's side)."""

    offer: sdp.SessionDescription
    kind: str
    transport: str  # udp | tcp-active (the device connects) | tcp-passive (the device listens)
    remote: tuple[str, int]
    channel_id: str
    replaces: tuple[DialogId, ...] = ()  # earlier sends this INVITE replaces (App. K)


Out = Send | Notify | Rebind | DialogRequest | MediaStart | MediaStop | TalkStart | TalkStop


@dataclass(frozen=True)
class Reply:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    to_tag: str | None = None
    reason: str | None = None


@dataclass
class Subscription:
    kind: str  # catalog | alarm | mobileposition
    event: str  # the Event header as the subscriber sent it
    expires_at: float
    sn: int
    interval: float = 0.0  # MobilePosition report interval
    next_at: float | None = None
    tick: int = 0


@dataclass
class Options:
    """Settings from the command line that override the profile (tests and benchmarks run timers short)."""

    keepalive_interval: float | None = None
    register_expires: int | None = None
    timing: Timing = field(default_factory=Timing)
    max_streams: int = 0  # streams a channel sends at once; beyond, 486 Busy Here (0: no limit)


class SimDevice:
    def __init__(
        self, inv: Inventory, server: ServerInfo, password: str, transport: str, options: Options | None = None
    ) -> None:
        self.inv = inv
        self.profile = inv.profile
        self.server = server
        self.password = password
        self.transport = transport
        self.options = options or Options()
        self.local: tuple[str, int] = ("127.0.0.1", 5060)  # our Contact; set by the driver once bound
        self.state = State.OFF
        self.stats: Counter[str] = Counter()
        self.registered_once = False  # in this boot: queries are refused 403 before (Dahua does so)
        self.granted = 0
        self.last_keepalive_ok: float | None = None
        self.subscriptions: dict[DialogId, Subscription] = {}
        self._out: list[Out] = []
        self._call_id = ""
        self._tag = ""
        self._cseq = secrets.randbelow(1000) + 1
        # What --keepalive/--expires override is what the device reports in BasicParam too (A.2.1.19): a real
        # device's settings are one thing, not one for its behaviour and another for ConfigDownload.
        if self.options.keepalive_interval:
            self.inv.settings.setdefault("keepalive_interval", max(1, round(self.options.keepalive_interval)))
        if self.options.register_expires:
            self.inv.settings.setdefault("register_expires", self.options.register_expires)
        self._expires = self._asked_expires()
        self._digest = DigestClient(self._digest_username(), password)
        self._challenge: str | None = None
        self._fresh_challenge = False  # the last REGISTER answered a 401 that had just come
        self._failures = 0
        self._retry_at: float | None = None
        self._refresh_at: float | None = None
        self._keepalive_at: float | None = None
        self._boot_at: float | None = None
        self._missed = 0
        self._outbox: deque[bytes] = deque()
        self._in_flight = False
        self._sn = secrets.randbelow(10_000) + 1
        self.media: dict[DialogId, media.MediaSession] = {}
        self.talks: dict[str, Talk] = {}  # by Call-ID: audio INVITEs we sent after a Broadcast
        self.heard = talk.Heard()  # the broadcast audio that reached the loudspeaker
        self.sends: dict[DialogId, talk.Send] = {}  # what App. K compares, per media dialog
        self.clip: list[AccessUnit] = []  # set by the driver (the fixture clip, split once for all devices)
        self.history_seconds = 8.0  # length of the "recording" a Playback/Download streams

    @property
    def device_id(self) -> str:
        return self.inv.device_id

    @property
    def online(self) -> bool:
        """Registered, and the platform answered the latest keepalive (or none was due yet)."""
        return self.state == State.REGISTERED and self._missed == 0

    # ------------------------------------------------------------------ driver side
    def drain_pending(self) -> bool:
        return bool(self._out)

    def drain(self) -> list[Out]:
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        times = [self._retry_at, self._refresh_at, self._keepalive_at, self._boot_at]
        times += [s.expires_at for s in self.subscriptions.values()]
        times += [s.next_at for s in self.subscriptions.values()]
        found = [t for t in times if t is not None]
        return min(found) if found else None

    def on_timer(self, now: float) -> None:
        if self._boot_at is not None and now >= self._boot_at:
            self._boot_at = None
            self._fire(Input.POWER_ON, now)
        if self._retry_at is not None and now >= self._retry_at:
            self._retry_at = None
            self._fire(Input.RETRY_DUE, now)
        if self._refresh_at is not None and now >= self._refresh_at:
            self._refresh_at = None
            self._fire(Input.REFRESH_DUE, now)
        if self._keepalive_at is not None and now >= self._keepalive_at:
            self._keepalive_at = now + self._keepalive_interval()
            self._send_keepalive()
        for dialog_id, sub in list(self.subscriptions.items()):
            if now >= sub.expires_at:
                self._end_subscription(dialog_id, sub, "timeout")
            elif sub.next_at is not None and now >= sub.next_at:
                sub.next_at = now + sub.interval
                sub.tick += 1
                self._notify(dialog_id, sub, answers.position(self.inv, sub.sn, self._wall(now), sub.tick), now)

    # The driver passes wall time with every request; between requests, positions use the last one seen.
    _wall_offset = 0.0

    def _wall(self, now: float) -> float:
        return now + self._wall_offset

    def set_wall(self, now: float, wall: float) -> None:
        self._wall_offset = wall - now

    # ------------------------------------------------------------------ injected events
    def power_on(self, now: float, delay: float = 0.0) -> None:
        if self.state != State.OFF:
            return
        if delay > 0:
            self._boot_at = now + delay
        else:
            self._fire(Input.POWER_ON, now)

    def power_off(self, now: float) -> None:
        self._boot_at = None
        for dialog_id in list(self.media):  # no power, no stream: the platform sees the media stop
            self._stop_media(dialog_id, now)
        self.media.clear()
        for call_id in list(self.talks):
            self._out.append(TalkStop(call_id))
        self.talks.clear()
        self._fire(Input.POWER_OFF, now)

    def reboot(self, now: float, delay: float = BOOT_DELAY) -> None:
        """Power cycle: silence, then a new registration (new Call-ID) after ``delay``."""
        self.power_off(now)
        self.inv.settings.clear()
        self.inv.alarming.clear()
        self.power_on(now, delay)

    def connection_lost(self, now: float) -> None:
        """Our TCP connection to the platform closed: a registered device registers again (on a new one)."""
        if self.state == State.REGISTERED:
            self._fire(Input.KEEPALIVE_LOST, now)

    def nat_move(self) -> None:
        self._out.append(Rebind())

    def alarm(self, channel_id: str | None, now: float, wall: float) -> bool:
        """A motion alarm on a channel (default the first camera): NOTIFY to alarm subscribers, else a MESSAGE
        (§9.4). False when the device is off or has no such channel."""
        ch = self.inv.channel(channel_id) if channel_id else (self.inv.videos[0] if self.inv.videos else None)
        if ch is None or self.state == State.OFF:
            return False
        self.inv.alarming.add(ch.id)
        subs = [(d, s) for d, s in self.subscriptions.items() if s.kind == "alarm"]
        body = answers.alarm(self.inv, self._next_sn(), ch.id, wall)
        if subs:
            for dialog_id, sub in subs:
                self._notify(dialog_id, sub, body, now)
        else:
            self._queue(body)
        self.stats["alarms"] += 1
        return True

    def video_lost(self, channel_id: str, lost: bool, now: float) -> bool:
        """A camera loses (or regains) video: catalog subscribers get Event VLOST (or ON) (App.N.4.3.2); the next
        Catalog answer reports it OFF and keepalives list it in Info/DeviceID."""
        ch = self.inv.channel(channel_id)
        if ch is None or not ch.is_video or self.state == State.OFF:
            return False
        ch.vlost = lost
        event = "VLOST" if lost else "ON"
        for dialog_id, sub in self.subscriptions.items():
            if sub.kind == "catalog":
                body = answers.catalog_notify(self.inv, self._next_sn(), self.server.id, [ch.id], event)
                self._notify(dialog_id, sub, body, now)
        return True

    # ------------------------------------------------------------------ outcomes of what we sent
    def on_answer(self, purpose: str, response: Response | None, now: float) -> None:
        """The final answer to a request we sent (None: timeout or transport failure)."""
        if self.state == State.OFF:
            self.stats["ignored-after-power-off"] += 1
            return
        if purpose == "register":
            self._register_answer(response, now)
        elif purpose == "keepalive":
            self._keepalive_answer(response, now)
        elif purpose == "message":
            self._in_flight = False
            if response is not None and response.status in (401, 403, 404):
                self._fire(Input.KEEPALIVE_REFUSED, now)
            self._send_next()
        elif purpose.startswith("talk:"):
            self._talk_answer(purpose[5:], response)
        elif purpose == "notify" and response is not None and response.status == 481:
            self.stats["notify-481"] += 1

    def _register_answer(self, response: Response | None, now: float) -> None:
        if response is None:
            self.stats["register-failed"] += 1
            self._fire(Input.FAILED, now)
            return
        status = response.status
        if 200 <= status < 300:
            self.granted = _granted(response, self._expires)
            self._fire(Input.OK, now)
        elif status in (401, 407):
            challenge = response.headers.get("www-authenticate" if status == 401 else "proxy-authenticate")
            stale = challenge is not None and "stale=true" in challenge.lower().replace(" ", "").replace('"', "")
            if challenge is None or (self._fresh_challenge and not stale):
                self.stats["register-refused"] += 1
                log.info("%s: %d to our credentials: wrong password?", self.device_id, status)
                self._challenge = None
                self._fire(Input.REJECTED, now)
                return
            self._challenge = challenge
            self._fire(Input.CHALLENGE, now)
        elif status == 423 and (minimum := _int(response.headers.get("min-expires"))) is not None:
            self._expires = max(self._expires, minimum)
            self._fire(Input.TOO_BRIEF, now)
        else:
            self.stats[f"register-{status}"] += 1
            log.info("%s: REGISTER answered %d %s", self.device_id, status, response.reason)
            self._fire(Input.REJECTED, now)

    def _keepalive_answer(self, response: Response | None, now: float) -> None:
        if self.state != State.REGISTERED:
            return
        if response is not None and 200 <= response.status < 300:
            self._missed = 0
            self.last_keepalive_ok = now
            self.stats["keepalive-ok"] += 1
        elif response is not None and response.status in (401, 403, 404):
            self.stats["keepalive-refused"] += 1
            self._fire(Input.KEEPALIVE_REFUSED, now)
        else:
            self._missed += 1
            self.stats["keepalive-lost"] += 1
            if self._missed >= self.inv.setting("keepalive_count"):
                self._fire(Input.KEEPALIVE_LOST, now)

    # ------------------------------------------------------------------ the state machine
    def _fire(self, event: Input, now: float) -> None:
        s = step(self.state, event)
        if s.action is None:
            self.stats[f"ignored:{self.state.value}:{event.value}"] += 1
            return
        self.state = s.state
        a = s.action
        if a is Action.SEND_NEW_REGISTRATION:
            self._call_id, self._tag = new_call_id(), new_tag()
            self._challenge = None
            self._expires = self._asked_expires()
            self._missed = 0
            self._send_register(now, fresh=False)
        elif a is Action.SEND_REGISTER:
            self._send_register(now, fresh=False)
        elif a is Action.SEND_AUTHORIZED:
            self._send_register(now, fresh=True)
        elif a is Action.REGISTERED:
            self._failures = 0
            first = not self.registered_once
            self.registered_once = True
            self._refresh_at = now + Timing.refresh_after(self.granted)
            if self._keepalive_at is None or first:
                self._keepalive_at = now + self._keepalive_interval()
            self.stats["registered"] += 1
        elif a is Action.WAIT:
            self._failures += 1
            self._keepalive_at = self._refresh_at = None
            self._retry_at = now + self.options.timing.retry_after(self._failures)
        elif a is Action.SILENCE:
            self._retry_at = self._refresh_at = self._keepalive_at = None
            self.subscriptions.clear()
            self._outbox.clear()
            self._in_flight = False
            self.registered_once = False
            self.granted = 0

    # ------------------------------------------------------------------ building requests
    def _send_register(self, now: float, *, fresh: bool) -> None:
        uri = self._register_uri()
        extra: list[tuple[str, str]] = []
        if self._challenge is not None:
            try:
                extra.append(("Authorization", self._authorization(self._challenge, uri)))
            except RemoteProtocolError as exc:
                log.info("%s: cannot answer the challenge: %s", self.device_id, exc.reason)
                self._challenge = None
        self._fresh_challenge = fresh and bool(extra)
        if self.profile.gb_version == "2022":
            extra.append(("X-GB-ver", "3.0"))
        host, port = self.local
        headers = [
            ("From", f"<sip:{self.device_id}@{self.server.domain}>;tag={self._tag}"),
            ("To", f"<sip:{self.device_id}@{self.server.domain}>"),
            ("Call-ID", self._call_id),
            ("CSeq", f"{self._next_cseq()} REGISTER"),
            ("Contact", f"<sip:{self.device_id}@{host}:{port}>"),
            ("Expires", str(self._expires)),
            *extra,
        ]
        self._out.append(Send("register", self._request("REGISTER", uri, headers)))
        self.stats["register-sent"] += 1

    def _authorization(self, challenge: str, uri: str) -> str:
        if self.profile.has("ignores-qop"):
            # §13 q28: answer as RFC 2069 (no qop, nc, cnonce) whatever the platform offered.
            scheme, params = parse_credentials(challenge)
            challenge = scheme + " " + ", ".join(f'{k}="{v}"' for k, v in params.items() if k.lower() != "qop")
        return self._digest.authorization(challenge, "REGISTER", uri)

    def _register_uri(self) -> str:
        if self.profile.header_order == "alphabetical":  # Dahua: server ID at the server's address
            return f"sip:{self.server.id}@{self.server.host}:{self.server.port}"
        return f"sip:{self.server.id}@{self.server.domain}"

    def _message(self, body: bytes) -> Request:
        headers = [
            ("From", f"<sip:{self.device_id}@{self.server.domain}>;tag={new_tag()}"),
            ("To", f"<sip:{self.server.id}@{self.server.domain}>"),
            ("Call-ID", new_call_id()),
            ("CSeq", f"{self._next_cseq()} MESSAGE"),
            ("Content-Type", MANSCDP),
        ]
        return self._request("MESSAGE", f"sip:{self.server.id}@{self.server.domain}", headers, body)

    def _request(self, method: str, uri: str, headers: list[tuple[str, str]], body: bytes = b"") -> Request:
        """The request with the profile's header order. The Via here has no branch: the endpoint fills in its
        own in the same place (sip.endpoint._prepare), so the order holds on the wire."""
        host, port = self.local
        items = [("Via", f"SIP/2.0/{self.transport} {host}:{port};rport"), *headers]
        items += [("Max-Forwards", "70"), ("User-Agent", self.profile.user_agent)]
        if self.profile.header_order == "alphabetical":  # Dahua's stack: sorted, Via last
            items = [*sorted(items[1:], key=lambda kv: kv[0].lower()), items[0]]
        items.append(("Content-Length", str(len(body))))
        return Request(method, uri, Headers(items), body)

    def _send_keepalive(self) -> None:
        if self.profile.has("nat-port-per-keepalive"):
            self._out.append(Rebind())
        self._out.append(Send("keepalive", self._message(answers.keepalive(self.inv, self._next_sn()))))
        self.stats["keepalive-sent"] += 1

    def _queue(self, body: bytes) -> None:
        self._outbox.append(body)
        self._send_next()

    def _send_next(self) -> None:
        """App.M serial sending: the next packet goes when the previous one has its answer."""
        if self._in_flight or not self._outbox or self.state == State.OFF:
            return
        self._in_flight = True
        self._out.append(Send("message", self._message(self._outbox.popleft())))
        self.stats["messages-sent"] += 1

    def _next_cseq(self) -> int:
        self._cseq += 1
        return self._cseq

    def _next_sn(self) -> int:
        self._sn += 1
        return self._sn

    def _asked_expires(self) -> int:
        return self.options.register_expires or self.inv.setting("register_expires")

    def _keepalive_interval(self) -> float:
        return self.options.keepalive_interval or float(self.inv.setting("keepalive_interval"))

    def _digest_username(self) -> str:
        template = self.profile.digest_username
        return template.format(id=self.device_id) if template else self.device_id

    # ------------------------------------------------------------------ requests from the platform
    def on_request(self, request: Request, now: float, wall: float, dialog_id: DialogId | None) -> Reply | None:
        """The answer to a request from the platform; None = say nothing (the device has no power)."""
        if self.state == State.OFF:
            self.stats["unanswered-while-off"] += 1
            return None
        self.set_wall(now, wall)
        method = request.method
        self.stats[f"in:{method}"] += 1
        if method == "MESSAGE":
            return self._on_message(request, now, wall)
        if method == "SUBSCRIBE":
            return self._on_subscribe(request, now, dialog_id)
        if method == "INVITE":
            if dialog_id is not None:  # a re-INVITE: nothing to renegotiate in a simulated stream
                return Reply(488, (("Warning", '399 simulator "re-INVITE not supported"'),))
            plan = self.plan_invite(request)  # the driver binds the media socket and calls accept_invite
            return plan if isinstance(plan, Reply) else Reply(500, (("Warning", '399 simulator "no media driver"'),))
        if method == "INFO" and dialog_id is not None and dialog_id in self.media:
            return self._on_info(dialog_id, request, now)
        if method == "BYE" and dialog_id is not None and dialog_id[0] in self.talks:
            self.talks.pop(dialog_id[0])
            self._out.append(TalkStop(dialog_id[0]))
            self.stats["talk-ended"] += 1
            return Reply(200)
        if method == "BYE" and dialog_id is not None and dialog_id in self.media:
            self._stop_media(dialog_id, now)
            del self.media[dialog_id]
            return Reply(200)
        if method in ("OPTIONS", "NOTIFY", "INFO"):
            return Reply(200)
        if method == "BYE":
            return Reply(481)
        return Reply(405, (("Allow", "MESSAGE, SUBSCRIBE, OPTIONS, NOTIFY, INFO, BYE"),))

    # ------------------------------------------------------------------ media (§9.2, §9.8, §9.9; App. B, C, G)
    def plan_invite(self, request: Request) -> InvitePlan | Reply:
        """Check an INVITE and say what socket it needs, or the error answer (spec digest §10.1 errors)."""
        if not self.registered_once:
            return Reply(403, (("Warning", '399 devnull "Not registered"'),))
        try:
            offer = sdp.parse(request.body)
        except sdp.SdpError as exc:
            return Reply(400, (("Warning", f'399 simulator "bad SDP: {str(exc)[:60]}"'),))
        if offer.session_name not in (sdp.PLAY, sdp.PLAYBACK, sdp.DOWNLOAD):
            return Reply(488, (("Warning", f'399 simulator "s={offer.session_name[:20]} not supported"'),))
        channel_id = (request.request_uri.user if hasattr(request.request_uri, "user") else None) or request.to.user
        if offer.uri and ":" in offer.uri and offer.session_name != sdp.PLAY:
            channel_id = offer.uri.split(":", 1)[0] or channel_id
        ch = self.inv.channel(channel_id or "")
        if ch is None and channel_id == self.device_id and self.inv.videos:
            ch = self.inv.videos[0]  # an IPC addressed by its device ID streams its only camera
        if ch is None or ch not in self.inv.videos:
            return Reply(404, (("Warning", f'399 simulator "no camera {channel_id}"'),))
        m = offer.video
        address = offer.media_address
        if m is None or not m.port or address is None:
            return Reply(488, (("Warning", '399 simulator "no media address or port in the offer"'),))
        if "96" not in m.formats and "PS/90000" not in m.rtpmap.values():
            return Reply(415, (("Warning", '399 simulator "PS (96) not offered"'),))
        if offer.ssrc_value is None:
            return Reply(400, (("Warning", '399 simulator "no y= SSRC"'),))
        self.sends = {d: s for d, s in self.sends.items() if d in self.media}  # ended dialogs drop out
        send = talk.Send(request.headers.get("subject") or "", ch.id, offer.stream_number or 0,
                         offer.session_name == sdp.PLAY)  # fmt: skip
        old = talk.replaced(self.sends, send)
        busy = sum(1 for d, s in self.sends.items() if s.channel_id == ch.id and d not in old)
        if self.options.max_streams and busy >= self.options.max_streams:
            self.stats["invite-busy"] += 1
            return Reply(486, (("Warning", f'399 simulator "{ch.id} already sends {busy} streams"'),))
        # offer.transport names the platform's side; the device takes the other end of the TCP connection
        theirs = offer.transport
        transport = {sdp.UDP: sdp.UDP, sdp.TCP_PASSIVE: sdp.TCP_ACTIVE, sdp.TCP_ACTIVE: sdp.TCP_PASSIVE}[theirs]
        return InvitePlan(offer, offer.session_name, transport, (address, m.port), ch.id, tuple(old))

    def accept_invite(self, request: Request, plan: InvitePlan, address: str, port: int, now: float) -> Reply:
        """The 200 OK with our SDP; ``port`` is the media socket the driver bound (UDP source, TCP listen or
        TCP source port). The session waits for the ACK."""
        ssrc_text = plan.offer.ssrc or "0"
        if self.profile.has("answer-other-ssrc"):
            # the device chooses its own y= (other-domain style, App. G note 16): same kind digit, new number
            ssrc_text = f"{ssrc_text[:1] or '0'}{(int(ssrc_text[1:] or 0) + 1111) % 10**9:09d}"
        rtp_ssrc = 0 if self.profile.has("ssrc-zero") else int(ssrc_text)
        answer = sdp.build_answer(plan.offer, self.device_id, address, port, ssrc=ssrc_text)
        duration = self.history_seconds
        if plan.kind != sdp.PLAY and plan.offer.stop > plan.offer.start > 0:
            duration = min(duration, float(plan.offer.stop - plan.offer.start))
        session = media.MediaSession(
            plan.kind, plan.transport, plan.remote, rtp_ssrc, self.clip, duration=duration if plan.kind != sdp.PLAY
            else 0.0, speed=float(plan.offer.download_speed or 1), channel_id=plan.channel_id,
        )  # fmt: skip
        to_tag = new_tag()
        for old in plan.replaces:  # App. K: release the old send (and tell its receiver), serve the new one
            if old in self.media:
                self._stop_media(old, now)
                del self.media[old]
                self._out.append(DialogRequest(old, "BYE", (), b""))
            self.sends.pop(old, None)
            self.stats["app-k-replaced"] += 1
            log.info("%s: INVITE with the same Subject identities replaces the send of %s", self.device_id, old[0])
        dialog_id = (request.call_id, to_tag, request.from_.tag or "")
        self.media[dialog_id] = session
        self.sends[dialog_id] = talk.Send(request.headers.get("subject") or "", plan.channel_id,
                                          plan.offer.stream_number or 0, plan.kind == sdp.PLAY)  # fmt: skip
        self.stats[f"invite:{plan.kind.lower()}"] += 1
        log.info("%s: %s of %s over %s to %s:%d, SSRC %d", self.device_id, plan.kind, plan.channel_id,
                 plan.transport, *plan.remote, rtp_ssrc)  # fmt: skip
        return Reply(200, (("Content-Type", "application/sdp"),), answer.to_bytes(), to_tag=to_tag)

    def on_ack(self, dialog_id: DialogId, now: float) -> None:
        session = self.media.get(dialog_id)
        if session is not None and session.fire(media.Ev.ACK, now):
            self._out.append(MediaStart(dialog_id))

    def media_due(self, dialog_id: DialogId, now: float) -> list[bytes]:
        """RTP packets due now for the driver to send; at the end of a file, queue MediaStatus 121."""
        session = self.media.get(dialog_id)
        if session is None:
            return []
        packets = session.due(now)
        if session.reached_end and not session.end_reported:
            session.end_reported = True
            self._media_status(dialog_id, session)
            self._out.append(MediaStop(dialog_id))
        return packets

    def media_lost(self, dialog_id: DialogId, now: float) -> None:
        """The driver could not open or keep the media connection: the stream ends (the platform will BYE)."""
        session = self.media.get(dialog_id)
        if session is not None:
            session.fire(media.Ev.BYE, now)

    def _media_status(self, dialog_id: DialogId, session: media.MediaSession) -> None:
        body = encode(
            MediaStatusNotify(sn=self._next_sn(), device_id=session.channel_id, notify_type=121),
            charset=self.profile.charset,
        )  # fmt: skip
        headers = (("Content-Type", MANSCDP), ("User-Agent", self.profile.user_agent))
        self._out.append(DialogRequest(dialog_id, "MESSAGE", headers, body))
        self.stats["media-status-sent"] += 1
        log.info("%s: end of %s of %s: MediaStatus 121 sent", self.device_id, session.kind, session.channel_id)

    def _stop_media(self, dialog_id: DialogId, now: float) -> None:
        session = self.media[dialog_id]
        if not session.ended:
            session.fire(media.Ev.BYE, now)
        self._out.append(MediaStop(dialog_id))

    def _on_info(self, dialog_id: DialogId, request: Request, now: float) -> Reply:
        """INFO with MANSRTSP in a playback/download dialog (App. B); the 200 carries the RTSP answer."""
        session = self.media[dialog_id]
        try:
            rtsp = media.parse_mansrtsp(request.body)
        except media.MansrtspError as exc:
            log.info("%s: INFO refused: %s", self.device_id, exc)
            return Reply(400, (("Warning", f'399 simulator "{str(exc)[:60]}"'),))
        if not session.history:
            return Reply(488, (("Warning", '399 simulator "a live stream takes no playback control"'),))
        was_ended = session.ended
        applied = session.control(rtsp, now)
        log.info("%s: MANSRTSP %s (Scale %s, Range %s) on %s: %s, now %s", self.device_id, rtsp.method, rtsp.scale,
                 rtsp.range_start, session.channel_id, "applied" if applied else "ignored", session.phase.value)
        self.stats[f"mansrtsp:{rtsp.method.lower()}"] += 1
        if session.ended and not was_ended:
            self._out.append(MediaStop(dialog_id))
        body = f"RTSP/1.0 200 OK\r\nCSeq: {rtsp.cseq}\r\n\r\n".encode()
        return Reply(200, (("Content-Type", "Application/MANSRTSP"),), body)

    # ------------------------------------------------------------------ voice broadcast (§9.12, A.2.5.5, A.2.6.11)
    def _on_broadcast(self, env: Any) -> Reply:
        """200, a Response Broadcast, and (when the target is ours) an audio INVITE to the SourceID, as the Dahua
        and Hikvision talk INVITEs in fixtures-wild do (spec digest §7.11)."""
        source = env.fields.get("SourceID") or self.server.id
        target = env.fields.get("TargetID") or ""
        channel = self.inv.channel(target)
        ok = target == self.device_id or (channel is not None and channel.type_code == 137)  # a voice output
        self._queue(encode(
            Unknown(root="Response", cmd_type="Broadcast", sn=env.sn, device_id=target or self.device_id,
                    result="OK" if ok else "ERROR"),
            charset=self.profile.charset,
        ))  # fmt: skip
        self.stats["broadcast" if ok else "broadcast-refused"] += 1
        if ok:
            self._out.append(TalkStart(source))
        else:
            log.info("%s: Broadcast for %r, not ours: Result ERROR", self.device_id, target)
        return Reply(200)

    def talk_invite(self, source_id: str, address: str, port: int) -> Request:
        """The device's INVITE for the broadcast audio: ``m=audio`` PCMA (and PS) on ``port``, recvonly."""
        ssrc = f"0{self.server.domain[3:8]}{secrets.randbelow(10000):04d}"
        attrs = (("recvonly", None), ("rtpmap", "8 PCMA/8000/1"), ("rtpmap", "96 PS/90000"))
        offer = sdp.SessionDescription(
            origin_user=self.device_id, origin_address=address, session_name=sdp.PLAY, info="VCam BroadCast Session",
            connection=address, media=(sdp.Media("audio", port, "RTP/AVP", ("8", "96"), attrs),), ssrc=ssrc,
            format_line="v/////a/1/8/1",
        )  # fmt: skip
        call_id = new_call_id()
        host, sip_port = self.local
        headers = [
            ("From", f"<sip:{self.device_id}@{self.server.domain}>;tag={new_tag()}"),
            ("To", f"<sip:{source_id}@{self.server.domain}>"),
            ("Call-ID", call_id),
            ("CSeq", f"{self._next_cseq()} INVITE"),
            ("Contact", f"<sip:{self.device_id}@{host}:{sip_port}>"),
            ("Subject", f"{source_id}:{ssrc},{self.device_id}:0"),
            ("Content-Type", "application/sdp"),
        ]
        self.talks[call_id] = Talk(source_id)
        return self._request("INVITE", f"sip:{source_id}@{self.server.domain}", headers, offer.to_bytes())

    def hear(self, datagram: bytes) -> None:
        """The broadcast's RTP reaching the loudspeaker (runtime's audio socket)."""
        self.stats["talk-audio-samples"] += self.heard.hear(datagram)

    def _talk_answer(self, call_id: str, response: Response | None) -> None:
        talk = self.talks.get(call_id)
        if talk is None:
            return
        if response is None or not 200 <= response.status < 300:
            log.info("%s: talk INVITE to %s: %s", self.device_id, talk.source_id,
                     response.status if response is not None else "no answer")  # fmt: skip
            del self.talks[call_id]
            self._out.append(TalkStop(call_id))
            self.stats["talk-refused"] += 1
            return
        talk.dialog_id = (call_id, response.from_.tag or "", response.to.tag or "")
        self.stats["talk-established"] += 1

    def _on_message(self, request: Request, now: float, wall: float) -> Reply:
        if not self.registered_once:
            # fixtures-wild dahua/ipc-403-not-registered-warning.txt
            return Reply(403, (("Warning", '399 devnull "Not registered"'),))
        try:
            env = parse_envelope(request.body)
        except ManscdpError as exc:
            log.info("%s: unreadable MANSCDP from the platform: %s", self.device_id, exc.reason)
            return Reply(400, (("Warning", '399 simulator "bad MANSCDP body"'),))
        if env.kind == "Response":  # the platform acknowledging our alarm, say
            return Reply(200)
        if env.kind == "Notify" and env.cmd_type == "Broadcast":
            return self._on_broadcast(env)
        outcome = answers.answer(self.inv, env, request.body, wall, self.server.id)
        if outcome.error:
            self.stats["unanswered-queries"] += 1
            log.info("%s: %s", self.device_id, outcome.error)
        for change in outcome.changed:
            log.info("%s: %s", self.device_id, change)
        self.stats[f"answered:{env.cmd_type}"] += 1
        for body in outcome.bodies:
            self._queue(body)
        if outcome.reboot:
            self.reboot(now)
        return Reply(200)

    def _on_subscribe(self, request: Request, now: float, dialog_id: DialogId | None) -> Reply:
        """RFC 6665 notifier for Catalog, Alarm and MobilePosition (GB/T 28181-2022 §9.11, App.N)."""
        expires = request.expires
        expires = DEFAULT_SUBSCRIBE_EXPIRES if expires is None else expires
        if dialog_id is not None and dialog_id in self.subscriptions:  # refresh or unsubscribe, in its dialog
            sub = self.subscriptions[dialog_id]
            if expires == 0:
                self._end_subscription(dialog_id, sub, "noresource")
            else:
                sub.expires_at = now + expires
            return Reply(200, (("Expires", str(expires)),))
        try:
            env = parse_envelope(request.body)
        except ManscdpError as exc:
            return Reply(400, (("Warning", f'399 simulator "{exc.reason[:60]}"'),))
        kind = env.cmd_type.lower()
        if kind not in SUBSCRIPTION_KINDS:
            return Reply(489, (("Allow-Events", "Catalog, presence"),), reason="Bad Event")
        event = request.headers.get("event") or env.cmd_type  # m7s sends none (spec digest §9)
        to_tag = new_tag()
        new_id: DialogId = (request.call_id, to_tag, request.from_.tag or "")
        sub = Subscription(kind, event, now + expires, env.sn or 0)
        self.subscriptions[new_id] = sub
        if expires == 0:  # a fetch (RFC 6665 §4.4.3): one NOTIFY that ends it, sent once our 200 is out
            self._end_subscription(new_id, sub, "timeout")
            return Reply(200, (("Expires", "0"),), to_tag=to_tag)
        if kind == "mobileposition":
            interval = _int(env.fields.get("Interval")) or 5
            sub.interval = float(max(1, interval))
            sub.next_at = now  # the first report at once
        elif kind == "catalog":
            # App.N: right after subscribing, the owner notifies the items that are offline or abnormal.
            faulty = [c.id for c in self.inv.channels if c.vlost]
            if faulty:
                body = answers.catalog_notify(self.inv, sub.sn, self.server.id, faulty, "VLOST")
                self._notify(new_id, sub, body, now)
        self.stats[f"subscribed:{kind}"] += 1
        ok = encode(
            Unknown(root="Response", cmd_type=env.cmd_type, sn=env.sn, device_id=self.device_id, result="OK"),
            charset=self.profile.charset,
        )
        return Reply(200, (("Expires", str(expires)), ("Content-Type", MANSCDP)), ok, to_tag=to_tag)

    def _notify(self, dialog_id: DialogId, sub: Subscription, body: bytes, now: float, *, state: str = "") -> None:
        remaining = max(0, int(sub.expires_at - now))
        headers = (
            ("Event", sub.event),
            ("Subscription-State", state or f"active;expires={remaining}"),
            ("Content-Type", MANSCDP),
            ("User-Agent", self.profile.user_agent),
        )
        self._out.append(Notify(dialog_id, headers, body))
        self.stats["notify-sent"] += 1

    def _end_subscription(self, dialog_id: DialogId, sub: Subscription, reason: str) -> None:
        """RFC 6665 §4.2.2: the last NOTIFY says terminated, with why."""
        del self.subscriptions[dialog_id]
        state = ("Subscription-State", f"terminated;reason={reason}")
        self._out.append(Notify(dialog_id, (("Event", sub.event), state, ("User-Agent", self.profile.user_agent)), b""))


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None


def _granted(response: Response, asked: int) -> int:
    """The expiry the registrar granted: the Contact's expires parameter, else Expires, else what we asked."""
    for contact in response.contacts:
        if contact.expires:
            return contact.expires
    return _int(response.headers.get("expires")) or asked
