"""Where a live run lives in Redis: every key of it, and how a block's sequence number is an
entry id of its stream, named in one place.

Under a prefix (``labledger`` unless told), run 1271 is::

    labledger:runs                      stream: every state change of every run (notifications)
    labledger:run:1271                  hash: state, when each state was reached, reason,
                                        structure, metadata (JSON), number of channels
    labledger:run:1271:lease            string: the writer's token, expiring unless renewed
    labledger:run:1271:states           stream: the run's state changes, in order
    labledger:run:1271:channels         hash: channel name -> its declaration (JSON)
    labledger:run:1271:ch:0             stream: the blocks of channel 0, then its seal
    labledger:run:1271:ch:0:meta        hash: next sequence number, samples, sealed, trimmed

Block ``seq`` is entry ``{seq + 1}-0`` of its channel's stream (ids start above ``0-0``), and the
seal the entry after the last block; a reader at ``seq`` reads the entries after ``{seq}-0``.

>>> keys = RunKeys("labledger", 1271)
>>> keys.info, keys.stream(3), block_id(0), seq_of(b"1-0"), after(5)
('labledger:run:1271', 'labledger:run:1271:ch:3', '1-0', 0, '5-0')
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "labledger"


@dataclass(frozen=True)
class RunKeys:
    """The Redis keys of one live run."""

    prefix: str
    run: int

    @property
    def info(self) -> str:
        return f"{self.prefix}:run:{self.run}"

    @property
    def lease(self) -> str:
        return f"{self.info}:lease"

    @property
    def states(self) -> str:
        return f"{self.info}:states"

    @property
    def channels(self) -> str:
        return f"{self.info}:channels"

    @property
    def events(self) -> str:
        """The stream (and pub/sub channel) of every run's state changes under the prefix."""
        return f"{self.prefix}:runs"

    def stream(self, index: int) -> str:
        """The stream of channel number ``index`` (its order of declaration)."""
        return f"{self.info}:ch:{index}"

    def meta(self, index: int) -> str:
        """The writer's bookkeeping of channel ``index``: next seq, samples, sealed, trimmed."""
        return f"{self.info}:ch:{index}:meta"

    def all(self, channels: int) -> list[str]:
        """Every key of the run but the shared ``events`` stream, for a run of ``channels``."""
        own = [self.info, self.lease, self.states, self.channels]
        return own + [k for i in range(channels) for k in (self.stream(i), self.meta(i))]


def block_id(seq: int) -> str:
    """The stream entry id of block ``seq`` (and of the seal after ``seq`` blocks)."""
    return f"{seq + 1}-0"


def seq_of(entry_id: bytes | str) -> int:
    """The sequence number an entry id stands for."""
    if isinstance(entry_id, bytes):
        return int(entry_id.partition(b"-")[0]) - 1
    return int(entry_id.partition("-")[0]) - 1


def after(seq: int) -> str:
    """The id to read after for a reader whose next block is ``seq``."""
    return f"{seq}-0"
