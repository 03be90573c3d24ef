"""Requests from a configured superior, without sockets: served (not 403) only from its own address; its Catalog
SUBSCRIBE makes a dialog with the granted expiry; others may not subscribe."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gb28181.config import Config, RegistryConfig, SipConfig, UpstreamConfig
from gb28181.server import Platform, Secrets
from registry.memory import MemoryStore
from sip.endpoint import Peer
from sip.parser import parse_message

OUR = "34020000002000000001"
UP = "44000000002000000001"
HOME = Peer("UDP", "192.0.2.20", 5060)
ELSEWHERE = Peer("UDP", "192.0.2.99", 5060)


def request(method: str, *, frm: str = UP, to_tag: str = "", headers: str = "", body: bytes = b"",
            branch: str = "b1", cseq: int = 1) -> bytes:  # fmt: skip
    tag = f";tag={to_tag}" if to_tag else ""
    head = (
        f"{method} sip:{OUR}@192.0.2.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.20:5060;rport;branch=z9hG4bK{branch}\r\n"
        f"From: <sip:{frm}@4400000000>;tag=up1\r\nTo: <sip:{OUR}@3402000000>{tag}\r\nCall-ID: call-{method}\r\n"
        f"CSeq: {cseq} {method}\r\nContact: <sip:{frm}@192.0.2.20:5060>\r\n{headers}"
        f"Content-Type: Application/MANSCDP+xml\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


QUERY = f'<?xml version="1.0"?><Query><CmdType>Catalog</CmdType><SN>3</SN><DeviceID>{OUR}</DeviceID></Query>'.encode()


@pytest.fixture
async def platform(tmp_path: Path):
    up = UpstreamConfig(id=UP, host="192.0.2.20", port=5060, retry_interval=3600, retry_max=3600).checked()
    cfg = Config(sip=SipConfig(password="pw"), registry=RegistryConfig(str(tmp_path / "x.db")), upstream=(up,))
    p = Platform(cfg, Secrets("pw", "tok", b"s" * 32, tmp_path / "s.json"), MemoryStore(), batch_interval=3600)
    p.endpoint.local_address = lambda peer: ("192.0.2.1", 5060)
    await p.devices.start()
    await p.start_upstreams()  # no transport: the registration backs off for an hour, untouched by these tests
    yield p
    await p.stop_upstreams()
    await p.devices.stop()


async def exchange(p: Platform, data: bytes, peer: Peer = HOME) -> list:
    p.endpoint.receive(data, peer, p.mono())
    while (event := p.endpoint.next_event()) is not None:
        p.handle(event)
    await asyncio.sleep(0)
    return [parse_message(t.data) for t in p.endpoint.outgoing()]


async def test_a_superior_is_served_only_from_its_address(platform: Platform) -> None:
    (ok,) = await exchange(platform, request("MESSAGE", body=QUERY))
    assert ok.status == 200
    (refused,) = await exchange(platform, request("MESSAGE", body=QUERY, branch="b2"), ELSEWHERE)
    assert refused.status == 403  # the same ID from elsewhere is just an unregistered device
    (bad,) = await exchange(platform, request("MESSAGE", body=b"<Query><SN>1</Query", branch="b3"))
    assert bad.status == 400


async def test_catalog_subscribe_refresh_and_end(platform: Platform) -> None:
    (other,) = await exchange(platform, request("SUBSCRIBE", frm="34020000001320000001", body=QUERY,
                                                headers="Event: Catalog\r\nExpires: 600\r\n"))  # fmt: skip
    assert other.status == 403
    (wrong,) = await exchange(platform, request("SUBSCRIBE", body=QUERY, branch="b2",
                                                headers="Event: presence\r\nExpires: 600\r\n"))  # fmt: skip
    assert wrong.status == 489
    (ok,) = await exchange(platform, request("SUBSCRIBE", body=QUERY, branch="b3",
                                             headers="Event: Catalog;id=4\r\nExpires: 5\r\n"))  # fmt: skip
    assert ok.status == 200 and ok.headers.get("expires") == "30" and ok.to.tag  # clamped to the minimum
    link = platform.upstreams[UP]
    assert len(link.subscriptions) == 1
    tag = ok.to.tag
    (refresh,) = await exchange(platform, request("SUBSCRIBE", body=QUERY, branch="b4", to_tag=tag, cseq=2,
                                                  headers="Event: Catalog;id=4\r\nExpires: 600\r\n"))  # fmt: skip
    assert refresh.status == 200 and refresh.headers.get("expires") == "600"
    (end,) = await exchange(platform, request("SUBSCRIBE", body=QUERY, branch="b5", to_tag=tag, cseq=3,
                                              headers="Event: Catalog;id=4\r\nExpires: 0\r\n"))  # fmt: skip
    assert end.status == 200 and link.subscriptions == {}
    (gone,) = await exchange(platform, request("SUBSCRIBE", body=QUERY, branch="b6", to_tag=tag, cseq=4,
                                               headers="Event: Catalog;id=4\r\nExpires: 600\r\n"))  # fmt: skip
    assert gone.status == 481  # the dialog ended with the subscription
