"""Subscriptions of the platform to its devices (GB/T 28181-2022 §9.11, App.N; RFC 6665; spec digest §9).

The platform is the subscriber: it sends SUBSCRIBE with a MANSCDP Query body (Catalog, Alarm or MobilePosition),
the device answers 200 with Expires and then NOTIFYs. This module is sans-IO: it keeps one ``Subscription`` per
(device, kind), says what to send and when (``due(now)``), and is told what happened (``succeeded``, ``failed``,
``terminated``, ``device_registered``, ``device_gone``). ``now`` is monotonic seconds, passed in.

States (a transition table below): ``pending`` (a SUBSCRIBE is due or in flight, or the device is away),
``active`` (the device accepted; a refresh is due ``refresh_margin`` before expiry), ``failed`` (``max_failures``
consecutive failures: given up until the device registers again or an operator asks again).
"""

from __future__ import annotations

from dataclasses import dataclass

from gb28181.manscdp.messages import AlarmQuery, CatalogQuery, Message, MobilePositionQuery

KINDS = ("catalog", "alarm", "position")
PENDING, ACTIVE, FAILED = "pending", "active", "failed"

# Event package per kind: "Catalog" is fixed by 2022 App.N.4.2; for alarm and position the standard text fixes
# none and wvp, the most deployed peer, uses "presence" (spec digest §9 table). The id parameter tells ours apart.
EVENT_PACKAGE = {"catalog": "Catalog", "alarm": "presence", "position": "presence"}

# (state, input) -> next state. Inputs: want (operator or auto), success, failure (below max), give-up (max
# reached), terminated (NOTIFY Subscription-State: terminated), registered, gone. A pair missing here is an
# explicit ignore (e.g. a late success for a subscription already given up is taken: see ``succeeded``).
TRANSITIONS: dict[tuple[str, str], str] = {
    (PENDING, "want"): PENDING,
    (ACTIVE, "want"): ACTIVE,  # an operator's ask refreshes now
    (FAILED, "want"): PENDING,
    (PENDING, "success"): ACTIVE,
    (ACTIVE, "success"): ACTIVE,
    (FAILED, "success"): ACTIVE,
    (PENDING, "failure"): PENDING,
    (ACTIVE, "failure"): PENDING,
    (PENDING, "give-up"): FAILED,
    (ACTIVE, "give-up"): FAILED,
    (ACTIVE, "terminated"): PENDING,
    (PENDING, "terminated"): PENDING,
    (PENDING, "registered"): PENDING,
    (ACTIVE, "registered"): PENDING,
    (FAILED, "registered"): PENDING,
    (PENDING, "gone"): PENDING,
    (ACTIVE, "gone"): PENDING,
    (FAILED, "gone"): FAILED,
}


@dataclass(frozen=True)
class SubscribeSettings:
    expires: int = 600
    refresh_margin: float = 60.0
    position_interval: int = 5
    max_failures: int = 5
    retry_base: float = 5.0
    retry_max: float = 300.0


@dataclass
class Subscription:
    device_id: str
    kind: str
    event_id: int  # the Event header's id parameter (App.N.4.2)
    state: str = PENDING
    expires: int = 0  # what the device granted
    expires_at: float | None = None  # monotonic
    next_at: float | None = None  # when the next SUBSCRIBE is due (monotonic); None = nothing scheduled
    in_flight: bool = False
    failures: int = 0  # consecutive
    last_error: str = ""
    dialog: object = None  # the SIP dialog of an active subscription (opaque here); None = next one is new
    notifies: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.device_id, self.kind)


@dataclass(frozen=True)
class Send:
    """Send a SUBSCRIBE for this subscription: inside ``dialog`` (a refresh) or a new one when it is None."""

    device_id: str
    kind: str
    event_id: int
    expires: int
    dialog: object


class SubscriptionManager:
    def __init__(self, settings: SubscribeSettings, *, first_event_id: int = 1) -> None:
        self.settings = settings
        self._subs: dict[tuple[str, str], Subscription] = {}
        self._next_id = first_event_id

    def __len__(self) -> int:
        return len(self._subs)

    def get(self, device_id: str, kind: str) -> Subscription | None:
        return self._subs.get((device_id, kind))

    def all(self) -> list[Subscription]:
        return [self._subs[k] for k in sorted(self._subs)]

    def of_device(self, device_id: str) -> list[Subscription]:
        return [s for s in self.all() if s.device_id == device_id]

    def _move(self, sub: Subscription, event: str) -> None:
        nxt = TRANSITIONS.get((sub.state, event))
        if nxt is not None:
            sub.state = nxt

    # ------------------------------------------------------------------ inputs
    def want(self, device_id: str, kind: str, now: float) -> Subscription:
        """Start (or refresh now) a subscription; a given-up one starts over with a clean failure count."""
        if kind not in KINDS:
            raise ValueError(f"unknown subscription kind {kind!r} (one of {', '.join(KINDS)})")
        sub = self._subs.get((device_id, kind))
        if sub is None:
            sub = self._subs[(device_id, kind)] = Subscription(device_id, kind, self._new_event_id())
        if sub.state == FAILED:
            sub.failures = 0
        self._move(sub, "want")
        if not sub.in_flight:
            sub.next_at = now
        return sub

    def succeeded(self, device_id: str, kind: str, granted: int, dialog: object, now: float) -> None:
        """A 2xx to our SUBSCRIBE. ``granted`` = its Expires (RFC 6665 §4.1.2.1: the notifier may shorten it);
        0 or less means the device ended it at once, treated as a failure."""
        sub = self._subs.get((device_id, kind))
        if sub is None:
            return
        sub.in_flight = False
        if granted <= 0:
            self.failed(device_id, kind, "the device answered Expires: 0", now)
            return
        self._move(sub, "success")
        sub.failures, sub.last_error = 0, ""
        sub.dialog = dialog
        sub.expires, sub.expires_at = granted, now + granted
        sub.next_at = now + granted - min(self.settings.refresh_margin, granted / 2)

    def failed(self, device_id: str, kind: str, reason: str, now: float) -> None:
        """A non-2xx, a timeout or a transport error: retry with exponential backoff, a new dialog each time,
        until ``max_failures`` in a row, then ``failed``."""
        sub = self._subs.get((device_id, kind))
        if sub is None:
            return
        sub.in_flight = False
        sub.failures += 1
        sub.last_error = reason
        sub.dialog = None
        sub.expires_at = None
        if sub.failures >= self.settings.max_failures:
            self._move(sub, "give-up")
            sub.next_at = None
            return
        self._move(sub, "failure")
        if sub.state == PENDING:
            backoff = self.settings.retry_base * 2 ** (sub.failures - 1)
            sub.next_at = now + min(backoff, self.settings.retry_max)

    def terminated(self, device_id: str, kind: str, reason: str, now: float) -> None:
        """The device ended the subscription (NOTIFY ``Subscription-State: terminated``, RFC 6665 §4.2.2):
        subscribe again after ``retry_base`` in a new dialog; counted as a failure so a device that keeps ending
        it is given up."""
        sub = self._subs.get((device_id, kind))
        if sub is None or sub.state == FAILED:
            return
        self._move(sub, "terminated")
        self.failed(device_id, kind, f"terminated by the device ({reason or 'no reason'})", now)

    def device_registered(self, device_id: str, now: float, auto: tuple[str, ...] = ()) -> list[Subscription]:
        """A device (re)registered: it lost its subscriptions (a reboot), so every one of it starts over now,
        including given-up ones, plus the ``auto`` kinds (``[subscribe]`` catalog/alarm/position)."""
        for kind in auto:
            if (device_id, kind) not in self._subs:
                self._subs[(device_id, kind)] = Subscription(device_id, kind, self._new_event_id())
        subs = self.of_device(device_id)
        for sub in subs:
            self._move(sub, "registered")
            sub.failures, sub.dialog, sub.expires_at = 0, None, None
            if not sub.in_flight:
                sub.next_at = now
        return subs

    def device_gone(self, device_id: str, reason: str) -> None:
        """The device unregistered or expired: nothing is sent until it registers again."""
        for sub in self.of_device(device_id):
            self._move(sub, "gone")
            sub.next_at, sub.dialog, sub.expires_at = None, None, None
            if sub.state != FAILED:
                sub.last_error = reason

    def notified(self, device_id: str, kind: str) -> None:
        sub = self._subs.get((device_id, kind))
        if sub is not None:
            sub.notifies += 1

    def forget(self, device_id: str) -> None:
        for sub in self.of_device(device_id):
            del self._subs[sub.key]

    # ------------------------------------------------------------------ outputs
    def due(self, now: float) -> list[Send]:
        """SUBSCRIBEs to send now; each is marked in flight until ``succeeded`` or ``failed``."""
        out = []
        for sub in self._subs.values():
            if sub.in_flight or sub.next_at is None or sub.next_at > now or sub.state == FAILED:
                continue
            if sub.dialog is not None and sub.expires_at is not None and now >= sub.expires_at:
                sub.dialog, sub.expires_at = None, None  # expired before we refreshed: a new dialog
                self._move(sub, "failure")
            sub.in_flight = True
            sub.next_at = None
            out.append(Send(sub.device_id, sub.kind, sub.event_id, self.settings.expires, sub.dialog))
        return out

    def next_deadline(self) -> float | None:
        times = [s.next_at for s in self._subs.values() if s.next_at is not None and not s.in_flight]
        return min(times, default=None)

    def _new_event_id(self) -> int:
        event_id = self._next_id
        self._next_id = self._next_id % (2**31 - 1) + 1
        return event_id


def event_header(kind: str, event_id: int) -> str:
    return f"{EVENT_PACKAGE[kind]};id={event_id}"


def subscribe_body(kind: str, sn: int, device_id: str, settings: SubscribeSettings) -> Message:
    """The MANSCDP Query a SUBSCRIBE carries (A.2.4.3 Catalog, A.2.4.6 Alarm, A.2.4.9 MobilePosition)."""
    if kind == "catalog":
        return CatalogQuery(sn=sn, device_id=device_id)
    if kind == "alarm":
        # every priority and method (A.2.4.6: AlarmMethod 0 = all)
        return AlarmQuery(sn=sn, device_id=device_id, start_alarm_priority=1, end_alarm_priority=4, alarm_method="0")
    if kind == "position":
        return MobilePositionQuery(sn=sn, device_id=device_id, interval=settings.position_interval)
    raise ValueError(f"unknown subscription kind {kind!r}")


KIND_OF_CMD = {"Catalog": "catalog", "Alarm": "alarm", "MobilePosition": "position"}


def subscription_json(sub: Subscription, now: float) -> dict[str, object]:
    """The subscription object of the admin API; ``expires_in``/``next_in`` are seconds from now."""
    return {
        "device_id": sub.device_id,
        "kind": sub.kind,
        "state": sub.state,
        "event": event_header(sub.kind, sub.event_id),
        "expires": sub.expires if sub.state == ACTIVE else 0,
        "expires_in": round(sub.expires_at - now, 1) if sub.expires_at is not None else None,
        "next_in": round(max(sub.next_at - now, 0.0), 1) if sub.next_at is not None else None,
        "in_flight": sub.in_flight,
        "failures": sub.failures,
        "last_error": sub.last_error or None,
        "notifies": sub.notifies,
    }
