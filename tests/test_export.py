"""Export to HDF5: HDF5 in, export, compare with h5py: the same tree, values, types,
attributes and links."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from nptdms import TdmsFile

import labledger as ll
from labledger.errors import InvalidArgument
from labledger.formats.values import decode_text
from labledger.sim import write_shot
from tests.conftest import NEXUS_FILES


def _text(value) -> list:
    value = np.asarray(value)
    if value.dtype.kind in "SO":
        return [decode_text(v) if isinstance(v, bytes) else str(v) for v in value.ravel()]
    return value.ravel().tolist()


def _links(group: h5py.Group, at: str = "") -> dict[str, tuple]:
    found = {}
    for name in group:
        link = group.get(name, getlink=True)
        path = f"{at}/{name}"
        if isinstance(link, h5py.SoftLink):
            found[path] = ("soft", link.path)
        elif isinstance(link, h5py.ExternalLink):
            found[path] = ("external", link.filename, link.path)
        elif isinstance(group.get(name), h5py.Group):
            found.update(_links(group[name], path))
    return found


@pytest.mark.parametrize("name", NEXUS_FILES)
def test_hdf5_round_trip(
    sqlite_archive: ll.Archive, nexus_dir: Path, tmp_path: Path, name: str
) -> None:
    original = nexus_dir / name
    [result] = sqlite_archive.ingest([original])
    exported = tmp_path / "out.h5"
    sqlite_archive.runs[result.number].export(exported)
    with h5py.File(original) as a, h5py.File(exported) as b:
        checked = []

        def compare(path: str, obj) -> None:
            assert path in b, path
            other = b[path]
            assert type(other) is type(obj), path
            if isinstance(obj, h5py.Dataset):
                if obj.dtype.kind == "O":
                    np.testing.assert_array_equal(other.asstr()[()], obj.asstr()[()])
                else:
                    assert other.dtype == obj.dtype, path
                    np.testing.assert_array_equal(other[()], obj[()])
                checked.append(path)
            for key in obj.attrs:
                assert _text(other.attrs[key]) == _text(obj.attrs[key]), (path, key)

        a.visititems(compare)
        for key in a.attrs:
            assert _text(b.attrs[key]) == _text(a.attrs[key])
        assert checked
        assert _links(b) == _links(a)
    assert not (tmp_path / "out.h5.partial").exists()


def test_a_tdms_shot_exports_to_groups_and_datasets(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    shot = write_shot(tmp_path, 1001)
    sqlite_archive.ingest([shot])
    out = tmp_path / "shot.h5"
    sqlite_archive.runs[1001].export(out)
    with h5py.File(out) as f, TdmsFile.open(shot) as t:
        assert f.attrs["gas"] == t.properties["gas"]
        assert f.attrs["labledger_run"] == 1001
        for channel in t["PXI M6251"].channels():
            ds = f[f"PXI M6251/{channel.name}"]
            np.testing.assert_array_equal(ds[()], channel.read_data(scaled=False))
            assert ds.attrs["wf_increment"] == channel.properties["wf_increment"]


def test_an_unknown_export_format_is_refused(sqlite_archive: ll.Archive, tmp_path: Path) -> None:
    sqlite_archive.ingest([write_shot(tmp_path, 1001)])
    with pytest.raises(InvalidArgument, match="cannot export to 'mat'"):
        sqlite_archive.runs[1001].export(tmp_path / "x.mat", format="mat")
    assert not (tmp_path / "x.mat").exists()


def test_a_run_of_several_files_exports_a_group_per_file(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    first, second = tmp_path / "a" / "x.csv", tmp_path / "b" / "x.csv"
    first.parent.mkdir(), second.parent.mkdir()
    first.write_text("u\n1\n2\n")
    second.write_text("v\n3\n4\n")
    shot = write_shot(tmp_path, 1001)
    sqlite_archive.ingest([shot, first, second], run=8)
    out = tmp_path / "run8.h5"
    sqlite_archive.runs[8].export(out)
    with h5py.File(out) as f:
        assert sorted(f) == ["01001_Data.tdms", "1:x.csv", "2:x.csv"]
        np.testing.assert_array_equal(f["2:x.csv/v"][()], [3, 4])
        assert f["01001_Data.tdms/PXI M6251/ai0"].shape == (35000,)


def test_export_into_a_missing_folder_is_refused(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    sqlite_archive.ingest([write_shot(tmp_path, 1001)])
    with pytest.raises(InvalidArgument, match="does not exist"):
        sqlite_archive.runs[1001].export(tmp_path / "nowhere" / "x.h5")
