"""DeviceControl request bodies (GB/T 28181-2022 A.2.3.1, §9.3), one frozen dataclass per command element.

Build: ``cmd.to_xml(sn, device_id, charset)`` gives ``<Control><CmdType>DeviceControl</CmdType><SN/><DeviceID/>``
and the command's elements, one element per CRLF-terminated line (as wvp sends them), declared and encoded per
DECISIONS.md "Encoding out": GB2312 (or GBK) is declared but encoded with GB18030, GB18030 and UTF-8 as named.
Parse: ``parse_control(root)`` reads a ``<Control>`` element from a superior platform (a cascade) back into one of
the dataclasses; element names are matched case-insensitively and surrounding whitespace in values is dropped.
Every error is a ``ControlError`` (a ``ValueError``) naming the element and the value at fault.

The 2022 additions follow the spec digest §7.5/§14: PTZCmdParams, RecordCmd StreamNumber, AlarmCmd Info,
PTZPreciseCtrl, DeviceUpgrade, FormatSDCard, TargetTrack. ``IFameCmd`` is the 2016 spelling (and wvp's): sent as
such, ``IFrameCmd`` accepted too.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

from lxml import etree

from gb28181.manscdp import _PARSER, ManscdpError, decode
from gb28181.manscdp.ptz import PtzCommand, PtzError
from gb28181.manscdp.ptz import decode as decode_ptz

__all__ = [
    "AlarmCmd",
    "ControlCommand",
    "ControlError",
    "DeviceUpgrade",
    "DragZoomIn",
    "DragZoomOut",
    "FormatSDCard",
    "GuardCmd",
    "HomePosition",
    "IFrameCmd",
    "PtzCmd",
    "PtzPreciseCtrl",
    "RecordCmd",
    "TargetTrack",
    "TeleBoot",
    "ZoomRect",
    "parse_control",
    "parse_control_body",
]

log = logging.getLogger(__name__)

_INT_MAX = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,10}")
_DECIMAL = re.compile(r"[+-]?[0-9]{1,6}(?:\.[0-9]{1,6})?")
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class ControlError(ValueError):
    """A DeviceControl we cannot build or read: unknown command element, bad value, wrong envelope."""


# ------------------------------------------------------------------------------------------- validation


def _check_int(owner: object, name: str, lo: int = 0, hi: int = _INT_MAX, *, optional: bool = False) -> None:
    v = getattr(owner, name)
    if v is None and optional:
        return
    if not isinstance(v, int) or isinstance(v, bool):
        raise ControlError(f"{type(owner).__name__}.{name} must be an int, not {type(v).__name__}")
    if not lo <= v <= hi:
        raise ControlError(f"{type(owner).__name__}.{name} {v} out of range {lo}..{hi}")


def _check_text(owner: object, name: str, *, optional: bool = False) -> None:
    v = getattr(owner, name)
    if v is None and optional:
        return
    if not isinstance(v, str) or not v.strip():
        raise ControlError(f"{type(owner).__name__}.{name} must be a non-empty string, got {v!r}")
    if _XML_ILLEGAL.search(v):
        raise ControlError(f"{type(owner).__name__}.{name} holds characters XML cannot carry: {v!r}")


def _check_digits(owner: object, name: str) -> None:
    v = getattr(owner, name)
    if v is not None and not (isinstance(v, str) and v.isascii() and v.isdigit()):
        raise ControlError(f"{type(owner).__name__}.{name} must be a string of digits, got {v!r}")


# ------------------------------------------------------------------------------------------- building


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    elem = etree.SubElement(parent, tag)
    if text is not None:
        elem.text = text
    return elem


def _charset(charset: str) -> tuple[str, str]:
    """charset argument -> (declared name, Python codec). DECISIONS.md "Encoding out"."""
    key = charset.strip().upper().replace("_", "-") if isinstance(charset, str) else ""
    if key in ("UTF-8", "UTF8"):
        return "UTF-8", "utf-8"
    if key in ("GB2312", "GBK", "GB18030"):
        return key, "gb18030"  # GB2312/GBK declared, GB18030 (a superset) encoded
    raise ControlError(f"unsupported charset {charset!r}; expected GB2312, GBK, GB18030 or UTF-8")


class _Control:
    """Shared ``to_xml``; subclasses add their elements after DeviceID in ``_append``."""

    __slots__ = ()
    TAG: ClassVar[str]
    RESPONDS: ClassVar[bool] = False  # whether the device answers with Response DeviceControl Result (§7.5)

    def to_xml(self, sn: int, device_id: str, charset: str = "GB2312") -> bytes:
        if not isinstance(sn, int) or isinstance(sn, bool) or sn < 0:
            raise ControlError(f"SN must be a non-negative int, got {sn!r}")
        if not isinstance(device_id, str) or not device_id or not device_id.isascii() or not device_id.isalnum():
            raise ControlError(f"DeviceID must be a non-empty alphanumeric string, got {device_id!r}")
        declared, codec = _charset(charset)
        root = etree.Element("Control")
        _sub(root, "CmdType", "DeviceControl")
        _sub(root, "SN", str(sn))
        _sub(root, "DeviceID", device_id)
        self._append(root)
        etree.indent(root, space="")  # one element per line
        text = f'<?xml version="1.0" encoding="{declared}"?>\n{etree.tostring(root, encoding="unicode")}\n'
        text = text.replace("\n", "\r\n")  # XML end-of-line handling reads CRLF back as LF, values included
        if declared == "GB2312":
            try:
                text.encode("gb2312")
            except UnicodeEncodeError as exc:
                log.warning(
                    "DeviceControl to %s: %r is outside GB2312, sent as GB18030", device_id, exc.object[exc.start]
                )
        return text.encode(codec)

    def _append(self, root: etree._Element) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class PtzCmd(_Control):
    """``<PTZCmd>`` (A.2.3.1) with the 2022 ``PTZCmdParams`` and wvp's ``Info/ControlPriority``."""

    TAG: ClassVar[str] = "PTZCmd"
    command: PtzCommand
    preset_name: str | None = None  # PTZCmdParams/PresetName (2022), with preset set
    cruise_track_name: str | None = None  # PTZCmdParams/CruiseTrackName (2022), with cruise commands
    priority: int | None = None  # Info/ControlPriority: wvp sends 5; not in the standard's schema

    def __post_init__(self) -> None:
        if not isinstance(self.command, PtzCommand):
            raise ControlError(f"PtzCmd.command must be a PtzCommand, not {type(self.command).__name__}")
        _check_text(self, "preset_name", optional=True)
        _check_text(self, "cruise_track_name", optional=True)
        _check_int(self, "priority", optional=True)

    def _append(self, root: etree._Element) -> None:
        _sub(root, "PTZCmd", self.command.encode())
        if self.preset_name is not None or self.cruise_track_name is not None:
            params = _sub(root, "PTZCmdParams")
            if self.preset_name is not None:
                _sub(params, "PresetName", self.preset_name)
            if self.cruise_track_name is not None:
                _sub(params, "CruiseTrackName", self.cruise_track_name)
        if self.priority is not None:
            _sub(_sub(root, "Info"), "ControlPriority", str(self.priority))


@dataclass(frozen=True)
class TeleBoot(_Control):
    """``<TeleBoot>Boot</TeleBoot>``: remote reboot, addressed to the device ID."""

    TAG: ClassVar[str] = "TeleBoot"

    def _append(self, root: etree._Element) -> None:
        _sub(root, "TeleBoot", "Boot")


@dataclass(frozen=True)
class RecordCmd(_Control):
    """``<RecordCmd>Record|StopRecord</RecordCmd>`` and the 2022 sibling ``<StreamNumber>`` (0 = main stream)."""

    TAG: ClassVar[str] = "RecordCmd"
    RESPONDS: ClassVar[bool] = True
    start: bool
    stream_number: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.start, bool):
            raise ControlError(f"RecordCmd.start must be a bool, got {self.start!r}")
        _check_int(self, "stream_number", optional=True)

    def _append(self, root: etree._Element) -> None:
        _sub(root, "RecordCmd", "Record" if self.start else "StopRecord")
        if self.stream_number is not None:
            _sub(root, "StreamNumber", str(self.stream_number))


@dataclass(frozen=True)
class GuardCmd(_Control):
    """``<GuardCmd>SetGuard|ResetGuard</GuardCmd>``: arm or disarm."""

    TAG: ClassVar[str] = "GuardCmd"
    RESPONDS: ClassVar[bool] = True
    arm: bool

    def __post_init__(self) -> None:
        if not isinstance(self.arm, bool):
            raise ControlError(f"GuardCmd.arm must be a bool, got {self.arm!r}")

    def _append(self, root: etree._Element) -> None:
        _sub(root, "GuardCmd", "SetGuard" if self.arm else "ResetGuard")


@dataclass(frozen=True)
class AlarmCmd(_Control):
    """``<AlarmCmd>ResetAlarm</AlarmCmd>`` and the 2022 sibling ``<Info>{AlarmMethod, AlarmType}``.

    Both are kept as digit strings, as in alarm queries (a method may combine digits)."""

    TAG: ClassVar[str] = "AlarmCmd"
    RESPONDS: ClassVar[bool] = True
    alarm_method: str | None = None
    alarm_type: str | None = None

    def __post_init__(self) -> None:
        _check_digits(self, "alarm_method")
        _check_digits(self, "alarm_type")

    def _append(self, root: etree._Element) -> None:
        _sub(root, "AlarmCmd", "ResetAlarm")
        if self.alarm_method is not None or self.alarm_type is not None:
            info = _sub(root, "Info")
            if self.alarm_method is not None:
                _sub(info, "AlarmMethod", self.alarm_method)
            if self.alarm_type is not None:
                _sub(info, "AlarmType", self.alarm_type)


@dataclass(frozen=True)
class IFrameCmd(_Control):
    """``<IFameCmd>Send</IFameCmd>``: force a key frame (2016 spelling sent; ``IFrameCmd`` read too)."""

    TAG: ClassVar[str] = "IFameCmd"

    def _append(self, root: etree._Element) -> None:
        _sub(root, "IFameCmd", "Send")


_RECT_FIELDS = (
    ("length", "Length"),  # play window width, pixels
    ("width", "Width"),  # play window height, pixels
    ("mid_point_x", "MidPointX"),  # centre of the drawn box, origin top-left
    ("mid_point_y", "MidPointY"),
    ("length_x", "LengthX"),  # box width
    ("length_y", "LengthY"),  # box height
)


@dataclass(frozen=True)
class ZoomRect:
    """A box drawn on the play window (DragZoomIn/Out, TargetTrack's TargetArea), in pixels."""

    length: int
    width: int
    mid_point_x: int
    mid_point_y: int
    length_x: int
    length_y: int

    def __post_init__(self) -> None:
        for name, _ in _RECT_FIELDS:
            _check_int(self, name)

    def _fill(self, elem: etree._Element) -> None:
        for name, tag in _RECT_FIELDS:
            _sub(elem, tag, str(getattr(self, name)))


@dataclass(frozen=True)
class DragZoomIn(ZoomRect, _Control):
    """``<DragZoomIn>``: zoom into the drawn box (A.2.3.1)."""

    TAG: ClassVar[str] = "DragZoomIn"

    def _append(self, root: etree._Element) -> None:
        self._fill(_sub(root, self.TAG))


@dataclass(frozen=True)
class DragZoomOut(ZoomRect, _Control):
    """``<DragZoomOut>``: zoom out from the drawn box."""

    TAG: ClassVar[str] = "DragZoomOut"

    def _append(self, root: etree._Element) -> None:
        self._fill(_sub(root, self.TAG))


@dataclass(frozen=True)
class HomePosition(_Control):
    """``<HomePosition>{Enabled 1/0, ResetTime s, PresetIndex 0-255}`` (A.2.3.1)."""

    TAG: ClassVar[str] = "HomePosition"
    RESPONDS: ClassVar[bool] = True
    enabled: bool
    reset_time: int | None = None
    preset_index: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ControlError(f"HomePosition.enabled must be a bool, got {self.enabled!r}")
        _check_int(self, "reset_time", optional=True)
        _check_int(self, "preset_index", 0, 255, optional=True)

    def _append(self, root: etree._Element) -> None:
        elem = _sub(root, "HomePosition")
        _sub(elem, "Enabled", "1" if self.enabled else "0")
        if self.reset_time is not None:
            _sub(elem, "ResetTime", str(self.reset_time))
        if self.preset_index is not None:
            _sub(elem, "PresetIndex", str(self.preset_index))


@dataclass(frozen=True)
class PtzPreciseCtrl(_Control):
    """``<PTZPreciseCtrl>{Pan 0-360, Tilt -30..90, Zoom >= 1}`` (2022), degrees and ratio to 2 decimals.

    Values are rounded to 2 decimals on construction, so what is built is what is read back."""

    TAG: ClassVar[str] = "PTZPreciseCtrl"
    pan: float
    tilt: float
    zoom: float

    _LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "pan": (0.0, 360.0),
        "tilt": (-30.0, 90.0),
        "zoom": (1.0, math.inf),
    }

    def __post_init__(self) -> None:
        for name, (lo, hi) in self._LIMITS.items():
            v = getattr(self, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
                raise ControlError(f"PtzPreciseCtrl.{name} must be a finite number, got {v!r}")
            v = round(float(v), 2) + 0.0  # + 0.0 turns -0.0 into 0.0
            if not lo <= v <= hi:
                raise ControlError(f"PtzPreciseCtrl.{name} {v} out of range {lo}..{hi}")
            object.__setattr__(self, name, v)

    def _append(self, root: etree._Element) -> None:
        elem = _sub(root, "PTZPreciseCtrl")
        for name, tag in (("pan", "Pan"), ("tilt", "Tilt"), ("zoom", "Zoom")):
            _sub(elem, tag, f"{getattr(self, name):.2f}")


@dataclass(frozen=True)
class DeviceUpgrade(_Control):
    """``<DeviceUpgrade>{Firmware, FileURL, Manufacturer, SessionID}`` (2022); SessionID is 32-128 characters.
    The device answers, then reports DeviceUpgradeResult."""

    TAG: ClassVar[str] = "DeviceUpgrade"
    RESPONDS: ClassVar[bool] = True
    firmware: str
    file_url: str
    manufacturer: str
    session_id: str

    def __post_init__(self) -> None:
        for name in ("firmware", "file_url", "manufacturer", "session_id"):
            _check_text(self, name)
        if not 32 <= len(self.session_id) <= 128:
            raise ControlError(f"DeviceUpgrade.session_id must be 32-128 characters, got {len(self.session_id)}")

    def _append(self, root: etree._Element) -> None:
        elem = _sub(root, "DeviceUpgrade")
        _sub(elem, "Firmware", self.firmware)
        _sub(elem, "FileURL", self.file_url)
        _sub(elem, "Manufacturer", self.manufacturer)
        _sub(elem, "SessionID", self.session_id)


@dataclass(frozen=True)
class FormatSDCard(_Control):
    """``<FormatSDCard>index</FormatSDCard>`` (2022): the card to format, 0 = all."""

    TAG: ClassVar[str] = "FormatSDCard"
    index: int = 0

    def __post_init__(self) -> None:
        _check_int(self, "index")

    def _append(self, root: etree._Element) -> None:
        _sub(root, "FormatSDCard", str(self.index))


TrackMode = Literal["Auto", "Manual", "Stop"]
_TRACK_MODES: tuple[TrackMode, ...] = ("Auto", "Manual", "Stop")


@dataclass(frozen=True)
class TargetTrack(_Control):
    """``<TargetTrack>Auto|Manual|Stop</TargetTrack>`` (2022) with the siblings ``<DeviceID2>`` (the panorama
    channel) and ``<TargetArea>`` (the target's box; its children as in DragZoomIn -- not spelled out in the
    spec digest, taken from a published GB/T 28181-2022 implementation)."""

    TAG: ClassVar[str] = "TargetTrack"
    mode: TrackMode
    device_id2: str | None = None
    target_area: ZoomRect | None = None

    def __post_init__(self) -> None:
        if self.mode not in _TRACK_MODES:
            raise ControlError(f"TargetTrack.mode must be one of {', '.join(_TRACK_MODES)}, got {self.mode!r}")
        if self.device_id2 is not None and not (
            isinstance(self.device_id2, str) and self.device_id2.isascii() and self.device_id2.isalnum()
        ):
            raise ControlError(f"TargetTrack.device_id2 must be an alphanumeric ID, got {self.device_id2!r}")
        if self.target_area is not None and type(self.target_area) is not ZoomRect:
            raise ControlError(f"TargetTrack.target_area must be a ZoomRect, not {type(self.target_area).__name__}")

    def _append(self, root: etree._Element) -> None:
        _sub(root, "TargetTrack", self.mode)
        if self.device_id2 is not None:
            _sub(root, "DeviceID2", self.device_id2)
        if self.target_area is not None:
            self.target_area._fill(_sub(root, "TargetArea"))


ControlCommand = (
    PtzCmd
    | TeleBoot
    | RecordCmd
    | GuardCmd
    | AlarmCmd
    | IFrameCmd
    | DragZoomIn
    | DragZoomOut
    | HomePosition
    | PtzPreciseCtrl
    | DeviceUpgrade
    | FormatSDCard
    | TargetTrack
)


# ------------------------------------------------------------------------------------------- parsing


def _children(elem: etree._Element) -> list[etree._Element]:
    return [c for c in elem if isinstance(c.tag, str)]


def _find(parent: etree._Element, tag: str) -> etree._Element | None:
    low = tag.lower()
    for child in _children(parent):
        if etree.QName(child).localname.lower() == low:
            return child
    return None


def _text(elem: etree._Element | None) -> str | None:
    return None if elem is None else (elem.text or "").strip()


def _need(parent: etree._Element, tag: str, where: str) -> str:
    value = _text(_find(parent, tag))
    if not value:
        raise ControlError(f"{where}: missing or empty <{tag}>")
    return value


def _int(text: str, what: str) -> int:
    if not _DIGITS.fullmatch(text) or int(text) > _INT_MAX:
        raise ControlError(f"{what} must be a non-negative integer, got {text[:40]!r}")
    return int(text)


def _opt_int(parent: etree._Element, tag: str, what: str) -> int | None:
    value = _text(_find(parent, tag))
    return None if not value else _int(value, what)


def _opt_str(parent: etree._Element, tag: str) -> str | None:
    return _text(_find(parent, tag)) or None


def _keyword(value: str, allowed: dict[str, object], what: str) -> object:
    for word, meaning in allowed.items():
        if value.lower() == word.lower():
            return meaning
    raise ControlError(f"{what} must be {' or '.join(allowed)}, got {value[:40]!r}")


def _rect(elem: etree._Element, where: str) -> dict[str, int]:
    return {name: _int(_need(elem, tag, where), f"{where}/{tag}") for name, tag in _RECT_FIELDS}


def _decimal(text: str, what: str) -> float:
    if not _DECIMAL.fullmatch(text):
        raise ControlError(f"{what} must be a decimal number, got {text[:40]!r}")
    return float(text)


def _parse_ptz(root: etree._Element, elem: etree._Element) -> PtzCmd:
    try:
        command = decode_ptz(_need(root, "PTZCmd", "DeviceControl"))
    except PtzError as exc:
        raise ControlError(f"PTZCmd: {exc}") from exc
    params = _find(root, "PTZCmdParams")
    info = _find(root, "Info")
    return PtzCmd(
        command,
        preset_name=None if params is None else _opt_str(params, "PresetName"),
        cruise_track_name=None if params is None else _opt_str(params, "CruiseTrackName"),
        priority=None if info is None else _opt_int(info, "ControlPriority", "Info/ControlPriority"),
    )


def _parse_record(root: etree._Element, elem: etree._Element) -> RecordCmd:
    start = _keyword(_need(root, "RecordCmd", "DeviceControl"), {"Record": True, "StopRecord": False}, "RecordCmd")
    return RecordCmd(bool(start), stream_number=_opt_int(root, "StreamNumber", "StreamNumber"))


def _parse_guard(root: etree._Element, elem: etree._Element) -> GuardCmd:
    arm = _keyword(_need(root, "GuardCmd", "DeviceControl"), {"SetGuard": True, "ResetGuard": False}, "GuardCmd")
    return GuardCmd(bool(arm))


def _parse_alarm(root: etree._Element, elem: etree._Element) -> AlarmCmd:
    _keyword(_text(elem) or "", {"ResetAlarm": None}, "AlarmCmd")
    info = _find(root, "Info")
    if info is None:
        return AlarmCmd()
    return AlarmCmd(_opt_str(info, "AlarmMethod"), _opt_str(info, "AlarmType"))


def _parse_fixed(word: str, result: _Control) -> Callable[[etree._Element, etree._Element], _Control]:
    def parse(root: etree._Element, elem: etree._Element) -> _Control:
        _keyword(_text(elem) or "", {word: None}, etree.QName(elem).localname)
        return result

    return parse


def _parse_home(root: etree._Element, elem: etree._Element) -> HomePosition:
    enabled = _keyword(_need(elem, "Enabled", "HomePosition"), {"1": True, "0": False}, "HomePosition/Enabled")
    return HomePosition(
        bool(enabled),
        reset_time=_opt_int(elem, "ResetTime", "HomePosition/ResetTime"),
        preset_index=_opt_int(elem, "PresetIndex", "HomePosition/PresetIndex"),
    )


def _parse_precise(root: etree._Element, elem: etree._Element) -> PtzPreciseCtrl:
    pan, tilt, zoom = (
        _decimal(_need(elem, tag, "PTZPreciseCtrl"), f"PTZPreciseCtrl/{tag}") for tag in ("Pan", "Tilt", "Zoom")
    )
    return PtzPreciseCtrl(pan, tilt, zoom)


def _parse_upgrade(root: etree._Element, elem: etree._Element) -> DeviceUpgrade:
    where = "DeviceUpgrade"
    return DeviceUpgrade(
        _need(elem, "Firmware", where),
        _need(elem, "FileURL", where),
        _need(elem, "Manufacturer", where),
        _need(elem, "SessionID", where),
    )


def _parse_track(root: etree._Element, elem: etree._Element) -> TargetTrack:
    mode = _keyword(_text(elem) or "", {m: m for m in _TRACK_MODES}, "TargetTrack")
    area = _find(root, "TargetArea")
    return TargetTrack(
        mode,  # type: ignore[arg-type]
        device_id2=_opt_str(root, "DeviceID2"),
        target_area=None if area is None or not _children(area) else ZoomRect(**_rect(area, "TargetArea")),
    )


_PARSERS = {
    "ptzcmd": _parse_ptz,
    "teleboot": _parse_fixed("Boot", TeleBoot()),
    "recordcmd": _parse_record,
    "guardcmd": _parse_guard,
    "alarmcmd": _parse_alarm,
    "ifamecmd": _parse_fixed("Send", IFrameCmd()),
    "iframecmd": _parse_fixed("Send", IFrameCmd()),
    "dragzoomin": lambda root, elem: DragZoomIn(**_rect(elem, "DragZoomIn")),
    "dragzoomout": lambda root, elem: DragZoomOut(**_rect(elem, "DragZoomOut")),
    "homeposition": _parse_home,
    "ptzprecisectrl": _parse_precise,
    "deviceupgrade": _parse_upgrade,
    "formatsdcard": lambda root, elem: FormatSDCard(_int(_text(elem) or "", "FormatSDCard")),
    "targettrack": _parse_track,
}
# Elements that travel beside a command and are not commands themselves.
_COMPANIONS = frozenset(
    {"cmdtype", "sn", "deviceid", "extrainfo", "info", "ptzcmdparams", "streamnumber", "deviceid2", "targetarea"}
)


def parse_control(root: etree._Element) -> ControlCommand:
    """A ``<Control><CmdType>DeviceControl</CmdType>…`` element -> the command it carries.

    SN and DeviceID are the envelope's (``gb28181.manscdp.parse_envelope``). Exactly one known command element
    is required; elements that are neither commands nor their companions are ignored."""
    if not isinstance(root.tag, str) or etree.QName(root).localname != "Control":
        raise ControlError(f"root element must be <Control>, got <{root.tag}>")
    cmd_type = _text(_find(root, "CmdType"))
    if (cmd_type or "").lower() != "devicecontrol":
        raise ControlError(f"CmdType must be DeviceControl, got {cmd_type!r}")
    found: list[etree._Element] = []
    unknown: list[str] = []
    for child in _children(root):
        name = etree.QName(child).localname
        if name.lower() in _PARSERS:
            found.append(child)
        elif name.lower() not in _COMPANIONS:
            unknown.append(name)
    if not found:
        detail = f"; unknown: {', '.join(unknown)}" if unknown else ""
        raise ControlError(f"DeviceControl carries no known command element{detail}")
    if len(found) > 1:
        names = ", ".join(etree.QName(e).localname for e in found)
        raise ControlError(f"DeviceControl carries several commands ({names}); expected one")
    elem = found[0]
    try:
        return _PARSERS[etree.QName(elem).localname.lower()](root, elem)
    except ControlError:
        raise
    except ValueError as exc:  # a value the dataclass refused
        raise ControlError(f"{etree.QName(elem).localname}: {exc}") from exc


def parse_control_body(body: bytes) -> ControlCommand:
    """Body bytes -> command: charset detection and the hardened parser of ``gb28181.manscdp``, then
    ``parse_control``. Raises ``ManscdpError`` for XML that cannot be read, ``ControlError`` for the rest."""
    text, _ = decode(body)
    try:
        root = etree.fromstring(text.strip(), _PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise ManscdpError(f"not well-formed XML: {exc}", body[:2000]) from exc
    if root is None:
        raise ManscdpError("empty document", body[:2000])
    return parse_control(root)
