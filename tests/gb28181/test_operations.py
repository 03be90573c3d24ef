"""Operator actions (gb28181/operations.py): addressing, PTZ plans and bodies, presets; no sockets, no clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from gb28181.manscdp.codec import decode
from gb28181.manscdp.control import parse_control_body
from gb28181.manscdp.messages import PresetQuery, PresetResponse
from gb28181.operations import (
    OperationError,
    Target,
    guard_command,
    preset_command,
    preset_query,
    presets_json,
    ptz_plan,
    reboot_command,
    record_command,
    resolve,
    responds,
)

NVR = "34020000001110000001"
IPC = "34020000001320000001"
CH1 = "34020000001310000001"
WILD = Path(__file__).resolve().parents[2] / "fixtures" / "sip" / "wild" / "hikvision"


def status(table: dict[str, str]):  # type: ignore[no-untyped-def]
    return table.get


def test_a_channel_goes_through_its_device_with_the_channel_as_deviceid() -> None:
    assert resolve(CH1, status({NVR: "online"}), [NVR]) == Target(NVR, CH1)
    assert resolve(CH1, status({NVR: "online"}), [NVR]).is_channel


def test_a_registered_device_addresses_itself() -> None:
    target = resolve(IPC, status({IPC: "online"}), [IPC])  # an IPC lists itself as its only channel
    assert target == Target(IPC, IPC) and not target.is_channel


def test_a_channel_on_two_devices_goes_through_one_that_is_online() -> None:
    other = "34020000001110000002"
    assert resolve(CH1, status({NVR: "offline", other: "online"}), [NVR, other]) == Target(other, CH1)


@pytest.mark.parametrize(
    ("target", "table", "owners", "kind", "words"),
    [
        (CH1, {}, [], "unknown", "no device or channel"),
        (CH1, {NVR: "offline"}, [NVR], "offline", "none of them online"),
        (CH1, {}, [NVR], "offline", "none of them online"),  # its device is not registered
        (IPC, {IPC: "offline"}, [], "offline", "is offline"),
        ("12 4", {}, [], "invalid", "not a device or channel ID"),
        ("", {}, [], "invalid", "not a device or channel ID"),
    ],
)
def test_unknown_offline_and_bad_targets_are_clear_errors(target, table, owners, kind, words) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OperationError, match=words) as info:
        resolve(target, status(table), owners)
    assert info.value.kind == kind


def test_device_only_commands_refuse_a_channel() -> None:
    with pytest.raises(OperationError, match=f"it is a channel of {NVR}") as info:
        resolve(CH1, status({NVR: "online"}), [NVR], device_only=True)
    assert info.value.kind == "unknown"
    with pytest.raises(OperationError, match="offline"):
        resolve(NVR, status({NVR: "offline"}), [], device_only=True)
    assert resolve(NVR, status({NVR: "online"}), [], device_only=True) == Target(NVR, NVR)


def test_ptz_right_for_a_duration_is_the_move_then_the_ptz_stop() -> None:
    plan = ptz_plan("right", 0x80, 1.5)
    assert plan.move.command.encode() == "A50F0101808000B6"  # spec digest §7.5 example
    assert plan.stop is not None and plan.stop.command.encode() == "A50F0100000000B5"
    assert plan.duration == 1.5
    body = plan.move.to_xml(7, CH1, "GB2312")
    assert b"<PTZCmd>A50F0101808000B6</PTZCmd>" in body and f"<DeviceID>{CH1}</DeviceID>".encode() in body
    assert parse_control_body(body) == plan.move


def test_focus_and_iris_moves_end_with_the_fi_stop() -> None:
    plan = ptz_plan("focus-near", 0x40, 2)
    assert plan.move.command.encode()[:12] == "A50F01424000"
    assert plan.stop is not None and plan.stop.command.encode() == "A50F0140000000F5"


def test_ptz_without_a_duration_moves_until_told_otherwise() -> None:
    plan = ptz_plan("zoom-in", 0x50, None)
    assert (plan.move.command.encode(), plan.stop, plan.duration) == ("A50F011000005015", None, None)
    assert ptz_plan("stop", 0x80, None).move.command.encode() == "A50F0100000000B5"


@pytest.mark.parametrize(
    ("verb", "speed", "duration", "words"),
    [
        ("sideways", 0x80, None, "unknown PTZ action"),
        ("left", 256, None, "speed"),
        ("left", -1, None, "speed"),
        ("left", 0x80, 0, "duration"),
        ("left", 0x80, -2, "duration"),
        ("left", 0x80, float("nan"), "duration"),
        ("left", 0x80, 301, "duration"),
        ("stop", 0x80, 1, "stop takes no duration"),
    ],
)
def test_bad_ptz_arguments_are_refused(verb, speed, duration, words) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OperationError, match=words) as info:
        ptz_plan(verb, speed, duration)
    assert info.value.kind == "invalid"


def test_preset_commands_carry_the_a34_codes() -> None:
    assert preset_command("goto", 3).command.encode() == "A50F01820003003A"
    assert preset_command("set", 3).command.encode()[6:12] == "810003"
    assert preset_command("delete", 255).command.encode()[6:12] == "8300FF"
    for action, number in (("goto", 0), ("goto", 256), ("jump", 1), ("set", True)):
        with pytest.raises(OperationError):
            preset_command(action, number)  # type: ignore[arg-type]


def test_preset_query_and_the_wild_hikvision_answer() -> None:
    query = decode(preset_query(9, CH1, "GB2312")).message
    assert isinstance(query, PresetQuery) and (query.sn, query.device_id) == (9, CH1)
    raw = (WILD / "ipc-ds2cd5024-presetquery-response-chinese.txt").read_bytes()
    body = raw.split(b"\n\n", 1)[1] if b"\r\n\r\n" not in raw else raw.split(b"\r\n\r\n", 1)[1]
    answer = decode(body.decode("utf-8").encode("gb2312")).message  # stored as UTF-8; the camera sent GB2312
    assert isinstance(answer, PresetResponse)
    assert presets_json(answer) == [{"preset": 1, "name": "预置点 1"}]


def test_which_controls_the_device_answers() -> None:
    assert responds(record_command("start")) and responds(guard_command("arm"))
    assert not responds(reboot_command()) and not responds(ptz_plan("left", 1, None).move)
    assert b"<RecordCmd>StopRecord</RecordCmd>" in record_command("stop").to_xml(1, CH1)
    assert b"<GuardCmd>ResetGuard</GuardCmd>" in guard_command("disarm").to_xml(1, NVR)
    assert b"<TeleBoot>Boot</TeleBoot>" in reboot_command().to_xml(1, NVR)
    for bad in (lambda: record_command("pause"), lambda: guard_command("on")):
        with pytest.raises(OperationError):
            bad()
