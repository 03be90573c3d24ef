"""Platform configuration: TOML file + command-line overrides, per ARCHITECTURE.md's interface contract.

Every value is validated when loaded; ``ConfigError`` carries a message an operator can act on.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
import zoneinfo
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gb28181.guard import GuardSettings
from gb28181.media.backend import parse_port_range

DEFAULT_ID = "34020000002000000001"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ListenAddress:
    transport: str  # "udp" | "tcp"
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> ListenAddress:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in ("udp", "tcp"):
            raise ConfigError(f"listen address {url!r}: expected udp://HOST:PORT or tcp://HOST:PORT")
        host, port = _host_port(rest, f"listen address {url!r}")
        return cls(scheme.lower(), host, port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}://{host}:{self.port}"


def _host_port(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{what}: expected HOST:PORT")
    return host, int(port)


@dataclass(frozen=True)
class PlatformConfig:
    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True)
class SipConfig:
    id: str = DEFAULT_ID
    domain: str = ""  # default: first 10 digits of the ID
    realm: str = ""  # default: the domain
    listen: tuple[ListenAddress, ...] = (
        ListenAddress("udp", "0.0.0.0", 5060),
        ListenAddress("tcp", "0.0.0.0", 5060),
    )
    password: str = ""  # default device password; generated on first start when empty
    strict_ids: bool = False
    min_expires: int = 60
    max_expires: int = 86400
    default_expires: int = 3600
    nonce_ttl: int = 300
    qop: bool = True
    # The lean lane for plain REGISTERs and keepalives (sip/lite.py); false sends everything through the full
    # parser and transaction layer (the same answers, slower): an escape hatch, and the benchmarks' baseline.
    fast_lane: bool = True
    allow_unknown: bool = True
    strict_address: bool = False
    advertise: str = ""
    t1: float = 0.5
    query_timeout: float = 10.0  # seconds a device has to answer a query (MANSCDP Response)
    overload_lag: float = 0.5  # event-loop lag (s) above which new requests get 503 + Retry-After; 0: never
    # bytes of unread UDP requests above which new requests get 503 (Linux); 0: off. Off by default: under
    # SIPp's fixed-rate load it lowered goodput (bench/RESULTS.md); real devices back off, unmeasured yet.
    overload_backlog: int = 0
    tcp_read_deadline: float = 30.0  # a TCP peer must finish a started message (and its first) within this (s)
    tcp_idle_timeout: float = 900.0  # a TCP connection silent this long is closed (s)


@dataclass(frozen=True)
class RegistryConfig:
    database: str = "./gb28181.db"


@dataclass(frozen=True)
class CatalogConfig:
    inter_packet_timeout: float = 5.0  # silence after which a started catalog answer commits as partial
    first_packet_timeout: float = 120.0  # a lower platform may take minutes to start answering
    sync_on_register: bool = True  # ask every device that (re)registers for its catalog
    # Ask every registered device again this often (seconds; 0 = never) unless a catalog subscription is active:
    # the fallback where NOTIFYs are unreliable. Spread over the interval by device ID.
    sync_interval: float = 86400.0


@dataclass(frozen=True)
class SubscribeConfig:
    """``[subscribe]``: SUBSCRIBE/NOTIFY to devices (GB/T 28181-2022 §9.11, App.N; spec digest §9).

    ``catalog``/``alarm``/``position``: subscribe every device that registers (off by default: SIPp-style
    devices answer nothing but REGISTER/MESSAGE); an operator's ``gb28181 subscribe`` works either way."""

    catalog: bool = False
    alarm: bool = False
    position: bool = False
    expires: int = 600  # App.N default; wvp refuses below 30 s
    refresh_margin: float = 60.0  # refresh this long before expiry (at most half the granted time)
    position_interval: int = 5  # MobilePosition Interval (s, A.2.4.9)
    max_failures: int = 5  # consecutive failures before a subscription is given up ("failed")
    retry_base: float = 5.0  # first retry after a failure; doubles per failure
    retry_max: float = 300.0


@dataclass(frozen=True)
class KeepaliveConfig:
    interval: int = 60
    max_missed: int = 3


ADMIN_ROLES = ("viewer", "operator", "admin")


@dataclass(frozen=True)
class AdminToken:
    """One ``[[admin.tokens]]`` table: a named bearer token with a role."""

    name: str
    token: str
    role: str  # one of ADMIN_ROLES

    @classmethod
    def parse(cls, data: Any, index: int) -> AdminToken:
        what = f"[[admin.tokens]] #{index + 1}"
        if not isinstance(data, dict):
            raise ConfigError(f"{what} must be a table with name, token and role")
        unknown = sorted(set(data) - {"name", "token", "role"})
        if unknown:
            raise ConfigError(f"{what}: unknown key {unknown[0]!r} (known: name, role, token)")
        for key in ("name", "token", "role"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ConfigError(f"{what}: {key} must be a non-empty string")
        if data["role"] not in ADMIN_ROLES:
            raise ConfigError(f"{what}: role must be one of {', '.join(ADMIN_ROLES)}, not {data['role']!r}")
        return cls(data["name"], data["token"], data["role"])


UPSTREAM_CHARSETS = ("GB2312", "GB18030", "UTF-8")


@dataclass(frozen=True)
class UpstreamConfig:
    """One ``[[upstream]]`` table: a superior platform we register to (GB/T 28181 §9.1, spec digest §11).

    ``retry_interval`` is the re-registration floor after a failure (§9.1.1 says at least 60 s, the 2022 edition
    adds a random delay); failures back off exponentially up to ``retry_max`` with up to ``retry_jitter`` extra.
    ``share`` seeds the database's shares while it holds none for this superior (DECISIONS.md: Overrides)."""

    id: str
    host: str
    domain: str = ""  # default: first 10 digits of the ID
    port: int = 5060
    transport: str = "udp"  # "udp" | "tcp"
    username: str = ""  # default: our SIP ID
    password: str = ""
    register_expires: int = 3600
    keepalive_interval: int = 60
    keepalive_max_missed: int = 3  # unanswered keepalives after which the superior is offline (§9.6.1)
    retry_interval: float = 60.0
    retry_max: float = 600.0
    retry_jitter: float = 0.25  # fraction of the delay added at random
    charset: str = "GB2312"  # DECISIONS.md: Encoding out
    catalog_batch: int = 4  # items per Response packet (App.M serial sending; WVP sends 1-8)
    media: str = "relay"  # "relay" | "direct"
    share: tuple[str, ...] = ()  # ("all",) or device/channel/group IDs and civil codes
    name: str = ""  # our name in the system item we send up

    @property
    def sip_domain(self) -> str:
        return self.domain or self.id[:10]

    @classmethod
    def parse(cls, data: Any, index: int) -> UpstreamConfig:
        what = f"[[upstream]] #{index + 1}"
        if not isinstance(data, dict):
            raise ConfigError(f"{what} must be a table")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{what}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
        for key in ("id", "host"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ConfigError(f"{what}: {key} is required (a non-empty string)")
        what = f"[[upstream]] {data['id']}"
        share = data.get("share", ())
        if isinstance(share, str):
            share = (share,)
        if not isinstance(share, (list, tuple)) or not all(isinstance(v, str) and v for v in share):
            raise ConfigError(f'{what}: share must be "all" or a list of device/channel/group IDs and civil codes')
        kwargs: dict[str, Any] = {"id": data["id"], "host": data["host"], "share": tuple(share)}
        defaults = cls(id="", host="")
        for key, value in data.items():
            if key in kwargs:
                continue
            default = getattr(defaults, key)
            if isinstance(default, int) and not isinstance(default, bool):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ConfigError(f"{what}: {key} must be an integer")
            elif isinstance(default, float):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ConfigError(f"{what}: {key} must be a number")
                value = float(value)
            elif not isinstance(value, str):
                raise ConfigError(f"{what}: {key} must be a string")
            kwargs[key] = value
        return cls(**kwargs).checked()

    def checked(self) -> UpstreamConfig:
        what = f"[[upstream]] {self.id}"
        if len(self.id) != 20 or not (self.id.isascii() and self.id.isdigit()):
            raise ConfigError(f"{what}: id must be 20 digits")
        if self.domain and not (self.domain.isascii() and self.domain.isdigit()):
            raise ConfigError(f"{what}: domain must be digits (usually the first 10 of the ID)")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"{what}: port must be 1-65535")
        if self.transport.lower() not in ("udp", "tcp"):
            raise ConfigError(f'{what}: transport must be "udp" or "tcp", not {self.transport!r}')
        if not 10 <= self.register_expires <= 86400:
            raise ConfigError(f"{what}: register_expires must be 10-86400 s (GB/T 28181 §9.1 recommends 3600+)")
        if not 1 <= self.keepalive_interval <= 3600 or not 1 <= self.keepalive_max_missed <= 100:
            raise ConfigError(f"{what}: keepalive_interval must be 1-3600 s and keepalive_max_missed 1-100")
        if not 0.05 <= self.retry_interval <= self.retry_max <= 86400:
            raise ConfigError(f"{what}: needs 0.05 <= retry_interval <= retry_max <= 86400 s")
        if not 0 <= self.retry_jitter <= 1:
            raise ConfigError(f"{what}: retry_jitter must be 0-1 (a fraction of the delay)")
        charset = self.charset.upper().replace("UTF8", "UTF-8")
        if charset not in UPSTREAM_CHARSETS:
            raise ConfigError(f"{what}: charset must be one of {', '.join(UPSTREAM_CHARSETS)}, not {self.charset!r}")
        if not 1 <= self.catalog_batch <= 64:
            raise ConfigError(f"{what}: catalog_batch must be 1-64 items per packet")
        if self.media not in ("relay", "direct"):
            raise ConfigError(f'{what}: media must be "relay" or "direct", not {self.media!r}')
        if "all" in self.share and len(self.share) > 1:
            raise ConfigError(f'{what}: share is either "all" or a list of IDs, not both')
        for item in self.share:
            if item != "all" and not (item.isascii() and item.isdigit() and len(item) in (2, 4, 6, 8, 20)):
                raise ConfigError(f"{what}: share item {item!r} is not a 20-digit ID or a 2/4/6/8-digit civil code")
        return replace(self, transport=self.transport.lower(), charset=charset)


@dataclass(frozen=True)
class AdminConfig:
    listen: str = "127.0.0.1:18080"
    token: str = ""  # the admin role
    tokens: tuple[AdminToken, ...] = ()  # further named tokens with roles (ARCHITECTURE.md)
    tls_cert: str = ""  # PEM certificate (chain) file: serve the admin API over HTTPS; needs tls_key
    tls_key: str = ""


MEDIA_BACKENDS = ("embedded", "zlmediakit")


@dataclass(frozen=True)
class MediaConfig:
    """``[media]``: which backend receives RTP (``gb28181/media/``), how to reach ZLMediaKit, and the media-session
    timers (GB/T 28181 §9.2; DECISIONS.md: advertised addresses, live URLs).

    ``zlm_secret`` is ZLMediaKit's ``api.secret``; ``zlm_hook_secret`` is ours, carried by the hook URLs configured
    in ZLMediaKit (``.../zlm/hook/on_stream_changed?secret=...``), never the operator token (DECISIONS.md)."""

    backend: str = "embedded"  # "embedded" | "zlmediakit"
    rtp_ports: str = "30000-30500"  # the embedded receiver's ports (ZLMediaKit uses its own rtp_proxy.port_range)
    advertise: str = ""  # IP put in SDP c= (default: the local address towards the device; for zlmediakit: the
    # address devices reach ZLMediaKit's RTP ports on)
    bind: str = "0.0.0.0"  # where the embedded receiver binds its RTP ports
    zlm_url: str = "http://127.0.0.1:80"  # ZLMediaKit's HTTP API base
    zlm_secret: str = ""
    zlm_hook_secret: str = ""
    zlm_timeout: float = 5.0  # seconds per API call
    zlm_retries: int = 2  # further attempts when ZLMediaKit is unreachable (idempotent calls also on timeout)
    zlm_stream_prefix: str = "gb"  # our stream ids under app rtp; distinct per platform sharing one ZLMediaKit
    invite_timeout: float = 10.0  # seconds a device has to answer an INVITE finally; then CANCEL
    no_media_timeout: float = 10.0  # seconds without RTP (after the 200 OK, or since the last packet); then BYE
    live_url_ttl: int = 300  # seconds a signed /live URL may be opened after it was issued
    voice_input: str = ""  # SourceID of voice broadcasts (§9.12): a voice input's 20-digit ID; empty = our SIP ID


def media_settings(raw: MediaConfig | dict[str, Any]) -> MediaConfig:
    """The ``[media]`` settings, checked: a loaded MediaConfig as it is, or a table (tests, tools) read and
    validated; ConfigError says what is wrong. Unknown keys are refused."""
    m = raw if isinstance(raw, MediaConfig) else _section(MediaConfig, raw, "media")
    _validate_media(m)
    return m


@dataclass(frozen=True)
class Config:
    platform: PlatformConfig = field(default_factory=PlatformConfig)
    sip: SipConfig = field(default_factory=SipConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    keepalive: KeepaliveConfig = field(default_factory=KeepaliveConfig)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    subscribe: SubscribeConfig = field(default_factory=SubscribeConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    guard: GuardSettings = field(default_factory=GuardSettings)
    # Sections the contract names that later issues implement; kept so a full config file still loads.
    upstream: tuple[UpstreamConfig, ...] = ()

    @property
    def domain(self) -> str:
        return self.sip.domain or self.sip.id[:10]

    @property
    def realm(self) -> str:
        return self.sip.realm or self.domain


_SECTIONS = {
    "platform": PlatformConfig,
    "sip": SipConfig,
    "registry": RegistryConfig,
    "keepalive": KeepaliveConfig,
    "catalog": CatalogConfig,
    "subscribe": SubscribeConfig,
    "admin": AdminConfig,
    "media": MediaConfig,
    "guard": GuardSettings,
}


def _section(cls: type, data: Any, name: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"[{name}] must be a table")
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        f = known.get(key)
        if f is None:
            raise ConfigError(f"[{name}] unknown key {key!r} (known: {', '.join(sorted(known))})")
        default = getattr(cls(), key)
        if key == "listen" and cls is SipConfig:
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
                raise ConfigError("[sip] listen must be a URL or a list of URLs")
            kwargs[key] = tuple(ListenAddress.parse(v) for v in values)
            continue
        if key == "tokens" and cls is AdminConfig:
            if not isinstance(value, list):
                raise ConfigError("[admin] tokens must be an array of tables: [[admin.tokens]] name, token, role")
            kwargs[key] = tuple(AdminToken.parse(v, i) for i, v in enumerate(value))
            continue
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"[{name}] {key} must be true or false")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"[{name}] {key} must be an integer")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"[{name}] {key} must be a number")
            value = float(value)
        elif isinstance(default, str) and not isinstance(value, str):
            raise ConfigError(f"[{name}] {key} must be a string")
        kwargs[key] = value
    return cls(**kwargs)


def validate(cfg: Config) -> Config:
    s = cfg.sip
    if len(s.id) != 20 or not (s.id.isascii() and s.id.isdigit()):
        raise ConfigError(f"[sip] id must be 20 digits, got {s.id!r}")
    if not 1 <= s.min_expires <= 3600:
        raise ConfigError("[sip] min_expires must be between 1 and 3600 (DECISIONS.md: Expires)")
    if not s.min_expires <= s.default_expires <= s.max_expires:
        raise ConfigError("[sip] needs min_expires <= default_expires <= max_expires")
    if s.nonce_ttl < 10:
        raise ConfigError("[sip] nonce_ttl must be at least 10 seconds")
    if not 0.01 <= s.t1 <= 10:
        raise ConfigError("[sip] t1 must be between 0.01 and 10 seconds")
    if not (s.overload_lag == 0 or 0.05 <= s.overload_lag <= 60):
        raise ConfigError("[sip] overload_lag must be 0 (off) or between 0.05 and 60 seconds")
    if s.overload_backlog < 0:
        raise ConfigError("[sip] overload_backlog must be 0 (off) or a number of bytes")
    if not 0.1 <= s.query_timeout <= 600:
        raise ConfigError("[sip] query_timeout must be between 0.1 and 600 seconds")
    if not 1 <= s.tcp_read_deadline <= s.tcp_idle_timeout <= 86400:
        raise ConfigError("[sip] needs 1 <= tcp_read_deadline <= tcp_idle_timeout <= 86400 seconds")
    if not s.listen:
        raise ConfigError("[sip] listen must name at least one address")
    if not 0.1 <= cfg.catalog.inter_packet_timeout <= 600 or not 1 <= cfg.catalog.first_packet_timeout <= 3600:
        raise ConfigError("[catalog] inter_packet_timeout must be 0.1-600 s and first_packet_timeout 1-3600 s")
    if cfg.catalog.sync_interval != 0 and not 60 <= cfg.catalog.sync_interval <= 30 * 86400:
        raise ConfigError("[catalog] sync_interval must be 0 (off) or 60 s to 30 days")
    _validate_subscribe(cfg.subscribe)
    media_settings(cfg.media)
    if cfg.keepalive.interval < 1 or cfg.keepalive.max_missed < 1:
        raise ConfigError("[keepalive] interval and max_missed must be positive")
    try:
        zoneinfo.ZoneInfo(cfg.platform.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"[platform] timezone {cfg.platform.timezone!r} is not a known zone") from exc
    _host_port(cfg.admin.listen, "[admin] listen")
    ids = [u.id for u in cfg.upstream]
    if len(set(ids)) != len(ids):
        raise ConfigError("[[upstream]] ids must be distinct")
    if s.id in ids:
        raise ConfigError("[[upstream]] id must not be our own [sip] id")
    _validate_media(cfg.media)
    if bool(cfg.admin.tls_cert) != bool(cfg.admin.tls_key):
        raise ConfigError("[admin] tls_cert and tls_key go together: set both (HTTPS) or neither (HTTP)")
    _validate_guard(cfg.guard)
    return cfg


def _validate_media(m: MediaConfig) -> None:
    if m.backend not in MEDIA_BACKENDS:
        raise ConfigError(f"[media] backend must be one of {', '.join(MEDIA_BACKENDS)}, not {m.backend!r}")
    try:
        parse_port_range(m.rtp_ports)
    except ValueError as exc:
        raise ConfigError(f"[media] {exc}") from exc
    if m.advertise and not _is_ip(m.advertise):
        raise ConfigError(f"[media] advertise must be an IP address, not {m.advertise!r}")
    if not _is_ip(m.bind):
        raise ConfigError(f"[media] bind must be an IP address, not {m.bind!r}")
    if not 0.5 <= m.invite_timeout <= 300 or not 0.5 <= m.no_media_timeout <= 3600:
        raise ConfigError("[media] invite_timeout must be 0.5-300 s and no_media_timeout 0.5-3600 s")
    if not 10 <= m.live_url_ttl <= 86400:
        raise ConfigError("[media] live_url_ttl must be between 10 and 86400 seconds")
    if m.voice_input and not (len(m.voice_input) == 20 and m.voice_input.isascii() and m.voice_input.isdigit()):
        raise ConfigError(f"[media] voice_input must be a 20-digit ID, not {m.voice_input!r}")
    if not 0.1 <= m.zlm_timeout <= 120:
        raise ConfigError("[media] zlm_timeout must be between 0.1 and 120 seconds")
    if not 0 <= m.zlm_retries <= 10:
        raise ConfigError("[media] zlm_retries must be between 0 and 10")
    if not re.fullmatch(r"[A-Za-z0-9-]{1,16}", m.zlm_stream_prefix):
        raise ConfigError("[media] zlm_stream_prefix must be 1-16 letters, digits or '-'")
    url = urlsplit(m.zlm_url)
    try:
        port_ok = url.port is None or 0 < url.port <= 65535
    except ValueError:
        port_ok = False
    if url.scheme not in ("http", "https") or not url.hostname or not port_ok or url.query or url.fragment:
        raise ConfigError(f"[media] zlm_url {m.zlm_url!r}: expected http://HOST[:PORT] (ZLMediaKit's HTTP API)")
    if m.backend == "zlmediakit":
        if not m.zlm_secret:
            raise ConfigError('[media] backend = "zlmediakit" needs zlm_secret (api.secret in its config.ini)')
        if len(m.zlm_hook_secret) < 16 or not m.zlm_hook_secret.isascii() or not m.zlm_hook_secret.isprintable():
            raise ConfigError(
                '[media] backend = "zlmediakit" needs zlm_hook_secret: at least 16 printable ASCII '
                "characters, put in the hook URLs configured in ZLMediaKit (?secret=...)"
            )


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _validate_guard(g: GuardSettings) -> None:
    if g.max_failures < 0 or not 0 < g.failure_window <= 86400:
        raise ConfigError("[guard] max_failures must be >= 0 (0: never lock out) and failure_window 1-86400 s")
    if not 0 < g.lockout_base <= g.lockout_max <= 7 * 86400:
        raise ConfigError("[guard] needs 0 < lockout_base <= lockout_max <= 604800 seconds")
    if g.register_rate < 0 or g.message_rate < 0 or g.register_burst < 1 or g.message_burst < 1:
        raise ConfigError("[guard] rates must be >= 0 (0: no limit) and bursts >= 1")
    if not 1000 <= g.max_entries <= 10_000_000:
        raise ConfigError("[guard] max_entries must be between 1000 and 10000000")


def _validate_subscribe(sub: SubscribeConfig) -> None:
    if not 30 <= sub.expires <= 86400:
        raise ConfigError("[subscribe] expires must be between 30 and 86400 seconds")
    if not 0 < sub.refresh_margin < sub.expires:
        raise ConfigError("[subscribe] refresh_margin must be positive and below expires")
    if not 1 <= sub.position_interval <= 3600:
        raise ConfigError("[subscribe] position_interval must be between 1 and 3600 seconds")
    if not 1 <= sub.max_failures <= 100:
        raise ConfigError("[subscribe] max_failures must be between 1 and 100")
    if not 0.01 <= sub.retry_base <= sub.retry_max <= 86400:
        raise ConfigError("[subscribe] needs 0.01 <= retry_base <= retry_max <= 86400 seconds")


def load(path: str | Path | None) -> Config:
    """Read a TOML file (or the defaults when ``path`` is None)."""
    if path is None:
        return validate(Config())
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {p} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {p}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from exc
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SECTIONS:
            kwargs[key] = _section(_SECTIONS[key], value, key)
        elif key == "upstream":
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise ConfigError("[[upstream]] must be an array of tables")
            kwargs["upstream"] = tuple(UpstreamConfig.parse(v, i) for i, v in enumerate(value))
        else:
            raise ConfigError(f"unknown section [{key}] (known: {', '.join([*_SECTIONS, 'upstream'])})")
    return validate(Config(**kwargs))


def override(cfg: Config, **flags: Any) -> Config:
    """Apply command-line flags (None = not given) on top of the file."""
    sip_changes: dict[str, Any] = {}
    if flags.get("sip_id"):
        sip_changes["id"] = flags["sip_id"]
    if flags.get("domain"):
        sip_changes["domain"] = flags["domain"]
    if flags.get("listen"):
        sip_changes["listen"] = tuple(ListenAddress.parse(u) for u in flags["listen"])
    if flags.get("password"):
        sip_changes["password"] = flags["password"]
    if sip_changes:
        cfg = replace(cfg, sip=replace(cfg.sip, **sip_changes))
    if flags.get("db"):
        cfg = replace(cfg, registry=RegistryConfig(database=flags["db"]))
    if flags.get("admin_listen"):
        cfg = replace(cfg, admin=replace(cfg.admin, listen=flags["admin_listen"]))
    return validate(cfg)
