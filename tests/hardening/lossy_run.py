"""Run inside a network namespace whose loopback drops a share of the UDP to and from the SIP port (see
test_lossy_netns.py): `gb28181 serve`, SIPp devices registering, a SIPp NVR answering a multi-packet catalog
sync. Prints one JSON line of results. Usage: python -m tests.hardening.lossy_run TMPDIR SIP_PORT DEVICES"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from tests.e2e.conftest import PYTHON, run_tool, sipp_command, write_users
from tests.e2e.serve_helpers import Server

SCENARIOS = Path(__file__).with_name("scenarios")
NVR = "34020000001180000001"


async def main(tmp: Path, port: int, count: int) -> dict[str, object]:
    # Catalog packets may need a few retransmissions (T1 500 ms doubling): a 10 s inter-packet timeout.
    srv = Server(tmp, sip_port=port, sip_extra='password = "12345678"',
                 catalog_extra="sync_on_register = false\ninter_packet_timeout = 10")  # fmt: skip
    await srv.start()
    out: dict[str, object] = {}
    try:
        ids = write_users(tmp / "users.csv", count)
        started = time.monotonic()
        rc, _, err = await run_tool(
            *sipp_command(
                port,
                "u1",
                count,
                50,
                "-sf",
                str(SCENARIOS / "sipp-register-auth.xml"),
                "-inf",
                str(tmp / "users.csv"),
                timeout=120,
            ),
            timeout=180,
        )
        out["register_rc"] = rc
        out["register_seconds"] = round(time.monotonic() - started, 1)
        out["register_err"] = err[-600:]
        devices = await srv.devices()
        out["registered"] = sum(1 for i in ids if devices.get(i, {}).get("status") == "online")
        (tmp / "nvr.csv").write_text(f"SEQUENTIAL\n{NVR};12345678\n")
        nvr = asyncio.create_task(run_tool(
            *sipp_command(port, "u1", 1, 1, "-sf", str(SCENARIOS / "sipp-device-registers-and-waits.xml"), "-inf",
                          str(tmp / "nvr.csv"), "-oocsf", str(SCENARIOS / "sipp-nvr-catalog-answers.xml"),
                          "-trace_msg", "-trace_err", timeout=90),
            timeout=120, cwd=tmp,
        ))  # fmt: skip
        await srv.wait_for(lambda d: d.get(NVR, {}).get("status") == "online", 30, "the NVR registered")
        rc, cat_out, err = await run_tool(PYTHON, "-m", "cli", "catalog", "sync", NVR, "--wait", "--json",
                                          "--admin", srv.admin, "--db", str(srv.db), timeout=90)  # fmt: skip
        out["catalog_rc"] = rc
        out["catalog"] = json.loads(cat_out) if rc == 0 else err[-600:]
        out["channels"] = [c["id"] for c in await srv.cli("channels", "--device", NVR)]  # type: ignore[union-attr]
        stats = await srv.cli("stats")
        out["sip"] = stats["sip"]  # type: ignore[index]
        nvr.cancel()
    finally:
        await srv.stop()
        out["log_tail"] = srv.log()[-1500:]
    return out


if __name__ == "__main__":
    result = asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
    print(json.dumps(result))
