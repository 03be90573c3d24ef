"""The upstream registration machine on a fake clock: digest, refresh, keepalives, backoff with jitter, superior
restart detection, unregister on stop."""

from __future__ import annotations

import hashlib
import re

import pytest

from gb28181.cascade.registration import TRANSITIONS, Send, StateChanged, UpstreamRegistration
from gb28181.config import UpstreamConfig
from gb28181.manscdp import parse_envelope
from sip.headers import Headers
from sip.message import Request, Response

OUR = "34020000002000000001"
UP = "44000000002000000001"


def make(rng: float = 0.0, **kw: object) -> UpstreamRegistration:
    cfg = UpstreamConfig(id=UP, host="127.0.0.1", port=15060, password="pw", **kw).checked()  # type: ignore[arg-type]
    return UpstreamRegistration(cfg, OUR, "3402000000", f"sip:{OUR}@127.0.0.1:5060", rng=lambda: rng,
                                cnonce_factory=lambda: "c0ffee")  # fmt: skip


def answer(req: Request, status: int, *headers: tuple[str, str]) -> Response:
    return Response(status, "X", Headers([("Call-ID", req.call_id), ("CSeq", str(req.cseq)), *headers]), b"")


def sends(actions: list) -> list[Send]:
    return [a for a in actions if isinstance(a, Send)]


def changes(actions: list) -> list[StateChanged]:
    return [a for a in actions if isinstance(a, StateChanged)]


def challenge(stale: bool = False) -> tuple[str, str]:
    extra = ", stale=true" if stale else ""
    return ("WWW-Authenticate", f'Digest realm="4400000000", nonce="n1", algorithm=MD5, qop="auth"{extra}')


def register(reg: UpstreamRegistration, now: float = 0.0, expires: int = 3600) -> list:
    """start -> 401 -> authorised REGISTER -> 200; returns the actions of the 200."""
    (first,) = sends(reg.start(now))
    (second,) = sends(reg.response(first.key, answer(first.request, 401, challenge()), now))
    return reg.response(second.key, answer(second.request, 200, ("Expires", str(expires))), now)


def test_401_then_digest_then_200() -> None:
    reg = make()
    out = reg.start(0.0)
    assert [c.state for c in changes(out)] == ["registering"]
    (first,) = sends(out)
    req = first.request
    assert req.method == "REGISTER" and req.uri == f"sip:{UP}@127.0.0.1:15060"
    assert req.from_.user == OUR and req.to.user == OUR and req.headers.get("expires") == "3600"
    assert req.headers.get("contact") == f"<sip:{OUR}@127.0.0.1:5060>" and "authorization" not in req.headers
    (second,) = sends(reg.response(first.key, answer(req, 401, challenge()), 0.0))
    auth = second.request.headers.get("authorization") or ""
    # RFC 2617 with qop=auth, username = our ID (default), uri = the R-URI (spec digest §11)
    ha1 = hashlib.md5(f"{OUR}:4400000000:pw".encode()).hexdigest()
    ha2 = hashlib.md5(f"REGISTER:sip:{UP}@127.0.0.1:15060".encode()).hexdigest()
    expected = hashlib.md5(f"{ha1}:n1:00000001:c0ffee:auth:{ha2}".encode()).hexdigest()
    assert f'response="{expected}"' in auth and f'username="{OUR}"' in auth
    assert second.request.call_id == req.call_id and second.request.cseq.seq == req.cseq.seq + 1
    assert second.request.from_.tag == req.from_.tag
    out = reg.response(second.key, answer(second.request, 200, ("Expires", "3600")), 0.0)
    assert [(c.state, c.online) for c in changes(out)] == [("registered", True)]
    (keepalive,) = sends(out)  # the first keepalive goes at once
    env = parse_envelope(keepalive.request.body)
    assert (env.kind, env.cmd_type, env.device_id, env.fields["Status"]) == ("Notify", "Keepalive", OUR, "OK")
    assert keepalive.request.to.user == UP
    assert reg.status()["state"] == "registered" and reg.status()["expires"] == 3600


def test_a_configured_username_is_used() -> None:
    reg = make(username="lower-1")
    (first,) = sends(reg.start(0.0))
    (second,) = sends(reg.response(first.key, answer(first.request, 401, challenge()), 0.0))
    assert 'username="lower-1"' in (second.request.headers.get("authorization") or "")


def test_a_second_401_is_a_failure_unless_stale() -> None:
    reg = make()
    (first,) = sends(reg.start(0.0))
    (second,) = sends(reg.response(first.key, answer(first.request, 401, challenge()), 0.0))
    (third,) = sends(reg.response(second.key, answer(second.request, 401, challenge(stale=True)), 0.0))
    out = reg.response(third.key, answer(third.request, 401, challenge()), 1.0)
    assert [c.state for c in changes(out)] == ["failed"] and not sends(out)
    assert "credentials refused" in reg.status()["last_error"]  # type: ignore[operator]
    assert reg.next_deadline() == pytest.approx(61.0)


def test_refresh_before_expiry_keeps_it_online() -> None:
    reg = make(keepalive_interval=1000, register_expires=600)
    register(reg, 0.0, expires=600)
    assert reg.refresh_at == pytest.approx(540.0)  # a minute ahead of a long expiry
    assert reg.timer(539.0) == []
    out = reg.timer(540.0)
    assert not changes(out) and reg.online  # refreshing is not going offline
    (refresh,) = sends(out)
    assert refresh.request.headers.get("expires") == "600"
    out = reg.response(refresh.key, answer(refresh.request, 200, ("Expires", "20")), 541.0)
    assert out == [] and reg.state == "registered" and reg.refresh_at == pytest.approx(551.0)  # halfway when short


def test_keepalives_at_the_interval_and_three_misses_mean_lost() -> None:
    reg = make(keepalive_interval=10, register_expires=3600)
    first_ka = sends(register(reg))[0]
    assert reg.keepalive_at == 10.0
    reg.response(first_ka.key, answer(first_ka.request, 200), 0.1)
    for i, t in enumerate((10.0, 20.0, 30.0)):
        (ka,) = sends(reg.timer(t))
        assert ka.kind == "keepalive"
        out = reg.failure(ka.key, "timeout", t + 5)
        if i < 2:
            assert out == [] and reg.online
    assert [(c.state, c.online) for c in changes(out)] == [("registering", False)]
    (again,) = sends(out)
    assert again.kind == "register" and "3 keepalives unanswered" in reg.status()["last_error"]  # type: ignore[operator]


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_refused_keepalive_means_the_superior_restarted(status: int) -> None:
    reg = make(keepalive_interval=10)
    ka = sends(register(reg))[0]
    out = reg.response(ka.key, answer(ka.request, status), 1.0)
    assert [(c.state, c.online) for c in changes(out)] == [("registering", False)]
    (again,) = sends(out)
    assert again.kind == "register" and again.request.headers.get("expires") == "3600"


def test_backoff_doubles_from_the_floor_with_bounded_jitter() -> None:
    for rng in (0.0, 0.999):
        reg = make(rng=rng, retry_interval=2.0, retry_max=10.0, retry_jitter=0.5)
        (send,) = sends(reg.start(0.0))
        now, delays = 0.0, []
        for _ in range(5):
            reg.failure(send.key, "timeout", now)
            delay = reg.next_deadline() - now  # type: ignore[operator]
            delays.append(delay)
            now += delay
            (send,) = sends(reg.timer(now))
        bases = [2.0, 4.0, 8.0, 10.0, 10.0]
        for delay, base in zip(delays, bases, strict=True):
            assert base <= delay <= base * 1.5
            assert delay == pytest.approx(base * (1 + 0.5 * rng))
    status = reg.status()  # the sixth attempt is out: registering, with five failures behind it
    assert status["state"] == "registering" and status["failures"] == 5 and status["next_attempt"] is None


def test_a_failed_refresh_goes_offline_then_success_resets_the_backoff() -> None:
    reg = make(keepalive_interval=1000, retry_interval=1.0)
    register(reg, 0.0, expires=100)
    (refresh,) = sends(reg.timer(50.0))
    out = reg.response(refresh.key, answer(refresh.request, 500), 50.0)
    assert [(c.state, c.online) for c in changes(out)] == [("failed", False)]
    assert reg.status()["next_attempt"] == pytest.approx(51.0)
    (retry,) = sends(reg.timer(51.0))
    out = reg.response(retry.key, answer(retry.request, 200), 51.5)
    assert [(c.state, c.online) for c in changes(out)] == [("registered", True)] and reg.failures == 0


def test_423_retries_with_min_expires() -> None:
    reg = make(register_expires=60)
    (first,) = sends(reg.start(0.0))
    (second,) = sends(reg.response(first.key, answer(first.request, 423, ("Min-Expires", "3600")), 0.0))
    assert second.request.headers.get("expires") == "3600"


def test_stop_unregisters_with_expires_0_answering_the_challenge() -> None:
    reg = make()
    register(reg)
    out = reg.stop(5.0)
    (unreg,) = sends(out)
    assert unreg.request.headers.get("expires") == "0" and [c.state for c in changes(out)] == ["unregistering"]
    (authed,) = sends(reg.response(unreg.key, answer(unreg.request, 401, challenge()), 5.0))
    assert authed.request.headers.get("expires") == "0" and "authorization" in authed.request.headers
    out = reg.response(authed.key, answer(authed.request, 200), 5.1)
    assert [(c.state, c.online) for c in changes(out)] == [("stopped", False)]
    assert reg.next_deadline() is None


def test_stop_when_not_registered_sends_nothing_and_late_answers_are_ignored() -> None:
    reg = make()
    (first,) = sends(reg.start(0.0))
    out = reg.stop(1.0)
    assert not sends(out) and [c.state for c in changes(out)] == ["stopped"]
    assert reg.response(first.key, answer(first.request, 200), 2.0) == []
    assert reg.failure(999, "timeout", 2.0) == []


def test_the_table_names_only_existing_handlers() -> None:
    for handler in TRANSITIONS.values():
        assert callable(getattr(UpstreamRegistration, handler))
    assert re.fullmatch(r"[a-z-]+", "keepalive-refused")
