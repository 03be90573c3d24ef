"""Property tests: whatever bytes arrive, ``codec.decode`` raises nothing but ManscdpError, and whatever it reads
survives encode -> decode unchanged. Inputs: arbitrary bytes, the fixtures mutated (byte flips, truncation,
inserted ``&``, ``<``, NUL, end tags), and generated XML trees over the MANSCDP vocabulary. Budgets keep the file
well under 20 s."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gb28181.manscdp import ManscdpError
from gb28181.manscdp.codec import Decoded, decode, encode
from gb28181.manscdp.messages import MESSAGE_TYPES, Message
from gb28181.manscdp.repair import REPAIRS, repair
from tests.gb28181.test_manscdp_fixtures import EXPECTED, wire

FUZZ = settings(deadline=None, max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
SEEDS = [wire(k) for k in sorted(EXPECTED)]


def survives(data: bytes) -> Decoded | None:
    """decode either reads the body or raises ManscdpError carrying (the start of) the body."""
    try:
        out = decode(data)
    except ManscdpError as exc:
        assert isinstance(exc.raw, bytes) and data.startswith(exc.raw)
        return None
    assert isinstance(out.message, Message)
    assert set(out.repairs) <= set(REPAIRS)
    assert isinstance(out.ok, bool)
    # what was read is what is written back
    assert decode(encode(out.message, charset="utf-8")).message == out.message
    return out


@FUZZ
@given(st.binary(max_size=600))
def test_arbitrary_bytes(data: bytes) -> None:
    survives(data)


@FUZZ
@given(st.binary(max_size=300).map(lambda b: b"<?xml version='1.0' encoding='GB2312'?><Notify><CmdType>" + b))
def test_arbitrary_bytes_after_a_plausible_start(data: bytes) -> None:
    survives(data)


INSERTS = (b"&", b"<", b">", b"\x00", b"\x01", b"</Item>", b"</DeviceList>", b"<Item>", b"&amp", b"\xff", b"\xa1")


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(("flip", "truncate", "insert", "delete", "duplicate")))
        if kind == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from(INSERTS))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 40))]
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_fixtures(data: bytes) -> None:
    survives(data)


# ------------------------------------------------------------------------------------------- generated trees

CMDS = sorted({c for t in MESSAGE_TYPES for c in (t.CMD, *t.ALIASES)} | {"DeviceControl", "ZzUnknown"})
TAGS = (
    "DeviceID", "SN", "Name", "Item", "DeviceList", "RecordList", "Info", "PTZType", "PointType", "PoType",
    "ParentID", "Longitude", "Latitude", "SumNum", "Result", "Reason", "Status", "Event", "Alarmstatus",
    "BasicParam", "HomePosition", "HeartBeatInterval", "SnapShotList", "SnapShotFileID", "ExtraInfo", "Zz",
    "CruiseTrackList", "CruiseTrack", "Port", "Parental", "BusinessGroupID", "AlarmTypeParam", "EventType",
)  # fmt: skip
TEXTS = st.one_of(
    st.sampled_from(
        (
            "",
            "1",
            "0",
            "65535",
            "-3",
            "9",
            "1/2//3",
            "ON",
            "OFF",
            "OK",
            "ERROR",
            "116.3",
            "NaN",
            "inf",
            "1e999",
            "前门",
            "萳",
            " spaced ",
            "a&b",
            "<x>",
        )
    ),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
)


def case(tag: str, variant: int) -> str:
    return (tag, tag.lower(), tag.upper())[variant]


@st.composite
def element(draw: st.DrawFn, depth: int = 0) -> str:
    tag = case(draw(st.sampled_from(TAGS)), draw(st.sampled_from((0, 0, 0, 1, 2))))
    attrs = "".join(f" Num={quoteattr(draw(TEXTS))}" for _ in range(draw(st.integers(0, 1))))
    if depth < 3 and draw(st.booleans()):
        kids = "".join(draw(st.lists(element(depth + 1), max_size=4)))
        return f"<{tag}{attrs}>{kids}</{tag}>"
    return f"<{tag}{attrs}>{escape(draw(TEXTS))}</{tag}>"


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    root = case(draw(st.sampled_from(("Query", "Control", "Notify", "Response", "Zz"))), draw(st.sampled_from((0, 1))))
    kids = draw(st.lists(element(), max_size=6))
    if draw(st.integers(0, 9)):
        cmd = draw(st.sampled_from(CMDS))
        kids.insert(draw(st.integers(0, len(kids))), f"<CmdType>{case(cmd, draw(st.sampled_from((0, 1))))}</CmdType>")
    text = f"<{root}>{''.join(kids)}</{root}>"
    if draw(st.integers(0, 3)) == 0:  # break it the ways devices do
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(("&", "<", "\x00", "</Item>", "\x01"))) + text[at:]
    charset = draw(st.sampled_from(("GB2312", "GB18030", "UTF-8")))
    head = f'<?xml version="1.0" encoding="{charset}"?>\n' if draw(st.booleans()) else ""
    return (head + text).encode("utf-8" if charset == "UTF-8" else "gb18030", "replace")


@FUZZ
@given(documents())
def test_generated_trees(data: bytes) -> None:
    survives(data)


@settings(deadline=None, max_examples=200)
@given(st.text(st.sampled_from("<>/&;#x0aItemNme \x00\x01"), max_size=60))
def test_repair_is_total(text: str) -> None:
    fixed, names = repair(text)
    assert isinstance(fixed, str) and set(names) <= set(REPAIRS)
    assert (fixed != text) == bool(names)
