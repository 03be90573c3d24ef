"""DeviceService (gb28181/devices.py) over the MemoryStore with fake wall and monotonic clocks.

The batchers get a long interval so that nothing is flushed behind the test's back: ``await svc.flush()``
stands for "a batch period went by".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from gb28181.devices import DeviceService
from gb28181.keepalive import LivenessPolicy
from registry.memory import MemoryStore
from registry.models import Device, Registration

CAM = "34020000001320000001"
NVR = "34020000001180000001"
OLD = "34020000001320000099"
WINDOW = 180.0  # LivenessPolicy(60, 3)
UDP_ADDR = "192.0.2.10:5060"
UDP_PEER = f"udp:{UDP_ADDR}"
TCP_ADDR = "192.0.2.20:40001"
TCP_PEER = f"tcp:{TCP_ADDR}"


def peer_key(transport: str, address: str) -> str:
    """What the server passes: str(sip.endpoint.Peer), e.g. "tcp:192.0.2.20:40001", "tcp:[2001:db8::7]:5060"."""
    host, _, port = address.rpartition(":")
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{transport.lower()}:{host}:{port}"


@dataclass
class Clock:
    wall: float = 1_700_000_000.0
    mono: float = 5_000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@dataclass
class Env:
    store: MemoryStore
    clock: Clock
    svc: DeviceService
    services: list[DeviceService] = field(default_factory=list)

    async def new_service(self, *, strict_address: bool = False, start: bool = True) -> DeviceService:
        svc = DeviceService(
            self.store,
            LivenessPolicy(interval=60, max_missed=3),
            wall=lambda: self.clock.wall,
            mono=lambda: self.clock.mono,
            batch_interval=3600,
            strict_address=strict_address,
        )
        self.services.append(svc)
        if start:
            await svc.start()
        return svc

    async def register(
        self,
        device_id: str = CAM,
        expires: int = 3600,
        *,
        transport: str = "UDP",
        address: str = UDP_ADDR,
        svc: DeviceService | None = None,
    ) -> None:
        reg = Registration(
            device_id,
            self.clock.wall,
            expires,
            transport,
            address,
            "192.0.2.1:5060",
            f"<sip:{device_id}@{address}>",
            "IP Camera",
            "3.0",
        )
        await (svc or self.svc).register(reg, peer_key(transport, address))

    async def events(self, subject: str | None = CAM) -> list[str]:
        for svc in self.services:
            await svc.flush()
        return [e.event for e in await self.store.list_events(subject=subject)]

    async def stored(self, device_id: str = CAM) -> Device:
        for svc in self.services:
            await svc.flush()
        device = await self.store.get_device(device_id)
        assert device is not None
        return device


EnvFactory = Callable[..., Awaitable[Env]]


@pytest.fixture
async def make_env() -> AsyncIterator[EnvFactory]:
    envs: list[Env] = []

    async def make(*, strict_address: bool = False, devices: tuple[Device, ...] = ()) -> Env:
        store = MemoryStore()
        await store.open()
        for d in devices:
            await store.put_device(d)
        env = Env(store, Clock(), None)  # type: ignore[arg-type]
        env.svc = await env.new_service(strict_address=strict_address)
        envs.append(env)
        return env

    yield make
    for env in envs:
        for svc in env.services:
            await svc.stop()
        await env.store.close()


@pytest.fixture
async def env(make_env: EnvFactory) -> Env:
    return await make_env()


# ------------------------------------------------------------------------------------------- registration


async def test_registration_creates_the_device_and_a_registered_event(env: Env) -> None:
    await env.register()
    d = env.svc.devices[CAM]
    assert (d.status, d.transport, d.address, d.expires) == ("online", "UDP", UDP_ADDR, 3600)
    assert d.registered_at == env.clock.wall and d.expires_at == env.clock.wall + 3600
    assert env.svc.is_registered(CAM) and env.svc.liveness.is_online(CAM)
    stored = await env.stored()
    assert (stored.status, stored.address, stored.expires_at) == ("online", UDP_ADDR, env.clock.wall + 3600)
    assert stored.gb_version == "3.0" and stored.user_agent == "IP Camera"
    events = await env.store.list_events(subject=CAM)
    assert [(e.event, e.reason) for e in events] == [("registered", "new device")]


async def test_registration_is_durable_before_register_returns(env: Env) -> None:
    await env.register()
    # no flush: the registration itself went through the group commit
    stored = await env.store.get_device(CAM)
    assert stored is not None and stored.status == "online" and stored.expires == 3600


async def test_refresh_creates_no_duplicate_event(env: Env) -> None:
    await env.register()
    first = env.svc.devices[CAM].registered_at
    env.clock.advance(100)
    await env.register()
    env.clock.advance(100)
    await env.register()
    assert await env.events() == ["registered"]
    assert env.svc.devices[CAM].registered_at == first  # a refresh is not a new registration
    assert env.svc.devices[CAM].expires_at == env.clock.wall + 3600


async def test_unregistration(env: Env) -> None:
    await env.register()
    env.clock.advance(10)
    await env.register(expires=0)
    d = env.svc.devices[CAM]
    assert (d.status, d.expires, d.expires_at) == ("offline", 0, None)
    assert not env.svc.is_registered(CAM)
    assert await env.events() == ["registered", "unregistered"]
    stored = await env.stored()
    assert (stored.status, stored.expires_at) == ("offline", None)
    assert env.svc.tick() == []  # its deadlines are void
    env.clock.advance(WINDOW)
    assert env.svc.tick() == []


async def test_reregistration_after_unregistration_is_a_new_registration(env: Env) -> None:
    await env.register()
    await env.register(expires=0)
    env.clock.advance(50)
    await env.register()
    assert await env.events() == ["registered", "unregistered", "registered"]
    assert env.svc.devices[CAM].registered_at == env.clock.wall


# ------------------------------------------------------------------------------------------- keepalive


async def test_keepalive_from_an_unknown_or_unregistered_device(env: Env) -> None:
    assert env.svc.keepalive(CAM, "UDP", UDP_ADDR, UDP_PEER) == "not registered"
    await env.register()
    await env.register(expires=0)
    assert env.svc.keepalive(CAM, "UDP", UDP_ADDR, UDP_PEER) == "not registered"
    assert env.svc.devices[CAM].last_keepalive is None


async def test_keepalive_records_the_time(env: Env) -> None:
    await env.register()
    env.clock.advance(30)
    assert env.svc.keepalive(CAM, "UDP", UDP_ADDR, UDP_PEER) is None
    assert env.svc.devices[CAM].last_keepalive == env.clock.wall
    assert (await env.stored()).last_keepalive == env.clock.wall
    assert await env.events() == ["registered"]  # no event for a keepalive from an online device


async def test_keepalives_keep_it_online(env: Env) -> None:
    await env.register()
    for _ in range(10):
        env.clock.advance(WINDOW - 1)
        assert env.svc.keepalive(CAM, "UDP", UDP_ADDR, UDP_PEER) is None
        assert env.svc.tick() == []
    assert env.svc.devices[CAM].status == "online"


async def test_window_lapse_goes_offline_but_stays_registered(env: Env) -> None:
    await env.register()
    env.clock.advance(WINDOW - 1)
    assert env.svc.tick() == []
    env.clock.advance(1)
    assert env.svc.tick() == [(CAM, "keepalive-timeout")]
    assert env.svc.devices[CAM].status == "offline"
    assert env.svc.is_registered(CAM)
    assert env.svc.tick() == []
    assert await env.events() == ["registered", "keepalive-timeout"]
    assert (await env.stored()).status == "offline"


async def test_keepalive_brings_it_back_online(env: Env) -> None:
    await env.register()
    env.clock.advance(WINDOW)
    env.svc.tick()
    env.clock.advance(20)
    assert env.svc.keepalive(CAM, "UDP", UDP_ADDR, UDP_PEER) is None
    assert env.svc.devices[CAM].status == "online"
    assert await env.events() == ["registered", "keepalive-timeout", "online"]
    assert (await env.stored()).status == "online"
    env.clock.advance(WINDOW)
    assert env.svc.tick() == [(CAM, "keepalive-timeout")]


async def test_device_window_is_its_own_when_known(env: Env) -> None:
    await env.svc.put(Device(CAM, keepalive_interval=10, keepalive_count=2, provisioned=True))
    await env.register()
    env.clock.advance(20)
    assert env.svc.tick() == [(CAM, "keepalive-timeout")]


async def test_expiry(env: Env) -> None:
    await env.register(expires=120)  # shorter than the keepalive window
    env.clock.advance(119)
    assert env.svc.tick() == []
    env.clock.advance(1)
    assert env.svc.tick() == [(CAM, "expired")]
    d = env.svc.devices[CAM]
    assert (d.status, d.expires_at) == ("offline", None)
    assert not env.svc.is_registered(CAM)
    assert env.svc.keepalive(CAM, "UDP", UDP_ADDR, UDP_PEER) == "not registered"
    assert await env.events() == ["registered", "expired"]
    assert (await env.stored()).status == "offline"


async def test_expiry_after_a_timeout_is_still_recorded(env: Env) -> None:
    await env.register(expires=600)
    env.clock.advance(WINDOW)
    env.svc.tick()
    env.clock.advance(600)
    assert env.svc.tick() == [(CAM, "expired")]
    assert await env.events() == ["registered", "keepalive-timeout", "expired"]


# ------------------------------------------------------------------------------------------- TCP


async def test_tcp_connection_closed_takes_it_offline(env: Env) -> None:
    await env.register(transport="TCP", address=TCP_ADDR)
    env.svc.connection_closed("tcp:192.0.2.99:1")  # someone else's connection
    assert env.svc.devices[CAM].status == "online"
    env.svc.connection_closed(TCP_PEER)
    assert env.svc.devices[CAM].status == "offline"
    assert env.svc.is_registered(CAM)
    assert await env.events() == ["registered", "tcp-closed"]
    env.svc.connection_closed(TCP_PEER)  # once only
    assert await env.events() == ["registered", "tcp-closed"]
    # a keepalive on a new connection brings it back (DECISIONS.md: Liveness is not registration)
    new_addr = "192.0.2.20:40002"
    assert env.svc.keepalive(CAM, "TCP", new_addr, peer_key("TCP", new_addr)) is None
    assert env.svc.devices[CAM].status == "online"
    assert (await env.events())[-1] == "online"


async def test_udp_device_ignores_connection_close(env: Env) -> None:
    await env.register()
    env.svc.connection_closed(UDP_PEER)
    assert env.svc.devices[CAM].status == "online"


async def test_closing_a_superseded_tcp_connection_keeps_the_device_online(env: Env) -> None:
    await env.register(transport="TCP", address=TCP_ADDR)
    new_addr = "192.0.2.20:40002"
    env.clock.advance(5)
    await env.register(transport="TCP", address=new_addr)  # reconnected and re-registered
    env.svc.connection_closed(TCP_PEER)  # the old connection's close arrives late
    assert env.svc.devices[CAM].status == "online"
    env.svc.connection_closed(peer_key("TCP", new_addr))
    assert env.svc.devices[CAM].status == "offline"


async def test_many_devices_on_one_tcp_connection(env: Env) -> None:
    # A lower platform (or SIPp) registers many IDs over one connection; its close takes them all offline.
    await env.register(CAM, transport="TCP", address=TCP_ADDR)
    await env.register(NVR, transport="TCP", address=TCP_ADDR)
    env.svc.connection_closed(TCP_PEER)
    assert [env.svc.devices[d].status for d in (CAM, NVR)] == ["offline", "offline"]


async def test_tcp_connection_closed_over_ipv6(env: Env) -> None:
    address = "[2001:db8::7]:40001"  # as the server writes an IPv6 address: the text str(Peer) carries
    await env.register(transport="TCP", address=address)
    env.svc.connection_closed(peer_key("TCP", address))
    assert env.svc.devices[CAM].status == "offline"


# ------------------------------------------------------------------------------------------- addresses


async def test_port_change_is_a_nat_move(make_env: EnvFactory) -> None:
    env = await make_env(strict_address=True)
    await env.register()
    moved = "192.0.2.10:6000"
    assert env.svc.keepalive(CAM, "UDP", moved, peer_key("UDP", moved)) is None
    assert env.svc.devices[CAM].address == moved
    assert env.svc.counters.get("address-changed") == 1
    assert await env.events() == ["registered", "address-changed"]
    assert (await env.stored()).address == moved


async def test_ip_change_refused_under_strict_address(make_env: EnvFactory) -> None:
    env = await make_env(strict_address=True)
    await env.register()
    moved = "198.51.100.7:5060"
    refused = env.svc.keepalive(CAM, "UDP", moved, peer_key("UDP", moved))
    assert refused is not None and "strict_address" in refused and moved in refused
    assert env.svc.devices[CAM].address == UDP_ADDR
    assert env.svc.devices[CAM].last_keepalive is None
    env.clock.advance(WINDOW)
    assert env.svc.tick() == [(CAM, "keepalive-timeout")]  # a refused keepalive proves nothing
    # a re-REGISTER from the new address is the way
    await env.register(address=moved)
    assert env.svc.devices[CAM].address == moved
    assert env.svc.keepalive(CAM, "UDP", moved, peer_key("UDP", moved)) is None


async def test_ip_change_accepted_by_default(env: Env) -> None:
    await env.register()
    moved = "198.51.100.7:5060"
    assert env.svc.keepalive(CAM, "UDP", moved, peer_key("UDP", moved)) is None
    assert env.svc.devices[CAM].address == moved
    assert await env.events() == ["registered", "address-changed"]


async def test_registration_from_a_new_address(env: Env) -> None:
    await env.register()
    await env.register(address="198.51.100.7:5060")
    assert env.svc.devices[CAM].address == "198.51.100.7:5060"
    assert await env.events() == ["registered", "address-changed"]


async def test_batched_status_does_not_overwrite_a_later_registration(env: Env) -> None:
    await env.register()
    env.clock.advance(WINDOW)
    env.svc.tick()  # offline: (CAM, offline) waits in the status batch
    await env.register()  # durable now: status online in the store
    assert env.svc.devices[CAM].status == "online"
    assert (await env.stored()).status == "online"


async def test_batched_keepalive_does_not_overwrite_a_later_registration_address(env: Env) -> None:
    await env.register()
    moved = "192.0.2.10:6000"
    env.svc.keepalive(CAM, "UDP", moved, peer_key("UDP", moved))  # batched with address :6000
    await env.register(address="198.51.100.7:5060")  # durable now
    assert (await env.stored()).address == "198.51.100.7:5060"


# ------------------------------------------------------------------------------------------- restart


def stored_device(device_id: str, transport: str, address: str, *, expires_in: float, status: str) -> Device:
    now = Clock().wall
    return Device(
        device_id,
        transport=transport,
        address=address,
        registered_at=now - 1000,
        expires=3600,
        expires_at=now + expires_in,
        last_keepalive=now - 30,
        status=status,
        created_at=now - 5000,
    )


RESTART_DEVICES = (
    stored_device(CAM, "UDP", UDP_ADDR, expires_in=2000, status="online"),
    stored_device(NVR, "TCP", TCP_ADDR, expires_in=2000, status="online"),
    stored_device(OLD, "UDP", "192.0.2.30:5060", expires_in=-10, status="online"),
)


async def test_restart_rule(make_env: EnvFactory) -> None:
    env = await make_env(devices=RESTART_DEVICES)
    svc = env.svc
    # UDP: still registered and online until one window after the start
    assert svc.is_registered(CAM) and svc.devices[CAM].status == "online"
    # TCP: registered, but offline at once (its connection is gone)
    assert svc.is_registered(NVR) and svc.devices[NVR].status == "offline"
    # expired while the platform was down: offline, not registered
    assert not svc.is_registered(OLD) and svc.devices[OLD].status == "offline"
    assert await env.events(CAM) == []
    assert await env.events(NVR) == ["tcp-closed"]
    assert await env.events(OLD) == ["expired"]
    assert [(await env.stored(d)).status for d in (CAM, NVR, OLD)] == ["online", "offline", "offline"]

    env.clock.advance(WINDOW - 1)
    assert svc.tick() == []
    env.clock.advance(1)
    assert svc.tick() == [(CAM, "keepalive-timeout")]

    # a keepalive (over a new connection) brings the TCP device back without a REGISTER
    assert svc.keepalive(NVR, "TCP", "192.0.2.20:40009", peer_key("TCP", "192.0.2.20:40009")) is None
    assert svc.devices[NVR].status == "online"
    # the registration still ends at the stored expiry
    env.clock.advance(2000 - WINDOW)
    assert sorted(svc.tick()) == [(NVR, "expired"), (NVR, "keepalive-timeout"), (CAM, "expired")]
    assert not svc.is_registered(CAM) and not svc.is_registered(NVR)
    assert await env.events(NVR) == ["tcp-closed", "address-changed", "online", "keepalive-timeout", "expired"]


async def test_restart_keeps_a_device_that_keeps_sending_keepalives_online(make_env: EnvFactory) -> None:
    env = await make_env(devices=RESTART_DEVICES)
    for _ in range(5):
        env.clock.advance(60)
        assert env.svc.keepalive(CAM, "UDP", UDP_ADDR, UDP_PEER) is None
        assert env.svc.tick() == []
    assert env.svc.devices[CAM].status == "online"
    assert await env.events(CAM) == []


async def test_restart_after_a_clean_stop(env: Env) -> None:
    await env.register()
    await env.register(NVR, transport="TCP", address=TCP_ADDR)
    await env.svc.stop()
    env.services.remove(env.svc)
    env.clock.advance(10)
    again = await env.new_service()
    assert again.devices[CAM].status == "online" and again.is_registered(CAM)
    assert again.devices[NVR].status == "offline" and again.is_registered(NVR)


# ------------------------------------------------------------------------------------------- passwords


async def test_password_for(env: Env) -> None:
    svc = env.svc
    await svc.put(Device("34020000001320000010", provisioned=True))
    await svc.put(Device("34020000001320000011", provisioned=True, password="own-pw"))
    await svc.put(Device("34020000001320000012", provisioned=True, password="own-pw", enabled=False))
    await env.register("34020000001320000013")  # came in while unknown devices were allowed

    for allow in (True, False):
        assert svc.password_for("34020000001320000010", "global", allow) == "global"  # provisioned
        assert svc.password_for("34020000001320000011", "global", allow) == "own-pw"  # per-device
        assert svc.password_for("34020000001320000012", "global", allow) is None  # disabled
    assert svc.password_for("34020000001320000099", "global", True) == "global"  # unknown, allowed
    assert svc.password_for("34020000001320000099", "global", False) is None  # provisioned only
    assert svc.password_for("34020000001320000013", "global", True) == "global"
    assert svc.password_for("34020000001320000013", "global", False) is None  # not provisioned


async def test_disabling_a_registered_device_takes_it_offline(env: Env) -> None:
    await env.register()
    device = env.svc.snapshot(CAM)
    assert device is not None
    device.enabled = False
    await env.svc.put(device)
    assert not env.svc.is_registered(CAM)
    assert env.svc.devices[CAM].status == "offline"
    assert env.svc.password_for(CAM, "global", True) is None
    assert (await env.events())[-1] == "offline"


async def test_remove(env: Env) -> None:
    await env.register()
    assert await env.svc.remove(CAM) is True
    assert CAM not in env.svc.devices and not env.svc.is_registered(CAM)
    assert await env.store.get_device(CAM) is None
    assert await env.svc.remove(CAM) is False


# ------------------------------------------------------------------------------------------- platform


async def test_platform_start_and_stop_events(env: Env) -> None:
    await env.svc.flush()
    events = await env.store.list_events(subject="platform")
    assert [(e.event, e.kind) for e in events] == [("platform-start", "platform")]
    env.clock.advance(5)
    await env.svc.stop()
    env.services.remove(env.svc)
    events = await env.store.list_events(subject="platform")
    assert [(e.event, e.at) for e in events] == [
        ("platform-start", env.clock.wall - 5),
        ("platform-stop", env.clock.wall),
    ]


async def test_stop_flushes_pending_keepalives(env: Env) -> None:
    await env.register()
    env.clock.advance(7)
    env.svc.keepalive(CAM, "UDP", UDP_ADDR, UDP_PEER)
    await env.svc.stop()
    env.services.remove(env.svc)
    stored = await env.store.get_device(CAM)
    assert stored is not None and stored.last_keepalive == env.clock.wall
