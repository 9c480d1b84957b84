"""The FastAPI application over one archive (OpenAPI at ``/docs``): the catalog's runs and the
machine's logs as JSON (:mod:`.runs`), bytes as stored or as binary arrays (:mod:`.data`),
products, lineage, computing and events (:mod:`.products`), flags (:mod:`.quality`), and here
who is asking and the notifications stream.

Every route but ``/api/v1/health`` needs a principal (:mod:`labledger.access`).
"""

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from labledger.access import Access, ApiKeys, Principal
from labledger.archive import Archive
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
from labledger.notifications import watch
from labledger.server import data, products, quality, runs
from labledger.server.context import Context, Limits
from labledger.wire import API

_STATUS = [(Unauthorized, 401), (Forbidden, 403), (NotFound, 404), (Conflict, 409),
           (TooLarge, 413), (InvalidArgument, 400), (BadInput, 422), (CatalogUnavailable, 503),
           (StoreUnavailable, 503)]  # fmt: skip


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

    ctx = Context(archive, access, limits, public, Who)

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

    @app.get(f"{API}/notifications", tags=["service"], response_class=StreamingResponse)
    def notifications(
        who: Who,
        kinds: Annotated[str, Query(description="Comma-separated: run, flag, product.")] = (
            "run,flag,product"
        ),
        timeout: Annotated[float | None, Query(gt=0, le=86_400)] = None,
    ) -> StreamingResponse:
        """Server-sent events from now on: a run closed, a flag added or withdrawn, a product
        made (each a JSON ``data:`` line), about the runs you may read; ``timeout`` s ends
        the stream."""
        projects = ctx.readable(who)
        events = watch(
            ctx.archive.catalog, kinds=[k.strip() for k in kinds.split(",") if k.strip()],
            readable=lambda p: projects is None or p in projects, timeout=timeout,
        )  # fmt: skip

        def stream() -> Iterator[str]:
            yield ": labledger notifications\n\n"
            for event in events:
                yield f"event: {event['kind']}\ndata: {json.dumps(event)}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})  # fmt: skip

    for part in (runs, data, products, quality):
        app.include_router(part.router(ctx))
    return app
