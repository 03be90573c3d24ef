"""The simulated device's side of voice broadcast and of App. K stream replacement.

``Heard`` is its loudspeaker: it parses the platform's broadcast RTP and decodes it (PCMA with the G.711 decoder;
PS by walking the pack down to its audio PES), so a test can check that the device heard about as many seconds as
the file had, with the SSRC it asked for in its ``y=``. ``replaced`` is the 2022 App. K rule as a device applies it:
a new live INVITE whose Subject sender and receiver identities match an earlier one's (gb28181.invite.replaces)
replaces that send instead of counting against the channel's stream limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gb28181.invite import parse_subject, replaces
from gb28181.media import g711, ps, rtp

DialogId = tuple[str, str, str]


@dataclass
class Heard:
    packets: int = 0
    samples: int = 0  # 8 kHz A-law samples decoded
    peak: int = 0  # largest absolute sample value heard
    bad: int = 0  # datagrams that were not RTP, or PS without audio
    ssrcs: set[int] = field(default_factory=set)

    def hear(self, data: bytes) -> int:
        """One datagram; returns the samples it carried."""
        try:
            packet = rtp.parse(data)
        except rtp.RtpError:
            self.bad += 1
            return 0
        payload = bytes(packet.payload)
        if packet.payload_type != 8:  # PS (96): the audio PES payloads of the pack
            report = ps.walk(payload, collect=True)
            payload = b"".join(bytes(f.data) for f in report.es if f.stream_id == ps.AUDIO_ID)
            if not payload:
                self.bad += 1
                return 0
        self.packets += 1
        self.ssrcs.add(packet.ssrc)
        pcm = g711.alaw_decode(payload)
        self.samples += len(pcm)
        if pcm:
            self.peak = max(self.peak, max(pcm), -min(pcm))
        return len(pcm)


@dataclass(frozen=True)
class Send:
    """What App. K compares of a stream the device sends: its INVITE's Subject, channel and stream number."""

    subject: str
    channel_id: str
    stream_number: int
    live: bool


def replaced(sends: dict[DialogId, Send], new: Send) -> list[DialogId]:
    """The earlier live sends of the same channel and stream number that the new INVITE replaces (App. K)."""
    if not new.live:
        return []
    subject = parse_subject(new.subject)
    return [d for d, s in sends.items() if s.live and s.channel_id == new.channel_id
            and s.stream_number == new.stream_number and replaces(parse_subject(s.subject), subject)]  # fmt: skip
