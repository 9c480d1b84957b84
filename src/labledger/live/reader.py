"""The reader's side: follow a live run's channels block by block, from Redis (and, for blocks
already trimmed from it, from the store), knowing "not yet" from "never".

A :class:`Follower` holds a :class:`Cursor` (the next block of each channel) and reads with a
blocking ``XREAD`` on its channels' streams and the run's state stream. After each
:meth:`Follower.read`, :attr:`Follower.status` says which of three it was: ``DATA`` (blocks),
``NOT_YET`` (nothing new: the streams are open, more may come) or ``ENDED`` (every channel
followed has reached its seal, or the run ended, or its writer is gone: there will never be
more). A cursor is text
(:meth:`Cursor.to_text`): a reader that stops resumes where it was, in this process or another.

>>> from labledger.live.writer import Acquisition
>>> client = connect()
>>> import uuid
>>> prefix = f"doctest:{uuid.uuid4().hex}"
>>> with Acquisition(client, run=7, structure="shot", prefix=prefix) as acq:
...     ai3 = acq.stream("ai3", dtype="float32", rate=1e4)
...     acq.start()
...     follower = Follower(client, 7, prefix=prefix)
...     follower.read(timeout=0.01), follower.status, follower.sealed
...     _ = ai3.write(np.ones(100, dtype="float32"))
...     [(b.channel, b.seq, b.samples) for b in follower.read()], follower.status
([], <Status.NOT_YET: 'not yet'>, False)
([('ai3', 0, 100)], <Status.DATA: 'data'>)
>>> follower.read(), follower.status, follower.sealed, follower.seals["ai3"]
([], <Status.ENDED: 'ended'>, True, Seal(end='sealed', blocks=1, samples=100))
>>> follower.cursor.to_text()
'{"positions": {"ai3": 1}, "run": 7}'
>>> from labledger.live.trimming import discard
>>> discard(client, RunKeys(prefix, 7))  # info, states, channels, stream and its meta
5
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

import redis

from labledger.errors import InvalidArgument, NotFound
from labledger.live.blocks import Block, ChannelSpec, Seal
from labledger.live.connection import answering, connect, where
from labledger.live.errors import Trimmed
from labledger.live.keys import DEFAULT_PREFIX, RunKeys, after, seq_of
from labledger.live.states import State, run_info
from labledger.live.trimming import Saved

__all__ = ["Cursor", "Follower", "Status", "connect", "follow"]


class Status(StrEnum):
    """What the last read found."""

    DATA = "data"  # blocks
    NOT_YET = "not yet"  # nothing new, and more may come
    ENDED = "ended"  # every channel followed is sealed: there will never be more


@dataclass(frozen=True)
class Cursor:
    """Where a reader is in a run: the next block number of each channel it follows.

    >>> c = Cursor(1271, {"ai3": 5}).at("ai3", 7)
    >>> c.positions["ai3"], Cursor.from_text(c.to_text()) == c
    (7, True)
    """

    run: int
    positions: Mapping[str, int]

    def __post_init__(self) -> None:
        bad = [(k, v) for k, v in self.positions.items() if not isinstance(v, int) or v < 0]
        if bad:
            raise InvalidArgument(
                f"a cursor's position is a block number, 0 or more: not {bad[0][1]!r} for "
                f"{bad[0][0]!r}"
            )

    def to_text(self) -> str:
        return json.dumps({"run": self.run, "positions": dict(self.positions)}, sort_keys=True)

    @classmethod
    def from_text(cls, text: str) -> Cursor:
        try:
            found = json.loads(text)
            run = int(found["run"])
            positions = {str(k): int(v) for k, v in found["positions"].items()}
        except (ValueError, TypeError, KeyError, AttributeError):
            raise InvalidArgument(
                f"{text[:80]!r} is not a cursor: give the text Cursor.to_text() made"
            ) from None
        return cls(run, positions)

    def at(self, channel: str, seq: int) -> Cursor:
        """The same cursor, ``channel`` at block ``seq`` (past blocks read elsewhere)."""
        return Cursor(self.run, {**self.positions, channel: seq})


class Follower:
    """Follow channels of a live run (all unless ``channels`` names some), from their first
    block or from ``cursor``. Blocks trimmed from Redis are read from ``saved`` when given,
    else raise :class:`Trimmed` (the cursor stays before them)."""

    def __init__(
        self,
        client: redis.Redis | str,
        run: int,
        *,
        channels: Iterable[str] | None = None,
        cursor: Cursor | None = None,
        prefix: str = DEFAULT_PREFIX,
        saved: Saved | None = None,
        count: int = 100,
    ) -> None:
        self.client = connect(client) if isinstance(client, str) else client
        self.run, self.keys, self.saved, self.count = run, RunKeys(prefix, run), saved, count
        if cursor is not None and cursor.run != run:
            raise InvalidArgument(f"this cursor is in run {cursor.run}, not run {run}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidArgument(f"count={count!r}: the entries read a stream at once, 1 or more")
        self._wanted = list(channels) if channels is not None else None
        if self._wanted is None and cursor is not None:
            self._wanted = list(cursor.positions)
        if self._wanted is not None and not self._wanted:
            raise InvalidArgument(f"run {run}: name at least one channel to follow")
        self._start = dict(cursor.positions) if cursor is not None else {}
        info = run_info(self.client, self.keys)  # NotFound for a run Redis does not have
        self.state: State = info.state
        self.reason = info.reason
        self.specs: dict[str, ChannelSpec] = {}
        self.positions: dict[str, int] = {}
        self.seals: dict[str, Seal] = {}  # the channels that reached their seal
        self.status = Status.NOT_YET
        self._state_id = "0-0"
        self._checked = False
        self.writer = True  # as last seen: a writer holds the run, or it has ended
        if info.state is not State.CREATED:
            self._take(info.channels)

    def _take(self, declared: Mapping[str, ChannelSpec]) -> None:
        """The channels to follow, once the run's are final (from ``prepared`` on)."""
        names = self._wanted if self._wanted is not None else list(declared)
        unknown = [n for n in names if n not in declared]
        if unknown:
            raise NotFound(
                f"run {self.run} has no stream {unknown[0]!r}; it has: "
                f"{', '.join(declared) or 'none'}"
            )
        self.specs = {n: declared[n] for n in names}
        self.positions = {n: self._start.get(n, 0) for n in names}

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.run, dict(self.positions or self._start))

    @property
    def sealed(self) -> bool:
        """Every channel followed has reached its seal: there will never be more."""
        return self.status is Status.ENDED

    def __iter__(self) -> Iterator[Block]:
        """Every block, in the order read, until the end."""
        while self.status is not Status.ENDED:
            yield from self.read(timeout=1.0)

    def read(self, timeout: float = 1.0) -> list[Block]:
        """The blocks that came since the last read, waiting up to ``timeout`` seconds for some;
        ``[]`` with :attr:`status` ``NOT_YET`` (more may come) or ``ENDED`` (never)."""
        deadline = time.monotonic() + max(timeout, 0.0)
        gone = False
        with answering(self.client, "nothing was read; the cursor is unchanged: read again"):
            while True:
                if not self.specs and not self._wait_for_channels(deadline):
                    self.status = Status.NOT_YET
                    return []
                if self.specs and len(self.seals) == len(self.specs):
                    self.status = Status.ENDED
                    return []
                if not self._checked:
                    blocks = self._after_trim()
                    self._checked = True
                    if blocks:
                        self.status = Status.DATA
                        return blocks
                blocks, entries = self._once(0.0 if gone else deadline)  # gone: no waiting
                if blocks:
                    self.status = Status.DATA
                    return blocks
                if len(self.seals) == len(self.specs) or (not entries and self.state.final):
                    self._end_unsealed()
                    self.status = Status.ENDED
                    return []
                if not entries:  # an idle wait: blocks trimmed with nothing after them?
                    blocks = self._after_trim()
                    if blocks:
                        self.status = Status.DATA
                        return blocks
                    if not self.writer:  # its lease is gone: nothing can be written again
                        if gone:  # and nothing came after that was seen: never more
                            self._end_unsealed("abandoned")
                            self.status = Status.ENDED
                            return []
                        gone = True  # read once more: what came before it went
                        continue
                gone = False
                if time.monotonic() >= deadline:
                    self.status = Status.NOT_YET
                    return []

    def _wait_for_channels(self, deadline: float) -> bool:
        """While the run is ``created``, wait on its states; whether its channels are known."""
        while True:
            info = run_info(self.client, self.keys)
            self.state, self.reason = info.state, info.reason
            if info.state is not State.CREATED:
                self._take(info.channels)
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            wait = max(1, int(min(left, 1.0) * 1000))
            reply = self.client.xread({self.keys.states: self._state_id}, count=100, block=wait)
            for _, found in cast(list[Any], reply or []):
                self._state_id = found[-1][0].decode()

    def _once(self, deadline: float) -> tuple[list[Block], int]:
        """One XREAD: the blocks it gave (after any gap filled), and how many entries of the
        channels' streams (blocks and seals) it read."""
        open_ = [n for n in self.specs if n not in self.seals]
        streams: dict[Any, Any] = {self.keys.states: self._state_id}
        for name in open_:
            streams[self.keys.stream(self.specs[name].index)] = after(self.positions[name])
        left = deadline - time.monotonic()
        block = None if left <= 0 else max(1, int(min(left, 1.0) * 1000))
        reply = cast(list[Any], self.client.xread(streams, count=self.count, block=block) or [])
        by_key = {self.keys.stream(self.specs[n].index).encode(): n for n in open_}
        positions, seals, blocks, entries = dict(self.positions), dict(self.seals), [], 0
        for key, found in reply:
            if key == self.keys.states.encode():
                for entry_id, fields in found:
                    self._state_id = entry_id.decode()
                    self.state = State(fields[b"state"].decode())
                    self.reason = fields[b"reason"].decode()
                continue
            name = by_key[key]
            spec = self.specs[name]
            entries += len(found)
            for entry_id, fields in found:
                seq = seq_of(entry_id)
                if b"end" in fields:
                    seal = Seal.of(fields)
                    blocks += self._gap(name, positions[name], seal.blocks)
                    positions[name], seals[name] = seal.blocks, seal
                    break
                if seq != positions[name]:
                    blocks += self._gap(name, positions[name], seq)
                blocks.append(spec.decode(seq, fields))
                positions[name] = seq + 1
        self.positions, self.seals = positions, seals
        return blocks, entries

    def _gap(self, channel: str, start: int, stop: int) -> list[Block]:
        """Blocks ``start`` to ``stop - 1`` of ``channel``, trimmed from Redis: from ``saved``."""
        if stop <= start:
            return []
        which = f"blocks {start} to {stop - 1} of stream {channel!r} of run {self.run}"
        if self.saved is None:
            raise Trimmed(
                f"{which} were saved and trimmed from Redis at {where(self.client)}: read them "
                "from the archive (give the follower saved=...), or resume after them with "
                f"cursor.at({channel!r}, {stop})",
                channel=channel,
                start=start,
                stop=stop,
            )
        found = list(self.saved.blocks(self.run, channel, start, stop))
        if [b.seq for b in found] != list(range(start, stop)):
            raise Trimmed(
                f"{which} were trimmed from Redis and the store gave blocks "
                f"{[b.seq for b in found][:5]}...: check what the saver wrote",
                channel=channel,
                start=start,
                stop=stop,
            )
        return found

    def _after_trim(self) -> list[Block]:
        """Blocks trimmed since this reader's position with nothing after them to show it."""
        names = [n for n in self.specs if n not in self.seals]
        with self.client.pipeline(transaction=False) as pipe:
            pipe.exists(self.keys.lease)
            for name in names:
                pipe.hget(self.keys.meta(self.specs[name].index), "trimmed")
            lease, *last = pipe.execute()
        self.writer = bool(lease) or self.state.final
        blocks: list[Block] = []
        positions = dict(self.positions)
        for name, value in zip(names, last):
            upto = -1 if value is None else int(value)
            if upto >= positions[name]:
                blocks += self._gap(name, positions[name], upto + 1)
                positions[name] = upto + 1
        self.positions = positions
        return blocks

    def _end_unsealed(self, end: str = "") -> None:
        """A run that ended (``aborted``, ``failed``), or whose writer is gone (``abandoned``),
        with streams its writer never sealed: their seals say so, samples unknown (-1)."""
        for name in self.specs:
            if name not in self.seals:
                self.seals[name] = Seal(end or self.state.value, self.positions[name], -1)


def follow(client: redis.Redis | str, run: int, **options: Any) -> Iterator[Block]:
    """Every block of a live run's channels until the end (see :class:`Follower`)."""
    return iter(Follower(client, run, **options))
