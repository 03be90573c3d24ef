"""Brute force with an independent attacker, SIPVicious `svcrack`, against `gb28181 serve` over UDP: its wordlist
holds the device's real password after 30 wrong ones. With lockout off (the control run) it finds the password;
with the guard's lockout on it does not, and the lockout is logged and shown by `gb28181 lockouts`. The rate
limit is off in both runs so that the lockout alone is measured."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.e2e.conftest import free_port, require_tool, run_tool
from tests.e2e.serve_helpers import Server

DEVICE = "34020000001320000001"
PASSWORD = "12345678"


@pytest.mark.parametrize("max_failures", [0, 5])
async def test_svcrack_finds_the_password_only_without_lockout(tmp_path: Path, max_failures: int) -> None:
    svcrack = require_tool("sipvicious_svcrack")
    server = Server(tmp_path, sip_extra=f'password = "{PASSWORD}"',
                    extra=f"[guard]\nmax_failures = {max_failures}\nregister_rate = 0\n")  # fmt: skip
    await server.start()
    try:
        words = tmp_path / "words.txt"
        words.write_text("".join(f"guess{i:02d}\n" for i in range(30)) + f"{PASSWORD}\nlast-try\n")
        _, out, err = await run_tool(
            svcrack, "-u", DEVICE, "-d", str(words), "-p", str(server.sip_port), "-b", "127.0.0.1",
            "-P", str(free_port(socket.SOCK_DGRAM)), "-t", "0.05", "127.0.0.1", timeout=120, cwd=tmp_path,
        )  # fmt: skip
        found = f"| {DEVICE} | {PASSWORD} |" in out
        lockouts = await server.cli("lockouts")
        assert isinstance(lockouts, list)
        if max_failures == 0:
            assert found, out[-1500:] + err[-1500:]  # the control: the wordlist and the attack are real
            assert lockouts == []
        else:
            assert not found and PASSWORD not in out, out[-1500:]
            assert "found nothing" in err.lower() or "found nothing" in out.lower(), out[-800:] + err[-800:]
            assert [(r["device_id"], r["source"]) for r in lockouts] == [(DEVICE, "127.0.0.1")]
            log = server.log()
            assert "failed digests; locked out for 60 s" in log and "403, locked out for" in log
            stats = await server.cli("stats")
            assert json.loads(json.dumps(stats))["counters"]["guard:lockout"] == 1
    finally:
        await server.stop()
