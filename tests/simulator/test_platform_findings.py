"""Platform behaviour the simulator's profiles exposed, for the lead to fix (xfail until then; strict, so the
fix turns them into failures that ask for the mark to go)."""

from __future__ import annotations

import pytest

from gb28181.channels import to_channel
from gb28181.manscdp.messages import CatalogItem


@pytest.mark.xfail(
    strict=True,
    reason="the platform stores placeholder text as a civil code: Hikvision NVRs/IPCs send "
    "<CivilCode>CivilCode</CivilCode> (fixtures-wild hikvision/nvr-catalog-response-spvmn-placeholders.txt); the spec "
    "digest §13 q10 says validate (digits, at most 8, else null), or `channels --civil-code` and civil-code stats "
    "count 'CivilCode' as a region",
)
def test_a_placeholder_civil_code_is_not_kept_as_a_civil_code() -> None:
    item = CatalogItem(device_id="34020000001310004001", name="人民广场监控点1", civil_code="CivilCode")
    channel = to_channel(item, "34020000001180000005", "34020000002000000001", 0.0, single=False)
    assert channel is not None
    assert channel.civil_code == ""
