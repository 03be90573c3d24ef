#!/usr/bin/env python3
"""INVITE setup latency and concurrent live sessions of the platform with its embedded receiver.

Runs `gb28181 serve` as a subprocess (embedded backend on 127.0.0.1) and N raw-socket cameras in this process
(tests/e2e/raw_media_device.py: digest REGISTER, 200 OK with a wild-style SDP, then the H.264 clip as PS over RTP
at 25 frames/s over UDP). Two measurements:

1. setup latency: --setups sequential `POST /api/channels/{id}/play` (the admin call returns once the 200 OK was
   ACKed and the first RTP packet arrived), each followed by a stop; p50/p99 of the call's duration;
2. concurrency: for each step of --streams, that many cameras play at once for --seconds; the platform's session
   table gives packets, payload bytes and loss per session, and the serve process's CPU share is sampled.

The cameras (senders) share the two cores with the platform, so at high counts the senders fall behind first.

usage: python bench/invite_setup.py [--setups 50] [--streams 10,25,50] [--seconds 10] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import _env  # noqa: E402

from gb28181.simulator.ports import free_port  # noqa: E402
from tests.e2e.raw_media_device import MediaDevice  # noqa: E402


def api(admin: str, token: str, method: str, path: str, body: dict | None = None) -> object:
    req = urllib.request.Request(admin + path, data=json.dumps(body).encode() if body is not None else None,
                                 method=method, headers={"Authorization": f"Bearer {token}",
                                                         "Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def cpu_of(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main_async(args: argparse.Namespace) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="invite-bench-"))
    sip, admin_port, rtp = free_port(), free_port(socket.SOCK_STREAM), free_port()
    top = max(int(x) for x in args.streams.split(","))
    cfg = tmp / "config.toml"
    cfg.write_text(f"""
[sip]
listen = ["udp://127.0.0.1:{sip}"]
password = "12345678"
[registry]
database = "{tmp / 'gb.db'}"
[admin]
listen = "127.0.0.1:{admin_port}"
[catalog]
sync_on_register = false
[media]
rtp_ports = "{rtp}-{min(rtp + 2 * top + 20, 65535)}"
bind = "127.0.0.1"
""")
    log = open(tmp / "serve.log", "wb")  # noqa: SIM115
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", "serve", "--config", str(cfg),
                                                "--log-level", "warning", cwd=str(ROOT), stdout=log, stderr=log)
    admin = f"http://127.0.0.1:{admin_port}"
    try:
        for _ in range(300):
            try:
                _, w = await asyncio.open_connection("127.0.0.1", admin_port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        token = json.loads((tmp / "gb.db.secrets.json").read_text())["token"]
        devices = []
        for i in range(top):
            d = await MediaDevice.start(f"3402000000132{i + 1:07d}", "12345678", ("127.0.0.1", sip))
            assert await d.register() == 200
            devices.append(d)
        # 1. setup latency
        lat = []
        for i in range(args.setups):
            dev = devices[i % len(devices)].device_id
            t0 = time.perf_counter()
            row = await asyncio.to_thread(api, admin, token, "POST", f"/api/channels/{dev}/play", {})
            lat.append((time.perf_counter() - t0) * 1000)
            await asyncio.to_thread(api, admin, token, "POST", f"/api/sessions/{row['consumer']}/stop", {})
        lat.sort()
        p50, p99 = statistics.median(lat), lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        out = [f"Setup latency ({args.setups} sequential plays, admin call to first RTP packet, UDP): "
               f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {lat[-1]:.1f} ms.\n",
               "| live sessions | setup wall time | received pkt/s | received Mbit/s | loss | serve CPU |",
               "|---:|---:|---:|---:|---:|---:|"]
        print(out[0], flush=True)
        # 2. concurrency ladder
        for n in [int(x) for x in args.streams.split(",")]:
            t0 = time.perf_counter()
            rows = await asyncio.gather(*(asyncio.to_thread(api, admin, token, "POST",
                                                            f"/api/channels/{d.device_id}/play", {})
                                          for d in devices[:n]))  # fmt: skip
            setup = time.perf_counter() - t0
            before = {s["id"]: s for s in await asyncio.to_thread(api, admin, token, "GET", "/api/sessions")}
            c0, w0 = cpu_of(proc.pid), time.perf_counter()
            await asyncio.sleep(args.seconds)
            after = {s["id"]: s for s in await asyncio.to_thread(api, admin, token, "GET", "/api/sessions")}
            c1, w1 = cpu_of(proc.pid), time.perf_counter()
            pkts = sum(after[k]["packets"] - before[k]["packets"] for k in after if k in before)
            nbytes = sum(after[k]["bytes"] - before[k]["bytes"] for k in after if k in before)
            lost = sum(after[k]["lost"] for k in after)
            total = sum(after[k]["packets"] for k in after) + lost
            span = w1 - w0
            line = (f"| {n} | {setup:.2f} s | {pkts / span:,.0f} | {nbytes * 8 / span / 1e6:,.1f} | "
                    f"{(lost / total if total else 0):.2%} | {(c1 - c0) / span:.0%} |")
            print(line, flush=True)
            out.append(line)
            await asyncio.gather(*(asyncio.to_thread(api, admin, token, "POST",
                                                     f"/api/sessions/{r['consumer']}/stop", {}) for r in rows))
        for d in devices:
            d.close()
        return "\n".join(out)
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
        log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setups", type=int, default=50)
    ap.add_argument("--streams", default="10,25,50")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = ap.parse_args()
    info = _env.machine()
    body = asyncio.run(main_async(args))
    if args.record:
        note = ("\n\nCameras are raw-socket senders in the bench process (the clip at 25 frames/s, about 28 pkt/s and "
                "0.15 Mbit/s each), sharing the 2 cores with `gb28181 serve`; loss is the receivers' sequence gaps. "
                "Loopback only.")
        _env.append_results("invite_setup (INVITE setup latency, concurrent live sessions, embedded receiver)",
                            body + note, info)


if __name__ == "__main__":
    main()
