"""A TDMS channel in its own scaling (NI_Scale properties, DAQmx scalers), without a testbed
description: ``channel.scaled()``, ``to_xarray(scaled=True)``, ``run.signal(key)`` and
``labledger signal RUN 'group/channel'``. Expected values are npTDMS's own scaled reading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from nptdms import ChannelObject, GroupObject, RootObject, TdmsFile, TdmsWriter
from nptdms.test.test_daqmx import daqmx_channel_metadata, daqmx_scaler_metadata, segment_toc
from nptdms.test.util import (
    GeneratedFile,
    group_metadata,
    hexlify_value,
    root_metadata,
    segment_objects_metadata,
    string_hexlify,
)

import labledger as ll
from labledger.access import Access
from labledger.errors import InvalidArgument, NotFound
from labledger.server import create_app, serving
from labledger.sim import write_shot
from tests.conftest import cli, minmax_by_hand


def _expected(path: Path) -> dict[str, np.ndarray]:
    """Every channel as npTDMS scales it when it reads the file (``channel[:]``)."""
    tdms = TdmsFile.read(path)
    return {f"{g.name}/{c.name}": c[:] for g in tdms.groups() for c in g.channels()}


def test_daqmx_channels_of_raw1_scale_as_nptdms_does(
    sqlite_archive: ll.Archive, tdms_dir: Path
) -> None:
    # today's main: a traceback inside npTDMS ('NoneType' object is not subscriptable)
    sqlite_archive.ingest([tdms_dir / "raw1.tdms"])
    run = sqlite_archive.runs[-1]
    expected = _expected(tdms_dir / "raw1.tdms")
    assert sorted(run.channels) == sorted(expected)
    for key, values in expected.items():
        channel = run.channels[key]
        assert np.issubdtype(channel.dtype, np.integer)  # stored raw, scaled on reading
        np.testing.assert_array_equal(channel.scaled(), values)
        np.testing.assert_array_equal(channel.scaled(slice(100, 300)), values[100:300])
        array = channel.to_xarray(slice(10, 20), scaled=True)
        np.testing.assert_array_equal(array.values, values[10:20])
        assert array.attrs["units"] == "Volts"
        signal = run.signal(key)  # no testbed description in this archive
        np.testing.assert_array_equal(signal.values, values)
        assert signal.attrs["units"] == "Volts"
        assert signal.attrs["channel"] == key
    both = sqlite_archive.signals(list(expected), runs=[run])  # many at once, the same way
    for key, values in expected.items():
        np.testing.assert_array_equal(both[key].sel(run=run.number).values, values)
        assert both[key].attrs["units"] == "Volts"


def test_simulated_shot_scales_as_nptdms_does(sqlite_archive: ll.Archive, tmp_path: Path) -> None:
    path = write_shot(tmp_path, 1230)
    sqlite_archive.ingest([path])
    run = sqlite_archive.runs[1230]
    expected = _expected(path)
    for key, values in expected.items():
        channel = run.channels[key]
        np.testing.assert_array_equal(channel.scaled(), values)
        np.testing.assert_array_equal(channel.scaled()[5:50], channel.scaled(slice(5, 50)))
        assert channel.to_xarray(scaled=True).attrs["units"] == "V"


def test_polynomial_and_unscaled_channels(sqlite_archive: ll.Archive, tmp_path: Path) -> None:
    raw = np.arange(-50, 50, dtype=np.int16)
    polynomial = {
        "NI_Scaling_Status": "unscaled",
        "NI_Number_Of_Scales": 1,
        "NI_Scale[0]_Scale_Type": "Polynomial",
        "NI_Scale[0]_Polynomial_Coefficients_Size": 3,
        "NI_Scale[0]_Polynomial_Coefficients[0]": 0.5,
        "NI_Scale[0]_Polynomial_Coefficients[1]": 0.01,
        "NI_Scale[0]_Polynomial_Coefficients[2]": 0.002,
        "unit_string": "degC",
        "wf_increment": 0.001,
    }
    path = tmp_path / "00007_poly.tdms"
    with TdmsWriter(path) as writer:
        writer.write_segment(
            [
                RootObject({}),
                GroupObject("g"),
                ChannelObject("g", "temp", raw, polynomial),
                ChannelObject("g", "counts", raw, {"wf_increment": 0.001}),
            ]
        )
    sqlite_archive.ingest([path])
    run = sqlite_archive.runs[-1]
    by_hand = 0.5 + 0.01 * raw.astype(np.float64) + 0.002 * raw.astype(np.float64) ** 2
    np.testing.assert_allclose(TdmsFile.read(path)["g"]["temp"][:], by_hand)  # npTDMS agrees
    np.testing.assert_array_equal(run.channels["g/temp"].scaled(), _expected(path)["g/temp"])
    np.testing.assert_allclose(run.signal("g/temp", time=(0.01, 0.02)).values, by_hand[10:21])
    with pytest.raises(NotFound) as caught:
        run.channels["g/counts"].scaled()
    message = str(caught.value)
    assert "'g/counts' has no scaling of its own" in message and "\n" not in message
    with pytest.raises(NotFound, match="'g/counts' has no scaling of its own"):
        run.signal("g/counts")
    with pytest.raises(InvalidArgument, match="g/temp is a channel, read in its own scaling"):
        run.signal("g/temp", calibration="temp@1")


def test_signal_command_without_description(tmp_path: Path, tdms_dir: Path) -> None:
    archive = tmp_path / "mine"
    assert cli("init", str(archive)).returncode == 0
    assert cli("ingest", "--archive", str(archive), str(tdms_dir / "raw1.tdms")).returncode == 0
    key = "Layer Data/Second Chan"
    done = cli("signal", "1", key, "--archive", str(archive), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    expected = _expected(tdms_dir / "raw1.tdms")[key]
    assert summary["units"] == "Volts" and summary["samples"] == expected.size
    assert summary["mean"] == pytest.approx(float(expected.mean()), rel=1e-12)
    assert summary["max"] == pytest.approx(float(expected.max()), rel=1e-12)
    plotted = cli("signal", "1", key, "--archive", str(archive), "--plot", str(tmp_path / "v.png"))
    assert plotted.returncode == 0, plotted.stderr
    assert (tmp_path / "v.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    unknown = cli("signal", "1", "Layer Data/Second Chann", "--archive", str(archive))
    assert unknown.returncode != 0
    lines = unknown.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in unknown.stderr
    assert "no channel 'Layer Data/Second Chann'" in lines[0]
    assert "'Layer Data/Second Chan'" in lines[0]  # the close match
    assert "testbed description" in lines[0]

    path = tmp_path / "00002_counts.tdms"
    with TdmsWriter(path) as writer:
        writer.write_segment([ChannelObject("g", "counts", np.arange(10, dtype=np.int16), {})])
    assert cli("ingest", "--archive", str(archive), str(path)).returncode == 0
    unscaled = cli("signal", "2", "g/counts", "--archive", str(archive))
    assert unscaled.returncode != 0 and "Traceback" not in unscaled.stderr
    assert unscaled.stderr.strip() == (
        "error: run 2: channel 'g/counts' has no scaling of its own (no NI_Scale properties); "
        "read its raw values instead"
    )


def test_daqmx_channel_with_two_scalers(sqlite_archive: ll.Archive, tmp_path: Path) -> None:
    """A DAQmx channel stored as one array per raw scaler: its scale (here the sum of both,
    NI's "Add") reads all of them, whichever of the arrays is asked."""

    def text(value: str) -> tuple[int, str]:
        return 0x20, hexlify_value("<I", len(value)) + string_hexlify(value)

    def integer(value: int) -> tuple[int, str]:
        return 3, hexlify_value("<i", value)

    properties = {
        "NI_Scaling_Status": text("unscaled"),
        "NI_Number_Of_Scales": integer(3),
        "NI_Scale[2]_Scale_Type": text("Add"),
        "NI_Scale[2]_Add_Left_Operand_Input_Source": integer(0),
        "NI_Scale[2]_Add_Right_Operand_Input_Source": integer(1),
        "unit_string": text("V"),
    }
    scalers = [daqmx_scaler_metadata(0, 3, 0), daqmx_scaler_metadata(1, 3, 2)]  # two int16
    metadata = segment_objects_metadata(
        root_metadata(),
        group_metadata(),
        daqmx_channel_metadata("Channel1", 4, [4], scalers, properties),
    )
    generated = GeneratedFile()
    generated.add_segment(
        segment_toc(), metadata, "01 00 11 00 02 00 12 00 03 00 13 00 04 00 14 00"
    )
    path = tmp_path / "00003_daqmx.tdms"
    path.write_bytes(generated.get_bytes_io_file().getvalue())
    expected = TdmsFile.read(path)["Group"]["Channel1"][:]
    np.testing.assert_array_equal(expected, [1 + 17, 2 + 18, 3 + 19, 4 + 20])  # by hand
    sqlite_archive.ingest([path])
    run = sqlite_archive.runs[-1]
    assert sorted(run.channels) == ["Group/Channel1/scaler0", "Group/Channel1/scaler1"]
    for key in run.channels:
        np.testing.assert_array_equal(run.channels[key].scaled(), expected)
        np.testing.assert_array_equal(run.channels[key].scaled(slice(1, 3)), expected[1:3])


def test_a_channel_key_as_a_signal_through_a_server(
    sqlite_archive: ll.Archive, tdms_dir: Path
) -> None:
    """The same over HTTP: a preview (``points``) is made on the server, whose route must take
    a key with a slash; a whole read comes from the stored chunks."""
    sqlite_archive.ingest([tdms_dir / "raw1.tdms"])
    key = "Layer Data/Third Chan"
    expected = _expected(tdms_dir / "raw1.tdms")[key]
    access = Access(sqlite_archive.catalog)
    access.add_user("alice", project="default", role="reader", by="tests")
    api_key = access.create_key("alice", scopes=["read"])
    with serving(create_app(sqlite_archive)) as url:
        remote = ll.connect(url, api_key=api_key)
        run = remote.runs[-1]
        np.testing.assert_array_equal(run.signal(key).values, expected)
        np.testing.assert_array_equal(run.channels[key].scaled(slice(7, 70)), expected[7:70])
        preview = run.signal(key, points=100)
        kept = minmax_by_hand(expected, 100)
        np.testing.assert_array_equal(preview.values, expected[kept])
        assert preview.attrs["units"] == "Volts"
        with pytest.raises(NotFound, match="did you mean 'Layer Data/Third Chan'"):
            run.signal("Layer Data/Third Chann", points=100)


def _linear(slope: float, intercept: float) -> dict[str, object]:
    return {
        "NI_Scaling_Status": "unscaled",
        "NI_Number_Of_Scales": 1,
        "NI_Scale[0]_Scale_Type": "Linear",
        "NI_Scale[0]_Linear_Slope": slope,
        "NI_Scale[0]_Linear_Y_Intercept": intercept,
        "NI_Scale[0]_Linear_Input_Source": 0xFFFFFFFF,
    }


def test_scaling_inherited_from_group_or_file(sqlite_archive: ll.Archive, tmp_path: Path) -> None:
    raw = np.arange(-20, 20, dtype=np.int16)
    path = tmp_path / "00011_inherit.tdms"
    with TdmsWriter(path) as writer:
        writer.write_segment(
            [
                RootObject(_linear(0.5, 1.0)),
                GroupObject("by group", _linear(2.0, -3.0)),
                ChannelObject("by group", "a", raw),
                ChannelObject("by group", "own", raw, _linear(10.0, 0.0)),
                GroupObject("by file"),
                ChannelObject("by file", "b", raw),
            ]
        )
    sqlite_archive.ingest([path])
    run = sqlite_archive.runs[-1]
    as_float = raw.astype(np.float64)
    by_hand = {
        "by group/a": as_float * 2.0 - 3.0,
        "by group/own": as_float * 10.0,  # the channel's own scale wins over its group's
        "by file/b": as_float * 0.5 + 1.0,
    }
    expected = _expected(path)
    for key, values in by_hand.items():
        np.testing.assert_allclose(expected[key], values)  # npTDMS reads it so too
        np.testing.assert_array_equal(run.channels[key].scaled(), expected[key])
        assert run.channels[key].dtype == np.int16  # stored as the DAQ wrote it
    assert run.channels["by group/a"].attrs["labledger_inherited_scaling"]["from"] == (
        "group by group"
    )
    np.testing.assert_array_equal(run.signal("by file/b").values, expected["by file/b"])


def test_malformed_inherited_scaling_is_kept_raw(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    raw = np.arange(10, dtype=np.int16)
    broken = {"NI_Number_Of_Scales": 1, "NI_Scale[0]_Scale_Type": "Linear"}  # no slope
    path = tmp_path / "00012_broken.tdms"
    with TdmsWriter(path) as writer:
        writer.write_segment(
            [RootObject({}), GroupObject("g", broken), ChannelObject("g", "c", raw)]
        )
    sqlite_archive.ingest([path])  # the raw values are still worth keeping
    channel = sqlite_archive.runs[-1].channels["g/c"]
    np.testing.assert_array_equal(channel[:], raw)
    with pytest.raises(ll.errors.BadInput) as caught:
        channel.scaled()
    message = str(caught.value)
    assert "NI scaling properties are incomplete" in message and "\n" not in message


def test_a_tdms_format_that_failed_to_load_is_refused_not_taken_for_unscaled(
    sqlite_archive: ll.Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the TDMS plug-in fails to load, a TDMS channel's raw counts must not pass for volts:
    reading its scaled values, or a signal through it, says which format is missing and why."""
    from importlib.metadata import EntryPoint, entry_points

    from labledger import plugins
    from labledger.formats import registry

    path = write_shot(tmp_path, 1230)
    sqlite_archive.ingest([path])
    channel = sqlite_archive.runs[1230].channels["PXI M6251/ai3"]
    assert channel.format == "tdms" and channel.own_scaling() is not None
    group = registry.ENTRY_POINT_GROUP
    others = [ep for ep in entry_points(group=group) if ep.name != "tdms"]
    broken = EntryPoint("tdms", "no_such_module_of_a_lab:TdmsFormat", group)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [broken, *others])
    registry.formats.cache_clear()
    try:
        with pytest.warns(plugins.PluginWarning):
            registry.formats()
        said = r"the 'tdms' format is not loaded here \(ModuleNotFoundError: .*no_such_module"
        with pytest.raises(NotFound, match=said):
            channel.scaled()
        with pytest.raises(NotFound, match=said):
            sqlite_archive.runs[1230].channels["PXI M6251/ai3"].own_scaling()
    finally:
        registry.formats.cache_clear()
