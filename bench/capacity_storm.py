#!/usr/bin/env python3
"""Issue 8, scenario 4: the re-registration storm after a platform restart, in two shapes.

    python bench/capacity_storm.py --devices 100000                       # both shapes, recorded in RESULTS.md
    python bench/capacity_storm.py --devices 5000 --shapes once --no-record  # smoke run
    python bench/capacity_storm.py --devices 100000 --overload-backlog 1048576 --profile /tmp/storm

Starts `python -m cli serve` on a fresh SQLite file and free loopback ports and registers --devices at
--register-rate (the generator of bench/_capacity.py: --workers processes, one UDP socket each, fixed ports).
Then, per shape, restarts the platform on the same file and ports (SIGINT, start again: it reloads every
registration) and every device registers again:

- once: all devices send their REGISTER at the same instant. Reported: time until every device has its 200
  (from the storm's start), and each device's own delay (first REGISTER sent → 200 to the authenticated one).
- spread: device i returns at i/N x 3 keepalive windows (3 x 60 s), evenly, as real devices notice a restart
  over the windows in which their keepalives fail. Reported: each device's delay from its return to its 200.

A device that gets 503 waits its Retry-After and tries again (RFC 3261 §21.5.4); one whose transaction times out
(timer F, 32 s) tries again 5 s later. Counts of retransmissions, 503s and failed transactions are reported.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _capacity import Plan, Platform, Sampler, free_port, load_results, pct, proc_cpu, proc_kib, worker_entry
from _env import append_results, machine


def generate(platform: Platform, workdir: Path, args: argparse.Namespace, ports: list[int], tag: str,
             start: float, spread: float, limit: float) -> tuple[list, float, dict]:  # fmt: skip
    """Run one registration wave in --workers processes; returns (results, generator CPU-s, platform samples)."""
    n, w = args.devices, len(ports)
    per = -(-n // w)
    plans = [
        Plan(worker=i, first=i * per, count=min(per, n - i * per), total=n, target=("127.0.0.1", platform.sip_port),
             port=ports[i], out=str(workdir / f"{tag}{i}.json"), register_start=start, register_spread=spread,
             deadline=start + spread + limit)
        for i in range(w) if i * per < n
    ]  # fmt: skip
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=worker_entry, args=(p,)) for p in plans]
    cpu0 = proc_cpu(platform.pid)
    for p in procs:
        p.start()
    sampler = Sampler(platform.pid)
    last = 0.0
    while any(p.is_alive() for p in procs):
        sampler.tick()
        if time.time() - last >= 15:
            last = time.time()
            st = platform.stats()
            print(f"  {tag}: t={last - start:5.0f} s, platform registered {st.get('registered', '?')}, "
                  f"503 so far {st.get('sip', {}).get('overload_rejected', 0)}, load {os.getloadavg()[0]:.1f}",
                  flush=True)  # fmt: skip
        time.sleep(0.5)
    for p in procs:
        p.join()
    elapsed = time.time() - start
    samples = {"cpu_s": proc_cpu(platform.pid) - cpu0, "elapsed": elapsed, "peak_rss_kib": sampler.peak_rss_kib}
    results = load_results(plans)
    return results, sum(r.cpu_seconds for r in results), samples


def profile_top(path: str, top: int = 12) -> str:
    """The hottest functions of a py-spy raw (folded) profile: own samples and samples with it on the stack."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        n = int(count)
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    if not total:
        return f"(no samples in {path})"
    skip = ("runpy", "click/", "cli.py", "uvloop/__init__", "asyncio/runners", "asyncio/base_events")
    lines = [f"{total:,} samples. Own time (top {top}): "]
    lines += [f"{n / total:.1%} {f}" for f, n in own.most_common(top)]
    lines.append("With the function on the stack:")
    lines += [f"{n / total:.1%} {f}" for f, n in incl.most_common(top * 3) if not any(s in f for s in skip)][:top]
    return "\n".join(lines)


def summarize(shape: str, args: argparse.Namespace, results: list, gen_cpu: float, samples: dict, start: float,
              restart_s: float, load: str, stats: dict) -> str:  # fmt: skip
    n = args.devices
    online = [r.t_online[j] for r in results for j in range(r.count)]
    back = [r.t_return[j] for r in results for j in range(r.count)]
    delays = [on - ret for on, ret in zip(online, back, strict=True) if on is not None and ret is not None]
    done = len(delays)
    all_at = max((on for on in online if on is not None), default=float("nan")) - start
    within2 = sum(1 for d in delays if d <= 2.0)
    retrans = sum(r.reg_retrans for r in results)
    c503 = sum(r.reg_503 for r in results)
    fails = sum(r.reg_fail for r in results)
    counters = collections.Counter(stats.get("sip", {}))
    return (
        f"| {shape} | {n:,} | {restart_s:.1f} s | {done:,} | "
        + (f"{all_at:.1f} s" if done == n else f"not all ({n - done:,} never)")
        + f" | {pct(delays, 0.5):.2f} / {pct(delays, 0.99):.2f} / {max(delays, default=float('nan')):.2f} s | "
        f"{within2 / n * 100:.1f}% | {retrans:,} | {c503:,} ({counters.get('overload_rejected', 0):,}) | {fails:,} | "
        f"{samples['cpu_s'] / samples['elapsed'] * 100:.0f}% | {samples['peak_rss_kib'] / 1024:.0f} MiB | "
        f"{gen_cpu / samples['elapsed'] * 100:.0f}% | {load} |"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=10000)
    ap.add_argument("--shapes", default="once,spread", help="once, spread or both (default)")
    ap.add_argument("--register-rate", type=float, default=2000.0, help="the initial registration, before restarts")
    ap.add_argument("--windows", type=int, default=3, help="keepalive windows the spread shape covers (3)")
    ap.add_argument("--interval", type=float, default=60.0, help="keepalive interval, one window (60 s)")
    ap.add_argument("--limit", type=float, default=180.0, help="seconds after the last return before giving up")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--overload-backlog", type=int, default=0, help="[sip] overload_backlog bytes (0: off)")
    ap.add_argument("--overload-lag", type=float, default=0.5, help="[sip] overload_lag seconds (0: off)")
    ap.add_argument("--profile", default="", help="py-spy raw profile of each storm to PREFIX-SHAPE.txt")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    shapes = [s for s in args.shapes.split(",") if s]
    if not 1 <= args.devices <= 1_000_000 or not set(shapes) <= {"once", "spread"} or not 1 <= args.workers <= 32:
        ap.error("devices 1-1,000,000; shapes once,spread; workers 1-32")
    info = machine()
    extra = f"overload_lag = {args.overload_lag}\noverload_backlog = {args.overload_backlog}\n"
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="capacity-storm-") as tmp:
        workdir = Path(tmp)
        platform = Platform(workdir, extra_sip=extra)
        try:
            platform.start()
            ports = [free_port() for _ in range(args.workers)]
            start = time.time() + 1
            print(f"registering {args.devices:,} devices at {args.register_rate:,.0f}/s", flush=True)
            results, _, _ = generate(platform, workdir, args, ports, "initial", start,
                                     args.devices / args.register_rate, args.limit)  # fmt: skip
            first = sum(1 for r in results for t in r.t_online if t is not None)
            notes.append(f"initial registration: {first:,} of {args.devices:,} registered")
            for shape in shapes:
                load0 = os.getloadavg()[0]
                platform.stop()
                restart_s = platform.start()
                time.sleep(1)
                spy = None
                if args.profile:
                    spy = subprocess.Popen(
                        ["py-spy", "record", "-p", str(platform.pid), "-f", "raw", "-r", "100", "--nonblocking",
                         "-o", f"{args.profile}-{shape}.txt"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )  # fmt: skip
                spread = args.windows * args.interval if shape == "spread" else 0.0
                start = time.time() + 1
                print(f"storm {shape}: platform restarted in {restart_s:.1f} s", flush=True)
                results, gen_cpu, samples = generate(platform, workdir, args, ports, shape, start, spread, args.limit)
                stats = platform.stats()
                if spy is not None:
                    spy.send_signal(2)
                    try:
                        spy.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        spy.kill()
                        spy.wait()
                if spy is not None:
                    notes.append(
                        f"profile of the {shape} storm ({args.profile}-{shape}.txt):\n"
                        + profile_top(f"{args.profile}-{shape}.txt")
                    )
                load = f"{load0:.1f} → {os.getloadavg()[0]:.1f}"
                rows.append(summarize(shape, args, results, gen_cpu, samples, start, restart_s, load, stats))
                print(rows[-1], flush=True)
            peak = proc_kib(platform.pid, "VmHWM")
        finally:
            platform.stop()
    plain = [n for n in notes if not n.startswith("profile")]
    body = "\n".join([
        f"{args.devices:,} devices registered, then per shape the platform restarted (same SQLite file, same ports) "
        f"and every device registered again; [sip] overload_lag = {args.overload_lag}, overload_backlog = "
        f"{args.overload_backlog}; {args.workers} generator processes, one UDP socket each (bench/_capacity.py). "
        f"Machine shared with other engineers' test runs. {'; '.join(plain)}; platform peak RSS {peak / 1024:.0f} MiB.",
        "",
        "| shape | devices | restart (admin API up) | online | all online after | delay return → 200 p50 / p99 / max | "
        "within 2 s | retrans | 503 received (platform's count) | failed txns | platform CPU | platform peak RSS | "
        "generator CPU | load before → after |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        *(f"\n```\n{note}\n```" for note in notes if note.startswith("profile")),
    ])  # fmt: skip
    print(body)
    if not args.no_record:
        append_results(f"capacity_storm ({args.devices:,} devices; {', '.join(shapes)})", body, info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
