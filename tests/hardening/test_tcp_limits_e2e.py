"""Bad input over real sockets against `gb28181 serve`: slow senders (slowloris), silent connections, endless
streams without Content-Length or without a header end, oversized messages, header floods. Each is bounded,
answered or dropped with a log line, counted by reason in `gb28181 stats`, and the server keeps answering."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from tests.e2e.serve_helpers import Server

OPTIONS = (
    "OPTIONS sip:34020000002000000001@127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/{t} 127.0.0.1:{port};branch=z9hG4bK{branch}\r\n"
    "From: <sip:34020000001320000001@3402000000>;tag=a\r\nTo: <sip:34020000002000000001@3402000000>\r\n"
    "Call-ID: {branch}@h\r\nCSeq: 1 OPTIONS\r\n{extra}Content-Length: 0\r\n\r\n"
)


@pytest.fixture
async def server(tmp_path: Path):
    s = Server(tmp_path, sip_extra="tcp_read_deadline = 1.0")
    await s.start()
    yield s
    await s.stop()


async def closed_by_server(reader: asyncio.StreamReader, timeout: float = 20.0) -> bytes:
    """Read until the server closes the connection (EOF or reset); what it sent before. Bounded."""
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), deadline - time.monotonic())
        except ConnectionResetError:
            return got
        if not chunk:
            return got
        got += chunk
    raise AssertionError("the server did not close the connection")


async def counters(server: Server) -> dict[str, int]:
    stats = await server.cli("stats")
    assert isinstance(stats, dict)
    return stats["counters"]


async def wait_counter(server: Server, name: str, at_least: int) -> dict[str, int]:
    for _ in range(80):
        c = await counters(server)
        if c.get(name, 0) >= at_least:
            return c
        await asyncio.sleep(0.25)
    raise AssertionError(f"counter {name} never reached {at_least}: {c}\n{server.log()}")


async def tcp_options_ok(server: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.sip_port)
    port = writer.get_extra_info("sockname")[1]
    writer.write(OPTIONS.format(t="TCP", port=port, branch="ok1", extra="").encode())
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert line.startswith(b"SIP/2.0 200"), line


async def test_slow_and_silent_tcp_peers_are_cut_at_the_read_deadline(server: Server) -> None:
    # slowloris: a started message trickles in a byte at a time, never finishing
    slow_r, slow_w = await asyncio.open_connection("127.0.0.1", server.sip_port)
    silent_r, silent_w = await asyncio.open_connection("127.0.0.1", server.sip_port)  # connects, sends nothing
    start = time.monotonic()
    head = OPTIONS.format(t="TCP", port=1, branch="slow", extra="").encode()
    for byte in head[:40]:
        slow_w.write(bytes([byte]))
        try:
            await slow_w.drain()
        except ConnectionError:
            break
        await asyncio.sleep(0.1)
        if slow_r.at_eof():
            break
    await closed_by_server(slow_r)
    await closed_by_server(silent_r)
    assert time.monotonic() - start < 20  # bounded by the deadline, not by the peer
    c = await wait_counter(server, "rejected:slow-sender", 2)
    assert c["rejected:slow-sender"] == 2
    assert "TCP read deadline" in server.log()
    # a well-behaved TCP peer is unaffected
    await tcp_options_ok(server)
    slow_w.close()
    silent_w.close()


async def test_endless_streams_oversize_and_header_floods_are_bounded(server: Server) -> None:
    # a head without Content-Length (RFC 3261 §18.3 requires it on streams): dropped, connection closed
    r, w = await asyncio.open_connection("127.0.0.1", server.sip_port)
    w.write(OPTIONS.format(t="TCP", port=1, branch="nocl", extra="").replace("Content-Length: 0\r\n", "").encode())
    await closed_by_server(r)
    w.close()
    # an endless stream with no end of head: cut once it passes the header limit, not buffered forever
    r, w = await asyncio.open_connection("127.0.0.1", server.sip_port)
    w.write(b"OPTIONS sip:x SIP/2.0\r\nX-Endless: ")
    sent = 0
    try:
        for _ in range(64):  # at most 4 MiB
            w.write(b"A" * 65536)
            await asyncio.wait_for(w.drain(), 10)
            sent += 65536
            if r.at_eof():
                break
    except (ConnectionError, TimeoutError):
        pass
    await closed_by_server(r)
    w.close()
    assert sent < 4 << 20
    # a body announced larger than the limit: refused before it arrives
    r, w = await asyncio.open_connection("127.0.0.1", server.sip_port)
    huge = OPTIONS.format(t="TCP", port=1, branch="big", extra="").replace(
        "Content-Length: 0", "Content-Length: 900000000"
    )
    w.write(huge.encode())
    await closed_by_server(r)
    w.close()
    # UDP: a header flood and an oversized datagram get 413/513 answers or are dropped, never crash anything
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(10)
    port = udp.getsockname()[1]
    flood = "".join(f"X-Flood-{i}: v\r\n" for i in range(300))
    udp.sendto(OPTIONS.format(t="UDP", port=port, branch="flood", extra=flood).encode(), ("127.0.0.1", server.sip_port))
    answer = udp.recv(65536)
    assert answer.startswith(b"SIP/2.0 413"), answer[:80]
    udp.sendto(OPTIONS.format(t="UDP", port=port, branch="fine", extra="").encode(), ("127.0.0.1", server.sip_port))
    assert udp.recv(65536).startswith(b"SIP/2.0 200")
    udp.close()
    c = await wait_counter(server, "rejected:header-flood", 1)
    assert c.get("rejected:no-content-length") == 1
    assert c.get("rejected:too-large", 0) >= 2  # the endless head and the huge body
    await tcp_options_ok(server)
    log = server.log()
    assert "Content-Length is mandatory" in log and "header section too long" in log and "more than 128" in log


async def test_connections_above_the_cap_are_refused_and_reported() -> None:
    """The runner alone, over loopback TCP: with a cap of 2 connections a third is refused at once, reported as a
    ConnectionBroken event (counted as connection-flood by the platform), and the first two stay open."""
    from gb28181.rejects import reject_reason
    from sip.aio import SipRunner
    from sip.endpoint import ConnectionBroken, Endpoint, EndpointConfig

    events: list[object] = []
    runner = SipRunner(Endpoint(EndpointConfig()), events.append, max_tcp_connections=2)
    _, port = await runner.listen_tcp("127.0.0.1", 0)
    try:
        kept = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        await asyncio.sleep(0.1)
        r3, w3 = await asyncio.open_connection("127.0.0.1", port)
        assert await closed_by_server(r3) == b""
        broken = [e for e in events if isinstance(e, ConnectionBroken)]
        assert len(broken) == 1 and reject_reason(broken[0].reason) == "connection-flood"
        assert len(runner._conns) == 2 and not any(r.at_eof() for r, _ in kept)  # the first two stay open
        for _, w in [*kept, (r3, w3)]:
            w.close()
    finally:
        await runner.close()
