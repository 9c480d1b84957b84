"""What one ingest may cost whatever a file declares: the memory of a wide sparse HDF5 dataset
is bounded per block, not per row of its chunks; the text and compounds held in memory are
bounded per file, not only per array; and a refusal says how to raise the limit that applies
to every way of ingesting (CLI, archive setting, environment)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import labledger as ll
from labledger.errors import BadInput
from labledger.formats.base import ChannelInfo, Source
from labledger.formats.bounds import check
from labledger.formats.hdf5 import Hdf5Source
from labledger.formats.limits import Limits
from tests.conftest import cli, refused

# The ingest's own peak memory: VmHWM of the process that runs `labledger ingest`, read as it
# exits (ru_maxrss of a child would also count what this process had when it forked it).
_MEASURED = """
import atexit, sys
def peak():
    status = open("/proc/self/status").read().split("VmHWM:")[1]
    sys.stderr.write(f"\\npeak {int(status.split()[0]) * 1024}\\n")
atexit.register(peak)
from labledger.cli import main
sys.argv[0] = "labledger"
main()
"""


def test_a_wide_sparse_dataset_is_ingested_in_bounded_memory(tmp_path: Path) -> None:
    """One row of chunks of this dataset is 2 GB of fill values; one chunk of it is written."""
    path = tmp_path / "1_sparse.h5"
    shape, chunks = (2000, 250_000), (1000, 1000)
    written = np.random.default_rng(1).standard_normal(chunks)
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("wide", shape=shape, dtype="f8", chunks=chunks, fillvalue=np.nan)
        ds[1000:2000, 7000:8000] = written
    assert path.stat().st_size < 16 << 20
    assert 2 * chunks[0] * shape[1] * 8 > 1.5e9  # what reading a row of chunks at once takes
    archive = tmp_path / "ishtar"
    assert cli("init", str(archive)).returncode == 0
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURED, "ingest", "--archive", str(archive), str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    peak = int(proc.stderr.rpartition("\npeak ")[2])
    assert peak < 600 << 20, f"peak RSS {peak >> 20} MB"
    la = ll.open(archive)
    try:
        channel = la.runs[1].channels["wide"]
        assert channel.shape == shape
        expected = np.full((4, 1010), np.nan)  # h5py's values, by hand: fill, then the chunk
        expected[2:, 10:] = written[:2, :1000]
        np.testing.assert_array_equal(channel[998:1002, 6990:8000], expected)
        np.testing.assert_array_equal(channel[1999, 7000:8000], written[-1])
        assert np.isnan(channel[0, :3000]).all()
    finally:
        la.close()


def test_a_file_of_huge_chunks_is_refused_before_any_read(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    """HDF5 decompresses a whole chunk to read any of it: a chunk's bytes are a limit."""
    path = tmp_path / "2_chunky.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", shape=(4, 1 << 25), dtype="f8", chunks=(1, 1 << 25))  # 256 MiB
    refused(sqlite_archive, path, "'x'", f"chunks of {8 << 25} bytes", "chunk_bytes=134217728")
    sqlite_archive.ingest([path], limits={"chunk_bytes": "256M"})
    assert sqlite_archive.runs[2].channels["x"].shape == (4, 1 << 25)


def test_text_held_across_a_file_is_bounded_before_any_work(
    sqlite_archive: ll.Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each text array is under whole_bytes; together they are over whole_file_bytes."""
    path = tmp_path / "3_texts.h5"
    with h5py.File(path, "w") as f:
        for i in range(3):
            f[f"t{i}"] = np.full(4000, b"x" * 100, dtype="S100")  # 400 kB each

    def never(self: Hdf5Source) -> None:
        raise AssertionError("the data of the file was read")

    with monkeypatch.context() as patched:
        patched.setattr(Hdf5Source, "blocks", never)
        message = refused(
            sqlite_archive,
            path,
            "1200000 bytes of text",
            "whole_file_bytes=1048576",
            limits={"whole_file_bytes": "1M"},
        )
    assert "'t0'" not in message  # the file is refused, not one of its arrays
    sqlite_archive.ingest([path], limits={"whole_file_bytes": "2M"})
    assert sqlite_archive.runs[3].channels["t2"][:2].tolist() == [b"x" * 100] * 2


def test_text_columns_of_a_csv_are_bounded_together_as_they_are_read(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    """A CSV declares no length: 20 text columns of 1000 values, 64 kB each held, 1.28 MB in all."""
    path = tmp_path / "4_notes.csv"
    header = "time," + ",".join(f"n{j}" for j in range(20)) + "\n"
    body = "".join(
        f"{i}," + ",".join(f"note {i}-{j}" for j in range(20)) + "\n" for i in range(1000)
    )
    path.write_text(header + body)
    refused(sqlite_archive, path, "whole_file_bytes=1048576", limits={"whole_file_bytes": "1M"})
    sqlite_archive.ingest([path], limits={"whole_file_bytes": "2M"})
    assert sqlite_archive.runs[4].channels["n19"][998:].tolist() == ["note 998-19", "note 999-19"]


def test_the_cli_refuses_text_over_the_file_limit_in_one_line(tmp_path: Path) -> None:
    archive = tmp_path / "ishtar"
    assert cli("init", str(archive)).returncode == 0
    path = tmp_path / "5_notes.csv"
    path.write_text("time,a,b\n" + "".join(f"{i},x{i},y{i}\n" for i in range(100)))
    result = cli("ingest", "--archive", str(archive), "--limit", "whole_file_bytes=10K", str(path))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "5_notes.csv" in lines[0] and "whole_file_bytes=10240" in lines[0], lines[0]
    assert cli("runs", "--archive", str(archive), "--json").stdout.strip() == "[]"


def test_a_refusal_names_every_way_to_raise_the_limit(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    """Server uploads cannot pass --limit: the archive's setting and the environment reach them."""
    path = tmp_path / "6_five.csv"
    path.write_text("time,a,b,c,d\n0,1,2,3,4\n")
    message = refused(sqlite_archive, path, limits={"columns": 3})
    for way in ("--limit columns=N", "the archive's limits setting", "LABLEDGER_LIMIT_COLUMNS=N"):
        assert way in message, message


def test_what_is_held_whole_is_what_the_store_does_not_stream() -> None:
    """One definition of "streamed": a float128 array is not streamed by the store, so it is
    held whole and its declared size counts against whole_bytes."""
    info = ChannelInfo(key="x", segments=("x",), shape=(10**9,), dtype=np.dtype(np.longdouble))
    source = Source(path=Path("7_long.h5"), format="hdf5", channels=[info])
    if np.dtype(np.longdouble).itemsize != 16:
        pytest.skip("this platform's long double is a plain double")
    with pytest.raises(BadInput, match="whole_bytes"):
        check(source, Limits())


def test_long_text_is_counted_with_its_characters(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    """200 values of 1000 characters hold about 200 kB in memory, not 200 pointers' worth."""
    path = tmp_path / "8_essays.csv"
    path.write_text("time,essay\n" + "".join(f"{i},{'e' * 1000}\n" for i in range(200)))
    refused(sqlite_archive, path, "'essay'", "whole_bytes=131072", limits={"whole_bytes": "128K"})
    sqlite_archive.ingest([path], limits={"whole_bytes": "256K"})
    assert sqlite_archive.runs[8].channels["essay"][199] == "e" * 1000
