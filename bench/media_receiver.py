#!/usr/bin/env python3
"""How much RTP one embedded-receiver process sustains: N concurrent UDP streams of GB PS over RTP.

Two processes: a receiver (gb28181.media.receiver.EmbeddedBackend on uvloop when installed, N UDP receivers on
127.0.0.1, each writing its PS stream to a file in a temporary directory) and a sender (one UDP socket, the test
clip muxed and packetized per stream, paced in 5 ms ticks at --mbps per stream). Per step of the ladder it reports
the offered and received packets/s and Mbit/s (RTP payload bytes), the loss (packets the sender sent that the
receiver never delivered, kernel drops included) and the receiver's CPU share. With --pin the receiver runs on CPU
0 and the sender on CPU 1.

usage: python bench/media_receiver.py [--streams 10,50,100,200] [--mbps 2] [--seconds 10] [--pin] [--senders K]
                                     [--no-file] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import _env  # noqa: E402

from gb28181.media import h264, ps, rtp  # noqa: E402
from gb28181.media.backend import UDP, ReceiverSpec  # noqa: E402
from gb28181.media.packetizer import RtpPacketizer  # noqa: E402
from gb28181.media.receiver import EmbeddedBackend  # noqa: E402

CLIP = ROOT / "fixtures" / "media" / "testsrc-320x240-25fps-4s.h264"
TICK = 0.005


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _pin(cpu: int) -> None:
    try:
        os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})
    except (AttributeError, OSError):
        pass


# ------------------------------------------------------------------------------------------------ receiver


async def receiver(args: argparse.Namespace) -> None:
    if args.pin:
        _pin(0)
    backend = EmbeddedBackend((args.first_port, args.first_port + 4 * args.streams + 100), host="127.0.0.1")
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(prefix="media-bench-") as tmp:
        handles = []
        ports = []
        for i in range(args.streams):
            port, handle = await backend.open_receiver(
                ReceiverSpec(UDP, ssrc=200000000 + i, output=None if args.no_file else f"{tmp}/{i}.ps",
                             no_media_timeout=3600))
            handles.append(handle)
            ports.append(port)
        print(json.dumps({"ports": ports}), flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)  # "start"
        cpu0, t0 = _cpu(), time.perf_counter()
        await loop.run_in_executor(None, sys.stdin.readline)  # "stop": the sender has finished
        last = -1
        for _ in range(50):  # drain the socket buffers: until nothing arrived for 0.2 s (at most 10 s)
            total = sum(backend.stats(h).packets + backend.stats(h).late for h in handles)
            if total == last:
                break
            last = total
            await asyncio.sleep(0.2)
        cpu1, t1 = _cpu(), time.perf_counter()
        totals = {"packets": 0, "bytes": 0, "lost": 0, "late": 0, "malformed": 0}
        for handle in handles:
            stats = await backend.close(handle)
            for key in totals:
                totals[key] += getattr(stats, key)
        print(json.dumps({**totals, "cpu": cpu1 - cpu0, "wall": t1 - t0}), flush=True)


# -------------------------------------------------------------------------------------------------- sender


def sender(args: argparse.Namespace) -> None:
    if args.pin:
        _pin(1)
    ports = [int(p) for p in args.ports.split(",")]
    mux = ps.PsMuxer("h264")
    payloads = []
    for i, au in enumerate(h264.access_units(CLIP.read_bytes())):
        pk = RtpPacketizer(0)
        pack = mux.mux_video(au.data, 3600 * i, au.keyframe)
        payloads += [(rtp.parse(p).payload, rtp.parse(p).marker, i) for p in pk.packetize(pack, 0)]
    per_tick = args.mbps * 1e6 / 8 * TICK  # payload bytes per stream per tick
    state = [[0.0, 0, 0] for _ in ports]  # byte quota, sequence, position in payloads
    sent = sent_bytes = 0
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    start = time.perf_counter()
    ticks = int(args.seconds / TICK)
    for tick in range(ticks):
        for s, port in enumerate(ports):
            st = state[s]
            st[0] += per_tick
            for _ in range(int(st[0]) + 1):  # bounded: every packet spends at least one byte of quota
                if st[0] <= 0:
                    break
                payload, marker, frame = payloads[st[2]]
                st[0] -= len(payload)
                loops = st[1] // len(payloads)
                ts = (frame + 100 * loops) * 3600
                ssrc = 200000000 + args.index_start + s * args.index_step  # the receiver's expected SSRC
                sock.sendto(rtp.build(96, st[1], ts, ssrc, payload, marker), ("127.0.0.1", port))
                st[1] += 1
                st[2] = (st[2] + 1) % len(payloads)
                sent += 1
                sent_bytes += len(payload)
        delay = start + (tick + 1) * TICK - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.perf_counter() - start
    sock.close()
    print(json.dumps({"sent": sent, "sent_bytes": sent_bytes, "elapsed": elapsed}), flush=True)


# ---------------------------------------------------------------------------------------------------- main


def step(streams: int, args: argparse.Namespace) -> dict:
    me = [sys.executable, str(Path(__file__).resolve())]
    common = ["--pin"] if args.pin else []
    recv = subprocess.Popen([*me, "--role", "receiver", "--streams", str(streams), "--first-port",
                             str(args.first_port), *common, *(["--no-file"] if args.no_file else [])],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert recv.stdin and recv.stdout
        ports = json.loads(recv.stdout.readline())["ports"]
        recv.stdin.write("start\n")
        recv.stdin.flush()
        senders = [subprocess.Popen([*me, "--role", "sender", "--ports", ",".join(map(str, ports[k::args.senders])),
                                     "--mbps", str(args.mbps), "--seconds", str(args.seconds), "--index-start",
                                     str(k), "--index-step", str(args.senders), *common],
                                    stdout=subprocess.PIPE, text=True)
                   for k in range(min(args.senders, len(ports)))]
        outs = [json.loads(p.communicate(timeout=args.seconds * 4 + 60)[0]) for p in senders]
        sent = {"sent": sum(o["sent"] for o in outs), "sent_bytes": sum(o["sent_bytes"] for o in outs),
                "elapsed": max(o["elapsed"] for o in outs)}
        recv.stdin.write("stop\n")
        recv.stdin.flush()
        got = json.loads(recv.stdout.readline())
        recv.wait(timeout=60)
    finally:
        if recv.poll() is None:
            recv.kill()
            recv.wait()
    secs = sent["elapsed"]
    return {
        "streams": streams,
        "offered_pps": sent["sent"] / secs,
        "offered_mbps": sent["sent_bytes"] * 8 / secs / 1e6,
        "pps": got["packets"] / secs,
        "mbps": got["bytes"] * 8 / secs / 1e6,
        "loss": 1 - got["packets"] / sent["sent"] if sent["sent"] else 0.0,
        "cpu": got["cpu"] / secs,  # over the sending time (the receiver idles before and after)
        "us_per_packet": got["cpu"] / got["packets"] * 1e6 if got["packets"] else 0.0,
        "gaps": got["lost"],
        "sender_late": secs > args.seconds * 1.05,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--role", choices=["main", "receiver", "sender"], default="main")
    ap.add_argument("--streams", default="10,50,100,200", help="ladder of concurrent streams (receiver: one number)")
    ap.add_argument("--mbps", type=float, default=2.0, help="Mbit/s of RTP payload per stream")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--first-port", type=int, default=41000)
    ap.add_argument("--ports", default="")
    ap.add_argument("--index-start", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--index-step", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--pin", action="store_true", help="receiver on CPU 0, senders on CPU 1")
    ap.add_argument("--senders", type=int, default=1, help="sender processes sharing the streams")
    ap.add_argument("--no-file", action="store_true", help="receive without writing the PS files")
    ap.add_argument("--record", action="store_true", help="append the table to bench/RESULTS.md")
    args = ap.parse_args()
    if args.role == "receiver":
        args.streams = int(args.streams)
        try:
            import uvloop
            uvloop.run(receiver(args))
        except ImportError:
            asyncio.run(receiver(args))
        return
    if args.role == "sender":
        sender(args)
        return
    info = _env.machine()
    rows = []
    header = ("| streams | offered pkt/s | offered Mbit/s | received pkt/s | received Mbit/s | loss | sequence gaps "
              "| receiver CPU | receiver CPU µs/packet |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(header)
    for n in [int(x) for x in args.streams.split(",")]:
        r = step(n, args)
        row = (f"| {n} | {r['offered_pps']:,.0f} | {r['offered_mbps']:,.1f} | {r['pps']:,.0f} | {r['mbps']:,.1f} | "
               f"{r['loss']:.2%} | {r['gaps']:,} | {r['cpu']:.0%} | {r['us_per_packet']:.1f} |")
        if r["sender_late"]:
            row += " sender fell behind (offered < asked) |"
        print(row, flush=True)
        rows.append(row)
    if args.record:
        body = (f"{args.mbps:g} Mbit/s of RTP payload per stream, {args.seconds:g} s per step, "
                f"{'PS files written' if not args.no_file else 'no files'}, {'pinned' if args.pin else 'not pinned'}, "
                f"{args.senders} sender process(es)"
                f". Loss = packets sent but never delivered (kernel drops included).\n\n" + header + "\n"
                + "\n".join(rows))
        _env.append_results("media_receiver (embedded RTP/PS receiver, UDP)", body, info)


if __name__ == "__main__":
    main()
