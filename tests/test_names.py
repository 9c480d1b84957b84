"""Odd names in raw files: longer than a file name may be, with NUL, not UTF-8, or leading
round a loop. Each is stored, read back under its own name, or refused in one line; none is a
traceback. On SQLite and on PostgreSQL (which keeps no NUL in text)."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
from nptdms import ChannelObject, GroupObject, RootObject, TdmsWriter

import labledger as ll
from labledger.store.layout import node_name
from tests.conftest import cli

LONG = "Langmuir probe current " * 19 + "I"  # 438 bytes: a file name may have 255


def _longest_store_name(la: ll.Archive) -> int:
    assert la.path is not None
    return max(len(os.fsencode(p.name)) for p in (la.path / "store").rglob("*"))


def test_long_csv_headers_are_stored_and_read_back(archive: ll.Archive, tmp_path: Path) -> None:
    path = tmp_path / "1_long.csv"
    path.write_text(f"time,{LONG},{LONG}x\n0,1.5,2\n1,2.5,3\n")
    archive.ingest([path])
    run = archive.runs[1]
    assert run.channels[LONG][:].tolist() == [1.5, 2.5]
    assert run.channels[LONG + "x"][:].tolist() == [2, 3]
    assert _longest_store_name(archive) <= 255


def test_long_hdf5_names_are_stored_and_read_back(archive: ll.Archive, tmp_path: Path) -> None:
    path = tmp_path / "2_long.h5"
    group = "entry " + "g" * 300
    with h5py.File(path, "w") as f:
        f[f"{group}/{LONG}"] = np.arange(4.0)
        f[f"{group}/{LONG}2"] = np.arange(3)
    archive.ingest([path])
    run = archive.runs[2]
    assert run.channels[f"{group}/{LONG}"][:].tolist() == [0, 1, 2, 3]
    assert run.channels[f"{group}/{LONG}2"][:].tolist() == [0, 1, 2]
    assert _longest_store_name(archive) <= 255


def test_tdms_names_and_properties_with_nul_and_long_names(
    archive: ll.Archive, tmp_path: Path
) -> None:
    path = tmp_path / "3_nul.tdms"
    with TdmsWriter(path) as w:
        w.write_segment(
            [
                RootObject({"operator": "a\x00b"}),
                GroupObject("PXI\x00", {"gas\x00": "Ar"}),
                ChannelObject("PXI\x00", "ai\x000", np.arange(4.0), {"unit": "V\x00"}),
                ChannelObject("PXI\x00", LONG, np.arange(3.0)),
            ]
        )
    archive.ingest([path])
    run = archive.runs[3]
    channel = run.channels["PXI\x00/ai\x000"]  # found under its own name
    assert channel[:].tolist() == [0, 1, 2, 3]
    assert channel.attrs["unit"] == "V\u2400"  # NUL shown as ␀: no database keeps it
    assert run.channels["PXI\u2400/ai\u24000"].key == channel.key
    assert run.channels[f"PXI\x00/{LONG}"][:].tolist() == [0, 1, 2]
    assert run.metadata["operator"] == "a\u2400b"
    assert run.metadata["PXI\u2400@gas\u2400"] == "Ar"
    assert _longest_store_name(archive) <= 255


def test_a_soft_link_loop_is_kept_as_links(archive: ll.Archive, tmp_path: Path) -> None:
    path = tmp_path / "4_loop.h5"
    with h5py.File(path, "w") as f:
        f["entry/a"] = h5py.SoftLink("/entry/b")
        f["entry/b"] = h5py.SoftLink("/entry/a")
        f["self"] = h5py.SoftLink("/self")
        f["entry/data"] = np.arange(5)
    archive.ingest([path])
    run = archive.runs[4]
    assert run.channels["entry/data"][:].tolist() == [0, 1, 2, 3, 4]
    links = {at: node["target"] for node, at in run.tree().walk() if node["kind"] == "link"}
    assert links == {"entry/a": "entry/b", "entry/b": "entry/a", "self": "self"}


def test_compounds_with_fixed_length_byte_fields(archive: ll.Archive, tmp_path: Path) -> None:
    path = tmp_path / "5_compound.h5"
    kind = np.dtype([("n", "<i4"), ("name", "S6"), ("v", "<f8")])
    values = np.array([(1, b"alpha", 0.5), (2, b"beta", 1.5)], kind)
    with h5py.File(path, "w") as f:
        f["log"] = values
    archive.ingest([path])
    stored = archive.runs[5].channels["log"][:]
    with h5py.File(path) as f:
        expected = f["log"][()]
    assert stored.dtype.names == expected.dtype.names
    for name in kind.names:
        assert stored[name].tolist() == expected[name].tolist()


def test_a_file_name_that_is_not_utf8(archive: ll.Archive, tmp_path: Path) -> None:
    path = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9_6.csv"))
    path.write_text("time,v\n0,1\n1,2\n")
    (result,) = archive.ingest([path])
    run = archive.runs[result.number]
    assert run.channels["v"][:].tolist() == [1, 2]
    (source,) = run.sources
    assert source.name == "café_6.csv"  # its bytes read as Latin-1, as old files' text is
    assert source.open().read() == path.read_bytes()


def test_odd_names_through_the_cli(tmp_path: Path) -> None:
    archive = tmp_path / "ishtar"
    assert cli("init", str(archive)).returncode == 0
    odd = os.fsencode(tmp_path) + b"/caf\xe9_7.csv"
    Path(os.fsdecode(odd)).write_text(f"time,{LONG}\n0,1\n")
    result = cli("ingest", "--archive", str(archive), os.fsdecode(odd))
    assert result.returncode == 0, result.stderr
    assert "café_7.csv: ingested as run 1 " in result.stdout  # not a shot file's name: next free


def test_long_names_are_encoded_deterministically() -> None:
    a, b = "x" * 300 + "a", "x" * 300 + "b"
    assert node_name(a) == node_name(a)
    assert node_name(a) != node_name(b)
    assert len(node_name(a).encode()) <= 255
    assert node_name("é" * 200).startswith("é" * 64)  # cut on a whole character
    assert node_name("caf\udce9") == "caf%E9"
