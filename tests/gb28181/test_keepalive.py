"""Liveness (gb28181/keepalive.py): deadlines as a pure function of an injected monotonic ``now``."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from gb28181.keepalive import EXPIRED, KEEPALIVE_TIMEOUT, Liveness, LivenessPolicy

CAM = "34020000001320000001"
T0 = 1000.0
WINDOW = 180.0
EXPIRES = 3600.0


def registered(now: float = T0, **kw: object) -> Liveness:
    live = Liveness()
    assert live.registered(CAM, now, EXPIRES, WINDOW, **kw) is kw.get("online", True)  # type: ignore[arg-type]
    return live


def test_policy_window_prefers_the_devices_own_settings() -> None:
    policy = LivenessPolicy(interval=60, max_missed=3)
    assert policy.window() == 180.0
    assert policy.window(30, 2) == 60.0
    assert policy.window(30, None) == 90.0
    assert policy.window(None, 5) == 300.0


def test_registered_is_online() -> None:
    live = registered()
    assert live.is_online(CAM) and live.is_registered(CAM)
    assert len(live) == 1
    assert live.next_deadline() == T0 + WINDOW
    assert live.due(T0 + WINDOW - 0.001) == []
    # a refresh while online does not "come online" again
    assert live.registered(CAM, T0 + 10, EXPIRES, WINDOW) is False


def test_unknown_device() -> None:
    live = Liveness()
    assert not live.is_online(CAM) and not live.is_registered(CAM)
    assert live.seen(CAM, T0) is False
    assert live.set_offline(CAM) is False
    assert live.unregistered(CAM) is False
    assert live.next_deadline() is None
    assert live.due(T0 + 1e9) == []


def test_seen_extends_the_window() -> None:
    live = registered()
    assert live.seen(CAM, T0 + 100) is False  # already online
    assert live.next_deadline() == T0 + 100 + WINDOW
    assert live.due(T0 + WINDOW + 1) == []  # the first window passed, but it was seen in it
    assert live.is_online(CAM)


def test_window_lapse_times_out_once_and_stays_registered() -> None:
    live = registered()
    assert live.due(T0 + WINDOW) == [(CAM, KEEPALIVE_TIMEOUT)]
    assert not live.is_online(CAM) and live.is_registered(CAM)
    assert live.due(T0 + WINDOW + 1) == []
    assert live.due(T0 + 2 * WINDOW) == []
    assert live.next_deadline() == T0 + EXPIRES  # only the expiry is left


def test_expiry() -> None:
    live = Liveness()
    live.registered(CAM, T0, 100, WINDOW)
    assert live.next_deadline() == T0 + 100
    assert live.due(T0 + 100) == [(CAM, EXPIRED)]
    assert not live.is_registered(CAM) and not live.is_online(CAM)
    assert live.next_deadline() is None
    assert live.due(T0 + WINDOW) == []  # no timeout after expiry


def test_timeout_then_expiry_in_one_due_call() -> None:
    live = registered()
    assert live.due(T0 + EXPIRES) == [(CAM, KEEPALIVE_TIMEOUT), (CAM, EXPIRED)]


def test_seen_after_timeout_brings_it_back_online() -> None:
    live = registered()
    live.due(T0 + WINDOW)
    now = T0 + WINDOW + 50
    assert live.seen(CAM, now) is True
    assert live.is_online(CAM)
    assert live.next_deadline() == now + WINDOW
    assert live.due(now + WINDOW) == [(CAM, KEEPALIVE_TIMEOUT)]


def test_seen_with_a_new_window() -> None:
    live = registered()
    live.seen(CAM, T0 + 10, window=30)
    assert live.next_deadline() == T0 + 40
    live.seen(CAM, T0 + 20)  # keeps the device's window
    assert live.next_deadline() == T0 + 50


def test_set_offline_cancels_the_timeout_and_seen_restores() -> None:
    live = registered()
    assert live.set_offline(CAM) is True
    assert live.set_offline(CAM) is False
    assert not live.is_online(CAM) and live.is_registered(CAM)
    assert live.next_deadline() == T0 + EXPIRES
    assert live.due(T0 + WINDOW) == []  # no timeout for a device already offline
    assert live.seen(CAM, T0 + 200) is True
    assert live.due(T0 + 200 + WINDOW) == [(CAM, KEEPALIVE_TIMEOUT)]


def test_registered_offline_then_reregistered_comes_online() -> None:
    live = registered(online=False)
    assert not live.is_online(CAM) and live.is_registered(CAM)
    assert live.next_deadline() == T0 + EXPIRES
    assert live.registered(CAM, T0 + 5, EXPIRES, WINDOW) is True


def test_unregistered() -> None:
    live = registered()
    assert live.unregistered(CAM) is True
    assert not live.is_registered(CAM)
    assert live.next_deadline() is None
    assert live.due(T0 + EXPIRES + 1) == []
    live = registered()
    live.due(T0 + WINDOW)
    assert live.unregistered(CAM) is False  # it was registered but offline


def test_refresh_moves_the_expiry() -> None:
    live = registered()
    live.registered(CAM, T0 + 1000, EXPIRES, WINDOW)
    live.seen(CAM, T0 + EXPIRES - 1)
    assert live.due(T0 + EXPIRES) == []  # the old expiry is void
    live.seen(CAM, T0 + 1000 + EXPIRES - 10)
    assert live.due(T0 + 1000 + EXPIRES) == [(CAM, EXPIRED)]


def test_next_deadline_never_returns_a_stale_deadline() -> None:
    live = Liveness()
    for i in range(50):
        live.registered(f"d{i}", T0, EXPIRES, WINDOW)
    for step in range(1, 20):  # keepalives void the older timeouts
        for i in range(50):
            live.seen(f"d{i}", T0 + step)
    for i in range(25):
        live.unregistered(f"d{i}")
    assert live.next_deadline() == T0 + 19 + WINDOW
    for i in range(25, 50):
        live.set_offline(f"d{i}")
    assert live.next_deadline() == T0 + EXPIRES


def test_heap_stays_bounded_under_many_updates() -> None:
    live = registered()
    for i in range(20_000):
        live.seen(CAM, T0 + i * 0.01)
    assert len(live._heap) <= 4 * len(live) + 1024 + 1
    assert live.next_deadline() == T0 + 19_999 * 0.01 + WINDOW


def test_heap_stays_bounded_when_updates_share_an_instant() -> None:
    # A coarse monotonic clock (Windows: ~15 ms) or a fake one gives many keepalives the same ``now``:
    # their identical deadlines are all "valid", and used to survive every compaction.
    live = registered()
    for _ in range(5000):
        live.seen(CAM, T0 + 1)
        live.registered(CAM, T0 + 1, EXPIRES, WINDOW)
    assert len(live._heap) <= 4 * len(live) + 1024 + 1
    assert live.due(T0 + 1 + WINDOW) == [(CAM, KEEPALIVE_TIMEOUT)]
    assert live.due(T0 + 1 + EXPIRES) == [(CAM, EXPIRED)]


# ----------------------------------------------------------------------------------------- model-based check


@dataclass
class Model:
    online: bool
    window: float
    seen_deadline: float
    expiry: float


def model_due(model: dict[str, Model], now: float) -> list[tuple[str, str]]:
    out = []
    for device, m in list(model.items()):
        # a timeout due at the same instant as the expiry is subsumed by it
        if m.online and m.seen_deadline <= now and m.seen_deadline < m.expiry:
            out.append((device, KEEPALIVE_TIMEOUT))
            m.online = False
        if m.expiry <= now:
            out.append((device, EXPIRED))
            del model[device]
    return out


def model_next(model: dict[str, Model]) -> float | None:
    times = [m.expiry for m in model.values()] + [m.seen_deadline for m in model.values() if m.online]
    return min(times) if times else None


DEVICES = [f"d{i}" for i in range(6)]
OPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["register", "register-offline", "seen", "seen-window", "burst", "offline", "unregister", "due"]
        ),
        st.sampled_from(DEVICES),
        st.integers(0, 40),  # time step
        st.integers(1, 60),  # expires / window
    ),
    max_size=200,
)


@settings(deadline=None, max_examples=120)
@given(OPS)
def test_liveness_matches_a_simple_model(steps: list[tuple[str, str, int, int]]) -> None:
    """Random operations against a dictionary model; "burst" piles up stale heap entries so that the heap
    is compacted between other operations."""
    live = Liveness()
    model: dict[str, Model] = {}
    now = 0.0
    for op, device, dt, span in steps:
        now += dt
        m = model.get(device)
        if op in ("register", "register-offline"):
            online = op == "register"
            window = span // 2 + 1
            assert live.registered(device, now, span, window, online=online) == (online and not (m and m.online))
            model[device] = Model(online, window, now + window, now + span)
        elif op in ("seen", "seen-window", "burst"):
            window = span if op == "seen-window" else None
            came_back = live.seen(device, now, window)
            if op == "burst":  # 1100 keepalives 1/1024 s apart: each voids the previous timeout entry
                live.seen(device, now)  # the same instant again: nothing changes
                for _ in range(1100):
                    now += 1 / 1024
                    assert live.seen(device, now) is False
            assert came_back == (m is not None and not m.online)
            if m is not None:
                m.online = True
                m.window = float(window) if window is not None else m.window
                m.seen_deadline = now + m.window
        elif op == "offline":
            assert live.set_offline(device) == (m is not None and m.online)
            if m is not None:
                m.online = False
        elif op == "unregister":
            model.pop(device, None)
            assert live.unregistered(device) == (m is not None and m.online)
        else:
            assert sorted(live.due(now)) == sorted(model_due(model, now))
        assert live.next_deadline() == model_next(model)
        for d in DEVICES:
            assert live.is_registered(d) == (d in model)
            assert live.is_online(d) == (d in model and model[d].online)
        assert len(live._heap) <= 4 * len(live) + 1024 + 1
    assert sorted(live.due(now + 10_000)) == sorted(model_due(model, now + 10_000))
    assert len(live) == 0 and live.next_deadline() is None
