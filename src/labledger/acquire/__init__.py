"""Live runs in the archive: where they are (:class:`LiveSite`), the saver that keeps them
(:class:`Saver`), the acquisition a DAQ writes through, and following a signal live."""

from __future__ import annotations

from labledger.acquire.saver import RunSaver, SavedRun, Saver
from labledger.acquire.site import LiveSite

__all__ = ["LiveSite", "RunSaver", "SavedRun", "Saver"]
