"""Plug-ins: what a lab adds through entry points (raw formats, diagnostic models), loaded so
that one that fails to load is told about and left out, and the others keep working.

>>> sorted(load("labledger.formats"))[:3]
['csv', 'hdf5', 'tdms']
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from labledger.errors import first_line


class PluginWarning(UserWarning):
    """A plug-in that failed to load: it is left out, the others work."""


_FAILED: dict[str, dict[str, str]] = {}  # group -> name -> why it failed to load


def failed(group: str) -> dict[str, str]:
    """The plug-ins of ``group`` that failed to load, by name, with why: what needs one of
    them says so rather than acting as if it were not installed."""
    return dict(_FAILED.get(group, {}))


def load(group: str, make: Callable[[Any], Any] = lambda found: found) -> dict[str, Any]:
    """Every entry point of ``group`` by name, loaded and passed through ``make``; one that
    raises is left out with a :class:`PluginWarning` naming it and why."""
    found: dict[str, Any] = {}
    _FAILED[group] = {}
    for ep in entry_points(group=group):
        try:
            found[ep.name] = make(ep.load())
        except Exception as exc:  # a broken plug-in is its author's bug: the others still work
            why = f"{type(exc).__name__}: {first_line(exc)}"
            _FAILED.setdefault(group, {})[ep.name] = why
            warnings.warn(
                f"plug-in {ep.name!r} of {group} ({ep.value}) failed to load and is left out: "
                f"{why}; fix it or uninstall its package",
                PluginWarning,
                stacklevel=2,
            )
    return found
