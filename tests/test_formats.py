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
        dump = tmp_path / "77_dump.bin"
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
    path = tmp_path / "0042_sample.h5"
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


# -- what real acquisition files also hold -----------------------------------------------------


def _export_and_read(archive: ll.Archive, number: int, tmp_path: Path) -> h5py.File:
    out = tmp_path / f"run{number}.h5"
    archive.runs[number].export(out)
    return h5py.File(out, "r")


def test_tdms_text_and_timestamp_channels(sqlite_archive: ll.Archive, tmp_path: Path) -> None:
    from nptdms import ChannelObject, GroupObject, RootObject, TdmsFile, TdmsWriter

    path = tmp_path / "31_log.tdms"
    stamps = np.array(["2026-11-20T10:00:00", "2026-11-20T10:00:01.5"], dtype="datetime64[us]")
    with TdmsWriter(path) as writer:
        writer.write_segment(
            [
                RootObject({"operator": "ana"}),
                GroupObject("Log"),
                ChannelObject("Log", "message", ["RF on", "arc détecté"]),
                ChannelObject("Log", "when", stamps),
            ]
        )
    sqlite_archive.ingest([path])
    run = sqlite_archive.runs[31]
    assert list(run.channels["Log/message"][:]) == list(TdmsFile.read(path)["Log"]["message"][:])
    np.testing.assert_array_equal(run.channels["Log/when"][:], stamps)
    with _export_and_read(sqlite_archive, 31, tmp_path) as f:
        assert [m.decode() for m in f["Log/message"][()]] == ["RF on", "arc détecté"]
        when = f["Log/when"]
        assert when.attrs["units"] == "microseconds since 1970-01-01T00:00:00"
        np.testing.assert_array_equal(when[()], stamps.astype(np.int64))


def test_daqmx_channels_with_several_raw_scalers(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    from nptdms import TdmsFile
    from nptdms.test.test_daqmx import daqmx_channel_metadata, daqmx_scaler_metadata, segment_toc
    from nptdms.test.util import (
        GeneratedFile,
        group_metadata,
        root_metadata,
        segment_objects_metadata,
    )

    def scalers() -> list:
        return [daqmx_scaler_metadata(0, 3, 0), daqmx_scaler_metadata(1, 3, 2)]

    metadata = segment_objects_metadata(
        root_metadata(),
        group_metadata(),
        daqmx_channel_metadata("Channel1", 4, [4], scalers()),
        daqmx_channel_metadata("Channel2", 4, [4], scalers()),
    )
    channel1 = "01 00 11 00 02 00 12 00 03 00 13 00 04 00 14 00"  # interleaved scalers
    channel2 = "21 00 31 00 22 00 32 00 23 00 33 00 24 00 34 00"
    data = f"{channel1} {channel2}"
    generated = GeneratedFile()
    generated.add_segment(segment_toc(), metadata, data)
    path = tmp_path / "20_strain.tdms"
    path.write_bytes(generated.get_bytes_io_file().getvalue())
    sqlite_archive.ingest([path])
    run = sqlite_archive.runs[20]
    with TdmsFile.open(path) as f:
        for channel in f["Group"].channels():
            for scaler, raw in channel.read_data(scaled=False).items():
                ours = run.channels[f"Group/{channel.name}/scaler{scaler}"]
                np.testing.assert_array_equal(ours[:], raw)
    node = run.tree()["Group/Channel1"]
    assert node.kind == "group" and [c.name for c in node.children] == ["scaler0", "scaler1"]
    with _export_and_read(sqlite_archive, 20, tmp_path) as exported:
        assert sorted(exported["Group/Channel2"]) == ["scaler0", "scaler1"]


def _odd_hdf5(path: Path) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("empty_null", data=h5py.Empty("f8"))
        f["empty_null"].attrs["units"] = "V"
        f.create_dataset("f128", data=np.arange(4, dtype=np.longdouble))
        f.create_dataset(
            "compound", data=np.array([(1, 2.5), (3, 4.5)], dtype=[("a", "<i4"), ("b", "<f8")])
        )
        group = f.create_group("grp")
        group["data"] = np.arange(3.0)
        group["rel"] = h5py.SoftLink("data")  # relative: grp/data, not /data
        f.create_dataset(
            "latin1",
            data=np.array([b"\xb5m", b"ok"], dtype=object),
            dtype=h5py.string_dtype("ascii"),
        )
        f.create_dataset(
            "bad_gzip", data=np.arange(100_000, dtype="f8"), chunks=(50_000,), compression="gzip"
        )
        f.create_dataset("good", data=np.arange(10))
        offset = f["bad_gzip"].id.get_chunk_info(0).byte_offset
    with open(path, "r+b") as raw:  # damage the first compressed chunk
        raw.seek(offset + 100)
        raw.write(b"\xff" * 200)


def test_odd_hdf5_content_is_kept_or_reported(sqlite_archive: ll.Archive, tmp_path: Path) -> None:
    path = tmp_path / "1_odd.h5"
    _odd_hdf5(path)
    [result] = sqlite_archive.ingest([path])
    run = sqlite_archive.runs[1]
    problems = " | ".join(result.problems)
    assert "f128: HDF5 type float128 is not supported" in problems
    assert "bad_gzip: cannot be read" in problems
    np.testing.assert_array_equal(run.channels["good"][:], np.arange(10))  # the rest is there
    tree = run.tree()
    assert tree["bad_gzip"].kind == "dataset" and "problem" in tree["bad_gzip"].node
    assert tree["empty_null"].node["empty"] is True
    compound = run.channels["compound"]
    assert compound.dtype.names == ("a", "b")
    np.testing.assert_array_equal(compound[:]["b"], [2.5, 4.5])
    np.testing.assert_array_equal(run.channels["grp/rel"][:], np.arange(3.0))
    assert list(run.channels["latin1"][:]) == ["µm", "ok"]
    with _export_and_read(sqlite_archive, 1, tmp_path) as f:
        assert f["empty_null"].shape is None and f["empty_null"].attrs["units"] == "V"
        assert f.get("grp/rel", getlink=True).path == "data"
        np.testing.assert_array_equal(f["grp/rel"][()], np.arange(3.0))
        assert f["compound"].dtype == np.dtype([("a", "<i4"), ("b", "<f8")])
        assert "bad_gzip" not in f and "f128" not in f  # kept in the raw file only


def test_csv_columns_of_other_kinds(sqlite_archive: ll.Archive, tmp_path: Path) -> None:
    path = tmp_path / "40_shift.csv"
    path.write_bytes(b"clock,label,v\n12:34:56,\xb5-probe,1.5\n12:35:00,ok,2.5\n")
    sqlite_archive.ingest([path])
    run = sqlite_archive.runs[40]
    assert list(run.channels["clock"][:]) == ["12:34:56", "12:35:00"]  # a time of day, as text
    assert list(run.channels["label"][:]) == ["µ-probe", "ok"]  # Latin-1, not UTF-8


def test_a_csv_boolean_column_with_a_gap_is_refused(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    path = tmp_path / "41_flags.csv"
    path.write_text("t,flag,v\n0,true,1\n1,,2\n2,false,3\n")
    with pytest.raises(BadInput, match="column 'flag' holds true/false values but has empty cells"):
        sqlite_archive.ingest([path])
    assert len(sqlite_archive.runs) == 0


def test_a_binary_file_forced_as_csv_is_refused(sqlite_archive: ll.Archive, tmp_path: Path) -> None:
    path = tmp_path / "42_blob.csv"
    path.write_bytes(b"a,b\n" + bytes(range(128, 256)) * 50)
    with pytest.raises(BadInput, match="42_blob.csv"):
        sqlite_archive.ingest([path], format="csv")


def test_a_plugin_that_fails_to_load_is_left_out_and_the_others_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One broken format of a lab's (a module that does not import) is named in a warning;
    labledger's own formats still read files."""
    from importlib.metadata import EntryPoint, entry_points

    from labledger import plugins
    from labledger.formats import registry

    group = registry.ENTRY_POINT_GROUP
    broken = EntryPoint("broken", "no_such_module_of_a_lab:Format", group)
    real = list(entry_points(group=group))
    monkeypatch.setattr(plugins, "entry_points", lambda group: [broken, *real])
    registry.formats.cache_clear()
    try:
        said = r"plug-in 'broken' of labledger.formats \(no_such_module_of_a_lab:Format\) failed"
        with pytest.warns(plugins.PluginWarning, match=said + r" to load .*ModuleNotFound"):
            found = registry.formats()
        assert sorted(found) == sorted(ep.name for ep in real) == ["csv", "hdf5", "tdms"]
    finally:
        registry.formats.cache_clear()
