"""CSV: a text file is kept only as a table with a column of numbers; the separator and the
decimal mark come from the file; a column of numbers and text is refused, wherever the text is;
`show` gives each column its length. Expected values come from Python's csv module and float()."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import numpy as np
import pytest

import labledger as ll
from labledger.formats import csv as csv_format
from tests.conftest import cli, refused


def _columns(text: str, separator: str, comma: bool) -> dict[str, list[float]]:
    """The file's columns by name, as Python's csv module and float() read them."""
    rows = list(csv.reader(io.StringIO(text), delimiter=separator))
    header, body = rows[0], rows[1:]
    fix = (lambda cell: cell.replace(",", ".")) if comma else (lambda cell: cell)
    return {name: [float(fix(row[i])) for row in body] for i, name in enumerate(header)}


@pytest.mark.parametrize("separator", [";", "\t", "|"])
def test_decimal_commas_are_read_as_numbers(
    sqlite_archive: ll.Archive, tmp_path: Path, separator: str
) -> None:
    rng = random.Random(7)
    lines = [separator.join(["t (s)", "U (V)", "I"])]
    for i in range(300):
        values = [f"{i * 0.001:.3f}", f"{rng.uniform(-50, 50):.4f}", f"{rng.uniform(0, 1):.6f}"]
        lines.append(separator.join(v.replace(".", ",") for v in values))
    text = "# pressure: 0,5\n" + "\n".join(lines) + "\n"
    path = tmp_path / "21_scope.csv"
    path.write_text(text)
    sqlite_archive.ingest([path])
    run = sqlite_archive.runs[21]
    expected = _columns("\n".join(lines), separator, comma=True)
    for name, values in expected.items():
        assert run.channels[name].dtype == np.float64
        np.testing.assert_array_equal(run.channels[name][:], values)
    assert run.tree().attrs["csv_separator"] == separator
    assert run.tree().attrs["csv_decimal_mark"] == ","
    assert run.metadata["pressure"] == 0.5
    time = run.channels["U (V)"].to_xarray().coords["time"]
    np.testing.assert_array_equal(time.values, expected["t (s)"])
    assert time.attrs["units"] == "s" and run.channels["U (V)"].attrs["units"] == "V"


def test_a_comma_separated_file_keeps_the_decimal_point(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    text = "time,a,b\n0,1.5,-2\n1,2.25,3\n"
    path = tmp_path / "22_plain.csv"
    path.write_text(text)
    sqlite_archive.ingest([path])
    run = sqlite_archive.runs[22]
    for name, values in _columns(text, ",", comma=False).items():
        np.testing.assert_array_equal(run.channels[name][:], values)
    assert (run.tree().attrs["csv_separator"], run.tree().attrs["csv_decimal_mark"]) == (",", ".")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (  # prose with commas: lines of different widths
            "Shot 23: the probe moved to ai11, and the gas is now helium.\nNothing else.\n",
            "not a table (",
        ),
        ("Remember to refill the nitrogen\nand call the vendor\n", "hold no numbers"),  # no comma
        ("name,comment\nAda,probe fine\nBob,arc at 0.3 s\n", "hold no numbers"),  # text only
        ("t,U\n", "a header line but no rows"),
        ("\n\n", "no header line"),
    ],
)
def test_text_that_is_not_a_table_of_numbers_is_refused(
    sqlite_archive: ll.Archive, tmp_path: Path, text: str, why: str
) -> None:
    path = tmp_path / "23_note.txt"
    path.write_text(text)
    refused(sqlite_archive, path, why, "keep notes beside the archive", "docs/formats.md")


def test_the_cli_refuses_a_note_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    archive = tmp_path / "ishtar"
    assert cli("init", str(archive)).returncode == 0
    note = tmp_path / "note.txt"
    note.write_text("Probe moved to port 11 today, gas changed to helium.\nAll fine.\n")
    result = cli("ingest", "--archive", str(archive), str(note))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "note.txt: not a table" in lines[0] and "keep notes beside the archive" in lines[0]
    assert cli("runs", "--archive", str(archive), "--json").stdout.strip() == "[]"
    assert not list(archive.glob("store/runs/*"))  # not even a folder left over


@pytest.mark.parametrize(
    ("body", "cells"),
    [
        ("0,21.5\n1,n.a.\n2,22.0\n", ["data row 1: '21.5'", "data row 2: 'n.a.'"]),
        ("0,off\n1,21.5\n", ["data row 2: '21.5'", "data row 1: 'off'"]),
    ],
)
def test_a_column_of_numbers_and_text_is_refused(
    sqlite_archive: ll.Archive, tmp_path: Path, body: str, cells: list[str]
) -> None:
    path = tmp_path / "24_wall.csv"
    path.write_text("t,T_wall\n" + body)
    refused(sqlite_archive, path, "column 'T_wall' holds numbers and text", *cells)


def test_numbers_and_text_in_different_blocks_are_refused(
    sqlite_archive: ll.Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found while streaming, after the first block was typed: refused all the same, with the
    data already written removed."""
    monkeypatch.setattr(csv_format, "BLOCK_BYTES", 4096)
    late_number = tmp_path / "25_late.csv"  # text first; a number 3,000 rows down
    rows = [f"{i},state {i}" for i in range(3000)] + ["3000,42"]
    late_number.write_text("t,state\n" + "\n".join(rows) + "\n")
    refused(sqlite_archive, late_number, "'state' holds numbers and text", "data row 3001: '42'")
    late_text = tmp_path / "26_late.csv"  # numbers first; a word 3,000 rows down
    rows = [f"{i},{i * 0.5}" for i in range(3000)] + ["3000,overflow"]
    late_text.write_text("t,v\n" + "\n".join(rows) + "\n")
    refused(sqlite_archive, late_text, "column 'v' holds numbers, then 'overflow'")


def test_both_decimal_marks_or_commas_in_a_comma_file_are_refused(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    both = tmp_path / "27_probe.csv"
    both.write_text("t;U\n0;1,5\n1;2.5\n")
    refused(sqlite_archive, both, "decimal comma (data row 1: '1,5')", "(data row 2: '2.5')")
    quoted = tmp_path / "28_probe.csv"
    quoted.write_text('t,U\n0,"1,5"\n1,"2,5"\n')
    refused(sqlite_archive, quoted, "comma-separated file with numbers written with a comma")


def test_show_gives_each_csv_column_its_length(tmp_path: Path) -> None:
    archive = tmp_path / "ishtar"
    assert cli("init", str(archive)).returncode == 0
    text = "time,U,label\n" + "".join(f"{i},{i / 7},row {i}\n" for i in range(1234))
    path = tmp_path / "29_log.csv"
    path.write_text(text)
    assert cli("ingest", "--archive", str(archive), str(path)).returncode == 0
    rows = len(list(csv.reader(io.StringIO(text)))) - 1  # the header is not a row
    shown = cli("show", "--archive", str(archive), "29").stdout
    for name, dtype in (("time", "<i8"), ("U", "<f8"), ("label", "|O")):
        assert f"{name}  [{rows} {dtype}]" in shown, shown
    assert "29_log.csv/  (separator ',', decimal mark '.')" in shown
    with ll.open(archive) as la:
        assert la.runs[29].tree()["U"].node["shape"] == [rows]


def test_a_time_column_of_text_is_not_a_time_axis(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    path = tmp_path / "30_clock.csv"
    path.write_text("time,v [mV]\n12:00:00,1.5\n12:00:01,2.5\n")
    sqlite_archive.ingest([path])
    v = sqlite_archive.runs[30].channels["v [mV]"]
    assert "time" not in v.to_xarray().coords and v.attrs["units"] == "mV"
    assert list(sqlite_archive.runs[30].channels["time"][:]) == ["12:00:00", "12:00:01"]


def test_a_decimal_comma_after_the_sampled_lines_is_named(
    sqlite_archive: ll.Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_format, "BLOCK_BYTES", 4096)
    late = tmp_path / "31_late.csv"  # the decimal mark is read from the first lines: points
    rows = [f"{i};{i}.25" for i in range(20_000)] + ["20000;1,5"]
    late.write_text("t;U\n" + "\n".join(rows) + "\n")
    refused(sqlite_archive, late, "column 'U' has '1,5' after data row", "a decimal comma")
    small = tmp_path / "32_late.csv"  # in one block: the column is read as text, then checked
    small.write_text("t;U\n" + "".join(f"{i};{i}\n" for i in range(300)) + "300;1,5\n")
    refused(sqlite_archive, small, "column 'U' has '1,5' after data row 300", "a decimal comma")
