"""Guard against brute force and floods: digest-failure lockouts and per-(source, ID) rate limits. Sans-IO.

Everything is keyed on (source IP, device ID), never on the source alone: many devices behind one NAT and a
registered lower platform share an address with others and must not be locked out or starved by a neighbour
(issue 9). Time is passed in (monotonic seconds); tables are bounded.

- Lockout: ``max_failures`` failed digests (wrong password or unknown user) within ``failure_window`` lock the
  key for ``lockout_base`` seconds, doubling with each further lockout (exponential backoff) up to
  ``lockout_max``. A locked key's REGISTERs with credentials are refused as a wrong password would be (403),
  so the answer tells a guesser nothing, not even that the right password arrived. A success clears the key.
- Rate limits: a token bucket per key for REGISTER and for MESSAGE (RFC 3261 §21.5.4: 503 with Retry-After).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Key = tuple[str, str]  # (source IP, device ID)


@dataclass(frozen=True)
class GuardSettings:
    """``[guard]`` in the config."""

    max_failures: int = 5  # failed digests per (source, ID) within failure_window before a lockout; 0: never lock
    failure_window: float = 300.0
    lockout_base: float = 60.0  # first lockout; doubles per further lockout of the same key
    lockout_max: float = 3600.0
    register_rate: float = 2.0  # REGISTERs per second per (source, ID), sustained; 0: no limit
    register_burst: int = 20
    message_rate: float = 50.0  # MESSAGEs per second per (source, ID), sustained; 0: no limit
    message_burst: int = 200
    max_entries: int = 200_000  # per table: memory stays bounded whatever the sources


@dataclass
class _Strikes:
    failures: int = 0
    first: float = 0.0  # start of the current failure window
    lockouts: int = 0  # lockouts so far: the next one lasts lockout_base * 2**lockouts
    until: float = 0.0  # locked while now < until
    last: float = 0.0


@dataclass(frozen=True)
class Lockout:
    source: str
    device_id: str
    until: float  # monotonic
    seconds: float  # how long this lockout lasts
    failures: int  # failed digests that led to it
    count: int  # lockouts of this key so far


@dataclass
class _Bucket:
    tokens: float
    last: float
    refused: int = 0  # refusals in a row (the first of a run is logged, not every one)


class TokenBuckets:
    """One token bucket per key; ``take`` returns 0 when allowed, else the seconds until a token is back."""

    def __init__(self, rate: float, burst: int, max_entries: int) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.max_entries = max_entries
        self._buckets: dict[Key, _Bucket] = {}
        self.first_refusal = False  # whether the last refusing ``take`` was the first of its run for that key

    def take(self, key: Key, now: float) -> float:
        if self.rate <= 0:
            return 0.0
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= self.max_entries:
                self._prune(now)
            b = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            b.tokens = min(float(self.burst), b.tokens + (now - b.last) * self.rate)
            b.last = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            b.refused = 0
            return 0.0
        b.refused += 1
        self.first_refusal = b.refused == 1
        return (1.0 - b.tokens) / self.rate

    def _prune(self, now: float) -> None:
        """Drop buckets that have refilled (they hold no state worth keeping); if that frees nothing, the oldest
        half (a flood of spoofed keys must not grow memory)."""
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.last) * self.rate >= self.burst]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self.max_entries:
            for k in list(self._buckets)[: self.max_entries // 2 + 1]:
                del self._buckets[k]

    def __len__(self) -> int:
        return len(self._buckets)


class Guard:
    def __init__(self, settings: GuardSettings | None = None) -> None:
        self.settings = s = settings or GuardSettings()
        self._strikes: dict[Key, _Strikes] = {}
        self.register_buckets = TokenBuckets(s.register_rate, s.register_burst, s.max_entries)
        self.message_buckets = TokenBuckets(s.message_rate, s.message_burst, s.max_entries)

    # ------------------------------------------------------------------ lockouts
    def locked(self, source: str, device_id: str, now: float) -> float:
        """Seconds left of this key's lockout, 0 when it is not locked."""
        st = self._strikes.get((source, device_id))
        return max(0.0, st.until - now) if st is not None else 0.0

    def failed(self, source: str, device_id: str, now: float) -> Lockout | None:
        """Record a failed digest; returns the Lockout when this failure starts one (log it)."""
        s = self.settings
        key = (source, device_id)
        st = self._strikes.get(key)
        if st is None:
            if len(self._strikes) >= s.max_entries:
                self._prune(now)
            st = self._strikes[key] = _Strikes(first=now)
        st.last = now
        if now < st.until:  # already locked: the platform refuses before verifying; count nothing more
            return None
        if now - st.first > s.failure_window:
            st.failures, st.first = 0, now
        st.failures += 1
        if s.max_failures <= 0 or st.failures < s.max_failures:
            return None
        seconds = min(s.lockout_max, s.lockout_base * 2 ** min(st.lockouts, 32))
        st.lockouts += 1
        st.until = now + seconds
        lockout = Lockout(source, device_id, st.until, seconds, st.failures, st.lockouts)
        st.failures, st.first = 0, now
        return lockout

    def succeeded(self, source: str, device_id: str) -> None:
        """A correct digest from this key: its failures and backoff are forgotten."""
        self._strikes.pop((source, device_id), None)

    def lockouts(self, now: float) -> list[Lockout]:
        """Keys locked now, longest remaining first (for operators)."""
        out = [
            Lockout(k[0], k[1], st.until, st.until - now, st.failures, st.lockouts)
            for k, st in self._strikes.items()
            if st.until > now
        ]
        return sorted(out, key=lambda lo: -lo.until)

    def _prune(self, now: float) -> None:
        """Forget keys neither locked nor failing recently; if the table is still full, the oldest half."""
        s = self.settings
        horizon = max(s.failure_window, s.lockout_max)
        stale = [k for k, st in self._strikes.items() if st.until <= now and now - st.last > horizon]
        for k in stale:
            del self._strikes[k]
        if len(self._strikes) >= s.max_entries:
            for k in sorted(self._strikes, key=lambda k: self._strikes[k].last)[: s.max_entries // 2 + 1]:
                del self._strikes[k]

    # ------------------------------------------------------------------ rate limits
    def register_wait(self, source: str, device_id: str, now: float) -> float:
        """0 when this REGISTER may go on, else seconds until the key has a token again."""
        return self.register_buckets.take((source, device_id), now)

    def message_wait(self, source: str, device_id: str, now: float) -> float:
        return self.message_buckets.take((source, device_id), now)


def retry_after(wait: float) -> str:
    """A Retry-After value (RFC 3261 §20.33: whole seconds) for a wait, at least 1."""
    return str(max(1, math.ceil(wait)))
