"""The composition root's subscription part: SUBSCRIBEs to devices (§9.11, App. N; RFC 6665) driven by
gb28181/subscribe.py, incoming NOTIFYs and the notifications they (or MESSAGEs) carry: catalog changes, alarms (and
ResetAlarm, A.2.3.1) and mobile positions. ``Platform`` (gb28181/server.py) inherits it; IO lives here and in server.py
only.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gb28181.channels import to_channel
from gb28181.manscdp import ManscdpError
from gb28181.manscdp.codec import decode as decode_message
from gb28181.manscdp.codec import encode as encode_message
from gb28181.manscdp.codec import envelope as manscdp_envelope
from gb28181.manscdp.codec import parse as parse_manscdp
from gb28181.manscdp.control import AlarmCmd, ControlError
from gb28181.manscdp.messages import (
    AlarmNotify,
    AlarmResponse,
    CatalogNotify,
    MobilePositionNotify,
)
from gb28181.notifications import CHANNEL_EVENT, STATUS_EVENTS, alarm_record, catalog_changes, position_records
from gb28181.peers import peer_address, peer_of
from gb28181.sn import QueryError
from gb28181.subscribe import (
    KIND_OF_CMD,
    KINDS,
    Send,
    SubscribeSettings,
    SubscriptionManager,
    event_header,
    subscribe_body,
    subscription_json,
)
from registry.models import StatusEvent
from registry.store import StoreError
from sip.aio import TransactionError
from sip.endpoint import (
    Peer,
    RequestReceived,
)
from sip.errors import LocalProtocolError, RemoteProtocolError
from sip.headers import Headers
from sip.message import Request, new_call_id, new_tag, warning_value

log = logging.getLogger("gb28181")


class SubscriptionDriver:
    """Mixed into ``Platform``; uses its config, store, endpoint, runner, device service, correlator and catalog
    assembler, and its ``count``, ``_spawn``, ``_registered``, ``_send_to_device`` and the cascade reports."""

    # ------------------------------------------------------------------ subscriptions (§9.11, App.N; RFC 6665)
    def _init_subscriptions(self) -> None:
        sub = self.cfg.subscribe
        self.subs = SubscriptionManager(
            SubscribeSettings(sub.expires, sub.refresh_margin, sub.position_interval, sub.max_failures,
                              sub.retry_base, sub.retry_max)
        )  # fmt: skip
        self._auto_kinds = tuple(k for k in KINDS if getattr(sub, k))  # [subscribe] catalog/alarm/position
        self._sub_waiters: dict[tuple[str, str], list[asyncio.Future[None]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _device_lock(self, device_id: str) -> asyncio.Lock:
        """Serialises a device's catalog writes (sync commits and NOTIFY changes) in arrival order: asyncio locks
        are FIFO and the tasks taking them are created in the order the packets were handled."""
        lock = self._locks.get(device_id)
        if lock is None:
            if len(self._locks) > 100_000:  # bounded: drop the idle ones
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            lock = self._locks[device_id] = asyncio.Lock()
        return lock

    def _subscriptions_follow(self, device_id: str, fresh: bool, registered: bool) -> None:
        """A device that registers anew has lost its subscriptions (a reboot): subscribe again, plus the
        ``[subscribe]`` kinds; one that unregisters gets nothing until it is back."""
        if not registered:
            self._subscriptions_gone(device_id, "unregistered")
        elif fresh:
            for sub in self.subs.of_device(device_id):
                self._end_subscription_dialog(sub.dialog)
            self.subs.device_registered(device_id, self.mono(), self._auto_kinds)
            self._drive_subscriptions()

    def _subscriptions_gone(self, device_id: str, reason: str) -> None:
        for sub in self.subs.of_device(device_id):
            self._end_subscription_dialog(sub.dialog)
        self.subs.device_gone(device_id, reason)

    async def subscribe(self, device_id: str, kind: str) -> dict[str, Any]:
        """Start or refresh a subscription now and return its state once the device answered (or did not)."""
        if kind not in KINDS:
            raise QueryError(f"unknown subscription kind {kind!r} (one of {', '.join(KINDS)})", kind="error")
        self._registered(device_id)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sub_waiters.setdefault((device_id, kind), []).append(done)
        sub = self.subs.want(device_id, kind, self.mono())
        self._drive_subscriptions()
        try:
            async with asyncio.timeout(self.cfg.sip.query_timeout + 1):
                await done
        except TimeoutError as exc:
            raise QueryError(
                f"device {device_id} did not answer the {kind} SUBSCRIBE within {self.cfg.sip.query_timeout:g} s",
                kind="timeout",
            ) from exc
        finally:
            waiters = self._sub_waiters.get((device_id, kind), [])
            if done in waiters:
                waiters.remove(done)
        view = subscription_json(sub, self.mono())
        if sub.state != "active":
            timeout = "timed out" in sub.last_error or "did not answer" in sub.last_error
            raise QueryError(f"{kind} subscription to {device_id}: {sub.last_error}", kind="timeout" if timeout
                             else "refused")  # fmt: skip
        return view

    def subscriptions(self, device_id: str | None = None) -> list[dict[str, Any]]:
        now = self.mono()
        return [subscription_json(s, now) for s in self.subs.all() if device_id is None or s.device_id == device_id]

    def _drive_subscriptions(self) -> None:
        if self.runner is None:
            return
        for send in self.subs.due(self.mono()):
            self._spawn(self._send_subscribe(send))

    async def _send_subscribe(self, send: Send) -> None:
        """One SUBSCRIBE (a new dialog, or a refresh in the subscription's dialog) and its outcome."""
        key = (send.device_id, send.kind)
        try:
            response, request = await self._subscribe_exchange(send)
        except QueryError as exc:
            self.count(f"subscribe:{send.kind}:failed")
            log.info("SUBSCRIBE %s to %s failed: %s", send.kind, send.device_id, exc.reason)
            self._end_subscription_dialog(send.dialog)
            self.subs.failed(send.device_id, send.kind, exc.reason, self.mono())
            if not self.devices.is_registered(send.device_id):  # gone meanwhile: wait for it to register again
                self.subs.device_gone(send.device_id, exc.reason)
        except Exception:  # the error boundary of this task
            self.count("internal-error")
            log.exception("SUBSCRIBE %s to %s: internal error", send.kind, send.device_id)
            self.subs.failed(send.device_id, send.kind, "internal error", self.mono())
        else:
            dialog = self.endpoint.dialogs.get((request.call_id, request.from_.tag or "", response.to.tag or ""))
            if dialog is not None:
                dialog.data["gb_subscription"] = send.kind
            if send.dialog is not None and send.dialog is not dialog:
                self._end_subscription_dialog(send.dialog)
            granted = _expires_of(response.headers.get("expires"), send.expires)
            self.count(f"subscribe:{send.kind}:ok")
            log.info("SUBSCRIBE %s to %s: %d, expires %d", send.kind, send.device_id, response.status, granted)
            self.subs.succeeded(send.device_id, send.kind, granted, dialog, self.mono())
        for waiter in self._sub_waiters.pop(key, []):
            if not waiter.done():
                waiter.set_result(None)

    async def _subscribe_exchange(self, send: Send) -> tuple[Any, Request]:
        device = self._registered(send.device_id)
        assert self.runner is not None
        sn = self.correlator.new_sn(send.device_id)
        body = encode_message(subscribe_body(send.kind, sn, send.device_id, self.subs.settings), charset=device.charset)
        extra = [
            ("Expires", str(send.expires)),
            ("Event", event_header(send.kind, send.event_id)),
            ("Content-Type", "Application/MANSCDP+xml"),
        ]
        if send.dialog is not None:  # RFC 6665 §4.1.2.1: a refresh in the same dialog
            dialog = send.dialog
            peer = dialog.peer if isinstance(dialog.peer, Peer) else peer_of(device.transport, device.address)
            host, port = (self.endpoint.local_address or self.runner.local_address)(peer)
            request = dialog.build_request("SUBSCRIBE", [("Contact", f"<sip:{self.cfg.sip.id}@{host}:{port}>"), *extra],
                                           body)  # fmt: skip
        else:
            peer = peer_of(device.transport, device.address)
            host, port = (self.endpoint.local_address or self.runner.local_address)(peer)
            request = Request(
                "SUBSCRIBE",
                f"sip:{send.device_id}@{device.address}",
                Headers([
                    ("From", f"<sip:{self.cfg.sip.id}@{self.cfg.domain}>;tag={new_tag()}"),
                    ("To", f"<sip:{send.device_id}@{self.cfg.domain}>"),
                    ("Call-ID", new_call_id()),
                    ("CSeq", "1 SUBSCRIBE"),
                    ("Contact", f"<sip:{self.cfg.sip.id}@{host}:{port}>"),
                    *extra,
                ]),
                body,
            )  # fmt: skip
        self.count(f"subscribe:{send.kind}")
        try:
            async with asyncio.timeout(self.cfg.sip.query_timeout):
                response = await self.runner.request(request, peer)
        except TimeoutError as exc:
            raise QueryError(f"no answer within {self.cfg.sip.query_timeout:g} s (timed out)", kind="timeout") from exc
        except TransactionError as exc:
            raise QueryError(f"{exc.reason} (timed out)" if "timeout" in exc.reason.lower() else exc.reason,
                             kind="transport") from exc  # fmt: skip
        except LocalProtocolError as exc:
            raise QueryError(f"cannot send: {exc}", kind="transport") from exc
        if response.status >= 300:
            raise QueryError(f"{response.status} {response.reason}", kind="refused")
        return response, request

    def _end_subscription_dialog(self, dialog: Any) -> None:
        if dialog is not None:
            self.endpoint.drop_dialog(dialog)

    def _claim_unknown(self, request: Request) -> bool:
        """Before the stack answers 481 (DECISIONS.md: Dialog layer): a NOTIFY of a registered device whose
        dialog we lost (a platform restart) is taken as an unsolicited one (spec digest §9, quirk 30)."""
        if request.method == "MESSAGE" and b"MediaStatus" in request.body:
            return True  # DECISIONS.md: MediaStatus with tags that match no dialog, routed by Call-ID / channel
        if request.method != "NOTIFY":
            return False
        try:
            return self.devices.is_registered(request.from_.user or "")
        except RemoteProtocolError:
            return False

    # ------------------------------------------------------------------ NOTIFY and notifications
    def _on_notify(self, event: RequestReceived) -> None:
        """NOTIFY (RFC 6665 §4.1.3): answered 200 at once, dispatched by the body's CmdType (not the Event header,
        spec digest §9); unsolicited ones from registered devices are accepted too."""
        req = event.request
        user = req.from_.user or ""
        now = self.mono()
        if event.dialog is None and not self.devices.is_registered(user):
            self.count("notify:not-registered")
            log.info("NOTIFY from %s (%s) refused 403: not registered", user, event.peer)
            self.endpoint.reply(event, 403, now=now)
            return
        state = (req.headers.get("subscription-state") or "").split(";")[0].strip().lower()
        kind = event.dialog.data.get("gb_subscription") if event.dialog is not None else None
        if not req.body.strip():
            self.endpoint.reply(event, 200, now=now)
            if state == "terminated" and isinstance(kind, str):
                self._subscription_terminated(user, kind, req.headers.get("subscription-state") or "", event.dialog)
            return
        if (req.content_type or "") != "application/manscdp+xml":
            self.count("notify:unsupported-type")
            self.endpoint.reply(event, 415, headers=[("Accept", "Application/MANSCDP+xml")], now=now)
            return
        try:
            env = manscdp_envelope(parse_manscdp(req.body))
        except ManscdpError as exc:
            self.count("notify:bad-xml")
            log.info("NOTIFY from %s (%s): unreadable MANSCDP (%s); raw %r", user, event.peer, exc.reason,
                     exc.raw[:300])  # fmt: skip
            self.endpoint.reply(event, 400, "Bad MANSCDP Body", headers=[("Warning", warning_value(exc.reason))],
                                now=now)  # fmt: skip
            return
        self.endpoint.reply(event, 200, now=now)
        self.count(f"notify:{env.cmd_type}")
        if self.devices.is_registered(user):
            self.devices.keepalive(user, event.peer.transport, peer_address(event.peer), str(event.peer))
        kind = kind if isinstance(kind, str) else KIND_OF_CMD.get(env.cmd_type)
        if kind is not None:
            self.subs.notified(user, kind)
        if env.cmd_type in KIND_OF_CMD:
            self._on_device_notify(user, req.body, env.cmd_type, via="notify")
        else:
            log.info("NOTIFY %s from %s ignored: no handler for that CmdType", env.cmd_type, user)
        if state == "terminated" and isinstance(kind, str):
            self._subscription_terminated(user, kind, req.headers.get("subscription-state") or "", event.dialog)

    def _subscription_terminated(self, device_id: str, kind: str, header: str, dialog: Any) -> None:
        log.info("%s subscription of %s terminated by the device: %s", kind, device_id, header)
        self._end_subscription_dialog(dialog)
        self.subs.terminated(device_id, kind, header, self.mono())

    def _on_device_notify(self, user: str, body: bytes, cmd_type: str, *, via: str) -> None:
        """A Catalog change, Alarm or MobilePosition notification, by NOTIFY or by MESSAGE."""
        try:
            message = decode_message(body).message
        except ManscdpError as exc:
            self.count("notify:bad-xml")
            log.info("%s notification from %s unreadable: %s; raw %r", cmd_type, user, exc.reason, exc.raw[:300])
            return
        now = self.wall()
        if isinstance(message, CatalogNotify):
            changes = catalog_changes(message)
            if changes:
                # Recorded on the device's staging syncs now, in arrival order, then written under the device lock:
                # see notes/decisions-subs.md "Catalog NOTIFY during a sync".
                self.catalog.notify(user, changes)
                self._spawn(self._apply_catalog_notify(user, changes))
        elif isinstance(message, AlarmNotify):
            alarm = alarm_record(message, user, now, via)
            self._spawn(self._store_alarm(alarm, answer=via == "message"))
            if self.upstreams:
                self._spawn(self.alarm_up(user, alarm.source_id, body))
        elif isinstance(message, MobilePositionNotify):
            positions = position_records(message, user, now)
            if positions:
                self._spawn(self._store_positions(positions))
                if self.upstreams:
                    self._spawn(self.positions_up(user, sorted({p.target_id for p in positions}), body))
        else:
            log.info("%s notification from %s: not a Notify body (%s)", cmd_type, user, type(message).__name__)

    async def _apply_catalog_notify(self, device_id: str, changes: list[tuple[str, str, Any]]) -> None:
        """Catalog NOTIFY events applied to the channels in body order (2022 App.N.4.3): ADD inserts (updates if
        known), UPDATE updates (inserts if missing), DEL removes (DECISIONS.md), ON/OFF/VLOST/DEFECT set status;
        each recorded as a channel event."""
        now = self.wall()
        events: list[StatusEvent] = []
        try:
            async with self._device_lock(device_id):
                for channel_id, event, item in changes:
                    known = await self.store.get_channel(device_id, channel_id) is not None
                    name = CHANNEL_EVENT[event]
                    if event in ("ADD", "UPDATE"):
                        channel = to_channel(item, device_id, self.cfg.sip.id, now, single=False)
                        if channel is None:
                            continue
                        await self.store.apply_catalog(device_id, [channel], [])
                        name = "channel-updated" if known else "channel-added"
                    elif event == "DEL":
                        if not known:
                            continue
                        await self.store.apply_catalog(device_id, [], [channel_id])
                    elif event in STATUS_EVENTS:
                        if not known:
                            log.info("catalog NOTIFY %s for unknown channel %s of %s", event, channel_id, device_id)
                            continue
                        await self.store.set_channel_status([(device_id, channel_id, "online" if event == "ON"
                                                              else "offline")])  # fmt: skip
                    events.append(StatusEvent(now, channel_id, name, kind="channel", reason=f"NOTIFY {event}"))
                if events:
                    await self.store.append_events(events)
        except (StoreError, KeyError, ValueError) as exc:
            self.count("notify:store-error")
            log.error("catalog NOTIFY of %s not stored: %s", device_id, exc)
            return
        self.count("notify:catalog-changes")
        log.info("catalog NOTIFY of %s: %s", device_id, ", ".join(f"{e} {c}" for c, e, _ in changes))
        self.catalog_changed()  # a lower platform's change goes on up to our superiors (§9.11, App. N)

    async def _store_alarm(self, alarm: Any, *, answer: bool) -> None:
        """Store, then (alarm by MESSAGE) answer with a Response Alarm Result OK in its own MESSAGE (§9.4.2)."""
        try:
            (alarm_id,) = await self.store.add_alarms([alarm])
        except (StoreError, ValueError) as exc:
            self.count("alarm:store-error")
            log.error("alarm from %s not stored: %s", alarm.device_id, exc)
            return
        self.count("alarm")
        log.info("alarm %d from %s (source %s): priority %s method %s type %s", alarm_id, alarm.device_id,
                 alarm.source_id, alarm.priority, alarm.method, alarm.alarm_type)  # fmt: skip
        if not answer or alarm.sn is None:
            return
        device = self.devices.devices.get(alarm.device_id)
        charset = device.charset if device is not None else "GB2312"
        body = encode_message(AlarmResponse(sn=alarm.sn, device_id=alarm.source_id, result="OK"), charset=charset)
        try:
            async with asyncio.timeout(self.cfg.sip.query_timeout):
                await self._send_to_device(alarm.device_id, "Alarm response", body)
        except (QueryError, TimeoutError) as exc:
            log.info("Alarm response to %s not delivered: %s", alarm.device_id, getattr(exc, "reason", "timeout"))

    async def _store_positions(self, positions: list[Any]) -> None:
        try:
            await self.store.save_positions(positions)
        except (StoreError, ValueError) as exc:
            self.count("position:store-error")
            log.error("positions from %s not stored: %s", positions[0].device_id, exc)
            return
        self.count("position")

    async def reset_alarm(
        self, device_id: str, by: str, *, alarm_method: str | None = None, alarm_type: str | None = None
    ) -> dict[str, Any]:
        """DeviceControl AlarmCmd ResetAlarm (A.2.3.1, §9.4: a device alarm must be reset before the next one)
        and wait for the device's Response Result; the device's open alarms are then marked reset."""
        device = self._registered(device_id)
        try:
            command = AlarmCmd(alarm_method, alarm_type)
        except ControlError as exc:
            raise QueryError(str(exc), kind="error") from exc
        sn = self.correlator.new_sn(device_id)
        body = command.to_xml(sn, device_id, device.charset)
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.correlator.add(device_id, sn, "DeviceControl", answer)
        self.count("control:AlarmCmd")
        try:
            async with asyncio.timeout(self.cfg.sip.query_timeout):
                await self._send_to_device(device_id, "DeviceControl AlarmCmd", body)
                await answer
        except TimeoutError as exc:
            raise QueryError(
                f"device {device_id} did not answer ResetAlarm within {self.cfg.sip.query_timeout:g} s", kind="timeout"
            ) from exc
        finally:
            self.correlator.cancel(device_id, sn)
        marked = await self.store.mark_alarms_reset(
            device_id, by, self.wall(), int(alarm_type) if alarm_type is not None else None
        )
        return {"device_id": device_id, "result": "OK", "reset": marked}


def _expires_of(value: str | None, asked: int) -> int:
    """The Expires of a 2xx to SUBSCRIBE (RFC 6665 §4.1.2.1: mandatory, may be shorter); missing or unreadable:
    what we asked for."""
    text = (value or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else asked
