"""Run `gb28181 serve` as a real process for end-to-end tests, and talk to it through the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.conftest import PYTHON, REPO, free_port, run_tool


@dataclass
class Server:
    tmp: Path
    sip_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=lambda: free_port(socket.SOCK_STREAM))
    extra: str = ""  # whole extra sections
    # lines for [catalog]: SIPp devices do not answer catalog queries, so tests opt in to the automatic sync
    catalog_extra: str = "sync_on_register = false"
    sip_extra: str = ""  # lines for [sip]
    proc: asyncio.subprocess.Process | None = None
    log_path: Path | None = None

    @property
    def db(self) -> Path:
        return self.tmp / "gb28181.db"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def password(self) -> str:
        return json.loads((self.tmp / "gb28181.db.secrets.json").read_text())["password"]

    def write_config(self) -> Path:
        path = self.tmp / "config.toml"
        path.write_text(
            f"""
[sip]
listen = ["udp://127.0.0.1:{self.sip_port}", "tcp://127.0.0.1:{self.sip_port}"]
{self.sip_extra}
[registry]
database = "{self.db}"
[admin]
listen = "127.0.0.1:{self.admin_port}"
[catalog]
{self.catalog_extra}
{self.extra}
"""
        )
        return path

    async def start(self, timeout: float = 30.0) -> None:
        cfg = self.write_config()
        self.log_path = self.tmp / f"serve-{int(time.time() * 1000)}.log"
        log = open(self.log_path, "wb")  # noqa: SIM115  (kept open for the process's lifetime)
        self.proc = await asyncio.create_subprocess_exec(
            PYTHON,
            "-m",
            "cli",
            "serve",
            "--config",
            str(cfg),
            cwd=str(REPO),
            stdout=log,
            stderr=log,
            stdin=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.admin_port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise AssertionError(f"server did not start in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path and self.log_path.exists() else ""

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode or 0

    async def cli(self, *args: str) -> object:
        rc, out, err = await run_tool(
            PYTHON, "-m", "cli", *args, "--admin", self.admin, "--db", str(self.db), "--json", timeout=30
        )
        assert rc == 0, f"gb28181 {' '.join(args)} failed ({rc}): {err}"
        return json.loads(out)

    async def devices(self) -> dict[str, dict]:
        rows = await self.cli("devices")
        assert isinstance(rows, list)
        return {row["id"]: row for row in rows}

    async def wait_for(self, predicate, timeout: float = 20.0, what: str = "condition"):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = await self.devices()
            if predicate(last):
                return last
            await asyncio.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}; last state: {json.dumps(last)[:2000]}\n{self.log()}")

    def integrity(self) -> str:
        with sqlite3.connect(self.db) as conn:
            return conn.execute("PRAGMA integrity_check").fetchone()[0]
