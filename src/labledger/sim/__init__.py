"""The simulated testbed behind `labledger demo` and the tests."""

from labledger.sim.campaign import DESCRIPTION, SHOTS, STRUCTURE, build, record_history
from labledger.sim.testbed import DAQ, Shot, wiring, write_shot, write_shots

__all__ = [
    "DAQ",
    "DESCRIPTION",
    "SHOTS",
    "STRUCTURE",
    "Shot",
    "build",
    "record_history",
    "wiring",
    "write_shot",
    "write_shots",
]
