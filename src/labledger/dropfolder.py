"""The drop folder: raw files an acquisition writes into a folder, ingested once each, once
they are completely written (``labledger watch DIR``).

A file is taken when all of these say it is whole (docs/watch.md says why these):

1. its size and modification time have not changed for ``settle`` seconds of this watcher's
   own clock (two looks at it, ``settle`` apart: a network share's clock does not count);
2. no process here holds it open for writing (Linux: ``/proc/*/fdinfo``; a writer on another
   machine, or another user's process, cannot be seen: ``settle`` is then the guard);
3. its format reads it whole: a truncated file is refused by the format and tried again later,
   quietly, while its writer may still come back; it is reported only once it has been left
   unchanged for ``give_up`` seconds (by its modification time, so a restart counts it too).

What is ingested is known to the catalog (its raw files' paths, sizes and times; the same
bytes are never kept twice). What could not be ingested is written, with the reason, to a small
state file in the archive folder, and not tried again until the file changes (or
:meth:`DropFolder.forget_failures`): a restart neither ingests twice nor loops on a bad file.

>>> import tempfile
>>> from labledger.sim import write_shot
>>> outbox = tempfile.mkdtemp()
>>> drop = DropFolder(ll.init(tempfile.mkdtemp() + "/a"), outbox, settle=0)
>>> _ = write_shot(outbox, 1271)
>>> for outcome in drop.step():
...     print(outcome.kind, outcome.run, outcome.message)
ingested 1271 01271_Data.tdms: ingested as run 1271 (17 channels; number: from TDMS property 'shot')
>>> drop.step()  # once each
[]
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labledger.archive import Archive
from labledger.errors import (
    BadInput,
    CatalogUnavailable,
    InvalidArgument,
    LabledgerError,
    StoreUnavailable,
    first_line,
)
from labledger.formats.registry import formats, get
from labledger.formats.values import path_text
from labledger.ids import DEFAULT_PROJECT

SETTLE = 0.5  # s a file stays unchanged before it is taken (and no local writer holds it)
GIVE_UP = 60.0  # s a file that fails to read stays unchanged before the failure is final
INTERVAL = 0.25  # s between two looks at the folder
STATE_FOLDER = "watch"  # in the archive folder: one state file per drop folder
# names of files still being made, by convention: rsync's .name.XXXXXX, browsers' .part,
# editors' name~, and the index LabVIEW writes beside each .tdms (ingested with it)
_SKIPPED = re.compile(r"^\.|~$|\.(tmp|temp|part|partial|crdownload|swp|tdms_index)$", re.I)
_O_ACCMODE = 0o3


@dataclass(frozen=True)
class Outcome:
    """What the watcher did with one file (or folder), as one line: ``kind`` is "ingested",
    "already" (the same bytes are in the archive), "failed" (reported, not tried again until
    the file changes), "gone" (it disappeared before it could be ingested), "unreadable" (a
    folder it cannot list), "waiting" (still being written when :meth:`DropFolder.once`
    ended) or "archive" (the archive did not answer: tried again later)."""

    kind: str
    path: Path
    message: str
    run: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.path), "run": self.run, "message": self.message}


@dataclass
class _Seen:
    signature: tuple[int, int, int]  # size, mtime in ns, inode: what says the file changed
    since: float  # when this signature was first seen (the watcher's clock)
    tries: int = 0  # ingests refused while the file may still be being written
    tried: float = 0.0  # when the last of them was
    asked: bool = False  # whether the catalog was asked if it holds the file as it is


@dataclass
class Failure:
    """A file the watcher could not ingest, and why; kept until the file changes."""

    path: str  # relative to the drop folder
    size: int
    mtime_ns: int
    reason: str
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


class DropFolder:
    """A folder whose raw files go into ``archive`` once each, once whole; :meth:`step` looks
    once (for tests and loops of one's own), :meth:`run` until ``stop`` is set,
    :meth:`once` takes what is there and returns.

    ``settle``, ``give_up``: seconds, see the module's text. ``clock``: the time in seconds
    (wall clock: file times are compared with it). ``writers``: which of the given files a
    process holds open for writing (by default :func:`open_for_writing`). ``project``,
    ``format``, ``limits``: as :meth:`Archive.ingest`. ``state``: the state file (by default
    in the archive's folder, one per drop folder).
    """

    def __init__(
        self,
        archive: Archive,
        folder: str | os.PathLike[str],
        *,
        settle: float = SETTLE,
        give_up: float = GIVE_UP,
        clock: Callable[[], float] = time.time,
        writers: Callable[[Collection[Path]], set[Path]] | None = None,
        project: str = DEFAULT_PROJECT,
        format: str | None = None,
        limits: Mapping[str, int | str] | None = None,
        state: str | os.PathLike[str] | None = None,
    ):
        if not settle >= 0 or not give_up >= settle:
            raise InvalidArgument(
                f"settle={settle}, give_up={give_up}: seconds, settle 0 or more and give_up "
                "at least settle"
            )
        self.folder = Path(folder).expanduser().absolute()
        _check_folder(self.folder)
        own = archive.path.resolve() if archive.path is not None else None
        if own is not None and self.folder.resolve().is_relative_to(own):
            raise InvalidArgument(
                f"{self.folder} is inside the archive {own}: the acquisition's files go to a "
                "folder of their own, which the watcher reads"
            )
        if state is None and archive.path is None:
            raise InvalidArgument(
                "this archive has no folder to keep the drop folder's state in: pass state=PATH"
            )
        # the formats now (a bad --format said at once), not at the first file, which waits
        get(format) if format else formats()
        self.archive = archive
        self.settle, self.give_up, self._clock = settle, give_up, clock
        self._writers = writers or open_for_writing
        self._ingest: dict[str, Any] = {"project": project, "format": format, "limits": limits}
        self.state = Path(state) if state is not None else _state_path(archive, self.folder)
        self._seen: dict[Path, _Seen] = {}
        self._done: dict[Path, tuple[int, int, int]] = {}  # ingested, or already there
        self._bad_folders: set[Path] = set()
        self._failed = self._load()

    def __repr__(self) -> str:
        return f"<DropFolder {self.folder} into {self.archive!r}>"

    @property
    def failed(self) -> list[Failure]:
        """The files reported as not ingestible, with the reasons (kept in :attr:`state`)."""
        return sorted(self._failed.values(), key=lambda f: f.path)

    def forget_failures(self) -> int:
        """Try the failed files again at the next step; return how many they are."""
        count = len(self._failed)
        self._failed.clear()
        self._save()
        return count

    # -- looking --------------------------------------------------------------------------

    def step(self) -> list[Outcome]:
        """Look at the folder once; ingest each file found whole; return what happened."""
        now = self._clock()
        outcomes: list[Outcome] = []
        found = dict(self._scan(outcomes))
        for gone in [p for p in self._seen if p not in found]:
            del self._seen[gone]
        for gone in [p for p in self._done if p not in found]:
            del self._done[gone]
        names = {self._rel(p) for p in found}
        removed = [rel for rel in self._failed if rel not in names and not self._hidden(rel)]
        if removed:  # removed from the folder: their reports go too
            for rel in removed:
                del self._failed[rel]
            self._save()
        ready = []
        for path, signature in found.items():
            if self._done.get(path) == signature or self._failed_as(path, signature):
                continue
            seen = self._seen.get(path)
            if seen is None or seen.signature != signature:
                self._seen[path] = seen = _Seen(signature, now)
                if path in self._done:
                    del self._done[path]
                self._unfail(path)
            if now - seen.since < self.settle:
                continue
            if seen.tries and now - seen.tried < self._retry_after(seen.tries):
                continue
            ready.append(path)
        unasked = [p for p in ready if not self._seen[p].asked]
        if unasked:
            known = self._known(unasked)
            for path in unasked:
                self._seen[path].asked = True
            for path in [p for p in ready if p in known]:
                self._done[path] = found[path]
                self._seen.pop(path, None)
            ready = [p for p in ready if p not in known]
        if ready:
            held = self._writers(ready)
            for path in ready:
                if path not in held:
                    outcomes += self._take(path, found[path], now)
        return outcomes

    def _hidden(self, rel: str) -> bool:
        """Whether the file ``rel`` is in a folder that cannot be listed now (so may be there)."""
        parents = (self.folder / rel).parents
        return any(folder in parents for folder in self._bad_folders)

    def pending(self) -> list[Path]:
        """The files seen and not yet ingested nor reported: still being written, held open by
        a writer, or refused by their format while they may still change."""
        return sorted(self._seen)

    def once(self, sleep: Callable[[float], None] = time.sleep) -> list[Outcome]:
        """Take what the folder holds now: look, wait ``settle``, look again; a file still
        changing or held open by then is left for the next time (an outcome "waiting")."""
        outcomes = self.step()
        if self._seen:
            sleep(self.settle)
            outcomes += self.step()
        for path in self.pending():
            outcomes.append(
                Outcome(
                    "waiting",
                    path,
                    f"{self._shown(path)}: still being "
                    "written (or refused while it may be); left for the next "
                    "time",
                    None,
                )
            )
        return outcomes

    def run(
        self,
        stop: threading.Event | None = None,
        *,
        interval: float = INTERVAL,
        announce: Callable[[Outcome], None] = lambda outcome: None,
    ) -> None:
        """Look every ``interval`` s, ``announce`` each outcome, until ``stop`` is set (for
        ever without one: Ctrl-C)."""
        if not interval > 0:
            raise InvalidArgument(f"interval={interval}: a positive number of seconds")
        stop = stop or threading.Event()
        while not stop.is_set():
            for outcome in self.step():
                announce(outcome)
            stop.wait(self._next_wait(interval))

    def _next_wait(self, interval: float) -> float:
        """Until the next look: ``interval``, or sooner if a file settles before then."""
        now = self._clock()
        due = [s.since + self.settle - now for s in self._seen.values() if not s.tries]
        return max(0.01, min([interval, *(d for d in due if d > 0)]))

    # -- one file -------------------------------------------------------------------------

    def _take(self, path: Path, signature: tuple[int, int, int], now: float) -> list[Outcome]:
        seen = self._seen[path]
        if os.path.lexists(path) and not self._same_file(path, signature):
            self._seen.pop(path, None)  # swapped since the look: look again
            return []
        try:
            [result] = self.archive.ingest([path], **self._ingest)
        except (CatalogUnavailable, StoreUnavailable) as exc:  # the archive's trouble
            seen.tries, seen.tried = seen.tries + 1, now
            why = f"not ingested yet, the archive did not answer ({first_line(exc)}); trying again"
            return [Outcome("archive", path, f"{self._shown(path)}: {why}")]
        except Exception as exc:  # one file's failure must not stop the rest
            if not path.exists():
                self._seen.pop(path, None)
                why = "disappeared before it could be ingested; nothing of it was kept"
                return [Outcome("gone", path, f"{self._shown(path)}: {why}")]
            reason = (
                first_line(exc)
                if isinstance(exc, LabledgerError)
                else (f"{type(exc).__name__}: {first_line(exc)}")
            )
            age = now - signature[1] / 1e9
            if isinstance(exc, BadInput) and age < self.give_up:
                seen.tries, seen.tried = seen.tries + 1, now  # may be truncated: wait for more
                return []
            return [self._fail(path, signature, reason)]
        self._seen.pop(path, None)
        self._done[path] = signature
        kind = "already" if result.already else "ingested"
        return [Outcome(kind, path, result.message(), result.number)]

    def _retry_after(self, tries: int) -> float:
        return min(self.give_up, max(self.settle, 1.0) * 2 ** (tries - 1))

    def _fail(self, path: Path, signature: tuple[int, int, int], reason: str) -> Outcome:
        rel = self._rel(path)
        self._failed[rel] = Failure(rel, signature[0], signature[1], reason)
        self._save()
        self._seen.pop(path, None)
        why = f"not ingested: {_without(reason, path)}; reported in {self.state}"
        return Outcome("failed", path, f"{self._shown(path)}: {why}, tried again if it changes")

    def _failed_as(self, path: Path, signature: tuple[int, int, int]) -> bool:
        failure = self._failed.get(self._rel(path))
        return failure is not None and (failure.size, failure.mtime_ns) == signature[:2]

    def _unfail(self, path: Path) -> None:
        if self._failed.pop(self._rel(path), None) is not None:
            self._save()

    # -- the folder -----------------------------------------------------------------------

    def _scan(self, outcomes: list[Outcome]) -> Iterator[tuple[Path, tuple[int, int, int]]]:
        """Every file of the folder and its subfolders, with its signature; a folder that
        cannot be listed is said once (until it can be again), and the rest goes on."""
        own = self.archive.path
        stack = [self.folder]
        while stack:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError as exc:
                if folder not in self._bad_folders:
                    self._bad_folders.add(folder)
                    why = f"cannot be read ({exc.strerror or exc}); its files wait until it can be"
                    outcomes.append(Outcome("unreadable", folder, f"{folder}: {why}"))
                continue
            self._bad_folders.discard(folder)
            for entry in entries:
                if _SKIPPED.search(entry.name):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue  # gone between the listing and now
                path = Path(entry.path)
                if stat.S_ISDIR(st.st_mode):
                    if own is None or path.resolve() != own:
                        stack.append(path)
                elif stat.S_ISREG(st.st_mode):
                    yield path, _signature(st)
                elif stat.S_ISLNK(st.st_mode):
                    signature = (0, st.st_mtime_ns, st.st_ino)
                    if not self._failed_as(path, signature):
                        why = "a symbolic link, not followed; copy the file itself here"
                        outcomes.append(self._fail(path, signature, why))
                    yield path, signature  # kept, so that its report is kept

    def _known(self, paths: list[Path]) -> set[Path]:
        """Those of ``paths`` the catalog holds as they are now (same path, size and time):
        ingested before, by this watcher before a restart or by anyone; not hashed again."""
        by_text = {path_text(str(p.resolve())): p for p in paths}
        try:
            rows = self.archive.catalog.sources_from(list(by_text))
        except LabledgerError:  # the catalog is down: the ingest says so, and is tried again
            return set()
        found = set()
        for original, size, modified in rows:
            path = by_text[original]
            try:
                st = path.stat()
            except OSError:
                continue
            when = modified if modified.tzinfo else modified.replace(tzinfo=UTC)
            if st.st_size == size and abs(when.timestamp() - st.st_mtime) < 2e-6:
                found.add(path)
        return found

    def _same_file(self, path: Path, signature: tuple[int, int, int]) -> bool:
        """Whether ``path`` is still the regular file the look found, inside the folder, with
        no link on the way: a file swapped for a link to elsewhere is never ingested (ingest
        opens the path moments later; what happens in between is documented)."""
        try:
            st = os.lstat(path)
            inside = path.resolve(strict=True).is_relative_to(self.folder.resolve())
        except OSError:
            return False
        same = _signature(st) == signature
        return stat.S_ISREG(st.st_mode) and same and inside

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.folder).as_posix()

    def _shown(self, path: Path) -> str:
        return path_text(self._rel(path))

    # -- the state file -------------------------------------------------------------------

    def _load(self) -> dict[str, Failure]:
        try:
            data = json.loads(self.state.read_text())
            return {f["path"]: Failure(**f) for f in data["failed"]}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidArgument(
                f"{self.state}: the drop folder's state cannot be read ({first_line(exc)}); "
                "remove it to try every file of the folder again"
            ) from None

    def _save(self) -> None:
        data = {"folder": str(self.folder), "failed": [vars(f) for f in self.failed]}
        self.state.parent.mkdir(parents=True, exist_ok=True)
        new = self.state.with_name(self.state.name + ".new")
        with open(new, "w") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(new, self.state)


def open_for_writing(paths: Collection[Path]) -> set[Path]:
    """Those of ``paths`` that a process of this machine holds open for writing, as far as
    ``/proc`` shows (Linux; the processes of other users are hidden unless run as root);
    none where there is no ``/proc``.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as f:
    ...     open_for_writing([Path(f.name)]) == {Path(f.name)}
    True
    """
    wanted = {os.path.realpath(p): p for p in paths}
    held: set[Path] = set()
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return held
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue  # gone, or another user's
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target not in wanted:
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                    flags = next(
                        int(line.split()[1], 8) for line in info if line.startswith("flags:")
                    )
            except (OSError, StopIteration, ValueError):
                continue
            if flags & _O_ACCMODE in (os.O_WRONLY, os.O_RDWR):
                held.add(wanted[target])
    return held


def _signature(st: os.stat_result) -> tuple[int, int, int]:
    """What says a file changed: its size, mtime in ns and inode."""
    return st.st_size, st.st_mtime_ns, st.st_ino


def _check_folder(folder: Path) -> None:
    try:
        st = folder.stat()
    except FileNotFoundError:
        raise InvalidArgument(
            f"{folder} does not exist; create it, or give the folder the acquisition writes to"
        ) from None
    except OSError as exc:
        raise InvalidArgument(f"{folder}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidArgument(f"{folder} is not a folder; give the folder files are written to")
    try:
        os.scandir(folder).close()
    except OSError as exc:
        raise InvalidArgument(
            f"{folder}: cannot be read ({exc.strerror or exc}); let this user list it "
            "(chmod +rx) or run the watcher as one who can"
        ) from None


def _state_path(archive: Archive, folder: Path) -> Path:
    assert archive.path is not None
    digest = hashlib.sha256(os.fsencode(folder)).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", folder.name)[:40] or "root"
    return archive.path / STATE_FOLDER / f"{name}-{digest}.json"


def _without(reason: str, path: Path) -> str:
    """An ingest error without the path it starts with: the outcome names the file already."""
    for prefix in (f"{path}: ", f"{path} "):
        if reason.startswith(prefix):
            return reason[len(prefix) :]
    return reason
