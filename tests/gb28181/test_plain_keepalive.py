"""``is_plain_keepalive`` lets the lean lane skip lxml for the keepalive bodies devices send. It may decline anything;
whatever it accepts, the codec's own parse must read as a Notify/Keepalive (never a 400)."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gb28181.manscdp import ManscdpError
from gb28181.manscdp.codec import envelope, is_plain_keepalive, parse
from sip.lite import peek

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "manscdp"


def reads_as_keepalive(body: bytes) -> bool:
    try:
        env = envelope(parse(body))
    except ManscdpError:
        return False
    return env.cmd_type == "Keepalive" and env.kind == "Notify"


def test_the_usual_keepalives_take_the_plain_shape() -> None:
    for decl in (b'<?xml version="1.0" encoding="GB2312"?>\r\n', b'<?xml version="1.0"?>', b""):
        body = decl + b"<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>43</SN>\r\n<DeviceID>34020000001320000001"
        body += b"</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
        assert is_plain_keepalive(body) and reads_as_keepalive(body)


def test_other_shapes_are_left_to_the_codec() -> None:
    base = b"<Notify><CmdType>Keepalive</CmdType><SN>1</SN></Notify>"
    for body in (
        base.replace(b"<SN>1</SN>", b"<Info><DeviceID>1</DeviceID></Info>"),  # nested: lxml
        base.replace(b"Keepalive", b"Catalog"),
        base.replace(b"<SN>1</SN>", b"<SN>1&amp;</SN>"),
        base.replace(b"<SN>1</SN>", b"<SN>1</Sn>"),  # not well-formed: the codec answers 400
        base.replace(b"<SN>1</SN>", "<Name>摄像机</Name>".encode("gb18030")),  # non-ASCII text: the codec's charsets
        b'<?xml version="1.0" encoding="ISO-8859-1"?>' + base,
        base.replace(b"<Notify>", b"<Response>").replace(b"</Notify>", b"</Response>"),
    ):
        assert not is_plain_keepalive(body), body


def wild_keepalives() -> list[tuple[str, bytes]]:
    """The keepalive MESSAGEs users pasted (fixtures/sip/wild, stored with LF line ends), head in CRLF as sent."""
    out = []
    for path in sorted((FIXTURES.parent / "sip" / "wild").rglob("*keepalive*.txt")):
        head, _, body = path.read_bytes().partition(b"\n\n")
        out.append((path.name, head.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"\r\n\r\n" + body))
    return out


def test_the_wild_keepalives_take_the_lean_lane_and_read_the_same_by_both() -> None:
    plain = taken = 0
    for name, data in wild_keepalives():
        body = data.partition(b"\r\n\r\n")[2]
        exact = f"Content-Length: {len(body)}".encode() in data.replace(b":   ", b": ")  # some pastes lost a byte
        taken += peek(data) is not None
        assert exact == (peek(data) is not None), name  # the lane takes every intact one, and no other
        if is_plain_keepalive(body):
            plain += 1
            assert reads_as_keepalive(body), name
    assert plain >= 3 and taken >= 3  # Hikvision's empty <Info/> takes lxml


@st.composite
def keepalives(draw: st.DrawFn) -> bytes:
    ws = st.sampled_from([b"", b"\r\n", b" ", b"\n\t"])
    decl = draw(st.sampled_from([b"", b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="GB2312"?>',
                                 b'<?xml version="1.0" encoding="UTF-8" ?>']))  # fmt: skip
    items = draw(st.lists(st.tuples(st.sampled_from(["SN", "DeviceID", "Status", "X1"]),
                                    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)),
                          max_size=4))  # fmt: skip
    inner = b"".join(draw(ws) + f"<{t}>{v}</{t}>".encode() for t, v in items if "<" not in v and "&" not in v)
    return decl + draw(ws) + b"<Notify>" + draw(ws) + b"<CmdType>Keepalive</CmdType>" + inner + draw(ws) + b"</Notify>"


@settings(max_examples=300, deadline=None)
@given(keepalives(), st.randoms(use_true_random=False), st.integers(0, 4))
def test_whatever_the_plain_test_accepts_the_codec_reads_as_a_keepalive(body: bytes, rnd: random.Random, flips: int):
    raw = bytearray(body)
    for _ in range(flips):
        raw[rnd.randrange(len(raw))] = rnd.choice(b"<>/&\x00\x01 \"'=?Az9\xa1\xff")
    mutated = bytes(raw)
    if is_plain_keepalive(mutated):
        assert reads_as_keepalive(mutated), mutated
