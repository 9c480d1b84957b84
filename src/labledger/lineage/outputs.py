"""A step's output kept in the store, read back, and hashed by its content.

What a step returns decides how it is kept:

- numbers, text, booleans, dates, pint quantities and lists or dicts of them ("value"): inline,
  in the catalog, as JSON that keeps their types;
- a NumPy array ("array"): a chunked Zarr array, as runs' channels are;
- an ``xarray.DataArray`` or ``Dataset`` ("dataset"): a Zarr group written by xarray, so any
  Zarr reader opens it;
- a pandas ``DataFrame`` or a pyarrow ``Table`` ("table"): a Parquet file;
- :class:`~labledger.events.Events` ("events"): a Parquet file per level and run, where
  event queries find it.

The content hash is over the values, not the bytes of a file format: the same numbers hash the
same whichever library version wrote them.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from labledger.errors import InvalidArgument
from labledger.lineage.canonical import canonical, decode, digest, encode
from labledger.store import Store, open_array, write_array

if TYPE_CHECKING:
    import pyarrow

_INLINE = 64 << 10  # bytes of JSON: more than this is kept in the store, not the catalog
KINDS = ("value", "array", "dataset", "table", "events", "set")


def kind_of(value: Any) -> str:
    """How ``value`` is kept (one of :data:`KINDS`); refuses what cannot be."""
    # events bring pyarrow: imported here, not at the top, as lineage.products and with it
    # labledger.client import this module (pyarrow adds ~0.1 s to `import labledger.client`)
    from labledger.events import Events

    if isinstance(value, Events):
        return "events"
    if isinstance(value, np.ndarray):
        return "array"
    module = type(value).__module__.split(".")[0]
    if module == "xarray" and type(value).__name__ in ("DataArray", "Dataset"):
        return "dataset"
    if (module == "pandas" and type(value).__name__ == "DataFrame") or (
        module == "pyarrow" and type(value).__name__ == "Table"
    ):
        return "table"
    try:
        encode(value, "the step's result")
    except InvalidArgument as exc:
        raise InvalidArgument(
            f"{exc}; a step returns numbers, text, arrays, xarray data, tables or Events"
        ) from None
    return "value"


def save(store: Store, prefix: str, value: Any, kind: str) -> tuple[Any, str]:
    """Keep ``value`` below ``prefix``; return what the catalog row holds (the value itself if
    small, else a summary) and the content hash."""
    if kind == "value":
        data = encode(value, "the step's result")
        text = json.dumps(data)
        summary: Any = {"inline": data}
        if len(text) > _INLINE:
            store.write(f"{prefix}/value.json", text.encode())
            summary = {"stored": "value.json", "bytes": len(text)}
        return summary, content_hash(value, kind)
    if kind == "array":
        write_array(store, f"{prefix}/array", value)
        return {"shape": list(value.shape), "dtype": value.dtype.str}, content_hash(value, kind)
    if kind == "dataset":
        return _save_dataset(store, prefix, value), content_hash(value, kind)
    if kind == "table":
        table = _arrow(value)
        _write_parquet(store, f"{prefix}/table.parquet", table)
        pandas = type(value).__module__.startswith("pandas")
        summary = {"rows": table.num_rows, "columns": table.column_names, "pandas": pandas}
        return summary, content_hash(table, kind)
    raise InvalidArgument(f"no way to keep a {kind!r} output here")  # events: see compute


def content_hash(value: Any, kind: str) -> str:
    """The hash an output of ``kind`` is published with (events: of their table, a "table")."""
    if kind == "array":
        return array_hash(value)
    if kind == "dataset":
        return dataset_hash(value)
    if kind == "table":
        return table_hash(_arrow(value))
    return digest(canonical(value))


def load(store: Store, prefix: str | None, kind: str, summary: Any) -> Any:
    """The value :func:`save` kept."""
    if kind == "value":
        if "inline" in summary:
            return decode(summary["inline"])
        return decode(json.loads(store.read(f"{prefix}/{summary['stored']}")))
    if kind == "array":
        return np.asarray(open_array(store, f"{prefix}/array")[...])
    if kind == "dataset":
        import xarray

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zarr v3 and consolidated-metadata notices
            data = xarray.open_zarr(
                store.zarr_store(), group=f"{prefix}/dataset", consolidated=False
            ).load()
        if summary.get("dataarray"):
            array = data[summary["name"]]
            array.name = summary.get("original_name")
            return array
        return data
    if kind == "table":
        import pyarrow.parquet as pq

        with store.open_read(f"{prefix}/table.parquet") as f:
            table = pq.read_table(f)
        return table.to_pandas() if summary.get("pandas") else table
    if kind == "events":
        from labledger.events import read_events  # pyarrow: see kind_of

        return read_events(store, summary["key"])
    raise InvalidArgument(f"no way to read a {kind!r} output")


def array_hash(value: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and values (little-endian, C order)."""
    data = np.ascontiguousarray(value)
    if data.dtype.byteorder == ">":
        data = data.astype(data.dtype.newbyteorder("<"))
    sha = hashlib.sha256(f"{data.dtype.str}{data.shape}".encode())
    if data.dtype.kind == "O":
        sha.update(json.dumps(canonical(data.tolist())).encode())
    else:
        sha.update(data.data.cast("B"))
    return sha.hexdigest()


def table_hash(table: pyarrow.Table) -> str:
    """sha256 of a table's column names, types and values."""
    sha = hashlib.sha256()
    for name, column in zip(table.column_names, table.columns, strict=True):
        sha.update(f"{name}:{column.type};".encode())
        if column.null_count == 0 and _fixed_width(column.type):
            sha.update(array_hash(column.to_numpy()).encode())
        else:
            sha.update(digest(canonical(column.to_pylist())).encode())
    return sha.hexdigest()


def dataset_hash(data: Any) -> str:
    """sha256 of an xarray object's variables, coordinates, dimensions and attributes."""
    import xarray

    if isinstance(data, xarray.DataArray):
        data = data.to_dataset(name=data.name if data.name is not None else "__value__")
    sha = hashlib.sha256(digest(canonical(_attrs(data.attrs))).encode())
    for name in sorted(map(str, data.variables)):
        variable = data.variables[name]
        sha.update(f"{name}{variable.dims}".encode())
        sha.update(digest(canonical(_attrs(variable.attrs))).encode())
        sha.update(array_hash(np.asarray(variable.values)).encode())
    return sha.hexdigest()


def _save_dataset(store: Store, prefix: str, value: Any) -> dict[str, Any]:
    import xarray

    summary: dict[str, Any] = {}
    if isinstance(value, xarray.DataArray):
        name = value.name if isinstance(value.name, str) and value.name else "__value__"
        summary = {"dataarray": True, "name": name, "original_name": value.name}
        data = value.to_dataset(name=name)
    else:
        data = value
    try:
        canonical(_attrs(data.attrs), "the result's attrs")
    except InvalidArgument as exc:
        raise InvalidArgument(f"{exc} (attributes must be JSON-like to be kept)") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data.to_zarr(store.zarr_store(), group=f"{prefix}/dataset", mode="w-", consolidated=False)
    summary["variables"] = sorted(map(str, data.data_vars))
    summary["sizes"] = {str(k): int(v) for k, v in data.sizes.items()}
    return summary


def _attrs(attrs: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in attrs.items()}


def _arrow(value: Any) -> pyarrow.Table:
    import pyarrow as pa

    if isinstance(value, pa.Table):
        return value
    return pa.Table.from_pandas(value)  # its pandas metadata brings the index back on reading


def _write_parquet(store: Store, key: str, table: pyarrow.Table) -> None:
    import pyarrow.parquet as pq

    with store.open_write(key) as f:
        pq.write_table(table, f, compression="zstd")


def _fixed_width(kind: Any) -> bool:
    import pyarrow as pa

    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_temporal(kind)
        or pa.types.is_boolean(kind)
    )
