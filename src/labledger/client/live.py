"""Live runs through a server: a DAQ in Python writing a run (:class:`RemoteAcquisition`, the
calls of :class:`labledger.live.Acquisition`), and following a live signal (:func:`follow`,
the server's events made :class:`~labledger.runs.Piece` s again). Loaded when first used: it
needs the live layer's words (states, cursors, the checks of a block), which load redis-py.

>>> from labledger.access import Access
>>> from labledger.server import create_app, serving
>>> access = Access(la.catalog)
>>> access.add_user("daq", project="default", role="writer", by="admin")
>>> key = access.create_key("daq", scopes=["read", "write"])
>>> with serving(create_app(la)) as url:
...     remote = ll.connect(url, api_key=key)
...     with remote.acquisition(run=1271, structure="helicon-shot") as acq:
...         ai11 = acq.stream("PXI M6251/ai11", dtype="float32", rate=1e4)
...         acq.start()
...         ai11.write(np.array([1.0, 2.0], dtype="float32"))
...     pieces = list(remote.runs[1271].follow("Langmuir_I"))  # ai11 is Langmuir_I from 1240
...     remote.close()
0
>>> [(p.seq, p.values.tolist(), p.time.tolist(), p.unit, p.calibration) for p in pieces]
[(0, [-0.01, -0.02], [0.0, 0.0001], 'A', 'langmuir_i@2')]
>>> from labledger.live import discard
>>> _ = discard(la.live.client, la.live.keys(1271))  # no saver here: Redis forgets it
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, Protocol

import httpx
import numpy as np

from labledger.errors import InvalidArgument, NotFound, Unreachable, named
from labledger.live import ChannelSpec, Cursor, State
from labledger.live.writer import early_end
from labledger.runs import Piece, Run
from labledger.wire import API

TOKEN_HEADER = "X-Writer-Token"  # as the server names it (labledger.server.live)
_TRIES = 3  # a request that got no answer is sent again (the server knows a block sent twice)
_RECONNECTS = 3  # a follower's stream cut short is resumed from its last cursor


class Http(Protocol):
    """What these ask of the client's connection (``labledger.client.remote._Http``)."""

    url: str
    client: httpx.Client

    def post(self, path: str, **kwargs: Any) -> httpx.Response: ...

    def raise_for(self, response: httpx.Response) -> None: ...


class RemoteStream:
    """One stream of a :class:`RemoteAcquisition` (as :class:`labledger.live.Stream`)."""

    def __init__(self, acquisition: RemoteAcquisition, spec: ChannelSpec) -> None:
        self.acquisition, self.spec = acquisition, spec
        self.blocks = 0
        self.samples = 0
        self.sealed = False

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:
        return f"<Stream {self.name!r} of run {self.acquisition.run}: {self.blocks} blocks>"

    def write(self, block: np.ndarray[Any, Any]) -> int:
        """Add a block (shape ``(n, *shape)``, the declared dtype); its sequence number."""
        return self.acquisition.write({self: block})[self.name]


class RemoteAcquisition:
    """A run written live through a server: the calls of :class:`labledger.live.Acquisition`
    (``stream``, ``start``, ``write``, ``stop``, ``close``, ``abort``, ``fail``; a ``with``
    block closes it, an exception leaving it aborts it), each a request. A block is checked
    here as locally (dtype, shape), then posted as raw bytes with its number: sent again when
    no answer came, it is acknowledged once."""

    def __init__(
        self,
        http: Http,
        *,
        run: int,
        structure: str,
        metadata: Mapping[str, Any] | None = None,
        waive: Mapping[str, str] | None = None,
        lease: float = 30.0,
    ) -> None:
        self._http = http
        body: dict[str, Any] = {
            "run": run,
            "structure": structure,
            "metadata": dict(metadata or {}),
        }
        if waive is not None:
            body["waive"] = dict(waive)
        try:
            json.dumps(body, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(
                f"run {run}: metadata must be JSON (text, numbers, lists, mappings): {exc}"
            ) from None
        answer = http.post("/acquisitions", json={**body, "lease": lease}).json()
        self.run, self.structure = int(answer["run"]), structure
        self.metadata = dict(metadata or {})
        self._token = str(answer["token"])
        self.streams: dict[str, RemoteStream] = {}
        self._update(answer)

    @property
    def state(self) -> State:
        return self._state

    def __repr__(self) -> str:
        return f"<RemoteAcquisition of run {self.run}: {self.state}, {len(self.streams)} streams>"

    def _post(self, action: str, *, again: bool = False, **kwargs: Any) -> dict[str, Any]:
        """The server's answer to ``action``; sent ``again`` when no answer came (blocks and
        close, which the server knows when it sees them twice)."""
        headers = {TOKEN_HEADER: self._token, **kwargs.pop("headers", {})}
        path = f"/acquisitions/{self.run}{action}"
        for attempt in range(_TRIES if again else 1):
            try:
                found: dict[str, Any] = self._http.post(path, headers=headers, **kwargs).json()
                return found
            except Unreachable:  # no answer: the same request again is recognised
                if not again or attempt == _TRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _update(self, answer: Mapping[str, Any]) -> None:
        self._state = State(answer["state"])
        for name, said in answer.get("streams", {}).items():
            stream = self.streams.get(name)
            if stream is not None:
                stream.blocks, stream.samples = int(said["blocks"]), int(said["samples"])
                stream.sealed = bool(said["sealed"])

    def stream(
        self, name: str, *, dtype: object, rate: float, shape: tuple[int, ...] = ()
    ) -> RemoteStream:
        """Declare a channel (before :meth:`start`): dtype, rate (Hz), shape of one sample."""
        spec = ChannelSpec(name, index=len(self.streams), dtype=dtype, rate=rate, shape=shape)
        body = {"name": name, "dtype": spec.dtype.str, "rate": spec.rate, "shape": list(shape)}
        said = self._post("/streams", json=body)
        self.streams[name] = RemoteStream(self, ChannelSpec.from_json(json.dumps(said)))
        return self.streams[name]

    def prepare(self) -> None:
        """Fix the run's channels (``prepared``)."""
        self._update(self._post("/prepare"))

    def start(self) -> None:
        """Blocks may flow (``started``); prepares the run first if it is not yet."""
        self._update(self._post("/start"))

    def write(self, blocks: Mapping[Any, np.ndarray[Any, Any]]) -> dict[str, int]:
        """Blocks of one or several streams (by name or stream) in one request, all written
        or none; each stream's sequence number."""
        planned: list[tuple[RemoteStream, bytes]] = []
        for key, block in blocks.items():
            stream = key if isinstance(key, RemoteStream) else self.streams.get(key)
            if stream is None or stream.acquisition is not self:
                raise NotFound(
                    f"run {self.run} has no stream {key!r}; declare it with acq.stream() "
                    f"before acq.start() (it has: {', '.join(self.streams) or 'none'})"
                )
            if any(stream is s for s, _ in planned):
                raise InvalidArgument(f"stream {stream.name!r} is given twice in one write")
            planned.append((stream, stream.spec.encode(block)))
        params: dict[str, Any] = {
            "stream": [s.name for s, _ in planned],
            "seq": [s.blocks for s, _ in planned],
        }
        if len(planned) > 1:
            params["length"] = [len(data) for _, data in planned]
        said = self._post(
            "/blocks",
            again=True,
            params=params,
            content=b"".join(data for _, data in planned),
            headers={"Content-Type": "application/octet-stream"},
        )
        numbers = {}
        for stream, entry in zip((s for s, _ in planned), said["blocks"]):
            numbers[stream.name] = int(entry["seq"])
            stream.blocks, stream.samples = int(entry["blocks"]), int(entry["samples"])
        return numbers

    def stop(self) -> None:
        """Seal every stream, then ``stopped``."""
        self._update(self._post("/stop"))

    def close(self) -> None:
        """Stop (if started) and ``closed``; a run never started is aborted instead."""
        if not self.state.final:
            self._update(self._post("/close", again=True))

    def abort(self, reason: str, *, state: State = State.ABORTED) -> None:
        """End the run ``aborted`` (or ``failed``) with a reason."""
        reason = early_end(self.run, state, reason)
        if not self.state.final:
            action = "/abort" if state is State.ABORTED else "/fail"
            self._update(self._post(action, json={"reason": reason}))

    def fail(self, reason: str) -> None:
        """End the run ``failed`` (the DAQ or its hardware failed)."""
        self.abort(reason, state=State.FAILED)

    def __enter__(self) -> RemoteAcquisition:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
            return
        # the server gone: it ends the run itself once the DAQ is silent
        with contextlib.suppress(Exception):
            self.abort(f"{type(exc).__name__}: {exc}"[:500])


def follow(
    http: Http, run: Run, name: str, *, cursor: Cursor | None, calibration: str | None
) -> Iterator[Piece]:
    """The pieces of signal ``name`` of ``run`` as the server follows it (server-sent
    events), until its stream's seal; a stream cut short is resumed from the last cursor."""
    last = cursor.to_text() if cursor is not None else None
    cuts = 0
    while True:
        params = {"calibration": calibration} if calibration else {}
        headers = {"Last-Event-ID": last} if last else {}
        request = http.client.build_request(
            "GET",
            f"{API}/runs/{run.number}/follow/{name}",
            params=params,
            headers=headers,
            timeout=httpx.Timeout(None, connect=5.0),
        )
        try:
            response = http.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise Unreachable(f"server {http.url} did not answer: {exc}") from None
        try:
            if response.status_code >= 400:
                response.read()
                http.raise_for(response)
            for kind, ident, data in _events(response.iter_lines()):
                if kind == "block":
                    last, cuts = ident, 0
                    yield _piece(data, ident)
                elif kind == "end":
                    return
                elif kind == "error":
                    error = named(data.get("error"), int(data.get("status", 500)))
                    raise error(f"{data.get('detail')} (server {http.url})")
            why = "it ended the stream before the seal"
        except httpx.TransportError as exc:
            why = f"the stream broke ({exc})"
        finally:
            response.close()
        cuts += 1  # resumed from the last cursor, a few times in a row at most
        if cuts > _RECONNECTS:
            raise Unreachable(f"server {http.url} stopped following {name}: {why}")


def _events(lines: Iterator[str]) -> Iterator[tuple[str, str | None, dict[str, Any]]]:
    """Server-sent events as (event, id, data)."""
    kind: str = "message"
    ident: str | None = None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield kind, ident, json.loads("\n".join(data))
            kind, ident, data = "message", None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                kind = value
            elif field == "id":
                ident = value
            elif field == "data":
                data.append(value)


def _piece(data: Mapping[str, Any], ident: str | None) -> Piece:
    """A piece as the server sent it: its times made again as the server makes them."""
    n, first, rate = int(data["samples"]), int(data["first"]), float(data["rate"])
    raw = bytearray(base64.b64decode(data["values"]))
    values = np.frombuffer(raw, dtype="<f8").reshape((n, *data["shape"]))
    at = np.arange(first, first + n, dtype=np.float64) / rate
    return Piece(
        data["signal"],
        data["channel"],
        int(data["seq"]),
        values,
        at,
        data["unit"],
        data["calibration"],
        Cursor.from_text(ident or ""),
        first,
        rate,
    )
