"""Domain records of the registry. Times are wall-clock seconds since the epoch (DECISIONS.md: Time)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

ONLINE = "online"
OFFLINE = "offline"

# Status event vocabulary (DECISIONS.md: Status events). Stored as small integers to keep rows compact;
# never renumber, only append.
EVENT_CODES: dict[str, int] = {
    # device transitions
    "registered": 1,
    "unregistered": 2,
    "expired": 3,
    "keepalive-timeout": 4,
    "tcp-closed": 5,
    "online": 6,  # back online by a keepalive or re-registration without a new registration record
    "offline": 7,  # other reasons (disabled, removed)
    "address-changed": 8,
    # channel transitions (catalog issue)
    "channel-on": 20,
    "channel-off": 21,
    "channel-vlost": 22,
    "channel-defect": 23,
    "channel-device-offline": 24,
    # channel set changes (catalog sync and NOTIFY ADD/DEL/UPDATE)
    "channel-added": 25,
    "channel-removed": 26,
    "channel-updated": 27,
    # platform
    "platform-start": 40,
    "platform-stop": 41,
    # superior platforms we register to (cascade; subject = the superior's ID, kind "platform")
    "upstream-online": 50,
    "upstream-offline": 51,
}
EVENT_NAMES: dict[int, str] = {v: k for k, v in EVENT_CODES.items()}
SUBJECT_KINDS = ("device", "channel", "platform")


@dataclass
class Device:
    id: str
    name: str = ""
    manufacturer: str = ""
    model: str = ""
    firmware: str = ""
    transport: str = ""  # "UDP" | "TCP" once it has registered
    address: str = ""  # "ip:port" the device's packets come from
    local_address: str = ""  # "ip:port" of ours it reached
    contact: str = ""
    user_agent: str = ""
    gb_version: str = ""
    charset: str = "GB2312"
    stream_mode: str = "udp"  # "udp" | "tcp-passive" | "tcp-active" (named from the platform's side)
    keepalive_interval: int | None = None  # the device's own HeartBeatInterval, when known
    keepalive_count: int | None = None  # the device's own HeartBeatCount, when known
    enabled: bool = True
    password: str | None = None  # per-device password; None = the global one
    provisioned: bool = False  # added by an operator (allow_unknown = false admits only these)
    registered_at: float | None = None
    expires: int = 0  # seconds granted by the last registration
    expires_at: float | None = None  # None = not registered
    last_keepalive: float | None = None
    status: str = OFFLINE
    created_at: float = 0.0

    def registered(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at > now


@dataclass(frozen=True)
class Registration:
    """A successful REGISTER (expires > 0) or unregistration (expires == 0), written durably as one row."""

    device_id: str
    at: float
    expires: int
    transport: str = ""
    address: str = ""
    local_address: str = ""
    contact: str = ""
    user_agent: str = ""
    gb_version: str = ""


@dataclass(frozen=True)
class Keepalive:
    """A keepalive (or any request proving liveness): batched, a crash may lose the last batch."""

    device_id: str
    at: float
    transport: str = ""
    address: str = ""


@dataclass(frozen=True)
class StatusEvent:
    at: float
    subject: str  # device, channel or platform ID
    event: str  # a key of EVENT_CODES
    kind: str = "device"  # one of SUBJECT_KINDS
    reason: str = ""
    id: int | None = field(default=None, compare=False)


def event_code(event: str) -> int:
    """The stored code of an event name; ValueError for a name outside EVENT_CODES (a caller's bug)."""
    try:
        return EVENT_CODES[event]
    except KeyError:
        raise ValueError(f"unknown status event {event!r}") from None


def kind_code(kind: str) -> int:
    """The stored code of a subject kind (its index in SUBJECT_KINDS); ValueError for an unknown kind."""
    try:
        return SUBJECT_KINDS.index(kind)
    except ValueError:
        raise ValueError(f"unknown subject kind {kind!r}") from None


def to_millis(at: float) -> int:
    """Event times are kept to the millisecond (compact integer rows); every store rounds the same way."""
    return round(at * 1000)


# Channels (DECISIONS.md: What a channel is, Overrides, Point class)
CHANNEL_KINDS = (
    "video",  # 131/132, or a camera whose single catalog item is its own ID: what channel_count counts
    "alarm-in",
    "alarm-out",
    "audio-in",
    "audio-out",
    "region",  # civil-code node (2/4/6/8 digits)
    "system",  # 200
    "group",  # business group, 215
    "virtual-org",  # virtual organisation, 216
    "device",  # a device listed in a lower platform's catalog
    "other",
)
VIDEO = "video"
POINT_CLASSES = (1, 2, 3, 9)  # 2022 Info/PointType; 9 = other
OVERRIDE_FIELDS = (
    "override_name",
    "override_longitude",
    "override_latitude",
    "override_civil_code",
    "override_point_class",
)


@dataclass
class Channel:
    """One catalog item as a device reported it, plus local overrides. The key is (device_id, id): the same
    channel ID can reach us through two devices (a camera and the NVR recording it). ``None`` in an int/float
    field means the device did not send it (0 and 0.0 are values). ``first_seen``/``updated_at`` are the wall
    times the catalog first and last reported it; the ``override_*`` fields are set only by an operator
    (``RegistryStore.set_channel_overrides``), never by a catalog, and ``None`` means no override."""

    device_id: str
    id: str
    name: str = ""
    manufacturer: str = ""
    model: str = ""
    owner: str = ""
    civil_code: str = ""
    block: str = ""
    address: str = ""
    parental: int | None = None  # as sent: Hikvision sends 65535
    parent_ids: tuple[str, ...] = ()  # ParentID, "/"-separated and multi-valued in 2022
    business_group_id: str = ""
    safety_way: int | None = None
    register_way: int | None = None
    cert_num: str = ""
    certifiable: int | None = None
    err_code: int | None = None
    end_time: str = ""
    secrecy: int | None = None
    ip_address: str = ""  # a string: Dahua NVRs put an RTSP URL here
    port: int | None = None
    status: str = OFFLINE
    longitude: float | None = None
    latitude: float | None = None
    ptz_type: int | None = None
    point_class: int | None = None  # one of POINT_CLASSES
    kind: str = "other"  # one of CHANNEL_KINDS
    info: dict[str, str] = field(default_factory=dict)  # further catalog fields, by their XML name
    first_seen: float = 0.0
    updated_at: float = 0.0
    override_name: str | None = None
    override_longitude: float | None = None
    override_latitude: float | None = None
    override_civil_code: str | None = None
    override_point_class: int | None = None

    @property
    def parent_id(self) -> str | None:
        """The first parent (the interface contract's ``parent_id``)."""
        return self.parent_ids[0] if self.parent_ids else None

    # what is shown or sent: local override <- reported (per-superior overrides live above the registry)
    @property
    def shown_name(self) -> str:
        return self.name if self.override_name is None else self.override_name

    @property
    def shown_longitude(self) -> float | None:
        return self.longitude if self.override_longitude is None else self.override_longitude

    @property
    def shown_latitude(self) -> float | None:
        return self.latitude if self.override_latitude is None else self.override_latitude

    @property
    def shown_civil_code(self) -> str:
        return self.civil_code if self.override_civil_code is None else self.override_civil_code

    @property
    def shown_point_class(self) -> int | None:
        return self.point_class if self.override_point_class is None else self.override_point_class


def _float(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number or None, not {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, not {value!r}")  # SQLite would store NaN as NULL
    return float(value)


def _point_class(name: str, value: object) -> int | None:
    if value is not None and (isinstance(value, bool) or value not in POINT_CLASSES):
        raise ValueError(f"{name} must be one of {POINT_CLASSES} or None, not {value!r}")
    return value  # type: ignore[return-value]


def checked_channel(channel: Channel) -> Channel:
    """A validated copy of a reported channel, as every store takes it from a catalog (ValueError for a caller's
    bug): status "online"/"offline", kind in CHANNEL_KINDS, point_class in POINT_CLASSES or None, ``info`` a dict
    of strings, ``parent_ids`` strings (made a tuple), coordinates finite numbers (made floats). The ``override_*``
    fields are cleared (a catalog never sets them) and ``first_seen`` defaults to ``updated_at``."""
    parent_ids, info, longitude, latitude, point_class, first_seen = checked_values(channel)
    # A shallow copy by __dict__ + attribute sets: what dataclasses.replace makes, at a third of its cost (a catalog
    # of 50,000 channels passes here once per channel; Channel is a plain dataclass without slots or __post_init__)
    out = Channel.__new__(Channel)
    out.__dict__.update(channel.__dict__)
    out.parent_ids = parent_ids
    out.info = dict(info)
    out.longitude = longitude
    out.latitude = latitude
    out.point_class = point_class
    out.first_seen = first_seen
    for name in OVERRIDE_FIELDS:
        setattr(out, name, None)
    return out


def checked_values(
    channel: Channel,
) -> tuple[tuple[str, ...], dict[str, str], float | None, float | None, int | None, float]:
    """The checks of ``checked_channel`` without the copy: (parent_ids, info, longitude, latitude, point_class,
    first_seen) as the copy would carry them (``info`` is the channel's own dict), for a store that only writes
    them out. The message of a failure names the channel; it is built only then (this runs once per item of a
    50,000-channel catalog)."""
    if not isinstance(channel.id, str) or not channel.id:
        raise ValueError(f"{_where(channel)}: the channel ID must be a non-empty string")
    if channel.status not in (ONLINE, OFFLINE):
        raise ValueError(f"{_where(channel)}: status must be {ONLINE!r} or {OFFLINE!r}, not {channel.status!r}")
    if channel.kind not in CHANNEL_KINDS:
        raise ValueError(f"{_where(channel)}: kind must be one of {CHANNEL_KINDS}, not {channel.kind!r}")
    info = channel.info
    if not isinstance(info, dict) or (
        info and not all(isinstance(k, str) and isinstance(v, str) for k, v in info.items())
    ):
        raise ValueError(f"{_where(channel)}: info must be a dict of strings to strings")
    parent_ids = tuple(channel.parent_ids)
    if parent_ids and not all(isinstance(p, str) for p in parent_ids):
        raise ValueError(f"{_where(channel)}: parent_ids must be strings")
    longitude, latitude, point_class = channel.longitude, channel.latitude, channel.point_class
    if longitude is not None and (type(longitude) is not float or not math.isfinite(longitude)):
        longitude = _float(f"{_where(channel)}: longitude", longitude)
    if latitude is not None and (type(latitude) is not float or not math.isfinite(latitude)):
        latitude = _float(f"{_where(channel)}: latitude", latitude)
    if point_class is not None:
        point_class = _point_class(f"{_where(channel)}: point_class", point_class)
    return parent_ids, info, longitude, latitude, point_class, channel.first_seen or channel.updated_at


def _where(channel: Channel) -> str:
    return f"channel {channel.device_id}/{channel.id}"


def checked_catalog(
    device_id: str, upserts: Iterable[Channel], removes: Sequence[str], make: Callable[[Channel], T] = checked_channel
) -> list[T]:
    """Validated copies of a catalog change (ValueError for a caller's bug): every upsert belongs to
    ``device_id``, and no ID is both upserted and removed. ``make`` turns each channel into what the store keeps
    (by default ``checked_channel``'s copy; the SQLite store makes its row directly, see ``checked_values``)."""
    upserts = list(upserts)  # read twice below: a generator would be used up by the first pass
    checked = []
    for channel in upserts:
        if channel.device_id != device_id:
            raise ValueError(f"channel {channel.id} of device {channel.device_id!r} in a catalog of {device_id!r}")
        checked.append(make(channel))
    if isinstance(removes, str):
        raise ValueError("removes must be a sequence of channel IDs, not one string")
    both = {c.id for c in upserts} & set(removes)
    if both:
        raise ValueError(f"channels both upserted and removed: {sorted(both)}")
    return checked


def checked_overrides(overrides: dict[str, object]) -> dict[str, object]:
    """Validated override values by field name (ValueError for a name outside OVERRIDE_FIELDS or a bad value)."""
    unknown = sorted(set(overrides) - set(OVERRIDE_FIELDS))
    if unknown:
        raise ValueError(f"not channel overrides: {unknown} (overrides are {OVERRIDE_FIELDS})")
    out: dict[str, object] = {}
    for name, value in overrides.items():
        if name in ("override_name", "override_civil_code"):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} must be a string or None, not {value!r}")
            out[name] = value
        elif name == "override_point_class":
            out[name] = _point_class(name, value)
        else:
            out[name] = _float(name, value)
    return out


def check_channel_status(changes: Sequence[tuple[str, str, str]]) -> None:
    for device_id, channel_id, status in changes:
        if status not in (ONLINE, OFFLINE):
            raise ValueError(
                f"status of channel {device_id}/{channel_id} must be {ONLINE!r} or {OFFLINE!r}, not {status!r}"
            )


# Alarms and mobile positions (GB/T 28181-2022 §9.4, A.2.5.3, A.2.5.6)
ALARM_VIA = ("message", "notify")


@dataclass
class Alarm:
    """One alarm a device reported (MESSAGE Notify Alarm, or a NOTIFY of an alarm subscription). The body's
    values are kept as sent (``alarm_time`` is the device's local time text); ``received_at`` is our wall time.
    ``acked_*`` record an operator's acknowledgement, ``reset_*`` the ResetAlarm sent to the device."""

    device_id: str  # the device that sent it (SIP From)
    source_id: str  # the body's DeviceID: the alarming device or channel
    received_at: float
    priority: int | None = None  # 1..4
    method: int | None = None  # 1 phone 2 device 3 SMS 4 GPS 5 video 6 device fault 7 other
    alarm_type: int | None = None
    event_type: int | None = None
    alarm_time: str = ""
    description: str = ""
    longitude: float | None = None
    latitude: float | None = None
    via: str = "message"  # one of ALARM_VIA
    sn: int | None = None
    acked_at: float | None = None
    acked_by: str = ""
    reset_at: float | None = None
    reset_by: str = ""
    id: int | None = field(default=None, compare=False)


@dataclass
class Position:
    """The latest mobile position of a device or channel (``target_id``), as its device reported it."""

    device_id: str
    target_id: str
    received_at: float
    time: str = ""  # the device's Time / CaptureTime text
    longitude: float | None = None
    latitude: float | None = None
    speed: float | None = None  # km/h
    direction: float | None = None  # degrees from north
    altitude: float | None = None  # m
    height: float | None = None  # m (2022)


def checked_alarm(alarm: Alarm) -> Alarm:
    """A validated copy (ValueError for a caller's bug): IDs non-empty, ``via`` known, coordinates finite."""
    if not alarm.device_id or not alarm.source_id:
        raise ValueError("an alarm needs its device and source IDs")
    if alarm.via not in ALARM_VIA:
        raise ValueError(f"alarm via must be one of {ALARM_VIA}, not {alarm.via!r}")
    return dataclasses.replace(
        alarm,
        longitude=_float("alarm longitude", alarm.longitude),
        latitude=_float("alarm latitude", alarm.latitude),
    )


def checked_position(p: Position) -> Position:
    if not p.device_id or not p.target_id:
        raise ValueError("a position needs its device and target IDs")
    values = {name: _float(f"position {name}", getattr(p, name))
              for name in ("longitude", "latitude", "speed", "direction", "altitude", "height")}  # fmt: skip
    return dataclasses.replace(p, **values)  # type: ignore[arg-type]
# Shares: which items a superior platform sees, with per-superior ID and name (DECISIONS.md: Overrides)
SHARE_ALL = "all"


@dataclass(frozen=True)
class Share:
    """One item shared with a superior: ``"all"``, a device, channel, business group / virtual organisation ID or
    a civil code. ``as_id``/``as_name`` are what that superior is told instead of the item's own ID and name
    (None = no per-superior override)."""

    upstream_id: str
    item: str
    as_id: str | None = None
    as_name: str | None = None
    created_at: float = 0.0


def checked_shares(existing: Sequence[Share], new: Sequence[Share]) -> list[Share]:
    """Validated copies of shares to upsert (ValueError for a caller's bug): non-empty IDs of at most 64
    characters, names of at most 200, and no ``as_id`` given to two items of the same superior once ``new`` is
    applied over ``existing``."""
    out: list[Share] = []
    for share in new:
        for name in ("upstream_id", "item"):
            value = getattr(share, name)
            if not isinstance(value, str) or not value or len(value) > 64:
                raise ValueError(f"share {name} must be a non-empty string of at most 64 characters, not {value!r}")
        if share.as_id is not None and (not isinstance(share.as_id, str) or not share.as_id or len(share.as_id) > 64):
            raise ValueError(f"share as_id must be None or a non-empty string (at most 64 characters): {share.as_id!r}")
        if share.as_name is not None and (not isinstance(share.as_name, str) or len(share.as_name) > 200):
            raise ValueError(f"share as_name must be None or a string of at most 200 characters: {share.as_name!r}")
        out.append(dataclasses.replace(share, created_at=float(share.created_at)))
    merged = {(s.upstream_id, s.item): s for s in existing}
    merged.update({(s.upstream_id, s.item): s for s in out})
    seen: dict[tuple[str, str], str] = {}
    for (upstream_id, item), share in merged.items():
        if share.as_id is None:
            continue
        other = seen.setdefault((upstream_id, share.as_id), item)
        if other != item:
            raise ValueError(f"{share.as_id} is already what {upstream_id} sees for {other}; one ID per item")
    return out


@dataclass
class AuditEntry:
    """One operator action through the admin API: who (token name and role, remote address), when (wall time),
    what (method, path, target, a short JSON detail of the request) and how it ended (HTTP status)."""

    at: float
    who: str
    role: str
    action: str  # e.g. "POST /api/channels/{id}/ptz"
    target: str = ""  # the device, channel or alarm acted on
    detail: str = ""  # the request body or query, truncated
    status: int = 0
    remote: str = ""
    id: int | None = None


AUDIT_DETAIL_MAX = 2000  # characters of request detail kept per entry


def checked_audit(entry: AuditEntry) -> AuditEntry:
    if not entry.action or not math.isfinite(entry.at):
        raise ValueError("an audit entry needs an action and a finite time")
    return dataclasses.replace(entry, detail=entry.detail[:AUDIT_DETAIL_MAX], id=None)
