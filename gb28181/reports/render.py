"""Reports as JSON, text, CSV and one self-contained HTML page (inline CSS and SVG charts, no scripts and no
network fetches: it opens offline). Pure: every time shown comes from the data, formatted in the platform's
timezone (DECISIONS.md: Time)."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gb28181.reports.online import (
    CIVIL_LEVELS,
    ChannelUptime,
    GroupRate,
    OnlineHistory,
    channel_civil_code,
    group_rates,
    type_key,
    worst_channels,
)
from gb28181.reports.quality import RULES, AnnotationReport, IdProblem

FORMATS = ("text", "csv", "html")


def iso(ts: float, tz: zoneinfo.ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")


def pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f} %"


def _ratio(rate: float | None) -> float | None:
    return None if rate is None else round(rate, 6)


# ------------------------------------------------------------------------------------------ JSON
def group_json(g: GroupRate) -> dict[str, Any]:
    return {
        "key": g.key,
        "label": g.label,
        "channels": g.channels,
        "channels_online": g.channels_online,
        "channel_rate": _ratio(g.channel_rate),
        "channel_observed_s": round(g.channel_observed, 3),
        "channel_online_s": round(g.channel_online, 3),
        "devices": g.devices,
        "devices_online": g.devices_online,
        "device_rate": _ratio(g.device_rate),
        "device_observed_s": round(g.device_observed, 3),
        "device_online_s": round(g.device_online, 3),
        "target": g.target,
        "meets_target": g.meets_target,
    }


def platform_json(h: OnlineHistory, tz: zoneinfo.ZoneInfo) -> dict[str, Any]:
    return {
        "downtime_s": round(h.downtime_seconds, 3),
        "downtime": [{"from": iso(a, tz), "to": iso(b, tz), "seconds": round(b - a, 3)} for a, b in h.downtime],
        "restarts": h.restarts,
        "unclean_restarts": h.unclean_restarts,
    }


def period_json(h: OnlineHistory, tz: zoneinfo.ZoneInfo) -> dict[str, Any]:
    p = h.period
    return {"label": p.label, "start": iso(p.start, tz), "end": iso(p.end, tz), "until": iso(h.until, tz),
            "step": p.step}  # fmt: skip


def online_json(h: OnlineHistory, by: str | None, level: int, tz: zoneinfo.ZoneInfo) -> dict[str, Any]:
    """``stats online``: the total and the groups, with the platform's own downtime beside them."""
    return {
        "period": period_json(h, tz),
        "by": by,
        "level": level if by == "civil-code" else None,
        "total": group_json(group_rates(h)[0]) if h.channels or h.devices else None,
        "groups": [group_json(g) for g in group_rates(h, by, level)] if by else [],
        "platform": platform_json(h, tz),
    }


def annotation_json(a: AnnotationReport, limit: int = 1000) -> dict[str, Any]:
    return {
        "channels": a.channels,
        "compliant": a.compliant,
        "share": {rule: _ratio(a.share(rule)) for rule in RULES},
        "ok": dict(a.ok),
        "class1": a.class1,
        "class1_coordinates_ok": a.class1_coordinates_ok,
        "offenders": len(a.offenders),
        "offender_list": [
            {"device_id": o.channel.device_id, "id": o.channel.id, "name": o.channel.shown_name,
             "problems": [{"rule": r, "problem": p} for r, p in o.problems]}
            for o in a.offenders[:limit]
        ],
    }


def ids_json(problems: Sequence[IdProblem]) -> list[dict[str, str]]:
    return [{"id": p.subject, "device_id": p.device_id, "role": p.role, "problem": p.problem} for p in problems]


# ------------------------------------------------------------------------------------------ the report
@dataclass(frozen=True)
class Report:
    title: str
    history: OnlineHistory
    annotation: AnnotationReport
    ids: tuple[IdProblem, ...]
    generated: float  # wall time the report was made (given, not read)
    tz: zoneinfo.ZoneInfo
    level: int = 3  # civil code level of the by-region chart
    worst_limit: int = 20

    @property
    def total(self) -> GroupRate | None:
        rows = group_rates(self.history)
        return rows[0] if rows else None

    @property
    def by_point_class(self) -> list[GroupRate]:
        return group_rates(self.history, "point-class")

    @property
    def by_civil_code(self) -> list[GroupRate]:
        return group_rates(self.history, "civil-code", self.level)

    @property
    def worst(self) -> list[ChannelUptime]:
        return worst_channels(self.history, self.worst_limit)

    def bucket_labels(self) -> list[str]:
        p = self.history.period
        fmt = "%H:00" if p.step == "hour" else "%m-%d"
        return [dt.datetime.fromtimestamp(b, self.tz).strftime(fmt) for b in p.bounds[:-1]]

    def over_time(self) -> list[tuple[str, float | None]]:
        total = self.total
        labels = self.bucket_labels()
        if total is None:
            return [(label, None) for label in labels]
        return [(label, on / obs if obs > 0 else None) for label, (on, obs) in zip(labels, total.buckets, strict=True)]


def report_json(r: Report) -> dict[str, Any]:
    h = r.history
    return {
        "title": r.title,
        "generated": iso(r.generated, r.tz),
        "period": period_json(h, r.tz),
        "platform": platform_json(h, r.tz),
        "total": group_json(r.total) if r.total else None,
        "by_point_class": [group_json(g) for g in r.by_point_class],
        "by_civil_code": [group_json(g) for g in r.by_civil_code],
        "civil_level": r.level,
        "over_time": [{"bucket": label, "rate": _ratio(rate)} for label, rate in r.over_time()],
        "worst": [_worst_json(w, r.tz) for w in r.worst],
        "annotation": annotation_json(r.annotation),
        "ids": ids_json(r.ids),
    }


def _worst_json(w: ChannelUptime, tz: zoneinfo.ZoneInfo) -> dict[str, Any]:
    c, u = w.channel, w.uptime
    return {"device_id": c.device_id, "id": c.id, "name": c.shown_name, "rate": _ratio(u.rate),
            "offline_s": round(u.offline, 3), "outages": u.outages, "online_now": u.online_at_end}  # fmt: skip


# ------------------------------------------------------------------------------------------ text
def _duration(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def render_text(r: Report) -> str:
    h, a = r.history, r.annotation
    out = [r.title, f"period {h.period.label}: {iso(h.period.start, r.tz)} .. {iso(h.until, r.tz)}", ""]
    total = r.total
    if total is not None:
        out.append(
            f"video channels {total.channels} (online now {total.channels_online}): online rate "
            f"{pct(total.channel_rate)}; devices {total.devices} (online now {total.devices_online}): "
            f"{pct(total.device_rate)}"
        )
    out.append(
        f"platform down {_duration(h.downtime_seconds)} (excluded), restarts {h.restarts}"
        + (f", {h.unclean_restarts} without a clean stop" if h.unclean_restarts else "")
    )
    for title, groups in (("by point class", r.by_point_class),
                          (f"by civil code ({CIVIL_LEVELS[r.level]})", r.by_civil_code)):  # fmt: skip
        out += ["", title]
        for g in groups:
            target = "" if g.target is None else f"  target {pct(g.target)} {'met' if g.meets_target else 'MISSED'}"
            out.append(f"  {g.label:<24} channels {g.channels:>6}  online {pct(g.channel_rate):>8}{target}")
    out += ["", "over time"]
    out += [f"  {label}  {pct(rate)}" for label, rate in r.over_time()]
    out += ["", f"worst channels (of {len(h.channels)})"]
    for w in r.worst:
        out.append(
            f"  {w.channel.id}  {w.channel.shown_name[:24]:<24} {pct(w.uptime.rate):>8}  "
            f"offline {_duration(w.uptime.offline)}  outages {w.uptime.outages}"
        )
    out += ["", f"annotation ({a.channels} video channels, {a.compliant} compliant)"]
    out += [f"  {rule:<12} {pct(a.share(rule))}" for rule in RULES]
    if a.class1:
        out.append(f"  class-1 points with plausible coordinates: {a.class1_coordinates_ok}/{a.class1}")
    out += ["", f"ID problems: {len(r.ids)}"]
    out += [f"  {p.subject} ({p.role} on {p.device_id}): {p.problem}" for p in r.ids[:50]]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------ CSV
CSV_COLUMNS = ("device_id", "id", "name", "civil_code", "point_class", "type", "manufacturer", "observed_s",
               "online_s", "rate", "outages", "online_now")  # fmt: skip


def render_csv(r: Report) -> str:
    """One row per video channel: its online time over the period (for a spreadsheet)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in r.history.channels:
        c, u = row.channel, row.uptime
        manufacturer = c.manufacturer or (row.device.manufacturer if row.device else "")
        writer.writerow([
            c.device_id, c.id, c.shown_name, channel_civil_code(c), "" if c.shown_point_class is None else
            c.shown_point_class, type_key(c.device_id), manufacturer, f"{u.observed:.3f}", f"{u.online:.3f}",
            "" if u.rate is None else f"{u.rate:.6f}", u.outages, int(u.online_at_end),
        ])  # fmt: skip
    return out.getvalue()


# ------------------------------------------------------------------------------------------ HTML
def _colour(rate: float) -> str:
    return "#2e7d32" if rate >= 0.98 else "#f9a825" if rate >= 0.95 else "#c62828"


def bar_chart(chart_id: str, title: str, items: Sequence[tuple[str, float | None]], target: float | None = None) -> str:
    """A vertical bar chart of rates (0-100 %) as inline SVG: one ``rect.bar`` per item with a rate."""
    e = html.escape
    slot, left, top, plot_h = 40, 44, 28, 200
    width = left + slot * max(1, len(items)) + 12
    height = top + plot_h + 56
    parts = [
        f'<svg id="{e(chart_id)}" class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{e(title)}">',
        f'<text x="{left}" y="16" class="title">{e(title)}</text>',
    ]
    for tick in (0, 50, 100):
        y = top + plot_h * (1 - tick / 100)
        parts.append(f'<line x1="{left}" x2="{width - 8}" y1="{y}" y2="{y}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end" class="tick">{tick}%</text>')
    if target is not None:
        y = top + plot_h * (1 - target)
        parts.append(f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" class="target"/>')
    for n, (label, rate) in enumerate(items):
        x = left + n * slot + 6
        if rate is not None:
            h = max(1.0, plot_h * rate)
            parts.append(
                f'<rect class="bar" x="{x}" y="{top + plot_h - h:.1f}" width="{slot - 12}" height="{h:.1f}" '
                f'fill="{_colour(rate)}" data-label="{e(label)}" data-rate="{rate:.6f}">'
                f"<title>{e(label)}: {pct(rate)}</title></rect>"
            )
        lx, ly = x + (slot - 12) / 2, top + plot_h + 12
        parts.append(
            f'<text x="{lx:.1f}" y="{ly}" transform="rotate(45 {lx:.1f} {ly})" class="label">{e(label[:14])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


_CSS = """
body{font-family:sans-serif;margin:24px;color:#222}h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f0f0f0;text-align:left}td.num{text-align:right}.bad{color:#c62828}.good{color:#2e7d32}
svg.chart{background:#fafafa;border:1px solid #ddd;margin:6px 12px 6px 0}
svg .title{font-size:13px;font-weight:bold}svg .tick,svg .label{font-size:10px;fill:#555}
svg .grid{stroke:#ddd}svg .target{stroke:#1565c0;stroke-dasharray:4 3}
"""


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[int] = ()) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="num">{e(str(v))}</td>' if i in numeric else f"<td>{e(str(v))}</td>" for i, v in enumerate(row)
        ) + "</tr>"
        for row in rows
    )  # fmt: skip
    return f"<table><tr>{head}</tr>{body}</table>" if rows else "<p>(none)</p>"


def _group_rows(groups: Sequence[GroupRate]) -> list[list[object]]:
    rows: list[list[object]] = []
    for g in groups:
        target = "" if g.target is None else f"{pct(g.target)} {'met' if g.meets_target else 'missed'}"
        rows.append([g.label, g.channels, g.channels_online, pct(g.channel_rate), g.devices, pct(g.device_rate),
                     target])  # fmt: skip
    return rows


def render_html(r: Report) -> str:
    e = html.escape
    h, a = r.history, r.annotation
    total = r.total
    level = CIVIL_LEVELS[r.level]
    pc, cc = r.by_point_class, r.by_civil_code
    headers = ["group", "channels", "online now", "channel rate", "devices", "device rate", "target"]
    summary = (
        f"<p>Video channels <b>{total.channels}</b> (online now {total.channels_online}), online rate "
        f"<b>{pct(total.channel_rate)}</b>; devices <b>{total.devices}</b>, online rate "
        f"<b>{pct(total.device_rate)}</b>.</p>"
        if total
        else "<p>No channels or devices in this period.</p>"
    )
    down = (
        f"<p>Platform down {_duration(h.downtime_seconds)} (excluded from every rate); restarts {h.restarts}"
        + (f", {h.unclean_restarts} without a clean stop (downtime unknown)" if h.unclean_restarts else "")
        + ".</p>"
    )
    down += _table(["down from", "to", "seconds"], [[iso(x, r.tz), iso(y, r.tz), round(y - x)] for x, y in h.downtime],
                   numeric=(2,))  # fmt: skip
    charts = "".join((
        bar_chart("chart-point-class", "Online rate by point class", [(g.label, g.channel_rate) for g in pc], 0.98),
        bar_chart("chart-civil-code", f"Online rate by civil code ({level})", [(g.label, g.channel_rate) for g in cc]),
        bar_chart("chart-time", f"Online rate by {h.period.step}", r.over_time()),
    ))  # fmt: skip
    worst = _table(
        ["channel", "device", "name", "online rate", "offline", "outages", "online now"],
        [[w.channel.id, w.channel.device_id, w.channel.shown_name, pct(w.uptime.rate), _duration(w.uptime.offline),
          w.uptime.outages, "yes" if w.uptime.online_at_end else "no"] for w in r.worst],
        numeric=(3, 5),
    )  # fmt: skip
    quality = _table(
        ["rule", "compliant", "share"],
        [[rule, f"{a.ok[rule]}/{a.channels}", pct(a.share(rule))] for rule in RULES]
        + [["all rules", f"{a.compliant}/{a.channels}", pct(a.compliant / a.channels if a.channels else None)]]
        + ([["class-1 coordinates", f"{a.class1_coordinates_ok}/{a.class1}", pct(a.class1_coordinates_ok / a.class1)]]
           if a.class1 else []),
        numeric=(2,),
    )  # fmt: skip
    offenders = _table(
        ["channel", "device", "name", "problems"],
        [[o.channel.id, o.channel.device_id, o.channel.shown_name, "; ".join(p for _, p in o.problems)]
         for o in a.offenders[:200]],
    )  # fmt: skip
    ids = _table(["ID", "on device", "role", "problem"], [[p.subject, p.device_id, p.role, p.problem] for p in r.ids])
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{e(r.title)}</title><style>{_CSS}</style></head>
<body>
<h1>{e(r.title)}</h1>
<p>Period {e(h.period.label)}: {e(iso(h.period.start, r.tz))} .. {e(iso(h.until, r.tz))}.
Generated {e(iso(r.generated, r.tz))}.</p>
{summary}
{down}
<h2>Online rate</h2>
<div>{charts}</div>
<h3>By point class</h3>{_table(headers, _group_rows(pc), numeric=(1, 2, 4))}
<h3>By civil code ({e(level)})</h3>{_table(headers, _group_rows(cc), numeric=(1, 2, 4))}
<h2>Worst channels</h2>{worst}
<h2>Annotation and naming</h2>{quality}
<h3>Offenders ({len(a.offenders)})</h3>{offenders}
<h2>ID compliance ({len(r.ids)} problems)</h2>{ids}
</body></html>
"""


def render(r: Report, fmt: str) -> str:
    if fmt == "text":
        return render_text(r)
    if fmt == "csv":
        return render_csv(r)
    if fmt == "html":
        return render_html(r)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}")
