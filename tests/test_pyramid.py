"""Min/max pyramids (store/pyramid.py): written with a long 1-D channel, read by previews.

What "equal" means here: a preview from the pyramid splits the window into ``points // 2``
buckets whose inner edges are minmax's edges moved to the nearest cell edge of the level read
(cells no wider than a bucket); each bucket gives its first smallest and first largest sample
(NaN is no extreme), in order. So every kept sample is a true sample of its bucket, the
window's extremes are kept, and where minmax's edges are cell edges the indices are minmax's.
The references below are computed here with plain numpy, from the samples alone.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from nptdms import ChannelObject, GroupObject, RootObject, TdmsWriter

import labledger as ll
from labledger.decimation import minmax
from labledger.store import open_array, open_store
from labledger.store import pyramid as pyr
from labledger.store.layout import pyramid_path
from labledger.store.pyramid import PyramidWriter, levels, preview
from tests.conftest import minmax_by_hand

PATH = "runs/r/data/0/ai0"
VOLTS = 0.000305  # the DAQ's volts per count in the long shot below
GAIN = 1000.0  # rf_pfwd: W per V (sim/campaign.py)


# -- references, by hand -------------------------------------------------------------------------


def extremes(x: np.ndarray, a: int, b: int) -> list[int]:
    """The first smallest and first largest sample of ``x[a:b]`` (NaN ignored; all NaN: the
    first), in order."""
    seg = np.asarray(x[a:b], dtype=np.float64)
    gaps = np.isnan(seg)
    lo = a + int(np.argmin(np.where(gaps, np.inf, seg)))
    hi = a + int(np.argmax(np.where(gaps, -np.inf, seg)))
    return sorted([lo, hi])


def cell_sizes(n: int) -> list[int]:
    """The levels a pyramid of ``n`` samples stores: 512 * 8**k with at least 1024 cells."""
    sizes = []
    size = pyr.FIRST
    while -(-n // size) >= pyr.MIN_CELLS:
        sizes.append(size)
        size *= pyr.FACTOR
    return sizes


def snapped(x: np.ndarray, start: int, stop: int, points: int) -> list[int]:
    """The preview of ``x[start:stop]`` as defined above, bucket by bucket."""
    buckets = points // 2
    size = max(s for s in cell_sizes(len(x)) if s <= (stop - start) / buckets)
    inner = np.arange(-(-start // size) * size, stop, size)
    bounds = np.unique(np.concatenate([[start], inner, [stop]]))
    wanted = np.linspace(start, stop, buckets + 1)
    edges = sorted({int(bounds[np.argmin(np.abs(bounds - w))]) for w in wanted})
    return [i for a, b in itertools.pairwise(edges) for i in extremes(x, a, b)]


def minmax_numpy(x: np.ndarray, points: int) -> list[int]:
    """minmax over the whole of ``x`` when its buckets are equal: a reshape."""
    buckets = points // 2
    cells = np.asarray(x, dtype=np.float64).reshape(buckets, -1)
    gaps = np.isnan(cells)
    lo = np.argmin(np.where(gaps, np.inf, cells), axis=1)
    hi = np.argmax(np.where(gaps, -np.inf, cells), axis=1)
    base = np.arange(buckets) * cells.shape[1]
    return np.sort(np.stack([lo + base, hi + base], axis=1), axis=1).ravel().tolist()


def signal_like(n: int, dtype: str = "float64", seed: int = 0) -> np.ndarray:
    """A slow wave, noise and a few sharp spikes (the peaks a preview must keep)."""
    rng = np.random.default_rng(seed)
    x = 1000 * np.sin(np.arange(n) / max(1, n / 7)) + rng.normal(0, 50, n)
    for at in rng.integers(0, n, 5) if n else ():
        x[at] = rng.choice([-1, 1]) * 5000
    return x.astype(dtype)


def written(store: Any, x: np.ndarray, blocks: list[int] | None = None, **kw: Any) -> None:
    with PyramidWriter(store, PATH, (), x.dtype, **kw) as w:
        at = 0
        for n in blocks or [len(x)]:
            w.write(x[at : at + n])
            at += n
        w.write(x[at:])


@pytest.fixture
def store(tmp_path: Path) -> Any:
    return open_store(str(tmp_path / "store"))


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cells of 4 samples, levels of factor 2, stored from 2 cells: every edge in a few
    samples."""
    monkeypatch.setattr(pyr, "FIRST", 4)
    monkeypatch.setattr(pyr, "FACTOR", 2)
    monkeypatch.setattr(pyr, "MIN_CELLS", 2)


def level_cells(store: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    base = f"{pyramid_path(PATH)}/L{k + 1}"
    return open_array(store, f"{base}/values")[:], open_array(store, f"{base}/offsets")[:]


def expected_cells(x: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's minimum and maximum and their offsets in it, by hand."""
    values, offsets = [], []
    for a in range(0, len(x), size):
        lo, hi = (
            a + int(np.argmin(np.where(np.isnan(x[a : a + size]), np.inf, x[a : a + size]))),
            a + int(np.argmax(np.where(np.isnan(x[a : a + size]), -np.inf, x[a : a + size]))),
        )
        values.append([x[lo], x[hi]])
        offsets.append([lo - a, hi - a])
    return np.array(values, x.dtype).reshape(-1, 2), np.array(offsets).reshape(-1, 2)


# -- the pyramid as written ---------------------------------------------------------------------


@pytest.mark.usefixtures("tiny")
@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100])
def test_every_level_holds_each_cells_extremes(store: Any, n: int) -> None:
    x = signal_like(n, seed=n)
    x[::7] = np.nan  # gaps, some cells all NaN below
    x[8:16] = np.nan
    written(store, x, blocks=[1, 2, 3, 5, 1])
    sizes = [4 * 2**k for k in range(10) if -(-n // (4 * 2**k)) >= 2]
    assert levels(store, PATH) == (sizes or None)
    for k, size in enumerate(sizes):
        values, offsets = level_cells(store, k)
        want_values, want_offsets = expected_cells(x, size)
        np.testing.assert_array_equal(values, want_values)  # NaN where a cell is all NaN
        np.testing.assert_array_equal(offsets, want_offsets)


@pytest.mark.usefixtures("tiny")
@pytest.mark.parametrize("fill", [0.0, np.nan, 7.0])
def test_rows_never_written_are_summarised_as_the_fill_value(store: Any, fill: float) -> None:
    x = signal_like(200, seed=1)
    with PyramidWriter(store, PATH, (), x.dtype, fill=fill) as w:
        w.write(x[:5])
        w.skip(37)
        w.write(x[5:50])
        w.skip(64)
        w.skip(3)
        w.write(x[50:])
    whole = np.concatenate([x[:5], np.full(37, fill), x[5:50], np.full(67, fill), x[50:]])
    assert levels(store, PATH) == [4, 8, 16, 32, 64, 128, 256]  # 304 samples: 2 cells of 256
    for k, size in enumerate(levels(store, PATH) or []):
        values, offsets = level_cells(store, k)
        want_values, want_offsets = expected_cells(whole, size)
        np.testing.assert_array_equal(values, want_values)
        np.testing.assert_array_equal(offsets, want_offsets)


def test_a_short_array_has_no_pyramid(store: Any) -> None:
    x = signal_like(pyr.FIRST * (pyr.MIN_CELLS - 1))  # 1023 cells: none stored
    written(store, x)
    assert levels(store, PATH) is None and not store.exists(f"{pyramid_path(PATH)}/zarr.json")
    assert preview(store, PATH, 0, len(x), 2000) is None  # read it: minmax


def test_an_array_never_written_has_no_pyramid(store: Any) -> None:
    with PyramidWriter(store, PATH, (), "f8", fill=np.nan) as w:
        w.skip(10**12)  # what a file declares and never writes costs nothing, nor here
    assert levels(store, PATH) is None and store.list("runs/r/pyramids") == []


def test_blocks_of_any_size_give_the_same_pyramid(tmp_path: Path) -> None:
    x = signal_like(600_000, "int16")
    one, many = open_store(str(tmp_path / "one")), open_store(str(tmp_path / "many"))
    written(one, x)
    rng = np.random.default_rng(3)
    written(many, x, blocks=[int(n) for n in rng.integers(1, 5000, 200)])
    assert levels(one, PATH) == levels(many, PATH) == [512]
    for a, b in zip(level_cells(one, 0), level_cells(many, 0)):
        np.testing.assert_array_equal(a, b)


def test_zarr_python_opens_the_pyramid_and_reads_the_same(store: Any) -> None:
    import zarr

    x = signal_like(5_000_000, "float32")
    written(store, x)
    group = zarr.open_group(store.zarr_store(), path="runs/r/pyramids", mode="r")
    node = group["0/ai0"]
    assert node.attrs[pyr.KIND] == {"of": PATH, "length": len(x), "cells": [512, 4096]}
    for k in range(2):
        assert np.array_equal(node[f"L{k + 1}/values"][:], level_cells(store, k)[0])
        assert np.array_equal(node[f"L{k + 1}/offsets"][:], level_cells(store, k)[1])
    assert sorted(name for name, _ in node.members()) == ["L1", "L2"]
    assert np.array_equal(zarr.open_array(store.zarr_store(), path=PATH, mode="r")[:], x)


# -- previews -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["int16", "float64"])
def test_buckets_on_cell_edges_give_minmax_exactly(store: Any, dtype: str) -> None:
    x = signal_like(1000 * 4096, dtype)  # 2,000 points: buckets of 4096, whole cells
    if dtype == "float64":
        x[:9000] = np.nan  # a gap over whole buckets, and a bucket half gap
    written(store, x)
    where, values = preview(store, PATH, 0, len(x), 2000) or (None, None)
    assert where is not None and values is not None
    assert where.tolist() == minmax_numpy(x, 2000) == minmax(x, 2000).tolist()
    np.testing.assert_array_equal(values, x[where])


@pytest.mark.parametrize(
    ("n", "start", "stop", "points"),
    [
        (3_000_001, 0, 3_000_001, 2000),  # not a multiple of a cell: a short last cell
        (3_000_001, 12_345, 2_987_654, 2000),  # a window cutting cells at both ends
        (3_000_001, 1_000_000, 1_700_000, 600),  # a zoom: the finer level
        (3_000_001, 0, 3_000_001, 3),  # one bucket
        (5_000_000, 777, 4_999_999, 1001),  # odd points
    ],
)
def test_a_preview_keeps_each_snapped_buckets_extremes(
    store: Any, n: int, start: int, stop: int, points: int
) -> None:
    x = signal_like(n)
    x[2_000_000:2_100_000] = np.nan
    written(store, x)
    where, values = preview(store, PATH, start, stop, points) or (None, None)
    assert where is not None and values is not None
    assert where.tolist() == snapped(x, start, stop, points)
    np.testing.assert_array_equal(values, x[where])  # true samples
    window = x[start:stop]
    assert np.nanmax(window) in values and np.nanmin(window) in values
    assert len(where) == 2 * (points // 2)


def test_a_window_too_short_for_the_finest_cells_is_read_whole(store: Any) -> None:
    x = signal_like(1_000_000)
    written(store, x)
    assert preview(store, PATH, 0, 100_000, 2000) is None  # 50 samples a bucket: read them
    assert preview(store, PATH, 0, 1000, 2000) is None  # fewer samples than points


# -- run.signal: ingested signals, local and through a server ----------------------------------


DAQMX = {
    "NI_Number_Of_Scales": 1,
    "NI_Scale[0]_Scale_Type": "Linear",
    "NI_Scale[0]_Linear_Slope": VOLTS,
    "NI_Scale[0]_Linear_Y_Intercept": 0.0,
    "unit_string": "V",
    "wf_increment": 2e-5,
    "wf_start_offset": 0.0,
}
LONG = 2_048_000  # samples: 1000 buckets of 2048, cells of 512 on their edges


def long_shot(path: Path, counts: np.ndarray) -> None:
    """Run 1300 on the ISHTAR DAQ card: ai0 (RF_Pfwd's port) holds ``counts``."""
    with TdmsWriter(path) as writer:
        root, group = RootObject({"gas": "Ar"}), GroupObject("PXI M6251")
        writer.write_segment([root, group, ChannelObject("PXI M6251", "ai0", counts, DAQMX)])


@pytest.fixture(scope="module")
def long_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    root = tmp_path_factory.mktemp("pyramid")
    counts = signal_like(LONG, "int16", seed=5)
    with ll.init(root / "archive") as la:
        ll.sim.build(la, root / "daq", [1233])
        long_shot(root / "daq" / "01300_Long.tdms", counts)
        la.ingest([root / "daq" / "01300_Long.tdms"])
    return root / "archive", counts


@pytest.fixture
def long_archive(long_template: tuple[Path, np.ndarray], tmp_path: Path) -> Iterator[ll.Archive]:
    shutil.copytree(long_template[0], tmp_path / "archive")
    with ll.open(tmp_path / "archive") as la:
        yield la


def read_bytes(la: ll.Archive, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every byte the store hands over from now on, counted."""
    counted: list[int] = []
    store = la.store
    for name in ("read", "read_range", "read_ranges"):
        real = getattr(store, name)

        def counting(*args: Any, _real: Any = real) -> Any:
            got = _real(*args)
            blobs = got if isinstance(got, list) else [got]
            counted.extend(len(b) for b in blobs if b is not None)
            return got

        monkeypatch.setattr(store, name, counting)
    return counted


def test_a_preview_reads_the_pyramid_not_the_signal(
    long_archive: ll.Archive, long_template: tuple[Path, np.ndarray], monkeypatch: Any
) -> None:
    counts = long_template[1]
    run = long_archive.runs[1300]
    full = run.signal("RF_Pfwd")
    counted = read_bytes(long_archive, monkeypatch)
    shown = run.signal("RF_Pfwd", points=2000)
    assert sum(counted) < 64_000  # of 4 MB of samples
    kept = minmax_numpy(counts, 2000)  # buckets of 2048: on the cells' edges
    assert kept == minmax_by_hand(full.values, 2000)
    np.testing.assert_array_equal(shown.values, full.values[kept])
    np.testing.assert_array_equal(shown["time"].values, full["time"].values[kept])
    assert shown.attrs == {**full.attrs, "decimated_from": LONG, "points": 2000}
    # a window zooms: a finer level, its ends read from the samples
    zoom = run.signal("RF_Pfwd", points=800, time=(3.3, 7.7))
    kept = snapped(counts, 165_000, 385_001, 800)  # 3.3 s to 7.7 s, both ends, at 50 kHz
    np.testing.assert_array_equal(zoom.values, full.values[kept])
    np.testing.assert_array_equal(zoom["time"].values, full["time"].values[kept])


def test_a_channel_in_its_own_scaling_previews_from_its_pyramid(
    long_archive: ll.Archive, long_template: tuple[Path, np.ndarray], monkeypatch: Any
) -> None:
    counts = long_template[1]
    run = long_archive.runs[1300]
    full = run.signal("PXI M6251/ai0")
    counted = read_bytes(long_archive, monkeypatch)
    shown = run.signal("PXI M6251/ai0", points=2000)
    assert sum(counted) < 64_000
    kept = minmax_numpy(counts, 2000)
    np.testing.assert_allclose(full.values[kept], counts[kept] * VOLTS, rtol=1e-12)
    np.testing.assert_array_equal(shown.values, full.values[kept])
    np.testing.assert_array_equal(shown["time"].values, full["time"].values[kept])
    assert shown.attrs == {**full.attrs, "decimated_from": LONG, "points": 2000}


def test_a_negative_gain_keeps_the_same_samples(long_archive: ll.Archive) -> None:
    la = long_archive
    la.calibrations.add("rf_pfwd", gain=-GAIN, unit="W", from_run=1300, reason="flipped")
    full = la.runs[1300].signal("RF_Pfwd")
    assert full.attrs["calibration"] == "rf_pfwd@2"
    shown = la.runs[1300].signal("RF_Pfwd", points=2000)
    kept = minmax_by_hand(full.values, 2000)  # the minimum is now the counts' maximum
    np.testing.assert_array_equal(shown.values, full.values[kept])
    np.testing.assert_array_equal(shown["time"].values, full["time"].values[kept])


def test_a_table_calibration_is_previewed_from_the_whole_signal(
    long_archive: ll.Archive, long_template: tuple[Path, np.ndarray]
) -> None:
    la = long_archive
    # a fold: small and large volts both give large watts, so the counts' extremes are not the
    # signal's; a pyramid of the counts cannot answer
    la.calibrations.add(
        "rf_pfwd",
        kind="table",
        x=[-2, 0, 2],
        y=[1000, 0, 1000],
        unit="W",
        from_run=1300,
        reason="folded",
    )
    full = la.runs[1300].signal("RF_Pfwd")
    shown = la.runs[1300].signal("RF_Pfwd", points=2000)
    kept = minmax_by_hand(full.values, 2000)
    assert kept != minmax_numpy(long_template[1], 2000)  # what the pyramid would have given
    np.testing.assert_array_equal(shown.values, full.values[kept])
    assert shown.attrs["calibration_kind"] == "table"


def test_a_run_ingested_before_pyramids_previews_from_its_samples(
    long_template: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    shutil.copytree(long_template[0], tmp_path / "archive")
    with ll.open(tmp_path / "archive") as la:
        run = la.runs[1300]
        la.store.delete(f"{run._row.store_prefix}/pyramids")  # as an older ingest left it
        shown = run.signal("RF_Pfwd", points=2000)
        full = run.signal("RF_Pfwd")
        kept = minmax_by_hand(full.values, 2000)
        np.testing.assert_array_equal(shown.values, full.values[kept])
        report = la.check()
        assert report.problems == [] and report.orphans == []


def test_the_pyramid_is_no_channel_and_check_passes(long_archive: ll.Archive) -> None:
    run = long_archive.runs[1300]
    assert list(run.channels) == ["PXI M6251/ai0"]
    shown = str(run.tree())
    assert "pyramid" not in shown and "L1" not in shown
    assert levels(long_archive.store, run.channels["PXI M6251/ai0"]._row.store_path) == [512]
    report = long_archive.check()
    assert report.problems == [] and report.orphans == []


def test_a_preview_through_a_server_is_the_local_one(long_archive: ll.Archive) -> None:
    from labledger.access import Access
    from labledger.server import create_app, serving

    access = Access(long_archive.catalog)
    access.add_user("ana", project="default", role="admin", by="tests")
    key = access.create_key("ana", scopes=["read"])
    with serving(create_app(long_archive)) as url:
        remote = ll.connect(url, api_key=key)
        try:
            for asked in ({"points": 2000}, {"points": 500, "time": (1.0, 2.5)}):
                here = long_archive.runs[1300].signal("RF_Pfwd", **asked)  # type: ignore[arg-type]
                there = remote.runs[1300].signal("RF_Pfwd", **asked)  # type: ignore[arg-type]
                np.testing.assert_array_equal(there.values, here.values)
                np.testing.assert_array_equal(there["time"].values, here["time"].values)
                assert there.attrs["decimated_from"] == here.attrs["decimated_from"]
        finally:
            remote.close()
