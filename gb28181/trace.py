"""Live SIP traces of one device for operators: ``gb28181 trace DEVICE`` (issue 9), so "why is this camera not
registering / not playing" has an answer.

``TraceHub`` is an endpoint tap (``sip.endpoint.Tap``) added only while someone watches, so an untraced platform
pays one truthiness test per message. It picks the messages of each watched device (its ID as From, To or
Request-URI user, or its known address as source or destination), including those the stateless fast path
answers (digest challenges, keepalives), and hands each watcher one ``Exchange`` per message. The platform adds
why it refused something (``note``): a wrong password, a lockout, a rate limit, a storage error; the note rides on
the response line. Each watcher has a bounded queue with a drop counter, so a slow client cannot grow memory.

No IO and no clock of its own: ``wall`` is injected by the composition root.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gb28181.peers import peer_address
from sip.endpoint import Endpoint, Peer, Transmit
from sip.errors import RemoteProtocolError
from sip.message import Request, Response
from sip.parser import parse_message

MAX_QUEUE = 1000  # exchanges a watcher may have waiting; beyond, new ones are dropped and counted
MAX_WATCHERS = 32  # traces at once, all devices together
MAX_NOTES = 512  # refusal reasons waiting for their response to go out
_CMD_TYPE = re.compile(rb"<CmdType>\s*([A-Za-z]{1,40})\s*</CmdType>")


@dataclass(frozen=True, slots=True)
class Exchange:
    """One line of the ladder: a message between the platform and the device."""

    at: float  # wall-clock seconds
    direction: str  # "in" (device -> platform) or "out" (platform -> device)
    device_id: str
    peer: str  # "UDP:127.0.0.1:5060"
    label: str  # "REGISTER", "MESSAGE Keepalive", "401 Unauthorized"
    call_id: str
    cseq: str  # "2 REGISTER"
    status: int | None = None
    note: str = ""  # why the platform answered so (a refusal's reason)

    def as_json(self) -> dict[str, Any]:
        return {
            "type": "sip", "at": round(self.at, 3), "direction": self.direction, "device_id": self.device_id,
            "peer": self.peer, "label": self.label, "status": self.status, "call_id": self.call_id,
            "cseq": self.cseq, "note": self.note,
        }  # fmt: skip


class Watcher:
    """One client's view of one device: a bounded queue, a drop counter, and ``wake`` called when something
    arrives (the admin route sets an asyncio.Event)."""

    def __init__(self, device_id: str, wake: Callable[[], None], limit: int = MAX_QUEUE) -> None:
        self.device_id = device_id
        self.wake = wake
        self.limit = limit
        self.queue: deque[Exchange] = deque()
        self.dropped = 0  # since the last drain
        self.dropped_total = 0

    def push(self, exchange: Exchange) -> None:
        if len(self.queue) >= self.limit:
            self.dropped += 1
            self.dropped_total += 1
            return
        self.queue.append(exchange)
        self.wake()

    def drain(self) -> tuple[list[Exchange], int]:
        """What waits, and how many were dropped since the last drain."""
        out, dropped = list(self.queue), self.dropped
        self.queue.clear()
        self.dropped = 0
        return out, dropped


class TraceHub:
    """The platform's trace tap: watchers by device ID, and the notes the platform leaves for them."""

    def __init__(self, endpoint: Endpoint, *, wall: Callable[[], float], address_of: Callable[[str], str | None]):
        self.endpoint = endpoint
        self.wall = wall
        self.address_of = address_of  # a device's known "ip:port" (its registration or last keepalive), or None
        self.watchers: dict[str, list[Watcher]] = {}
        self._notes: OrderedDict[tuple[str, int, str], str] = OrderedDict()

    # ------------------------------------------------------------------ watchers
    def watch(self, device_id: str, wake: Callable[[], None], limit: int = MAX_QUEUE) -> Watcher:
        """A new watcher of ``device_id``; ValueError when MAX_WATCHERS are already watching."""
        if sum(len(ws) for ws in self.watchers.values()) >= MAX_WATCHERS:
            raise ValueError(f"{MAX_WATCHERS} traces are running already")
        watcher = Watcher(device_id, wake, limit)
        self.watchers.setdefault(device_id, []).append(watcher)
        self.endpoint.add_tap(self)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        ws = self.watchers.get(watcher.device_id, [])
        if watcher in ws:
            ws.remove(watcher)
        if not ws:
            self.watchers.pop(watcher.device_id, None)
        if not self.watchers:
            self.endpoint.remove_tap(self)
            self._notes.clear()

    # ------------------------------------------------------------------ notes from the platform
    def note(self, request: Request, text: str) -> None:
        """Why the platform answers ``request`` as it does; shown on the response's line. Kept only while a
        trace runs (callers test ``self.watchers`` first to stay free otherwise)."""
        if not self.watchers:
            return
        try:
            key = (request.call_id, request.cseq.seq, request.cseq.method)
        except RemoteProtocolError:
            return
        self._notes[key] = text
        self._notes.move_to_end(key)
        while len(self._notes) > MAX_NOTES:
            self._notes.popitem(last=False)

    # ------------------------------------------------------------------ the Tap protocol (sip.endpoint.Tap)
    def received(self, message: Request | Response, peer: Peer, now: float) -> None:
        self._offer("in", message, peer)

    def sent(self, transmits: list[Transmit]) -> None:
        for item in transmits:
            if item.close or not item.data:
                continue
            address = peer_address(item.peer)
            if not any(d.encode() in item.data or self.address_of(d) == address for d in self.watchers):
                continue  # cheap test before parsing our own bytes again
            try:
                message = parse_message(item.data)
            except RemoteProtocolError:
                continue
            self._offer("out", message, item.peer)

    def _offer(self, direction: str, message: Request | Response, peer: Peer) -> None:
        try:
            users = {message.from_.user, message.to.user}
            if isinstance(message, Request):
                users.add(message.request_uri.user)
            call_id, cseq = message.call_id, message.cseq
        except RemoteProtocolError:
            return  # a malformed header: the endpoint answers 400, and that answer is traced if it is ours
        address = peer_address(peer)
        wanted = [d for d in self.watchers if d in users or self.address_of(d) == address]
        if not wanted:
            return
        note = ""
        if isinstance(message, Response):
            label, status = f"{message.status} {message.reason}", message.status
            note = self._notes.pop((call_id, cseq.seq, cseq.method), "")
        else:
            label, status = message.method, None
            found = _CMD_TYPE.search(message.body[:1024]) if message.body else None
            if found:
                label += " " + found.group(1).decode()
        at = self.wall()
        for device_id in wanted:
            exchange = Exchange(at, direction, device_id, str(peer), label, call_id[:8], f"{cseq.seq} {cseq.method}",
                                status, note)  # fmt: skip
            for watcher in self.watchers.get(device_id, ()):
                watcher.push(exchange)


def ladder(row: dict[str, Any], time_text: str) -> str:
    """One exchange as a ladder line for the CLI: time, platform and the device with an arrow between them, what
    was sent, Call-ID (short), CSeq, and the platform's reason for a refusal."""
    arrow = "------------->" if row.get("direction") == "out" else "<-------------"
    note = row.get("note") or ""
    if not note and row.get("status") == 401:
        note = "challenge"
    return (
        f"{time_text}  platform {arrow} {row.get('device_id', '')}  {row.get('label', ''):<24} "
        f"{row.get('call_id', ''):<8}  {row.get('cseq', ''):<14}" + (f"  ({note})" if note else "")
    ).rstrip()
