"""The device side of registration and liveness (GB/T 28181-2022 §9.1.2, §9.6) as a transition table.

States: ``off`` (no power), ``registering`` (a REGISTER in flight), ``registered``, ``backoff`` (waiting to try
again). Inputs are what the network or the clock says; each (state, input) names the next state and one action.
A pair missing from the table is an explicit ignore (a late answer after a power cut, say) and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    OFF = "off"
    REGISTERING = "registering"
    REGISTERED = "registered"
    BACKOFF = "backoff"


class Input(StrEnum):
    POWER_ON = "power-on"
    POWER_OFF = "power-off"
    OK = "ok"  # 200 to REGISTER
    CHALLENGE = "challenge"  # 401/407 that we can answer (first, or stale=true)
    TOO_BRIEF = "too-brief"  # 423 with Min-Expires (RFC 3261 §10.2.8)
    REJECTED = "rejected"  # any other final answer, or a challenge to our own credentials
    FAILED = "failed"  # no answer (timer F) or transport error
    REFRESH_DUE = "refresh-due"  # the registration nears its expiry
    RETRY_DUE = "retry-due"
    KEEPALIVE_REFUSED = "keepalive-refused"  # 403/401/404 to a keepalive: the platform forgot us
    KEEPALIVE_LOST = "keepalive-lost"  # HeartBeatCount keepalives in a row unanswered


class Action(StrEnum):
    SEND_REGISTER = "send-register"  # a fresh REGISTER (no credentials)
    SEND_AUTHORIZED = "send-authorized"  # the REGISTER again, answering the challenge
    SEND_NEW_REGISTRATION = "send-new-registration"  # forget the old binding: new Call-ID (after a reboot/loss)
    REGISTERED = "registered"  # arm refresh and keepalive timers
    WAIT = "wait"  # arm the retry timer
    SILENCE = "silence"  # cancel every timer, answer nothing


TABLE: dict[tuple[State, Input], tuple[State, Action]] = {
    (State.OFF, Input.POWER_ON): (State.REGISTERING, Action.SEND_NEW_REGISTRATION),
    (State.REGISTERING, Input.CHALLENGE): (State.REGISTERING, Action.SEND_AUTHORIZED),
    (State.REGISTERING, Input.TOO_BRIEF): (State.REGISTERING, Action.SEND_REGISTER),
    (State.REGISTERING, Input.OK): (State.REGISTERED, Action.REGISTERED),
    (State.REGISTERING, Input.REJECTED): (State.BACKOFF, Action.WAIT),
    (State.REGISTERING, Input.FAILED): (State.BACKOFF, Action.WAIT),
    (State.REGISTERED, Input.REFRESH_DUE): (State.REGISTERING, Action.SEND_REGISTER),
    (State.REGISTERED, Input.KEEPALIVE_REFUSED): (State.REGISTERING, Action.SEND_NEW_REGISTRATION),
    (State.REGISTERED, Input.KEEPALIVE_LOST): (State.REGISTERING, Action.SEND_NEW_REGISTRATION),
    (State.BACKOFF, Input.RETRY_DUE): (State.REGISTERING, Action.SEND_NEW_REGISTRATION),
}
for _state in (State.REGISTERING, State.REGISTERED, State.BACKOFF):
    TABLE[(_state, Input.POWER_OFF)] = (State.OFF, Action.SILENCE)


@dataclass(frozen=True)
class Step:
    state: State
    action: Action | None  # None: the input is ignored in this state


def step(state: State, event: Input) -> Step:
    found = TABLE.get((state, event))
    if found is None:
        return Step(state, None)
    return Step(*found)


@dataclass(frozen=True)
class Timing:
    """When to refresh and retry: refresh at 80 % of the granted expiry but at least 10 s before it (real devices
    refresh early), retry after ``retry_base`` doubling to ``retry_max`` while the platform refuses or is away."""

    retry_base: float = 5.0
    retry_max: float = 60.0

    @staticmethod
    def refresh_after(granted: int) -> float:
        return max(1.0, min(granted * 0.8, granted - 10.0))

    def retry_after(self, failures: int) -> float:
        return min(self.retry_max, self.retry_base * (2 ** max(0, failures - 1)))
