"""What goes wrong with a live run, each kind under the core error it is a case of (so its HTTP
status, and how the CLI shows it, come from :mod:`labledger.errors`).

>>> issubclass(Sealed, Conflict), LiveUnavailable.status
(True, 503)
"""

from __future__ import annotations

from labledger.errors import Conflict, LabledgerError, NotFound


class LiveUnavailable(LabledgerError, ConnectionError):
    """Redis did not answer: what was being written was not acknowledged; write it again."""

    status = 503


class StateConflict(Conflict):
    """A run state that would go backwards, or an action its state does not allow."""


class WriterConflict(Conflict):
    """A second writer on a run, or a writer whose lease on the run was lost."""


class Sealed(Conflict):
    """A block written after its stream's seal."""


class Trimmed(NotFound):
    """Blocks a follower needs were saved to the store and trimmed from Redis.

    ``channel``, ``start`` and ``stop`` say which (``start`` to ``stop - 1``): read them from the
    archive, or give the follower a ``saved`` source that does.
    """

    def __init__(self, message: str, *, channel: str, start: int, stop: int) -> None:
        super().__init__(message)
        self.channel, self.start, self.stop = channel, start, stop
