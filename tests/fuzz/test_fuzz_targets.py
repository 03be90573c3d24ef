"""The fuzz targets, bounded, in the normal test run; and the whole platform (endpoint, router, MANSCDP
handlers) under fuzzed datagrams and XML attacks from a registered device: every input is answered or dropped,
none reaches the error boundary (``internal-error``), memory stays bounded. The long coverage-guided run is
``python -m tests.fuzz.fuzz`` (README.md beside this file)."""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gb28181.config import Config, RegistryConfig, SipConfig
from gb28181.guard import GuardSettings
from gb28181.server import Platform, Secrets
from registry.memory import MemoryStore
from sip.auth import DigestClient
from sip.endpoint import Peer
from sip.message import Response
from sip.parser import parse_message
from tests.fuzz import targets
from tests.fuzz.fuzz import _mutate

FUZZ = settings(deadline=None, max_examples=400, suppress_health_check=list(HealthCheck))
DEVICE = "34020000001320000001"
PEER = Peer("UDP", "192.0.2.10", 5060)
URI = "sip:34020000002000000001@3402000000"


def inputs(kind: str) -> st.SearchStrategy[bytes]:
    seed_inputs = targets.seeds(kind)
    mutated = st.builds(_mutate, st.sampled_from(seed_inputs), st.binary(max_size=16), st.integers(0, 1 << 30))
    return st.one_of(st.binary(max_size=2048), mutated)


@FUZZ
@given(inputs("sip"))
def test_sip_datagram_target(data: bytes) -> None:
    targets.sip_datagram(data)


@FUZZ
@given(inputs("stream"))
def test_sip_stream_target(data: bytes) -> None:
    targets.sip_stream(data)


@FUZZ
@given(inputs("manscdp"))
def test_manscdp_target(data: bytes) -> None:
    targets.manscdp(data)


# ------------------------------------------------------------------------------------------- the whole platform
def message(body: bytes, n: int, method: str = "MESSAGE") -> bytes:
    head = (
        f"{method} {URI} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bKm{n}\r\n"
        f"From: <sip:{DEVICE}@3402000000>;tag=t{n}\r\nTo: <sip:34020000002000000001@3402000000>\r\n"
        f"Call-ID: m{n}@h\r\nCSeq: {n} {method}\r\nContent-Type: Application/MANSCDP+xml\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Rig:
    def __init__(self, p: Platform) -> None:
        self.p = p
        self.n = 0

    def feed(self, data: bytes, peer: Peer = PEER) -> list:
        p = self.p
        p.endpoint.receive(data, peer, p.mono())
        for _ in range(1000):
            event = p.endpoint.next_event()
            if event is None:
                break
            p.handle(event)
        out = [parse_message(t.data) for t in p.endpoint.outgoing() if t.data]
        return [m for m in out if isinstance(m, Response)]  # our own requests (alarm answers...) aside

    def send_body(self, body: bytes, method: str = "MESSAGE") -> list:
        self.n += 1
        return self.feed(message(body, self.n, method))


@pytest.fixture
async def rig(tmp_path: Path):
    cfg = Config(sip=SipConfig(password="pw"), registry=RegistryConfig(str(tmp_path / "x.db")),
                 guard=GuardSettings(message_rate=0, register_rate=0))  # thousands of inputs, one device  # fmt: skip
    p = Platform(cfg, Secrets("pw", "tok", b"s" * 32, tmp_path / "s.json"), MemoryStore(), batch_interval=3600)
    await p.devices.start()
    r = Rig(p)
    reg = (
        f"REGISTER {URI} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bKr{{n}}\r\n"
        f"From: <sip:{DEVICE}@3402000000>;tag=r\r\nTo: <sip:{DEVICE}@3402000000>\r\nCall-ID: reg@h\r\n"
        f"CSeq: {{n}} REGISTER\r\nContact: <sip:{DEVICE}@192.0.2.10:5060>\r\nExpires: 3600\r\n{{auth}}"
        "Content-Length: 0\r\n\r\n"
    )
    (challenge,) = r.feed(reg.format(n=1, auth="").encode())
    auth = DigestClient(DEVICE, "pw").authorization(challenge.headers.get("www-authenticate"), "REGISTER", URI)
    r.feed(reg.format(n=2, auth=f"Authorization: {auth}\r\n").encode())
    for _ in range(50):
        await asyncio.sleep(0.01)
        if p.devices.is_registered(DEVICE):
            break
    assert p.devices.is_registered(DEVICE)
    await asyncio.sleep(0.01)
    r.feed(b"")  # the 200 to the REGISTER went out after its commit
    yield r
    await p.devices.stop()


KEEPALIVE_HEAD = '<?xml version="1.0" encoding="GB2312"?>\n'
BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + f"]>\n<Notify><CmdType>Alarm</CmdType><SN>1</SN><DeviceID>{DEVICE}</DeviceID>"
    "<AlarmDescription>&lol9;</AlarmDescription><AlarmPriority>1</AlarmPriority></Notify>"
)
XXE = (
    '<?xml version="1.0"?>\n<!DOCTYPE Notify [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    f"<Notify><CmdType>Alarm</CmdType><SN>2</SN><DeviceID>{DEVICE}</DeviceID>"
    "<AlarmDescription>&xxe;</AlarmDescription><AlarmPriority>1</AlarmPriority></Notify>"
)


def deep(depth: int) -> bytes:
    return (
        f"<Notify><CmdType>Keepalive</CmdType><SN>3</SN><DeviceID>{DEVICE}</DeviceID>"
        + "<N>" * depth
        + "</N>" * depth
        + "</Notify>"
    ).encode()


async def test_xml_attacks_through_the_platform_are_bounded_and_answered(rig: Rig) -> None:
    tracemalloc.start()
    try:
        statuses = {}
        for name, body in [("laughs", BILLION_LAUGHS.encode()), ("xxe", XXE.encode()), ("deep", deep(5000))]:
            for method in ("MESSAGE", "NOTIFY"):
                answers = rig.send_body(body, method)
                assert len(answers) == 1, [(a.status, a.headers.get("cseq")) for a in answers]
                statuses[name, method] = answers[0].status
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 << 20, f"peak {peak} bytes: an entity was expanded?"
    assert statuses[("deep", "MESSAGE")] == 400 and statuses[("deep", "NOTIFY")] == 400
    assert all(s in (200, 400) for s in statuses.values()), statuses
    for _ in range(20):
        await asyncio.sleep(0.01)
    alarms = await rig.p.store.list_alarms()
    assert all("lollol" not in a.description and "root:" not in a.description for a in alarms), alarms
    # a body over the SIP body limit: refused by the stack (413), before any XML parsing
    (big,) = rig.send_body(b"<Notify>" + b"x" * ((1 << 20) + 1) + b"</Notify>")
    assert big.status in (413, 513)
    assert "internal-error" not in rig.p.counters


@settings(FUZZ, max_examples=300)
@given(data=inputs("manscdp"))
async def test_fuzzed_manscdp_bodies_from_a_registered_device(rig: Rig, data: bytes) -> None:
    (answer,) = rig.send_body(data, "MESSAGE")
    assert answer.status in (200, 400, 415), answer.status
    assert "internal-error" not in rig.p.counters


@settings(FUZZ, max_examples=300)
@given(data=inputs("sip"))
async def test_fuzzed_datagrams_through_the_platform(rig: Rig, data: bytes) -> None:
    for answer in rig.feed(data, Peer("UDP", "198.51.100.1", 5060)):
        assert 100 <= getattr(answer, "status", 100) <= 699
    assert "internal-error" not in rig.p.counters
