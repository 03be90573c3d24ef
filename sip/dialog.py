"""Dialogs (RFC 3261 §12): identity, route set, remote target, CSeq; building in-dialog requests.

A dialog is created from a 2xx (or a NOTIFY, RFC 6665 §4.1.2.4) to a dialog-creating request. The
endpoint keeps them in a ``DialogTable`` keyed by (Call-ID, local tag, remote tag).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace

from sip.address import Address
from sip.errors import LocalProtocolError
from sip.headers import Headers
from sip.message import Request, Response
from sip.params import remove_param
from sip.uri import AbsoluteUri, SipUri

DialogId = tuple[str, str, str]  # (Call-ID, local tag, remote tag)

DIALOG_METHODS = frozenset({"INVITE", "SUBSCRIBE"})


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: Address  # our From in requests we send, without tag
    remote_uri: Address  # their address, without tag
    remote_target: SipUri | AbsoluteUri  # from the peer's Contact (§12.1.1, §12.1.2)
    route_set: list[Address] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None
    method: str = "INVITE"  # the dialog-creating method
    secure: bool = False
    peer: object = None  # opaque transport destination set by the endpoint
    state: str = "confirmed"
    data: dict[str, object] = field(default_factory=dict)  # room for the application

    @property
    def id(self) -> DialogId:
        return (self.call_id, self.local_tag, self.remote_tag)

    # §12.1.1 UAS side
    @classmethod
    def from_uas(cls, request: Request, response: Response) -> Dialog:
        contact = request.contacts[0] if request.contacts else request.from_
        to_tag = response.to.tag
        if not to_tag:
            raise LocalProtocolError("a dialog-creating response needs a To tag")
        return cls(
            call_id=request.call_id,
            local_tag=to_tag,
            remote_tag=request.from_.tag or "",
            local_uri=_untagged(request.to),
            remote_uri=_untagged(request.from_),
            remote_target=contact.uri,
            route_set=list(request.record_routes),
            remote_seq=request.cseq.seq,
            local_seq=secrets.randbelow(1 << 16) + 1,
            method=request.method,
            secure=isinstance(request.request_uri, SipUri) and request.request_uri.scheme == "sips",
        )

    # §12.1.2 UAC side (also used for a NOTIFY that arrives before the SUBSCRIBE's 2xx)
    @classmethod
    def from_uac(cls, request: Request, answer: Response | Request) -> Dialog:
        if isinstance(answer, Response):
            remote = answer.to
            route_set = list(reversed(answer.record_routes))  # §12.1.2: reverse order
        else:  # NOTIFY: the notifier is in From (RFC 6665 §4.1.2.4)
            remote = answer.from_
            # A request's Record-Route lists the proxies nearest us first: taken in order, as a UAS
            # does (§12.1.1), not reversed like a response's.
            route_set = list(answer.record_routes)
        contacts = answer.contacts
        target = contacts[0].uri if contacts else request.request_uri
        return cls(
            call_id=request.call_id,
            local_tag=request.from_.tag or "",
            remote_tag=remote.tag or "",
            local_uri=_untagged(request.from_),
            remote_uri=_untagged(request.to),
            remote_target=target,
            route_set=route_set,
            local_seq=request.cseq.seq,
            remote_seq=None,
            method=request.method,
            secure=isinstance(request.request_uri, SipUri) and request.request_uri.scheme == "sips",
        )

    def next_cseq(self) -> int:
        self.local_seq += 1
        return self.local_seq

    def build_request(
        self,
        method: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        *,
        cseq: int | None = None,
    ) -> Request:
        """An in-dialog request per §12.2.1.1 (no Via: the endpoint adds it).

        ACK and CANCEL reuse the CSeq number they answer (pass ``cseq``); others take the next one.
        """
        seq = cseq if cseq is not None else self.next_cseq()
        uri = self.remote_target
        items: list[tuple[str, str]] = []
        if self.route_set and isinstance(self.route_set[0].uri, SipUri) and self.route_set[0].uri.param("lr") is None:
            # strict router (§12.2.1.1): first route becomes the Request-URI, stripped of what a
            # Request-URI may not carry (§19.1.1 Table 1: method, headers); remote target goes last
            first = self.route_set[0].uri
            uri = replace(first, params=remove_param(first.params, "method"), headers=None)
            routes = [*self.route_set[1:], Address(self.remote_target)]
        else:
            routes = list(self.route_set)
        items.append(("From", str(self.local_uri.with_tag(self.local_tag))))
        to = self.remote_uri.with_tag(self.remote_tag) if self.remote_tag else self.remote_uri
        items.append(("To", str(to)))
        items.append(("Call-ID", self.call_id))
        items.append(("CSeq", f"{seq} {method}"))
        items.append(("Max-Forwards", "70"))
        items.extend(("Route", str(r)) for r in routes)
        if headers:
            items.extend(headers)
        return Request(method, str(uri), Headers(items), body)

    def check_remote_seq(self, request: Request) -> bool:
        """§12.2.2: a lower CSeq than the last one is out of order (answer 500); update otherwise."""
        seq = request.cseq.seq
        if request.method in ("ACK", "CANCEL"):
            return True
        if self.remote_seq is not None and seq < self.remote_seq:
            return False
        self.remote_seq = seq
        return True

    def refresh_target(self, message: Request | Response) -> None:
        """Target refresh (§12.2): a re-INVITE, UPDATE or NOTIFY with a Contact replaces the remote target."""
        if message.contacts and not message.contacts[0].star:
            self.remote_target = message.contacts[0].uri


def _untagged(addr: Address) -> Address:
    return Address(addr.uri, addr.display, remove_param(addr.params, "tag"))


class DialogTable:
    """Dialogs by id, plus pending dialog-creating requests (for NOTIFY-before-2xx and early checks)."""

    def __init__(self, max_dialogs: int = 200_000) -> None:
        self._dialogs: dict[DialogId, Dialog] = {}
        self._pending: dict[tuple[str, str], Request] = {}  # (Call-ID, local tag) -> SUBSCRIBE/INVITE we sent
        self.max_dialogs = max_dialogs

    def __len__(self) -> int:
        return len(self._dialogs)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(self._dialogs.values()))

    def get(self, dialog_id: DialogId) -> Dialog | None:
        return self._dialogs.get(dialog_id)

    def add(self, dialog: Dialog) -> Dialog:
        existing = self._dialogs.get(dialog.id)
        if existing is not None:
            return existing
        if len(self._dialogs) >= self.max_dialogs:
            raise LocalProtocolError(f"dialog table full ({self.max_dialogs})")
        self._dialogs[dialog.id] = dialog
        return dialog

    def remove(self, dialog_id: DialogId) -> Dialog | None:
        return self._dialogs.pop(dialog_id, None)

    def match_incoming(self, request: Request) -> Dialog | None:
        """The dialog an incoming request belongs to: local tag = its To tag, remote tag = its From tag."""
        return self._dialogs.get((request.call_id, request.to.tag or "", request.from_.tag or ""))

    def match_response(self, response: Response) -> Dialog | None:
        return self._dialogs.get((response.call_id, response.from_.tag or "", response.to.tag or ""))

    def add_pending(self, request: Request) -> None:
        if len(self._pending) < self.max_dialogs:
            self._pending[(request.call_id, request.from_.tag or "")] = request

    def pending(self, call_id: str, local_tag: str) -> Request | None:
        return self._pending.get((call_id, local_tag))

    def drop_pending(self, call_id: str, local_tag: str) -> None:
        self._pending.pop((call_id, local_tag), None)
