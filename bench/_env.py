"""What every benchmark records next to its figures: date, machine, versions, tree commit, load."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
if str(ROOT) not in sys.path:  # benchmarks import this tree's helpers (gb28181.simulator.ports), not an installed copy
    sys.path.insert(0, str(ROOT))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--", "sip"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted changes in sip/' if dirty else ''}" if head else "unknown"


def uvloop_version() -> str:
    try:
        import uvloop
    except ImportError:
        return "not installed"
    return uvloop.__version__


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def machine() -> dict[str, str]:
    return {
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "uvloop": uvloop_version(),
        "commit": git_commit(),
        "loadavg": loadavg(),
    }


def machine_line(info: dict[str, str]) -> str:
    return (
        f"nproc {info['nproc']}, {info['cpu']}; Python {info['python']}, uvloop {info['uvloop']}; "
        f"commit {info['commit']}; load average before the run {info['loadavg']}"
    )


def append_results(title: str, body: str, info: dict[str, str]) -> None:
    """Append one dated block to bench/RESULTS.md (created with a header if missing)."""
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Benchmark results\n\nAppended by `bench/parse_bench.py --record` and `bench/sip_echo.py`; "
            "only figures from runs that were actually made. See bench/README.md for how to read them.\n"
        )
    with RESULTS.open("a") as f:
        f.write(f"\n## {info['date']} — {title}\n\n")
        f.write(f"Machine: {machine_line(info)}. Command: `{' '.join(sys.argv)}`\n\n")
        f.write(body.rstrip() + "\n")
