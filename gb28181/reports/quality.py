"""Annotation, naming and ID compliance of the registry (issue 10). Pure: records in, findings out.

Annotation: a video channel's coordinates (as shown: override <- reported) must be present, not 0/0, inside
China's bounds and not shared with more than ``SAME_POINT_LIMIT - 1`` other channels (an installer copying one
point to a whole NVR); its civil code must be 2/4/6/8 digits and agree with the centre code of its ID (GB/T
28181-2022 Appendix E: digits 1-8); its name must not be a placeholder a device ships with. IDs: 20 digits, a type
code that fits the role (Table E.1: 111-199 devices, 200-299 platforms, 215/216 are tree nodes that never
register; 131/132 video channels), and no channel ID on two devices or equal to another device's ID.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from registry.models import VIDEO, Channel, Device

# Mainland, Hainan and the South China Sea islands (73.50 E .. 135.05 E, 3.86 N .. 53.55 N), rounded outwards.
CHINA_LONGITUDE = (73.4, 135.1)
CHINA_LATITUDE = (3.8, 53.6)
SAME_POINT_LIMIT = 3  # this many channels on one exact point is a copied annotation (two may share a pole)
RULES = ("coordinates", "civil-code", "name")
CSV_COLUMNS = ("device_id", "id", "name", "longitude", "latitude", "civil_code", "point_class", "problem")

# Names devices ship with: "Camera 01", "IPCamera", "IPdome", "通道1", "Channel 1", "CH01", "未命名", ...
_PLACEHOLDER = re.compile(
    r"^\s*(ip\s*)?(camera|cam|channel|chan|ch|video|ipc|ipdome|dome|nvr|dvr|device|通道|摄像机|摄像头|相机|监控点|"
    r"球机|枪机|视频|设备)\s*[-_#.]?\s*\d*\s*$|^\s*(未命名|无名称|未知|unknown|default|none|null|test|测试|name)\s*\d*\s*$",
    re.IGNORECASE,
)
_BRANDS = frozenset(
    {"hikvision", "海康威视", "dahua", "大华", "uniview", "宇视", "tiandy", "天地伟业", "kedacom", "科达"}
)


def _digits(text: str, lengths: tuple[int, ...]) -> bool:
    return len(text) in lengths and text.isascii() and text.isdigit()


def _significant(code: str) -> str:
    """A civil code without its trailing "00" levels (34020000 -> 3402)."""
    while len(code) > 2 and code.endswith("00"):
        code = code[:-2]
    return code


def coordinate_problem(longitude: float | None, latitude: float | None) -> str | None:
    if longitude is None or latitude is None:
        return "no coordinates"
    if longitude == 0 and latitude == 0:
        return "coordinates 0/0"
    lon_min, lon_max = CHINA_LONGITUDE
    lat_min, lat_max = CHINA_LATITUDE
    if not (lon_min <= longitude <= lon_max and lat_min <= latitude <= lat_max):
        return f"coordinates {longitude}/{latitude} outside China"
    return None


def civil_code_problem(channel_id: str, civil_code: str) -> str | None:
    code = civil_code.strip()
    if not code:
        return "no civil code"
    if not _digits(code, (2, 4, 6, 8)):
        return f"civil code {code[:20]!r} is not 2, 4, 6 or 8 digits"
    if _digits(channel_id, (20,)):
        centre, mine = _significant(channel_id[:8]), _significant(code)
        if not (centre.startswith(mine) or mine.startswith(centre)):
            return f"civil code {code} does not match the ID's centre code {channel_id[:8]}"
    return None


def name_problem(channel_id: str, name: str) -> str | None:
    text = name.strip()
    if not text:
        return "no name"
    if text == channel_id:
        return "the name is the ID"
    if text.isdigit():
        return f"the name {text!r} is a number"
    if _PLACEHOLDER.match(text) or text.lower() in _BRANDS:
        return f"placeholder name {text!r}"
    return None


@dataclass(frozen=True)
class Offender:
    channel: Channel
    problems: tuple[tuple[str, str], ...]  # (rule, what is wrong)


@dataclass(frozen=True)
class AnnotationReport:
    channels: int  # video channels checked
    ok: dict[str, int]  # rule -> channels passing it
    compliant: int  # channels passing every rule
    class1: int  # class-1 points
    class1_coordinates_ok: int
    offenders: tuple[Offender, ...]

    def share(self, rule: str) -> float | None:
        return self.ok[rule] / self.channels if self.channels else None


def check_annotation(channels: Sequence[Channel]) -> AnnotationReport:
    """Annotation and naming of every video channel, as shown (local overrides first)."""
    video = [c for c in channels if c.kind == VIDEO]
    points: dict[tuple[float, float], int] = defaultdict(int)
    for c in video:
        if c.shown_longitude is not None and c.shown_latitude is not None:
            points[(c.shown_longitude, c.shown_latitude)] += 1
    ok = dict.fromkeys(RULES, 0)
    offenders = []
    class1 = class1_ok = 0
    for c in video:
        lon, lat = c.shown_longitude, c.shown_latitude
        where = coordinate_problem(lon, lat)
        if where is None and points[(lon, lat)] >= SAME_POINT_LIMIT:  # type: ignore[index]
            where = f"coordinates {lon}/{lat} shared by {points[(lon, lat)]} channels"  # type: ignore[index]
        found = {"coordinates": where, "civil-code": civil_code_problem(c.id, c.shown_civil_code),
                 "name": name_problem(c.id, c.shown_name)}  # fmt: skip
        for rule, problem in found.items():
            ok[rule] += problem is None
        if c.shown_point_class == 1:
            class1 += 1
            class1_ok += where is None
        problems = tuple((rule, p) for rule, p in found.items() if p is not None)
        if problems:
            offenders.append(Offender(c, problems))
    return AnnotationReport(len(video), ok, len(video) - len(offenders), class1, class1_ok, tuple(offenders))


def offenders_csv(offenders: Sequence[Offender]) -> str:
    """The offenders in the columns ``gb28181 channels import`` reads (device_id, id and the editable values as
    shown), plus ``problem`` last; fix the values in a spreadsheet and import the file back."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for o in offenders:
        c = o.channel
        writer.writerow([
            c.device_id, c.id, c.shown_name, _cell(c.shown_longitude), _cell(c.shown_latitude), c.shown_civil_code,
            _cell(c.shown_point_class), "; ".join(p for _, p in o.problems),
        ])  # fmt: skip
    return out.getvalue()


def _cell(value: object) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


# ------------------------------------------------------------------------------------------ IDs
@dataclass(frozen=True)
class IdProblem:
    subject: str  # the ID at fault
    device_id: str  # the device it is on (itself for a device)
    role: str  # "device" or the channel's kind
    problem: str


# Channel kinds whose IDs must be unique across devices (tree nodes such as civil-code regions and business
# groups are legitimately listed by several lower platforms).
_UNIQUE_KINDS = frozenset({VIDEO, "alarm-in", "alarm-out", "audio-in", "audio-out", "device"})


def device_id_problem(device_id: str, platform_id: str) -> str | None:
    if not _digits(device_id, (20,)):
        return f"not a 20-digit ID: {device_id[:40]!r}"
    if device_id == platform_id:
        return "the platform's own ID"
    type_code = int(device_id[10:13])
    if type_code in (215, 216):
        return f"type code {type_code} is a catalog node (business group / virtual organisation), not a device"
    if not 111 <= type_code <= 299:
        return f"type code {type_code:03d} is neither a device (111-199) nor a platform (200-299)"
    return None


def channel_id_problem(channel: Channel) -> str | None:
    cid, kind = channel.id, channel.kind
    if kind == "region":
        return None  # 2/4/6/8-digit civil-code node (Appendix J)
    if not _digits(cid, (20,)):
        return f"not a 20-digit ID: {cid[:40]!r}"
    type_code = int(cid[10:13])
    if kind == VIDEO and type_code not in (131, 132) and cid != channel.device_id:
        return f"video channel with type code {type_code:03d} (expected 131 or 132)"
    if kind == "other":
        return f"type code {type_code:03d} is not a channel, device or catalog node type"
    return None


def check_ids(devices: Sequence[Device], channels: Sequence[Channel], platform_id: str) -> list[IdProblem]:
    out = []
    for d in devices:
        problem = device_id_problem(d.id, platform_id)
        if problem:
            out.append(IdProblem(d.id, d.id, "device", problem))
    holders: dict[str, list[str]] = defaultdict(list)
    device_ids = {d.id for d in devices}
    for c in channels:
        problem = channel_id_problem(c)
        if problem:
            out.append(IdProblem(c.id, c.device_id, c.kind, problem))
        if c.kind in _UNIQUE_KINDS:
            holders[c.id].append(c.device_id)
            if c.id != c.device_id and c.id in device_ids:
                out.append(IdProblem(c.id, c.device_id, c.kind, "also registered as a device"))
            elif c.id == platform_id:
                out.append(IdProblem(c.id, c.device_id, c.kind, "the platform's own ID"))
    for cid, on in sorted(holders.items()):
        if len(on) > 1:
            for device_id in on:
                others = ", ".join(x for x in on if x != device_id)
                out.append(IdProblem(cid, device_id, "channel", f"the same ID is listed by device(s) {others}"))
    return out
