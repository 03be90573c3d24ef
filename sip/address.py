"""name-addr / addr-spec with header parameters (RFC 3261 §20.10, §20.20, §20.39, §25.1).

Used for From, To, Contact, Route and Record-Route. In the addr-spec form (no ``<>``) parameters after
the URI belong to the header, not the URI (§20.10).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from sip.errors import RemoteProtocolError
from sip.params import (
    Params,
    find_unquoted,
    format_params,
    get_param,
    is_digits,
    parse_params,
    quote,
    set_param,
    unquote,
)
from sip.uri import AbsoluteUri, SipUri, parse_uri

# ``<sip:34020000001320000001@3402000000>;tag=123``: no display name, plain parameters (no quotes or spaces).
# Read in one match; anything else takes the general path.
_PLAIN = re.compile(r'<([^<>"\s]+)>((?:;[^;\s"=<>]+(?:=[^;\s"<>]*)?)*)')
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~ ")


@dataclass(frozen=True, slots=True)
class Address:
    uri: SipUri | AbsoluteUri
    display: str | None = None
    params: Params = ()
    star: bool = False  # Contact: * (RFC 3261 §10.2.2)

    @property
    def tag(self) -> str | None:
        return get_param(self.params, "tag")

    @property
    def expires(self) -> int | None:
        value = get_param(self.params, "expires")
        if value is None:
            return None
        if not is_digits(value) or len(value) > 10:
            raise RemoteProtocolError(f"bad expires parameter {value!r}")
        return int(value)

    @property
    def user(self) -> str | None:
        return self.uri.user if isinstance(self.uri, SipUri) else None

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    def with_tag(self, tag: str) -> Address:
        return replace(self, params=set_param(self.params, "tag", tag))

    def with_param(self, name: str, value: str | None) -> Address:
        return replace(self, params=set_param(self.params, name, value))

    def __str__(self) -> str:
        if self.star:
            return "*"
        if self.display:
            plain = set(self.display) <= _TOKEN_CHARS and self.display == self.display.strip(" ")
            disp = self.display if plain else quote(self.display)
            head = f"{disp} <{self.uri}>"
        else:
            head = f"<{self.uri}>"
        return head + format_params(self.params)


STAR = Address(uri=AbsoluteUri("*", "*"), star=True)


def parse_address(text: str) -> Address:
    """Parse one name-addr or addr-spec (already split from its comma-separated siblings)."""
    m = _PLAIN.fullmatch(text)
    if m is not None:
        params = m.group(2)
        return Address(parse_uri(m.group(1)), None, parse_params(params[1:]) if params else ())
    return _parse_address_general(text)


def _parse_address_general(text: str) -> Address:
    text = text.strip()
    if text == "*":
        return STAR
    if not text:
        raise RemoteProtocolError("empty address")
    lt = find_unquoted(text, "<")
    if lt >= 0:
        gt = text.find(">", lt)
        if gt < 0:
            raise RemoteProtocolError(f"unterminated <uri> in {text[:80]!r}")
        display = text[:lt].strip()
        display = unquote(display) if display else None
        uri = parse_uri(text[lt + 1 : gt])
        rest = text[gt + 1 :].strip()
        if rest and rest[0] != ";":
            raise RemoteProtocolError(f"junk after <uri> in {text[:80]!r}")
        return Address(uri, display or None, parse_params(rest[1:]) if rest else ())
    if text[0] == '"':
        raise RemoteProtocolError(f"display name without <uri> in {text[:80]!r}")
    semi = text.find(";")
    if semi >= 0:
        return Address(parse_uri(text[:semi]), None, parse_params(text[semi + 1 :]))
    return Address(parse_uri(text))
