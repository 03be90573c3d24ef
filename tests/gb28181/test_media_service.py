"""The media session service without sockets: our sans-IO SIP endpoint, a fake media backend, and device answers
taken from the wild fixtures (fixtures/sdp/wild/): the answer's SSRC wins (zero-padded too), tcp-active connects to
the answer's address (the signalling peer's when c= is masked), a=setup on a UDP answer changes nothing, a refusal
is a clear error, concurrent viewers of one channel cause one INVITE, the last consumer's leave sends BYE, a device
BYE releases the port and the SSRC, and MediaStatus 121 ends a download."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gb28181.config import MediaConfig
from gb28181.media.backend import MediaError, ReceiverSpec, ReceiverStats
from gb28181.media_sessions import MediaService
from gb28181.sessions import SessionError
from sip.endpoint import Endpoint, EndpointConfig, Peer, RequestReceived, ResponseReceived, TransactionFailed

WILD = Path(__file__).resolve().parents[2] / "fixtures" / "sdp" / "wild"
DEVICE = "34020000001320000003"
PEER = Peer("UDP", "127.0.0.1", 5070)


class FakeBackend:
    def __init__(self) -> None:
        self.opened: list[ReceiverSpec] = []
        self.expected: dict[str, int] = {}
        self.connected: dict[str, tuple[str, int]] = {}
        self.closed: list[str] = []
        self.stats_of: dict[str, ReceiverStats] = {}
        self.fail_open = False
        self.sinks: dict[str, list[Any]] = {}  # live viewers

    async def open_receiver(self, spec: ReceiverSpec, on_no_media: Any = None) -> tuple[int, str]:
        if self.fail_open:
            raise MediaError("no free media port in 30000-30000 (1 in use)")
        self.opened.append(spec)
        handle = f"h{len(self.opened)}"
        self.stats_of[handle] = ReceiverStats(port=30000 + len(self.opened), transport=spec.transport,
                                              expected_ssrc=spec.ssrc)  # fmt: skip
        return 30000 + len(self.opened), handle

    def expect_ssrc(self, handle: str, ssrc: int) -> None:
        self.expected[handle] = ssrc

    async def connect(self, handle: str, host: str, port: int) -> None:
        self.connected[handle] = (host, port)

    def stats(self, handle: str) -> ReceiverStats:
        if handle not in self.stats_of:
            raise MediaError("gone")
        return self.stats_of[handle]

    def media(self, handle: str) -> None:
        s = self.stats_of[handle]
        s.packets, s.bytes, s.last_packet = 10, 10000, asyncio.get_running_loop().time()

    async def close(self, handle: str) -> ReceiverStats:
        self.closed.append(handle)
        return self.stats_of.pop(handle)

    async def forward(self, handle: str, spec: Any) -> tuple[int, str]:
        raise MediaError("not used")

    def subscribe(self, handle: str, sink: Any) -> Any:
        self.sinks.setdefault(handle, []).append(sink)
        return lambda: self.sinks[handle].remove(sink)

    async def stop_forward(self, handle: str, forward: str) -> None:
        raise MediaError("not used")

    async def aclose(self) -> None:
        for handle in list(self.stats_of):
            await self.close(handle)


class Harness:
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.endpoint = Endpoint(EndpointConfig(user_agent="test"))
        self.backend = FakeBackend()
        self.sent: list[bytes] = []
        self.online = {DEVICE}
        self.media = MediaService(
            cfg=MediaConfig(invite_timeout=30, no_media_timeout=30), platform_id="34020000002000000001",
            domain="3402000000", backend=self.backend, endpoint=self.endpoint, flush=self.flush,
            device_of=lambda d: SimpleNamespace(transport="UDP", address="127.0.0.1:5070"),
            status_of=lambda d: "online" if d in self.online else None, owners_of=self.owners,
            local_address=lambda peer: ("127.0.0.1", 5060), mono=self.loop.time, wall=lambda: 1_764_000_000.0,
            count=lambda key: None, live_secret=b"s" * 32,
        )  # fmt: skip

    async def owners(self, channel: str) -> list[str]:
        return []

    def flush(self) -> None:
        for _ in range(1000):
            event = self.endpoint.next_event()
            if event is None:
                break
            if isinstance(event, ResponseReceived | TransactionFailed):
                self.media.on_response(event)
            elif isinstance(event, RequestReceived) and event.request.method == "BYE":
                self.media.on_bye(event)
        self.sent += [t.data for t in self.endpoint.outgoing()]

    def requests(self, method: str) -> list[bytes]:
        return [d for d in self.sent if d.startswith(method.encode() + b" ")]

    def respond(self, request: bytes, status: str, body: bytes = b"", tag: str = "dev1") -> None:
        head = request.split(b"\r\n\r\n")[0].decode()
        h = {k.lower(): v.strip() for k, v in re.findall(r"^([\w-]+):\s*(.*)$", head, re.M)}
        text = (f"SIP/2.0 {status}\r\nVia: {h['via']}\r\nFrom: {h['from']}\r\nTo: {h['to']}"
                + (f";tag={tag}" if "tag=" not in h["to"] else "")
                + f"\r\nCall-ID: {h['call-id']}\r\nCSeq: {h['cseq']}\r\nContact: <sip:{DEVICE}@127.0.0.1:5070>\r\n"
                + ("Content-Type: application/sdp\r\n" if body else "") + f"Content-Length: {len(body)}\r\n\r\n")
        self.endpoint.receive(text.encode() + body, PEER, self.loop.time())
        self.flush()

    async def invite(self, n: int = 1) -> bytes:
        for _ in range(500):
            if len(self.requests("INVITE")) >= n:
                return self.requests("INVITE")[n - 1]
            await asyncio.sleep(0.01)
        raise AssertionError("no INVITE")


def wild(name: str) -> bytes:
    return (WILD / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


async def started(h: Harness, body: bytes, **kw: Any) -> tuple[asyncio.Task[dict[str, Any]], bytes]:
    n = len(h.requests("INVITE")) + 1
    task = asyncio.create_task(h.media.start(DEVICE, kw.pop("kind", "play"), **kw))
    invite = await h.invite(n)
    h.respond(invite, "100 Trying")
    h.respond(invite, "200 OK", body)
    return task, invite


async def test_padded_ssrc_answer_wins_and_setup_on_udp_is_ignored() -> None:
    h = Harness()
    task, invite = await started(h, wild("hikvision/ipc-invite-200ok-ssrc-padded.sdp"))
    assert b"Subject: 34020000001320000003:0200000001,34020000002000000001:0" in invite
    assert h.requests("ACK")  # the stack ACKed the 2xx
    h.backend.media("h1")
    row = await task
    assert h.backend.expected["h1"] == 630886 and row["ssrc"] == "0000630886"  # y=0000630886
    assert h.backend.connected == {} and row["state"] == "streaming" and row["transport"] == "udp"
    assert row["live"].startswith(f"/live/{row['consumer']}?token=")
    stop = asyncio.create_task(h.media.stop(row["consumer"]))
    for _ in range(200):
        if h.requests("BYE"):
            break
        await asyncio.sleep(0.01)
    bye = h.requests("BYE")
    assert len(bye) == 1
    h.respond(bye[0], "200 OK")
    assert (await stop)["state"] == "ended"
    assert h.backend.closed == ["h1"] and h.media.list() == [] and h.media.ssrcs.in_use() == frozenset()


async def test_tcp_active_connects_to_the_answer_and_masked_address_falls_back_to_the_peer() -> None:
    h = Harness()
    task, invite = await started(h, wild("hikvision/ipc-ds2cd5024-invite-200ok-tcp-passive.sdp"),
                                 transport="tcp-active")  # fmt: skip
    assert b"a=setup:active" in invite and b"TCP/RTP/AVP" in invite
    h.backend.media("h1")
    row = await task
    assert h.backend.connected["h1"] == ("192.168.0.64", 15060)  # a fake backend: nothing is dialled
    assert row["media_address"] == "192.168.0.64:15060" and h.backend.opened[0].transport == "tcp-active"
    h2 = Harness()
    masked = wild("hikvision/ipc-ds2cd5024-invite-200ok-tcp-passive.sdp").replace(b"c=IN IP4 192.168.0.64",
                                                                                  b"c=IN IP4 ***")  # fmt: skip
    task, _ = await started(h2, masked, transport="tcp-active")
    h2.backend.media("h1")
    await task
    assert h2.backend.connected["h1"] == ("127.0.0.1", 15060)  # the signalling peer's address


async def test_refusal_and_unknown_channel_and_no_port_are_clear_errors() -> None:
    h = Harness()
    task = asyncio.create_task(h.media.start(DEVICE, "play"))
    invite = await h.invite()
    h.respond(invite, "486 Busy Here")
    with pytest.raises(SessionError, match="486 Busy Here"):
        await task
    with pytest.raises(SessionError, match="34020000001329999999") as info:
        await h.media.start("34020000001329999999", "play")
    assert info.value.kind == "unknown"
    h.online.clear()
    h.backend.fail_open = False
    with pytest.raises(SessionError):
        await h.media.start(DEVICE, "play")
    h.online.add(DEVICE)
    h.backend.fail_open = True
    with pytest.raises(SessionError, match="no free media port"):
        await h.media.start(DEVICE, "play")
    with pytest.raises(SessionError, match="start before the end"):
        await h.media.start(DEVICE, "playback", start=10, end=5)
    with pytest.raises(SessionError, match="transport"):
        await h.media.start(DEVICE, "play", transport="sctp")
    assert h.media.ssrcs.in_use() == frozenset()


async def test_concurrent_viewers_cause_one_invite() -> None:
    h = Harness()
    first = asyncio.create_task(h.media.start(DEVICE, "play"))
    invite = await h.invite()
    second = asyncio.create_task(h.media.start(DEVICE, "play"))
    await asyncio.sleep(0.05)
    h.respond(invite, "200 OK", wild("hikvision/ipc-invite-200ok-ssrc-padded.sdp"))
    h.backend.media("h1")
    a, b = await first, await second
    assert a["id"] == b["id"] and a["consumer"] != b["consumer"] and len(h.requests("INVITE")) == 1
    third = await h.media.start(DEVICE, "play")
    assert third["id"] == a["id"] and len(third["consumers"]) == 3
    for row in (a, b):
        await h.media.stop(row["consumer"])
    assert h.requests("BYE") == []


async def test_device_bye_releases_and_media_status_ends_a_download() -> None:
    h = Harness()
    task, invite = await started(h, wild("hikvision/ipc-download-200ok-t00.sdp"), kind="download",
                                 start=1_764_000_000, end=1_764_003_600, speed=4)  # fmt: skip
    assert b"s=Download" in invite and b"a=downloadspeed:4" in invite and b"y=1" in invite
    h.backend.media("h1")
    row = await task
    assert h.media.on_media_status(DEVICE, DEVICE, "121", "another-call-id")  # out of dialog: by device
    bye = h.requests("BYE")
    assert len(bye) == 1
    h.respond(bye[0], "200 OK")
    for _ in range(200):
        if h.backend.closed:
            break
        await asyncio.sleep(0.01)
    assert h.backend.closed == ["h1"] and not h.media.on_media_status(DEVICE, DEVICE, "121", "x")
    assert row["kind"] == "download"

    task, invite = await started(h, wild("hikvision/ipc-invite-200ok-ssrc-padded.sdp"))
    h.backend.media("h2")
    await task
    call_id = re.search(rb"Call-ID: (\S+)", invite).group(1).decode()  # type: ignore[union-attr]
    device_bye = (f"BYE sip:34020000002000000001@127.0.0.1:5060 SIP/2.0\r\n"
                  f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKdevbye\r\n"
                  f"From: <sip:{DEVICE}@3402000000>;tag=dev1\r\n"
                  f"To: {re.search(rb'From: (.*)', invite).group(1).decode().strip()}\r\n"  # type: ignore[union-attr]
                  f"Call-ID: {call_id}\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n")  # fmt: skip
    h.endpoint.receive(device_bye.encode(), PEER, h.loop.time())
    h.flush()
    assert any(d.startswith(b"SIP/2.0 200") and b"BYE" in d for d in h.sent)
    for _ in range(200):
        if "h2" in h.backend.closed:
            break
        await asyncio.sleep(0.01)
    assert "h2" in h.backend.closed and h.media.list() == []


async def test_a_device_gone_before_the_invite_leaves_nothing_allocated() -> None:
    h = Harness()

    def gone(device_id: str) -> Any:
        raise RuntimeError("device 34020000001320000003 is not registered")

    h.media.device_of = gone
    with pytest.raises(SessionError, match="not registered") as info:
        await h.media.start(DEVICE, "play")
    assert info.value.kind == "failed"
    assert h.media.list() == [] and h.media.ssrcs.in_use() == frozenset() and h.backend.stats_of == {}


async def test_bye_and_info_follow_a_device_that_moved_behind_nat() -> None:
    """A 4G device takes a new source port between keepalives (spec digest §13 q23): the BYE goes where it is now,
    not where the INVITE reached it (found by the conformance media probe against the mobile-4g-camera profile)."""
    h = Harness()
    sent_to: list[tuple[Peer, bytes]] = []
    plain_flush = h.flush

    def flush() -> None:
        for t in h.endpoint.outgoing():
            sent_to.append((t.peer, t.data))
            h.sent.append(t.data)
        plain_flush()

    h.media.flush = flush
    task, _ = await started(h, wild("hikvision/ipc-download-200ok-t00.sdp"), kind="playback",
                            start=1_764_000_000, end=1_764_000_060)  # fmt: skip
    h.backend.media("h1")
    row = await task
    h.media.device_of = lambda d: SimpleNamespace(transport="UDP", address="127.0.0.1:5099")
    control = asyncio.create_task(h.media.control(row["id"], "pause"))
    for _ in range(200):
        if h.requests("INFO"):
            break
        await asyncio.sleep(0.01)
    h.respond(h.requests("INFO")[0], "200 OK")
    await control
    stop = asyncio.create_task(h.media.stop(row["consumer"]))
    for _ in range(200):
        if h.requests("BYE"):
            break
        await asyncio.sleep(0.01)
    h.respond(h.requests("BYE")[0], "200 OK")
    await stop
    moved = Peer("UDP", "127.0.0.1", 5099)
    assert [p for p, d in sent_to if d.startswith((b"INFO ", b"BYE "))] == [moved, moved]


async def test_a_consumers_own_viewer_is_no_second_consumer_so_its_stop_ends_the_stream_at_once() -> None:
    """`gb28181 play --output` reads the live URL it was given, closes it, then stops its consumer: the stop's
    answer must say the stream ended, whenever the platform notices the viewer's socket close (found by the lossy
    live INVITE test: "streaming", one consumer left, in 2 of 4 plays)."""
    h = Harness()
    task, _ = await started(h, wild("hikvision/ipc-invite-200ok-ssrc-padded.sdp"))
    h.backend.media("h1")
    row = await task
    path, _, token = row["live"].partition("?token=")
    assert path == f"/live/{row['consumer']}" and token  # the consumer's own URL
    session, feed, detach = h.media.attach(row["consumer"])
    assert list(session.consumers) == [row["consumer"]] and h.backend.sinks["h1"] == [feed]
    _, _, other_detach = h.media.attach(row["id"])  # a viewer of the session's URL is a consumer of its own
    assert len(session.consumers) == 2
    other_detach()
    assert list(session.consumers) == [row["consumer"]] and not h.requests("BYE")
    stop = asyncio.create_task(h.media.stop(row["consumer"]))
    for _ in range(200):
        if h.requests("BYE"):
            break
        await asyncio.sleep(0.01)
    (bye,) = h.requests("BYE")
    h.respond(bye, "200 OK")
    assert (await stop)["state"] == "ended"
    assert feed.queue.get_nowait() is None  # the viewer's stream ends
    detach()  # and when its socket close is noticed, there is nothing left to leave
    assert h.media.list() == [] and len(h.requests("BYE")) == 1
