"""Relaying MANSCDP bodies between a superior and the real device (spec digest §11: DeviceInfo, DeviceStatus and
DeviceControl for a shared ID go to the device that owns it, answers come back up with the superior's SN and the
shared ID). Only the top-level SN and DeviceID change; every other element goes through as the peer sent it.
Declared and encoded per DECISIONS.md (Encoding out). No IO."""

from __future__ import annotations

from collections.abc import Mapping

from lxml import etree

from gb28181.manscdp import _PARSER, ManscdpError, decode

_OUT = {"GB2312": ("GB2312", "gb18030"), "GB18030": ("GB18030", "gb18030"), "UTF-8": ("UTF-8", "utf-8")}


def rewrite(
    body: bytes, *, sn: int | None, device_id: str, charset: str, rename: Mapping[str, str] | None = None
) -> bytes:
    """``body`` with its top-level SN (when given) and DeviceID replaced, and any nested DeviceID named in
    ``rename`` (a RecordInfo item's channel, say) renamed; declared and encoded in ``charset``. ManscdpError for a
    body that is not XML."""
    text, _ = decode(body)
    try:
        root = etree.fromstring(text.strip(), _PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise ManscdpError(f"not well-formed XML: {exc}", body[:2000]) from exc
    for tag, value in (("SN", None if sn is None else str(sn)), ("DeviceID", device_id)):
        if value is None:
            continue
        elem = root.find(tag)
        if elem is None:
            elem = etree.SubElement(root, tag)
        elem.text = value
    for elem in root.iter("DeviceID") if rename else ():
        if elem.getparent() is not root and (elem.text or "").strip() in rename:  # type: ignore[operator]
            elem.text = rename[(elem.text or "").strip()]  # type: ignore[index]
    declared, codec = _OUT.get(charset.upper().replace("UTF8", "UTF-8"), _OUT["GB2312"])
    xml = f'<?xml version="1.0" encoding="{declared}"?>\n' + etree.tostring(root, encoding="unicode") + "\n"
    return xml.encode(codec, errors="replace")
