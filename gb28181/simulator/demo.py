"""`gb28181 demo`: a platform and a small county of simulated devices on one machine, in about a minute.

A composition root (ARCHITECTURE.md rule 6): it starts `gb28181 serve` as a subprocess on a temporary database and
free ports, runs a mix of simulated devices in this process (three Xueliang village NVRs, a town's department
camera, a city NVR and a city IPC), waits for their registrations and catalogs through the admin API (the CLI's
``--json`` output), records one camera for a few seconds with `gb28181 play CHANNEL --seconds N --output FILE`, and
prints a summary. Nothing is faked: a step that cannot be done (no ``play`` command in this build, a device that
never comes online) is said plainly and the exit status is non-zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gb28181.simulator.inventory import Inventory
from gb28181.simulator.ports import free_port
from gb28181.simulator.profile import parse_profile
from gb28181.simulator.runtime import SimConfig, Simulator

REPO = Path(__file__).resolve().parents[2]
SERVER_ID = "34020000002000000001"
ID_PREFIX = "3402000000"
PASSWORD = "demo-pass-1"
# a few villages, a town, the city (fixtures/profiles)
MIX = {"xueliang-village-nvr": 3, "department-camera": 1, "tianwang-nvr": 1, "tianwang-ipc": 1}
PLAY_PROFILE = "tianwang-ipc"  # the camera recorded
EXIT_OK, EXIT_FAILED, EXIT_NO_PLAY = 0, 1, 3


class DemoError(RuntimeError):
    pass


@dataclass
class Demo:
    workdir: Path
    seconds: int = 5
    timeout: float = 40.0  # for registrations and catalogs
    sip_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    server: asyncio.subprocess.Process | None = None
    sim: Simulator | None = None
    sim_task: asyncio.Task[dict[str, Any]] | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def db(self) -> Path:
        return self.workdir / "gb28181.db"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def say(self, text: str) -> None:
        print(text, flush=True)

    # ------------------------------------------------------------------ steps
    async def start_platform(self) -> None:
        config = self.workdir / "config.toml"
        config.write_text(
            f'[sip]\nid = "{SERVER_ID}"\nlisten = ["udp://127.0.0.1:{self.sip_port}", '
            f'"tcp://127.0.0.1:{self.sip_port}"]\npassword = "{PASSWORD}"\n'
            f'[registry]\ndatabase = "{self.db}"\n[admin]\nlisten = "127.0.0.1:{self.admin_port}"\n'
            "[catalog]\nsync_on_register = true\n",
            encoding="utf-8",
        )
        log = open(self.workdir / "serve.log", "wb")  # noqa: SIM115 - the child keeps it; closed below
        try:
            self.server = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cli", "serve", "--config", str(config), cwd=str(REPO), stdout=log,
                stderr=log, stdin=asyncio.subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        finally:
            log.close()
        deadline = time.monotonic() + 30
        for _ in range(600):
            if self.server.returncode is not None:
                raise DemoError(f"gb28181 serve exited with {self.server.returncode}; see {self.workdir}/serve.log")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.admin_port)
                writer.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    why = f"gb28181 serve did not open its admin API in 30 s; see {self.workdir}/serve.log"
                    raise DemoError(why) from None
                await asyncio.sleep(0.1)
        self.say(f"platform: SIP udp+tcp 127.0.0.1:{self.sip_port}, admin {self.admin}, database {self.db}")

    async def start_devices(self) -> list[Inventory]:
        mix = parse_profile("demo", {"description": "villages, a town and the city", "mix": MIX})
        n = sum(MIX.values())
        cfg = SimConfig(server_host="127.0.0.1", server_port=self.sip_port, devices=n, password=PASSWORD,
                        id_prefix=ID_PREFIX, server_id=SERVER_ID, stdin=False, progress=False, rate=50.0)  # fmt: skip
        self.sim = await Simulator.create(cfg, mix)
        self.sim_task = asyncio.get_running_loop().create_task(self.sim.run())
        population = [s.device.inv for s in self.sim.slots]
        self.say(f"devices: {n} simulated ({', '.join(f'{v} {k}' for k, v in MIX.items())})")
        return population

    async def cli(self, *args: str, timeout: float = 60.0, json_out: bool = True) -> tuple[int, Any, str]:
        """``gb28181 ARGS --admin URL --db DB [--json]`` as a subprocess: (exit status, parsed stdout, stderr)."""
        extra = ["--json"] if json_out else []
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli", *args, "--admin", self.admin, "--db", str(self.db), *extra, cwd=str(REPO),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return -1, None, f"timed out after {timeout:.0f} s"
        text = out.decode("utf-8", "replace")
        parsed: Any = text
        if json_out and proc.returncode == 0:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        return proc.returncode or 0, parsed, err.decode("utf-8", "replace").strip()

    async def wait_online(self, population: list[Inventory]) -> list[dict[str, Any]]:
        want = {inv.device_id for inv in population}
        rows: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.timeout
        for _ in range(10_000):
            rc, rows_, _err = await self.cli("devices")
            rows = rows_ if rc == 0 and isinstance(rows_, list) else []
            online = {r["id"] for r in rows if r.get("status") == "online"}
            if want <= online:
                return rows
            if time.monotonic() > deadline:
                missing = sorted(want - online)
                raise DemoError(f"{len(missing)} of {len(want)} devices not online after {self.timeout:.0f} s: "
                                f"{', '.join(missing[:5])}")  # fmt: skip
            await asyncio.sleep(0.5)
        return rows

    async def wait_catalogs(self, population: list[Inventory]) -> tuple[list[dict[str, Any]], bool]:
        expected = sum(len(inv.channels) for inv in population)
        rows: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.timeout
        for _ in range(10_000):
            rc, rows_, _ = await self.cli("channels")
            rows = rows_ if rc == 0 and isinstance(rows_, list) else rows
            if len(rows) >= expected:
                return rows, True
            if time.monotonic() > deadline:
                return rows, False
            await asyncio.sleep(0.5)
        return rows, False

    async def play(self, channel_id: str, output: Path) -> tuple[bool, str]:
        """Record through the platform's own CLI; (done, why not)."""
        rc, _, err = await self.cli("play", "--help", json_out=False, timeout=30)
        if rc != 0:
            return False, ("this build has no `gb28181 play` command (the platform's INVITE/media work is not "
                           "merged yet), so the demo cannot record a channel")  # fmt: skip
        rc, _, err = await self.cli("play", channel_id, "--seconds", str(self.seconds), "--output", str(output),
                                    json_out=False, timeout=self.seconds + 60)  # fmt: skip
        if rc != 0:
            return False, f"gb28181 play {channel_id} failed (exit {rc}): {err[-500:]}"
        if not output.is_file() or output.stat().st_size == 0:
            return False, f"gb28181 play {channel_id} exited 0 but wrote nothing to {output}"
        return True, ""

    async def stop(self) -> None:
        if self.sim is not None:
            self.sim.stop.set()
        if self.sim_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.sim_task, 20)
        if self.server is not None and self.server.returncode is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.server.wait(), 20)
            except TimeoutError:
                self.server.kill()
                await self.server.wait()


async def _probe(path: Path) -> str:
    """ffprobe's verdict on the recording, or why there is none (ffprobe is optional)."""
    if shutil.which("ffprobe") is None:
        return "ffprobe not installed: not probed"
    proc = await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-show_entries", "format=format_name,duration:stream=codec_name", "-of", "json",
        str(path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    if proc.returncode != 0:
        return f"ffprobe could not read it: {err.decode(errors='replace').strip()[:200]}"
    info = json.loads(out)
    codecs = ",".join(s.get("codec_name", "?") for s in info.get("streams", []))
    fmt = info.get("format", {})
    return f"ffprobe: {codecs} in {fmt.get('format_name', '?')}, {float(fmt.get('duration', 0) or 0):.1f} s"


async def run_demo(workdir: Path | None = None, keep: bool = False, seconds: int = 5) -> int:
    t0 = time.monotonic()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="gb28181-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    demo = Demo(workdir, seconds=seconds)
    status = EXIT_OK
    try:
        await demo.start_platform()
        population = await demo.start_devices()
        devices = await demo.wait_online(population)
        demo.say(f"registered: {len(devices)} devices online after {time.monotonic() - t0:.1f} s")
        channels, complete = await demo.wait_catalogs(population)
        expected = sum(len(inv.channels) for inv in population)
        demo.say(f"catalogs: {len(channels)} of {expected} channels after {time.monotonic() - t0:.1f} s"
                 + ("" if complete else " (INCOMPLETE)"))  # fmt: skip
        if not complete:
            status = EXIT_FAILED
        camera = next(inv for inv in population if inv.profile.name == PLAY_PROFILE).videos[0]
        recording = workdir / f"{camera.id}.ps"
        played, why = await demo.play(camera.id, recording)
        _summary(demo, population, devices, channels, camera.id, recording if played else None)
        if played:
            demo.say(f"  {await _probe(recording)}")
        else:
            demo.say(f"\nNOT RECORDED: {why}")
            status = status or EXIT_NO_PLAY
        demo.say(f"\ndemo took {time.monotonic() - t0:.1f} s; work directory {workdir}")
        if keep:
            demo.say("--keep: platform and devices keep running; Ctrl-C stops them")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
            await stop.wait()
    except DemoError as exc:
        print(f"gb28181 demo: {exc}", file=sys.stderr, flush=True)
        status = EXIT_FAILED
    finally:
        await demo.stop()
    return status


def _summary(demo: Demo, population: list[Inventory], devices: list[dict[str, Any]], channels: list[dict[str, Any]],
             camera: str, recording: Path | None) -> None:
    profile_of = {inv.device_id: inv.profile.name for inv in population}
    online = Counter(profile_of.get(r["id"], "?") for r in devices if r.get("status") == "online")
    per_profile = Counter(profile_of.get(r.get("device_id", ""), "?") for r in channels)
    demo.say("\nsummary")
    demo.say(f"  devices online: {sum(online.values())} of {len(population)}")
    for name in sorted(set(profile_of.values())):
        demo.say(f"    {name:<24} {online[name]} online, {per_profile[name]} channels")
    if recording is not None:
        demo.say(f"  recording: {recording} ({recording.stat().st_size:,} bytes, {demo.seconds} s of {camera})")
    else:
        demo.say(f"  recording: none (channel {camera})")
    flags = f"--admin {demo.admin} --db {demo.db}"
    demo.say("  look further (while it runs, --keep):")
    for cmd in ("devices", "channels", f"device show {population[0].device_id}", "events --limit 20", "stats",
                f"play {camera} --seconds 5 --output clip.ps"):  # fmt: skip
        demo.say(f"    gb28181 {cmd} {flags}")
