"""The simulated testbed behind `labledger demo` and the tests."""

from labledger.sim.campaign import DESCRIPTION, SHOTS, build, record_history
from labledger.sim.testbed import DAQ, Shot, wiring, write_shot, write_shots

__all__ = [
    "DAQ",
    "DESCRIPTION",
    "SHOTS",
    "Shot",
    "build",
    "record_history",
    "wiring",
    "write_shot",
    "write_shots",
]
