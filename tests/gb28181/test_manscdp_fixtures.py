"""Every MANSCDP fixture against its written expectation in fixtures/manscdp/made/EXPECTED.toml (schema at its
top): the hand-made bodies, the fixtures generated at test time (too big to commit), the wild bodies and the bodies
of the wild SIP messages. Checks parsed meaning (types, counts, Chinese names, point_class, parent_ids tuples),
repairs and rejections, and round trips."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from gb28181.manscdp import ManscdpError
from gb28181.manscdp import messages as m
from gb28181.manscdp.codec import Decoded, decode, encode
from gb28181.manscdp.messages import Message
from tests.sip.test_fixtures import load_wire

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
MADE = FIXTURES / "manscdp" / "made"
EXPECTED: dict[str, dict[str, Any]] = tomllib.loads((MADE / "EXPECTED.toml").read_text(encoding="utf-8"))
NONE = "__none__"
MANSCDP_TYPE = re.compile(rb"(?im)^(content-type|c)[ \t]*:[ \t]*application/manscdp\+xml")
ACCEPTED = sorted(k for k, v in EXPECTED.items() if v["outcome"] != "reject")


def _load_make_fixtures() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("make_fixtures", MADE / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE = _load_make_fixtures()
GENERATED: dict[str, list[bytes]] = {f"manscdp/made/{k}": v for k, v in MAKE.generated().items()}


def sip_body(key: str) -> bytes:
    """The body of a wild SIP message, built by the SIP fixtures' loader (it may not parse as SIP: the trimmed
    RecordInfo paste is shorter than its Content-Length)."""
    return load_wire(key.removeprefix("sip/")).partition(b"\r\n\r\n")[2]


def packets(key: str) -> list[bytes]:
    """The bytes the device sent: the generated packets, or the one body of any other fixture."""
    return GENERATED[key] if EXPECTED[key]["wire"] == "generated" else [wire(key)]


def wire(key: str) -> bytes:
    """The bytes of a fixture (of a generated one, its first packet)."""
    how = EXPECTED[key]["wire"]
    if how == "generated":
        return GENERATED[key][0]
    if how == "sip":
        return sip_body(key)
    data = (FIXTURES / key).read_bytes()
    if how == "latin1":
        return data.decode("utf-8").encode("latin-1")
    assert how == "raw", how
    return data


def fixture_files() -> set[str]:
    found = {str(p.relative_to(FIXTURES)) for p in MADE.glob("*.xml")} | set(GENERATED)
    found |= {str(p.relative_to(FIXTURES)) for p in (FIXTURES / "manscdp" / "wild").rglob("*.txt")}
    for p in (FIXTURES / "sip" / "wild").rglob("*.txt"):
        head = p.read_bytes().replace(b"\r\n", b"\n").partition(b"\n\n")[0]
        if MANSCDP_TYPE.search(head):
            found.add(str(p.relative_to(FIXTURES)))
    return found


# ------------------------------------------------------------------------------------------- coverage


def test_every_fixture_has_an_expectation_and_back() -> None:
    files = fixture_files()
    assert not files - set(EXPECTED), f"no expectation for {sorted(files - set(EXPECTED))}"
    assert not set(EXPECTED) - files, f"no fixture for {sorted(set(EXPECTED) - files)}"
    assert len(files) >= 55


def test_expectations_are_well_formed() -> None:
    allowed = {"outcome", "wire", "repairs", "reason", "type", "charset", "cmd_type", "ok", "error", "fields"}
    for key, exp in EXPECTED.items():
        assert exp["outcome"] in ("accept", "repair", "reject"), key
        assert exp["wire"] in ("raw", "latin1", "sip", "generated"), key
        generated = {"packets", "sha256"}
        assert (exp["wire"] == "generated") == (key in GENERATED) == (generated <= set(exp)), key
        if key in GENERATED:
            exp = {k: v for k, v in exp.items() if k not in generated}
        assert (exp["wire"] == "sip") == key.startswith("sip/"), key
        assert ("reason" in exp) == (exp["outcome"] == "reject"), key
        assert bool(exp.get("repairs")) == (exp["outcome"] == "repair"), key
        lists = {k for k, v in exp.items() if isinstance(v, list) and k != "repairs"}
        counts = {k.removesuffix("_count") for k in exp if k.endswith("_count")}
        assert lists <= counts, key
        assert set(exp) - allowed - lists - {f"{c}_count" for c in counts} == set(), key
        if exp["outcome"] != "reject":
            assert hasattr(m, exp["type"]), key


def test_the_script_still_makes_the_committed_bytes() -> None:
    made = MAKE.files()
    assert set(made) == {p.name for p in MADE.glob("*.xml")}
    for name, data in made.items():
        assert (MADE / name).read_bytes() == data, name


@pytest.mark.parametrize("key", sorted(GENERATED))
def test_generated_fixtures_are_deterministic(key: str) -> None:
    """Not committed, so pinned here: the number of packets and a digest of their bytes (a change to the script
    that changes them must update EXPECTED.toml on purpose). Made twice, the same bytes."""
    exp = EXPECTED[key]
    made = GENERATED[key]
    assert len(made) == exp["packets"]
    assert hashlib.sha256(b"".join(made)).hexdigest() == exp["sha256"]
    assert _load_make_fixtures().generated()[key.removeprefix("manscdp/made/")] == made
    assert not any(p.decode("utf-8", "replace").isascii() for p in made)  # Chinese names in every packet
    for p in made:
        p.decode("gb2312")  # strictly GB2312 bytes, as a 2016 lower platform sends


# ------------------------------------------------------------------------------------------- meaning


def expected_value(value: Any) -> Any:
    if value == NONE:
        return None
    if isinstance(value, list):
        return tuple(value)
    return value


def check_attrs(obj: Any, table: dict[str, Any], where: str) -> None:
    for name, value in table.items():
        if name.endswith("__contains"):
            got = getattr(obj, name.removesuffix("__contains"))
            assert value in got, (where, name, got)
            continue
        got = obj
        for part in name.split("."):
            got = getattr(got, part)
        want = expected_value(value)
        assert got == want, (where, name, got, want)
        if want is not None and not isinstance(want, dict):
            assert type(got) is type(want), (where, name, type(got))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check_types(node: Any, where: str) -> None:
    """Every field of every node holds a value of its annotated type (floats are floats, tuples are tuples)."""
    hints = _hints(type(node))
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        hint = hints[f.name]
        allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        ok_types = tuple(typing.get_origin(a) or a for a in allowed)
        assert isinstance(value, ok_types), (where, f.name, value, hint)
        if isinstance(value, tuple):
            for v in value:
                if dataclasses.is_dataclass(v):
                    check_types(v, where)
                else:
                    assert isinstance(v, str), (where, f.name, v)
        elif dataclasses.is_dataclass(value):
            check_types(value, where)
        if isinstance(value, dict):
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()), (where, f.name)


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_fixture(key: str) -> None:
    exp = EXPECTED[key]
    if exp["outcome"] == "reject":
        data = wire(key)
        with pytest.raises(ManscdpError) as info:
            decode(data)
        assert exp["reason"] in info.value.reason
        assert info.value.raw and data.startswith(info.value.raw)
        return
    msgs: list[Message] = []
    for data in packets(key):
        out = decode(data)
        msg = out.message
        assert type(msg).__name__ == exp["type"]
        assert out.repairs == tuple(exp.get("repairs", ()))
        assert out.charset == exp["charset"]
        assert out.raw == data
        assert out.cmd_type == exp.get("cmd_type", type(msg).CMD)
        assert out.ok is exp.get("ok", True)
        assert out.error == exp.get("error")
        check_attrs(msg, exp.get("fields", {}), key)
        check_types(msg, key)
        msgs.append(msg)
    for name, value in exp.items():
        if name.endswith("_count"):
            got = [x for m in msgs for x in getattr(m, name.removesuffix("_count"))]
            assert len(got) == value, (key, name)
        elif isinstance(value, list) and name != "repairs":
            got = [x for m in msgs for x in getattr(m, name)]
            for i, table in enumerate(value):
                check_attrs(got[i], table, f"{key} {name}[{i}]")


@pytest.mark.parametrize("key", ACCEPTED)
def test_round_trip(key: str) -> None:
    for data in packets(key):
        msg = decode(data).message
        for charset in ("GB2312", "GB18030", "UTF-8"):
            again = decode(encode(msg, charset=charset))
            assert again.message == msg, (key, charset)
            assert again.repairs == ()


def rebuilt(value: Any) -> Any:
    """The same value with every node made again through its class's __init__ (the codec builds plain node
    classes by filling their __dict__, for speed: the objects must not differ in any way)."""
    if isinstance(value, tuple):
        return tuple(rebuilt(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        kwargs = {f.name: rebuilt(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return type(value)(**kwargs)
    return value


def same_build(a: Any, b: Any, where: str) -> None:
    assert a == b, where
    if dataclasses.is_dataclass(a):
        assert list(vars(a)) == list(vars(b)), where  # same fields, in the same order
        for f in dataclasses.fields(a):
            same_build(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, tuple):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same_build(x, y, f"{where}[{i}]")


@pytest.mark.parametrize("key", ACCEPTED)
def test_decoded_nodes_are_what_their_init_makes(key: str) -> None:
    msg = decode(packets(key)[0]).message
    same_build(msg, rebuilt(msg), key)


# ------------------------------------------------------------------------------------------- groups of packets


def decoded(*names: str) -> list[Decoded]:
    return [decode(wire(f"manscdp/made/{n}")) for n in names]


def test_three_packet_gb2312_catalog_lands_intact() -> None:
    packets = decoded(*(f"nvr-gb2312-catalog-{i}of3.xml" for i in (3, 1, 2)))  # out of order
    msgs = [p.message for p in packets]
    assert all(isinstance(x, m.CatalogResponse) for x in msgs)
    assert {(x.device_id, x.sn, x.sum_num) for x in msgs} == {("34020000001110000001", 1001, 3)}
    items = {it.device_id: it for x in msgs for it in x.items}  # type: ignore[attr-defined]
    assert len(items) == 3
    assert sorted(it.name for it in items.values()) == sorted(["大门入口", "停车场东侧", "办公楼一层大厅"])
    assert [p.charset for p in packets] == ["gb18030"] * 3


def test_record_packets_dedupe_to_sum_num() -> None:
    msgs = [p.message for p in decoded(*(f"recordinfo-{i}of3-duplicates.xml" for i in (1, 2, 3)))]
    assert all(isinstance(x, m.RecordInfoResponse) for x in msgs)
    everything = [it for x in msgs for it in x.items]  # type: ignore[attr-defined]
    unique = {(it.start_time, it.end_time) for it in everything}
    assert len(everything) == 7 and len(unique) == 5 == msgs[0].sum_num  # type: ignore[attr-defined]


def test_notify_carries_every_event() -> None:
    (out,) = decoded("catalog-notify-all-events.xml")
    assert isinstance(out.message, m.CatalogNotify)
    assert sorted(it.event or "" for it in out.message.items) == sorted(m.CATALOG_EVENTS)
    assert out.message.sum_num == out.message.num == len(out.message.items)


def test_lower_platform_tree_shapes() -> None:
    (out,) = decoded("lower-platform-civil-codes-groups.xml")
    assert isinstance(out.message, m.CatalogResponse)
    ids = [it.device_id or "" for it in out.message.items]
    assert [len(i) for i in ids[:4]] == [2, 4, 6, 8]
    assert {i[10:13] for i in ids if len(i) == 20} == {"200", "215", "216", "131"}
    multi = [it for it in out.message.items if len(it.parent_ids) > 1]
    assert len(multi) == 2 and all(isinstance(it.parent_ids, tuple) for it in multi)
