"""The device's registration and liveness on a fake clock: digest (checked by the stack's own DigestServer, as
the platform checks it), 423, stale nonces, refresh, keepalives, re-registration, power and NAT events."""

from __future__ import annotations

from gb28181.simulator.device import Rebind, Send
from gb28181.simulator.registration import TABLE, Input, State, step
from sip.auth import parse_credentials
from tests.simulator.helpers import PASSWORD, answer, device, digest, register, sends


def _verify(auth, request, now: float, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return auth.verify(
        "REGISTER", request.headers.get("authorization"), request.from_.user or "", lambda u, n: password, now
    )


def test_every_live_state_falls_silent_on_power_loss_and_unknown_pairs_are_ignored() -> None:
    for state in (State.REGISTERING, State.REGISTERED, State.BACKOFF):
        assert TABLE[(state, Input.POWER_OFF)] == (State.OFF, TABLE[(state, Input.POWER_OFF)][1])
    s = step(State.OFF, Input.OK)  # a late 200 after a power cut
    assert s.state is State.OFF and s.action is None


def test_register_answers_the_challenge_with_a_username_differing_from_the_id() -> None:
    auth = digest()
    d = device("tianwang-ipc")
    d.power_on(0.0)
    (first,) = sends(d, "register")
    assert first.headers.get("authorization") is None
    assert first.expires == 3600 and first.contacts[0].uri.port == 40000
    d.on_answer("register", answer(first, 401, [("WWW-Authenticate", auth.challenge(0.0))]), 0.0)
    (second,) = sends(d, "register")
    assert second.call_id == first.call_id and second.cseq.seq == first.cseq.seq + 1
    _, params = parse_credentials(second.headers.get("authorization") or "")
    assert params["username"] == "34020000001320000088" != d.device_id
    assert _verify(auth, second, 1.0).ok
    d.on_answer("register", answer(second, 200, [("Expires", "3600")]), 1.0)
    assert d.state is State.REGISTERED and d.online


def test_ignores_qop_answers_rfc2069_style_and_is_still_accepted() -> None:
    auth = digest()
    d = device("xueliang-village-nvr")
    d.power_on(0.0)
    (first,) = sends(d)
    d.on_answer("register", answer(first, 401, [("WWW-Authenticate", auth.challenge(0.0))]), 0.0)
    (second,) = sends(d)
    _, params = parse_credentials(second.headers.get("authorization") or "")
    assert "qop" not in params and "nc" not in params and "cnonce" not in params
    assert _verify(auth, second, 0.5).ok


def test_423_is_followed_with_min_expires() -> None:
    d = device("department-camera")
    d.power_on(0.0)
    (first,) = sends(d)
    assert first.expires == 30
    d.on_answer("register", answer(first, 423, [("Min-Expires", "60")]), 0.0)
    (again,) = sends(d)
    assert again.expires == 60 and d.state is State.REGISTERING


def test_a_stale_nonce_is_answered_but_a_refused_password_backs_off() -> None:
    auth = digest()
    d = device()
    register(d, auth)
    d.on_timer(2880.0)  # refresh at 80 % of 3600
    (refresh,) = sends(d, "register")
    assert refresh.headers.get("authorization")  # cached credentials
    stale = auth.challenge(2880.0, stale=True)
    d.on_answer("register", answer(refresh, 401, [("WWW-Authenticate", stale)]), 2880.0)
    (again,) = sends(d, "register")
    d.on_answer("register", answer(again, 401, [("WWW-Authenticate", auth.challenge(2880.0))]), 2880.0)
    assert d.state is State.BACKOFF and not sends(d)
    assert d.next_deadline() == 2885.0  # retry_base
    d.on_timer(2885.0)
    (retry,) = sends(d, "register")
    assert retry.call_id != refresh.call_id and retry.headers.get("authorization") is None


def test_refresh_keeps_the_call_id_and_raises_cseq() -> None:
    d = device()
    register(d, digest(), expires=100)
    first_call = d._call_id
    assert d.next_deadline() == 60.0  # keepalive first (interval 60 < refresh at 80 s)
    d.on_timer(60.0)
    (ka,) = sends(d, "keepalive")
    d.on_answer("keepalive", answer(ka, 200), 60.0)
    d.on_timer(80.0)
    (refresh,) = sends(d, "register")
    assert refresh.call_id == first_call


def test_keepalive_interval_body_and_a_403_that_makes_it_register_again() -> None:
    d = device("xueliang-village-nvr", keepalive_interval=None)
    register(d, digest())
    assert d.next_deadline() == 30.0
    d.on_timer(30.0)
    (ka,) = sends(d, "keepalive")
    assert ka.method == "MESSAGE" and b"<CmdType>Keepalive</CmdType>" in ka.body
    assert ka.body.startswith(b'<?xml version="1.0" encoding="GB2312"?>')
    assert d.next_deadline() == 60.0
    d.on_answer("keepalive", answer(ka, 403), 30.5)
    (reg,) = sends(d, "register")
    assert d.state is State.REGISTERING and reg.headers.get("authorization") is None


def test_keepalives_lost_heartbeat_count_times_make_it_register_again() -> None:
    d = device("tianwang-ipc", keepalive_interval=10.0)
    register(d, digest())
    for k in range(1, 4):
        d.on_timer(10.0 * k)
        (_ka,) = sends(d, "keepalive")
        assert d.state is State.REGISTERED
        d.on_answer("keepalive", None, 10.0 * k + 5)
    assert d.state is State.REGISTERING and not d.online
    assert sends(d, "register")


def test_power_off_silences_everything_and_power_on_registers_anew() -> None:
    d = device()
    register(d, digest())
    old_call = d._call_id
    d.power_off(5.0)
    assert d.state is State.OFF and d.next_deadline() is None and not d.drain()
    assert d.on_request(_options(d), 6.0, 0.0, None) is None
    d.power_on(7.0, delay=2.0)
    assert d.next_deadline() == 9.0 and not d.drain()
    d.on_timer(9.0)
    (reg,) = sends(d, "register")
    assert reg.call_id != old_call


def test_reboot_is_a_power_cycle() -> None:
    d = device()
    register(d, digest())
    d.reboot(10.0)
    assert d.state is State.OFF and d.next_deadline() == 12.0


def test_a_4g_device_rebinds_before_every_keepalive() -> None:
    d = device("mobile-4g-camera")
    register(d, digest())
    d.on_timer(20.0)
    outs = d.drain()
    assert isinstance(outs[0], Rebind) and isinstance(outs[1], Send) and outs[1].purpose == "keepalive"


def test_alphabetical_header_order_puts_via_last() -> None:
    d = device("xueliang-village-nvr")
    d.power_on(0.0)
    (reg,) = sends(d)
    names = [n for n, _ in reg.headers.items()]
    assert names[-2:] == ["Via", "Content-Length"]
    assert names[:-2] == sorted(names[:-2], key=str.lower)
    assert reg.uri == "sip:34020000002000000001@127.0.0.1:5060"
    assert reg.headers.get("user-agent") == "SIP UAS V3.0.0.1208500"


def test_a_2022_device_announces_its_version() -> None:
    d = device("department-camera")
    d.power_on(0.0)
    (reg,) = sends(d)
    assert reg.headers.get("x-gb-ver") == "3.0"


def _options(d):  # type: ignore[no-untyped-def]
    from tests.simulator.helpers import platform_request

    return platform_request("OPTIONS", d.device_id)
