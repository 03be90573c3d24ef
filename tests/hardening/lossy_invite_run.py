"""Run inside a network namespace whose loopback drops a share of the UDP to and from the SIP port and of the RTP to
the platform's media ports (see test_lossy_netns.py): `gb28181 serve` with the embedded receiver, `gb28181 simulate`
with one UDP IPC (its own SIP stack, which retransmits as RFC 3261 says), then several live plays with `gb28181
play --seconds N --output FILE`: INVITE / 200 / ACK, RTP, BYE, each over the lossy link. Prints one JSON line of
results. Usage: python -m tests.hardening.lossy_invite_run TMPDIR SIP_PORT RTP_BASE RTP_LAST PLAYS SECONDS"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tests.e2e.conftest import PYTHON, run_tool
from tests.e2e.serve_helpers import Server
from tests.e2e.test_simulator_e2e import PASSWORD, Sim

CAMERA = "tianwang-ipc"  # a UDP street IPC: one 131 channel


async def main(tmp: Path, port: int, rtp_base: int, rtp_last: int, plays: int, seconds: float) -> dict[str, object]:
    # Timer A starts at T1 = 500 ms and doubles: a lost INVITE, 200 or BYE costs 0.5-2 s, well inside these bounds.
    srv = Server(
        tmp, sip_port=port, sip_extra=f'password = "{PASSWORD}"\nquery_timeout = 20',
        catalog_extra="sync_on_register = true\ninter_packet_timeout = 10",
        extra=f'[media]\nrtp_ports = "{rtp_base}-{rtp_last}"\nbind = "127.0.0.1"\nadvertise = "127.0.0.1"\n'
              "invite_timeout = 20\nno_media_timeout = 10\n",
    )  # fmt: skip
    await srv.start()
    sim = Sim(srv, tmp, "--devices", "1", "--profile", CAMERA)
    out: dict[str, object] = {"plays": []}
    try:
        await sim.start()
        devices = await srv.wait_for(lambda d: any(r["status"] == "online" for r in d.values()), 60, "the IPC online")
        (device_id,) = devices
        channel = ""
        for _ in range(240):  # the catalog sync on register, retransmitted as needed; bounded (60 s)
            rows = await srv.cli("channels", "--device", device_id)
            if isinstance(rows, list) and rows:
                channel = rows[0]["id"]
                break
            await asyncio.sleep(0.25)
        out["channel"] = channel
        for n in range(plays):
            target = tmp / f"live-{n}.ps"
            rc, text, err = await run_tool(
                PYTHON, "-m", "cli", "play", channel, "--seconds", str(seconds), "--output", str(target), "--json",
                "--admin", srv.admin, "--db", str(srv.db), timeout=120,
            )  # fmt: skip
            out["plays"].append(json.loads(text) if rc == 0 else {"rc": rc, "error": err[-800:]})  # type: ignore[union-attr]
        out["sessions_after"] = await srv.cli("sessions")
        stats = await srv.cli("stats")
        out["sip"] = stats["sip"]  # type: ignore[index]
        out["counters"] = {k: v for k, v in stats["counters"].items() if k.startswith(("invite", "media", "session"))}  # type: ignore[index]
        summary = await sim.quit()
        out["device_stats"] = summary["stats"]
    finally:
        await sim.kill()
        await srv.stop()
        out["log_tail"] = srv.log()[-2000:]
        out["sim_log_tail"] = sim.log()[-1500:]
    return out


if __name__ == "__main__":
    a = sys.argv[1:]
    result = asyncio.run(main(Path(a[0]), int(a[1]), int(a[2]), int(a[3]), int(a[4]), float(a[5])))
    print(json.dumps(result, ensure_ascii=False))
