"""The version of labledger, in a module of its own so that any part may name it."""

__version__ = "0.1.0"
