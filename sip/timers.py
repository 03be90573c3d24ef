"""Transaction timer settings (RFC 3261 §17, Table 4; RFC 6026 §8.4 for L and M)."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimerConfig:
    t1: float = 0.5  # RTT estimate
    t2: float = 4.0  # maximum retransmit interval for non-INVITE requests and INVITE responses
    t4: float = 5.0  # maximum time a message remains in the network
    timer_d: float = 32.0  # ICT wait for response retransmissions (unreliable transports)

    @property
    def b(self) -> float:  # also F, H, J, L, M
        return 64 * self.t1


DEFAULT_TIMERS = TimerConfig()
