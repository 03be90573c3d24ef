"""The guard and the registrar through the platform (no sockets, fake clocks): no ID enumeration, lockout per
(source, ID) with backoff, nonce expiry and nc replay, REGISTER/MESSAGE rate limits, rejected input by reason."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gb28181.config import Config, RegistryConfig, SipConfig
from gb28181.guard import GuardSettings
from gb28181.server import Platform, Secrets
from registry.memory import MemoryStore
from registry.models import Device
from sip.auth import DigestClient
from sip.endpoint import Peer
from sip.message import Response
from sip.parser import parse_message

KNOWN = "34020000001320000001"
UNKNOWN = "34020000001320000999"
OTHER = "34020000001320000002"
ATTACKER = Peer("UDP", "198.51.100.66", 5060)
DEVICE_PEER = Peer("UDP", "192.0.2.10", 5060)
URI = "sip:34020000002000000001@3402000000"
KEEPALIVE = (
    '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>1</SN>\r\n'
    "<DeviceID>{id}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
)
_branch = iter(range(1, 10**9))


def request(method: str, user: str, peer: Peer, *, headers: str = "", body: bytes = b"", cseq: int = 1) -> bytes:
    head = (
        f"{method} {URI} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {peer.host}:{peer.port};rport;branch=z9hG4bK{next(_branch)}\r\n"
        f"From: <sip:{user}@3402000000>;tag=t1\r\nTo: <sip:{user}@3402000000>\r\n"
        f"Call-ID: c-{user}@{peer.host}\r\nCSeq: {cseq} {method}\r\nContact: <sip:{user}@{peer.host}:{peer.port}>\r\n"
        f"{headers}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Rig:
    def __init__(self, p: Platform, clock: dict[str, float]) -> None:
        self.p = p
        self.clock = clock

    async def send(self, data: bytes, peer: Peer) -> list[Response]:
        p = self.p
        p.endpoint.receive(data, peer, p.mono())
        while (event := p.endpoint.next_event()) is not None:
            p.handle(event)
        for _ in range(20):  # let a group commit finish
            await asyncio.sleep(0)
            if p.endpoint.has_pending():
                break
        await asyncio.sleep(0.01)
        while (event := p.endpoint.next_event()) is not None:
            p.handle(event)
        return [parse_message(t.data) for t in p.endpoint.outgoing() if t.data]  # type: ignore[misc]

    async def challenge(self, user: str, peer: Peer) -> str:
        (answer,) = await self.send(request("REGISTER", user, peer, headers="Expires: 3600\r\n"), peer)
        assert answer.status == 401
        return answer.headers.get("www-authenticate") or ""

    async def register(self, user: str, peer: Peer, password: str, *, client: DigestClient | None = None) -> Response:
        challenge = await self.challenge(user, peer)
        auth = (client or DigestClient(user, password)).authorization(challenge, "REGISTER", URI)
        headers = f"Expires: 3600\r\nAuthorization: {auth}\r\n"
        (answer,) = await self.send(request("REGISTER", user, peer, headers=headers, cseq=2), peer)
        return answer

    async def keepalive(self, user: str, peer: Peer) -> Response:
        body = KEEPALIVE.format(id=user).encode()
        headers = "Content-Type: Application/MANSCDP+xml\r\n"
        (answer,) = await self.send(request("MESSAGE", user, peer, headers=headers, body=body, cseq=3), peer)
        return answer


async def make(tmp_path: Path, guard: GuardSettings | None = None, *, allow_unknown: bool = False) -> Rig:
    cfg = Config(
        sip=SipConfig(password="pw", allow_unknown=allow_unknown, nonce_ttl=60),
        registry=RegistryConfig(str(tmp_path / "x.db")),
        guard=guard or GuardSettings(),
    )
    clock = {"mono": 100.0, "wall": 1_700_000_000.0}
    p = Platform(cfg, Secrets("pw", "tok", b"s" * 32, tmp_path / "s.json"), MemoryStore(),
                 mono=lambda: clock["mono"], wall=lambda: clock["wall"], batch_interval=3600)  # fmt: skip
    await p.devices.start()
    await p.devices.put(Device(KNOWN, provisioned=True))
    await p.devices.put(Device(OTHER, provisioned=True))
    return Rig(p, clock)


@pytest.fixture
async def rig(tmp_path: Path):
    r = await make(tmp_path)
    yield r
    await r.p.devices.stop()


def _shape(r: Response) -> tuple[int, str, list[str], bytes]:
    """What a prober sees, minus what differs per request anyway (tags, Call-ID, Via, nonce)."""
    names = sorted(n.lower() for n, _ in r.headers)
    return r.status, r.reason, names, r.body


async def test_known_and_unknown_ids_get_indistinguishable_answers(rig: Rig) -> None:
    wrong = [await rig.register(user, ATTACKER, "guess") for user in (KNOWN, UNKNOWN)]
    assert _shape(wrong[0]) == _shape(wrong[1]) and wrong[0].status == 403
    challenges = [await rig.challenge(user, ATTACKER) for user in (KNOWN, UNKNOWN)]
    assert [c.split("nonce=")[0] for c in challenges] == [challenges[0].split("nonce=")[0]] * 2
    messages = [await rig.keepalive(user, ATTACKER) for user in (KNOWN, UNKNOWN)]
    assert _shape(messages[0]) == _shape(messages[1]) and messages[0].status == 403


async def test_brute_force_locks_the_source_and_id_with_backoff(rig: Rig) -> None:
    for _ in range(5):
        assert (await rig.register(KNOWN, ATTACKER, "guess")).status == 403
    assert rig.p.counters["guard:lockout"] == 1
    (lock,) = rig.p.guard.lockouts(rig.p.mono())
    assert (lock.source, lock.device_id, lock.seconds) == (ATTACKER.host, KNOWN, 60.0)
    # Locked: even the right password gets the same 403 (no oracle), without being verified.
    assert (await rig.register(KNOWN, ATTACKER, "pw")).status == 403
    assert rig.p.counters["register:locked-out"] == 1
    # The real device at its own address, and a neighbour behind the attacker's NAT, are not locked out.
    assert (await rig.register(KNOWN, DEVICE_PEER, "pw")).status == 200
    assert (await rig.register(OTHER, ATTACKER, "pw")).status == 200
    # After the lockout the right password works and clears the key; a second lockout lasts twice as long.
    rig.clock["mono"] += 61
    for _ in range(5):
        await rig.register(KNOWN, ATTACKER, "guess")
    (lock,) = rig.p.guard.lockouts(rig.p.mono())
    assert lock.seconds == 120 and lock.count == 2
    rig.clock["mono"] += 121
    assert (await rig.register(KNOWN, ATTACKER, "pw")).status == 200
    assert rig.p.guard.lockouts(rig.p.mono()) == []


async def test_expired_nonce_gets_stale_and_a_replayed_nc_is_refused(rig: Rig) -> None:
    challenge = await rig.challenge(KNOWN, DEVICE_PEER)
    client = DigestClient(KNOWN, "pw")
    auth = client.authorization(challenge, "REGISTER", URI)
    headers = f"Expires: 3600\r\nAuthorization: {auth}\r\n"
    (ok,) = await rig.send(request("REGISTER", KNOWN, DEVICE_PEER, headers=headers, cseq=2), DEVICE_PEER)
    assert ok.status == 200
    (replay,) = await rig.send(request("REGISTER", KNOWN, DEVICE_PEER, headers=headers, cseq=3), DEVICE_PEER)
    assert replay.status == 401  # same nc under qop=auth: a replay
    rig.clock["wall"] += 61
    rig.clock["mono"] += 61
    late = client.authorization(challenge, "REGISTER", URI)
    headers = f"Expires: 3600\r\nAuthorization: {late}\r\n"
    (stale,) = await rig.send(request("REGISTER", KNOWN, DEVICE_PEER, headers=headers, cseq=4), DEVICE_PEER)
    assert stale.status == 401 and "stale=true" in (stale.headers.get("www-authenticate") or "")
    assert rig.p.counters.get("guard:lockout", 0) == 0  # neither counts as a guess


async def test_register_and_message_rate_limits_per_source_and_id(tmp_path: Path) -> None:
    rig = await make(tmp_path, GuardSettings(register_rate=1, register_burst=4, message_rate=1, message_burst=3))
    try:
        statuses = [(await rig.send(request("REGISTER", KNOWN, ATTACKER), ATTACKER))[0] for _ in range(6)]
        assert [r.status for r in statuses] == [401] * 4 + [503] * 2
        assert statuses[-1].headers.get("retry-after") == "1"
        assert (await rig.register(OTHER, ATTACKER, "pw")).status == 200  # another ID from the same source
        assert rig.p.counters["ratelimit:register"] == 2
        answers = [(await rig.keepalive(OTHER, ATTACKER)).status for _ in range(5)]
        assert answers == [200] * 3 + [503] * 2 and rig.p.counters["ratelimit:message"] == 2
        rig.clock["mono"] += 1.0
        assert (await rig.keepalive(OTHER, ATTACKER)).status == 200  # a token is back
    finally:
        await rig.p.devices.stop()


async def test_rejected_input_is_counted_by_reason(rig: Rig) -> None:
    flood = "".join(f"X-H{i}: v\r\n" for i in range(200))
    await rig.send(request("OPTIONS", KNOWN, ATTACKER, headers=flood), ATTACKER)
    await rig.send(request("OPTIONS", KNOWN, ATTACKER, body=b"x" * 70000), ATTACKER)
    await rig.send(b"GARBAGE\r\n\r\n", ATTACKER)
    tcp = Peer("TCP", "198.51.100.66", 40000)
    await rig.send(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKx\r\n\r\n", tcp)
    c = rig.p.counters
    assert c["rejected:header-flood"] == 1 and c["rejected:too-large"] == 1 and c["rejected:malformed"] == 1
    assert c["rejected:no-content-length"] == 1


async def test_answers_to_our_own_queries_are_not_rate_limited(tmp_path: Path) -> None:
    """A lower platform answers our Catalog query one item per MESSAGE as fast as our 200s allow: those packets
    are what we asked for, so the MESSAGE limit (meant for unsolicited floods) does not apply to them."""
    rig = await make(tmp_path, GuardSettings(message_rate=1, message_burst=3))
    try:
        assert (await rig.register(OTHER, ATTACKER, "pw")).status == 200
        rig.p.catalog.expect(OTHER, 500, rig.p.mono())  # as catalog_sync does when it sends the query
        headers = "Content-Type: Application/MANSCDP+xml\r\n"
        statuses = []
        for n in range(10):
            body = (
                '<?xml version="1.0" encoding="GB2312"?>\r\n<Response><CmdType>Catalog</CmdType><SN>500</SN>'
                f"<DeviceID>{OTHER}</DeviceID><SumNum>20</SumNum><DeviceList Num=\"1\"><Item>"
                f"<DeviceID>340200000013100000{n:02d}</DeviceID><Name>ch{n}</Name><Status>ON</Status></Item>"
                "</DeviceList></Response>\r\n"
            ).encode()
            (answer,) = await rig.send(request("MESSAGE", OTHER, ATTACKER, headers=headers, body=body, cseq=10 + n),
                                       ATTACKER)  # fmt: skip
            statuses.append(answer.status)
        assert statuses == [200] * 10 and rig.p.counters.get("ratelimit:message", 0) == 0
        assert rig.p.catalog.progress(OTHER, 500) == (10, 20)
        rig.p.catalog.due(rig.p.mono() + 3600)  # the sync ends: keepalives are limited again
        answers = [(await rig.keepalive(OTHER, ATTACKER)).status for _ in range(5)]
        assert answers == [200] * 3 + [503] * 2
    finally:
        await rig.p.devices.stop()
