"""What keeps Redis bounded: blocks saved to the store are trimmed from their streams
(:func:`trim`, called by the saver), a saved run is removed whole (:func:`discard`), and a
follower that needs trimmed blocks reads them from a :class:`Saved` source instead.

>>> class Nothing:
...     def blocks(self, run, channel, start, stop):
...         return iter(())
>>> isinstance(Nothing(), Saved)
True
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol, cast, runtime_checkable

import redis

from labledger.errors import InvalidArgument, NotFound
from labledger.live.blocks import Block
from labledger.live.connection import answering, where
from labledger.live.keys import RunKeys


@runtime_checkable
class Saved(Protocol):
    """Blocks already saved to the store: those of ``channel`` of ``run`` numbered ``start`` to
    ``stop - 1``, in order (the archive implements it; tests use a dict)."""

    def blocks(self, run: int, channel: str, start: int, stop: int) -> Iterable[Block]: ...


# KEYS: channels, stream, meta; ARGV: channel, last seq saved
_TRIM = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {'channel'} end
local nxt = tonumber(redis.call('HGET', KEYS[3], 'next') or '0')
local upto = tonumber(ARGV[2])
if upto >= nxt then return {'ahead', nxt} end
local before = tonumber(redis.call('HGET', KEYS[3], 'trimmed') or '-1')
if upto <= before then return {'ok', 0} end
local removed = redis.call('XTRIM', KEYS[2], 'MINID', (upto + 2) .. '-0')
redis.call('HSET', KEYS[3], 'trimmed', upto)
return {'ok', removed}
"""


def _index(client: redis.Redis, keys: RunKeys, channel: str) -> int:
    declared = cast(bytes | None, client.hget(keys.channels, channel))
    if declared is None:
        raise NotFound(f"run {keys.run} has no live stream {channel!r} in Redis at {where(client)}")
    found: dict[str, Any] = json.loads(declared)
    return int(found["index"])


def trim(client: redis.Redis, keys: RunKeys, channel: str, upto_seq: int) -> int:
    """Remove blocks 0 to ``upto_seq`` of ``channel`` from Redis, once the store holds them; the
    number of entries removed (0 for blocks trimmed before). The seal is never trimmed."""
    if isinstance(upto_seq, bool) or not isinstance(upto_seq, int) or upto_seq < 0:
        raise InvalidArgument(f"upto_seq={upto_seq!r}: the last saved block's number, 0 or more")
    with answering(client, f"nothing of {channel!r} was trimmed; trim again"):
        index = _index(client, keys, channel)
        said = client.register_script(_TRIM)(
            keys=[keys.channels, keys.stream(index), keys.meta(index)],
            args=[channel, upto_seq],
        )
    code = said[0].decode()
    if code == "ahead":
        raise InvalidArgument(
            f"stream {channel!r} of run {keys.run} has {int(said[1])} blocks: block {upto_seq} "
            "is not written yet, so it cannot have been saved; trim only what the store holds"
        )
    if code == "channel":
        raise NotFound(f"run {keys.run} has no live stream {channel!r}")
    return int(said[1])


def trimmed(client: redis.Redis, keys: RunKeys, index: int) -> int:
    """The last block of channel ``index`` trimmed from Redis (-1: none)."""
    with answering(client, "the channel's state was not read; try again"):
        value = cast(bytes | None, client.hget(keys.meta(index), "trimmed"))
    return -1 if value is None else int(value)


def discard(client: redis.Redis, keys: RunKeys) -> int:
    """Remove a run from Redis (once it is saved): the number of keys removed. A run still
    being written is refused."""
    with answering(client, f"run {keys.run} was not removed; try again"):
        state = cast(bytes | None, client.hget(keys.info, "state"))
        if state is None:
            return 0
        if state.decode() not in ("closed", "aborted", "failed"):
            raise InvalidArgument(
                f"run {keys.run} is {state.decode()}: remove a run from Redis once it has ended"
                " and is saved"
            )
        channels = int(cast(bytes, client.hget(keys.info, "channels") or b"0"))
        return int(client.delete(*keys.all(channels)))
