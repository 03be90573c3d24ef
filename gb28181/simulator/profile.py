"""Device profiles: how a class of real device behaves on the wire, read from ``fixtures/profiles/*.toml``.

A profile is behaviour, not code (spec digest §13 and the wild fixtures): transport, charset, catalog packet size,
keepalive interval, register expiry, 2016 or 2022 catalog fields, user agent and header order, and quirks. A
profile with a ``[mix]`` table is a weighted blend of other profiles (``mixed``). Loading validates every key and
value and raises ``ProfileError`` naming the file and the key at fault.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROFILE_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "profiles"

KINDS = ("ipc", "nvr", "platform")
CHARSETS = ("GB2312", "GB18030", "UTF-8")
# Quirks seen in the field (spec digest §13; fixtures-wild INDEX.md).
QUIRKS = frozenset({
    "utf8-declared-gb2312",  # §13 q1: UTF-8 bytes under a GB2312 declaration (wvp#260, #1341)
    "placeholder-fields",  # §13 q10: <Owner>Owner</Owner>, <CivilCode>CivilCode</CivilCode>, Address = device IP
    "ignores-qop",  # §13 q28: answers a qop challenge RFC 2069 style (no qop/nc/cnonce)
    "nat-port-per-keepalive",  # §13 q23: a 4G device whose source port changes between keepalives
    "self-item",  # Dahua/Kedacom IPCs list themselves as their only catalog item
    "parent-is-server",  # §13 q6: the channel's ParentID is the SIP server ID (Hikvision IPCs)
    "ssrc-zero",  # §13: RTP sent with SSRC 0 whatever y= said
    "answer-other-ssrc",  # §13 q16 / App. G note 16: the 200 OK carries another y= than the offer, and RTP uses it
})  # fmt: skip
HEADER_ORDERS = ("standard", "alphabetical")


class ProfileError(ValueError):
    pass


@dataclass(frozen=True)
class Profile:
    name: str
    description: str = ""
    kind: str = "ipc"  # ipc: one camera; nvr: cameras behind one device; platform: a lower platform's tree
    transport: str = "UDP"
    charset: str = "GB2312"  # declared in MANSCDP bodies
    gb_version: str = "2016"  # 2022: Info/PointType and other 2022 catalog fields; X-GB-ver 3.0 on REGISTER
    catalog_per_packet: int = 8  # items per Catalog MESSAGE (App.M); 1 = one item per MESSAGE
    records_per_packet: int = 8  # items per RecordInfo MESSAGE
    keepalive_interval: int = 60  # s (BasicParam HeartBeatInterval)
    keepalive_count: int = 3  # missed keepalives before the device re-registers (HeartBeatCount)
    register_expires: int = 3600  # s asked for in REGISTER
    user_agent: str = "IP Camera"
    header_order: str = "standard"  # alphabetical: Dahua's stack, Via last (fixtures-wild dahua/*)
    manufacturer: str = "Simulated"
    model: str = "SIM"
    firmware: str = "V1.0"
    device_type: int = 132  # digits 11-13 of the device ID (Appendix E)
    channels: int = 1  # default channel count (video channels) when --channels is not given
    alarm_inputs: int = 0  # alarm-in channels (type 134)
    civil_code: str = "340200"  # the device's civil code (region of its channels)
    channel_name: str = "通道{n}"  # format: {n} channel number, {device} device name, {area} area name
    device_name: str = "IPC-{serial}"
    area: str = "城区"  # used by channel_name
    digest_username: str = ""  # format for a digest username differing from the ID ({id}); empty = the ID
    ptz_type: int | None = None  # Info/PTZType of the video channels
    regions: tuple[tuple[str, str], ...] = ()  # platform: (civil code, name) nodes of its own tree
    groups: tuple[str, ...] = ()  # platform: names of its 215 business groups (each gets a 216 organisation)
    quirks: frozenset[str] = frozenset()
    mix: tuple[tuple[str, int], ...] = ()  # a blend: (profile name, weight)

    def has(self, quirk: str) -> bool:
        return quirk in self.quirks


_TYPES: dict[str, type | tuple[type, ...]] = {
    "description": str, "kind": str, "transport": str, "charset": str, "gb_version": str, "catalog_per_packet": int,
    "records_per_packet": int, "keepalive_interval": int, "keepalive_count": int, "register_expires": int,
    "user_agent": str, "header_order": str, "manufacturer": str, "model": str, "firmware": str, "device_type": int,
    "channels": int, "alarm_inputs": int, "civil_code": str, "channel_name": str, "device_name": str, "area": str,
    "digest_username": str, "ptz_type": int, "regions": list, "groups": list, "quirks": list, "mix": dict,
}  # fmt: skip


def parse_profile(name: str, data: dict[str, Any], where: str = "") -> Profile:
    """A profile from its TOML table; every key and value checked."""
    where = where or name
    kw: dict[str, Any] = {}
    for key, value in data.items():
        key_ = key.replace("-", "_")
        want = _TYPES.get(key_)
        if want is None:
            raise ProfileError(f"{where}: unknown key {key!r}")
        if not isinstance(value, want) or isinstance(value, bool):
            raise ProfileError(f"{where}: {key} must be {getattr(want, '__name__', want)}, not {value!r}")
        kw[key_] = value
    if "quirks" in kw:
        unknown = set(kw["quirks"]) - QUIRKS
        if unknown:
            raise ProfileError(f"{where}: unknown quirks {sorted(unknown)} (known: {sorted(QUIRKS)})")
        kw["quirks"] = frozenset(kw["quirks"])
    if "regions" in kw:
        regions = kw["regions"]
        if not all(isinstance(r, list) and len(r) == 2 and all(isinstance(v, str) for v in r) for r in regions):
            raise ProfileError(f"{where}: regions must be [civil code, name] pairs")
        if not all(r[0].isdigit() and len(r[0]) in (2, 4, 6, 8) for r in regions):
            raise ProfileError(f"{where}: region codes must be 2, 4, 6 or 8 digits")
        kw["regions"] = tuple((r[0], r[1]) for r in regions)
    if "groups" in kw:
        kw["groups"] = tuple(str(g) for g in kw["groups"])
    if "mix" in kw:
        mix = kw["mix"]
        if not mix or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in mix.values()):
            raise ProfileError(f"{where}: mix needs positive integer weights")
        kw["mix"] = tuple(sorted(mix.items()))
    p = Profile(name=name, **kw)
    _check(p, where)
    return p


def _check(p: Profile, where: str) -> None:
    checks = [
        (p.kind in KINDS, f"kind must be one of {KINDS}"),
        (p.transport in ("UDP", "TCP"), "transport must be UDP or TCP"),
        (p.charset in CHARSETS, f"charset must be one of {CHARSETS}"),
        (p.gb_version in ("2016", "2022"), "gb_version must be 2016 or 2022"),
        (p.header_order in HEADER_ORDERS, f"header_order must be one of {HEADER_ORDERS}"),
        (1 <= p.catalog_per_packet <= 100, "catalog_per_packet must be 1-100"),
        (1 <= p.records_per_packet <= 100, "records_per_packet must be 1-100"),
        (1 <= p.keepalive_interval <= 3600, "keepalive_interval must be 1-3600 s"),
        (1 <= p.keepalive_count <= 100, "keepalive_count must be 1-100"),
        (1 <= p.register_expires <= 86400, "register_expires must be 1-86400 s"),
        (111 <= p.device_type <= 299, "device_type must be a device (111-199) or platform (200-299) type code"),
        (0 <= p.channels <= 10_000, "channels must be 0-10000"),
        (0 <= p.alarm_inputs <= 64, "alarm_inputs must be 0-64"),
        (p.civil_code.isdigit() and len(p.civil_code) in (2, 4, 6, 8), "civil_code must be 2, 4, 6 or 8 digits"),
        (p.kind != "platform" or bool(p.regions), "a platform profile needs regions"),
        (p.kind != "ipc" or p.channels == 1, "an ipc has exactly one channel"),
    ]
    for ok, why in checks:
        if not ok:
            raise ProfileError(f"{where}: {why}")
    for template, fields in ((p.channel_name, {"n": 1, "device": "", "area": ""}), (p.device_name, {"serial": 1}),
                             (p.digest_username, {"id": "0" * 20})):  # fmt: skip
        try:
            template.format(**fields)
        except (KeyError, IndexError, ValueError) as exc:
            raise ProfileError(f"{where}: bad template {template!r}: {exc}") from exc


def load_profile(name: str, directory: Path = PROFILE_DIR) -> Profile:
    path = directory / f"{name}.toml"
    if not name or "/" in name or not path.is_file():
        raise ProfileError(f"no profile {name!r} (known: {', '.join(profile_names(directory))})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{path}: {exc}") from exc
    return parse_profile(name, data, str(path))


def profile_names(directory: Path = PROFILE_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.toml"))


@dataclass(frozen=True)
class Assignment:
    """Which profile each of N devices runs: a blend is spread in proportion to its weights, interleaved."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    order: tuple[str, ...] = ()

    def profile_of(self, index: int) -> Profile:
        return self.profiles[self.order[index % len(self.order)]]


def assign(profile: Profile, directory: Path = PROFILE_DIR) -> Assignment:
    """A single profile, or a blend expanded into a repeating cycle (``mix = {a = 2, b = 1}`` -> a, b, a)."""
    if not profile.mix:
        return Assignment({profile.name: profile}, (profile.name,))
    members = {name: load_profile(name, directory) for name, _ in profile.mix}
    if any(m.mix for m in members.values()):
        raise ProfileError(f"{profile.name}: a mix cannot contain another mix")
    # Interleave by weight (smooth weighted round robin): a few devices already see every member.
    weights = dict(profile.mix)
    total = sum(weights.values())
    current = dict.fromkeys(weights, 0)
    order: list[str] = []
    for _ in range(total):
        for name, w in weights.items():
            current[name] += w
        best = max(current, key=lambda n: (current[n], n))
        current[best] -= total
        order.append(best)
    return Assignment(members, tuple(order))
