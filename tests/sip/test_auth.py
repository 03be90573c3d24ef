"""Digest authentication (sip/auth.py): RFC vectors, GB/T 28181 device quirks, nonces, replay, client."""

from __future__ import annotations

import hashlib
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sip import auth
from sip.auth import AuthResult, DigestClient, DigestServer, parse_credentials
from sip.errors import RemoteProtocolError

REALM = "3402000000"
SECRET = b"test-secret-0123456789"
DEVICE = "34020000001320000001"
PASSWORD = "12345678"
T0 = 1_700_000_000.0


def _h(algorithm: str, data: str) -> str:
    fn = hashlib.sha256 if algorithm.lower().startswith("sha-256") else hashlib.md5
    return fn(data.encode()).hexdigest()


def _answer(
    nonce: str,
    *,
    username: str = DEVICE,
    password: str = PASSWORD,
    realm: str = REALM,
    uri: str = "sip:34020000002000000001@3402000000",
    method: str = "REGISTER",
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    algorithm: str | None = "MD5",
    sep: str = ", ",
) -> str:
    """An Authorization value computed independently of sip.auth (RFC 2617 §3.2.2)."""
    alg = algorithm or "MD5"
    ha1 = _h(alg, f"{username}:{realm}:{password}")
    if alg.lower().endswith("-sess"):
        ha1 = _h(alg, f"{ha1}:{nonce}:{cnonce}")
    ha2 = _h(alg, f"{method}:{uri}")
    # RFC 2617 §3.2.2.1: with qop, or the RFC 2069 form without it.
    data = f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}" if qop else f"{ha1}:{nonce}:{ha2}"
    resp = _h(alg, data)
    parts = [f'username="{username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    parts.append(f'response="{resp}"')
    if algorithm is not None:
        parts.append(f"algorithm={algorithm}")
    if cnonce is not None:
        parts.append(f'cnonce="{cnonce}"')
    if qop is not None:
        parts.append(f"qop={qop}")
    if nc is not None:
        parts.append(f"nc={nc}")
    return "Digest " + sep.join(parts)


def _nonce(challenge: str) -> str:
    return parse_credentials(challenge)[1]["nonce"]


def _lookup(from_user: str, username: str) -> str | None:
    return PASSWORD if from_user == DEVICE else None


@pytest.fixture
def server() -> DigestServer:
    return DigestServer(SECRET, REALM)


def _check(result: AuthResult, reason: str, status: int, *, stale: bool = False) -> None:
    assert (result.reason, result.status, result.stale, result.ok) == (
        reason,
        status,
        stale,
        reason == auth.OK,
    )


# --- RFC vectors -----------------------------------------------------------------------------------


def test_rfc2617_mufasa_vector() -> None:
    # RFC 2617 §3.5.
    challenge = (
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    client = DigestClient("Mufasa", "Circle Of Life", cnonce_factory=lambda: "0a4f113b")
    _, p = parse_credentials(client.authorization(challenge, "GET", "/dir/index.html"))
    assert p["response"] == "6629fae49393a05397450978507c4ef1"
    assert (p["qop"], p["nc"], p["cnonce"]) == ("auth", "00000001", "0a4f113b")
    assert p["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"
    assert "algorithm" not in p  # not in the challenge, so not echoed


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        # RFC 7616 §3.9.1 (password "Circle of Life", lower-case "of", errata 4495).
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ],
)
def test_rfc7616_vector(algorithm: str, expected: str) -> None:
    challenge = (
        'Digest\n       realm="http-auth@example.org",\n       qop="auth, auth-int",\n'
        f"       algorithm={algorithm},\n"
        '       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",\n'
        '       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
    client = DigestClient("Mufasa", "Circle of Life", cnonce_factory=lambda: cnonce)
    _, p = parse_credentials(client.authorization(challenge, "GET", "/dir/index.html"))
    assert p["response"] == expected
    assert (p["algorithm"], p["qop"], p["nc"], p["cnonce"]) == (algorithm, "auth", "00000001", cnonce)
    assert p["opaque"] == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


# --- parse_credentials -----------------------------------------------------------------------------


def test_parse_rfc3261_style_authorization() -> None:
    scheme, p = parse_credentials('Digest username="a", realm="b", nc=00000001, qop=auth, algorithm=MD5, response="c"')
    assert scheme == "Digest"
    assert p == {
        "username": "a",
        "realm": "b",
        "nc": "00000001",
        "qop": "auth",
        "algorithm": "MD5",
        "response": "c",
    }


def test_parse_is_tolerant() -> None:
    scheme, p = parse_credentials(
        '  digest   USERNAME = "a" ,Realm="x, y",nonce="q\\"uo\\\\te" ,, uri=sip:1.2.3.4:5060,qop="auth,auth-int"  '
    )
    assert scheme == "digest"
    assert p == {
        "username": "a",
        "realm": "x, y",
        "nonce": 'q"uo\\te',
        "uri": "sip:1.2.3.4:5060",
        "qop": "auth,auth-int",
    }


def test_parse_scheme_only() -> None:
    assert parse_credentials("Digest") == ("Digest", {})


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        '"Digest" a=b',
        'Digest username="unterminated',
        'Digest username="a" realm="b"',  # no comma
        "Digest username",
        "Digest username=",
        "Digest =x",
        'Digest a="1", a="2"',  # repeated
        'Digest a="x\\',
        "Digest a=b c",
        "Digest@ a=b",
    ],
)
def test_parse_garbage_raises_400(value: str) -> None:
    with pytest.raises(RemoteProtocolError) as exc:
        parse_credentials(value)
    assert exc.value.status_hint == 400


_names = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
_values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(deadline=None)
@given(st.dictionaries(_names, _values, max_size=6), st.sampled_from([",", ", ", " ,  ", ",\t"]))
def test_parse_round_trips_quoted_values(params: dict[str, str], sep: str) -> None:
    def q(v: str) -> str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'

    value = "Digest " + sep.join(f"{k}={q(v)}" for k, v in params.items())
    assert parse_credentials(value) == ("Digest", params)


_list_text = st.text(st.sampled_from(list('ab=",\\ \t\r\nz1:@-')), max_size=40)


@settings(deadline=None, max_examples=500)
@given(_list_text)
def test_fast_parameter_path_agrees_with_the_checking_loop(text: str) -> None:
    """The one-pass parser may only decline: whatever it accepts, the step-by-step parser reads the same."""
    fast = auth._fast_params(text)
    try:
        checked: dict[str, str] | None = auth._checked_params(text)
    except RemoteProtocolError:
        checked = None
    if fast is not None:
        assert fast == checked


def test_fast_parameter_path_takes_the_usual_answer() -> None:
    value = 'username="34020000001320000001", realm="3402000000", nonce="abc", uri="sip:x@y", response="0f", nc=0001'
    assert auth._fast_params(value) == {
        "username": "34020000001320000001", "realm": "3402000000", "nonce": "abc", "uri": "sip:x@y",
        "response": "0f", "nc": "0001",
    }  # fmt: skip


# --- challenges and nonces -------------------------------------------------------------------------


def test_challenge_format(server: DigestServer) -> None:
    c = server.challenge(T0)
    nonce = _nonce(c)
    assert c == f'Digest realm="3402000000", nonce="{nonce}", algorithm=MD5, qop="auth"'
    assert len(nonce) == 64 and nonce == nonce.lower() and int(nonce, 16) >= 0
    assert server.challenge(T0, stale=True).endswith(', qop="auth", stale=true')
    plain = DigestServer(SECRET, REALM, offer_qop=False, algorithm="sha-256").challenge(T0)
    assert plain == f'Digest realm="3402000000", nonce="{_nonce(plain)}", algorithm=SHA-256'


def test_nonces_are_unique_at_the_same_instant(server: DigestServer) -> None:
    assert len({_nonce(server.challenge(T0)) for _ in range(200)}) == 200


def test_nonce_verifies_in_another_process_with_the_same_secret(server: DigestServer) -> None:
    nonce = _nonce(server.challenge(T0))
    other = DigestServer(SECRET, REALM)
    _check(other.verify("REGISTER", _answer(nonce), DEVICE, _lookup, T0 + 1), auth.OK, 0)


def test_nonce_from_another_secret_is_rejected(server: DigestServer) -> None:
    nonce = _nonce(DigestServer(b"another-secret", REALM).challenge(T0))
    _check(server.verify("REGISTER", _answer(nonce), DEVICE, _lookup, T0 + 1), auth.BAD_NONCE, 401)


@pytest.mark.parametrize("position", [0, 10, 20, 40, 63])
def test_tampered_nonce_is_bad_not_stale(server: DigestServer, position: int) -> None:
    nonce = _nonce(server.challenge(T0))
    flipped = nonce[:position] + ("1" if nonce[position] != "1" else "2") + nonce[position + 1 :]
    _check(server.verify("REGISTER", _answer(flipped), DEVICE, _lookup, T0 + 1), auth.BAD_NONCE, 401)


@pytest.mark.parametrize("nonce", ["", "abc", "zz" * 32, "0" * 64, "dcd98b7102dd2f0e8b11d0f600bfb0c093"])
def test_garbage_nonce_is_bad(server: DigestServer, nonce: str) -> None:
    _check(server.verify("REGISTER", _answer(nonce), DEVICE, _lookup, T0), auth.BAD_NONCE, 401)


def test_stale_only_with_the_right_password(server: DigestServer) -> None:
    nonce = _nonce(server.challenge(T0))
    late = T0 + 300.5
    _check(server.verify("REGISTER", _answer(nonce), DEVICE, _lookup, late), auth.STALE_NONCE, 401, stale=True)
    wrong = _answer(nonce, password="nope")
    _check(server.verify("REGISTER", wrong, DEVICE, _lookup, late), auth.WRONG_PASSWORD, 403)
    # Just inside the lifetime it is still good.
    _check(server.verify("REGISTER", _answer(nonce), DEVICE, _lookup, T0 + 299.5), auth.OK, 0)


def test_nonce_ttl_is_configurable() -> None:
    server = DigestServer(SECRET, REALM, nonce_ttl=10)
    nonce = _nonce(server.challenge(T0))
    _check(server.verify("REGISTER", _answer(nonce), DEVICE, _lookup, T0 + 9), auth.OK, 0)
    _check(server.verify("REGISTER", _answer(nonce), DEVICE, _lookup, T0 + 11), auth.STALE_NONCE, 401, stale=True)


def test_never_reads_the_clock(server: DigestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> float:
        raise AssertionError("clock read")

    for name in ("time", "monotonic", "time_ns", "monotonic_ns", "perf_counter"):
        monkeypatch.setattr(time, name, boom)
    challenge = server.challenge(T0)
    authz = DigestClient(DEVICE, PASSWORD).authorization(challenge, "REGISTER", "sip:x@y")
    _check(server.verify("REGISTER", authz, DEVICE, _lookup, T0), auth.OK, 0)


# --- GB/T 28181 device behaviour -------------------------------------------------------------------


def test_sipp_register_uri_differs_from_request_uri(server: DigestServer) -> None:
    # SIPp answers with uri="sip:<remote ip>:<port>", no spaces after commas, qop=auth.
    nonce = _nonce(server.challenge(T0))
    authz = _answer(nonce, uri="sip:127.0.0.1:5060", qop="auth", nc="00000001", cnonce="6b8b4567", sep=",")
    assert ", " not in authz
    _check(server.verify("REGISTER", authz, DEVICE, _lookup, T0 + 1), auth.OK, 0)


def test_hikvision_username_differs_from_from_user(server: DigestServer) -> None:
    calls: list[tuple[str, str]] = []

    def lookup(from_user: str, username: str) -> str | None:
        calls.append((from_user, username))
        return "hik-pass" if (from_user, username) == (DEVICE, "admin") else None

    nonce = _nonce(server.challenge(T0))
    result = server.verify("REGISTER", _answer(nonce, username="admin", password="hik-pass"), DEVICE, lookup, T0)
    _check(result, auth.OK, 0)
    assert result.username == "admin"
    assert calls == [(DEVICE, "admin")]
    # HA1 is hashed with the username as sent: hashing with the device ID instead must fail.
    bad = _answer(nonce, username="admin", password="hik-pass").replace('username="admin"', f'username="{DEVICE}"')
    assert server.verify("REGISTER", bad, DEVICE, lambda f, u: "hik-pass", T0).reason == auth.WRONG_PASSWORD


def test_no_qop_answer_accepted_when_qop_offered(server: DigestServer) -> None:
    challenge = server.challenge(T0)
    assert 'qop="auth"' in challenge
    authz = _answer(_nonce(challenge))  # Dahua: no qop, cnonce or nc
    assert "qop" not in authz
    _check(server.verify("REGISTER", authz, DEVICE, _lookup, T0 + 1), auth.OK, 0)


@pytest.mark.parametrize("drop", ["cnonce", "nc"])
def test_qop_answer_missing_cnonce_or_nc_is_rejected(server: DigestServer, drop: str) -> None:
    nonce = _nonce(server.challenge(T0))
    full = _answer(nonce, qop="auth", nc="00000001", cnonce="abcdef")
    _check(server.verify("REGISTER", full, DEVICE, _lookup, T0), auth.OK, 0)
    nonce = _nonce(server.challenge(T0))
    params = parse_credentials(_answer(nonce, qop="auth", nc="00000001", cnonce="abcdef"))[1]
    del params[drop]
    authz = "Digest " + ", ".join(f'{k}="{v}"' for k, v in params.items())
    _check(server.verify("REGISTER", authz, DEVICE, _lookup, T0), auth.QOP_INCOMPLETE, 400)


def test_replay_rejected_and_higher_nc_accepted(server: DigestServer) -> None:
    nonce = _nonce(server.challenge(T0))

    def go(nc: str) -> AuthResult:
        return server.verify("REGISTER", _answer(nonce, qop="auth", nc=nc, cnonce="c1"), DEVICE, _lookup, T0 + 1)

    _check(go("00000001"), auth.OK, 0)
    _check(go("00000001"), auth.REPLAY, 401)
    _check(go("00000002"), auth.OK, 0)
    _check(go("00000002"), auth.REPLAY, 401)
    _check(go("00000001"), auth.REPLAY, 401)
    _check(go("0000000a"), auth.OK, 0)


def test_failed_attempt_does_not_consume_nc(server: DigestServer) -> None:
    nonce = _nonce(server.challenge(T0))
    wrong = _answer(nonce, password="x", qop="auth", nc="00000001", cnonce="c")
    _check(server.verify("REGISTER", wrong, DEVICE, _lookup, T0), auth.WRONG_PASSWORD, 403)
    right = _answer(nonce, qop="auth", nc="00000001", cnonce="c")
    _check(server.verify("REGISTER", right, DEVICE, _lookup, T0), auth.OK, 0)


@pytest.mark.parametrize("nc", ["1", "0000000a", "0000000A", "000000ff"])
def test_nc_is_hashed_as_received(server: DigestServer, nc: str) -> None:
    nonce = _nonce(server.challenge(T0))
    authz = _answer(nonce, qop="auth", nc=nc, cnonce="c")
    _check(server.verify("REGISTER", authz, DEVICE, _lookup, T0), auth.OK, 0)


def test_wrong_realm_rechallenges(server: DigestServer) -> None:
    nonce = _nonce(server.challenge(T0))
    _check(
        server.verify("REGISTER", _answer(nonce, realm="3402000001"), DEVICE, _lookup, T0),
        auth.WRONG_REALM,
        401,
    )


@pytest.mark.parametrize("uri", ["/dir/index.html", "http://3402000000", "tel:+123", "sip:", "3402000000"])
def test_non_sip_uri_is_400(server: DigestServer, uri: str) -> None:
    nonce = _nonce(server.challenge(T0))
    _check(server.verify("REGISTER", _answer(nonce, uri=uri), DEVICE, _lookup, T0), auth.BAD_URI, 400)


@pytest.mark.parametrize("uri", ["sips:34020000002000000001@3402000000", "SIP:3402000000", "sip:127.0.0.1:5060"])
def test_sip_and_sips_uris_are_accepted(server: DigestServer, uri: str) -> None:
    nonce = _nonce(server.challenge(T0))
    _check(server.verify("REGISTER", _answer(nonce, uri=uri), DEVICE, _lookup, T0), auth.OK, 0)


def test_unknown_user_and_wrong_password_are_403_with_distinct_reasons(server: DigestServer) -> None:
    nonce = _nonce(server.challenge(T0))
    unknown = server.verify("REGISTER", _answer(nonce), "34020000001320009999", _lookup, T0)
    wrong = server.verify("REGISTER", _answer(nonce, password="guess"), DEVICE, _lookup, T0)
    _check(unknown, auth.UNKNOWN_USER, 403)
    _check(wrong, auth.WRONG_PASSWORD, 403)
    assert auth.UNKNOWN_USER != auth.WRONG_PASSWORD


def test_method_is_part_of_the_digest(server: DigestServer) -> None:
    nonce = _nonce(server.challenge(T0))
    authz = _answer(nonce, method="REGISTER")
    _check(server.verify("MESSAGE", authz, DEVICE, _lookup, T0), auth.WRONG_PASSWORD, 403)


def test_upper_case_response_accepted(server: DigestServer) -> None:
    nonce = _nonce(server.challenge(T0))
    authz = _answer(nonce)
    resp = parse_credentials(authz)[1]["response"]
    assert resp != resp.upper()
    _check(server.verify("REGISTER", authz.replace(resp, resp.upper()), DEVICE, _lookup, T0), auth.OK, 0)


@pytest.mark.parametrize("algorithm", ["md5", "Md5", None])
def test_md5_spellings_and_absent_algorithm(server: DigestServer, algorithm: str | None) -> None:
    nonce = _nonce(server.challenge(T0))
    _check(server.verify("REGISTER", _answer(nonce, algorithm=algorithm), DEVICE, _lookup, T0), auth.OK, 0)


@pytest.mark.parametrize("algorithm", ["SHA-512-256", "SM3", "AKAv1-MD5"])
def test_unknown_algorithm_is_400(server: DigestServer, algorithm: str) -> None:
    nonce = _nonce(server.challenge(T0))
    authz = _answer(nonce).replace("algorithm=MD5", f"algorithm={algorithm}")
    _check(server.verify("REGISTER", authz, DEVICE, _lookup, T0), auth.UNSUPPORTED_ALGORITHM, 400)


def test_missing_and_wrong_scheme_rechallenge(server: DigestServer) -> None:
    _check(server.verify("REGISTER", None, DEVICE, _lookup, T0), auth.MISSING, 401)
    _check(server.verify("REGISTER", "  ", DEVICE, _lookup, T0), auth.MISSING, 401)
    _check(server.verify("REGISTER", "Basic dXNlcjpwYXNz", DEVICE, _lookup, T0), auth.WRONG_SCHEME, 401)


@pytest.mark.parametrize(
    "authz",
    [
        'Digest username="a", realm="3402000000", nonce=',
        'Digest realm="3402000000", nonce="n", uri="sip:a", response="00000000000000000000000000000000"',
        'Digest username="a", realm="3402000000", uri="sip:a", response="00000000000000000000000000000000"',
        'Digest username="a", realm="3402000000", nonce="n", uri="sip:a"',
        'Digest username="a", realm="3402000000", nonce="n", uri="sip:a", response="zz"',
        'Digest username="a", realm="3402000000", nonce="n", uri="sip:a", response="0123"',
    ],
)
def test_malformed_is_400(server: DigestServer, authz: str) -> None:
    _check(server.verify("REGISTER", authz, DEVICE, _lookup, T0), auth.MALFORMED, 400)


def test_qop_auth_int_answer_is_refused(server: DigestServer) -> None:
    nonce = _nonce(server.challenge(T0))
    authz = _answer(nonce, qop="auth-int", nc="00000001", cnonce="c")
    _check(server.verify("REGISTER", authz, DEVICE, _lookup, T0), auth.MALFORMED, 400)


# --- round trips -----------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256", "MD5-sess", "SHA-256-sess"])
@pytest.mark.parametrize("offer_qop", [True, False])
def test_round_trip(algorithm: str, offer_qop: bool) -> None:
    server = DigestServer(SECRET, REALM, algorithm=algorithm, offer_qop=offer_qop)
    client = DigestClient(DEVICE, PASSWORD)
    challenge = server.challenge(T0)
    assert f"algorithm={algorithm}," in challenge + ","
    uri = "sip:34020000002000000001@3402000000"
    for _ in range(3):  # nc 1, 2, 3 on one nonce
        authz = client.authorization(challenge, "REGISTER", uri)
        _, p = parse_credentials(authz)
        assert ("qop" in p) is offer_qop
        assert ("cnonce" in p) is (offer_qop or algorithm.endswith("-sess"))
        assert p["algorithm"] == algorithm
        _check(server.verify("REGISTER", authz, DEVICE, _lookup, T0 + 1), auth.OK, 0)
    bad = DigestClient(DEVICE, "wrong").authorization(challenge, "REGISTER", uri)
    _check(server.verify("REGISTER", bad, DEVICE, _lookup, T0 + 1), auth.WRONG_PASSWORD, 403)


def test_round_trip_proxy_challenge_with_stale() -> None:
    server = DigestServer(SECRET, REALM)
    client = DigestClient(DEVICE, PASSWORD)
    old = server.challenge(T0)
    authz = client.authorization(old, "INVITE", "sip:34020000001320000001@3402000000")
    result = server.verify("INVITE", authz, DEVICE, _lookup, T0 + 1000)
    _check(result, auth.STALE_NONCE, 401, stale=True)
    fresh = server.challenge(T0 + 1000, stale=result.stale)
    authz = client.authorization(fresh, "INVITE", "sip:34020000001320000001@3402000000")
    _check(server.verify("INVITE", authz, DEVICE, _lookup, T0 + 1000), auth.OK, 0)


@pytest.mark.parametrize("algorithm", ["MD5-sess", "SHA-256-sess", "md5-SESS"])
def test_sess_variants_hash_the_cnonce_into_ha1(server: DigestServer, algorithm: str) -> None:
    # RFC 7616 §3.4.2, checked against the independent helper (not only a round trip through sip.auth).
    nonce = _nonce(server.challenge(T0))
    authz = _answer(nonce, algorithm=algorithm, qop="auth", nc="00000001", cnonce="0a4f113b")
    _check(server.verify("REGISTER", authz, DEVICE, _lookup, T0), auth.OK, 0)
    client = DigestClient(DEVICE, PASSWORD, cnonce_factory=lambda: "0a4f113b")
    challenge = f'Digest realm="{REALM}", nonce="{nonce}", qop="auth", algorithm={algorithm}'
    mine = client.authorization(challenge, "REGISTER", "sip:34020000002000000001@3402000000")
    assert parse_credentials(mine)[1]["response"] == parse_credentials(authz)[1]["response"]


def test_sess_without_cnonce_is_incomplete(server: DigestServer) -> None:
    nonce = _nonce(server.challenge(T0))
    _check(
        server.verify("REGISTER", _answer(nonce, algorithm="MD5-sess"), DEVICE, _lookup, T0), auth.QOP_INCOMPLETE, 400
    )


# --- replay table bounds ---------------------------------------------------------------------------


def test_nc_table_stays_bounded_and_evicted_nonces_are_not_replayable() -> None:
    server = DigestServer(SECRET, REALM, max_tracked_nonces=5)
    answers = []
    for i in range(20):
        nonce = _nonce(server.challenge(T0 + i))
        authz = _answer(nonce, qop="auth", nc="00000001", cnonce="c")
        _check(server.verify("REGISTER", authz, DEVICE, _lookup, T0 + i), auth.OK, 0)
        answers.append(authz)
        assert server.tracked_nonces <= 5
    assert server.tracked_nonces == 5
    # The oldest entries were evicted: replaying them must not succeed (stale: go get a fresh nonce).
    _check(server.verify("REGISTER", answers[0], DEVICE, _lookup, T0 + 20), auth.STALE_NONCE, 401, stale=True)
    # The newest is still tracked: a plain replay.
    _check(server.verify("REGISTER", answers[-1], DEVICE, _lookup, T0 + 20), auth.REPLAY, 401)
    # A fresh nonce still works.
    nonce = _nonce(server.challenge(T0 + 21))
    authz = _answer(nonce, qop="auth", nc="00000001", cnonce="c")
    _check(server.verify("REGISTER", authz, DEVICE, _lookup, T0 + 21), auth.OK, 0)


def test_nc_table_entries_expire_with_the_nonce() -> None:
    server = DigestServer(SECRET, REALM, nonce_ttl=60)
    for i in range(10):
        nonce = _nonce(server.challenge(T0 + i))
        authz = _answer(nonce, qop="auth", nc="00000001", cnonce="c")
        _check(server.verify("REGISTER", authz, DEVICE, _lookup, T0 + i), auth.OK, 0)
    assert server.tracked_nonces == 10
    nonce = _nonce(server.challenge(T0 + 500))
    authz = _answer(nonce, qop="auth", nc="00000001", cnonce="c")
    _check(server.verify("REGISTER", authz, DEVICE, _lookup, T0 + 500), auth.OK, 0)
    assert server.tracked_nonces == 1


# --- client ----------------------------------------------------------------------------------------


def test_client_counts_nc_per_nonce_and_echoes_opaque_and_algorithm() -> None:
    client = DigestClient("u", "p", cnonce_factory=lambda: "cn")
    a = 'Digest realm="r", nonce="n1", qop="auth", algorithm=md5, opaque="op"'
    b = 'Digest realm="r", nonce="n2", qop="auth"'
    ncs = [parse_credentials(client.authorization(c, "REGISTER", "sip:r"))[1]["nc"] for c in (a, a, b, a)]
    assert ncs == ["00000001", "00000002", "00000001", "00000003"]
    _, p = parse_credentials(client.authorization(a, "REGISTER", "sip:r"))
    assert (p["opaque"], p["algorithm"], p["uri"], p["username"]) == ("op", "md5", "sip:r", "u")
    _, p = parse_credentials(client.authorization(b, "REGISTER", "sip:r"))
    assert "opaque" not in p and "algorithm" not in p


def test_client_without_qop_sends_rfc2069_answer() -> None:
    client = DigestClient(DEVICE, PASSWORD)
    authz = client.authorization('Digest realm="3402000000", nonce="abc"', "REGISTER", "sip:x@y")
    _, p = parse_credentials(authz)
    assert not {"qop", "nc", "cnonce"} & p.keys()
    ha1 = _h("MD5", f"{DEVICE}:3402000000:{PASSWORD}")
    assert p["response"] == _h("MD5", f"{ha1}:abc:" + _h("MD5", "REGISTER:sip:x@y"))


def test_client_uses_auth_int_only_when_it_is_the_only_option() -> None:
    client = DigestClient("u", "p", cnonce_factory=lambda: "cn")
    body = b"<?xml version='1.0'?><Query/>"
    _, p = parse_credentials(
        client.authorization('Digest realm="r", nonce="n", qop="auth-int"', "MESSAGE", "sip:d", body)
    )
    assert p["qop"] == "auth-int"
    ha1 = _h("MD5", "u:r:p")
    ha2 = _h("MD5", "MESSAGE:sip:d:" + hashlib.md5(body).hexdigest())
    assert p["response"] == _h("MD5", f"{ha1}:n:00000001:cn:auth-int:{ha2}")
    _, p = parse_credentials(
        client.authorization('Digest realm="r", nonce="n", qop="auth-int,auth"', "MESSAGE", "sip:d")
    )
    assert p["qop"] == "auth"


def test_client_quotes_awkward_values() -> None:
    client = DigestClient('we"ird\\user', "p")
    _, p = parse_credentials(client.authorization('Digest realm="r\\"x", nonce="n"', "REGISTER", "sip:d"))
    assert (p["username"], p["realm"]) == ('we"ird\\user', 'r"x')


@pytest.mark.parametrize(
    "challenge",
    [
        'Basic realm="r"',
        'Digest nonce="n"',
        'Digest realm="r"',
        'Digest realm="r", nonce="n", algorithm=SHA-512-256',
        'Digest realm="r", nonce="n", qop="auth-conf"',
        'Digest realm="r", nonce="n',
        "",
    ],
)
def test_client_rejects_unusable_challenges(challenge: str) -> None:
    with pytest.raises(RemoteProtocolError):
        DigestClient("u", "p").authorization(challenge, "REGISTER", "sip:d")


def test_server_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError):
        DigestServer(SECRET, REALM, algorithm="SM3")
    with pytest.raises(ValueError):
        DigestServer(b"", REALM)
