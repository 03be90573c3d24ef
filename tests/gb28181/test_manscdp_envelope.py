"""The MANSCDP envelope (gb28181/manscdp): charset detection, hardened parsing, wild bodies."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gb28181.manscdp import MAX_BODY, MAX_DEPTH, Envelope, ManscdpError, decode, parse_envelope

ROOT = Path(__file__).resolve().parents[2]
WILD = ROOT / "fixtures" / "manscdp" / "wild"
DEVICE = "34020000001320000001"


def body(inner: str, *, cmd: str = "Keepalive", kind: str = "Notify", decl: str = "GB2312") -> str:
    head = f'<?xml version="1.0" encoding="{decl}"?>\n' if decl else ""
    return f"{head}<{kind}>\n<CmdType>{cmd}</CmdType>\n<SN>7</SN>\n<DeviceID>{DEVICE}</DeviceID>\n{inner}</{kind}>\n"


# ------------------------------------------------------------------------------------------- wild bodies

# Written expected outcome of every body in fixtures/manscdp/wild/ (DECISIONS.md: Tests):
# accept -> (kind, CmdType, SN, DeviceID); reject -> a substring of the ManscdpError reason (answered 400).
WILD_EXPECTED: dict[str, tuple[str, str, int | None, str] | str] = {
    "dahua/ipc-catalog-body-self-item.txt": ("Response", "Catalog", 1, "34020000001320000001"),
    "dahua/nvr-v3-alarm-body-oneline-mojibake.txt": ("Notify", "Alarm", 9, "34020000001310000001"),
    "dahua/nvr-v3-catalog-body-oneline-mojibake.txt": ("Response", "Catalog", 1, "34020000001180000001"),
    "dahua/nvr-v3-catalog-body-rtsp-in-ipaddress.txt": ("Response", "Catalog", 4, "34020000001180000001"),
    # the device answers HomePosition to a HomePositionQuery: the envelope reports what it said
    "dahua/ptz-3h3405-homeposition-wrong-cmdtype-body.txt": ("Response", "HomePosition", 10323, "34020000001310000001"),
    "hikvision/nvr-catalog-body-garbage-address.txt": "not well-formed",  # raw '<' inside <Address>
    "hikvision/ptz-ds2dc2c40my-homepositionquery-error-body.txt": (
        "Response",
        "HomePositionQuery",
        857,
        "37010301021320000002",
    ),
    "kedacom/encoder-zd5920-catalog-body.txt": ("Response", "Catalog", 7, "32050000001320000169"),
    "tiandy/dvr-tc2808an-deviceinfo-body.txt": ("Response", "DeviceInfo", 17430, "64010000001110000001"),
    "uniview/ipc-hic6622-catalog-item-fragment.txt": "no CmdType",  # an <Item> alone, no envelope
    "unknown/lower-platform-catalog-body-malformed.txt": "not well-formed",  # stray </Item>
    "unknown/mobileposition-notify-body-deviceid-first.txt": ("Notify", "MobilePosition", 128, "64000000001310000001"),
}


def wild_files() -> list[str]:
    if not WILD.is_dir():
        return []
    return sorted(str(p.relative_to(WILD)) for p in WILD.rglob("*") if p.is_file() and p.suffix != ".md")


def wire_bytes(name: str) -> bytes:
    """The body as the device sent it. INDEX.md: mojibake pastes show GB2312 bytes as Latin-1 characters, so
    encoding the paste as Latin-1 gives back the wire bytes; other pastes are UTF-8 text as sent."""
    data = (WILD / name).read_bytes()
    return data.decode("utf-8").encode("latin-1") if "mojibake" in name else data


def test_every_wild_body_has_an_expected_outcome() -> None:
    missing = sorted(set(wild_files()) - set(WILD_EXPECTED))
    assert not missing, f"add the expected outcome of {missing} to WILD_EXPECTED"


@pytest.mark.parametrize("name", wild_files() or ["(none)"])
def test_wild_body(name: str) -> None:
    if name == "(none)":
        pytest.skip("fixtures/manscdp/wild/ is not there")
    data = wire_bytes(name)
    expected = WILD_EXPECTED.get(name)
    assert expected is not None, f"no expected outcome for {name}"
    if isinstance(expected, str):
        with pytest.raises(ManscdpError) as info:
            parse_envelope(data)
        assert expected in info.value.reason
        assert info.value.raw and data.startswith(info.value.raw)
        return
    env = parse_envelope(data)
    assert (env.kind, env.cmd_type, env.sn, env.device_id) == expected
    pasted = parse_envelope((WILD / name).read_bytes())
    assert (pasted.kind, pasted.cmd_type, pasted.sn, pasted.device_id) == expected
    # the same text in the other charset means the same thing
    text = data.decode(env.charset)
    again = parse_envelope(text.encode("utf-8" if env.charset == "gb18030" else "gb18030"))
    assert (again.kind, again.cmd_type, again.sn, again.device_id, again.fields) == (
        env.kind,
        env.cmd_type,
        env.sn,
        env.device_id,
        env.fields,
    )


def test_wild_mojibake_is_gb2312_on_the_wire() -> None:
    name = "dahua/nvr-v3-alarm-body-oneline-mojibake.txt"
    if not (WILD / name).exists():
        pytest.skip("fixture not there")
    env = parse_envelope(wire_bytes(name))
    assert env.charset == "gb18030"
    assert env.fields["AlarmDescription"] == "视频动检"


# ------------------------------------------------------------------------------------------- charsets


def test_gb2312_chinese_is_decoded() -> None:
    env = parse_envelope(body("<Name>前门摄像机</Name>\n<Info>正常</Info>\n").encode("gb2312"))
    assert env.charset == "gb18030"
    assert env.fields["Name"] == "前门摄像机"
    assert env.fields["Info"] == "正常"
    assert (env.kind, env.cmd_type, env.sn, env.device_id) == ("Notify", "Keepalive", 7, DEVICE)


@pytest.mark.parametrize("name", ["模", "询", "鸦", "压沫", "胃同", "喂筛胃"])
def test_short_gb2312_text_that_is_also_valid_utf8(name: str) -> None:
    # These GB2312 bytes happen to form valid UTF-8 (模 = C4 A3 = "ģ"); about 1 in 5 one-character and 1 in 30
    # two-character Chinese values do. Declared GB2312 and without any Chinese when read as UTF-8, they are GB.
    data = body(f"<Name>{name}</Name>\n").encode("gb2312")
    data.decode("utf-8")  # the trap is real
    env = parse_envelope(data)
    assert env.fields["Name"] == name
    assert env.charset == "gb18030"


@pytest.mark.parametrize("decl", ["GB2312", "gb2312", "GBK", ""])
def test_utf8_declared_gb2312_is_detected(decl: str) -> None:
    env = parse_envelope(body("<Name>大华摄像机·前门</Name>\n", decl=decl).encode("utf-8"))
    assert env.charset == "utf-8"
    assert env.fields["Name"] == "大华摄像机·前门"


def test_utf8_declared_utf8_is_trusted() -> None:
    env = parse_envelope(body("<Name>Ωmega ģ</Name>\n", decl="UTF-8").encode("utf-8"))
    assert (env.charset, env.fields["Name"]) == ("utf-8", "Ωmega ģ")


def test_gb18030_only_characters() -> None:
    name = "䶮𠀀"  # outside GB2312: four-byte GB18030 sequences
    env = parse_envelope(body(f"<Name>{name}</Name>\n", decl="GB18030").encode("gb18030"))
    assert env.fields["Name"] == name and env.charset == "gb18030"


def test_utf8_bom() -> None:
    env = parse_envelope(b"\xef\xbb\xbf" + body("<Name>门</Name>\n", decl="UTF-8").encode("utf-8"))
    assert env.fields["Name"] == "门"


def test_decode_strips_the_declaration() -> None:
    text, charset = decode(body("").encode("ascii"))
    assert not text.lstrip().startswith("<?xml") and charset == "utf-8"


# ------------------------------------------------------------------------------------------- bytes on the wire


def test_nul_and_control_bytes_are_removed() -> None:
    data = body("<Name>A\x00B\x01C</Name>\n").encode("gb2312") + b"\x00"
    env = parse_envelope(data)
    assert env.fields["Name"] == "ABC"


def test_nul_before_the_declaration() -> None:
    # Some C stacks prepend or append a NUL; it must not make the declaration "not at the start".
    env = parse_envelope(b"\x00" + body("<Name>前门</Name>\n").encode("gb2312"))
    assert (env.cmd_type, env.fields["Name"]) == ("Keepalive", "前门")


def test_predefined_and_character_entities_are_kept() -> None:
    env = parse_envelope(body("<Name>A&amp;B &#20013;</Name>\n").encode("ascii"))
    assert env.fields["Name"] == "A&B 中"


def test_oversized_body_is_refused() -> None:
    data = body("<Pad>" + "x" * MAX_BODY + "</Pad>\n").encode("ascii")
    with pytest.raises(ManscdpError) as info:
        parse_envelope(data)
    assert "exceeds" in info.value.reason
    assert info.value.raw and data.startswith(info.value.raw) and len(info.value.raw) < 10_000


def test_a_large_body_under_the_cap_is_fine() -> None:
    items = "".join(f"<Item><DeviceID>{i:020d}</DeviceID></Item>" for i in range(5000))
    data = body(f"<DeviceList>{items}</DeviceList>\n", cmd="Catalog", kind="Response").encode("ascii")
    assert len(data) < MAX_BODY
    assert parse_envelope(data).cmd_type == "Catalog"


# ------------------------------------------------------------------------------------------- attacks

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE Notify [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>34020000001320000001</DeviceID><Name>&lol9;</Name></Notify>
"""


def assert_not_expanded(data: bytes, marker: str) -> None:
    started = time.perf_counter()
    try:
        env: Envelope | None = parse_envelope(data)
    except ManscdpError:
        env = None
    assert time.perf_counter() - started < 2
    if env is not None:
        assert all(marker not in v for v in env.fields.values()), env.fields


def test_billion_laughs_is_not_expanded() -> None:
    assert_not_expanded(BILLION_LAUGHS.encode(), "lollol")


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE Notify [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE Notify [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>',
        '<!DOCTYPE Notify SYSTEM "file:///etc/passwd">',
    ],
)
def test_external_entities_are_not_loaded(doctype: str) -> None:
    text = (
        '<?xml version="1.0"?>\n' + doctype + "\n<Notify><CmdType>Keepalive</CmdType><SN>1</SN>"
        f"<DeviceID>{DEVICE}</DeviceID><Name>&xxe;</Name></Notify>"
    ).replace("<Name>&xxe;</Name>", "<Name>&xxe;</Name>" if "xxe" in doctype else "<Name>x</Name>")
    assert_not_expanded(text.encode(), "root:")


def nested(depth: int) -> bytes:
    """A body whose root is at depth 1 and the deepest element at ``depth``."""
    inner = "<N>" * (depth - 2) + "</N>" * (depth - 2)
    return body(f"<Deep>{inner}</Deep>\n").encode("ascii")


def test_depth_cap() -> None:
    assert parse_envelope(nested(MAX_DEPTH)).cmd_type == "Keepalive"
    with pytest.raises(ManscdpError) as info:
        parse_envelope(nested(MAX_DEPTH + 1))
    assert "deeper" in info.value.reason
    with pytest.raises(ManscdpError):
        parse_envelope(nested(50_000))  # beyond libxml2's own limit too


# ------------------------------------------------------------------------------------------- envelope


def test_missing_cmdtype_keeps_the_raw_bytes() -> None:
    data = f"<Notify><SN>1</SN><DeviceID>{DEVICE}</DeviceID></Notify>".encode()
    with pytest.raises(ManscdpError) as info:
        parse_envelope(data)
    assert "CmdType" in info.value.reason
    assert info.value.raw == data


@pytest.mark.parametrize(
    "data",
    [b"", b"   ", b"not xml", b"<Notify><CmdType>Keepalive</CmdType>", b"<Notify><CmdType></CmdType></Notify>"],
)
def test_unreadable_bodies(data: bytes) -> None:
    with pytest.raises(ManscdpError) as info:
        parse_envelope(data)
    assert info.value.raw == data


@pytest.mark.parametrize(
    ("sn", "expected"),
    [("7", 7), (" 42 ", 42), ("", None), ("abc", None), ("-1", None), ("²", None), ("٣", None), ("9" * 12, None)],
)
def test_sn(sn: str, expected: int | None) -> None:
    data = f"<Notify><CmdType>Keepalive</CmdType><SN>{sn}</SN></Notify>".encode()
    assert parse_envelope(data).sn == expected


def test_fields_are_top_level_simple_elements() -> None:
    env = parse_envelope(body("<Info><Name>inner</Name></Info>\n<Status>OK</Status>\n").encode("ascii"))
    assert env.fields["Status"] == "OK"
    assert "Name" not in env.fields and "Info" not in env.fields
    assert env.device_id == DEVICE
