"""MANSCDP (GB/T 28181 Appendix A) XML bodies. This module reads the envelope every handler needs.

Hardened lxml parsing (no DTDs, entities or network, size and depth caps); GB2312/GBK declared bodies are
decoded with GB18030 (a superset), and bodies that are really UTF-8 are detected (GB/T 28181-2022 §6.10;
DECISIONS.md). The full per-CmdType codec arrives with the MANSCDP issue.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

MAX_BODY = 1 << 20
MAX_DEPTH = 32

_DECL_ANY = re.compile(r"^\s*<\?xml[^>]*\?>")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_DECLARED = re.compile(rb"^[\s\x00]*<\?xml[^>]*?encoding\s*=\s*[\"']?([A-Za-z0-9._-]+)", re.IGNORECASE)
_BOM = "\ufeff"
# An element below depth MAX_DEPTH (the root is depth 1), found in C rather than by a Python walk.
_TOO_DEEP = etree.XPath("boolean(" + "/".join(["*"] * MAX_DEPTH) + ")")

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
    # codec.Parsed when made by codec.envelope: the parse to read the whole message from (codec.decode_parsed)
    parsed: Any = field(default=None, compare=False, repr=False)


def decode(body: bytes) -> tuple[str, str]:
    """Bytes -> (text without its XML declaration, BOM and control characters; charset used)."""
    text, charset = decode_raw(body)
    # Control characters (NUL from C stacks) first, so that they cannot hide the declaration; lxml refuses a
    # str that still carries one.
    text = _CONTROL.sub("", text).lstrip(_BOM)
    return strip_declaration(text), charset


def strip_declaration(text: str) -> str:
    """The text without a leading XML declaration (lxml refuses a str that declares an encoding)."""
    return _DECL_ANY.sub("", text, count=1)


def decode_raw(body: bytes) -> tuple[str, str]:
    """Bytes -> (text exactly as decoded, declaration, BOM and control characters kept; charset used).
    The codec (codec.py) parses this strictly first and records any repair it then needs (repair.py)."""
    if len(body) > MAX_BODY:
        raise ManscdpError(f"body of {len(body)} bytes exceeds {MAX_BODY}", body[:200])
    # Strict UTF-8 first whatever the declaration says: UTF-8 bodies declared GB2312 are common (wvp#260,
    # wvp#1341), while GB2312 text rarely forms valid UTF-8 -- but short values do (模 = C4 A3 = "ģ"; about one
    # Chinese character in five), so a body not declared UTF-8 whose UTF-8 reading has no CJK at all but
    # Latin/Greek/Cyrillic letters is read as GB18030 when that gives Chinese.
    declared = _DECLARED.match(body.removeprefix(b"\xef\xbb\xbf"))
    declared_utf8 = declared is not None and declared.group(1).lower().replace(b"-", b"").replace(b"_", b"") == b"utf8"
    try:
        text, charset = body.decode("utf-8"), "utf-8"
        if not declared_utf8 and not text.isascii() and _misread_gb(text):
            try:
                gb = body.decode("gb18030")
            except UnicodeDecodeError:
                pass
            else:
                if any(_is_cjk(ord(ch)) for ch in gb):
                    text, charset = gb, "gb18030"
    except UnicodeDecodeError:
        try:
            text, charset = body.decode("gb18030"), "gb18030"
        except UnicodeDecodeError:  # GB18030 maps nearly every byte sequence; this is for the rest
            text, charset = body.decode("gb18030", "replace"), "gb18030"
    return text, charset


def _is_cjk(cp: int) -> bool:
    return 0x3000 <= cp <= 0x9FFF or 0xF900 <= cp <= 0xFAFF or 0xFF00 <= cp <= 0xFFEF or cp >= 0x20000


def _misread_gb(text: str) -> bool:
    """Whether a UTF-8 reading looks like GB2312 bytes misread: two-byte sequences (U+0080-U+07FF) and no CJK.
    Chinese in UTF-8 is three-byte CJK; a GB2312 body read as UTF-8 yields Latin/Greek/Cyrillic letters. A
    reading with unassigned characters is never real text (GB pairs such as 癞蓟 form four-byte UTF-8 sequences
    beyond plane 3), whatever CJK it also shows. (Private use is left alone: old GB18030 tables map some rare
    characters there.)"""
    two_byte = cjk = False
    for ch in text:
        cp = ord(ch)
        if cp < 0x80:
            continue
        if unicodedata.category(ch) == "Cn":
            return True
        if cp < 0x800:
            two_byte = True
        elif _is_cjk(cp):
            cjk = True
    return two_byte and not cjk


def parse_text(text: str, raw: bytes) -> etree._Element:
    """Decoded text (declaration stripped) -> root element, through the hardened parser and the depth cap;
    ``raw`` (the body) goes into the ManscdpError."""
    try:
        root = etree.fromstring(text.strip(), _PARSER)
    except (etree.LxmlError, ValueError) as exc:  # ValueError: e.g. a stray encoding declaration
        raise ManscdpError(f"not well-formed XML: {exc}", raw[:2000]) from exc
    if root is None:
        raise ManscdpError("empty document", raw[:2000])
    if text.count("<") > MAX_DEPTH and _TOO_DEEP(root):  # fewer tags cannot nest that deep
        raise ManscdpError(f"XML nested deeper than {MAX_DEPTH}", raw[:2000])
    return root


def parse_envelope(body: bytes) -> Envelope:
    text, charset = decode(body)
    root = parse_text(text, body)
    fields: dict[str, str] = {}
    for child in root:
        if isinstance(child.tag, str) and len(child) == 0:
            fields.setdefault(child.tag, (child.text or "").strip())
    cmd = fields.get("CmdType", "")
    if not cmd:
        raise ManscdpError("no CmdType", body[:2000])
    sn_text = fields.get("SN", "")
    sn = int(sn_text) if sn_text.isascii() and sn_text.isdigit() and len(sn_text) < 12 else None
    return Envelope(str(root.tag), cmd, sn, fields.get("DeviceID", ""), charset, fields)
