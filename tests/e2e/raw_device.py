"""A GB/T 28181 device on a raw UDP socket, written here from the RFCs without our SIP stack: it registers with
digest (hashlib, RFC 2617 qop=auth), answers the platform's MESSAGEs with 200, and sends MANSCDP bodies as exact
bytes (GB2312 included), one MESSAGE at a time, each waiting for its 200 (GB/T 28181 App.M: serial packets)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets

SERVER_ID = "34020000002000000001"
DOMAIN = "3402000000"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _headers(data: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields.setdefault(name.strip().lower(), value.strip())
    return lines[0], fields, body


class RawDevice(asyncio.DatagramProtocol):
    def __init__(self, device_id: str, password: str, server: tuple[str, int]) -> None:
        self.device_id = device_id
        self.password = password
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None
        self.local: tuple[str, int] = ("127.0.0.1", 0)
        self._responses: asyncio.Queue[bytes] = asyncio.Queue()
        self.requests: asyncio.Queue[bytes] = asyncio.Queue()  # requests the platform sent us (answered 200)
        self._cseq = 1
        self.call_id = secrets.token_hex(8)

    @classmethod
    async def start(cls, device_id: str, password: str, server: tuple[str, int]) -> RawDevice:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_datagram_endpoint(
            lambda: cls(device_id, password, server), local_addr=("127.0.0.1", 0)
        )
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.local = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.startswith(b"SIP/2.0 "):
            self._responses.put_nowait(data)
            return
        _, fields, _ = _headers(data)
        self.requests.put_nowait(data)
        # 200 to every request (RFC 3261 §8.2.6: Via, From, To + tag, Call-ID, CSeq copied)
        answer = (
            f"SIP/2.0 200 OK\r\nVia: {fields['via']}\r\nFrom: {fields['from']}\r\nTo: {fields['to']};tag=raw1\r\n"
            f"Call-ID: {fields['call-id']}\r\nCSeq: {fields['cseq']}\r\nContent-Length: 0\r\n\r\n"
        )
        assert self.transport is not None
        self.transport.sendto(answer.encode(), addr)

    def _send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data, self.server)

    async def _response(self, timeout: float = 10.0) -> tuple[int, dict[str, str]]:
        data = await asyncio.wait_for(self._responses.get(), timeout)
        start, fields, _ = _headers(data)
        return int(start.split(" ")[1]), fields

    def _request(self, method: str, extra: str = "", body: bytes = b"", content_type: str | None = None) -> bytes:
        self._cseq += 1
        host, port = self.local
        head = (
            f"{method} sip:{SERVER_ID}@{DOMAIN} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};rport;branch=z9hG4bK{secrets.token_hex(6)}\r\n"
            f"From: <sip:{self.device_id}@{DOMAIN}>;tag=rawtag\r\n"
            f"To: <sip:{(self.device_id if method == 'REGISTER' else SERVER_ID)}@{DOMAIN}>\r\n"
            f"Call-ID: {self.call_id if method == 'REGISTER' else secrets.token_hex(8)}\r\n"
            f"CSeq: {self._cseq} {method}\r\nMax-Forwards: 70\r\nUser-Agent: raw test device\r\n{extra}"
            + (f"Content-Type: {content_type}\r\n" if content_type else "")
            + f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def register(self, expires: int = 3600) -> int:
        host, port = self.local
        contact = f"Contact: <sip:{self.device_id}@{host}:{port}>\r\nExpires: {expires}\r\n"
        self._send(self._request("REGISTER", contact))
        status, fields = await self._response()
        if status != 401:
            return status
        challenge = dict(re.findall(r'(\w+)="?([^",]+)"?', fields["www-authenticate"]))
        uri = f"sip:{SERVER_ID}@{DOMAIN}"
        ha1 = _md5(f"{self.device_id}:{challenge['realm']}:{self.password}")
        ha2 = _md5(f"REGISTER:{uri}")
        cnonce, nc = secrets.token_hex(4), "00000001"
        response = _md5(f"{ha1}:{challenge['nonce']}:{nc}:{cnonce}:auth:{ha2}")
        auth = (
            f'Authorization: Digest username="{self.device_id}", realm="{challenge["realm"]}", '
            f'nonce="{challenge["nonce"]}", uri="{uri}", response="{response}", algorithm=MD5, '
            f'qop=auth, nc={nc}, cnonce="{cnonce}"\r\n'
        )
        self._send(self._request("REGISTER", contact + auth))
        status, _ = await self._response()
        return status

    async def message(self, body: bytes) -> int:
        """One MANSCDP MESSAGE with these exact body bytes; returns the platform's status."""
        self._send(self._request("MESSAGE", body=body, content_type="Application/MANSCDP+xml"))
        status, _ = await self._response()
        return status

    async def next_request(self, timeout: float = 10.0) -> bytes:
        """The next request the platform sends us (already answered 200)."""
        return await asyncio.wait_for(self.requests.get(), timeout)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
