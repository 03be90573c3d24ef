"""The composition root's MESSAGE part: the screening every MESSAGE passes (rate limit, registration, Content-Type,
MANSCDP), keepalives, the routing of Responses and Notifies to whoever waits for them, and queries to devices (A.2.4,
A.2.6) sent where the device is. ``Platform`` (gb28181/server.py) inherits it; IO lives here and in server.py only, the
decisions in gb28181/sn.py, gb28181/queries.py and the MANSCDP codec.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gb28181.guard import retry_after
from gb28181.manscdp import Envelope, ManscdpError
from gb28181.manscdp.codec import envelope as manscdp_envelope
from gb28181.manscdp.codec import is_plain_keepalive
from gb28181.manscdp.codec import parse as parse_manscdp
from gb28181.peers import peer_address, peer_of
from gb28181.queries import build_query, render
from gb28181.sn import QueryError, check_result
from gb28181.subscribe import (
    KIND_OF_CMD,
)
from sip.aio import TransactionError
from sip.endpoint import (
    Peer,
    RequestReceived,
    StatelessAnswer,
)
from sip.headers import Headers
from sip.message import Request, new_call_id, new_tag, warning_value

log = logging.getLogger("gb28181")


class MessageRouting:
    """Mixed into ``Platform``; uses its device service, correlator, catalog assembler, operations, guard, media
    service and runner, and its ``count``, ``trace_note``, the cascade handlers and the catalog and NOTIFY parts."""

    # ------------------------------------------------------------------ MESSAGE
    def _screen_message(
        self, user: str, content_type: str | None, body: bytes, peer: Peer, req: Request | None = None
    ) -> tuple[StatelessAnswer | None, Envelope | None]:
        """The checks every MESSAGE passes, and the whole handling of a keepalive. Returns the answer when that is
        all there is to do (a refusal, or a keepalive taken), else the envelope for the caller to go on with."""
        # Answers to our own queries are not rate-limited: a lower platform sends a 50,000-item catalog as fast as
        # our 200s allow, and an NVR its record list; what we asked for is bounded by what we asked.
        answering = self.catalog.expects(user) or self.correlator.expects(user) or self.operations.records.expects(user)
        wait = 0.0 if answering else self.guard.message_wait(peer.host, user, self.mono())
        if wait:
            self.count("ratelimit:message")
            self.trace_note(req, f"rate limited: retry in {retry_after(wait)} s")
            if self.guard.message_buckets.first_refusal:
                log.warning("MESSAGE from %s (%s): rate limit exceeded; answering 503 for %.1f s", user, peer, wait)
            return StatelessAnswer(503, [("Retry-After", retry_after(wait))]), None
        if not self.devices.is_registered(user):
            # DECISIONS.md: 403 for any device not currently registered; real devices then re-register.
            self.count("message:not-registered")
            self.trace_note(req, "not registered")
            log.info("MESSAGE from %s (%s) refused 403: not registered", user, peer)
            return StatelessAnswer(403), None
        if (content_type or "") != "application/manscdp+xml":
            self.count("message:unsupported-type")
            self.trace_note(req, f"unsupported Content-Type {content_type or '(none)'}")
            return StatelessAnswer(415, [("Accept", "Application/MANSCDP+xml")]), None
        if is_plain_keepalive(body):  # the common shape, known well-formed without lxml (the codec's test)
            return self._keepalive(user, peer, req), None
        try:
            # The codec's parse: strict first, then the known repairs (bare &, NUL, junk in Address...), so a
            # repairable body is taken here as the codec would take it, and read once (decode_parsed below).
            env = manscdp_envelope(parse_manscdp(body))
        except ManscdpError as exc:
            self.count("message:bad-xml")
            self.trace_note(req, f"unreadable MANSCDP: {exc.reason}")
            log.info("MESSAGE from %s (%s): unreadable MANSCDP (%s); raw %r", user, peer, exc.reason, exc.raw[:300])
            # The parser's message goes in a Warning, sanitised: it must never break the status line.
            return StatelessAnswer(400, [("Warning", warning_value(exc.reason))], "Bad MANSCDP Body"), None
        if env.cmd_type == "Keepalive":
            return self._keepalive(user, peer, req), env
        return None, env

    def _keepalive(self, user: str, peer: Peer, req: Request | None = None) -> StatelessAnswer:
        self.count("keepalive")
        refused = self.devices.keepalive(user, peer.transport, peer_address(peer), str(peer))
        if refused is not None:
            self.count("keepalive:refused")
            self.trace_note(req, refused)
            log.info("keepalive from %s (%s) refused 403: %s", user, peer, refused)
            return StatelessAnswer(403)
        return StatelessAnswer(200)

    def _on_message(self, event: RequestReceived) -> None:
        req = event.request
        user = req.from_.user or ""
        if not self.devices.is_registered(user) and req.call_id and \
                (session := self.media.table.by_call_id(req.call_id)) is not None:
            # §7.10: MediaStatus comes in a playback's dialog, From the channel (an NVR's) or, from Hikvision,
            # something else: it is the session's device speaking (spec digest §13 q19, by Call-ID)
            user = session.device_id
        now = self.mono()
        peer = event.peer
        if (link := self._superior(user, peer)) is not None:  # DECISIONS.md: superiors are served
            self._on_superior_message(event, link)
            return
        if b"MediaStatus" in req.body and self.media_status_by_call_id(event):
            return  # in a media dialog: its From is the channel (an NVR's), not a registered device
        answer, env = self._screen_message(user, req.content_type, req.body, peer, req)
        if answer is not None or env is None:
            answer = answer or StatelessAnswer(500)
            self.endpoint.reply(event, answer.status, answer.reason, headers=answer.headers, now=now)
            return
        # Any other MANSCDP message proves the device alive too.
        self.count(f"message:{env.cmd_type}")
        self.devices.keepalive(user, peer.transport, peer_address(peer), str(peer))
        self.endpoint.reply(event, 200, now=now)
        if env.kind == "Response" and self.relay_response(user, env.sn, req.body):
            return  # a packet of a superior's relayed query (gb28181/server_upstream.py)
        if env.kind == "Response" and env.cmd_type == "Catalog":
            # Read the packet on the next turn of the loop, once the 200 is on its way: a lower platform sends its
            # next packet only after our 200 (App. M), so it sends while we read instead of waiting for us.
            # Packets keep their order (call_soon is FIFO, and later packets arrive in later I/O callbacks).
            asyncio.get_running_loop().call_soon(self._read_catalog_packet, user, env, req.body)
        elif env.kind == "Response" and env.cmd_type == "RecordInfo":
            self.operations.on_records(user, req.body)
        elif env.kind == "Response":
            pending = self.correlator.match(user, env.sn, env.cmd_type)
            if pending is None:
                self.count("response:stray")
                log.info("Response %s SN %s from %s matches no query of ours", env.cmd_type, env.sn, user)
            elif not pending.handle.done():
                try:
                    check_result(env.fields)
                    pending.handle.set_result(req.body)
                except QueryError as exc:
                    pending.handle.set_exception(exc)
        elif env.kind == "Notify" and env.cmd_type == "MediaStatus":
            if self.cascade_media_status(req.call_id, req.body):
                return  # a direct leg's device finished its file: relayed up to the superior
            self.media.on_media_status(user, env.device_id, env.fields.get("NotifyType", ""), req.call_id)
        elif env.kind == "Notify" and env.cmd_type in KIND_OF_CMD:
            self._on_device_notify(user, req.body, env.cmd_type, via="message")

    # ------------------------------------------------------------------ queries to devices
    async def query(self, device_id: str, verb: str) -> dict[str, Any]:
        """Ask a device (``info``, ``status``, ``config``) and return its Response as JSON (A.2.4, A.2.6).

        The MESSAGE goes where the device is (its own TCP connection when it registered over TCP); a non-2xx
        answer, a transport failure, ``Result ERROR`` and silence past ``[sip] query_timeout`` are QueryErrors.
        """
        device = self._registered(device_id)
        sn = self.correlator.new_sn(device_id)
        cmd_type, body = build_query(verb, sn, device_id, device.charset)
        self.count(f"query:{cmd_type}")
        data = await self.operations.ask(device_id, sn, cmd_type, cmd_type, body)
        result = render(data)
        await self._learn(device_id, cmd_type, result)
        return result

    def _registered(self, device_id: str) -> Any:
        device = self.devices.devices.get(device_id)
        if device is None or not self.devices.is_registered(device_id):
            raise QueryError(f"device {device_id} is not registered", kind="refused")
        if self.runner is None:
            raise QueryError("the SIP transport is not running", kind="transport")
        return device

    async def _send_to_device(self, device_id: str, what: str, body: bytes) -> None:
        """One MANSCDP MESSAGE to a registered device where it is (its own TCP connection when it registered over
        TCP); a non-2xx answer or a transport failure is a QueryError (Dahua refuses with 403 + Warning)."""
        device = self._registered(device_id)
        peer = peer_of(device.transport, device.address)
        request = Request(
            "MESSAGE",
            f"sip:{device_id}@{device.address}",
            Headers([
                ("From", f"<sip:{self.cfg.sip.id}@{self.cfg.domain}>;tag={new_tag()}"),
                ("To", f"<sip:{device_id}@{self.cfg.domain}>"),
                ("Call-ID", new_call_id()),
                ("CSeq", "1 MESSAGE"),
                ("Content-Type", "Application/MANSCDP+xml"),
            ]),
            body,
        )  # fmt: skip
        assert self.runner is not None
        try:
            response = await self.runner.request(request, peer)
        except TransactionError as exc:
            raise QueryError(f"{what} to {device_id} at {peer}: {exc.reason}", kind="transport") from exc
        if response.status >= 300:
            warning = response.headers.get("warning")
            detail = f" ({warning})" if warning else ""
            raise QueryError(f"device refused {what}: {response.status} {response.reason}{detail}", kind="refused")

    async def _learn(self, device_id: str, cmd_type: str, result: dict[str, Any]) -> None:
        """Keep what an answer tells about the device: DeviceInfo identity (A.2.6.5) and the device's own
        keepalive settings from BasicParam (A.2.1.19; DECISIONS.md: Keepalive window)."""
        changes: dict[str, Any] = {}
        if cmd_type == "DeviceInfo":
            for field_name, element in (("manufacturer", "Manufacturer"), ("model", "Model"), ("firmware", "Firmware")):
                value = result.get(element)
                if isinstance(value, str) and value:
                    changes[field_name] = value[:100]
        elif cmd_type == "ConfigDownload" and isinstance(basic := result.get("BasicParam"), dict):
            for field_name, element in (
                ("keepalive_interval", "HeartBeatInterval"),
                ("keepalive_count", "HeartBeatCount"),
            ):
                value = basic.get(element)
                if isinstance(value, str) and value.isascii() and value.isdigit() and 0 < int(value) <= 86400:
                    changes[field_name] = int(value)
        if changes:
            await self.devices.learn(device_id, changes)
