"""The machine: testbed description, configuration history, calibrations, signal resolution."""

from labledger.machine.calibration import Calibration, CalibrationError, Calibrations
from labledger.machine.configuration import Change, ConfigHistory, Configuration, Diff
from labledger.machine.description import Description, DescriptionError
from labledger.machine.model import Component, Diagnostic, Machine, NotWired

__all__ = [
    "Calibration",
    "CalibrationError",
    "Calibrations",
    "Change",
    "Component",
    "ConfigHistory",
    "Configuration",
    "Description",
    "DescriptionError",
    "Diagnostic",
    "Diff",
    "Machine",
    "NotWired",
]
