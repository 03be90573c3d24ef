"""The platform's request router without sockets: a Platform on a MemoryStore, driven through its endpoint."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gb28181.config import Config, RegistryConfig, SipConfig
from gb28181.server import Platform, Secrets
from registry.memory import MemoryStore
from sip.auth import DigestClient
from sip.endpoint import Peer
from sip.parser import parse_message

DEVICE = "34020000001320000001"
PEER = Peer("UDP", "192.0.2.10", 5060)


def request(method: str, *, cseq: int = 1, headers: str = "", body: bytes = b"", branch: str = "b1") -> bytes:
    head = (
        f"{method} sip:34020000002000000001@3402000000 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bK{branch}\r\n"
        f"From: <sip:{DEVICE}@3402000000>;tag=t1\r\nTo: <sip:{DEVICE}@3402000000>\r\n"
        f"Call-ID: c1\r\nCSeq: {cseq} {method}\r\nContact: <sip:{DEVICE}@192.0.2.10:5060>\r\n{headers}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


KEEPALIVE = (
    b'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>1</SN>\r\n'
    b"<DeviceID>34020000001320000001</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
)


@pytest.fixture
async def platform(tmp_path: Path):
    cfg = Config(sip=SipConfig(password="pw"), registry=RegistryConfig(str(tmp_path / "x.db")))
    clock = {"mono": 100.0}
    p = Platform(
        cfg,
        Secrets("pw", "tok", b"s" * 32, tmp_path / "s.json"),
        MemoryStore(),
        mono=lambda: clock["mono"],
        batch_interval=3600,
    )
    await p.devices.start()
    yield p
    await p.devices.stop()


async def exchange(p: Platform, data: bytes) -> list:
    p.endpoint.receive(data, PEER, p.mono())
    while (event := p.endpoint.next_event()) is not None:
        p.handle(event)
    for _ in range(20):  # let a group commit finish
        await asyncio.sleep(0)
        if p.endpoint.has_pending():
            break
    for _ in range(1000):  # on a SQLite store under a loaded machine the commit takes longer: up to 10 s
        if p.endpoint.has_pending():
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.01)
    return [parse_message(t.data) for t in p.endpoint.outgoing()]


async def register(p: Platform) -> None:
    (challenge,) = await exchange(p, request("REGISTER", headers="Expires: 3600\r\n", branch="r1"))
    assert challenge.status == 401
    auth = DigestClient(DEVICE, "pw").authorization(
        challenge.headers.get("www-authenticate"), "REGISTER", "sip:34020000002000000001@3402000000"
    )
    (ok,) = await exchange(
        p, request("REGISTER", cseq=2, headers=f"Expires: 3600\r\nAuthorization: {auth}\r\n", branch="r2")
    )
    assert ok.status == 200


async def test_message_from_an_unregistered_device_gets_403(platform: Platform) -> None:
    headers = "Content-Type: Application/MANSCDP+xml\r\n"
    (answer,) = await exchange(platform, request("MESSAGE", headers=headers, body=KEEPALIVE))
    assert answer.status == 403
    assert platform.counters["message:not-registered"] == 1


async def test_keepalive_bad_xml_and_wrong_type_after_registration(platform: Platform) -> None:
    await register(platform)
    manscdp = "Content-Type: Application/MANSCDP+xml\r\n"
    (ok,) = await exchange(platform, request("MESSAGE", cseq=3, headers=manscdp, body=KEEPALIVE, branch="k1"))
    assert ok.status == 200 and platform.devices.devices[DEVICE].last_keepalive is not None
    (bad,) = await exchange(
        platform, request("MESSAGE", cseq=4, headers=manscdp, body=b"<Notify><CmdType>", branch="k2")
    )
    assert bad.status == 400 and bad.reason == "Bad MANSCDP Body" and "not well-formed" in bad.headers.get("warning")
    plain = "Content-Type: text/plain\r\n"
    (other,) = await exchange(platform, request("MESSAGE", cseq=5, headers=plain, body=b"hi", branch="k3"))
    assert other.status == 415 and other.headers.get("accept") == "Application/MANSCDP+xml"


async def test_a_bug_in_a_handler_is_answered_500_and_the_server_goes_on(platform: Platform, monkeypatch) -> None:
    def broken(*_args: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(platform.registrar, "decide_parts", broken)  # both lanes decide there
    (answer,) = await exchange(platform, request("REGISTER", headers="Expires: 3600\r\n", branch="x1"))
    assert answer.status == 500 and platform.counters["internal-error"] == 1
    (options,) = await exchange(platform, request("OPTIONS", branch="x2"))
    assert options.status == 200 and "REGISTER" in options.headers.get("allow")


async def test_unsupported_methods_get_405_with_allow(platform: Platform) -> None:
    (answer,) = await exchange(platform, request("PUBLISH", branch="p1"))
    assert answer.status == 405 and "MESSAGE" in answer.headers.get("allow")


async def test_periodic_catalog_syncs_ask_registered_devices_once_per_interval(tmp_path: Path) -> None:
    from gb28181.config import CatalogConfig
    from sip.aio import SipRunner

    cfg = Config(
        sip=SipConfig(password="pw"),
        registry=RegistryConfig(str(tmp_path / "x.db")),
        catalog=CatalogConfig(sync_on_register=False, sync_interval=60.0),
    )
    clock = {"mono": 100.0}
    p = Platform(cfg, Secrets("pw", "tok", b"s" * 32, tmp_path / "s.json"), MemoryStore(), mono=lambda: clock["mono"])
    sent: list[str] = []

    async def record(device_id: str, what: str, body: bytes) -> None:
        sent.append(f"{device_id}:{what}:{b'<CmdType>Catalog</CmdType>' in body}")

    p._send_to_device = record  # type: ignore[method-assign]
    await p.devices.start()
    try:
        await register(p)
        p.runner = SipRunner(p.endpoint, p.handle)  # no sockets: sending is replaced above
        first = p.catalog_schedule.next_at(DEVICE)
        assert first is not None and 100.0 <= first < 160.0  # within the first interval, from the ID
        clock["mono"] = first - 0.1
        p.tick()
        await asyncio.sleep(0.01)
        assert sent == []
        clock["mono"] = first
        p.tick()
        await asyncio.sleep(0.01)
        assert sent == [f"{DEVICE}:Catalog:True"] and p.counters["catalog:periodic"] == 1
        clock["mono"] = first + 59.0
        p.tick()
        await asyncio.sleep(0.01)
        assert len(sent) == 1  # once per interval
        clock["mono"] = first + 60.0
        p.tick()
        await asyncio.sleep(0.01)
        assert len(sent) == 2
    finally:
        await p.devices.stop()


async def test_a_repairable_body_is_taken_not_refused(platform: Platform) -> None:
    """A Catalog packet with a bare '&' (fixtures/manscdp/made/nvr-bare-ampersand.xml) is read as the codec reads it,
    after its repair, instead of being refused 400 at routing."""
    await register(platform)
    body = (Path(__file__).parents[2] / "fixtures/manscdp/made/nvr-bare-ampersand.xml").read_bytes()
    manscdp = "Content-Type: Application/MANSCDP+xml\r\n"
    (answer,) = await exchange(platform, request("MESSAGE", cseq=3, headers=manscdp, body=body, branch="amp"))
    assert answer.status == 200
    assert platform.counters.get("message:bad-xml", 0) == 0 and platform.counters.get("catalog:bad-xml", 0) == 0
    for _ in range(100):  # SumNum 1: the sync commits at once, in a task
        if channels := await platform.store.list_channels(device_id=DEVICE):
            break
        await asyncio.sleep(0.01)
    assert [(c.id, c.name) for c in channels] == [("34020000001310000005", "R&D 研发楼")]


async def test_media_status_from_an_nvr_channel_is_its_session_device_speaking(platform: Platform, monkeypatch) -> None:
    """§7.10: the MediaStatus of a playback comes in its dialog From the channel (an NVR's), not the device: it is
    routed by Call-ID, not refused 403 (found by the conformance media probe against the NVR profiles)."""
    from gb28181.invite import Call
    from gb28181.sessions import Session

    await register(platform)
    channel = "34020000001310000001"
    platform.media.table.add(Session(id="s1", channel_id=channel, device_id=DEVICE, kind="playback",
                                     transport="udp", ssrc="1200000001", call=Call(10, 10), started=0.0,
                                     call_id="play-1"))  # fmt: skip
    seen = []
    monkeypatch.setattr(platform.media, "on_media_status", lambda *args: seen.append(args) or True)
    body = (f'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>MediaStatus</CmdType>\r\n<SN>7</SN>\r\n'
            f"<DeviceID>{channel}</DeviceID>\r\n<NotifyType>121</NotifyType>\r\n</Notify>\r\n").encode()
    data = request("MESSAGE", cseq=3, headers="Content-Type: Application/MANSCDP+xml\r\n", body=body, branch="m1")
    data = data.replace(f"From: <sip:{DEVICE}@".encode(), f"From: <sip:{channel}@".encode())
    (ok,) = await exchange(platform, data.replace(b"Call-ID: c1", b"Call-ID: play-1"))
    assert ok.status == 200 and seen == [(DEVICE, channel, "121", "play-1")]
    other = data.replace(b"branch=z9hG4bKm1", b"branch=z9hG4bKm2")  # another Call-ID: still a stranger
    (refused,) = await exchange(platform, other)
    assert refused.status == 403
