"""The ZLMediaKit test rig: the fake, a ZlmBackend on it, the admin app serving the hooks the fake posts, and an
embedded backend for the consumers' receivers (the ``rig`` fixture in conftest.py)."""

from __future__ import annotations

import zoneinfo
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from types import SimpleNamespace

import aiohttp
from aiohttp import web

from gb28181.admin.app import AdminApi
from gb28181.admin.zlm_hooks import ZlmHooks
from gb28181.media import rtp
from gb28181.media.receiver import EmbeddedBackend
from gb28181.media.zlm import ZlmBackend
from tests.e2e.conftest import free_port
from tests.media.test_receiver_e2e import WAIT
from tests.media.zlm_fake import FakeZlm

SECRET = "zlm-api-secret"
HOOK_SECRET = "hook-secret-0123456789"


@dataclass
class Rig:
    fake: FakeZlm
    zlm: ZlmBackend
    hooks: ZlmHooks
    sink: EmbeddedBackend  # the consumers' receivers
    admin_port: int


@asynccontextmanager
async def make_rig() -> AsyncIterator[Rig]:
    base, sink_base = free_port(), free_port()
    async with aiohttp.ClientSession() as http, AsyncExitStack() as stack:
        fake = FakeZlm(SECRET, (base, min(base + 20, 65535)), rtp_timeout=30.0)
        stack.push_async_callback(fake.stop)
        await fake.start()
        zlm = ZlmBackend(http, fake.url, SECRET, timeout=WAIT, retries=0)
        stack.push_async_callback(zlm.aclose)  # runs first: ZLMediaKit still answers
        hooks = ZlmHooks(zlm, HOOK_SECRET)
        app = AdminApi(SimpleNamespace(zlm_hooks=hooks), "admintoken", zoneinfo.ZoneInfo("UTC")).app()
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        admin_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        fake.hook_url = f"http://127.0.0.1:{admin_port}/zlm/hook/{{name}}?secret={HOOK_SECRET}"
        sink = EmbeddedBackend((sink_base, min(sink_base + 20, 65535)), host="127.0.0.1")
        stack.push_async_callback(sink.aclose)
        yield Rig(fake, zlm, hooks, sink, admin_port)


PRIMERS = 8  # more than a receiver's reorder warm-up (4 packets)


def primer(ssrc: int, first_seq: int) -> list[bytes]:
    """Empty RTP packets just before the clip: they make the stream arrive at ZLMediaKit so that the relay can
    start before the clip flows; they add nothing to any PS file."""
    return [rtp.build(96, (first_seq - PRIMERS + i) & 0xFFFF, 0, ssrc, b"") for i in range(PRIMERS)]


