"""MANSCDP (GB/T 28181 Appendix A) XML bodies. This module reads the envelope every handler needs.

Hardened lxml parsing (no DTDs, entities or network, size and depth caps); GB2312/GBK declared bodies are
decoded with GB18030 (a superset), and bodies that are really UTF-8 are detected (GB/T 28181-2022 §6.10;
DECISIONS.md). The full per-CmdType codec arrives with the MANSCDP issue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

MAX_BODY = 1 << 20
MAX_DEPTH = 32

_DECL_ANY = re.compile(r"^\s*<\?xml[^>]*\?>")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    dtd_validation=False,
    load_dtd=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


class ManscdpError(ValueError):
    """The body is not a MANSCDP document we can read; ``raw`` keeps the bytes for diagnosis."""

    def __init__(self, reason: str, raw: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


@dataclass(frozen=True)
class Envelope:
    kind: str  # Query | Control | Notify | Response
    cmd_type: str
    sn: int | None
    device_id: str
    charset: str  # what the body was really decoded with
    fields: dict[str, str] = field(default_factory=dict)  # top-level simple elements, by tag


def decode(body: bytes) -> tuple[str, str]:
    """Bytes -> (text without its XML declaration, charset used)."""
    if len(body) > MAX_BODY:
        raise ManscdpError(f"body of {len(body)} bytes exceeds {MAX_BODY}", body[:200])
    # Strict UTF-8 first whatever the declaration says: real GB2312 text almost never forms valid UTF-8
    # multi-byte sequences, while UTF-8 bodies declared GB2312 are common (wvp#260, wvp#1341).
    for charset in ("utf-8", "gb18030"):
        try:
            text = body.decode(charset)
            break
        except UnicodeDecodeError:
            continue
    else:  # GB18030 maps nearly every byte sequence; this is for the rest
        text, charset = body.decode("gb18030", "replace"), "gb18030"
    text = _DECL_ANY.sub("", text, count=1)
    return _CONTROL.sub("", text), charset


def parse_envelope(body: bytes) -> Envelope:
    text, charset = decode(body)
    try:
        root = etree.fromstring(text.strip(), _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ManscdpError(f"not well-formed XML: {exc}", body[:2000]) from exc
    if root is None:
        raise ManscdpError("empty document", body[:2000])
    if _depth(root) > MAX_DEPTH:
        raise ManscdpError(f"XML nested deeper than {MAX_DEPTH}", body[:2000])
    fields: dict[str, str] = {}
    for child in root:
        if isinstance(child.tag, str) and len(child) == 0:
            fields.setdefault(child.tag, (child.text or "").strip())
    cmd = fields.get("CmdType", "")
    if not cmd:
        raise ManscdpError("no CmdType", body[:2000])
    sn_text = fields.get("SN", "")
    sn = int(sn_text) if sn_text.isdigit() and len(sn_text) < 12 else None
    return Envelope(str(root.tag), cmd, sn, fields.get("DeviceID", ""), charset, fields)


def _depth(elem: etree._Element) -> int:
    deepest = 0
    stack = [(elem, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_DEPTH:
            return d
        stack.extend((c, d + 1) for c in node)
    return deepest
