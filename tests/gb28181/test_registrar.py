"""REGISTER policy (gb28181/registrar.py) as a pure function of a parsed request and ``now``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gb28181.registrar import Decision, RegisterPolicy, Registrar, gb_date
from sip.auth import DigestClient, DigestServer, parse_credentials
from sip.message import Request
from sip.parser import parse_message

REALM = "3402000000"
DEVICE = "34020000001320000001"
PASSWORD = "12345678"
SERVER_URI = "sip:34020000002000000001@3402000000"
T0 = 1_700_000_000.123  # 2023-11-14T22:13:20.123Z == 2023-11-15T06:13:20.123+08:00
CONTACT = f"<sip:{DEVICE}@10.0.0.5:5060>"


def register(
    *headers: str,
    user: str = DEVICE,
    uri: str = SERVER_URI,
    expires: int | None = 3600,
    contact: str | None = CONTACT,
) -> Request:
    lines = [
        f"REGISTER {uri} SIP/2.0",
        "Via: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK-1",
        f"From: <sip:{user}@{REALM}>;tag=1" if user else f"From: <sip:{REALM}>;tag=1",
        f"To: <sip:{user}@{REALM}>" if user else f"To: <sip:{REALM}>",
        "Call-ID: reg-1",
        "CSeq: 1 REGISTER",
        "Max-Forwards: 70",
    ]
    if contact is not None:
        lines.append(f"Contact: {contact}")
    if expires is not None:
        lines.append(f"Expires: {expires}")
    lines.extend(headers)
    lines.append("Content-Length: 0")
    msg = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


class Lookups:
    """password_for, recording what it was asked."""

    def __init__(self, passwords: dict[str, str | None]) -> None:
        self.passwords = passwords
        self.asked: list[str] = []

    def __call__(self, device_id: str) -> str | None:
        self.asked.append(device_id)
        return self.passwords.get(device_id)


def make(
    passwords: dict[str, str | None] | None = None,
    *,
    nonce_ttl: float = 300,
    qop: bool = True,
    **policy: object,
) -> tuple[Registrar, Lookups]:
    lookups = Lookups({DEVICE: PASSWORD} if passwords is None else passwords)
    server = DigestServer(b"registrar-test-secret", REALM, nonce_ttl=nonce_ttl, offer_qop=qop)
    return Registrar(RegisterPolicy(realm=REALM, **policy), server, lookups), lookups  # type: ignore[arg-type]


def h(decision: Decision, name: str) -> str | None:
    found = [v for k, v in decision.headers if k.lower() == name.lower()]
    assert len(found) <= 1, decision.headers
    return found[0] if found else None


def authorized(
    registrar: Registrar,
    build: Callable[..., Request],
    now: float = T0,
    *,
    username: str = DEVICE,
    password: str = PASSWORD,
    digest_uri: str = SERVER_URI,
    **kw: object,
) -> Decision:
    """Challenge, answer with a DigestClient, return the decision on the answer."""
    extra: tuple[str, ...] = kw.pop("headers", ())  # type: ignore[assignment]
    first = registrar.decide(build(*extra, **kw), now)
    assert first.status == 401, first
    challenge = h(first, "WWW-Authenticate")
    assert challenge is not None
    answer = DigestClient(username, password).authorization(challenge, "REGISTER", digest_uri)
    return registrar.decide(build(*extra, f"Authorization: {answer}", **kw), now)


# ----------------------------------------------------------------------------------------------------- challenge


def test_no_authorization_is_challenged_with_the_configured_realm_and_qop() -> None:
    registrar, _ = make()
    d = registrar.decide(register(), T0)
    assert (d.status, d.outcome, d.device_id) == (401, "challenged", DEVICE)
    challenge = h(d, "WWW-Authenticate")
    assert challenge is not None
    scheme, params = parse_credentials(challenge)
    assert scheme == "Digest"
    assert params["realm"] == REALM
    assert params["qop"] == "auth"
    assert params["nonce"]
    assert "stale" not in params
    assert d.expires is None


def test_qop_not_offered_when_disabled() -> None:
    registrar, _ = make(qop=False)
    challenge = h(registrar.decide(register(), T0), "WWW-Authenticate")
    assert challenge is not None and "qop" not in parse_credentials(challenge)[1]


# ----------------------------------------------------------------------------------------------------- success


def test_success_has_contact_expires_and_date() -> None:
    registrar, lookups = make()
    d = authorized(registrar, register)
    assert (d.status, d.outcome, d.device_id, d.expires) == (200, "registered", DEVICE, 3600)
    assert h(d, "Contact") == f"{CONTACT};expires=3600"
    assert h(d, "Expires") == "3600"
    assert h(d, "Date") == "2023-11-15T06:13:20.123"
    assert h(d, "X-GB-ver") is None  # the device sent none
    assert d.contact == CONTACT
    assert lookups.asked == [DEVICE]


@pytest.mark.parametrize(
    ("timezone", "expected"),
    [
        ("Asia/Shanghai", "2023-11-15T06:13:20.123"),
        ("UTC", "2023-11-14T22:13:20.123"),
    ],
)
def test_date_is_in_the_configured_timezone(timezone: str, expected: str) -> None:
    registrar, _ = make(timezone=timezone)
    assert h(authorized(registrar, register), "Date") == expected


def test_gb_date_format_pads_milliseconds() -> None:
    import zoneinfo

    assert gb_date(0.005, zoneinfo.ZoneInfo("UTC")) == "1970-01-01T00:00:00.005"
    assert gb_date(1_700_000_000, zoneinfo.ZoneInfo("Asia/Shanghai")) == "2023-11-15T06:13:20.000"


@pytest.mark.parametrize("spelling", ["X-GB-Ver", "x-gb-ver", "X-GB-VER"])
def test_x_gb_ver_echoed_on_challenge_failure_and_success(spelling: str) -> None:
    registrar, _ = make({DEVICE: PASSWORD})
    version = f"{spelling}: 3.0"
    challenged = registrar.decide(register(version), T0)
    assert challenged.status == 401 and h(challenged, "X-GB-ver") == "3.0"
    ok = authorized(registrar, register, headers=(version,))
    assert ok.status == 200 and h(ok, "X-GB-ver") == "3.0" and ok.gb_version == "3.0"
    wrong = authorized(registrar, register, password="wrong", headers=(version,))
    assert wrong.status == 403 and h(wrong, "X-GB-ver") == "3.0"
    brief = registrar.decide(register(version, expires=10), T0)
    assert brief.status == 423 and h(brief, "X-GB-ver") == "3.0"


# ----------------------------------------------------------------------------------------------------- expiry


def test_expires_above_max_is_shortened() -> None:
    registrar, _ = make(max_expires=7200)
    d = authorized(registrar, register, expires=100_000)
    assert (d.status, d.expires) == (200, 7200)
    assert h(d, "Expires") == "7200"
    assert h(d, "Contact") == f"{CONTACT};expires=7200"


def test_contact_expires_above_max_is_shortened_in_the_contact_too() -> None:
    # RFC 3261 §10.3 step 8: the 200 lists the binding with the expiry actually granted, never what was asked.
    registrar, _ = make(max_expires=7200)
    d = authorized(registrar, register, contact=f"{CONTACT};expires=100000", expires=None)
    assert (d.status, d.expires) == (200, 7200)
    assert h(d, "Expires") == "7200"
    assert h(d, "Contact") == f"{CONTACT};expires=7200"


@pytest.mark.parametrize("asked", [1, 30, 59])
def test_below_min_is_423_with_min_expires(asked: int) -> None:
    registrar, _ = make(min_expires=60)
    d = registrar.decide(register(expires=asked), T0)
    assert (d.status, d.outcome) == (423, "too-brief")
    assert h(d, "Min-Expires") == "60"
    assert d.expires is None


def test_exactly_min_is_granted() -> None:
    registrar, _ = make(min_expires=60)
    assert authorized(registrar, register, expires=60).expires == 60


@pytest.mark.parametrize(
    ("contact", "expires"),
    [(CONTACT, 0), ("*", 0), (f"{CONTACT};expires=0", 3600)],
)
def test_expires_zero_and_star_unregister(contact: str, expires: int) -> None:
    registrar, _ = make(min_expires=60)
    d = authorized(registrar, register, contact=contact, expires=expires)
    assert (d.status, d.outcome, d.expires) == (200, "unregistered", 0)
    assert h(d, "Expires") == "0"
    assert h(d, "Date") is not None
    assert h(d, "Contact") is None


def test_unregistration_still_needs_authentication() -> None:
    registrar, _ = make()
    d = registrar.decide(register(contact="*", expires=0), T0)
    assert d.status == 401


def test_missing_expires_takes_the_default() -> None:
    registrar, _ = make(default_expires=1800)
    d = authorized(registrar, register, expires=None)
    assert (d.status, d.expires) == (200, 1800)
    assert h(d, "Expires") == "1800"
    assert h(d, "Contact") == f"{CONTACT};expires=1800"


def test_contact_expires_param_wins_over_the_expires_header() -> None:
    registrar, _ = make(min_expires=60)
    d = authorized(registrar, register, contact=f"{CONTACT};expires=120", expires=3600)
    assert (d.status, d.expires) == (200, 120)
    assert h(d, "Expires") == "120"
    assert h(d, "Contact") == f"{CONTACT};expires=120"
    # ... and decides 423 as well
    brief = registrar.decide(register(contact=f"{CONTACT};expires=10", expires=3600), T0)
    assert brief.status == 423


@pytest.mark.parametrize("bad", ["Expires: soon", "Expires: -5"])
def test_malformed_expires_is_400(bad: str) -> None:
    registrar, _ = make()
    d = registrar.decide(register(bad, expires=None), T0)
    assert (d.status, d.outcome) == (400, "malformed")


# ----------------------------------------------------------------------------------------------------- failures


def test_wrong_password_and_unknown_device_get_the_same_answer() -> None:
    registrar, _ = make({DEVICE: PASSWORD, "34020000001320000009": None})
    wrong = authorized(registrar, register, password="not-it")
    unknown = authorized(registrar, register, user="34020000001320000009", username="34020000001320000009")
    assert wrong.status == unknown.status == 403
    assert wrong.headers == unknown.headers  # nothing tells them apart on the wire
    assert wrong.outcome != unknown.outcome  # but the log does
    assert {wrong.outcome, unknown.outcome} == {"wrong-password", "unknown-user"}
    assert wrong.expires is None and unknown.expires is None


def test_stale_nonce_is_rechallenged_with_stale_true() -> None:
    registrar, _ = make(nonce_ttl=300)
    first = registrar.decide(register(), T0)
    challenge = h(first, "WWW-Authenticate")
    assert challenge is not None
    answer = DigestClient(DEVICE, PASSWORD).authorization(challenge, "REGISTER", SERVER_URI)
    late = registrar.decide(register(f"Authorization: {answer}"), T0 + 301)
    assert (late.status, late.outcome) == (401, "rechallenged")
    new_challenge = h(late, "WWW-Authenticate")
    assert new_challenge is not None
    params = parse_credentials(new_challenge)[1]
    assert params["stale"] == "true"
    assert params["nonce"] != parse_credentials(challenge)[1]["nonce"]
    # the same answer inside the nonce lifetime was fine
    assert registrar.decide(register(f"Authorization: {answer}"), T0 + 299).status == 200


def test_a_forged_nonce_is_rechallenged_without_stale() -> None:
    registrar, _ = make()
    forged = 'Digest realm="3402000000", nonce="' + "ab" * 32 + '", qop="auth"'
    answer = DigestClient(DEVICE, PASSWORD).authorization(forged, "REGISTER", SERVER_URI)
    d = registrar.decide(register(f"Authorization: {answer}"), T0)
    challenge = h(d, "WWW-Authenticate")
    assert d.status == 401 and challenge is not None
    assert "stale" not in parse_credentials(challenge)[1]


@pytest.mark.parametrize(
    "device_id",
    [
        "34020000002150000001",  # 215 business group
        "34020000002160000001",  # 216 virtual organisation
        "34020000004000000001",  # 400 centre user
        "3402000000132000001",  # 19 digits
        "camera1",
    ],
)
def test_strict_ids_refuses_non_registrants(device_id: str) -> None:
    registrar, lookups = make({device_id: PASSWORD}, strict_ids=True)
    d = registrar.decide(register(user=device_id), T0)
    assert (d.status, d.outcome, d.device_id) == (403, "bad-id", device_id)
    assert d.detail
    assert lookups.asked == []


def test_strict_ids_off_accepts_any_user() -> None:
    registrar, _ = make({"camera1": PASSWORD}, strict_ids=False)
    d = authorized(registrar, register, user="camera1", username="camera1")
    assert (d.status, d.device_id) == (200, "camera1")


def test_strict_ids_accepts_a_camera() -> None:
    registrar, _ = make(strict_ids=True)
    assert authorized(registrar, register).status == 200


def test_from_without_a_user_is_refused() -> None:
    # The device ID is the From user; a REGISTER without one must not create a binding for "".
    registrar, lookups = make({"": PASSWORD})
    d = registrar.decide(register(user=""), T0)
    assert d.status == 400
    assert lookups.asked == []


# ----------------------------------------------------------------------------------------------------- quirks


def test_hikvision_username_differs_from_the_from_user() -> None:
    # fixtures/sip/wild/hikvision/ipc-ds2cd5024-register-auth-username-differs.txt: From user ...0002, digest
    # username ...0088. Lookup is by the From user; HA1 hashes the username as sent.
    from_user, username = "34020000001320000002", "34020000001320000088"
    registrar, lookups = make({from_user: PASSWORD})
    d = authorized(registrar, register, user=from_user, username=username)
    assert (d.status, d.device_id) == (200, from_user)
    assert set(lookups.asked) == {from_user}


def test_sipp_style_digest_uri_is_accepted() -> None:
    # SIPp puts the server's address in the digest uri, not the Request-URI.
    registrar, _ = make()
    d = authorized(registrar, register, digest_uri="sip:127.0.0.1:5060")
    assert d.status == 200


def test_answer_without_qop_is_accepted() -> None:
    # RFC 2069-style devices (dahua/sd6c3230-register-auth.txt) ignore the offered qop.
    registrar, _ = make(qop=False)
    assert authorized(registrar, register).status == 200


def test_multiple_contacts_first_is_echoed_with_granted_expiry() -> None:
    registrar, _ = make()
    d = authorized(registrar, register, contact=f'"Cam, front" {CONTACT}, <sip:{DEVICE}@10.0.0.6:5060>')
    contact = h(d, "Contact")
    assert d.status == 200 and contact is not None
    assert contact.endswith(f"{CONTACT};expires=3600")
    assert "10.0.0.6" not in contact
