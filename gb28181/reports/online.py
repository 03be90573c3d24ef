"""Time-weighted online rates from the status event log (issue 10; DECISIONS.md: Status events, Time).

A video channel is online while its device is online AND its own last status (catalog/NOTIFY ON, OFF, VLOST,
DEFECT) is ON: a channel whose device is offline counts as offline. Time the platform itself was down
(platform-stop -> platform-start) is taken out of every denominator and reported on its own; a platform-start
without a platform-stop before it (a crash) is counted as an unclean restart, its downtime unknown and not excluded.
Channels and devices count from when they were first seen (``first_seen`` / ``created_at``), so one added
mid-period is measured only over the time it existed. Everything here is pure: the events, the inventory, the
period and ``now`` come in as arguments.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from registry.models import ONLINE, VIDEO, Channel, Device, StatusEvent

Interval = tuple[float, float]

# How each event moves a subject's state (registry.models.EVENT_CODES).
DEVICE_ON = frozenset({"registered", "online"})
DEVICE_OFF = frozenset({"unregistered", "expired", "keepalive-timeout", "tcp-closed", "offline"})
CHANNEL_ON = frozenset({"channel-on"})
CHANNEL_OFF = frozenset({"channel-off", "channel-vlost", "channel-defect"})
# The device took the channel down: the channel's own status stays what it was (ON: only online channels are).
CHANNEL_DARK = frozenset({"channel-device-offline"})
PLATFORM_EVENTS = frozenset({"platform-start", "platform-stop"})
PLATFORM_SUBJECT = "platform"
STATE_EVENTS = tuple(sorted(DEVICE_ON | DEVICE_OFF | CHANNEL_ON | CHANNEL_OFF | CHANNEL_DARK | PLATFORM_EVENTS))

GROUPINGS = ("civil-code", "point-class", "type", "manufacturer", "platform")
CIVIL_LEVELS = {1: "province", 2: "city", 3: "county", 4: "grassroots"}  # 2/4/6/8 digits of a civil code
# Typical targets platforms are judged by: class-1 points >= 98 %, class-2 >= 95 % (issue 10).
TARGETS = {"1": 0.98, "2": 0.95}
# GB/T 28181-2022 Appendix E, Table E.1 type codes (digits 11-13) an operator will meet.
TYPE_NAMES = {
    111: "DVR",
    112: "video server",
    113: "encoder",
    114: "decoder",
    118: "NVR",
    121: "alarm controller",
    131: "camera",
    132: "IP camera",
    200: "platform",
}


# ------------------------------------------------------------------------------------------ periods
@dataclass(frozen=True)
class Period:
    """``[start, end)`` in epoch seconds, cut into buckets (hours of a day, days of a week) at ``bounds``."""

    start: float
    end: float
    bounds: tuple[float, ...]  # start = bounds[0] < ... < bounds[-1] = end
    step: str  # "hour" | "day"
    label: str


def midnight(day: dt.date, tz: zoneinfo.ZoneInfo) -> float:
    """Local midnight starting ``day`` in the platform's timezone (DECISIONS.md: Time)."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def day_period(day: dt.date, tz: zoneinfo.ZoneInfo) -> Period:
    start, end = midnight(day, tz), midnight(day + dt.timedelta(days=1), tz)
    bounds = [start]
    while bounds[-1] + 3600 < end and len(bounds) < 26:  # 23-25 hours on a DST change day
        bounds.append(bounds[-1] + 3600)
    bounds.append(end)
    return Period(start, end, tuple(bounds), "hour", day.isoformat())


def week_period(day: dt.date, tz: zoneinfo.ZoneInfo) -> Period:
    """The ISO week (Monday to Sunday) holding ``day``."""
    monday = day - dt.timedelta(days=day.weekday())
    bounds = tuple(midnight(monday + dt.timedelta(days=n), tz) for n in range(8))
    year, week, _ = monday.isocalendar()
    return Period(bounds[0], bounds[-1], bounds, "day", f"{year}-W{week:02d}")


def span_period(start: float, end: float, tz: zoneinfo.ZoneInfo) -> Period:
    """``[start, end)`` cut at the local midnights inside it (``stats online --since``)."""
    if end <= start:
        raise ValueError("the period must end after it starts")
    bounds = [start]
    day = dt.datetime.fromtimestamp(start, tz).date()
    for _ in range(400):  # bounded: a --since longer than ~13 months is one last long bucket
        day += dt.timedelta(days=1)
        edge = midnight(day, tz)
        if edge >= end:
            break
        bounds.append(edge)
    bounds.append(end)
    label = f"{dt.datetime.fromtimestamp(start, tz).isoformat(timespec='seconds')} .. "
    label += dt.datetime.fromtimestamp(end, tz).isoformat(timespec="seconds")
    return Period(start, end, tuple(bounds), "day", label)


# ------------------------------------------------------------------------------------------ intervals
def _steps(initial: bool, changes: Iterable[tuple[float, bool]], start: float, end: float) -> list[Interval]:
    """The intervals of ``[start, end)`` where a step function that starts at ``initial`` and changes at the
    given (time, state) points (in time order) is True."""
    out: list[Interval] = []
    state, since = initial, start
    for at, new in changes:
        at = min(max(at, start), end)
        if new == state:
            continue
        if state and at > since:
            out.append((since, at))
        state, since = new, at
    if state and end > since:
        out.append((since, end))
    return out


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """``a`` minus ``b`` (both sorted and disjoint)."""
    out: list[Interval] = []
    j = 0
    for lo, hi in a:
        cur = lo
        while j < len(b) and b[j][1] <= cur:
            j += 1
        k = j
        while k < len(b) and b[k][0] < hi:
            if b[k][0] > cur:
                out.append((cur, b[k][0]))
            cur = max(cur, b[k][1])
            k += 1
        if cur < hi:
            out.append((cur, hi))
    return out


def measure(intervals: Iterable[Interval]) -> float:
    return sum(hi - lo for lo, hi in intervals)


def per_bucket(intervals: Sequence[Interval], bounds: Sequence[float]) -> list[float]:
    """Seconds of ``intervals`` inside each bucket ``[bounds[k], bounds[k+1])``."""
    out = [0.0] * (len(bounds) - 1)
    i = 0
    for k in range(len(bounds) - 1):
        lo, hi = bounds[k], bounds[k + 1]
        while i < len(intervals) and intervals[i][1] <= lo:
            i += 1
        n = i
        while n < len(intervals) and intervals[n][0] < hi:
            out[k] += min(hi, intervals[n][1]) - max(lo, intervals[n][0])
            n += 1
    return out


# ------------------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class Uptime:
    observed: float  # seconds the subject existed while the platform was up
    online: float
    outages: int  # separate offline spans inside the observed time
    online_at_end: bool
    buckets: tuple[tuple[float, float], ...]  # (online, observed) per bucket of the period

    @property
    def rate(self) -> float | None:
        return self.online / self.observed if self.observed > 0 else None

    @property
    def offline(self) -> float:
        return self.observed - self.online


@dataclass(frozen=True)
class ChannelUptime:
    channel: Channel
    device: Device | None
    uptime: Uptime


@dataclass(frozen=True)
class DeviceUptime:
    device: Device
    uptime: Uptime


@dataclass(frozen=True)
class OnlineHistory:
    period: Period
    until: float  # observed up to here: min(period end, now)
    channels: tuple[ChannelUptime, ...]  # video channels
    devices: tuple[DeviceUptime, ...]
    downtime: tuple[Interval, ...]  # the platform's own, inside the period
    restarts: int  # platform-start events inside the period
    unclean_restarts: int  # of those, how many had no platform-stop before them

    @property
    def downtime_seconds(self) -> float:
        return measure(self.downtime)


def _uptime(
    exist: list[Interval], observed: list[Interval], online: list[Interval], until: float, bounds: Sequence[float]
) -> Uptime:
    # An outage is an offline span of the subject's existence that is not wholly platform downtime: one offline
    # span the platform's own downtime cuts in two is still one outage.
    outages = sum(1 for gap in subtract(exist, online) if intersect([gap], observed))
    on_b, obs_b = per_bucket(online, bounds), per_bucket(observed, bounds)
    return Uptime(
        observed=measure(observed),
        online=measure(online),
        outages=outages,
        online_at_end=bool(online) and online[-1][1] >= until,
        buckets=tuple(zip(on_b, obs_b, strict=True)),
    )


class _Log:
    """Events by subject: the state before the period (``prior``) and the changes inside it."""

    def __init__(self, prior: Sequence[StatusEvent], events: Sequence[StatusEvent], start: float) -> None:
        self.prior = {e.subject: e for e in prior if e.at < start}
        self.changes: dict[str, list[StatusEvent]] = {}
        for e in sorted(events, key=lambda e: e.at):  # stable: ties keep the log's order
            if e.at >= start:
                self.changes.setdefault(e.subject, []).append(e)

    def platform_up(self, start: float, end: float) -> tuple[list[Interval], int, int]:
        before = self.prior.get(PLATFORM_SUBJECT)
        up = before is None or before.event != "platform-stop"
        changes: list[tuple[float, bool]] = []
        restarts = unclean = 0
        for e in self.changes.get(PLATFORM_SUBJECT, ()):
            if e.event == "platform-start":
                restarts += 1
                unclean += up
                up = True
            elif e.event == "platform-stop":
                up = False
            else:
                continue
            changes.append((e.at, up))
        return _steps(before is None or before.event != "platform-stop", changes, start, end), restarts, unclean

    def device_on(self, device_id: str, start: float, end: float) -> list[Interval]:
        before = self.prior.get(device_id)
        initial = before is not None and before.event in DEVICE_ON
        changes = [
            (e.at, e.event in DEVICE_ON) for e in self.changes.get(device_id, ()) if e.event in DEVICE_ON | DEVICE_OFF
        ]
        return _steps(initial, changes, start, end)

    def channel_own_on(self, channel: Channel, start: float, end: float) -> list[Interval]:
        """The channel's own status (ON/OFF as its device reports it), ignoring its device's state."""
        own = CHANNEL_ON | CHANNEL_OFF | CHANNEL_DARK
        changes = [(e.at, e.event not in CHANNEL_OFF) for e in self.changes.get(channel.id, ()) if e.event in own]
        before = self.prior.get(channel.id)
        if before is not None and before.event in own:
            initial = before.event not in CHANNEL_OFF
        elif changes:
            first = next(e for e in self.changes[channel.id] if e.event in own)
            initial = first.event not in CHANNEL_ON  # an ON says it was off before; OFF/VLOST/DEFECT: it was on
        else:
            initial = channel.status == ONLINE  # no status event ever: as the catalog reported it
        return _steps(initial, changes, start, end)


def online_history(
    *,
    period: Period,
    now: float,
    devices: Sequence[Device],
    channels: Sequence[Channel],
    prior: Sequence[StatusEvent],
    events: Sequence[StatusEvent],
) -> OnlineHistory:
    """Online time of every video channel and device over ``period`` up to ``now``.

    ``prior``: each subject's last state event before the period (``RegistryStore.last_events`` with
    STATE_EVENTS); ``events``: the events inside ``[period.start, min(period.end, now))``.
    """
    start, until = period.start, max(period.start, min(period.end, now))
    if until <= start:  # a period that has not begun
        return OnlineHistory(period, until, (), (), (), 0, 0)
    log = _Log(prior, events, start)
    up, restarts, unclean = log.platform_up(start, until)
    down = subtract([(start, until)], up)
    by_id = {d.id: d for d in devices}
    device_on: dict[str, list[Interval]] = {}

    def on_of(device_id: str) -> list[Interval]:
        if device_id not in device_on:
            device_on[device_id] = log.device_on(device_id, start, until)
        return device_on[device_id]

    device_rows = []
    for d in devices:
        if d.created_at >= until:
            continue  # did not exist in the period
        exist = [(max(start, d.created_at), until)]
        observed = intersect(exist, up)
        online = intersect(observed, on_of(d.id))
        device_rows.append(DeviceUptime(d, _uptime(exist, observed, online, until, period.bounds)))
    channel_rows = []
    for c in channels:
        if c.kind != VIDEO or c.first_seen >= until:
            continue
        exist = [(max(start, c.first_seen), until)]
        observed = intersect(exist, up)
        online = intersect(intersect(observed, on_of(c.device_id)), log.channel_own_on(c, start, until))
        uptime = _uptime(exist, observed, online, until, period.bounds)
        channel_rows.append(ChannelUptime(c, by_id.get(c.device_id), uptime))
    return OnlineHistory(period, until, tuple(channel_rows), tuple(device_rows), tuple(down), restarts, unclean)


# ------------------------------------------------------------------------------------------ grouping
def _digits(text: str, lengths: tuple[int, ...]) -> bool:
    return len(text) in lengths and text.isascii() and text.isdigit()


def id_civil_code(gb_id: str) -> str:
    """The centre code (digits 1-8) of a 20-digit ID, else ""."""
    return gb_id[:8] if _digits(gb_id, (20,)) else ""


def channel_civil_code(channel: Channel) -> str:
    """The channel's civil code as shown (override <- reported) when it is 2-8 digits, else its ID's centre code
    (GB/T 28181-2022 Appendix E: digits 1-8), else its device's."""
    code = channel.shown_civil_code.strip()
    if _digits(code, (2, 4, 6, 8)):
        return code
    return id_civil_code(channel.id) or id_civil_code(channel.device_id)


def civil_key(code: str, level: int) -> str:
    """The civil code cut to ``level`` (1 province, 2 city, 3 county, 4 grassroots); shorter codes stay whole."""
    return code[: 2 * level] if code else "unknown"


def type_key(device_id: str) -> str:
    return device_id[10:13] if _digits(device_id, (20,)) else "unknown"


def is_lower_platform(device_id: str) -> bool:
    """A registrant whose type code is in the platform range (200-299) is a lower platform (Table E.1)."""
    return type_key(device_id) != "unknown" and 200 <= int(type_key(device_id)) <= 299


def channel_key(row: ChannelUptime, by: str | None, level: int) -> str:
    c = row.channel
    if by is None:
        return "all"
    if by == "civil-code":
        return civil_key(channel_civil_code(c), level)
    if by == "point-class":
        return str(c.shown_point_class) if c.shown_point_class is not None else "unknown"
    if by == "type":
        return type_key(c.device_id)
    if by == "manufacturer":
        return (c.manufacturer or (row.device.manufacturer if row.device else "")).strip() or "unknown"
    if by == "platform":
        return c.device_id if is_lower_platform(c.device_id) else "direct"
    raise ValueError(f"unknown grouping {by!r} (one of {', '.join(GROUPINGS)})")


def device_key(d: Device, by: str | None, level: int) -> str | None:
    """A device's group; None for point class, which belongs to channels only."""
    if by is None:
        return "all"
    if by == "civil-code":
        return civil_key(id_civil_code(d.id), level)
    if by == "point-class":
        return None
    if by == "type":
        return type_key(d.id)
    if by == "manufacturer":
        return d.manufacturer.strip() or "unknown"
    if by == "platform":
        return d.id if is_lower_platform(d.id) else "direct"
    raise ValueError(f"unknown grouping {by!r} (one of {', '.join(GROUPINGS)})")


def group_label(by: str | None, key: str, devices: dict[str, Device]) -> str:
    if by == "type" and key.isdigit():
        return f"{key} {TYPE_NAMES.get(int(key), '')}".strip()
    if by == "point-class" and key in ("1", "2", "3"):
        return f"class {key}"
    if by == "point-class" and key == "9":
        return "other (9)"
    if by == "platform" and key in devices and devices[key].name:
        return f"{key} {devices[key].name}"
    if by == "platform" and key == "direct":
        return "registered directly"
    return key


@dataclass(frozen=True)
class GroupRate:
    key: str
    label: str
    channels: int
    channels_online: int  # at the end of the observed time
    channel_observed: float
    channel_online: float
    devices: int
    devices_online: int
    device_observed: float
    device_online: float
    buckets: tuple[tuple[float, float], ...]  # channel (online, observed) seconds per bucket
    target: float | None = None

    @property
    def channel_rate(self) -> float | None:
        return self.channel_online / self.channel_observed if self.channel_observed > 0 else None

    @property
    def device_rate(self) -> float | None:
        return self.device_online / self.device_observed if self.device_observed > 0 else None

    @property
    def meets_target(self) -> bool | None:
        rate = self.channel_rate
        return None if self.target is None or rate is None else rate >= self.target


def _add(acc: list[list[float]], buckets: Sequence[tuple[float, float]]) -> None:
    for k, (on, obs) in enumerate(buckets):
        acc[k][0] += on
        acc[k][1] += obs


def group_rates(history: OnlineHistory, by: str | None = None, level: int = 3) -> list[GroupRate]:
    """Channel and device rates per group, ordered by key; ``by`` None gives one group "all"."""
    if by is not None and by not in GROUPINGS:
        raise ValueError(f"unknown grouping {by!r} (one of {', '.join(GROUPINGS)})")
    if level not in CIVIL_LEVELS:
        raise ValueError(f"level must be one of {sorted(CIVIL_LEVELS)} (province, city, county, grassroots)")
    width = len(history.period.bounds) - 1
    acc: dict[str, dict[str, float]] = {}
    buckets: dict[str, list[list[float]]] = {}

    def slot(key: str) -> dict[str, float]:
        if key not in acc:
            acc[key] = dict.fromkeys(("c", "con", "cobs", "cup", "d", "don", "dobs", "dup"), 0.0)
            buckets[key] = [[0.0, 0.0] for _ in range(width)]
        return acc[key]

    for row in history.channels:
        key = channel_key(row, by, level)
        s, u = slot(key), row.uptime
        s["c"] += 1
        s["con"] += u.online_at_end
        s["cobs"] += u.observed
        s["cup"] += u.online
        _add(buckets[key], u.buckets)
    for drow in history.devices:
        dkey = device_key(drow.device, by, level)
        if dkey is None:
            continue
        s, u = slot(dkey), drow.uptime
        s["d"] += 1
        s["don"] += u.online_at_end
        s["dobs"] += u.observed
        s["dup"] += u.online
    devices = {d.device.id: d.device for d in history.devices}
    return [
        GroupRate(
            key=key,
            label=group_label(by, key, devices),
            channels=int(s["c"]),
            channels_online=int(s["con"]),
            channel_observed=s["cobs"],
            channel_online=s["cup"],
            devices=int(s["d"]),
            devices_online=int(s["don"]),
            device_observed=s["dobs"],
            device_online=s["dup"],
            buckets=tuple((on, obs) for on, obs in buckets[key]),
            target=TARGETS.get(key) if by == "point-class" else None,
        )
        for key, s in sorted(acc.items())
    ]


def worst_channels(history: OnlineHistory, limit: int = 20) -> list[ChannelUptime]:
    """The channels offline longest (lowest rate first, then most offline time), only those offline at all."""
    rows = [r for r in history.channels if r.uptime.observed > 0 and r.uptime.offline > 0]
    rows.sort(key=lambda r: (r.uptime.rate or 0.0, -r.uptime.offline, r.channel.device_id, r.channel.id))
    return rows[:limit]
