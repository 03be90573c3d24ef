"""The composition root's catalog part: Catalog queries (A.2.4.3), the multi-packet answers assembled by
gb28181/catalog.py and committed to the store, and the periodic and on-register syncs (gb28181/catalog_schedule.py).
``Platform`` (gb28181/server.py) inherits it; IO lives here and in server.py only.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gb28181.catalog import Commit
from gb28181.catalog import diff as catalog_diff
from gb28181.channels import to_channel
from gb28181.manscdp import Envelope, ManscdpError
from gb28181.manscdp.codec import decode as decode_message
from gb28181.manscdp.codec import decode_parsed
from gb28181.manscdp.codec import encode as encode_message
from gb28181.manscdp.messages import (
    CatalogQuery,
    CatalogResponse,
)
from gb28181.sn import QueryError
from gb28181.subscribe import (
    ACTIVE,
)
from registry.models import StatusEvent
from registry.store import StoreError

log = logging.getLogger("gb28181")


class CatalogSync:
    """Mixed into ``Platform``; uses its store, correlator, catalog assembler and schedule and subscription
    manager, and its ``count``, ``_spawn``, ``_registered``, ``_send_to_device``, ``_device_lock``,
    ``_append_events`` and ``catalog_changed``."""

    # ------------------------------------------------------------------ catalog
    async def catalog_sync(self, device_id: str, *, wait: bool) -> dict[str, Any]:
        """Ask a device for its catalog (A.2.4.3). With ``wait``, return when the sync commits (complete, or
        partial after the inter-packet timeout) or the device never answers."""
        device = self._registered(device_id)
        sn = self.correlator.new_sn(device_id)
        self.catalog_schedule.synced(device_id, self.mono())
        body = encode_message(CatalogQuery(sn=sn, device_id=device_id), charset=device.charset)
        done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._catalog_waiters[(device_id, sn)] = done
        self.catalog.expect(device_id, sn, self.mono())
        self.count("catalog:query")
        try:
            async with asyncio.timeout(self.cfg.sip.query_timeout):
                await self._send_to_device(device_id, "Catalog", body)
        except (TimeoutError, QueryError) as exc:
            # Its answer to our SN shows it took the query though its 200 never came (lost on a lossy link, and a
            # retransmitted query not answered again): go on with the sync rather than fail a catalog that arrives.
            if (isinstance(exc, QueryError) and exc.kind == "refused") or not self._catalog_answering(device_id, sn):
                self._catalog_waiters.pop((device_id, sn), None)
                if isinstance(exc, QueryError):
                    raise
                raise QueryError(f"device {device_id} did not take the Catalog query", kind="timeout") from exc
            self.count("catalog:query-200-missing")
            log.info("catalog query to %s (SN %d): no 200 (%s), but its answer arrives; going on", device_id, sn,
                     exc.reason if isinstance(exc, QueryError) else "timeout")  # fmt: skip
        if not wait:
            return {"device_id": device_id, "sn": sn, "state": "started"}
        return await done

    def _catalog_answering(self, device_id: str, sn: int) -> bool:
        """Whether a packet of the device's answer to our query ``sn`` has arrived: staging, or committed (the
        commit takes the query's waiter)."""
        progress = self.catalog.progress(device_id, sn)
        return (progress is not None and progress[1] is not None) or (device_id, sn) not in self._catalog_waiters

    def _read_catalog_packet(self, user: str, env: Envelope, body: bytes) -> None:
        try:
            decoded = decode_parsed(env.parsed) if env.parsed is not None else decode_message(body)
        except ManscdpError as exc:
            self.count("catalog:bad-xml")
            log.info("Catalog packet from %s unreadable: %s; raw %r", user, exc.reason, exc.raw[:300])
            return
        except Exception:  # the error boundary of this callback, as in handle()
            self.count("internal-error")
            log.exception("internal error reading a Catalog packet from %s", user)
            return
        if isinstance(decoded.message, CatalogResponse):
            self._on_catalog(user, decoded.message)

    def _on_catalog(self, user: str, message: CatalogResponse) -> None:
        commit = self.catalog.packet(user, message.sn, message.sum_num or 0, message.items, self.mono())
        if commit is not None:
            self._spawn(self._commit_catalog(commit))

    async def _commit_catalog(self, commit: Commit) -> None:
        """Store a finished sync: upsert what was reported, remove only what DECISIONS.md allows, log channel
        events, and tell whoever waits."""
        waiter = self._catalog_waiters.pop((commit.device_id, commit.sn), None)
        try:
            async with self._device_lock(commit.device_id):  # in order with catalog NOTIFYs (_apply_catalog_notify)
                summary, added, removed = await self._store_catalog(commit, now := self.wall())
        except (StoreError, KeyError, ValueError) as exc:
            self.count("catalog:store-error")
            log.error("catalog of %s (SN %s) not stored: %s", commit.device_id, commit.sn, exc)
            if waiter is not None and not waiter.done():
                waiter.set_exception(QueryError(f"catalog not stored: {exc}", kind="error"))
            return
        if commit.needs_confirmation and commit.ours:
            log.info("catalog of %s is empty (SumNum 0): asking again before clearing it", commit.device_id)
            self._spawn(self._confirm_empty(commit.device_id))
        self._catalog_results[(commit.device_id, commit.sn)] = summary
        while len(self._catalog_results) > 256:  # bounded: the recent results operators may still ask about
            self._catalog_results.popitem(last=False)
        self.catalog_changed()
        if waiter is not None and not waiter.done():
            waiter.set_result(summary)
        if added or removed:
            # Logged once whoever waits was answered (its wakeup is queued before this task's first step): a lower
            # platform's first sync adds tens of thousands of channels, and making their log rows takes a while.
            # Still ahead of a NOTIFY that waited for the device lock: that logs only after its own store calls.
            self._spawn(self._log_catalog_changes(now, commit.device_id, added, removed))

    async def _log_catalog_changes(
        self, now: float, device_id: str, added: tuple[str, ...], removed: tuple[str, ...]
    ) -> None:
        events = [StatusEvent(now, i, "channel-added", kind="channel", reason=device_id) for i in added]
        events += [StatusEvent(now, i, "channel-removed", kind="channel", reason=device_id) for i in removed]
        await self._append_events(events, f"catalog of {device_id}")

    def catalog_progress(self, device_id: str, sn: int | None = None) -> dict[str, Any]:
        """Syncs of this device still staging, and the stored result of ``sn`` (or of its latest sync) if any."""
        done = [(k, v) for k, v in self._catalog_results.items() if k[0] == device_id and (sn is None or k[1] == sn)]
        return {
            "device_id": device_id,
            "in_progress": [p for p in self.catalog.in_progress(device_id) if sn is None or p["sn"] == sn],
            "result": done[-1][1] if done else None,
        }

    async def _confirm_empty(self, device_id: str) -> None:
        try:
            await self.catalog_sync(device_id, wait=False)
        except QueryError as exc:
            log.info("second catalog query to %s failed: %s", device_id, exc.reason)

    async def _store_catalog(
        self, commit: Commit, now: float
    ) -> tuple[dict[str, Any], tuple[str, ...], tuple[str, ...]]:
        """Upsert and remove in one store call; the summary, and the channel IDs added and removed (to log)."""
        existing = await self.store.channel_ids(commit.device_id)
        d = catalog_diff(existing, commit)
        single = len(commit.items) == 1
        # A generator: the store makes channels chunk by chunk while it writes the previous chunk
        upserts = (
            ch for item in commit.items
            if (ch := to_channel(item, commit.device_id, self.cfg.sip.id, now, single=single)) is not None
        )  # fmt: skip
        await self.store.apply_catalog(commit.device_id, upserts, d.removed)
        self.count("catalog:complete" if commit.complete else "catalog:partial")
        summary = {
            "device_id": commit.device_id, "sn": commit.sn, "state": "complete" if commit.complete else "partial",
            "reason": commit.reason, "sum_num": commit.sum_num, "received": len(commit.items),
            "packets": commit.packets, "duplicates": commit.duplicates, "added": len(d.added),
            "updated": len(d.updated), "removed": len(d.removed), "ours": commit.ours,
        }  # fmt: skip
        log.info("catalog of %s: %s", commit.device_id, summary)
        return summary, d.added, d.removed

    def _wants_periodic_sync(self, device_id: str) -> bool:
        """Registered, and no live catalog subscription keeping its channels fresh."""
        if not self.devices.is_registered(device_id):
            return False
        sub = self.subs.get(device_id, "catalog")
        return sub is None or sub.state != ACTIVE

    async def _periodic_sync(self, device_id: str) -> None:
        self.count("catalog:periodic")
        try:
            await self.catalog_sync(device_id, wait=False)
        except QueryError as exc:
            log.info("periodic catalog query to %s failed: %s", device_id, exc.reason)

    async def _sync_after_register(self, device_id: str) -> None:
        """A device that (re)registers is asked for its catalog (GB/T 28181 §9.5 practice: WVP, Monibuca)."""
        await asyncio.sleep(0.5)  # let the device finish its own registration handling first
        try:
            await self.catalog_sync(device_id, wait=False)
        except QueryError as exc:
            log.info("catalog query after %s registered failed: %s", device_id, exc.reason)
