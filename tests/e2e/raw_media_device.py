"""A streaming GB/T 28181 camera on raw sockets, written here from the RFCs and the standard without our SIP stack:
it registers with digest (RawDevice), answers the platform's INVITE with 100 and a 200 whose SDP looks like the
wild answers (zero-padded or different ``y=``, ``a=setup`` on UDP, a masked ``f=``), takes the ACK, then streams the
H.264 clip as PS over RTP (our PS muxer and packetizer) from its own socket: UDP, or TCP (RFC 4571) connecting to
the platform (tcp-passive) or listening for it (tcp-active). It answers BYE, INFO (recording the MANSRTSP bodies)
and CANCEL (200 + 487), and ends a download with MediaStatus 121."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

from gb28181.media import h264, ps, rtp
from gb28181.media.packetizer import RtpPacketizer
from tests.e2e.raw_device import DOMAIN, SERVER_ID, RawDevice, _headers

CLIP = Path(__file__).resolve().parents[2] / "fixtures" / "media" / "testsrc-320x240-25fps-4s.h264"
FRAMES = h264.access_units(CLIP.read_bytes())  # 100 frames, 25 fps


@dataclass
class Behaviour:
    answer: bool = True  # False: 100 Trying and then nothing (INVITE timeout / CANCEL paths)
    send_media: bool = True  # False: 200 OK but no RTP (no-media path)
    ssrc: str | None = "padded"  # "padded": the offer's y= with its leading digit zeroed; None: echo; else: this
    loops: int | None = None  # clip repetitions; None: until BYE
    media_status: bool = False  # after the clip: MediaStatus 121 (download / playback end)
    bye_after: float | None = None  # the device ends the session itself after N seconds of streaming


@dataclass
class Call:
    invite: bytes
    fields: dict[str, str]
    offer: str
    via_addr: tuple[str, int]
    to_tag: str = field(default_factory=lambda: secrets.token_hex(4))
    streaming: asyncio.Task[None] | None = None
    server_sock: socket.socket | None = None  # tcp-active on the platform: our listening media socket
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    packets: int = 0


def _sdp_value(sdp: str, key: str) -> str | None:
    m = re.search(rf"^{key}=(.*)$", sdp, re.M)
    return m.group(1).strip() if m else None


class MediaDevice(RawDevice):
    """One camera that is its own channel (an IPC): channel ID = device ID."""

    def __init__(self, device_id: str, password: str, server: tuple[str, int]) -> None:
        super().__init__(device_id, password, server)
        self.behaviour = Behaviour()
        self.invites: list[bytes] = []
        self.infos: list[bytes] = []
        self.byes: list[bytes] = []
        self.cancels = 0
        self.calls: dict[str, Call] = {}

    @classmethod
    async def start(cls, device_id: str, password: str, server: tuple[str, int]) -> MediaDevice:  # type: ignore[override]
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_datagram_endpoint(
            lambda: cls(device_id, password, server), local_addr=("127.0.0.1", 0)
        )
        return proto

    # ------------------------------------------------------------------ SIP
    def _reply(self, fields: dict[str, str], status: str, addr: tuple[str, int], tag: str | None = None,
               extra: str = "", body: bytes = b"") -> None:
        to = fields["to"] if tag is None or "tag=" in fields["to"] else f"{fields['to']};tag={tag}"
        head = (f"SIP/2.0 {status}\r\nVia: {fields['via']}\r\nFrom: {fields['from']}\r\nTo: {to}\r\n"
                f"Call-ID: {fields['call-id']}\r\nCSeq: {fields['cseq']}\r\n{extra}"
                f"Content-Length: {len(body)}\r\n\r\n")
        assert self.transport is not None
        self.transport.sendto(head.encode() + body, addr)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.startswith(b"SIP/2.0 "):
            self._responses.put_nowait(data)
            return
        method = data.split(b" ", 1)[0].decode()
        _, fields, body = _headers(data)
        call = self.calls.get(fields.get("call-id", ""))
        if method == "INVITE":
            if call is not None:  # a retransmission
                return
            self.invites.append(data)
            call = self.calls[fields["call-id"]] = Call(data, fields, body.decode(), addr)
            self._reply(fields, "100 Trying", addr)
            if self.behaviour.answer:
                self._answer(call, addr)
        elif method == "ACK":
            if call is not None and call.streaming is None and self.behaviour.send_media:
                call.streaming = asyncio.get_running_loop().create_task(self._stream(call))
        elif method == "BYE":
            self.byes.append(data)
            self._reply(fields, "200 OK", addr)
            if call is not None:
                self._end(call)
        elif method == "CANCEL":
            self.cancels += 1
            self._reply(fields, "200 OK", addr, tag=call.to_tag if call else "c")
            if call is not None:
                inv = call.fields
                self._reply({**inv}, "487 Request Terminated", call.via_addr, tag=call.to_tag)
                self._end(call)
        elif method == "INFO":
            self.infos.append(body)
            rtsp_cseq = re.search(rb"CSeq:\s*(\d+)", body)
            answer = b"RTSP/1.0 200 OK\r\nCSeq: " + (rtsp_cseq.group(1) if rtsp_cseq else b"0") + b"\r\n\r\n"
            self._reply(fields, "200 OK", addr, extra="Content-Type: Application/MANSRTSP\r\n", body=answer)
        else:
            self.requests.put_nowait(data)
            self._reply(fields, "200 OK", addr, tag="raw1")

    def _answer(self, call: Call, addr: tuple[str, int]) -> None:
        offer = call.offer
        y = _sdp_value(offer, "y") or "0000000000"
        behaviour = self.behaviour
        ssrc = y if behaviour.ssrc is None else ("0" + y[1:] if behaviour.ssrc == "padded" else behaviour.ssrc)
        m = _sdp_value(offer, "m") or ""
        tcp = "TCP" in m
        setup_line = re.search(r"^a=setup:(\w+)", offer, re.M)
        setup = setup_line.group(1) if setup_line else ""
        port = 15060
        if tcp and setup == "active":  # the platform connects to us: listen first
            port = self._listen(call)
        lines = ["v=0", f"o={self.device_id} 0 0 IN IP4 127.0.0.1", f"s={_sdp_value(offer, 's')}",
                 "c=IN IP4 127.0.0.1", f"t={_sdp_value(offer, 't')}",
                 f"m=video {port} {'TCP/RTP/AVP' if tcp else 'RTP/AVP'} 96", "a=sendonly", "a=rtpmap:96 PS/90000"]
        if tcp:
            lines += [f"a=setup:{'passive' if setup == 'active' else 'active'}", "a=connection:new"]
        else:
            lines += ["a=setup:active"]  # Hikvision puts it on UDP too
        lines += ["a=filesize:0", f"y={ssrc}", "f="]
        body = ("\r\n".join(lines) + "\r\n").encode()
        host, sport = self.local
        self._reply(call.fields, "200 OK", addr, tag=call.to_tag,
                    extra=f"Contact: <sip:{self.device_id}@{host}:{sport}>\r\nContent-Type: application/sdp\r\n",
                    body=body)

    def _listen(self, call: Call) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        sock.setblocking(False)
        call.server_sock = sock
        return sock.getsockname()[1]

    def _end(self, call: Call) -> None:
        call.ended.set()
        if call.streaming is not None:
            call.streaming.cancel()
        if call.server_sock is not None:
            call.server_sock.close()

    # ------------------------------------------------------------------ media
    async def _stream(self, call: Call) -> None:
        offer = call.offer
        c = _sdp_value(offer, "c") or "IN IP4 127.0.0.1"
        host = c.split()[-1]
        m = (_sdp_value(offer, "m") or "").split()
        port = int(m[1])
        y = _sdp_value(offer, "y") or "0"
        ssrc = int(y if self.behaviour.ssrc is None else ("0" + y[1:] if self.behaviour.ssrc == "padded"
                                                          else self.behaviour.ssrc))
        loop = asyncio.get_running_loop()
        writer: asyncio.StreamWriter | None = None
        udp: socket.socket | None = None
        try:
            if "TCP" in m[2]:
                sock = call.server_sock
                if sock is not None:  # tcp-active on the platform: it connects to us
                    conn, _ = await asyncio.wait_for(loop.sock_accept(sock), 20)
                    _, writer = await asyncio.open_connection(sock=conn)
                else:  # tcp-passive: we connect to the platform's port
                    _, writer = await asyncio.open_connection(host, port)
            else:
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                udp.setblocking(False)
            mux, pk = ps.PsMuxer("h264"), RtpPacketizer(ssrc, first_sequence=secrets.randbelow(65536))
            start = loop.time()
            i = 0
            bye_at = start + self.behaviour.bye_after if self.behaviour.bye_after else None
            loops = self.behaviour.loops
            for _rep in range(loops if loops is not None else 10_000):
                for au in FRAMES:
                    pts = 90000 + 3600 * i
                    for packet in pk.packetize(mux.mux_video(au.data, pts, au.keyframe), pts):
                        call.packets += 1
                        if writer is not None:
                            writer.write(rtp.frame(packet))
                        else:
                            assert udp is not None
                            udp.sendto(packet, (host, port))
                    if writer is not None:
                        await writer.drain()
                    i += 1
                    await asyncio.sleep(max(0.0, start + i * 0.04 - loop.time()))
                    if bye_at is not None and loop.time() >= bye_at:
                        self._send_bye(call)
                        return
            if self.behaviour.media_status:
                await self._media_status(call)
        except asyncio.CancelledError:
            pass
        finally:
            if writer is not None:
                writer.close()
            if udp is not None:
                udp.close()

    def _send_bye(self, call: Call) -> None:
        f = call.fields
        host, port = self.local
        self._cseq += 1
        req = (f"BYE sip:{SERVER_ID}@{self.server[0]}:{self.server[1]} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {host}:{port};rport;branch=z9hG4bK{secrets.token_hex(6)}\r\n"
               f"From: {f['to']};tag={call.to_tag}\r\nTo: {f['from']}\r\nCall-ID: {f['call-id']}\r\n"
               f"CSeq: {self._cseq} BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        self._send(req.encode())
        call.ended.set()

    async def _media_status(self, call: Call) -> None:
        body = (f'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>MediaStatus</CmdType>\r\n'
                f"<SN>{secrets.randbelow(10000)}</SN>\r\n<DeviceID>{self.device_id}</DeviceID>\r\n"
                f"<NotifyType>121</NotifyType>\r\n</Notify>\r\n").encode()
        with contextlib.suppress(TimeoutError):
            await self.message(body)


__all__ = ["DOMAIN", "MediaDevice"]
