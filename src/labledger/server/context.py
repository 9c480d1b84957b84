"""What every route needs: the archive, who may see what in it, and the limits of a request.

A run is answered only to those who may read its project, and one they may not read is "not
found", as one that does not exist; a product, flag or event file follows the runs it is of.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labledger.access import Access, Principal
from labledger.archive import Archive
from labledger.catalog import products as product_queries
from labledger.errors import Forbidden, InvalidArgument, NotFound
from labledger.lineage.products import row_of
from labledger.quality import Flag, Flags, GoodRunList, GoodRunLists
from labledger.runs import Run


@dataclass(frozen=True)
class Limits:
    """What one request may ask for."""

    max_response_bytes: int = 512 << 20
    max_points: int = 1_000_000
    max_page: int = 1000
    max_upload_bytes: int = 64 << 30


@dataclass
class Context:
    """The archive served, its users and keys, the limits, and the visibility rules."""

    archive: Archive
    access: Access
    limits: Limits
    public: bool
    who: Any  # the route parameter type that gives a request's Principal

    def readable(self, who: Principal) -> set[str] | None:
        projects = who.projects("read")
        if projects is not None and not projects:
            raise Forbidden(f"{who.name} may not read any project of this archive")
        return projects

    def visible(self, who: Principal, row: Any, what: str) -> Any:
        if row is None or not who.can("read", row.project):
            raise NotFound(f"{what} does not exist (or is not yours to read)")
        return row

    def run_of(self, who: Principal, number: int) -> Run:
        row = self.visible(who, self.archive.catalog.by_number(number), f"run {number}")
        return Run(self.archive, row)

    def visible_ids(self, who: Principal, text: str) -> list[str]:
        self.readable(who)
        ids = [i for i in text.split(",") if i]
        if not ids or len(ids) > self.limits.max_page:
            raise InvalidArgument(f"runs: 1 to {self.limits.max_page} comma-separated run ids")
        rows = self.archive.catalog.by_ids(ids)
        return [r.id for r in rows if who.can("read", r.project)]

    def product_projects(self, row: Any) -> set[str]:
        """The projects of the runs a product was computed over (a set: over its parts)."""
        numbers = {row.run_number} if row.run_number is not None else set()
        if row.kind == "set":
            inputs = product_queries.inputs_of(self.archive.catalog, [row.id])[row.id]
            numbers |= {i.run_number for i in inputs if i.run_number is not None}
        return {r.project for r in self.archive.catalog.by_numbers(sorted(numbers))}

    def product_of(self, who: Principal, ref: str) -> Any:
        self.readable(who)
        try:
            row = row_of(self.archive, ref)
        except NotFound:
            row = None
        projects = self.product_projects(row) if row is not None else set()
        if row is None or not projects or not all(who.can("read", p) for p in projects):
            raise NotFound(f"product {ref!r} does not exist (or is not yours to read)")
        return row

    def flags_for(self, who: Principal) -> Flags:
        return Flags(self.archive.catalog, by=f"{who.name} (through the server)")

    def flag_readable(self, who: Principal, flag: Flag) -> bool:
        projects = {r.project for r in self.archive.catalog.by_numbers(flag.runs)}
        return bool(projects) and all(who.can("read", p) for p in projects)

    def check_writable(self, who: Principal, numbers: list[int]) -> None:
        rows = self.archive.catalog.by_numbers(numbers)
        for row in rows:
            if not who.can("read", row.project):
                raise NotFound(f"run {row.number} does not exist (or is not yours to read)")
        for project in sorted({r.project for r in rows}):
            if not who.can("write", project):
                raise Forbidden(f"{who.name} may not flag runs of project {project!r}")

    def good_runs_of(self, who: Principal, label: str) -> GoodRunList:
        """A recorded good-run list, if every run of it is the caller's to read."""
        self.readable(who)
        found = GoodRunLists(self.archive).get(label)
        projects = {r.project for r in self.archive.catalog.by_numbers(found.runs)}
        if not all(who.can("read", p) for p in projects):
            raise NotFound(f"good-run list {label!r} does not exist (or is not yours to read)")
        return found
