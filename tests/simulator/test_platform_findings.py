"""Platform behaviour the simulator's profiles exposed (fixed; kept as regression tests)."""

from __future__ import annotations

import pytest

from gb28181.channels import to_channel
from gb28181.manscdp.messages import CatalogItem


@pytest.mark.parametrize(
    ("reported", "kept"),
    [("CivilCode", ""), ("340200", "340200"), (" 34 ", "34"), ("3402000000", ""), ("３４", ""), (None, "")],
)
def test_a_placeholder_civil_code_is_not_kept_as_a_civil_code(reported: str | None, kept: str) -> None:
    """Hikvision NVRs/IPCs send <CivilCode>CivilCode</CivilCode> (fixtures-wild hikvision/
    nvr-catalog-response-spvmn-placeholders.txt); spec digest §13 q10: digits, at most 8, else none."""
    item = CatalogItem(device_id="34020000001310004001", name="人民广场监控点1", civil_code=reported)
    channel = to_channel(item, "34020000001180000005", "34020000002000000001", 0.0, single=False)
    assert channel is not None
    assert channel.civil_code == kept
