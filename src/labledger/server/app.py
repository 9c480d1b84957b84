"""The FastAPI application over one archive: the catalog's runs and the machine's logs as JSON,
stored objects as they are stored (byte ranges, no decoding), channel slices and signal
previews as binary arrays. OpenAPI at ``/docs``.

Every route but ``/api/v1/health`` needs a principal (:mod:`labledger.access`); a run is
answered only to those who may read its project, and one they may not read is "not found", as
one that does not exist.
"""

import json
import posixpath
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
from fastapi import Depends, FastAPI, Form, Header, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel
from pydantic import Field as PydanticField

from labledger.access import Access, ApiKeys, Principal
from labledger.archive import Archive
from labledger.catalog import MAX_RUN_NUMBER
from labledger.catalog import products as product_queries
from labledger.errors import (
    BadInput,
    CatalogUnavailable,
    Conflict,
    Forbidden,
    InvalidArgument,
    LabledgerError,
    NotFound,
    StoreUnavailable,
    TooLarge,
    Unauthorized,
)
from labledger.ids import DEFAULT_PROJECT
from labledger.lineage.canonical import decode
from labledger.lineage.products import row_of
from labledger.lineage.step import find
from labledger.notifications import watch
from labledger.quality import Flag, Flags
from labledger.runs import Run, parse_when
from labledger.wire import compress, encode_array, negotiate, row_to_json

API = "/api/v1"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
_STATUS = [(Unauthorized, 401), (Forbidden, 403), (NotFound, 404), (Conflict, 409),
           (TooLarge, 413), (InvalidArgument, 400), (BadInput, 422), (CatalogUnavailable, 503),
           (StoreUnavailable, 503)]  # fmt: skip
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_RUN_KEY = re.compile(r"^runs/([0-9a-f-]{36})/")
_PRODUCT_KEY = re.compile(r"^products/([0-9a-f-]{36})/")
_EVENTS_KEY = re.compile(r"^events/level=\d/run=(\d{1,19})/[0-9a-f-]{36}\.parquet$")
Number = Annotated[int, Path(ge=0, le=MAX_RUN_NUMBER, description="A run number.")]


class ComputeRequest(BaseModel):
    """A step to run on the server: its name, its runs or input product, its parameters (as
    :func:`labledger.lineage.canonical.encode` writes them)."""

    step: str = PydanticField(max_length=500)
    # one run number (one product), or a list of them (a set)
    runs: (
        Annotated[int, PydanticField(ge=0, le=MAX_RUN_NUMBER)]
        | list[Annotated[int, PydanticField(ge=0, le=MAX_RUN_NUMBER)]]
        | None
    ) = PydanticField(default=None)
    inputs: str | None = PydanticField(default=None, max_length=64)
    params: dict[str, Any] | None = None


class FlagRequest(BaseModel):
    """A flag to add: on ``runs`` or one ``run``, whole or from ``start`` to ``stop`` s."""

    runs: list[Annotated[int, PydanticField(ge=0, le=MAX_RUN_NUMBER)]] | None = PydanticField(
        default=None, max_length=100_000
    )
    run: Annotated[int, PydanticField(ge=0, le=MAX_RUN_NUMBER)] | None = None
    start: float | None = None
    stop: float | None = None
    subsystem: str | None = PydanticField(default=None, max_length=64)
    severity: str | None = PydanticField(default=None, max_length=16)
    reason: str | None = PydanticField(default=None, max_length=10_000)
    supersedes: Annotated[int, PydanticField(ge=1, le=2**62)] | None = None


class WithdrawRequest(BaseModel):
    reason: str = PydanticField(max_length=10_000)


@dataclass(frozen=True)
class Limits:
    """What one request may ask for."""

    max_response_bytes: int = 512 << 20
    max_points: int = 1_000_000
    max_page: int = 1000
    max_upload_bytes: int = 64 << 30


def create_app(
    archive: Archive,
    *,
    public: bool = False,
    limits: Limits | None = None,
    authenticate: Callable[[Mapping[str, str]], Principal] | None = None,
) -> FastAPI:
    """The ASGI app serving ``archive``. ``public``: anonymous requests may read.
    ``authenticate`` maps a request's headers to a :class:`~labledger.access.Principal` (or
    raises :class:`~labledger.errors.Unauthorized`): API keys unless another front (a
    JupyterHub token, say) is given."""
    limits = limits or Limits()
    access = Access(archive.catalog)
    app = FastAPI(
        title="labledger",
        summary="Runs, channels, signals and their catalog, read remotely",
        version="1",
    )

    authenticate = authenticate or ApiKeys(access, public=public)

    def principal(request: Request) -> Principal:
        return authenticate(request.headers)

    Who = Annotated[Principal, Depends(principal)]

    @app.exception_handler(LabledgerError)
    def labledger_error(_request: Request, exc: LabledgerError) -> JSONResponse:
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 400)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        body = {"detail": str(exc), "error": type(exc).__name__}  # the client raises the same
        return JSONResponse(body, status_code=status, headers=headers)

    def readable(who: Principal) -> set[str] | None:
        projects = who.projects("read")
        if projects is not None and not projects:
            raise Forbidden(f"{who.name} may not read any project of this archive")
        return projects

    def visible(who: Principal, row: Any, what: str) -> Any:
        if row is None or not who.can("read", row.project):
            raise NotFound(f"{what} does not exist (or is not yours to read)")
        return row

    def run_of(who: Principal, number: int) -> Run:
        row = visible(who, archive.catalog.by_number(number), f"run {number}")
        return Run(archive, row)

    @app.get(f"{API}/health", tags=["service"])
    def health() -> dict[str, str]:
        """Whether the service is up (no key needed)."""
        return {"status": "ok"}

    @app.get(f"{API}/info", tags=["service"])
    def info(who: Who) -> dict[str, Any]:
        """Who you are here, and what you may read."""
        projects = who.projects("read")
        return {"user": who.user, "scopes": sorted(who.scopes), "public": public,
                "projects": None if projects is None else sorted(projects),
                "limits": limits.__dict__}  # fmt: skip

    # -- runs --------------------------------------------------------------------------------

    @app.get(f"{API}/runs", tags=["runs"])
    def runs(
        who: Who,
        after: Annotated[
            int | None, Query(ge=-1, le=MAX_RUN_NUMBER, description="Cursor: the last number seen.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 100,
    ) -> dict[str, Any]:
        """Closed runs by number, a page at a time: pass ``next`` as ``after`` for the next."""
        limit = min(limit, limits.max_page)
        rows = archive.catalog.page(after, limit, readable(who))
        following = rows[-1].number if len(rows) == limit else None
        return {"runs": [row_to_json(r) for r in rows], "next": following}

    @app.get(f"{API}/runs/search", tags=["runs"])
    def search(
        who: Who,
        since: str | None = None,
        until: str | None = None,
        source: str | None = None,
        state: str | None = "closed",
        where: Annotated[str | None, Query(description="JSON object: key -> value(s)")] = None,
        limit: Annotated[int | None, Query(ge=0, le=1_000_000)] = None,
        quality: str | None = None,
    ) -> list[dict[str, Any]]:
        """Runs matching every condition, by number (as ``la.runs.search``)."""
        conditions = _json_object(where, "where")
        rows = archive.catalog.search(
            since=parse_when(since, "since"), until=parse_when(until, "until"), source=source,
            state=state or None, where=conditions, limit=limit, quality=quality,
            projects=readable(who),
        )  # fmt: skip
        return [row_to_json(r) for r in rows]

    @app.get(f"{API}/runs/newest", tags=["runs"])
    def newest(
        who: Who, offset: Annotated[int, Query(ge=0, le=MAX_RUN_NUMBER)] = 0
    ) -> dict[str, Any] | None:
        """The newest closed run, or the one ``offset`` places before it (null: none)."""
        row = archive.catalog.newest(offset, readable(who))
        return row_to_json(row) if row is not None else None

    @app.get(f"{API}/runs/last", tags=["runs"])
    def last(who: Who, n: Annotated[int, Query(ge=0, le=100_000)] = 10) -> list[dict[str, Any]]:
        """The closed runs with the ``n`` highest numbers, by number."""
        rows = archive.catalog.last(min(n, limits.max_page), readable(who))
        return [row_to_json(r) for r in rows]

    @app.get(f"{API}/runs/count", tags=["runs"])
    def count(who: Who, state: str | None = "closed") -> int:
        return archive.catalog.count(state or None, readable(who))

    @app.get(f"{API}/runs/by-number/{{number}}", tags=["runs"])
    def by_number(who: Who, number: Number) -> dict[str, Any]:
        return row_to_json(visible(who, archive.catalog.by_number(number), f"run {number}"))

    @app.get(f"{API}/runs/by-id/{{run_id}}", tags=["runs"])
    def by_id(who: Who, run_id: str) -> dict[str, Any]:
        return row_to_json(visible(who, archive.catalog.by_id(run_id), f"run {run_id!r}"))

    @app.get(f"{API}/runs/by-numbers", tags=["runs"])
    def by_numbers(
        who: Who, numbers: Annotated[str, Query(description="Comma-separated run numbers.")]
    ) -> list[dict[str, Any]]:
        readable(who)
        wanted = _integers(numbers, "numbers", limits.max_page * 10)
        rows = archive.catalog.by_numbers(wanted)
        return [row_to_json(r) for r in rows if who.can("read", r.project)]

    @app.get(f"{API}/runs/sources", tags=["runs"])
    def sources(
        who: Who, runs: Annotated[str, Query(description="Comma-separated run ids.")]
    ) -> list[dict[str, Any]]:
        """The raw-file records of these runs."""
        ids = _visible_ids(who, runs)
        return [row_to_json(r) for r in archive.catalog.sources_of(ids)]

    @app.get(f"{API}/runs/channels", tags=["runs"])
    def channels(
        who: Who, runs: Annotated[str, Query(description="Comma-separated run ids.")]
    ) -> dict[str, list[dict[str, Any]]]:
        """The channel records of these runs, by run id."""
        found = archive.catalog.channels_of(_visible_ids(who, runs))
        return {run_id: [row_to_json(r) for r in rows] for run_id, rows in found.items()}

    def _visible_ids(who: Principal, text: str) -> list[str]:
        readable(who)
        ids = [i for i in text.split(",") if i]
        if not ids or len(ids) > limits.max_page:
            raise InvalidArgument(f"runs: 1 to {limits.max_page} comma-separated run ids")
        rows = [archive.catalog.by_id(i) for i in ids] if len(ids) < 4 else None
        if rows is None:
            allowed = who.projects("read")
            found = {r.id: r for r in archive.catalog.search(state=None, projects=allowed)}
            rows = [found.get(i) for i in ids]
        return [r.id for r in rows if r is not None and who.can("read", r.project)]

    # -- the machine's logs ------------------------------------------------------------------

    @app.get(f"{API}/notifications", tags=["service"], response_class=StreamingResponse)
    def notifications(
        who: Who,
        kinds: Annotated[str, Query(description="Comma-separated: run, flag, product.")] = (
            "run,flag,product"
        ),
        timeout: Annotated[float | None, Query(gt=0, le=86_400)] = None,
    ) -> StreamingResponse:
        """Server-sent events from now on: a run closed, a flag added or withdrawn, a product
        made (each a JSON ``data:`` line), about the runs you may read; a comment line every
        few seconds keeps the connection open."""
        projects = readable(who)
        events = watch(
            archive.catalog, kinds=[k.strip() for k in kinds.split(",") if k.strip()],
            readable=lambda p: projects is None or p in projects, timeout=timeout,
        )  # fmt: skip

        def stream() -> Iterator[str]:
            yield ": labledger notifications\n\n"
            for event in events:
                yield f"event: {event['kind']}\ndata: {json.dumps(event)}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})  # fmt: skip

    # -- products and lineage ----------------------------------------------------------------

    def product_projects(row: Any) -> set[str]:
        """The projects of the runs a product was computed over (a set: over its parts)."""
        numbers = {row.run_number} if row.run_number is not None else set()
        if row.kind == "set":
            inputs = product_queries.inputs_of(archive.catalog, [row.id])[row.id]
            numbers |= {i.run_number for i in inputs if i.run_number is not None}
        return {r.project for r in archive.catalog.by_numbers(sorted(numbers))}

    def product_of(who: Principal, ref: str) -> Any:
        readable(who)
        try:
            row = row_of(archive, ref)
        except NotFound:
            row = None
        projects = product_projects(row) if row is not None else set()
        if row is None or not projects or not all(who.can("read", p) for p in projects):
            raise NotFound(f"product {ref!r} does not exist (or is not yours to read)")
        return row

    @app.get(f"{API}/products/{{ref}}", tags=["products"])
    def product(who: Who, ref: str) -> dict[str, Any]:
        """A product's record, its inputs and, for a set, its parts' records."""
        row = product_of(who, ref)
        inputs = product_queries.inputs_of(archive.catalog, [row.id])[row.id]
        parts = [i.ref for i in inputs if i.kind == "product"] if row.kind == "set" else []
        found = product_queries.by_ids(archive.catalog, parts)
        return {"product": row_to_json(row), "inputs": [row_to_json(i) for i in inputs],
                "parts": [row_to_json(found[p]) for p in parts if p in found]}  # fmt: skip

    @app.get(f"{API}/lineage/{{ref}}", tags=["products"])
    def lineage(
        who: Who,
        ref: str,
        direction: Annotated[str, Query(pattern="^(up|down)$")] = "up",
        depth: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    ) -> dict[str, Any]:
        """What a product came from (up), or what a product or run fed (down)."""
        if direction == "down" and ref.isdigit():
            root: Any = run_of(who, int(ref)).id if int(ref) <= MAX_RUN_NUMBER else ref
        elif direction == "down" and archive.catalog.by_id(ref) is not None:
            root = visible(who, archive.catalog.by_id(ref), f"run {ref!r}").id
        else:
            root = product_of(who, ref).id
        graph = archive.lineage(root, direction=direction, depth=depth).to_dict()
        allowed = readable(who)
        if allowed is not None:  # runs of projects the caller may not read: named, not shown
            numbers = [n["number"] for n in graph["nodes"] if n["kind"] == "run"]
            projects = {r.number: r.project for r in archive.catalog.by_numbers(numbers)}
            for node in graph["nodes"]:
                if node["kind"] == "run" and projects.get(node["number"]) not in allowed:
                    node.update(label="a run you may not read", number=None)
        return graph

    @app.post(f"{API}/compute", tags=["products"])
    def compute(who: Who, request: ComputeRequest) -> dict[str, Any]:
        """Run a step the server can import (``module:function``) over runs or the parts of
        a product, next to the data; a writer of every project involved."""
        step = find(request.step)
        if (request.runs is None) == (request.inputs is None):
            raise InvalidArgument("give the step runs or inputs (one of them)")
        if request.runs is not None:
            numbers = [request.runs] if isinstance(request.runs, int) else request.runs
            if len(numbers) > limits.max_page * 100:
                raise TooLarge(f"{len(numbers)} runs; at most {limits.max_page * 100} a call")
            runs = archive.catalog.by_numbers(numbers)
            missing = sorted(set(numbers) - {r.number for r in runs})
            if missing:
                raise NotFound(f"run {missing[0]} does not exist")
            projects = {r.project for r in runs}
            target: dict[str, Any] = {"runs": request.runs}
        else:
            parent = product_of(who, str(request.inputs))
            projects = product_projects(parent)
            target = {"inputs": archive.products[parent.id]}
        for project in sorted(projects):
            if not who.can("write", project):
                raise Forbidden(f"{who.name} may not compute in project {project!r}")
        params = decode(request.params or {})
        if not isinstance(params, dict):
            raise InvalidArgument("params: a JSON object of the step's parameters")
        made = archive.compute(step, **target, **params)
        access.record(who.name, "compute", made.id, {"step": step.name, **request.model_dump()})
        return {"product": row_to_json(made._row), "reused": made.reused}

    @app.get(f"{API}/events", tags=["products"], response_class=Response)
    def events(
        who: Who,
        level: Annotated[int, Query(ge=0, le=9)],
        runs: Annotated[str | None, Query(description="Comma-separated run numbers.")] = None,
        stream: Annotated[str | None, Query(max_length=200)] = None,
        with_parent: Annotated[
            str | None, Query(description="Comma-separated ancestor levels to join.")
        ] = None,
        count: bool = False,
    ) -> Response:
        """The current events of a level (of runs you may read), joined to their ancestors'
        columns, as an Arrow IPC stream (or, with ``count``, their number as JSON)."""
        allowed = readable(who)
        numbers = None if runs is None else _integers(runs, "runs", limits.max_page * 100)
        if allowed is not None:  # only the runs of the caller's projects
            mine = {r.number for r in archive.catalog.search(state=None, projects=allowed)}
            numbers = sorted(mine if numbers is None else mine & set(numbers))
        query = archive.events(level, runs=numbers, stream=stream)
        for ancestor in _integers(with_parent, "with_parent", 9) if with_parent else []:
            query = query.with_parent(ancestor)
        if count:
            return JSONResponse(query.count())
        table = query.to_arrow()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return Response(sink.getvalue().to_pybytes(), media_type=ARROW_STREAM)

    # -- data quality --------------------------------------------------------------------------

    def flags_for(who: Principal) -> Flags:
        return Flags(archive.catalog, by=f"{who.name} (through the server)")

    def flag_readable(who: Principal, flag: Flag) -> bool:
        projects = {r.project for r in archive.catalog.by_numbers(flag.runs)}
        return bool(projects) and all(who.can("read", p) for p in projects)

    def check_writable(who: Principal, numbers: list[int]) -> None:
        rows = archive.catalog.by_numbers(numbers)
        for row in rows:
            if not who.can("read", row.project):
                raise NotFound(f"run {row.number} does not exist (or is not yours to read)")
        for project in sorted({r.project for r in rows}):
            if not who.can("write", project):
                raise Forbidden(f"{who.name} may not flag runs of project {project!r}")

    @app.get(f"{API}/flags", tags=["quality"])
    def flags(
        who: Who,
        run: Annotated[int | None, Query(ge=0, le=MAX_RUN_NUMBER)] = None,
        subsystem: Annotated[str | None, Query(max_length=64)] = None,
        include_inactive: bool = False,
    ) -> list[dict[str, Any]]:
        """The active flags (with ``include_inactive``, the whole history), of a run or a
        subsystem, on runs you may read."""
        readable(who)
        if run is not None:
            run_of(who, run)
        found = flags_for(who).list(run=run, subsystem=subsystem, include_inactive=include_inactive)
        return [f.to_dict() for f in found if flag_readable(who, f)]

    @app.get(f"{API}/flags/active", tags=["quality"])
    def active_flags(
        who: Who, runs: Annotated[str, Query(description="Comma-separated run numbers.")]
    ) -> dict[str, list[dict[str, Any]]]:
        """The active flags on each run, by run number."""
        readable(who)
        numbers = _integers(runs, "runs", limits.max_page * 10)
        visible_runs = {r.number for r in archive.catalog.by_numbers(numbers)
                        if who.can("read", r.project)}  # fmt: skip
        found = flags_for(who).active(sorted(visible_runs)) if visible_runs else {}
        return {str(n): [f.to_dict() for f in found.get(n, []) if flag_readable(who, f)]
                for n in numbers if n in visible_runs}  # fmt: skip

    @app.get(f"{API}/flags/version", tags=["quality"])
    def flags_version(who: Who) -> int:
        readable(who)
        return flags_for(who).version

    @app.get(f"{API}/flags/{{flag_id}}", tags=["quality"])
    def flag(who: Who, flag_id: Annotated[int, Path(ge=1, le=2**62)]) -> dict[str, Any]:
        readable(who)
        found = flags_for(who)[flag_id]
        if not flag_readable(who, found):
            raise NotFound(f"there is no flag {flag_id} (or it is not yours to read)")
        return found.to_dict()

    @app.post(f"{API}/flags", tags=["quality"])
    def add_flag(who: Who, request: FlagRequest) -> dict[str, Any]:
        """Flag runs, or an interval of them (a writer of their projects); audited."""
        if request.runs is not None and request.run is not None:
            raise InvalidArgument("give run for one run or runs for several, not both")
        numbers = request.runs or ([request.run] if request.run is not None else [])
        if request.supersedes is not None:
            old = flags_for(who)[request.supersedes]
            numbers = numbers or old.runs
            check_writable(who, old.runs)
        check_writable(who, numbers)
        made = flags_for(who).add(**request.model_dump())
        access.record(who.name, "flag.add", str(made.id), request.model_dump())
        return made.to_dict()

    @app.post(f"{API}/flags/{{flag_id}}/withdraw", tags=["quality"])
    def withdraw_flag(
        who: Who, flag_id: Annotated[int, Path(ge=1, le=2**62)], request: WithdrawRequest
    ) -> dict[str, Any]:
        """Withdraw an active flag (a writer of its runs' projects); audited."""
        found = flags_for(who)[flag_id]
        check_writable(who, found.runs)
        flags_for(who).withdraw(flag_id, reason=request.reason)
        access.record(who.name, "flag.withdraw", str(flag_id), {"reason": request.reason})
        return flags_for(who)[flag_id].to_dict()

    # -- writes ------------------------------------------------------------------------------

    @app.post(f"{API}/ingest", tags=["runs"])
    def ingest(
        who: Who,
        files: list[UploadFile],
        content_length: Annotated[int | None, Header()] = None,
        project: Annotated[str, Form()] = DEFAULT_PROJECT,
        run: Annotated[int | None, Form(ge=0, le=MAX_RUN_NUMBER)] = None,
        format: Annotated[str | None, Form()] = None,
    ) -> list[dict[str, Any]]:
        """Upload raw files to ingest (a writer of ``project``): as ``labledger ingest``, the
        runs appear whole or not at all; the same bytes again are "already ingested"."""
        if not who.can("write", project):
            raise Forbidden(f"{who.name} may not write in project {project!r}")
        if content_length is None or content_length > limits.max_upload_bytes:
            raise TooLarge(
                f"an upload needs a Content-Length of at most {limits.max_upload_bytes} bytes"
            )
        with tempfile.TemporaryDirectory(prefix="labledger-upload-") as folder:
            paths = []
            for upload in files:
                name = _upload_name(upload.filename)
                path = FilePath(folder, name)
                if path.exists():
                    raise InvalidArgument(f"{name!r} is uploaded twice")
                with path.open("wb") as out:
                    shutil.copyfileobj(upload.file, out, 1 << 20)
                paths.append(path)
            results = archive.ingest(paths, run=run, format=format, project=project)
        made = [r.to_json() for r in results]
        access.record(who.name, "ingest", project, {"runs": made})
        return made

    @app.get(f"{API}/machine/version", tags=["machine"])
    def machine_version(who: Who) -> list[int]:
        """How many configuration changes and calibrations are recorded."""
        readable(who)
        return list(archive.catalog.machine_version())

    @app.get(f"{API}/machine/config-changes", tags=["machine"])
    def config_changes(who: Who) -> list[dict[str, Any]]:
        readable(who)
        return [row_to_json(r) for r in archive.catalog.config_changes()]

    @app.get(f"{API}/machine/calibrations", tags=["machine"])
    def calibrations(who: Who) -> list[dict[str, Any]]:
        readable(who)
        return [row_to_json(r) for r in archive.catalog.calibrations()]

    # -- bytes -------------------------------------------------------------------------------

    @app.get(f"{API}/store/{{key:path}}", tags=["data"], response_class=Response)
    def store_object(who: Who, key: str, range: Annotated[str | None, Header()] = None) -> Response:
        """A stored object as it is stored (a Zarr shard, a raw file), or a byte range of it
        (``Range: bytes=a-b``, ``bytes=-n``): chunks travel compressed as they were written."""
        key = _safe_key(key)
        match, made, events = (p.match(key) for p in (_RUN_KEY, _PRODUCT_KEY, _EVENTS_KEY))
        if match is not None:
            visible(who, archive.catalog.by_id(match.group(1)), f"object {key!r}")
        elif made is not None:
            product_of(who, made.group(1))
        elif events is not None and int(events.group(1)) <= MAX_RUN_NUMBER:
            visible(who, archive.catalog.by_number(int(events.group(1))), f"object {key!r}")
        else:
            raise Forbidden(f"{key!r}: only the objects of runs, products and events are served")
        try:
            size = archive.store.fs.size(archive.store.path(key))
        except FileNotFoundError:
            raise NotFound(f"object {key!r} does not exist") from None
        if range is None:
            if size > limits.max_response_bytes:
                raise TooLarge(f"{key!r} is {size} bytes; ask for byte ranges (Range header)")
            return Response(archive.store.read(key), media_type="application/octet-stream",
                            headers={"Accept-Ranges": "bytes"})  # fmt: skip
        start, end = _byte_range(range, size)
        if end - start > limits.max_response_bytes:
            raise TooLarge(f"a range of {end - start} bytes; at most {limits.max_response_bytes}")
        data = archive.store.read_range(key, start, end) if end > start else b""
        return Response(data, status_code=206, media_type="application/octet-stream",
                        headers={"Content-Range": f"bytes {start}-{end - 1}/{size}",
                                 "Accept-Ranges": "bytes"})  # fmt: skip

    @app.get(f"{API}/runs/{{number}}/channels/{{key:path}}", tags=["data"],
             response_class=Response)  # fmt: skip
    def channel_data(
        who: Who,
        request: Request,
        number: Number,
        key: str,
        slice: Annotated[str | None, Query(description="start:stop[:step] of axis 0")] = None,
    ) -> Response:
        """A channel's values (of ``slice``) as raw little-endian bytes, dtype and shape in
        ``X-Dtype`` and ``X-Shape``; compressed as ``Accept-Encoding`` allows, when it pays."""
        run = run_of(who, number)
        channel = run.channels[key]
        index = _slice(slice, channel.shape[0] if channel.shape else 0)
        count = len(range(*index.indices(channel.shape[0]))) if channel.shape else 1
        nbytes = count * int(np.prod(channel.shape[1:], dtype=np.int64)) * channel.dtype.itemsize
        if nbytes > limits.max_response_bytes:
            raise TooLarge(
                f"{nbytes} bytes asked; at most {limits.max_response_bytes} in one response: "
                "ask for slices"
            )
        values = channel[index] if channel.shape else channel[...]
        return _binary(np.asarray(values), request.headers.get("accept-encoding"))

    @app.get(f"{API}/runs/{{number}}/signals/{{name}}", tags=["data"], response_class=Response)
    def signal(
        who: Who,
        request: Request,
        number: Number,
        name: str,
        points: Annotated[int | None, Query(ge=2)] = None,
        start: float | None = None,
        stop: float | None = None,
        calibration: str | None = None,
    ) -> Response:
        """A signal by name, calibrated, as two arrays (time, then values) in one body: the
        ``X-Lengths`` header says where the first ends; its attributes are JSON in
        ``X-Attrs``. With ``points``, a min/max decimation to at most that many samples."""
        if points is not None and points > limits.max_points:
            raise TooLarge(f"points={points}: at most {limits.max_points}")
        run = run_of(who, number)
        window = None if start is None and stop is None else (start, stop)
        data = run.signal(name, calibration=calibration, time=window, points=points)
        t = np.asarray(data["time"].values, dtype=np.float64)
        v = np.asarray(data.values)
        tb, _ = encode_array(t)
        vb, headers = encode_array(v)
        attrs = {k: _jsonable(val) for k, val in data.attrs.items()}
        headers = {**headers, "X-Lengths": f"{len(tb)},{len(vb)}", "X-Attrs": json.dumps(attrs),
                   "X-Name": str(data.name)}  # fmt: skip
        return _send(tb + vb, headers, request.headers.get("accept-encoding"))

    return app


def _binary(values: np.ndarray, accept: str | None) -> Response:
    data, headers = encode_array(values)
    return _send(data, headers, accept)


def _send(data: bytes, headers: dict[str, str], accept: str | None) -> Response:
    coding = negotiate(accept, data)
    if coding is not None:
        data = compress(data, coding)
        headers = {**headers, "Content-Encoding": coding}
    return Response(data, media_type="application/octet-stream",
                    headers={**headers, "Vary": "Accept-Encoding"})  # fmt: skip


def _upload_name(name: str | None) -> str:
    """An uploaded file's name, as a plain file name (no folders, no '..')."""
    if not name or "/" in name or "\\" in name or "\x00" in name or name in (".", ".."):
        raise InvalidArgument(f"upload name {name!r}: a plain file name, without folders")
    if len(name.encode()) > 255:
        raise InvalidArgument("upload name: at most 255 bytes")
    return name


def _safe_key(key: str) -> str:
    """A store key that names an object below the store's root and nothing else."""
    parts = key.split("/")
    odd = not key or "\\" in key or "\x00" in key or posixpath.normpath(key) != key
    if odd or any(p in ("", ".", "..") for p in parts):
        raise InvalidArgument(f"{key!r} is not an object key (no '..', '.', '//' or leading '/')")
    return key


def _byte_range(header: str, size: int) -> tuple[int, int]:
    match = _RANGE.match(header.strip())
    if match is None or match.groups() == ("", ""):
        raise InvalidArgument(f"Range {header!r}: one range, 'bytes=a-b', 'bytes=a-' or 'bytes=-n'")
    first, last = match.groups()
    if first == "":
        return max(0, size - int(last)), size
    start = int(first)
    end = size if last == "" else min(size, int(last) + 1)
    if start > size or end < start:
        raise InvalidArgument(f"Range {header!r} is outside the object's {size} bytes")
    return start, end


def _slice(text: str | None, length: int) -> slice:
    if text is None:
        return slice(None)
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        numbers = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        raise InvalidArgument(f"slice={text!r}: write start:stop or start:stop:step") from None
    if len(numbers) == 3 and numbers[2] is not None and numbers[2] <= 0:
        raise InvalidArgument(f"slice={text!r}: the step must be positive")
    return slice(*numbers)


def _integers(text: str, name: str, most: int) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InvalidArgument(f"{name}={text!r}: comma-separated whole numbers") from None
    if any(abs(v) > MAX_RUN_NUMBER for v in values):
        raise InvalidArgument(f"{name}: run numbers go up to {MAX_RUN_NUMBER}")
    if not values or len(values) > most:
        raise InvalidArgument(f"{name}: 1 to {most} numbers")
    return values


def _json_object(text: str | None, name: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidArgument(f"{name}: not JSON ({text[:80]!r})") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"{name}: a JSON object of key -> value(s)")
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
