"""Building blocks for the simulator's unit tests: a device on a fake clock, platform requests and answers built
by hand (no sockets), and a digest server standing in for the platform's registrar."""

from __future__ import annotations

from gb28181.simulator.device import Options, Send, ServerInfo, SimDevice
from gb28181.simulator.inventory import build
from gb28181.simulator.profile import load_profile
from sip.auth import DigestServer
from sip.headers import Headers
from sip.message import Request, Response, make_response

SERVER = ServerInfo("34020000002000000001", "3402000000", "127.0.0.1", 5060)
PASSWORD = "12345678"
PREFIX = "3402000000"


def device(profile: str = "tianwang-ipc", index: int = 0, **options: object) -> SimDevice:
    p = load_profile(profile)
    d = SimDevice(build(p, index, PREFIX), SERVER, PASSWORD, p.transport, Options(**options))  # type: ignore[arg-type]
    d.local = ("127.0.0.1", 40000 + index)
    return d


def sends(d: SimDevice, purpose: str | None = None) -> list[Request]:
    return [o.request for o in d.drain() if isinstance(o, Send) and (purpose is None or o.purpose == purpose)]


def answer(request: Request, status: int, headers: list[tuple[str, str]] | None = None) -> Response:
    return make_response(request, status, to_tag="plat1", headers=headers)


def register(d: SimDevice, auth: DigestServer, now: float = 0.0, expires: int = 3600) -> None:
    """Power on and run the 401 / 200 exchange as the platform would."""
    d.power_on(now)
    (first,) = sends(d, "register")
    d.on_answer("register", answer(first, 401, [("WWW-Authenticate", auth.challenge(now))]), now)
    (second,) = sends(d, "register")
    d.on_answer("register", answer(second, 200, [("Expires", str(expires))]), now)


def platform_request(
    method: str, to_user: str, body: bytes = b"", headers: list[tuple[str, str]] | None = None
) -> Request:
    items = [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bKplat"),
        ("From", f"<sip:{SERVER.id}@{SERVER.domain}>;tag=pf1"),
        ("To", f"<sip:{to_user}@{SERVER.domain}>"),
        ("Call-ID", f"call-{method}-{to_user}"),
        ("CSeq", f"1 {method}"),
        ("Contact", f"<sip:{SERVER.id}@127.0.0.1:5060>"),
        ("Content-Type", "Application/MANSCDP+xml"),
        *(headers or []),
    ]
    return Request(method, f"sip:{to_user}@127.0.0.1:40000", Headers(items), body)


def digest() -> DigestServer:
    return DigestServer(b"k" * 32, "3402000000", nonce_ttl=300, offer_qop=True)
