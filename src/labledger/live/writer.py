"""The DAQ side: an acquisition holds a run in Redis and writes its channels' blocks.

::

    with Acquisition(connect(), run=1271, structure="helicon-shot", metadata={"gas": "Ar"}) as acq:
        ai3 = acq.stream("PXI M6251/ai3", dtype="int16", rate=1e6)   # declared before start
        acq.start()
        for block in daq:
            ai3.write(block)
    # leaving the block seals every stream and closes the run; an exception aborts it

Each write is checked here (dtype, shape, sealed) and again in Redis by one Lua script (the
writer's lease, the run started, the stream not sealed, the next sequence number), which adds the
block or nothing. A write that raises :class:`LiveUnavailable` was not acknowledged: write the same
block again when Redis answers (a block that did arrive, its answer lost, is recognised by its
sequence number and bytes and not added twice). What was acknowledged is in Redis, where only
:func:`labledger.live.trimming.trim` removes it, after it is saved.

>>> client = connect()
>>> import uuid
>>> prefix = f"doctest:{uuid.uuid4().hex}"
>>> with Acquisition(client, run=1271, structure="helicon-shot", prefix=prefix) as acq:
...     ai3 = acq.stream("PXI M6251/ai3", dtype="int16", rate=1e6)
...     acq.start()
...     ai3.write(np.arange(1000, dtype="int16"))
...     ai3.write(np.arange(1000, dtype="int16"))
0
1
>>> acq.state, ai3.blocks, ai3.samples, ai3.sealed
(<State.CLOSED: 'closed'>, 2, 2000, True)
>>> from labledger.live.trimming import discard
>>> discard(client, RunKeys(prefix, 1271))  # once saved
5
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import numpy as np
import redis

from labledger.errors import InvalidArgument, NotFound
from labledger.live.blocks import ChannelSpec
from labledger.live.connection import answering, connect
from labledger.live.errors import Sealed, StateConflict, WriterConflict
from labledger.live.keys import DEFAULT_PREFIX, RunKeys, block_id
from labledger.live.states import LeaseKeeper, RunState, State

# Blocks of one or more channels, all or none. KEYS: info, lease, then a stream and its meta
# for each; ARGV: token, then for each: seq, entry id, first sample, written, data, samples.
_WRITE = """
local holder = redis.call('GET', KEYS[2])
if holder ~= ARGV[1] then return {'lease'} end
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'started' then return {'state', state} end
local new = {}
for c = 1, (#KEYS - 2) / 2 do
  local stream, meta, a = KEYS[1 + 2 * c], KEYS[2 + 2 * c], 1 + 6 * (c - 1)
  local held = redis.call('HMGET', meta, 'sealed', 'next')
  if held[1] then return {'sealed', c} end
  local seq = tonumber(ARGV[a + 1])
  local nxt = tonumber(held[2] or '0')
  if seq == nxt then
    new[#new + 1] = c
  else
    local again = false
    if seq < nxt then
      local found = redis.call('XRANGE', stream, ARGV[a + 2], ARGV[a + 2])
      if #found == 1 then
        local fields = found[1][2]
        for i = 1, #fields, 2 do
          if fields[i] == 'd' and fields[i + 1] == ARGV[a + 5] then again = true end
        end
      end
    end
    if not again then return {'seq', c, nxt} end
  end
end
for _, c in ipairs(new) do
  local stream, meta, a = KEYS[1 + 2 * c], KEYS[2 + 2 * c], 1 + 6 * (c - 1)
  redis.call('XADD', stream, ARGV[a + 2], 'i', ARGV[a + 3], 't', ARGV[a + 4], 'd', ARGV[a + 5])
  redis.call('HSET', meta, 'next', tonumber(ARGV[a + 1]) + 1,
             'samples', tonumber(ARGV[a + 3]) + tonumber(ARGV[a + 6]))
end
return {'ok'}
"""

# KEYS: info, lease, stream, meta; ARGV: token, end, written
_SEAL = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {'lease'} end
local sealed = redis.call('HGET', KEYS[4], 'sealed')
if sealed then return {'sealed', sealed} end
local nxt = tonumber(redis.call('HGET', KEYS[4], 'next') or '0')
local samples = redis.call('HGET', KEYS[4], 'samples') or '0'
redis.call('XADD', KEYS[3], (nxt + 1) .. '-0', 'end', ARGV[2], 'n', nxt, 'samples', samples,
           't', ARGV[3])
redis.call('HSET', KEYS[4], 'sealed', ARGV[2], 'next', nxt, 'samples', samples)
return {'ok'}
"""


def early_end(run: int, state: State, reason: object) -> str:
    """The reason a run ends early (``aborted`` or ``failed``), checked and stripped: the one
    rule of an acquisition written here and of one written through a server."""
    if state not in (State.ABORTED, State.FAILED):
        raise InvalidArgument(f"state={state!r}: a run ends early as aborted or failed")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidArgument(f"run {run}: say why it is {state} (reason='...')")
    return reason.strip()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Stream:
    """One channel of an acquisition: its blocks, numbered from 0, then its seal."""

    def __init__(self, acquisition: Acquisition, spec: ChannelSpec) -> None:
        self.acquisition, self.spec = acquisition, spec
        self.blocks = 0  # written and acknowledged: the next block's sequence number
        self.samples = 0
        self.sealed = False

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:
        return f"<Stream {self.name!r} of run {self.acquisition.run}: {self.blocks} blocks>"

    def _checked(self, block: object) -> tuple[bytes, int]:
        """The block's bytes and samples, checked here before anything is sent."""
        acq = self.acquisition
        if self.sealed:
            raise Sealed(
                f"stream {self.name!r} of run {acq.run} is sealed after {self.blocks} blocks: "
                "no block can follow its seal"
            )
        data = self.spec.encode(block)
        if acq.state is not State.STARTED:
            raise StateConflict(
                f"run {acq.run} is {acq.state}: blocks are written once acq.start() is called "
                "and until the run stops"
            )
        return data, len(data) // (self.spec.dtype.itemsize * math.prod(self.spec.shape))

    def write(self, block: np.ndarray[Any, Any]) -> int:
        """Add a block (shape ``(n, *shape)``, the declared dtype); its sequence number."""
        return self.acquisition.write({self: block})[self.name]

    def seal(self, end: str = "sealed") -> None:
        """No block will follow: readers reaching the seal know there will never be more.
        ``end`` says how the stream ended: ``sealed``, or ``aborted``/``failed`` with the run."""
        acq = self.acquisition
        if end not in ("sealed", "aborted", "failed"):
            raise InvalidArgument(f"end={end!r}: a stream ends sealed, aborted or failed")
        if self.sealed:
            return
        k = acq.keys
        with answering(acq.client, f"stream {self.name!r} was not sealed; seal it again"):
            said = acq._seal(
                keys=[k.info, k.lease, k.stream(self.spec.index), k.meta(self.spec.index)],
                args=[acq.state_.token, end, repr(time.time())],
            )
        if _text(said[0]) == "lease":
            raise WriterConflict(
                f"run {acq.run}: this writer does not hold the run; stream {self.name!r} "
                "was not sealed"
            )
        self.sealed = True


class Acquisition:
    """A run written live: created in Redis when made, its streams declared, then started.

    Leaving a ``with`` block closes it (every stream sealed); an exception leaving it aborts it,
    with the exception as reason. ``client`` is a Redis client or a URL.
    """

    def __init__(
        self,
        client: redis.Redis | str,
        *,
        run: int,
        structure: str,
        metadata: Mapping[str, Any] | None = None,
        prefix: str = DEFAULT_PREFIX,
        lease: float = 30.0,
    ) -> None:
        if isinstance(run, bool) or not isinstance(run, int) or run < 0:
            raise InvalidArgument(f"run={run!r}: a run number is a whole number, 0 or more")
        if not isinstance(structure, str) or not structure.strip():
            raise InvalidArgument(
                f"structure={structure!r}: name the run's structure, e.g. 'helicon-shot'"
            )
        metadata = dict(metadata or {})
        try:
            json.dumps(metadata, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(
                f"run {run}: metadata must be JSON (text, numbers, lists, mappings): {exc}"
            ) from None
        if not isinstance(prefix, str) or not prefix or any(c.isspace() for c in prefix):
            raise InvalidArgument(f"prefix={prefix!r}: a Redis key prefix, with no spaces")
        self.client = connect(client) if isinstance(client, str) else client
        self.run, self.structure, self.metadata = run, structure, metadata
        self.keys = RunKeys(prefix, run)
        self.state_ = RunState(self.client, self.keys, lease=lease)
        self._write = self.client.register_script(_WRITE)
        self._seal = self.client.register_script(_SEAL)
        self.streams: dict[str, Stream] = {}
        self.state_.create(structure, metadata)
        self._lease = LeaseKeeper(self.state_).start()

    @property
    def state(self) -> State:
        assert self.state_.state is not None  # created in __init__
        return self.state_.state

    def __repr__(self) -> str:
        return f"<Acquisition of run {self.run}: {self.state}, {len(self.streams)} streams>"

    def stream(
        self, name: str, *, dtype: object, rate: float, shape: tuple[int, ...] = ()
    ) -> Stream:
        """Declare a channel (before :meth:`start`): its dtype, sampling rate (Hz) and the shape
        of one sample (``()``: one number)."""
        if name in self.streams:
            raise InvalidArgument(f"run {self.run} already has a stream {name!r}")
        spec = ChannelSpec(name, index=len(self.streams), dtype=dtype, rate=rate, shape=shape)
        if self.state is not State.CREATED:
            raise StateConflict(
                f"run {self.run} is {self.state}: declare stream {name!r} before acq.start() "
                "(a run's channels are fixed when it starts)"
            )
        self.state_.declare(spec)
        self.streams[name] = Stream(self, spec)
        return self.streams[name]

    def prepare(self) -> None:
        """Fix the run's channels (``prepared``)."""
        self.state_.move(State.PREPARED)

    def start(self) -> None:
        """Blocks may flow (``started``); prepares the run first if it is not yet."""
        if self.state is State.CREATED:
            self.prepare()
        self.state_.move(State.STARTED)

    def write(self, blocks: Mapping[str | Stream, np.ndarray[Any, Any]]) -> dict[str, int]:
        """Blocks of one or several streams (by name or :class:`Stream`) in one round trip, as
        a DAQ reads its channels together: all are written, or none (the error says why); each
        stream's sequence number."""
        planned: list[tuple[Stream, bytes, int]] = []
        for key, block in blocks.items():
            stream = key if isinstance(key, Stream) else self.streams.get(key)
            if stream is None or stream.acquisition is not self:
                raise NotFound(
                    f"run {self.run} has no stream {key!r}; declare it with acq.stream() "
                    f"before acq.start() (it has: {', '.join(self.streams) or 'none'})"
                )
            if any(stream is s for s, _, _ in planned):
                raise InvalidArgument(f"stream {stream.name!r} is given twice in one write")
            planned.append((stream, *stream._checked(block)))
        k = self.keys
        keys: list[str] = [k.info, k.lease]
        args: list[Any] = [self.state_.token]
        written = repr(time.time())
        for stream, data, samples in planned:
            seq, index = stream.blocks, stream.spec.index
            keys += [k.stream(index), k.meta(index)]
            args += [seq, block_id(seq), stream.samples, written, data, samples]
        what = (
            f"block {planned[0][0].blocks} of stream {planned[0][0].name!r} was not written"
            if len(planned) == 1
            else f"none of these {len(planned)} blocks was written"
        )
        with answering(self.client, f"{what}; write it again when Redis answers"):
            said = self._write(keys=keys, args=args)
        code = _text(said[0])
        if code == "lease":
            raise WriterConflict(
                f"run {self.run}: this writer does not hold the run (its lease expired, or "
                f"another writer holds it): {what}"
            )
        if code == "state":
            raise StateConflict(f"run {self.run} is {_text(said[1])} in Redis: {what}")
        if code == "sealed":
            stream = planned[int(said[1]) - 1][0]
            stream.sealed = True
            raise Sealed(
                f"stream {stream.name!r} of run {self.run} is sealed: no block can follow its "
                f"seal; {what}"
            )
        if code == "seq":
            stream = planned[int(said[1]) - 1][0]
            raise WriterConflict(
                f"stream {stream.name!r} of run {self.run}: Redis expects block {int(said[2])}, "
                f"this writer has written {stream.blocks}: another writer wrote to it; {what}"
            )
        numbers = {}
        for stream, _, samples in planned:
            numbers[stream.name] = stream.blocks
            stream.blocks += 1
            stream.samples += samples
        return numbers

    def stop(self) -> None:
        """Seal every stream, then ``stopped``."""
        for stream in self.streams.values():
            stream.seal()
        self.state_.move(State.STOPPED)

    def close(self) -> None:
        """Stop (if started) and ``closed``: the lease is given back. A run never started is
        aborted instead: it has no data."""
        if self.state.final:
            return
        if self.state in (State.CREATED, State.PREPARED):
            self.abort("closed before it started")
            return
        if self.state is State.STARTED:
            self.stop()
        self.state_.move(State.CLOSED)
        self._lease.stop()

    def abort(self, reason: str, *, state: State = State.ABORTED) -> None:
        """End the run as ``aborted`` (or ``failed``) with a reason: every stream is sealed
        saying so, and the lease given back."""
        reason = early_end(self.run, state, reason)
        if self.state.final:
            return
        try:
            for stream in self.streams.values():
                stream.seal(state.value)
            self.state_.move(state, reason)
        finally:
            self._lease.stop()

    def fail(self, reason: str) -> None:
        """End the run as ``failed`` (the DAQ or its hardware failed)."""
        self.abort(reason, state=State.FAILED)

    def __enter__(self) -> Acquisition:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            try:
                self.close()
            except Exception:  # the run stays open: its lease is left to expire, so that
                self._lease.stop()  # followers learn its writer is gone (abandon() ends it)
                raise
            return
        try:
            self.abort(f"{type(exc).__name__}: {exc}"[:500])
        except Exception:  # Redis not answering: the lease expires; the cause is what matters
            self._lease.stop()
