"""What a report reads from the store, and the operator's period arguments. The only IO of gb28181/reports:
``now`` and the timezone come from the caller (the admin API passes the platform's wall clock)."""

from __future__ import annotations

import asyncio
import datetime as dt
import zoneinfo

from gb28181.reports.online import (
    STATE_EVENTS,
    OnlineHistory,
    Period,
    day_period,
    online_history,
    week_period,
)
from gb28181.reports.quality import AnnotationReport, IdProblem, check_annotation, check_ids
from registry.store import RegistryStore

MAX_EVENTS = 5_000_000  # events inside one report period; more is refused rather than read into memory
PERIODS = ("day", "week")


class ReportTooLarge(ValueError):
    pass


def parse_day(text: str | None, now: float, tz: zoneinfo.ZoneInfo) -> dt.date:
    """``today`` (the default), ``yesterday`` or ``YYYY-MM-DD``, in the platform's timezone."""
    today = dt.datetime.fromtimestamp(now, tz).date()
    value = (text or "today").strip().lower()
    if value == "today":
        return today
    if value == "yesterday":
        return today - dt.timedelta(days=1)
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a date: {text!r} (use YYYY-MM-DD, today or yesterday)") from None


def report_period(kind: str, day: dt.date, tz: zoneinfo.ZoneInfo) -> Period:
    if kind == "day":
        return day_period(day, tz)
    if kind == "week":
        return week_period(day, tz)
    raise ValueError(f"period must be one of {', '.join(PERIODS)}")


async def load_history(store: RegistryStore, period: Period, now: float) -> OnlineHistory:
    until = max(period.start, min(period.end, now))
    devices = await store.list_devices()
    channels = await store.list_channels()
    prior = await store.last_events(before=period.start, events=STATE_EVENTS)
    events = []
    if until > period.start:
        events = await store.list_events(since=period.start, until=until, limit=MAX_EVENTS + 1)
    if len(events) > MAX_EVENTS:
        raise ReportTooLarge(f"more than {MAX_EVENTS} events in the period: report a shorter one")
    # A week of a large platform is seconds of CPU: computed in a thread so the SIP event loop keeps running.
    return await asyncio.to_thread(
        online_history, period=period, now=now, devices=devices, channels=channels, prior=prior, events=events
    )


async def load_quality(store: RegistryStore, platform_id: str) -> tuple[AnnotationReport, list[IdProblem]]:
    devices = await store.list_devices()
    channels = await store.list_channels()
    annotation = await asyncio.to_thread(check_annotation, channels)
    return annotation, check_ids(devices, channels, platform_id)
