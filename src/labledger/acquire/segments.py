"""A live run's raw blocks as the saver keeps them: segments in the store, each the blocks read
at once from Redis, named by their order and their sha256.

A segment is one object, ``runs/<id>/live/<n>-<sha256>``: an 8-byte little-endian length, a JSON
header, then the blocks' bytes one after the other. The header lists each block (channel, seq,
first sample, when written, where its bytes are) and, as a cursor, the next block of every
channel once this segment is saved. The newest whole segment is where a saver killed at any
moment resumes: a segment cut short by the kill fails its sha256 and is removed (its blocks
were not trimmed from Redis: trimming waits for the segment to be durable).

>>> import numpy as np, tempfile
>>> from labledger.live import Block, ChannelSpec
>>> from labledger.store import open_store
>>> store = open_store(tempfile.mkdtemp())
>>> spec = ChannelSpec("ai3", index=0, dtype="int16", rate=1e3)
>>> block = Block("ai3", 0, 0, np.arange(4, dtype="int16"), 0.0)
>>> key = write(store, "runs/x", 0, [block], {"ai3": 1})
>>> [(b.channel, b.seq, b.data.tolist()) for b in read(store, key, {"ai3": spec}).blocks]
[('ai3', 0, [0, 1, 2, 3])]
>>> newest(store, "runs/x").next
{'ai3': 1}
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from labledger.errors import Conflict, Damaged
from labledger.live import Block, ChannelSpec
from labledger.store import Store

_LENGTH = struct.Struct("<Q")


def folder(prefix: str) -> str:
    """Where a live run's segments are, below the run's folder ``prefix``."""
    return f"{prefix}/live"


@dataclass
class Segment:
    """A segment read back: its key, number, blocks and the cursor after it."""

    key: str
    number: int
    sha256: str
    next: dict[str, int]
    blocks: list[Block] = field(default_factory=list)


def write(
    store: Store, prefix: str, number: int, blocks: Sequence[Block], after: Mapping[str, int]
) -> str:
    """Keep ``blocks`` as segment ``number`` of the run at ``prefix``, durably; its key.
    ``after``: every channel's next block once these are saved."""
    entries, offset = [], 0
    for block in blocks:
        size = block.data.nbytes
        entries.append([block.channel, block.seq, block.first, block.written, offset, size])
        offset += size
    header = json.dumps({"blocks": entries, "next": dict(after)}).encode()
    body = b"".join([_LENGTH.pack(len(header)), header, *(b.data.tobytes() for b in blocks)])
    digest = hashlib.sha256(body).hexdigest()
    key = f"{folder(prefix)}/{number:08d}-{digest}"
    taken = [k for k in keys(store, prefix) if k.rsplit("/", 1)[-1].startswith(f"{number:08d}-")]
    if taken:  # another saver took the run over: two segments of one number would repeat blocks
        raise Conflict(f"{store.path(taken[0])}: segment {number} is written already")
    store.write(key, body)
    store.persist(key)
    return key


def keys(store: Store, prefix: str) -> list[str]:
    """The run's segment keys, in order."""
    return store.children(folder(prefix))


def read(store: Store, key: str, specs: Mapping[str, ChannelSpec]) -> Segment:
    """Segment ``key``, checked against its sha256 (:class:`Damaged` if it fails)."""
    body = store.read(key)
    name = key.rsplit("/", 1)[-1]
    number, _, digest = name.partition("-")
    if hashlib.sha256(body).hexdigest() != digest or len(body) < _LENGTH.size:
        raise Damaged(f"{store.path(key)}: the segment does not match its sha256")
    (length,) = _LENGTH.unpack_from(body)
    header = json.loads(body[_LENGTH.size : _LENGTH.size + length])
    data = memoryview(body)[_LENGTH.size + length :]
    blocks = []
    for channel, seq, first, written, start, size in header["blocks"]:
        spec = specs[channel]
        values = np.frombuffer(data[start : start + size], dtype=spec.dtype)
        if spec.shape:
            values = values.reshape(-1, *spec.shape)
        blocks.append(Block(channel, seq, first, values, written))
    return Segment(key, int(number), digest, header["next"], blocks)


def newest(
    store: Store, prefix: str, specs: Mapping[str, ChannelSpec] | None = None
) -> Segment | None:
    """The newest whole segment (None: none yet), after removing one a kill cut short."""
    found = keys(store, prefix)
    while found:
        try:
            return read(store, found[-1], specs or _Any())
        except Damaged:
            store.delete(found.pop())  # written, never trimmed from Redis: read again from there
    return None


class _Any(dict[str, ChannelSpec]):
    """Specs for reading only a header: any channel, bytes as they are."""

    def __missing__(self, channel: str) -> ChannelSpec:
        return ChannelSpec(channel, index=0, dtype="u1", rate=1.0)
