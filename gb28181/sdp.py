"""GB/T 28181 SDP: offers for Play / Playback / Download, tolerant parsing of answers, SSRC allocation.

Sans-IO. RFC 4566 line grammar with the GB/T 28181 profile (2016/2022 App. G; spec digest §10): ``u=`` names the
recording for history streams, ``t=`` carries Unix seconds, ``y=`` the 10-digit SSRC, ``f=`` the media parameters,
``a=downloadspeed`` / ``a=filesize`` for downloads. TCP media is ``TCP/RTP/AVP`` with RFC 4145 ``a=setup`` and
``a=connection`` (RFC 4571 framing on the wire).

Parsing is tolerant of what devices really answer (fixtures/sdp/): LF or CRLF lines, a zero-padded or different
``y=``, ``t=`` shifted by the device's time zone, ``a=setup`` on a UDP line, ``s=`` naming the product, masked or
missing fields. Only a body with no usable ``m=`` line is an error (``SdpError``): there is nothing to receive.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

# Session names (2016/2022 §9.2.3 f, §9.8, §9.9).
PLAY, PLAYBACK, DOWNLOAD = "Play", "Playback", "Download"

# Media transports, named from the platform's side (DECISIONS.md: TCP active / passive).
UDP, TCP_PASSIVE, TCP_ACTIVE = "udp", "tcp-passive", "tcp-active"
TRANSPORTS = (UDP, TCP_PASSIVE, TCP_ACTIVE)

# Payload types (DECISIONS.md, 2022 App. C): the encoding names are what a receiver trusts, not the numbers.
RTPMAP_DEFAULTS = {96: "PS/90000", 97: "MPEG4/90000", 98: "H264/90000", 99: "SVAC/90000", 100: "H265/90000"}


class SdpError(ValueError):
    """The body is not an SDP we can use (the INVITE layer answers 488 / ends the session with this reason)."""


@dataclass(frozen=True)
class Media:
    """One ``m=`` section: kind, port, protocol, formats and its ``a=`` lines (name, value or None), in order."""

    kind: str  # "video" | "audio" | ...
    port: int
    proto: str  # "RTP/AVP" | "TCP/RTP/AVP" | anything the peer wrote
    formats: tuple[str, ...]
    attributes: tuple[tuple[str, str | None], ...] = ()
    connection: str | None = None  # media-level c= address, if any

    def attr(self, name: str) -> str | None:
        for key, value in self.attributes:
            if key.lower() == name:
                return value if value is not None else ""
        return None

    @property
    def rtpmap(self) -> dict[int, str]:
        """Payload type -> ``ENCODING/clock[/channels]`` from ``a=rtpmap`` (RFC 4566 §6)."""
        found: dict[int, str] = {}
        for key, value in self.attributes:
            if key.lower() == "rtpmap" and value:
                pt, _, enc = value.strip().partition(" ")
                if pt.isdigit() and enc.strip():
                    found[int(pt)] = enc.strip()
        return found

    @property
    def payload_types(self) -> tuple[int, ...]:
        return tuple(int(f) for f in self.formats if f.isdigit())

    @property
    def is_tcp(self) -> bool:
        return self.proto.upper().startswith("TCP")

    @property
    def direction(self) -> str | None:
        for key, _ in self.attributes:
            if key.lower() in ("sendonly", "recvonly", "sendrecv", "inactive"):
                return key.lower()
        return None

    @property
    def setup(self) -> str | None:
        value = self.attr("setup")
        return value.strip().lower() if value else None


@dataclass(frozen=True)
class SessionDescription:
    """A GB SDP body. Unknown lines are kept (``other``) so that parse -> serialise -> parse is equal."""

    origin_user: str = "-"
    origin_session: str = "0"
    origin_version: str = "0"
    origin_address: str = "0.0.0.0"
    session_name: str = PLAY
    info: str | None = None  # i=
    uri: str | None = None  # u= : "channel:type" or a recording URL (history streams)
    connection: str | None = None  # session-level c= address
    start: int = 0  # t= first field, Unix seconds for GB (0 = live)
    stop: int = 0
    media: tuple[Media, ...] = ()
    ssrc: str | None = None  # y= exactly as written
    format_line: str | None = None  # f= exactly as written ("" when the line is present but empty)
    attributes: tuple[tuple[str, str | None], ...] = ()  # session-level a= lines
    other: tuple[tuple[str, str], ...] = ()  # b=, k=, z=, ... lines we do not interpret

    # -------------------------------------------------------------- derived views used by the INVITE layer

    @property
    def video(self) -> Media | None:
        """The first usable media section (video preferred; a talk session offers only audio)."""
        for m in self.media:
            if m.kind == "video" and m.port > 0:
                return m
        for m in self.media:
            if m.port > 0:
                return m
        return self.media[0] if self.media else None

    @property
    def ssrc_value(self) -> int | None:
        """The RTP SSRC the ``y=`` line stands for (``int(y)``, spec digest §10.1), or None if absent/garbled."""
        y = (self.ssrc or "").strip()
        if not y.isascii() or not y.isdigit() or int(y) > 0xFFFFFFFF:
            return None
        return int(y)

    def attr(self, name: str) -> str | None:
        """An attribute from the session level, else from the main media section."""
        for key, value in self.attributes:
            if key.lower() == name:
                return value if value is not None else ""
        m = self.video
        return m.attr(name) if m else None

    @property
    def media_address(self) -> str | None:
        """The IP the media goes to/comes from (media c= before session c=), None when it is not an IP (masked)."""
        m = self.video
        address = (m.connection if m and m.connection else self.connection) or ""
        try:
            ipaddress.ip_address(address)
        except ValueError:
            return None
        return address

    @property
    def transport(self) -> str:
        """The media transport named from the side that *sent* this SDP: UDP unless the line is TCP/RTP/AVP;
        on TCP ``a=setup:passive`` means that side listens. ``a=setup`` on a UDP line is ignored (Hikvision)."""
        m = self.video
        if m is None or not m.is_tcp:
            return UDP
        return TCP_ACTIVE if m.setup == "active" else TCP_PASSIVE

    @property
    def filesize(self) -> int | None:
        """``a=filesize`` in bytes; ≤ 0 means unknown (quirk 32: ``-1`` on live streams)."""
        value = self.attr("filesize")
        try:
            size = int(value) if value is not None else 0
        except ValueError:
            return None
        return size if size > 0 else None

    @property
    def download_speed(self) -> int | None:
        value = self.attr("downloadspeed")
        return int(value) if value is not None and value.strip().isdigit() else None

    @property
    def stream_number(self) -> int | None:
        value = self.attr("streamnumber")
        return int(value) if value is not None and value.strip().isdigit() else None

    def to_bytes(self) -> bytes:
        return serialize(self)


# ------------------------------------------------------------------------------------------------ parse


def _field(line: str) -> tuple[str, str] | None:
    if len(line) < 2 or line[1] != "=":
        return None
    return line[0], line[2:]


def _attribute(value: str) -> tuple[str, str | None]:
    name, sep, rest = value.partition(":")
    return name.strip(), (rest if sep else None)


def parse(body: bytes | str) -> SessionDescription:
    """Parse an SDP body tolerantly. Raises SdpError only when no ``m=`` line with a port can be read."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    if len(text) > 64 * 1024:
        raise SdpError("SDP body larger than 64 KiB")
    values: dict[str, str] = {}
    session_attrs: list[tuple[str, str | None]] = []
    other: list[tuple[str, str]] = []
    media: list[dict] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        parsed = _field(raw.strip())
        if parsed is None:
            continue  # blank or garbage line: RFC 4566 §5 says parse what you can
        key, value = parsed
        if key == "m":
            parts = value.split()
            if len(parts) < 3:
                raise SdpError(f"m= line {raw.strip()!r} needs media, port and protocol")
            port_text = parts[1].split("/")[0]
            if not port_text.isdigit() or int(port_text) > 65535:
                raise SdpError(f"m= line {raw.strip()!r}: bad port")
            media.append({"kind": parts[0], "port": int(port_text), "proto": parts[2],
                          "formats": tuple(parts[3:]), "attributes": [], "connection": None})
        elif key == "a":
            (media[-1]["attributes"] if media else session_attrs).append(_attribute(value))
        elif key == "c" and media:
            media[-1]["connection"] = _address(value)
        elif key in "vosiucty f" and key not in values:
            values[key] = value
        elif key not in "vosiucty f":
            other.append((key, value))
    if not media:
        raise SdpError("SDP has no m= line")
    origin = values.get("o", "").split()
    origin += ["-", "0", "0", "IN", "IP4", "0.0.0.0"][len(origin):]
    start, stop = _times(values.get("t", ""))
    return SessionDescription(
        origin_user=origin[0],
        origin_session=origin[1],
        origin_version=origin[2],
        origin_address=origin[5],
        session_name=values.get("s", "").strip(),
        info=values.get("i"),
        uri=values["u"].strip() if "u" in values else None,
        connection=_address(values["c"]) if "c" in values else None,
        start=start,
        stop=stop,
        media=tuple(
            Media(m["kind"], m["port"], m["proto"], m["formats"], tuple(m["attributes"]), m["connection"])
            for m in media
        ),
        ssrc=values["y"].strip() if "y" in values else None,
        format_line=values["f"].strip() if "f" in values else None,
        attributes=tuple(session_attrs),
        other=tuple(other),
    )


def _address(value: str) -> str:
    parts = value.split()
    return parts[2].split("/")[0] if len(parts) >= 3 else value.strip()


def _times(value: str) -> tuple[int, int]:
    parts = value.split()
    nums = [int(p) if p.isdigit() else 0 for p in parts[:2]]
    nums += [0, 0][len(nums):]
    return nums[0], nums[1]


# -------------------------------------------------------------------------------------------- serialise


def serialize(sd: SessionDescription) -> bytes:
    """CRLF lines in the order of RFC 4566 §5 with GB's ``y=`` and ``f=`` last (App. G; quirk 33: keep it)."""
    lines = ["v=0", f"o={sd.origin_user} {sd.origin_session} {sd.origin_version} IN IP4 {sd.origin_address}",
             f"s={sd.session_name}"]
    if sd.info is not None:
        lines.append(f"i={sd.info}")
    if sd.uri is not None:
        lines.append(f"u={sd.uri}")
    if sd.connection is not None:
        lines.append(f"c=IN IP4 {sd.connection}")
    lines.extend(f"{k}={v}" for k, v in sd.other)
    lines.append(f"t={sd.start} {sd.stop}")
    lines.extend(_attr_line(a) for a in sd.attributes)
    for m in sd.media:
        lines.append(" ".join([f"m={m.kind}", str(m.port), m.proto, *m.formats]))
        if m.connection is not None:
            lines.append(f"c=IN IP4 {m.connection}")
        lines.extend(_attr_line(a) for a in m.attributes)
    if sd.ssrc is not None:
        lines.append(f"y={sd.ssrc}")
    if sd.format_line is not None:
        lines.append(f"f={sd.format_line}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _attr_line(attr: tuple[str, str | None]) -> str:
    name, value = attr
    return f"a={name}" if value is None else f"a={name}:{value}"


# ---------------------------------------------------------------------------------------------- offers


@dataclass(frozen=True)
class Offer:
    """What the platform asks a device for (spec digest §10.1, §10.3, §10.4)."""

    own_id: str  # o= user: the SDP sender's 20-digit ID (App. G)
    address: str  # c= : where we receive (DECISIONS.md: [media] advertise, never 0.0.0.0)
    port: int  # our receive port (tcp-active: the local port we connect from)
    ssrc: str  # y= , 10 digits (SsrcAllocator)
    kind: str = PLAY  # PLAY | PLAYBACK | DOWNLOAD
    transport: str = UDP  # UDP | TCP_PASSIVE | TCP_ACTIVE, from the platform's side
    channel_id: str = ""  # u= for history streams: "<channel>:0"
    start: int = 0  # t= Unix seconds for PLAYBACK / DOWNLOAD
    stop: int = 0
    download_speed: int = 1  # a=downloadspeed (DOWNLOAD only)
    payloads: tuple[int, ...] = (96, 97, 98)  # each with its rtpmap from RTPMAP_DEFAULTS
    stream_number: int | None = None  # 2022 a=streamnumber (0 main, 1 sub ...)
    format_line: str = "v/////a///"  # f= with the full structure and empty fields (App. G)


def build_offer(offer: Offer) -> SessionDescription:
    """The INVITE body for a Play / Playback / Download request, receive-only. Raises ValueError on a bad offer."""
    if offer.kind not in (PLAY, PLAYBACK, DOWNLOAD):
        raise ValueError(f"session kind must be Play, Playback or Download, not {offer.kind!r}")
    if offer.transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {offer.transport!r}")
    if len(offer.ssrc) != 10 or not offer.ssrc.isdigit():
        raise ValueError(f"y= must be 10 digits (Hikvision drops the INVITE otherwise), got {offer.ssrc!r}")
    if not 0 < offer.port <= 65535:
        raise ValueError(f"media port {offer.port} out of range")
    history = offer.kind != PLAY
    if history and not (offer.channel_id and 0 < offer.start < offer.stop):
        raise ValueError("Playback/Download need channel_id and 0 < start < stop")
    unknown = [pt for pt in offer.payloads if pt not in RTPMAP_DEFAULTS]
    if not offer.payloads or unknown:
        raise ValueError(f"payload types must come from {sorted(RTPMAP_DEFAULTS)}, got {offer.payloads}")
    attrs: list[tuple[str, str | None]] = [("recvonly", None)]
    attrs += [("rtpmap", f"{pt} {RTPMAP_DEFAULTS[pt]}") for pt in offer.payloads]
    if offer.kind == DOWNLOAD:
        attrs.append(("downloadspeed", str(offer.download_speed)))
    if offer.transport != UDP:
        attrs.append(("setup", "passive" if offer.transport == TCP_PASSIVE else "active"))
        attrs.append(("connection", "new"))
    if offer.stream_number is not None:
        attrs.append(("streamnumber", str(offer.stream_number)))
    proto = "RTP/AVP" if offer.transport == UDP else "TCP/RTP/AVP"
    return SessionDescription(
        origin_user=offer.own_id,
        origin_address=offer.address,
        session_name=offer.kind,
        uri=f"{offer.channel_id}:0" if history and ":" not in offer.channel_id else (offer.channel_id or None),
        connection=offer.address,
        start=offer.start if history else 0,
        stop=offer.stop if history else 0,
        media=(Media("video", offer.port, proto, tuple(str(pt) for pt in offer.payloads), tuple(attrs)),),
        ssrc=offer.ssrc,
        format_line=offer.format_line,
    )


def build_answer(offer: SessionDescription, own_id: str, address: str, port: int, ssrc: str | None = None,
                 payload: int = 96) -> SessionDescription:
    """A sender's 200 OK body to ``offer`` (device simulator, cascade): sendonly, one payload type, the offer's
    ``y=`` unless ``ssrc`` is given, the complementary ``a=setup`` on TCP (RFC 4145)."""
    m = offer.video
    if m is None:
        raise SdpError("offer has no media section")
    encoding = m.rtpmap.get(payload, RTPMAP_DEFAULTS.get(payload, "PS/90000"))
    attrs: list[tuple[str, str | None]] = [("sendonly", None), ("rtpmap", f"{payload} {encoding}")]
    if m.is_tcp:
        attrs.append(("setup", "active" if m.setup != "active" else "passive"))
        attrs.append(("connection", "new"))
    return SessionDescription(
        origin_user=own_id,
        origin_address=address,
        session_name=offer.session_name,
        uri=offer.uri,
        connection=address,
        start=offer.start,
        stop=offer.stop,
        media=(Media(m.kind, port, m.proto, (str(payload),), tuple(attrs)),),
        ssrc=ssrc if ssrc is not None else offer.ssrc,
        format_line=offer.format_line,
    )


# ---------------------------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class AnswerView:
    """What the platform takes from a device's 200 OK, given its own offer."""

    ssrc: int  # RTP SSRC to expect: the answer's y= wins (DECISIONS.md), else ours (quirk 16)
    ssrc_text: str  # 10-digit form of it
    ssrc_changed: bool  # the device chose another SSRC than offered (zero-padding is not a change)
    address: str | None  # device media IP (None: masked or missing; then the signalling peer's IP is used)
    port: int
    transport: str  # ours, from the offer; the answer's proto/setup are advisory (wild devices get them wrong)
    connect_to: tuple[str, int] | None  # tcp-active: where we connect
    payload: int | None  # the PT the device says it sends (first in the m= line)
    encoding: str | None  # its rtpmap, e.g. "PS/90000"; "HIKVISION/90000" means vendor PS (App. G)
    time_shift: int  # answer t= start minus offer t= start for history streams (28800: device in UTC+8 twice)
    filesize: int | None


def read_answer(offer: SessionDescription, answer: SessionDescription, transport: str,
                fallback_address: str | None = None) -> AnswerView:
    """Combine our offer with a device's answer, tolerating the wild ones (fixtures/sdp/EXPECTED.toml)."""
    m = answer.video
    if m is None or m.port == 0:
        raise SdpError("answer has no media port")
    ours = offer.ssrc_value or 0
    theirs = answer.ssrc_value
    ssrc = theirs if theirs is not None else ours
    address = answer.media_address or fallback_address
    connect_to = (address, m.port) if transport == TCP_ACTIVE and address else None
    payload = m.payload_types[0] if m.payload_types else None
    encoding = m.rtpmap.get(payload) if payload is not None else None
    if encoding is None and payload is not None:
        encoding = RTPMAP_DEFAULTS.get(payload)
    shift = answer.start - offer.start if offer.start and answer.start else 0
    return AnswerView(ssrc=ssrc, ssrc_text=f"{ssrc:010d}", ssrc_changed=theirs is not None and theirs != ours,
                      address=address, port=m.port, transport=transport, connect_to=connect_to,
                      payload=payload, encoding=encoding, time_shift=shift, filesize=answer.filesize)


# ------------------------------------------------------------------------------------------------ SSRC


def ssrc_prefix(domain: str) -> str:
    """Digits 2-6 of an SSRC: digits 4-8 of the SIP domain ID (App. G; ``3402000000`` -> ``20000``)."""
    if len(domain) < 8 or not domain[:8].isdigit():
        raise ValueError(f"SIP domain {domain!r} must start with 8 digits")
    return domain[3:8]


@dataclass
class SsrcAllocator:
    """Hands out ``d1 + domain[3:8] + nnnn`` SSRCs (d1: 0 live, 1 history), never one still in use (DECISIONS.md).

    Sans-IO and clock-free: a rotating counter per kind, so a just-freed SSRC is not handed out again at once.
    """

    domain: str
    _in_use: set[str] = field(default_factory=set)
    _next: dict[str, int] = field(default_factory=lambda: {"0": 1, "1": 1})

    def __post_init__(self) -> None:
        self._prefix = ssrc_prefix(self.domain)

    def allocate(self, history: bool = False) -> str:
        kind = "1" if history else "0"
        for _ in range(10000):
            n = self._next[kind]
            self._next[kind] = n % 9999 + 1
            candidate = f"{kind}{self._prefix}{n:04d}"
            if candidate not in self._in_use:
                self._in_use.add(candidate)
                return candidate
        raise RuntimeError(f"all 9999 {'history' if history else 'live'} SSRCs of domain {self.domain} are in use")

    def reserve(self, ssrc: str) -> bool:
        """Take a peer's SSRC (a superior's ``y=``, DECISIONS.md) if it is a free 10-digit one."""
        if len(ssrc) != 10 or not ssrc.isdigit() or ssrc in self._in_use:
            return False
        self._in_use.add(ssrc)
        return True

    def release(self, ssrc: str) -> None:
        self._in_use.discard(ssrc)

    def in_use(self) -> frozenset[str]:
        return frozenset(self._in_use)


def with_ssrc(sd: SessionDescription, ssrc: str) -> SessionDescription:
    return replace(sd, ssrc=ssrc)


def payload_encodings(sd: SessionDescription) -> Iterable[tuple[int, str]]:
    """(payload type, encoding) of the main media section, rtpmap first, then the defaults for bare numbers."""
    m = sd.video
    if m is None:
        return []
    rtpmap = m.rtpmap
    return [(pt, rtpmap.get(pt) or RTPMAP_DEFAULTS.get(pt, "")) for pt in m.payload_types]
