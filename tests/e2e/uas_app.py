"""A small registrar/UAS built on the stack, for end-to-end tests and the echo benchmark.

REGISTER with digest (one password for every device) -> 401 / 200 with Contact, Expires and Date;
MESSAGE, OPTIONS, BYE -> 200; INVITE -> 200 with the offered SDP echoed; anything else -> 405.

Run standalone: ``python -m tests.e2e.uas_app --udp 127.0.0.1:5070 --tcp 127.0.0.1:5070``; it prints
``READY <udp> <tcp>`` once listening. Stops on SIGTERM/SIGINT and prints its counters as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from dataclasses import dataclass, field

from sip.aio import SipRunner, tune_gc
from sip.auth import DigestServer
from sip.endpoint import Endpoint, EndpointConfig, Event, RequestReceived
from sip.timers import TimerConfig


@dataclass
class Registration:
    contact: str
    expires: int
    peer: str
    at: float


@dataclass
class UasApp:
    endpoint: Endpoint
    password: str = "12345678"
    realm: str = "3402000000"
    qop: bool = True
    registrations: dict[str, Registration] = field(default_factory=dict)
    messages: list[tuple[str, str, bytes]] = field(default_factory=list)  # (from user, content type, body)
    counters: dict[str, int] = field(default_factory=dict)
    keep_messages: int = 1000

    def __post_init__(self) -> None:
        self.auth = DigestServer(b"test-secret-0123456789", self.realm, offer_qop=self.qop)

    def count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def handle(self, event: Event) -> None:
        if not isinstance(event, RequestReceived) or event.tx is None:
            return
        req = event.request
        now = asyncio.get_running_loop().time()
        self.count(req.method)
        if req.method == "REGISTER":
            user = req.from_.user or ""
            result = self.auth.verify(
                "REGISTER", req.headers.get("authorization"), user, lambda _u, _n: self.password, time.time()
            )
            if not result.ok:
                self.count(f"auth:{result.reason}")
                if result.status == 401:
                    challenge = self.auth.challenge(time.time(), stale=result.stale)
                    self.endpoint.reply(event, 401, headers=[("WWW-Authenticate", challenge)], now=now)
                else:
                    self.endpoint.reply(event, result.status or 403, now=now)
                return
            expires = req.expires if req.expires is not None else 3600
            contacts = req.contacts
            if expires == 0 or (contacts and contacts[0].expires == 0):
                self.registrations.pop(user, None)
                self.endpoint.reply(event, 200, headers=[("Expires", "0")], now=now)
                return
            contact = req.headers.get("contact") or ""
            self.registrations[user] = Registration(contact, expires, str(event.peer), time.time())
            date = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())
            headers = [("Contact", contact), ("Expires", str(expires)), ("Date", date)]
            self.endpoint.reply(event, 200, headers=headers, now=now)
        elif req.method == "MESSAGE":
            if len(self.messages) < self.keep_messages:
                self.messages.append((req.from_.user or "", req.headers.get("content-type") or "", req.body))
            self.endpoint.reply(event, 200, now=now)
        elif req.method in ("OPTIONS", "BYE", "NOTIFY", "INFO"):
            self.endpoint.reply(event, 200, now=now)
        elif req.method == "INVITE":
            headers = [("Contact", f"<sip:uas@{event.local[0] if event.local else '127.0.0.1'}>")]
            if req.body:
                headers.append(("Content-Type", req.headers.get("content-type") or "application/sdp"))
            self.endpoint.reply(event, 200, headers=headers, body=req.body, now=now)
        else:
            self.endpoint.reply(
                event, 405, headers=[("Allow", "REGISTER, MESSAGE, OPTIONS, INVITE, ACK, BYE")], now=now
            )


async def start(
    udp: tuple[str, int] | None, tcp: tuple[str, int] | None, *, qop: bool = True, timers: TimerConfig | None = None
) -> tuple[UasApp, SipRunner, tuple[str, int] | None, tuple[str, int] | None]:
    endpoint = Endpoint(EndpointConfig(timers=timers or TimerConfig(), user_agent="gb28181-test-uas"))
    app = UasApp(endpoint, qop=qop)
    runner = SipRunner(endpoint, app.handle)
    bound_udp = await runner.listen_udp(*udp) if udp else None
    bound_tcp = await runner.listen_tcp(*tcp) if tcp else None
    return app, runner, bound_udp, bound_tcp


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


async def _main(args: argparse.Namespace) -> None:
    app, runner, u, t = await start(
        _addr(args.udp) if args.udp else None, _addr(args.tcp) if args.tcp else None, qop=not args.no_qop
    )
    tune_gc()  # the same policy as the platform (gb28181/server.py)
    print("READY", f"{u[0]}:{u[1]}" if u else "-", f"{t[0]}:{t[1]}" if t else "-", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.close()
    print(
        json.dumps({"counters": app.counters, "registrations": len(app.registrations), "endpoint": app.endpoint.stats}),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--udp")
    parser.add_argument("--tcp")
    parser.add_argument("--no-qop", action="store_true")
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.run(_main(args))
    else:
        asyncio.run(_main(args))
    sys.exit(0)


if __name__ == "__main__":
    main()
