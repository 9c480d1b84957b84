"""Hostile HDF5 files: ingest reads the bytes of the files it is given and nothing else.

External raw storage, virtual datasets and external links that point elsewhere are kept as
links, named and said not read; a virtual dataset over the files of the same ingest is read.
A file of the archive itself is refused unread, so that nothing but the catalog opens the
catalog's database: closing it under another name would drop SQLite's locks in the server's
process and lose the writes it confirmed. Every file here is made by the test, in tmp_path.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
import pytest

import labledger as ll
from labledger.access import Access
from labledger.errors import BadInput, NotFound
from labledger.sim import write_shot
from tests.conftest import cli, free_port, snapshot, wait_for_server

SENTINEL = bytes(range(256)) * 16 + b"labledger-sentinel: never read"  # 4 kB no file holds


def _outside(tmp_path: Path) -> Path:
    """A file no ingest is given: its bytes must never reach the archive."""
    folder = tmp_path / "elsewhere"
    folder.mkdir(exist_ok=True)
    secret = folder / "secret.bin"
    secret.write_bytes(SENTINEL)
    return secret


def _outside_hdf5(tmp_path: Path, values: np.ndarray) -> Path:
    folder = tmp_path / "elsewhere"
    folder.mkdir(exist_ok=True)
    path = folder / "other_run.h5"
    with h5py.File(path, "w") as f:
        f["data"] = values
    return path


@contextmanager
def _never_opened(*paths: Path) -> Iterator[None]:
    """Fail if this process opens any of ``paths`` meanwhile (Linux inotify: HDF5 opens files
    in C, where Python's audit hooks do not see it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    assert fd >= 0, os.strerror(ctypes.get_errno())
    try:
        for path in paths:
            assert libc.inotify_add_watch(fd, os.fsencode(path), 0x20) >= 0  # IN_OPEN
        yield
        try:
            events = os.read(fd, 4096)
        except BlockingIOError:
            events = b""
        assert events == b"", f"one of {[p.name for p in paths]} was opened"
    finally:
        os.close(fd)


def _stored_bytes(la: ll.Archive) -> bytes:
    """Everything the archive's folder holds but the raw copies of the ingested files."""
    assert la.path is not None
    return b"".join(
        p.read_bytes()
        for p in sorted(la.path.rglob("*"))
        if p.is_file() and "raw" not in p.relative_to(la.path).parts
    )


def _node(run: ll.Run, path: str) -> dict:
    return run.tree()[path].to_dict()


def test_external_raw_storage_is_kept_as_a_link_never_read(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    secret = _outside(tmp_path)
    hostile = tmp_path / "0001_hostile.h5"
    with h5py.File(hostile, "w") as f:
        f["kept"] = np.arange(5.0)
        size = len(SENTINEL)
        f.create_dataset("absolute", (size,), "u1", external=[(str(secret), 0, size)])
        f.create_dataset("relative", (size,), "u1", external=[("elsewhere/secret.bin", 0, size)])
    with _never_opened(secret):
        [result] = sqlite_archive.ingest([hostile])
    run = sqlite_archive.runs[1]
    assert list(run.channels) == ["kept"]
    assert np.array_equal(run.channels["kept"][:], np.arange(5.0))
    for name, target in (("absolute", str(secret)), ("relative", "elsewhere/secret.bin")):
        node = _node(run, name)
        assert node["kind"] == "link" and node["link"] == "external storage"
        assert node["files"] == [target] and node["shape"] == [size]
        assert "not read" in str(run.tree()) and any(name in p for p in result.problems)
        with pytest.raises(NotFound, match="was not read"):
            run.channels[name]
    assert SENTINEL[:64] not in _stored_bytes(sqlite_archive)
    shown = cli("show", "1", "-a", str(sqlite_archive.path))
    assert shown.returncode == 0
    assert "absolute → " in shown.stdout and "external storage, not read" in shown.stdout


def _virtual(path: Path, sources: list[tuple[str, str]], shape: tuple[int, int]) -> None:
    """A detector's master file: one row of a virtual dataset per source."""
    layout = h5py.VirtualLayout(shape=shape, dtype="f8")
    for i, (file_name, dataset) in enumerate(sources):
        layout[i] = h5py.VirtualSource(file_name, dataset, shape=shape[1:])
    with h5py.File(path, "w") as f:
        f.create_virtual_dataset("entry/data/data", layout, fillvalue=0)
        f["entry/title"] = "a DLS-style master file"


def test_a_virtual_dataset_over_absent_files_is_no_array_of_zeros(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    master = tmp_path / "scan_0042_master.h5"
    _virtual(master, [(f"scan_0042_{i:06d}.h5", "data") for i in range(4)], (4, 100_000))
    [result] = sqlite_archive.ingest([master])
    run = sqlite_archive.runs[42]
    assert "entry/data/data" not in run.channels and list(run.channels) == ["entry/title"]
    node = _node(run, "entry/data/data")
    assert node["link"] == "virtual" and len(node["files"]) == 4
    assert "scan_0042_000000.h5 was not given" in node["reason"]
    assert "entry/data/data: a virtual dataset over scan_0042_000000.h5" in result.message()
    with pytest.raises(NotFound, match="virtual in scan_0042_000000.h5.*was not read"):
        run.channels["entry/data/data"]
    shown = cli("show", "42", "-a", str(sqlite_archive.path))
    assert "data → scan_0042_000000.h5, " in shown.stdout and "virtual, not read" in shown.stdout


def test_a_virtual_dataset_over_other_files_is_not_read(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    values = np.frombuffer(SENTINEL[:4096], "f8").reshape(1, 512)
    other = _outside_hdf5(tmp_path, values[0])
    given = tmp_path / "given"
    given.mkdir()
    for number, name in enumerate([str(other), "../elsewhere/other_run.h5"], start=1):
        master = given / f"{number}_master.h5"
        _virtual(master, [(name, "data")], (1, 512))
        with _never_opened(other):
            sqlite_archive.ingest([master])
        run = sqlite_archive.runs[number]
        assert "entry/data/data" not in run.channels
        assert "other_run.h5 was not given" in _node(run, "entry/data/data")["reason"]
    assert SENTINEL[:64] not in _stored_bytes(sqlite_archive)


def test_a_virtual_dataset_over_the_files_of_the_same_ingest_is_read(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    rng = np.random.default_rng(7)
    rows = rng.normal(size=(3, 1000))
    for i, row in enumerate(rows):
        with h5py.File(tmp_path / f"{101 + i}_frames.h5", "w") as f:
            f[f"frames_{i}"] = row  # distinct keys: the data files are runs of their own too
    master = tmp_path / "100_master.h5"
    _virtual(master, [(f"{101 + i}_frames.h5", f"frames_{i}") for i in range(3)], (3, 1000))
    given = [master, *(tmp_path / f"{101 + i}_frames.h5" for i in range(3))]
    results = sqlite_archive.ingest(given)
    assert [r.number for r in results] == [100, 101, 102, 103] and not results[0].problems
    assert np.array_equal(sqlite_archive.runs[100].channels["entry/data/data"][:], rows)
    # sources named by absolute paths; the data files are kept already, and still given
    absolute = tmp_path / "300_absolute.h5"
    _virtual(absolute, [(str(p), f"frames_{i}") for i, p in enumerate(given[1:])], (3, 1000))
    results = sqlite_archive.ingest([absolute, *given[1:]])
    assert [r.already for r in results] == [False, True, True, True]
    assert np.array_equal(sqlite_archive.runs[300].channels["entry/data/data"][:], rows)
    # "." is the master file itself; a source in a given file but reached through a link, or
    # storing its values elsewhere, is not read
    secret = _outside(tmp_path)
    mixed = tmp_path / "200_mixed.h5"
    with h5py.File(mixed, "w") as f:
        f["own"] = rows[0]
        f["soft"] = h5py.SoftLink("/own")
        f.create_dataset("ext", (512,), "f8", external=[(str(secret), 0, 4096)])
        for name, source in (("same", "own"), ("via_link", "soft"), ("via_ext", "ext")):
            shape = (1, 512 if source == "ext" else 1000)
            layout = h5py.VirtualLayout(shape=shape, dtype="f8")
            layout[0] = h5py.VirtualSource(".", source, shape=shape[1:])
            f.create_virtual_dataset(name, layout, fillvalue=0)
    [made] = sqlite_archive.ingest([mixed])
    assert sorted(p.split(":")[0] for p in made.problems) == ["ext", "via_ext", "via_link"]
    run = sqlite_archive.runs[200]
    assert np.array_equal(run.channels["same"][:], rows[:1])
    assert sorted(run.channels) == ["own", "same"]
    assert "is reached through a link" in _node(run, "via_link")["reason"]
    assert "stores its values in other files" in _node(run, "via_ext")["reason"]
    assert SENTINEL[:64] not in _stored_bytes(sqlite_archive)


def test_a_master_file_uploaded_with_its_data_files_is_read(tmp_path: Path) -> None:
    from labledger.server import create_app, serving

    la = ll.init(tmp_path / "archive")
    access = Access(la.catalog)
    access.add_user("carol", project="default", role="writer", by="tests")
    key = access.create_key("carol", scopes=["read", "write"])
    rows = np.arange(20.0).reshape(2, 10)
    for i, row in enumerate(rows):
        with h5py.File(tmp_path / f"{21 + i}_frames.h5", "w") as f:
            f[f"frames_{i}"] = row
    master = tmp_path / "20_master.h5"
    _virtual(master, [(f"{21 + i}_frames.h5", f"frames_{i}") for i in range(2)], (2, 10))
    with serving(create_app(la)) as url:
        carol = ll.connect(url, api_key=key)
        carol.ingest([master, tmp_path / "21_frames.h5", tmp_path / "22_frames.h5"])
        assert np.array_equal(carol.runs[20].channels["entry/data/data"][:], rows)
        alone = tmp_path / "30_master.h5"  # the same sources, but uploaded alone
        _virtual(alone, [(f"{21 + i}_frames.h5", f"frames_{i}") for i in range(2)], (2, 10))
        with h5py.File(alone, "a") as f:
            f.attrs["scan"] = 30  # other bytes than 20_master.h5
        [made] = carol.ingest([alone])
        assert "21_frames.h5 was not given" in " ".join(made.problems)
        assert "entry/data/data" not in carol.runs[30].channels
        carol.close()
    la.close()


def test_no_virtual_dataset_is_read_where_hdf5_would_search_elsewhere_first(
    sqlite_archive: ll.Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with h5py.File(tmp_path / "11_frames.h5", "w") as f:
        f["frames"] = np.arange(10.0)
    master = tmp_path / "10_master.h5"
    _virtual(master, [("11_frames.h5", "frames")], (1, 10))
    monkeypatch.setenv("HDF5_VDS_PREFIX", str(_outside(tmp_path).parent))
    sqlite_archive.ingest([master, tmp_path / "11_frames.h5"])
    run = sqlite_archive.runs[10]
    assert "entry/data/data" not in run.channels
    assert "HDF5_VDS_PREFIX is set" in _node(run, "entry/data/data")["reason"]


def test_external_links_are_never_followed_even_for_times(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    other = tmp_path / "elsewhere.h5"
    with h5py.File(other, "w") as f:
        f["start_time"] = "1999-12-31T23:00:00"
    path = tmp_path / "0007_linked.h5"
    with h5py.File(path, "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry["start_time"] = h5py.ExternalLink(str(other), "/start_time")
        entry["data"] = np.arange(3)
    sqlite_archive.ingest([path])
    run = sqlite_archive.runs[7]
    assert run.started.year != 1999
    assert _node(run, "entry/start_time")["link"] == "external"


def test_a_file_of_the_archive_itself_is_refused_unread(tmp_path: Path) -> None:
    folder = tmp_path / "archive"
    la = ll.init(folder)
    la.ingest([write_shot(tmp_path, 1233)])
    la.close()
    with ll.open(folder) as la:
        before = snapshot(la)
    hard = tmp_path / "catalog_0002.sqlite"
    os.link(folder / "catalog.sqlite", hard)
    soft = tmp_path / "catalog_0003.sqlite"
    soft.symlink_to(folder / "catalog.sqlite")
    raw = next((folder / "store").rglob("*.tdms"))
    for given in (folder / "catalog.sqlite", hard, soft, raw):
        done = cli("ingest", str(given), "-a", str(folder), "--format", "hdf5")
        assert done.returncode == 1, given
        assert done.stderr.count("\n") == 1 and "a file of the archive itself" in done.stderr
    with ll.open(folder) as la:
        assert snapshot(la) == before
        with pytest.raises(BadInput, match="a file of the archive itself"):
            la.ingest([hard])


def test_a_file_naming_an_archive_file_given_with_it_opens_neither(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every file given is checked before any is opened: a master file given first, whose
    virtual dataset reads the catalog given second, must not make HDF5 open the catalog."""
    folder = tmp_path / "archive"
    la = ll.init(folder)
    catalog = folder / "catalog.sqlite"
    master = tmp_path / "master.h5"
    layout = h5py.VirtualLayout(shape=(4,), dtype="i8")
    layout[:] = h5py.VirtualSource(str(catalog), "data", shape=(4,))
    with h5py.File(master, "w") as f:
        f.create_virtual_dataset("data", layout)
    opened: list[str] = []

    class Recording(h5py.File):  # every file HDF5 is asked to open, by its real path
        def __init__(self, name: object, *args: object, **kwargs: object) -> None:
            opened.append(os.path.realpath(name))  # type: ignore[arg-type]
            super().__init__(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(h5py, "File", Recording)
    before = snapshot(la)
    with pytest.raises(BadInput, match=r"catalog\.sqlite: a file of the archive itself"):
        la.ingest([master, catalog])
    assert os.path.realpath(catalog) not in opened
    assert snapshot(la) == before
    la.close()


_OPEN_READ_CLOSE = """
import sys, labledger as ll
la = ll.open(sys.argv[1])
print(len(la.runs), len(la.flags.list(include_inactive=True)))
la.close()
"""


def test_confirmed_writes_survive_other_processes_and_a_hostile_upload(tmp_path: Path) -> None:
    """The server confirms writes (flags, uploads, one of a file whose external storage is the
    catalog's own database) while other processes open, read and close the archive; after the
    server is stopped, every write it confirmed is there."""
    folder = tmp_path / "archive"
    la = ll.init(folder)
    la.ingest([write_shot(tmp_path, 1233)])
    access = Access(la.catalog)
    access.add_user("carol", project="default", role="writer", by="tests")
    key = access.create_key("carol", scopes=["read", "write"])
    la.close()
    hostile = tmp_path / "0500_hostile.h5"
    catalog = folder / "catalog.sqlite"
    with h5py.File(hostile, "w") as f:
        f["kept"] = np.arange(3)
        size = catalog.stat().st_size
        f.create_dataset("catalog", (size,), "u1", external=[(str(catalog), 0, size)])
        layout = h5py.VirtualLayout(shape=(1, 100), dtype="u1")
        layout[0] = h5py.VirtualSource(str(catalog), "data", shape=(100,))
        f.create_virtual_dataset("virtual", layout)
        f["linked"] = h5py.ExternalLink(str(catalog), "/data")
    port = free_port()
    command = [sys.executable, "-m", "labledger.cli", "serve", "-a", str(folder)]
    server = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    flags: list[int] = []
    runs: list[int] = []
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_server(url, server)
        carol = ll.connect(url, api_key=key)
        [made] = carol.ingest([hostile])
        runs.append(made.number)
        for i in range(12):
            flag = carol.flag(run=1233, subsystem="power", severity="warning", reason=f"#{i}")
            flags.append(flag.id)
            if i % 4 == 0:
                [made] = carol.ingest([write_shot(tmp_path, 1300 + i)])
                runs.append(made.number)
            reader = subprocess.run(
                [sys.executable, "-c", _OPEN_READ_CLOSE, str(folder)],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert reader.returncode == 0, reader.stderr
        carol.close()
    finally:
        server.terminate()
        server.wait(timeout=60)
    with ll.open(folder) as again:
        kept = {f.id for f in again.flags.list(include_inactive=True)}
        assert [f for f in flags if f not in kept] == []
        assert [n for n in runs if again.catalog.by_number(n) is None] == []
