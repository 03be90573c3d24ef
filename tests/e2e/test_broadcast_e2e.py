"""Voice broadcast end to end (GB/T 28181 §9.12): `gb28181 serve`, and the CLI's `gb28181 broadcast DEVICE x.wav`.

With `gb28181 simulate` (a device with a 137 voice output, built on our SIP stack): the Notify Broadcast, its
Response, the device's audio INVITE, our 200 and the G.711A RTP; the device's loudspeaker decodes about the WAV's
2 s with the SSRC of its own y=, and hears our BYE at the end; `sessions` lists the broadcast and `stop` ends it.
With a raw-socket device (no SIP stack at all, signalling only): Result ERROR is a clear CLI error with a non-zero
exit, an OK without INVITE times out, and a Hikvision-style INVITE gets our sendonly answer, RTP, and its BYE
ends the broadcast."""

from __future__ import annotations

import asyncio
import json
import math
import re
import secrets
from array import array
from pathlib import Path
from typing import Any

import pytest

from gb28181 import sdp
from gb28181.media import g711, rtp
from gb28181.media.wav import write_wav
from tests.e2e.conftest import PYTHON, run_tool
from tests.e2e.raw_device import DOMAIN, SERVER_ID, RawDevice, _headers
from tests.e2e.serve_helpers import Server
from tests.e2e.test_simulator_e2e import PASSWORD, Sim

pytestmark = pytest.mark.e2e

RAW_DEVICE = "34020000001320000031"
RAW_OUTPUT = "34020000001370000031"


def _tone(seconds: float, path: Path) -> Path:
    """A 440 Hz tone at 8 kHz, 16-bit mono."""
    samples = array("h", (int(8000 * math.sin(2 * math.pi * 440 * n / 8000)) for n in range(int(seconds * 8000))))
    path.write_bytes(write_wav(samples))
    return path


async def _cli(srv: Server, *args: str, timeout: float = 90) -> tuple[int, Any, str]:
    rc, out, err = await run_tool(PYTHON, "-m", "cli", *args, "--json", "--admin", srv.admin, "--db", str(srv.db),
                                  timeout=timeout)  # fmt: skip
    return rc, (json.loads(out) if rc == 0 and out.strip() else out), err


async def _serve(tmp_path: Path, invite_timeout: float = 10) -> Server:
    srv = Server(tmp_path, sip_extra=f'password = "{PASSWORD}"\nquery_timeout = 5',
                 extra=f'[media]\nbind = "127.0.0.1"\nadvertise = "127.0.0.1"\ninvite_timeout = {invite_timeout}\n')
    await srv.start()
    return srv


async def test_broadcast_to_the_simulator_is_heard_for_the_wav_duration(tmp_path: Path) -> None:
    srv = await _serve(tmp_path)
    sim = Sim(srv, tmp_path, "--devices", "1", "--profile", "tianwang-ipc", "--audio-outputs", "1")
    try:
        await sim.start()
        devices = await srv.wait_for(lambda d: any(r["status"] == "online" for r in d.values()), 30, "registration")
        (device_id,) = devices
        assert (await _cli(srv, "catalog", "sync", device_id, "--wait"))[0] == 0
        rc, channels, err = await _cli(srv, "channels", "--device", device_id)
        assert rc == 0, err
        (output,) = [c["id"] for c in channels if c["kind"] == "audio-out"]
        rc, row, err = await _cli(srv, "broadcast", device_id, str(_tone(2.0, tmp_path / "x.wav")))
        assert rc == 0, f"{err}\n{srv.log()}\n{sim.log()}"
        assert row["kind"] == "broadcast" and row["channel"] == output and row["reason"] == "end of file"
        assert row["transport"] == "udp" and row["payload"] == 8 and row["packets"] == 100
        assert row["sent_seconds"] == 2.0 and not row["error"]
        # a second one, not waited for: listed while it plays, then stopped
        rc, row2, err = await _cli(srv, "broadcast", device_id, str(_tone(30.0, tmp_path / "long.wav")), "--no-wait")
        assert rc == 0, err
        rc, sessions, _ = await _cli(srv, "sessions")
        assert [(s["id"], s["kind"], s["state"]) for s in sessions] == [(row2["id"], "broadcast", "sending")]
        rc, stopped, err = await _cli(srv, "stop", row2["id"])
        assert rc == 0 and stopped["state"] == "ended" and stopped["reason"] == "stopped", err
        summary = await sim.quit()
        stats, (dev,) = summary["stats"], summary["device_list"]
        assert stats.get("broadcast") == 2 and stats.get("talk-established") == 2 and stats.get("talk-ended") == 2
        heard = stats.get("talk-audio-samples", 0) / 8000  # both broadcasts: 2 s, then a part of the 30 s one
        sent_after = stopped["sent_seconds"]
        assert 2.0 * 0.8 <= heard - sent_after <= 2.0 * 1.2, (heard, sent_after)  # loopback UDP: ±20 %
        assert set(dev["talk_ssrcs"]) == {int(row["ssrc"]), int(row2["ssrc"])}  # the SSRCs of its own y= lines
    finally:
        await sim.kill()
        await srv.stop()


class TalkDevice(RawDevice):
    """A raw device that can also answer the platform's audio: its own UDP socket for RTP."""

    async def invite_for_audio(self, media: str) -> tuple[dict[str, str], dict[str, str], sdp.SessionDescription]:
        """INVITE the platform for the broadcast audio (Hikvision style: PCMA + PS, y=), take the 200, ACK it;
        returns our INVITE's fields, the 200's fields and its SDP."""
        offer = (f"v=0\r\no={RAW_DEVICE} 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n{media}"
                 "a=rtpmap:8 PCMA/8000\r\na=rtpmap:96 PS/90000\r\ny=0200000017\r\nf=v/////a/1/8/1\r\n").encode()
        host, sip_port = self.local
        invite = self._request("INVITE", f"Contact: <sip:{RAW_DEVICE}@{host}:{sip_port}>\r\n"
                               f"Subject: {SERVER_ID}:1,{RAW_DEVICE}:2\r\n", offer, "application/sdp")  # fmt: skip
        _, invite_fields, _ = _headers(invite)
        self._send(invite)
        for _ in range(10):  # 100 Trying, then the 200 (answers to our earlier requests are skipped)
            data = await asyncio.wait_for(self._responses.get(), 10)
            _, fields, body = _headers(data)
            if data.startswith(b"SIP/2.0 200") and fields["call-id"] == invite_fields["call-id"]:
                break
        assert data.startswith(b"SIP/2.0 200") and fields["cseq"].endswith("INVITE"), data[:200]
        cseq = invite_fields["cseq"].split()[0]
        self._send((f"ACK sip:{SERVER_ID}@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {host}:{sip_port};rport;branch=z9hG4bK"
                    f"{secrets.token_hex(6)}\r\nFrom: {invite_fields['from']}\r\nTo: {fields['to']}\r\n"
                    f"Call-ID: {invite_fields['call-id']}\r\nCSeq: {cseq} ACK\r\nMax-Forwards: 70\r\n"
                    "Content-Length: 0\r\n\r\n").encode())  # fmt: skip
        return invite_fields, fields, sdp.parse(body)

    async def audio_socket(self) -> tuple[asyncio.Queue[bytes], int]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes] = asyncio.Queue()

        class Sink(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                queue.put_nowait(data)

        transport, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
        self.audio_transport = transport
        return queue, transport.get_extra_info("sockname")[1]

    async def answer(self, cmd: str, body_of: Any) -> dict[str, str]:
        """Wait for the platform's MESSAGE with this CmdType, answer it with the MESSAGE ``body_of(sn, fields)``."""
        for _ in range(20):
            request = await self.next_request(20)
            _, _, body = _headers(request)
            if f"<CmdType>{cmd}</CmdType>".encode() in body:
                fields = dict(re.findall(r"<(\w+)>([^<]*)</\1>", body.decode("gb18030")))
                assert await self.message(body_of(fields["SN"], fields)) == 200
                return fields
        raise AssertionError(f"no {cmd} MESSAGE")


def _catalog(sn: str, fields: dict[str, str]) -> bytes:
    return (f'<?xml version="1.0" encoding="GB2312"?>\r\n<Response><CmdType>Catalog</CmdType><SN>{sn}</SN>'
            f"<DeviceID>{RAW_DEVICE}</DeviceID><SumNum>1</SumNum><DeviceList Num=\"1\"><Item>"
            f"<DeviceID>{RAW_OUTPUT}</DeviceID><Name>speaker</Name><ParentID>{RAW_DEVICE}</ParentID>"
            "<Status>ON</Status></Item></DeviceList></Response>\r\n").encode()  # fmt: skip


def _result(result: str) -> Any:
    def body(sn: str, fields: dict[str, str]) -> bytes:
        return (f'<?xml version="1.0" encoding="GB2312"?>\r\n<Response><CmdType>Broadcast</CmdType><SN>{sn}</SN>'
                f"<DeviceID>{fields['TargetID']}</DeviceID><Result>{result}</Result></Response>\r\n").encode()

    return body


async def test_raw_device_refusal_silence_and_its_own_bye(tmp_path: Path) -> None:
    srv = await _serve(tmp_path, invite_timeout=2)
    dev = await TalkDevice.start(RAW_DEVICE, PASSWORD, ("127.0.0.1", srv.sip_port))
    wav = str(_tone(3.0, tmp_path / "x.wav"))
    try:
        assert await dev.register() == 200
        sync = asyncio.create_task(_cli(srv, "catalog", "sync", RAW_DEVICE, "--wait"))
        await dev.answer("Catalog", _catalog)
        assert (await sync)[0] == 0

        # 1. the device answers Result ERROR: a clear error, non-zero exit
        cli = asyncio.create_task(_cli(srv, "broadcast", RAW_DEVICE, wav))
        notify = await dev.answer("Broadcast", _result("ERROR"))
        assert (notify["SourceID"], notify["TargetID"]) == (SERVER_ID, RAW_OUTPUT)
        rc, out, err = await cli
        assert rc != 0 and "refused the broadcast" in err and "Result ERROR" in err, (out, err)

        # 2. OK, and then no INVITE: a timeout, said so
        cli = asyncio.create_task(_cli(srv, "broadcast", RAW_DEVICE, wav))
        await dev.answer("Broadcast", _result("OK"))
        rc, out, err = await cli
        assert rc != 0 and "sent no INVITE within 2 s" in err, (out, err)

        # 3. OK and a Hikvision-style INVITE (UDP, PCMA + PS, its y=): our 200, ACK, RTP; its BYE ends it
        queue, port = await dev.audio_socket()
        cli = asyncio.create_task(_cli(srv, "broadcast", RAW_DEVICE, wav))
        await dev.answer("Broadcast", _result("OK"))
        invite_fields, fields, answer = await dev.invite_for_audio(f"m=audio {port} RTP/AVP 8 96\r\na=recvonly\r\n")
        m = answer.media[0]
        assert (m.kind, m.direction, m.formats, answer.ssrc) == ("audio", "sendonly", ("8",), "0200000017")
        assert fields["contact"].startswith(f"<sip:{SERVER_ID}@")
        host, sip_port = dev.local
        cseq = invite_fields["cseq"].split()[0]
        packets = [rtp.parse(await asyncio.wait_for(queue.get(), 10)) for _ in range(25)]
        assert {p.ssrc for p in packets} == {200000017} and {p.payload_type for p in packets} == {8}
        assert [p.sequence - packets[0].sequence for p in packets] == list(range(25)) and packets[0].marker
        tone = g711.alaw_decode(b"".join(bytes(p.payload) for p in packets))
        assert max(tone) > 7000 and min(tone) < -7000  # the 440 Hz tone at amplitude 8000, not silence
        assert answer.media_address == "127.0.0.1"  # [media] advertise
        dev._send((f"BYE sip:{SERVER_ID}@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {host}:{sip_port};rport;branch=z9hG4bK"
                   f"{secrets.token_hex(6)}\r\nFrom: {invite_fields['from']}\r\nTo: {fields['to']}\r\n"
                   f"Call-ID: {invite_fields['call-id']}\r\nCSeq: {int(cseq) + 1} BYE\r\nMax-Forwards: 70\r\n"
                   "Content-Length: 0\r\n\r\n").encode())  # fmt: skip
        rc, row, err = await cli
        assert rc == 0, err
        assert row["reason"] == "the device ended the broadcast (BYE)" and 25 <= row["packets"] < 150
        rc, sessions, _ = await _cli(srv, "sessions")
        assert sessions == []

        # 4. TCP, the device connecting (its setup:active; --transport tcp-passive asks for exactly that): RFC 4571
        #    frames until the end of the file, then our BYE (the raw device answers every request 200)
        short = str(_tone(0.5, tmp_path / "short.wav"))
        cli = asyncio.create_task(_cli(srv, "broadcast", RAW_DEVICE, short, "--transport", "tcp-passive"))
        await dev.answer("Broadcast", _result("OK"))
        _, _, answer = await dev.invite_for_audio("m=audio 9 TCP/RTP/AVP 8 96\r\na=setup:active\r\n"
                                                  "a=connection:new\r\na=recvonly\r\n")  # fmt: skip
        m = answer.media[0]
        assert m.proto == "TCP/RTP/AVP" and m.setup == "passive" and answer.media_address == "127.0.0.1"
        reader, writer = await asyncio.open_connection("127.0.0.1", m.port)
        decoder, frames = rtp.Rfc4571Decoder(), []
        for _ in range(1000):
            data = await asyncio.wait_for(reader.read(4096), 10)
            if not data:
                break
            frames += decoder.feed(data)
        writer.close()
        assert len(frames) == 25 and {rtp.parse(f).ssrc for f in frames} == {200000017}
        rc, row, err = await cli
        assert rc == 0 and row["reason"] == "end of file" and row["transport"] == "tcp-passive", err
        bye = await dev.next_request(10)
        assert bye.startswith(b"BYE "), bye[:100]
    finally:
        dev.close()
        await srv.stop()


async def test_offline_device_and_no_voice_output_are_clear_errors(tmp_path: Path) -> None:
    srv = await _serve(tmp_path)
    dev = await TalkDevice.start("34020000001320000032", PASSWORD, ("127.0.0.1", srv.sip_port))
    wav = str(_tone(0.5, tmp_path / "x.wav"))
    try:
        rc, out, err = await _cli(srv, "broadcast", "34020000001320000099", wav)
        assert rc != 0 and "not registered" in err, (out, err)
        assert await dev.register() == 200
        rc, out, err = await _cli(srv, "broadcast", "34020000001320000032", wav)
        assert rc != 0 and "lists no voice output" in err, (out, err)
        bad = tmp_path / "cd.wav"
        bad.write_bytes(write_wav(array("h", [0] * 4410), rate=44100))
        rc, out, err = await _cli(srv, "broadcast", "34020000001320000032", str(bad))
        assert rc != 0 and "44100 Hz" in err and "ffmpeg" in err, (out, err)
    finally:
        dev.close()
        await srv.stop()

