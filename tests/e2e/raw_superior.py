"""A superior platform on a raw UDP socket, written here from the RFCs without our SIP stack: it challenges
REGISTER with digest (RFC 2617, qop=auth) and checks the answer with hashlib, answers 200, records keepalives, sends
MANSCDP queries and collects the Response packets as exact bytes. ``down = True`` makes it drop everything (a
superior that is off), ``forget()`` makes it refuse keepalives with 403 as a restarted superior would."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time

from tests.e2e.raw_device import _headers


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class RawSuperior(asyncio.DatagramProtocol):
    def __init__(self, sip_id: str, password: str) -> None:
        self.sip_id = sip_id
        self.realm = sip_id[:10]
        self.password = password
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.down = False
        self.known: set[str] = set()  # IDs registered with us now
        self.registrations: list[tuple[float, str, int]] = []  # (monotonic time, ID, Expires) of authorised ones
        self.bad_auth = 0
        self.keepalives: list[tuple[float, bytes]] = []
        self.messages: asyncio.Queue[bytes] = asyncio.Queue()  # other MESSAGE bodies (Responses), answered 200
        self.notifies: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()  # NOTIFYs (answered 200)
        self.refused_keepalives = 0
        self._responses: asyncio.Queue[bytes] = asyncio.Queue()
        self.lower: tuple[str, int] | None = None

    @classmethod
    async def start(cls, sip_id: str, password: str) -> RawSuperior:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_datagram_endpoint(lambda: cls(sip_id, password), local_addr=("127.0.0.1", 0))
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.port = transport.get_extra_info("sockname")[1]

    def forget(self) -> None:
        """A restart: every registration is gone."""
        self.known.clear()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.down:
            return
        if data.startswith(b"SIP/2.0 "):
            self._responses.put_nowait(data)
            return
        start, fields, body = _headers(data)
        method = start.split(" ")[0]
        user = re.search(r"sip:(\d+)@", fields["from"]).group(1)  # type: ignore[union-attr]
        extra = ""
        if method == "REGISTER":
            status, extra = self._register(fields, user)
            self.lower = addr
        elif method == "MESSAGE" and b"<CmdType>Keepalive</CmdType>" in body:
            status = 200 if user in self.known else 403
            if status == 200:
                self.keepalives.append((time.monotonic(), body))
            else:
                self.refused_keepalives += 1
        elif method == "MESSAGE":
            status = 200
            self.messages.put_nowait(body)
        elif method == "NOTIFY":
            status = 200
            self.notifies.put_nowait((fields, body))
        else:
            status = 405
        answer = (
            f"SIP/2.0 {status} X\r\nVia: {fields['via']}\r\nFrom: {fields['from']}\r\nTo: {fields['to']};tag=sup1\r\n"
            f"Call-ID: {fields['call-id']}\r\nCSeq: {fields['cseq']}\r\n{extra}Content-Length: 0\r\n\r\n"
        )
        assert self.transport is not None
        self.transport.sendto(answer.encode(), addr)

    def _register(self, fields: dict[str, str], user: str) -> tuple[int, str]:
        expires = int(fields.get("expires", "3600"))
        auth = fields.get("authorization")
        if auth is None:
            nonce = secrets.token_hex(8)
            return 401, f'WWW-Authenticate: Digest realm="{self.realm}", nonce="{nonce}", qop="auth", algorithm=MD5\r\n'
        p = dict(re.findall(r'(\w+)="?([^",]+)"?', auth))
        ha1 = _md5(f"{p['username']}:{self.realm}:{self.password}")
        ha2 = _md5(f"REGISTER:{p['uri']}")
        expected = _md5(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:auth:{ha2}")
        if p.get("response") != expected or p["username"] != user:
            self.bad_auth += 1
            return 403, ""
        self.registrations.append((time.monotonic(), user, expires))
        if expires:
            self.known.add(user)
        else:
            self.known.discard(user)
        return 200, f"Expires: {expires}\r\n"

    async def query(self, to: tuple[str, int], lower_id: str, body: bytes) -> int:
        """Send a MANSCDP MESSAGE to the lower platform; returns its status."""
        assert self.transport is not None
        head = (
            f"MESSAGE sip:{lower_id}@{to[0]}:{to[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch=z9hG4bK{secrets.token_hex(6)}\r\n"
            f"From: <sip:{self.sip_id}@{self.realm}>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:{lower_id}@{lower_id[:10]}>\r\nCall-ID: {secrets.token_hex(8)}\r\nCSeq: 1 MESSAGE\r\n"
            f"Max-Forwards: 70\r\nContent-Type: Application/MANSCDP+xml\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.transport.sendto(head.encode() + body, to)
        data = await asyncio.wait_for(self._responses.get(), 10)
        return int(data.split(b" ")[1])

    async def subscribe(
        self, to: tuple[str, int], lower_id: str, expires: int = 600, cmd_type: str = "Catalog",
        event: str = "Catalog;id=7",
    ) -> tuple[int, dict[str, str]]:
        """A SUBSCRIBE (App.N, RFC 6665): Catalog by default, or Alarm / MobilePosition with ``event``
        ``presence``; returns the lower platform's status and response headers."""
        assert self.transport is not None
        body = (f'<?xml version="1.0" encoding="GB2312"?>\r\n<Query><CmdType>{cmd_type}</CmdType><SN>1</SN>'
                f"<DeviceID>{lower_id}</DeviceID></Query>\r\n").encode()  # fmt: skip
        head = (
            f"SUBSCRIBE sip:{lower_id}@{to[0]}:{to[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch=z9hG4bK{secrets.token_hex(6)}\r\n"
            f"From: <sip:{self.sip_id}@{self.realm}>;tag=subtag\r\nTo: <sip:{lower_id}@{lower_id[:10]}>\r\n"
            f"Call-ID: sub-{secrets.token_hex(8)}\r\nCSeq: 1 SUBSCRIBE\r\nMax-Forwards: 70\r\n"
            f"Contact: <sip:{self.sip_id}@127.0.0.1:{self.port}>\r\nEvent: {event}\r\nExpires: {expires}\r\n"
            f"Content-Type: Application/MANSCDP+xml\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.transport.sendto(head.encode() + body, to)
        data = await asyncio.wait_for(self._responses.get(), 10)
        start, fields, _ = _headers(data)
        return int(start.split(" ")[1]), fields

    async def wait_for(self, predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"superior: timed out waiting for {what}")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
