"""The store's reads at their edges: byte ranges and tails, listings, fill values, slices that
cross chunk and shard bounds, and which reader an array's metadata chooses. Expected values are
slices of the bytes and arrays written, taken by hand (Python and NumPy slicing, hashlib)."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, BytesCodec, ShardingCodec, ZstdCodec

from labledger.errors import Damaged, StoreUnavailable
from labledger.store import (
    ArrayWriter,
    FsspecStore,
    LocalStore,
    Store,
    StoredArray,
    TextArray,
    ZarrArray,
    open_array,
    open_store,
    write_array,
)
from labledger.store.arrays import _layout, array_of

BLOB = np.random.default_rng(13).integers(0, 256, 700_000, dtype="u1").tobytes()


@pytest.fixture(params=["folder", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """An empty store on a folder, and one on moto's S3 (its URL with a trailing slash)."""
    if request.param == "folder":
        return open_store(tmp_path / "store")
    bucket = request.getfixturevalue("s3_bucket")
    endpoint = request.getfixturevalue("s3_endpoint")
    return open_store(f"{bucket}/pre/fix/", {"endpoint_url": endpoint})


@pytest.fixture
def folder(tmp_path: Path) -> Store:
    return open_store(tmp_path / "store")


# -- objects -------------------------------------------------------------------------------------


def test_an_object_reads_back_whole_and_through_a_file(store: Store) -> None:
    store.write("runs/r/blob.bin", BLOB)
    assert hashlib.sha256(store.read("runs/r/blob.bin")).digest() == hashlib.sha256(BLOB).digest()
    with store.open_read("runs/r/blob.bin") as f:
        assert f.read(10) == BLOB[:10]
        assert hashlib.sha256(BLOB[10:]).digest() == hashlib.sha256(f.read()).digest()


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 10, BLOB[:10]),
        (5, 6, BLOB[5:6]),
        (123_456, 654_321, BLOB[123_456:654_321]),
        (-4, None, BLOB[-4:]),
        (699_990, None, BLOB[699_990:]),
        (0, None, BLOB),
        (-800_000, None, BLOB),  # a tail longer than the object: all of it
    ],
)
def test_a_byte_range_is_that_slice(
    store: Store, start: int, end: int | None, expected: bytes
) -> None:
    store.write("b", BLOB)
    assert store.read_range("b", start, end) == expected
    # S3 ignores an empty Range header and sends it all (see docs/testing.md)
    if isinstance(store, LocalStore):
        assert store.read_range("b", start, start) == b""


def test_many_ranges_come_back_in_the_order_asked(store: Store) -> None:
    store.write("a/one", BLOB)
    store.write("a/two", BLOB[::-1])
    ranges: list[tuple[str, int, int | None]] = [
        ("a/one", 100, 200),
        ("a/two", -3, None),  # a tail
        ("a/one", 200, 300),  # next to the first: merged with it, cut apart again
        ("a/one", 150, 250),  # overlapping both
        ("a/two", 0, 5),
        ("a/one", 100, 200),  # the first again
        ("a/one", 300_000, 300_010),  # 300 kB on: beyond an object store's merge gap
        ("a/one", 10, 10),  # empty
        ("a/one", 699_000, None),  # from an offset to the end
    ]
    by_hand = {"a/one": BLOB, "a/two": BLOB[::-1]}
    expected = [by_hand[k][s:] if e is None else by_hand[k][s:e] for k, s, e in ranges]
    assert [bytes(b) for b in store.read_ranges(ranges)] == expected
    whole = [("a/one", 0, 700_000), ("a/one", 0, 3), ("a/two", 699_999, 700_000)]
    assert [bytes(b) for b in store.read_ranges(whole)] == [BLOB, BLOB[:3], BLOB[::-1][-1:]]
    assert store.read_ranges([]) == []
    assert [bytes(b) for b in store.read_ranges([("a/two", -7, None)])] == [BLOB[::-1][-7:]]


def test_ranges_of_a_missing_object_are_refused(store: Store) -> None:
    store.write("a/one", BLOB)
    for ranges in ([("a/none", 0, 4)], [("a/none", -4, None)], [("a/one", 0, 4), ("a/no", 0, 4)]):
        with pytest.raises(FileNotFoundError):
            store.read_ranges(ranges)
    with pytest.raises(FileNotFoundError):
        store.read_range("a/none", 0, 4)


def test_listings_name_keys_below_the_root(store: Store) -> None:
    assert store.list() == [] and store.children("runs") == []
    for key in ["runs/b/x", "runs/a/deep/er", "runs/a/y", "top"]:
        store.write(key, b"1")
    assert store.list() == ["runs/a/deep/er", "runs/a/y", "runs/b/x", "top"]
    assert store.list("runs/a") == ["runs/a/deep/er", "runs/a/y"]
    assert store.list("nothing") == []
    assert store.children("runs") == ["runs/a", "runs/b"]
    assert store.children("runs/a") == ["runs/a/deep", "runs/a/y"]
    assert store.children("nothing") == []
    assert store.exists("runs/a/y") and store.exists("top")
    assert not store.exists("runs/a/z")


def test_usage_counts_bytes_and_the_newest_write(store: Store) -> None:
    assert store.usage("runs") == (0, None)
    store.write("runs/a/one", BLOB[:1000])
    store.write("runs/a/deep/two", BLOB[:234])
    store.write("runs/a/empty", b"")
    store.write("runs/other", BLOB[:5])
    size, newest = store.usage("runs/a")
    assert size == 1234
    assert isinstance(newest, float)
    # a folder's times can be set: the newest is the later of the two
    if isinstance(store, LocalStore):
        keys = ["runs/a/one", "runs/a/deep/two", "runs/a/empty"]
        for times, newest in [((1e9, 1.5e9 + 0.5, 1.2e9), 1.5e9 + 0.5), ((0.25, 0.5, 0.0), 0.5)]:
            for key, when in zip(keys, times):
                os.utime(store.path(key), (when, when))
            assert store.usage("runs/a") == (1234, newest)


def test_where_a_store_is(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    store = open_store(tmp_path / "link" / ".." / "link")
    root = str((tmp_path / "real").resolve())
    assert (store.root, store.url, type(store)) == (root, root, LocalStore)
    assert store.path("") == root
    assert store.path("a/b") == f"{root}/a/b"
    assert repr(store) == f"LocalStore({root!r})"
    s3 = open_store("s3://bucket/some/prefix/", {"anon": True})
    assert (s3.root, s3.url, type(s3)) == (
        "bucket/some/prefix",
        "s3://bucket/some/prefix",
        FsspecStore,
    )
    assert s3.path("k") == "bucket/some/prefix/k"
    assert s3.storage_options == {"anon": True}
    boxes = open_store("s3://bucket/BOX/", {"anon": True})  # ends in X: only "/" is stripped
    assert (boxes.root, boxes.url) == ("bucket/BOX", "s3://bucket/BOX")


@pytest.mark.parametrize(
    ("url", "reason"),
    [("nosuch://x/y", "Protocol not known: nosuch"), ("gcs://b/x", "install gcsfs")],
)
def test_an_unknown_kind_of_store_is_refused_in_one_line(url: str, reason: str) -> None:
    with pytest.raises(StoreUnavailable, match=rf"(?i)^store {url}: .*{reason}") as info:
        open_store(url)
    assert "\n" not in str(info.value)


@pytest.mark.s3
def test_listings_on_s3_see_what_another_process_wrote(s3_bucket: str, s3_endpoint: str) -> None:
    """Children and usage are read afresh: s3fs would otherwise answer from its cache."""
    import boto3

    store = open_store(f"{s3_bucket}/lab", {"endpoint_url": s3_endpoint})
    store.write("runs/a/x", b"12345")
    assert store.list("runs") == ["runs/a/x"]  # s3fs now caches the listing
    assert store.children("runs") == ["runs/a"]
    assert store.usage("runs")[0] == 5
    other = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    other.put_object(Bucket=s3_bucket.removeprefix("s3://"), Key="lab/runs/b/y", Body=b"678")
    assert store.children("runs") == ["runs/a", "runs/b"]
    assert store.usage("runs")[0] == 8


def test_arrays_of_two_stores_at_the_same_path_are_their_own(tmp_path: Path) -> None:
    one, two = open_store(tmp_path / "one"), open_store(tmp_path / "two")
    write_array(one, "runs/a", np.arange(3, dtype="i2"))
    write_array(two, "runs/a", np.arange(5, dtype="f8"))
    assert open_array(one, "runs/a").shape == (3,)
    assert open_array(two, "runs/a").dtype == np.dtype("f8")
    np.testing.assert_array_equal(open_array(two, "runs/a")[...], np.arange(5.0))


# -- arrays --------------------------------------------------------------------------------------


def _gappy(store: Store, path: str, fill: int | None) -> np.ndarray:
    """int32 rows 0-999 written, 2000 skipped, 500 written; chunks of 100 rows, shards of 1000.
    Returns the same by hand."""
    with ArrayWriter(store, path, (), "i4", fill=fill, chunk_bytes=400, shard_bytes=4000) as w:
        w.write(np.arange(1000, dtype="i4"))
        w.skip(2000)
        w.write(np.arange(5000, 5500, dtype="i4"))
    gap = np.full(2000, 0 if fill is None else fill, "i4")
    return np.concatenate([np.arange(1000), gap, np.arange(5000, 5500)]).astype("i4")


@pytest.mark.parametrize("fill", [None, -1])
def test_rows_never_written_read_as_the_fill_value(store: Store, fill: int | None) -> None:
    expected = _gappy(store, "g", fill)
    a = open_array(store, "g")
    assert a.shape == (3500,) and a.chunks == (100,)
    for sel in [
        slice(None),
        slice(990, 1010),
        slice(2995, 3005),
        slice(1500, 1600),
        slice(3499, 3500),
        slice(3400, 950, -7),
        1000,
        2999,
        3000,
        -1,
    ]:
        np.testing.assert_array_equal(a[sel], expected[sel])
        assert np.asarray(a[sel]).dtype == np.dtype("<i4")
    assert list(a.written_rows()) == [(0, 1000), (3000, 3500)]
    assert type(a[1000]) is np.int32 and type(a[-1]) is np.int32  # a NumPy scalar, as NumPy's
    assert np.asarray(a).dtype == np.dtype("<i4") and repr(a) == (
        "<StoredArray g shape=(3500,) dtype=int32>"
    )
    blocks = list(a.iter_blocks())
    assert [len(b) for b in blocks] == [1000, 1000, 1000, 500]
    np.testing.assert_array_equal(np.concatenate(blocks), expected)


def test_a_large_array_with_a_missing_shard_reads_as_the_fill_value(folder: Store) -> None:
    """Over 1 MiB: its shards' indexes are read, not the whole objects."""
    n = 300_000  # 1.2 MB of int32, chunks of 25 000 rows, shards of 100 000
    with ArrayWriter(
        folder, "big", (), "i4", fill=7, chunk_bytes=100_000, shard_bytes=400_000
    ) as w:
        w.write(np.arange(n, dtype="i4"))
    folder.delete("big/c/1")
    expected = np.arange(n, dtype="i4")
    expected[100_000:200_000] = 7
    a = open_array(folder, "big")
    np.testing.assert_array_equal(a[99_990:200_010], expected[99_990:200_010])
    np.testing.assert_array_equal(a[250_000], expected[250_000])
    assert list(a.written_rows()) == [(0, 100_000), (200_000, 300_000)]


def test_a_2d_array_in_chunks_along_both_axes(store: Store) -> None:
    data = np.arange(50 * 37, dtype="f8").reshape(50, 37) / 3
    data[20:30] = np.nan
    with ArrayWriter(store, "m", (37,), "f8", fill=np.nan, chunk_bytes=80) as w:
        w.write(data[:20])
        w.skip(10)
        w.write(data[30:])
    a = open_array(store, "m")
    assert a.chunks == (1, 10)  # 37 columns in chunks of 10: the last one is short
    for sel in [
        (Ellipsis,),
        (slice(3, 7), slice(8, 33)),
        (slice(None), 36),
        (slice(19, 31), slice(29, 37)),
        (-1, slice(None, None, -4)),
        (np.int64(5), np.int64(-1)),
        (slice(40, 10, -3), slice(35, 2, -5)),
        (slice(20, 20), slice(0, 5)),
    ]:
        np.testing.assert_array_equal(a[sel], data[sel])
        assert np.asarray(a[sel]).dtype == np.dtype("<f8")
    np.testing.assert_array_equal(np.asarray(a), data)
    np.testing.assert_array_equal(np.asarray(a, dtype="f4"), data.astype("f4"))
    assert (a.ndim, a.size, a.nbytes, len(a)) == (2, 1850, 14_800, 50)


def test_indices_outside_an_array_are_refused_in_one_line(folder: Store) -> None:
    write_array(folder, "a", np.arange(12).reshape(3, 4))
    a = open_array(folder, "a")
    np.testing.assert_array_equal(a[-3], [0, 1, 2, 3])
    np.testing.assert_array_equal(a[..., -4], [0, 4, 8])
    np.testing.assert_array_equal(a[2, ...], [8, 9, 10, 11])
    cases = [
        ((-4,), "index -4 is out of bounds for an axis of length 3"),
        ((3,), "index 3 is out of bounds for an axis of length 3"),
        ((0, 4), "index 4 is out of bounds for an axis of length 4"),
        ((Ellipsis, Ellipsis), "an index can only have a single ellipsis"),
        ((1, 2, 3), "too many indices: 3 for an array of 2 dimensions"),
        ((True,), "index with integers and slices, not bool"),
        (
            (1.0,),
            "index with integers and slices, not float; "
            "for other selections read a slice and index the NumPy array",
        ),
    ]
    for sel, message in cases:
        with pytest.raises(IndexError) as info:
            a[sel]
        assert str(info.value).startswith(message)


def test_zero_d_and_empty_arrays(folder: Store) -> None:
    write_array(folder, "s", np.array(2.5))
    write_array(folder, "e", np.zeros((0, 3), "i2"))
    s, e = open_array(folder, "s"), open_array(folder, "e")
    assert s[()] == 2.5 and s[...] == 2.5 and [float(b) for b in s.iter_blocks()] == [2.5]
    assert (s.ndim, s.size, s.shape) == (0, 1, ())
    with pytest.raises(TypeError, match="len"):
        len(s)
    assert e[...].shape == (0, 3) and e[:, 1].shape == (0,)
    assert list(e.written_rows()) == [] and len(e) == 0


def test_text_arrays_read_whole_and_in_parts(folder: Store) -> None:
    fixed = np.array([[b"ab", b"c"], [b"", b"de"], [b"f", b"gh"]], dtype="S2")
    text = np.array([["α", ""], ["βγ", "x"]], dtype=object)
    write_array(folder, "f", fixed, {"units": "none"})
    write_array(folder, "t", text)
    write_array(folder, "fe", np.zeros(0, "S3"))
    write_array(folder, "te", np.zeros((0, 2), object))
    f, t = open_array(folder, "f"), open_array(folder, "t")
    assert isinstance(f, TextArray) and isinstance(t, TextArray)
    assert (f.shape, f.dtype, f.attrs, f.chunks) == (
        (3, 2),
        np.dtype("S2"),
        {"units": "none"},
        (3, 2),
    )
    np.testing.assert_array_equal(f[...], fixed)
    assert f[1, 1] == b"de"
    assert t.shape == (2, 2) and [str(v) for v in t[...].ravel()] == ["α", "", "βγ", "x"]
    assert str(t[1, 0]) == "βγ"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_zarr = zarr.open_array(folder.zarr_store(), path="t", mode="r")[...]
    assert t[...].dtype == by_zarr.dtype  # the same kind of strings zarr-python hands out
    fe, te = open_array(folder, "fe"), open_array(folder, "te")
    assert fe[...].shape == (0,) and fe[...].dtype == np.dtype("S3")
    assert te[...].shape == (0, 2)


def test_structured_arrays_are_read_by_zarr_python(folder: Store) -> None:
    data = np.array([(1, 2.5), (3, 4.5), (5, 6.5)], dtype=[("a", "<i4"), ("b", "<f8")])
    write_array(folder, "r", data, {"k": "v"})
    r = open_array(folder, "r")
    assert isinstance(r, ZarrArray)
    assert (r.path, r.shape, r.dtype, r.attrs, r.chunks) == (
        "r",
        (3,),
        data.dtype,
        {"k": "v"},
        (3,),
    )
    np.testing.assert_array_equal(r[1:], data[1:])


def _by_zarr(store: Store, name: str, data: np.ndarray, **options: object) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zarr.create_array(store.zarr_store(), name=name, data=data, **options)  # type: ignore[arg-type]


def test_which_reader_an_array_written_elsewhere_takes(folder: Store) -> None:
    """labledger's reader takes exactly the layouts it decodes right (its own, and shards whose
    chunks carry no crc32c, as before); anything else goes to zarr-python. Either way the values
    are those written."""
    data = np.arange(60, dtype="<i4").reshape(6, 10)
    blosc = BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
    big = BytesCodec(endian="big")
    variants: dict[str, tuple[type, dict[str, object]]] = {
        "no_crc": (StoredArray, {"chunks": (2, 5), "shards": (4, 10), "compressors": blosc}),
        "filled": (
            StoredArray,
            {"chunks": (2, 5), "shards": (4, 10), "compressors": blosc, "fill_value": 3},
        ),
        "big_endian_chunks": (
            ZarrArray,
            {"chunks": (2, 5), "shards": (4, 10), "compressors": blosc, "serializer": big},
        ),
        "zstd": (ZarrArray, {"chunks": (2, 5), "shards": (4, 10), "compressors": ZstdCodec()}),
        "unsharded": (ZarrArray, {"chunks": (2, 5), "compressors": blosc}),
        "dotted_keys": (
            ZarrArray,
            {
                "chunks": (2, 5),
                "shards": (4, 10),
                "compressors": blosc,
                "chunk_key_encoding": {"name": "default", "separator": "."},
            },
        ),
        "v2_keys": (
            ZarrArray,
            {
                "chunks": (2, 5),
                "shards": (4, 10),
                "compressors": blosc,
                "chunk_key_encoding": {"name": "v2"},
            },
        ),
    }
    for name, (reader, options) in variants.items():
        _by_zarr(folder, name, data, **options)
        a = open_array(folder, name)
        assert type(a) is reader, name
        np.testing.assert_array_equal(a[...], data, err_msg=name)
        np.testing.assert_array_equal(a[3:5, 4], data[3:5, 4], err_msg=name)
    # the sharding codec spelled out: an index at the start, or a big-endian index
    for name, codec in {
        "index_first": ShardingCodec(
            chunk_shape=(2, 5), codecs=[BytesCodec(), blosc], index_location="start"
        ),
        "big_endian_index": ShardingCodec(
            chunk_shape=(2, 5), codecs=[BytesCodec(), blosc], index_codecs=[big, {"name": "crc32c"}]
        ),
    }.items():
        _by_zarr(folder, name, data, chunks=(4, 10), serializer=codec, compressors=None)
        a = open_array(folder, name)
        assert type(a) is ZarrArray, name
        np.testing.assert_array_equal(a[...], data, err_msg=name)
    _by_zarr(folder, "text_filled", np.array([b"ab", b"c"], "S2"), fill_value=b"zz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chunked = zarr.create_array(
            folder.zarr_store(), name="text_chunked", shape=(4,), chunks=(2,), dtype=str,
            compressors=None,
        )  # fmt: skip
        chunked[:] = np.array(["a", "bc", "d", "e"], dtype=object)
    for name, values in {
        "text_filled": [b"ab", b"c"],
        "text_chunked": ["a", "bc", "d", "e"],
    }.items():
        a = open_array(folder, name)
        assert type(a) is ZarrArray, name
        assert [v if isinstance(v, bytes) else str(v) for v in a[...]] == values


def test_metadata_no_reader_here_knows_goes_to_zarr_python(folder: Store) -> None:
    write_array(folder, "n", np.arange(4, dtype="i2"))
    write_array(folder, "t", np.array([b"ab"], "S2"))
    meta, text = json.loads(folder.read("n/zarr.json")), json.loads(folder.read("t/zarr.json"))
    assert (_layout(meta), _layout(text)) == ("sharded", "text")
    for path, m in [("n", meta), ("t", text)]:  # attributes are optional in Zarr v3
        bare = {k: v for k, v in m.items() if k != "attributes"}
        assert array_of(folder, path, bare).attrs == {}
    sharding = meta["codecs"][0]
    # what the specification lets a writer leave out: the index at the end, little-endian bytes
    conf = sharding["configuration"]
    plain = {
        **sharding,
        "configuration": {
            **{k: v for k, v in conf.items() if k != "index_location"},
            "codecs": [{"name": "bytes"}, *conf["codecs"][1:]],
            "index_codecs": [{"name": "bytes"}, *conf["index_codecs"][1:]],
        },
    }
    assert _layout({**meta, "codecs": [plain]}) == "sharded"
    for change in [
        {"storage_transformers": [{"name": "x"}]},
        {"chunk_grid": {"name": "rectilinear", "configuration": {"chunk_shape": [4]}}},
        {"data_type": "no such type"},
        {"fill_value": "not a number"},
        {"codecs": [sharding, {"name": "crc32c"}]},
    ]:
        assert _layout({**meta, **change}) is None, change
    for change in [
        {"storage_transformers": [{"name": "x"}]},
        {"chunk_grid": {"name": "rectilinear", "configuration": {"chunk_shape": [1]}}},
        {"chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2]}}},
        {"codecs": [{"name": "bytes"}, {"name": "gzip"}]},
        {"fill_value": "x"},
    ]:
        assert _layout({**text, **change}) is None, change


@pytest.mark.parametrize("damage", ["index byte", "cut in half", "cut to 3 bytes"])
def test_a_damaged_shard_index_is_refused_as_damage(folder: Store, damage: str) -> None:
    """A shard's index carries a crc32c too: a changed byte, or a shard cut short (a copy that
    stopped), is named as damage in one line, as a damaged chunk is."""
    write_array(folder, "a", np.arange(400_000, dtype="<i4"))  # 1.6 MB: the index read alone
    path = Path(folder.path("a/c/0"))
    data = bytearray(path.read_bytes())
    if damage == "index byte":
        data[-10] ^= 0x01  # in the index, before its own crc32c
    else:
        data = data[: 3 if damage == "cut to 3 bytes" else len(data) // 2]
    path.write_bytes(bytes(data))
    with pytest.raises(Damaged, match=r"^a: the index of shard \(0,\) is damaged.*labledger check"):
        open_array(folder, "a")[:10]


@pytest.mark.parametrize(
    ("dtype", "fill", "values"),
    [
        ("<i8", 2**62 + 1, [1, 2, 3, 4]),  # beyond a float's 53 bits
        ("<u8", 2**64 - 1, [0, 1, 2, 3]),
        ("<f8", float("nan"), [0.5, 1.5, 2.5, 3.5]),
        ("<f4", float("-inf"), [1, 2, 3, 4]),
        ("<c8", 1.5 - 2j, [1j, 2, 3, 4]),
        ("<M8[s]", np.datetime64("NaT"), ["2020-01-01", "2020-01-02", "2021-03-04", "1970-01-01"]),
        ("<M8[ms]", np.datetime64("2000-01-01T00:00:00.001"), ["2020-01-01"] * 4),
        ("|b1", True, [False, False, True, False]),
    ],
)
def test_fill_values_of_every_kind_read_back_exactly(
    folder: Store, dtype: str, fill: object, values: list
) -> None:
    written = np.array(values, dtype)
    size = np.dtype(dtype).itemsize * 2  # chunks of 2 rows: rows 4-5 are never written
    with ArrayWriter(folder, "x", (), dtype, fill=fill, chunk_bytes=size) as w:
        w.write(written[:3])
        w.skip(4)
        w.write(written[3:])
    by_hand = np.concatenate([written[:3], np.full(4, fill, dtype), written[3:]])
    a = open_array(folder, "x")
    assert type(a) is StoredArray  # labledger's own reader, whatever the fill value
    assert a[...].dtype == np.dtype(dtype)
    np.testing.assert_array_equal(a[...], by_hand)
    np.testing.assert_array_equal(a[2:5], by_hand[2:5])
