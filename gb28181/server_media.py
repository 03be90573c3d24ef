"""The composition root's media part: the media service (live, playback, download; §9.2, §9.8, §9.9) and voice
broadcasts (§9.12) built on the platform's endpoint, the media backend's health for /health and stats, and the
conformance run with its media probe (issue 11). ``Platform`` (gb28181/server.py) inherits it; IO lives here and in
server.py only, the decisions in gb28181/media_sessions.py and gb28181/broadcast_service.py.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from typing import Any

from gb28181.broadcast_service import BroadcastService
from gb28181.config import Config, media_settings
from gb28181.conformance.model import MediaObservations
from gb28181.conformance.run import ConformanceRun, Report
from gb28181.media.backend import MediaBackend
from gb28181.media.factory import make_backend
from gb28181.media_probe import MediaProber, ProbeSettings
from gb28181.media_sessions import MediaService
from gb28181.sn import QueryError
from sip.endpoint import (
    Peer,
)

log = logging.getLogger("gb28181")

MEDIA_PROBE_INTERVAL = 5.0  # seconds between looks at a media server (ZLMediaKit) for /health and stats


class MediaWiring:
    """Mixed into ``Platform``; uses its config, secrets, store, endpoint, runner, device service, operations and
    correlator, and its ``count``, ``flush`` and ``_registered``."""

    # ------------------------------------------------------------------ media sessions (§9.2, §9.8, §9.9)
    def _init_media(self) -> None:
        async def owners_of(channel_id: str) -> list[str]:
            return [c.device_id for c in await self.store.find_channels(channel_id)]

        def status_of(device_id: str) -> str | None:
            device = self.devices.devices.get(device_id)
            return device.status if device is not None and self.devices.is_registered(device_id) else None

        def local_address(peer: Peer) -> tuple[str, int]:
            local = self.endpoint.local_address or (self.runner.local_address if self.runner else None)
            return local(peer) if local is not None else ("127.0.0.1", 5060)

        backend = self.media_backend or _media_backend(self.cfg)
        self.media = MediaService(
            cfg=media_settings(self.cfg.media), platform_id=self.cfg.sip.id, domain=self.cfg.domain,
            backend=backend, endpoint=self.endpoint, flush=self.flush, device_of=self._registered,
            status_of=status_of, owners_of=owners_of, local_address=local_address, mono=self.mono, wall=self.wall,
            count=self.count, live_secret=hmac.digest(self.secrets.nonce_secret, b"live-urls", "sha256"), tz=self.tz,
        )  # fmt: skip
        self._init_broadcasts(status_of, local_address)

    def _init_broadcasts(self, status_of: Callable[[str], str | None],
                         local_address: Callable[[Peer], tuple[str, int]]) -> None:
        """Voice broadcast (§9.12): gb28181/broadcast_service.py."""
        async def channels_of(device_id: str) -> list[str]:
            return [c.id for c in await self.store.list_channels(device_id=device_id)]

        def charset_of(device_id: str) -> str:
            device = self.devices.devices.get(device_id)
            return device.charset if device is not None else "GB2312"

        def host_of(device_id: str) -> str | None:
            device = self.devices.devices.get(device_id)
            return device.address.rpartition(":")[0].strip("[]") if device is not None and device.address else None

        self.broadcasts = BroadcastService(
            cfg=media_settings(self.cfg.media), platform_id=self.cfg.sip.id, domain=self.cfg.domain,
            endpoint=self.endpoint, flush=self.flush, status_of=status_of, charset_of=charset_of,
            channels_of=channels_of, ask=self.operations.ask, new_sn=self.correlator.new_sn,
            local_address=local_address, mono=self.mono, wall=self.wall, count=self.count,
            voice_input=media_settings(self.cfg.media).voice_input, host_of=host_of, tz=self.tz,
        )  # fmt: skip

    async def media_probe(self, device_id: str, channel_id: str, modes: tuple[str, ...], *,
                          settings: ProbeSettings | None = None,
                          into: MediaObservations | None = None) -> MediaObservations:
        """The conformance run's media sessions on one channel (issue 11; gb28181/media_probe.py): each mode opened,
        watched briefly and ended (BYE) before this returns or when it is cancelled."""
        prober = MediaProber(
            media=self.media, record_search=self.operations.record_search,
            channels=lambda d: self.store.list_channels(device_id=d), mono=self.mono, wall=self.wall, tz=self.tz,
            settings=settings,
        )  # fmt: skip
        return await prober.run(device_id, channel_id, modes, into if into is not None else MediaObservations())

    async def conformance(self, device_id: str, *, timeout: float, only: tuple[str, ...] = ()) -> Report:
        """A conformance run against one device (issue 11; gb28181/conformance/), waiting for it to register when it
        is not (yet). One run per device at a time."""
        if device_id in self.endpoint.traces:
            raise QueryError(f"a conformance run of {device_id} is already in progress", kind="refused")
        return await ConformanceRun(self, device_id, timeout=timeout, only=only).run()

    # ------------------------------------------------------------------ media backend health
    def media_status(self) -> dict[str, Any]:
        """The media backend's state for /health and stats: ZLMediaKit reachable or not, and why."""
        status = getattr(self.media.backend, "status", None)
        return status() if status is not None else {"backend": self.cfg.media.backend, "state": "ok"}

    async def media_backend_loop(self, interval: float = MEDIA_PROBE_INTERVAL) -> None:
        """Ask a media server (ZLMediaKit) how it is now and then, so that operators see it down, or back, without
        waiting for a play to fail or succeed; each probe is bounded by [media] zlm_timeout and zlm_retries."""
        probe = getattr(self.media.backend, "probe", None)
        if probe is None:
            return
        while True:
            await probe()
            await asyncio.sleep(interval)


def _media_backend(cfg: Config) -> MediaBackend:
    """A Platform built without ``run()`` (tests, tools): the embedded receiver unless told otherwise; ``run()``
    builds the configured backend itself (ZLMediaKit needs an HTTP session it owns)."""
    media = media_settings(cfg.media)
    if media.backend != "embedded":
        raise ValueError(f"[media] backend {media.backend!r} needs run() (it owns the HTTP session)")
    return make_backend(media, None, host=media.bind)
