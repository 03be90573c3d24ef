"""Relayed bodies keep everything but SN and DeviceID, and are declared and encoded as the peer expects."""

from __future__ import annotations

import pytest

from gb28181.cascade.relay import rewrite
from gb28181.manscdp import ManscdpError, parse_envelope

UP_BODY = (
    '<?xml version="1.0" encoding="GB2312"?>\n<Control><CmdType>DeviceControl</CmdType><SN>9</SN>'
    "<DeviceID>44000000001310000001</DeviceID><PTZCmd>A50F010800FA00B7</PTZCmd><Info><ControlPriority>5"
    "</ControlPriority></Info></Control>"
).encode("gb2312")


def test_down_then_up() -> None:
    down = rewrite(UP_BODY, sn=1234, device_id="34020000001310000001", charset="UTF-8")
    env = parse_envelope(down)
    assert (env.kind, env.cmd_type, env.sn, env.device_id) == ("Control", "DeviceControl", 1234, "34020000001310000001")
    assert env.fields["PTZCmd"] == "A50F010800FA00B7" and b"<ControlPriority>5</ControlPriority>" in down
    assert down.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    answer = (
        '<?xml version="1.0" encoding="UTF-8"?><Response><CmdType>DeviceInfo</CmdType><SN>1234</SN>'
        "<DeviceID>34020000001310000001</DeviceID><DeviceName>东门</DeviceName><Result>OK</Result></Response>"
    )
    up = rewrite(answer.encode(), sn=9, device_id="44000000001310000001", charset="GB2312")
    assert up.startswith(b'<?xml version="1.0" encoding="GB2312"?>') and "东门".encode("gb2312") in up
    env = parse_envelope(up)
    assert (env.sn, env.device_id, env.fields["Result"]) == (9, "44000000001310000001", "OK")


def test_not_xml_is_a_manscdp_error() -> None:
    with pytest.raises(ManscdpError):
        rewrite(b"<Query><SN>1</Query", sn=1, device_id="x", charset="GB2312")


def test_nested_device_ids_are_renamed_when_asked() -> None:
    body = (b"<?xml version=\"1.0\"?><Response><CmdType>RecordInfo</CmdType><SN>3</SN><DeviceID>REAL</DeviceID>"
            b"<SumNum>1</SumNum><RecordList Num=\"1\"><Item><DeviceID>REAL</DeviceID><Name>x</Name></Item>"
            b"<Item><DeviceID>OTHER</DeviceID></Item></RecordList></Response>")  # fmt: skip
    up = rewrite(body, sn=8, device_id="SHARED", charset="UTF-8", rename={"REAL": "SHARED"})
    assert up.count(b"<DeviceID>SHARED</DeviceID>") == 2 and b"<DeviceID>OTHER</DeviceID>" in up
    assert b"REAL" not in up and b"<SN>8</SN>" in up
