"""A crash at any moment of an ingest (kill -9) leaves an archive that opens, shows no partial
run, and takes the same ingest again.

The kills land at known moments: the ingest is started with ``LABLEDGER_STOP_AT`` naming a
point of its write (labledger/faults.py), stops itself there, and the test kills it once it
sees it stopped. No guessed delay, so the moment that matters most (objects written, catalog
not yet committed) is hit every time, on a loaded machine too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from nptdms import ChannelObject, GroupObject, RootObject, TdmsFile, TdmsWriter

import labledger as ll
from labledger.errors import InvalidArgument
from labledger.faults import VARIABLE, stop_point
from tests.conftest import new_pg_database

# each block of the file (a channel's part of a segment) fills a whole chunk (524,288 int16
# values): from the first block on, an array's shard is written, whatever the thread that copies
# the raw file has done by then
SEGMENTS = 3
PER_SEGMENT = 1 << 19


def _tdms(path: Path, channels: int = 4, per_segment: int = PER_SEGMENT) -> Path:
    rng = np.random.default_rng(3)
    data = rng.integers(-2000, 2000, (channels, SEGMENTS * per_segment)).astype(np.int16)
    with TdmsWriter(path) as writer:
        for i in range(SEGMENTS):
            part = slice(i * per_segment, (i + 1) * per_segment)
            objs = [
                ChannelObject("PXI M6251", f"ai{c}", data[c, part], {"wf_increment": 2e-5})
                for c in range(channels)
            ]
            head = [RootObject({"gas": "Ar"}), GroupObject("PXI M6251")] if i == 0 else []
            writer.write_segment(head + objs)
    return path


def _ingest(archive: Path, file: Path, stop_at: str, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "LABLEDGER_ARCHIVE"}
    if stop_at:
        env[VARIABLE] = stop_at
    with log.open("w") as err:  # a file, not a pipe: a stopped writer must not block on it
        return subprocess.Popen(
            [sys.executable, "-m", "labledger.cli", "ingest", "-a", str(archive), str(file)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )


def _kill_when_stopped(proc: subprocess.Popen, log: Path) -> None:
    """Wait until the ingest stopped itself at its point, then kill -9 it there."""
    _, status = os.waitpid(proc.pid, os.WUNTRACED)
    if not os.WIFSTOPPED(status):
        proc.returncode = os.waitstatus_to_exitcode(status)
        ended = f"the ingest ended ({proc.returncode}) before its stop point"
        pytest.fail(f"{ended}: {log.read_text()}")
    proc.kill()
    proc.wait(timeout=60)


def _orphans(la: ll.Archive) -> int:
    """Run folders in the store that no catalogued run names."""
    return len({k.split("/")[1] for k in la.store.list("runs")} - {r.id for r in la.runs})


def _check_whole(la: ll.Archive, expected: dict[str, np.ndarray]) -> None:
    (run,) = la.runs
    assert run.number == 5000 and run.state == "closed"
    assert sorted(run.channels) == sorted(expected)
    for key, values in expected.items():
        np.testing.assert_array_equal(run.channels[key][:], values)


@pytest.mark.slow
def test_kill_9_at_each_point_of_an_ingest(
    catalog_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    def new_archive(name: str) -> Path:
        catalog = None if catalog_kind == "sqlite" else new_pg_database(request)
        ll.init(tmp_path / name, catalog=catalog).close()
        return tmp_path / name

    big = _tdms(tmp_path / "5000_big.tdms")
    with TdmsFile.open(big) as f:
        expected = {f"PXI M6251/{c.name}": c.read_data() for c in f["PXI M6251"].channels()}
    log = tmp_path / "stderr.txt"

    # killed before the catalog commit, at every kind of moment: nothing shows, the ingest
    # can be run again; from the first block on, the kill leaves written objects behind
    folder = new_archive("uncommitted")
    written_before = 0
    for point in ("ingest.planned", "ingest.block:1", "ingest.block:9", "ingest.persisted"):
        _kill_when_stopped(_ingest(folder, big, point, log), log)
        with ll.open(folder) as la:  # it opens, whatever moment the kill came at
            assert list(la.runs) == [], point
            left = _orphans(la)
        if point != "ingest.planned":
            assert left > written_before, point  # the kill landed while writing
        written_before = left
    again = _ingest(folder, big, "", log)
    assert again.wait(timeout=120) == 0, log.read_text()
    with ll.open(folder) as la:
        _check_whole(la, expected)

    # killed just after the commit: the run is there, whole
    folder = new_archive("committed")
    _kill_when_stopped(_ingest(folder, big, "ingest.committed", log), log)
    with ll.open(folder) as la:
        _check_whole(la, expected)
    done = _ingest(folder, big, "", log)
    assert done.wait(timeout=120) == 0, log.read_text()  # the same file again: already kept
    with ll.open(folder) as la:
        _check_whole(la, expected)


def test_stop_points_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from labledger import faults

    for bad in ("ingest.nowhere", "ingest.block:0", "ingest.block:x", "ingest.block:²"):
        monkeypatch.setattr(faults, "_WANTED", bad)
        with pytest.raises(InvalidArgument, match="POINT\\[:N\\]"):
            stop_point("ingest.block")
    monkeypatch.setattr(faults, "_WANTED", "")
    stop_point("ingest.block")  # unset: goes on
