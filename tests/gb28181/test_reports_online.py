"""Online rates from a known history (issue 10): exact numbers, through both stores and gather.load_history.

The day D = Monday 2026-11-23 in Asia/Shanghai; times below are hours after its local midnight. The platform
is down 10:00-11:00 (clean stop and start) and restarts uncleanly at 15:00 (a start with no stop before it).
  DVR A (111, Hikvision): registered the evening before, keepalive timeout at 22:00, back at 02:00 on D+1
    (offline across midnight). A1 class 1 follows its device (channel-device-offline / channel-on);
    A2 class 2 was reported OFF and has never had a status event.
  IPC B (132, Dahua): online throughout; its one video channel (its own ID, class 3 by override) reports OFF at
    06:00 and ON at 12:00 while B stays online.
  Lower platform P (200): added and registered at 08:00 (mid-period) with P1 (class 1) and P3 (class 1, VLOST at
    20:00); P2 (no class, no civil code) appears at 18:00.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import pytest

from gb28181.reports.gather import load_history, parse_day, report_period
from gb28181.reports.online import (
    STATE_EVENTS,
    Period,
    day_period,
    group_rates,
    intersect,
    online_history,
    per_bucket,
    span_period,
    subtract,
    week_period,
    worst_channels,
)
from registry.memory import MemoryStore
from registry.models import OFFLINE, ONLINE, VIDEO, Channel, Device, StatusEvent
from registry.sqlite import SqliteStore

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
D = dt.date(2026, 11, 23)
T0 = dt.datetime(2026, 11, 23, tzinfo=TZ).timestamp()
H = 3600.0

A = "34020000001110000001"
B = "34020000001320000002"
P = "34020100002000000003"
A1, A2 = "34020000001310000011", "34020000001310000012"
P1, P2, P3 = "34020100001310000031", "34020100001310000032", "34020100001310000033"


def at(hours: float) -> float:
    return T0 + hours * H


def ev(hours: float, subject: str, event: str, kind: str = "device", reason: str = "") -> StatusEvent:
    return StatusEvent(at(hours), subject, event, kind=kind, reason=reason)


def devices() -> list[Device]:
    return [
        Device(A, manufacturer="Hikvision", created_at=at(-30)),
        Device(B, manufacturer="Dahua", created_at=at(-30)),
        Device(P, name="county platform", created_at=at(8)),
    ]


def video(device_id: str, cid: str, first: float, **kw: object) -> Channel:
    return Channel(device_id, cid, kind=VIDEO, first_seen=at(first), updated_at=at(first), **kw)  # type: ignore[arg-type]


def channels() -> list[Channel]:
    return [
        video(A, A1, -30, name="北门", point_class=1, civil_code="340200", status=ONLINE),
        video(A, A2, -30, name="南门", point_class=2, civil_code="340200", status=OFFLINE),
        video(B, B, -30, name="广场", status=ONLINE, override_point_class=3),
        video(P, P1, 8, name="路口1", point_class=1, civil_code="340203", status=ONLINE),
        video(P, P2, 18, name="路口2", status=ONLINE),
        video(P, P3, 8, name="路口3", point_class=1, civil_code="340203", status=OFFLINE),
        Channel(P, "340203", kind="region", first_seen=at(8)),  # not video: never counted
    ]


def history_events() -> list[StatusEvent]:
    return [
        ev(-40, "platform", "platform-start", "platform"),
        ev(-14, B, "registered"),
        ev(-4, A, "registered"),
        ev(-3, A, "address-changed"),
        ev(6, B, "channel-off", "channel"),
        ev(8, P, "registered"),
        ev(8, P1, "channel-added", "channel", P),
        ev(8, P3, "channel-added", "channel", P),
        ev(10, "platform", "platform-stop", "platform"),
        ev(11, "platform", "platform-start", "platform"),
        ev(12, B, "channel-on", "channel"),
        ev(15, "platform", "platform-start", "platform"),  # a crash: no stop before it
        ev(18, P2, "channel-added", "channel", P),
        ev(20, P3, "channel-vlost", "channel"),
        ev(22, A, "keepalive-timeout"),
        ev(22, A1, "channel-device-offline", "channel", "device offline"),
        ev(26, A, "registered"),
        ev(26, A1, "channel-on", "channel", "device online"),
    ]


def compute(period: Period, now: float) -> object:
    events = history_events()
    prior = {}
    for e in events:
        if e.at < period.start and e.event in STATE_EVENTS:
            prior[e.subject] = e
    inside = [e for e in events if period.start <= e.at < min(period.end, now)]
    return online_history(
        period=period, now=now, devices=devices(), channels=channels(), prior=list(prior.values()), events=inside
    )


def hours(seconds: float) -> float:
    return seconds / H


def test_intervals() -> None:
    assert intersect([(0, 5), (8, 12)], [(3, 9), (11, 20)]) == [(3, 5), (8, 9), (11, 12)]
    assert subtract([(0, 10)], [(2, 3), (5, 6)]) == [(0, 2), (3, 5), (6, 10)]
    assert subtract([(0, 10), (20, 30)], [(8, 22)]) == [(0, 8), (22, 30)]
    assert subtract([(0, 4)], []) == [(0, 4)] and subtract([], [(0, 1)]) == []
    assert per_bucket([(1, 5), (7, 8)], [0, 2, 4, 10]) == [1, 2, 2]


def test_periods_run_midnight_to_midnight_in_the_platform_timezone() -> None:
    day = day_period(D, TZ)
    assert day.start == T0 and day.end == T0 + 24 * H and len(day.bounds) == 25
    assert dt.datetime.fromtimestamp(day.start, dt.UTC).hour == 16  # 00:00 +08:00 is 16:00 UTC
    week = week_period(D + dt.timedelta(days=3), TZ)
    assert (week.start, week.end, week.label) == (T0, T0 + 7 * 24 * H, "2026-W48")
    assert len(week.bounds) == 8 and week.step == "day"
    span = span_period(at(20), at(50), TZ)
    assert span.bounds == (at(20), at(24), at(48), at(50))
    ny = zoneinfo.ZoneInfo("America/New_York")  # a DST day has 25 hours
    assert len(day_period(dt.date(2026, 11, 1), ny).bounds) == 26
    assert parse_day("yesterday", at(1), TZ) == dt.date(2026, 11, 22)
    assert parse_day(None, at(23.99), TZ) == D and parse_day("2026-01-02", 0, TZ) == dt.date(2026, 1, 2)
    with pytest.raises(ValueError, match="not a date"):
        parse_day("monday", 0, TZ)
    with pytest.raises(ValueError, match="period must be"):
        report_period("month", D, TZ)


def test_day_report_numbers() -> None:
    h = compute(day_period(D, TZ), now=at(30))
    ch = {r.channel.id: r.uptime for r in h.channels}
    assert set(ch) == {A1, A2, B, P1, P2, P3}, "video channels only"
    expect = {A1: (21, 23), A2: (0, 23), B: (18, 23), P1: (15, 15), P2: (6, 6), P3: (11, 15)}
    assert {k: (hours(u.online), hours(u.observed)) for k, u in ch.items()} == expect
    assert ch[A1].rate == pytest.approx(21 / 23)  # offline 22:00 -> midnight, downtime excluded
    assert ch[B].outages == 1, "OFF 06:00-12:00 is one outage although the platform's downtime cuts it"
    assert ch[A1].outages == 1 and ch[A2].outages == 1 and ch[P1].outages == 0
    assert {k for k, u in ch.items() if u.online_at_end} == {B, P1, P2}
    dv = {r.device.id: r.uptime for r in h.devices}
    assert {k: (hours(u.online), hours(u.observed)) for k, u in dv.items()} == {A: (21, 23), B: (23, 23), P: (15, 15)}
    assert h.downtime == ((at(10), at(11)),) and hours(h.downtime_seconds) == 1
    assert (h.restarts, h.unclean_restarts) == (2, 1)

    [total] = group_rates(h)
    assert (hours(total.channel_online), hours(total.channel_observed)) == (71, 105)
    assert (hours(total.device_online), hours(total.device_observed)) == (59, 61)
    assert (total.channels, total.channels_online, total.devices, total.devices_online) == (6, 3, 3, 2)
    assert total.buckets[0] == (2 * H, 3 * H), "00:00-01:00: A1 and B on, A2 off; P not there yet"
    assert total.buckets[10] == (0, 0), "the platform was down"
    assert total.buckets[22] == (3 * H, 6 * H)


def test_groupings() -> None:
    h = compute(day_period(D, TZ), now=at(30))

    def table(by: str, level: int = 3) -> dict[str, tuple[float, float, int]]:
        return {
            g.key: (hours(g.channel_online), hours(g.channel_observed), g.devices) for g in group_rates(h, by, level)
        }

    assert table("point-class") == {"1": (47, 53, 0), "2": (0, 23, 0), "3": (18, 23, 0), "unknown": (6, 6, 0)}
    pc = {g.key: g for g in group_rates(h, "point-class")}
    assert pc["1"].target == 0.98 and pc["1"].meets_target is False and pc["3"].target is None
    assert pc["1"].label == "class 1"
    # civil code: A's channels report 340200, B's comes from its ID, P2 from its ID (34020100), P1/P3 340203
    assert table("civil-code") == {"340200": (39, 69, 2), "340201": (6, 6, 1), "340203": (26, 30, 0)}
    assert table("civil-code", 2) == {"3402": (71, 105, 3)}
    assert table("civil-code", 4) == {"340200": (21, 46, 0), "34020000": (18, 23, 2), "34020100": (6, 6, 1),
                                      "340203": (26, 30, 0)}  # fmt: skip
    assert table("type") == {"111": (21, 46, 1), "132": (18, 23, 1), "200": (32, 36, 1)}
    assert [g.label for g in group_rates(h, "type")] == ["111 DVR", "132 IP camera", "200 platform"]
    assert table("manufacturer") == {"Hikvision": (21, 46, 1), "Dahua": (18, 23, 1), "unknown": (32, 36, 1)}
    assert table("platform") == {"direct": (39, 69, 2), P: (32, 36, 1)}
    assert {g.key: g.label for g in group_rates(h, "platform")}[P] == f"{P} county platform"
    with pytest.raises(ValueError, match="unknown grouping"):
        group_rates(h, "colour")
    with pytest.raises(ValueError, match="level"):
        group_rates(h, "civil-code", 5)


def test_worst_channels() -> None:
    h = compute(day_period(D, TZ), now=at(30))
    assert [w.channel.id for w in worst_channels(h)] == [A2, P3, B, A1]
    assert [w.channel.id for w in worst_channels(h, 2)] == [A2, P3]


def test_next_day_and_week() -> None:
    next_day = compute(day_period(D + dt.timedelta(days=1), TZ), now=at(30))
    ch = {r.channel.id: r.uptime for r in next_day.channels}
    assert hours(ch[A1].online) == 4 and hours(ch[A1].observed) == 6, "back online at 02:00, observed until now"
    assert hours(ch[P3].online) == 0 and next_day.restarts == 0 and next_day.downtime == ()
    assert next_day.until == at(30)

    week = compute(week_period(D, TZ), now=at(30))
    [total] = group_rates(week)
    assert (hours(total.channel_online), hours(total.channel_observed)) == (71 + 22, 105 + 36)
    assert [(hours(on), hours(obs)) for on, obs in total.buckets] == [(71, 105), (22, 36)] + [(0, 0)] * 5


def test_a_device_offline_before_the_period_and_silent_stays_offline() -> None:
    period = day_period(D, TZ)
    h = online_history(
        period=period, now=at(30), devices=[Device(A, created_at=at(-50))],
        channels=[video(A, A1, -50, status=ONLINE)],
        prior=[ev(-20, A, "expired")], events=[],
    )  # fmt: skip
    assert h.devices[0].uptime.online == 0 and h.channels[0].uptime.online == 0
    assert hours(h.devices[0].uptime.observed) == 24 and h.devices[0].uptime.outages == 1


def test_the_period_can_start_while_the_platform_is_down() -> None:
    h = online_history(
        period=day_period(D, TZ), now=at(30), devices=[Device(A, created_at=at(-50))], channels=[],
        prior=[ev(-20, A, "registered"), ev(-2, "platform", "platform-stop", "platform")],
        events=[ev(3, "platform", "platform-start", "platform")],
    )  # fmt: skip
    assert h.downtime == ((at(0), at(3)),) and (h.restarts, h.unclean_restarts) == (1, 0)
    assert hours(h.devices[0].uptime.observed) == 21 == hours(h.devices[0].uptime.online)


def test_a_channel_turned_on_first_was_off_before() -> None:
    h = online_history(
        period=day_period(D, TZ), now=at(30), devices=[Device(B, created_at=at(-50))],
        channels=[video(B, A1, -50, status=ONLINE)],
        prior=[ev(-20, B, "registered")], events=[ev(6, A1, "channel-on", "channel")],
    )  # fmt: skip
    assert hours(h.channels[0].uptime.online) == 18


def test_a_period_in_the_future_observes_nothing() -> None:
    h = compute(day_period(D + dt.timedelta(days=5), TZ), now=at(30))
    assert h.channels == () and h.devices == () and h.downtime == ()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_the_same_numbers_through_the_store(kind: str, tmp_path: Path) -> None:
    store = MemoryStore() if kind == "memory" else SqliteStore(tmp_path / "r.db")
    await store.open()
    try:
        for d in devices():
            await store.put_device(d)
        for device_id in (A, B, P):
            await store.apply_catalog(device_id, [c for c in channels() if c.device_id == device_id], [])
        await store.set_channel_overrides(B, B, override_point_class=3)
        await store.append_events(history_events())
        h = await load_history(store, day_period(D, TZ), now=at(30))
        expect = compute(day_period(D, TZ), now=at(30))
        got = {r.channel.id: (r.uptime.online, r.uptime.observed, r.uptime.outages) for r in h.channels}
        assert got == {r.channel.id: (r.uptime.online, r.uptime.observed, r.uptime.outages) for r in expect.channels}
        assert [g.channel_online for g in group_rates(h, "point-class")] == [
            g.channel_online for g in group_rates(expect, "point-class")
        ]
        week = await load_history(store, week_period(D, TZ), now=at(30))
        assert hours(group_rates(week)[0].channel_online) == 93
    finally:
        await store.close()
