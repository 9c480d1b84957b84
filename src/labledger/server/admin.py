"""Routes for the archive's admins: the check of every run against the catalog, and the
removal of the folders killed ingests left (audited).

A check reads every raw file and array of the archive: one runs at a time (a second is
answered 429 while it runs, so parallel calls cannot multiply the work), in a worker thread
(the route is a plain function, which FastAPI runs off the event loop)."""

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Query

from labledger.access import Principal
from labledger.errors import Busy, Forbidden
from labledger.records import OLDER_THAN_MINUTES
from labledger.server.context import Context, Who
from labledger.wire import API


def router(ctx: Context) -> APIRouter:
    router = APIRouter(prefix=API)
    checking = threading.Lock()  # held while a check runs

    def require_admin(who: Principal) -> None:
        """The check reads every project's runs: it needs an admin of them all."""
        admin = who.projects("admin") or set()
        if not admin or not ctx.archive.catalog.projects() <= admin:
            raise Forbidden(
                f"{who.name} may not check the archive: that needs a key with the admin scope "
                "and the admin role in every project of the archive"
            )

    @router.post("/check", tags=["admin"])
    def check(
        who: Who,
        repair: Annotated[
            bool, Query(description="Remove the folders no run names (never one a run names).")
        ] = False,
        older_than: Annotated[
            float,
            Query(ge=0, le=10**7, description="Minutes: a repair spares younger folders."),
        ] = OLDER_THAN_MINUTES,
    ) -> dict[str, Any]:
        """Check every run's raw files (sha256) and arrays (shape, dtype, chunks) against the
        catalog and list the folders no run names; with ``repair``, remove those untouched
        for ``older_than`` minutes. For admins of every project; a repair is audited. One
        check at a time: while one runs, another is answered 429."""
        require_admin(who)
        if not checking.acquire(blocking=False):
            raise Busy("a check of the archive is running; try again when it is done")
        try:
            report = ctx.archive.check(repair=repair, older_than=older_than)
        finally:
            checking.release()
        if repair:
            removed = [o.key for o in report.orphans if o.removed]
            ctx.access.record(who.name, "check.repair", "runs", {"removed": removed})
        return report.to_json()

    return router
