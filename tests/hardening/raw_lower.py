"""A GB/T 28181 lower platform (NVR) on a raw UDP socket or one raw TCP connection, written here from the RFCs without
our SIP stack: digest REGISTER (hashlib, RFC 2617 qop=auth), 200 to every request the platform sends (its Catalog
query), and Catalog Response packets sent serially, each waiting for its 200 (GB/T 28181-2022 App. M). TCP framing
by Content-Length (RFC 3261 §18.3); over UDP a MESSAGE is retransmitted as RFC 3261 §17.1.2 does."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import secrets
from dataclasses import dataclass, field

SERVER_ID = "34020000002000000001"
DOMAIN = "3402000000"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@dataclass
class Msg:
    start: str
    headers: dict[str, str]  # lower-case name -> first value
    body: bytes

    @property
    def status(self) -> int:
        return int(self.start.split(" ", 2)[1]) if self.start.startswith("SIP/2.0 ") else 0


def parse(data: bytes) -> Msg:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return Msg(lines[0], headers, body)


def catalog_packets(lower_id: str, sn: int, items: list[tuple[str, str]], per_packet: int) -> list[bytes]:
    """``items`` (channel ID, name) as serial Catalog Response bodies of ``per_packet`` items, SumNum the total,
    GB2312 as lower platforms send them (A.2.6.4)."""
    out = []
    for i in range(0, len(items), per_packet):
        chunk = items[i : i + per_packet]
        rows = "".join(
            f"<Item><DeviceID>{cid}</DeviceID><Name>{name}</Name><Manufacturer>Raw</Manufacturer><Model>NVR</Model>"
            f"<Owner>0</Owner><CivilCode>340200</CivilCode><Address>test</Address><Parental>0</Parental>"
            f"<ParentID>{lower_id}</ParentID><SafetyWay>0</SafetyWay><RegisterWay>1</RegisterWay><Secrecy>0</Secrecy>"
            f"<Status>ON</Status></Item>"
            for cid, name in chunk
        )
        xml = (
            f'<?xml version="1.0" encoding="GB2312"?>\r\n<Response><CmdType>Catalog</CmdType><SN>{sn}</SN>'
            f"<DeviceID>{lower_id}</DeviceID><SumNum>{len(items)}</SumNum>"
            f'<DeviceList Num="{len(chunk)}">{rows}</DeviceList></Response>\r\n'
        )
        out.append(xml.encode("gb2312"))
    return out


@dataclass
class RawLower:
    device_id: str
    password: str
    transport: str  # "UDP" | "TCP"
    server: tuple[str, int]
    responses: asyncio.Queue[Msg] = field(default_factory=asyncio.Queue)
    requests: asyncio.Queue[Msg] = field(default_factory=asyncio.Queue)
    local: tuple[str, int] = ("127.0.0.1", 0)
    cseq: int = 1
    call_id: str = field(default_factory=lambda: secrets.token_hex(8))
    answer_requests: bool = True  # False: the platform's requests get no 200 (as if every one were lost)
    _udp: asyncio.DatagramTransport | None = None
    _writer: asyncio.StreamWriter | None = None
    _reader: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        """Open the UDP socket, or a new TCP connection (a device whose connection dropped opens another)."""
        self.close()
        loop = asyncio.get_running_loop()
        if self.transport == "UDP":
            outer = self

            class Proto(asyncio.DatagramProtocol):
                def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                    outer._incoming(data)

            self._udp, _ = await loop.create_datagram_endpoint(Proto, local_addr=("127.0.0.1", 0))
            self.local = self._udp.get_extra_info("sockname")[:2]
        else:
            reader, self._writer = await asyncio.open_connection(*self.server)
            self.local = self._writer.get_extra_info("sockname")[:2]
            self._reader = asyncio.create_task(self._read_tcp(reader))

    async def _read_tcp(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            for _ in range(10**6):  # bounded: ends with the connection
                head = await reader.readuntil(b"\r\n\r\n")
                if head.strip() == b"":
                    continue  # CRLF keepalives (RFC 5626 §3.5.1)
                match = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*([0-9]+)", head)
                body = await reader.readexactly(int(match.group(1))) if match else b""
                self._incoming(head + body)

    def _incoming(self, data: bytes) -> None:
        msg = parse(data)
        if msg.status:
            self.responses.put_nowait(msg)
            return
        if not msg.start or "via" not in msg.headers:
            return
        self.requests.put_nowait(msg)
        if not self.answer_requests:
            return
        h = msg.headers  # 200 to every request (RFC 3261 §8.2.6: Via, From, To + tag, Call-ID, CSeq copied)
        self._send(
            f"SIP/2.0 200 OK\r\nVia: {h['via']}\r\nFrom: {h['from']}\r\nTo: {h['to']};tag=lower1\r\n"
            f"Call-ID: {h['call-id']}\r\nCSeq: {h['cseq']}\r\nContent-Length: 0\r\n\r\n".encode()
        )

    def _send(self, data: bytes) -> None:
        if self._udp is not None:
            self._udp.sendto(data, self.server)
        elif self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    def _request(self, method: str, extra: str = "", body: bytes = b"") -> bytes:
        self.cseq += 1
        host, port = self.local
        return (
            f"{method} sip:{SERVER_ID}@{DOMAIN} SIP/2.0\r\n"
            f"Via: SIP/2.0/{self.transport} {host}:{port};rport;branch=z9hG4bK{secrets.token_hex(8)}\r\n"
            f"From: <sip:{self.device_id}@{DOMAIN}>;tag=lowertag\r\n"
            f"To: <sip:{self.device_id if method == 'REGISTER' else SERVER_ID}@{DOMAIN}>\r\n"
            f"Call-ID: {self.call_id if method == 'REGISTER' else secrets.token_hex(10)}\r\n"
            f"CSeq: {self.cseq} {method}\r\nMax-Forwards: 70\r\nUser-Agent: raw lower platform\r\n{extra}"
            + ("Content-Type: Application/MANSCDP+xml\r\n" if body else "")
            + f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def _transact(self, data: bytes, timeout: float) -> Msg:
        """Send and wait for the final response to it (matched by CSeq: a retransmission's late answers are dropped);
        over UDP retransmit at 0.5 s doubling (RFC 3261 §17.1.2)."""
        cseq = f"{self.cseq} "
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        wait = 0.5 if self.transport == "UDP" else timeout
        for _ in range(64):  # bounded by the deadline
            self._send(data)
            resend = min(deadline, loop.time() + wait)
            wait = min(wait * 2, 4.0)
            for _ in range(1000):  # responses until this retransmission interval ends
                try:
                    msg = await asyncio.wait_for(self.responses.get(), max(0.0, resend - loop.time()))
                except TimeoutError:
                    break
                if msg.status >= 200 and msg.headers.get("cseq", "").startswith(cseq):
                    return msg
            if loop.time() >= deadline:
                break
        raise TimeoutError(f"no final response within {timeout} s")

    async def register(self, expires: int = 3600, timeout: float = 10.0) -> int:
        host, port = self.local
        params = ";transport=tcp" if self.transport == "TCP" else ""
        contact = f"Contact: <sip:{self.device_id}@{host}:{port}{params}>\r\nExpires: {expires}\r\n"
        first = await self._transact(self._request("REGISTER", contact), timeout)
        if first.status != 401:
            return first.status
        challenge = dict(re.findall(r'(\w+)="?([^",]+)"?', first.headers["www-authenticate"]))
        uri = f"sip:{SERVER_ID}@{DOMAIN}"
        ha1 = _md5(f"{self.device_id}:{challenge['realm']}:{self.password}")
        ha2 = _md5(f"REGISTER:{uri}")
        cnonce, nc = secrets.token_hex(4), "00000001"
        digest = _md5(f"{ha1}:{challenge['nonce']}:{nc}:{cnonce}:auth:{ha2}")
        auth = (
            f'Authorization: Digest username="{self.device_id}", realm="{challenge["realm"]}", '
            f'nonce="{challenge["nonce"]}", uri="{uri}", response="{digest}", algorithm=MD5, qop=auth, '
            f'nc={nc}, cnonce="{cnonce}"\r\n'
        )
        return (await self._transact(self._request("REGISTER", contact + auth), timeout)).status

    async def message(self, body: bytes, timeout: float = 15.0) -> int:
        """One MANSCDP MESSAGE; the platform's final status."""
        return (await self._transact(self._request("MESSAGE", body=body), timeout)).status

    async def catalog_query(self, timeout: float = 15.0) -> int:
        """The SN of the next Catalog query the platform sends (already answered 200)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for _ in range(1000):  # bounded: other requests are skipped
            msg = await asyncio.wait_for(self.requests.get(), max(0.01, deadline - loop.time()))
            found = re.search(rb"<CmdType>\s*Catalog\s*</CmdType>.*?<SN>\s*([0-9]+)\s*</SN>", msg.body, re.S)
            if msg.start.startswith("MESSAGE ") and found:
                return int(found.group(1))
        raise AssertionError("no Catalog query")

    def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
