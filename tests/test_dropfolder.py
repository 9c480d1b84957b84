"""The drop folder (issue 15): raw files ingested once each, once whole, surviving restarts;
what cannot be ingested reported once, never looped on. The watcher is driven step by step
on a clock of the test's own: no test waits for time to pass."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import labledger as ll
from labledger import dropfolder
from labledger.dropfolder import GIVE_UP, SETTLE, DropFolder, open_for_writing
from labledger.errors import BadInput, InvalidArgument
from labledger.notifications import Watcher
from labledger.sim import write_shot
from tests.conftest import cli, snapshot


class Clock:
    """The watcher's clock, moved by the test; it starts at the real time, to which the files'
    modification times are compared."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Ingests:
    """Counts the archive's ingests, to see that a step tried none."""

    def __init__(self, la: ll.Archive, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[Path] = []
        real = la.ingest

        def counted(paths: Any, **kwargs: Any) -> Any:
            self.paths += [Path(p) for p in paths]
            return real(paths, **kwargs)

        monkeypatch.setattr(la, "ingest", counted)


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    folder = tmp_path / "outbox"
    folder.mkdir()
    return folder


@pytest.fixture
def shots(tmp_path: Path) -> Iterator[Path]:
    """Whole shot files written elsewhere, to be put in the drop folder by the tests."""
    folder = tmp_path / "daq"
    folder.mkdir()
    for number in (1271, 1272):
        write_shot(folder, number)
    yield folder


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def kept(la: ll.Archive) -> dict[int, list[str]]:
    """Each run's raw files by sha256, as the catalog holds them."""
    return {run.number: [s.sha256 for s in run.sources] for run in la.runs}


def without_state(state: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in state.items() if not k.startswith("file:watch/")}


def test_each_file_is_ingested_once_when_settled_and_announced(
    archive: ll.Archive, outbox: Path, shots: Path
) -> None:
    clock = Clock()
    announced = Watcher(archive.catalog, kinds=["run"])
    drop = DropFolder(archive, outbox, clock=clock)
    for name in ("01271_Data.tdms", "01272_Data.tdms"):
        (outbox / name).write_bytes((shots / name).read_bytes())
    assert drop.step() == []  # just seen: not settled yet
    assert len(archive.runs) == 0 and drop.pending() == sorted(outbox.iterdir())
    clock.advance(SETTLE)
    done = drop.step()
    assert sorted((o.kind, o.run, o.path.name) for o in done) == [
        ("ingested", 1271, "01271_Data.tdms"),
        ("ingested", 1272, "01272_Data.tdms"),
    ]
    assert kept(archive) == {n: [sha256(shots / f"0{n}_Data.tdms")] for n in (1271, 1272)}
    assert sorted(e["number"] for e in announced.poll()) == [1271, 1272]
    clock.advance(10 * SETTLE)
    assert drop.step() == [] and drop.pending() == []  # once each
    assert announced.poll() == []


def test_a_writer_pausing_mid_file_is_waited_for(
    sqlite_archive: ll.Archive, outbox: Path, shots: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that writes half a shot, holds the file open and stalls for longer than any
    window: nothing is tried while it holds the file; once it closes it, the whole file is
    ingested."""
    la, clock = sqlite_archive, Clock()
    ingests = Ingests(la, monkeypatch)
    drop = DropFolder(la, outbox, clock=clock)
    source, target = shots / "01271_Data.tdms", outbox / "01271_Data.tdms"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(source), str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline() == "paused\n"
        assert 0 < target.stat().st_size < source.stat().st_size
        for _ in range(3):
            assert drop.step() == []
            clock.advance(2 * GIVE_UP)  # past every window: only the open file holds it back
        assert (ingests.paths, len(la.runs), drop.failed) == ([], 0, [])
        assert drop.pending() == [target]
        writer.stdin.write("go on\n")
        writer.stdin.flush()
        assert writer.stdout.readline() == "done\n"  # written whole, and closed
        assert drop.step() == []  # it changed: settled again first
        clock.advance(SETTLE)
        [outcome] = drop.step()
        assert (outcome.kind, outcome.run) == ("ingested", 1271)
        assert kept(la) == {1271: [sha256(source)]}
    finally:
        writer.kill()
        writer.wait()


WRITER = """
import sys
data = open(sys.argv[1], "rb").read()
with open(sys.argv[2], "wb") as f:
    f.write(data[: len(data) // 2])
    f.flush()
    print("paused", flush=True)
    sys.stdin.readline()
    f.write(data[len(data) // 2 :])
print("done", flush=True)
sys.stdin.readline()
"""


def test_a_file_left_half_written_is_tried_again_quietly_until_it_is_whole(
    sqlite_archive: ll.Archive, outbox: Path, shots: Path
) -> None:
    """A writer that closes the file mid-file (a copy that stalls; a writer on another
    machine): the format refuses the truncated file, which is tried again, not reported,
    while it may still be being written; the whole file, once there, is ingested."""
    la, clock = sqlite_archive, Clock()
    drop = DropFolder(la, outbox, clock=clock)
    data = (shots / "01271_Data.tdms").read_bytes()
    target = outbox / "01271_Data.tdms"
    target.write_bytes(data[: len(data) // 3])
    drop.step()
    for _ in range(4):
        clock.advance(GIVE_UP / 8)  # tried, refused, tried again later: within GIVE_UP
        assert drop.step() == []
    assert (len(la.runs), drop.failed, drop.pending()) == (0, [], [target])
    with open(target, "ab") as f:
        f.write(data[len(data) // 3 :])
    drop.step()
    clock.advance(SETTLE)
    [outcome] = drop.step()
    assert (outcome.kind, outcome.run) == ("ingested", 1271)
    assert kept(la) == {1271: [hashlib.sha256(data).hexdigest()]}


def test_what_cannot_be_ingested_is_reported_once_and_a_restart_loops_on_nothing(
    archive: ll.Archive, outbox: Path, shots: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    ingests = Ingests(archive, monkeypatch)
    data = (shots / "01272_Data.tdms").read_bytes()
    (outbox / "notes.bin").write_bytes(b"\x00\x01\x02 not a raw format \xff" * 10)
    (outbox / "01272_Data.tdms").write_bytes(data[: len(data) // 2])  # damaged for good
    (outbox / "01271_Data.tdms").write_bytes((shots / "01271_Data.tdms").read_bytes())
    drop = DropFolder(archive, outbox, clock=clock)
    drop.step()
    clock.advance(SETTLE)
    assert [o.kind for o in drop.step()] == ["ingested"]  # the damaged one may be truncated
    clock.advance(GIVE_UP)  # unchanged since its writer left it: its failure is final
    outcomes = {o.path.name: o for o in drop.step()}
    assert sorted((o.kind, name) for name, o in outcomes.items()) == [
        ("failed", "01272_Data.tdms"),
        ("failed", "notes.bin"),
    ]
    for name, said in (("notes.bin", "unknown format"), ("01272_Data.tdms", "truncated")):
        message = outcomes[name].message
        assert message.startswith(f"{name}: not ingested: ") and said in message
        assert "\n" not in message and str(drop.state) in message
    assert {f.path for f in drop.failed} == {"notes.bin", "01272_Data.tdms"}
    assert kept(archive) == {1271: [sha256(shots / "01271_Data.tdms")]}  # nothing half-kept
    report = archive.check()
    assert report.ok and report.problems == []  # and no folder of a failed ingest left
    before, tried = snapshot(archive), len(ingests.paths)
    for _ in range(3):
        clock.advance(GIVE_UP)
        assert drop.step() == []  # reported once, not tried again
    # a restart: the ingested file is known by the catalog, the failed ones by the state file
    again = DropFolder(archive, outbox, clock=clock)
    assert {f.path for f in again.failed} == {"notes.bin", "01272_Data.tdms"}
    assert again.step() == []
    clock.advance(SETTLE)
    assert again.step() == [] and again.pending() == []
    assert len(ingests.paths) == tried and snapshot(archive) == before
    # a failed file that changes is tried again; one removed leaves the report
    (outbox / "01272_Data.tdms").write_bytes(data)
    (outbox / "notes.bin").unlink()
    again.step()
    clock.advance(SETTLE)
    assert [(o.kind, o.run) for o in again.step()] == [("ingested", 1272)]
    assert again.failed == [] and DropFolder(archive, outbox, clock=clock).failed == []


def test_a_file_that_disappears_before_its_ingest_is_said_and_not_kept(
    sqlite_archive: ll.Archive, outbox: Path, shots: Path
) -> None:
    la, clock = sqlite_archive, Clock()
    for name in ("01271_Data.tdms", "01272_Data.tdms"):
        (outbox / name).write_bytes((shots / name).read_bytes())
    victim = outbox / "01271_Data.tdms"

    def writers(paths: Any) -> set[Path]:  # asked just before the ingest: the file goes then
        victim.unlink()
        return set()

    drop = DropFolder(la, outbox, clock=clock, writers=writers)
    drop.step()
    clock.advance(SETTLE)
    outcomes = {o.path.name: o for o in drop.step()}
    assert outcomes["01271_Data.tdms"].kind == "gone"
    assert outcomes["01271_Data.tdms"].message == (
        "01271_Data.tdms: disappeared before it could be ingested; nothing of it was kept"
    )
    assert (outcomes["01272_Data.tdms"].kind, outcomes["01272_Data.tdms"].run) == ("ingested", 1272)
    assert list(kept(la)) == [1272] and drop.failed == [] and drop.pending() == []


def test_an_unreadable_subfolder_is_said_once_and_the_rest_goes_on(
    sqlite_archive: ll.Archive, outbox: Path, shots: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    la, clock = sqlite_archive, Clock()
    locked = outbox / "2026-11-30"
    locked.mkdir()
    (locked / "01272_Data.tdms").write_bytes((shots / "01272_Data.tdms").read_bytes())
    (outbox / "01271_Data.tdms").write_bytes((shots / "01271_Data.tdms").read_bytes())
    unreadable(locked, monkeypatch)
    drop = DropFolder(la, outbox, clock=clock)
    [said] = drop.step()
    assert said.kind == "unreadable" and said.path == locked
    assert said.message.startswith(f"{locked}: cannot be read (Permission denied)")
    clock.advance(SETTLE)
    assert [(o.kind, o.run) for o in drop.step()] == [("ingested", 1271)]  # said once
    readable_again(locked, monkeypatch)
    drop.step()
    clock.advance(SETTLE)
    assert [(o.kind, o.run) for o in drop.step()] == [("ingested", 1272)]  # in a subfolder too


def unreadable(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``folder`` cannot be listed: by its mode, or, for root (whom modes do not stop), by
    the one call the watcher lists folders with."""
    if os.geteuid() != 0:
        folder.chmod(0)
        return
    real = os.scandir

    def scandir(path: Any) -> Any:
        if Path(path) == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(dropfolder.os, "scandir", scandir)


def readable_again(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder.chmod(0o755)
    monkeypatch.undo()


def test_a_folder_that_is_not_there_or_not_readable_is_refused_in_one_line(
    sqlite_archive: ll.Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(
        InvalidArgument, match=f"^{re.escape(str(missing))} does not exist; create it, or give"
    ):
        DropFolder(sqlite_archive, missing)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(InvalidArgument, match="a_file is not a folder; give the folder"):
        DropFolder(sqlite_archive, tmp_path / "a_file")
    locked = tmp_path / "locked"
    locked.mkdir()
    unreadable(locked, monkeypatch)
    with pytest.raises(
        InvalidArgument, match=f"^{re.escape(str(locked))}: cannot be read \\(Permission denied\\)"
    ):
        DropFolder(sqlite_archive, locked)
    with pytest.raises(InvalidArgument, match="settle=-1"):
        DropFolder(sqlite_archive, tmp_path, settle=-1)
    with pytest.raises(BadInput, match="^unknown format 'tmds'; known formats: csv, hdf5, tdms"):
        DropFolder(sqlite_archive, tmp_path, format="tmds")
    assert not (sqlite_archive.path / "watch").exists()  # type: ignore[operator]


def test_links_are_reported_not_followed(
    sqlite_archive: ll.Archive, outbox: Path, shots: Path
) -> None:
    (outbox / "01271_Data.tdms").symlink_to(shots / "01271_Data.tdms")
    drop = DropFolder(sqlite_archive, outbox, settle=0)
    [outcome] = drop.step()
    assert outcome.kind == "failed" and "a symbolic link, not followed" in outcome.message
    assert drop.step() == [] and len(sqlite_archive.runs) == 0


def test_a_damaged_state_file_is_said_in_one_line(sqlite_archive: ll.Archive, outbox: Path) -> None:
    drop = DropFolder(sqlite_archive, outbox)
    drop.state.parent.mkdir(parents=True)
    drop.state.write_text("{not json")
    with pytest.raises(InvalidArgument, match="state cannot be read .*; remove it to try every"):
        DropFolder(sqlite_archive, outbox)


def test_open_for_writing_sees_writers_not_readers(tmp_path: Path) -> None:
    path = tmp_path / "f.tdms"
    path.write_bytes(b"x")
    with open(path, "rb"):
        assert open_for_writing([path]) == set()
    with open(path, "ab"):
        assert open_for_writing([path]) == {path}
    assert open_for_writing([path]) == set()


def test_the_command_once(tmp_path: Path, outbox: Path, shots: Path) -> None:
    archive = tmp_path / "archive"
    assert cli("init", str(archive)).returncode == 0
    (outbox / "01271_Data.tdms").write_bytes((shots / "01271_Data.tdms").read_bytes())
    done = cli("watch", str(outbox), "--archive", str(archive), "--once", "--settle", "0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("01271_Data.tdms: ingested as run 1271 (")
    again = cli("watch", str(outbox), "--archive", str(archive), "--once", "--settle", "0")
    assert (again.returncode, again.stdout) == (0, "")  # a restart: nothing twice
    (outbox / "bad.bin").write_bytes(b"\x00\x01 not a raw format")
    os.utime(outbox / "bad.bin", (0, 0))  # left long ago: its failure is final at once
    failed = cli("watch", str(outbox), "-a", str(archive), "--once", "--settle", "0", "--json")
    assert failed.returncode == 1
    assert failed.stdout.count("\n") == 1 and '"kind": "failed"' in failed.stdout
    assert "bad.bin: not ingested: unknown format" in failed.stdout
    quiet = cli("watch", str(outbox), "-a", str(archive), "--once", "--settle", "0")
    assert (quiet.returncode, quiet.stdout) == (0, "")  # reported once
    retried = cli("watch", str(outbox), "-a", str(archive), "--once", "--settle", "0", "--retry")
    assert retried.returncode == 1 and "bad.bin: not ingested" in retried.stderr
    missing = cli("watch", str(tmp_path / "nowhere"), "-a", str(archive), "--once")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr == f"error: {tmp_path / 'nowhere'} does not exist; create it, or " \
        "give the folder the acquisition writes to\n"  # fmt: skip


def test_the_command_ingests_as_files_arrive_and_stops_on_sigterm(
    tmp_path: Path, outbox: Path, shots: Path
) -> None:
    archive = tmp_path / "archive"
    assert cli("init", str(archive)).returncode == 0
    watcher = subprocess.Popen(
        [sys.executable, "-m", "labledger.cli", "watch", str(outbox), "-a", str(archive)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None and watcher.stderr is not None
        assert watcher.stderr.readline().startswith(f"watching {outbox} for <Archive ")
        (outbox / "01272_Data.tdms").write_bytes((shots / "01272_Data.tdms").read_bytes())
        assert watcher.stdout.readline().startswith("01272_Data.tdms: ingested as run 1272 (")
        watcher.terminate()  # SIGTERM, as a service manager stops it
        assert watcher.wait(timeout=60) == 0
        assert watcher.stderr.read() == f"stopped watching {outbox}\n"
    finally:
        watcher.kill()
        watcher.wait()
    with ll.open(archive) as la:
        assert kept(la) == {1272: [sha256(shots / "01272_Data.tdms")]}


def test_a_file_held_open_is_looked_at_each_interval_not_in_a_busy_loop(
    sqlite_archive: ll.Archive, outbox: Path
) -> None:
    clock = Clock()
    held = outbox / "01271_Data.tdms"
    held.write_bytes(b"TDSm")
    drop = DropFolder(sqlite_archive, outbox, clock=clock, writers=lambda paths: set(paths))
    drop.step()
    assert drop._next_wait(10.0) == SETTLE  # it settles before the next look would come
    clock.advance(SETTLE)
    assert drop.step() == []
    assert drop._next_wait(10.0) == 10.0  # settled, held: the next look, not sooner


def test_reports_in_a_folder_that_cannot_be_listed_are_kept(
    sqlite_archive: ll.Archive, outbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A share that drops out for a while: its failed files are not forgotten (and reported
    again when it is back)."""
    clock = Clock()
    day = outbox / "day1"
    day.mkdir()
    (day / "bad.bin").write_bytes(b"\x00\x01 not a raw format")
    os.utime(day / "bad.bin", (0, 0))
    drop = DropFolder(sqlite_archive, outbox, clock=clock, settle=0)
    assert [o.kind for o in drop.step()] == ["failed"]
    unreadable(day, monkeypatch)
    assert [o.kind for o in drop.step()] == ["unreadable"]
    assert [f.path for f in drop.failed] == ["day1/bad.bin"]
    readable_again(day, monkeypatch)
    assert drop.step() == [] and [f.path for f in drop.failed] == ["day1/bad.bin"]


def test_the_archive_or_a_folder_inside_it_is_refused_as_a_drop_folder(
    sqlite_archive: ll.Archive,
) -> None:
    assert sqlite_archive.path is not None
    inside = sqlite_archive.path / "store"
    for folder in (sqlite_archive.path, inside):
        with pytest.raises(InvalidArgument, match="is inside the archive .*a folder of their own"):
            DropFolder(sqlite_archive, folder)


def test_a_file_swapped_for_a_link_after_the_look_is_not_ingested(
    sqlite_archive: ll.Archive, outbox: Path, shots: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the look that found a settled file and its ingest, the file is replaced by a
    link to a file outside the folder: the watcher looks again instead of reading it."""
    ingests = Ingests(sqlite_archive, monkeypatch)
    drop = DropFolder(sqlite_archive, outbox, settle=0)
    target = outbox / "01271_Data.tdms"
    shutil.copyfile(shots / "01271_Data.tdms", target)
    st = target.stat()
    looked = (st.st_size, st.st_mtime_ns, st.st_ino)
    target.unlink()
    target.symlink_to(shots / "01271_Data.tdms")  # same bytes, outside the folder
    drop._seen[target] = dropfolder._Seen(looked, 0.0)
    assert drop._take(target, looked, 0.0) == []
    assert ingests.paths == [] and len(sqlite_archive.runs) == 0
