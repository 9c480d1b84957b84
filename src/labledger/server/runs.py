"""Routes of the catalog: runs (a page at a time, searched, by number or id, their raw-file and
channel records), runs withdrawn and restored (by the writers of their projects, audited), the
machine's logs, and the upload of raw files for ingest."""

import os
import shutil
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Form, Header, Query, UploadFile
from pydantic import BaseModel
from pydantic import Field as PydanticField

from labledger.catalog.summary import summarize
from labledger.errors import Conflict, Forbidden, InvalidArgument, LabledgerError, TooLarge
from labledger.ids import DEFAULT_PROJECT
from labledger.records import MAX_RUN_NUMBER
from labledger.server.context import Context, Who
from labledger.server.params import Number, integers, json_object, upload_name
from labledger.times import parse_when
from labledger.wire import API, record_to_json
from labledger.withdrawals import Withdrawals

_WITHDRAWN = {"false": False, "true": True, "any": None}


class ReasonRequest(BaseModel):
    """Why a run is withdrawn or restored."""

    reason: str = PydanticField(max_length=10_000)


def router(ctx: Context) -> APIRouter:
    router = APIRouter(prefix=API)

    @router.get("/runs", tags=["runs"])
    def runs(
        who: Who,
        after: Annotated[
            int | None, Query(ge=-1, le=MAX_RUN_NUMBER, description="Cursor: the last number seen.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 100,
    ) -> dict[str, Any]:
        """Closed runs by number, a page at a time: pass ``next`` as ``after`` for the next."""
        limit = min(limit, ctx.limits.max_page)
        rows = ctx.archive.catalog.page(after, limit, ctx.readable(who))
        following = rows[-1].number if len(rows) == limit else None
        return {"runs": [record_to_json(r) for r in rows], "next": following}

    @router.get("/runs/search", tags=["runs"])
    def search(
        who: Who,
        since: str | None = None,
        until: str | None = None,
        source: str | None = None,
        state: str | None = "closed",
        where: Annotated[str | None, Query(description="JSON object: key -> value(s)")] = None,
        limit: Annotated[int | None, Query(ge=0, le=1_000_000)] = None,
        quality: str | None = None,
        withdrawn: Annotated[
            str, Query(description="false: leave withdrawn runs out; true: only them; any.")
        ] = "false",
    ) -> list[dict[str, Any]]:
        """Runs matching every condition, by number (as ``la.runs.search``)."""
        if withdrawn not in _WITHDRAWN:
            raise InvalidArgument(f"withdrawn={withdrawn!r}: one of {', '.join(_WITHDRAWN)}")
        conditions = json_object(where, "where")
        most = ctx.limits.max_search
        rows = ctx.archive.catalog.search(
            since=parse_when(since, "since"),
            until=parse_when(until, "until"),
            source=source,
            state=state or None,
            where=conditions,
            limit=min(most + 1, limit or most + 1),
            quality=quality,
            projects=ctx.readable(who),
            withdrawn=_WITHDRAWN[withdrawn],
        )
        if len(rows) > most:
            raise TooLarge(f"more than {most} runs match; narrow the search or give a limit")
        return [record_to_json(r) for r in rows]

    @router.get("/runs/newest", tags=["runs"])
    def newest(
        who: Who, offset: Annotated[int, Query(ge=0, le=MAX_RUN_NUMBER)] = 0
    ) -> dict[str, Any] | None:
        """The newest closed run, or the one ``offset`` places before it (null: none)."""
        row = ctx.archive.catalog.newest(offset, ctx.readable(who))
        return record_to_json(row) if row is not None else None

    @router.get("/runs/last", tags=["runs"])
    def last(who: Who, n: Annotated[int, Query(ge=0, le=100_000)] = 10) -> list[dict[str, Any]]:
        """The closed runs with the ``n`` highest numbers, by number."""
        rows = ctx.archive.catalog.last(min(n, ctx.limits.max_page), ctx.readable(who))
        return [record_to_json(r) for r in rows]

    @router.get("/runs/count", tags=["runs"])
    def count(who: Who, state: str | None = "closed") -> int:
        return ctx.archive.catalog.count(state or None, ctx.readable(who))

    @router.get("/summary", tags=["runs"])
    def summary(who: Who) -> dict[str, Any]:
        """What the archive holds of the runs you may read: their number and time span, raw
        files by format and size, the newest, the active flags and current products over
        them (as ``la.summary()``)."""
        return summarize(ctx.archive.catalog, ctx.readable(who)).to_dict()

    @router.get("/runs/by-number/{number}", tags=["runs"])
    def by_number(who: Who, number: Number) -> dict[str, Any]:
        return record_to_json(
            ctx.visible(who, ctx.archive.catalog.by_number(number), f"run {number}")
        )

    @router.get("/runs/by-id/{run_id}", tags=["runs"])
    def by_id(who: Who, run_id: str) -> dict[str, Any]:
        return record_to_json(
            ctx.visible(who, ctx.archive.catalog.by_id(run_id), f"run {run_id!r}")
        )

    @router.get("/runs/by-numbers", tags=["runs"])
    def by_numbers(
        who: Who, numbers: Annotated[str, Query(description="Comma-separated run numbers.")]
    ) -> list[dict[str, Any]]:
        ctx.readable(who)
        wanted = integers(numbers, "numbers", ctx.limits.max_runs)
        rows = ctx.archive.catalog.by_numbers(wanted)
        return [record_to_json(r) for r in rows if who.can("read", r.project)]

    @router.get("/runs/sources", tags=["runs"])
    def sources(
        who: Who, runs: Annotated[str, Query(description="Comma-separated run ids.")]
    ) -> list[dict[str, Any]]:
        """The raw-file records of these runs."""
        ids = ctx.visible_ids(who, runs)
        return [record_to_json(r) for r in ctx.archive.catalog.sources_of(ids)]

    @router.get("/runs/channels", tags=["runs"])
    def channels(
        who: Who, runs: Annotated[str, Query(description="Comma-separated run ids.")]
    ) -> dict[str, list[dict[str, Any]]]:
        """The channel records of these runs, by run id."""
        found = ctx.archive.catalog.channels_of(ctx.visible_ids(who, runs))
        return {run_id: [record_to_json(r) for r in rows] for run_id, rows in found.items()}

    @router.get("/runs/withdrawals", tags=["runs"])
    def withdrawals(
        who: Who,
        runs: Annotated[str | None, Query(description="Comma-separated run ids.")] = None,
        active_only: bool = False,
    ) -> list[dict[str, Any]]:
        """Withdrawals of runs you may read (of ``runs`` only, if given), oldest first, each
        with the restoration that undid it (null: the run is withdrawn)."""
        allowed = ctx.readable(who)
        ids = None if runs is None else ctx.visible_ids(who, runs)
        if ids == []:
            return []
        entries = ctx.archive.catalog.withdrawals(ids, active_only=active_only)
        if allowed is not None and ids is None:
            mine = {
                r.id
                for r in ctx.archive.catalog.by_ids({w.run_id for w, _ in entries})
                if r.project in allowed
            }
            entries = [e for e in entries if e[0].run_id in mine]
        return [
            {"withdrawal": record_to_json(w), "restored": record_to_json(r) if r else None}
            for w, r in entries
        ]

    @router.post("/runs/{number}/withdraw", tags=["runs"])
    def withdraw(who: Who, number: Number, request: ReasonRequest) -> dict[str, Any]:
        """Withdraw a run (a writer of its project): it leaves listings; audited. The answer is
        the withdrawal."""
        ctx.require(who, [number], "write")
        made = Withdrawals(ctx.archive.catalog, by=f"{who.name} (through the server)")
        done = made.withdraw(number, reason=request.reason)
        ctx.access.record(who.name, "run.withdraw", str(number), {"reason": done.reason})
        return done.to_dict()

    @router.post("/runs/{number}/restore", tags=["runs"])
    def restore(who: Who, number: Number, request: ReasonRequest) -> dict[str, Any]:
        """Undo a run's withdrawal (a writer of its project); audited. The answer is the
        withdrawal, with this restoration on it."""
        ctx.require(who, [number], "write")
        made = Withdrawals(ctx.archive.catalog, by=f"{who.name} (through the server)")
        done = made.restore(number, reason=request.reason)
        ctx.access.record(who.name, "run.restore", str(number), {"reason": done.restore_reason})
        return done.to_dict()

    @router.get("/machine/version", tags=["machine"])
    def machine_version(who: Who) -> list[int]:
        """How many configuration changes and calibrations are recorded."""
        ctx.readable(who)
        return list(ctx.archive.catalog.machine_version())

    @router.get("/machine/config-changes", tags=["machine"])
    def config_changes(who: Who) -> list[dict[str, Any]]:
        ctx.readable(who)
        return [record_to_json(r) for r in ctx.archive.catalog.config_changes()]

    @router.get("/machine/calibrations", tags=["machine"])
    def calibrations(who: Who) -> list[dict[str, Any]]:
        ctx.readable(who)
        return [record_to_json(r) for r in ctx.archive.catalog.calibrations()]

    @router.post("/ingest", tags=["runs"])
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
        if content_length is None or content_length > ctx.limits.max_upload_bytes:
            raise TooLarge(
                f"an upload needs a Content-Length of at most {ctx.limits.max_upload_bytes} bytes"
            )
        with tempfile.TemporaryDirectory(prefix="labledger-upload-") as folder:
            paths = []
            for upload in files:
                name = upload_name(upload.filename)
                path = FilePath(folder, name)
                if path.exists():
                    raise InvalidArgument(f"{name!r} is uploaded twice")
                with path.open("wb") as out:
                    shutil.copyfileobj(upload.file, out, 1 << 20)
                paths.append(path)
            try:
                results = ctx.archive.ingest(
                    paths, run=run, format=format, project=project, origin=f"upload:{who.name}"
                )
            except Conflict as exc:  # it may name another project's run and files
                raise Conflict(
                    "the run number is taken, or these bytes were ingested meanwhile: ingest "
                    "without --run, or ask an admin"
                ) from exc
            except LabledgerError as exc:  # said of the uploaded file, not of where it was put
                raise type(exc)(_unplaced(str(exc), folder)) from None
        made = [r.to_json() for r in results]
        readable = {
            row.number
            for row in ctx.archive.catalog.by_numbers([r["run"] for r in made])
            if who.can("read", row.project)
        }
        for r in made:  # the same bytes kept already, in a run the caller may not read
            if r["run"] not in readable:
                r.update(run=None, id=None, status="already ingested, in a run you may not read")
        ctx.access.record(who.name, "ingest", project, {"runs": made})
        return made

    return router


def _unplaced(message: str, folder: str) -> str:
    """``message`` without the server's temporary folder, as given or resolved (a message
    built from ``os.path.realpath`` names it through a symlinked TMPDIR): the uploaded
    file's name only."""
    for spelling in sorted({folder, os.path.realpath(folder)}, key=len, reverse=True):
        message = message.replace(f"{spelling}{os.sep}", "").replace(spelling, "<upload>")
    return message
