"""Device queries the operator can ask for (GB/T 28181-2022 A.2.4): building the Query body and rendering the
device's Response as JSON. Typed per-CmdType dataclasses live in gb28181/manscdp/; this is the generic view the
CLI prints (every element the device sent, nested as it came).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from lxml import etree

from gb28181.manscdp import _PARSER, ManscdpError, decode
from gb28181.manscdp.codec import encode
from gb28181.manscdp.messages import ConfigDownloadQuery, DeviceInfoQuery, DeviceStatusQuery, Message

# CLI verb -> the Query it sends (A.2.4). ConfigDownload asks for BasicParam (HeartBeatInterval/Count, ...).
QUERIES: dict[str, Callable[[int, str], Message]] = {
    "info": lambda sn, device_id: DeviceInfoQuery(sn=sn, device_id=device_id),
    "status": lambda sn, device_id: DeviceStatusQuery(sn=sn, device_id=device_id),
    "config": lambda sn, device_id: ConfigDownloadQuery(sn=sn, device_id=device_id, config_type=("BasicParam",)),
}


def build_query(verb: str, sn: int, device_id: str, charset: str = "GB2312") -> tuple[str, bytes]:
    """(CmdType, body) of the ``<Query>`` for a CLI verb, through the codec's encoder (declared and encoded per
    DECISIONS.md: Encoding out), like every other body the platform sends."""
    message = QUERIES[verb](sn, device_id)
    return type(message).CMD, encode(message, charset=charset)


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
