"""The /zlm/hook route: its own secret (not the operator token), bad bodies, and what each hook does to the
backend's sessions. Hooks come from the ZLMediaKit fake over real loopback HTTP, or are posted here by hand."""

from __future__ import annotations

import zoneinfo
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gb28181.admin.app import AdminApi
from gb28181.admin.zlm_hooks import make_hooks
from gb28181.config import MediaConfig
from gb28181.media.backend import UDP, ReceiverSpec
from gb28181.media.receiver import EmbeddedBackend
from tests.media.test_receiver_e2e import send_udp as send
from tests.media.test_receiver_e2e import wait_for
from tests.media.zlm_rig import HOOK_SECRET, Rig, primer

pytestmark = pytest.mark.e2e


async def post(rig: Rig, name: str, body: Any, secret: str | None = HOOK_SECRET,
               token: str | None = None) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{rig.admin_port}/zlm/hook/{name}"
    params = {} if secret is None else {"secret": secret}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = body if isinstance(body, bytes) else None
    async with aiohttp.ClientSession() as http, http.post(url, params=params, headers=headers, data=data,
                                                          json=None if data is not None else body) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_hooks_need_their_own_secret(rig: Rig) -> None:
    fired: list[str] = []
    _, handle = await rig.zlm.open_receiver(ReceiverSpec(UDP), on_no_media=lambda h, s: fired.append(h))
    body = {"stream_id": handle, "app": "rtp", "vhost": "__defaultVhost__"}
    assert await post(rig, "on_rtp_server_timeout", body, secret=None) == (401, {"code": -100,
                                                                                 "msg": "Incorrect secret"})
    assert (await post(rig, "on_rtp_server_timeout", body, secret="admintoken"))[0] == 401
    # the operator token is no hook credential either
    assert (await post(rig, "on_rtp_server_timeout", body, secret=None, token="admintoken"))[0] == 401
    assert fired == [] and rig.hooks.counts == {}
    assert await post(rig, "on_rtp_server_timeout", body) == (200, {"code": 0, "msg": "success"})
    assert fired == [handle]


async def test_bad_bodies_and_unknown_hooks(rig: Rig) -> None:
    status, answer = await post(rig, "on_stream_changed", b"{not json")
    assert status == 400 and answer["code"] == -300 and "not JSON" in answer["msg"]
    assert (await post(rig, "on_stream_changed", [1, 2]))[1] == {"code": -300, "msg": "body must be a JSON object"}
    assert (await post(rig, "on_stream_changed", {"app": "rtp", "stream": "x", "regist": "yes"}))[0] == 400
    assert await post(rig, "on_teleport", {}) == (404, {"code": -500, "msg": "unknown hook on_teleport"})
    assert await post(rig, "__init__", {}) == (404, {"code": -500, "msg": "unknown hook __init__"})
    assert await post(rig, "on_server_keepalive", {"data": {}}) == (200, {"code": 0, "msg": "success"})
    # a stream that is not ours changes nothing
    assert await post(rig, "on_stream_changed", {"app": "live", "stream": "x", "regist": False}) == (
        200, {"code": 0, "msg": "success"})


async def test_none_reader_closes_only_what_the_session_layer_lets_go(rig: Rig) -> None:
    port, handle = await rig.zlm.open_receiver(ReceiverSpec(UDP))
    await send(port, primer(5, 0))
    await wait_for(lambda: rig.zlm.stats(handle).first_packet is not None, "the stream")
    assert await rig.fake.no_reader(handle) == {"code": 0, "msg": "success", "close": False}  # ours: a BYE first
    assert handle in rig.fake.servers
    asked: list[str] = []
    rig.zlm.on_none_reader = lambda h: asked.append(h) or True
    assert (await rig.fake.no_reader(handle))["close"] is True
    assert asked == [handle] and handle not in rig.fake.servers
    assert (await post(rig, "on_stream_none_reader", {"app": "live", "stream": "cam"}))[1]["close"] is True


async def test_a_publisher_without_a_session_is_refused(rig: Rig) -> None:
    # someone streams to an RTP server opened behind our back (or to ZLMediaKit's default port)
    answer = await rig.zlm.call("openRtpServer", port=0, stream_id="intruder")
    await send(answer["port"], primer(5, 0))
    await wait_for(lambda: "intruder" not in rig.fake.servers, "ZLMediaKit to drop the refused publisher")
    assert rig.fake.hooks[0][0] == "on_publish" and rig.fake.hooks[0][2]["code"] == -1
    assert rig.hooks.counts == {"on_publish": 1}


async def test_a_restarted_zlmediakit_loses_every_session(rig: Rig) -> None:
    fired: list[str] = []
    handles = [(await rig.zlm.open_receiver(ReceiverSpec(UDP), on_no_media=lambda h, s: fired.append(h)))[1]
               for _ in range(2)]
    assert await rig.fake.restarted() == {"code": 0, "msg": "success"}
    assert fired == handles and all(rig.zlm.stats(h).no_media for h in handles)


async def test_the_admin_app_has_no_hook_route_without_zlmediakit() -> None:
    hooks = make_hooks(MediaConfig(), EmbeddedBackend((30000, 30001)))
    assert hooks is None
    app = AdminApi(SimpleNamespace(zlm_hooks=hooks), "admintoken", zoneinfo.ZoneInfo("UTC")).app()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as http, http.post(
                f"http://127.0.0.1:{port}/zlm/hook/on_stream_changed", json={}) as resp:
            assert resp.status == 404
    finally:
        await runner.cleanup()
