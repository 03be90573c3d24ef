"""`;name=value` parameter lists, shared by URIs, name-addrs and Via (RFC 3261 §19.1.1, §20.10, §20.42)."""

from __future__ import annotations

Params = tuple[tuple[str, str | None], ...]


def is_digits(text: str) -> bool:
    """ASCII digits only. ``str.isdigit`` alone also accepts ``²`` or ``١``, which ``int()`` rejects or
    reads as numbers no SIP peer meant."""
    return text.isascii() and text.isdigit()


def parse_params(text: str) -> Params:
    """Parse ``a=1;b;c="x;y"`` (no leading ``;``). Quoted values may contain ``;``."""
    if not text:
        return ()
    if '"' not in text:
        out = []
        for part in text.split(";"):
            part = part.strip()
            if not part:
                continue
            name, sep, value = part.partition("=")
            out.append((name.strip(), value.strip() if sep else None))
        return tuple(out)
    out2: list[tuple[str, str | None]] = []
    i, n = 0, len(text)
    while i < n:
        j = find_unquoted(text, ";", i)
        if j < 0:
            j = n
        part = text[i:j].strip()
        if part:
            name, sep, value = part.partition("=")
            out2.append((name.strip(), value.strip() if sep else None))
        i = j + 1
    return tuple(out2)


def find_unquoted(text: str, ch: str, start: int = 0) -> int:
    """Index of the first ``ch`` at or after ``start`` outside quoted strings (RFC 3261 §25.1 quoted-pair
    escapes honoured), or -1."""
    if '"' not in text:
        return text.find(ch, start)
    quoted = False
    i, n = start, len(text)
    while i < n:
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == ch:
            return i
        i += 1
    return -1


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def get_param(params: Params, name: str, default: str | None = None) -> str | None:
    """Value of a parameter (case-insensitive name); ``""`` for a flag present without value."""
    for k, v in params:
        # Names are nearly always sent in the case we ask for: compare exactly first, fold case only if needed.
        if k == name or (len(k) == len(name) and k.lower() == name.lower()):
            return "" if v is None else v
    return default


def has_param(params: Params, name: str) -> bool:
    return any(k == name or (len(k) == len(name) and k.lower() == name.lower()) for k, _ in params)


def set_param(params: Params, name: str, value: str | None) -> Params:
    """Set (or add) a parameter; ``value=None`` makes it a flag."""
    low = name.lower()
    out = []
    done = False
    for k, v in params:
        if k.lower() == low:
            if not done:
                out.append((k, value))
                done = True
        else:
            out.append((k, v))
    if not done:
        out.append((name, value))
    return tuple(out)


def remove_param(params: Params, name: str) -> Params:
    low = name.lower()
    return tuple((k, v) for k, v in params if k.lower() != low)


def unquote(value: str) -> str:
    """Remove surrounding quotes and backslash escapes of a quoted-string (RFC 3261 §25.1)."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        inner = value[1:-1]
        if "\\" not in inner:
            return inner
        out = []
        i = 0
        while i < len(inner):
            ch = inner[i]
            if ch == "\\" and i + 1 < len(inner):
                i += 1
                ch = inner[i]
            out.append(ch)
            i += 1
        return "".join(out)
    return value


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
