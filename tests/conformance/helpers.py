"""Synthetic traces for the clause tests: SIP messages parsed from text, placed on a fake clock."""

from __future__ import annotations

from gb28181.conformance.model import Observations, Probe
from gb28181.conformance.trace import TraceEntry
from sip.message import Request, Response
from sip.parser import parse_message

DEV = "34020000001320000001"
PLATFORM = "34020000002000000001"
PEER = "UDP:127.0.0.1:5070"


def sip(start: str, headers: list[tuple[str, str]], body: bytes = b"") -> Request | Response:
    head = start + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + f"Content-Length: {len(body)}\r\n\r\n"
    return parse_message(head.encode() + body)


def _common(call_id: str, cseq: int, method: str, frm: str, to: str) -> list[tuple[str, str]]:
    return [
        ("Via", f"SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{call_id}{cseq}"),
        ("From", f"<sip:{frm}@3402000000>;tag=f{call_id}"),
        ("To", f"<sip:{to}@3402000000>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {method}"),
    ]


def request(method: str, *, call_id: str = "c1", cseq: int = 1, incoming: bool = True,
            headers: list[tuple[str, str]] | None = None, body: bytes = b"") -> Request:  # fmt: skip
    frm, to = (DEV, PLATFORM) if incoming else (PLATFORM, DEV)
    hs = _common(call_id, cseq, method, frm, to) + (headers or [])
    if body:
        hs.append(("Content-Type", "Application/MANSCDP+xml"))
    msg = sip(f"{method} sip:{to}@3402000000 SIP/2.0", hs, body)
    assert isinstance(msg, Request)
    return msg


def response(req: Request, status: int, headers: list[tuple[str, str]] | None = None) -> Response:
    hs = [(k, v) for k, v in req.headers.items() if k.lower() in ("via", "from", "to", "call-id", "cseq")]
    msg = sip(f"SIP/2.0 {status} X", hs + (headers or []))
    assert isinstance(msg, Response)
    return msg


class Builder:
    """Observations built message by message; ``at`` is the fake clock."""

    def __init__(self, gb_version: str = "") -> None:
        self.obs = Observations(DEV, PLATFORM, gb_version=gb_version, started=0.0, ended=300.0, wall=1_700_000_000)
        self.at = 0.0
        self._n = 0

    def add(self, direction: str, msg: Request | Response, at: float | None = None, peer: str = PEER) -> None:
        if at is not None:
            self.at = at
        self.obs.entries.append(TraceEntry(self.at, direction, peer, msg))

    def exchange(self, method: str, status: int, *, incoming: bool = True, at: float | None = None,
                 headers: list[tuple[str, str]] | None = None, answer: list[tuple[str, str]] | None = None,
                 body: bytes = b"", call_id: str | None = None, peer: str = PEER) -> Request:  # fmt: skip
        self._n += 1
        req = request(method, call_id=call_id or f"c{self._n}", cseq=self._n, incoming=incoming, headers=headers,
                      body=body)  # fmt: skip
        self.add("in" if incoming else "out", req, at, peer)
        self.add("out" if incoming else "in", response(req, status, answer), None, peer)
        return req

    def probe(self, name: str, ok: bool = True, value: object = None, error: str = "", kind: str = "",
              elapsed: float = 0.1) -> None:  # fmt: skip
        self.obs.probes[name] = Probe(name, self.at, elapsed, ok, error, kind, value)


def manscdp(root: str, cmd: str, sn: int, inner: str = "", charset: str = "GB2312", encode: str = "gb18030") -> bytes:
    text = f'<?xml version="1.0" encoding="{charset}"?>\r\n<{root}>\r\n<CmdType>{cmd}</CmdType>\r\n<SN>{sn}</SN>\r\n' \
           f"<DeviceID>{DEV}</DeviceID>\r\n{inner}</{root}>\r\n"  # fmt: skip
    return text.encode(encode)


def video_item(channel_id: str, **fields: str) -> str:
    values = {"Name": "中山路1号", "Manufacturer": "Hikvision", "Model": "DS-2CD", "Owner": "0",
              "CivilCode": "34020000", "Address": "中山路", "Parental": "0", "ParentID": DEV, "RegisterWay": "1",
              "Secrecy": "0", "Status": "ON", "Longitude": "118.38", "Latitude": "31.33"}  # fmt: skip
    values.update(fields)
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in values.items() if v != "-")
    return f"<Item><DeviceID>{channel_id}</DeviceID>{inner}</Item>"
