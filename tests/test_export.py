"""Export to HDF5: HDF5 in, export, compare with h5py: the same tree, values, types,
attributes and links."""

from __future__ import annotations

import csv
from pathlib import Path

import h5py
import numpy as np
import pytest
from nptdms import TdmsFile

import labledger as ll
from labledger.errors import InvalidArgument
from labledger.export import FORMATS
from labledger.formats.values import decode_text
from labledger.sim import write_shot
from tests.conftest import NEXUS_FILES, cli


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
    second.write_text("time (s),v\n0,3\n0.5,4\n")  # a time column: the axis of v
    shot = write_shot(tmp_path, 1001)
    sqlite_archive.ingest([shot, first, second], run=8)
    out = tmp_path / "run8.h5"
    sqlite_archive.runs[8].export(out)
    with h5py.File(out) as f:
        # and the channels in their own scaling, as NXdata (no testbed description here)
        assert sorted(f) == ["01001_Data.tdms", "1:x.csv", "2:x.csv", "signals"]
        np.testing.assert_array_equal(f["2:x.csv/v"][()], [3, 4])
        assert f["01001_Data.tdms/PXI M6251/ai0"].shape == (35000,)
    done = sqlite_archive.runs[8].export(tmp_path / "run8", format="csv")
    assert [p.name for p in done.files] == [
        "01001_Data.PXI M6251.csv", "01001_Data.PXI 6133.csv", "x.csv", "x-2.csv"
    ]  # fmt: skip
    notes, header, values = _read_csv(tmp_path / "run8" / "x-2.csv")
    assert notes["source"] == "x.csv" and header == ["time (s)", "v"]  # one file, time first
    assert values.tolist() == [[0, 3], [0.5, 4]]


def test_export_into_a_missing_folder_is_refused(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    sqlite_archive.ingest([write_shot(tmp_path, 1001)])
    with pytest.raises(InvalidArgument, match="does not exist"):
        sqlite_archive.runs[1001].export(tmp_path / "nowhere" / "x.h5")


# -- values in physical units: calibrated signals (HDF5 NXdata, CSV) -----------------------------

DESCRIPTION = """\
name: bench
devices:
  PXI M6251: {ports: [ai0, ai1, ai2, ai3, ai4, ai5, ai6, ai7]}
signals:
  Langmuir_I: {unit: A, calibration: langmuir_i, description: probe current}
  Trigger: {unit: V, description: as recorded}
  Power: {unit: W, calibration: power}
  Unwired: {unit: V}
wiring:
  Langmuir_I: PXI M6251/ai3
  Trigger: PXI M6251/ai7
"""
GAIN, OFFSET = -0.02, 0.0015  # A per V, A: what the test says the probe's amplifier does


@pytest.fixture
def described(sqlite_archive: ll.Archive, tmp_path: Path) -> tuple[ll.Archive, Path]:
    """An archive with a testbed description and calibrations, and shot 1001 ingested under
    them; the shot's TDMS file."""
    la = sqlite_archive
    (tmp_path / "bench.yaml").write_text(DESCRIPTION)
    la.config.load(tmp_path / "bench.yaml", reason="as built")
    la.calibrations.add("langmuir_i", gain=GAIN, offset=OFFSET, unit="A", reason="measured")
    la.calibrations.add(
        "power", kind="expression", expression="Langmuir_I * Trigger", unit="W", reason="P=IV"
    )
    shot = write_shot(tmp_path, 1001)
    la.ingest([shot])
    return la, shot


def _volts(shot: Path, channel: str) -> tuple[np.ndarray, np.ndarray]:
    """npTDMS's own scaled reading of ``channel`` and its time axis from the waveform
    properties (the independent computation)."""
    with TdmsFile.open(shot) as t:
        ch = t["PXI M6251"][channel]
        values = ch.read_data(scaled=True)
        time = (
            ch.properties["wf_start_offset"]
            + np.arange(len(values)) * ch.properties["wf_increment"]
        )
    return np.asarray(values, dtype=np.float64), time


def _check_nexus(f: h5py.File) -> list[str]:
    """The NXdata groups below the root's ``default`` NXentry, checked against the NeXus rules
    for NXdata: ``signal`` names a dataset of the group; ``axes`` lists one name per dimension,
    each a dataset of the group of that length or "."; ``AXIS_indices`` is the dimension."""
    entry = f[f.attrs["default"]]
    assert entry.attrs["NX_class"] == "NXentry"
    assert entry.attrs["default"] in entry
    found = []
    for name, group in entry.items():
        if group.attrs.get("NX_class") != "NXdata":
            continue
        signal = group[group.attrs["signal"]]
        axes = list(_text(group.attrs["axes"]))
        assert len(axes) == signal.ndim, name
        for dim, axis in enumerate(axes):
            if axis == ".":
                continue
            assert group[axis].shape == (signal.shape[dim],), (name, axis)
            assert int(group.attrs[f"{axis}_indices"]) == dim
            assert group[axis].attrs["units"]
        assert signal.attrs["units"], name
        found.append(name)
    return found


def test_hdf5_export_holds_the_calibrated_signals_as_nxdata_beside_the_raw(
    described: tuple[ll.Archive, Path], tmp_path: Path
) -> None:
    la, shot = described
    out = tmp_path / "shot.h5"
    done = la.runs[1001].export(out)
    assert done.signals == ("Langmuir_I", "Trigger", "Power")
    assert "Unwired" in done.skipped and "not wired" in done.skipped["Unwired"]
    volts, time = _volts(shot, "ai3")
    trigger, _ = _volts(shot, "ai7")
    current = volts * GAIN + OFFSET
    with h5py.File(out) as f, TdmsFile.open(shot) as t:
        np.testing.assert_array_equal(  # the raw integers are there as before
            f["PXI M6251/ai3"][()], t["PXI M6251"]["ai3"].read_data(scaled=False)
        )
        assert sorted(_check_nexus(f)) == ["Langmuir_I", "Power", "Trigger"]
        i = f["signals/Langmuir_I"]
        assert i.attrs["NX_class"] == "NXdata" and i.attrs["signal"] == "Langmuir_I"
        assert i["Langmuir_I"].attrs["units"] == "A" and i["time"].attrs["units"] == "s"
        np.testing.assert_allclose(i["Langmuir_I"][()], current, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(i["time"][()], time, rtol=1e-12, atol=1e-15)
        assert i.attrs["calibration"] == "langmuir_i@1"
        assert i.attrs["channel"] == "PXI M6251/ai3"
        p = f["signals/Power"]
        assert p["Power"].attrs["units"] == "W"
        np.testing.assert_allclose(p["Power"][()], current * trigger, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(f["signals/Trigger/Trigger"][()], trigger, rtol=1e-12)
        notes = _text(f["signals"].attrs["not_exported"])
        assert len(notes) == 1 and notes[0].startswith("Unwired: ")


def _read_csv(path: Path) -> tuple[dict[str, str], list[str], np.ndarray]:
    """A CSV export read back with the csv module: its ``# key: value`` notes, its header and
    its values as floats."""
    with open(path, newline="") as f:
        lines = f.read().splitlines()
    notes = dict(line[2:].split(": ", 1) for line in lines if line.startswith("# "))
    rows = list(csv.reader(line for line in lines if not line.startswith("#")))
    return notes, rows[0], np.array([[float(v) for v in row] for row in rows[1:]])


def test_csv_export_a_file_per_channel_group_and_the_signals_by_name(
    described: tuple[ll.Archive, Path], tmp_path: Path
) -> None:
    la, shot = described
    out = tmp_path / "shot1001"
    done = la.runs[1001].export(out, format="csv")
    assert sorted(p.name for p in done.files) == ["PXI 6133.csv", "PXI M6251.csv", "signals.csv"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in done.files)
    volts, time = _volts(shot, "ai3")
    trigger, _ = _volts(shot, "ai7")

    notes, header, values = _read_csv(out / "PXI M6251.csv")
    assert notes["run"] == "1001" and notes["source"] == shot.name
    assert header == ["time [s]"] + [f"ai{n} [V]" for n in range(8)]
    np.testing.assert_allclose(values[:, 0], time, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(values[:, 4], volts)  # exactly: shortest round-trip text

    notes, header, values = _read_csv(out / "signals.csv")
    assert header == ["time [s]", "Langmuir_I [A]", "Trigger [V]", "Power [W]"]
    np.testing.assert_allclose(values[:, 0], time, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(values[:, 1], volts * GAIN + OFFSET, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(values[:, 2], trigger)
    np.testing.assert_allclose(values[:, 3], (volts * GAIN + OFFSET) * trigger, rtol=1e-12)
    assert "langmuir_i@1" in notes["Langmuir_I"]
    assert notes["Unwired"].startswith("not exported: ")
    assert not list(tmp_path.glob("*.partial"))


def test_without_a_description_channels_export_in_their_own_scaling(
    sqlite_archive: ll.Archive, tdms_dir: Path, tmp_path: Path
) -> None:
    sqlite_archive.ingest([tdms_dir / "raw1.tdms"])
    run = sqlite_archive.runs[-1]
    tdms = TdmsFile.read(tdms_dir / "raw1.tdms")
    [group] = tdms.groups()
    h5 = run.export(tmp_path / "raw1.h5")
    folder = run.export(tmp_path / "raw1", format="csv")
    assert [p.name for p in folder.files] == [f"{group.name}.csv"]
    notes, header, values = _read_csv(folder.files[0])
    assert notes["group"] == group.name
    with h5py.File(tmp_path / "raw1.h5") as f:
        names = _check_nexus(f)
        assert len(names) == len(group.channels()) == len(h5.signals)
        for n, channel in enumerate(group.channels()):
            expected = channel[:]  # npTDMS's scaled reading
            assert header[n + 1] == f"{channel.name} [Volts]"
            np.testing.assert_array_equal(values[:, n + 1], expected)
            key = f"{group.name}/{channel.name}"
            [data] = [f[f"signals/{g}"] for g in names if f[f"signals/{g}"].attrs["channel"] == key]
            np.testing.assert_array_equal(data[data.attrs["signal"]][()], expected)
            assert data[data.attrs["signal"]].attrs["units"] == "Volts"
        step = group.channels()[0].properties["wf_increment"]
        np.testing.assert_allclose(values[:, 0], np.arange(len(values)) * step, rtol=1e-12)


def test_a_csv_export_reads_back_into_labledger(
    described: tuple[ll.Archive, Path], tmp_path: Path
) -> None:
    la, shot = described
    la.runs[1001].export(tmp_path / "out", format="csv")
    other = ll.init(tmp_path / "other")
    other.ingest([tmp_path / "out" / "signals.csv"], run=5)
    run = other.runs[5]
    assert run.metadata["run"] == 1001  # the notes are the file's metadata
    volts, time = _volts(shot, "ai3")
    np.testing.assert_allclose(run.channels["Langmuir_I [A]"][:], volts * GAIN + OFFSET, rtol=1e-12)
    np.testing.assert_allclose(run.channels["time [s]"][:], time, rtol=1e-12, atol=1e-15)
    other.close()


# -- refused: nothing written, nothing replaced ---------------------------------------------------


def test_an_existing_output_is_refused_unless_forced(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    sqlite_archive.ingest([write_shot(tmp_path, 1001)])
    run = sqlite_archive.runs[1001]
    file, folder = tmp_path / "x.h5", tmp_path / "x"
    file.write_bytes(b"keep me")
    folder.mkdir()
    (folder / "mine.txt").write_text("keep me too")
    for target, format in ((file, "hdf5"), (folder, "csv")):
        with pytest.raises(InvalidArgument) as caught:
            run.export(target, format=format)
        message = str(caught.value)
        assert "\n" not in message and str(target) in message and "--force" in message
    assert file.read_bytes() == b"keep me"
    assert [p.name for p in folder.iterdir()] == ["mine.txt"]
    with pytest.raises(InvalidArgument, match="is a folder"):
        run.export(folder, format="hdf5", force=True)
    with pytest.raises(InvalidArgument, match="is a file"):
        run.export(file, format="csv", force=True)
    assert file.read_bytes() == b"keep me" and (folder / "mine.txt").exists()
    with pytest.raises(InvalidArgument, match="more than a CSV export"):
        run.export(folder, format="csv", force=True)  # mine.txt is not an export's
    run.export(file, force=True)
    (folder / "mine.txt").unlink()
    run.export(folder, format="csv", force=True)
    with h5py.File(file) as f:
        assert f.attrs["labledger_run"] == 1001
    assert sorted(p.name for p in folder.iterdir()) == ["PXI 6133.csv", "PXI M6251.csv"]
    assert sorted(p.name for p in tmp_path.iterdir() if ".partial" in p.name
                  or ".replaced" in p.name) == []  # fmt: skip


def test_a_run_with_no_channels_is_refused(sqlite_archive: ll.Archive, tmp_path: Path) -> None:
    path = tmp_path / "7_empty.h5"
    with h5py.File(path, "w") as f:
        f.attrs["title"] = "attributes only"
        f.create_group("entry").attrs["NX_class"] = "NXentry"
    sqlite_archive.ingest([path])
    for format in FORMATS:
        target = tmp_path / f"out.{format}"
        with pytest.raises(InvalidArgument) as caught:
            sqlite_archive.runs[7].export(target, format=format)
        message = str(caught.value)
        assert "\n" not in message and "run 7 has no channels" in message
        assert not target.exists() and not list(tmp_path.glob("out*"))


def test_export_from_the_command_line(described: tuple[ll.Archive, Path], tmp_path: Path) -> None:
    la, _ = described
    archive = str(la.path)
    out = tmp_path / "csv"
    done = cli("export", "1001", "-a", archive, "--format", "csv", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert f"run 1001 written to {out}" in done.stdout
    assert "in physical units: Langmuir_I, Trigger, Power" in done.stdout
    assert "not exported: Unwired: " in done.stdout
    again = cli("export", "1001", "-a", archive, "--format", "csv", "-o", str(out))
    assert again.returncode == 1 and again.stderr.count("\n") == 1
    assert "exists already" in again.stderr and "Traceback" not in again.stderr
    assert cli("export", "1001", "-a", archive, "--format", "csv", "-o", str(out),
               "--force").returncode == 0  # fmt: skip
    bad = cli("export", "1001", "-a", archive, "--format", "xlsx", "-o", str(tmp_path / "y"))
    assert bad.returncode == 1 and "cannot export to 'xlsx'; formats: hdf5, csv" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "y").exists()


def test_an_export_through_a_server_is_the_local_one(campaign: ll.Archive, tmp_path: Path) -> None:
    """Run 1250 of the campaign (probe current re-wired to ai11 at 1240, its amplifier's gain
    halved at 1250: langmuir_i@2, -0.01 A/V), exported locally and through a server."""
    run = campaign.runs[1250]
    done = run.export(tmp_path / "shot.h5")
    folder = run.export(tmp_path / "shot", format="csv")
    assert "Langmuir_I" in done.signals and done.signals == folder.signals
    raw = run.channels["PXI M6251/ai11"]
    amperes = raw[:] * raw.attrs["NI_Scale[0]_Linear_Slope"] * -0.01  # by hand
    with h5py.File(tmp_path / "shot.h5") as f:
        i = f["signals/Langmuir_I"]
        assert i.attrs["calibration"] == "langmuir_i@2" and i.attrs["channel"] == raw.key
        np.testing.assert_allclose(i["Langmuir_I"][()], amperes, rtol=1e-12, atol=1e-15)
    _, header, values = _read_csv(tmp_path / "shot" / "signals.csv")
    np.testing.assert_allclose(values[:, header.index("Langmuir_I [A]")], amperes, rtol=1e-12)


def test_a_header_that_names_its_unit_keeps_it_once(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    path = tmp_path / "3_wall.csv"
    path.write_text("t,T (Deg C),I [mA],U\n0,20.5,1,2\n1,21.5,3,4\n")
    sqlite_archive.ingest([path])
    sqlite_archive.runs[3].export(tmp_path / "out", format="csv")
    (written,) = (tmp_path / "out").iterdir()
    _, header, values = _read_csv(written)
    assert header == ["t", "T (Deg C)", "I [mA]", "U"]  # not "T (Deg C) [Deg C]"
    assert values.tolist() == [[0, 20.5, 1, 2], [1, 21.5, 3, 4]]


def test_force_replaces_only_an_earlier_export(sqlite_archive: ll.Archive, tmp_path: Path) -> None:
    sqlite_archive.ingest([write_shot(tmp_path, 1001)])
    run = sqlite_archive.runs[1001]
    run.export(tmp_path / "out", format="csv")
    run.export(tmp_path / "out", format="csv", force=True)  # an earlier export: replaced
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("two years of work")
    with pytest.raises(InvalidArgument, match="more than a CSV export of labledger"):
        run.export(mine, format="csv", force=True)
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]
