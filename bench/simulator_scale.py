#!/usr/bin/env python3
"""How many simulated devices one `gb28181 simulate` process holds against one `gb28181 serve`.

For each population size N: start `gb28181 serve` (temporary database, free loopback ports, catalog sync off
unless --catalog), start `gb28181 simulate --devices N --profile P --rate R --keepalive K`, wait until every device
is registered (time to all registered), then hold for --hold seconds. A size *holds* when, at the end, the
simulator has every device online (each one's last keepalive answered), the platform lists every device online,
and no keepalive or REGISTER went unanswered. Recorded: time to register all, CPU (% of one core) of the simulator
and of the platform during the hold, the simulator's peak RSS, keepalives sent/answered, open descriptors.

Per-device sockets need one descriptor per device: the simulator raises its soft RLIMIT_NOFILE to the hard limit
and refuses clearly when even that is too low; --shared-socket puts every device on one socket instead.

Loopback only; every process started here is stopped on exit. Figures are printed and appended to
bench/RESULTS.md (--no-record to skip).

usage: python bench/simulator_scale.py [--sizes 1000,5000,10000] [--hold 60] [--keepalive 30] [--rate 1000]
                                       [--profile tianwang-ipc] [--shared-socket] [--catalog] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import _env

from gb28181.simulator.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"
PASSWORD = "bench-pass"


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def control(port: int, line: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(line.encode() + b"\n")
        return s.makefile().readline().strip()


def platform_stats(admin: int) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{admin}/api/stats", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def run_size(n: int, args: argparse.Namespace, tmp: Path) -> dict:
    sip, admin, ctl = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM)
    cfg = tmp / f"serve-{n}.toml"
    cfg.write_text(
        f'[sip]\nlisten = ["udp://127.0.0.1:{sip}", "tcp://127.0.0.1:{sip}"]\npassword = "{PASSWORD}"\n'
        f'[registry]\ndatabase = "{tmp}/gb-{n}.db"\n[admin]\nlisten = "127.0.0.1:{admin}"\ntoken = "{TOKEN}"\n'
        f"[keepalive]\ninterval = {max(60, int(args.keepalive * 2))}\nmax_missed = 3\n"
        f"[catalog]\nsync_on_register = {'true' if args.catalog else 'false'}\n"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    serve_log = open(tmp / f"serve-{n}.log", "wb")  # noqa: SIM115  (closed below)
    serve = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--config", str(cfg), "--log-level", "warning"],
        cwd=ROOT, stdout=serve_log, stderr=serve_log, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    sim = None
    try:
        for _ in range(100):
            try:
                platform_stats(admin)
                break
            except OSError:
                time.sleep(0.2)
        sim_cmd = [
            sys.executable, "-m", "cli", "simulate", "--server", f"127.0.0.1:{sip}", "--devices", str(n),
            "--profile", args.profile, "--rate", str(args.rate), "--keepalive", str(args.keepalive),
            "--password", PASSWORD, "--control", str(ctl), "--json", "--no-progress",
            *(["--shared-socket"] if args.shared_socket else []),
        ]  # fmt: skip
        sim_err = open(tmp / f"simulate-{n}.log", "wb")  # noqa: SIM115
        sim = subprocess.Popen(sim_cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=sim_err, stdin=subprocess.PIPE)
        t0 = time.monotonic()
        status, all_registered = "", None
        limit = t0 + n / args.rate + 120
        while time.monotonic() < limit and sim.poll() is None:
            time.sleep(0.5)
            try:
                status = control(ctl, "status")
            except OSError:
                continue
            if status.startswith(f"simulate: {n}/{n} registered"):
                all_registered = time.monotonic() - t0
                break
        if sim.poll() is not None:
            raise RuntimeError(f"simulator exited {sim.returncode}: {(tmp / f'simulate-{n}.log').read_text()[-2000:]}")
        cpu_sim0, cpu_srv0, h0 = cpu_seconds(sim.pid), cpu_seconds(serve.pid), time.monotonic()
        time.sleep(args.hold)
        held = time.monotonic() - h0
        cpu_sim = (cpu_seconds(sim.pid) - cpu_sim0) / held * 100
        cpu_srv = (cpu_seconds(serve.pid) - cpu_srv0) / held * 100
        peak_rss, open_fds = rss_mb(sim.pid), fds(sim.pid)
        stats = platform_stats(admin)
        out, _ = sim.communicate(b"quit\n", timeout=120)
        summary = json.loads(out)
    finally:
        for proc in (sim, serve):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        serve_log.close()
    st = summary["stats"]
    lost = st.get("keepalive-lost", 0) + st.get("register-failed", 0)
    holds = summary["online"] == n and stats["online"] == n and lost == 0 and all_registered is not None
    return {
        "devices": n, "all_registered_s": all_registered, "sim_online": summary["online"],
        "platform_online": stats["online"], "keepalives": st.get("keepalive-sent", 0),
        "keepalives_ok": st.get("keepalive-ok", 0), "lost": lost, "sim_cpu": cpu_sim, "serve_cpu": cpu_srv,
        "sim_rss_mb": peak_rss, "sim_fds": open_fds, "holds": holds, "last_status": status,
    }  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,5000,10000")
    ap.add_argument("--hold", type=float, default=60.0)
    ap.add_argument("--keepalive", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--profile", default="tianwang-ipc")
    ap.add_argument("--shared-socket", action="store_true")
    ap.add_argument("--catalog", action="store_true", help="let the platform sync every device's catalog")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    info = _env.machine()
    rows = []
    with tempfile.TemporaryDirectory(prefix="simscale-") as d:
        for n in sizes:
            print(f"-- {n} devices", flush=True)
            row = run_size(n, args, Path(d))
            rows.append(row)
            print(json.dumps(row), flush=True)
            if not row["holds"]:
                break
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lines = [
        f"`gb28181 simulate --profile {args.profile} --rate {args.rate:g} --keepalive {args.keepalive:g}"
        f"{' --shared-socket' if args.shared_socket else ''}` against `gb28181 serve` (catalog sync "
        f"{'on' if args.catalog else 'off'}), hold {args.hold:g} s per size; RLIMIT_NOFILE {soft}/{hard}.",
        "",
        "| devices | all registered after | online (sim / platform) | keepalives sent / answered | unanswered "
        "| simulator CPU | serve CPU | simulator peak RSS | simulator fds | holds |",
        "|---:|---:|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        reg = f"{r['all_registered_s']:.1f} s" if r["all_registered_s"] is not None else "never"
        lines.append(
            f"| {r['devices']:,} | {reg} | {r['sim_online']:,} / {r['platform_online']:,} | "
            f"{r['keepalives']:,} / {r['keepalives_ok']:,} | {r['lost']} | {r['sim_cpu']:.0f}% | "
            f"{r['serve_cpu']:.0f}% | "
            f"{r['sim_rss_mb']:.0f} MB | {r['sim_fds']:,} | {'yes' if r['holds'] else 'NO'} |"
        )
    body = "\n".join(lines)
    print(body)
    if not args.no_record:
        _env.append_results("simulator scale (devices one simulate process holds)", body, info)
    return 0 if rows and rows[-1]["holds"] else 1


if __name__ == "__main__":
    sys.exit(main())
