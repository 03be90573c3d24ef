"""HTTP Digest authentication for SIP (RFC 3261 §22, RFC 2617, RFC 7616). Sans-IO, never reads the clock.

Server side: ``DigestServer`` issues stateless nonces and checks ``Authorization`` values. Client side:
``DigestClient`` answers ``WWW-Authenticate`` / ``Proxy-Authenticate`` challenges.

GB/T 28181 specifics (DECISIONS.md "Digest identity", "Nonces", "Digest uri"): credentials are looked up
by the From user, HA1 hashes the ``username`` as sent, HA2 hashes the ``uri`` parameter as received (it need
not be the Request-URI, but must be a SIP URI), and answers without ``qop`` are accepted even when offered.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sip.errors import RemoteProtocolError
from sip.randomness import random_bytes

__all__ = [
    "BAD_NONCE",
    "BAD_URI",
    "MALFORMED",
    "MISSING",
    "OK",
    "QOP_INCOMPLETE",
    "REPLAY",
    "STALE_NONCE",
    "UNKNOWN_USER",
    "UNSUPPORTED_ALGORITHM",
    "WRONG_PASSWORD",
    "WRONG_REALM",
    "WRONG_SCHEME",
    "AuthResult",
    "DigestClient",
    "DigestServer",
    "parse_credentials",
]

# ----------------------------------------------------------------------------------------------------
# Parsing (RFC 7235 §2.1 / RFC 3261 §25.1: challenge = auth-scheme LWS auth-param *(COMMA auth-param))

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_WS = " \t\r\n"
_SKIP_WS = re.compile(r"[ \t\r\n]*")
_SKIP_LIST = re.compile(r"[ \t\r\n,]*")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.S)  # quoted-string with quoted-pairs (RFC 3261 §25.1)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
_BARE_VALUE = re.compile(r'[^ \t\r\n,"]+')


def _split_scheme(value: str) -> tuple[str, str]:
    text = value.strip(_WS)
    m = _TOKEN.match(text)
    if m is None:
        raise RemoteProtocolError("authorization: missing auth-scheme", 400)
    rest = text[m.end() :]
    if rest and rest[0] not in _WS:
        raise RemoteProtocolError("authorization: bad auth-scheme", 400)
    return m.group(), rest


# One auth-param with what precedes it (whitespace, empty list elements) and what follows it up to the next
# comma: the common well-formed case parses in one pass (``_fast_params``); anything else takes the checking loop.
_PARAM = re.compile(
    r"[ \t\r\n,]*([!#$%&\'*+\-.^_`|~0-9A-Za-z]+)[ \t\r\n]*=[ \t\r\n]*"
    r'(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^ \t\r\n,"]+))[ \t\r\n]*(?=,|\Z)',
    re.S,
)
_TAIL = re.compile(r"[ \t\r\n,]*")


def _fast_params(text: str) -> dict[str, str] | None:
    """The parameters of a well-formed list, or None when anything needs the checking loop's judgement."""
    params: dict[str, str] = {}
    end = 0
    for m in _PARAM.finditer(text):
        if m.start() != end:
            return None
        end = m.end()
        name = m.group(1).lower()
        if name in params:
            return None
        quoted = m.group(2)
        if quoted is None:
            params[name] = m.group(3)
        elif "\\" in quoted:
            return None
        else:
            params[name] = quoted
    if _TAIL.match(text, end).end() != len(text):  # type: ignore[union-attr]
        return None
    return params


def parse_credentials(value: str) -> tuple[str, dict[str, str]]:
    """Split ``Digest a="x", b=y`` into ``("Digest", {"a": "x", "b": "y"})``.

    Keys are lower-cased; quoted values are unquoted and unescaped (RFC 3261 §25.1 quoted-pair). Empty list
    elements and missing spaces after commas are tolerated; a repeated parameter is an error (RFC 7616 §3.4).
    """
    scheme, text = _split_scheme(value)
    fast = _fast_params(text)
    return scheme, fast if fast is not None else _checked_params(text)


def _checked_params(text: str) -> dict[str, str]:
    """The auth-param list parsed step by step, naming what is wrong (RemoteProtocolError 400)."""
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while True:
        i = _SKIP_LIST.match(text, i).end()  # type: ignore[union-attr]  (whitespace and empty list elements)
        if i >= n:
            break
        m = _TOKEN.match(text, i)
        if m is None:
            raise RemoteProtocolError("authorization: bad parameter name", 400)
        name = m.group().lower()
        i = _SKIP_WS.match(text, m.end()).end()  # type: ignore[union-attr]
        if i >= n or text[i] != "=":
            raise RemoteProtocolError(f"authorization: parameter {name!r} has no value", 400)
        i = _SKIP_WS.match(text, i + 1).end()  # type: ignore[union-attr]
        if i < n and text[i] == '"':
            q = _QUOTED.match(text, i)
            if q is None:
                raise RemoteProtocolError("authorization: unterminated quoted string", 400)
            val = q.group(1)
            if "\\" in val:
                val = _QUOTED_PAIR.sub(r"\1", val)
            i = q.end()
        else:
            # Tolerant token: anything up to a separator (devices send e.g. uri=sip:1.2.3.4:5060 unquoted).
            t = _BARE_VALUE.match(text, i)
            if t is None:
                raise RemoteProtocolError(f"authorization: parameter {name!r} has no value", 400)
            val = t.group()
            i = t.end()
        i = _SKIP_WS.match(text, i).end()  # type: ignore[union-attr]
        if i < n and text[i] != ",":
            raise RemoteProtocolError("authorization: expected ',' between parameters", 400)
        if name in params:
            raise RemoteProtocolError(f"authorization: repeated parameter {name!r}", 400)
        params[name] = val
    return params


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ----------------------------------------------------------------------------------------------------
# Hashing (RFC 7616 §3.4.1–3.4.3; RFC 2617 §3.2.2)

# Lower-cased name -> (canonical spelling, hex hash function, is a -sess variant).
_ALGORITHMS: dict[str, tuple[str, Callable[[bytes], str], bool]] = {
    "md5": ("MD5", lambda b: hashlib.md5(b).hexdigest(), False),
    "md5-sess": ("MD5-sess", lambda b: hashlib.md5(b).hexdigest(), True),
    "sha-256": ("SHA-256", lambda b: hashlib.sha256(b).hexdigest(), False),
    "sha-256-sess": ("SHA-256-sess", lambda b: hashlib.sha256(b).hexdigest(), True),
}


def _b(s: str) -> bytes:
    # Header text is decoded with surrogateescape by the parser; this restores the bytes as sent.
    return s.encode("utf-8", "surrogateescape")


def _response(
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    *,
    qop: str | None,
    nc: str | None,
    cnonce: str | None,
    body: bytes = b"",
) -> str:
    """The request-digest, lower-case hex. ``algorithm`` is a key of ``_ALGORITHMS``."""
    _, h, sess = _ALGORITHMS[algorithm]
    ha1 = h(_b(f"{username}:{realm}:{password}"))
    if sess:  # RFC 7616 §3.4.2: A1 = H(user:realm:pass) ":" nonce ":" cnonce
        ha1 = h(_b(f"{ha1}:{nonce}:{cnonce or ''}"))
    # RFC 7616 §3.4.3: A2 = method ":" uri [ ":" H(body) for auth-int ]
    ha2 = h(_b(f"{method}:{uri}:") + h(body).encode()) if qop == "auth-int" else h(_b(f"{method}:{uri}"))
    if qop:  # RFC 7616 §3.4.1
        return h(_b(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"))
    return h(_b(f"{ha1}:{nonce}:{ha2}"))  # RFC 2069 compatibility (RFC 2617 §3.2.2.1)


# ----------------------------------------------------------------------------------------------------
# Server

OK = "ok"
MISSING = "missing"
MALFORMED = "malformed"
WRONG_SCHEME = "wrong scheme"
WRONG_REALM = "wrong realm"
BAD_URI = "bad uri"
UNSUPPORTED_ALGORITHM = "unsupported algorithm"
BAD_NONCE = "bad nonce"
STALE_NONCE = "stale nonce"
QOP_INCOMPLETE = "qop incomplete"
REPLAY = "replay"
UNKNOWN_USER = "unknown user"
WRONG_PASSWORD = "wrong password"

_STATUS = {
    OK: 0,
    MISSING: 401,
    MALFORMED: 400,
    WRONG_SCHEME: 401,
    WRONG_REALM: 401,
    BAD_URI: 400,
    UNSUPPORTED_ALGORITHM: 400,
    BAD_NONCE: 401,
    STALE_NONCE: 401,
    QOP_INCOMPLETE: 400,
    REPLAY: 401,
    UNKNOWN_USER: 403,
    WRONG_PASSWORD: 403,
}


@dataclass(frozen=True)
class AuthResult:
    """Outcome of ``DigestServer.verify``.

    ``status`` is what to answer: 0 when ``ok``; 401 to re-challenge (with ``stale=true`` when ``stale``);
    403 for an unknown user or a wrong password (do not tell the peer which); 400 for malformed credentials.
    ``username`` is the digest ``username`` as sent, when one could be read.
    """

    ok: bool
    reason: str
    username: str | None
    stale: bool = False
    status: int = 0


def _result(reason: str, username: str | None = None) -> AuthResult:
    return AuthResult(
        ok=reason == OK, reason=reason, username=username, stale=reason == STALE_NONCE, status=_STATUS[reason]
    )


_TS_BYTES = 8  # microseconds since the epoch, big-endian
_RAND_BYTES = 8
_MAC_BYTES = 16  # HMAC-SHA256 truncated to 128 bits
_NONCE_HEX = 2 * (_TS_BYTES + _RAND_BYTES + _MAC_BYTES)
_HEX = re.compile(r"[0-9a-fA-F]+")


class DigestServer:
    """Digest challenges and verification for one realm.

    Nonces are stateless (any process with the same ``secret`` verifies them). The only state is a bounded
    table of the highest ``nc`` accepted per nonce, for replay protection under ``qop=auth`` (RFC 7616 §3.3).
    """

    def __init__(
        self,
        secret: bytes,
        realm: str,
        *,
        nonce_ttl: float = 300.0,
        offer_qop: bool = True,
        algorithm: str = "MD5",
        max_tracked_nonces: int = 100_000,
    ) -> None:
        if not secret:
            raise ValueError("secret must not be empty")
        if algorithm.lower() not in _ALGORITHMS:
            raise ValueError(f"unsupported digest algorithm {algorithm!r}")
        if nonce_ttl <= 0 or max_tracked_nonces < 1:
            raise ValueError("nonce_ttl and max_tracked_nonces must be positive")
        self.realm = realm
        self.nonce_ttl = nonce_ttl
        self.offer_qop = offer_qop
        self.algorithm = _ALGORITHMS[algorithm.lower()][0]
        self.max_tracked_nonces = max_tracked_nonces
        self._secret = secret
        # (nonce, username) -> (nonce issue time, highest nc accepted). Insertion order ~ issue order.
        self._nc: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()
        # Issue time of the newest nonce whose entry was evicted for space: a qop answer on an untracked nonce
        # issued at or before it might be a replay, so it is told to re-authenticate (stale) instead.
        self._evicted_upto = float("-inf")

    # -- nonces ---------------------------------------------------------------------------------------------

    def _mac(self, data: bytes) -> bytes:
        return hmac.digest(self._secret, data, "sha256")[:_MAC_BYTES]  # one-shot C path

    def _make_nonce(self, now: float) -> str:
        if now < 0:
            raise ValueError("now must be wall-clock seconds since the epoch")
        data = struct.pack(">Q", int(now * 1_000_000)) + random_bytes(_RAND_BYTES)
        return (data + self._mac(data)).hex()

    def _nonce_time(self, nonce: str) -> float | None:
        """Issue time of one of our nonces, or None if it is not authentic."""
        if len(nonce) != _NONCE_HEX or not _HEX.fullmatch(nonce):
            return None
        raw = bytes.fromhex(nonce)
        data, mac = raw[: _TS_BYTES + _RAND_BYTES], raw[_TS_BYTES + _RAND_BYTES :]
        if not hmac.compare_digest(mac, self._mac(data)):
            return None
        return struct.unpack(">Q", data[:_TS_BYTES])[0] / 1_000_000

    def challenge(self, now: float, *, stale: bool = False) -> str:
        """A ``WWW-Authenticate`` (or ``Proxy-Authenticate``) value with a fresh nonce (RFC 3261 §22.1)."""
        parts = [f"Digest realm={_quote(self.realm)}", f'nonce="{self._make_nonce(now)}"']
        parts.append(f"algorithm={self.algorithm}")
        if self.offer_qop:
            parts.append('qop="auth"')
        if stale:
            parts.append("stale=true")
        return ", ".join(parts)

    # -- replay table ---------------------------------------------------------------------------------------

    def _prune(self, now: float) -> None:
        while self._nc:
            issued, _ = next(iter(self._nc.values()))
            if now - issued <= self.nonce_ttl:
                break
            self._nc.popitem(last=False)

    def _check_and_record_nc(self, key: tuple[str, str], issued: float, nc: int, now: float) -> str:
        """Record ``nc`` for ``key`` if it is above the last accepted one: OK, REPLAY or STALE_NONCE."""
        self._prune(now)
        entry = self._nc.get(key)
        if entry is None:
            if issued <= self._evicted_upto:
                return STALE_NONCE  # its entry may have been evicted: re-authenticate rather than guess
            while len(self._nc) >= self.max_tracked_nonces:
                _, (old_issued, _) = self._nc.popitem(last=False)
                self._evicted_upto = max(self._evicted_upto, old_issued)
        elif nc <= entry[1]:
            return REPLAY
        self._nc[key] = (issued, nc)
        return OK

    @property
    def tracked_nonces(self) -> int:
        """Entries in the replay table (for metrics and tests)."""
        return len(self._nc)

    # -- verification ---------------------------------------------------------------------------------------

    def verify(
        self,
        method: str,
        authorization: str | None,
        from_user: str,
        lookup: Callable[[str, str], str | None],
        now: float,
    ) -> AuthResult:
        """Check an ``Authorization`` value for a request with ``method`` whose From user is ``from_user``.

        ``lookup(from_user, digest_username)`` returns the password, or None for an unknown user.
        """
        if authorization is None or not authorization.strip(_WS):
            return _result(MISSING)
        try:
            scheme, p = parse_credentials(authorization)
        except RemoteProtocolError:
            try:
                scheme, _ = _split_scheme(authorization)
            except RemoteProtocolError:
                return _result(MALFORMED)
            return _result(WRONG_SCHEME if scheme.lower() != "digest" else MALFORMED)
        if scheme.lower() != "digest":
            return _result(WRONG_SCHEME)

        username = p.get("username")
        if username is None:
            return _result(MALFORMED)
        realm, nonce, uri, response = p.get("realm"), p.get("nonce"), p.get("uri"), p.get("response")
        if realm is None or nonce is None or uri is None or response is None:
            return _result(MALFORMED, username)

        algorithm = p.get("algorithm", "MD5").lower()  # RFC 7616 §3.4: absent means MD5
        if algorithm not in _ALGORITHMS:
            return _result(UNSUPPORTED_ALGORITHM, username)
        sess = _ALGORITHMS[algorithm][2]
        hex_len = len(_ALGORITHMS[algorithm][1](b""))
        if len(response) != hex_len or not _HEX.fullmatch(response):
            return _result(MALFORMED, username)

        # RFC 7616 §3.4: qop, cnonce and nc go together. Only "auth" is offered (no body here for auth-int).
        qop = p.get("qop")
        cnonce, nc = p.get("cnonce"), p.get("nc")
        nc_value = 0
        if qop is not None:
            if qop.lower() != "auth":
                return _result(MALFORMED, username)
            if not cnonce or not nc:
                return _result(QOP_INCOMPLETE, username)
            if len(nc) > 8 or not _HEX.fullmatch(nc):
                return _result(MALFORMED, username)
            nc_value = int(nc, 16)
        elif sess and not cnonce:  # RFC 2617 §3.2.2.2: -sess hashes the cnonce into A1
            return _result(QOP_INCOMPLETE, username)

        # DECISIONS.md "Digest uri": any sip:/sips: URI, not necessarily the Request-URI.
        low_uri = uri.lower()
        if not (low_uri.startswith("sip:") or low_uri.startswith("sips:")) or low_uri.endswith(":"):
            return _result(BAD_URI, username)
        if realm != self.realm:
            return _result(WRONG_REALM, username)
        issued = self._nonce_time(nonce)
        if issued is None:
            return _result(BAD_NONCE, username)

        password = lookup(from_user, username)
        if password is None:
            return _result(UNKNOWN_USER, username)
        expected = _response(
            algorithm,
            username,
            realm,
            password,
            method,
            uri,
            nonce,
            qop=qop,  # hashed as sent, like nc
            nc=nc,
            cnonce=cnonce,
        )
        if not hmac.compare_digest(expected.encode(), response.lower().encode()):
            return _result(WRONG_PASSWORD, username)

        # RFC 7616 §3.3 / RFC 2617 §3.2.1: stale=true only when the digest itself was right.
        if abs(now - issued) > self.nonce_ttl:
            return _result(STALE_NONCE, username)
        if qop is not None:  # RFC 7616 §3.3: nc must grow per nonce
            return _result(self._check_and_record_nc((nonce, username), issued, nc_value, now), username)
        return _result(OK, username)


# ----------------------------------------------------------------------------------------------------
# Client


class DigestClient:
    """Answers digest challenges (RFC 3261 §22.2–22.3), counting ``nc`` per nonce."""

    _MAX_NONCES = 16

    def __init__(self, username: str, password: str, *, cnonce_factory: Callable[[], str] | None = None) -> None:
        self.username = username
        self.password = password
        self._cnonce_factory = cnonce_factory or (lambda: secrets.token_hex(8))
        self._nc: dict[str, int] = {}

    def authorization(self, challenge: str, method: str, uri: str, body: bytes = b"") -> str:
        """The ``Authorization`` / ``Proxy-Authorization`` value answering ``challenge``."""
        scheme, p = parse_credentials(challenge)
        if scheme.lower() != "digest":
            raise RemoteProtocolError(f"challenge: unsupported scheme {scheme!r}", 400)
        realm, nonce = p.get("realm"), p.get("nonce")
        if realm is None or nonce is None:
            raise RemoteProtocolError("challenge: realm and nonce are required", 400)
        sent_algorithm = p.get("algorithm")
        algorithm = (sent_algorithm or "MD5").lower()
        if algorithm not in _ALGORITHMS:
            raise RemoteProtocolError(f"challenge: unsupported algorithm {sent_algorithm!r}", 400)
        sess = _ALGORITHMS[algorithm][2]

        # RFC 7616 §3.3: qop-options is a quoted, comma-separated list; prefer auth, auth-int only if alone.
        qop: str | None = None
        if "qop" in p:
            offered = {q.strip().lower() for q in p["qop"].split(",") if q.strip()}
            if "auth" in offered:
                qop = "auth"
            elif "auth-int" in offered:
                qop = "auth-int"
            else:
                raise RemoteProtocolError(f"challenge: no usable qop in {p['qop']!r}", 400)

        cnonce: str | None = None
        nc: str | None = None
        if qop or sess:
            cnonce = self._cnonce_factory()
        if qop:
            count = self._nc.pop(nonce, 0) + 1
            self._nc[nonce] = count
            while len(self._nc) > self._MAX_NONCES:
                del self._nc[next(iter(self._nc))]
            nc = f"{count:08x}"

        response = _response(
            algorithm,
            self.username,
            realm,
            self.password,
            method,
            uri,
            nonce,
            qop=qop,
            nc=nc,
            cnonce=cnonce,
            body=body,
        )
        parts = [
            f"Digest username={_quote(self.username)}",
            f"realm={_quote(realm)}",
            f"nonce={_quote(nonce)}",
            f"uri={_quote(uri)}",
            f'response="{response}"',
        ]
        if sent_algorithm is not None:
            parts.append(f"algorithm={sent_algorithm}")
        if cnonce is not None:
            parts.append(f"cnonce={_quote(cnonce)}")
        if qop:
            parts.append(f"qop={qop}")
            parts.append(f"nc={nc}")
        if "opaque" in p:
            parts.append(f"opaque={_quote(p['opaque'])}")
        return ", ".join(parts)
