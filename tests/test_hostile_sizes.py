"""What a raw file declares is not trusted: values it never wrote cost nothing, and sizes, counts
and names over the archive's limits are refused while the ingest is planned, in one line that
names the file, the dataset, the limit and how to raise it, with nothing changed."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

import labledger as ll
from labledger.errors import InvalidArgument
from labledger.formats import csv as csv_format
from labledger.formats.limits import Limits
from tests.conftest import cli, refused


def _data_objects(la: ll.Archive, run: ll.Run, key: str) -> list[str]:
    """The chunk objects (shards) stored for one channel."""
    path = run.channels[key]._row.store_path
    return [k for k in la.store.list(path) if not k.endswith("zarr.json")]


# -- values never written --------------------------------------------------------------------


def test_chunks_never_written_are_stored_as_nothing_and_read_as_the_fill_value(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    path = tmp_path / "1_fill.h5"
    with h5py.File(path, "w") as f:
        # 10^12 doubles in a 1.4 KB-class file: no chunk was ever written
        f.create_dataset("huge", shape=(10**12,), dtype="f8", chunks=(1 << 16,), fillvalue=np.nan)
        f.create_dataset("flat", shape=(10**12,), dtype="f8", fillvalue=-1.5)  # contiguous
        part = f.create_dataset("part", shape=(10**7, 4), dtype="i4", chunks=(1000, 2), fillvalue=7)
        part[5000:5003, 1:3] = [[1, 2], [3, 4], [5, 6]]
        part[10**7 - 1] = 9
    assert path.stat().st_size < 64 << 10
    sqlite_archive.ingest([path])
    run = sqlite_archive.runs[1]
    assert run.channels["huge"].shape == (10**12,)
    assert _data_objects(sqlite_archive, run, "huge") == []
    assert _data_objects(sqlite_archive, run, "flat") == []
    stored = sum(p.stat().st_size for p in (sqlite_archive.path / "store").rglob("*"))
    assert stored < 200 << 10  # the raw file and metadata documents, no data
    with h5py.File(path) as f:
        for key, where in [
            ("huge", np.s_[:5]),
            ("huge", np.s_[10**12 - 5 :]),
            ("flat", np.s_[123_456_789:123_456_792]),
            ("part", np.s_[4998:5004]),
            ("part", np.s_[10**7 - 2 :]),
            ("part", np.s_[:3]),
        ]:
            np.testing.assert_array_equal(run.channels[key][where], f[key][where])


def test_values_never_written_are_exported_as_nothing(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    path = tmp_path / "2_fill.h5"
    with h5py.File(path, "w") as f:
        huge = f.create_dataset("huge", (10**11,), "f8", chunks=(1 << 16,), fillvalue=np.nan)
        huge[7 * 10**10 : 7 * 10**10 + 3] = [1.0, 2.0, 3.0]
    sqlite_archive.ingest([path])
    out = tmp_path / "export.h5"
    sqlite_archive.runs[2].export(out)
    assert out.stat().st_size < 64 << 20  # not the 800 GB the dataset declares
    with h5py.File(path) as raw, h5py.File(out) as exported:
        for where in [np.s_[:4], np.s_[7 * 10**10 - 1 : 7 * 10**10 + 4], np.s_[-3:]]:
            np.testing.assert_array_equal(exported["huge"][where], raw["huge"][where])


def test_all_fill_chunks_of_written_data_are_not_stored(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    """A writer that wrote the fill value itself (a zeroed buffer) stores no chunk for it."""
    path = tmp_path / "2_zeros.h5"
    values = np.zeros(2_000_000)
    values[1_500_000] = 3.0
    with h5py.File(path, "w") as f:
        f["x"] = values  # contiguous and allocated: read, but its zero chunks are left out
    sqlite_archive.ingest([path])
    run = sqlite_archive.runs[2]
    np.testing.assert_array_equal(run.channels["x"][:], values)
    index = sqlite_archive.store.read(_data_objects(sqlite_archive, run, "x")[0])[-(16 * 16 + 4) :]
    written = np.frombuffer(index[:-4], "<u8").reshape(-1, 2)
    assert (written[:, 0] != 2**64 - 1).sum() == 1  # one chunk of 1 MiB: the one with the 3


# -- limits ----------------------------------------------------------------------------------


def test_a_csv_with_a_million_columns_is_refused_on_its_header(
    sqlite_archive: ll.Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "3_wide.csv"
    with open(path, "w") as f:
        f.write(",".join(f"c{i}" for i in range(10**6)) + "\n")
        f.write(",".join("1" for _ in range(10**6)) + "\n")

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the body of the file was parsed")

    monkeypatch.setattr(csv_format.pacsv, "open_csv", never)
    message = refused(sqlite_archive, path, "columns", "--limit columns=N")
    assert "over the limit columns=10000" in message


def test_a_limit_is_raised_by_the_caller_and_by_the_environment(
    sqlite_archive: ll.Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "4_five.csv"
    path.write_text("time,a,b,c,d\n0,1,2,3,4\n1,5,6,7,8\n")
    monkeypatch.setenv("LABLEDGER_LIMIT_COLUMNS", "3")
    refused(sqlite_archive, path, "5 columns", "columns=3", "LABLEDGER_LIMIT_COLUMNS")
    sqlite_archive.ingest([path], limits={"columns": 5})
    assert sqlite_archive.runs[4].channels["d"][:].tolist() == [4, 8]


def test_what_a_dataset_holds_is_checked_before_any_work(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    path = tmp_path / "5_big.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("written", data=np.arange(1000.0), chunks=(100,))
        f.create_dataset("never", shape=(10**9,), dtype="f8", chunks=(1000,))
    # only the 8000 bytes written count: 8 GB of fill values do not
    refused(sqlite_archive, path, "'written'", "holds 8000 bytes", limits={"dataset_bytes": "4K"})
    refused(
        sqlite_archive, path, "8000 bytes of data", "file_bytes=4096", limits={"file_bytes": 4096}
    )
    sqlite_archive.ingest([path], limits={"dataset_bytes": "8K"})


def test_a_huge_compound_is_refused_not_held_in_memory(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    path = tmp_path / "6_compound.h5"
    kind = np.dtype([("t", "<f8"), ("v", "<f8")])
    with h5py.File(path, "w") as f:
        f.create_dataset("events", shape=(10**10,), dtype=kind, chunks=(4096,))
    refused(sqlite_archive, path, "'events'", "held whole in memory", "whole_bytes=")


def test_counts_and_names_over_the_limits(sqlite_archive: ll.Archive, tmp_path: Path) -> None:
    many = tmp_path / "7_many.h5"
    with h5py.File(many, "w") as f:
        for i in range(50):
            f[f"d{i}"] = np.arange(3)
    refused(sqlite_archive, many, "50 arrays", "channels=10", limits={"channels": 10})

    named = tmp_path / "8_named.h5"
    with h5py.File(named, "w") as f:
        f["g" * 5000] = np.arange(3)
    refused(sqlite_archive, named, "a name of 5000 bytes", "name_bytes=4096")

    declared = tmp_path / "9_declared.h5"
    with h5py.File(declared, "w") as f:
        f.create_dataset("x", shape=(2**40, 2**20), dtype="u1", chunks=(1, 1 << 20))
    refused(sqlite_archive, declared, "'x'", f"declares {2**60} values", "dataset_elements")

    fields = tmp_path / "10_fields.h5"
    with h5py.File(fields, "w") as f:
        f["c"] = np.zeros(2, [(f"f{i}", "<i2") for i in range(20)])
    refused(sqlite_archive, fields, "20 fields", "compound_fields=8", limits={"compound_fields": 8})


def test_a_tree_too_big_or_too_deep_is_refused_while_it_is_walked(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    groups = tmp_path / "13_groups.h5"
    with h5py.File(groups, "w") as f:
        for i in range(300):
            f.create_group(f"g{i}")
    refused(sqlite_archive, groups, "over 100 groups", "nodes=100", limits={"nodes": 100})

    deep = tmp_path / "14_deep.h5"
    with h5py.File(deep, "w") as f:
        f["/".join(["g"] * 1500) + "/x"] = np.arange(3)  # deeper than Python's stack
    refused(sqlite_archive, deep, "nests groups", "depth=200")
    with pytest.raises(InvalidArgument, match="depth can be raised to 400 at most"):
        sqlite_archive.ingest([deep], limits={"depth": 1500})
    deep_enough = tmp_path / "15_deep.h5"
    with h5py.File(deep_enough, "w") as f:
        f["/".join(["g"] * 200) + "/x"] = np.arange(3)
    sqlite_archive.ingest([deep_enough])
    assert sqlite_archive.runs[15].channels["/".join(["g"] * 200) + "/x"][:].tolist() == [0, 1, 2]


def test_a_text_column_is_refused_once_it_outgrows_memory(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    """A CSV declares no length: its text columns are counted as they are read."""
    path = tmp_path / "11_text.csv"
    path.write_text("time,note\n" + "".join(f"{i},note number {i}\n" for i in range(5000)))
    refused(sqlite_archive, path, "'note'", "whole_bytes=65536", limits={"whole_bytes": "64K"})


def test_refused_by_the_cli_in_one_line(tmp_path: Path) -> None:
    archive = tmp_path / "ishtar"
    assert cli("init", str(archive)).returncode == 0
    path = tmp_path / "12_five.csv"
    path.write_text("time,a,b,c,d\n0,1,2,3,4\n")
    for args, fragments in [
        (["--limit", "columns=2"], ["12_five.csv", "columns=2", "--limit columns=N"]),
        (["--limit", "colums=9"], ["unknown limit 'colums'", "columns"]),
        (["--limit", "columns=lots"], ["'lots' is not a count"]),
    ]:
        result = cli("ingest", "--archive", str(archive), *args, str(path))
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        for fragment in fragments:
            assert fragment in lines[0], lines[0]
    result = cli("ingest", "--archive", str(archive), "--limit", "columns=5", str(path))
    assert result.returncode == 0, result.stderr


def test_limits_are_resolved_settings_then_environment_then_caller() -> None:
    settings = {"columns": 100, "channels": "2k"}
    environ = {"LABLEDGER_LIMIT_COLUMNS": "200", "LABLEDGER_LIMIT_FILE_BYTES": "1T"}
    limits = Limits.resolve(settings, {"file_bytes": "2T"}, environ)
    assert (limits.columns, limits.channels, limits.file_bytes) == (200, 2048, 2 << 40)
    assert Limits.resolve(environ={}) == Limits()
    with pytest.raises(InvalidArgument, match="unknown limit 'rows'"):
        Limits.resolve({"rows": 1}, environ={})


@pytest.mark.s3
def test_fill_only_chunks_on_object_storage(
    s3_bucket: str, s3_endpoint: str, tmp_path: Path
) -> None:
    """On S3 too a chunk never written is no object, and reads back as the fill value."""
    path = tmp_path / "16_fill.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("x", shape=(10**9,), dtype="f4", chunks=(1 << 16,), fillvalue=-1)
        ds[5 * 10**8 : 5 * 10**8 + 3] = [1, 2, 3]
    la = ll.init(
        tmp_path / "lab",
        store=f"{s3_bucket}/archive",
        storage_options={"endpoint_url": s3_endpoint},
    )
    try:
        la.ingest([path])
        channel = la.runs[16].channels["x"]
        assert len(_data_objects(la, la.runs[16], "x")) == 1  # the shard of the 3 values
        with h5py.File(path) as f:
            for where in [np.s_[:4], np.s_[5 * 10**8 - 2 : 5 * 10**8 + 4], np.s_[-3:]]:
                np.testing.assert_array_equal(channel[where], f["x"][where])
    finally:
        la.close()
