"""A channel's declaration and the blocks of samples it carries, to and from stream entries.

A block is ``n`` samples of a channel, an array of shape ``(n, *shape)`` of exactly the declared
dtype (little-endian on the wire). Its entry holds the index of its first sample (``i``), when it
was written (``t``, Unix seconds) and its bytes (``d``); a seal entry holds how the stream ended
(``end``: sealed, aborted or failed), its blocks (``n``) and samples (``samples``).

>>> spec = ChannelSpec("PXI M6251/ai3", index=0, dtype="int16", rate=1e6)
>>> data = spec.encode(np.arange(4, dtype="int16"))
>>> block = spec.decode(0, {b"i": b"0", b"t": b"0", b"d": data})
>>> block.data.tolist(), block.samples, ChannelSpec.from_json(spec.to_json()) == spec
([0, 1, 2, 3], 4, True)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labledger.errors import InvalidArgument


def check_dtype(dtype: object, channel: str) -> np.dtype[Any]:
    """A declared dtype as numpy reads it, little-endian: numbers and booleans only."""
    try:
        found = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError as exc:
        raise InvalidArgument(
            f"stream {channel!r}: dtype={dtype!r} is not a numpy dtype ({exc}); "
            "declare one such as 'int16' or 'float32'"
        ) from None
    if found.kind not in "biufc" or found.shape or found.names:
        raise InvalidArgument(
            f"stream {channel!r}: dtype={dtype!r} is not a number type; declare one such as "
            "'int16' or 'float32' (a sample of several values is shape=, not a dtype)"
        )
    return found.newbyteorder("<") if found.byteorder == ">" else found


def check_shape(shape: object, channel: str) -> tuple[int, ...]:
    """The shape of one sample: () for a scalar, else positive whole sizes."""
    if not isinstance(shape, tuple) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape
    ):
        raise InvalidArgument(
            f"stream {channel!r}: shape={shape!r} is not the shape of one sample; give a "
            "tuple of positive sizes, () for one number a sample"
        )
    return shape


def check_rate(rate: object, channel: str) -> float:
    """Samples a second: a finite number above zero."""
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate < math.inf:
        raise InvalidArgument(
            f"stream {channel!r}: rate={rate!r} is not a sampling rate; give the samples a "
            "second as a number above zero, e.g. rate=1e6"
        )
    return float(rate)


@dataclass(frozen=True)
class ChannelSpec:
    """A declared channel: its name, number in the run, dtype, shape of a sample, rate (Hz)."""

    name: str
    index: int
    dtype: np.dtype[Any] = field(compare=False)
    rate: float
    shape: tuple[int, ...] = ()

    def __init__(
        self, name: str, *, index: int, dtype: object, rate: object, shape: object = ()
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgument(f"a stream needs a name (the DAQ channel's), not {name!r}")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "dtype", check_dtype(dtype, name))
        object.__setattr__(self, "rate", check_rate(rate, name))
        object.__setattr__(self, "shape", check_shape(shape, name))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChannelSpec) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.to_json())

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "index": self.index,
                "dtype": self.dtype.str,
                "rate": self.rate,
                "shape": list(self.shape),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ChannelSpec:
        found = json.loads(text)
        return cls(
            found["name"],
            index=found["index"],
            dtype=found["dtype"],
            rate=found["rate"],
            shape=tuple(found["shape"]),
        )

    def encode(self, block: object) -> bytes:
        """The bytes of a block after checking it is of this channel's dtype and shape."""
        if not isinstance(block, np.ndarray):
            raise InvalidArgument(
                f"stream {self.name!r}: a block is a numpy array, not {type(block).__name__}; "
                f"make one with np.asarray(block, dtype={self.dtype.name!r})"
            )
        wanted = np.dtype(self.dtype).newbyteorder("=")
        if block.dtype not in (self.dtype, wanted):
            raise InvalidArgument(
                f"stream {self.name!r} is declared {self.dtype.name}, this block is "
                f"{block.dtype.name}: convert it (block.astype({self.dtype.name!r})) if no "
                "value is lost, else check the DAQ's channel"
            )
        if block.ndim != 1 + len(self.shape) or block.shape[1:] != self.shape:
            form = f"(n, {', '.join(map(str, self.shape))})" if self.shape else "(n,)"
            raise InvalidArgument(
                f"stream {self.name!r}: a block of shape {block.shape} does not hold samples "
                f"of shape {self.shape}: give an array of shape {form}"
            )
        return np.ascontiguousarray(block, dtype=self.dtype).tobytes()

    def decode(self, seq: int, fields: Mapping[bytes, bytes]) -> Block:
        """The block of an entry of this channel's stream."""
        values = np.frombuffer(fields[b"d"], dtype=self.dtype)
        if self.shape:
            values = values.reshape(-1, *self.shape)
        return Block(self.name, seq, int(fields[b"i"]), values, float(fields[b"t"]))


@dataclass(frozen=True)
class Block:
    """Samples of a channel: number ``seq`` of its stream, first sample ``first`` (counted from
    the run's start: its time is ``first / rate``), written at ``written`` (Unix seconds)."""

    channel: str
    seq: int
    first: int
    data: np.ndarray[Any, Any] = field(repr=False)
    written: float

    @property
    def samples(self) -> int:
        return int(self.data.shape[0])


@dataclass(frozen=True)
class Seal:
    """The end of a channel's stream: how it ended (``sealed``, ``aborted`` or ``failed``), its
    number of blocks and of samples."""

    end: str
    blocks: int
    samples: int

    @classmethod
    def of(cls, fields: Mapping[bytes, bytes]) -> Seal:
        return cls(fields[b"end"].decode(), int(fields[b"n"]), int(fields[b"samples"]))
