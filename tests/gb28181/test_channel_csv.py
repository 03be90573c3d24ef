"""Channels CSV export/import (gb28181/channel_csv.py): round trip, validation naming rows, encodings."""

from __future__ import annotations

import dataclasses
import re

import pytest

from gb28181.channel_csv import COLUMNS, CsvImportError, decode_csv, export_csv, parse_csv, plan
from registry.models import Channel

NVR = "34020000001110000001"
CH1 = "34020000001310000001"
CH2 = "34020000001310000002"


def channels() -> dict[tuple[str, str], Channel]:
    one = Channel(NVR, CH1, name="大门口", civil_code="340200", longitude=117.25, latitude=31.83, point_class=2,
                  kind="video", status="online")  # fmt: skip
    two = Channel(NVR, CH2, name="Camera 02", civil_code="CivilCode", kind="video", override_name="停车场")
    return {(c.device_id, c.id): c for c in (one, two)}


def rows_of(data: bytes) -> list[list[str]]:
    return [line.split(",") for line in decode_csv(data)[0].split("\r\n") if line]


def test_export_writes_shown_and_reported_values_as_utf8_with_a_bom() -> None:
    data = export_csv(channels().values())
    assert data.startswith(b"\xef\xbb\xbf")
    header, one, two = rows_of(data)
    assert tuple(header) == COLUMNS
    row = dict(zip(header, two, strict=True))
    assert (row["name"], row["reported_name"], row["civil_code"], row["longitude"]) == (
        "停车场",
        "Camera 02",
        "CivilCode",
        "",
    )
    assert dict(zip(header, one, strict=True))["longitude"] == "117.25"


def test_an_unedited_export_changes_nothing() -> None:
    rows, encoding = parse_csv(export_csv(channels().values()))
    assert encoding == "utf-8-sig" and len(rows) == 2
    assert plan(rows, channels()) == []  # the placeholder civil code "CivilCode" is the reported one: accepted


def edited(change) -> bytes:  # type: ignore[no-untyped-def]
    header, *rows = rows_of(export_csv(channels().values()))
    out = [dict(zip(header, r, strict=True)) for r in rows]
    change(out)
    return ("\r\n".join([",".join(header)] + [",".join(r[h] for h in header) for r in out]) + "\r\n").encode("utf-8")


def test_edits_become_overrides_and_reported_values_or_empty_cells_clear_them() -> None:
    def change(rows: list[dict[str, str]]) -> None:
        rows[0].update(name="东大门", longitude="117.3", point_class="1")
        rows[1].update(name="Camera 02", civil_code="34020001")  # back to the reported name; a new civil code

    rows, encoding = parse_csv(edited(change))
    assert encoding == "utf-8"
    one, two = plan(rows, channels())
    assert one.overrides == {"override_name": "东大门", "override_longitude": 117.3, "override_latitude": 31.83,
                             "override_point_class": 1}  # fmt: skip
    assert one.json()["before"]["name"] == "大门口" and one.json()["after"]["longitude"] == 117.3
    assert two.overrides == {"override_name": None, "override_civil_code": "34020001"}
    assert (two.before["name"], two.after["name"]) == ("停车场", "Camera 02")
    assert one.line == 2 and two.line == 3


def test_a_trimmed_file_touches_only_its_columns_and_gbk_is_read() -> None:
    data = f"device_id,id,name\r\n{NVR},{CH1},东门\r\n".encode("gbk")
    rows, encoding = parse_csv(data)
    assert encoding == "gbk" and rows[0].cells == {"name": "东门"}
    (change,) = plan(rows, channels())
    assert change.overrides == {"override_name": "东门"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("device_id,id,colour\r\n", "unknown column(s) 'colour'"),
        ("id,name\r\n", "missing column(s) device_id"),
        ("device_id,id,longitude\r\n", "longitude and latitude go together"),
        ("device_id,id,name,name\r\n", "given twice"),
        (f"device_id,id,name\r\n{NVR},3.40200000013E+19,x\r\n", "line 2: bad id '3.40200000013E+19' (a spreadsheet"),
        (f"device_id,id,longitude,latitude\r\n{NVR},{CH1},200,30\r\n", f"line 2 ({CH1}): longitude '200'"),
        (f"device_id,id,longitude,latitude\r\n{NVR},{CH1},117,abc\r\n", "latitude 'abc' is not a number"),
        (f"device_id,id,longitude,latitude\r\n{NVR},{CH1},117,\r\n", "together, or neither"),
        (f"device_id,id,name\r\n{NVR},{CH1}\r\n", "line 2: 2 cells, the header has 3"),
        (f"device_id,id,name\r\n{NVR},{CH1},a\r\n{NVR},{CH1},b\r\n", "line 3: channel .* already on line 2"),
    ],
)
def test_bad_files_are_refused_naming_the_line(text: str, words: str) -> None:
    with pytest.raises(CsvImportError, match=words if ".*" in words else re.escape(words)):
        parse_csv(text.encode())


def test_every_bad_row_is_reported_and_nothing_is_planned() -> None:
    data = (f"device_id,id,civil_code,point_class\r\n{NVR},{CH1},12345,1\r\n{NVR},{CH2},,7\r\n"
            f"{NVR},34020000001310000099,,\r\n").encode()  # fmt: skip
    rows, _ = parse_csv(data)
    with pytest.raises(CsvImportError) as info:
        plan(rows, channels())
    assert info.value.total == 3
    assert [e.split(":")[0] for e in info.value.errors] == [f"line 2 ({CH1})", f"line 3 ({CH2})", "line 4"]
    assert "no channel 34020000001310000099" in str(info.value) and "must be 1, 2, 3 or 9" in str(info.value)


def test_zero_coordinates_are_an_override_not_a_blank() -> None:
    bare = dataclasses.replace(channels()[(NVR, CH1)], longitude=None, latitude=None)
    rows, _ = parse_csv(f"device_id,id,longitude,latitude\r\n{NVR},{CH1},0,0.0\r\n".encode())
    (change,) = plan(rows, {(NVR, CH1): bare})
    assert change.overrides == {"override_longitude": 0.0, "override_latitude": 0.0}


def test_a_bom_file_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(CsvImportError, match="BOM"):
        decode_csv(b"\xef\xbb\xbfdevice_id,id,name\r\n\xb6\xab\r\n")
