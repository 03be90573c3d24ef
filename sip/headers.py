"""An ordered, case-insensitive header list that keeps each header's original spelling.

RFC 3261 §7.3: header names are case-insensitive; §7.3.3 compact forms are equivalent to the long ones;
several header fields with the same name may be combined or appear separately (§7.3.1).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

# RFC 3261 §7.3.3 compact forms, plus RFC 3265/6665 (o, u), RFC 3515 (r), RFC 3892 (b), RFC 4028 (x).
COMPACT_FORMS: dict[str, str] = {
    "i": "call-id",
    "f": "from",
    "t": "to",
    "v": "via",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "s": "subject",
    "e": "content-encoding",
    "o": "event",
    "u": "allow-events",
    "r": "refer-to",
    "b": "referred-by",
    "x": "session-expires",
}

# Headers whose grammar allows several comma-separated values in one field (RFC 3261 §7.3.1, §25.1).
# WWW-Authenticate / Authorization are deliberately absent: their parameters contain commas.
MULTI_VALUED: frozenset[str] = frozenset(
    {
        "via",
        "contact",
        "route",
        "record-route",
        "allow",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "allow-events",
        "content-encoding",
        "content-language",
        "in-reply-to",
        "warning",
        "error-info",
        "call-info",
        "alert-info",
    }
)

_key_cache: dict[str, str] = {}


def header_key(name: str) -> str:
    """The canonical lookup key for a header name: lower case, compact forms expanded."""
    key = _key_cache.get(name)
    if key is None:
        low = name.lower()
        key = COMPACT_FORMS.get(low, low)
        if len(_key_cache) < 4096:  # bounded: names come from the network
            _key_cache[name] = key
    return key


def split_commas(value: str) -> list[str]:
    """Split a header value on commas outside quoted strings and <...> (RFC 3261 §7.3.1).

    Empty parts are dropped, but the result is never empty: a value with nothing but commas gives
    ``[""]``, as an empty value does, so ``split_commas(v)[0]`` is always safe.
    """
    if "," not in value:
        return [value.strip()]
    out: list[str] = []
    depth = 0
    quoted = False
    start = 0
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            part = value[start:i].strip()
            if part:
                out.append(part)
            start = i + 1
        i += 1
    part = value[start:].strip()
    if part:
        out.append(part)
    return out or [""]


class Headers:
    """Header fields in wire order. Lookups are by canonical key; names keep their spelling.

    The canonical key of every field is computed once (``keys``) and carried along by the copy-on-write
    editors, so building responses and serialising never re-derive it.
    """

    __slots__ = ("_index", "_items", "_keys")

    def __init__(self, items: Iterable[tuple[str, str]] = (), keys: list[str] | None = None) -> None:
        self._items: list[tuple[str, str]] = list(items)
        self._keys: list[str] = keys if keys is not None else [header_key(n) for n, _ in self._items]
        self._index: dict[str, list[str]] | None = None

    def _idx(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = {}
            for key, (_, value) in zip(self._keys, self._items, strict=True):
                found = index.get(key)
                if found is None:
                    index[key] = [value]
                else:
                    found.append(value)
            self._index = index
        return index

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first field of that name, or ``default``."""
        index = self._index if self._index is not None else self._idx()  # the hot path: no call when built
        values = index.get(_key_cache.get(name) or header_key(name))
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        """Every field of that name, in order (fields are not split on commas)."""
        return list(self._idx().get(header_key(name), ()))

    def values(self, name: str) -> list[str]:
        """Every value of a header, comma-separated values split where the grammar allows it."""
        key = header_key(name)
        fields = self._idx().get(key, ())
        if key not in MULTI_VALUED:
            return list(fields)
        out: list[str] = []
        for field in fields:
            out.extend(split_commas(field))
        return out

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        index = self._index if self._index is not None else self._idx()
        return (_key_cache.get(name) or header_key(name)) in index

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def keyed(self) -> Iterator[tuple[str, str, str]]:
        """(canonical key, name as spelt, value) for every field, in order."""
        for key, (name, value) in zip(self._keys, self._items, strict=True):
            yield key, name, value

    def keys(self) -> set[str]:
        return set(self._idx())

    # Copy-on-write editing: every method returns a new Headers.
    def replace(self, name: str, value: str) -> Headers:
        """Set the header to one field: the first occurrence is replaced in place, the rest dropped."""
        key = header_key(name)
        items: list[tuple[str, str]] = []
        keys: list[str] = []
        done = False
        for k, item in zip(self._keys, self._items, strict=True):
            if k == key:
                if not done:
                    items.append((item[0], value))
                    keys.append(k)
                    done = True
            else:
                items.append(item)
                keys.append(k)
        if not done:
            items.append((name, value))
            keys.append(key)
        return Headers(items, keys)

    def replace_first_value(self, name: str, value: str) -> Headers:
        """Replace the value of the first field of that name, keeping every other field (Via rewriting)."""
        key = header_key(name)
        items = list(self._items)
        for i, k in enumerate(self._keys):
            if k == key:
                items[i] = (items[i][0], value)
                return Headers(items, list(self._keys))
        return Headers([*items, (name, value)], [*self._keys, key])

    def remove(self, name: str) -> Headers:
        key = header_key(name)
        pairs = [(k, item) for k, item in zip(self._keys, self._items, strict=True) if k != key]
        return Headers([item for _, item in pairs], [k for k, _ in pairs])

    def append(self, name: str, value: str) -> Headers:
        return Headers([*self._items, (name, value)], [*self._keys, header_key(name)])

    def prepend(self, name: str, value: str) -> Headers:
        """Insert before the first field of the same name (or at the top): how a new Via is added."""
        key = header_key(name)
        items = list(self._items)
        keys = list(self._keys)
        at = keys.index(key) if key in keys else 0
        items.insert(at, (name, value))
        keys.insert(at, key)
        return Headers(items, keys)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"
