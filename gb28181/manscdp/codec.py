"""MANSCDP bodies <-> message dataclasses (messages.py), both ways from the fields' XML paths.

``decode(body)`` reads any body: charset detection as in ``gb28181.manscdp.decode`` (GB2312/GBK/GB18030 read as
GB18030, UTF-8 detected; GB/T 28181-2022 §6.10), a strict hardened parse, and only if that fails the known
repairs (repair.py), recorded on the result. It dispatches on (root, CmdType) case-insensitively, in any element
order; an unknown pair gives ``Unknown`` with its fields. Anything unreadable raises ManscdpError with the raw
bytes; nothing else escapes.

``encode(message, charset=...)`` writes what the platform sends. DECISIONS.md "Encoding out": ``GB2312`` (the
default, for 2016 peers) declares GB2312 and encodes with GB18030, warning when a character is outside GB2312;
``GB18030`` (peers with X-GB-ver 3.0) and ``UTF-8`` declare and encode themselves.
``encode_catalog_packets`` splits a catalog into serial packets (App.M) each within a byte budget.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from lxml import etree

from gb28181.manscdp import Envelope, ManscdpError, decode_raw, parse_text, strip_declaration
from gb28181.manscdp.messages import (
    MESSAGE_TYPES,
    POINT_CLASSES,
    CatalogItem,
    CatalogNotify,
    CatalogResponse,
    Message,
    Node,
    Unknown,
    _fixups,
)
from gb28181.manscdp.repair import repair

log = logging.getLogger(__name__)

__all__ = [
    "Decoded",
    "Encoded",
    "decode",
    "encode",
    "encode_catalog_packets",
    "encode_checked",
    "register",
]

_BOM = "\ufeff"
_MISSING = object()
_INT = re.compile(r"[+-]?[0-9]{1,18}")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")


@dataclass(frozen=True)
class Decoded:
    """A decoded body: the message, the root and CmdType as sent, the charset really used, the repairs that
    were needed (repair.py names; empty for a well-formed body) and the raw bytes."""

    message: Message
    root: str
    cmd_type: str
    charset: str
    repairs: tuple[str, ...]
    raw: bytes

    @property
    def ok(self) -> bool:
        """False when the body is a response whose Result is not OK (A.2.1.5): never take it as success."""
        return self.message.ok

    @property
    def error(self) -> str | None:
        """``"ERROR: reason"`` for a failed response (never empty), None otherwise."""
        m = self.message
        if m.ok:
            return None
        result = getattr(m, "result", None) or "empty Result"
        reason = getattr(m, "reason", None)
        return f"{result}: {reason}" if reason else result


@dataclass(frozen=True)
class Encoded:
    body: bytes
    charset: str  # as declared
    non_gb2312: str  # characters sent that GB2312 lacks (declared GB2312, encoded GB18030), sorted


# ------------------------------------------------------------------------------------------- field specs


@dataclass(frozen=True)
class _Field:
    name: str
    conv: str
    write: tuple[str, ...]  # canonical element path
    attr: str  # attribute name for conv "num"
    item: Any  # node class for list/node
    item_tag: str  # list item element tag


@dataclass(frozen=True)
class _Spec:
    fields: tuple[_Field, ...]
    by_path: dict[str, tuple[_Field, int]]  # lower-case path -> (field, priority: 0 main, 1.. alternatives)
    stops: dict[str, _Field]  # list containers and nested nodes: read by their field, not walked
    containers: frozenset[str]  # lower-case prefixes of known paths (an empty <Info/> is not an extra)
    nums: dict[str, _Field]  # container path -> its Num field


_SPECS: dict[type, _Spec] = {}


def _spec(cls: type) -> _Spec:
    spec = _SPECS.get(cls)
    if spec is not None:
        return spec
    fields: list[_Field] = []
    by_path: dict[str, tuple[_Field, int]] = {}
    stops: dict[str, _Field] = {}
    containers: set[str] = set()
    nums: dict[str, _Field] = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "conv" not in meta:
            continue
        conv, path = meta["conv"], meta["path"]
        attr = ""
        if conv == "num":
            path, attr = path.split("@")
        item_tag = ""
        if conv == "list":
            path, item_tag = path.rsplit("/", 1)
        fld = _Field(f.name, conv, tuple(path.split("/")), attr, meta["item"], item_tag)
        fields.append(fld)
        key = path.lower()
        if conv == "num":
            nums[key] = fld
        elif conv in ("list", "node"):
            stops[key] = fld
        else:
            for prio, p in enumerate((path, *meta["alt"])):
                by_path.setdefault(p.lower(), (fld, prio))
        for p in (path, *meta["alt"]):
            parts = p.lower().split("/")
            containers.update("/".join(parts[:i]) for i in range(1, len(parts) + (conv == "num")))
    spec = _SPECS[cls] = _Spec(tuple(fields), by_path, stops, frozenset(containers), nums)
    return spec


# ------------------------------------------------------------------------------------------- decoding

_REGISTRY: dict[tuple[str, str], type[Message]] = {}


def register(cls: type[Message]) -> type[Message]:
    """Make ``decode`` build ``cls`` for its (ROOT, CMD and ALIASES); usable as a class decorator by modules
    that define more messages with ``messages.x`` fields (DeviceControl lives in control.py)."""
    for cmd in (cls.CMD, *cls.ALIASES):
        _REGISTRY[(cls.ROOT.lower(), cmd.lower())] = cls
    return cls


for _cls in MESSAGE_TYPES:
    register(_cls)


def decode(body: bytes) -> Decoded:
    """Bytes -> Decoded. Raises ManscdpError (with the raw bytes) and nothing else."""
    try:
        return _decode(body)
    except ManscdpError:
        raise
    except Exception as exc:  # a bug of ours: logged; the caller still gets only ManscdpError (400)
        log.exception("MANSCDP decoder failed on a body it parsed")
        raise ManscdpError(f"undecodable body: {type(exc).__name__}", body[:2000]) from exc


@dataclass(frozen=True)
class Parsed:
    """A body parsed (strictly, else after the known repairs) but not yet read into a message: what routing needs
    (``envelope``) without a second parse when the whole message is read next (``decode_parsed``)."""

    root: etree._Element
    root_tag: str
    cmd_type: str
    charset: str
    repairs: tuple[str, ...]
    raw: bytes


# The keepalive as devices send it (GB/T 28181-2016 A.2.5.2): an optional declaration, <Notify>, CmdType first, then
# flat elements of printable ASCII text (no '<' or '&'). A body of that shape is well-formed in every charset the
# codec reads, so the lean lane may take it without lxml; any other shape goes through ``parse``.
_PLAIN_KEEPALIVE = re.compile(
    rb'[ \t\r\n]*(?:<\?xml version="1\.0"(?: encoding="(?:GB2312|gb2312|GBK|gbk|GB18030|gb18030|UTF-8|utf-8)")?'
    rb"[ \t]*\?>)?[ \t\r\n]*<Notify>[ \t\r\n]*<CmdType>Keepalive</CmdType>"
    rb"(?:[ \t\r\n]*<([A-Za-z][A-Za-z0-9]{0,31})>[\x20-\x25\x27-\x3b\x3d-\x7e]*</\1>){0,16}"
    rb"[ \t\r\n]*</Notify>[ \t\r\n]*"
)


def is_plain_keepalive(body: bytes) -> bool:
    """Whether ``body`` is a keepalive in the plain shape above: ``parse`` would read it as Notify/Keepalive."""
    return len(body) < 2048 and _PLAIN_KEEPALIVE.fullmatch(body) is not None


def parse(body: bytes) -> Parsed:
    """Bytes -> Parsed. Raises ManscdpError (with the raw bytes) and nothing else."""
    try:
        return _parse(body)
    except ManscdpError:
        raise
    except Exception as exc:  # a bug of ours: logged; the caller still gets only ManscdpError (400)
        log.exception("MANSCDP parser failed on a body")
        raise ManscdpError(f"unparsable body: {type(exc).__name__}", body[:2000]) from exc


def envelope(parsed: Parsed) -> Envelope:
    """The routing view of a parsed body: root, CmdType, SN, DeviceID and the top-level simple elements."""
    fields: dict[str, str] = {}
    for child in parsed.root:
        if isinstance(child.tag, str) and len(child) == 0:
            fields.setdefault(_local(child), (child.text or "").strip())
    sn_text = fields.get("SN", "")
    sn = int(sn_text) if sn_text.isascii() and sn_text.isdigit() and len(sn_text) < 12 else None
    return Envelope(parsed.root_tag, parsed.cmd_type, sn, fields.get("DeviceID", ""), parsed.charset, fields, parsed)


def decode_parsed(parsed: Parsed) -> Decoded:
    """Parsed -> Decoded, the same as ``decode`` of its bytes. Raises ManscdpError and nothing else."""
    try:
        return _read_message(parsed)
    except ManscdpError:
        raise
    except Exception as exc:
        log.exception("MANSCDP decoder failed on a body it parsed")
        raise ManscdpError(f"undecodable body: {type(exc).__name__}", parsed.raw[:2000]) from exc


def _decode(body: bytes) -> Decoded:
    return _read_message(_parse(body))


def _parse(body: bytes) -> Parsed:
    text, charset = decode_raw(body)
    text = text.lstrip(_BOM)
    repairs: tuple[str, ...] = ()
    try:
        root = parse_text(strip_declaration(text), body)
    except ManscdpError as strict:
        fixed, repairs = repair(text)
        if not repairs:
            raise
        try:
            root = parse_text(strip_declaration(fixed.lstrip(_BOM)), body)
        except ManscdpError as again:
            raise ManscdpError(f"{again.reason} (after repairs: {', '.join(repairs)})", body[:2000]) from strict
    root_tag = _local(root)
    cmd_type = ""
    for child in root:
        if isinstance(child.tag, str) and _local(child).lower() == "cmdtype":
            cmd_type = (child.text or "").strip()
            break
    if not cmd_type:
        raise ManscdpError("no CmdType", body[:2000])
    return Parsed(root, root_tag, cmd_type, charset, repairs, body)


def _read_message(parsed: Parsed) -> Decoded:
    root, root_tag, cmd_type = parsed.root, parsed.root_tag, parsed.cmd_type
    cls = _REGISTRY.get((root_tag.lower(), cmd_type.lower()))
    if cls is None:
        message: Message = _read(Unknown, root, {"root": root_tag, "cmd_type": cmd_type})
    else:
        message = _read(cls, root, {})
    return Decoded(message, root_tag, cmd_type, parsed.charset, parsed.repairs, parsed.raw)


def _local(elem: etree._Element) -> str:
    tag = elem.tag
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag


def _elements(elem: etree._Element) -> Iterator[etree._Element]:
    """Child elements only (no entity references, comments or PIs), filtered in C."""
    return elem.iterchildren(etree.Element)


def _has_elements(elem: etree._Element) -> bool:
    return len(elem) > 0 and next(_elements(elem), None) is not None


# One step of the walk, per (path as sent so far, child tag): everything ``_read`` decides about a child from
# its name alone, computed once per node class (a catalog repeats the same 15 tags 50,000 times).
# (path as sent, Num field read from the element's attribute, list/node field that reads the element,
# (leaf field, priority), an unknown leaf goes to ``extra``, skipped: the root's CmdType, and for a leaf on its
# field's main path that needs nothing else (no Num, not multi): its field name and conv, the fast path)
_Route = tuple[str, Any, Any, Any, bool, bool, "str | None", "str | None"]
_BEST = (0, "", "")  # the priority record of a value read on the fast path (main path: nothing beats it)
_ROUTES_MAX = 4096  # routes cached per class; past that (bodies with endless distinct tags) routes are not kept


def _route(cls: type, spec: _Spec, orig: str, tag: str) -> _Route:
    tables = _ROUTES.setdefault(cls, {})
    table = tables.get(orig)
    route = None if table is None else table.get(tag)
    if route is None:
        name = tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag
        key, path = orig.lower() + name.lower(), orig + name
        num, stop, hit = spec.nums.get(key), spec.stops.get(key), spec.by_path.get(key)
        skip = key == "cmdtype" and issubclass(cls, Message)
        fast = conv = None
        if hit is not None and hit[1] == 0 and hit[0].conv != "multi" and num is None and stop is None and not skip:
            fast, conv = hit[0].name, hit[0].conv
        route = (path, num, stop, hit, key not in spec.containers and key not in spec.nums, skip, fast, conv)
        if _ROUTE_COUNT.get(cls, 0) < _ROUTES_MAX:
            tables.setdefault(orig, {})[tag] = route
            _ROUTE_COUNT[cls] = _ROUTE_COUNT.get(cls, 0) + 1
    return route


_ROUTES: dict[type, dict[str, dict[str, _Route]]] = {}  # class -> path so far -> child tag -> route
_ROUTE_COUNT: dict[type, int] = {}
# Classes built without their __init__ (see _build): per class, its field defaults, or None when it must be.
_FAST: dict[type, dict[str, Any] | None] = {}


def _defaults(cls: type) -> dict[str, Any] | None:
    """Field defaults of a node class that may be built by filling its __dict__: a plain frozen dataclass
    whose only __post_init__ is Node's (which turns lists into tuples and fills a missing Num; ``_read``
    passes tuples and ``_build`` fills Num). None for classes with slots or a __post_init__ of their own."""
    if cls in _FAST:
        return _FAST[cls]
    found: dict[str, Any] | None = {}
    if getattr(cls, "__post_init__", None) is not Node.__post_init__ or "__slots__" in vars(cls):
        found = None
    else:
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                found[f.name] = f.default
            elif f.name == "extra":
                found[f.name] = None  # set by _build; here for the field order of __dict__
            else:  # a default_factory other than extra's: not worth a special case
                found = None
                break
    _FAST[cls] = found
    return found


def _build(cls: type, values: dict[str, Any], kwargs: dict[str, Any], extra: dict[str, str]) -> Any:
    """``cls(**values, **kwargs, extra=extra)``, several times faster for the plain node classes: a frozen
    dataclass's __init__ pays an object.__setattr__ per field (57 for a catalog item). The result is the same
    object: same fields, same equality and hash."""
    defaults = _defaults(cls)
    if defaults is None or kwargs:
        return cls(**values, **kwargs, extra=extra)
    obj = object.__new__(cls)
    state = defaults.copy()
    state.update(values)
    state["extra"] = extra
    object.__setattr__(obj, "__dict__", state)
    for items, num in _fixups(cls)[1]:  # Node.__post_init__: a list read without its Num gets its length
        if state[num] is None and state[items]:
            state[num] = len(state[items])
    return obj


def _read(cls: type, elem: etree._Element, kwargs: dict[str, Any]) -> Any:
    spec = _spec(cls)
    values: dict[str, Any] = {}
    prios: dict[str, tuple[int, str, str]] = {}  # field -> (priority, path, text) of its value
    extra: dict[str, str] = {}
    lists: list[str] = []  # fields read as lists (multi, list): made tuples at the end
    tables = _ROUTES.get(cls) or {}

    def walk(parent: etree._Element, orig: str) -> None:
        """Depth first in document order; lower-case path for matching, path as sent for ``extra``. The walk
        stops at list containers and nested nodes, which their field reads."""
        table = tables.get(orig) or {}
        for child in parent.iterchildren(etree.Element):  # elements only: no comments, PIs or entities
            tag = child.tag
            route = table.get(tag) or _route(cls, spec, orig, tag)
            fast = route[6]
            if fast is not None and fast not in values and not len(child):  # first value of a plain leaf
                text = child.text
                text = text.strip() if text else ""
                values[fast] = text if route[7] == "str" else _convert(route[7], text, route[0], extra)
                continue
            path, num, stop, hit, keep, skip, _, _ = route
            if skip:
                continue
            if num is not None and num.name not in values:
                raw = next((v for a, v in child.attrib.items() if a.lower() == num.attr.lower()), None)
                if raw is not None:
                    values[num.name] = _convert("int", raw.strip(), path + "@" + num.attr, extra)
            if stop is not None:
                _read_stop(stop, child, path)
                continue
            if len(child) and _has_elements(child):
                walk(child, path + "/")
                continue
            text = child.text
            text = text.strip() if text else ""
            if hit is None:
                if keep:
                    extra.setdefault(path, text)
                continue
            fld, prio = hit
            name = fld.name
            if fld.conv == "multi":
                if name not in values:
                    values[name] = []
                    lists.append(name)
                values[name].append(text)
                continue
            current = values.get(name, _MISSING)
            if current is _MISSING:
                values[name] = text if fld.conv == "str" else _convert(fld.conv, text, path, extra)
                prios[name] = (prio, path, text)
            elif current is None or prio < prios.get(name, _BEST)[0]:
                value = _convert(fld.conv, text, path, extra)  # None: its text is in extra
                if value is None:
                    continue
                if current is not None:  # the main path wins over an alternative, which is kept
                    extra.setdefault(prios[name][1], prios[name][2])
                values[name], prios[name] = value, (prio, path, text)
            else:
                extra.setdefault(path, text)  # a duplicate: kept, not lost

    def _read_stop(stop: _Field, child: etree._Element, path: str) -> None:
        if stop.conv == "node":
            if stop.name not in values:
                values[stop.name] = _read(stop.item, child, {})
            return
        items = values.get(stop.name)
        if items is None:
            items = values[stop.name] = []
            lists.append(stop.name)
        item_cls, item_tag = stop.item, stop.item_tag
        tag = item_tag.lower()
        for sub in _elements(child):
            if sub.tag == item_tag:  # as sent by nearly everyone: no namespace, the spec's case
                item = _read_plain(item_cls, sub)
                items.append(item if item is not None else _read(item_cls, sub, {}))
                continue
            sub_name = _local(sub)
            if sub_name.lower() == tag:
                items.append(_read(item_cls, sub, {}))
            elif not _has_elements(sub):
                extra.setdefault(f"{path}/{sub_name}", (sub.text or "").strip())

    walk(elem, "")
    for name in lists:
        values[name] = tuple(values[name])
    return _build(cls, values, kwargs, extra)


def _read_plain(cls: type, elem: etree._Element) -> Any:
    """``_read(cls, elem, {})`` for the shape a list item nearly always has, or None when ``elem`` needs the
    general walk: every child's route is already known and is either the first value of a plain leaf (the
    walk's fast path) or a container of such leaves (a catalog item's ``Info``). No closures, priorities or
    lists per item: a 50,000-item catalog is read through here. None for anything else (a repeated or
    alternative element, an unknown tag, a Num, a nested list...), and the caller reads the item again with
    ``_read``, which decides those cases, so the result never differs."""
    tables = _ROUTES.get(cls)
    if tables is None or _defaults(cls) is None:
        return None
    values: dict[str, Any] = {}
    extra: dict[str, str] = {}
    if not _walk_plain(tables, elem, "", values, extra):
        return None
    return _build(cls, values, {}, extra)


def _walk_plain(
    tables: dict[str, dict[str, _Route]],
    parent: etree._Element,
    orig: str,
    values: dict[str, Any],
    extra: dict[str, str],
) -> bool:
    """The walk of ``_read`` restricted to known plain leaves and containers; False at anything else."""
    table = tables.get(orig)
    if table is None:
        return False
    for child in parent.iterchildren(etree.Element):
        route = table.get(child.tag)
        if route is None:
            return False
        fast = route[6]
        if fast is not None:
            if fast in values or len(child):
                return False
            text = child.text
            text = text.strip() if text else ""
            conv = route[7]
            if conv == "str":
                values[fast] = text
            elif conv == "int" and text.isdigit() and text.isascii() and len(text) <= 18:  # as _convert
                values[fast] = int(text)
            else:
                values[fast] = _convert(conv, text, route[0], extra)
        elif route[1] is None and route[2] is None and not route[5] and len(child) and _has_elements(child):
            if not _walk_plain(tables, child, route[0] + "/", values, extra):
                return False
        else:
            return False
    return True


def _convert(conv: str, text: str, path: str, extra: dict[str, str]) -> Any:
    """Text -> value; None (and the text kept in ``extra``) when it does not convert."""
    if conv == "str":
        return text
    if conv == "ids":  # multi-valued ParentID (2022 A.2.1.9): "/"-separated
        if "/" not in text:
            return (text.strip(),) if text.strip() else ()
        if text.replace("/", "").isalnum():  # no whitespace to strip (the common case: digits)
            return tuple(filter(None, text.split("/")))
        return tuple(p.strip() for p in text.split("/") if p.strip())
    value: Any = None
    if conv == "float" and text.replace(".", "", 1).isdigit() and text.isascii():  # digits, at most one dot
        value = float(text)
        if math.isfinite(value):  # 400 digits overflow to inf
            return value
        value = None
    if conv in ("int", "point") and text.isascii() and text.isdigit() and len(text) <= 18:  # the common case
        value = int(text)
        if conv == "point" and value not in POINT_CLASSES:
            value = None
    elif conv == "uint" and text.isascii() and text.isdigit() and len(text) < 12:  # SN (A.2.1.3), as the envelope
        value = int(text)
    elif conv in ("int", "point") and _INT.fullmatch(text):
        value = int(text)
        if conv == "point" and value not in POINT_CLASSES:
            value = None
    elif conv == "float" and _FLOAT.fullmatch(text):
        value = float(text)
        if not math.isfinite(value):  # 1e999 overflows to inf; NaN/inf never make a coordinate
            value = None
    if value is None:  # unreadable or empty: kept as sent, so that writing it back gives the same message
        extra.setdefault(path, text)
    return value


# ------------------------------------------------------------------------------------------- encoding

# charset label -> (declared, Python codec, warn outside GB2312)
_CHARSETS = {
    "gb2312": ("GB2312", "gb18030", True),
    "gbk": ("GB2312", "gb18030", True),
    "gb18030": ("GB18030", "gb18030", False),
    "utf-8": ("UTF-8", "utf-8", False),
    "utf8": ("UTF-8", "utf-8", False),
}


def encode(message: Message, *, charset: str = "GB2312") -> bytes:
    """Message -> body bytes, declared and encoded per DECISIONS.md (see the module doc); logs a warning when a
    GB2312-declared body carries characters GB2312 lacks. Raises ValueError for text XML cannot carry."""
    out = encode_checked(message, charset=charset)
    if out.non_gb2312:
        log.warning(
            "%s body declared GB2312 carries characters outside GB2312 (sent as GB18030): %r",
            type(message).__name__,
            out.non_gb2312,
        )
    return out.body


def encode_checked(message: Message, *, charset: str = "GB2312") -> Encoded:
    """Like ``encode``, returning the characters outside GB2312 instead of logging them."""
    try:
        declared, codec, check = _CHARSETS[charset.strip().lower().replace("_", "-")]
    except KeyError:
        raise ValueError(f"unsupported MANSCDP charset {charset!r} (GB2312, GB18030 or UTF-8)") from None
    if isinstance(message, Unknown):
        root_tag, cmd = message.root, message.cmd_type
    else:
        root_tag, cmd = type(message).ROOT, type(message).CMD
    if not root_tag or not cmd:
        raise ValueError(f"{type(message).__name__} has no root or CmdType to encode")
    root = etree.Element(root_tag)
    etree.SubElement(root, "CmdType").text = cmd
    _write(message, root)
    etree.indent(root, space="")
    text = f'<?xml version="1.0" encoding="{declared}"?>\n' + etree.tostring(root, encoding="unicode") + "\n"
    bad = ""
    if check and not text.isascii():
        bad = "".join(sorted({ch for ch in text if ord(ch) > 0x7F and not _in_gb2312(ch)}))
    return Encoded(text.encode(codec), declared, bad)


def _in_gb2312(ch: str) -> bool:
    try:
        ch.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def _write(node: Node, elem: etree._Element) -> None:
    for fld in _spec(type(node)).fields:
        value = getattr(node, fld.name)
        if value is None or value == ():
            continue
        if fld.conv == "num":
            _ensure(elem, fld.write).set(fld.attr, str(value))
        elif fld.conv == "list":
            container = _ensure(elem, fld.write)
            for item in value:
                _write(item, etree.SubElement(container, fld.item_tag))
        elif fld.conv == "node":
            _write(value, _ensure(elem, fld.write, new=True))
        elif fld.conv == "multi":
            parent = _ensure(elem, fld.write[:-1])
            for v in value:
                etree.SubElement(parent, fld.write[-1]).text = v
        else:
            _ensure(elem, fld.write, new=True).text = _text(fld.conv, value)
    for path, text in node.extra.items():
        parts = path.split("@", 1)  # an unconvertible attribute value (DeviceList@Num="x")
        target = _ensure(elem, tuple(parts[0].split("/")), new=len(parts) == 1)
        if len(parts) == 2:
            target.set(parts[1], text)
        else:
            target.text = text


def _ensure(elem: etree._Element, path: tuple[str, ...], *, new: bool = False) -> etree._Element:
    """The element at ``path`` under ``elem``, containers reused or created; the last one new if asked.
    A leaf that already holds text is never reused as a container (its text would be lost on reading)."""
    for i, tag in enumerate(path):
        last = i == len(path) - 1
        found = None
        if not (new and last):
            found = next((c for c in elem if c.tag == tag and (last or c.text is None)), None)
        elem = found if found is not None else etree.SubElement(elem, tag)
    return elem


def _text(conv: str, value: Any) -> str:
    if conv == "ids":
        return "/".join(value)
    if conv == "float":
        r = repr(float(value))
        return format(Decimal(r), "f") if "e" in r or "E" in r else r
    return str(value)


# ------------------------------------------------------------------------------------------- catalog packets


def encode_catalog_packets(
    items: Iterable[CatalogItem],
    sn: int,
    device_id: str,
    sum_num: int | None = None,
    per_packet: int = 8,
    charset: str = "GB2312",
    max_bytes: int = 8192,
    *,
    notify: bool = False,
) -> Iterator[bytes]:
    """A catalog as serial packets (App.M): same SN, ``SumNum`` = the total (``sum_num``, default the number of
    items), at most ``per_packet`` items each and each body at most ``max_bytes`` long (fewer items when needed).
    No items: one packet with SumNum and no DeviceList. ``notify``: Notify bodies, where SumNum equals the
    packet's Num (2022 App.N). Raises ValueError when one item alone does not fit."""
    if per_packet < 1:
        raise ValueError("per_packet must be at least 1")
    pending = tuple(items)
    total = len(pending) if sum_num is None else sum_num
    cls = CatalogNotify if notify else CatalogResponse

    def body(part: tuple[CatalogItem, ...]) -> bytes:
        return encode(
            cls(sn=sn, device_id=device_id, sum_num=len(part) if notify else total, items=part), charset=charset
        )

    if not pending:
        out = body(())
        if len(out) > max_bytes:
            raise ValueError(f"an empty catalog body needs {len(out)} bytes, over {max_bytes}")
        yield out
        return
    i = 0
    while i < len(pending):
        k = min(per_packet, len(pending) - i)
        while True:
            out = body(pending[i : i + k])
            if len(out) <= max_bytes:
                break
            if k == 1:
                raise ValueError(
                    f"catalog item {pending[i].device_id} alone needs {len(out)} bytes, over max_bytes={max_bytes}"
                )
            k = max(1, min(k - 1, k * max_bytes // len(out)))
        yield out
        i += k
