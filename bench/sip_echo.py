#!/usr/bin/env python3
"""Our SIP server against the reference Kamailio, same machine, same run, same SIPp ladder.

One invocation starts the reference Kamailio (bench/peers, 127.0.0.1:15060, ``-A WITH_QOP`` unless
--no-qop) and our test registrar/UAS (``tests.e2e.uas_app`` with uvloop, 127.0.0.1:15070, qop the same
way), then drives each with SIPp (bench/peers/bench.py) up a bounded rate ladder:

  register   REGISTER -> 401 -> REGISTER with digest -> 200, one call per device (sipp-register-auth.xml)
  keepalive  Keepalive MESSAGE with a MANSCDP body -> 200 (sipp-message-keepalive.xml)

Each step sends RATE calls/s for --step-seconds (count = RATE x seconds, SIPp -timeout bounds the time),
with -buff_size 4194304 and a fixed local port per server. The servers take turns at each rate, so
load from elsewhere on the machine hits both alike. A server's ladder stops at its first step with a
failed call or a retransmission (unclean), or when SIPp achieves under 90% of the target rate
(saturated). Reported: the highest clean rate per server, ours as a ratio of Kamailio's, CPU of each
server and of SIPp at that step, response times (p50/p99 from SIPp -trace_rtt; 1 ms resolution).

Loopback only. Every process started here is stopped on exit, Ctrl-C or error. Figures are printed
and appended to bench/RESULTS.md (--no-record to skip); raw JSON per step goes to bench/out/.

usage: python bench/sip_echo.py [--quick] [--scenario register|keepalive|both] [--no-qop]
                                [--rates 1000,2000,...] [--step-seconds 5] [--no-record]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import _env

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS = BENCH / "peers"
SCENARIOS = {
    "register": PEERS / "sipp-register-auth.xml",
    "keepalive": PEERS / "sipp-message-keepalive.xml",
}
# Kamailio's ceiling is far above ours and higher for keepalive (stateless 200) than for register.
LADDERS = {
    "register": [500, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 10000, 13000, 16000, 20000, 25000, 32000],
    "keepalive": [
        *(500, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 10000, 13000, 16000),
        *(20000, 25000, 32000, 40000, 50000, 64000),
    ],
}
QUICK_RATES = [500, 1000]
SATURATED = 0.9  # achieved / target below this: the load generator or the server could not keep the rate
SIPP_BOUND = 85.0  # SIPp CPU % of one core from which the load generator itself may be the limit
SETTLE_S = 1.0  # pause between steps so queues drain and sockets close


class BenchError(RuntimeError):
    pass


def _on_term(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# ----------------------------------------------------------------------------- servers
def port_free(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:  # as the servers bind: a TIME-WAIT left by the last run is no owner
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def children(pid: int) -> list[int]:
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [int(x) for x in out.split()]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


PF_KTHREAD = 0x00200000


def others_cpu(exclude: set[int]) -> float:
    """CPU seconds used so far by every user process not in ``exclude`` (with their reaped children).

    /proc/stat's machine-wide counters are tick-sampled and undercount bursty loads on this kind of VM;
    per-process counters are exact. Processes that exit without a live parent to reap them are missed,
    and a parent reaping a long-lived child during a step adds its whole life: an approximation.
    """
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(parts[6]) & PF_KTHREAD:
            continue
        total += int(parts[11]) + int(parts[12]) + int(parts[13]) + int(parts[14])  # u+s time, + children's
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    name: str
    port: int
    sipp_port: int
    pid: int = 0

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


@dataclass
class Kamailio(Server):
    rundir: str = ""
    pids: list[int] = field(default_factory=list)

    def start(self, qop: bool) -> None:
        env = dict(os.environ, RUNDIR=self.rundir, PORT=str(self.port))
        args = ["sh", str(PEERS / "run-kamailio.sh")] + (["-A", "WITH_QOP"] if qop else [])
        out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=30)
        if out.returncode != 0 or not out.stdout.strip().isdigit():
            raise BenchError(f"kamailio did not start: {out.stderr.strip()} (log: {self.rundir}/kamailio.log)")
        self.pid = int(out.stdout.strip())
        self.pids = [self.pid, *children(self.pid)]

    def version(self) -> str:
        try:
            out = subprocess.run(["kamailio", "-v"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return "?"
        return out.splitlines()[0].replace("version: ", "") if out else "?"

    def stop(self) -> None:
        if not self.pid:
            return
        if alive(self.pid):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(p) and "kamailio" in cmdline(p) for p in self.pids):
            time.sleep(0.1)
        for p in self.pids:  # only the processes it started, and only if they are still kamailio
            if alive(p) and "kamailio" in cmdline(p):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
        self.pid = 0

    def remove_rundir(self, keep_log: Path) -> None:
        """Keep Kamailio's log with the run's output; drop its config, pid file and control socket."""
        log = Path(self.rundir) / "kamailio.log"
        if log.exists():
            shutil.copy(log, keep_log)
        shutil.rmtree(self.rundir, ignore_errors=True)


@dataclass
class OurServer(Server):
    proc: subprocess.Popen | None = None
    counters: dict | None = None
    stderr_path: Path | None = None

    kind: str = "uas"  # "uas": tests/e2e/uas_app (the stack alone); "serve": the whole platform
    admin: int = 0

    def start(self, qop: bool, outdir: Path) -> None:
        if self.kind == "serve":
            self._start_serve(qop, outdir)
            return
        addr = f"127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "tests.e2e.uas_app", "--udp", addr, "--tcp", addr, "--uvloop"]
        if not qop:
            cmd.append("--no-qop")
        self.stderr_path = outdir / "uas_app.stderr"
        with open(self.stderr_path, "w") as err:
            # Own session: a Ctrl-C reaches this script, which then stops the server and reads its counters.
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True
            )
        self.pid = self.proc.pid
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("READY"):
            raise BenchError(f"uas_app did not start ({line.strip()!r}); see {self.stderr_path}")

    def _start_serve(self, qop: bool, outdir: Path) -> None:
        """`gb28181 serve` on a fresh SQLite file: registrar, registry, liveness, event log, admin API."""
        addr = f"127.0.0.1:{self.port}"
        admin = self.port + 1
        if not port_free(admin):
            raise BenchError(f"127.0.0.1:{admin} (admin API of ours) is in use")
        config = outdir / "serve.toml"
        config.write_text(
            f'[sip]\nlisten = ["udp://{addr}", "tcp://{addr}"]\npassword = "12345678"\nqop = {str(qop).lower()}\n'
            f'[registry]\ndatabase = "{outdir / "serve.db"}"\n[admin]\nlisten = "127.0.0.1:{admin}"\n'
            # SIPp devices do not answer catalog queries: unanswered ones would be retransmitted for 32 s each
            "[catalog]\nsync_on_register = false\n"
        )
        cmd = [sys.executable, "-m", "cli", "serve", "--config", str(config), "--log-level", "warning"]
        self.stderr_path = outdir / "serve.stderr"
        with open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=err, stderr=err, text=True, start_new_session=True)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"gb28181 serve exited {self.proc.returncode}; see {self.stderr_path}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", admin), timeout=0.5):
                self.admin = admin
                return
            time.sleep(0.2)
        raise BenchError(f"gb28181 serve did not start; see {self.stderr_path}")

    def stats(self) -> dict | None:
        """The platform's own counters (GET /api/stats), read before it stops."""
        if self.kind != "serve" or not self.admin:
            return None
        token = json.loads(Path(str(self.stderr_path).replace("serve.stderr", "serve.db.secrets.json")).read_text())
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.admin}/api/stats", headers={"Authorization": f"Bearer {token['token']}"}
        )
        with contextlib.suppress(OSError, ValueError), urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())
        return None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.kind == "serve" and self.proc.poll() is None:
            self.counters = self.stats()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, _ = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        for line in (out or "").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    self.counters = json.loads(line)
        self.proc = None


# ----------------------------------------------------------------------------- one step
@dataclass
class Step:
    server: str
    scenario: str
    rate: int
    res: dict

    @property
    def achieved(self) -> float:
        return float(self.res.get("achieved_cps") or 0.0)

    @property
    def verdict(self) -> str:
        r = self.res
        if "successful" not in r:
            return "no-stats"
        if r.get("failed") or r.get("successful") != r.get("count") or r.get("rc") not in (0,):
            return "failed"
        if r.get("retransmissions"):
            return "retrans"
        if self.achieved < SATURATED * self.rate:
            return "saturated"
        return "clean"

    @property
    def clean(self) -> bool:
        return self.verdict in ("clean", "saturated")

    def rtt(self) -> str:
        """p50/p99 in ms per RTD (register: challenge round trip | authenticated round trip)."""
        rtt = self.res.get("rtt_ms") or {}
        if not rtt:
            return f"avg {self.res.get('avg_rtt1_ms')}"
        return " \\| ".join(f"{v['p50']:.0f}/{v['p99']:.0f}" for _, v in sorted(rtt.items()))


class Runner:
    def __init__(self, args: argparse.Namespace, outdir: Path, users: Path) -> None:
        self.args = args
        self.outdir = outdir
        self.users = users
        self.current: subprocess.Popen | None = None

    def step(self, server: Server, scenario: str, rate: int, count: int) -> Step:
        timeout = int(self.args.step_seconds * 2 + 15)
        cmd = [
            sys.executable, str(PEERS / "bench.py"), str(SCENARIOS[scenario]), str(rate), str(count),
            "--csv", str(self.users), "--target", f"127.0.0.1:{server.port}", "--server-pid", str(server.pid),
            "--port", str(server.sipp_port), "--timeout", str(timeout), "--outdir", str(self.outdir / "sipp"),
            "--extra", "-buff_size 4194304", "--rtt",
        ]  # fmt: skip
        exclude = {os.getpid(), *getattr(server, "pids", []), server.pid}
        o0, t0 = others_cpu(exclude), time.monotonic()
        self.current = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        out, err = self.current.communicate(timeout=timeout + 60)  # on Ctrl-C, kill_current() cleans up
        self.current = None
        others = 100 * (others_cpu(exclude) - o0) / max(1e-3, time.monotonic() - t0)
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        if not lines:
            raise BenchError(f"bench.py printed no result: {err.strip()[-500:]}")
        res = json.loads(lines[-1])
        res["loadavg"] = _env.loadavg()
        res["others_cpu_pct"] = round(others, 1)
        st = Step(server.name, scenario, rate, res)
        with open(self.outdir / "steps.jsonl", "a") as f:
            f.write(json.dumps({"server": st.server, "scenario": scenario, "rate": rate, **res}) + "\n")
        return st

    def kill_current(self) -> None:
        p = self.current
        if p is not None and p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)  # bench.py and its sipp: the session created for them
            p.wait(timeout=10)


def ladder(
    runner: Runner, servers: list[Server], scenario: str, rates: list[int], secs: float, steps: dict[str, list[Step]]
) -> None:
    """Run the servers in turn at each rate until each has an unclean or saturated step; fills ``steps``."""
    steps.update({s.name: [] for s in servers})
    active = list(servers)
    for rate in rates:
        if not active:
            break
        for server in list(active):
            st = runner.step(server, scenario, rate, max(1, int(rate * secs)))
            steps[server.name].append(st)
            r = st.res
            rtt = st.rtt().replace(" \\| ", " | ")
            print(
                f"  {scenario:9} {server.name:8} {rate:>6}/s -> {st.achieved:>8.0f}/s  {st.verdict:9} "
                f"fail {r.get('failed', '?')} retr {r.get('retransmissions', '?')}  "
                f"server {r.get('server_cpu_pct', '?')}%  sipp {r.get('sipp_cpu_pct', '?')}%  "
                f"others {r.get('others_cpu_pct', '?')}%  "
                f"p50/p99 ms {rtt}",
                flush=True,
            )
            if st.verdict != "clean":
                active.remove(server)
            time.sleep(SETTLE_S)


# ----------------------------------------------------------------------------- report
def best_clean(steps: list[Step]) -> Step | None:
    clean = [s for s in steps if s.clean]
    return max(clean, key=lambda s: s.achieved) if clean else None


def ceiling_note(steps: list[Step], top: int) -> str:
    """Why the ladder stopped for this server."""
    if not steps:
        return "not run"
    last = steps[-1]
    if last.verdict == "clean":
        if last.rate == top:
            return "clean to the top of the ladder (ceiling not reached)"
        return f"interrupted after a clean {last.rate}/s step"
    r = last.res
    if last.verdict == "saturated":
        note = f"saturated at {last.rate}/s (achieved {last.achieved:.0f}/s)"
        if float(r.get("sipp_cpu_pct") or 0) >= SIPP_BOUND:
            note += f"; SIPp at {r.get('sipp_cpu_pct')}% of a core: the load generator's limit"
        return note
    note = (
        f"first unclean step {last.rate}/s: {last.verdict} "
        f"(failed {r.get('failed', '?')}, retransmissions {r.get('retransmissions', '?')})"
    )
    if float(r.get("sipp_cpu_pct") or 0) >= SIPP_BOUND:
        note += f"; SIPp at {r.get('sipp_cpu_pct')}% of a core: may be the load generator's limit"
    return note


OURS_TEXT = {
    "uas": "tests/e2e/uas_app on uvloop (the SIP stack, digest, an in-memory registrar)",
    "serve": "gb28181 serve on uvloop (the whole platform: SQLite registry with group commit, liveness, event log)",
}


def report(all_steps: dict[str, dict[str, list[Step]]], rates: dict[str, list[int]], args: argparse.Namespace) -> str:
    lines = [
        f"Ours: {OURS_TEXT[args.ours]}. "
        f"Mode: qop={'off' if args.no_qop else 'auth'} (both servers); steps of {args.step_seconds:g} s "
        f"(count = rate x {args.step_seconds:g}); SIPp -buff_size 4194304, UDP, loopback; servers take turns at each "
        "rate. CPU is % of one core over the step (Kamailio: main process + its children; ours: one process). "
        "p50/p99 in ms from SIPp -trace_rtt (1 ms resolution, 0 = under 1 ms); register shows "
        "challenge round trip | authenticated round trip.",
        "",
        "| scenario | server | highest clean rate (target → achieved) | server CPU | SIPp CPU | p50/p99 ms "
        "| why the ladder stopped |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    summary = []
    for scenario, by_server in all_steps.items():
        top = rates[scenario][-1]
        best = {name: best_clean(steps) for name, steps in by_server.items()}
        for name, steps in by_server.items():
            b = best[name]
            rate = f"{b.rate:,} → {b.achieved:,.0f}/s" if b else "none clean"
            lines.append(
                f"| {scenario} | {name} | {rate} | {b.res.get('server_cpu_pct', '?') if b else '-'}% "
                f"| {b.res.get('sipp_cpu_pct', '?') if b else '-'}% | {b.rtt() if b else '-'} "
                f"| {ceiling_note(steps, top)} |"
            )
        k, o = best.get("kamailio"), best.get("ours")
        if k and o:
            at_top = {n: bool(st) and st[-1].verdict == "clean" and st[-1].rate == top for n, st in by_server.items()}
            ratio = o.achieved / k.achieved
            partial = any(bool(st) and st[-1].verdict == "clean" and not at_top[n] for n, st in by_server.items())
            if partial:
                how = "partial ladder: interrupted"
            elif at_top["kamailio"] and at_top["ours"]:
                how = "both clean to the top of the ladder: ratio not measured, raise --rates"
            elif at_top["kamailio"]:
                how = "upper bound: Kamailio was not saturated"
            elif at_top["ours"]:
                how = "lower bound: ours was not saturated"
            else:
                how = "both ladders ended at an unclean or saturated step"
            summary.append(
                f"- **{scenario}: ours / Kamailio = {ratio:.2f}** "
                f"({o.achieved:,.0f} / {k.achieved:,.0f} calls/s; {how})"
            )
            common = [
                (ks, os_)
                for ks in by_server["kamailio"]
                for os_ in by_server["ours"]
                if ks.rate == os_.rate and ks.verdict == "clean" and os_.verdict == "clean"
            ]
            if common:
                ks, os_ = max(common, key=lambda p: p[0].rate)
                summary.append(
                    f"  - at {ks.rate:,}/s, the highest rate both ran clean: server CPU ours "
                    f"{os_.res.get('server_cpu_pct')}% vs Kamailio {ks.res.get('server_cpu_pct')}% of a core"
                )
        elif k and not o:
            summary.append(f"- **{scenario}: ours had no clean step** (Kamailio {k.achieved:,.0f} calls/s)")
    lines += ["", *summary]
    step_lines = [
        "",
        "<details><summary>every step</summary>",
        "",
        "| scenario | server | target/s | achieved/s | verdict | failed | retrans | server CPU | SIPp CPU "
        "| others' CPU | p50/p99 ms |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for scenario, by_server in all_steps.items():
        for rate in rates[scenario]:
            for name, steps in by_server.items():
                for s in steps:
                    if s.rate == rate:
                        r = s.res
                        step_lines.append(
                            f"| {scenario} | {name} | {rate:,} | {s.achieved:,.0f} | {s.verdict} | {r.get('failed')} "
                            f"| {r.get('retransmissions')} | {r.get('server_cpu_pct')}% | {r.get('sipp_cpu_pct')}% "
                            f"| {r.get('others_cpu_pct')}% | {s.rtt()} |"
                        )
    step_lines += ["", "</details>"]
    return "\n".join(lines + step_lines)


# ----------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"smoke run: rates {QUICK_RATES}, 1 s steps")
    ap.add_argument("--scenario", choices=["register", "keepalive", "both"], default="both")
    ap.add_argument("--no-qop", action="store_true", help="challenge without qop (both servers)")
    ap.add_argument("--rates", help="comma-separated ladder (calls/s) for every scenario, overriding the defaults")
    ap.add_argument("--step-seconds", type=float, default=None, help="seconds per step (default 5, --quick 1)")
    ap.add_argument("--kamailio-port", type=int, default=15060)
    ap.add_argument("--our-port", type=int, default=15070)
    ap.add_argument(
        "--sipp-ports",
        type=lambda v: [int(x) for x in v.split(",")][:2],
        default=[25160, 25170],
        help="SIPp's local UDP port against Kamailio and against ours (default 25160,25170)",
    )
    ap.add_argument(
        "--ours",
        choices=["uas", "serve"],
        default="uas",
        help="our server: uas = the SIP stack with a minimal registrar (tests/e2e/uas_app); "
        "serve = the whole platform (gb28181 serve: SQLite registry, liveness, event log)",
    )
    ap.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = ap.parse_args()
    if args.step_seconds is None:
        args.step_seconds = 1.0 if args.quick else 5.0
    if not 0 < args.step_seconds <= 60:
        ap.error("--step-seconds must be in (0, 60]")
    scenarios = ["register", "keepalive"] if args.scenario == "both" else [args.scenario]
    if args.rates:
        custom = [int(x) for x in args.rates.split(",") if x.strip()]
        rates = {s: custom for s in scenarios}
    elif args.quick:
        rates = {s: QUICK_RATES for s in scenarios}
    else:
        rates = {s: LADDERS[s] for s in scenarios}
    if any(r <= 0 or r > 100_000 for rs in rates.values() for r in rs):
        ap.error("rates must be in 1..100000")

    for tool in ("sipp", "kamailio"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            print(f"{tool} is not installed (apt-get install -y sip-tester kamailio)", file=sys.stderr)
            return 2
    kam = Kamailio("kamailio", args.kamailio_port, args.sipp_ports[0], rundir=f"/tmp/gbbench-kam-{os.getpid()}")
    ours = OurServer("ours", args.our_port, args.sipp_ports[1], kind=args.ours)
    for port in (kam.port, ours.port, kam.sipp_port, ours.sipp_port):
        if not port_free(port):
            print(
                f"127.0.0.1:{port} is in use (another Kamailio, test or benchmark?): pick other ports", file=sys.stderr
            )
            return 2

    stamp = time.strftime("%Y%m%d-%H%M%S")
    outdir = BENCH / "out" / f"echo-{stamp}"
    (outdir / "sipp").mkdir(parents=True, exist_ok=True)
    info = _env.machine()
    info["kamailio"] = "?"
    max_count = max(int(r * args.step_seconds) for rs in rates.values() for r in rs)
    users = outdir / "users.csv"
    subprocess.run([sys.executable, str(PEERS / "gen-users.py"), str(min(max(max_count, 1000), 250_000)), str(users)],
                   check=True, timeout=60)  # fmt: skip
    runner = Runner(args, outdir, users)
    # Installed explicitly: a shell starts background jobs with SIGINT ignored, and Python keeps it so.
    old_handlers = {sig: signal.signal(sig, _on_term) for sig in (signal.SIGINT, signal.SIGTERM)}
    all_steps: dict[str, dict[str, list[Step]]] = {}
    interrupted = False
    try:
        print(f"# {_env.machine_line(info)}", flush=True)
        kam.start(qop=not args.no_qop)
        info["kamailio"] = kam.version()
        ours.start(qop=not args.no_qop, outdir=outdir)
        print(f"kamailio pid {kam.pid} on :{kam.port}, ours ({args.ours}, uvloop) pid {ours.pid} on :{ours.port}; "
              f"raw steps in {outdir.relative_to(ROOT)}", flush=True)  # fmt: skip
        for server in (kam, ours):  # warm-up, not reported: first-call costs, ARP-free loopback, caches
            runner.step(server, scenarios[0], 200, 200)
        time.sleep(SETTLE_S)
        for scenario in scenarios:
            if scenario == "keepalive" and args.ours == "serve":
                # The platform answers 403 to devices that are not registered (DECISIONS.md): register every
                # device the keepalive ladder will use first, from the same local port (not reported).
                need = max(int(r * args.step_seconds) for r in rates["keepalive"])
                runner.step(ours, "register", 2000, need)
                time.sleep(SETTLE_S)
            all_steps[scenario] = {}
            ladder(runner, [kam, ours], scenario, rates[scenario], args.step_seconds, all_steps[scenario])
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping everything started here", file=sys.stderr)
    finally:
        runner.kill_current()
        ours.stop()
        kam.stop()
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        users.unlink(missing_ok=True)  # regenerated each run; large
        kam.remove_rundir(outdir / "kamailio.log")
    all_steps = {sc: by for sc, by in all_steps.items() if any(by.values())}
    if not all_steps:
        return 130 if interrupted else 1
    text = report(all_steps, rates, args)
    if ours.counters:
        text += f"\n\n{args.ours} counters at exit: `{json.dumps(ours.counters, separators=(',', ':'))}`"
    text += f"\n\nKamailio: {info['kamailio']}."
    if interrupted:
        text += "\n\n**Interrupted: partial ladder.**"
    print()
    print(text)
    if not args.no_record and not args.quick and not interrupted:
        title = f"sip_echo --ours {args.ours} ({', '.join(scenarios)}; qop {'off' if args.no_qop else 'auth'})"
        _env.append_results(title, text, info)
        print(f"\nappended to {_env.RESULTS.relative_to(ROOT)}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
