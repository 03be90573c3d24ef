"""The device registry as the platform sees it: a write-through cache over a RegistryStore, liveness,
address tracking and the status event log (GB/T 28181-2022 §9.1, §9.6; DECISIONS.md).

Durability rules (registrar issue): a registration is committed (group commit) before its 200 is sent;
keepalive timestamps are batched (a crash loses at most the last batch); status events are batched too.
All times are passed in: ``wall`` for what is stored, ``mono`` for deadlines.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable

from gb28181.keepalive import EXPIRED, Liveness, LivenessPolicy
from registry.batching import GroupCommitter, PeriodicBatcher
from registry.models import OFFLINE, ONLINE, Device, Keepalive, Registration, StatusEvent
from registry.store import RegistryStore, StoreError

log = logging.getLogger("gb28181.devices")


class DeviceService:
    def __init__(
        self,
        store: RegistryStore,
        policy: LivenessPolicy,
        *,
        wall: Callable[[], float],
        mono: Callable[[], float],
        batch_interval: float = 1.0,
        strict_address: bool = False,
    ) -> None:
        self.store = store
        self.policy = policy
        self.wall = wall
        self.mono = mono
        self.strict_address = strict_address
        self.devices: dict[str, Device] = {}
        self.liveness = Liveness()
        # "tcp:ip:port" -> device IDs on that connection (one per camera; many behind a lower platform or SIPp)
        self.by_peer: dict[str, set[str]] = {}
        self.counters: dict[str, int] = {}
        self._dark: dict[str, set[str]] = {}  # channels taken offline because their device went offline
        self.on_channel_status: Callable[[], None] | None = None  # told after channels followed their device
        self._tasks: set[asyncio.Task[None]] = set()
        self._registrations = GroupCommitter(store.save_registrations)
        self._keepalives: PeriodicBatcher[Keepalive] = PeriodicBatcher(
            store.save_keepalives, batch_interval, key=lambda k: k.device_id
        )
        self._events: PeriodicBatcher[StatusEvent] = PeriodicBatcher(store.append_events, batch_interval, key=id)
        self._statuses: PeriodicBatcher[tuple[str, str]] = PeriodicBatcher(
            store.set_status, batch_interval, key=lambda c: c[0]
        )

    def count(self, key: str) -> None:
        self.counters[key] = self.counters.get(key, 0) + 1

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Load the registry and re-derive liveness (DECISIONS.md: a restart keeps registrations until their
        stored expiry; a silent device goes offline one window after the restart; TCP devices are offline
        until they reconnect)."""
        wall, mono = self.wall(), self.mono()
        for device in await self.store.list_devices():
            self.devices[device.id] = device
            if device.registered(wall) and device.enabled:
                online = device.status == ONLINE and device.transport != "TCP"
                remaining = device.expires_at - wall  # type: ignore[operator]
                self.liveness.registered(device.id, mono, remaining, self.window(device), online=online)
                if not online and device.status == ONLINE:
                    self._set_status(device, OFFLINE, "tcp-closed", "platform restart (TCP connection gone)")
            elif device.status == ONLINE:
                self._set_status(device, OFFLINE, "expired", "registration expired while the platform was down")
        self._events.add(StatusEvent(wall, "platform", "platform-start", kind="platform"))
        self._keepalives.start()
        self._events.start()
        self._statuses.start()

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._events.add(StatusEvent(self.wall(), "platform", "platform-stop", kind="platform"))
        await self._registrations.close()
        for name, batcher in (("keepalives", self._keepalives), ("statuses", self._statuses),
                              ("events", self._events)):  # fmt: skip
            try:
                await batcher.close()
            except StoreError as exc:  # storage still failing at shutdown: say what is lost, stop anyway
                log.error("%d %s not stored at shutdown: %s", batcher.pending, name, exc)

    def window(self, device: Device) -> float:
        return self.policy.window(device.keepalive_interval, device.keepalive_count)

    # ------------------------------------------------------------------ lookups for the registrar
    def password_for(self, device_id: str, global_password: str, allow_unknown: bool) -> str | None:
        device = self.devices.get(device_id)
        if device is None:
            return global_password if allow_unknown else None
        if not device.enabled:
            return None
        if device.password:
            return device.password
        if not device.provisioned and not allow_unknown:
            return None
        return global_password

    def is_registered(self, device_id: str) -> bool:
        return self.liveness.is_registered(device_id)

    # ------------------------------------------------------------------ hot path
    async def register(self, reg: Registration, peer_key: str) -> None:
        """Commit a (un)registration durably, then update memory and liveness. Raises StoreError."""
        await self._registrations.submit(reg)
        self._registered(reg, peer_key)

    def register_nowait(self, reg: Registration, peer_key: str, done: Callable[[BaseException | None], None]) -> None:
        """``register`` for the hot path: ``done(None)`` once the registration is durable and memory follows it,
        ``done(error)`` if it could not be stored. Raises StoreError at once when the committer is overloaded."""

        def committed(error: BaseException | None) -> None:
            if error is None:
                try:
                    self._registered(reg, peer_key)
                except Exception as exc:  # noqa: BLE001 - a bug of ours: the caller answers 500 and logs it
                    error = exc
            done(error)

        self._registrations.submit_nowait(reg, committed)

    def _registered(self, reg: Registration, peer_key: str) -> None:
        """Memory and liveness after a durable (un)registration."""
        # A keepalive still queued carries an address older than this durable registration: drop it.
        self._keepalives.discard(reg.device_id)
        device = self.devices.get(reg.device_id)
        created = device is None
        if device is None:
            device = self.devices[reg.device_id] = Device(reg.device_id, created_at=reg.at)
        mono = self.mono()
        if reg.expires > 0:
            was_registered = self.liveness.is_registered(device.id)
            moved = device.address and device.address != reg.address
            device.transport, device.address, device.local_address = reg.transport, reg.address, reg.local_address
            device.contact, device.user_agent = reg.contact, reg.user_agent
            device.gb_version = reg.gb_version or device.gb_version
            device.expires, device.expires_at = reg.expires, reg.at + reg.expires
            if not was_registered or device.registered_at is None:
                device.registered_at = reg.at
            device.status = ONLINE
            # The registration row already says online; queue it in the status batch too so an older queued
            # "offline" cannot land after it (last write wins).
            self._statuses.add((device.id, ONLINE))
            came_online = self.liveness.registered(device.id, mono, reg.expires, self.window(device))
            if reg.transport == "TCP":
                self.by_peer.setdefault(peer_key, set()).add(device.id)
            if came_online or not was_registered:
                why = "new device" if created else ("refresh after offline" if was_registered else "")
                self._events.add(StatusEvent(reg.at, device.id, "registered", reason=why))
                self._channels_follow(device.id, True)
            if moved:
                self.count("address-changed")
                self._events.add(StatusEvent(reg.at, device.id, "address-changed", reason=reg.address))
        else:
            was_online = self.liveness.unregistered(device.id)
            device.expires, device.expires_at, device.status = 0, None, OFFLINE
            self._statuses.add((device.id, OFFLINE))
            self._events.add(StatusEvent(reg.at, device.id, "unregistered", reason="online" if was_online else ""))
            self._channels_follow(device.id, False)

    def keepalive(self, device_id: str, transport: str, address: str, peer_key: str) -> str | None:
        """A keepalive from a registered device. Returns None when accepted, else why it is refused."""
        device = self.devices.get(device_id)
        if device is None or not self.liveness.is_registered(device_id):
            return "not registered"
        wall = self.wall()
        if address != device.address or transport != device.transport:
            old_ip = device.address.rsplit(":", 1)[0]
            new_ip = address.rsplit(":", 1)[0]
            if self.strict_address and old_ip != new_ip:
                return f"address changed from {device.address} to {address} (strict_address: re-REGISTER)"
            self.count("address-changed")
            log.info("device %s moved %s -> %s (%s)", device_id, device.address, address, transport)
            self._events.add(StatusEvent(wall, device_id, "address-changed", reason=f"{device.address} -> {address}"))
            device.address, device.transport = address, transport
        if transport == "TCP":
            self.by_peer.setdefault(peer_key, set()).add(device_id)
        device.last_keepalive = wall
        self._keepalives.add(Keepalive(device_id, wall, transport, address))
        if self.liveness.seen(device_id, self.mono(), self.window(device)):
            self._set_status(device, ONLINE, "online", "keepalive")
        return None

    def connection_closed(self, peer_key: str) -> None:
        """A TCP connection closed: every device that spoke over it last goes offline (GB/T 28181 §9.1.1 f)."""
        for device_id in self.by_peer.pop(peer_key, ()):
            device = self.devices.get(device_id)
            if device is None or device.transport != "TCP" or device.address != peer_key.split(":", 1)[1]:
                continue  # it has moved to another connection or transport since
            if self.liveness.set_offline(device_id):
                self._set_status(device, OFFLINE, "tcp-closed", peer_key)

    def tick(self) -> list[tuple[str, str]]:
        """Apply the liveness transitions due now; returns them (device_id, reason)."""
        due = self.liveness.due(self.mono())
        for device_id, reason in due:
            device = self.devices.get(device_id)
            if device is None:
                continue
            if reason == EXPIRED:
                device.expires_at = None
                device.expires = 0
            if device.status != OFFLINE or reason == EXPIRED:
                self._set_status(device, OFFLINE, reason, "")
        return due

    def _set_status(self, device: Device, status: str, event: str, reason: str) -> None:
        device.status = status
        self._statuses.add((device.id, status))
        self._events.add(StatusEvent(self.wall(), device.id, event, reason=reason))
        log.info("device %s %s: %s %s", device.id, status, event, reason)
        self._channels_follow(device.id, status == ONLINE)

    def _channels_follow(self, device_id: str, online: bool) -> None:
        """A device going offline takes its online channels offline (event channel-device-offline); when it
        comes back, the channels it took down come back (DECISIONS.md: Status events)."""
        if online and device_id not in self._dark:
            return  # nothing this device took down: the usual registration needs no task
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous unit test): nothing to schedule
            return
        task = loop.create_task(self._follow(device_id, online))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(self, device_id: str, online: bool) -> None:
        try:
            if online:
                ids = self._dark.pop(device_id, set())
                changes = [(device_id, cid, ONLINE) for cid in sorted(ids)]
                event, why = "channel-on", "device online"
            else:
                channels = await self.store.list_channels(device_id=device_id, status=ONLINE)
                changes = [(device_id, c.id, OFFLINE) for c in channels]
                self._dark.setdefault(device_id, set()).update(c.id for c in channels)
                event, why = "channel-device-offline", "device offline"
            if changes:
                await self.store.set_channel_status(changes)
                if self.on_channel_status is not None:
                    self.on_channel_status()
                now = self.wall()
                for _, cid, _ in changes:
                    self._events.add(StatusEvent(now, cid, event, kind="channel", reason=why))
        except StoreError as exc:
            log.error("channels of %s not updated after the device went %s: %s", device_id,
                      "online" if online else "offline", exc)  # fmt: skip

    # ------------------------------------------------------------------ operator actions
    OPERATOR_FIELDS = (
        "name",
        "password",
        "charset",
        "stream_mode",
        "keepalive_interval",
        "keepalive_count",
        "enabled",
        "provisioned",
    )

    async def put(self, device: Device) -> Device:
        """Store an operator's add/set. Only operator fields change in the cache: what the device told us
        meanwhile (address, keepalives, registration) is kept."""
        await self.store.put_device(device)
        current = self.devices.get(device.id)
        if current is None:
            self.devices[device.id] = current = device
        else:
            was_enabled = current.enabled
            for name in self.OPERATOR_FIELDS:
                setattr(current, name, getattr(device, name))
            if was_enabled and not current.enabled and self.liveness.unregistered(current.id):
                current.expires, current.expires_at = 0, None
                self._set_status(current, OFFLINE, "offline", "disabled by operator")
        return dataclasses.replace(current)

    async def remove(self, device_id: str) -> bool:
        removed = await self.store.remove_device(device_id)
        self.devices.pop(device_id, None)
        if self.liveness.unregistered(device_id):
            self._events.add(StatusEvent(self.wall(), device_id, "offline", reason="removed by operator"))
        return removed

    async def learn(self, device_id: str, changes: dict[str, object]) -> None:
        """Store what a device told about itself (DeviceInfo, BasicParam). A new keepalive window applies from
        the next keepalive on."""
        device = self.devices.get(device_id)
        if device is None:
            return
        for name, value in changes.items():
            setattr(device, name, value)
        await self.store.put_device(dataclasses.replace(device))

    async def flush(self) -> None:
        for batcher in (self._keepalives, self._statuses, self._events):
            await batcher.flush_now()

    def snapshot(self, device_id: str) -> Device | None:
        device = self.devices.get(device_id)
        return dataclasses.replace(device) if device is not None else None
