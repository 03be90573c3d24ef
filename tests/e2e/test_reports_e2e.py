"""Operator reports end to end: `gb28181 serve`, raw-socket devices registering over real UDP, a GB2312 catalog,
then `gb28181 stats online --json`, `gb28181 stats quality --offenders` and `gb28181 report --format html`
through the CLI; the HTML page opened in headless Chromium."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.e2e.conftest import PYTHON, run_tool
from tests.e2e.raw_device import RawDevice
from tests.e2e.serve_helpers import Server
from tests.e2e.test_catalog_e2e import NVR, channel, sync
from tests.gb28181.test_reports_render import bars_by_chart, chromium, colour_count, run_chromium

pytestmark = pytest.mark.e2e

IPC = "34020000001320000077"


async def cli_text(srv: Server, *args: str) -> str:
    rc, out, err = await run_tool(PYTHON, "-m", "cli", *args, "--admin", srv.admin, "--db", str(srv.db), timeout=60)
    assert rc == 0, f"gb28181 {' '.join(args)} failed ({rc}): {err}"
    return out


async def test_stats_and_reports_through_the_cli(tmp_path):
    srv = Server(tmp_path, sip_extra='password = "12345678"')
    await srv.start()
    nvr = await RawDevice.start(NVR, "12345678", ("127.0.0.1", srv.sip_port))
    ipc = await RawDevice.start(IPC, "12345678", ("127.0.0.1", srv.sip_port))
    try:
        assert await nvr.register() == 200
        assert await ipc.register() == 200
        items = [(channel(1), "大门口"), (channel(2), "停车场东"), (channel(3), "Camera 03")]
        summary = await sync(srv, nvr, [items], 3)
        assert summary["added"] == 3
        assert await ipc.register(expires=0) == 200  # the IPC leaves: offline from here on
        await srv.wait_for(lambda d: d[IPC]["status"] == "offline", 20, "the IPC offline")

        online = await srv.cli("stats", "online", "--by", "civil-code", "--level", "2")
        assert isinstance(online, dict)
        total = online["total"]
        assert (total["channels"], total["channels_online"], total["devices"], total["devices_online"]) == (3, 3, 2, 1)
        assert total["channel_rate"] == 1.0 and 0 < total["device_rate"] < 1
        assert [g["key"] for g in online["groups"]] == ["3402"]
        assert online["platform"]["restarts"] == 1 and online["platform"]["downtime_s"] == 0
        text = await cli_text(srv, "stats", "online", "--by", "point-class")
        assert "video channels 3 (online now 3): 100.0 %" in text and "unknown" in text

        offenders = tmp_path / "offenders.csv"
        quality = await srv.cli("stats", "quality", "--offenders", str(offenders))
        assert quality["annotation"]["channels"] == 3 and quality["annotation"]["share"]["name"] == round(2 / 3, 6)
        rows = list(csv.reader(io.StringIO(offenders.read_text(encoding="utf-8"))))
        assert rows[0] == ["device_id", "id", "name", "longitude", "latitude", "civil_code", "point_class", "problem"]
        assert [r[1] for r in rows[1:]] == [channel(1), channel(2), channel(3)]  # the catalog sent no coordinates
        assert "placeholder name 'Camera 03'" in rows[3][-1]
        # the operator fixes the offenders in the same file and gives it back to `channels import`
        rows[1][3:5] = ["117.25", "31.83"]
        fixed = tmp_path / "fixed.csv"
        with fixed.open("w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows(rows)
        imported = await srv.cli("channels", "import", str(fixed))
        assert imported["changed"] == 1, imported
        (shown,) = [c for c in await srv.cli("channels") if c["id"] == channel(1)]
        assert (shown["longitude"], shown["latitude"]) == (117.25, 31.83)

        before = json.loads(await cli_text(srv, "report", "--json"))
        page = tmp_path / "report.html"
        await cli_text(srv, "report", "--period", "day", "--format", "html", "--output", str(page))
        after = json.loads(await cli_text(srv, "report", "--json"))
        assert "<svg" in page.read_text(encoding="utf-8") and "停车场东" in page.read_text(encoding="utf-8")
        week = await cli_text(srv, "report", "--period", "week", "--format", "text")
        assert "weekly report" in week and "video channels 3" in week
    finally:
        nvr.close()
        ipc.close()
        await srv.stop()

    if chromium() is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    done = run_chromium(["--dump-dom", page.as_uri()], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    bars = bars_by_chart(done.stdout)
    hours = {sum(b["rate"] is not None for b in doc["over_time"]) for doc in (before, after)}  # an hour may turn
    assert bars["chart-point-class"] == 1 and bars["chart-civil-code"] == 1 and bars["chart-time"] in hours
    shot = tmp_path / "report.png"
    done = run_chromium([f"--screenshot={shot}", "--window-size=1200,900", page.as_uri()], tmp_path)
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    green, ink = colour_count(shot.read_bytes(), (0x2E, 0x7D, 0x32))
    assert ink > 10_000 and green > 300, (green, ink)
