#!/usr/bin/env python3
"""Bounded SIPp load run against a local SIP server, with CPU accounting.

usage: bench.py SCENARIO.xml RATE COUNT [--csv users.csv] [--target 127.0.0.1:15060]
                [--server-pid PID] [--port 25060] [--transport u1] [--timeout 120]
                [--outdir DIR] [--extra "sipp args"] [--rtt]
Prints one JSON line: achieved calls/s, success/fail, avg response time, CPU% of the
server process tree (PID + its direct children) and of sipp. Only sends to --target
(must be loopback). Every run is bounded by COUNT (-m) and --timeout.
Changes in bench/: elapsed time from SIPp's epoch columns (ElapsedTime(C) has 1 s resolution), avg
response times as numbers of ms, RTD 2 reported too; --rtt adds SIPp -trace_rtt and reports
p50/p90/p99/max per RTD timer (SIPp's resolution is 1 ms, so 0 means "under 1 ms").
"""

import argparse
import csv
import glob
import json
import os
import resource
import shlex
import subprocess
import time

TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / TCK  # utime+stime
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


def tree(pid):
    pids = [pid]
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        pids += [int(x) for x in out.split()]
    except Exception:
        pass
    return pids


def tree_cpu(pids):
    return sum(proc_cpu(p) for p in pids)


def sys_cpu():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]  # total, idle+iowait


def secs(v):
    hh, mm, ss, us = ([*v.split(":"), "0"])[:4]
    return int(hh) * 3600 + int(mm) * 60 + int(ss) + int(us) / 1e6


def ms(v):
    """SIPp's HH:MM:SS:usec as milliseconds (None when the column is absent)."""
    return round(secs(v) * 1000, 3) if v else None


def rtt_freq(count):
    """The largest divisor of COUNT up to 1000: SIPp drops the last partial block of -trace_rtt."""
    return max(d for d in range(1, min(count, 1000) + 1) if count % d == 0)


def percentiles(path):
    """{rtd_no: {n, p50, p90, p99, max}} in ms from a SIPp -trace_rtt file."""
    by = {}
    with open(path) as f:
        for row in csv.reader(f, delimiter=";"):
            if len(row) < 3 or not row[1].replace(".", "", 1).isdigit():
                continue
            by.setdefault(row[2], []).append(float(row[1]))
    out = {}
    for rtd, vals in sorted(by.items()):
        vals.sort()
        n = len(vals)

        def q(p, vals=vals, n=n):
            return vals[min(n - 1, int(p * n))]

        out[rtd] = {"n": n, "p50": q(0.50), "p90": q(0.90), "p99": q(0.99), "max": vals[-1]}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario")
    ap.add_argument("rate", type=float)
    ap.add_argument("count", type=int)
    ap.add_argument("--csv", default=None)
    ap.add_argument("--target", default="127.0.0.1:15060")
    ap.add_argument("--server-pid", type=int, default=None)
    ap.add_argument("--port", default="25060")
    ap.add_argument("--transport", default="u1")
    ap.add_argument("--timeout", type=int, default=120)
    ap.add_argument("--outdir", default="/tmp/sipp-runs")
    ap.add_argument("--extra", default="")
    ap.add_argument("--rtt", action="store_true", help="trace per-call response times, report percentiles")
    a = ap.parse_args()
    host = a.target.rsplit(":", 1)[0].strip("[]")
    assert host in ("127.0.0.1", "::1", "localhost") or host.startswith("127."), "loopback only"
    os.makedirs(a.outdir, exist_ok=True)
    scen = os.path.basename(a.scenario).rsplit(".", 1)[0]
    tag = f"{scen}_r{int(a.rate)}_m{a.count}_{int(time.time())}"
    stf = os.path.join(a.outdir, tag + ".csv")
    cmd = [
        "sipp",
        a.target,
        "-sf",
        os.path.abspath(a.scenario),
        "-i",
        host,
        "-p",
        a.port,
        "-t",
        a.transport,
        "-m",
        str(a.count),
        "-r",
        str(a.rate),
        "-rp",
        "1000",
        "-timeout",
        f"{a.timeout}s",
        "-nostdin",
        "-trace_stat",
        "-stf",
        stf,
        "-fd",
        "1",
        "-trace_err",
        "-error_file",
        os.path.join(a.outdir, tag + "_err.log"),
    ]
    if a.csv:
        cmd += ["-inf", os.path.abspath(a.csv)]
    if a.rtt:
        cmd += ["-trace_rtt", "-rtt_freq", str(rtt_freq(a.count))]
    cmd += shlex.split(a.extra)
    spids = tree(a.server_pid) if a.server_pid else []
    s0 = tree_cpu(spids)
    y0 = sys_cpu()
    t0 = time.time()
    p = subprocess.Popen(cmd, cwd=a.outdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, err = p.communicate(timeout=a.timeout + 30)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
    t1 = time.time()
    s1 = tree_cpu(spids)
    y1 = sys_cpu()
    # sipp's own CPU: read from getrusage of children
    ruc = resource.getrusage(resource.RUSAGE_CHILDREN)
    sipp_cpu = ruc.ru_utime + ruc.ru_stime
    rows = []
    if os.path.exists(stf):
        with open(stf) as f:
            rows = list(csv.reader(f, delimiter=";"))
    res = {"cmd": " ".join(shlex.quote(c) for c in cmd), "rc": p.returncode}
    if len(rows) >= 2:
        h = rows[0]
        last = rows[-1]

        def g(k, h=h, last=last):
            return last[h.index(k)] if k in h else None

        el = secs(g("ElapsedTime(C)"))  # whole seconds only: prefer the epoch fields when present
        try:
            el = float(g("CurrentTime").split("\t")[-1]) - float(g("StartTime").split("\t")[-1])
        except (AttributeError, IndexError, ValueError):
            pass
        ok = int(g("SuccessfulCall(C)"))
        fail = int(g("FailedCall(C)"))
        res.update(
            {
                "target_rate": a.rate,
                "count": a.count,
                "elapsed_s": round(el, 3),
                "successful": ok,
                "failed": fail,
                "achieved_cps": round(ok / el, 1) if el else None,
                "retransmissions": int(g("Retransmissions(C)")),
                "avg_rtt1_ms": ms(g("ResponseTime1(C)")),
                "avg_rtt2_ms": ms(g("ResponseTime2(C)")),
                "avg_call_len": g("CallLength(C)"),
            }
        )
    if a.rtt:
        files = glob.glob(os.path.join(a.outdir, f"{scen}_{p.pid}_rtt.csv"))
        if files:
            res["rtt_ms"] = percentiles(files[0])
            os.unlink(files[0])  # can be large; the percentiles are what we keep
    wall = t1 - t0
    res["wall_s"] = round(wall, 2)
    if spids:
        res["server_cpu_pct"] = round(100 * (s1 - s0) / wall, 1)
        res["server_procs"] = len(spids)
    res["sipp_cpu_pct"] = round(100 * sipp_cpu / wall, 1)
    tot, idle = y1[0] - y0[0], y1[1] - y0[1]
    res["machine_busy_pct_of_all_cores"] = round(100 * (tot - idle) / tot, 1) if tot else None
    res["ncpu"] = os.cpu_count()
    if err and err.strip():
        res["stderr_tail"] = err.strip()[-300:]
    print(json.dumps(res))


if __name__ == "__main__":
    main()
