"""Ingest and the runs API: numbering, idempotence, conflicts, runs from several files, search."""

from __future__ import annotations

import shutil
from datetime import UTC, timedelta
from pathlib import Path

import numpy as np
import pytest
from nptdms import TdmsFile

import labledger as ll
from labledger.errors import BadInput, InvalidArgument, NotFound, RunConflict
from labledger.sim import Shot, write_shot
from tests.conftest import snapshot


@pytest.fixture
def shots(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "daq"
    folder.mkdir()
    return [write_shot(folder, n) for n in (1231, 1232, 1234)]


def test_a_simulated_shot_round_trips(archive: ll.Archive, shots: list[Path]) -> None:
    results = archive.ingest(shots)
    assert [r.number for r in results] == [1231, 1232, 1234]  # the digits in the file names
    assert [r.channels for r in results] == [16, 16, 16]
    run = archive.runs[1234]
    assert (run.number, run.state) == (1234, "closed")
    assert len(run.id) == 36 and run.id[14] == "7"  # a UUIDv7
    assert run.metadata["gas"] in ("Ar", "He")
    assert run.metadata["shot"] == 1234
    assert "truth.T_e" in run.metadata
    raw = TdmsFile.read(shots[2])["PXI M6251"]["ai3"]
    ch = run.channels["PXI M6251/ai3"]
    assert (ch.shape, ch.dtype) == ((len(raw),), np.dtype("<i2"))
    np.testing.assert_array_equal(ch[10_000:20_000], raw.raw_data[10_000:20_000])
    xr = ch.to_xarray()
    np.testing.assert_allclose(xr.coords["time"].values, raw.time_track())
    assert xr.attrs["labledger_run"] == 1234
    # the acquisition's start: the waveform's t0 plus its (negative) pre-trigger offset
    assert run.started == Shot.simulate(1234).started - timedelta(seconds=0.1)
    assert run.started.tzinfo == UTC


def test_newest_by_number_by_id_len_iteration(archive: ll.Archive, shots: list[Path]) -> None:
    archive.ingest(shots)
    assert archive.runs[-1].number == 1234  # the latest start
    assert archive.runs[-2].number == 1232
    assert archive.runs[-1] == archive.runs[1234] == archive.runs[archive.runs[-1].id]
    assert len(archive.runs) == 3
    assert [r.number for r in archive.runs] == [1231, 1232, 1234]
    assert [r.number for r in archive.runs[1200:1233]] == [1231, 1232]
    assert 1232 in archive.runs and 1233 not in archive.runs
    with pytest.raises(NotFound, match="run 1233 does not exist; the newest is run 1234"):
        archive.runs[1233]
    with pytest.raises(NotFound, match="only 3 closed runs"):
        archive.runs[-4]


def test_an_empty_archive_says_so(archive: ll.Archive) -> None:
    assert len(archive.runs) == 0
    with pytest.raises(NotFound, match="no runs yet"):
        archive.runs[-1]


def test_the_same_bytes_twice_is_a_no_op(
    archive: ll.Archive, shots: list[Path], tmp_path: Path
) -> None:
    archive.ingest(shots[:1])
    before = snapshot(archive)
    again = archive.ingest(shots[:1])
    assert (
        again[0].already and again[0].message() == "01231_Data.tdms: already ingested as run 1231"
    )
    copy = tmp_path / "renamed_copy.tdms"  # same bytes under another name: still the same data
    shutil.copy(shots[0], copy)
    [renamed] = archive.ingest([copy])
    assert renamed.already and renamed.number == 1231
    assert snapshot(archive) == before


def test_different_bytes_claiming_a_taken_number_are_refused(
    archive: ll.Archive, shots: list[Path], tmp_path: Path
) -> None:
    archive.ingest(shots[:1])
    before = snapshot(archive)
    other = tmp_path / "other" / "01231_Data.csv"  # named as shot 1231, stating no number
    other.parent.mkdir()
    other.write_text("time,volts\n0.0,1.5\n")
    with pytest.raises(RunConflict) as refused:
        archive.ingest([other])
    message = str(refused.value)
    assert "run 1231 already exists from 01231_Data.tdms" in message and str(other) in message
    assert snapshot(archive) == before


def test_explicit_and_next_free_numbers(
    archive: ll.Archive, shots: list[Path], tmp_path: Path
) -> None:
    archive.ingest([shots[0]], run=7)
    assert archive.runs[7].sources[0].name == "01231_Data.tdms"
    nameless = tmp_path / "scope.csv"
    nameless.write_text("time,volts\n0.0,1.5\n0.1,2.5\n")
    [result] = archive.ingest([nameless])
    assert result.number == 8  # no digits in the name: the next free number


def test_one_run_from_several_files(archive: ll.Archive, shots: list[Path], tmp_path: Path) -> None:
    scope = tmp_path / "scope.csv"
    scope.write_text("# gas: Xe\n# probe = tip 2\ntime (s),V_probe,label\n0.0,1.5,a\n1e-3,2.5,b\n")
    [result] = archive.ingest([shots[0], scope], run=99)
    run = archive.runs[99]
    assert [s.name for s in run.sources] == ["01231_Data.tdms", "scope.csv"]
    assert result.channels == 16 + 3
    np.testing.assert_array_equal(run.channels["V_probe"][:], [1.5, 2.5])
    assert list(run.channels["label"][:]) == ["a", "b"]
    xr = run.channels["V_probe"].to_xarray()
    assert list(xr.coords["time"].values) == [0.0, 1e-3]
    assert xr.coords["time"].attrs["units"] == "s"
    # the first file keeps plain metadata keys; a later file's different value is prefixed
    assert run.metadata["probe"] == "tip 2"
    assert run.metadata["scope.csv:gas"] == "Xe" and run.metadata["gas"] != "Xe"
    assert archive.runs.search(source="scope.csv") == [run]


def test_files_sharing_a_number_form_one_run(
    archive: ll.Archive, shots: list[Path], tmp_path: Path
) -> None:
    scope = tmp_path / "01231_scope.csv"
    scope.write_text("t,x\n0,1\n")
    [result] = archive.ingest([shots[0], scope])
    assert result.number == 1231 and len(archive.runs[1231].sources) == 2


def test_a_channel_in_two_files_of_one_run_is_refused(archive: ll.Archive, tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("x\n1\n")
    b.write_text("x\n2\n")
    before = snapshot(archive)
    with pytest.raises(BadInput, match="channel 'x' is also in another file of run 5"):
        archive.ingest([a, b], run=5)
    assert snapshot(archive) == before


def test_search(archive: ll.Archive, shots: list[Path]) -> None:
    helium = write_shot(shots[0].parent, 1261)
    archive.ingest([*shots, helium])
    # the gas as the DAQ wrote it, read with npTDMS: a search must leave the helium shot out
    gases = {n: TdmsFile.read_metadata(p).properties["gas"]
             for n, p in zip((1231, 1232, 1234, 1261), [*shots, helium], strict=True)}  # fmt: skip
    assert sorted(set(gases.values())) == ["Ar", "He"]
    argon = sorted(n for n, g in gases.items() if g == "Ar")
    assert [r.number for r in archive.runs.search(gas="Ar")] == argon
    assert [r.number for r in archive.runs.search(gas="He")] == [1261]
    assert [r.number for r in archive.runs.search(gas=["Ar", "He"])] == [1231, 1232, 1234, 1261]
    assert [r.number for r in archive.runs.search(shot=1232)] == [1232]
    assert archive.runs.search(since="2026-12-01") == []
    started = archive.runs[1232].started
    assert [r.number for r in archive.runs.search(since=started)] == [1232, 1234, 1261]
    assert [r.number for r in archive.runs.search(until=started)] == [1231]
    by_model = archive.runs.search(where={"PXI M6251@model": "NI PXI-6251"})
    assert [r.number for r in by_model] == [1231, 1232, 1234, 1261]
    assert archive.runs.search(since="2026-11-01", gas="Kr") == []
    with pytest.raises(InvalidArgument, match="since='yesterday' is not a date"):
        archive.runs.search(since="yesterday")


def test_csv_with_timestamps_and_gaps(sqlite_archive: ll.Archive, tmp_path: Path) -> None:
    path = tmp_path / "17_log.csv"
    path.write_text(
        "timestamp,T_wall,flag\n"
        "2026-11-20T10:00:00,21.5,true\n"
        "2026-11-20T10:00:01,,false\n"
        "2026-11-20T10:00:02,22.0,true\n"
    )
    sqlite_archive.ingest([path])
    run = sqlite_archive.runs[17]
    wall = run.channels["T_wall"]
    np.testing.assert_array_equal(wall[:], [21.5, np.nan, 22.0])
    assert run.channels["timestamp"].dtype.kind == "M"
    xr = wall.to_xarray()
    assert xr.coords["time"].values[0] == np.datetime64("2026-11-20T10:00:00")
    assert list(run.channels["flag"][:]) == [True, False, True]


def test_a_csv_integer_column_with_a_gap_is_refused(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    path = tmp_path / "counts.csv"
    path.write_text("n\n" + "\n".join(str(i) for i in range(5)) + "\n\n")
    sqlite_archive.ingest([path])  # a trailing empty line is not a gap
    gap = tmp_path / "gap.csv"
    lines = ["a,n"] + [f"{i},{i}" for i in range(200_000)] + ["1,"]
    gap.write_text("\n".join(lines) + "\n")
    before = snapshot(sqlite_archive)
    with pytest.raises(BadInput, match="gap.csv"):
        sqlite_archive.ingest([gap])
    assert snapshot(sqlite_archive) == before


def test_each_file_of_a_run_has_its_own_data_folder(
    archive: ll.Archive, shots: list[Path], tmp_path: Path
) -> None:
    """A CSV column and a TDMS group of the same name do not write into each other."""
    table = tmp_path / "table.csv"
    table.write_text("PXI M6251\n1\n2\n")
    archive.ingest([shots[0], table], run=3)
    run = archive.runs[3]
    np.testing.assert_array_equal(run.channels["PXI M6251"][:], [1, 2])
    assert run.channels["PXI M6251/ai0"].shape == (35000,)


def test_the_same_bytes_twice_in_one_command_are_refused(
    archive: ll.Archive, shots: list[Path], tmp_path: Path
) -> None:
    twin = tmp_path / "copy" / "twin.tdms"
    twin.parent.mkdir()
    shutil.copy(shots[0], twin)
    with pytest.raises(BadInput, match="hold the same bytes"):
        archive.ingest([shots[0], twin], run=9)
    assert len(archive.runs) == 0


def test_run_numbers_out_of_range(archive: ll.Archive, tmp_path: Path) -> None:
    huge = tmp_path / "scan_123456789012345678901234.csv"
    huge.write_text("x\n1\n")
    with pytest.raises(BadInput, match="too large for a run number; pass --run N"):
        archive.ingest([huge])
    with pytest.raises(BadInput, match="run numbers go from 0"):
        archive.ingest([huge], run=-1)
    with pytest.raises(NotFound, match="run numbers go up to"):
        archive.runs[10**30]


def test_tdms_index_files_beside_their_data_are_left_alone(
    archive: ll.Archive, shots: list[Path], tmp_path: Path
) -> None:
    index = shots[0].with_suffix(".tdms_index")
    index.write_bytes(b"TDSh" + b"\0" * 24)
    [result] = archive.ingest([shots[0], index])
    assert result.files == ["01231_Data.tdms"]
    alone = tmp_path / "lonely.tdms_index"
    alone.write_bytes(b"TDSh" + b"\0" * 24)
    with pytest.raises(BadInput, match="TDMS index file; ingest the .tdms file it indexes"):
        archive.ingest([alone])


def test_a_failure_names_the_runs_already_made(
    archive: ll.Archive, shots: list[Path], tmp_path: Path
) -> None:
    damaged = tmp_path / "5000_log.csv"  # damage found only while streaming
    damaged.write_text("n,x\n" + "".join(f"{i},{i}.5\n" for i in range(1_000_000)) + "oops,1\n")
    with pytest.raises(BadInput) as refused:
        archive.ingest([shots[0], damaged])
    assert "(before that: 01231_Data.tdms: ingested as run 1231" in str(refused.value)
    assert [r.number for r in archive.runs] == [1231]


def test_search_arguments_are_checked(archive: ll.Archive) -> None:
    with pytest.raises(InvalidArgument, match="state='finished'"):
        archive.runs.search(state="finished")
    with pytest.raises(InvalidArgument, match="limit=-1"):
        archive.runs.search(limit=-1)
    with pytest.raises(InvalidArgument, match="text, numbers or booleans"):
        archive.runs.search(gas=None)


def test_the_metadata_keys_runs_have(archive: ll.Archive, shots: list[Path]) -> None:
    assert archive.catalog.metadata_keys() == [] and archive.catalog.known_keys(["gas"]) == set()
    archive.ingest(shots[:2])
    with TdmsFile.open(shots[0]) as f:  # what the file says, read by npTDMS
        expected = {k for k, v in f.properties.items() if isinstance(v, (str, int, float))}
        expected |= {f"{g.name}@{k}" for g in f.groups() for k in g.properties}
    keys = archive.catalog.metadata_keys()
    assert keys == sorted(keys) and len(keys) == len(set(keys))
    assert expected <= set(keys) and "labledger:number" in keys
    assert archive.catalog.metadata_keys(most=3) == keys[:3]
    assert archive.catalog.known_keys(["gas", "gass", "PXI M6251@model", ""]) == {
        "gas",
        "PXI M6251@model",
    }
