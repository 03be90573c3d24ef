"""A conformance report as text, JSON or a self-contained HTML page (inline CSS, no scripts, opens offline)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from typing import Any

FORMATS = ("text", "json", "html")
_MARK = {"PASS": "ok  ", "WARN": "WARN", "FAIL": "FAIL", "SKIP": "skip"}


def render(report: dict[str, Any], fmt: str) -> str:
    """``report`` is ``Report.json()`` (what the admin API returns)."""
    if fmt == "json":
        return json.dumps(report, ensure_ascii=False, indent=2) + "\n"
    if fmt == "html":
        return _html(report)
    if fmt == "text":
        return _text(report)
    raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")


def _when(report: dict[str, Any]) -> str:
    return datetime.fromtimestamp(float(report.get("started") or 0), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _text(report: dict[str, Any]) -> str:
    lines = [f"GB/T 28181 conformance of {report['device_id']} ({_when(report)})"]
    dev = report.get("device") or {}
    if dev:
        lines.append("  " + ", ".join(f"{k} {v}" for k, v in dev.items() if v))
    lines.append("")
    for r in report["results"]:
        lines.append(f"{_MARK.get(r['verdict'], r['verdict'])}  {r['clause']:<24} {r['why']}  [{r['reference']}]")
        for ev in r["evidence"]:
            lines += ["        | " + line for line in str(ev).splitlines()[:12]]
    if report.get("notes"):
        lines += ["", "notes:"] + [f"  - {n}" for n in report["notes"]]
    lines += ["", report["summary"]]
    return "\n".join(lines) + "\n"


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:4px 8px;vertical-align:top;
text-align:left}pre{margin:4px 0;white-space:pre-wrap;font-size:12px;background:#f6f6f6;padding:4px}
.PASS{color:#176f2c}.WARN{color:#a15c00}.FAIL{color:#b00020;font-weight:bold}.SKIP{color:#777}
.summary{font-size:16px;font-weight:bold}
"""


def _html(report: dict[str, Any]) -> str:
    rows = []
    for r in report["results"]:
        evidence = "".join(f"<pre>{escape(str(e))}</pre>" for e in r["evidence"])
        rows.append(
            f'<tr><td class="{escape(r["verdict"])}">{escape(r["verdict"])}</td><td>{escape(r["clause"])}<br>'
            f"<small>{escape(r['title'])}</small></td><td>{escape(r['reference'])}</td>"
            f"<td>{escape(r['why'])}{evidence}</td></tr>"
        )
    dev = report.get("device") or {}
    facts = "".join(f"<li>{escape(str(k))}: {escape(str(v))}</li>" for k, v in dev.items() if v)
    notes = "".join(f"<li>{escape(n)}</li>" for n in report.get("notes") or [])
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Conformance '
        f"{escape(report['device_id'])}</title><style>{_CSS}</style></head><body>"
        f"<h1>GB/T 28181 conformance: {escape(report['device_id'])}</h1><p>{escape(_when(report))}</p>"
        f'<ul>{facts}</ul><p class="summary">{escape(report["summary"])}</p>'
        f"<table><tr><th>verdict</th><th>clause</th><th>reference</th><th>why / evidence</th></tr>{''.join(rows)}"
        f"</table>{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}</body></html>\n"
    )
