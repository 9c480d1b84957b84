"""The store: objects on a folder or S3, and Zarr v3 arrays that zarr-python reads too."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr

from labledger.errors import Damaged
from labledger.store import (
    ArrayWriter,
    Store,
    StoredArray,
    TextArray,
    open_array,
    open_store,
    write_array,
)
from labledger.store.arrays import plan_chunks

RNG = np.random.default_rng(7)

CASES = {
    "int16": RNG.integers(-30000, 30000, 2_100_000).astype("<i2"),
    "float64_2d": RNG.normal(size=(700, 500)),
    "uint8_3d": RNG.integers(0, 255, (3, 1500, 800)).astype("u1"),
    "big_endian": np.arange(1000, dtype=">f8"),
    "bool": RNG.random(99) > 0.5,
    "complex": (RNG.normal(size=40) + 1j * RNG.normal(size=40)).astype("c8"),
    "scalar_f": np.float64(3.25),
    "scalar_i": np.array(-7, dtype="i4"),
    "empty": np.zeros(0, "f4"),
    "short": np.arange(3, dtype="u2"),
    "times": np.array(["2012-07-09T23:58:24.593732", "NaT", "2026-11-21"], dtype="M8[us]"),
    "fixed_bytes": np.array([b"PE1621", b"x-ray", b""], dtype="S6"),
    "text": np.array(["abc", "défg", ""], dtype=object),
    "text_scalar": np.array("NXscan", dtype=object),
    "structured": np.array([(1, 2.5), (3, 4.5)], dtype=[("a", "<i4"), ("b", "<f8")]),
}


def _zarr_read(store: Store, path: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return zarr.open_array(store.zarr_store(), path=path, mode="r")[...]


@pytest.fixture
def store(tmp_path) -> Store:
    return open_store(tmp_path / "store")


@pytest.mark.parametrize("name", list(CASES))
def test_round_trip_through_labledger_and_zarr_python(store: Store, name: str) -> None:
    data = CASES[name]
    write_array(store, name, data, {"what": name})
    ours = open_array(store, name)
    assert ours.shape == np.shape(data)
    assert ours.attrs == {"what": name}
    np.testing.assert_array_equal(np.asarray(ours[...]), data)
    # a standard tool reads what labledger wrote
    np.testing.assert_array_equal(_zarr_read(store, name), data)


def test_numbers_take_the_sharded_path_and_text_the_single_chunk(store: Store) -> None:
    write_array(store, "n", CASES["int16"])
    write_array(store, "t", CASES["fixed_bytes"])
    assert isinstance(open_array(store, "n"), StoredArray)
    assert isinstance(open_array(store, "t"), TextArray)
    meta = json.loads(store.read("n/zarr.json"))
    assert meta["codecs"][0]["name"] == "sharding_indexed"
    # 2.1 M int16 = 4.2 MB: one shard object, not one object per chunk
    assert [k for k in store.list("n") if "/c/" in k] == ["n/c/0"]


@pytest.mark.parametrize(
    "selection",
    [
        (5,),
        (slice(10, 20), 3),
        (slice(None, None, -3), slice(5, 100, 7)),
        (-1, -1),
        (Ellipsis, 4),
        (slice(690, 2000),),
        (slice(5, 5),),
        (slice(None), slice(None, None, 2)),
    ],
)
def test_slices_equal_numpy(store: Store, selection: tuple) -> None:
    data = CASES["float64_2d"]
    write_array(store, "a", data)
    np.testing.assert_array_equal(open_array(store, "a")[selection], data[selection])


def test_slices_of_3d_arrays_cross_chunk_edges(store: Store) -> None:
    data = CASES["uint8_3d"]
    write_array(store, "a", data)
    a = open_array(store, "a")
    assert a.chunks[0] == 1 and a.chunks[1] < 1500  # frames are split into chunks
    for sel in [
        (1,),
        (slice(1, 3), slice(100, 1400), slice(600, None)),
        (Ellipsis, 799),
        (2, 1499, 0),
    ]:
        np.testing.assert_array_equal(a[sel], data[sel])


def test_bad_indices_are_refused_clearly(store: Store) -> None:
    write_array(store, "a", np.arange(10))
    a = open_array(store, "a")
    with pytest.raises(IndexError, match="out of bounds"):
        a[10]
    with pytest.raises(IndexError, match="too many indices"):
        a[1, 2]
    with pytest.raises(IndexError, match="integers and slices"):
        a[[1, 2]]


def test_a_slice_reads_only_the_chunks_it_touches(store: Store, monkeypatch) -> None:
    data = np.arange(4_000_000, dtype="<i4")  # 16 MB: 16 chunks of 1 MiB
    write_array(store, "a", data)
    a = open_array(store, "a")
    read: list[tuple[str, int, int | None]] = []
    real = store.read_ranges

    def spy(ranges):
        read.extend(ranges)
        return real(ranges)

    monkeypatch.setattr(store, "read_ranges", spy)
    chunk = a.chunks[0]
    np.testing.assert_array_equal(a[chunk + 10 : chunk + 20], data[chunk + 10 : chunk + 20])
    index_reads = [r for r in read if r[1] < 0]
    chunk_reads = [r for r in read if r[1] >= 0]
    assert len(index_reads) == 1  # the shard's index, once
    assert len(chunk_reads) == 1  # one chunk of sixteen
    assert chunk_reads[0][2] - chunk_reads[0][1] < 1 << 20  # a compressed chunk, not the shard
    read.clear()
    a[3 * chunk - 5 : 3 * chunk + 5]  # straddles two chunks; the index is cached
    assert len(read) == 2 and all(r[1] >= 0 for r in read)


@pytest.mark.parametrize("sizes", [[1, 999, 5000, 3, 40000, 7], [10000], [0, 4], [12345] * 4])
def test_streaming_in_any_blocks_equals_the_whole(store: Store, sizes: list[int]) -> None:
    parts = [RNG.normal(size=n).astype("f4") for n in sizes]
    with ArrayWriter(store, "s", (), "f4", chunk_bytes=4000, shard_bytes=40000) as w:
        for p in parts:
            w.write(p)
    whole = np.concatenate(parts)
    a = open_array(store, "s")
    np.testing.assert_array_equal(a[:], whole)
    np.testing.assert_array_equal(_zarr_read(store, "s"), whole)
    if len(whole) > 20:
        np.testing.assert_array_equal(a[7 : len(whole) - 9], whole[7:-9])


def test_short_arrays_get_chunks_that_fit(store: Store) -> None:
    write_array(store, "a", np.arange(3, dtype="f8"))
    assert open_array(store, "a").chunks == (3,)
    assert plan_chunks((), 2) == [524288]
    assert plan_chunks((4096, 4096), 4) == [1, 64, 4096]


def test_writer_refuses_blocks_of_the_wrong_shape(store: Store) -> None:
    w = ArrayWriter(store, "a", (3,), "f8")
    with pytest.raises(ValueError, match="rows are"):
        w.write(np.zeros((2, 4)))
    w.abort()
    with pytest.raises(TypeError, match="numbers or times"):
        ArrayWriter(store, "b", (), "S5")


def test_persist_and_delete(store: Store) -> None:
    store.write("runs/x/a", b"1")
    store.write("runs/x/b/c", b"2")
    store.persist("runs/x")
    assert store.list("runs") == ["runs/x/a", "runs/x/b/c"]
    store.delete("runs/x")
    assert store.list("runs") == []
    store.delete("runs/never")  # nothing there: not an error


@pytest.mark.s3
def test_the_same_code_on_s3(s3_bucket: str, s3_endpoint: str) -> None:
    store = open_store(f"{s3_bucket}/prefix", {"endpoint_url": s3_endpoint})
    data = CASES["float64_2d"]
    write_array(store, "a", data, {"k": 1})
    write_array(store, "t", CASES["text"])
    a = open_array(store, "a")
    np.testing.assert_array_equal(a[100:300, 7], data[100:300, 7])
    np.testing.assert_array_equal(open_array(store, "t")[...], CASES["text"])
    np.testing.assert_array_equal(_zarr_read(store, "a"), data)
    assert store.read_range("a/zarr.json", 0, 1) == b"{"
    store.delete("a")
    assert not store.exists("a/zarr.json")


def test_arrays_written_by_others_are_read_by_zarr_python(store: Store) -> None:
    """Only the exact layout labledger writes takes its fast path; anything else (another fill
    value, another chunk key encoding) goes to zarr-python and reads right."""
    from zarr.codecs import BloscCodec

    blosc = BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        filled = zarr.create_array(
            store.zarr_store(),
            name="f",
            shape=(10, 10),
            chunks=(3, 3),
            shards=(6, 6),
            dtype="i4",
            compressors=blosc,
            fill_value=7,
        )
        filled[0:2, 0:2] = 1
        dotted = zarr.create_array(
            store.zarr_store(),
            name="g",
            shape=(4,),
            chunks=(2,),
            shards=(4,),
            dtype="i4",
            compressors=blosc,
            chunk_key_encoding={"name": "default", "separator": "."},
        )
        dotted[:] = [1, 2, 3, 4]
    np.testing.assert_array_equal(open_array(store, "f")[...], filled[...])
    assert open_array(store, "f")[9, 9] == 7
    np.testing.assert_array_equal(open_array(store, "g")[:], [1, 2, 3, 4])


def test_an_index_array_is_refused_clearly(store: Store) -> None:
    write_array(store, "a", np.arange(10))
    with pytest.raises(IndexError, match="integers and slices"):
        open_array(store, "a")[np.array([1, 2])]


@pytest.mark.s3
def test_a_missing_shard_on_s3_reads_as_fill(s3_bucket: str, s3_endpoint: str) -> None:
    store = open_store(f"{s3_bucket}/p", {"endpoint_url": s3_endpoint})
    with ArrayWriter(store, "a", (), "i4", chunk_bytes=400, shard_bytes=4000) as w:
        w.write(np.arange(3000, dtype="i4"))
    store.delete("a/c/1")  # shard 1 (values 1000-1999) gone, as if never written
    values = open_array(store, "a")[900:2100]
    np.testing.assert_array_equal(values[:100], np.arange(900, 1000))
    assert not values[100:1100].any()
    np.testing.assert_array_equal(values[1100:], np.arange(2000, 2100))


def test_a_changed_byte_in_a_chunk_is_refused_not_read(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    values = np.arange(200_000, dtype="<i4")
    write_array(store, "a", values)
    (shard,) = [k for k in store.list("a") if "/c/" in k]
    path = Path(store.path(shard))
    data = bytearray(path.read_bytes())
    data[20] ^= 0x01  # inside the first chunk's compressed bytes, past blosc's header
    path.write_bytes(bytes(data))
    with pytest.raises(Damaged, match=r"chunk \(0,\) is damaged.*labledger check"):
        open_array(store, "a")[:10]
