"""What the endpoint tells the application (events), and what it hands the IO adapter (Transmit), with the
transport address type they share. Plain frozen records: no behaviour beyond formatting.
"""

from __future__ import annotations

from dataclasses import dataclass

from sip.dialog import Dialog
from sip.message import Request, Response


@dataclass(frozen=True, slots=True)
class Peer:
    """A remote transport address. For streams it also names the connection."""

    transport: str  # "UDP" or "TCP"
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.transport != "UDP"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport.lower()}:{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Transmit:
    """Bytes for the adapter to send; ``close`` asks it to close that stream connection instead."""

    data: bytes
    peer: Peer
    close: bool = False


@dataclass(frozen=True, slots=True)
class StatelessAnswer:
    """What the ``stateless`` hook answers: the endpoint builds the response (copied headers, a new To tag)."""

    status: int
    headers: list[tuple[str, str]] | None = None
    reason: str | None = None
    # The lean lane (``fast`` hook) keeps this answer for retransmissions of the request (RFC 3261 §17.2.2: what a
    # non-INVITE server transaction does) instead of offering them again: for answers that must not be computed
    # twice, such as a digest check whose nonce count a second look would take for a replay.
    keep: bool = False


# What the ``fast`` hook returns when it will answer later through ``Endpoint.fast_reply`` (after a group commit).
DEFER = StatelessAnswer(0, keep=True)

# Events for the application.
@dataclass(frozen=True, slots=True)
class RequestReceived:
    request: Request
    peer: Peer
    tx: TxKey | None  # answer with Endpoint.respond(tx, ...); None for ACK
    dialog: Dialog | None = None
    local: tuple[str, int] | None = None  # our address the request arrived on, when the adapter knows it


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    response: Response
    request: Request
    peer: Peer
    tx: TxKey
    dialog: Dialog | None = None


@dataclass(frozen=True, slots=True)
class TransactionFailed:
    """No final response: timer B/F fired (``reason='timeout'``) or the transport failed."""

    request: Request
    peer: Peer
    tx: TxKey
    reason: str


@dataclass(frozen=True, slots=True)
class AckReceived:
    """The ACK for a 2xx we sent to an INVITE (RFC 3261 §13.3.1.4)."""

    request: Request
    dialog: Dialog | None
    peer: Peer


@dataclass(frozen=True, slots=True)
class AckTimeout:
    """No ACK came for our 2xx within 64*T1: the application should send BYE (§13.3.1.4)."""

    dialog: Dialog


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """A CANCEL matched a pending INVITE; the endpoint already answered 200 and 487 (§9.2)."""

    invite: Request
    tx: TxKey
    peer: Peer


@dataclass(frozen=True, slots=True)
class MessageRejected:
    """A message the stack refused. ``status`` is the answer sent, or None if it was dropped."""

    peer: Peer
    reason: str
    status: int | None


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """A stream connection went away (closed by the peer, reset, idle timeout or our own close)."""

    peer: Peer


@dataclass(frozen=True, slots=True)
class ConnectionBroken:
    """A stream's framing broke beyond repair; the endpoint asked the adapter to close it."""

    peer: Peer
    reason: str


Event = (
    RequestReceived
    | ResponseReceived
    | TransactionFailed
    | AckReceived
    | AckTimeout
    | CancelReceived
    | MessageRejected
    | ConnectionClosed
    | ConnectionBroken
)

TxKey = tuple[str, ...]
