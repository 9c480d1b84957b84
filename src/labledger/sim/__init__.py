"""The simulated testbed behind `labledger demo` and the tests."""

from labledger.sim.testbed import DAQ, WIRING, Shot, write_shot, write_shots

__all__ = ["DAQ", "WIRING", "Shot", "write_shot", "write_shots"]
