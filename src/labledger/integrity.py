"""The archive checked against its catalog: every raw file re-hashed, every array read through,
and the store folders no run names (what a killed ingest leaves), which a repair removes.

What is checked, for each recorded run:

- each raw file's stored copy: its sha256 is computed again and compared with the catalog's;
- each channel's stored array: its ``zarr.json`` is there, with the catalog's shape and dtype,
  and every chunk decodes (a shard's index and each chunk carry a crc32c: any changed byte
  is found).

Then the folders below ``runs/`` that no run names. An ingest writes its folder before the
catalog commit that names it, so a folder seen without a row may be an ingest still running:
a repair removes only folders whose newest object, and whose name (a UUIDv7, the time the
ingest began), are older than ``older_than`` minutes, and asks the catalog once more just
before removing each. Nothing a run names is ever removed.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable

from labledger.catalog import Catalog
from labledger.errors import InvalidArgument, first_line
from labledger.ids import made_at
from labledger.ingest import sha256_file
from labledger.records import CLOSED, LIVE, OLDER_THAN_MINUTES, ChannelRecord, SourceRecord
from labledger.reports import CheckReport, Orphan, Problem
from labledger.store import Store, StoredArray
from labledger.store.arrays import array_of
from labledger.store.dtypes import to_text
from labledger.store.layout import RUNS

Advance = Callable[[int], None]
_READ_BLOCK = 8 << 20


def check(
    catalog: Catalog,
    store: Store,
    *,
    repair: bool = False,
    older_than: float = OLDER_THAN_MINUTES,
    progress: Callable[[int, int], None] | None = None,
) -> CheckReport:
    """Check every closed run's raw files and arrays against the catalog and list the orphan
    folders; with ``repair``, remove those orphans older than ``older_than`` minutes.
    ``progress(done, total)`` is called with byte counts as the work goes."""
    if not older_than >= 0:
        raise InvalidArgument(f"older_than={older_than}: minutes, 0 or more")
    # the store first, then the catalog: a folder whose run commits in between is named
    folders = store.children(RUNS)
    report = CheckReport(repair=repair)
    named: set[str] = set()  # by runs of every state: a live run's folder is no orphan
    total = catalog.raw_bytes()
    for run in catalog.iter_runs(state=None, withdrawn=True):  # a withdrawn run is kept whole
        named.add(run.store_prefix)
        total += run.data_bytes if run.state == CLOSED else 0

    def advance(n: int) -> None:
        report.bytes_read += n
        if progress is not None:
            progress(min(report.bytes_read, total), total)

    # read again, a batch at a time: not all held at once
    for run in catalog.iter_runs(state=None, withdrawn=True):  # a live run aborted is kept too
        report.runs += 1
        for source in catalog.sources(run.id):
            report.files += 1
            reason = _raw_problem(store, source, advance)
            if reason is None and source.format == LIVE:
                reason = _segments_problem(store, source, advance)
            if reason:
                report.problems.append(Problem(run.number, source.name, "raw file", reason))
        for channel in catalog.channels(run.id):
            report.arrays += 1
            reason = _array_problem(store, channel, advance)
            if reason:
                report.problems.append(Problem(run.number, channel.key, "array", reason))
    now = time.time()
    for key in folders:
        if key in named:
            continue
        size, newest = store.usage(key)
        times = [t for t in (newest, made_at(key.rsplit("/", 1)[-1])) if t is not None]
        orphan = Orphan(key, size, now - max(times) if times else None)
        if repair:
            _repair(catalog, store, orphan, older_than)
        report.orphans.append(orphan)
    return report


def _repair(catalog: Catalog, store: Store, orphan: Orphan, older_than: float) -> None:
    if orphan.age_s is not None and orphan.age_s < older_than * 60:
        orphan.kept = (
            f"younger than {older_than:g} min, an ingest may still be writing it; "
            "--older-than sets the limit"
        )
    elif catalog.run_at(orphan.key) is not None:  # committed since it was listed
        orphan.kept = "a run names it now"
    else:
        store.delete(orphan.key)
        orphan.removed = True


def _raw_problem(store: Store, source: SourceRecord, advance: Advance) -> str | None:
    try:
        digest = _sha256(store, source.store_key, advance)
    except FileNotFoundError:
        return f"missing from the store ({source.store_key})"
    except OSError as exc:
        return f"cannot be read ({first_line(exc)})"
    if digest != source.sha256:
        return (
            f"bytes changed: its sha256 is now {digest[:16]}…, the catalog recorded "
            f"{source.sha256[:16]}…; restore it from a backup or the original "
            f"({source.original_path})"
        )
    return None


def _segments_problem(store: Store, source: SourceRecord, advance: Advance) -> str | None:
    """A live run's raw blocks: each segment its manifest names, against its sha256."""
    for segment in json.loads(store.read(source.store_key))["segments"]:
        key, name = segment["key"], segment["key"].rsplit("/", 1)[-1]
        try:
            digest = _sha256(store, key, advance)
        except FileNotFoundError:
            return f"segment {name[:8]} of its raw blocks is missing from the store ({key})"
        if digest != segment["sha256"]:
            return (
                f"segment {name[:8]} of its raw blocks changed: its sha256 is now "
                f"{digest[:16]}…, the manifest recorded {segment['sha256'][:16]}…; restore it "
                "from a backup"
            )
    return None


def _sha256(store: Store, key: str, advance: Advance) -> str:
    local = store.local_path(key)
    if local is not None:  # memory-mapped, as ingest hashes
        return sha256_file(local, advance)
    digest = hashlib.sha256()
    with store.open_read(key) as f:
        while block := f.read(_READ_BLOCK):
            digest.update(block)
            advance(len(block))
    return digest.hexdigest()


def _array_problem(store: Store, channel: ChannelRecord, advance: Advance) -> str | None:
    try:
        meta = json.loads(store.read(f"{channel.store_path}/zarr.json"))
    except FileNotFoundError:
        return f"missing from the store ({channel.store_path})"
    except (OSError, ValueError) as exc:
        return f"its zarr.json cannot be read ({first_line(exc)})"
    try:
        array = array_of(store, channel.store_path, meta)
        shape, dtype = [int(n) for n in array.shape], to_text(array.dtype)
        if shape != channel.shape or dtype != channel.dtype:
            return (
                f"the store holds shape {shape} {dtype}, the catalog recorded "
                f"{channel.shape} {channel.dtype}"
            )
        if isinstance(array, StoredArray) and array.shape:
            # a shard at a time, every chunk decoded; rows never written hold nothing to check
            # (a file may declare 10^12 values it never wrote)
            for start, stop in array.written_rows():
                advance(array[start:stop].nbytes)
        else:
            for block in array.iter_blocks():
                advance(getattr(block, "nbytes", 0))
    except Exception as exc:  # codecs raise what they like; any of it means damage
        return f"cannot be decoded ({type(exc).__name__}: {first_line(exc)})"
    return None
