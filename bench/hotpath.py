#!/usr/bin/env python3
"""The platform's per-message Python cost, without sockets: what one core can answer at most.

A ``Platform`` (the same composition ``gb28181 serve`` builds) on a MemoryStore (``--store sqlite``: the SQLite
store ``serve`` uses, whose writer thread's CPU counts too), with its real SipRunner whose UDP
socket is replaced by a recorder, is fed the datagrams SIPp sends in ``bench/peers``: the first REGISTER (answered
401), the REGISTER with digest (answered 200 once the group commit ran) and a Keepalive MESSAGE (200). Each phase
runs N devices; the figure is CPU time of this process per message (``time.process_time``, so time the machine
spends elsewhere is not counted), and 1e6 / µs is the ceiling of that message rate on one core before the kernel's
socket work and the load generator take their share.

    python bench/hotpath.py                # 8,000 devices, best of 3
    python bench/hotpath.py --profile register-auth   # cProfile of one phase, top 30 by own time

A busy machine still inflates it somewhat (shared caches, frequency): compare runs made back to back.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gb28181.config import CatalogConfig, Config, RegistryConfig, SipConfig
from gb28181.server import Platform, Secrets
from registry.memory import MemoryStore
from registry.sqlite import SqliteStore
from sip.aio import SipRunner, tune_gc
from sip.auth import DigestClient
from sip.parser import parse_message

SERVER = "sip:34020000002000000001@3402000000"
HOST = "127.0.0.1"


class Recorder:
    """Stands in for the UDP socket: keeps what the platform sends."""

    local = (HOST, 15070)

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append(data)


def register(dev: str, port: int, cseq: int, auth: str = "") -> bytes:
    line = f"Authorization: {auth}\r\n" if auth else ""
    return (
        f"REGISTER {SERVER} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{port};rport;branch=z9hG4bK-{dev}-{cseq}\r\n"
        f"From: <sip:{dev}@3402000000>;tag=4242SIPpTag{dev[-6:]}\r\n"
        f"To: <sip:{dev}@3402000000>\r\n"
        f"Call-ID: {dev}-4242@{HOST}\r\n"
        f"CSeq: {cseq} REGISTER\r\n"
        f"Contact: <sip:{dev}@{HOST}:{port}>\r\n"
        f"{line}"
        "Max-Forwards: 70\r\nUser-Agent: SIPp GB28181 test\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def keepalive(dev: str, port: int, sn: int) -> bytes:
    body = (
        f'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>{sn}</SN>\r\n'
        f"<DeviceID>{dev}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
    ).encode()
    head = (
        f"MESSAGE {SERVER} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{port};rport;branch=z9hG4bK-ka-{dev}-{sn}\r\n"
        f"From: <sip:{dev}@3402000000>;tag=4242SIPpTag{sn}\r\n"
        f"To: <{SERVER}>\r\n"
        f"Call-ID: ka-{dev}-{sn}@{HOST}\r\n"
        "CSeq: 20 MESSAGE\r\nContent-Type: Application/MANSCDP+xml\r\nMax-Forwards: 70\r\n"
        f"User-Agent: SIPp GB28181 test\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


async def run_phase(runner: SipRunner, rec: Recorder, datagrams: list[bytes], expect: int, port: int) -> float:
    """Feed every datagram, wait until each has its final answer, return µs per message."""
    rec.sent.clear()
    addr = (HOST, port)
    feed = runner._on_datagram
    t0 = time.process_time()
    for data in datagrams:
        feed(data, addr, rec)  # type: ignore[arg-type]
    deadline = time.monotonic() + 120
    while len(rec.sent) < len(datagrams) and time.monotonic() < deadline:  # group commits answer later
        await asyncio.sleep(0 if len(rec.sent) < len(datagrams) // 2 else 0.0005)
    elapsed = time.process_time() - t0
    statuses = {d[8:11] for d in rec.sent}
    expect_code = str(expect).encode()
    if len(rec.sent) != len(datagrams) or statuses != {expect_code}:
        raise SystemExit(f"phase expected {len(datagrams)} x {expect}, got {len(rec.sent)} {statuses}")
    return 1e6 * elapsed / len(datagrams)


async def one_run(
    n: int, profile: str | None, sort: str = "tottime", store: str = "memory", fast: bool = True
) -> dict[str, float]:
    tmp = tempfile.mkdtemp(prefix="hotpath-")
    cfg = Config(
        sip=SipConfig(password="12345678", qop=True, fast_lane=fast),
        registry=RegistryConfig(f"{tmp}/x.db"),
        catalog=CatalogConfig(sync_on_register=False),
    )
    registry = MemoryStore() if store == "memory" else SqliteStore(f"{tmp}/x.db")
    if isinstance(registry, SqliteStore):
        await registry.open()
    platform = Platform(cfg, Secrets("12345678", "tok", b"s" * 32, Path(tmp) / "s.json"), registry)
    await platform.devices.start()
    tune_gc()  # as gb28181 serve does after start-up
    rec = Recorder()
    runner = SipRunner(platform.endpoint, platform.handle)
    runner._udp.append(rec)  # type: ignore[arg-type]
    platform.runner = runner
    devs = [f"340200000013{i:08d}" for i in range(n)]
    port = 25170
    figures: dict[str, float] = {}
    prof = cProfile.Profile() if profile else None

    async def phase(name: str, datagrams: list[bytes], expect: int) -> None:
        if prof and name == profile:
            prof.enable()
        figures[name] = await run_phase(runner, rec, datagrams, expect, port)
        if prof and name == profile:
            prof.disable()

    await phase("register-challenge", [register(d, port, 1) for d in devs], 401)
    challenges = [parse_message(d).headers.get("www-authenticate") for d in rec.sent]  # type: ignore[union-attr]
    auths = [
        register(d, port, 2, DigestClient(d, "12345678").authorization(c or "", "REGISTER", SERVER))
        for d, c in zip(devs, challenges, strict=True)
    ]
    await phase("register-auth", auths, 200)
    await phase("keepalive", [keepalive(d, port, 1) for d in devs], 200)
    await platform.devices.stop()
    if isinstance(registry, SqliteStore):
        await registry.close()
    if prof:
        pstats.Stats(prof).sort_stats(sort).print_stats(45)
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=8_000, help="at most 10,000: the group committer's queue bound")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", choices=["register-challenge", "register-auth", "keepalive"])
    ap.add_argument("--no-uvloop", action="store_true")
    ap.add_argument("--store", choices=["memory", "sqlite"], default="memory", help="sqlite: the serve default")
    ap.add_argument("--no-fast", action="store_true", help="[sip] fast_lane = false: the full parser for everything")
    ap.add_argument("--sort", default="tottime", help="cProfile sort key with --profile (tottime, cumulative)")
    args = ap.parse_args()
    if not args.no_uvloop:
        import uvloop

        uvloop.install()
    best: dict[str, float] = {}
    for _ in range(1 if args.profile else args.repeat):
        figures = asyncio.run(one_run(args.devices, args.profile, args.sort, args.store, not args.no_fast))
        for k, v in figures.items():
            best[k] = min(best.get(k, v), v)
    reg = best["register-challenge"] + best["register-auth"]
    print(f"{'phase':<20} {'µs/msg':>8} {'msgs/s':>9}")
    for k, v in best.items():
        print(f"{k:<20} {v:8.1f} {1e6 / v:9.0f}")
    print(f"{'REGISTER call':<20} {reg:8.1f} {1e6 / reg:9.0f}  (challenge + authenticated REGISTER)")


if __name__ == "__main__":
    main()
