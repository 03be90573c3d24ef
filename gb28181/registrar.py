"""REGISTER policy (GB/T 28181-2022 §9.1; RFC 3261 §10.3) as a pure function of the request and ``now``.

Decides the answer (401 challenge, 200 with Contact/Expires/Date, 423, 403, 400) and the binding change;
it never touches sockets or storage. Readings from DECISIONS.md: credentials by From user, HA1 with the
digest username as sent; a wrong password and an unknown device get the same answer; Expires shortened
above max, 423 below min, default when absent, 0 unregisters.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass

from gb28181.ids import check_registrant_id
from sip.address import Address
from sip.auth import MISSING, DigestServer
from sip.errors import RemoteProtocolError
from sip.message import Request


@dataclass(frozen=True)
class RegisterPolicy:
    realm: str
    min_expires: int = 60
    max_expires: int = 86400
    default_expires: int = 3600
    strict_ids: bool = False
    allow_unknown: bool = True
    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True)
class Decision:
    status: int
    outcome: str  # one word an operator can grep for: registered, unregistered, challenged, ...
    detail: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    device_id: str = ""
    expires: int | None = None  # granted expiry for a successful registration; 0 for an unregistration
    contact: str = ""
    gb_version: str | None = None


_date_cache: dict[tuple[int, str], str] = {}


def gb_date(now: float, tz: zoneinfo.ZoneInfo) -> str:
    """The Date value for time sync: local time ``YYYY-MM-DDTHH:MM:SS.mmm``, no zone (GB/T 28181 §9.10)."""
    second, micros = divmod(round(now * 1_000_000), 1_000_000)  # rounded as datetime.fromtimestamp does
    millis = micros // 1000
    key = (second, tz.key)
    prefix = _date_cache.get(key)
    if prefix is None:  # the zone conversion once per second, not once per REGISTER
        if len(_date_cache) > 64:
            _date_cache.clear()
        prefix = _date_cache[key] = dt.datetime.fromtimestamp(second, tz).strftime("%Y-%m-%dT%H:%M:%S.")
    return f"{prefix}{millis:03d}"


class Registrar:
    def __init__(
        self,
        policy: RegisterPolicy,
        auth: DigestServer,
        password_for: Callable[[str], str | None],
    ) -> None:
        """``password_for(device_id)`` returns the device's password (per-device or global), or None."""
        self.policy = policy
        self.auth = auth
        self.password_for = password_for
        self.tz = zoneinfo.ZoneInfo(policy.timezone)

    def decide(self, request: Request, now: float) -> Decision:
        headers = request.headers
        return self.decide_parts(
            request.from_.user or "",
            headers.get("x-gb-ver"),
            headers.get("authorization"),
            headers.get("contact"),
            lambda: request.contacts,
            lambda: request.expires,
            now,
        )

    def decide_parts(
        self,
        device: str,
        version: str | None,
        authorization: str | None,
        contact: str | None,
        contacts: Callable[[], list[Address]],
        expires_header: Callable[[], int | None],
        now: float,
    ) -> Decision:
        """``decide`` on the parts of a REGISTER it reads (the lean lane has no ``Request``): the From user, the
        X-GB-ver, Authorization and Contact values, and the parsed Contacts and Expires, which may raise
        RemoteProtocolError (a 400)."""
        p = self.policy
        extra: tuple[tuple[str, str], ...] = (("X-GB-ver", version),) if version else ()
        if not device:
            # The From user is the device ID (GB/T 28181-2022 §9.1.2.1): without one there is nobody to register.
            return Decision(400, "malformed", "From URI has no user part (the device ID)", extra, device)
        if p.strict_ids and (why := check_registrant_id(device)):
            return Decision(403, "bad-id", why, extra, device)
        try:
            expires = _requested_expires(contacts(), expires_header)
        except RemoteProtocolError as exc:
            return Decision(400, "malformed", exc.reason, extra, device)
        if expires is None:
            expires = p.default_expires
        if 0 < expires < p.min_expires:
            return Decision(
                423,
                "too-brief",
                f"Expires {expires} < {p.min_expires}",
                (("Min-Expires", str(p.min_expires)), *extra),
                device,
            )
        result = self.auth.verify(
            "REGISTER", authorization, device, lambda user, _name: self.password_for(user), now
        )
        if not result.ok:
            if result.status == 401:
                challenge = self.auth.challenge(now, stale=result.stale)
                return Decision(
                    401,
                    "challenged" if result.reason == MISSING else "rechallenged",
                    result.reason,
                    (("WWW-Authenticate", challenge), *extra),
                    device,
                )
            # Same answer for a wrong password and an unknown device: no ID enumeration.
            status = 403 if result.status == 403 else result.status
            return Decision(status, result.reason.replace(" ", "-"), result.reason, extra, device)
        contact = contact or ""
        if expires == 0:
            return Decision(
                200,
                "unregistered",
                "",
                (("Expires", "0"), ("Date", gb_date(now, self.tz)), *extra),
                device,
                0,
                contact,
                version,
            )
        granted = min(expires, p.max_expires)
        headers = [("Expires", str(granted)), ("Date", gb_date(now, self.tz)), *extra]
        if listed := contacts():
            headers.insert(0, ("Contact", _contact_with_expires(listed[0], granted)))
        return Decision(200, "registered", "", tuple(headers), device, granted, contact, version)


def _requested_expires(contacts: list[Address], expires_header: Callable[[], int | None]) -> int | None:
    """Contact ``expires`` param first, then the Expires header (RFC 3261 §10.2.1.1). ``*`` means 0."""
    if contacts:
        if contacts[0].star:
            return 0
        if (value := contacts[0].expires) is not None:
            return value
    return expires_header()


def _contact_with_expires(contact: Address, granted: int) -> str:
    # RFC 3261 §10.3 step 8: the 200 lists the binding with the expiry actually granted, replacing any
    # ``expires`` the device asked for (which may have been shortened).
    return str(contact.with_param("expires", str(granted)))
