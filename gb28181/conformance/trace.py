"""A bounded per-device SIP trace for conformance runs: every request and response to or from the device under
test, as parsed messages with their time, while a run is active (issue 11).

``TracingEndpoint`` is the platform's endpoint, tapped (``sip.endpoint.Tap``) on its way in (parsed messages) and
on its way out (the bytes it sends) while a trace is armed; with none armed no tap is added.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sip.endpoint import Endpoint
from sip.errors import RemoteProtocolError
from sip.events import Peer, Transmit
from sip.message import Request, Response
from sip.parser import parse_message

MAX_ENTRIES = 2000  # bounded: a catalog of 1,000 items one per MESSAGE plus its 200s
MAX_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class TraceEntry:
    at: float  # monotonic seconds
    direction: str  # "in" (from the device) or "out" (to it)
    peer: str  # "UDP:127.0.0.1:5060"
    message: Request | Response

    @property
    def is_request(self) -> bool:
        return isinstance(self.message, Request)

    @property
    def method(self) -> str:
        """The request's method, or the CSeq method a response answers."""
        m = self.message
        return m.method if isinstance(m, Request) else m.cseq.method

    @property
    def status(self) -> int | None:
        return self.message.status if isinstance(self.message, Response) else None

    def excerpt(self, body_chars: int = 600) -> str:
        """Start line, headers and the start of the body, for a report's evidence."""
        m = self.message
        start = f"{m.method} {m.uri}" if isinstance(m, Request) else f"SIP/2.0 {m.status} {m.reason}"
        lines = [f"[{self.direction} {self.peer} t={self.at:.3f}] {start}"]
        lines += [f"{name}: {value}" for name, value in m.headers.items()]
        if m.body:
            text = m.body[:body_chars].decode("utf-8", errors="replace")
            lines += ["", text + ("..." if len(m.body) > body_chars else "")]
        return "\n".join(lines)


class Trace:
    """Messages whose From or To user is ``device_id`` (or one of ``also``: a channel of it that signals under its
    own ID, like the voice output whose audio INVITE some devices send from it, §9.12), at most ``limit`` of them
    (the oldest are dropped)."""

    def __init__(self, device_id: str, limit: int = MAX_ENTRIES) -> None:
        self.device_id = device_id
        self.also: set[str] = set()
        self.entries: deque[TraceEntry] = deque(maxlen=limit)
        self.dropped = 0

    @property
    def users(self) -> tuple[str, ...]:
        return (self.device_id, *sorted(self.also))

    def record(self, direction: str, message: Request | Response, peer: Peer, now: float) -> None:
        try:
            users = (message.from_.user, message.to.user)
        except RemoteProtocolError:
            return
        if self.device_id not in users and not self.also.intersection(users):
            return
        if len(self.entries) == self.entries.maxlen:
            self.dropped += 1
        if len(message.body) > MAX_BODY:
            message = _truncated(message)
        self.entries.append(TraceEntry(now, direction, str(peer), message))


def _truncated(message: Request | Response) -> Request | Response:
    return message.replace(body=message.body[:MAX_BODY])


class TracingEndpoint(Endpoint):
    """The platform's SIP endpoint with the traces armed on it (one per device under test), seen through the
    endpoint's public tap (``Endpoint.add_tap``): the endpoint itself is the tap while a trace is armed, and
    no tap is added while none is."""

    clock: Callable[[], float] = staticmethod(lambda: 0.0)  # set by the composition root (the platform's mono)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.traces: dict[str, Trace] = {}

    def arm(self, trace: Trace) -> None:
        self.traces[trace.device_id] = trace
        self.add_tap(self)

    def disarm(self, trace: Trace) -> None:
        if self.traces.get(trace.device_id) is trace:
            del self.traces[trace.device_id]
        if not self.traces:
            self.remove_tap(self)

    # the Tap protocol (sip.endpoint.Tap)
    def received(self, message: Request | Response, peer: Peer, now: float) -> None:
        for trace in list(self.traces.values()):
            trace.record("in", message, peer, now)

    def sent(self, transmits: list[Transmit]) -> None:
        now = self.clock()
        for item in transmits:
            wanted = [t for t in self.traces.values() if any(u.encode() in item.data for u in t.users)]
            if not wanted or item.close:
                continue
            try:
                msg = parse_message(item.data)
            except RemoteProtocolError:
                continue
            for trace in wanted:
                trace.record("out", msg, item.peer, now)
