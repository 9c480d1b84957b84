"""Routes of results: products and their parts, lineage, computing a step next to the data, and
event queries answered as Arrow."""

from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from pydantic import Field as PydanticField

from labledger.catalog import MAX_RUN_NUMBER
from labledger.catalog import products as product_queries
from labledger.catalog import quality as quality_records
from labledger.errors import Forbidden, InvalidArgument, NotFound, TooLarge
from labledger.lineage.canonical import decode
from labledger.lineage.step import find
from labledger.server.context import Context
from labledger.server.params import integers
from labledger.wire import API, row_to_json

ARROW_STREAM = "application/vnd.apache.arrow.stream"


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
    Who = ctx.who

    @router.get("/products", tags=["products"])
    def products(
        who: Who,
        step: Annotated[str | None, Query(max_length=500)] = None,
        run: Annotated[int | None, Query(ge=0, le=MAX_RUN_NUMBER)] = None,
        status: Annotated[str | None, Query(pattern="^(complete|failed|any)$")] = "complete",
        limit: Annotated[int, Query(ge=1, le=100_000)] = 100,
    ) -> list[dict[str, Any]]:
        """Products newest first, of a step, of a run, of a status, that you may read."""
        allowed = ctx.readable(who)
        rows = product_queries.listing(ctx.archive.catalog, step=step, run=run,
                                       status=None if status == "any" else status,
                                       limit=min(limit, ctx.limits.max_page))  # fmt: skip
        if allowed is not None:
            rows = [r for r in rows if (p := ctx.product_projects(r)) and p <= allowed]
        return [row_to_json(r) for r in rows]

    @router.get("/stale", tags=["products"])
    def stale(who: Who) -> list[dict[str, Any]]:
        """The current products (of runs you may read) that no longer reflect their inputs,
        with the reasons."""
        allowed = ctx.readable(who)
        found = ctx.archive.stale()
        if allowed is not None:
            found = [s for s in found if (p := ctx.product_projects(s.product._row)) <= allowed
                     and p]  # fmt: skip
        return [{"product": row_to_json(s.product._row), "reasons": s.reasons} for s in found]

    @router.get("/good-runs/{name}", tags=["products"])
    def good_runs(
        who: Who, name: str, version: Annotated[int | None, Query(ge=1, le=2**31)] = None
    ) -> dict[str, Any]:
        """A recorded version of a good-run list (the newest unless ``version``)."""
        found = ctx.good_runs_of(who, name if version is None else f"{name}@{version}")
        return row_to_json(quality_records.good_run_list(ctx.archive.catalog, found.name,
                                                         found.version))  # fmt: skip

    @router.get("/products/{ref}", tags=["products"])
    def product(who: Who, ref: str) -> dict[str, Any]:
        """A product's record, its inputs and, for a set, its parts' records."""
        row = ctx.product_of(who, ref)
        inputs = product_queries.inputs_of(ctx.archive.catalog, [row.id])[row.id]
        parts = [i.ref for i in inputs if i.kind == "product"] if row.kind == "set" else []
        found = product_queries.by_ids(ctx.archive.catalog, parts)
        return {"product": row_to_json(row), "inputs": [row_to_json(i) for i in inputs],
                "parts": [row_to_json(found[p]) for p in parts if p in found]}  # fmt: skip

    @router.get("/lineage/{ref}", tags=["products"])
    def lineage(
        who: Who,
        ref: str,
        direction: Annotated[str, Query(pattern="^(up|down)$")] = "up",
        depth: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    ) -> dict[str, Any]:
        """What a product came from (up), or what a product or run fed (down)."""
        if direction == "down" and ref.isdigit():
            root: Any = ctx.run_of(who, int(ref)).id if int(ref) <= MAX_RUN_NUMBER else ref
        elif direction == "down" and ctx.archive.catalog.by_id(ref) is not None:
            root = ctx.visible(who, ctx.archive.catalog.by_id(ref), f"run {ref!r}").id
        else:
            root = ctx.product_of(who, ref).id
        graph = ctx.archive.lineage(root, direction=direction, depth=depth).to_dict()
        allowed = ctx.readable(who)
        if allowed is not None:  # runs of projects the caller may not read: named, not shown
            numbers = [n["number"] for n in graph["nodes"] if n["kind"] == "run"]
            projects = {r.number: r.project for r in ctx.archive.catalog.by_numbers(numbers)}
            for node in graph["nodes"]:
                if node["kind"] == "run" and projects.get(node["number"]) not in allowed:
                    node.update(label="a run you may not read", number=None)
        return graph

    @router.post("/compute", tags=["products"])
    def compute(who: Who, request: ComputeRequest) -> dict[str, Any]:
        """Run a step the server can import (``module:function``) over runs or the parts of
        a product, next to the data; a writer of every project involved."""
        step = find(request.step)
        given = [request.runs, request.inputs, request.good_runs]
        if sum(g is not None for g in given) != 1:
            raise InvalidArgument("give the step runs, inputs or good_runs (one of them)")
        if request.good_runs is not None:
            grl = ctx.good_runs_of(who, request.good_runs)
            projects = {r.project for r in ctx.archive.catalog.by_numbers(grl.runs)}
            target: dict[str, Any] = {"runs": grl}
        elif request.runs is not None:
            numbers = [request.runs] if isinstance(request.runs, int) else request.runs
            if len(numbers) > ctx.limits.max_page * 100:
                raise TooLarge(f"{len(numbers)} runs; at most {ctx.limits.max_page * 100} a call")
            runs = ctx.archive.catalog.by_numbers(numbers)
            missing = sorted(set(numbers) - {r.number for r in runs})
            if missing:
                raise NotFound(f"run {missing[0]} does not exist")
            projects = {r.project for r in runs}
            target = {"runs": request.runs}
        else:
            parent = ctx.product_of(who, str(request.inputs))
            projects = ctx.product_projects(parent)
            target = {"inputs": ctx.archive.products[parent.id]}
        for project in sorted(projects):
            if not who.can("write", project):
                raise Forbidden(f"{who.name} may not compute in project {project!r}")
        params = decode(request.params or {})
        if not isinstance(params, dict):
            raise InvalidArgument("params: a JSON object of the step's parameters")
        made = ctx.archive.compute(step, **target, **params)
        ctx.access.record(who.name, "compute", made.id, {"step": step.name, **request.model_dump()})
        return {"product": row_to_json(made._row), "reused": made.reused}

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
            mine = {r.number for r in ctx.archive.catalog.search(state=None, projects=allowed)}
            numbers = sorted(mine if numbers is None else mine & set(numbers))
        query = ctx.archive.events(level, runs=numbers, stream=stream)
        for ancestor in integers(with_parent, "with_parent", 9) if with_parent else []:
            query = query.with_parent(ancestor)
        if count:
            return JSONResponse(query.count())
        table = query.to_arrow()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return Response(sink.getvalue().to_pybytes(), media_type=ARROW_STREAM)

    return router
