#!/usr/bin/env python3
"""How long `gb28181 demo` takes, start to exit (issue 5: about a minute on a 2-core machine).

Runs `python -m cli demo --dir TMP` --runs times (each on a fresh temporary directory), times it from the outside
(wall clock and the children's CPU), and reads the demo's own step times from its output (devices online,
catalogs complete, total). The recording step needs `gb28181 play`; without it the demo exits 3 and says so, and
this benchmark records that ("no play") rather than a time that would look complete.

Figures are printed and appended to bench/RESULTS.md (--no-record to skip).

usage: python bench/demo_timing.py [--runs 3] [--seconds 5] [--no-record]
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import _env

STEPS = {
    "online": re.compile(r"registered: \d+ devices online after ([\d.]+) s"),
    "catalogs": re.compile(r"catalogs: \d+ of \d+ channels after ([\d.]+) s"),
    "total": re.compile(r"demo took ([\d.]+) s"),
}


def run_once(seconds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="demo-timing-") as d:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "cli", "demo", "--dir", d, "--seconds", str(seconds)], cwd=str(_env.ROOT),
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = proc.stdout
    row: dict[str, object] = {"exit": proc.returncode, "wall": wall,
                              "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}
    for name, pattern in STEPS.items():
        m = pattern.search(out)
        row[name] = float(m.group(1)) if m else None
    row["recorded"] = "recording: none" not in out and "recording: " in out
    row["no_play"] = "no `gb28181 play` command" in out
    if proc.returncode not in (0, 3):
        print(out[-2000:], proc.stderr[-2000:], file=sys.stderr)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5, help="recording length passed to the demo")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    info = _env.machine()
    rows = []
    for i in range(max(1, args.runs)):
        row = run_once(args.seconds)
        rows.append(row)
        print(f"run {i + 1}: {row}", flush=True)

    def fmt(v: object) -> str:
        return f"{v:.1f} s" if isinstance(v, float) else "—"

    lines = [
        f"`gb28181 demo --seconds {args.seconds}` (6 simulated devices, 38 channels; serve as a subprocess), "
        f"{len(rows)} run(s). Target: about a minute on 2 cores.",
        "",
        "| run | exit | wall | CPU (children) | devices online at | catalogs at | demo's total | recorded |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for i, r in enumerate(rows, 1):
        recorded = "yes" if r["exit"] == 0 and r["recorded"] else ("no: no play command" if r["no_play"] else "no")
        lines.append(f"| {i} | {r['exit']} | {fmt(r['wall'])} | {fmt(r['cpu'])} | {fmt(r['online'])} | "
                     f"{fmt(r['catalogs'])} | {fmt(r['total'])} | {recorded} |")  # fmt: skip
    walls = [float(r["wall"]) for r in rows]  # type: ignore[arg-type]
    lines.append("")
    lines.append(f"Wall time median {statistics.median(walls):.1f} s, max {max(walls):.1f} s.")
    body = "\n".join(lines)
    print(body)
    if not args.no_record:
        _env.append_results("demo timing (`gb28181 demo`, start to exit)", body, info)
    return 0 if all(r["exit"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
