"""The FastAPI application over one archive (OpenAPI at ``/docs``, its pages' scripts and styles
served by the app itself, from fastapi-offline: labs are offline): the catalog's runs and the
machine's logs as JSON (:mod:`.runs`), bytes as stored or as binary arrays (:mod:`.data`),
products, lineage, computing and events (:mod:`.products`), flags (:mod:`.quality`), and here
who is asking and the notifications stream.

Every route but ``/api/v1/health`` and the API's documentation needs a principal
(:mod:`labledger.access`). Every request is logged, a JSON line each (:mod:`.requestlog`).
"""

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import anyio
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import OperationalError

import labledger.server.admin as admin
import labledger.server.data as data
import labledger.server.live as live
import labledger.server.products as products
import labledger.server.quality as quality
import labledger.server.runs as runs
from labledger.access import Access, ApiKeys, Principal
from labledger.archive import Archive
from labledger.catalog import database
from labledger.errors import (
    CatalogUnavailable,
    InvalidArgument,
    LabledgerError,
    TooLarge,
    first_line,
)
from labledger.server.context import Context, Limits, Who
from labledger.server.requestlog import RequestLog
from labledger.server.streams import Streams
from labledger.wire import API

_STREAM_MOST_S = 86_400.0


def create_app(
    archive: Archive,
    *,
    public: bool = False,
    limits: Limits | None = None,
    authenticate: Callable[[Mapping[str, str]], Principal] | None = None,
    request_log: logging.Logger | None = None,
) -> FastAPI:
    """The ASGI app serving ``archive``. ``public``: anonymous requests may read.
    ``authenticate`` maps a request's headers to a :class:`~labledger.access.Principal` (or
    raises :class:`~labledger.errors.Unauthorized`): API keys unless another front (a
    JupyterHub token, say) is given. Each request is a JSON line at INFO on ``request_log``
    (by default the logger ``labledger.requests``, which ``labledger serve`` writes out).

    >>> app = create_app(la, public=True)
    """
    limits = limits or Limits()
    access = Access(archive.catalog)
    app = FastAPIOffline(  # /docs and /redoc with their assets served here, not from a CDN
        title="labledger",
        summary="Runs, channels, signals and their catalog, read remotely",
        version="1",
        swagger_ui_parameters={"validatorUrl": None},  # Swagger UI would ask swagger.io
    )

    authenticate = authenticate or ApiKeys(access, public=public)
    app.state.authenticate = authenticate  # read by every route's `Who` (server/context.py)

    @app.exception_handler(LabledgerError)
    def labledger_error(_request: Request, exc: LabledgerError) -> JSONResponse:
        status, body, headers = answer(exc)  # the client raises the same error, by name
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(OperationalError)
    def database_error(_request: Request, exc: OperationalError) -> JSONResponse:
        if database.canceled(exc):  # over the statement timeout: the request asked too much
            error: LabledgerError = TooLarge(
                f"the query ran over the server's statement timeout ({limits.statement_timeout_s}"
                " s, statement_timeout_s); narrow it (fewer conditions, a time range, a limit)"
            )
        else:
            error = CatalogUnavailable(f"the catalog failed ({first_line(exc.orig or exc)})")
        status, body, headers = answer(error)
        return JSONResponse(body, status_code=status, headers=headers)

    database.limit_statements(archive.catalog.engine, limits.statement_timeout_s)
    ctx = Context(archive, access, limits)
    streams = Streams(
        archive.catalog,
        authenticate,
        total=limits.max_streams,
        per_key=limits.max_streams_per_key,
        recheck_s=limits.stream_recheck_s,
    )

    @app.get(f"{API}/health", tags=["service"])
    def health() -> dict[str, str]:
        """Whether the service is up (no key needed)."""
        return {"status": "ok"}

    @app.get(f"{API}/info", tags=["service"])
    def info(who: Who) -> dict[str, Any]:
        """Who you are here, and what you may read."""
        projects = who.projects("read")
        return {
            "user": who.user,
            "scopes": sorted(who.scopes),
            "public": public,
            "projects": None if projects is None else sorted(projects),
            "limits": limits.__dict__,
        }

    @app.get(f"{API}/notifications", tags=["service"], response_class=StreamingResponse)
    async def notifications(
        who: Who,
        request: Request,
        kinds: Annotated[
            str, Query(description="Comma-separated: run, flag, product, withdrawal, state.")
        ] = "run,flag,product",
        timeout: Annotated[float | None, Query(gt=0, le=_STREAM_MOST_S)] = None,
    ) -> StreamingResponse:
        """Server-sent events from now on: a run closed, a flag added or withdrawn, a product
        made, a run withdrawn or restored (``withdrawal``), a live run reaching a state
        (``state``) (the last two asked for by name) (each a JSON ``data:`` line), about the
        runs you may read; a comment line every 15 s keeps proxies from closing it. It ends
        after ``timeout`` s (at most a day), when the client goes, or when its key stops being
        valid. At most ``max_streams`` are open on the server and ``max_streams_per_key`` with
        one key (without a key, from one address): beyond, 429."""
        ctx.readable(who)
        address = request.client.host if request.client else ""
        subscriber = streams.open(who, request.headers, kinds, address)
        return streams.response(subscriber, time.monotonic() + (timeout or _STREAM_MOST_S))

    for part in (runs, data, products, quality, live):
        app.include_router(part.router(ctx))
    app.include_router(admin.router(ctx))
    app.add_middleware(_Gate, authenticate=authenticate, limits=limits)
    # outermost: a request the gate refuses is logged too
    app.add_middleware(RequestLog, logger=request_log or logging.getLogger("labledger.requests"))
    return app


class _Gate:
    """What is refused before a request's body is read: a write without valid credentials, a
    body without a Content-Length or over the limit (uploads: ``max_upload_bytes``; a live
    run's blocks: ``max_block_bytes``; JSON: ``max_json_bytes``), a NUL anywhere in the path
    or query (PostgreSQL cannot hold one)."""

    def __init__(self, app: Any, *, authenticate: Callable[..., Principal], limits: Limits):
        self.app, self.authenticate, self.limits = app, authenticate, limits

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        query = scope.get("query_string", b"").lower()
        if "\x00" in scope["path"] or b"%00" in query or b"%00" in scope.get("raw_path", b""):
            return await _refuse(send, InvalidArgument("a NUL character in the request"))
        if scope["method"] in ("POST", "PUT", "PATCH"):
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            try:
                await anyio.to_thread.run_sync(self.authenticate, headers)
            except LabledgerError as exc:
                return await _refuse(send, exc)
            upload = scope["path"].endswith("/ingest")
            blocks = scope["path"].endswith("/blocks")  # a live run's blocks
            most = self.limits.max_upload_bytes if upload else self.limits.max_json_bytes
            most = self.limits.max_block_bytes if blocks else most
            length = headers.get("content-length", "")
            if not length.isdigit() or int(length) > most:
                what = "an upload" if upload else "blocks" if blocks else "a request body"
                return await _refuse(
                    send, TooLarge(f"{what} needs a Content-Length of at most {most} bytes")
                )
        return await self.app(scope, receive, send)


async def _refuse(send: Any, exc: LabledgerError) -> None:
    status, body, headers = answer(exc)
    raw = [(b"content-type", b"application/json")]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def answer(exc: LabledgerError) -> tuple[int, dict[str, str], dict[str, str]]:
    """The status, JSON body and headers a labledger error is answered with."""
    status = exc.status
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return status, {"detail": str(exc), "error": type(exc).__name__}, headers
