"""Ingest: raw files in, a catalogued run out, written whole or not at all.

Two phases. :func:`plan` checks everything that can be checked without writing (the files
exist and are readable, their formats and headers, duplicates, run numbers) so that bad input
changes nothing. :meth:`IngestPlan.execute` then writes each run into a folder of the store that
nothing refers to yet (the raw file copied by the kernel, hashed by a thread, its arrays
streamed chunk by chunk, all at once), makes it durable, and only then commits the catalog rows
that make the run visible. A failure removes the folder; a crash (kill -9) leaves at most an
unreferenced folder, and the same ingest can simply be run again.
"""

from __future__ import annotations

import hashlib
import math
import mmap
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from labledger.catalog import Catalog, NewRun
from labledger.errors import BadInput, InvalidArgument, LabledgerError, RunConflict
from labledger.faults import stop_point
from labledger.formats import ChannelInfo, Fill, Format, Source, Unreadable, detect, get
from labledger.formats.base import StatedNumber, open_source, walk_tree
from labledger.formats.bounds import check
from labledger.formats.limits import SETTING as LIMITS_SETTING
from labledger.formats.limits import Limits, memory_bytes, refusal
from labledger.formats.registry import HEAD_BYTES
from labledger.formats.values import path_text
from labledger.ids import DEFAULT_PROJECT, author, check_name, uuid7
from labledger.records import (
    CLOSED,
    MAX_RUN_NUMBER,
    NUMBER_KEY,
    ChannelRecord,
    RunRecord,
    SourceRecord,
)
from labledger.reports import IngestResult
from labledger.store import ArrayWriter, Store, write_array, write_group
from labledger.store.dtypes import from_text, is_streamed, to_text
from labledger.store.layout import data_path, node_name, pyramid_path, run_prefix, source_key
from labledger.store.pyramid import PyramidWriter, summarised
from labledger.structures import Against

Advance = Callable[[int], None]
HASH_WINDOW = 64 << 20
_RENUMBER_MOST = 100  # next free numbers tried when other ingests take them meanwhile
# a shot file's name: its number, alone or after one word saying what it numbers, and then at
# most one word saying what the file holds (01234_Data as LabVIEW writes it, 01234_scope,
# shot_1234, run-0042, scan1234); nothing else. Other digits in names are dates, sample or
# detector numbers, thermocouple 6 channel 2 (Therm_6_2): not run numbers
_SHOT_NAME = re.compile(
    r"(?:(?:shot|run|pulse|discharge|scan)[ _.\-]?)?(?P<number>\d+)(?:[ _.\-][a-z]+)?", re.I
)


@dataclass
class PlannedFile:
    path: Path
    size: int
    mtime: float
    identity: tuple[int, int]  # device and inode: the same file under two names is one file
    format: Format
    data_bytes: int = 0  # what its arrays hold, decoded
    sha256: str | None = None  # hashed while planning only when a duplicate was possible
    together: frozenset[Path] = frozenset()  # the files of the ingest, the only ones it may read
    origin: str | None = None  # where it came from, recorded instead of its path here
    numbers: list[StatedNumber] = field(default_factory=list)  # what the file states, unchecked
    metadata: dict[str, Any] = field(default_factory=dict)  # what the file says of its run


@dataclass
class PlannedRun:
    number: int
    files: list[PlannedFile]
    already: int | None = None  # the run that already holds these exact bytes
    project: str = DEFAULT_PROJECT
    allocated: bool = False  # the next free number: renumbered if taken meanwhile
    numbered: str = ""  # where the number came from, in words: "from TDMS property 'shot'"


def plan(
    catalog: Catalog,
    paths: Sequence[str | os.PathLike[str]],
    *,
    run: int | None = None,
    format: str | None = None,
    project: str = DEFAULT_PROJECT,
    limits: Mapping[str, Any] | None = None,
    own: Sequence[Path] = (),
    origin: str | None = None,
    against: Against | None = None,
) -> IngestPlan:
    """Check the files and decide their runs (in ``project``), writing nothing; raise
    :class:`BadInput` or :class:`RunConflict` with the first problem found. What a file may
    declare is bounded by the archive's limits, raised by ``limits`` (:class:`Limits` names).
    ``own`` are the archive's own files and folders (catalog, store): a file among them is
    refused unread. ``origin`` is recorded as where the files came from, in place of the
    folder they are read from (an upload's is the server's temporary folder). ``against``:
    the structure each run's metadata must fit (checked here), and how to judge whether a
    run holds what the structure says is always saved (judged as it is recorded)."""
    if not paths:
        raise BadInput("no files to ingest")
    check_name(project, "project")
    if run is not None and not 0 <= run <= MAX_RUN_NUMBER:
        raise BadInput(f"run numbers go from 0 to {MAX_RUN_NUMBER}, not {run}")
    forced = get(format) if format else None
    bounds = Limits.resolve(catalog.settings().get(LIMITS_SETTING), limits)
    given = _without_tdms_indexes(paths)
    for path in given:  # all of them before any is opened: a file may name the others
        _outside(path, own)
    together = frozenset(Path(os.path.realpath(p)) for p in given)
    files = [_check_file(p, forced, bounds, together) for p in given]
    for f in files:
        f.origin = origin
    seen: dict[tuple[int, int], Path] = {}
    for f in files:
        if f.identity in seen:
            raise BadInput(f"{f.path}: named twice (also as {seen[f.identity]})")
        seen[f.identity] = f.path
    groups: dict[int | None, list[tuple[PlannedFile, str]]] = {}
    if run is not None:
        groups[run] = [(f, "from --run") for f in files]
    else:
        for f in files:
            number, how = number_of(f.path, f.numbers)
            groups.setdefault(number, []).append((f, how))
    runs: list[PlannedRun] = []
    next_free = max([catalog.next_number(), *[n + 1 for n in groups if n is not None]])
    for number, members in groups.items():
        if number is None:  # files that state no number: each its own new run
            for f, how in members:
                runs.append(PlannedRun(next_free, [f], allocated=True, numbered=how))
                next_free += 1
        else:
            hows = [how for _, how in members]
            if len(set(hows)) > 1:  # several files, numbered several ways: say each
                hows = [f"{how} ({path_text(f.path.name)})" for f, how in members]
            numbered = "; ".join(dict.fromkeys(hows))
            runs.append(PlannedRun(number, [f for f, _ in members], numbered=numbered))
    for planned in runs:
        planned.project = project
        _same_bytes_twice(planned)
        _check_run(catalog, planned)
        if against is not None and planned.already is None:
            _check_metadata(planned, against)
    return IngestPlan(catalog, runs, bounds, against)


def _check_metadata(planned: PlannedRun, against: Against) -> None:
    """Refuse a run whose files' metadata, merged as the run will have it, do not fit the
    structure it is ingested against."""
    metadata: dict[str, Any] = {}
    for f in planned.files:
        _merge(metadata, f.metadata, path_text(f.path.name))
    try:
        against.structure.check_metadata(metadata)
    except InvalidArgument as exc:
        names = ", ".join(str(f.path) for f in planned.files)
        raise BadInput(f"{names}: {exc}; nothing was ingested") from None


def _without_tdms_indexes(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """LabVIEW writes a ``.tdms_index`` beside every ``.tdms``: ``ingest daq/*`` takes the data
    files and leaves their indexes (an index given alone is refused, by the format)."""
    given = [Path(p) for p in paths]
    data = {p for p in given if p.suffix.lower() == ".tdms"}
    return [
        p for p in given if p.suffix.lower() != ".tdms_index" or p.with_suffix(".tdms") not in data
    ]


def _same_bytes_twice(planned: PlannedRun) -> None:
    by_size: dict[int, list[PlannedFile]] = {}
    for f in planned.files:
        by_size.setdefault(f.size, []).append(f)
    for same in (group for group in by_size.values() if len(group) > 1):
        seen: dict[str, Path] = {}
        for f in same:
            f.sha256 = f.sha256 or sha256_file(f.path)
            if f.sha256 in seen:
                raise BadInput(f"{f.path} and {seen[f.sha256]} hold the same bytes; ingest one")
            seen[f.sha256] = f.path


class IngestPlan:
    """Runs checked and numbered, ready to be written."""

    def __init__(
        self,
        catalog: Catalog,
        runs: list[PlannedRun],
        limits: Limits,
        against: Against | None = None,
    ):
        self.catalog = catalog
        self.runs = runs
        self.limits = limits
        self.against = against

    @property
    def total_bytes(self) -> int:
        """The bytes :meth:`execute` goes through, for a progress bar: each file is copied and
        its arrays decoded, in parallel."""
        return sum(f.size + f.data_bytes for r in self.runs if r.already is None for f in r.files)

    def execute(self, store: Store, advance: Advance | None = None) -> list[IngestResult]:
        """Write the runs one after the other; each is all there or not there at all. If one
        fails, the error names the runs of this ingest that were already made."""
        advance = advance or (lambda n: None)
        results: list[IngestResult] = []
        for planned in self.runs:
            if planned.already is not None:
                results.append(IngestResult(planned.already, _names(planned), already=True))
                continue
            try:
                results.append(
                    _write_run(self.catalog, store, planned, self.limits, advance, self.against)
                )
            except LabledgerError as exc:
                made = [r.message() for r in results if not r.already]
                if made:
                    raise type(exc)(f"{exc} (before that: {'; '.join(made)})") from None
                raise
        return results


def _check_file(
    path: Path,
    forced: Format | None,
    limits: Limits,
    together: frozenset[Path],
) -> PlannedFile:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise BadInput(f"{path} is a directory; pass the files in it (for example {path}/*)")
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(f"{path} is not a regular file")
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError as exc:
        raise BadInput(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if st.st_size == 0:
        raise BadInput(f"{path} is empty (0 bytes); there is nothing to ingest")
    fmt = forced or detect(path, head)
    # read the header now: damage, and sizes over the limits, are refused before any write
    with open_source(fmt, path, limits, together) as source:
        check(source, limits)
        data_bytes = source.data_bytes
        numbers = list(source.numbers)
        metadata = dict(source.metadata)
    identity = (st.st_dev, st.st_ino)
    return PlannedFile(
        path,
        st.st_size,
        st.st_mtime,
        identity,
        fmt,
        data_bytes,
        together=together,
        numbers=numbers,
        metadata=metadata,
    )


def _outside(path: Path, own: Sequence[Path]) -> None:
    """Refuse, before it or any file given with it is opened, a file of the archive itself.
    Reading the catalog's database under another name, then closing it, would drop the locks
    SQLite holds on it in this process: another process would then take the database for
    unused and remove the journal it is writing to, losing confirmed writes."""
    try:
        st = path.stat()
    except OSError:
        return  # nothing there to protect: _check_file says what is wrong with it
    real = Path(os.path.realpath(path))
    for mine in own:
        try:
            same = os.path.samestat(st, mine.stat())  # a hard link to it too
        except OSError:
            same = False
        if same or Path(os.path.realpath(mine)) in real.parents:
            raise BadInput(
                f"{path}: a file of the archive itself (its catalog or store); ingest does not "
                "read the archive's own files: ingest a copy made outside it"
            )


def number_of(path: Path, stated: Sequence[StatedNumber] = ()) -> tuple[int | None, str]:
    """The run number of a file ingested without ``--run``, and where it came from in words.

    The number its format states in a field of its own (``stated``: NeXus
    ``entry/entry_identifier``, a TDMS ``shot`` property), if it is a whole number from 0 up
    and the only one stated; else the number of a shot file's name (:func:`number_from_name`);
    else None, for the next free number. Why a stated number was passed over is said.

    >>> number_of(Path("Therm_6_2.tdms"))
    (None, 'the next free number')
    >>> number_of(Path("01234_Data.tdms"), [StatedNumber("TDMS property 'shot'", 1234)])
    (1234, "from TDMS property 'shot'")
    >>> number_of(Path("shot_7.h5"), [StatedNumber("NeXus entry/entry_identifier", "x1")])
    (7, "from the file name (NeXus entry/entry_identifier is 'x1', not a whole number)")
    """
    checked = [(s, *stated_number(s)) for s in stated]
    good = {number: s for s, number, _ in checked if number is not None}
    if len(good) == 1:
        [(only, s)] = good.items()
        return only, f"from {s.field}"
    if len(good) > 1:
        why = "; ".join(f"{s.field} is {n}" for n, s in good.items())
        reasons = [f"the file states several numbers: {why}"]
    else:
        reasons = [why for _, _, why in checked if why]
    number = number_from_name(path)
    how = "the next free number" if number is None else "from the file name"
    if reasons:
        how += f" ({'; '.join(reasons)})"
    return number, how


def stated_number(stated: StatedNumber) -> tuple[int | None, str]:
    """A number a file states, as a run number; or None and why it cannot be one.

    >>> stated_number(StatedNumber("NeXus entry1/entry_identifier", " 0042 "))
    (42, '')
    >>> stated_number(StatedNumber("TDMS property 'shot'", -3))
    (None, "TDMS property 'shot' is -3, negative")
    """
    value = stated.value
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
    if isinstance(value, str):
        text = value.strip()
        sign, digits = ("-", text[1:]) if text[:1] == "-" else ("", text.removeprefix("+"))
        if not digits.isascii() or not digits.isdigit():
            return None, f"{stated.field} is {shown}, not a whole number"
        digits = digits.lstrip("0") or "0"
        if sign and digits != "0":
            return None, f"{stated.field} is {sign}{digits[:40]}, negative"
        if len(digits) > len(str(MAX_RUN_NUMBER)):  # counted, not converted: see number_from_name
            shown = digits if len(digits) <= 40 else f"{digits[:20]}... ({len(digits)} digits)"
            return None, f"{stated.field} is {shown}, over the largest run number"
        value = int(digits)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, f"{stated.field} is {shown}, not a whole number"
    if isinstance(value, float):  # LabVIEW keeps many numbers as doubles: 1234.0 is 1234
        if not (math.isfinite(value) and value.is_integer() and abs(value) <= 2**53):
            return None, f"{stated.field} is {shown}, not a whole number"
        value = int(value)
    if value < 0:
        return None, f"{stated.field} is {value}, negative"
    if value > MAX_RUN_NUMBER:
        return None, f"{stated.field} is {value}, over the largest run number ({MAX_RUN_NUMBER})"
    return value, ""


def number_from_name(path: Path) -> int | None:
    """The run number of a shot file's name: a name that is a number, alone or after one word
    saying what it numbers (shot, run, pulse, discharge, scan), and then at most one word of
    letters saying what the file holds (``01234_Data.tdms`` as LabVIEW writes it,
    ``01234_scope.csv``, ``shot_1234.h5``, ``run-0042.csv``); None for any other name,
    whatever digits it holds (``Therm_6_2.tdms``, ``sample_0042.h5``, ``2026-11-30_scan.h5``).

    >>> [number_from_name(Path(n)) for n in ("01234_Data.tdms", "shot1234.h5", "Therm_6_2.tdms")]
    [1234, 1234, None]
    """
    found = _SHOT_NAME.fullmatch(path.stem)
    if found is None:
        return None
    digits = found["number"].lstrip("0") or "0"
    # counted before converted: Python refuses to convert over 4300 digits, with a traceback
    if len(digits) > len(str(MAX_RUN_NUMBER)) or int(digits) > MAX_RUN_NUMBER:
        shown = digits if len(digits) <= 40 else f"{digits[:20]}...({len(digits)} digits)"
        raise BadInput(f"{path.name}: {shown} is too large for a run number; pass --run N")
    return int(digits)


def _check_run(catalog: Catalog, planned: PlannedRun) -> None:
    held: list[tuple[PlannedFile, int]] = []
    for f in planned.files:
        if catalog.has_source_of_size(f.size):  # same size as a kept file: compare the bytes
            f.sha256 = sha256_file(f.path)
            found = catalog.source_by_sha256(f.sha256)
            if found is not None:
                held.append((f, found[1].number))
    if held:
        if len(held) == len(planned.files) and len({n for _, n in held}) == 1:
            planned.already = held[0][1]
            return
        f, number = held[0]
        raise RunConflict(
            f"{f.path} is already ingested as run {number}; a run is not extended once "
            "closed: ingest the other files as a run of their own"
        )
    if planned.allocated:  # taken meanwhile by another ingest: the write takes the next one
        return
    existing = catalog.by_number(planned.number)
    if existing is not None:
        kept = catalog.sources(existing.id)
        kept_names = ", ".join(f"{s.name} (sha256 {s.sha256[:12]}…)" for s in kept)
        new_names = ", ".join(str(f.path) for f in planned.files)
        raise RunConflict(
            f"run {planned.number} already exists from {kept_names}; {new_names} has different "
            "bytes: pass --run N to ingest it under a free number"
        )


def sha256_file(path: Path, advance: Advance | None = None) -> str:
    """The sha256 of a file, read through memory maps: the page cache is hashed in place, not
    copied out first (half the system time of reading a 2 GB file). A window at a time, so the
    mapped pages never add up to more than ``HASH_WINDOW`` of the process's memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        for offset in range(0, size, HASH_WINDOW):
            length = min(HASH_WINDOW, size - offset)
            with mmap.mmap(f.fileno(), length, offset=offset, access=mmap.ACCESS_READ) as window:
                window.madvise(mmap.MADV_SEQUENTIAL)
                with memoryview(window) as view:
                    digest.update(view)
            if advance:
                advance(length)
    return digest.hexdigest()


def _write_run(
    catalog: Catalog,
    store: Store,
    planned: PlannedRun,
    limits: Limits,
    advance: Advance,
    against: Against | None = None,
) -> IngestResult:
    run_id = uuid7()
    prefix = run_prefix(run_id)
    stop_point("ingest.planned")
    try:
        new, result = _write_objects(store, planned, run_id, prefix, limits, advance)
        store.persist(prefix)
        stop_point("ingest.persisted")
    except BaseException as exc:
        _remove(store, prefix, exc)
        raise
    keys = [c.key for _, channels in new.sources for c in channels]
    tries = 0
    while True:
        try:
            if against is not None:  # judged again if renumbered: the wiring may differ
                result.incomplete = against.judge(new.run, keys)
            catalog.add_run(new)
            stop_point("ingest.committed")
            return result
        except RunConflict as exc:  # someone else ingested meanwhile
            tries += 1
            try:
                # bounded: ingests taking every next number for ever would keep this one busy
                renumbered = (
                    planned.allocated
                    and tries <= _RENUMBER_MOST
                    and _renumber(catalog, store, planned, new)
                )
            except BaseException as failure:
                _remove(store, prefix, failure)
                raise
            if renumbered:
                result.number = planned.number
                continue
            _remove(store, prefix, exc)
            _check_run(catalog, planned)
            if planned.already is not None:
                return IngestResult(planned.already, _names(planned), already=True)
            raise
        except BaseException as exc:
            # the commit may have reached the database before the failure (a lost connection,
            # Ctrl-C): remove the data only if the run is surely not recorded
            try:
                recorded = catalog.by_id(run_id) is not None
            except Exception:
                recorded = True  # cannot tell: an unreferenced folder is harmless, lost data is not
            if not recorded:
                _remove(store, prefix, exc)
            raise


def _renumber(catalog: Catalog, store: Store, planned: PlannedRun, new: NewRun) -> bool:
    """Give a run whose number another ingest took meanwhile the next free one (True); False
    if the conflict was another (the same bytes kept meanwhile), for the caller to say.

    Numbers are read as max + 1 while planning, without a lock, so two ingests at the same
    moment pick the same one; the catalog's unique number decides, and the loser moves on.
    """
    if catalog.by_number(planned.number) is None:
        return False
    if any(catalog.source_by_sha256(source.sha256) for source, _ in new.sources):
        return False
    planned.number = new.run.number = max(catalog.next_number(), planned.number + 1)
    # the stored tree says its run number too: rewritten, durably, before the catalog names it
    write_group(store, data_path(new.run.store_prefix), {"run": planned.number, "id": new.run.id})
    store.persist(new.run.store_prefix)
    return True


def _remove(store: Store, prefix: str, exc: BaseException) -> None:
    try:
        store.delete(prefix)
    except Exception as cleanup:  # never hide why the ingest failed
        exc.add_note(f"and removing {store.path(prefix)} failed too: {cleanup}")


def _names(planned: PlannedRun) -> list[str]:
    return [path_text(f.path.name) for f in planned.files]


def _write_objects(
    store: Store,
    planned: PlannedRun,
    run_id: str,
    prefix: str,
    limits: Limits,
    advance: Advance,
) -> tuple[NewRun, IngestResult]:
    now = datetime.now(UTC)
    who = author()
    result = IngestResult(planned.number, _names(planned), run_id=run_id)
    result.numbered = planned.numbered
    metadata: dict[str, Any] = {}
    sources: list[tuple[SourceRecord, list[ChannelRecord]]] = []
    starts, ends, keys = [], [], set[str]()
    # three streams over the file at once: the kernel copies it, a thread hashes it, and this
    # one decodes its arrays
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="labledger-raw") as raw:
        for position, f in enumerate(planned.files):
            key = source_key(prefix, position, f.path.name)
            with open_source(f.format, f.path, limits, f.together) as source:
                copy = raw.submit(store.put_file, f.path, key)
                digest = raw.submit(sha256_file, f.path, advance)
                try:
                    root = data_path(prefix, position)
                    channels = _write_channels(store, source, root, limits, advance)
                finally:
                    copy.result()
                    sha256 = digest.result()
                st = f.path.stat()
                if st.st_size != f.size or st.st_mtime != f.mtime:
                    raise BadInput(
                        f"{f.path} changed while it was being ingested; ingest it again once "
                        "its writer has finished"
                    )
                if f.sha256 is not None and f.sha256 != sha256:
                    raise BadInput(f"{f.path} changed while it was being ingested")
                clash = keys.intersection(c.key for c in channels)
                if clash:
                    raise BadInput(
                        f"{f.path}: channel {sorted(clash)[0]!r} is also in another file of run "
                        f"{planned.number}; ingest the files as separate runs"
                    )
                keys.update(c.key for c in channels)
                _merge(metadata, source.metadata, path_text(f.path.name))
                starts.append(source.started or datetime.fromtimestamp(f.mtime, UTC))
                if source.ended:
                    ends.append(source.ended)
                result.problems += source.problems
                row = SourceRecord(
                    run_id=run_id,
                    position=position,
                    name=path_text(f.path.name),
                    size=f.size,
                    format=source.format,
                    sha256=sha256,
                    store_key=key,
                    original_path=path_text(
                        f"{f.origin}/{f.path.name}" if f.origin else str(f.path.resolve())
                    ),
                    modified=datetime.fromtimestamp(f.mtime, UTC),
                    ingested=now,
                    ingested_by=who,
                    tree=source.tree,
                    problems=source.problems,
                )
                sources.append((row, channels))
    if planned.numbered:  # kept with the run, so that `show` can say where its number came from
        metadata[NUMBER_KEY] = planned.numbered
    write_group(store, data_path(prefix), {"run": planned.number, "id": run_id})
    for position, (source_row, _) in enumerate(sources):
        write_group(store, data_path(prefix, position), source_row.tree.get("attrs"))
    result.channels = sum(len(c) for _, c in sources)
    result.data_bytes = sum(_nbytes(ch) for _, chans in sources for ch in chans)
    run = RunRecord(
        id=run_id,
        number=planned.number,
        project=planned.project,
        state=CLOSED,
        started=min(starts),
        ended=max(ends) if ends else None,
        created=now,
        meta=metadata,
        store_prefix=prefix,
        n_channels=result.channels,
        data_bytes=result.data_bytes,
    )
    return NewRun(run, sources), result


def _write_channels(
    store: Store, source: Source, root: str, limits: Limits, advance: Advance
) -> list[ChannelRecord]:
    """Stream a source's blocks into stored arrays below ``root``; return their catalog rows."""
    infos = {c.key: c for c in source.channels}
    if len(infos) != len(source.channels):
        twice = sorted(k for k in infos if sum(c.key == k for c in source.channels) > 1)
        raise BadInput(f"{source.path}: two arrays of the file are both named {twice[0]!r}")
    paths = {c.key: _below(root, c.segments) for c in source.channels}
    if len(set(paths.values())) != len(paths):  # names that differ only in what is encoded
        same = sorted(k for k in paths if list(paths.values()).count(paths[k]) > 1)
        raise BadInput(f"{source.path}: {same[0]!r} and {same[1]!r} would be stored as one")
    streamed: dict[str, ArrayWriter] = {}
    whole: dict[str, list[Any]] = {}  # text, structured types and 0-d values: small
    for info in source.channels:
        if is_streamed(info.dtype) and info.shape:
            row_shape = tuple(int(n) for n in info.shape[1:])  # type: ignore[arg-type]
            path = paths[info.key]
            # a long 1-D signal also gets its min/max pyramid, for previews (store/pyramid.py)
            kind = PyramidWriter if summarised(np.dtype(info.dtype), row_shape) else ArrayWriter
            streamed[info.key] = kind(
                store, path, row_shape, info.dtype, info.attrs, fill=info.fill
            )
        else:
            whole[info.key] = []
    held = dict.fromkeys(whole, 0)  # bytes held of each whole array: a CSV says none in advance
    held_total = 0  # and of all of them: a CSV may have 10,000 text columns
    dropped: dict[str, str] = {}
    try:
        for key, block in source.blocks():
            if key in dropped or key not in infos:
                continue
            if isinstance(block, Unreadable):
                dropped[key] = block.reason
                if key in streamed:
                    streamed.pop(key).abort()
                    store.delete(pyramid_path(paths[key]))  # what its pyramid wrote, if any
                whole.pop(key, None)
                store.delete(paths[key])
                continue
            if isinstance(block, Fill):
                if key in streamed:
                    streamed[key].skip(block.rows)
                else:
                    whole[key].append(_filled(infos[key], block.rows))
                continue
            if key in streamed:
                streamed[key].write(block)
                stop_point("ingest.block")
            else:
                whole[key].append(block)
                size = memory_bytes(block)
                held[key] += size
                held_total += size
                if held[key] > limits.whole_bytes:
                    what = f"{key[:80]!r} holds over {held[key]} bytes of {infos[key].dtype}"
                    raise refusal(source.path, "", what, "whole_bytes", limits.whole_bytes)
                if held_total > limits.whole_file_bytes:
                    what = f"holds over {held_total} bytes of text and compounds, held in memory"
                    limit = limits.whole_file_bytes
                    raise refusal(source.path, "", what, "whole_file_bytes", limit)
            advance(block.nbytes if block.dtype.kind != "O" else 8 * block.size)
        for writer in streamed.values():
            writer.close()
    except BaseException:
        for writer in streamed.values():
            writer.abort()
        raise
    for key, why in dropped.items():
        source.problems.append(f"{key}: cannot be read ({why})")
        _not_ingested(source.tree, key, why)
    for node, at in walk_tree(source.tree):
        if node["kind"] == "group":
            write_group(store, _below(root, at.split("/")), node.get("attrs"))
    rows = []
    for info in source.channels:
        if info.key in dropped:
            continue
        if info.key in streamed:
            writer = streamed[info.key]
            shape, dtype = [writer.rows, *writer.row_shape], writer.dtype
            expected = info.shape[0]
            if expected is not None and writer.rows != expected:
                raise BadInput(
                    f"{source.path}: {info.key} should hold {expected} values but "
                    f"{writer.rows} could be read; the file is damaged"
                )
        else:
            value = _whole(whole[info.key], info, source)
            write_array(store, paths[info.key], value, info.attrs)
            shape, dtype = list(value.shape), value.dtype
        rows.append(
            ChannelRecord(
                key=info.key,
                store_path=paths[info.key],
                shape=[int(n) for n in shape],
                dtype=to_text(dtype),
                attrs=info.attrs,
                axes=[a.to_dict() for a in info.axes],
            )
        )
    _record_shapes(source.tree, {row.key: row.shape for row in rows})
    return rows


def _record_shapes(tree: dict[str, Any], shapes: Mapping[str, list[int]]) -> None:
    """Give each channel of the tree whose length its file did not declare (a CSV column) the
    shape it was stored with, so that ``show`` gives every channel its length."""
    for node, _ in walk_tree(tree):
        shape = node.get("shape")
        if node.get("key") in shapes and (shape is None or None in shape):
            node["shape"] = shapes[node["key"]]


def _below(root: str, segments: Sequence[str]) -> str:
    return "/".join([root, *(node_name(s) for s in segments)])


def _filled(info: ChannelInfo, rows: int) -> np.ndarray:
    """``rows`` rows that hold only the channel's fill value (small: a whole array's limit)."""
    shape = (rows, *(int(n or 0) for n in info.shape[1:]))
    return np.full(shape, 0 if info.fill is None else info.fill, info.dtype)


def _whole(blocks: list[Any], info: ChannelInfo, source: Source) -> np.ndarray:
    if blocks:
        value = np.concatenate(blocks) if len(blocks) > 1 else np.asarray(blocks[0])
        # a compound as the format declared it: packed, without its reader's annotations
        return value.astype(info.dtype) if info.dtype.fields else value
    if info.shape and 0 in info.shape:  # declared empty
        return np.zeros([n or 0 for n in info.shape], info.dtype)
    raise BadInput(f"{source.path}: no values could be read for {info.key}; the file is damaged")


def _not_ingested(tree: dict[str, Any], key: str, why: str) -> None:
    """Mark a channel the file declared but that could not be read: shown, never exported."""
    for node, _ in walk_tree(tree):
        if node.get("key") == key:
            node["kind"], node["problem"] = "dataset", why
            node.pop("key")


def _merge(metadata: dict[str, Any], found: dict[str, Any], file_name: str) -> None:
    """Merge a file's metadata into the run's: the first file keeps plain keys; a later file's
    different value for the same key is kept as ``<file name>:<key>``."""
    for key, value in found.items():
        if key not in metadata or metadata[key] == value:
            metadata[key] = value
        else:
            metadata[f"{file_name}:{key}"] = value


def _nbytes(channel: ChannelRecord) -> int:
    itemsize = 0 if channel.dtype == "str" else from_text(channel.dtype).itemsize
    return int(np.prod(channel.shape, dtype=np.int64)) * itemsize
