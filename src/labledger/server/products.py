"""Routes of results: products and their parts, lineage, computing a step next to the data, and
event queries answered as Arrow."""

import re
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from pydantic import Field as PydanticField

from labledger.catalog import products as product_queries
from labledger.catalog import quality as quality_records
from labledger.errors import Forbidden, InvalidArgument, LabledgerError, NotFound, TooLarge
from labledger.lineage.canonical import decode
from labledger.lineage.graph import checked_direction
from labledger.lineage.step import known_step
from labledger.records import MAX_RUN_NUMBER
from labledger.server.context import Context, Who
from labledger.server.params import integers
from labledger.wire import API, record_to_json

ARROW_STREAM = "application/vnd.apache.arrow.stream"
_FLAG_REASON = re.compile(r"flag (\d+) (?:added|withdrawn)")
_DIGITS = re.compile(r"[0-9]{1,19}")
_RESERVED = {"runs", "inputs", "good_runs", "where", "step"}  # la.compute's own arguments


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
    good_runs: str | None = PydanticField(default=None, max_length=200)  # over "name@N"
    params: dict[str, Any] | None = None


def router(ctx: Context) -> APIRouter:
    router = APIRouter(prefix=API)

    @router.get("/products", tags=["products"])
    def products(
        who: Who,
        step: Annotated[str | None, Query(max_length=500)] = None,
        run: Annotated[int | None, Query(ge=0, le=MAX_RUN_NUMBER)] = None,
        status: Annotated[str | None, Query(pattern="^(complete|failed|any)$")] = "complete",
        limit: Annotated[int, Query(ge=1, le=100_000)] = 100,
        slot: Annotated[str | None, Query(pattern="^[0-9a-f]{64}$")] = None,
    ) -> list[dict[str, Any]]:
        """Products newest first, of a step, of a run, of a status, in a slot (what
        ``run.product`` looks up), that you may read."""
        allowed = ctx.readable(who)
        limit = min(limit, ctx.limits.max_page)
        # the caller's only, chosen in SQL: a page never reads the whole archive's products
        rows = product_queries.listing(
            ctx.archive.catalog,
            step=step,
            run=run,
            status=None if status == "any" else status,
            limit=limit,
            projects=allowed,
            slot=slot,
        )
        return [record_to_json(r) for r in rows]

    @router.get("/stale", tags=["products"])
    def stale(who: Who) -> list[dict[str, Any]]:
        """The current products (of runs you may read) that no longer reflect their inputs,
        with the reasons (a flag you may not read is not described)."""
        allowed = ctx.readable(who)
        found = ctx.archive.stale()
        answer = []
        for item in found:
            reasons = item.reasons
            if allowed is not None:
                if not ctx.may_read(who, ctx.product_runs(item.product._row)):
                    continue
                reasons = [_redacted(who, r) for r in reasons]
            answer.append({"product": record_to_json(item.product._row), "reasons": reasons})
        return answer

    def _redacted(who: Any, reason: str) -> str:
        match = _FLAG_REASON.search(reason)
        if match is None:
            return reason
        try:
            ctx.flag_of(who, int(match.group(1)))
            return reason
        except NotFound:
            return reason[: match.end(1)] + " changed (a flag on runs you may not read)"

    @router.get("/good-runs/{name}", tags=["products"])
    def good_runs(
        who: Who, name: str, version: Annotated[int | None, Query(ge=1, le=2**31)] = None
    ) -> dict[str, Any]:
        """A recorded version of a good-run list (the newest unless ``version``)."""
        found = ctx.good_runs_of(who, name if version is None else f"{name}@{version}")
        return record_to_json(
            quality_records.good_run_list(ctx.archive.catalog, found.name, found.version)
        )

    @router.get("/products/{ref}", tags=["products"])
    def product(who: Who, ref: str) -> dict[str, Any]:
        """A product's record, its inputs and, for a set, its parts' records."""
        row = ctx.product_of(who, ref)
        inputs = product_queries.inputs_of(ctx.archive.catalog, [row.id])[row.id]
        parts = [i.ref for i in inputs if i.kind == "product"] if row.kind == "set" else []
        found = product_queries.by_ids(ctx.archive.catalog, parts)
        return {
            "product": record_to_json(row),
            "inputs": [record_to_json(i) for i in inputs],
            "parts": [record_to_json(found[p]) for p in parts if p in found],
        }

    @router.get("/lineage/{ref}", tags=["products"])
    def lineage(
        who: Who,
        ref: str,
        direction: Annotated[str, Query(max_length=16)] = "up",
        depth: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    ) -> dict[str, Any]:
        """What a product came from (up), or what a product or run fed (down)."""
        checked_direction(direction)  # the archive's own refusal, before any lookup
        allowed = ctx.readable(who)
        run = ctx.archive.catalog.by_id(ref) if direction == "down" else None
        if direction == "down" and _DIGITS.fullmatch(ref):
            root = ctx.run_of(who, int(ref)).id if int(ref) <= MAX_RUN_NUMBER else ref
        elif run is not None:
            root = ctx.visible(who, run, f"run {ref!r}").id
        else:
            root = ctx.product_of(who, ref).id
        graph = ctx.archive.lineage(root, direction=direction, depth=depth).to_dict()
        if allowed is None:
            return graph
        # down from a run, products over other projects' runs too may show: keep the caller's
        numbers = [n["number"] for n in graph["nodes"] if n["kind"] == "run"]
        runs = {
            r.number: r.id
            for r in ctx.archive.catalog.by_numbers(numbers)
            if who.can("read", r.project)
        }
        kept = {
            n["id"]
            for n in graph["nodes"]
            if (n["kind"] == "run" and n["number"] in runs)
            or (n["kind"] == "product" and ctx.may_read(who, _node_runs(n)))
        }
        files = {a for a, b in ((e["from"], e["to"]) for e in graph["edges"]) if b in kept}
        kept |= {i for i in files if i.startswith("sha256:")}
        graph["nodes"] = [n for n in graph["nodes"] if n["id"] in kept]
        graph["edges"] = [e for e in graph["edges"] if e["from"] in kept and e["to"] in kept]
        return graph

    def _node_runs(node: dict[str, Any]) -> set[int]:
        row = product_queries.by_id(ctx.archive.catalog, node["id"])
        return ctx.product_runs(row) if row is not None else set()

    @router.post("/compute", tags=["products"])
    def compute(who: Who, request: ComputeRequest) -> dict[str, Any]:
        """Run a step the server knows (defined or imported in the server, ``labledger serve
        --steps MODULE``) over runs, the parts of a product or a good-run list, next to the
        data; the caller must read and write every project involved."""
        ctx.readable(who)
        if not who.projects("write") and who.projects("write") is not None:
            raise Forbidden(f"{who.name} may not write in any project of this archive")
        step = known_step(request.step)
        given = [request.runs, request.inputs, request.good_runs]
        if sum(g is not None for g in given) != 1:
            raise InvalidArgument("give the step runs, inputs or good_runs (one of them)")
        if request.good_runs is not None:
            grl = ctx.good_runs_of(who, request.good_runs)
            numbers: set[int] = set(grl.runs)
            target: dict[str, Any] = {"runs": grl}
        elif request.runs is not None:
            numbers = {request.runs} if isinstance(request.runs, int) else set(request.runs)
            target = {"runs": request.runs}
        else:
            parent = ctx.product_of(who, str(request.inputs))
            numbers = ctx.product_runs(parent)
            target = {"inputs": ctx.archive.products[parent.id]}
        ctx.require(who, numbers, "write")
        try:
            params = decode(request.params or {})
        except (TypeError, ValueError, KeyError, AttributeError, LabledgerError) as exc:
            raise InvalidArgument(f"params: not as the client encodes them ({exc})") from None
        if not isinstance(params, dict) or set(params) & _RESERVED:
            raise InvalidArgument(
                f"params: a JSON object of the step's parameters, none named {sorted(_RESERVED)}"
            )
        step.check(params)
        made = ctx.archive.compute(step, **target, **params)
        ctx.access.record(who.name, "compute", made.id, {"step": step.name, **request.model_dump()})
        return {"product": record_to_json(made._row), "reused": made.reused}

    @router.get("/events", tags=["products"], response_class=Response)
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
        allowed = ctx.readable(who)
        numbers = None if runs is None else integers(runs, "runs", ctx.limits.max_page * 100)
        if allowed is not None:  # only the runs of the caller's projects
            every = ctx.archive.catalog.search(state=None, projects=allowed, withdrawn=None)
            mine = {r.number for r in every}
            numbers = sorted(mine if numbers is None else mine & set(numbers))
        query = ctx.archive.events(level, runs=numbers, stream=stream)
        for ancestor in integers(with_parent, "with_parent", 9) if with_parent else []:
            query = query.with_parent(ancestor)
        if count:
            return JSONResponse(query.count())
        table = query.to_arrow()
        if table.nbytes > ctx.limits.max_response_bytes:
            raise TooLarge(f"{table.nbytes} bytes of events; ask for fewer runs (runs=...)")
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return Response(sink.getvalue().to_pybytes(), media_type=ARROW_STREAM)

    return router
