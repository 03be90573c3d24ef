"""Simulated GB/T 28181 devices for tests, benchmarks and demos (``gb28181 simulate``).

profile.py (behaviour from fixtures/profiles), inventory.py (IDs and catalog trees), registration.py (the
registration table), answers.py (MANSCDP answers), device.py (one device, sans-IO), control.py (the control
channel's commands), runtime.py (the composition root: sockets, timers, progress, summary).
"""

from __future__ import annotations

from typing import Any

from gb28181.simulator.profile import Profile, ProfileError, load_profile, profile_names
from gb28181.simulator.runtime import SimConfig, Simulator, SimulatorError

__all__ = [
    "Profile",
    "ProfileError",
    "SimConfig",
    "Simulator",
    "SimulatorError",
    "load_profile",
    "profile_names",
    "simulate",
]


async def simulate(cfg: SimConfig) -> dict[str, Any]:
    """Run the devices until ``cfg.duration`` passes, ``quit`` or a signal; return the summary."""
    sim = await Simulator.create(cfg)
    return await sim.run()
