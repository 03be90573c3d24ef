"""2022 App. K stream replacement on the device side, over real sockets: `gb28181 simulate --max-streams 1` and a
raw-socket caller (tests/e2e/test_simulator_media_e2e.py's RawCaller, RFC 3261 text by hand). A second live INVITE
with the same Subject sender and receiver identities replaces the first send: 200 (not 486), the old dialog gets
the device's BYE and its stream stops while the new one flows; an INVITE from another receiver gets 486."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from gb28181 import sdp
from gb28181.media.receiver import EmbeddedBackend
from tests.e2e.conftest import free_port
from tests.e2e.raw_device import _headers
from tests.e2e.raw_superior import RawSuperior
from tests.e2e.test_simulator_e2e import PASSWORD, SERVER_ID, Sim
from tests.e2e.test_simulator_media_e2e import Call, RawCaller, _channel

pytestmark = pytest.mark.e2e

OTHER_RECEIVER = "44000000002000000001"


class ByeCaller(RawCaller):
    """The raw caller, also taking the device's BYE (200) and noting its Call-ID."""

    def __init__(self) -> None:
        super().__init__()
        self.byes: asyncio.Queue[str] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data.startswith(b"BYE "):
            super().datagram_received(data, addr)
            return
        _, fields, _ = _headers(data)
        self.byes.put_nowait(fields["call-id"])
        answer = (f"SIP/2.0 200 OK\r\nVia: {fields['via']}\r\nFrom: {fields['from']}\r\nTo: {fields['to']}\r\n"
                  f"Call-ID: {fields['call-id']}\r\nCSeq: {fields['cseq']}\r\nContent-Length: 0\r\n\r\n")
        assert self.transport is not None
        self.transport.sendto(answer.encode(), addr)


async def test_same_subject_identities_replace_the_send_another_receiver_is_busy(tmp_path: Path) -> None:
    sup = await RawSuperior.start(SERVER_ID, PASSWORD)
    sim = Sim(SimpleNamespace(sip_port=sup.port), tmp_path, "--devices", "1", "--profile", "tianwang-nvr",  # type: ignore[arg-type]
              "--max-streams", "1")  # fmt: skip
    backend = EmbeddedBackend((free_port(socket.SOCK_STREAM),) * 2, host="127.0.0.1")  # one receiver port each
    backend2 = EmbeddedBackend((free_port(socket.SOCK_STREAM),) * 2, host="127.0.0.1")
    caller = await ByeCaller.start()
    try:
        await sim.start()
        await sup.wait_for(lambda: sup.known and sup.lower is not None, 20, "the simulated device registered")
        assert sup.lower is not None
        channel = _channel(sup)
        first = Call(caller, sup.lower, channel, backend)
        await first.invite(sdp.PLAY, sdp.UDP, tmp_path / "first.ps")
        assert await first.packets_at_least(25) >= 25
        second = Call(caller, sup.lower, channel, backend2)
        await second.invite(sdp.PLAY, sdp.UDP, tmp_path / "second.ps")  # asserts the 200: replaced, not 486
        assert await asyncio.wait_for(caller.byes.get(), 10) == first.call_id
        assert await second.packets_at_least(25) >= 25
        settled = backend.stats(first.handle).packets
        await second.packets_at_least(backend2.stats(second.handle).packets + 25)  # half a second more of the new
        assert backend.stats(first.handle).packets == settled  # the old send stopped
        offer = sdp.build_offer(sdp.Offer(own_id=OTHER_RECEIVER, address="127.0.0.1", port=free_port(),
                                          ssrc="0200000043"))  # fmt: skip
        caller.send("INVITE", sup.lower, channel, "appk-other", "", offer.to_bytes(), "APPLICATION/SDP",
                    f"Subject: {channel}:0200000043,{OTHER_RECEIVER}:0\r\n", cseq=1)  # fmt: skip
        status, fields, _ = await caller.final()
        assert status == 486 and "already sends 1" in fields.get("warning", ""), (status, fields)
        assert await second.bye() == 200
        summary = await sim.quit()
        assert summary["stats"].get("app-k-replaced") == 1 and summary["stats"].get("invite-busy") == 1
    finally:
        await sim.kill()
        await backend.aclose()
        await backend2.aclose()
        sup.close()
