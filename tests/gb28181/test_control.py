"""DeviceControl bodies (gb28181/manscdp/control.py, GB/T 28181-2022 A.2.3.1; spec digest §7.5, §14)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from gb28181.manscdp import ManscdpError
from gb28181.manscdp.control import (
    AlarmCmd,
    ControlCommand,
    ControlError,
    DeviceUpgrade,
    DragZoomIn,
    DragZoomOut,
    FormatSDCard,
    GuardCmd,
    HomePosition,
    IFrameCmd,
    PtzCmd,
    PtzPreciseCtrl,
    RecordCmd,
    TargetTrack,
    TeleBoot,
    ZoomRect,
    parse_control,
    parse_control_body,
)
from gb28181.manscdp.ptz import PtzCommand, PtzOp, from_verb, preset_goto, preset_set

DEV = "34020000001320000001"
CAM2 = "34020000001320000002"
SESSION = "0123456789abcdef0123456789abcdef"  # 32 characters, the minimum


def lines(*parts: str, decl: str = "GB2312") -> str:
    """Expected body text: declaration, envelope, then one element per CRLF-terminated line."""
    head = [f'<?xml version="1.0" encoding="{decl}"?>', "<Control>", "<CmdType>DeviceControl</CmdType>"]
    return "\r\n".join([*head, *parts, "</Control>", ""])


# ------------------------------------------------------------------------------------------- byte-exact


def test_ptz_right_as_in_the_spec_example() -> None:
    # spec digest §7.5: PTZ right, pan and tilt speed 0x80, wvp's Info/ControlPriority 5
    body = PtzCmd(from_verb("right", 0x80), priority=5).to_xml(123456, DEV)
    assert body == lines(
        "<SN>123456</SN>",
        f"<DeviceID>{DEV}</DeviceID>",
        "<PTZCmd>A50F0101808000B6</PTZCmd>",
        "<Info>",
        "<ControlPriority>5</ControlPriority>",
        "</Info>",
    ).encode("ascii")


def test_teleboot() -> None:
    assert TeleBoot().to_xml(1, DEV) == (
        b'<?xml version="1.0" encoding="GB2312"?>\r\n<Control>\r\n<CmdType>DeviceControl</CmdType>\r\n'
        b"<SN>1</SN>\r\n<DeviceID>34020000001320000001</DeviceID>\r\n<TeleBoot>Boot</TeleBoot>\r\n</Control>\r\n"
    )


def test_record_guard_alarm_iframe() -> None:
    head = ("<SN>17</SN>", f"<DeviceID>{DEV}</DeviceID>")
    assert RecordCmd(True).to_xml(17, DEV) == lines(*head, "<RecordCmd>Record</RecordCmd>").encode()
    assert (
        RecordCmd(False, stream_number=1).to_xml(17, DEV)
        == lines(*head, "<RecordCmd>StopRecord</RecordCmd>", "<StreamNumber>1</StreamNumber>").encode()
    )
    assert GuardCmd(True).to_xml(17, DEV) == lines(*head, "<GuardCmd>SetGuard</GuardCmd>").encode()
    assert GuardCmd(False).to_xml(17, DEV) == lines(*head, "<GuardCmd>ResetGuard</GuardCmd>").encode()
    assert AlarmCmd().to_xml(17, DEV) == lines(*head, "<AlarmCmd>ResetAlarm</AlarmCmd>").encode()
    assert AlarmCmd("2", "1").to_xml(17, DEV) == lines(
        *head, "<AlarmCmd>ResetAlarm</AlarmCmd>", "<Info>", "<AlarmMethod>2</AlarmMethod>",
        "<AlarmType>1</AlarmType>", "</Info>",
    ).encode()  # fmt: skip
    assert IFrameCmd().to_xml(17, DEV) == lines(*head, "<IFameCmd>Send</IFameCmd>").encode()  # 2016 spelling


def test_drag_zoom_and_home_position() -> None:
    head = ("<SN>5</SN>", f"<DeviceID>{DEV}</DeviceID>")
    rect = (1920, 1080, 960, 540, 320, 180)
    children = (
        "<Length>1920</Length>", "<Width>1080</Width>", "<MidPointX>960</MidPointX>", "<MidPointY>540</MidPointY>",
        "<LengthX>320</LengthX>", "<LengthY>180</LengthY>",
    )  # fmt: skip
    assert DragZoomIn(*rect).to_xml(5, DEV) == lines(*head, "<DragZoomIn>", *children, "</DragZoomIn>").encode()
    assert DragZoomOut(*rect).to_xml(5, DEV) == lines(*head, "<DragZoomOut>", *children, "</DragZoomOut>").encode()
    assert HomePosition(True, reset_time=60, preset_index=3).to_xml(5, DEV) == lines(
        *head, "<HomePosition>", "<Enabled>1</Enabled>", "<ResetTime>60</ResetTime>",
        "<PresetIndex>3</PresetIndex>", "</HomePosition>",
    ).encode()  # fmt: skip
    assert (
        HomePosition(False).to_xml(5, DEV)
        == lines(*head, "<HomePosition>", "<Enabled>0</Enabled>", "</HomePosition>").encode()
    )


def test_2022_controls() -> None:
    head = ("<SN>9</SN>", f"<DeviceID>{DEV}</DeviceID>")
    assert (
        PtzPreciseCtrl(123.4, -15, 2).to_xml(9, DEV)
        == lines(
            *head,
            "<PTZPreciseCtrl>",
            "<Pan>123.40</Pan>",
            "<Tilt>-15.00</Tilt>",
            "<Zoom>2.00</Zoom>",
            "</PTZPreciseCtrl>",
        ).encode()
    )
    assert FormatSDCard(0).to_xml(9, DEV) == lines(*head, "<FormatSDCard>0</FormatSDCard>").encode()
    assert DeviceUpgrade("V5.7.3", "http://10.0.0.2/fw.bin", "Hikvision", SESSION).to_xml(9, DEV) == lines(
        *head, "<DeviceUpgrade>", "<Firmware>V5.7.3</Firmware>", "<FileURL>http://10.0.0.2/fw.bin</FileURL>",
        "<Manufacturer>Hikvision</Manufacturer>", f"<SessionID>{SESSION}</SessionID>", "</DeviceUpgrade>",
    ).encode()  # fmt: skip
    assert (
        TargetTrack("Auto", device_id2=CAM2).to_xml(9, DEV)
        == lines(*head, "<TargetTrack>Auto</TargetTrack>", f"<DeviceID2>{CAM2}</DeviceID2>").encode()
    )


def test_gb2312_preset_name_bytes() -> None:
    # 2022 PTZCmdParams/PresetName with preset set; 大门口 in GB2312 is B4F3 C3C5 BFDA
    body = PtzCmd(preset_set(3), preset_name="大门口").to_xml(2, DEV)
    assert b"<PresetName>\xb4\xf3\xc3\xc5\xbf\xda</PresetName>" in body
    assert body == lines(
        "<SN>2</SN>", f"<DeviceID>{DEV}</DeviceID>", "<PTZCmd>A50F018100030039</PTZCmd>", "<PTZCmdParams>",
        "<PresetName>大门口</PresetName>", "</PTZCmdParams>",
    ).encode("gb2312")  # fmt: skip


def test_character_outside_gb2312_is_sent_as_gb18030_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gb28181.manscdp.control"):
        body = PtzCmd(preset_set(4), preset_name="萳").to_xml(3, DEV)
    assert b'encoding="GB2312"' in body and b"<PresetName>\xc8\x6c</PresetName>" in body  # GB18030 C86C
    assert "outside GB2312" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gb28181.manscdp.control"):
        PtzCmd(preset_set(4), preset_name="大门").to_xml(3, DEV)
    assert caplog.text == ""


def test_gb18030_and_utf8_charsets() -> None:
    cmd = PtzCmd(preset_set(3), preset_name="萳门")
    gb = cmd.to_xml(2, DEV, "GB18030")
    assert gb.startswith(b'<?xml version="1.0" encoding="GB18030"?>\r\n') and "萳门".encode("gb18030") in gb
    utf = cmd.to_xml(2, DEV, "utf-8")
    assert utf.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\r\n') and "萳门".encode() in utf
    assert cmd.to_xml(2, DEV, "gbk").startswith(b'<?xml version="1.0" encoding="GBK"?>')


def test_escaping_is_lxml_s() -> None:
    body = DeviceUpgrade("a<b", "http://x/f?a=1&b=2", "M&M", SESSION).to_xml(1, DEV)
    assert b"<Firmware>a&lt;b</Firmware>" in body and b"<FileURL>http://x/f?a=1&amp;b=2</FileURL>" in body


# ------------------------------------------------------------------------------------------- round trip

ALL: list[ControlCommand] = [
    PtzCmd(from_verb("left", 0x30)),
    PtzCmd(from_verb("zoom-in", 0xFF), priority=5),
    PtzCmd(preset_set(7), preset_name="大门口 東"),
    PtzCmd(PtzCommand(PtzOp.CRUISE_ADD, group=1, preset=7), cruise_track_name="巡航一"),
    TeleBoot(),
    RecordCmd(True),
    RecordCmd(False, stream_number=2),
    GuardCmd(True),
    GuardCmd(False),
    AlarmCmd(),
    AlarmCmd(alarm_method="2"),
    AlarmCmd("5", "12"),
    IFrameCmd(),
    DragZoomIn(704, 576, 352, 288, 100, 80),
    DragZoomOut(1920, 1080, 0, 0, 1920, 1080),
    HomePosition(False),
    HomePosition(True, reset_time=30, preset_index=0),
    PtzPreciseCtrl(359.99, 89.5, 30),
    PtzPreciseCtrl(0, -30, 1),
    DeviceUpgrade("V2.800", "ftp://up.example/fw.bin", "大华", SESSION * 4),
    FormatSDCard(),
    FormatSDCard(2),
    TargetTrack("Stop"),
    TargetTrack("Manual", CAM2, ZoomRect(1920, 1080, 500, 400, 80, 160)),
]


@pytest.mark.parametrize("charset", ["GB2312", "GB18030", "UTF-8"])
@pytest.mark.parametrize("command", ALL, ids=lambda c: type(c).__name__)
def test_round_trip(command: ControlCommand, charset: str) -> None:
    assert parse_control_body(command.to_xml(42, DEV, charset)) == command


def test_every_command_class_is_round_tripped() -> None:
    import gb28181.manscdp.control as control

    classes = {getattr(control, n) for n in control.__all__} & set(ControlCommand.__args__)  # type: ignore[attr-defined]
    assert classes == {type(c) for c in ALL}


def test_responds_flags_follow_the_spec() -> None:
    # §7.5: Record, Guard, Alarm reset, HomePosition and DeviceUpgrade are answered with Result
    answered = {type(c).__name__ for c in ALL if c.RESPONDS}
    assert answered == {"RecordCmd", "GuardCmd", "AlarmCmd", "HomePosition", "DeviceUpgrade"}


names = st.text(
    st.characters(codec="gb18030", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=20
)


@settings(deadline=None, max_examples=150)
@given(
    st.sampled_from([preset_set(1), preset_goto(255), from_verb("up", 9)]),
    st.none() | names,
    st.none() | names,
    st.none() | st.integers(0, 2**31 - 1),
    st.sampled_from(["GB2312", "GB18030", "UTF-8"]),
)
def test_ptz_round_trip_property(
    cmd: PtzCommand, preset: str | None, track: str | None, priority: int | None, charset: str
) -> None:
    c = PtzCmd(cmd, preset_name=preset, cruise_track_name=track, priority=priority)
    assert parse_control_body(c.to_xml(1, DEV, charset)) == c


@settings(deadline=None, max_examples=150)
@given(st.floats(0, 360, allow_nan=False), st.floats(-30, 90, allow_nan=False), st.floats(1, 1e5, allow_nan=False))
def test_precise_round_trip_property(pan: float, tilt: float, zoom: float) -> None:
    c = PtzPreciseCtrl(pan, tilt, zoom)  # rounded to 2 decimals on construction
    assert (c.pan, c.tilt, c.zoom) == (round(pan, 2), round(tilt, 2), round(zoom, 2))
    assert parse_control_body(c.to_xml(1, DEV)) == c


# ------------------------------------------------------------------------------------------- parsing tolerance


def root_of(inner: str, *, kind: str = "Control", cmd: str = "DeviceControl") -> etree._Element:
    return etree.fromstring(f"<{kind}><CmdType>{cmd}</CmdType><SN>1</SN><DeviceID>{DEV}</DeviceID>{inner}</{kind}>")


def test_spec_example_as_wvp_sends_it() -> None:
    body = (
        b'<?xml version="1.0" encoding="GB2312"?>\n'
        b"<Control><CmdType>DeviceControl</CmdType><SN>123456</SN><DeviceID>34020000001320000001</DeviceID>\n"
        b"<PTZCmd>A50F0101808000B6</PTZCmd><Info><ControlPriority>5</ControlPriority></Info></Control>\n"
    )
    assert parse_control_body(body) == PtzCmd(PtzCommand(PtzOp.MOVE, pan=1, pan_speed=128, tilt_speed=128), priority=5)


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        ("<IFrameCmd>Send</IFrameCmd>", IFrameCmd()),  # the 2022 spelling
        ("<ifamecmd> send </ifamecmd>", IFrameCmd()),  # case and whitespace
        ("<PTZCmd> a50f0100000000b5\n</PTZCmd>", PtzCmd(PtzCommand())),
        ("<recordcmd>record</recordcmd><streamnumber>0</streamnumber>", RecordCmd(True, 0)),
        ("<ExtraInfo>x</ExtraInfo><GuardCmd>ResetGuard</GuardCmd><Vendor>y</Vendor>", GuardCmd(False)),
        ("<AlarmCmd>ResetAlarm</AlarmCmd><Info><AlarmMethod></AlarmMethod></Info>", AlarmCmd()),
        ("<HomePosition><Enabled>0</Enabled><ResetTime></ResetTime></HomePosition>", HomePosition(False)),
        (
            "<PTZPreciseCtrl><Pan>10</Pan><Tilt>+5.5</Tilt><Zoom>1.004</Zoom></PTZPreciseCtrl>",
            PtzPreciseCtrl(10, 5.5, 1),
        ),
        ("<TargetTrack>auto</TargetTrack><TargetArea></TargetArea>", TargetTrack("Auto")),
        ("<PTZCmd>A50F01820003003A</PTZCmd><PTZCmdParams/>", PtzCmd(preset_goto(3))),
    ],
)
def test_parse_tolerance(inner: str, expected: ControlCommand) -> None:
    assert parse_control(root_of(inner)) == expected


# ------------------------------------------------------------------------------------------- bad input

BAD_PARSE: list[tuple[str, str]] = [
    ("<FooCmd>1</FooCmd>", "no known command element; unknown: FooCmd"),
    ("", "no known command element"),
    ("<TeleBoot>Boot</TeleBoot><GuardCmd>SetGuard</GuardCmd>", "several commands (TeleBoot, GuardCmd)"),
    ("<PTZCmd>A50F0100000000B6</PTZCmd>", "PTZCmd: PTZCmd checksum is B6, expected B5"),
    ("<PTZCmd>A50F01000000B5</PTZCmd>", "PTZCmd: PTZCmd must be 16 hex characters, got 14"),
    ("<PTZCmd></PTZCmd>", "missing or empty <PTZCmd>"),
    ("<PTZCmd>A50F0100000000B5</PTZCmd><Info><ControlPriority>high</ControlPriority></Info>", "ControlPriority"),
    ("<TeleBoot>Reboot</TeleBoot>", "TeleBoot must be Boot, got 'Reboot'"),
    ("<RecordCmd>Start</RecordCmd>", "RecordCmd must be Record or StopRecord, got 'Start'"),
    ("<RecordCmd>Record</RecordCmd><StreamNumber>-1</StreamNumber>", "StreamNumber must be a non-negative integer"),
    ("<GuardCmd>Arm</GuardCmd>", "GuardCmd must be SetGuard or ResetGuard"),
    ("<AlarmCmd>Reset</AlarmCmd>", "AlarmCmd must be ResetAlarm"),
    ("<AlarmCmd>ResetAlarm</AlarmCmd><Info><AlarmType>x1</AlarmType></Info>", "alarm_type must be a string of digits"),
    ("<IFameCmd>Now</IFameCmd>", "IFameCmd must be Send"),
    ("<DragZoomIn><Length>1</Length></DragZoomIn>", "DragZoomIn: missing or empty <Width>"),
    (
        "<DragZoomOut><Length>-1</Length><Width>1</Width><MidPointX>1</MidPointX><MidPointY>1</MidPointY>"
        "<LengthX>1</LengthX><LengthY>1</LengthY></DragZoomOut>",
        "DragZoomOut/Length must be a non-negative integer, got '-1'",
    ),
    (
        "<DragZoomIn><Length>12px</Length><Width>1</Width><MidPointX>1</MidPointX><MidPointY>1</MidPointY>"
        "<LengthX>1</LengthX><LengthY>1</LengthY></DragZoomIn>",
        "DragZoomIn/Length must be a non-negative integer, got '12px'",
    ),
    ("<HomePosition><Enabled>yes</Enabled></HomePosition>", "HomePosition/Enabled must be 1 or 0, got 'yes'"),
    ("<HomePosition><ResetTime>5</ResetTime></HomePosition>", "HomePosition: missing or empty <Enabled>"),
    (
        "<HomePosition><Enabled>1</Enabled><PresetIndex>256</PresetIndex></HomePosition>",
        "preset_index 256 out of range 0..255",
    ),
    ("<HomePosition><Enabled>1</Enabled><ResetTime>99999999999</ResetTime></HomePosition>", "ResetTime must be"),
    (
        "<PTZPreciseCtrl><Pan>nan</Pan><Tilt>0</Tilt><Zoom>1</Zoom></PTZPreciseCtrl>",
        "Pan must be a decimal number, got 'nan'",
    ),
    ("<PTZPreciseCtrl><Pan>1e2</Pan><Tilt>0</Tilt><Zoom>1</Zoom></PTZPreciseCtrl>", "Pan must be a decimal"),
    ("<PTZPreciseCtrl><Pan>400</Pan><Tilt>0</Tilt><Zoom>1</Zoom></PTZPreciseCtrl>", "pan 400.0 out of range"),
    ("<PTZPreciseCtrl><Pan>4</Pan><Tilt>-31</Tilt><Zoom>1</Zoom></PTZPreciseCtrl>", "tilt -31.0 out of range"),
    ("<PTZPreciseCtrl><Pan>4</Pan><Tilt>0</Tilt><Zoom>0.5</Zoom></PTZPreciseCtrl>", "zoom 0.5 out of range"),
    ("<PTZPreciseCtrl><Pan>4</Pan><Tilt>0</Tilt></PTZPreciseCtrl>", "missing or empty <Zoom>"),
    (
        "<DeviceUpgrade><Firmware>1</Firmware><FileURL>u</FileURL><Manufacturer>m</Manufacturer>"
        "<SessionID>short</SessionID></DeviceUpgrade>",
        "session_id must be 32-128 characters, got 5",
    ),
    ("<DeviceUpgrade><Firmware>1</Firmware></DeviceUpgrade>", "DeviceUpgrade: missing or empty <FileURL>"),
    ("<FormatSDCard></FormatSDCard>", "FormatSDCard must be a non-negative integer, got ''"),
    ("<FormatSDCard>all</FormatSDCard>", "FormatSDCard must be a non-negative integer, got 'all'"),
    ("<TargetTrack>Follow</TargetTrack>", "TargetTrack must be Auto or Manual or Stop, got 'Follow'"),
    ("<TargetTrack>Auto</TargetTrack><TargetArea><Length>1</Length></TargetArea>", "TargetArea: missing or empty"),
]


@pytest.mark.parametrize(("inner", "message"), BAD_PARSE)
def test_parse_rejects(inner: str, message: str) -> None:
    with pytest.raises(ControlError, match=re.escape(message)):
        parse_control(root_of(inner))


def test_parse_rejects_wrong_envelope() -> None:
    with pytest.raises(ControlError, match=re.escape("root element must be <Control>, got <Query>")):
        parse_control(root_of("<TeleBoot>Boot</TeleBoot>", kind="Query"))
    with pytest.raises(ControlError, match=re.escape("CmdType must be DeviceControl, got 'DeviceConfig'")):
        parse_control(root_of("<TeleBoot>Boot</TeleBoot>", cmd="DeviceConfig"))


def test_body_that_is_not_xml_is_a_manscdp_error() -> None:
    with pytest.raises(ManscdpError, match="not well-formed"):
        parse_control_body(b"<Control><CmdType>DeviceControl</CmdType>")


def test_control_error_is_a_value_error() -> None:
    assert issubclass(ControlError, ValueError)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: TeleBoot().to_xml(-1, DEV), "SN must be a non-negative int"),
        (lambda: TeleBoot().to_xml(True, DEV), "SN must be"),  # type: ignore[arg-type]
        (lambda: TeleBoot().to_xml(1, ""), "DeviceID must be a non-empty alphanumeric"),
        (lambda: TeleBoot().to_xml(1, "3402<x>"), "DeviceID must be"),
        (lambda: TeleBoot().to_xml(1, DEV, "latin-1"), "unsupported charset 'latin-1'"),
        (lambda: PtzCmd("A50F0100000000B5"), "PtzCmd.command must be a PtzCommand"),  # type: ignore[arg-type]
        (lambda: PtzCmd(preset_set(1), preset_name=""), "preset_name must be a non-empty string"),
        (lambda: PtzCmd(preset_set(1), preset_name="a\x01b"), "characters XML cannot carry"),
        (lambda: PtzCmd(preset_set(1), priority=-1), "priority -1 out of range"),
        (lambda: RecordCmd(1), "RecordCmd.start must be a bool"),  # type: ignore[arg-type]
        (lambda: GuardCmd("SetGuard"), "GuardCmd.arm must be a bool"),  # type: ignore[arg-type]
        (lambda: AlarmCmd(alarm_method=2), "alarm_method must be a string of digits"),  # type: ignore[arg-type]
        (lambda: DragZoomIn(1, 1, 1, 1, 1, -1), "DragZoomIn.length_y -1 out of range"),
        (lambda: DragZoomOut(1, 1, 1.5, 1, 1, 1), "mid_point_x must be an int"),  # type: ignore[arg-type]
        (lambda: HomePosition(True, preset_index=300), "preset_index 300 out of range 0..255"),
        (lambda: HomePosition(1), "HomePosition.enabled must be a bool"),  # type: ignore[arg-type]
        (lambda: PtzPreciseCtrl(float("nan"), 0, 1), "pan must be a finite number"),
        (lambda: PtzPreciseCtrl(1, 95, 1), "tilt 95.0 out of range"),
        (lambda: DeviceUpgrade("v", "u", "m", "x" * 129), "32-128 characters, got 129"),
        (lambda: DeviceUpgrade("", "u", "m", SESSION), "firmware must be a non-empty string"),
        (lambda: FormatSDCard(-1), "index -1 out of range"),
        (lambda: TargetTrack("auto"), "TargetTrack.mode must be one of Auto, Manual, Stop"),  # type: ignore[arg-type]
        (lambda: TargetTrack("Auto", device_id2="a b"), "device_id2 must be an alphanumeric ID"),
        (lambda: TargetTrack("Auto", target_area=DragZoomIn(1, 1, 1, 1, 1, 1)), "target_area must be a ZoomRect"),
    ],
)
def test_build_rejects(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ControlError, match=re.escape(message)):
        build()
