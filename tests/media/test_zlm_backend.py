"""ZlmBackend against the ZLMediaKit fake: every API path the backend uses, and each way ZLMediaKit can fail (wrong
secret, an argument it does not know, a stream that already exists, a server that is down, slow, or restarting).
The fake's own rejections are checked first, with raw HTTP, against what ZLMediaKit's WebApi.cpp answers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gb28181.config import MediaConfig
from gb28181.media.backend import TCP_ACTIVE, TCP_PASSIVE, UDP, ForwardSpec, MediaBackend, MediaError, ReceiverSpec
from gb28181.media.factory import make_backend
from gb28181.media.receiver import EmbeddedBackend
from gb28181.media.zlm import ZlmBackend, ZlmError
from tests.e2e.conftest import free_port
from tests.media.test_receiver_e2e import WAIT, send_udp
from tests.media.zlm_fake import FakeZlm
from tests.media.zlm_rig import primer

SECRET = "035c73f7-bb6b-4889-a715-d9eb2d1925cc"  # ZLMediaKit's default api.secret


@pytest.fixture
async def fake() -> AsyncIterator[FakeZlm]:
    base = free_port()
    f = FakeZlm(SECRET, (base, min(base + 30, 65535)))
    await f.start()
    yield f
    await f.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def backend_for(fake: FakeZlm, http: aiohttp.ClientSession, **kw: Any) -> ZlmBackend:
    return ZlmBackend(http, fake.url, kw.pop("secret", SECRET), **{"timeout": 5.0, "retries": 0, **kw})


async def raw(http: aiohttp.ClientSession, fake: FakeZlm, api: str, **params: Any) -> tuple[int, Any]:
    async with http.get(f"{fake.url}/index/api/{api}", params={k: str(v) for k, v in params.items()}) as resp:
        text = await resp.text()
        return resp.status, (await resp.json(content_type=None) if resp.status == 200 else text)


# ------------------------------------------------------------------------------------ the fake, raw

async def test_the_fake_rejects_as_zlmediakit_does(fake: FakeZlm, http: aiohttp.ClientSession) -> None:
    assert await raw(http, fake, "listRtpServer") == (200, {"code": -300, "msg": 'Required parameter missed: "secret"'})
    assert await raw(http, fake, "listRtpServer", secret="nope") == (200, {"code": -100, "msg": "Incorrect secret"})
    _, answer = await raw(http, fake, "openRtpServer", secret=SECRET, stream_id="a")
    assert answer == {"code": -300, "msg": 'Required parameter missed: "port", "stream_id"'}
    _, answer = await raw(http, fake, "openRtpServer", secret=SECRET, port=0, stream_id="a", tcpmode=1)
    assert answer == {"code": -300, "msg": "Unknown parameter: tcpmode"}  # stricter than ZLMediaKit, on purpose
    _, answer = await raw(http, fake, "openRtpServer", secret=SECRET, port=0, stream_id="a")
    assert answer["code"] == 0 and isinstance(answer["port"], int)
    _, answer = await raw(http, fake, "openRtpServer", secret=SECRET, port=0, stream_id="a")
    assert answer == {"code": -300, "msg": "This stream already exists"}
    assert (await raw(http, fake, "getRtpInfo", secret=SECRET, stream_id="a"))[1] == {"code": 0, "exist": False}
    _, answer = await raw(http, fake, "startSendRtp", secret=SECRET, vhost="__defaultVhost__", app="rtp",
                          stream="a", ssrc=1, dst_url="127.0.0.1", dst_port=9, is_udp=1)
    assert answer == {"code": -500, "msg": "can not find the source stream"}  # nothing has arrived yet
    assert (await raw(http, fake, "closeRtpServer", secret=SECRET, stream_id="a"))[1] == {"code": 0, "hit": 1}
    assert (await raw(http, fake, "closeRtpServer", secret=SECRET, stream_id="a"))[1] == {"code": 0, "hit": 0}
    assert (await raw(http, fake, "noSuchApi", secret=SECRET))[0] == 404


# ----------------------------------------------------------------------------------- the backend

async def test_the_backend_satisfies_the_interface(http: aiohttp.ClientSession) -> None:
    assert isinstance(ZlmBackend(http, "http://127.0.0.1:80", SECRET), MediaBackend)
    with pytest.raises(ValueError, match="http://HOST"):
        ZlmBackend(http, "127.0.0.1:80", SECRET)


async def test_each_transport_maps_to_its_tcp_mode(fake: FakeZlm, http: aiohttp.ClientSession) -> None:
    zlm = backend_for(fake, http)
    opened = {}
    for transport in (UDP, TCP_PASSIVE, TCP_ACTIVE):
        port, handle = await zlm.open_receiver(ReceiverSpec(transport, ssrc=200000001, label=transport))
        opened[handle] = (port, transport)
        assert zlm.stats(handle).port == port and zlm.stats(handle).expected_ssrc == 200000001
    listed = (await zlm.call("listRtpServer"))["data"]
    modes = {UDP: 0, TCP_PASSIVE: 1, TCP_ACTIVE: 2}
    assert {(s["stream_id"], s["port"], s["tcp_mode"]) for s in listed} == {
        (h, p, modes[t]) for h, (p, t) in opened.items()}
    # no ssrc handed to ZLMediaKit: the port identifies the stream, so SSRC 0 or a device's own still work
    assert all("ssrc" not in args for api, args in fake.calls if api == "openRtpServer")
    assert all(s["ssrc"] == 0 for s in listed)
    zlm.expect_ssrc(next(iter(opened)), 703001718)
    assert zlm.stats(next(iter(opened))).expected_ssrc == 703001718
    for handle in opened:
        await zlm.close(handle)
    assert "data" not in await zlm.call("listRtpServer") and fake.servers == {}
    with pytest.raises(MediaError, match="no media session"):
        zlm.stats(next(iter(opened)))
    with pytest.raises(MediaError, match="no media session"):
        await zlm.close(next(iter(opened)))


async def test_a_wrong_secret_is_a_clear_error(fake: FakeZlm, http: aiohttp.ClientSession) -> None:
    zlm = backend_for(fake, http, secret="not-the-secret")
    with pytest.raises(ZlmError, match=r"authentication failed \(code -100: Incorrect secret\).*zlm_secret") as info:
        await zlm.open_receiver(ReceiverSpec(UDP))
    assert info.value.code == -100 and isinstance(info.value, MediaError)
    assert fake.servers == {}


async def test_an_argument_zlmediakit_does_not_know_fails_loudly(fake: FakeZlm, http: aiohttp.ClientSession) -> None:
    zlm = backend_for(fake, http)
    with pytest.raises(ZlmError, match=r"invalid arguments \(code -300: Unknown parameter: tcpmode\)"):
        await zlm.call("openRtpServer", port=0, stream_id="x", tcpmode=1)
    with pytest.raises(ZlmError, match=r'code -300: Required parameter missed: "stream_id"'):
        await zlm.call("getRtpInfo")
    with pytest.raises(MediaError, match=r"ZLMediaKit noSuchApi: HTTP 404, not a ZLMediaKit API answer"):
        await zlm.call("noSuchApi")  # e.g. zlm_url points at another web server


async def test_zlmediakit_down_is_retried_then_a_clear_error(http: aiohttp.ClientSession) -> None:
    url = f"http://127.0.0.1:{free_port(socket.SOCK_STREAM)}"  # nothing listens there
    zlm = ZlmBackend(http, url, SECRET, timeout=2.0, retries=2)
    with pytest.raises(MediaError, match=rf"ZLMediaKit at {url}: unreachable .*\(3 attempts for openRtpServer\)"):
        await zlm.open_receiver(ReceiverSpec(UDP))
    assert zlm.handles() == []


async def test_the_state_operators_see_follows_each_call(http: aiohttp.ClientSession) -> None:
    """unknown -> unreachable (counted, with the reason) -> ok when it comes back (probe learns its ports) ->
    auth-failed on a wrong secret; a call it refuses (bad arguments) still means it is reachable."""
    port = free_port(socket.SOCK_STREAM)
    url = f"http://127.0.0.1:{port}"
    zlm = ZlmBackend(http, url, SECRET, timeout=2.0, retries=1)
    assert zlm.status() == {"backend": "zlmediakit", "url": url, "state": "unknown", "error": "", "failures": 0}
    for n in (1, 2):
        down = await zlm.probe()  # never raises
        assert (down["state"], down["failures"]) == ("unreachable", n)
        assert down["error"].startswith(f"ZLMediaKit at {url}: unreachable") and "2 attempts for getServerConfig" in \
            down["error"]  # fmt: skip
    base = free_port()
    fake = FakeZlm(SECRET, (base, min(base + 5, 65535)))
    await fake.start(port)
    try:
        assert await zlm.probe() == {"backend": "zlmediakit", "url": url, "state": "ok", "error": "", "failures": 0}
        assert (zlm.rtsp_port, zlm.rtmp_port) == (10554, 11935)
        with pytest.raises(ZlmError):
            await zlm.call("getRtpInfo")  # missing stream_id: refused, but ZLMediaKit answered
        assert zlm.status()["state"] == "ok"
        zlm.secret = "not-the-secret"
        assert (await zlm.probe())["state"] == "auth-failed"
        assert "zlm_secret" in zlm.status()["error"]
    finally:
        await fake.stop()


async def test_a_slow_zlmediakit_times_out_and_only_reads_are_repeated(fake: FakeZlm,
                                                                       http: aiohttp.ClientSession) -> None:
    zlm = backend_for(fake, http, timeout=0.2, retries=2)
    fake.delay = 1.0
    with pytest.raises(MediaError, match=r"no answer within 0.2 s \(1 attempt for openRtpServer\)"):
        await zlm.open_receiver(ReceiverSpec(UDP))
    with pytest.raises(MediaError, match=r"no answer within 0.2 s \(3 attempts for getMediaList\)"):
        await zlm.call("getMediaList")
    assert [api for api, _ in fake.calls] == ["openRtpServer"] + ["getMediaList"] * 3


async def test_a_5xx_answer_is_retried(fake: FakeZlm, http: aiohttp.ClientSession) -> None:
    zlm = backend_for(fake, http, retries=2)
    fake.fail_next = 2
    assert (await zlm.call("listRtpServer"))["code"] == 0
    assert [api for api, _ in fake.calls] == ["listRtpServer"] * 3
    fake.fail_next = 1
    with pytest.raises(MediaError, match="HTTP 503"):
        await backend_for(fake, http, retries=0).call("listRtpServer")


async def test_a_stream_left_open_by_an_earlier_run_is_taken_over(fake: FakeZlm, http: aiohttp.ClientSession) -> None:
    zlm = backend_for(fake, http)
    await zlm.call("openRtpServer", port=0, stream_id="gb_200000001_1")  # what a restarted platform will ask for
    port, handle = await zlm.open_receiver(ReceiverSpec(UDP, ssrc=200000001))
    assert handle == "gb_200000001_1" and fake.servers[handle].port == port
    assert [api for api, _ in fake.calls] == ["openRtpServer", "openRtpServer", "closeRtpServer", "openRtpServer"]


async def test_tcp_active_connect_errors(fake: FakeZlm, http: aiohttp.ClientSession) -> None:
    zlm = backend_for(fake, http)
    _, handle = await zlm.open_receiver(ReceiverSpec(TCP_ACTIVE))
    with pytest.raises(MediaError, match=r"ZLMediaKit connecting to 127\.0\.0\.1:\d+ failed"):
        await zlm.connect(handle, "127.0.0.1", free_port(socket.SOCK_STREAM))
    assert not zlm.stats(handle).connected
    _, udp = await zlm.open_receiver(ReceiverSpec(UDP))
    with pytest.raises(MediaError, match="not a tcp-active receiver"):
        await zlm.connect(udp, "127.0.0.1", 9)
    with pytest.raises(MediaError, match="no media session"):
        await zlm.connect("gb_x_99", "127.0.0.1", 9)
    await zlm.aclose()
    assert fake.servers == {}


async def test_a_forward_needs_a_stream_that_has_arrived(fake: FakeZlm, http: aiohttp.ClientSession) -> None:
    zlm = backend_for(fake, http, timeout=0.3)
    _, handle = await zlm.open_receiver(ReceiverSpec(UDP))
    with pytest.raises(MediaError, match="no stream from the device yet"):
        await zlm.forward(handle, ForwardSpec(200000077, UDP, "127.0.0.1", 9))
    assert zlm.stats(handle).forwards == 0
    with pytest.raises(MediaError, match="no forward"):
        await zlm.stop_forward(handle, f"{handle}/1")
    await zlm.close(handle)


async def test_a_forward_waits_for_the_stream_without_hooks(fake: FakeZlm, http: aiohttp.ClientSession) -> None:
    zlm = backend_for(fake, http, timeout=WAIT)  # the fake has no hook URL: the backend polls
    port, handle = await zlm.open_receiver(ReceiverSpec(UDP))
    consumer = await asyncio.get_running_loop().create_datagram_endpoint(asyncio.DatagramProtocol,
                                                                         local_addr=("127.0.0.1", 0))
    try:
        forward = asyncio.ensure_future(zlm.forward(handle, ForwardSpec(7, UDP, "127.0.0.1",
                                                                        consumer[0].get_extra_info("sockname")[1])))
        await asyncio.sleep(0.1)
        assert not forward.done()  # ZLMediaKit answered -500: no such stream yet
        await send_udp(port, primer(5, 0))  # the device starts sending
        assert (await asyncio.wait_for(forward, WAIT))[1] == f"{handle}/7"
        assert list(fake.servers[handle].senders) == [7]
    finally:
        consumer[0].close()
        await zlm.aclose()


async def test_a_ps_file_is_refused_with_the_reason(fake: FakeZlm, http: aiohttp.ClientSession, tmp_path: Any) -> None:
    zlm = backend_for(fake, http)
    with pytest.raises(MediaError, match="writes no PS file"):
        await zlm.open_receiver(ReceiverSpec(UDP, output=str(tmp_path / "x.ps")))
    assert fake.calls == []


async def test_live_urls_use_zlmediakit_ports(fake: FakeZlm, http: aiohttp.ClientSession) -> None:
    zlm = backend_for(fake, http)
    settings = await zlm.load_server_config()
    assert settings["rtsp.port"] == "10554"
    _, handle = await zlm.open_receiver(ReceiverSpec(UDP))
    assert zlm.live_urls(handle) == {
        "flv": f"http://127.0.0.1:{fake.port}/rtp/{handle}.live.flv",
        "hls": f"http://127.0.0.1:{fake.port}/rtp/{handle}/hls.m3u8",
        "rtsp": f"rtsp://127.0.0.1:10554/rtp/{handle}",
        "rtmp": f"rtmp://127.0.0.1:11935/rtp/{handle}",
    }
    assert zlm.live_urls(handle, host="2001:db8::1")["rtsp"] == f"rtsp://[2001:db8::1]:10554/rtp/{handle}"
    await zlm.close(handle)


async def test_the_watchdog_reports_no_media_without_hooks(fake: FakeZlm, http: aiohttp.ClientSession) -> None:
    zlm = backend_for(fake, http)
    fired: list[str] = []
    _, handle = await zlm.open_receiver(ReceiverSpec(UDP, no_media_timeout=0.2),
                                        on_no_media=lambda h, s: fired.append(h))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not fired and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert fired == [handle] and zlm.stats(handle).no_media
    assert "getMediaList" in [api for api, _ in fake.calls]  # it asked ZLMediaKit, which had no stream
    await zlm.close(handle)


# --------------------------------------------------------------------------------------- the factory

async def test_the_factory_builds_the_configured_backend(http: aiohttp.ClientSession) -> None:
    port = free_port()
    embedded = make_backend(MediaConfig(rtp_ports=f"{port}-{port + 1}"), host="127.0.0.1")
    assert isinstance(embedded, EmbeddedBackend) and (embedded.pool.first, embedded.pool.last) == (port, port + 1)
    zlm = make_backend(MediaConfig(backend="zlmediakit", zlm_url="http://127.0.0.1:8080", zlm_secret="s",
                                   zlm_timeout=3.0, zlm_retries=1, zlm_stream_prefix="east"), http)
    assert isinstance(zlm, ZlmBackend)
    assert (zlm.url, zlm.secret, zlm.timeout, zlm.retries, zlm.prefix) == (
        "http://127.0.0.1:8080", "s", 3.0, 1, "east")
    with pytest.raises(ValueError, match="ClientSession"):
        make_backend(MediaConfig(backend="zlmediakit"))
