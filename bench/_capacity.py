"""Shared by capacity_hold.py and capacity_storm.py: the platform under test and the device load generator.

The generator is written here on raw UDP sockets (hand-built SIP, ``hashlib`` digest with qop=auth; none of our
stack), several processes, each one socket on a fixed local port serving a slice of the devices, so that steady
state never looks like a NAT move. Every device logs, in wall-clock seconds (the platform's event log uses the
same clock, same machine): when it started registering, when its authenticated REGISTER got 200, and each
keepalive's scheduled time, send time and answer time. Requests are retransmitted as RFC 3261 §17.1.2 says
(timer E from 0.5 s doubling to 4 s; timer F gives up at 32 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from _env import ROOT

from gb28181.simulator.ports import free_port

DOMAIN = "3402000000"
SERVER_ID = "34020000002000000001"
PASSWORD = "capacity-bench-1"
T1, T2, TIMER_F = 0.5, 4.0, 32.0
EVENT_KEEPALIVE_TIMEOUT = 4  # registry.models.EVENT_CODES["keepalive-timeout"]


def device_id(i: int) -> str:
    return f"{DOMAIN}132{i:07d}"  # type 132: IP camera (GB/T 28181 App. D)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# ----------------------------------------------------------------------------- the platform under test
@dataclass
class Platform:
    """`gb28181 serve` on a fresh SQLite file in ``workdir``; ``restart()`` keeps the file and the ports."""

    workdir: Path
    extra_sip: str = ""
    extra_config: str = ""  # whole sections appended to serve.toml
    sip_port: int = 0
    admin_port: int = 0
    proc: subprocess.Popen | None = None
    token: str = ""

    @property
    def db(self) -> Path:
        return self.workdir / "capacity.db"

    def start(self) -> float:
        """Start (first call picks free ports); returns the seconds until the admin API answered."""
        if not self.sip_port:
            self.sip_port, self.admin_port = free_port(), free_port()
        config = self.workdir / "serve.toml"
        config.write_text(
            f'[sip]\nlisten = ["udp://127.0.0.1:{self.sip_port}"]\npassword = "{PASSWORD}"\n{self.extra_sip}'
            f'[registry]\ndatabase = "{self.db}"\n[admin]\nlisten = "127.0.0.1:{self.admin_port}"\n'
            "[catalog]\nsync_on_register = false\nsync_interval = 0\n" + self.extra_config
        )
        err = open(self.workdir / "serve.stderr", "a")  # noqa: SIM115 - closed with the process
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--config", str(config), "--log-level", "warning"],
            cwd=ROOT, stdout=err, stderr=err, start_new_session=True,
        )  # fmt: skip
        err.close()
        while time.monotonic() < t0 + 300:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gb28181 serve exited {self.proc.returncode}; see {self.workdir}/serve.stderr")
            secrets_file = Path(f"{self.db}.secrets.json")
            if secrets_file.exists():
                self.token = json.loads(secrets_file.read_text())["token"]
                with contextlib.suppress(OSError, ValueError, urllib.error.URLError):
                    if self.api("/health", timeout=2) is not None:
                        return time.monotonic() - t0
            time.sleep(0.2)
        raise RuntimeError("gb28181 serve did not answer within 300 s")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def api(self, path: str, timeout: float = 30) -> object:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.admin_port}{path}", headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict:
        try:
            return self.api("/api/stats")  # type: ignore[return-value]
        except (OSError, ValueError, urllib.error.URLError):
            return {}

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def events(self, code: int) -> list[tuple[float, str, str]]:
        """(wall seconds, subject, reason) of one event code, read from the SQLite file after ``stop()``."""
        with contextlib.closing(sqlite3.connect(self.db)) as con:
            rows = con.execute("SELECT ts, subject, reason FROM events WHERE code = ? ORDER BY ts", (code,))
            return [(ts / 1000, subject, reason) for ts, subject, reason in rows]

    def event_counts(self) -> dict[int, int]:
        with contextlib.closing(sqlite3.connect(self.db)) as con:
            return dict(con.execute("SELECT code, COUNT(*) FROM events GROUP BY code"))


class Sampler:
    """Samples a process's CPU and RSS once a second in a thread-free way: call ``tick()`` from the main loop."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss_kib = 0

    def tick(self) -> int:
        rss = proc_kib(self.pid, "VmRSS")
        self.peak_rss_kib = max(self.peak_rss_kib, rss)
        return rss


# ----------------------------------------------------------------------------- the load generator
@dataclass
class Plan:
    """What one generator process does. Times are wall-clock seconds (time.time())."""

    worker: int
    first: int  # device indices [first, first + count)
    count: int
    total: int  # devices over all workers (keepalive phases are spread over all of them)
    target: tuple[str, int]
    port: int  # fixed local port
    out: str  # result JSON path
    register_start: float = 0.0
    register_spread: float = 0.0  # device i starts registering at register_start + spread * i / total
    hold_start: float = 0.0  # first keepalive round; 0: no keepalives
    hold_seconds: float = 0.0
    interval: float = 60.0
    deadline: float = 0.0  # everything stops here


@dataclass
class Txn:
    dev: int
    kind: str  # "reg" | "ka"
    data: bytes
    first: float
    sends: int = 1
    round: int = 0  # keepalive round
    handle: asyncio.TimerHandle | None = None


_STATUS = re.compile(rb"^SIP/2\.0 (\d{3})")
_BRANCH = re.compile(rb"branch=([^;,\s]+)")
_NONCE = re.compile(rb'nonce="([^"]+)"')
_REALM = re.compile(rb'realm="([^"]+)"')
_RETRY = re.compile(rb"(?im)^Retry-After[ \t]*:[ \t]*(\d+)")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@dataclass
class Result:
    worker: int
    first: int
    count: int
    t_return: list[float | None] = field(default_factory=list)  # first REGISTER sent
    t_online: list[float | None] = field(default_factory=list)  # 200 to the authenticated REGISTER
    reg_retrans: int = 0
    reg_503: int = 0
    reg_fail: int = 0  # transactions that timed out or ended in another final response
    ka_scheduled: int = 0
    ka_skipped: int = 0  # due while the device was not registered
    ka_sent: int = 0
    ka_answered: int = 0
    ka_retrans: int = 0
    ka_failed: int = 0
    ka_rtt: list[float] = field(default_factory=list)
    ka_round_rtt: list[int] = field(default_factory=list)  # the round of each ka_rtt entry
    ka_rounds: dict[int, list[int]] = field(default_factory=dict)  # round -> [sent, answered, retransmissions]
    ka_lag_p50: float = 0.0
    ka_lag_p99: float = 0.0
    ka_lag_max: float = 0.0
    answered: dict[int, list[float]] = field(default_factory=dict)  # device -> keepalive answer times
    stray: int = 0  # responses to no open transaction (duplicates after a retransmission)
    cpu_seconds: float = 0.0
    peak_rss_kib: int = 0


class Generator(asyncio.DatagramProtocol):
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.res = Result(plan.worker, plan.first, plan.count)
        self.res.t_return = [None] * plan.count
        self.res.t_online = [None] * plan.count
        self.txns: dict[bytes, Txn] = {}
        self.seq = 0
        self.cseq = [0] * plan.count
        self.transport: asyncio.DatagramTransport | None = None
        self.lags: list[float] = []
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)

    # -- sending
    def _branch(self) -> str:
        self.seq += 1
        return f"z9hG4bKcap{self.plan.worker}x{self.seq}"

    def _request(self, j: int, method: str, branch: str, extra: str = "", body: bytes = b"") -> bytes:
        dev = device_id(self.plan.first + j)
        self.cseq[j] += 1
        host, port = "127.0.0.1", self.plan.port
        call_id = f"reg{dev}w{self.plan.worker}" if method == "REGISTER" else branch
        to = dev if method == "REGISTER" else SERVER_ID
        return (
            f"{method} sip:{SERVER_ID}@{DOMAIN} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};rport;branch={branch}\r\n"
            f"From: <sip:{dev}@{DOMAIN}>;tag=t{dev[-7:]}\r\nTo: <sip:{to}@{DOMAIN}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {self.cseq[j]} {method}\r\nMax-Forwards: 70\r\n"
            f"User-Agent: capacity-bench\r\n{extra}"
            + ("Content-Type: Application/MANSCDP+xml\r\n" if body else "")
            + f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    def _send(self, txn: Txn, branch: bytes) -> None:
        self.txns[branch] = txn
        assert self.transport is not None
        self.transport.sendto(txn.data, self.plan.target)
        txn.handle = asyncio.get_running_loop().call_later(T1, self._retransmit, branch, T1)

    def _retransmit(self, branch: bytes, waited: float) -> None:
        txn = self.txns.get(branch)
        if txn is None or self.closing:
            return
        if time.time() - txn.first >= TIMER_F:
            del self.txns[branch]
            self._final(txn, 408, b"")
            return
        assert self.transport is not None
        self.transport.sendto(txn.data, self.plan.target)
        txn.sends += 1
        if txn.kind == "reg":
            self.res.reg_retrans += 1
        else:
            self.res.ka_retrans += 1
            self.res.ka_rounds[txn.round][2] += 1
        nxt = min(waited * 2, T2)
        txn.handle = asyncio.get_running_loop().call_later(nxt, self._retransmit, branch, nxt)

    def register(self, j: int, extra: str = "") -> None:
        if self.closing:
            return
        now = time.time()
        if self.res.t_return[j] is None:
            self.res.t_return[j] = now
        branch = self._branch()
        contact = f"Contact: <sip:{device_id(self.plan.first + j)}@127.0.0.1:{self.plan.port}>\r\nExpires: 3600\r\n"
        self._send(Txn(j, "reg", self._request(j, "REGISTER", branch, contact + extra), now), branch.encode())

    def keepalive(self, j: int, rnd: int) -> None:
        dev = device_id(self.plan.first + j)
        branch = self._branch()
        body = (
            f'<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n'
            f"<SN>{self.seq}</SN>\r\n<DeviceID>{dev}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
        ).encode()
        self.res.ka_sent += 1
        self.res.ka_rounds.setdefault(rnd, [0, 0, 0])[0] += 1
        txn = Txn(j, "ka", self._request(j, "MESSAGE", branch, body=body), time.time(), round=rnd)
        self._send(txn, branch.encode())

    # -- receiving
    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        m = _STATUS.match(data)
        if m is None:
            self._answer_request(data, addr)
            return
        status = int(m.group(1))
        b = _BRANCH.search(data)
        if status < 200 or b is None:
            return
        txn = self.txns.pop(b.group(1), None)
        if txn is None:
            self.res.stray += 1
            return
        if txn.handle is not None:
            txn.handle.cancel()
        self._final(txn, status, data)

    def _final(self, txn: Txn, status: int, data: bytes) -> None:
        now, j = time.time(), txn.dev
        if txn.kind == "ka":
            if status == 200:
                self.res.ka_answered += 1
                self.res.ka_rtt.append(now - txn.first)
                self.res.ka_round_rtt.append(txn.round)
                self.res.ka_rounds[txn.round][1] += 1
                self.res.answered.setdefault(j, []).append(round(now, 3))
            else:
                self.res.ka_failed += 1
            return
        loop = asyncio.get_running_loop()
        if status == 200:
            self.res.t_online[j] = now
        elif status == 401:
            nonce, realm = _NONCE.search(data), _REALM.search(data)
            if nonce is None or realm is None:
                self.res.reg_fail += 1
                return
            dev, uri = device_id(self.plan.first + j), f"sip:{SERVER_ID}@{DOMAIN}"
            ha1 = _md5(f"{dev}:{realm.group(1).decode()}:{PASSWORD}")
            cnonce, nc = f"{j:08x}", "00000001"
            digest = _md5(f"{ha1}:{nonce.group(1).decode()}:{nc}:{cnonce}:auth:{_md5(f'REGISTER:{uri}')}")
            self.register(j, (
                f'Authorization: Digest username="{dev}", realm="{realm.group(1).decode()}", '
                f'nonce="{nonce.group(1).decode()}", uri="{uri}", response="{digest}", algorithm=MD5, qop=auth, '
                f'nc={nc}, cnonce="{cnonce}"\r\n'
            ))  # fmt: skip
        elif status == 503:
            # RFC 3261 §21.5.4: try again after Retry-After (GB/T 28181 devices wait; this one honours it)
            self.res.reg_503 += 1
            retry = _RETRY.search(data)
            loop.call_later(int(retry.group(1)) if retry else 5, self.register, j)
        else:
            self.res.reg_fail += 1
            loop.call_later(5, self.register, j)  # a device retries its registration

    def _answer_request(self, data: bytes, addr: tuple[str, int]) -> None:
        """The platform asked something (nothing expected with catalog sync off): 200, so it never waits."""
        head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        keep = [
            h
            for h in head[1:]
            if h.split(b":", 1)[0].strip().lower()
            in (b"via", b"from", b"to", b"call-id", b"cseq", b"v", b"f", b"t", b"i")
        ]
        if self.transport is not None:
            self.transport.sendto(b"SIP/2.0 200 OK\r\n" + b"\r\n".join(keep) + b"\r\nContent-Length: 0\r\n\r\n", addr)

    # -- the plan
    async def run(self) -> None:
        plan = self.plan
        await asyncio.gather(self._register_loop(), self._keepalive_loop())
        while self.txns and time.time() < plan.deadline:
            await asyncio.sleep(0.1)
        if plan.register_start and not plan.hold_start:  # a storm: wait for every device or the deadline
            while time.time() < plan.deadline and any(t is None for t in self.res.t_online):
                await asyncio.sleep(0.1)
        self.closing = True

    async def _register_loop(self) -> None:
        plan = self.plan
        if not plan.register_start:
            return
        j = 0  # due times increase with the index
        while j < plan.count and time.time() < plan.deadline:
            now = time.time()
            while j < plan.count and plan.register_start + plan.register_spread * (plan.first + j) / plan.total <= now:
                self.register(j)
                j += 1
            await asyncio.sleep(0.005)

    async def _keepalive_loop(self) -> None:
        """Round k of device i falls due at hold_start + interval x (k + i/total); a device not registered yet
        skips its turn (counted)."""
        plan = self.plan
        if not plan.hold_start:
            return
        rounds = max(1, int(plan.hold_seconds // plan.interval))
        i, n = 0, rounds * plan.count
        while i < n and time.time() < plan.deadline:
            now = time.time()
            while i < n:
                k, j = divmod(i, plan.count)
                due = plan.hold_start + plan.interval * (k + (plan.first + j) / plan.total)
                if due > now:
                    break
                self.res.ka_scheduled += 1
                if self.res.t_online[j] is None:
                    self.res.ka_skipped += 1
                else:
                    self.lags.append(now - due)
                    self.keepalive(j, k)
                i += 1
            await asyncio.sleep(0.005)


async def _worker_main(plan: Plan) -> None:
    loop = asyncio.get_running_loop()
    gen = Generator(plan)
    transport, _ = await loop.create_datagram_endpoint(lambda: gen, local_addr=("127.0.0.1", plan.port))
    try:
        await gen.run()
    finally:
        transport.close()
    res = gen.res
    res.ka_lag_p50, res.ka_lag_p99 = pct(gen.lags, 0.5), pct(gen.lags, 0.99)
    res.ka_lag_max = max(gen.lags, default=0.0)
    usage = os.times()
    res.cpu_seconds = usage.user + usage.system
    res.peak_rss_kib = proc_kib(os.getpid(), "VmHWM")
    Path(plan.out).write_text(json.dumps(asdict(res)))


def worker_entry(plan: Plan) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    try:
        import uvloop
    except ImportError:
        asyncio.run(_worker_main(plan))
    else:
        uvloop.run(_worker_main(plan))


def load_results(plans: list[Plan]) -> list[Result]:
    out = []
    for plan in plans:
        data = json.loads(Path(plan.out).read_text())
        data["answered"] = {int(k): v for k, v in data["answered"].items()}
        data["ka_rounds"] = {int(k): v for k, v in data["ka_rounds"].items()}
        out.append(Result(**data))
    return out
