"""Live acquisition on Redis: runs whose state moves forward only, one stream of numbered blocks
per channel sealed at the end, and followers whose cursors tell "not yet" from "never".

The DAQ side writes through :class:`Acquisition` and its :class:`Stream` s; readers follow with a
:class:`Follower` (or :func:`follow`); the saver trims what it saved (:func:`trim`) and removes
saved runs (:func:`discard`). docs/live.md has the key layout, the states and the figures.
"""

from __future__ import annotations

from labledger.live.blocks import Block, ChannelSpec, Seal
from labledger.live.connection import connect
from labledger.live.errors import LiveUnavailable, Sealed, StateConflict, Trimmed, WriterConflict
from labledger.live.keys import RunKeys
from labledger.live.reader import Cursor, Follower, Status, follow
from labledger.live.states import RunInfo, State, Transition, abandon, history, run_info
from labledger.live.trimming import Saved, discard, trim
from labledger.live.writer import Acquisition, Stream

__all__ = [
    "Acquisition",
    "Block",
    "ChannelSpec",
    "Cursor",
    "Follower",
    "LiveUnavailable",
    "RunInfo",
    "RunKeys",
    "Saved",
    "Seal",
    "Sealed",
    "State",
    "StateConflict",
    "Status",
    "Stream",
    "Transition",
    "Trimmed",
    "WriterConflict",
    "abandon",
    "connect",
    "discard",
    "follow",
    "history",
    "run_info",
    "trim",
]
