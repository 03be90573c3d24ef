"""Child process of the kill -9 test: acknowledges registrations the way the registrar will (group commit), printing
each device ID only after its ``submit`` returned, until it is killed.

python -m tests.registry.crash_child DB_PATH FIRST_NUMBER SYNCHRONOUS
"""

from __future__ import annotations

import asyncio
import itertools
import sys

from registry.batching import GroupCommitter
from registry.models import Registration
from registry.sqlite import SqliteStore

WORKERS = 32


async def main(path: str, first: int, synchronous: str) -> None:
    store = SqliteStore(path, synchronous=synchronous)
    await store.open()
    committer: GroupCommitter[Registration] = GroupCommitter(store.save_registrations, max_batch=200)
    numbers = itertools.count(first)

    async def worker() -> None:
        while True:
            device_id = f"3402000000132{next(numbers):07d}"
            await committer.submit(Registration(device_id, at=1000.0, expires=3600, address="10.0.0.1:5060"))
            sys.stdout.write(device_id + "\n")
            sys.stdout.flush()

    print("ready", flush=True)
    await asyncio.gather(*(worker() for _ in range(WORKERS)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
