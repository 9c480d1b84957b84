"""The format registry: detection, a lab's own format through an entry point, and tree shapes
of the kind beamline sequencers write."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

import labledger as ll
from labledger.errors import BadInput
from labledger.formats import detect, formats, get


def test_the_built_in_formats_are_entry_points() -> None:
    assert {"tdms", "hdf5", "csv"} <= set(formats())
    with pytest.raises(BadInput, match="unknown format 'mat'; known formats: csv, hdf5, tdms"):
        get("mat")


def test_detection_by_content_not_name(tmp_path: Path, nexus_dir: Path, tdms_dir: Path) -> None:
    disguised = tmp_path / "scan.dat"
    disguised.write_bytes((nexus_dir / "NXscan.hdf5").read_bytes())
    assert detect(disguised, disguised.read_bytes()[:4096]).name == "hdf5"
    shot = tmp_path / "shot.bin"
    shot.write_bytes((tdms_dir / "raw1.tdms").read_bytes())
    assert detect(shot, shot.read_bytes()[:4096]).name == "tdms"
    userblock = nexus_dir / "Focus_2021-03-16_051.hdf5"  # superblock after a 32 kB user block
    assert detect(userblock, userblock.read_bytes()[:4096]).name == "hdf5"


def test_a_lab_adds_its_own_format_through_an_entry_point(
    tmp_path: Path, sqlite_archive: ll.Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package of the lab's declares `labledger.formats`; labledger finds and uses it."""
    (tmp_path / "labformat.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            from labledger.formats.base import ChannelInfo, Source, tree_node

            class ScopeFormat:
                name = "scope"
                description = "the lab's oscilloscope dumps"

                def sniff(self, head, path):
                    return head.startswith(b"SCOPE1")

                def open(self, path):
                    return ScopeSource(path)

            class ScopeSource(Source):
                def __init__(self, path):
                    super().__init__(path=path, format="scope")
                    self.values = np.frombuffer(path.read_bytes()[6:], "<f4")
                    self.metadata = {"scope": "TDS2024"}
                    shape, dtype = self.values.shape, np.dtype("<f4")
                    self.channels = [ChannelInfo("ch1", ("ch1",), shape, dtype)]
                    self.tree = tree_node(path.name, "file")

                def blocks(self):
                    yield "ch1", self.values
            """
        )
    )
    dist = tmp_path / "labformat-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: labformat\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[labledger.formats]\nscope = labformat:ScopeFormat\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    formats.cache_clear()
    try:
        assert "scope" in formats()
        dump = tmp_path / "dump_77.bin"
        dump.write_bytes(b"SCOPE1" + np.arange(5, dtype="<f4").tobytes())
        sqlite_archive.ingest([dump])
        run = sqlite_archive.runs[77]
        assert run.sources[0].format == "scope" and run.metadata["scope"] == "TDS2024"
        np.testing.assert_array_equal(run.channels["ch1"][:], np.arange(5, dtype="<f4"))
    finally:
        sys.modules.pop("labformat", None)
        formats.cache_clear()


def test_a_bliss_style_sequence_of_scans_keeps_its_nesting(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    """ESRF's BLISS writes one entry per scan ("1.1", "2.1", ...) and a sequence entry that
    points at its scans; the tree and the links come through as the file has them."""
    path = tmp_path / "sample_0042.h5"
    with h5py.File(path, "w") as f:
        for scan in ("2.1", "3.1"):
            entry = f.create_group(scan)
            entry.attrs["NX_class"] = "NXentry"
            entry["title"] = f"ascan sy 0 1 10 0.1 ({scan})"
            entry["start_time"] = "2026-11-20T10:00:00+01:00"
            measurement = entry.create_group("measurement")
            measurement.attrs["NX_class"] = "NXcollection"
            measurement["sy"] = np.linspace(0, 1, 11)
            measurement["diode"] = np.arange(11.0) * (2 if scan == "3.1" else 1)
            detector = entry.create_group("instrument/diode")
            detector.attrs["NX_class"] = "NXdetector"
            f[f"{scan}/instrument/diode/data"] = h5py.SoftLink(f"/{scan}/measurement/diode")
        sequence = f.create_group("1.1")
        sequence.attrs["NX_class"] = "NXentry"
        sequence["title"] = "sequence of 2 scans"
        scans = sequence.create_group("scans")
        scans["2.1"] = h5py.SoftLink("/2.1")
        scans["3.1"] = h5py.SoftLink("/3.1")
    [result] = sqlite_archive.ingest([path])
    run = sqlite_archive.runs[42]
    tree = run.tree()
    assert tree["1.1/scans/3.1"].kind == "link" and tree["1.1/scans/3.1"].node["target"] == "3.1"
    assert tree["3.1/measurement"].attrs["NX_class"] == "NXcollection"
    # through the sequence, as h5py would follow it
    np.testing.assert_array_equal(
        run.channels["1.1/scans/3.1/measurement/diode"][:], np.arange(11.0) * 2
    )
    np.testing.assert_array_equal(run.channels["2.1/instrument/diode/data"][:], np.arange(11.0))
    assert run.metadata["2.1/title"] == "ascan sy 0 1 10 0.1 (2.1)"
    assert run.started.isoformat() == "2026-11-20T09:00:00+00:00"
    assert result.channels == 2 * 4 + 1
