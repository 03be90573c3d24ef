"""Transaction timer settings (RFC 3261 §17, Table 4; RFC 6026 §8.4 for L and M)."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimerConfig:
    t1: float = 0.5  # RTT estimate
    t2: float = 4.0  # maximum retransmit interval for non-INVITE requests and INVITE responses
    t4: float = 5.0  # maximum time a message remains in the network
    timer_d: float = 32.0  # ICT wait for response retransmissions (unreliable transports)

    def __post_init__(self) -> None:
        # A zero T1 or T2 would retransmit in a busy loop (the intervals start at T1 and cap at T2).
        if not (self.t1 > 0 and self.t2 > 0):
            raise ValueError(f"T1 and T2 must be positive, not {self.t1!r} and {self.t2!r}")
        if not (self.t4 >= 0 and self.timer_d >= 0):
            raise ValueError("T4 and timer D must not be negative")

    @property
    def b(self) -> float:  # also F, H, J, L, M
        return 64 * self.t1


DEFAULT_TIMERS = TimerConfig()
