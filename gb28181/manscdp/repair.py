"""Repairs of the MANSCDP breakages seen in the field, tried only after the strict parse failed (codec.py).

Each repair rewrites only a construct that is never well-formed XML, so applying one cannot change the meaning
of a body that was right; the codec records the names of those that changed something. Nothing beyond this
list is guessed: a body still broken after them is rejected with its raw bytes (ManscdpError).

- ``control-chars``: NUL and other C0 control characters (and U+FFFE/U+FFFF), which XML 1.0 forbids
  (C stacks append NUL; Hikvision NVRs put 0x01 in Address, wvp#541, wvp#1320).
- ``bare-ampersand``: ``&`` that starts no predefined entity or character reference (Hikvision; spec digest
  §13 quirk 4); escaped to ``&amp;``.
- ``markup-in-text``: a raw ``<`` (binary junk) inside the text of ``<Address>``, ``<Name>`` or ``<Owner>``
  (Hikvision NVR, wvp#903); escaped, so the junk survives as text for diagnosis.
- ``stray-end-tag``: an end tag that closes no open element, e.g. a second ``</Item>`` (lower platform,
  wvp#1320); removed. An end tag that mismatches an element still open (a missing end tag) is not guessed at.
"""

from __future__ import annotations

import re

CONTROL_CHARS = "control-chars"
BARE_AMPERSAND = "bare-ampersand"
MARKUP_IN_TEXT = "markup-in-text"
STRAY_END_TAG = "stray-end-tag"
REPAIRS = (CONTROL_CHARS, BARE_AMPERSAND, MARKUP_IN_TEXT, STRAY_END_TAG)

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# Sections whose content is not markup: left alone by the text repairs.
_OPAQUE = re.compile(r"(<!\[CDATA\[.*?\]\]>|<!--.*?-->)", re.S)
_BARE_AMP = re.compile(r"&(?!(?:amp|lt|gt|apos|quot);|#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};)")
# Text of the elements devices fill with free text. The content may not hold "</" (then it is not junk in one
# element but broken structure) and is bounded, so a missing end tag cannot make it swallow the document.
_FREE_TEXT = re.compile(r"<(Address|Name|Owner)>((?:(?!</)[^\x00]){0,1024}?)</\1\s*>", re.S | re.I)
_TOKEN = re.compile(
    r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<!DOCTYPE|<(/?)([^\s/>!?<]+)[^<>]*?(/?)>",
    re.S | re.I,
)


def repair(text: str) -> tuple[str, tuple[str, ...]]:
    """Apply every known repair, in order; return the text and the names of the repairs that changed it."""
    applied: list[str] = []
    for name, fix in _STEPS:
        fixed = fix(text)
        if fixed != text:
            applied.append(name)
            text = fixed
    return text, tuple(applied)


def _control_chars(text: str) -> str:
    return _CONTROL.sub("", text)


def _outside_opaque(text: str, fix: re.Pattern[str], repl: str) -> str:
    parts = _OPAQUE.split(text)
    return "".join(p if i % 2 else fix.sub(repl, p) for i, p in enumerate(parts))


def _bare_ampersand(text: str) -> str:
    return _outside_opaque(text, _BARE_AMP, "&amp;")


def _markup_in_text(text: str) -> str:
    def escape(m: re.Match[str]) -> str:
        content = m.group(2)
        if "<" not in content and ">" not in content:
            return m.group(0)
        content = content.replace("<", "&lt;").replace(">", "&gt;")
        return f"<{m.group(1)}>{content}</{m.group(1)}>"

    parts = _OPAQUE.split(text)
    return "".join(p if i % 2 else _FREE_TEXT.sub(escape, p) for i, p in enumerate(parts))


def _stray_end_tags(text: str) -> str:
    stack: list[str] = []
    drop: list[tuple[int, int]] = []
    for m in _TOKEN.finditer(text):
        if m.group(0).upper() == "<!DOCTYPE":
            return text  # an internal subset cannot be tokenised this simply: do not guess
        name = m.group(2)
        if name is None or m.group(3):  # comment, CDATA, PI, or an empty-element tag
            continue
        if not m.group(1):
            stack.append(name)
        elif stack and stack[-1] == name:
            stack.pop()
        elif name not in stack:
            drop.append(m.span())
        # else: it closes an element further up -- a missing end tag, not a stray one; left for the parser
    for start, end in reversed(drop):
        text = text[:start] + text[end:]
    return text


_STEPS = (
    (CONTROL_CHARS, _control_chars),
    (BARE_AMPERSAND, _bare_ampersand),
    (MARKUP_IN_TEXT, _markup_in_text),
    (STRAY_END_TAG, _stray_end_tags),
)
