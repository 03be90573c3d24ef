"""The composition root's cascade part (we are a superior's lower platform): drives each superior's registration
machine (gb28181.cascade.registration) on the event loop, answers the superior's MESSAGEs (Catalog from the shared
catalog in serial packets, DeviceInfo/DeviceStatus about ourselves, queries and controls for shared IDs relayed to
the device that owns them) and reports status to operators. ``Platform`` (gb28181/server.py) inherits it; IO lives
here and in server.py only, the protocol decisions in gb28181/cascade/.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gb28181.cascade.registration import REGISTERED, Send, StateChanged, UpstreamRegistration
from gb28181.cascade.relay import rewrite as rewrite_body
from gb28181.cascade.share import TCP_MAX_BODY, UDP_MAX_BODY, SharedCatalog
from gb28181.cascade.share import build as build_shared
from gb28181.cascade.share import packets as catalog_packets
from gb28181.cascade.subscription import (
    Snapshot,
    changes,
    granted_expires,
    initial_items,
    notify_bodies,
    snapshot,
    subscription_kind,
)
from gb28181.config import Config, UpstreamConfig
from gb28181.manscdp import ManscdpError, parse_envelope
from gb28181.manscdp.codec import decode as decode_message
from gb28181.manscdp.codec import encode as encode_message
from gb28181.manscdp.messages import DeviceInfoResponse, DeviceStatusResponse
from gb28181.sn import Correlator, QueryError
from registry.models import Share, StatusEvent
from registry.store import RegistryStore, StoreError
from sip.aio import SipRunner, TransactionError
from sip.dialog import Dialog
from sip.endpoint import Endpoint, Peer, RequestReceived
from sip.errors import LocalProtocolError, RemoteProtocolError
from sip.headers import Headers
from sip.message import Request, Response, new_call_id, new_tag, warning_value

log = logging.getLogger("gb28181.cascade")

# Queries and controls a superior may address to a shared ID; they are relayed to the device that owns it.
RELAYED = frozenset({"DeviceInfo", "DeviceStatus", "DeviceControl", "ConfigDownload", "PresetQuery", "RecordInfo"})
MULTI_PACKET = frozenset({"RecordInfo"})  # answered in several Response packets, each relayed up as it comes


@dataclass
class RelayRoute:
    """Where the Responses of one relayed multi-packet query go: packets queued in arrival order."""

    queue: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)


@dataclass
class Subscription:
    """A superior's Catalog subscription to us (App.N): its dialog, the Event value to echo, until when (monotonic),
    and what it was last told."""

    dialog: Dialog
    event: str
    expires_at: float
    known: Snapshot = field(default_factory=dict)
    kind: str = "catalog"  # or "alarm", "position": what its NOTIFYs carry


@dataclass
class UpstreamLink:
    """One superior as the composition root drives it: its registration machine, where it is, its timer."""

    cfg: UpstreamConfig
    peer: Peer
    reg: UpstreamRegistration
    addresses: set[str]  # the superior's resolved IPs: its requests must come from one of them
    since: float = 0.0  # wall time of the last state change
    timer: asyncio.TimerHandle | None = None
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    subscriptions: dict[tuple[str, str, str], Subscription] = field(default_factory=dict)
    notify_scheduled: bool = False


class UpstreamDriver:
    """Mixed into ``Platform``; uses its config, store, endpoint, runner, device service and correlator, and its
    ``count``, ``_spawn``, ``_registered`` and ``_send_to_device``."""

    cfg: Config
    store: RegistryStore
    endpoint: Endpoint
    runner: SipRunner | None
    devices: Any
    correlator: Correlator
    upstreams: dict[str, UpstreamLink]
    relay_routes: dict[tuple[str, int], RelayRoute]
    wall: Callable[[], float]
    mono: Callable[[], float]
    tz: Any
    cascade_legs: Callable[[str], list[dict[str, Any]]]  # gb28181/server_cascade_media.py

    async def start_upstreams(self) -> None:
        """Register to every ``[[upstream]]`` (gb28181.cascade.registration, driven here on the event loop). The
        config's ``share`` seeds the database only while it holds no shares for that superior (DECISIONS.md)."""
        loop = asyncio.get_running_loop()
        for up in self.cfg.upstream:
            try:
                if up.share and not await self.store.list_shares(up.id):
                    await self.store.put_shares([Share(up.id, item, created_at=self.wall()) for item in up.share])
            except StoreError as exc:
                log.error("superior %s: the config's shares were not stored: %s", up.id, exc)
            peer = Peer(up.transport.upper(), up.host, up.port)
            try:
                infos = await loop.getaddrinfo(up.host, up.port, type=socket.SOCK_DGRAM)
                addresses = {str(info[4][0]) for info in infos}
            except OSError as exc:
                log.warning("superior %s: cannot resolve %s (%s); its requests are matched by ID only", up.id,
                            up.host, exc)  # fmt: skip
                addresses = set()
            assert self.endpoint.local_address is not None
            host, port = self.endpoint.local_address(peer)
            reg = UpstreamRegistration(up, self.cfg.sip.id, self.cfg.domain, f"sip:{self.cfg.sip.id}@{host}:{port}",
                                       rng=random.random)  # fmt: skip
            link = UpstreamLink(up, peer, reg, addresses, since=self.wall())
            self.upstreams[up.id] = link
            log.info("superior %s at %s: registering as %s", up.id, peer, self.cfg.sip.id)
            self._upstream_apply(link, reg.start(self.mono()))

    async def stop_upstreams(self, timeout: float = 5.0) -> None:
        """Unregister from every superior we are registered to and wait (bounded) for the answers."""
        for link in self.upstreams.values():
            self._upstream_apply(link, link.reg.stop(self.mono()))
        waiting = [link.stopped.wait() for link in self.upstreams.values()]
        if waiting:
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.gather(*waiting)
            except TimeoutError:
                log.warning("superiors did not answer our unregistration within %.0f s", timeout)
        for link in self.upstreams.values():
            if link.timer is not None:
                link.timer.cancel()

    def _upstream_apply(self, link: UpstreamLink, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self._upstream_send(link, action)
            elif isinstance(action, StateChanged):
                link.since = self.wall()
                log.info("superior %s: %s (%s)", link.cfg.id, action.state, action.reason)
                if action.online is not None:
                    event = "upstream-online" if action.online else "upstream-offline"
                    self.count(f"upstream:{event}")
                    ev = StatusEvent(self.wall(), link.cfg.id, event, kind="platform", reason=action.reason[:200])
                    self._spawn(self._record_events([ev]))
                if action.state == "stopped":
                    link.stopped.set()
        if link.timer is not None:
            link.timer.cancel()
            link.timer = None
        deadline = link.reg.next_deadline()
        if deadline is not None:
            link.timer = asyncio.get_running_loop().call_at(deadline, self._upstream_tick, link)

    def _upstream_tick(self, link: UpstreamLink) -> None:
        link.timer = None
        self._upstream_apply(link, link.reg.timer(self.mono()))

    def _upstream_send(self, link: UpstreamLink, action: Send) -> None:
        if self.runner is None:
            self._upstream_apply(link, link.reg.failure(action.key, "the SIP transport is not running", self.mono()))
            return
        try:
            future = self.runner.request(action.request, link.peer)
        except LocalProtocolError as exc:
            self._upstream_apply(link, link.reg.failure(action.key, str(exc), self.mono()))
            return

        def done(fut: asyncio.Future[Response]) -> None:
            if fut.cancelled():
                return
            exc = fut.exception()
            now = self.mono()
            if exc is not None:
                reason = exc.reason if isinstance(exc, TransactionError) else str(exc)
                self._upstream_apply(link, link.reg.failure(action.key, reason, now))
            else:
                self._upstream_apply(link, link.reg.response(action.key, fut.result(), now))

        future.add_done_callback(done)

    async def _record_events(self, events: list[StatusEvent]) -> None:
        try:
            await self.store.append_events(events)
        except StoreError as exc:
            log.error("status events not stored: %s", exc)

    def upstream_status(self) -> list[dict[str, Any]]:
        """Each superior as operators see it: state, since, next attempt (wall times), last error, shares, the
        media legs it holds."""
        now_mono, now_wall = self.mono(), self.wall()
        out = []
        for link in self.upstreams.values():
            st = link.reg.status()
            st["since"] = link.since
            nxt = st["next_attempt"]
            st["next_attempt"] = None if nxt is None else now_wall + (float(nxt) - now_mono)  # type: ignore[arg-type]
            st["media_legs"] = self.cascade_legs(link.cfg.id)  # its INVITEs we serve (server_cascade_media.py)
            out.append(st)
        return out

    def _superior(self, user: str, peer: Peer) -> UpstreamLink | None:
        """The configured superior a request comes from: its From ID and its source address (DECISIONS.md)."""
        link = self.upstreams.get(user)
        if link is None or (link.addresses and peer.host not in link.addresses):
            return None
        return link

    def _on_superior_message(self, event: RequestReceived, link: UpstreamLink) -> None:
        """A MESSAGE from a superior: 200 at once, the answer later in its own MESSAGE (§9.3.2, spec digest §11)."""
        now = self.mono()
        req = event.request
        if (req.content_type or "") != "application/manscdp+xml":
            self.endpoint.reply(event, 415, headers=[("Accept", "Application/MANSCDP+xml")], now=now)
            return
        try:
            env = parse_envelope(req.body)
        except ManscdpError as exc:
            log.info("MESSAGE from superior %s: unreadable MANSCDP (%s)", link.cfg.id, exc.reason)
            self.endpoint.reply(event, 400, "Bad MANSCDP Body", headers=[("Warning", warning_value(exc.reason))],
                                now=now)  # fmt: skip
            return
        self.count(f"upstream:{env.kind}:{env.cmd_type}")
        self.endpoint.reply(event, 200, now=now)
        our_id = self.cfg.sip.id
        if env.kind == "Query" and env.cmd_type == "Catalog":
            self._spawn(self._catalog_up(link, env.sn or 0, env.device_id or self.cfg.sip.id))
        elif env.kind == "Query" and env.cmd_type in ("DeviceInfo", "DeviceStatus") and env.device_id == our_id:
            self._spawn(self._answer_up(link, env.cmd_type, env.sn or 0))
        elif env.kind in ("Query", "Control") and env.cmd_type in RELAYED:
            self._spawn(self._relay_down(link, env.kind, env.cmd_type, env.sn, env.device_id, req.body))
        else:
            log.info("superior %s: %s %s SN %s not handled (answered 200)", link.cfg.id, env.kind, env.cmd_type, env.sn)

    async def shared_catalog(self, upstream_id: str) -> SharedCatalog:
        """What this superior sees now (gb28181.cascade.share)."""
        shares = await self.store.list_shares(upstream_id)
        channels = await self.store.list_channels()
        online = {d.id: d.status == "online" for d in self.devices.devices.values()}
        name = self.upstreams[upstream_id].cfg.name if upstream_id in self.upstreams else ""
        return build_shared(self.cfg.sip.id, name, shares, channels, online)

    async def _catalog_up(self, link: UpstreamLink, sn: int, target: str) -> None:
        """Answer a superior's Catalog query: packets sent one at a time, each after the previous one's 200
        (App.M serial sending)."""
        catalog = await self.shared_catalog(link.cfg.id)
        items = catalog.subset(target, self.cfg.sip.id)
        budget = TCP_MAX_BODY if link.peer.reliable else UDP_MAX_BODY
        bodies = catalog_packets(items, sn=sn, device_id=target, batch=link.cfg.catalog_batch,
                                 charset=link.cfg.charset, max_body=budget)  # fmt: skip
        for i, body in enumerate(bodies):
            try:
                await self._send_up(link, body)
            except QueryError as exc:
                self.count("upstream:catalog-failed")
                log.warning("catalog to superior %s stopped at packet %d/%d: %s", link.cfg.id, i + 1, len(bodies),
                            exc.reason)  # fmt: skip
                return
        self.count("upstream:catalog-sent")
        log.info("catalog to superior %s: %d items in %d packets (SN %s)", link.cfg.id, len(items), len(bodies), sn)

    async def _answer_up(self, link: UpstreamLink, cmd_type: str, sn: int) -> None:
        """DeviceInfo / DeviceStatus about ourselves (A.2.6.5, A.2.6.6)."""
        our = self.cfg.sip.id
        if cmd_type == "DeviceInfo":
            count = sum(1 for i in (await self.shared_catalog(link.cfg.id)).items if i.parental == 0)
            message: Any = DeviceInfoResponse(sn=sn, device_id=our, result="OK", device_name=link.cfg.name or
                                              "gb28181-py", manufacturer="gb28181-py", model="platform",
                                              firmware="0.1", channel=count)  # fmt: skip
        else:
            when = datetime.datetime.fromtimestamp(self.wall(), self.tz).strftime("%Y-%m-%dT%H:%M:%S")
            message = DeviceStatusResponse(sn=sn, device_id=our, result="OK", online="ONLINE", status="OK",
                                           device_time=when)  # fmt: skip
        try:
            await self._send_up(link, encode_message(message, charset=link.cfg.charset))
        except QueryError as exc:
            log.info("%s answer to superior %s failed: %s", cmd_type, link.cfg.id, exc.reason)

    async def _relay_down(self, link: UpstreamLink, kind: str, cmd_type: str, sn: int | None, shared_id: str,
                          body: bytes) -> None:  # fmt: skip
        """A query or control for a shared ID goes to the device that owns it with our SN and its real ID; the
        device's Response (when one comes within the query timeout) goes up with the superior's SN and the
        shared ID (spec digest §11)."""
        target = (await self.shared_catalog(link.cfg.id)).targets.get(shared_id)
        if target is None:
            log.info("superior %s: %s %s for %s, which is not shared with it", link.cfg.id, kind, cmd_type, shared_id)
            return
        device_id, channel_id = target
        try:
            device = self._registered(device_id)
            our_sn = self.correlator.new_sn(device_id)
            down = rewrite_body(body, sn=our_sn, device_id=channel_id, charset=device.charset)
            if cmd_type in MULTI_PACKET:  # its packets go by a relay route, not the correlator
                await self._relay_packets(link, device_id, our_sn, cmd_type, down, sn, shared_id, channel_id)
                return
            answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            self.correlator.add(device_id, our_sn, cmd_type, answer)
        except (QueryError, ManscdpError) as exc:
            log.info("superior %s: %s %s for %s not relayed: %s", link.cfg.id, kind, cmd_type, shared_id, exc)
            return
        try:
            async with asyncio.timeout(self.cfg.sip.query_timeout):
                await self._send_to_device(device_id, cmd_type, down)
                data = await answer
            await self._send_up(link, rewrite_body(data, sn=sn, device_id=shared_id, charset=link.cfg.charset))
            self.count("upstream:relayed")
        except TimeoutError:
            if kind == "Query":
                log.info("superior %s: %s for %s: device %s did not answer", link.cfg.id, cmd_type, shared_id,
                         device_id)  # fmt: skip
        except (QueryError, ManscdpError) as exc:
            log.info("superior %s: %s %s for %s: %s", link.cfg.id, kind, cmd_type, shared_id, exc)
        finally:
            self.correlator.cancel(device_id, our_sn)

    async def _relay_packets(self, link: UpstreamLink, device_id: str, our_sn: int, cmd_type: str, down: bytes,
                             sn: int | None, shared_id: str, channel_id: str) -> None:  # fmt: skip
        """A multi-packet answer (RecordInfo, A.2.6.7): each packet goes up as it arrives, in order, until the
        items reach SumNum or the device falls silent for the query timeout."""
        route = RelayRoute()
        self.relay_routes[(device_id, our_sn)] = route
        received, total, packets = 0, None, 0
        try:
            async with asyncio.timeout(self.cfg.sip.query_timeout):
                await self._send_to_device(device_id, cmd_type, down)
            while total is None or received < total:
                async with asyncio.timeout(self.cfg.sip.query_timeout):
                    data = await route.queue.get()
                message = decode_message(data).message
                total = getattr(message, "sum_num", None) or 0
                received += len(getattr(message, "items", ()))
                packets += 1
                await self._send_up(link, rewrite_body(data, sn=sn, device_id=shared_id, charset=link.cfg.charset,
                                                       rename={channel_id: shared_id}))  # fmt: skip
            self.count("upstream:relayed")
            log.info("superior %s: %s for %s relayed: %d items in %d packets", link.cfg.id, cmd_type, shared_id,
                     received, packets)  # fmt: skip
        except TimeoutError:
            log.info("superior %s: %s for %s: device %s fell silent after %d of %s items", link.cfg.id, cmd_type,
                     shared_id, device_id, received, total)  # fmt: skip
        except (QueryError, ManscdpError) as exc:
            log.info("superior %s: %s for %s: %s", link.cfg.id, cmd_type, shared_id, exc)
        finally:
            self.relay_routes.pop((device_id, our_sn), None)

    def relay_response(self, device_id: str, sn: int | None, body: bytes) -> bool:
        """A device's Response that belongs to a relayed multi-packet query: queued for its superior."""
        route = self.relay_routes.get((device_id, sn)) if sn is not None else None
        if route is None:
            return False
        route.queue.put_nowait(body)
        return True

    async def _send_up(self, link: UpstreamLink, body: bytes) -> None:
        """One MANSCDP MESSAGE to a superior; QueryError unless it answers 2xx."""
        if self.runner is None:
            raise QueryError("the SIP transport is not running", kind="transport")
        request = Request(
            "MESSAGE",
            f"sip:{link.cfg.id}@{link.peer.host}:{link.peer.port}",
            Headers([
                ("From", f"<sip:{self.cfg.sip.id}@{self.cfg.domain}>;tag={new_tag()}"),
                ("To", f"<sip:{link.cfg.id}@{link.cfg.sip_domain}>"),
                ("Call-ID", new_call_id()),
                ("CSeq", "1 MESSAGE"),
                ("Content-Type", "Application/MANSCDP+xml"),
            ]),
            body,
        )  # fmt: skip
        try:
            response = await self.runner.request(request, link.peer)
        except TransactionError as exc:
            raise QueryError(f"superior {link.cfg.id}: {exc.reason}", kind="transport") from exc
        if response.status >= 300:
            raise QueryError(f"superior {link.cfg.id} answered {response.status}", kind="refused")

    async def alarm_up(self, device_id: str, source_id: str, body: bytes) -> int:
        """An alarm of a shared device or channel goes up to every registered superior that sees it (GB/T 28181
        §9.4, alarm notification up the hierarchy): that superior's ID for the source, an SN of ours, its charset.
        Returns how many superiors took it; a superior that refuses or is silent is logged, not retried."""
        sent = 0
        for link in list(self.upstreams.values()):
            if link.reg.state != REGISTERED:
                continue
            shared = await self.shared_catalog(link.cfg.id)
            shared_id = shared.shared_ids.get((device_id, source_id))
            if shared_id is None:
                continue
            up = rewrite_body(body, sn=self.correlator.new_sn(link.cfg.id), device_id=shared_id,
                              charset=link.cfg.charset)  # fmt: skip
            if await self._notify_event(link, "alarm", up):
                self.count("alarm:up")  # as NOTIFYs of its alarm subscription
                sent += 1
                continue
            try:
                await self._send_up(link, up)  # no alarm subscription: the MESSAGE form (§9.4)
            except QueryError as exc:
                self.count("alarm:up-failed")
                log.info("alarm of %s/%s not taken by superior %s: %s", device_id, source_id, link.cfg.id, exc.reason)
                continue
            self.count("alarm:up")
            sent += 1
        return sent

    async def positions_up(self, device_id: str, target_ids: list[str], body: bytes) -> int:
        """Mobile positions of shared devices or channels go to superiors subscribed to them (2022 §9.11), each
        position under that superior's ID for its target. Returns how many NOTIFYs were taken."""
        sent = 0
        for link in list(self.upstreams.values()):
            if link.reg.state != REGISTERED or not any(s.kind == "position" for s in link.subscriptions.values()):
                continue
            shared = await self.shared_catalog(link.cfg.id)
            rename = {t: s for t in target_ids if (s := shared.shared_ids.get((device_id, t))) is not None}
            if not rename:
                continue
            if len(rename) < len(target_ids):  # forwarding would show the superior IDs it is not shared
                log.info("positions of %s only partly shared with %s: not forwarded", device_id, link.cfg.id)
                continue
            # One target (the 2016 flat form): it is the body's DeviceID. Several (the 2022 list): we report them.
            top = rename[target_ids[0]] if len(target_ids) == 1 else self.cfg.sip.id
            up = rewrite_body(body, sn=self.correlator.new_sn(link.cfg.id), device_id=top,
                              charset=link.cfg.charset, rename=rename)  # fmt: skip
            if await self._notify_event(link, "position", up):
                self.count("position:up")
                sent += 1
        return sent

    def _expire_subscriptions(self, link: UpstreamLink, now: float) -> None:
        for key in [k for k, sub in link.subscriptions.items() if sub.expires_at <= now]:
            self.endpoint.drop_dialog(link.subscriptions.pop(key).dialog)

    async def _notify_event(self, link: UpstreamLink, kind: str, body: bytes) -> bool:
        """``body`` as a NOTIFY in every live ``kind`` subscription of this superior; whether any took it."""
        self._expire_subscriptions(link, self.mono())
        taken = False
        for sub in [s for s in link.subscriptions.values() if s.kind == kind]:
            taken |= await self._send_notify(link, sub, body)
        return taken

    # ------------------------------------------------------------------ a superior's Catalog subscription
    def _on_subscribe(self, event: RequestReceived) -> None:
        """SUBSCRIBE: only configured superiors subscribe to us (their Catalog, App.N); others get 403."""
        link = self._superior(event.request.from_.user or "", event.peer)
        now = self.mono()
        if link is None:
            log.info("SUBSCRIBE from %s (%s) refused 403: not a configured superior", event.request.from_.user,
                     event.peer)  # fmt: skip
            self.endpoint.reply(event, 403, now=now)
            return
        req = event.request
        cmd_type = ""
        if req.body:
            try:
                cmd_type = parse_envelope(req.body).cmd_type
            except ManscdpError as exc:
                self.endpoint.reply(event, 400, "Bad MANSCDP Body", headers=[("Warning", warning_value(exc.reason))],
                                    now=now)  # fmt: skip
                return
        event_header = req.headers.get("event")
        kind = subscription_kind(event_header, cmd_type)
        if event.dialog is None and kind is None:
            self.endpoint.reply(event, 489, headers=[("Allow-Events", "Catalog, presence")], now=now)  # RFC 6665
            return
        try:
            expires = granted_expires(req.expires)
        except RemoteProtocolError as exc:
            self.endpoint.reply(event, 400, headers=[("Warning", warning_value(exc.reason))], now=now)
            return
        assert self.endpoint.local_address is not None
        host, port = self.endpoint.local_address(event.peer)
        headers = [("Expires", str(expires)), ("Contact", f"<sip:{self.cfg.sip.id}@{host}:{port}>")]
        if event.dialog is not None:  # refresh or end (RFC 6665 §4.2.1.2)
            sub = link.subscriptions.get(event.dialog.id)
            self.endpoint.reply(event, 200, headers=headers, now=now)
            if sub is not None and expires == 0:
                del link.subscriptions[event.dialog.id]
                self.endpoint.drop_dialog(event.dialog)
                log.info("superior %s ended its %s subscription", link.cfg.id, sub.kind)
            elif sub is not None:
                sub.expires_at = now + expires
            return
        response = self.endpoint.reply(event, 200, headers=headers, now=now)
        dialog = self.endpoint.dialogs.get((req.call_id, response.to.tag or "", req.from_.tag or ""))
        if expires == 0 or dialog is None:
            return
        kind = kind or "catalog"
        sub = Subscription(dialog, event_header or "Catalog", now + expires, kind=kind)
        link.subscriptions[dialog.id] = sub
        self.count(f"upstream:subscribed:{kind}")
        log.info("superior %s subscribed to our %s for %d s", link.cfg.id, kind, expires)
        if kind == "catalog":
            self._spawn(self._notify_initial(link, sub))

    async def _notify_initial(self, link: UpstreamLink, sub: Subscription) -> None:
        """App.N: report what is offline right away; the rest is assumed ON."""
        catalog = await self.shared_catalog(link.cfg.id)
        sub.known = snapshot(catalog)
        await self._notify(link, sub, initial_items(catalog))

    def catalog_changed(self) -> None:
        """Something the superiors may see changed (channel status, a catalog sync, shares): tell subscribers,
        coalescing bursts into one NOTIFY round per superior."""
        for link in self.upstreams.values():
            if any(s.kind == "catalog" for s in link.subscriptions.values()) and not link.notify_scheduled:
                link.notify_scheduled = True
                self._spawn(self._notify_changes(link))

    async def _notify_changes(self, link: UpstreamLink) -> None:
        await asyncio.sleep(0.2)  # coalesce a burst (a device going offline takes all its channels)
        link.notify_scheduled = False
        now = self.mono()
        self._expire_subscriptions(link, now)
        catalog_subs = [s for s in link.subscriptions.values() if s.kind == "catalog"]
        if not catalog_subs:
            return
        catalog = await self.shared_catalog(link.cfg.id)
        for sub in catalog_subs:
            items = changes(sub.known, catalog)
            sub.known = snapshot(catalog)
            await self._notify(link, sub, items)

    async def _notify(self, link: UpstreamLink, sub: Subscription, items: list[Any]) -> None:
        """Catalog NOTIFYs in the subscription's dialog, one after the other (App.M)."""
        if not items or self.runner is None:
            return
        sn = self.correlator.new_sn(link.cfg.id)
        bodies = notify_bodies(items, sn=sn, device_id=self.cfg.sip.id, batch=link.cfg.catalog_batch,
                               charset=link.cfg.charset)  # fmt: skip
        for body in bodies:
            if not await self._send_notify(link, sub, body):
                return
        self.count("upstream:notified")
        log.info("catalog NOTIFY to superior %s: %s", link.cfg.id, ", ".join(f"{i.device_id} {i.event}" for i in items))

    async def _send_notify(self, link: UpstreamLink, sub: Subscription, body: bytes) -> bool:
        """One NOTIFY in the subscription's dialog; whether the superior took it (2xx). A 481 means it forgot the
        subscription (RFC 6665 §4.1.3): dropped here."""
        if self.runner is None:
            return False
        remaining = max(0, int(sub.expires_at - self.mono()))
        request = sub.dialog.build_request("NOTIFY", [
            ("Event", sub.event), ("Subscription-State", f"active;expires={remaining}"),
            ("Content-Type", "Application/MANSCDP+xml"),
        ], body)  # fmt: skip
        try:
            response = await self.runner.request(request, sub.dialog.peer)  # type: ignore[arg-type]
        except (TransactionError, LocalProtocolError) as exc:
            log.info("%s NOTIFY to superior %s failed: %s", sub.kind, link.cfg.id, exc)
            return False
        if response.status == 481:
            link.subscriptions.pop(sub.dialog.id, None)
            self.endpoint.drop_dialog(sub.dialog)
            return False
        return 200 <= response.status < 300
