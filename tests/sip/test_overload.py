"""Overload: while the adapter says the endpoint is overloaded, new out-of-dialog requests get 503 with
Retry-After (RFC 3261 §21.5.4); work already started goes on."""

from __future__ import annotations

import asyncio
import socket
import time

from sip.aio import SipRunner
from sip.endpoint import Endpoint, RequestReceived
from tests.sip.fakes import Harness, parse_response, raw_request


def test_new_requests_get_503_with_retry_after_while_overloaded() -> None:
    h = Harness.make()
    h.recv(raw_request("MESSAGE", branch="z9hG4bK-early"))
    (early,) = h.events()
    h.endpoint.overloaded = True
    h.recv(raw_request("REGISTER", branch="z9hG4bK-new"))
    (answer,) = h.sent()
    assert answer.status == 503 and answer.headers.get("retry-after") == "5"  # type: ignore[union-attr]
    assert answer.to.tag is not None  # type: ignore[union-attr]
    assert h.events() == [] and h.endpoint.stats["overload_rejected"] == 1  # the application never saw it
    h.recv(raw_request("REGISTER", branch="z9hG4bK-new"))  # its retransmission: the same 503, absorbed
    assert [m.status for m in h.sent()] == [503] and h.endpoint.stats["overload_rejected"] == 1  # type: ignore[union-attr]
    # work already started is finished: the earlier MESSAGE can still be answered
    assert isinstance(early, RequestReceived)
    h.endpoint.reply(early, 200, now=h.now)
    assert [m.status for m in h.sent()] == [200]  # type: ignore[union-attr]
    h.endpoint.overloaded = False
    h.recv(raw_request("REGISTER", branch="z9hG4bK-later"))
    assert len(h.events()) == 1


def test_in_dialog_requests_are_not_refused() -> None:
    h = Harness.make(on_unknown_dialog=lambda _req: True)
    h.endpoint.overloaded = True
    h.recv(raw_request("BYE", to_tag="ours", branch="z9hG4bK-bye"))
    assert len(h.events()) == 1 and h.sent() == []


async def test_the_runner_flags_overload_when_its_loop_runs_late_and_recovers() -> None:
    endpoint = Endpoint()
    answered: list[int] = []

    def handle(event: object) -> None:
        if isinstance(event, RequestReceived):
            endpoint.reply(event, 200, now=asyncio.get_running_loop().time())

    runner = SipRunner(endpoint, handle, overload_lag=0.2)
    host, port = await runner.listen_udp("127.0.0.1", 0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        for n in range(8):
            time.sleep(0.3)  # the loop is stuck (a slow handler, a GC pause, a storm)
            await asyncio.sleep(0)
            sock.sendto(raw_request("OPTIONS", branch=f"z9hG4bK-busy{n}", call_id=f"busy{n}"), (host, port))
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)  # calm again: the next tick clears the flag
        sock.sendto(raw_request("OPTIONS", branch="z9hG4bK-calm", call_id="calm"), (host, port))
        deadline = loop.time() + 5
        while loop.time() < deadline:
            try:
                data = await asyncio.wait_for(loop.sock_recv(sock, 65535), 1.0)
            except TimeoutError:
                break
            answered.append(parse_response(data).status)
            if parse_response(data).call_id == "calm":
                break
    finally:
        sock.close()
        await runner.close()
    assert 503 in answered, answered  # refused while late
    assert answered[-1] == 200 and endpoint.overloaded is False  # and served again once caught up


def test_a_request_answering_our_challenge_is_still_served() -> None:
    h = Harness.make()
    h.endpoint.overloaded = True
    auth = ("Authorization", 'Digest username="x", realm="r", nonce="n", uri="sip:a@b", response="0"')
    h.recv(raw_request("REGISTER", branch="z9hG4bK-auth", headers=(auth,)))
    assert len(h.events()) == 1 and h.sent() == []  # the second half of a REGISTER already half done


async def test_the_runner_sees_requests_piling_up_in_the_kernel() -> None:
    """Linux: datagrams waiting unread count as overload when overload_backlog is set."""
    endpoint = Endpoint()
    runner = SipRunner(endpoint, lambda _e: None, overload_lag=30.0, overload_backlog=64 * 1024)
    host, port = await runner.listen_udp("127.0.0.1", 0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        proto = runner._udp[0]
        if proto.backlog() is None:
            return  # no /proc/net/udp here: nothing to measure
        for n in range(200):  # sent while the loop is ours: none can be read yet
            sock.sendto(raw_request("OPTIONS", branch=f"z9hG4bK-b{n}", call_id=f"b{n}"), (host, port))
        assert proto.backlog() > 64 * 1024  # type: ignore[operator]
        runner._watch_lag(asyncio.get_running_loop().time())  # one measurement, now
        assert endpoint.overloaded is True
    finally:
        sock.close()
        await runner.close()
