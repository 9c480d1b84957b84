"""Good in a notebook: every object users hold has a one-line repr with its identifying facts
and an HTML table in which user text is escaped, neither reading array data; ``la.summary()``
(and ``labledger summary``/``show``) counts what the catalog and the store hold, locally and
through a server; CLI tables fit 80 columns without cutting a cell."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import labledger as ll
from labledger.access import Access
from labledger.cli import app
from labledger.ids import short
from labledger.server import create_app, serving
from labledger.sim import build
from labledger.summary import Summary
from tests.conftest import snapshot

SHOTS = [1233, 1240, 1250]
SCRIPT = "<script>alert(1)</script>"
CSV_RUN = 1300


@ll.step(version="1")
def run_number(run, *, times=1):  # type: ignore[no-untyped-def]
    return run.number * times


def _raw_files(store: Path, run_ids: set[str] | None = None) -> list[Path]:
    """The raw files kept in a local store's folder (``runs/<id>/sources/<n>/<name>``), found
    by walking it, not by asking the catalog."""
    return [
        p
        for p in store.glob("runs/*/sources/*/*")
        if p.is_file() and (run_ids is None or p.parts[-4] in run_ids)
    ]


def _formats(files: list[Path]) -> dict[str, dict[str, int]]:
    kinds = {".tdms": "tdms", ".csv": "csv"}
    found: dict[str, dict[str, int]] = {}
    for f in files:
        entry = found.setdefault(kinds[f.suffix], {"files": 0, "bytes": 0})
        entry["files"] += 1
        entry["bytes"] += f.stat().st_size
    return found


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three shots of the campaign, a CSV run whose column and metadata are named like a
    script, flags (one superseded, one withdrawn) and products (one set recomputed with other
    parameters). Read only."""
    folder = tmp_path_factory.mktemp("notebook") / "archive"
    daq = tmp_path_factory.mktemp("daq")
    with ll.init(folder) as la:
        build(la, daq, SHOTS)
        csv = daq / "scripted.csv"
        csv.write_text(f"# note: {SCRIPT}\ntime (s),{SCRIPT}\n0.0,1.5\n0.1,2.5\n")
        la.ingest([csv], run=CSV_RUN)
        la.flag(run=1233, subsystem="power", severity="bad", reason=SCRIPT)
        warned = la.flag(run=1240, subsystem="probe", severity="warning", reason="noisy")
        la.flag(supersedes=warned.id, subsystem="probe", severity="bad", reason="arcs")
        gone = la.flag(run=1250, subsystem="gas", severity="bad", reason="leak")
        la.flags.withdraw(gone.id, reason="no leak after all")
        la.compute(run_number, la.runs[1233:1251])
        la.compute(run_number, la.runs[1233:1251])  # reused: nothing new
        la.compute(run_number, la.runs[1233:1251], times=2)
    return folder


@pytest.fixture(scope="module")
def served(folder: Path) -> Iterator[tuple[ll.Archive, ll.Archive]]:
    """The archive opened here, and through a server as a reader."""
    with ll.open(folder) as la:
        access = Access(la.catalog)
        access.add_user("reader", project="default", role="reader", by="tests")
        key = access.create_key("reader", scopes=["read"])
        with serving(create_app(la)) as url:
            remote = ll.connect(url, api_key=key)
            yield la, remote
            remote.close()


@pytest.fixture(scope="module", params=["local", "remote"])
def la(request: pytest.FixtureRequest, served: tuple[ll.Archive, ll.Archive]) -> ll.Archive:
    return served[0] if request.param == "local" else served[1]


# -- the summary -----------------------------------------------------------------------------


def test_the_summary_counts_what_the_catalog_and_the_store_hold(
    la: ll.Archive, folder: Path
) -> None:
    s = la.summary()
    runs = list(la.runs)
    assert s.runs == len(runs) == len(SHOTS) + 1
    assert (s.first, s.last) == (min(r.number for r in runs), max(r.number for r in runs))
    assert s.started == min(r.started for r in runs) and s.until == max(r.started for r in runs)
    newest = max(runs, key=lambda r: (r.started, r.number))
    assert (s.newest, s.newest_started) == (newest.number, newest.started)
    files = _raw_files(folder / "store")
    assert s.raw_files == len(files) == len(SHOTS) + 1
    assert s.raw_bytes == sum(f.stat().st_size for f in files)
    assert s.formats == _formats(files)
    decoded = sum(
        int(np.prod(ch.shape, dtype=np.int64)) * ch.dtype.itemsize
        for r in runs
        for ch in (r.channels[k] for k in r.channels)
    )
    assert s.data_bytes == decoded
    # by hand: flag 1 (bad), flag 2 superseded by flag 3 (bad), flag 4 withdrawn
    assert s.flags == {"bad": 2}
    # by hand: two sets over three runs, each with its three parts; the repeat was reused
    assert s.products == 8


def test_the_summary_says_it_in_a_few_lines(la: ll.Archive) -> None:
    s = la.summary()
    lines = str(s).splitlines()
    assert len(lines) <= 8
    text = str(s)
    assert f"{s.runs}: {s.first} to {s.last}" in text and f"run {s.newest}" in text
    assert "tdms 3" in text and "csv 1" in text and "2 active (2 bad)" in text
    assert "8 current" in text
    assert "\n" not in repr(s) and f"{s.runs} runs" in repr(s)
    assert Summary.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_through_a_server_the_summary_is_the_local_one(
    served: tuple[ll.Archive, ll.Archive],
) -> None:
    local, remote = served
    assert remote.summary() == local.summary()


def test_a_reader_is_summarised_only_their_projects_runs(two_projects: ll.Archive) -> None:
    key = Access(two_projects.catalog).create_key("alice", scopes=["read"])
    with serving(create_app(two_projects)) as url, ll.connect(url, api_key=key) as remote:
        s = remote.summary()
        mine = list(remote.runs)
    assert [r.number for r in mine] == [1233] and s.runs == 1
    assert (s.first, s.last, s.newest) == (1233, 1233, 1233)
    assert two_projects.path is not None
    files = _raw_files(two_projects.path / "store", {mine[0].id})
    assert s.raw_files == len(files) == 1
    assert s.raw_bytes == sum(f.stat().st_size for f in files)
    assert two_projects.summary().runs == 2  # the archive itself holds both


def test_an_empty_archive_is_summarised_as_empty(tmp_path: Path) -> None:
    with ll.init(tmp_path / "empty") as la:
        s = la.summary()
        assert (s.runs, s.raw_files, s.raw_bytes, s.flags, s.products) == (0, 0, 0, {}, 0)
        assert s.newest is None and "none yet" in str(s)
        assert "none yet" in la._repr_html_()


# -- reprs and HTML ----------------------------------------------------------------------------


def _one_line(obj: object, *facts: object) -> str:
    text = repr(obj)
    assert "\n" not in text and " object at 0x" not in text and len(text) < 400, text
    for fact in facts:
        assert str(fact) in text, (fact, text)
    return text


def _html(obj: object, *facts: object) -> str:
    page = obj._repr_html_()  # type: ignore[attr-defined]
    assert page.startswith("<table>") and page.endswith("</table>")
    for fact in facts:
        assert html.escape(str(fact)) in page, (fact, page[:500])
    return page


def test_runs_and_channels_show_who_they_are_without_reading_arrays(la: ll.Archive) -> None:
    run = la.runs[1250]
    _one_line(run, 1250, run.id, run.state)
    _html(run, "run 1250", run.id, *(s.sha256 for s in run.sources), *run.metadata)
    channel = run.channels["PXI M6251/ai11"]
    _one_line(channel, "PXI M6251/ai11", 1250, channel.shape, "int16", "V")
    _html(channel, "PXI M6251/ai11", "run 1250", "V", "int16", *channel.attrs)
    _one_line(run.channels, 1250, len(run.channels))
    _html(run.channels, f"{len(run.channels)} channels", *run.channels)
    assert "array" not in channel.__dict__  # the repr and the table never opened the array
    _one_line(la.runs, len(SHOTS) + 1)
    _html(la.runs, *SHOTS, CSV_RUN)


def test_products_show_their_id_step_and_run(la: ll.Archive) -> None:
    newest = la.products.search(step=run_number)[0]
    _one_line(newest, short(newest.id), "run_number@1", "set")
    _html(newest, newest.id, "tests.test_notebook:run_number@1", "set", newest.author)
    part = newest.parts[0]
    _one_line(part, short(part.id), f"run {part.run}")
    _html(part, part.id, part.run, part.output_hash)
    _one_line(la.products)


def test_flags_show_their_verdict_and_escape_the_reason(la: ll.Archive) -> None:
    flag = la.flags[1]
    _one_line(flag, "Flag 1", "power", "bad", "run 1233", SCRIPT)
    page = _html(flag, "power", "bad", "run 1233", SCRIPT)
    assert "<script>" not in page
    listed = _html(la.flags, "active flags", "arcs")
    assert "<script>" not in listed and "noisy" not in listed  # superseded: not active
    superseded = la.flags[2]
    _html(superseded, "superseded by 3", "noisy")


def test_configuration_and_calibrations_show_their_versions(la: ll.Archive) -> None:
    config = la.config.at(1250)
    _one_line(config, "run 1250", f"version {config.version}", config.description.name)
    _html(config, "Langmuir_I", config.wiring["Langmuir_I"], config.channel("Langmuir_I"))
    _one_line(la.config, f"{len(la.config.log())} versions")
    _html(la.config, *(c.reason for c in la.config.log()))
    diff = la.config.diff(1233, 1250)
    _one_line(diff, "run 1233", "run 1250", f"{len(diff.differences)} differences")
    _html(diff, "PXI M6251/ai3", "PXI M6251/ai11")
    change = la.config.log()[-1]
    _one_line(change, f"version {change.version}", change.reason)
    _html(change, change.reason, change.author)
    calibration = la.calibrations["langmuir_i@2"]
    _one_line(calibration, "langmuir_i@2", "linear", "A", "from run 1250")
    _html(calibration, "langmuir_i@2", "from run 1250", calibration.reason)
    names = {c.name for c in la.calibrations.list()}
    _one_line(la.calibrations, f"{len(names)} names", f"{len(la.calibrations.list())} versions")
    _html(la.calibrations, "langmuir_i@1", "langmuir_i@2")


def test_a_table_calibration_counts_its_points_in_one_line(tmp_path: Path) -> None:
    from labledger.machine.calibration import Calibration

    x = list(np.linspace(0.0, 10.0, 1000))
    table = Calibration("t", 1, "table", {"x": x, "y": x}, "V", 1200, None, "me", "why",
                        datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
    _one_line(table, "t@1", "x=[1000 values]", "y=[1000 values]", "from run 1200")


def test_a_channel_named_like_a_script_is_shown_not_run(la: ll.Archive) -> None:
    run = la.runs[CSV_RUN]
    assert SCRIPT in run.channels and run.metadata["note"] == SCRIPT
    for page in (
        run._repr_html_(),
        run.channels._repr_html_(),
        run.channels[SCRIPT]._repr_html_(),
    ):
        assert "<script>" not in page and html.escape(SCRIPT) in page
    _one_line(run.channels[SCRIPT], SCRIPT)


def test_the_archive_shows_its_summary(la: ll.Archive) -> None:
    s = la.summary()
    _html(la, f"{s.runs}: {s.first} to {s.last}", f"run {s.newest}", "8 current")
    _html(s, "archive summary")


# -- the command -------------------------------------------------------------------------------


def _invoke(*args: str, columns: int = 80) -> str:
    done = CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns)})
    assert done.exit_code == 0, (done.output, done.exception)
    return done.output


def _cells(table: str) -> list[dict[str, str]]:
    """The rows of a rich table without borders, a folded cell put back together: each column
    spans from its header's first character to the next header's."""
    lines = table.rstrip("\n").splitlines()
    header = lines[0]
    names = header.split()
    starts = [header.index(n) for n in names]
    spans = list(zip(starts, [*starts[1:], None]))
    rows: list[dict[str, str]] = []
    for line in lines[1:]:
        pieces = [line[a:b].strip() for a, b in spans]
        if pieces[0]:  # a new row begins where the first column is not empty
            rows.append(dict.fromkeys(names, ""))
        for name, piece in zip(names, pieces):
            rows[-1][name] += piece
    return rows


def test_the_products_table_fits_80_columns_with_no_cell_cut(folder: Path) -> None:
    shown = _invoke("products", "-a", str(folder))
    lines = shown.splitlines()
    assert all(len(line) <= 80 for line in lines), shown
    assert "…" not in shown
    assert lines[0].split() == ["id", "step", "run", "kind", "made", "(UTC)"]
    with ll.open(folder) as la:
        found = la.products.search()
    rows = _cells(shown.replace("made (UTC)", "made_(UTC)"))
    assert [r["id"] for r in rows] == [short(p.id) for p in found]
    assert [r["step"] for r in rows] == [f"{p.step}@{p.step_version}" for p in found]
    assert [r["run"] for r in rows] == ["" if p.run is None else str(p.run) for p in found]
    assert [r["kind"] for r in rows] == [p.kind for p in found]
    wide = _invoke("products", "-a", str(folder), "--wide", columns=200)
    assert all(p.id in wide and p.author in wide for p in found)


def test_summary_and_show_without_a_run_print_the_summary(folder: Path) -> None:
    with ll.open(folder) as la:
        before = snapshot(la)
        expected = la.summary()
        assert json.loads(_invoke("summary", "-a", str(folder), "--json")) == json.loads(
            json.dumps(expected.to_dict())
        )
        printed = _invoke("summary", "-a", str(folder))
        assert _invoke("show", "-a", str(folder)) == printed
        assert str(expected) in printed
        assert snapshot(la) == before


def test_summary_of_a_folder_that_is_not_an_archive_is_one_line(tmp_path: Path) -> None:
    from tests.conftest import cli

    done = cli("summary", "-a", str(tmp_path / "nowhere"))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "labledger init" in done.stderr
    assert not (tmp_path / "nowhere").exists()
