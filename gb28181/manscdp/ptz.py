"""PTZCmd: the 8-byte front-end control command (GB/T 28181-2022 Appendix A.3), written as 16 hex characters.

Byte layout (A.3.1): ``A5 0F <addr low> <instruction> <data 1> <data 2> <data 3 high nibble | addr high nibble>
<checksum>``; byte 2 is version 0 ("1.0") in its high nibble and (0xA + 0x5 + version) % 16 = 0xF in its low nibble,
the checksum is the sum of bytes 1-7 modulo 256. Instruction families (byte 4): PTZ 00-3F (A.3.2), FI 40-4F (A.3.3),
preset 81-83 (A.3.4), cruise 84-88 (A.3.5), scan 89-8A (A.3.6), auxiliary switch 8C-8D (A.3.7).

``decode`` is strict about framing (length, hex, header, checksum) and about meaning (unknown instruction,
contradictory direction bits, preset 0); bytes the standard reserves (data 1 of a preset command, which wvp sets to
01; data 3 outside the PTZ and 12-bit value commands) are ignored, so ``decode(encode(c)) == c`` holds for every
valid command while ``encode(decode(s))`` may differ from ``s`` only in those reserved bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from enum import StrEnum

__all__ = [
    "DEFAULT_SPEED",
    "FI_STOP",
    "STOP",
    "VERBS",
    "PtzCommand",
    "PtzError",
    "PtzOp",
    "decode",
    "from_verb",
    "preset_delete",
    "preset_goto",
    "preset_set",
    "stop_for",
]

HEADER = 0xA5  # byte 1 (A.3.1)
VERSION_CHECK = 0x0F  # byte 2: version 0 in the high nibble, (0xA + 0x5 + 0) % 16 in the low nibble
DEFAULT_SPEED = 0x80

_HEX16 = re.compile(r"[0-9A-Fa-f]{16}")


class PtzError(ValueError):
    """A PTZCmd that is not 8 well-formed bytes, or a command whose values the standard does not allow."""


class PtzOp(StrEnum):
    MOVE = "move"  # 00-3F: pan/tilt/zoom bits, 00 = stop (A.3.2)
    FOCUS_IRIS = "focus_iris"  # 40-4F: focus/iris bits, 40 = stop (A.3.3)
    PRESET_SET = "preset_set"  # 81 (A.3.4)
    PRESET_GOTO = "preset_goto"  # 82
    PRESET_DELETE = "preset_delete"  # 83
    CRUISE_ADD = "cruise_add"  # 84: add a preset to a cruise group (A.3.5)
    CRUISE_DELETE = "cruise_delete"  # 85: remove a preset; preset 0 = the whole cruise
    CRUISE_SPEED = "cruise_speed"  # 86: 12-bit value
    CRUISE_DWELL = "cruise_dwell"  # 87: 12-bit dwell time, seconds
    CRUISE_START = "cruise_start"  # 88 (stop = MOVE stop)
    SCAN_START = "scan_start"  # 89, data 2 = 00 (A.3.6; stop = MOVE stop)
    SCAN_SET_LEFT = "scan_set_left"  # 89, data 2 = 01
    SCAN_SET_RIGHT = "scan_set_right"  # 89, data 2 = 02
    SCAN_SPEED = "scan_speed"  # 8A: 12-bit value
    AUX_ON = "aux_on"  # 8C: auxiliary switch on, switch 1 = wiper (A.3.7)
    AUX_OFF = "aux_off"  # 8D


_CODES: dict[PtzOp, int] = {
    PtzOp.PRESET_SET: 0x81,
    PtzOp.PRESET_GOTO: 0x82,
    PtzOp.PRESET_DELETE: 0x83,
    PtzOp.CRUISE_ADD: 0x84,
    PtzOp.CRUISE_DELETE: 0x85,
    PtzOp.CRUISE_SPEED: 0x86,
    PtzOp.CRUISE_DWELL: 0x87,
    PtzOp.CRUISE_START: 0x88,
    PtzOp.SCAN_START: 0x89,
    PtzOp.SCAN_SET_LEFT: 0x89,
    PtzOp.SCAN_SET_RIGHT: 0x89,
    PtzOp.SCAN_SPEED: 0x8A,
    PtzOp.AUX_ON: 0x8C,
    PtzOp.AUX_OFF: 0x8D,
}
_SCAN_ACTIONS = {PtzOp.SCAN_START: 0x00, PtzOp.SCAN_SET_LEFT: 0x01, PtzOp.SCAN_SET_RIGHT: 0x02}

# Which fields carry meaning for each op; every other field must keep its default 0.
_MEANINGFUL: dict[PtzOp, frozenset[str]] = {
    PtzOp.MOVE: frozenset({"pan", "tilt", "zoom", "pan_speed", "tilt_speed", "zoom_speed"}),
    PtzOp.FOCUS_IRIS: frozenset({"focus", "iris", "focus_speed", "iris_speed"}),
    PtzOp.PRESET_SET: frozenset({"preset"}),
    PtzOp.PRESET_GOTO: frozenset({"preset"}),
    PtzOp.PRESET_DELETE: frozenset({"preset"}),
    PtzOp.CRUISE_ADD: frozenset({"group", "preset"}),
    PtzOp.CRUISE_DELETE: frozenset({"group", "preset"}),
    PtzOp.CRUISE_SPEED: frozenset({"group", "value"}),
    PtzOp.CRUISE_DWELL: frozenset({"group", "value"}),
    PtzOp.CRUISE_START: frozenset({"group"}),
    PtzOp.SCAN_START: frozenset({"group"}),
    PtzOp.SCAN_SET_LEFT: frozenset({"group"}),
    PtzOp.SCAN_SET_RIGHT: frozenset({"group"}),
    PtzOp.SCAN_SPEED: frozenset({"group", "value"}),
    PtzOp.AUX_ON: frozenset({"switch"}),
    PtzOp.AUX_OFF: frozenset({"switch"}),
}
_RANGES: dict[str, tuple[int, int]] = {
    "pan": (-1, 1),
    "tilt": (-1, 1),
    "zoom": (-1, 1),
    "focus": (-1, 1),
    "iris": (-1, 1),
    "pan_speed": (0, 0xFF),
    "tilt_speed": (0, 0xFF),
    "zoom_speed": (0, 0xF),
    "focus_speed": (0, 0xFF),
    "iris_speed": (0, 0xFF),
    "preset": (0, 0xFF),
    "group": (0, 0xFF),
    "value": (0, 0xFFF),
    "switch": (0, 0xFF),
    "address": (0, 0xFFF),
}
_PRESET_REQUIRED = frozenset({PtzOp.PRESET_SET, PtzOp.PRESET_GOTO, PtzOp.PRESET_DELETE, PtzOp.CRUISE_ADD})


@dataclass(frozen=True, slots=True, repr=False)
class PtzCommand:
    """One PTZCmd. The default value is the PTZ stop (``A50F0100000000B5``).

    Directions are -1/0/+1: ``pan`` left/right, ``tilt`` down/up, ``zoom`` out (wide)/in (tele), ``focus``
    near/far, ``iris`` close/open. ``preset`` is 1-255 (0 only for CRUISE_DELETE = the whole cruise), ``group`` a
    cruise or scan group, ``value`` the 12-bit cruise speed, dwell time or scan speed, ``switch`` an auxiliary
    switch, ``address`` the 12-bit front-end address (01 in practice: GB addresses by the XML DeviceID).
    """

    op: PtzOp = PtzOp.MOVE
    pan: int = 0
    tilt: int = 0
    zoom: int = 0
    pan_speed: int = 0
    tilt_speed: int = 0
    zoom_speed: int = 0
    focus: int = 0
    iris: int = 0
    focus_speed: int = 0
    iris_speed: int = 0
    preset: int = 0
    group: int = 0
    value: int = 0
    switch: int = 0
    address: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.op, PtzOp):
            try:
                object.__setattr__(self, "op", PtzOp(self.op))
            except ValueError:
                raise PtzError(f"unknown PTZ op {self.op!r}") from None
        meaningful = _MEANINGFUL[self.op]
        for f in fields(self):
            if f.name == "op":
                continue
            v = getattr(self, f.name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise PtzError(f"{f.name} must be an int, not {type(v).__name__}")
            lo, hi = _RANGES[f.name]
            if not lo <= v <= hi:
                raise PtzError(f"{f.name} {v} out of range {lo}..{hi}")
            if v and f.name != "address" and f.name not in meaningful:
                raise PtzError(f"{f.name} has no meaning for {self.op.value}")
        if self.op in _PRESET_REQUIRED and self.preset == 0:
            raise PtzError("preset 0 is reserved; presets are 1-255 (A.3.4)")

    def __repr__(self) -> str:  # only what differs from the defaults, plus the wire form
        parts = [
            f"{f.name}={v}"
            for f in fields(self)
            if f.name != "op" and (v := getattr(self, f.name)) != (1 if f.name == "address" else 0)
        ]
        return f"PtzCommand({self.op.value}{''.join(', ' + p for p in parts)}; {self.encode()})"

    @property
    def is_stop(self) -> bool:
        """PTZ stop (00) or FI stop (40): no direction bit set."""
        if self.op is PtzOp.MOVE:
            return not (self.pan or self.tilt or self.zoom)
        return self.op is PtzOp.FOCUS_IRIS and not (self.focus or self.iris)

    def to_bytes(self) -> bytes:
        code, d1, d2, d3 = self._fields()
        b = [HEADER, VERSION_CHECK, self.address & 0xFF, code, d1, d2, (d3 << 4) | (self.address >> 8)]
        return bytes([*b, sum(b) % 256])

    def encode(self) -> str:
        """16 upper-case hex characters, as sent in ``<PTZCmd>``."""
        return self.to_bytes().hex().upper()

    def _fields(self) -> tuple[int, int, int, int]:
        """(instruction code, data 1, data 2, data 3 nibble)."""
        op = self.op
        if op is PtzOp.MOVE:
            # A.3.2: bit5 zoom out, bit4 zoom in, bit3 up, bit2 down, bit1 left, bit0 right
            code = (
                (0x01 if self.pan > 0 else 0x02 if self.pan < 0 else 0)
                | (0x08 if self.tilt > 0 else 0x04 if self.tilt < 0 else 0)
                | (0x10 if self.zoom > 0 else 0x20 if self.zoom < 0 else 0)
            )
            return code, self.pan_speed, self.tilt_speed, self.zoom_speed
        if op is PtzOp.FOCUS_IRIS:
            # A.3.3: 0100 + bit3 iris close, bit2 iris open, bit1 focus near, bit0 focus far
            code = (
                0x40
                | (0x01 if self.focus > 0 else 0x02 if self.focus < 0 else 0)
                | (0x04 if self.iris > 0 else 0x08 if self.iris < 0 else 0)
            )
            return code, self.focus_speed, self.iris_speed, 0
        code = _CODES[op]
        if op in (PtzOp.PRESET_SET, PtzOp.PRESET_GOTO, PtzOp.PRESET_DELETE):
            return code, 0, self.preset, 0  # data 1 = 00 per A.3.4
        if op in (PtzOp.CRUISE_ADD, PtzOp.CRUISE_DELETE):
            return code, self.group, self.preset, 0
        if op in (PtzOp.CRUISE_SPEED, PtzOp.CRUISE_DWELL, PtzOp.SCAN_SPEED):
            return code, self.group, self.value & 0xFF, self.value >> 8  # low 8 bits in data 2, high 4 in data 3
        if op is PtzOp.CRUISE_START:
            return code, self.group, 0, 0
        if op in _SCAN_ACTIONS:
            return code, self.group, _SCAN_ACTIONS[op], 0
        return code, self.switch, 0, 0  # AUX_ON / AUX_OFF


def decode(text: str) -> PtzCommand:
    """16 hex characters (either case) -> PtzCommand; PtzError on anything else (see the module docstring)."""
    if not isinstance(text, str):
        raise PtzError(f"PTZCmd must be text, not {type(text).__name__}")
    if len(text) != 16:
        raise PtzError(f"PTZCmd must be 16 hex characters, got {len(text)}: {text[:40]!r}")
    if not _HEX16.fullmatch(text):
        raise PtzError(f"PTZCmd is not hexadecimal: {text!r}")
    b = bytes.fromhex(text)
    if b[0] != HEADER:
        raise PtzError(f"PTZCmd byte 1 must be A5, got {b[0]:02X}")
    if b[1] != VERSION_CHECK:
        raise PtzError(f"PTZCmd byte 2 must be 0F (version 1.0 and its check nibble), got {b[1]:02X}")
    if (expected := sum(b[:7]) % 256) != b[7]:
        raise PtzError(f"PTZCmd checksum is {b[7]:02X}, expected {expected:02X}")
    code, d1, d2, d3 = b[3], b[4], b[5], b[6] >> 4
    address = b[2] | (b[6] & 0x0F) << 8
    if code <= 0x3F:
        return PtzCommand(
            PtzOp.MOVE,
            pan=_pair(code, 0x01, 0x02, "right and left"),
            tilt=_pair(code, 0x08, 0x04, "up and down"),
            zoom=_pair(code, 0x10, 0x20, "zoom in and zoom out"),
            pan_speed=d1,
            tilt_speed=d2,
            zoom_speed=d3,
            address=address,
        )
    if code <= 0x4F:
        return PtzCommand(
            PtzOp.FOCUS_IRIS,
            focus=_pair(code, 0x01, 0x02, "focus far and focus near"),
            iris=_pair(code, 0x04, 0x08, "iris open and iris close"),
            focus_speed=d1,
            iris_speed=d2,
            address=address,
        )
    if code in (0x81, 0x82, 0x83):
        op = (PtzOp.PRESET_SET, PtzOp.PRESET_GOTO, PtzOp.PRESET_DELETE)[code - 0x81]
        return _build(op, preset=d2, address=address)
    if code in (0x84, 0x85):
        op = PtzOp.CRUISE_ADD if code == 0x84 else PtzOp.CRUISE_DELETE
        return _build(op, group=d1, preset=d2, address=address)
    if code in (0x86, 0x87, 0x8A):
        op = {0x86: PtzOp.CRUISE_SPEED, 0x87: PtzOp.CRUISE_DWELL, 0x8A: PtzOp.SCAN_SPEED}[code]
        return PtzCommand(op, group=d1, value=d2 | d3 << 8, address=address)
    if code == 0x88:
        return PtzCommand(PtzOp.CRUISE_START, group=d1, address=address)
    if code == 0x89:
        for op, action in _SCAN_ACTIONS.items():
            if d2 == action:
                return PtzCommand(op, group=d1, address=address)
        raise PtzError(f"PTZCmd scan (89) data 2 must be 00, 01 or 02, got {d2:02X}")
    if code in (0x8C, 0x8D):
        return PtzCommand(PtzOp.AUX_ON if code == 0x8C else PtzOp.AUX_OFF, switch=d1, address=address)
    raise PtzError(f"PTZCmd instruction code {code:02X} is not defined by GB/T 28181 A.3")


def _pair(code: int, plus: int, minus: int, names: str) -> int:
    if code & plus and code & minus:
        raise PtzError(f"PTZCmd instruction {code:02X} sets both {names}")
    return 1 if code & plus else -1 if code & minus else 0


def _build(op: PtzOp, **kw: int) -> PtzCommand:
    try:
        return PtzCommand(op, **kw)
    except PtzError as exc:
        raise PtzError(f"PTZCmd {op.value}: {exc}") from None


# ------------------------------------------------------------------------------------------- constructors

STOP = PtzCommand()  # A50F0100000000B5: stops pan, tilt and zoom (and, on most devices, everything)
FI_STOP = PtzCommand(PtzOp.FOCUS_IRIS)  # A50F0140000000F5: the FI family's own stop (A.3.3)

# CLI verb -> (op, pan, tilt, zoom, focus, iris)
_VERBS: dict[str, tuple[PtzOp, int, int, int, int, int]] = {
    "left": (PtzOp.MOVE, -1, 0, 0, 0, 0),
    "right": (PtzOp.MOVE, 1, 0, 0, 0, 0),
    "up": (PtzOp.MOVE, 0, 1, 0, 0, 0),
    "down": (PtzOp.MOVE, 0, -1, 0, 0, 0),
    "zoom-in": (PtzOp.MOVE, 0, 0, 1, 0, 0),
    "zoom-out": (PtzOp.MOVE, 0, 0, -1, 0, 0),
    "focus-near": (PtzOp.FOCUS_IRIS, 0, 0, 0, -1, 0),
    "focus-far": (PtzOp.FOCUS_IRIS, 0, 0, 0, 1, 0),
    "iris-open": (PtzOp.FOCUS_IRIS, 0, 0, 0, 0, 1),
    "iris-close": (PtzOp.FOCUS_IRIS, 0, 0, 0, 0, -1),
    "stop": (PtzOp.MOVE, 0, 0, 0, 0, 0),
}
VERBS: tuple[str, ...] = tuple(_VERBS)


def from_verb(verb: str, speed: int = DEFAULT_SPEED) -> PtzCommand:
    """The command for a CLI verb at ``speed`` 0-255 on one scale for every verb.

    Pan/tilt verbs put the speed in both data 1 and data 2 (as wvp does, the §7.5 example); zoom verbs use its
    high nibble as the 4-bit zoom speed (as wvp and m7s do), at least 1 when speed > 0; focus/iris verbs put it in
    the focus or iris speed byte. ``stop`` ignores the speed and gives STOP.
    """
    if verb not in _VERBS:
        raise PtzError(f"unknown PTZ verb {verb!r}; expected one of {', '.join(VERBS)}")
    if not isinstance(speed, int) or isinstance(speed, bool) or not 0 <= speed <= 0xFF:
        raise PtzError(f"speed must be 0-255, got {speed!r}")
    op, pan, tilt, zoom, focus, iris = _VERBS[verb]
    if verb == "stop":
        return STOP
    if op is PtzOp.FOCUS_IRIS:
        return PtzCommand(
            op, focus=focus, iris=iris, focus_speed=speed if focus else 0, iris_speed=speed if iris else 0
        )
    if zoom:
        return PtzCommand(op, zoom=zoom, zoom_speed=max(1, speed >> 4) if speed else 0)
    return PtzCommand(op, pan=pan, tilt=tilt, pan_speed=speed, tilt_speed=speed)


def stop_for(verb: str) -> PtzCommand:
    """The stop that ends a verb's motion: FI_STOP after focus/iris verbs, STOP otherwise."""
    if verb not in _VERBS:
        raise PtzError(f"unknown PTZ verb {verb!r}; expected one of {', '.join(VERBS)}")
    return FI_STOP if _VERBS[verb][0] is PtzOp.FOCUS_IRIS else STOP


def preset_set(number: int) -> PtzCommand:
    return PtzCommand(PtzOp.PRESET_SET, preset=number)


def preset_goto(number: int) -> PtzCommand:
    return PtzCommand(PtzOp.PRESET_GOTO, preset=number)


def preset_delete(number: int) -> PtzCommand:
    return PtzCommand(PtzOp.PRESET_DELETE, preset=number)
