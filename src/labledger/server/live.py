"""Routes of live runs: their states and the runs open now (so that ``run.state``,
``run.wait`` and ``la.runs.live()`` work through a server), the DAQ that writes a live run over
HTTP, and followers that get its blocks pushed as server-sent events.

A DAQ that is not Python writes with a writer's API key (write rights in the project live runs
are recorded in): ``POST /acquisitions`` makes the run and answers a writer token; each later
call on that run carries it (``X-Writer-Token``), and a token writes its own run only. The
server holds the acquisition (:class:`labledger.acquire.acquisition.ArchivedAcquisition`) in
memory, keyed by run, and renews its lease while the DAQ is heard from; a DAQ silent for
``live_idle_s`` is taken for gone: its run is ended ``failed``, saying so. A block is the body,
raw little-endian bytes; its stream and number are query parameters, so a block sent again
after a lost answer is recognised (the same bytes: acknowledged again, nothing written twice).

Following runs :meth:`labledger.archive.Archive._follow` here, in a thread of its own per
follower (it waits on Redis), so the values are calibrated as a local follower's are.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
import numpy as np
from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.responses import StreamingResponse

from labledger.access import Principal
from labledger.archive import Archive
from labledger.errors import (
    Busy,
    Conflict,
    Forbidden,
    InvalidArgument,
    LabledgerError,
    NotFound,
    first_line,
)
from labledger.ids import DEFAULT_PROJECT
from labledger.live import Acquisition, Cursor, Stream
from labledger.records import MAX_RUN_NUMBER
from labledger.runs import Piece, Run
from labledger.server.context import Context, Who
from labledger.server.params import Number
from labledger.wire import API, record_to_json

TOKEN_HEADER = "X-Writer-Token"
_RECENT = 64  # blocks of a stream whose digests are kept, to recognise one sent again
_SWEEP_S = 1.0
_FOLLOW_MOST_S = 86_400.0
_HEARTBEAT_S = 15.0
_AHEAD = 256  # pieces a follower's thread may read ahead of what its client has taken
_CREATE_FIELDS = ("run", "structure", "metadata", "waive", "lease")
_STREAM_FIELDS = ("name", "dtype", "rate", "shape")

# a route's parameter of this type is the writer token a request carries
Token = Annotated[str | None, Header(alias=TOKEN_HEADER)]


@dataclass(eq=False)
class Held:
    """An acquisition the server writes for a DAQ: its token, who made it, when last heard."""

    acquisition: Acquisition
    token: str
    user: str
    seen: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # stream -> block number -> sha256 of its bytes, the newest _RECENT
    recent: dict[str, OrderedDict[int, str]] = field(default_factory=dict)


class Writers:
    """The acquisitions this server holds, by run number; one thread ends those whose DAQ
    fell silent (``idle_s``) and forgets those ended."""

    def __init__(self, archive: Archive, idle_s: float) -> None:
        self.archive, self.idle_s = archive, idle_s
        self._held: dict[int, Held] = {}
        self._lock = threading.Lock()
        self._sweeper: threading.Thread | None = None
        self._stopping = threading.Event()

    def create(self, who: Principal, body: dict[str, Any]) -> Held:
        unknown = sorted(set(body) - set(_CREATE_FIELDS))
        if unknown:
            raise InvalidArgument(
                f"acquisition: unknown field {unknown[0]!r}; give {', '.join(_CREATE_FIELDS)}"
            )
        _no_nul(body)
        run = body.get("run")
        if isinstance(run, int) and run > MAX_RUN_NUMBER:
            raise InvalidArgument(f"run={run}: run numbers go up to {MAX_RUN_NUMBER}")
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidArgument(
                f"metadata={str(metadata)[:80]!r}: a JSON object of key -> value, or none"
            )
        waive = body.get("waive")
        if waive is not None and not isinstance(waive, dict):
            raise InvalidArgument(
                f"waive={str(waive)[:80]!r}: a JSON object of always-saved name -> reason, or none"
            )
        lease = body.get("lease", 30.0)
        if isinstance(lease, bool) or not isinstance(lease, int | float) or not 1 <= lease <= 600:
            raise InvalidArgument(f"lease={lease!r}: seconds, from 1 to 600")
        acquisition = self.archive.acquisition(
            run=run,  # type: ignore[arg-type]  # checked by the acquisition
            structure=body.get("structure"),  # type: ignore[arg-type]
            metadata=metadata,
            waive=waive,
            lease=float(lease),
        )
        held = Held(acquisition, secrets.token_urlsafe(32), who.name)
        with self._lock:
            self._held[acquisition.run] = held
            if self._sweeper is None or not self._sweeper.is_alive():
                self._sweeper = threading.Thread(
                    target=self._sweep, name="labledger-live-writers", daemon=True
                )
                self._sweeper.start()
        return held

    def held(self, number: int, token: str | None) -> Held:
        """The acquisition of run ``number``, if ``token`` is its writer token."""
        with self._lock:
            found = self._held.get(number)
        if found is None:
            raise NotFound(
                f"this server writes no acquisition of run {number}: make one with POST "
                f"{API}/acquisitions (one made elsewhere, or silent for {self.idle_s:g} s, is "
                "not written through here)"
            )
        if not token or not hmac.compare_digest(token.encode(), found.token.encode()):
            raise Forbidden(
                f"{TOKEN_HEADER} is not the token of run {number}'s acquisition: give the "
                "token its POST /acquisitions answered (a token writes its own run only)"
            )
        found.seen = time.monotonic()
        return found

    def close(self) -> None:
        """The server stops: each run it still writes is ended failed, saying so."""
        self._stopping.set()
        with self._lock:
            held = list(self._held.items())
        for number, one in held:
            self._end(number, one, "the server writing it for its DAQ stopped")

    def _end(self, number: int, held: Held, why: str) -> None:
        with held.lock:
            if not held.acquisition.state.final:
                with contextlib.suppress(LabledgerError):  # Redis gone: the lease expires
                    held.acquisition.fail(why)
        with self._lock:
            if self._held.get(number) is held:
                del self._held[number]

    def _sweep(self) -> None:
        while not self._stopping.wait(_SWEEP_S):
            now = time.monotonic()
            with self._lock:
                if not self._held:
                    self._sweeper = None
                    return
                idle = [(n, h) for n, h in self._held.items() if now - h.seen > self.idle_s]
            for number, held in idle:
                if time.monotonic() - held.seen > self.idle_s:  # not heard from meanwhile
                    self._end(number, held, f"its DAQ posted nothing for {self.idle_s:g} s")


def described(held: Held) -> dict[str, Any]:
    """What the server holds of an acquisition, as its DAQ is answered."""
    acq = held.acquisition
    return {
        "run": acq.run,
        "state": acq.state.value,
        "streams": {
            name: {**json.loads(s.spec.to_json()), **_counts(s)} for name, s in acq.streams.items()
        },
    }


def _counts(stream: Stream) -> dict[str, Any]:
    return {"blocks": stream.blocks, "samples": stream.samples, "sealed": stream.sealed}


def _block(stream: Stream, data: bytes) -> np.ndarray[Any, Any]:
    """The block a body holds for ``stream``: whole samples of its dtype and shape."""
    spec = stream.spec
    size = spec.dtype.itemsize * math.prod(spec.shape)
    if not data or len(data) % size:
        shape = f", each of shape {spec.shape}" if spec.shape else ""
        raise InvalidArgument(
            f"stream {stream.name!r} takes {spec.dtype.name} samples{shape}, {size} bytes each, "
            f"little-endian: {len(data)} bytes are not a whole number of them; check the "
            "block's dtype and shape"
        )
    return np.frombuffer(data, dtype=spec.dtype).reshape((-1, *spec.shape))


def write_blocks(
    held: Held, names: list[str], seqs: list[int], lengths: list[int] | None, body: bytes
) -> dict[str, Any]:
    """Write the body's blocks (one per stream named, numbered ``seqs``) all or none; blocks
    already written with these very bytes are acknowledged again, nothing written twice."""
    acq = held.acquisition
    if not names or len(names) != len(seqs) or len(set(names)) != len(names) or min(seqs) < 0:
        raise InvalidArgument(
            "name each stream once (stream=NAME) with its block's number (seq=K), in order"
        )
    if lengths is None:
        if len(names) > 1:
            raise InvalidArgument(
                "blocks of several streams in one body: give each one's bytes (length=N), in order"
            )
        lengths = [len(body)]
    if len(lengths) != len(names) or sum(lengths) != len(body) or min(lengths) < 0:
        raise InvalidArgument(
            f"length={lengths}: one length for each stream, adding up to the body's "
            f"{len(body)} bytes"
        )
    planned: list[tuple[Stream, int, np.ndarray[Any, Any], str]] = []
    at = 0
    for name, seq, length in zip(names, seqs, lengths):
        stream = acq.streams.get(name)
        if stream is None:
            raise NotFound(
                f"run {acq.run} has no stream {name!r}; declare it (POST .../streams) before "
                f"start (it has: {', '.join(acq.streams) or 'none'})"
            )
        part = body[at : at + length]
        at += length
        planned.append((stream, seq, _block(stream, part), hashlib.sha256(part).hexdigest()))
    again = []
    for stream, seq, _, digest in planned:
        if seq == stream.blocks:
            continue
        known = held.recent.get(stream.name, OrderedDict()).get(seq)
        if seq > stream.blocks:
            raise Conflict(
                f"stream {stream.name!r} of run {acq.run} expects block {stream.blocks}, not "
                f"{seq}: send block {stream.blocks} first; nothing was written"
            )
        if known != digest:
            raise Conflict(
                f"block {seq} of stream {stream.name!r} of run {acq.run} was written already"
                + (" with other bytes" if known else "")
                + f"; the stream expects block {stream.blocks}; nothing was written"
            )
        again.append(stream)
    if again and len(again) != len(planned):
        raise Conflict(
            "some of these blocks were written already and some not: send those not yet "
            "written on their own; nothing was written"
        )
    if not again:
        acq.write({stream: block for stream, _, block, _ in planned})
        for stream, seq, _, digest in planned:
            recent = held.recent.setdefault(stream.name, OrderedDict())
            recent[seq] = digest
            while len(recent) > _RECENT:
                recent.popitem(last=False)
    return {
        "run": acq.run,
        "again": bool(again),
        "blocks": [
            {"stream": stream.name, "seq": seq, **_counts(stream)} for stream, seq, _, _ in planned
        ],
    }


def _sse(event: str, data: dict[str, Any], ident: str | None = None) -> str:
    head = f"id: {ident}\n" if ident is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n"


def piece_event(piece: Piece) -> str:
    """A piece as one server-sent event: its values base64 little-endian float64, its cursor
    the event's id."""
    values = np.ascontiguousarray(piece.values, dtype="<f8")
    data = {
        "signal": piece.signal,
        "channel": piece.channel,
        "seq": piece.seq,
        "first": piece.first,
        "rate": piece.rate,
        "time": float(piece.time[0]) if piece.time.size else None,
        "samples": int(values.shape[0]) if values.ndim else 1,
        "shape": list(values.shape[1:]),
        "unit": piece.unit,
        "calibration": piece.calibration,
        "values": base64.b64encode(values.tobytes()).decode("ascii"),
    }
    return _sse("block", data, piece.cursor.to_text())


class _Following:
    """One follower: a thread reads the archive's follow() and hands events to the response,
    at most ``_AHEAD`` ahead; it stops at its next piece once the client has gone."""

    def __init__(self, pieces: Iterator[Piece], loop: asyncio.AbstractEventLoop) -> None:
        # (event, whether it took room) … then None: the thread is done
        self.queue: asyncio.Queue[tuple[str, bool] | None] = asyncio.Queue()
        self.room = threading.BoundedSemaphore(_AHEAD)
        self.stop = threading.Event()
        self._loop, self._pieces = loop, pieces
        self._thread = threading.Thread(target=self._run, name="labledger-follow", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _put(self, item: tuple[str, bool] | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
            self._loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def _run(self) -> None:
        last = None
        try:
            for piece in self._pieces:
                while not self.room.acquire(timeout=1.0):
                    if self.stop.is_set():
                        return
                if self.stop.is_set():
                    return
                last = piece.cursor.to_text()
                self._put((piece_event(piece), True))
            self._put((_sse("end", {"cursor": last}, last), False))
        except LabledgerError as exc:
            error = {"error": type(exc).__name__, "status": exc.status, "detail": first_line(exc)}
            self._put((_sse("error", error), False))
        except Exception as exc:  # told to the follower as the server's failure, in one line
            detail = f"the server failed to follow: {first_line(exc)}"
            error = {"error": "LabledgerError", "status": 500, "detail": detail}
            self._put((_sse("error", error), False))
        finally:
            self._put(None)
            close = getattr(self._pieces, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()


class Followers:
    """The followers a server holds (each a thread), at most ``most``."""

    def __init__(self, most: int) -> None:
        self.most, self.open = most, 0

    def response(self, pieces: Iterator[Piece], ends: float) -> StreamingResponse:
        if self.open >= self.most:
            raise Busy(
                f"this server follows as many live signals as it allows ({self.most}, "
                "max_followers); try again later"
            )
        return StreamingResponse(
            self._events(pieces, ends),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _events(self, pieces: Iterator[Piece], ends: float) -> AsyncIterator[str]:
        self.open += 1
        following = _Following(pieces, asyncio.get_running_loop())
        following.start()
        try:
            yield ": following\n\n"
            while time.monotonic() < ends:
                item: tuple[str, bool] | None = (": still here\n\n", False)
                with anyio.move_on_after(max(0.0, min(ends - time.monotonic(), _HEARTBEAT_S))):
                    item = await following.queue.get()
                if item is None:
                    return
                text, took = item
                if took:
                    following.room.release()
                yield text
        finally:
            following.stop.set()
            self.open -= 1


def _cursor(text: str | None, number: int) -> Cursor | None:
    if not text:
        return None
    cursor = Cursor.from_text(text)
    if cursor.run != number:
        raise InvalidArgument(f"this cursor is in run {cursor.run}, not run {number}")
    return cursor


def _no_nul(body: dict[str, Any]) -> None:
    """Refuse a NUL anywhere in a JSON body (a name, a structure, metadata): the catalog's
    PostgreSQL cannot hold one, and the run is recorded there when prepared."""

    def nul(value: Any) -> bool:
        if isinstance(value, str):
            return "\x00" in value
        if isinstance(value, dict):
            return any(nul(k) or nul(v) for k, v in value.items())
        return isinstance(value, list) and any(nul(v) for v in value)

    if nul(body):
        raise InvalidArgument("a NUL character in the request")


def _reason(body: dict[str, Any]) -> str:
    reason = body.get("reason")
    if set(body) - {"reason"} or not isinstance(reason, str) or not reason.strip():
        raise InvalidArgument('say why, as {"reason": "..."} (and nothing else)')
    return reason


def router(ctx: Context) -> APIRouter:
    writers = Writers(ctx.archive, ctx.limits.live_idle_s)
    router = APIRouter(prefix=API, on_shutdown=[writers.close])
    followers = Followers(ctx.limits.max_followers)

    def writer(who: Principal) -> None:
        if not who.can("write", DEFAULT_PROJECT):
            raise Forbidden(
                f"{who.name} may not write in project {DEFAULT_PROJECT!r}, where live runs are "
                "recorded: a writer's API key is needed"
            )

    # -- what the catalog says of live runs ---------------------------------------------------

    @router.get("/runs/states", tags=["live"])
    def states(
        who: Who, runs: Annotated[str, Query(description="Comma-separated run ids.")]
    ) -> dict[str, list[dict[str, Any]]]:
        """The states these live runs reached, in order, with when and why, by run id."""
        return {
            run_id: [record_to_json(s) for s in ctx.archive.catalog.states(run_id)]
            for run_id in ctx.visible_ids(who, runs)
        }

    @router.get("/runs/open", tags=["live"])
    def open_runs(who: Who) -> list[dict[str, Any]]:
        """The live runs not yet saved whole, newest first (``la.runs.live()``)."""
        return [record_to_json(r) for r in ctx.archive.catalog.open_runs(ctx.readable(who))]

    # -- a DAQ writing a live run -------------------------------------------------------------

    @router.post("/acquisitions", tags=["live"])
    def create(who: Who, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        """Make a live run (``run``, ``structure``, ``metadata``, ``waive``, ``lease``; a writer of
        project ``default``): the answer holds the writer token every later call on the run
        carries as ``X-Writer-Token``."""
        writer(who)
        held = writers.create(who, body)
        ctx.access.record(who.name, "live.acquire", str(held.acquisition.run), {})
        return {**described(held), "token": held.token}

    def held_for(who: Who, number: int, token: str | None) -> Held:
        writer(who)
        return writers.held(number, token)

    @router.get("/acquisitions/{number}", tags=["live"])
    def acquisition(who: Who, number: Number, token: Token = None) -> dict[str, Any]:
        """The run's state and each stream's blocks and samples written (a DAQ unsure what
        was acknowledged asks here); being asked counts as the DAQ being heard from."""
        held = held_for(who, number, token)
        with held.lock:
            return described(held)

    @router.post("/acquisitions/{number}/streams", tags=["live"])
    def declare(
        who: Who, number: Number, body: Annotated[dict[str, Any], Body()], token: Token = None
    ) -> dict[str, Any]:
        """Declare a stream before start: ``name``, ``dtype`` (numpy's name: ``int16``,
        ``float32``...), ``rate`` (Hz), ``shape`` of one sample (``[]``: one number)."""
        held = held_for(who, number, token)
        _no_nul(body)
        unknown = sorted(set(body) - set(_STREAM_FIELDS))
        if unknown:
            raise InvalidArgument(
                f"stream: unknown field {unknown[0]!r}; give {', '.join(_STREAM_FIELDS)}"
            )
        shape = body.get("shape", [])
        if not isinstance(shape, list):
            raise InvalidArgument(f"shape={shape!r}: a list of sizes, [] for one number")
        name, dtype, rate = body.get("name"), body.get("dtype"), body.get("rate")
        if not isinstance(dtype, str):
            raise InvalidArgument(f"dtype={dtype!r}: numpy's name of a type, e.g. 'int16'")
        with held.lock:
            stream = held.acquisition.stream(
                name,  # type: ignore[arg-type]  # checked by the acquisition
                dtype=dtype,
                rate=rate,  # type: ignore[arg-type]
                shape=tuple(shape),
            )
            return {**json.loads(stream.spec.to_json()), **_counts(stream)}

    def move(who: Principal, number: int, token: str | None, action: str, reason: str) -> Any:
        held = held_for(who, number, token)
        with held.lock:
            acq = held.acquisition
            if action == "abort":
                acq.abort(reason)
            elif action == "fail":
                acq.fail(reason)
            else:
                getattr(acq, action)()
            return described(held)

    @router.post("/acquisitions/{number}/prepare", tags=["live"])
    def prepare(who: Who, number: Number, token: Token = None) -> dict[str, Any]:
        """Fix the run's streams (``prepared``): the run is in the catalog from now on."""
        return move(who, number, token, "prepare", "")

    @router.post("/acquisitions/{number}/start", tags=["live"])
    def start(who: Who, number: Number, token: Token = None) -> dict[str, Any]:
        """Blocks may flow (``started``); prepares the run first if need be."""
        return move(who, number, token, "start", "")

    @router.post("/acquisitions/{number}/stop", tags=["live"])
    def stop(who: Who, number: Number, token: Token = None) -> dict[str, Any]:
        """Seal every stream, then ``stopped``."""
        return move(who, number, token, "stop", "")

    @router.post("/acquisitions/{number}/close", tags=["live"])
    def close(who: Who, number: Number, token: Token = None) -> dict[str, Any]:
        """Stop if need be, then ``closed`` (a run never started is aborted instead)."""
        return move(who, number, token, "close", "")

    @router.post("/acquisitions/{number}/abort", tags=["live"])
    def abort(
        who: Who, number: Number, body: Annotated[dict[str, Any], Body()], token: Token = None
    ) -> dict[str, Any]:
        """End the run ``aborted``, with ``{"reason": ...}``; every stream sealed so."""
        return move(who, number, token, "abort", _reason(body))

    @router.post("/acquisitions/{number}/fail", tags=["live"])
    def fail(
        who: Who, number: Number, body: Annotated[dict[str, Any], Body()], token: Token = None
    ) -> dict[str, Any]:
        """End the run ``failed`` (the DAQ or its hardware failed), with ``{"reason": ...}``."""
        return move(who, number, token, "fail", _reason(body))

    @router.post("/acquisitions/{number}/blocks", tags=["live"])
    async def blocks(
        who: Who,
        request: Request,
        number: Number,
        stream: Annotated[list[str], Query(description="The stream of each block, in order.")],
        seq: Annotated[list[int], Query(description="Each block's number in its stream, from 0.")],
        length: Annotated[
            list[int] | None,
            Query(description="Each block's bytes, in order (needed for more than one)."),
        ] = None,
        token: Token = None,
    ) -> dict[str, Any]:
        """Blocks as the body, raw little-endian bytes (``application/octet-stream``), one
        per stream named, written all or none; a block sent again with the same bytes (its
        answer was lost) is acknowledged again (``"again": true``), not written twice."""
        held = await anyio.to_thread.run_sync(held_for, who, number, token)
        body = await request.body()

        def write() -> dict[str, Any]:
            with held.lock:
                return write_blocks(held, stream, seq, length, body)

        return await anyio.to_thread.run_sync(write)

    # -- following a live signal --------------------------------------------------------------

    @router.get(
        "/runs/{number}/follow/{name:path}", tags=["live"], response_class=StreamingResponse
    )
    def follow(
        who: Who,
        number: Number,
        name: str,
        cursor: Annotated[str | None, Query(description="Resume after this cursor.")] = None,
        last_event_id: Annotated[str | None, Header()] = None,
        calibration: str | None = None,
        timeout: Annotated[float | None, Query(gt=0, le=_FOLLOW_MOST_S)] = None,
    ) -> StreamingResponse:
        """Signal (or stream) ``name`` of a live run as server-sent events, calibrated as
        ``run.follow(name)``: a ``block`` event for each block (its cursor the event's id:
        ``Last-Event-ID`` or ``cursor`` resume after it), then ``end`` once its stream is
        sealed, or ``error`` (``{"error", "status", "detail"}``)."""
        run: Run = ctx.run_of(who, number)
        start = _cursor(cursor or last_event_id, number)
        pieces = ctx.archive._follow(run, name, cursor=start, calibration=calibration)
        return followers.response(pieces, time.monotonic() + (timeout or _FOLLOW_MOST_S))

    return router
