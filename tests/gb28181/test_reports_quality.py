"""Annotation, naming and ID compliance rules (issue 10), and the offenders CSV."""

from __future__ import annotations

import csv
import io

import pytest

from gb28181.reports.quality import (
    CSV_COLUMNS,
    check_annotation,
    check_ids,
    civil_code_problem,
    coordinate_problem,
    name_problem,
    offenders_csv,
)
from registry.models import VIDEO, Channel, Device

PLATFORM = "34020000002000000001"
NVR = "34020000001180000001"
CAM = "34020000001310000001"


def cam(n: int, **kw: object) -> Channel:
    base: dict[str, object] = {"name": f"东门 {n}", "civil_code": "340200", "longitude": 117.2 + n / 1000,
                               "latitude": 31.8, "kind": VIDEO}  # fmt: skip
    base.update(kw)
    return Channel(NVR, f"3402000000131{n:07d}", **base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("lon", "lat", "problem"),
    [
        (117.28, 31.86, None),  # Hefei
        (109.5, 18.2, None),  # Sanya, Hainan
        (112.3, 3.9, None),  # Zengmu Ansha, the southern end
        (134.7, 48.4, None),  # Fuyuan, the eastern end
        (None, 31.8, "no coordinates"),
        (117.2, None, "no coordinates"),
        (0.0, 0.0, "coordinates 0/0"),
        (31.8, 117.2, "outside China"),  # swapped
        (-122.4, 37.8, "outside China"),
        (139.7, 35.7, "outside China"),  # Tokyo
        (117.2, 60.0, "outside China"),
    ],
)
def test_coordinates(lon: float | None, lat: float | None, problem: str | None) -> None:
    found = coordinate_problem(lon, lat)
    assert (found is None) if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(
    ("channel_id", "code", "problem"),
    [
        (CAM, "340200", None),
        (CAM, "34", None),
        (CAM, "34020000", None),
        ("34020301001310000001", "340203", None),
        ("34020000001310000001", "340203", None),  # a city-level ID, a county code below it
        ("34020301001310000001", "3402", None),
        (CAM, "", "no civil code"),
        (CAM, "3402A0", "not 2, 4, 6 or 8 digits"),
        (CAM, "34020", "not 2, 4, 6 or 8 digits"),
        (CAM, "110000", "does not match the ID's centre code 34020000"),
        ("34020301001310000001", "340204", "does not match"),
        ("CAM-1", "340200", None),  # no 20-digit ID to compare with (ID compliance reports the ID)
    ],
)
def test_civil_code_against_the_id(channel_id: str, code: str, problem: str | None) -> None:
    found = civil_code_problem(channel_id, code)
    assert (found is None) if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("合肥市包河区徽州大道与太湖路交口东北角", False),
        ("Gate 3 north", False),
        ("Camera 01", True),
        ("IPCamera", True),
        ("IPdome", True),
        ("通道1", True),
        ("Channel 12", True),
        ("CH01", True),
        ("摄像机", True),
        ("未命名", True),
        ("HIKVISION", True),
        ("12345", True),
        ("", True),
        ("   ", True),
        (CAM, True),
    ],
)
def test_placeholder_names(name: str, bad: bool) -> None:
    assert (name_problem(CAM, name) is not None) is bad


def test_annotation_shares_and_offenders() -> None:
    channels = [
        cam(1, point_class=1),
        cam(2, point_class=1, longitude=0.0, latitude=0.0),
        cam(3, name="Camera 03"),
        cam(4, civil_code="110101"),
        cam(5, override_longitude=117.5, override_latitude=31.9, longitude=None),  # fixed by an override
        cam(6, longitude=116.0, latitude=30.0, point_class=1),
        cam(7, longitude=116.0, latitude=30.0),
        cam(8, longitude=116.0, latitude=30.0, name="Channel 8"),  # three on one exact point
        Channel(NVR, "340200", kind="region"),  # not video: not checked
    ]
    report = check_annotation(channels)
    assert report.channels == 8
    assert report.ok == {"coordinates": 4, "civil-code": 7, "name": 6}
    assert report.share("coordinates") == 0.5
    assert report.compliant == 2  # 1 and 5
    assert (report.class1, report.class1_coordinates_ok) == (3, 1)
    problems = {o.channel.id[-1]: [r for r, _ in o.problems] for o in report.offenders}
    assert problems == {"2": ["coordinates"], "3": ["name"], "4": ["civil-code"], "6": ["coordinates"],
                        "7": ["coordinates"], "8": ["coordinates", "name"]}  # fmt: skip
    assert "shared by 3 channels" in dict(next(o for o in report.offenders if o.channel.id.endswith("6")).problems)[
        "coordinates"
    ]
    assert check_annotation([]).share("name") is None


def test_offenders_csv_has_the_import_columns_then_the_problem() -> None:
    report = check_annotation([cam(1), cam(2, longitude=0.0, latitude=0.0, name="通道2", point_class=2)])
    text = offenders_csv(report.offenders)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(CSV_COLUMNS)
    assert rows[0][:7] == ["device_id", "id", "name", "longitude", "latitude", "civil_code", "point_class"]
    assert rows[0][-1] == "problem"
    assert rows[1] == [NVR, "34020000001310000002", "通道2", "0.0", "0.0", "340200", "2",
                       "coordinates 0/0; placeholder name '通道2'"]  # fmt: skip
    assert len(rows) == 2 and text.endswith("\r\n")


def test_id_compliance() -> None:
    devices = [
        Device(NVR),
        Device("3402000000132000001"),  # 19 digits
        Device("34020000002150000001"),  # a business group cannot be a device
        Device("34020000000990000001"),  # type 099
        Device(PLATFORM),  # our own ID
        Device("34020000001320000009"),  # an IPC listing itself: fine
        Device("34020100002000000001"),  # a lower platform
    ]
    channels = [
        Channel(NVR, CAM, kind=VIDEO),
        Channel("34020100002000000001", CAM, kind=VIDEO),  # the same camera through a lower platform
        Channel(NVR, "34020000001330000001", kind="other"),  # type 133 is not a channel type
        Channel(NVR, "cam-7", kind="other"),
        Channel("34020000001320000009", "34020000001320000009", kind=VIDEO),
        Channel("34020100002000000001", NVR, kind="device"),  # the NVR also registers directly
        Channel("34020100002000000001", "340201", kind="region"),
        Channel(NVR, "340201", kind="region"),  # regions may repeat
        Channel(NVR, "34020000002150000001", kind="group"),
        Channel("34020100002000000001", "34020000002150000001", kind="group"),
    ]
    found = {(p.subject, p.device_id, p.problem.split(":")[0].split(" (")[0]) for p in check_ids(devices, channels,
                                                                                                 PLATFORM)}  # fmt: skip
    assert found == {
        ("3402000000132000001", "3402000000132000001", "not a 20-digit ID"),
        ("34020000002150000001", "34020000002150000001", "type code 215 is a catalog node"),
        ("34020000000990000001", "34020000000990000001", "type code 099 is neither a device"),
        (PLATFORM, PLATFORM, "the platform's own ID"),
        ("34020000001330000001", NVR, "type code 133 is not a channel, device or catalog node type"),
        ("cam-7", NVR, "not a 20-digit ID"),
        (NVR, "34020100002000000001", "also registered as a device"),
        (CAM, NVR, "the same ID is listed by device(s) 34020100002000000001"),
        (CAM, "34020100002000000001", f"the same ID is listed by device(s) {NVR}"),
    }
