"""MANSCDP answers a raw-socket device sends, in the byte format of the wild Hikvision fixtures
(fixtures/sip/wild/hikvision/*presetquery*, *recordinfo*): declared GB2312, GB2312 bytes, LF line ends."""

from __future__ import annotations

import re
from pathlib import Path

MADE = Path(__file__).resolve().parents[2] / "fixtures" / "manscdp" / "made"


def _body(lines: list[str]) -> bytes:
    return ("\n".join(['<?xml version="1.0" encoding="GB2312"?>', *lines]) + "\n").encode("gb2312")


def sn_of(request: bytes) -> int:
    found = re.search(rb"<SN>(\d+)</SN>", request)
    assert found is not None, request
    return int(found.group(1))


def body_of(request: bytes) -> bytes:
    return request.split(b"\r\n\r\n", 1)[1]


def presets(sn: int, channel_id: str, items: list[tuple[int, str]]) -> bytes:
    lines = ["<Response>", "<CmdType>PresetQuery</CmdType>", f"<SN>{sn}</SN>", f"<DeviceID>{channel_id}</DeviceID>",
             f'<PresetList Num="{len(items)}">']  # fmt: skip
    for number, name in items:
        lines += ["<Item>", f"<PresetID>{number}</PresetID>", f"<PresetName>{name}</PresetName>", "</Item>"]
    return _body([*lines, "</PresetList>", "</Response>"])


def control_result(sn: int, device_id: str, result: str = "OK") -> bytes:
    return _body(["<Response>", "<CmdType>DeviceControl</CmdType>", f"<SN>{sn}</SN>",
                  f"<DeviceID>{device_id}</DeviceID>", f"<Result>{result}</Result>", "</Response>"])  # fmt: skip


def record_packets(sn: int) -> list[bytes]:
    """The three made RecordInfo packets (SumNum 5, 7 items with duplicates, GB2312 names), given our SN."""
    return [
        (MADE / f"recordinfo-{n}of3-duplicates.xml").read_bytes().replace(b"<SN>4004</SN>", f"<SN>{sn}</SN>".encode())
        for n in (1, 2, 3)
    ]
