"""Run numbers: two ingests of files whose names carry no number, at the same moment, both
succeed as two runs (issue 11, item 7); on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

import labledger as ll
from labledger.catalog import Catalog
from labledger.catalog.catalog import NewRun
from labledger.errors import RunConflict
from labledger.ingest import IngestResult


def _csv(path: Path, offset: int) -> Path:
    path.write_text("t,x\n" + "".join(f"{i},{i + offset}\n" for i in range(100)))
    return path


def test_two_ingests_of_unnumbered_files_at_once_make_two_runs(
    archive: ll.Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive.ingest([_csv(tmp_path / "shot_7.csv", 0)])  # the next free number is now 8
    files = [_csv(tmp_path / "alpha.csv", 1000), _csv(tmp_path / "beta.csv", 2000)]
    # both ingests have planned (read the same "next free" number) and written their folders
    # before either records its run: the race, every time
    barrier = threading.Barrier(2)
    record = Catalog.add_run
    first_tries: set[int] = set()

    def add_run(catalog: Catalog, new: NewRun) -> None:
        if threading.get_ident() not in first_tries:
            first_tries.add(threading.get_ident())
            barrier.wait(timeout=120)  # a safety net against a hang, not a timing
        record(catalog, new)

    monkeypatch.setattr(Catalog, "add_run", add_run)
    results: dict[str, list[IngestResult]] = {}
    failures: list[BaseException] = []

    def ingest(path: Path) -> None:
        try:
            with ll.open(archive.path) as la:  # its own catalog connections
                results[path.name] = la.ingest([path])
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=ingest, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    numbers = sorted(r.number for found in results.values() for r in found)
    assert numbers == [8, 9]
    for name, (result,) in results.items():
        run = archive.runs[result.number]
        assert [s.name for s in run.sources] == [name]
        assert not result.already
        # the stored tree names the run by the number the catalog gave it
        root = json.loads(archive.store.read(f"runs/{run.id}/data/zarr.json"))
        assert root["attributes"] == {"run": result.number, "id": run.id}
    assert len(archive.runs) == 3
    assert sorted(
        k.split("/")[1] for k in archive.store.list("runs") if k.endswith("/data/zarr.json")
    ) == sorted(r.id for r in archive.runs)  # no folder of a lost attempt left behind


def test_a_number_given_by_the_file_name_is_not_moved(
    archive: ll.Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only numbers labledger chose move: a file named for run 12 that finds run 12 taken
    meanwhile is refused, as before, rather than filed under another number."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    mine, theirs = _csv(tmp_path / "a" / "shot_12.csv", 0), _csv(tmp_path / "b" / "shot_12.csv", 5)
    record = Catalog.add_run
    meanwhile: list[list[IngestResult]] = []

    def add_run(catalog: Catalog, new: NewRun) -> None:
        if not meanwhile:  # another ingest records run 12 between our plan and our commit
            meanwhile.append([])
            with ll.open(archive.path) as la:
                meanwhile[0] = la.ingest([theirs])
        record(catalog, new)

    monkeypatch.setattr(Catalog, "add_run", add_run)
    with pytest.raises(RunConflict, match="run 12 already exists"):
        archive.ingest([mine])
    assert [r.number for r in meanwhile[0]] == [12]
    assert [s.name for s in archive.runs[12].sources] == ["shot_12.csv"]
    assert archive.runs[12].id == meanwhile[0][0].run_id  # theirs, not ours
    assert len(archive.runs) == 1
