"""A raw-socket GB/T 28181 device that also accepts subscriptions (RFC 6665 notifier side), written here without
our SIP stack: it answers SUBSCRIBE with 200 + Expires + Contact (a To tag of its own per dialog), and sends NOTIFYs
in those dialogs with exact body bytes (GB2312 included), each waiting for its answer."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from tests.e2e.raw_device import RawDevice, _headers


@dataclass
class Dialog:
    call_id: str
    platform_tag: str  # the From tag of the platform's SUBSCRIBE
    device_tag: str  # our To tag
    platform_uri: str  # from its Contact
    event: str
    request: bytes  # the SUBSCRIBE that made (or last refreshed) it


class RawNotifier(RawDevice):
    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.grant = 600  # Expires put in our 200 to SUBSCRIBE
        self.silent: set[str] = set()  # methods we do not answer at all
        self.notify_first: bytes | None = None  # a NOTIFY body sent before the 200 of a new subscription
        self.dialogs: dict[str, Dialog] = {}  # by Call-ID
        self.subscribes: asyncio.Queue[bytes] = asyncio.Queue()
        self._notify_cseq = 100
        self._seen: set[tuple[str, str]] = set()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.startswith(b"SIP/2.0 "):
            super().datagram_received(data, addr)
            return
        start, fields, _ = _headers(data)
        method = start.split(" ", 1)[0]
        if method in self.silent:
            return
        if method != "SUBSCRIBE":
            super().datagram_received(data, addr)
            return
        call_id = fields["call-id"]
        if (call_id, fields["cseq"]) not in self._seen:  # a retransmission is answered again, not queued twice
            self._seen.add((call_id, fields["cseq"]))
            self.subscribes.put_nowait(data)
        dialog = self.dialogs.get(call_id)
        new = dialog is None
        if dialog is None:
            contact = fields.get("contact", "").strip("<>")
            platform_tag = fields["from"].split("tag=", 1)[1].split(";")[0]
            dialog = Dialog(call_id, platform_tag, secrets.token_hex(4), contact, fields.get("event", ""), data)
            self.dialogs[call_id] = dialog
        dialog.request = data
        if self.notify_first is not None and new:
            # RFC 6665 §4.1.2.4: the first NOTIFY may overtake the 200 (its answer lands in the response queue)
            assert self.transport is not None
            self.transport.sendto(self._notify_request(dialog, self.notify_first, "active;expires=600"), addr)
        host, port = self.local
        to = fields["to"] if ";tag=" in fields["to"] else f"{fields['to']};tag={dialog.device_tag}"
        answer = (
            f"SIP/2.0 200 OK\r\nVia: {fields['via']}\r\nFrom: {fields['from']}\r\nTo: {to}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {fields['cseq']}\r\nContact: <sip:{self.device_id}@{host}:{port}>\r\n"
            f"Expires: {self.grant}\r\nContent-Length: 0\r\n\r\n"
        )
        assert self.transport is not None
        self.transport.sendto(answer.encode(), addr)

    async def next_subscribe(self, timeout: float = 10.0) -> bytes:
        return await asyncio.wait_for(self.subscribes.get(), timeout)

    async def notify(self, dialog: Dialog, body: bytes, state: str = "active;expires=600") -> int:
        """A NOTIFY in ``dialog`` with these exact body bytes; returns the platform's status."""
        self._send(self._notify_request(dialog, body, state))
        status, _ = await self._response()
        return status

    def _notify_request(self, dialog: Dialog, body: bytes, state: str) -> bytes:
        self._notify_cseq += 1
        host, port = self.local
        server = f"{self.server[0]}:{self.server[1]}"
        head = (
            f"NOTIFY {dialog.platform_uri or 'sip:' + server} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};rport;branch=z9hG4bK{secrets.token_hex(6)}\r\n"
            f"From: <sip:{self.device_id}@3402000000>;tag={dialog.device_tag}\r\n"
            f"To: <sip:34020000002000000001@3402000000>;tag={dialog.platform_tag}\r\n"
            f"Call-ID: {dialog.call_id}\r\nCSeq: {self._notify_cseq} NOTIFY\r\nMax-Forwards: 70\r\n"
            f"Contact: <sip:{self.device_id}@{host}:{port}>\r\nEvent: {dialog.event}\r\n"
            f"Subscription-State: {state}\r\n"
            + ("Content-Type: Application/MANSCDP+xml\r\n" if body else "")
            + f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body
