#!/usr/bin/env python3
"""Issue 8, scenario 3: hold N registered devices with 60 s keepalives against `gb28181 serve`.

    python bench/capacity_hold.py --devices 100000                  # 10-minute hold, recorded in RESULTS.md
    python bench/capacity_hold.py --devices 1000 --interval 10 --duration 30 --register-rate 100 --no-record

Starts `python -m cli serve` on a fresh SQLite file and free loopback ports, measures its idle RSS, then the
generator (bench/_capacity.py: --workers processes, one UDP socket each) registers the devices at
--register-rate and sends each device's keepalive once per --interval, phases spread evenly over the interval,
until --duration seconds after the registration ramp. After the hold the platform is stopped (its batched event
log flushed) and the script reads the `keepalive-timeout` events from the SQLite file: an event is a FALSE
offline when the generator's log shows that device's keepalives answered within the window (interval x 3) before
the event; any other timeout is a device none of whose keepalives got an answer in the window (not sent in
time, or sent and lost at the platform: the lag figures tell which). Generator lag is measured, not assumed:
each keepalive's send time minus its scheduled time (p50/p99/max); a lag under the window minus the interval
cannot cause a timeout.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _capacity import (
    EVENT_KEEPALIVE_TIMEOUT,
    Plan,
    Platform,
    Sampler,
    device_id,
    free_port,
    load_results,
    pct,
    proc_cpu,
    proc_kib,
    worker_entry,
)
from _env import append_results, machine

WINDOW_MISSED = 3  # [keepalive] max_missed, the platform's default


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=10000)
    ap.add_argument("--duration", type=float, default=600.0, help="hold seconds after the registration ramp (600)")
    ap.add_argument("--interval", type=float, default=60.0, help="keepalive interval (60 s)")
    ap.add_argument("--register-rate", type=float, default=500.0, help="registrations/s offered (500)")
    ap.add_argument("--workers", type=int, default=4, help="generator processes (one UDP socket each)")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    if not 1 <= args.devices <= 1_000_000 or args.duration < args.interval or not 1 <= args.workers <= 32:
        ap.error("devices 1-1,000,000, duration >= interval, workers 1-32")
    info = machine()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="capacity-hold-") as tmp:
        workdir = Path(tmp)
        platform = Platform(workdir, extra_config=f"[keepalive]\ninterval = {int(args.interval)}\n")
        try:
            body, ok = run(args, platform, workdir, load_before)
        finally:
            platform.stop()
    print(body)
    if not args.no_record:
        append_results(f"capacity_hold ({args.devices:,} devices, {args.duration:.0f} s hold)", body, info)
    return 0 if ok else 1


def run(args: argparse.Namespace, platform: Platform, workdir: Path, load_before: tuple) -> tuple[str, bool]:
    n, w = args.devices, args.workers
    start_s = platform.start()
    time.sleep(2)
    idle_rss = proc_kib(platform.pid, "VmRSS")
    print(f"platform up in {start_s:.1f} s, idle RSS {idle_rss / 1024:.0f} MiB; {n:,} devices, {w} generators")
    t0 = time.time() + 1
    ramp = n / args.register_rate
    # keepalives start one interval after the first registration, while the ramp goes on; the hold measured
    # (CPU, RSS at the end) is the --duration seconds after the ramp
    hold_start = t0 + args.interval
    keepalive_seconds = ramp + args.duration
    steady_from = t0 + ramp
    deadline = hold_start + keepalive_seconds + 40
    per = -(-n // w)
    plans = [
        Plan(worker=i, first=i * per, count=min(per, n - i * per), total=n, target=("127.0.0.1", platform.sip_port),
             port=free_port(), out=str(workdir / f"gen{i}.json"), register_start=t0, register_spread=ramp,
             hold_start=hold_start, hold_seconds=keepalive_seconds, interval=args.interval, deadline=deadline)
        for i in range(w) if i * per < n
    ]  # fmt: skip
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=worker_entry, args=(p,)) for p in plans]
    for p in procs:
        p.start()
    sampler = Sampler(platform.pid)
    gen_cpu: dict[int, float] = {}
    cpu_hold0 = cpu_hold1 = None
    rss_end = 0
    last_print = 0.0
    online_at_end = {}
    while any(p.is_alive() for p in procs):
        now = time.time()
        rss = sampler.tick()
        for p in procs:
            if p.pid is not None and p.is_alive():
                gen_cpu[p.pid] = proc_cpu(p.pid)
        if cpu_hold0 is None and now >= steady_from:
            cpu_hold0 = (proc_cpu(platform.pid), now)
        if cpu_hold1 is None and now >= steady_from + args.duration:
            cpu_hold1 = (proc_cpu(platform.pid), now)
            rss_end = rss
            online_at_end = platform.stats()
        if now - last_print >= 30:
            last_print = now
            st = platform.stats()
            print(f"  t={now - t0:5.0f} s  platform online {st.get('online', '?')}/{st.get('devices', '?')}, "
                  f"RSS {rss / 1024:.0f} MiB, load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        time.sleep(1)
    for p in procs:
        p.join()
    if cpu_hold1 is None:
        cpu_hold1 = (proc_cpu(platform.pid), time.time())
        rss_end = proc_kib(platform.pid, "VmRSS")
        online_at_end = platform.stats()
    peak_rss = proc_kib(platform.pid, "VmHWM")
    platform.stop()
    load_after = os.getloadavg()
    results = load_results(plans)
    timeouts = platform.events(EVENT_KEEPALIVE_TIMEOUT)
    return report(args, results, timeouts, idle_rss, rss_end, peak_rss, cpu_hold0, cpu_hold1, online_at_end,
                  gen_cpu, load_before, load_after, ramp)  # fmt: skip


def report(args, results, timeouts, idle_rss, rss_end, peak_rss, cpu0, cpu1, stats, gen_cpu, lb, la, ramp):
    n = args.devices
    window = args.interval * WINDOW_MISSED
    registered = sum(1 for r in results for t in r.t_online if t is not None)
    answered: dict[str, list[float]] = {}
    for r in results:
        for j, times in r.answered.items():
            answered[device_id(r.first + j)] = times
    false_offline, unanswered_window = set(), set()
    for ts, dev, _ in timeouts:
        if any(ts - window < t <= ts for t in answered.get(dev, [])):
            false_offline.add(dev)
        else:
            unanswered_window.add(dev)
    # steady state: rounds that start after the registration ramp ended (round k starts at t0 + interval x (k+1))
    first_steady = max(0, math.ceil(ramp / args.interval))
    rounds: dict[int, list[int]] = {}
    for r in results:
        for k, v in r.ka_rounds.items():
            acc = rounds.setdefault(k, [0, 0, 0])
            for m in range(3):
                acc[m] += v[m]
    rtt_by_round: dict[int, list[float]] = {}
    for r in results:
        for k, x in zip(r.ka_round_rtt, r.ka_rtt, strict=True):
            rtt_by_round.setdefault(k, []).append(x)
    rtt = [x for k, xs in rtt_by_round.items() if k >= first_steady for x in xs]
    sent = sum(v[0] for k, v in rounds.items() if k >= first_steady)
    ok_n = sum(v[1] for k, v in rounds.items() if k >= first_steady)
    retrans = sum(v[2] for k, v in rounds.items() if k >= first_steady)
    hold_cpu = (cpu1[0] - cpu0[0]) / (cpu1[1] - cpu0[1]) * 100 if cpu0 and cpu1 and cpu1[1] > cpu0[1] else float("nan")
    lag_p99 = max((r.ka_lag_p99 for r in results), default=0.0)
    lag_max = max((r.ka_lag_max for r in results), default=0.0)
    per_dev = (rss_end - idle_rss) * 1024 / max(1, registered)
    gen_total = sum(r.cpu_seconds for r in results)
    span = args.duration + ramp + args.interval + 45
    ok = not false_offline and registered == n and ok_n == sent and rss_end < 1024 * 1024
    lines = [
        f"{n:,} devices registered at {args.register_rate:,.0f}/s offered (a {ramp:.0f} s ramp), a keepalive every "
        f"{args.interval:.0f} s each from one interval after the ramp began ({n / args.interval:,.0f} keepalives/s),"
        f" held {args.duration:.0f} s after the ramp; {len(results)} generator processes, one UDP socket each "
        "(bench/_capacity.py). Machine shared with other engineers' test runs. The main row counts the steady "
        f"rounds (from round {first_steady}, after the ramp); false offline and timeouts cover the whole run.",
        "",
        "| devices | registered | keepalives sent / answered | retrans | unanswered | false offline | other timeouts "
        "(no keepalive answered in the window) | RTT p50 / p99 | platform CPU (hold) | RSS idle → end (peak) | "
        "RSS per device | generator CPU | load before → after |",
        "|---:|---:|---|---:|---:|---:|---:|---|---:|---|---:|---:|---|",
        f"| {n:,} | {registered:,} | {sent:,} / {ok_n:,} | {retrans:,} | "
        f"{sent - ok_n:,} | **{len(false_offline)}** | {len(unanswered_window)} | "
        f"{pct(rtt, 0.5) * 1000:.1f} / {pct(rtt, 0.99) * 1000:.1f} ms | {hold_cpu:.0f}% | "
        f"{idle_rss / 1024:.0f} → {rss_end / 1024:.0f} MiB ({peak_rss / 1024:.0f}) | {per_dev / 1024:.2f} KiB | "
        f"{gen_total:.0f} CPU-s over ~{span:.0f} s ({gen_total / span * 100:.0f}% of a core, all processes) | "
        f"{lb[0]:.1f} → {la[0]:.1f} |",
        "",
        f"Platform /api/stats at the end of the hold: online {stats.get('online', '?')} of "
        f"{stats.get('devices', '?')}. "
        f"Keepalive-timeout events in the log: {len(timeouts)}. Registration retransmissions "
        f"{sum(r.reg_retrans for r in results)}, 503s {sum(r.reg_503 for r in results)}, failed "
        f"{sum(r.reg_fail for r in results)}; keepalives due while unregistered (not sent) "
        f"{sum(r.ka_skipped for r in results)}; stray responses {sum(r.stray for r in results)}.",
        f"Generator lag (keepalive sent − scheduled): p99 {lag_p99 * 1000:.0f} ms, max {lag_max * 1000:.0f} ms; the "
        f"platform's window is {window:.0f} s, so a lag under {window - args.interval:.0f} s cannot time a device out. "
        "A timeout counts as false offline when the generator logged an answered keepalive from that device within "
        "the window before the event.",
        "",
        "| keepalive round | sent | answered | retransmissions | RTT p50 / p99 / max |",
        "|---:|---:|---:|---:|---|",
        *(
            f"| {k}{' (ramp)' if k < first_steady else ''} | {v[0]:,} | {v[1]:,} | {v[2]:,} | "
            f"{pct(rtt_by_round.get(k, []), 0.5) * 1000:.1f} / {pct(rtt_by_round.get(k, []), 0.99) * 1000:.1f} / "
            f"{max(rtt_by_round.get(k, [float('nan')])) * 1000:.0f} ms |"
            for k, v in sorted(rounds.items())
        ),
        "",
        f"Result: {'PASS' if ok else 'FAIL'} (zero false offline, all registered, all keepalives answered, "
        "RSS < 1 GiB).",
    ]
    return "\n".join(lines), ok


if __name__ == "__main__":
    sys.exit(main())
