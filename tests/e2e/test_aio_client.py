"""The asyncio adapters as a client: outgoing requests over UDP and TCP (new connections), timeouts,
connection failures, and TCP idle close, against SIPp and raw sockets on loopback."""

from __future__ import annotations

import asyncio
import socket

import pytest

from sip.aio import SipRunner, TransactionError
from sip.endpoint import ConnectionBroken, ConnectionClosed, Endpoint, EndpointConfig, Peer
from sip.headers import Headers
from sip.message import Request, new_call_id, new_tag
from sip.timers import TimerConfig
from tests.e2e.conftest import SCENARIOS, free_port, require_tool

pytestmark = pytest.mark.e2e

CATALOG = (
    b'<?xml version="1.0" encoding="GB2312"?>\r\n<Query>\r\n<CmdType>Catalog</CmdType>\r\n<SN>1</SN>\r\n'
    b"<DeviceID>34020000001320000001</DeviceID>\r\n</Query>\r\n"
)


def message(to_host: str, to_port: int, body: bytes = CATALOG) -> Request:
    return Request(
        "MESSAGE",
        f"sip:34020000001320000001@{to_host}:{to_port}",
        Headers(
            [
                ("From", f"<sip:34020000002000000001@3402000000>;tag={new_tag()}"),
                ("To", "<sip:34020000001320000001@3402000000>"),
                ("Call-ID", new_call_id()),
                ("CSeq", "1 MESSAGE"),
                ("Content-Type", "Application/MANSCDP+xml"),
            ]
        ),
        body,
    )


async def start_runner(t1: float = 0.5, idle: float = 900.0) -> tuple[SipRunner, list]:
    events: list = []
    endpoint = Endpoint(EndpointConfig(timers=TimerConfig(t1=t1)))
    runner = SipRunner(endpoint, events.append, tcp_idle_timeout=idle)
    return runner, events


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_requests_reach_a_sipp_device_and_complete(transport):
    sipp = require_tool("sipp")
    runner, _ = await start_runner()
    if transport == "UDP":
        await runner.listen_udp("127.0.0.1", 0)
    device_port = free_port(socket.SOCK_STREAM if transport == "TCP" else socket.SOCK_DGRAM)
    proc = await asyncio.create_subprocess_exec(
        sipp,
        "-sf",
        str(SCENARIOS / "sipp-uas-message.xml"),
        "-i",
        "127.0.0.1",
        "-p",
        str(device_port),
        "-t",
        "t1" if transport == "TCP" else "u1",
        "-m",
        "5",
        "-nostdin",
        "-timeout",
        "30s",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await asyncio.sleep(0.5)  # let SIPp bind
        peer = Peer(transport, "127.0.0.1", device_port)
        for _ in range(5):
            response = await asyncio.wait_for(runner.request(message("127.0.0.1", device_port), peer), 10)
            assert response.status == 200
        rc = await asyncio.wait_for(proc.wait(), 30)
        assert rc == 0, (await proc.stderr.read()).decode()[-1000:]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await runner.close()
    assert runner.endpoint.transaction_count <= 5  # completed ones linger only for timer K (UDP)


async def test_udp_request_to_a_silent_peer_times_out_after_64_t1():
    runner, _ = await start_runner(t1=0.02)  # timer F = 1.28 s
    await runner.listen_udp("127.0.0.1", 0)
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TransactionError) as info:
            await asyncio.wait_for(runner.request(message("127.0.0.1", port), Peer("UDP", "127.0.0.1", port)), 20)
        assert info.value.reason == "timeout"
        assert loop.time() - started >= 64 * 0.02 * 0.9
        silent.setblocking(False)
        copies = 0
        while True:
            try:
                silent.recv(65535)
            except BlockingIOError:
                break
            copies += 1
        assert copies >= 5  # timer E retransmissions really went out
    finally:
        silent.close()
        await runner.close()


async def test_tcp_connect_refused_fails_the_transaction_at_once():
    runner, _ = await start_runner()
    port = free_port(socket.SOCK_STREAM)  # nothing listens there
    try:
        with pytest.raises(TransactionError) as info:
            await asyncio.wait_for(runner.request(message("127.0.0.1", port), Peer("TCP", "127.0.0.1", port)), 10)
        assert info.value.reason == "transport"
    finally:
        await runner.close()


async def test_idle_tcp_connections_are_closed_and_reported():
    runner, events = await start_runner(idle=0.4)
    host, port = await runner.listen_tcp("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"\r\n\r\n")  # a keep-alive ping, then silence
        await writer.drain()
        data = await asyncio.wait_for(reader.read(100), 10)
        assert data == b""  # the server closed the idle connection
        for _ in range(50):
            if any(isinstance(e, ConnectionClosed) for e in events):
                break
            await asyncio.sleep(0.05)
        assert any(isinstance(e, ConnectionClosed) and e.peer.transport == "TCP" for e in events)
    finally:
        writer.close()
        await runner.close()


async def test_tcp_stream_framing_errors_close_only_that_connection():
    runner, events = await start_runner()
    host, port = await runner.listen_tcp("127.0.0.1", 0)
    bad_r, bad_w = await asyncio.open_connection(host, port)
    good_r, good_w = await asyncio.open_connection(host, port)
    try:
        bad_w.write(b"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKx\r\n\r\n")  # no CL
        await bad_w.drain()
        assert await asyncio.wait_for(bad_r.read(100), 10) == b""
        good_w.write(b"\r\n\r\n")
        await good_w.drain()
        await asyncio.sleep(0.2)
        assert not good_r.at_eof()
        broken = [e for e in events if isinstance(e, ConnectionBroken)]
        assert len(broken) == 1 and "Content-Length" in broken[0].reason
    finally:
        bad_w.close()
        good_w.close()
        await runner.close()


async def test_rebind_udp_moves_the_source_port_and_closes_the_old_socket():
    """A NAT move / 4G reconnect as the simulator makes it: requests leave from a new port afterwards."""
    peer_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer_sock.bind(("127.0.0.1", 0))
    peer_sock.setblocking(False)
    peer = Peer("UDP", "127.0.0.1", peer_sock.getsockname()[1])
    runner, _ = await start_runner(t1=5.0)
    loop = asyncio.get_running_loop()
    try:
        first = await runner.listen_udp("127.0.0.1", 0)
        runner.request(message(peer.host, peer.port), peer)
        _, src1 = await asyncio.wait_for(loop.sock_recvfrom(peer_sock, 65535), 10)
        second = await runner.rebind_udp("127.0.0.1", 0)
        runner.request(message(peer.host, peer.port), peer)
        _, src2 = await asyncio.wait_for(loop.sock_recvfrom(peer_sock, 65535), 10)
        assert src1[1] == first[1] and src2[1] == second[1] != first[1]
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind(("127.0.0.1", first[1]))  # the old port is free again: its socket was closed
        finally:
            probe.close()
        assert runner.drop_connection(Peer("TCP", "127.0.0.1", 1)) is False
    finally:
        await runner.close()
        peer_sock.close()
