"""Routes of data quality: flags listed, added and withdrawn by the writers of their runs'
projects, each write audited."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel
from pydantic import Field as PydanticField

from labledger.catalog import quality as quality_records
from labledger.errors import InvalidArgument
from labledger.records import MAX_RUN_NUMBER
from labledger.server.context import Context, Who
from labledger.server.params import integers
from labledger.wire import API


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


def router(ctx: Context) -> APIRouter:
    router = APIRouter(prefix=API)

    @router.get("/flags", tags=["quality"])
    def flags(
        who: Who,
        run: Annotated[int | None, Query(ge=0, le=MAX_RUN_NUMBER)] = None,
        subsystem: Annotated[str | None, Query(max_length=64)] = None,
        include_inactive: bool = False,
    ) -> list[dict[str, Any]]:
        """The active flags (with ``include_inactive``, the whole history), of a run or a
        subsystem, on runs you may read."""
        ctx.readable(who)
        if run is not None:
            ctx.run_of(who, run)
        flags = ctx.flags_for(who)
        found = flags.list(run=run, subsystem=subsystem, include_inactive=include_inactive)
        return [f.to_dict() for f in found if ctx.may_read(who, f.runs)]

    @router.get("/flags/active", tags=["quality"])
    def active_flags(
        who: Who, runs: Annotated[str, Query(description="Comma-separated run numbers.")]
    ) -> dict[str, list[dict[str, Any]]]:
        """The active flags on each run, by run number."""
        ctx.readable(who)
        numbers = integers(runs, "runs", ctx.limits.max_runs)
        visible_runs = {
            r.number for r in ctx.archive.catalog.by_numbers(numbers) if who.can("read", r.project)
        }
        found = ctx.flags_for(who).active(sorted(visible_runs)) if visible_runs else {}
        return {
            str(n): [f.to_dict() for f in found.get(n, []) if ctx.may_read(who, f.runs)]
            for n in numbers
            if n in visible_runs
        }

    @router.get("/flags/version", tags=["quality"])
    def flags_version(who: Who) -> int:
        """How many rows of the flags log are about runs you may read: it moves with every
        flag, supersession or withdrawal you can see, and with nothing else."""
        return quality_records.flags_seen(ctx.archive.catalog, ctx.readable(who))

    @router.get("/flags/{flag_id}", tags=["quality"])
    def flag(who: Who, flag_id: Annotated[int, Path(ge=1, le=2**62)]) -> dict[str, Any]:
        ctx.readable(who)
        return ctx.flag_of(who, flag_id).to_dict()

    @router.post("/flags", tags=["quality"])
    def add_flag(who: Who, request: FlagRequest) -> dict[str, Any]:
        """Flag runs, or an interval of them (a writer of their projects); audited."""
        if request.runs is not None and request.run is not None:
            raise InvalidArgument("give run for one run or runs for several, not both")
        ctx.readable(who)
        numbers = request.runs or ([request.run] if request.run is not None else [])
        if request.supersedes is not None:  # the old flag's runs are written on too
            numbers = [*numbers, *ctx.flag_of(who, request.supersedes).runs]
        ctx.require(who, numbers, "write")
        made = ctx.flags_for(who).add(**request.model_dump())
        ctx.access.record(who.name, "flag.add", str(made.id), request.model_dump())
        return made.to_dict()

    @router.post("/flags/{flag_id}/withdraw", tags=["quality"])
    def withdraw_flag(
        who: Who, flag_id: Annotated[int, Path(ge=1, le=2**62)], request: WithdrawRequest
    ) -> dict[str, Any]:
        """Withdraw an active flag (a writer of its runs' projects); audited."""
        ctx.readable(who)
        ctx.require(who, ctx.flag_of(who, flag_id).runs, "write")
        ctx.flags_for(who).withdraw(flag_id, reason=request.reason)
        ctx.access.record(who.name, "flag.withdraw", str(flag_id), {"reason": request.reason})
        return ctx.flags_for(who)[flag_id].to_dict()

    return router
