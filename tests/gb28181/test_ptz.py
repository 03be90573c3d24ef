"""PTZCmd codec (gb28181/manscdp/ptz.py, GB/T 28181-2022 A.3): spec vectors, derived vectors, strict decoding."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gb28181.manscdp.ptz import (
    FI_STOP,
    STOP,
    VERBS,
    PtzCommand,
    PtzError,
    PtzOp,
    decode,
    from_verb,
    preset_delete,
    preset_goto,
    preset_set,
    stop_for,
)

M = PtzOp.MOVE


def reference(code: int, d1: int = 0, d2: int = 0, d3: int = 0, addr: int = 1) -> str:
    """The encoder sketched in the spec digest §8, an independent oracle for the derived vectors."""
    b = [0xA5, 0x0F, addr & 0xFF, code & 0xFF, d1 & 0xFF, d2 & 0xFF, ((d3 & 0xF) << 4) | ((addr >> 8) & 0xF)]
    return bytes([*b, sum(b) % 256]).hex().upper()


# Every vector the spec digest lists: §0 item 8, the §7.5 DeviceControl example, the §8 worked examples.
SPEC_VECTORS: list[tuple[str, PtzCommand]] = [
    ("A50F0100000000B5", PtzCommand()),  # §0.8 / §8 stop: A5+0F+01 = B5
    ("A50F01098040007E", PtzCommand(M, pan=1, tilt=1, pan_speed=0x80, tilt_speed=0x40)),  # §8 right+up
    ("A50F011000005015", PtzCommand(M, zoom=1, zoom_speed=5)),  # §8 zoom in, speed 5
    ("A50F0129804050EE", PtzCommand(M, pan=1, tilt=1, zoom=-1, pan_speed=0x80, tilt_speed=0x40, zoom_speed=5)),
    ("A50F01820003003A", PtzCommand(PtzOp.PRESET_GOTO, preset=3)),  # §8 call preset 3
    ("A50F018C01000042", PtzCommand(PtzOp.AUX_ON, switch=1)),  # §8 wiper on
    ("A50F0101808000B6", PtzCommand(M, pan=1, pan_speed=0x80, tilt_speed=0x80)),  # §7.5 right, wvp speeds
]

# Derived by hand from the §8 tables; checksum = (b1+...+b7) % 256.
DERIVED: list[tuple[str, PtzCommand, str]] = [
    ("A50F0140000000F5", FI_STOP, "A5+0F+01+40 = 0xF5"),
    ("A50F014280000077", PtzCommand(PtzOp.FOCUS_IRIS, focus=-1, focus_speed=0x80), "165+15+1+66+128 = 375 -> 0x77"),
    ("A50F014180000076", PtzCommand(PtzOp.FOCUS_IRIS, focus=1, focus_speed=0x80), "374 -> 0x76"),
    ("A50F014400800079", PtzCommand(PtzOp.FOCUS_IRIS, iris=1, iris_speed=0x80), "377 -> 0x79"),
    ("A50F01480080007D", PtzCommand(PtzOp.FOCUS_IRIS, iris=-1, iris_speed=0x80), "381 -> 0x7D"),
    ("A50F018100010037", preset_set(1), "165+15+1+129+1 = 311 -> 0x37"),
    ("A50F018300FF0037", preset_delete(255), "165+15+1+131+255 = 567 -> 0x37"),
    ("A50F01840102003C", PtzCommand(PtzOp.CRUISE_ADD, group=1, preset=2), "165+15+1+132+1+2 = 316 -> 0x3C"),
    ("A50F01850200003C", PtzCommand(PtzOp.CRUISE_DELETE, group=2), "preset 00 = whole cruise; 316 -> 0x3C"),
    ("A50F01860123106F", PtzCommand(PtzOp.CRUISE_SPEED, group=1, value=0x123), "23 low, 1 high: 367 -> 0x6F"),
    ("A50F018701050042", PtzCommand(PtzOp.CRUISE_DWELL, group=1, value=5), "165+15+1+135+1+5 = 322 -> 0x42"),
    ("A50F01880100003E", PtzCommand(PtzOp.CRUISE_START, group=1), "318 -> 0x3E"),
    ("A50F018902000040", PtzCommand(PtzOp.SCAN_START, group=2), "320 -> 0x40"),
    ("A50F018902010041", PtzCommand(PtzOp.SCAN_SET_LEFT, group=2), "321 -> 0x41"),
    ("A50F018902020042", PtzCommand(PtzOp.SCAN_SET_RIGHT, group=2), "322 -> 0x42"),
    ("A50F018A01FFF02F", PtzCommand(PtzOp.SCAN_SPEED, group=1, value=0xFFF), "12-bit max: 815 -> 0x2F"),
    ("A50F018D01000043", PtzCommand(PtzOp.AUX_OFF, switch=1), "wiper off: 323 -> 0x43"),
    ("A50F2300000001D8", PtzCommand(address=0x123), "address 0x123: low 23 in b3, high 1 in b7 low nibble"),
]


@pytest.mark.parametrize(("text", "command"), SPEC_VECTORS, ids=[v[0] for v in SPEC_VECTORS])
def test_spec_vectors(text: str, command: PtzCommand) -> None:
    assert decode(text) == command
    assert command.encode() == text
    assert decode(text.lower()) == command  # lower-case hex is accepted


@pytest.mark.parametrize(("text", "command", "math"), DERIVED, ids=[v[0] for v in DERIVED])
def test_derived_vectors(text: str, command: PtzCommand, math: str) -> None:
    assert command.encode() == text
    assert decode(text) == command


def test_derived_vectors_agree_with_the_digest_encoder() -> None:
    b = [bytes.fromhex(text) for text, _, _ in DERIVED]
    for raw, (text, _, _) in zip(b, DERIVED, strict=True):
        assert reference(raw[3], raw[4], raw[5], raw[6] >> 4, raw[2] | (raw[6] & 0xF) << 8) == text


def test_to_bytes_and_stop() -> None:
    assert STOP.to_bytes() == bytes.fromhex("A50F0100000000B5")
    assert STOP.is_stop and FI_STOP.is_stop
    assert not from_verb("left").is_stop and not preset_goto(1).is_stop


def test_wvp_preset_with_data1_01_is_tolerated() -> None:
    # wvp sends byte 5 = 01 for presets (the standard says 00): read it, re-encode the standard form
    cmd = decode("A50F01820103003B")
    assert cmd == preset_goto(3)
    assert cmd.encode() == "A50F01820003003A"


def test_reserved_data3_ignored_outside_ptz_and_values() -> None:
    # FI with data 3 nibble set (reserved): meaning kept, nibble dropped on re-encoding
    assert decode(reference(0x41, 0x10, 0, 0x7)) == PtzCommand(PtzOp.FOCUS_IRIS, focus=1, focus_speed=0x10)


BAD: list[tuple[object, str]] = [
    ("A50F0100000000B", "16 hex characters, got 15"),
    ("A50F0100000000B500", "got 18"),
    ("", "got 0"),
    ("A50F0100000000BG", "not hexadecimal"),
    ("A50F01 0000000B5", "not hexadecimal"),
    ("0xA50F01000000B5", "not hexadecimal"),
    ("A50F０100000000B5", "not hexadecimal"),  # a full-width digit, still 16 characters
    ("A40F0100000000B4", "byte 1 must be A5"),
    ("A51F0100000000C5", "byte 2 must be 0F"),
    ("A50F0100000000B6", "checksum is B6, expected B5"),
    (reference(0x03, 1, 1), "right and left"),
    (reference(0x0C, 1, 1), "up and down"),
    (reference(0x30), "zoom in and zoom out"),
    (reference(0x43), "focus far and focus near"),
    (reference(0x4C), "iris open and iris close"),
    (reference(0x82, 0, 0), "preset 0 is reserved"),
    (reference(0x81, 0, 0), "preset 0 is reserved"),
    (reference(0x84, 1, 0), "preset 0 is reserved"),
    (reference(0x89, 1, 3), "scan (89) data 2 must be 00, 01 or 02"),
    (reference(0x50), "instruction code 50 is not defined"),
    (reference(0x80), "instruction code 80 is not defined"),
    (reference(0x8B), "instruction code 8B is not defined"),
    (reference(0x8E), "instruction code 8E is not defined"),
    (reference(0xFF), "instruction code FF is not defined"),
    (b"A50F0100000000B5", "must be text"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_decode_rejects(text: str, message: str) -> None:
    with pytest.raises(PtzError, match=re.escape(message)):
        decode(text)


def test_ptz_error_is_a_value_error() -> None:
    assert issubclass(PtzError, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pan": 2}, "pan 2 out of range -1..1"),
        ({"tilt": -2}, "tilt -2 out of range"),
        ({"pan_speed": 256}, "pan_speed 256 out of range 0..255"),
        ({"zoom_speed": 16}, "zoom_speed 16 out of range 0..15"),
        ({"pan": True}, "pan must be an int"),
        ({"focus": 1}, "focus has no meaning for move"),
        ({"op": PtzOp.FOCUS_IRIS, "pan": 1}, "pan has no meaning for focus_iris"),
        ({"op": PtzOp.PRESET_GOTO}, "preset 0 is reserved"),
        ({"op": PtzOp.PRESET_SET, "preset": 256}, "preset 256 out of range"),
        ({"op": PtzOp.CRUISE_SPEED, "value": 4096}, "value 4096 out of range 0..4095"),
        ({"op": PtzOp.AUX_ON, "switch": 1, "group": 1}, "group has no meaning for aux_on"),
        ({"address": 4096}, "address 4096 out of range"),
        ({"op": "jump"}, "unknown PTZ op 'jump'"),
    ],
)
def test_construction_rejects(kwargs: dict, message: str) -> None:
    with pytest.raises(PtzError, match=re.escape(message)):
        PtzCommand(**kwargs)


def test_op_given_as_text_is_converted() -> None:
    assert PtzCommand("preset_goto", preset=3) == preset_goto(3)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- CLI verbs

VERB_VECTORS = {
    "left": "A50F0102808000B7",  # 02: bit1 left; 165+15+1+2+128+128 = 439 -> 0xB7
    "right": "A50F0101808000B6",  # the §7.5 example
    "up": "A50F0108808000BD",  # 445 -> 0xBD
    "down": "A50F0104808000B9",  # 441 -> 0xB9
    "zoom-in": "A50F011000008045",  # zoom speed = high nibble of 0x80 = 8; 325 -> 0x45
    "zoom-out": "A50F012000008055",  # 341 -> 0x55
    "focus-near": "A50F014280000077",
    "focus-far": "A50F014180000076",
    "iris-open": "A50F014400800079",
    "iris-close": "A50F01480080007D",
    "stop": "A50F0100000000B5",
}


def test_every_verb_has_a_vector() -> None:
    assert set(VERBS) == set(VERB_VECTORS)


@pytest.mark.parametrize("verb", sorted(VERB_VECTORS))
def test_from_verb(verb: str) -> None:
    assert from_verb(verb, 0x80).encode() == VERB_VECTORS[verb]


def test_from_verb_speeds() -> None:
    assert from_verb("zoom-in", 10).zoom_speed == 1  # a non-zero speed never becomes "no zoom speed"
    assert from_verb("zoom-in", 0).zoom_speed == 0
    assert from_verb("zoom-out", 255).zoom_speed == 15
    assert from_verb("left", 7) == PtzCommand(M, pan=-1, pan_speed=7, tilt_speed=7)
    assert from_verb("stop", 200) == STOP
    assert from_verb("iris-close", 3) == PtzCommand(PtzOp.FOCUS_IRIS, iris=-1, iris_speed=3)


@pytest.mark.parametrize(
    ("verb", "speed", "message"),
    [("spin", 1, "unknown PTZ verb 'spin'"), ("left", 256, "speed must be 0-255"), ("left", -1, "speed must be")],
)
def test_from_verb_rejects(verb: str, speed: int, message: str) -> None:
    with pytest.raises(PtzError, match=re.escape(message)):
        from_verb(verb, speed)


def test_stop_for() -> None:
    assert stop_for("focus-near") == FI_STOP and stop_for("iris-open") == FI_STOP
    assert stop_for("left") == STOP and stop_for("zoom-in") == STOP and stop_for("stop") == STOP
    with pytest.raises(PtzError):
        stop_for("spin")


def test_preset_helpers() -> None:
    assert preset_set(5) == PtzCommand(PtzOp.PRESET_SET, preset=5)
    with pytest.raises(PtzError, match="preset 0 is reserved"):
        preset_delete(0)


# ------------------------------------------------------------------------------------------- properties

_b = st.integers(0, 0xFF)
_dir = st.integers(-1, 1)
_addr = st.integers(0, 0xFFF)
_PER_OP = {
    PtzOp.MOVE: {
        "pan": _dir,
        "tilt": _dir,
        "zoom": _dir,
        "pan_speed": _b,
        "tilt_speed": _b,
        "zoom_speed": st.integers(0, 15),
    },
    PtzOp.FOCUS_IRIS: {"focus": _dir, "iris": _dir, "focus_speed": _b, "iris_speed": _b},
    PtzOp.PRESET_SET: {"preset": st.integers(1, 255)},
    PtzOp.PRESET_GOTO: {"preset": st.integers(1, 255)},
    PtzOp.PRESET_DELETE: {"preset": st.integers(1, 255)},
    PtzOp.CRUISE_ADD: {"group": _b, "preset": st.integers(1, 255)},
    PtzOp.CRUISE_DELETE: {"group": _b, "preset": _b},
    PtzOp.CRUISE_SPEED: {"group": _b, "value": st.integers(0, 0xFFF)},
    PtzOp.CRUISE_DWELL: {"group": _b, "value": st.integers(0, 0xFFF)},
    PtzOp.CRUISE_START: {"group": _b},
    PtzOp.SCAN_START: {"group": _b},
    PtzOp.SCAN_SET_LEFT: {"group": _b},
    PtzOp.SCAN_SET_RIGHT: {"group": _b},
    PtzOp.SCAN_SPEED: {"group": _b, "value": st.integers(0, 0xFFF)},
    PtzOp.AUX_ON: {"switch": _b},
    PtzOp.AUX_OFF: {"switch": _b},
}
commands = st.one_of(
    *(st.builds(PtzCommand, op=st.just(op), address=_addr, **kw) for op, kw in _PER_OP.items())  # type: ignore[arg-type]
)


def test_strategy_covers_every_op() -> None:
    assert set(_PER_OP) == set(PtzOp)


@settings(deadline=None, max_examples=400)
@given(commands)
def test_round_trip(command: PtzCommand) -> None:
    text = command.encode()
    assert re.fullmatch(r"[0-9A-F]{16}", text)
    assert decode(text) == command
    assert decode(text.lower()) == command


@settings(deadline=None, max_examples=400)
@given(st.binary(min_size=5, max_size=5))
def test_any_well_framed_command_decodes_or_fails_cleanly(payload: bytes) -> None:
    b = bytes([0xA5, 0x0F]) + payload
    text = (b + bytes([sum(b) % 256])).hex()
    try:
        command = decode(text)
    except PtzError:
        return
    assert decode(command.encode()) == command


@settings(deadline=None, max_examples=300)
@given(st.text(max_size=20) | st.text(alphabet="0123456789abcdefABCDEF", min_size=16, max_size=16))
def test_arbitrary_text_never_escapes_as_another_error(text: str) -> None:
    try:
        decode(text)
    except PtzError:
        pass
