"""The 20-digit GB/T 28181 ID (gb28181/ids.py): parts and the strict-mode registrant check."""

from __future__ import annotations

import pytest

from gb28181.ids import GbId, InvalidId, check_registrant_id

CAMERA = "34020000001320000001"


def test_parts() -> None:
    gid = GbId.parse(CAMERA)
    assert gid.centre == "34020000"
    assert gid.industry == "00"
    assert gid.type_code == 132
    assert gid.domain == "3402000000"
    assert gid.is_device() and not gid.is_platform()
    assert str(gid) == CAMERA
    assert GbId.parse("34020000002000000001").is_platform()


@pytest.mark.parametrize(
    "text",
    ["", "3402000000132000000", "340200000013200000011", "3402000000132000000x", "３4020000001320000001", "²" * 20],
)
def test_parse_rejects_anything_but_20_ascii_digits(text: str) -> None:
    with pytest.raises(InvalidId):
        GbId.parse(text)


@pytest.mark.parametrize(
    "device_id",
    [
        "34020000001110000001",  # 111 DVR
        "34020000001180000001",  # 118 NVR
        "34020000001310000001",  # 131 camera
        "34020000001320000001",  # 132 IPC
        "34020000002000000001",  # 200 lower platform (cascade)
    ],
)
def test_registrants_accepted(device_id: str) -> None:
    assert check_registrant_id(device_id) is None


@pytest.mark.parametrize(
    ("device_id", "why"),
    [
        ("34020000002150000001", "215"),  # business group: a catalog tree node, never a SIP peer
        ("34020000002160000001", "216"),  # virtual organisation: a catalog tree node
        ("34020000004000000001", "400"),  # centre user
        ("34020000000000000001", "000"),
        ("34020000001100000001", "110"),
        ("3402000000132000001", "20-digit"),  # 19 digits
    ],
)
def test_registrants_refused_with_a_reason(device_id: str, why: str) -> None:
    reason = check_registrant_id(device_id)
    assert reason is not None and why in reason
