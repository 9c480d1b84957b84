"""Bad input: one clear line naming the file and the reason, a non-zero exit, and the catalog
and store exactly as they were."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import labledger as ll
from labledger import errors
from labledger.cli import main
from labledger.client.remote import _Http
from labledger.errors import (
    BadInput,
    Busy,
    CatalogUnavailable,
    Conflict,
    Forbidden,
    InvalidArgument,
    LabledgerError,
    NotAnArchive,
    NotFound,
    NotRemote,
    TooLarge,
    Unauthorized,
    Unreachable,
    for_status,
)
from labledger.server.app import answer
from labledger.sim import write_shot
from tests.conftest import cli, free_port, snapshot

NOBODY = 65534


def assert_refused(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, no traceback
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _truncated_tdms(folder: Path, fraction: float) -> Path:
    shot = write_shot(folder, 4321)
    data = shot.read_bytes()
    cut = folder / f"cut_{int(fraction * 1000)}_4321.tdms"
    cut.write_bytes(data[: int(len(data) * fraction)])
    shot.unlink()
    return cut


def _truncated_hdf5(folder: Path, nexus_dir: Path) -> Path:
    data = (nexus_dir / "NXtest.h5").read_bytes()
    cut = folder / "NXtest_cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    return cut


def _bad_files(folder: Path, nexus_dir: Path) -> dict[str, tuple[Path, str]]:
    """Each bad input, with the words its error must contain."""
    empty = folder / "7_empty.tdms"
    empty.touch()
    unknown = folder / "mystery.bin"
    unknown.write_bytes(os.urandom(5000))
    directory = folder / "a_directory"
    directory.mkdir()
    return {
        "truncated TDMS (mid-data)": (_truncated_tdms(folder, 0.6), "truncated"),
        "truncated TDMS (in the header)": (_truncated_tdms(folder, 0.0002), "truncated"),
        "truncated TDMS (lead-in)": (_truncated_tdms(folder, 0.00002), "truncated"),
        "truncated TDMS (last byte)": (_truncated_tdms(folder, 0.99999), "truncated"),
        "empty file": (empty, "is empty"),
        "HDF4": (nexus_dir / "lrcs3701-hdf4.nxs", "HDF4 is not supported"),
        "truncated HDF5": (_truncated_hdf5(folder, nexus_dir), "truncated"),
        "unknown format": (unknown, "unknown format"),
        "directory": (directory, "is a directory"),
        "missing": (folder / "nowhere.tdms", "no such file"),
    }


@pytest.fixture
def populated(archive: ll.Archive, tmp_path: Path) -> ll.Archive:
    """An archive that already holds a run, so that "unchanged" means something."""
    archive.ingest([write_shot(tmp_path, 1001)])
    return archive


def test_each_bad_input_is_refused_through_the_api(
    populated: ll.Archive, tmp_path: Path, nexus_dir: Path
) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    before = snapshot(populated)
    for what, (path, words) in _bad_files(folder, nexus_dir).items():
        with pytest.raises(BadInput) as refused:
            populated.ingest([path])
        message = str(refused.value)
        assert str(path) in message and words in message, (what, message)
        assert "\n" not in message, what
        assert snapshot(populated) == before, what


def test_one_bad_file_among_good_ones_changes_nothing(
    populated: ll.Archive, tmp_path: Path, nexus_dir: Path
) -> None:
    good = write_shot(tmp_path, 1002)
    before = snapshot(populated)
    with pytest.raises(BadInput, match="HDF4"):
        populated.ingest([good, nexus_dir / "lrcs3701-hdf4.nxs"])
    assert snapshot(populated) == before
    assert 1002 not in populated.runs


@pytest.fixture
def cli_archive(tmp_path: Path) -> Path:
    folder = tmp_path / "ishtar"
    assert cli("init", str(folder)).returncode == 0
    shot = write_shot(tmp_path, 1001)
    assert cli("ingest", "--archive", str(folder), str(shot)).returncode == 0
    return folder


def _archive_state(folder: Path) -> dict[str, str]:
    with ll.open(folder) as la:
        return snapshot(la)


def test_each_bad_input_is_one_line_and_a_non_zero_exit(
    cli_archive: Path, tmp_path: Path, nexus_dir: Path
) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    before = _archive_state(cli_archive)
    for what, (path, words) in _bad_files(folder, nexus_dir).items():
        result = cli("ingest", "--archive", str(cli_archive), str(path))
        assert_refused(result, str(path), words)
        assert _archive_state(cli_archive) == before, what


@contextlib.contextmanager
def _as_nobody() -> Iterator[None]:
    """Drop to an unprivileged user for a moment: root reads every file, nobody does not."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)


def test_an_unreadable_file_is_refused(populated: ll.Archive, tmp_path: Path) -> None:
    secret = write_shot(tmp_path, 1003)
    secret.chmod(0)
    before = snapshot(populated)
    with _as_nobody(), pytest.raises(BadInput, match=f"{secret}: cannot be read"):
        populated.ingest([secret])
    assert snapshot(populated) == before


def test_an_unreadable_file_through_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    # The CLI's own entry point, in this process: the interpreter itself lives where an
    # unprivileged user may not go. A world-readable folder, so that user reaches the archive.
    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp)
        top.chmod(0o777)
        archive = top / "ishtar"
        ll.init(archive).close()
        for path in [archive, *archive.rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o666)
        secret = write_shot(top, 1003)
        secret.chmod(0)
        before = _archive_state(archive)
        capsys.readouterr()
        with _as_nobody(), pytest.raises(SystemExit) as exited:
            main(["ingest", "--archive", str(archive), str(secret)])
        assert exited.value.code == 1
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
        assert str(secret) in lines[0] and "cannot be read (Permission denied)" in lines[0]
        assert _archive_state(archive) == before


def test_a_catalog_that_does_not_answer(tmp_path: Path) -> None:
    dead = "postgresql://postgres@127.0.0.1:1/nothing"
    result = cli("init", str(tmp_path / "new"), "--catalog", dead)
    assert_refused(result, "127.0.0.1:1/nothing", "did not answer")
    assert not (tmp_path / "new").exists()  # nothing left behind
    with pytest.raises(CatalogUnavailable, match="did not answer"):
        ll.open(dead)
    # an archive folder whose catalog has gone away
    folder = tmp_path / "moved"
    folder.mkdir()
    (folder / "labledger.toml").write_text(f'catalog = "{dead}"\nstore = "store"\n')
    assert_refused(cli("runs", "--archive", str(folder)), "did not answer")


def test_a_path_that_is_not_an_archive(tmp_path: Path) -> None:
    shot = write_shot(tmp_path, 1001)
    plain = tmp_path / "plain"
    plain.mkdir()
    before = sorted(p.name for p in plain.iterdir())
    result = cli("ingest", "--archive", str(plain), str(shot))
    assert_refused(result, str(plain), "is not a labledger archive", "labledger init")
    assert sorted(p.name for p in plain.iterdir()) == before
    assert_refused(cli("runs", "--archive", str(tmp_path / "absent")), "does not exist")
    with pytest.raises(NotAnArchive):
        ll.open(plain)


def test_init_refuses_an_existing_archive_or_a_non_empty_folder(tmp_path: Path) -> None:
    ll.init(tmp_path / "a").close()
    with pytest.raises(LabledgerError, match="already a labledger archive"):
        ll.init(tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(LabledgerError, match="not empty"):
        ll.init(tmp_path / "b")
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["notes.txt"]


def test_init_on_a_catalog_that_already_holds_an_archive(pg_url: str, tmp_path: Path) -> None:
    ll.init(tmp_path / "first", catalog=pg_url).close()
    assert_refused(cli("init", str(tmp_path / "second"), "--catalog", pg_url), "is not empty")
    assert not (tmp_path / "second").exists()


def test_damage_found_after_objects_were_written_is_rolled_back(
    populated: ll.Archive, tmp_path: Path
) -> None:
    """A column that turns from numbers to text 12 MB into a CSV: arrays and the raw copy are
    already in the store when it is found; all of it goes."""
    damaged = tmp_path / "1006_log.csv"
    rows = "".join(f"{i},{i * 0.5}\n" for i in range(1_000_000))
    damaged.write_text("n,x\n" + rows + "oops,1.0\n")
    before = snapshot(populated)
    with pytest.raises(BadInput, match="1006_log.csv: after data row"):
        populated.ingest([damaged])
    assert snapshot(populated) == before
    folders = {key.split("/")[1] for key in populated.store.list("runs")}
    assert folders == {run.id for run in populated.runs}


def test_a_server_that_does_not_answer_is_unreachable() -> None:
    """A network failure is told apart from a catalog's: the server is not there."""
    with pytest.raises(Unreachable, match=r"server http://127\.0\.0\.1:\d+ did not answer"):
        ll.connect(f"http://127.0.0.1:{free_port()}", api_key="ll_x_y")


def test_one_status_table_read_both_ways() -> None:
    """What a server answers an error with, a client reads back as the same kind; without the
    kind's name (a proxy's answer), as the kind the status stands for."""
    expected = {401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 413: TooLarge,
                422: InvalidArgument, 429: Busy, 501: NotRemote, 503: CatalogUnavailable,
                400: InvalidArgument, 418: InvalidArgument, 500: CatalogUnavailable}  # fmt: skip
    assert {code: for_status(code) for code in expected} == expected
    statuses = {Unauthorized: 401, Forbidden: 403, NotFound: 404, Conflict: 409, TooLarge: 413,
                BadInput: 422, Busy: 429, NotRemote: 501, CatalogUnavailable: 503,
                errors.StoreUnavailable: 503, Unreachable: 503, InvalidArgument: 400,
                NotAnArchive: 400}  # fmt: skip
    assert {kind: kind.status for kind in statuses} == statuses
    kinds = [
        k for k in vars(errors).values() if isinstance(k, type) and issubclass(k, LabledgerError)
    ]
    assert len(kinds) > 15
    http = _Http("http://server", None, None)
    for kind in kinds:
        status, body, _ = answer(kind("boom"))
        with pytest.raises(kind, match=r"^boom \(server http://server, HTTP \d+\)$"):
            http.raise_for(httpx.Response(status, json=body))
        with pytest.raises(for_status(status)):
            http.raise_for(httpx.Response(status, json={"detail": "boom"}))


def test_names_with_a_trailing_newline_are_refused_and_change_nothing(tmp_path: Path) -> None:
    """A pattern ending in ``$`` also matches before a final newline: a name, a subsystem, a
    list name, a step version or an API key that ends in one is refused, not recorded beside
    the name without it."""
    from labledger.access import Access
    from labledger.ids import check_name
    from tests.conftest import make_two_projects

    with pytest.raises(InvalidArgument, match=r"project 'lab\\n': 1 to 64 letters"):
        check_name("lab\n", "project")
    with pytest.raises(InvalidArgument, match=r"version"):
        ll.step(lambda run: 1, version="2\n")
    la = make_two_projects(tmp_path)
    before = snapshot(la)
    with pytest.raises(InvalidArgument, match=r"subsystem"):
        la.flag(run=1233, subsystem="power\n", severity="bad", reason="outage")
    with pytest.raises(InvalidArgument, match=r"good-run list"):
        la.good_runs("standard\n", require=["power"])
    key = Access(la.catalog).create_key("alice", scopes=["read"])
    with pytest.raises(Unauthorized):
        Access(la.catalog).authenticate(key + "\n")
    assert Access(la.catalog).authenticate(key).name == "alice"
    after = snapshot(la)
    assert {k: v for k, v in after.items() if "api_key" not in k and "audit" not in k} == {
        k: v for k, v in before.items() if "api_key" not in k and "audit" not in k
    }
    la.close()
