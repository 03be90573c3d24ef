"""Query/Response correlation (gb28181/sn.py) and the generic query bodies and renderings (gb28181/queries.py)."""

from __future__ import annotations

import pytest

from gb28181.manscdp import ManscdpError, parse_envelope
from gb28181.queries import QUERIES, build_query, render
from gb28181.sn import Correlator, QueryError, check_result

DEV = "34020000001320000001"


def test_sns_are_positive_and_never_reused_while_pending() -> None:
    c = Correlator()
    first = c.new_sn(DEV)
    assert first == 1
    c.add(DEV, first, "DeviceInfo")
    assert c.new_sn(DEV) == 2
    wrapped = Correlator(start=2**31 - 2)
    assert wrapped.new_sn(DEV) == 2**31 - 1 and wrapped.new_sn(DEV) == 1  # wraps within 1..2**31-1


def test_a_response_matches_by_device_and_sn_and_accepts_known_alternative_cmd_types() -> None:
    c = Correlator()
    c.add(DEV, 7, "HomePositionQuery", handle="h")
    assert c.match("34020000001320000002", 7, "HomePositionQuery") is None  # another device
    assert c.match(DEV, 8, "HomePositionQuery") is None  # another SN
    assert c.match(DEV, 7, "Catalog") is None  # an unrelated answer does not consume the query
    pending = c.match(DEV, 7, "HomePosition")  # the Dahua answer (fixtures/manscdp/wild PROVENANCE)
    assert pending is not None and pending.handle == "h" and len(c) == 0
    assert c.match(DEV, 7, "HomePosition") is None  # consumed
    assert c.match(DEV, None, "DeviceInfo") is None


def test_the_table_is_bounded_and_cancel_frees_an_entry() -> None:
    c = Correlator(max_pending=2)
    c.add(DEV, 1, "DeviceInfo")
    c.add(DEV, 2, "DeviceInfo")
    with pytest.raises(QueryError, match="too many"):
        c.add(DEV, 3, "DeviceInfo")
    assert c.cancel(DEV, 1) is not None and c.cancel(DEV, 1) is None
    c.add(DEV, 3, "DeviceInfo")


def test_result_error_is_an_error_with_the_device_reason() -> None:
    check_result({"Result": "OK"})
    check_result({})  # notifies carry no Result
    with pytest.raises(QueryError, match="Cann't get ptz position") as info:
        check_result({"Result": "ERROR", "Reason": "Cann't get ptz position"})
    assert info.value.kind == "error"
    with pytest.raises(QueryError, match="no reason given"):
        check_result({"Result": "error"})


@pytest.mark.parametrize("verb", sorted(QUERIES))
def test_query_bodies_parse_back_as_what_they_ask(verb: str) -> None:
    cmd_type, body = build_query(verb, 42, DEV)
    assert cmd_type == {"info": "DeviceInfo", "status": "DeviceStatus", "config": "ConfigDownload"}[verb]
    assert body.startswith(b'<?xml version="1.0" encoding="GB2312"?>\n<Query>\n<CmdType>')
    env = parse_envelope(body)
    assert (env.kind, env.cmd_type, env.sn, env.device_id) == ("Query", cmd_type, 42, DEV)
    assert verb != "config" or env.fields["ConfigType"] == "BasicParam"


def test_query_bodies_escape_and_follow_the_charset() -> None:
    _, body = build_query("info", 1, "a<b&c", charset="UTF-8")
    assert b"<DeviceID>a&lt;b&amp;c</DeviceID>" in body and body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_render_nests_repeats_and_keeps_num_attributes() -> None:
    body = (
        '<?xml version="1.0" encoding="GB2312"?><Response><CmdType>PresetQuery</CmdType><SN>3</SN>'
        f'<DeviceID>{DEV}</DeviceID><PresetList Num="2"><Item><PresetID>1</PresetID><PresetName>预置点 1</PresetName>'
        "</Item><Item><PresetID>2</PresetID><PresetName>门口</PresetName></Item></PresetList></Response>"
    ).encode("gb18030")
    out = render(body)
    assert out["PresetList@Num"] == "2"
    assert [i["PresetName"] for i in out["PresetList"]["Item"]] == ["预置点 1", "门口"]
    single = render(body.replace(b"<Item><PresetID>2</PresetID><PresetName>\xc3\xc5\xbf\xda</PresetName></Item>", b""))
    assert single["PresetList"]["Item"]["PresetID"] == "1"  # one Item: a dict, not a list of one


def test_render_refuses_broken_xml_with_the_raw_bytes() -> None:
    with pytest.raises(ManscdpError) as info:
        render(b"<Response><CmdType>DeviceInfo</CmdType>")
    assert info.value.raw.startswith(b"<Response>")
