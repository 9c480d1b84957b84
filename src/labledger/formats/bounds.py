"""A described source checked against the limits (labledger.formats.limits) while the ingest
is only being planned: counts, names, depth and the bytes its data decode to, before a byte of
its data is read."""

from __future__ import annotations

import math
from typing import Any

from labledger.formats.base import ChannelInfo, Source
from labledger.formats.limits import OBJECT_BYTES, Limits, check_name, refusal
from labledger.store.dtypes import is_streamed


def check(source: Source, limits: Limits) -> None:
    """Refuse ``source`` if what it declares is over ``limits``; read nothing of its data."""
    path = source.path
    if len(source.channels) > limits.channels:
        count = len(source.channels)
        raise refusal(path, "", f"declares {count} arrays", "channels", limits.channels)
    nodes, depth = _size(source.tree)
    if nodes > limits.nodes:
        what = f"holds {nodes} groups, datasets and links"
        raise refusal(path, "", what, "nodes", limits.nodes)
    if depth > limits.depth:
        raise refusal(path, "", f"nests groups {depth} deep", "depth", limits.depth)
    total = whole_total = 0
    for info in source.channels:
        for segment in info.segments:
            check_name(path, segment, limits)
        where = f"{info.key[:80]!r} "
        fields = len(info.dtype.fields or ())
        if fields > limits.compound_fields:
            what = f"is a compound of {fields} fields"
            raise refusal(path, where, what, "compound_fields", limits.compound_fields)
        elements = declared_elements(info)
        if elements > limits.dataset_elements:
            what = f"declares {elements} values"
            raise refusal(path, where, what, "dataset_elements", limits.dataset_elements)
        held = held_bytes(info)
        if held > limits.dataset_bytes:
            what = f"holds {held} bytes"
            raise refusal(path, where, what, "dataset_bytes", limits.dataset_bytes)
        if info.chunk_bytes is not None and info.chunk_bytes > limits.chunk_bytes:
            what = f"has chunks of {info.chunk_bytes} bytes, each decoded whole to read any of it"
            raise refusal(path, where, what, "chunk_bytes", limits.chunk_bytes)
        whole = elements * _itemsize(info)  # fill values and all: nothing skips them
        if not _streamed(info) and whole > limits.whole_bytes:
            kind = "compound records" if fields else "text"
            what = f"is {whole} bytes of {kind}, which are held whole in memory to be stored"
            raise refusal(path, where, what, "whole_bytes", limits.whole_bytes)
        if not _streamed(info):
            whole_total += whole
        total += held
    if total > limits.file_bytes:
        raise refusal(path, "", f"holds {total} bytes of data", "file_bytes", limits.file_bytes)
    if whole_total > limits.whole_file_bytes:
        what = f"holds {whole_total} bytes of text and compounds, held in memory to be stored"
        raise refusal(path, "", what, "whole_file_bytes", limits.whole_file_bytes)


def declared_elements(info: ChannelInfo) -> int:
    """How many values a channel declares (an unknown length counts as none yet)."""
    return math.prod(n or 0 for n in info.shape)


def held_bytes(info: ChannelInfo) -> int:
    """The bytes a channel's data decode to, fill values left out (the source says which)."""
    held = declared_elements(info) if info.held is None else info.held
    return held * _itemsize(info)


def _size(tree: dict[str, Any]) -> tuple[int, int]:
    """How many nodes are below the root of a structure tree, and how deep its groups nest
    (without recursion: a hostile tree may be deeper than Python's stack)."""
    count, deepest, stack = 0, 0, [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        children = node.get("children")
        if children is None:  # a leaf: a channel, dataset or link
            continue
        count += len(children)
        deepest = max(deepest, depth)  # of a group
        stack.extend((child, depth + 1) for child in children)
    return count, deepest


def _itemsize(info: ChannelInfo) -> int:
    return OBJECT_BYTES if info.dtype.kind in "OT" else info.dtype.itemsize


def _streamed(info: ChannelInfo) -> bool:
    """Numbers and times are written as they are read; text and compounds are held whole."""
    return is_streamed(info.dtype) and bool(info.shape)
