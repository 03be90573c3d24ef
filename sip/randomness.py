"""Random bytes for tags, branches, Call-IDs and nonces without one getrandom(2) call each.

All come from the OS CSPRNG (os.urandom), read 4 KiB at a time: at thousands of messages a second the
per-call syscall was ~6% of the REGISTER path. Not thread-safe by design: the stack runs on one loop.
"""

from __future__ import annotations

import os

_POOL_SIZE = 4096


class _Pool:
    __slots__ = ("buf", "pos")

    def __init__(self) -> None:
        self.buf = b""
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n > _POOL_SIZE:
            return os.urandom(n)
        pos = self.pos
        if pos + n > len(self.buf):
            self.buf, pos = os.urandom(_POOL_SIZE), 0
        self.pos = pos + n
        return self.buf[pos : pos + n]


_pool = _Pool()


def random_bytes(n: int) -> bytes:
    return _pool.take(n)


def random_hex(n: int) -> str:
    """``n`` random bytes as ``2n`` lower-case hex digits."""
    return _pool.take(n).hex()
