"""Real files from facilities and from LabVIEW: what labledger reads back equals, element for
element, what h5py and npTDMS read from the original. On SQLite and PostgreSQL catalogs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from nptdms import TdmsFile

import labledger as ll
from labledger.formats.values import single, to_scalar
from tests.conftest import NEXUS_FILES, TDMS_FILES


def _h5_value(ds: h5py.Dataset):
    if ds.dtype.kind == "O" and h5py.check_string_dtype(ds.dtype) is not None:
        return ds.asstr()[()]
    return ds[()]


def _assert_same(ours, theirs, what: str) -> None:
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, what
    if theirs.dtype.kind in "fc":
        np.testing.assert_array_equal(ours, theirs, err_msg=what)  # NaN == NaN here
    else:
        assert np.array_equal(ours.astype(object), theirs.astype(object)), what


@pytest.mark.parametrize("name", NEXUS_FILES)
def test_every_nexus_dataset_reads_back_as_h5py_reads_it(
    archive: ll.Archive, nexus_dir: Path, name: str
) -> None:
    path = nexus_dir / name
    [result] = archive.ingest([path])
    run = archive.runs[result.number]
    assert run.sources[0].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    with h5py.File(path, "r") as f:
        datasets: list[str] = []
        f.visititems(lambda n, o: datasets.append(n) if isinstance(o, h5py.Dataset) else None)
        assert datasets, "the file has datasets"
        for name_ in datasets:
            channel = run.channels[name_]
            _assert_same(channel[()], _h5_value(f[name_]), name_)
            assert channel.shape == f[name_].shape
        groups: list[str] = []
        f.visititems(lambda n, o: groups.append(n) if isinstance(o, h5py.Group) else None)
    tree = run.tree()
    kept = {path_ for node, path_ in tree.walk() if node["kind"] == "group"}
    assert set(groups) <= kept  # the group tree is preserved
    for group in groups:
        with h5py.File(path, "r") as f:
            if "NX_class" in f[group].attrs:
                assert single(tree[group].attrs["NX_class"]) == to_scalar(
                    f[group].attrs["NX_class"]
                )


def test_nexus_scan_metadata_and_links(archive: ll.Archive, nexus_dir: Path) -> None:
    [result] = archive.ingest([nexus_dir / "538039.nxs"])
    run = archive.runs[result.number]
    tree = run.tree()
    link = tree["entry1/instrument/pil100k/data"]
    assert link.kind == "link"
    assert link.node["file"] == "538039-pilatus100k-files/538039.hdf"
    assert link.node["target"] == "entry/instrument/detector/data"
    with pytest.raises(KeyError, match="external link to 538039-pilatus100k-files"):
        run.channels["entry1/pil100k/data"]
    assert run.metadata["entry1@NX_class"] == "NXentry"
    assert archive.runs.search(source="538039.nxs") == [run]


def test_hard_links_are_recorded_once_and_resolve(archive: ll.Archive, nexus_dir: Path) -> None:
    [result] = archive.ingest([nexus_dir / "NXtest.h5"])
    run = archive.runs[result.number]
    assert run.tree()["link/renLinkGroup"].kind == "link"
    with h5py.File(nexus_dir / "NXtest.h5") as f:
        for alias in ["link/renLinkData", "link/renLinkGroup/ch_data", "entry/r8_data"]:
            _assert_same(run.channels[alias][()], f[alias][()], alias)


def test_an_area_detector_image_slices_as_h5py(archive: ll.Archive, nexus_dir: Path) -> None:
    path = nexus_dir / "AgBehenate_228.hdf5"
    [result] = archive.ingest([path])
    run = archive.runs[result.number]
    with h5py.File(path) as f:
        images = []
        f.visititems(
            lambda n, o: images.append(n) if isinstance(o, h5py.Dataset) and o.ndim == 2 else None
        )
        assert images
        image = f[images[0]]
        ours = run.channels[images[0]]
        rows, cols = image.shape
        sel = (slice(rows // 4, rows // 2), slice(cols // 3, cols - 1, 2))
        np.testing.assert_array_equal(ours[sel], image[sel])
    assert result.problems == []


def test_a_file_its_writer_never_finished_ingests_what_is_readable(
    archive: ll.Archive, nexus_dir: Path
) -> None:
    [result] = archive.ingest([nexus_dir / "ID34_not_complete.h5"])
    run = archive.runs[result.number]
    image = run.channels["entry1/data/data"]
    assert image.shape == (100, 60)
    with h5py.File(nexus_dir / "ID34_not_complete.h5") as f:
        np.testing.assert_array_equal(image[:, 10:20], f["entry1/data/data"][:, 10:20])
    assert result.problems == []  # everything in it could be read, and was


@pytest.mark.parametrize("name", TDMS_FILES)
def test_every_tdms_channel_reads_back_as_nptdms_reads_it(
    archive: ll.Archive, tdms_dir: Path, name: str
) -> None:
    path = tdms_dir / name
    archive.ingest([path], run=1)
    run = archive.runs[1]
    with TdmsFile.open(path) as f:
        for group in f.groups():
            for channel in group.channels():
                key = f"{group.name}/{channel.name}"
                raw = channel.read_data(scaled=False)
                if isinstance(raw, dict):  # DAQmx: the raw integers of its one scaler
                    [raw] = raw.values()
                ours = run.channels[key]
                _assert_same(ours[:], raw, key)
                assert ours.attrs["wf_increment"] == channel.properties["wf_increment"]
                props = channel.properties
                expected_time = (
                    props.get("wf_start_offset", 0.0)
                    + np.arange(len(channel)) * props["wf_increment"]
                )
                np.testing.assert_allclose(ours.to_xarray().coords["time"].values, expected_time)


def test_daqmx_raw_integers_are_stored_with_their_scaling(
    archive: ll.Archive, tdms_dir: Path
) -> None:
    archive.ingest([tdms_dir / "raw1.tdms"], run=5)
    channel = archive.runs[5].channels["Layer Data/First  Channel"]
    assert channel.dtype == np.dtype("<i2")  # the raw integers, not the scaled floats
    assert channel.attrs["NI_Scale[1]_Linear_Slope"] == pytest.approx(0.0003051850947599719)
    with TdmsFile.open(tdms_dir / "raw1.tdms") as f:
        scaled = f["Layer Data"]["First  Channel"][:]
    slope = channel.attrs["NI_Scale[1]_Linear_Slope"]
    np.testing.assert_allclose(channel[:] * slope, scaled)


def test_raw_files_are_kept_byte_for_byte(
    archive: ll.Archive, tdms_dir: Path, nexus_dir: Path
) -> None:
    paths = [tdms_dir / "Digital_Input.tdms", nexus_dir / "NXscan.hdf5"]
    for result, path in zip(archive.ingest(paths), paths):
        [raw] = archive.runs[result.number].sources
        with raw.open() as f:
            assert f.read() == path.read_bytes()
        assert raw.size == path.stat().st_size
        assert raw.original_path == str(path.resolve())
