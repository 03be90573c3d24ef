"""The report renderings (issue 10): JSON, text, CSV and the offline HTML page, which headless Chromium opens
(its DOM holds the SVG charts with the expected bars; its screenshot shows them)."""

from __future__ import annotations

import csv
import io
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from gb28181.reports.online import day_period, week_period
from gb28181.reports.quality import check_annotation, check_ids
from gb28181.reports.render import CSV_COLUMNS, Report, bar_chart, render, report_json
from tests.gb28181.test_reports_online import A2, P3, TZ, B, D, at, channels, compute, devices

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run")  # fmt: skip


def day_report() -> Report:
    h = compute(day_period(D, TZ), now=at(30))
    ids = check_ids(devices(), channels(), "34020000002000000001")
    return Report("GB28181 daily report 2026-11-23", h, check_annotation(channels()), tuple(ids), at(30), TZ)


def test_json_report() -> None:
    doc = report_json(day_report())
    assert doc["period"] == {"label": "2026-11-23", "start": "2026-11-23T00:00:00+08:00",
                             "end": "2026-11-24T00:00:00+08:00", "until": "2026-11-24T00:00:00+08:00",
                             "step": "hour"}  # fmt: skip
    assert doc["total"]["channel_rate"] == round(71 / 105, 6) and doc["total"]["channels"] == 6
    assert doc["platform"]["downtime_s"] == 3600 and doc["platform"]["unclean_restarts"] == 1
    assert doc["platform"]["downtime"] == [{"from": "2026-11-23T10:00:00+08:00", "to": "2026-11-23T11:00:00+08:00",
                                            "seconds": 3600}]  # fmt: skip
    assert [g["key"] for g in doc["by_point_class"]] == ["1", "2", "3", "unknown"]
    assert doc["by_point_class"][0]["meets_target"] is False
    assert len(doc["over_time"]) == 24 and doc["over_time"][10] == {"bucket": "10:00", "rate": None}
    assert doc["over_time"][22]["rate"] == 0.5
    assert [w["id"] for w in doc["worst"]][:2] == [A2, P3]
    assert doc["annotation"]["channels"] == 6


def test_text_and_csv() -> None:
    r = day_report()
    text = render(r, "text")
    assert "online rate 67.6 %" in text  # 71/105
    assert "platform down 1h00m (excluded), restarts 2, 1 without a clean stop" in text
    assert "class 1" in text and "MISSED" in text
    rows = list(csv.reader(io.StringIO(render(r, "csv"))))
    assert rows[0] == list(CSV_COLUMNS) and len(rows) == 7
    b = next(row for row in rows if row[1] == B)
    assert b[3:12] == ["34020000", "3", "132", "Dahua", "82800.000", "64800.000", f"{18 / 23:.6f}", "1", "1"]
    with pytest.raises(ValueError, match="format"):
        render(r, "pdf")


def test_bar_chart_draws_a_bar_per_rate() -> None:
    svg = bar_chart("c", "t <&>", [("a", 1.0), ("b", None), ("<c>", 0.5)], target=0.98)
    assert svg.count('class="bar"') == 2 and "t &lt;&amp;&gt;" in svg and "&lt;c&gt;" in svg


def test_html_is_self_contained() -> None:
    page = render(day_report(), "html")
    assert not re.search(r"""(src|href)\s*=|url\(|@import|<script""", page, re.IGNORECASE), "nothing to fetch"
    assert page.count("<svg") == 3
    week = Report("week", compute(week_period(D, TZ), now=at(30)), check_annotation([]), (), at(30), TZ)
    page = render(week, "html")
    assert re.search(r'id="chart-time".*?</svg>', page, re.S).group(0).count('class="bar"') == 2  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------ Chromium
def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def run_chromium(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    exe = chromium()
    assert exe is not None
    return subprocess.run(
        [exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'chromium-profile'}", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def bars_by_chart(dom: str) -> dict[str, int]:
    return {
        m.group(1): m.group(2).count('class="bar"')
        for m in re.finditer(r'<svg id="([\w-]+)".*?>(.*?)</svg>', dom, re.S)
    }


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB/RGBA PNG, unfiltered (PNG spec §9)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    height = bpp = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, bpp, rows


def colour_count(png: bytes, rgb: tuple[int, int, int]) -> tuple[int, int]:
    """(pixels of exactly ``rgb``, pixels that are not white)."""
    _, bpp, rows = png_pixels(png)
    want, hits, ink = bytes(rgb), 0, 0
    for row in rows:
        for i in range(0, len(row), bpp):
            px = row[i : i + 3]
            hits += px == want
            ink += px != b"\xff\xff\xff"
    return hits, ink


def test_the_png_reader(tmp_path: Path) -> None:
    # a 2x2 RGB image, one row Sub-filtered and one Up-filtered: red, green / red, cyan
    raw = b"\x01" + bytes([255, 0, 0, 1, 255, 0]) + b"\x02" + bytes([0, 0, 0, 0, 0, 255])
    ihdr = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    _, _, rows = png_pixels(png)
    assert rows == [bytes([255, 0, 0, 0, 255, 0]), bytes([255, 0, 0, 0, 255, 255])]
    assert colour_count(png, (255, 0, 0)) == (2, 4)


def test_chromium_renders_the_report(tmp_path: Path) -> None:
    if chromium() is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    page = tmp_path / "report.html"
    page.write_text(render(day_report(), "html"), encoding="utf-8")
    done = run_chromium(["--dump-dom", page.as_uri()], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    # 4 point classes; 3 county codes; 24 hours less the one the platform was down
    assert bars_by_chart(done.stdout) == {"chart-point-class": 4, "chart-civil-code": 3, "chart-time": 23}
    assert "北门" in done.stdout or "南门" in done.stdout, "the UTF-8 names survive"
    shot = tmp_path / "report.png"
    done = run_chromium([f"--screenshot={shot}", "--window-size=1400,1000", page.as_uri()], tmp_path)
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    red, ink = colour_count(shot.read_bytes(), (0xC6, 0x28, 0x28))  # bars under 95 %
    green, _ = colour_count(shot.read_bytes(), (0x2E, 0x7D, 0x32))  # bars at 98 % and more
    assert ink > 10_000, "the page is not blank"
    assert red > 500 and green > 500, (red, green)
