"""Disk full and database locked, end to end over real sockets (issue 9): raw-socket devices (tests/e2e/raw_device.py)
talk UDP to a platform run by ``gb28181.server.run`` on 127.0.0.1, the operator reads ``gb28181 stats`` (the CLI, a
subprocess) and ``/metrics``.

The platform runs in a thread of this process, with its own event loop, because a full disk is reproduced with
``PRAGMA max_page_count`` (SqliteStore.limit_pages): SQLite then returns SQLITE_FULL exactly as on a full disk, but
the limit holds only for the connection that set it, so it must be set on the server's own connection; a second
connection (another process) cannot do it. No config knob exists for it: ``run(store=...)`` takes the store the test
built. A locked database is the real thing: another process holds ``BEGIN EXCLUSIVE``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import sys
import threading
import urllib.request
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from gb28181 import config as config_mod
from gb28181.server import run
from registry.models import event_code
from registry.sqlite import SqliteStore
from tests.e2e.conftest import PYTHON, REPO, free_port, run_tool
from tests.e2e.raw_device import RawDevice

KEEPALIVE = (
    '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>1</SN>\r\n'
    "<DeviceID>{id}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
)


class Device(RawDevice):
    """A raw device that keeps the headers of the last response (Retry-After, Warning)."""

    last: dict[str, str] = {}

    async def _response(self, timeout: float = 10.0) -> tuple[int, dict[str, str]]:
        status, fields = await super()._response(timeout)
        self.last = fields
        return status, fields

    async def keepalive(self) -> int:
        return await self.message(KEEPALIVE.format(id=self.device_id).encode())


class ThreadedPlatform:
    """``gb28181.server.run`` in a thread with its own loop; ``call`` runs a coroutine there (on the server's
    store connection)."""

    def __init__(self, tmp: Path, busy_timeout: float = 5.0) -> None:
        self.tmp = tmp
        self.sip_port = free_port()
        self.admin_port = free_port(socket.SOCK_STREAM)
        self.db = tmp / "gb28181.db"
        (tmp / "config.toml").write_text(f"""
[sip]
listen = ["udp://127.0.0.1:{self.sip_port}"]
[registry]
database = "{self.db}"
[admin]
listen = "127.0.0.1:{self.admin_port}"
[catalog]
sync_on_register = false
""")
        self.cfg = config_mod.load(tmp / "config.toml")
        self.store = SqliteStore(self.db, busy_timeout=busy_timeout)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.rc: int | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._main, name="platform", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.rc = self.loop.run_until_complete(self._serve())
        self.loop.close()

    async def _serve(self) -> int:
        self._stop = asyncio.Event()
        ready = asyncio.Event()
        ready_task = asyncio.get_running_loop().create_task(ready.wait())
        ready_task.add_done_callback(lambda _t: self.ready.set())
        return await run(self.cfg, ready=ready, stop=self._stop, store=self.store)

    async def start(self) -> None:
        self.thread.start()
        assert await asyncio.to_thread(self.ready.wait, 30), "the platform did not start"

    async def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def stop(self) -> None:
        if self.thread.is_alive() and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
            await asyncio.to_thread(self.thread.join, 30)
        assert self.rc == 0

    @property
    def password(self) -> str:
        return json.loads((self.tmp / "gb28181.db.secrets.json").read_text())["password"]

    @property
    def token(self) -> str:
        return json.loads((self.tmp / "gb28181.db.secrets.json").read_text())["token"]

    async def device(self, device_id: str) -> Device:
        return await Device.start(device_id, self.password, ("127.0.0.1", self.sip_port))  # type: ignore[return-value]

    async def stats(self, *flags: str) -> str:
        admin = f"http://127.0.0.1:{self.admin_port}"
        rc, out, err = await run_tool(PYTHON, "-m", "cli", "stats", *flags, "--admin", admin, "--db", str(self.db),
                                      timeout=30)  # fmt: skip
        assert rc == 0, err
        return out

    async def metrics(self) -> str:
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}/metrics",
                                     headers={"Authorization": f"Bearer {self.token}"})  # fmt: skip
        return await asyncio.to_thread(lambda: urllib.request.urlopen(req, timeout=10).read().decode())

    async def wait_storage_ok(self) -> dict[str, Any]:
        for _ in range(60):  # bounded: the batches retry every second
            data = json.loads(await self.stats("--json"))
            if data["storage"]["state"] == "ok":
                return data
            await asyncio.sleep(0.5)
        raise AssertionError(f"storage did not recover: {data['storage']}")


def _dev(i: int) -> str:
    return f"3402000000132{i:07d}"


async def test_disk_full_refuses_registers_keeps_keepalives_and_recovers(tmp_path: Path) -> None:
    p = ThreadedPlatform(tmp_path)
    await p.start()
    devices: list[Device] = []
    try:
        first = await p.device(_dev(1))
        devices.append(first)
        assert await first.register() == 200
        await p.call(p.store.limit_pages(1))  # the file may not grow: a full disk from now on
        registered, refused = [first.device_id], None
        for i in range(2, 400):  # bounded: a 4 KiB page of the devices table holds a dozen rows
            dev = await p.device(_dev(i))
            devices.append(dev)
            status = await dev.register()
            if status == 503:
                refused = dev
                break
            assert status == 200
            registered.append(dev.device_id)
        assert refused is not None, "the database never filled"
        assert refused.last.get("retry-after") == "60"
        assert "registry storage full" in refused.last.get("warning", "")
        assert await refused.keepalive() == 403  # not registered: a 503 was never a 200
        for dev in devices[:3]:  # registered devices' keepalives are answered from memory
            if dev.device_id in registered:
                assert await dev.keepalive() == 200
        text = await p.stats()
        assert "storage: FAILING (full)" in text and "disk full" in text
        data = json.loads(await p.stats("--json"))
        assert data["storage"]["state"] == "full" and data["storage"]["errors"]["full"] >= 1
        assert data["counters"]["register:store-error"] >= 1
        metrics = await p.metrics()
        assert 'gb28181_storage_failing{kind="full"} 1' in metrics
        await p.call(p.store.limit_pages(1_000_000))  # space returns
        assert await refused.register() == 200
        registered.append(refused.device_id)
        data = await p.wait_storage_ok()  # the kept batches (events, keepalives) were written
        assert data["storage"]["episodes"] == 1
    finally:
        for dev in devices:
            dev.close()
        await p.stop()
    with sqlite3.connect(p.db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = dict(conn.execute("SELECT id, expires FROM devices").fetchall())
        code = event_code("registered")
        logged = {s for (s,) in conn.execute("SELECT subject FROM events WHERE code = ?", (code,))}
    assert all(rows.get(d, 0) > 0 for d in registered), "a registration answered 200 was lost"
    assert set(registered) <= logged, "events kept during the episode were not written after it"
    assert refused.device_id in rows


LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


async def test_database_locked_by_another_process_refuses_registers_then_recovers(tmp_path: Path) -> None:
    p = ThreadedPlatform(tmp_path, busy_timeout=1.0)
    await p.start()
    devices = [await p.device(_dev(i)) for i in (1, 2)]
    locker = None
    try:
        assert await devices[0].register() == 200
        locker = await asyncio.create_subprocess_exec(
            sys.executable, "-c", LOCKER, str(p.db), cwd=str(REPO),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert locker.stdout is not None and locker.stdin is not None
        assert (await asyncio.wait_for(locker.stdout.readline(), 20)).strip() == b"locked"
        assert await devices[1].register() == 503
        assert devices[1].last.get("retry-after") == "5"
        assert "registry database locked" in devices[1].last.get("warning", "")
        assert await devices[0].keepalive() == 200
        data = json.loads(await p.stats("--json"))
        assert data["storage"]["state"] == "busy" and data["storage"]["errors"]["busy"] >= 1
        locker.stdin.close()
        assert await asyncio.wait_for(locker.wait(), 20) == 0
        locker = None
        assert await devices[1].register() == 200
        await p.wait_storage_ok()
    finally:
        if locker is not None:
            locker.kill()
            await locker.wait()
        for dev in devices:
            dev.close()
        await p.stop()
    with sqlite3.connect(p.db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert {r[0] for r in conn.execute("SELECT id FROM devices WHERE expires > 0")} == {_dev(1), _dev(2)}

