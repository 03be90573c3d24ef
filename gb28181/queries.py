"""Device queries the operator can ask for (GB/T 28181-2022 A.2.4): building the Query body and rendering the
device's Response as JSON. Typed per-CmdType dataclasses live in gb28181/manscdp/; this is the generic view the
CLI prints (every element the device sent, nested as it came).
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

from gb28181.manscdp import _PARSER, ManscdpError, decode

# CLI verb -> (CmdType, extra elements). ConfigDownload asks for BasicParam (HeartBeatInterval/Count, ...).
QUERIES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "info": ("DeviceInfo", ()),
    "status": ("DeviceStatus", ()),
    "config": ("ConfigDownload", (("ConfigType", "BasicParam"),)),
}


def build_query(
    cmd_type: str, sn: int, device_id: str, extra: tuple[tuple[str, str], ...] = (), charset: str = "GB2312"
) -> bytes:
    """A ``<Query>`` body (A.2.4). Declared GB2312 and encoded with GB18030 (DECISIONS.md: Encoding out)."""
    declared = "UTF-8" if charset.upper() in ("UTF-8", "UTF8") else charset.upper()
    lines = [
        f'<?xml version="1.0" encoding="{declared}"?>',
        "<Query>",
        f"<CmdType>{escape(cmd_type)}</CmdType>",
        f"<SN>{sn}</SN>",
        f"<DeviceID>{escape(device_id)}</DeviceID>",
    ]
    lines.extend(f"<{name}>{escape(value)}</{name}>" for name, value in extra)
    lines.append("</Query>")
    text = "\r\n".join(lines) + "\r\n"
    return text.encode("utf-8" if declared == "UTF-8" else "gb18030")


def render(body: bytes) -> dict[str, Any]:
    """Every element of a Response as JSON: text for leaves, dicts for elements with children, lists for
    repeated names; ``Num`` attributes become ``"<name>@Num"``."""
    text, _ = decode(body)
    try:
        root = etree.fromstring(text.strip(), _PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise ManscdpError(f"not well-formed XML: {exc}", body[:2000]) from exc
    value = _element(root)
    return value if isinstance(value, dict) else {"value": value}


def _element(elem: etree._Element) -> Any:
    children = [c for c in elem if isinstance(c.tag, str)]
    if not children:
        return (elem.text or "").strip()
    counts = Counter(c.tag for c in children)
    out: dict[str, Any] = {}
    for child in children:
        value = _element(child)
        if counts[child.tag] > 1:
            out.setdefault(child.tag, []).append(value)
        else:
            out[child.tag] = value
        if (num := child.get("Num")) is not None:
            out[f"{child.tag}@Num"] = num
    return out
