"""Shared helpers for end-to-end tests over real loopback sockets."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

from gb28181.simulator.ports import free_port

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).with_name("scenarios")


def require_tool(name: str) -> str:
    """The path of an external peer. Missing in CI is a failure, not a skip: CI installs it."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (.ci/run installs it)")
        pytest.skip(f"{name} is not installed")
    return path


def require_module(name: str) -> None:
    try:
        __import__(name)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"python module {name} is not installed")
        pytest.skip(f"python module {name} is not installed")


def write_users(path: Path, count: int, password: str = "12345678", start: int = 1) -> list[str]:
    ids = [f"3402000000132{i:07d}" for i in range(start, start + count)]
    path.write_text("SEQUENTIAL\n" + "".join(f"{i};{password}\n" for i in ids))
    return ids


async def run_tool(*args: str, timeout: float = 120.0, cwd: Path | None = None) -> tuple[int, str, str]:
    """Run a subprocess without blocking the event loop (the server under test shares it). Bounded."""
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        cwd=str(cwd or REPO),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        return -9, out.decode(errors="replace"), err.decode(errors="replace")
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


PYTHON = sys.executable


def sipp_command(
    port: int, transport: str, count: int, rate: int, *extra: str, local: int | None = None, timeout: int = 90
) -> list[str]:
    """A bounded SIPp run against 127.0.0.1:``port`` (``-m count``, ``-timeout``). Pass the same ``local`` port to
    scenarios of one device population, as real devices keep theirs (a new port looks like a NAT move)."""
    local = local or free_port(socket.SOCK_STREAM if transport.startswith("t") else socket.SOCK_DGRAM)
    return [
        require_tool("sipp"), f"127.0.0.1:{port}", "-i", "127.0.0.1", "-p", str(local), "-t", transport,
        "-m", str(count), "-r", str(rate), "-timeout", f"{timeout}s", "-nostdin", "-max_socket", "100",
        "-buff_size", "4194304", *extra,
    ]  # fmt: skip
