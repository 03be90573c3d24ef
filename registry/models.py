"""Domain records of the registry. Times are wall-clock seconds since the epoch (DECISIONS.md: Time)."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    # platform
    "platform-start": 40,
    "platform-stop": 41,
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
