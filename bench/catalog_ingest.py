#!/usr/bin/env python3
"""Catalog ingest of a 50,000-channel lower platform into `gb28181 serve` (issue 4, "Done means").

The lower platform is written here on raw sockets (asyncio transports, hashlib digest, hand-built SIP), not with
our stack: it registers with digest (qop=auth) to a `gb28181 serve` this script starts on a fresh SQLite file and
free loopback ports, asks the platform (admin API, ``POST /api/devices/ID/catalog?wait=1``) to sync its catalog,
answers the platform's Catalog query MESSAGE with 200 and then sends its catalog as serial Catalog Response
MESSAGEs (GB/T 28181-2022 Appendix M), each waiting for its 200 before the next:

- ``tcp``: SIP over one TCP connection (Content-Length framing, RFC 3261 §18.3), many items per MESSAGE;
- ``udp``: one item per MESSAGE, latency-bound: the per-packet round trip (MESSAGE sent -> 200 received) is
  reported as p50/p99.

The catalog is fixtures/manscdp/made/make_fixtures.py's big lower-platform tree (civil-code nodes, 215/216 groups,
multi-valued ParentID, GB2312 Chinese names) scaled to ``--channels`` cameras. Reported per mode: items/s from the
first catalog packet sent to the commit being visible (the admin API's wait returns after the store committed;
then `gb28181 channels --device ID --json` is run and its count checked), the platform's CPU over that interval
(% of one core, /proc/PID/stat) and its peak RSS (VmHWM). A fresh platform per mode. Figures go to
bench/RESULTS.md unless --no-record.

    python bench/catalog_ingest.py                       # both modes, 50,000 cameras
    python bench/catalog_ingest.py --mode tcp --per-packet 500
    python bench/catalog_ingest.py --channels 5000 --no-record
    python bench/catalog_ingest.py --mode tcp --syncs 2     # then a re-sync that updates every stored channel
    python bench/catalog_ingest.py --mode tcp --runs 5      # five fresh platforms; the verdict is the median
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import importlib.util
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _env import ROOT, append_results, machine

from gb28181.simulator.ports import free_port

SERVER_ID = "34020000002000000001"  # the platform's default ID (make_fixtures uses it as "our server")
DOMAIN = "3402000000"
PASSWORD = "bench-secret-1"
TCP_TARGET = 20_000  # items/s (issue 4)
TICK = 0.05  # polling step while waiting for the platform to start


def fixtures_module() -> ModuleType:
    path = ROOT / "fixtures" / "manscdp" / "made" / "make_fixtures.py"
    spec = importlib.util.spec_from_file_location("make_fixtures", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BenchError(Exception):
    pass


# ----------------------------------------------------------------------------- the platform under test
@dataclass
class Platform:
    workdir: Path
    sip_port: int = 0
    admin_port: int = 0
    proc: subprocess.Popen | None = None
    token: str = ""

    def start(self) -> None:
        try:
            self.sip_port, self.admin_port = free_port(), free_port()
        except RuntimeError as exc:
            raise BenchError(str(exc)) from None
        db = self.workdir / "ingest.db"
        config = self.workdir / "serve.toml"
        addr = f"127.0.0.1:{self.sip_port}"
        config.write_text(
            f'[sip]\nlisten = ["udp://{addr}", "tcp://{addr}"]\npassword = "{PASSWORD}"\n'
            f'[registry]\ndatabase = "{db}"\n[admin]\nlisten = "127.0.0.1:{self.admin_port}"\n'
            # the script starts the sync itself, so that it times it; 30 s of silence ends a sync as partial
            "[catalog]\nsync_on_register = false\ninter_packet_timeout = 30\n"
        )
        err = open(self.workdir / "serve.stderr", "w")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--config", str(config), "--log-level", "warning"],
            cwd=ROOT, stdout=err, stderr=err, start_new_session=True,
        )  # fmt: skip
        err.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"gb28181 serve exited {self.proc.returncode}; see {self.workdir}/serve.stderr")
            secrets_file = Path(f"{db}.secrets.json")
            if secrets_file.exists():
                with (
                    contextlib.suppress(OSError, ValueError),
                    socket.create_connection(("127.0.0.1", self.admin_port), timeout=0.5),
                ):
                    self.token = json.loads(secrets_file.read_text())["token"]
                    return
            time.sleep(TICK)
        raise BenchError("gb28181 serve did not start within 60 s")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def api(self, method: str, path: str, timeout: float = 600) -> tuple[int, object]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.admin_port}{path}", method=method,
            headers={"Authorization": f"Bearer {self.token}"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def channel_count(self, device_id: str) -> int:
        """What the operator sees: `gb28181 channels --device ID --json` (the CLI is the admin API's client)."""
        env = {**os.environ, "GB28181_ADMIN": f"http://127.0.0.1:{self.admin_port}", "GB28181_TOKEN": self.token}
        out = subprocess.run(
            [sys.executable, "-m", "cli", "channels", "--device", device_id, "--json"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if out.returncode != 0:
            raise BenchError(f"gb28181 channels failed: {out.stderr.strip()[:300]}")
        return len(json.loads(out.stdout))

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# ----------------------------------------------------------------------------- the raw-socket lower platform
def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@dataclass
class SipMessage:
    start: str
    headers: dict[str, str]  # lower-case name -> first value
    body: bytes

    @property
    def status(self) -> int:
        return int(self.start.split(" ", 2)[1]) if self.start.startswith("SIP/2.0 ") else 0


def parse(data: bytes) -> SipMessage:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return SipMessage(lines[0], headers, body)


@dataclass
class LowerPlatform:
    """One GB/T 28181 lower platform (type 200 ID) on one UDP socket or one TCP connection."""

    device_id: str
    transport: str  # "UDP" | "TCP"
    server: tuple[str, int]
    responses: asyncio.Queue[SipMessage] = field(default_factory=asyncio.Queue)
    requests: asyncio.Queue[SipMessage] = field(default_factory=asyncio.Queue)
    local: tuple[str, int] = ("127.0.0.1", 0)
    cseq: int = 1
    call_id: str = field(default_factory=lambda: secrets.token_hex(8))
    _udp: asyncio.DatagramTransport | None = None
    _writer: asyncio.StreamWriter | None = None
    _reader_task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        if self.transport == "UDP":
            outer = self

            class Proto(asyncio.DatagramProtocol):
                def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                    outer._incoming(data)

            self._udp, _ = await loop.create_datagram_endpoint(Proto, local_addr=("127.0.0.1", 0))
            self.local = self._udp.get_extra_info("sockname")[:2]
        else:
            reader, self._writer = await asyncio.open_connection(*self.server)
            self.local = self._writer.get_extra_info("sockname")[:2]
            self._reader_task = asyncio.create_task(self._read_tcp(reader))

    async def _read_tcp(self, reader: asyncio.StreamReader) -> None:
        """RFC 3261 §18.3 framing: headers up to the blank line, then Content-Length bytes of body."""
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if head.strip() == b"":
                    continue  # CRLF keepalives
                match = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*([0-9]+)", head)
                body = await reader.readexactly(int(match.group(1))) if match else b""
                self._incoming(head + body)

    def _incoming(self, data: bytes) -> None:
        msg = parse(data)
        if msg.status:
            self.responses.put_nowait(msg)
            return
        if not msg.start:
            return
        self.requests.put_nowait(msg)
        h = msg.headers
        # 200 to every request (RFC 3261 §8.2.6: Via, From, To + tag, Call-ID, CSeq copied)
        self.send(
            f"SIP/2.0 200 OK\r\nVia: {h['via']}\r\nFrom: {h['from']}\r\nTo: {h['to']};tag=lower1\r\n"
            f"Call-ID: {h['call-id']}\r\nCSeq: {h['cseq']}\r\nContent-Length: 0\r\n\r\n".encode()
        )

    def send(self, data: bytes) -> None:
        if self._udp is not None:
            self._udp.sendto(data, self.server)
        else:
            assert self._writer is not None
            self._writer.write(data)

    def request(self, method: str, extra: str = "", body: bytes = b"") -> bytes:
        self.cseq += 1
        host, port = self.local
        kind = "application/MANSCDP+xml" if body else ""
        return (
            f"{method} sip:{SERVER_ID}@{DOMAIN} SIP/2.0\r\n"
            f"Via: SIP/2.0/{self.transport} {host}:{port};rport;branch=z9hG4bK{secrets.token_hex(8)}\r\n"
            f"From: <sip:{self.device_id}@{DOMAIN}>;tag=lowertag\r\n"
            f"To: <sip:{self.device_id if method == 'REGISTER' else SERVER_ID}@{DOMAIN}>\r\n"
            f"Call-ID: {self.call_id if method == 'REGISTER' else secrets.token_hex(10)}\r\n"
            f"CSeq: {self.cseq} {method}\r\nMax-Forwards: 70\r\nUser-Agent: bench lower platform\r\n{extra}"
            + (f"Content-Type: {kind}\r\n" if kind else "")
            + f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def response(self, timeout: float = 30) -> SipMessage:
        return await asyncio.wait_for(self.responses.get(), timeout)

    async def register(self) -> None:
        host, port = self.local
        params = ";transport=tcp" if self.transport == "TCP" else ""
        contact = f"Contact: <sip:{self.device_id}@{host}:{port}{params}>\r\nExpires: 3600\r\n"
        self.send(self.request("REGISTER", contact))
        first = await self.response()
        if first.status != 401:
            raise BenchError(f"REGISTER: expected 401, got {first.start}")
        challenge = dict(re.findall(r'(\w+)="?([^",]+)"?', first.headers["www-authenticate"]))
        uri = f"sip:{SERVER_ID}@{DOMAIN}"
        ha1 = _md5(f"{self.device_id}:{challenge['realm']}:{PASSWORD}")
        ha2 = _md5(f"REGISTER:{uri}")
        cnonce, nc = secrets.token_hex(4), "00000001"
        digest = _md5(f"{ha1}:{challenge['nonce']}:{nc}:{cnonce}:auth:{ha2}")
        auth = (
            f'Authorization: Digest username="{self.device_id}", realm="{challenge["realm"]}", '
            f'nonce="{challenge["nonce"]}", uri="{uri}", response="{digest}", algorithm=MD5, qop=auth, '
            f'nc={nc}, cnonce="{cnonce}"\r\n'
        )
        self.send(self.request("REGISTER", contact + auth))
        second = await self.response()
        if second.status != 200:
            raise BenchError(f"REGISTER with digest: expected 200, got {second.start}")

    async def message(self, body: bytes, retransmit: float = 0.5, tries: int = 7) -> float:
        """One MESSAGE; waits for its final response and returns the round trip (s). Over UDP the request is
        retransmitted (same bytes, same branch) when no answer came, as RFC 3261 §17.1.2 does."""
        data = self.request("MESSAGE", body=body)
        t0 = time.perf_counter()
        for attempt in range(tries if self.transport == "UDP" else 1):
            self.send(data)
            try:
                resp = await self.response(retransmit * 2**attempt if self.transport == "UDP" else 60)
            except TimeoutError:
                continue
            if resp.status >= 200:
                if resp.status != 200:
                    raise BenchError(f"catalog packet refused: {resp.start}")
                return time.perf_counter() - t0
        raise BenchError("catalog packet not answered")

    def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()


# ----------------------------------------------------------------------------- one run
@dataclass
class Run:
    mode: str
    per_packet: int
    items: int = 0
    packets: int = 0
    seconds: float = 0.0
    send_seconds: float = 0.0  # first packet sent -> last packet's 200
    cpu_pct: float = 0.0
    cpu_seconds: float = 0.0
    load: str = ""  # 1-minute load average before -> after the run (the machine is shared)
    peak_rss_mib: float = 0.0
    rtts: list[float] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    listed: int = 0
    number: int = 1  # which of --runs (a fresh platform each)

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0

    @property
    def per_cpu_second(self) -> float:
        """Items per second of the platform's CPU (all its threads): what the rate would be with the platform
        alone on one core, whatever else loads the machine (SQLite's thread may overlap, so it is a bound)."""
        return self.items / self.cpu_seconds if self.cpu_seconds else 0.0

    def rtt(self, q: float) -> float:
        ordered = sorted(self.rtts)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


async def one_sync(
    run: Run, platform: Platform, lower: LowerPlatform, mf: ModuleType, channels: int, profile: str | None
) -> None:
    """Ask the platform to sync, answer its query with the whole catalog, wait for the commit; fills ``run``."""
    lower_id = lower.device_id
    loop = asyncio.get_running_loop()
    sync = loop.run_in_executor(None, platform.api, "POST", f"/api/devices/{lower_id}/catalog?wait=1")
    query = await asyncio.wait_for(lower.requests.get(), 30)
    sn_match = re.search(rb"<SN>\s*([0-9]+)\s*</SN>", query.body)
    if query.start.split(" ")[0] != "MESSAGE" or b"Catalog" not in query.body or sn_match is None:
        raise BenchError(f"expected the platform's Catalog query, got {query.start!r}")
    packets = list(mf.big_lower_platform(sn=int(sn_match.group(1)), channels=channels, per_packet=run.per_packet))
    run.items = len(mf.big_tree(channels))
    run.packets = len(packets)
    spy: subprocess.Popen | None = None
    if profile:
        spy = subprocess.Popen(
            ["py-spy", "record", "-p", str(platform.pid), "-f", "raw", "-r", "200", "-o", profile, "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.sleep(1.0)
    try:
        load0 = os.getloadavg()[0]
        cpu0, t0 = platform.cpu_seconds(), time.perf_counter()
        for body in packets:
            run.rtts.append(await lower.message(body))
        run.send_seconds = time.perf_counter() - t0
        status, summary = await sync
        t1 = time.perf_counter()
        cpu1 = platform.cpu_seconds()
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
    if status != 200 or not isinstance(summary, dict):
        raise BenchError(f"catalog sync answered {status}: {summary}")
    run.seconds, run.summary = t1 - t0, summary
    run.cpu_seconds = cpu1 - cpu0
    run.cpu_pct = 100 * run.cpu_seconds / run.seconds
    run.load = f"{load0:.1f} -> {os.getloadavg()[0]:.1f}"
    run.peak_rss_mib = platform.peak_rss_mib()
    run.listed = platform.channel_count(lower_id)
    if summary.get("state") != "complete" or run.listed != run.items:
        raise BenchError(f"sync {summary}; channels listed {run.listed}, expected {run.items}")


async def run_mode(
    mode: str, channels: int, per_packet: int, syncs: int, workdir: Path, profile: str | None
) -> list[Run]:
    """A fresh platform; ``syncs`` syncs of the same catalog in a row (the second and later update every
    stored channel: a periodic re-sync)."""
    mf = fixtures_module()
    platform = Platform(workdir)
    platform.start()
    lower = LowerPlatform(mf.BIG_LOWER, mode.upper(), ("127.0.0.1", platform.sip_port))
    runs = []
    try:
        await lower.connect()
        await lower.register()
        for i in range(syncs):
            run = Run(mode if i == 0 else f"{mode} re-sync {i}", per_packet)
            await one_sync(run, platform, lower, mf, channels, f"{profile}-{i + 1}.txt" if profile else None)
            runs.append(run)
    finally:
        lower.close()
        platform.stop()
    return runs


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def report(runs: list[Run], channels: int) -> str:
    lines = [
        f"Lower platform: {channels:,} cameras plus the tree's civil-code nodes, system node, 215/216 groups and "
        f"alarm inputs ({runs[0].items:,} catalog items, GB2312, Chinese names); raw-socket peer in "
        "bench/catalog_ingest.py, one fresh `gb28181 serve` (uvloop, SQLite synchronous=FULL) per mode. items/s: "
        "first catalog packet sent -> commit visible (admin API sync wait returned; `gb28181 channels --device "
        "--json` count checked after). CPU: the platform's (all threads), % of one core over that interval, and "
        "items per CPU-second of it (robust to other load on the shared machine); RSS: its peak.",
        "",
        "| mode | run | items/MESSAGE | MESSAGEs | items | seconds | items/s | send phase s | RTT p50/p99 ms "
        "| platform CPU | items per CPU-s | peak RSS MiB | listed | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r.mode} | {r.number} | {r.per_packet} | {r.packets:,} | {r.items:,} | {r.seconds:.2f} | {r.rate:,.0f} "
            f"| {r.send_seconds:.2f} | {r.rtt(0.5):.2f}/{r.rtt(0.99):.2f} | {r.cpu_pct:.0f}% | {r.per_cpu_second:,.0f} "
            f"| {r.peak_rss_mib:.0f} | {r.listed:,} | {r.load} |"
        )
    tcp = [r for r in runs if r.mode == "tcp"]
    if tcp:
        rate = median([r.rate for r in tcp])
        verdict = "PASS" if rate >= TCP_TARGET else "FAIL"
        of = f"median of {len(tcp)} runs: {', '.join(f'{r.rate:,.0f}' for r in tcp)}" if len(tcp) > 1 else "1 run"
        per_cpu = median([r.per_cpu_second for r in tcp])
        lines.append(
            f"\nTCP target ≥ {TCP_TARGET:,} items/s: **{verdict}** ({rate:,.0f} items/s, {of}; "
            f"{per_cpu:,.0f} items per platform CPU-s)."
        )
    lines.append("\nSync summaries: " + "; ".join(f"{r.mode} `{json.dumps(r.summary)}`" for r in runs))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", default="tcp,udp", help="tcp, udp or both (default tcp,udp)")
    ap.add_argument("--channels", type=int, default=50_000, help="cameras in the catalog (default 50,000)")
    ap.add_argument("--per-packet", type=int, default=200, help="items per MESSAGE over TCP (default 200)")
    ap.add_argument("--syncs", type=int, default=1, help="syncs in a row per mode; 2 adds a re-sync (default 1)")
    ap.add_argument("--runs", type=int, default=1, help="fresh platforms per mode; the TCP verdict is their median")
    ap.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    ap.add_argument("--profile", metavar="PREFIX", help="py-spy the platform during each sync: PREFIX-MODE-N.txt")
    args = ap.parse_args()
    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    if not modes or set(modes) - {"tcp", "udp"}:
        ap.error("--mode takes tcp, udp or tcp,udp")
    if not 1 <= args.channels <= 500_000 or not 1 <= args.per_packet <= 2000 or not 1 <= args.syncs <= 5:
        ap.error("--channels 1-500000, --per-packet 1-2000, --syncs 1-5")
    if not 1 <= args.runs <= 9:
        ap.error("--runs 1-9")
    info = machine()
    runs = []
    with tempfile.TemporaryDirectory(prefix="catalog-ingest-") as tmp:
        for mode, number in [(m, n) for m in modes for n in range(1, args.runs + 1)]:
            workdir = Path(tmp) / f"{mode}-{number}"
            workdir.mkdir()
            per_packet = args.per_packet if mode == "tcp" else 1
            profile = f"{args.profile}-{mode}" + (f"-run{number}" if args.runs > 1 else "") if args.profile else None
            print(f"{mode}: {args.channels:,} cameras, {per_packet} item(s) per MESSAGE (run {number}) ...", flush=True)
            try:
                done = asyncio.run(run_mode(mode, args.channels, per_packet, args.syncs, workdir, profile))
            except BenchError as exc:
                stderr = (workdir / "serve.stderr").read_text()[-2000:] if (workdir / "serve.stderr").exists() else ""
                print(f"{mode}: FAILED: {exc}\n{stderr}", file=sys.stderr)
                return 2
            for run in done:
                run.number = number
                print(
                    f"  {run.mode}: {run.items:,} items in {run.seconds:.2f} s = {run.rate:,.0f} items/s; "
                    f"RTT p50 {run.rtt(0.5):.2f} ms p99 {run.rtt(0.99):.2f} ms; CPU {run.cpu_pct:.0f}% "
                    f"({run.per_cpu_second:,.0f} items per CPU-s); peak RSS {run.peak_rss_mib:.0f} MiB; "
                    f"load {run.load}",
                    flush=True,
                )
            runs += done
    text = report(runs, args.channels)
    print(text)
    if not args.no_record:
        append_results(f"catalog_ingest ({', '.join(modes)}; {args.channels:,} cameras)", text, info)
    tcp = [r.rate for r in runs if r.mode == "tcp"]
    return 1 if tcp and median(tcp) < TCP_TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
