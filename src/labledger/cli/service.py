"""The commands of the data service: ``serve``; ``user add|list``; ``key create|list|revoke``."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated, Any

import typer

from labledger.access import ROLES, SCOPES, Access
from labledger.cli.app import (
    ArchiveOption,
    JsonOption,
    app,
    fitted_table,
    opened,
    out,
    print_json,
)
from labledger.errors import InvalidArgument
from labledger.ids import author

user_app = typer.Typer(help="Users and their role in each project.", no_args_is_help=True)
key_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="key")


@app.command()
def serve(
    archive: ArchiveOption,
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port to listen on.")] = 8000,
    public: Annotated[
        bool, typer.Option("--public", help="Let requests without a key read everything.")
    ] = False,
    steps: Annotated[
        list[str] | None,
        typer.Option("--steps", help="A module whose steps remote writers may compute."),
    ] = None,
    statement_timeout: Annotated[
        float | None,
        typer.Option(help="Seconds a catalog query may run on PostgreSQL [30].", min=0.001),
    ] = None,
    max_streams: Annotated[
        int | None, typer.Option(help="Notification streams open at once [1000].", min=1)
    ] = None,
    max_streams_per_key: Annotated[
        int | None, typer.Option(help="Notification streams open with one key [100].", min=1)
    ] = None,
    request_log: Annotated[
        str,
        typer.Option(
            help="Where each request's JSON line goes: a file (appended to), - for stderr, "
            "off for nowhere."
        ),
    ] = "-",
) -> None:
    """Serve the archive over HTTP (OpenAPI at /docs); remote users `labledger.connect` to it.
    Each request is logged as a JSON line (docs/server.md)."""
    import importlib

    import uvicorn

    from labledger.server import Limits, create_app

    for module in steps or []:  # the server computes only the steps it has imported
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise InvalidArgument(f"--steps {module}: cannot be imported ({exc})") from None

    logger = _request_log(request_log)
    with opened(archive) as la:
        out.print(
            f"serving {la} on http://{host}:{port} (API docs at /docs)"
            + ("; anonymous read allowed" if public else "")
        )
        given: dict[str, Any] = {
            "statement_timeout_s": statement_timeout,
            "max_streams": max_streams,
            "max_streams_per_key": max_streams_per_key,
        }
        limits = Limits(**{k: v for k, v in given.items() if v is not None})
        app = create_app(la, public=public, limits=limits, request_log=logger)
        uvicorn.run(app, host=host, port=port, log_level="warning")


def _request_log(where: str) -> logging.Logger:
    """The logger the server writes a line per request to, sent to ``where``."""
    logger = logging.getLogger("labledger.requests")
    logger.propagate = False  # the line as it is, not under the root logger's format
    if where == "off":
        logger.setLevel(logging.WARNING)
        return logger
    try:
        handler = logging.StreamHandler() if where == "-" else logging.FileHandler(where)
    except OSError as exc:
        raise InvalidArgument(
            f"--request-log {where}: cannot write it ({exc.strerror or exc}); give a file in a "
            "folder that exists, - for stderr or off"
        ) from None
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The user's name.")],
    archive: ArchiveOption,
    project: Annotated[str, typer.Option(help="The project the role is in.")] = "default",
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "reader",
) -> None:
    """Add a user, or change their role in a project."""
    with opened(archive) as la:
        Access(la.catalog).add_user(name, project=project, role=role, by=author())
    out.print(f"{name} is {role} in project {project}")


@user_app.command("list")
def user_list(archive: ArchiveOption, as_json: JsonOption = False) -> None:
    """The users and their roles."""
    with opened(archive) as la:
        users = Access(la.catalog).users()
    if as_json:
        print_json(users)
        return
    table = fitted_table("user", "roles", "created", "by")
    for u in users:
        roles = ", ".join(f"{role} in {p}" for p, role in sorted(u["roles"].items()))
        table.add_row(u["name"], roles, u["created"][:19], u["created_by"])
    out.print(table)


@key_app.command("create")
def key_create(
    user: Annotated[str, typer.Argument(help="Whose key.")],
    archive: ArchiveOption,
    scopes: Annotated[str, typer.Option(help=f"Comma-separated: {', '.join(SCOPES)}.")] = "read",
    days: Annotated[int, typer.Option(help="Days until it expires.")] = 365,
    note: Annotated[str, typer.Option(help="What it is for.")] = "",
) -> None:
    """Make an API key; it is printed once and kept only as a hash."""
    if days < 1:
        raise InvalidArgument(f"--days {days}: a key lives at least a day")
    with opened(archive) as la:
        key = Access(la.catalog).create_key(
            user,
            scopes=[s.strip() for s in scopes.split(",") if s.strip()],
            expires=timedelta(days=days),
            note=note,
            by=author(),
        )
    out.print(key)


@key_app.command("list")
def key_list(
    archive: ArchiveOption,
    user: Annotated[str | None, typer.Option(help="Only this user's keys.")] = None,
    as_json: JsonOption = False,
) -> None:
    """The keys (never their secrets)."""
    with opened(archive) as la:
        keys = Access(la.catalog).keys(user)
    if as_json:
        print_json(keys)
        return
    table = fitted_table("id", "user", "scopes", "expires", "revoked", "note")
    for k in keys:
        table.add_row(
            k["id"],
            k["user"],
            ",".join(k["scopes"]),
            (k["expires"] or "never")[:19],
            (k["revoked"] or "")[:19],
            k["note"],
        )
    out.print(table)


@key_app.command("revoke")
def key_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (`labledger key list`).")],
    archive: ArchiveOption,
) -> None:
    """Revoke a key at once."""
    with opened(archive) as la:
        Access(la.catalog).revoke_key(key_id, by=author())
    out.print(f"key {key_id} revoked")
