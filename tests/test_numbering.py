"""Run numbers: two ingests of files whose names carry no number, at the same moment, both
succeed as two runs (issue 11, item 7); a run's number comes from a file's own field, then a
shot file's name, else the next free one, and the run says which (issue 12, item 5). On SQLite
and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
from nptdms import ChannelObject, RootObject, TdmsFile, TdmsWriter

import labledger as ll
from labledger.catalog import Catalog
from labledger.catalog.catalog import NewRun
from labledger.errors import BadInput, RunConflict
from labledger.formats.base import StatedNumber, number_properties
from labledger.ingest.ingest import number_from_name, number_of, stated_number
from labledger.reports import IngestResult
from labledger.sim import write_shot
from tests.conftest import cli, snapshot


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


# -- where a run's number comes from (issue 12, item 5) -------------------------------------


def _entry_identifier(path: Path) -> int:
    """A NeXus file's first entry's entry_identifier, read with h5py alone."""
    with h5py.File(path, "r") as f:
        [entry] = [k for k in f if f[k].attrs.get("NX_class") in (b"NXentry", "NXentry")]
        raw = f[entry]["entry_identifier"][()]
    value = np.asarray(raw).reshape(-1)[0]
    return int(value.decode() if isinstance(value, bytes) else value)


def _nexus(path: Path, identifier: object) -> Path:
    with h5py.File(path, "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry["entry_identifier"] = identifier
        entry["data"] = np.arange(10.0) + sum(path.name.encode())  # bytes of its own
    return path


def test_a_real_nexus_file_takes_its_entry_identifier(
    archive: ll.Archive, nexus_dir: Path, tmp_path: Path
) -> None:
    path = nexus_dir / "538039.nxs"
    expected = _entry_identifier(path)
    assert expected != 538039  # the digits of the file name are not the number
    [result] = archive.ingest([path])
    assert result.number == expected
    assert result.numbered == "from NeXus entry1/entry_identifier"
    assert "; number: from NeXus entry1/entry_identifier)" in result.message()
    run = archive.runs[expected]
    assert [s.name for s in run.sources] == ["538039.nxs"]
    assert run.numbered == "from NeXus entry1/entry_identifier"
    assert run.to_dict()["numbered"] == run.numbered
    assert archive.runs.search(where={"labledger:number": run.numbered}) == [run]


def test_an_explicit_run_number_still_wins(archive: ll.Archive, nexus_dir: Path) -> None:
    [result] = archive.ingest([nexus_dir / "538039.nxs"], run=77)
    assert result.number == 77 and result.numbered == "from --run"
    assert archive.runs[77].numbered == "from --run"


def test_a_tdms_shot_property_numbers_the_run(
    archive: ll.Archive, tmp_path: Path, tdms_dir: Path
) -> None:
    shot = write_shot(tmp_path, 1234)
    with TdmsFile.open(shot) as f:
        stated = int(f.properties["shot"])
    renamed = shot.rename(tmp_path / "Therm_6_2.tdms")  # the name says nothing; the file does
    [result] = archive.ingest([renamed])
    assert result.number == stated == 1234
    assert result.numbered == "from TDMS property 'shot'"


def test_digits_in_a_name_that_is_not_a_shot_files_give_no_number(
    archive: ll.Archive, tmp_path: Path, tdms_dir: Path
) -> None:
    archive.ingest([_csv(tmp_path / "shot_7.csv", 0)])
    therm = tmp_path / "Therm_6_2.tdms"
    shutil.copy(tdms_dir / "raw1.tdms", therm)  # a real LabVIEW file: no shot property
    with TdmsFile.open(therm) as f:
        assert not any("shot" in str(k).lower() for k in f.properties)
    [result] = archive.ingest([therm])
    assert result.number == 8  # not 62, 6 or 2: the next free number
    assert result.numbered == "the next free number"
    assert archive.runs[8].numbered == "the next free number"
    for name in ("sample_0042.csv", "2026-11-30_scan.csv", "Focus_2021-03-16_051.csv"):
        [other] = archive.ingest([_csv(tmp_path / name, len(name))])
        assert other.numbered == "the next free number", name
    named = {
        "01234_Data.csv": 1234,
        "01235_scope.csv": 1235,
        "shot1236.csv": 1236,
        "run-1237.csv": 1237,
        "1238.csv": 1238,
    }
    for name, number in named.items():
        [made] = archive.ingest([_csv(tmp_path / name, number)])
        assert (made.number, made.numbered) == (number, "from the file name"), name


@pytest.mark.parametrize(
    ("identifier", "reason"),
    [
        ("abc", "NeXus entry/entry_identifier is 'abc', not a whole number"),
        ("-3", "NeXus entry/entry_identifier is -3, negative"),
        (-3, "NeXus entry/entry_identifier is -3, negative"),
        (1.5, "NeXus entry/entry_identifier is 1.5, not a whole number"),
        (str(2**64), f"NeXus entry/entry_identifier is {2**64}, over the largest run number"),
    ],
)
def test_an_entry_identifier_that_cannot_be_a_run_number_falls_back_saying_why(
    sqlite_archive: ll.Archive, tmp_path: Path, identifier: object, reason: str
) -> None:
    [named] = sqlite_archive.ingest([_nexus(tmp_path / "shot_12.h5", identifier)])
    assert named.number == 12  # the name of a shot file, next
    assert named.numbered.startswith("from the file name (") and reason in named.numbered
    [nameless] = sqlite_archive.ingest([_nexus(tmp_path / "Therm_6_2.h5", identifier)])
    assert nameless.number == 13  # then the next free number
    assert nameless.numbered.startswith("the next free number (") and reason in nameless.numbered
    assert reason in sqlite_archive.runs[13].numbered


def test_a_file_stating_two_numbers_falls_back_saying_so(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    path = tmp_path / "log.tdms"
    with TdmsWriter(path) as writer:
        root = RootObject({"shot": 5, "Shot Number": 6.0})
        writer.write_segment([root, ChannelObject("g", "c", np.arange(3.0))])
    [result] = sqlite_archive.ingest([path])
    assert result.number == 1
    stated = "TDMS property 'shot' is 5; TDMS property 'Shot Number' is 6"
    assert result.numbered == f"the next free number (the file states several numbers: {stated})"


def test_a_number_stated_by_a_file_that_is_taken_is_refused_as_a_duplicate(
    archive: ll.Archive, tmp_path: Path
) -> None:
    archive.ingest([write_shot(tmp_path, 1234)])
    before = snapshot(archive)
    scope = tmp_path / "scope.csv"
    scope.write_text("# shot: 1234\ntime,volts\n0.0,1.5\n")
    nexus = _nexus(tmp_path / "scan.h5", "1234")
    for path in (scope, nexus):
        with pytest.raises(RunConflict) as refused:
            archive.ingest([path])
        message = str(refused.value)
        assert "\n" not in message
        assert "run 1234 already exists from 01234_Data.tdms" in message and str(path) in message
        assert "pass --run N" in message
        assert snapshot(archive) == before
    [moved] = archive.ingest([scope], run=1300)  # as the error says
    assert moved.number == 1300


def test_show_says_where_the_number_came_from(tmp_path: Path, nexus_dir: Path) -> None:
    folder = str(tmp_path / "a")
    assert cli("init", folder).returncode == 0
    done = cli("ingest", "--archive", folder, str(nexus_dir / "538039.nxs"), "--run", "5")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("; number: from --run)")
    shown = cli("show", "5", "--archive", folder)
    assert "number: from --run" in shown.stdout.splitlines()


# -- the numbering rules, one by one (mutation survivors; expected values written by hand) -----

LARGEST = "9223372036854775807"  # 2**63 - 1, the catalog's BIGINT
F = "NeXus entry/entry_identifier"


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (" 0042 ", 42),
        ("+7", 7),
        ("0000", 0),
        ("-0", 0),  # minus zero is zero, not a negative number
        ("-000", 0),
        (LARGEST, 2**63 - 1),
        ("00000" + LARGEST, 2**63 - 1),  # leading zeros are not counted as digits
        (0, 0),
        (1234, 1234),
        (2**63 - 1, 2**63 - 1),
        (1234.0, 1234),  # LabVIEW's doubles
        (0.0, 0),
        (2.0**53, 2**53),
    ],
)
def test_a_stated_number_that_is_a_run_number(value: object, number: int) -> None:
    assert stated_number(StatedNumber(F, value)) == (number, "")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("abc", f"{F} is 'abc', not a whole number"),
        ("", f"{F} is '', not a whole number"),
        ("  ", f"{F} is '  ', not a whole number"),
        ("-", f"{F} is '-', not a whole number"),
        ("+-3", f"{F} is '+-3', not a whole number"),
        ("1.5", f"{F} is '1.5', not a whole number"),
        ("\u0663", f"{F} is '\u0663', not a whole number"),  # an Arabic-Indic three
        ("x" * 38, f"{F} is '{'x' * 38}', not a whole number"),  # 40 characters shown
        ("x" * 39, f"{F} is '{'x' * 39}..., not a whole number"),  # cut at 40
        ("-3", f"{F} is -3, negative"),
        ("-0042", f"{F} is -42, negative"),
        ("-" + "1" * 50, f"{F} is -{'1' * 40}, negative"),
        (
            "9223372036854775808",
            f"{F} is 9223372036854775808, over the largest run number ({LARGEST})",
        ),
        (str(2**64), f"{F} is 18446744073709551616, over the largest run number"),
        ("1" * 41, f"{F} is {'1' * 20}... (41 digits), over the largest run number"),
        ("1" * 40, f"{F} is {'1' * 40}, over the largest run number"),
        (True, f"{F} is True, not a whole number"),
        (False, f"{F} is False, not a whole number"),
        (b"12", f"{F} is b'12', not a whole number"),
        (None, f"{F} is None, not a whole number"),
        (-3, f"{F} is -3, negative"),
        (-1, f"{F} is -1, negative"),
        (2**63, f"{F} is 9223372036854775808, over the largest run number ({LARGEST})"),
        (1.5, f"{F} is 1.5, not a whole number"),
        (-2.0, f"{F} is -2, negative"),
        (float("nan"), f"{F} is nan, not a whole number"),
        (float("inf"), f"{F} is inf, not a whole number"),
        (-float("inf"), f"{F} is -inf, not a whole number"),
        (2.0**53 + 2, f"{F} is 9007199254740994.0, not a whole number"),  # past exact doubles
        (-(2.0**53) - 2, f"{F} is -9007199254740994.0, not a whole number"),
    ],
)
def test_a_stated_number_that_cannot_be_a_run_number_says_why(value: object, why: str) -> None:
    assert stated_number(StatedNumber(F, value)) == (None, why)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "number"),
    [
        ("01234_Data.tdms", 1234),
        ("01234_scope.csv", 1234),
        ("1238.csv", 1238),
        ("0000.csv", 0),
        ("shot1234.h5", 1234),
        ("shot_1234.h5", 1234),
        ("SHOT-12.h5", 12),
        ("run-0042.csv", 42),
        ("pulse.7.h5", 7),
        ("discharge 9_data.h5", 9),
        ("scan1234.nxs", 1234),
        ("538039.nxs", 538039),
        (LARGEST + ".csv", 2**63 - 1),
        ("000" + LARGEST + ".csv", 2**63 - 1),
        ("Therm_6_2.tdms", None),
        ("sample_0042.h5", None),
        ("2026-11-30_scan.h5", None),
        ("Focus_2021-03-16_051.h5", None),
        ("shot_7_data_x.csv", None),  # two words after the number
        ("7_Data2.csv", None),
        ("shotx7.csv", None),
        ("shot__7.csv", None),
        ("data.csv", None),
        ("shot.csv", None),
    ],
)
def test_the_number_of_a_shot_files_name(name: str, number: int | None) -> None:
    assert number_from_name(Path("some/folder") / name) == number


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("9223372036854775808.csv", "9223372036854775808.csv: 9223372036854775808 is too large"),
        ("shot_" + "1" * 41 + ".h5", f"shot_{'1' * 41}.h5: {'1' * 20}...(41 digits) is too large"),
        ("0" + "1" * 40 + ".csv", f"0{'1' * 40}.csv: {'1' * 40} is too large"),
    ],
)
def test_a_shot_files_number_over_the_largest_is_refused(name: str, message: str) -> None:
    with pytest.raises(BadInput) as refused:
        number_from_name(Path("folder") / name)
    text = str(refused.value)
    assert text.startswith(message) and text.endswith(" for a run number; pass --run N")
    assert "folder" not in text  # the file's name, not its folder


def test_the_number_of_a_file_and_where_it_came_from() -> None:
    shot, number = "TDMS property 'shot'", "TDMS property 'Shot Number'"
    assert number_of(Path("Therm_6_2.tdms")) == (None, "the next free number")
    assert number_of(Path("shot_7.h5")) == (7, "from the file name")
    assert number_of(Path("shot_7.h5"), [StatedNumber(shot, 0)]) == (0, f"from {shot}")
    # a bad value beside a good one: the good one, and nothing to explain
    stated = [StatedNumber(shot, "x"), StatedNumber(number, 12.0)]
    assert number_of(Path("shot_7.h5"), stated) == (12, f"from {number}")
    # the same number stated twice is one number
    found, how = number_of(Path("a.tdms"), [StatedNumber(shot, 5), StatedNumber(number, "05")])
    assert found == 5 and how in (f"from {shot}", f"from {number}")
    # two numbers: neither, and both said
    two = [StatedNumber(shot, 5), StatedNumber(number, 6)]
    several = f"the file states several numbers: {shot} is 5; {number} is 6"
    assert number_of(Path("shot_7.h5"), two) == (7, f"from the file name ({several})")
    assert number_of(Path("a.tdms"), two) == (None, f"the next free number ({several})")
    # every reason a stated value was passed over, in order
    bad = [StatedNumber(shot, "x"), StatedNumber(number, -1)]
    why = f"{shot} is 'x', not a whole number; {number} is -1, negative"
    assert number_of(Path("a.tdms"), bad) == (None, f"the next free number ({why})")
    assert number_of(Path("run-3.csv"), bad[1:]) == (
        3,
        f"from the file name ({number} is -1, negative)",
    )


@pytest.mark.parametrize(
    "name",
    [
        "shot",
        "SHOT",
        "Shot Number",
        "shot_no",
        "Shot-No.",
        "shotnumber",
        "run number",
        "Run_No",
        "runnumber",
        "RUN NO",
        " shot ",
        "shot\tnumber",
    ],
)
def test_a_property_named_for_a_run_number_states_one(name: str) -> None:
    field = f"TDMS property {name!r}"
    # among other properties, before and after it, as a file holds them
    found = number_properties({"name": "shot 7", name: 1234, "other": 5}, "TDMS property")
    assert found == [StatedNumber(field, 1234)]


@pytest.mark.parametrize("name", ["shots", "shot_id", "run", "number", "snapshot", "shotnumber2"])
def test_a_property_not_named_for_a_run_number_states_none(name: str) -> None:
    assert number_properties({name: 1234}, "CSV header") == []


def test_the_numbers_properties_state_as_the_file_holds_them() -> None:
    found = number_properties(
        {
            "shot": np.array([b"0042"]),  # one value, as h5py or npTDMS hand it over
            "Shot Number": np.float64(6.0),
            "run_no": None,  # stated as nothing: nothing stated
            "runnumber": np.zeros(3),  # an array is no number
            "run number": "",
            7: 1,  # a key that is not text is not a name of one
        },
        "CSV header",
    )
    assert found == [
        StatedNumber("CSV header 'shot'", "0042"),
        StatedNumber("CSV header 'Shot Number'", 6.0),
        StatedNumber("CSV header 'run number'", ""),
    ]
    assert type(found[1].value) is float
    long = "shot" + " " * 100
    [cut] = number_properties({long: 3}, "TDMS property")
    assert cut.field == f"TDMS property {long[:80]!r}"


def test_a_property_the_reader_cannot_hand_over_is_passed_over() -> None:
    class Broken(dict):  # type: ignore[type-arg]
        def __getitem__(self, key: object) -> object:
            if key == "shot":
                raise OSError("the file's property cannot be read")
            return super().__getitem__(key)

    props = Broken({"shot": 1, "run_no": 2})
    assert number_properties(props, "TDMS property") == [StatedNumber("TDMS property 'run_no'", 2)]
