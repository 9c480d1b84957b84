"""Routes of bytes: stored objects as they are stored (byte ranges, no decoding), channel slices
and signal previews as binary arrays, compressed when it pays."""

import json
import re
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response

from labledger.decimation import checked_points
from labledger.errors import Forbidden, NotFound, TooLarge
from labledger.records import MAX_RUN_NUMBER
from labledger.server.context import Context, Who
from labledger.server.params import Number, byte_range, jsonable, safe_key, slice_of
from labledger.wire import API, compress, encode_array, negotiate

# matched whole (fullmatch; "." takes no newline): the object's owner is in its first parts
_RUN_KEY = re.compile(r"runs/([0-9a-f-]{36})/.+")
_PRODUCT_KEY = re.compile(r"products/([0-9a-f-]{36})/.+")
_EVENTS_KEY = re.compile(r"events/level=\d/run=(\d{1,19})/[0-9a-f-]{36}\.parquet")


def router(ctx: Context) -> APIRouter:
    router = APIRouter(prefix=API)

    @router.get("/store/{key:path}", tags=["data"], response_class=Response)
    def store_object(who: Who, key: str, range: Annotated[str | None, Header()] = None) -> Response:
        """A stored object as it is stored (a Zarr shard, a raw file), or a byte range of it
        (``Range: bytes=a-b``, ``bytes=-n``): chunks travel compressed as they were written."""
        key = safe_key(key)
        # 403, not 404, for what the caller may not read: a Zarr reader takes a missing
        # object for a chunk never written and fills it, where it must fail
        try:
            match, made, events = (p.fullmatch(key) for p in (_RUN_KEY, _PRODUCT_KEY, _EVENTS_KEY))
            if match is not None:  # a shard read is a few requests: its run's project is kept
                project = ctx.project_of(match.group(1))
                # no such run (the objects of an ingest that never committed): no one's to read
                if project is None or not who.can("read", project):
                    raise NotFound(key)
            elif made is not None:
                ctx.product_of(who, made.group(1))
            elif events is not None and int(events.group(1)) <= MAX_RUN_NUMBER:
                run = ctx.archive.catalog.by_number(int(events.group(1)))
                ctx.visible(who, run, f"object {key!r}")
            else:
                raise NotFound(key)
        except NotFound:
            raise Forbidden(f"object {key!r} is not yours to read (or not served)") from None
        try:
            info = ctx.archive.store.fs.info(ctx.archive.store.path(key))  # one stat
        except FileNotFoundError:
            info = {}
        if info.get("type") != "file":
            raise NotFound(f"object {key!r} does not exist")
        size = int(info["size"])
        if range is None:
            if size > ctx.limits.max_response_bytes:
                raise TooLarge(f"{key!r} is {size} bytes; ask for byte ranges (Range header)")
            return Response(
                ctx.archive.store.read(key),
                media_type="application/octet-stream",
                headers={"Accept-Ranges": "bytes"},
            )
        start, end = byte_range(range, size)
        if end - start > ctx.limits.max_response_bytes:
            most = ctx.limits.max_response_bytes
            raise TooLarge(f"a range of {end - start} bytes; at most {most}")
        data = ctx.archive.store.read_range(key, start, end) if end > start else b""
        return Response(
            data,
            status_code=206,
            media_type="application/octet-stream",
            headers={"Content-Range": f"bytes {start}-{end - 1}/{size}", "Accept-Ranges": "bytes"},
        )

    @router.get("/runs/{number}/channels/{key:path}", tags=["data"], response_class=Response)
    def channel_data(
        who: Who,
        request: Request,
        number: Number,
        key: str,
        slice: Annotated[str | None, Query(description="start:stop[:step] of axis 0")] = None,
    ) -> Response:
        """A channel's values (of ``slice``) as raw little-endian bytes, dtype and shape in
        ``X-Dtype`` and ``X-Shape``; compressed as ``Accept-Encoding`` allows, when it pays."""
        run = ctx.run_of(who, number)
        channel = run.channels[key]
        index = slice_of(slice)
        count = len(range(*index.indices(channel.shape[0]))) if channel.shape else 1
        nbytes = count * int(np.prod(channel.shape[1:], dtype=np.int64)) * channel.dtype.itemsize
        if nbytes > ctx.limits.max_response_bytes:
            raise TooLarge(
                f"{nbytes} bytes asked; at most {ctx.limits.max_response_bytes} in one response: "
                "ask for slices"
            )
        values = channel[index] if channel.shape else channel[...]
        return _binary(np.asarray(values), request.headers.get("accept-encoding"))

    @router.get("/runs/{number}/signals/{name:path}", tags=["data"], response_class=Response)
    def signal(
        who: Who,
        request: Request,
        number: Number,
        name: str,
        points: int | None = None,  # checked below: the archive's own refusal travels
        start: float | None = None,
        stop: float | None = None,
        calibration: str | None = None,
    ) -> Response:
        """A signal by name, calibrated, as two arrays (time, then values) in one body: the
        ``X-Lengths`` header says where the first ends; its attributes are JSON in
        ``X-Attrs``. With ``points``, a min/max decimation to at most that many samples."""
        if points is not None and checked_points(points) > ctx.limits.max_points:
            raise TooLarge(f"points={points}: at most {ctx.limits.max_points}")
        run = ctx.run_of(who, number)
        window = None if start is None and stop is None else (start, stop)
        data = run.signal(name, calibration=calibration, time=window, points=points)
        if 2 * data.nbytes > ctx.limits.max_response_bytes:  # the times as many bytes again
            raise TooLarge(
                f"{2 * data.nbytes} bytes; ask for a time window (start, stop) or points"
            )
        t = np.asarray(data["time"].values, dtype=np.float64)
        v = np.asarray(data.values)
        tb, _ = encode_array(t)
        vb, headers = encode_array(v)
        attrs = {k: jsonable(val) for k, val in data.attrs.items()}
        headers = {
            **headers,
            "X-Lengths": f"{len(tb)},{len(vb)}",
            "X-Attrs": json.dumps(attrs),
            "X-Name": str(data.name),
        }
        return _send(tb + vb, headers, request.headers.get("accept-encoding"))

    return router


def _binary(values: np.ndarray, accept: str | None) -> Response:
    data, headers = encode_array(values)
    return _send(data, headers, accept)


def _send(data: bytes, headers: dict[str, str], accept: str | None) -> Response:
    coding = negotiate(accept, data)
    if coding is not None:
        data = compress(data, coding)
        headers = {**headers, "Content-Encoding": coding}
    return Response(
        data, media_type="application/octet-stream", headers={**headers, "Vary": "Accept-Encoding"}
    )
