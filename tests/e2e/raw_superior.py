"""A superior platform on a raw UDP socket, written here from the RFCs without our SIP stack: it challenges
REGISTER with digest (RFC 2617, qop=auth) and checks the answer with hashlib, answers 200, records keepalives, sends
MANSCDP queries and collects the Response packets as exact bytes. ``down = True`` makes it drop everything (a
superior that is off), ``forget()`` makes it refuse keepalives with 403 as a restarted superior would.

For media (issue 7) it INVITEs a lower platform with a GB SDP offer it builds as text (``invite``), ACKs, CANCELs,
sends INFO and BYE in the dialog, answers the lower platform's BYE and in-dialog MESSAGE (MediaStatus) 200, and
``RtpSink`` receives the stream: RTP over UDP or RFC 4571 framed over TCP (it listens or connects), its SSRC read
from bytes 8-11 of each packet, PS bytes counted from the payloads (RFC 3550 §5.1)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import struct
import time
from dataclasses import dataclass, field

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
        self.calls: dict[str, Dialog] = {}  # our INVITEs by Call-ID
        self.byes: list[str] = []  # Call-IDs the lower platform ended with BYE
        self.dialog_messages: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()  # (Call-ID, body) in a dialog

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
            _, fields, _ = _headers(data)
            call = self.calls.get(fields.get("call-id", ""))
            (call.responses if call is not None else self._responses).put_nowait(data)
            return
        start, fields, body = _headers(data)
        method = start.split(" ")[0]
        if fields.get("call-id", "") in self.calls and method in ("BYE", "MESSAGE"):  # in one of our dialogs
            if method == "BYE":
                self.byes.append(fields["call-id"])
            else:
                self.dialog_messages.put_nowait((fields["call-id"], body))
            self._answer(fields, 200, "", addr)
            return
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
        self._answer(fields, status, extra, addr)

    def _answer(self, fields: dict[str, str], status: int, extra: str, addr: tuple[str, int]) -> None:
        to = fields["to"] if ";tag=" in fields["to"] else f"{fields['to']};tag=sup1"
        answer = (
            f"SIP/2.0 {status} X\r\nVia: {fields['via']}\r\nFrom: {fields['from']}\r\nTo: {to}\r\n"
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

    # ------------------------------------------------------------------ media (INVITE / ACK / CANCEL / INFO / BYE)
    def invite(self, to: tuple[str, int], lower_id: str, channel: str, offer: str, *, subject_seq: str = "0") -> Dialog:
        """Send an INVITE for ``channel`` with the SDP ``offer`` (text, LF lines made CRLF); returns its dialog,
        whose responses arrive in ``dialog.responses``."""
        assert self.transport is not None
        call = Dialog(to=to, lower_id=lower_id, channel=channel, call_id=f"up-{secrets.token_hex(8)}")
        self.calls[call.call_id] = call
        y = re.search(r"^y=(\d+)", offer, re.M)
        body = offer.strip().replace("\r\n", "\n").replace("\n", "\r\n") + "\r\n"
        call.branch = f"z9hG4bK{secrets.token_hex(6)}"
        head = (
            f"INVITE sip:{channel}@{to[0]}:{to[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch={call.branch}\r\n"
            f"From: <sip:{self.sip_id}@{self.realm}>;tag={call.from_tag}\r\nTo: <sip:{channel}@{lower_id[:10]}>\r\n"
            f"Call-ID: {call.call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
            f"Contact: <sip:{self.sip_id}@127.0.0.1:{self.port}>\r\n"
            f"Subject: {channel}:{y.group(1) if y else '0'},{self.sip_id}:{subject_seq}\r\n"
            f"Content-Type: APPLICATION/SDP\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        call.invite_head = head
        self.transport.sendto(head.encode() + body.encode(), to)
        return call

    async def final(self, call: Dialog, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
        """The INVITE's final response (provisionals are kept in ``call.provisional``); learns the To tag."""
        deadline = time.monotonic() + timeout
        for _ in range(1000):
            data = await asyncio.wait_for(call.responses.get(), max(0.1, deadline - time.monotonic()))
            start, fields, body = _headers(data)
            status = int(start.split(" ")[1])
            if not fields.get("cseq", "").endswith("INVITE"):
                continue  # the answer to our CANCEL
            if status < 200:
                call.provisional.append(status)
                continue
            m = re.search(r";tag=([^;>\s]+)", fields["to"])
            call.to_tag = m.group(1) if m else ""
            return status, fields, body
        raise AssertionError("no final response")

    def ack(self, call: Dialog) -> None:
        self._in_dialog(call, "ACK", cseq=1)

    def cancel(self, call: Dialog) -> None:
        """CANCEL (RFC 3261 §9.1): the INVITE's Request-URI, Call-ID, From, To (no tag) and branch."""
        assert self.transport is not None
        head = (
            f"CANCEL sip:{call.channel}@{call.to[0]}:{call.to[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch={call.branch}\r\n"
            f"From: <sip:{self.sip_id}@{self.realm}>;tag={call.from_tag}\r\n"
            f"To: <sip:{call.channel}@{call.lower_id[:10]}>\r\nCall-ID: {call.call_id}\r\nCSeq: 1 CANCEL\r\n"
            f"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        self.transport.sendto(head.encode(), call.to)

    async def request(self, call: Dialog, method: str, body: bytes = b"", content_type: str = "") -> tuple[int, bytes]:
        """BYE or INFO in the dialog; returns the final status and body."""
        call.cseq += 1
        self._in_dialog(call, method, cseq=call.cseq, body=body, content_type=content_type)
        for _ in range(100):
            data = await asyncio.wait_for(call.responses.get(), 15)
            start, fields, rbody = _headers(data)
            if fields.get("cseq", "") == f"{call.cseq} {method}" and int(start.split(" ")[1]) >= 200:
                return int(start.split(" ")[1]), rbody
        raise AssertionError(f"no answer to {method}")

    def _in_dialog(self, call: Dialog, method: str, *, cseq: int, body: bytes = b"", content_type: str = "") -> None:
        assert self.transport is not None
        ctype = f"Content-Type: {content_type}\r\n" if content_type else ""
        head = (
            f"{method} sip:{call.channel}@{call.to[0]}:{call.to[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch=z9hG4bK{secrets.token_hex(6)}\r\n"
            f"From: <sip:{self.sip_id}@{self.realm}>;tag={call.from_tag}\r\n"
            f"To: <sip:{call.channel}@{call.lower_id[:10]}>;tag={call.to_tag}\r\nCall-ID: {call.call_id}\r\n"
            f"CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n{ctype}Content-Length: {len(body)}\r\n\r\n"
        )
        self.transport.sendto(head.encode() + body, call.to)


@dataclass
class Dialog:
    """One INVITE of the raw superior."""

    to: tuple[str, int]
    lower_id: str
    channel: str
    call_id: str
    from_tag: str = field(default_factory=lambda: secrets.token_hex(4))
    to_tag: str = ""
    branch: str = ""
    cseq: int = 1
    invite_head: str = ""
    provisional: list[int] = field(default_factory=list)
    responses: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)


def offer(kind: str, port: int, ssrc: str, *, transport: str = "udp", start: int = 0, end: int = 0,
          channel: str = "", speed: int = 1, own_id: str = "44000000002000000001") -> str:
    """A superior's GB SDP offer (App. G; spec digest §10.1) as text; ``transport`` named from the superior's side:
    udp, tcp-passive (it listens, the lower connects), tcp-active (it connects)."""
    proto = "RTP/AVP" if transport == "udp" else "TCP/RTP/AVP"
    lines = ["v=0", f"o={own_id} 0 0 IN IP4 127.0.0.1", f"s={kind}"]
    if kind != "Play":
        lines.append(f"u={channel}:0")
    lines += ["c=IN IP4 127.0.0.1", f"t={start} {end}", f"m=video {port} {proto} 96 98", "a=recvonly",
              "a=rtpmap:96 PS/90000", "a=rtpmap:98 H264/90000"]
    if kind == "Download":
        lines.append(f"a=downloadspeed:{speed}")
    if transport != "udp":
        lines += [f"a=setup:{transport.split('-')[1]}", "a=connection:new"]
    lines += [f"y={ssrc}", "f="]
    return "\n".join(lines)


class RtpSink(asyncio.DatagramProtocol):
    """The superior's media receiver: RTP packets counted per SSRC, PS payload bytes, whether a PS pack header
    (00 00 01 BA) came. UDP (``start_udp``), or RFC 4571 over TCP where it listens (``start_tcp_listen``) or
    connects to the lower platform (``connect_tcp``)."""

    def __init__(self) -> None:
        self.port = 0
        self.packets = 0
        self.ps_bytes = 0
        self.ssrcs: dict[int, int] = {}
        self.pack_headers = 0
        self.malformed = 0
        self._closers: list[object] = []

    @classmethod
    async def start_udp(cls) -> RtpSink:
        loop = asyncio.get_running_loop()
        transport, sink = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        sink.port = transport.get_extra_info("sockname")[1]
        sink._closers.append(transport)
        return sink

    @classmethod
    async def start_tcp_listen(cls) -> RtpSink:
        sink = cls()
        server = await asyncio.start_server(sink._read_stream, "127.0.0.1", 0)
        sink.port = server.sockets[0].getsockname()[1]
        sink._closers.append(server)
        return sink

    async def connect_tcp(self, host: str, port: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        self._closers.append(writer)
        self._closers.append(asyncio.get_running_loop().create_task(self._read_stream(reader, writer)))

    async def _read_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._closers.append(writer)
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                self.datagram_received(await reader.readexactly(size), ("", 0))
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12 or data[0] >> 6 != 2:
            self.malformed += 1
            return
        csrc = data[0] & 0x0F
        ssrc = struct.unpack("!I", data[8:12])[0]
        payload = data[12 + 4 * csrc:]
        self.packets += 1
        self.ssrcs[ssrc] = self.ssrcs.get(ssrc, 0) + 1
        self.ps_bytes += len(payload)
        self.pack_headers += payload.startswith(b"\x00\x00\x01\xba")

    def close(self) -> None:
        for c in self._closers:
            close = getattr(c, "close", None) or getattr(c, "cancel", None)
            if close is not None:
                close()
