"""A live run's state: forward only, each change timestamped and notified, done atomically in
Redis by Lua scripts that check the writer's lease.

A run is ``created``, then ``prepared`` (its channels are final), ``started`` (blocks flow),
``stopped`` (every stream sealed) and ``closed``; or, from any of the first four, ``aborted``
or ``failed`` with a reason. ``closed``, ``aborted`` and ``failed`` are final. One writer holds a
run: its token is the run's lease, a key that expires unless renewed, and every change is refused
to whoever does not hold it. Each change is added to the run's ``states`` stream and to the
prefix's ``runs`` stream, and published on ``runs``.

>>> State.STARTED.follows(State.PREPARED), State.PREPARED.follows(State.STARTED)
(True, False)
>>> [s.value for s in State.FAILED.before()]
['created', 'prepared', 'started', 'stopped']
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

import redis

from labledger.errors import InvalidArgument, NotFound
from labledger.live.blocks import ChannelSpec
from labledger.live.connection import answering, where
from labledger.live.errors import StateConflict, WriterConflict
from labledger.live.keys import RunKeys
from labledger.times import parse_time


class State(StrEnum):
    CREATED = "created"
    PREPARED = "prepared"
    STARTED = "started"
    STOPPED = "stopped"
    CLOSED = "closed"
    ABORTED = "aborted"
    FAILED = "failed"

    def before(self) -> tuple[State, ...]:
        """The states this one may follow."""
        return _BEFORE[self]

    def follows(self, other: State) -> bool:
        return other in _BEFORE[self]

    @property
    def final(self) -> bool:
        return self in (State.CLOSED, State.ABORTED, State.FAILED)


_OPEN = (State.CREATED, State.PREPARED, State.STARTED, State.STOPPED)
_BEFORE: dict[State, tuple[State, ...]] = {
    State.CREATED: (),
    State.PREPARED: (State.CREATED,),
    State.STARTED: (State.PREPARED,),
    State.STOPPED: (State.STARTED,),
    State.CLOSED: (State.STOPPED,),
    State.ABORTED: _OPEN,
    State.FAILED: _OPEN,
}

_NOTIFY = """
local function notify(state, at, reason)
  redis.call('XADD', KEYS[3], '*', 'state', state, 'at', at, 'reason', reason)
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', '10000', '*', 'run', ARGV[#ARGV], 'state', state,
             'at', at, 'reason', reason)
  redis.call('PUBLISH', KEYS[4], ARGV[#ARGV] .. ' ' .. state)
end
"""

# KEYS: info, lease, states, events; ARGV: token, lease ms, at, structure, metadata, run
_CREATE = (
    _NOTIFY
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'exists', redis.call('HGET', KEYS[1], 'state'), redis.call('PTTL', KEYS[2])}
end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {'lease', '', redis.call('PTTL', KEYS[2])}
end
redis.call('HSET', KEYS[1], 'run', ARGV[6], 'state', 'created', 'created_at', ARGV[3],
           'structure', ARGV[4], 'metadata', ARGV[5], 'channels', 0, 'reason', '')
notify('created', ARGV[3], '')
return {'ok'}
"""
)

# KEYS: info, lease, states, events; ARGV: token, target, states it may follow, at, reason, run
_MOVE = (
    _NOTIFY
    + """
local state = redis.call('HGET', KEYS[1], 'state')
if not string.find(' ' .. ARGV[3] .. ' ', ' ' .. state .. ' ', 1, true) then
  return {'state', state}
end
local holder = redis.call('GET', KEYS[2])
if holder ~= ARGV[1] then return {'lease', holder or ''} end
redis.call('HSET', KEYS[1], 'state', ARGV[2], ARGV[2] .. '_at', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'reason', ARGV[5]) end
notify(ARGV[2], ARGV[4], ARGV[5])
if ARGV[2] == 'closed' or ARGV[2] == 'aborted' or ARGV[2] == 'failed' then
  redis.call('DEL', KEYS[2])
end
return {'ok', state}
"""
)

# KEYS: lease; ARGV: token, lease ms
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: info, lease, channels; ARGV: token, name, index, declaration
_DECLARE = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {'lease'} end
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'created' then return {'state', state} end
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 1 then return {'exists'} end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
redis.call('HINCRBY', KEYS[1], 'channels', 1)
return {'ok'}
"""


# A run whose writer is gone (its lease expired: nothing can be written to it again) marked
# failed, its open streams sealed so. KEYS: info, lease, states, events, then each channel's
# stream and meta; ARGV: at, reason, run.
_ABANDON = (
    _NOTIFY
    + """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if state == 'closed' or state == 'aborted' or state == 'failed' then return {'state', state} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'held', redis.call('PTTL', KEYS[2])} end
for c = 5, #KEYS, 2 do
  local held = redis.call('HMGET', KEYS[c + 1], 'sealed', 'next', 'samples')
  if not held[1] then
    local nxt = tonumber(held[2] or '0')
    redis.call('XADD', KEYS[c], (nxt + 1) .. '-0', 'end', 'failed', 'n', nxt,
               'samples', held[3] or '0', 't', '0')
    redis.call('HSET', KEYS[c + 1], 'sealed', 'failed', 'next', nxt, 'samples', held[3] or '0')
  end
end
redis.call('HSET', KEYS[1], 'state', 'failed', 'failed_at', ARGV[1], 'reason', ARGV[2])
notify('failed', ARGV[1], ARGV[2])
return {'ok', state}
"""
)


def now() -> str:
    """This instant in UTC, as the states record it (ISO 8601, microseconds)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RunState:
    """The writer's hold on a run's state: creating it takes the lease, each change checks it.

    Nothing is written when a change is refused.
    """

    def __init__(self, client: redis.Redis, keys: RunKeys, *, lease: float = 30.0) -> None:
        if isinstance(lease, bool) or not isinstance(lease, int | float) or not lease >= 0.1:
            raise InvalidArgument(
                f"lease={lease!r}: give the seconds a writer holds the run between renewals, "
                "0.1 or more"
            )
        self.client, self.keys, self.lease_ms = client, keys, int(lease * 1000)
        self.token = uuid.uuid4().hex
        self.state: State | None = None
        self._create = client.register_script(_CREATE)
        self._move = client.register_script(_MOVE)
        self._renew = client.register_script(_RENEW)
        self._declare = client.register_script(_DECLARE)

    @property
    def _four(self) -> list[str]:
        k = self.keys
        return [k.info, k.lease, k.states, k.events]

    def create(self, structure: str, metadata: dict[str, Any]) -> None:
        """The run in state ``created``, this writer holding it; refused if it exists."""
        run = self.keys.run
        with answering(self.client, f"run {run} was not created; try again when it answers"):
            said = self._create(
                keys=self._four,
                args=[self.token, self.lease_ms, now(), structure, json.dumps(metadata), run],
            )
        code = _text(said[0])
        if code == "exists":
            state, ttl = _text(said[1]), int(said[2])
            held = f"its writer holds it for {ttl / 1000:.1f} s more" if ttl > 0 else "no writer"
            raise WriterConflict(
                f"run {run} is already live in Redis at {where(self.client)} (state {state}, "
                f"{held}): a run has one writer; acquire under another run number"
            )
        if code == "lease":
            raise WriterConflict(
                f"run {run} is being created by another writer: a run has one writer; "
                "acquire under another run number"
            )
        self.state = State.CREATED

    def move(self, target: State, reason: str = "") -> State:
        """Change to ``target`` if it follows the current state; the state it left."""
        run = self.keys.run
        allowed = " ".join(s.value for s in target.before())
        with answering(self.client, f"run {run} is still {self.state}; try again"):
            said = self._move(
                keys=self._four, args=[self.token, target.value, allowed, now(), reason, run]
            )
        code = _text(said[0])
        if code == "lease":
            raise WriterConflict(
                f"run {run}: this writer does not hold the run (its lease expired, or another "
                f"writer holds it), so it cannot be {target}; check the run's state"
            )
        if code == "state":
            current = State(_text(said[1]))
            self.state = current
            raise StateConflict(
                f"run {run} is {current}: a state never goes back, and {target} follows only "
                f"{' or '.join(s.value for s in target.before()) or 'nothing'}"
            )
        self.state = target
        return State(_text(said[1]))

    def declare(self, spec: ChannelSpec) -> None:
        """Record a channel of the run, while it is ``created``."""
        k = self.keys
        with answering(self.client, f"stream {spec.name!r} was not declared; declare it again"):
            said = self._declare(
                keys=[k.info, k.lease, k.channels],
                args=[self.token, spec.name, spec.index, spec.to_json()],
            )
        code = _text(said[0])
        if code == "lease":
            raise WriterConflict(f"run {k.run}: this writer does not hold the run")
        if code == "state":
            raise StateConflict(
                f"run {k.run} is {_text(said[1])}: declare stream {spec.name!r} before "
                "acq.start() (a run's channels are fixed when it is prepared)"
            )
        if code == "exists":
            raise InvalidArgument(f"run {k.run} already has a stream {spec.name!r}")

    def renew(self) -> bool:
        """Extend the lease; False if this writer no longer holds it."""
        with answering(self.client, "the lease was not renewed"):
            return bool(self._renew(keys=[self.keys.lease], args=[self.token, self.lease_ms]))


class LeaseKeeper:
    """Renews a run's lease from a thread every third of its time, until stopped.

    A renewal that finds the lease lost, or Redis silent, leaves ``lost`` set: the next write
    is refused by Redis anyway (the scripts check the token)."""

    def __init__(self, state: RunState) -> None:
        self.state = state
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="labledger-lease")

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.state.lease_ms / 3000):
            try:
                self.lost = not self.state.renew()
            except Exception:  # Redis not answering: the writes will say so
                self.lost = True


def abandon(client: redis.Redis, keys: RunKeys, reason: str) -> State:
    """Mark ``failed`` a run whose writer is gone (its lease expired, so nothing can be written
    to it again), sealing its open streams so; the state it was in. Refused while a writer
    holds the run, and for a run that has ended."""
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidArgument(f"run {keys.run}: say why it is abandoned (reason='...')")
    with answering(client, f"run {keys.run} was not marked failed; try again"):
        channels = int(client.hget(keys.info, "channels") or 0)
        streams = [k for i in range(channels) for k in (keys.stream(i), keys.meta(i))]
        said = client.register_script(_ABANDON)(
            keys=[keys.info, keys.lease, keys.states, keys.events, *streams],
            args=[now(), reason.strip(), keys.run],
        )
    code = _text(said[0])
    if code == "missing":
        raise NotFound(f"run {keys.run} is not live in Redis at {where(client)}")
    if code == "state":
        raise StateConflict(f"run {keys.run} has ended ({_text(said[1])}): nothing to abandon")
    if code == "held":
        raise WriterConflict(
            f"run {keys.run} has a writer (its lease runs {int(said[1]) / 1000:.1f} s more): "
            "only a run whose writer is gone can be abandoned; wait for its lease to expire"
        )
    return State(_text(said[1]))


@dataclass(frozen=True)
class Transition:
    """A state the run reached, when (UTC), and why for ``aborted`` and ``failed``."""

    state: State
    at: datetime
    reason: str


@dataclass(frozen=True)
class RunInfo:
    """What Redis says of a live run now."""

    run: int
    state: State
    structure: str
    metadata: dict[str, Any]
    reason: str
    reached: dict[State, datetime]  # when each state reached was
    channels: dict[str, ChannelSpec]  # by name, in their order of declaration
    writer: bool  # a writer holds the lease


def run_info(client: redis.Redis, keys: RunKeys) -> RunInfo:
    """The run's state, times, reason, structure, metadata and channels; NotFound if Redis has
    no such run."""
    doing = f"run {keys.run} was not read; try again"
    with answering(client, doing), client.pipeline(transaction=True) as pipe:
        pipe.hgetall(keys.info)
        pipe.hgetall(keys.channels)
        pipe.exists(keys.lease)
        info, declared, lease = pipe.execute()
    if not info:
        raise NotFound(
            f"run {keys.run} is not live in Redis at {where(client)} under prefix "
            f"{keys.prefix!r}: it has not been created yet, or was removed once saved"
        )
    fields = {_text(k): _text(v) for k, v in info.items()}
    reached = {}
    for state in State:
        when = parse_time(fields.get(f"{state.value}_at"))
        if when is not None:
            reached[state] = when
    specs = sorted((ChannelSpec.from_json(v) for v in declared.values()), key=lambda s: s.index)
    return RunInfo(
        run=keys.run,
        state=State(fields["state"]),
        structure=fields.get("structure", ""),
        metadata=json.loads(fields.get("metadata") or "{}"),
        reason=fields.get("reason", ""),
        reached=reached,
        channels={s.name: s for s in specs},
        writer=bool(lease),
    )


def history(client: redis.Redis, keys: RunKeys) -> list[Transition]:
    """Every state the run reached, in order."""
    with answering(client, f"the states of run {keys.run} were not read; try again"):
        entries = cast(list[Any], client.xrange(keys.states))
    found = []
    for _, fields in entries:
        at = parse_time(_text(fields[b"at"]))
        assert at is not None  # written by now()
        found.append(Transition(State(_text(fields[b"state"])), at, _text(fields[b"reason"])))
    return found
