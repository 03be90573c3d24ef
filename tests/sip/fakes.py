"""Helpers for driving the sans-IO stack by hand: raw messages, a fake clock, an endpoint harness.

The clock is a plain float the test advances; nothing sleeps and nothing opens a socket.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sip.endpoint import Endpoint, EndpointConfig, Event, Peer, Transmit
from sip.message import Request, Response, make_response
from sip.parser import parse_message
from sip.serializer import serialize
from sip.timers import TimerConfig

PLATFORM = "34020000002000000001"
DEVICE = "34020000001320000001"
DEV_UDP = Peer("UDP", "192.168.1.10", 5060)
DEV_TCP = Peer("TCP", "192.168.1.10", 40000)
LOCAL = ("10.0.0.1", 5060)
# Binary fractions keep the expected schedules exact in floating point.
FAST = TimerConfig(t1=0.25, t2=1.0, t4=2.0, timer_d=8.0)


def raw_request(
    method: str,
    *,
    uri: str = f"sip:{PLATFORM}@3402000000",
    via: str = "SIP/2.0/UDP 192.168.1.10:5060",
    branch: str | None = "z9hG4bK-dev-1",
    rport: bool = True,
    call_id: str = "call-1@192.168.1.10",
    from_tag: str = "devtag",
    to_tag: str | None = None,
    cseq: int = 1,
    cseq_method: str | None = None,
    contact: str | None = f"<sip:{DEVICE}@192.168.1.10:5060>",
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> bytes:
    """A request as a device would send it (CRLF line ends, Content-Length)."""
    params = (";rport" if rport else "") + (f";branch={branch}" if branch is not None else "")
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: {via}{params}",
        f"From: <sip:{DEVICE}@3402000000>;tag={from_tag}",
        f"To: <sip:{PLATFORM}@3402000000>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {cseq_method or method}",
        "Max-Forwards: 70",
    ]
    if contact is not None:
        lines.append(f"Contact: {contact}")
    lines.extend(f"{k}: {v}" for k, v in headers)
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def parse_request(data: bytes) -> Request:
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def parse_response(data: bytes) -> Response:
    msg = parse_message(data)
    assert isinstance(msg, Response)
    return msg


def answer(
    request: Request | bytes,
    status: int,
    *,
    to_tag: str | None = "uastag",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> bytes:
    """The bytes a peer would answer ``request`` with (Via, From, To, Call-ID, CSeq copied)."""
    if isinstance(request, bytes):
        request = parse_request(request)
    return serialize(make_response(request, status, to_tag=to_tag, headers=headers, body=body))


@dataclass
class Harness:
    """An endpoint plus the fake clock, with the outputs and events split out for assertions."""

    endpoint: Endpoint
    now: float = 0.0
    fired: list[float] = field(default_factory=list)  # every time handle_timer ran

    @classmethod
    def make(cls, timers: TimerConfig = FAST, **kwargs: object) -> Harness:
        config = EndpointConfig(timers=timers, default_local=LOCAL)
        return cls(Endpoint(config, **kwargs))  # type: ignore[arg-type]

    def recv(self, data: bytes, peer: Peer = DEV_UDP) -> None:
        self.endpoint.receive(data, peer, self.now)

    def out(self) -> list[Transmit]:
        return self.endpoint.outgoing()

    def sent(self) -> list[Request | Response]:
        """Parsed messages taken from outgoing() (close requests are not messages)."""
        return [parse_message(t.data) for t in self.endpoint.outgoing() if not t.close]

    def events(self) -> list[Event]:
        out = []
        while (event := self.endpoint.next_event()) is not None:
            out.append(event)
        return out

    def advance(self, until: float) -> list[tuple[float, Transmit]]:
        """Run every deadline up to ``until`` in order, as an adapter's timer would; return what was sent
        and when. Checks the contract on the way: a handled deadline never stays due."""
        sent: list[tuple[float, Transmit]] = []
        ep = self.endpoint
        while (deadline := ep.next_deadline()) is not None and deadline <= until:
            assert deadline >= self.now, f"deadline {deadline} left in the past (now {self.now})"
            self.now = deadline
            ep.handle_timer(deadline)
            self.fired.append(deadline)
            after = ep.next_deadline()
            assert after is None or after > deadline, f"handle_timer({deadline}) left {after} due"
            sent.extend((deadline, t) for t in ep.outgoing())
        self.now = max(self.now, until)
        return sent
