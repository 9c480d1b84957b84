"""What every route needs: the archive, who may see what in it, and the limits of a request.

A run is answered only to those who may read its project, and one they may not read is "not
found", as one that does not exist; a product, flag or event file follows the runs it is of.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeAlias

from fastapi import Depends, Request

from labledger.access import Access, Principal
from labledger.archive import Archive
from labledger.catalog import products as product_queries
from labledger.errors import Forbidden, InvalidArgument, NotFound, TooLarge
from labledger.quality import Flag, GoodRunList
from labledger.quality.recorded import Flags, GoodRunLists
from labledger.runs import Run
from labledger.server.requestlog import USER_KEY


@dataclass(frozen=True)
class Limits:
    """What one request may ask for."""

    max_response_bytes: int = 512 << 20
    max_points: int = 1_000_000
    max_page: int = 1000
    max_upload_bytes: int = 64 << 30
    max_runs: int = 10_000  # run numbers named in one request
    max_search: int = 100_000  # runs a search answers
    max_json_bytes: int = 1 << 20  # a request's JSON body
    max_streams: int = 1000  # notification streams open on the server
    max_streams_per_key: int = 100  # ... and with one key (without a key: one address)
    stream_recheck_s: float = 5.0  # a stream's key is checked again this often
    statement_timeout_s: float = 30.0  # a catalog query on PostgreSQL, then it is cancelled
    max_block_bytes: int = 64 << 20  # a live run's blocks posted in one request
    live_idle_s: float = 60.0  # a DAQ silent this long is gone: its run is ended failed
    max_followers: int = 200  # live signals followed through the server at once


def principal(request: Request) -> Principal:
    """Who is asking: the request's headers, authenticated by the app's front
    (``app.state.authenticate``, set by :func:`~labledger.server.app.create_app`)."""
    who: Principal = request.app.state.authenticate(request.headers)
    setattr(request.state, USER_KEY, who.user)  # for the request log
    return who


# a route's parameter of this type is the request's principal
Who: TypeAlias = Annotated[Principal, Depends(principal)]


@dataclass
class Context:
    """The archive served, its users and keys, the limits, and the visibility rules."""

    archive: Archive
    access: Access
    limits: Limits
    _projects: dict[str, str] = field(default_factory=dict)  # run id -> project

    def readable(self, who: Principal) -> set[str] | None:
        """The projects ``who`` may read (None: all); refused if none."""
        projects = who.projects("read")
        if projects is not None and not projects:
            raise Forbidden(f"{who.name} may not read any project of this archive")
        return projects

    def require(self, who: Principal, numbers: Iterable[int], scope: str = "read") -> list[Any]:
        """The runs ``numbers``, if ``who`` may read every one and ``scope`` them all; a run
        that does not exist and one of another project are refused alike."""
        wanted = sorted(set(numbers))
        if len(wanted) > self.limits.max_runs:
            raise TooLarge(f"{len(wanted)} runs; at most {self.limits.max_runs} in one request")
        rows = self.archive.catalog.by_numbers(wanted)
        seen = {r.number for r in rows if who.can("read", r.project)}
        missing = [n for n in wanted if n not in seen]
        if missing:
            raise NotFound(f"run {missing[0]} does not exist (or is not yours to read)")
        if scope != "read":  # they may read them all: naming their projects tells nothing
            for project in sorted({r.project for r in rows}):
                if not who.can(scope, project):
                    raise Forbidden(f"{who.name} may not {scope} in project {project!r}")
        return rows

    def project_of(self, run_id: str) -> str | None:
        """The project of run ``run_id`` (None: no such run), kept once asked: a run changes
        project only by an admin's hand, and a remote read asks for every chunk it reads."""
        found = self._projects.get(run_id)
        if found is None:
            row = self.archive.catalog.by_id(run_id)
            if row is None:
                return None
            if len(self._projects) > 100_000:
                self._projects.clear()
            found = self._projects[run_id] = row.project
        return found

    def may_read(self, who: Principal, numbers: Iterable[int]) -> bool:
        """Whether ``who`` may read every one of these runs (and there is at least one)."""
        try:
            return bool(self.require(who, numbers))
        except (NotFound, TooLarge):
            return False

    def visible(self, who: Principal, row: Any, what: str) -> Any:
        if row is None or not who.can("read", row.project):
            raise NotFound(f"{what} does not exist (or is not yours to read)")
        return row

    def run_of(self, who: Principal, number: int) -> Run:
        row = self.visible(who, self.archive.catalog.by_number(number), f"run {number}")
        return Run(self.archive.runs.home, row)

    def visible_ids(self, who: Principal, text: str) -> list[str]:
        self.readable(who)
        ids = [i for i in text.split(",") if i]
        if not ids or len(ids) > self.limits.max_page:
            raise InvalidArgument(f"runs: 1 to {self.limits.max_page} comma-separated run ids")
        rows = self.archive.catalog.by_ids(ids)
        return [r.id for r in rows if who.can("read", r.project)]

    def product_runs(self, row: Any) -> set[int]:
        """The runs a product was computed over (a set: over its parts)."""
        numbers = {row.run_number} if row.run_number is not None else set()
        if row.kind == "set":
            inputs = product_queries.inputs_of(self.archive.catalog, [row.id])[row.id]
            numbers |= {i.run_number for i in inputs if i.run_number is not None}
        return numbers

    def product_of(self, who: Principal, ref: str) -> Any:
        """The product ``ref`` (an id or its first characters), if its runs are readable."""
        allowed = self.readable(who)
        row = product_queries.by_id(self.archive.catalog, ref) if isinstance(ref, str) else None
        if row is None and isinstance(ref, str) and len(ref) >= 8:
            # among the caller's products only: another's must not make a prefix ambiguous
            found = product_queries.by_prefix(self.archive.catalog, ref, projects=allowed)
            if len(found) > 1:
                raise NotFound(f"{ref!r} begins the ids of several products; give more of it")
            row = found[0] if found else None
        if row is None or not self.may_read(who, self.product_runs(row)):
            raise NotFound(f"product {ref!r} does not exist (or is not yours to read)")
        return row

    def flags_for(self, who: Principal) -> Flags:
        return Flags(self.archive.catalog, by=f"{who.name} (through the server)")

    def flag_of(self, who: Principal, flag_id: int) -> Flag:
        """Flag ``flag_id``, if its runs are readable (one answer for unknown and unreadable)."""
        try:
            found = self.flags_for(who)[flag_id]
        except NotFound:
            found = None
        if found is None or not self.may_read(who, found.runs):
            raise NotFound(f"flag {flag_id} does not exist (or is not yours to read)")
        return found

    def good_runs_of(self, who: Principal, label: str) -> GoodRunList:
        """A recorded good-run list, if it has runs and every one is the caller's to read."""
        everything = self.readable(who) is None
        try:
            found = GoodRunLists(self.archive.runs, self.archive.catalog).get(label)
        except NotFound:  # its message lists the names there are: not for every caller
            found = None
        if found is None or not (everything or self.may_read(who, found.runs)):
            raise NotFound(f"good-run list {label!r} does not exist (or is not yours to read)")
        return found
