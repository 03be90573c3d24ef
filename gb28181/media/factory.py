"""Builds the configured media backend (``[media] backend``); called by the composition root (ARCHITECTURE.md rule 6).

    async with aiohttp.ClientSession() as http:
        backend = make_backend(cfg.media, http)
        hooks = make_hooks(cfg.media, backend)         # gb28181.admin.zlm_hooks: None for the embedded backend
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gb28181.media.backend import MediaBackend, parse_port_range
from gb28181.media.receiver import EmbeddedBackend
from gb28181.media.zlm import ZlmBackend

if TYPE_CHECKING:
    import aiohttp

    from gb28181.config import MediaConfig


def make_backend(media: MediaConfig, session: aiohttp.ClientSession | None = None,
                 host: str = "0.0.0.0") -> MediaBackend:
    """``embedded``: our own sockets on ``rtp_ports`` bound to ``host``; ``zlmediakit``: a client of ``zlm_url``
    over ``session`` (required then: the root owns and closes it)."""
    if media.backend == "embedded":
        return EmbeddedBackend(parse_port_range(media.rtp_ports), host=host)
    if media.backend == "zlmediakit":
        if session is None:
            raise ValueError("the zlmediakit backend needs an aiohttp ClientSession")
        return ZlmBackend(session, media.zlm_url, media.zlm_secret, timeout=media.zlm_timeout,
                          retries=media.zlm_retries, stream_prefix=media.zlm_stream_prefix)
    raise ValueError(f"unknown media backend {media.backend!r}")
