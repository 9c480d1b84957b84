"""Commands on lineage: products, their lineage, what is stale, recomputing and reproducing,
processing-level events, and the OpenLineage export."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from labledger.cli.app import (
    ArchiveOption,
    JsonOption,
    app,
    fitted_table,
    opened,
    out,
    print_json,
    run_ref,
)
from labledger.errors import InvalidArgument
from labledger.ids import short

FORMATS = ("tree", "dot", "json")


@app.command()
def products(
    archive: ArchiveOption,
    step: Annotated[str | None, typer.Option(help="Only this step (module:function).")] = None,
    run: Annotated[int | None, typer.Option(help="Only products of this run.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="The failed computations.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    wide: Annotated[
        bool, typer.Option("--wide", help="Also who made each, and the whole id.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Products steps made (and failed computations), newest first."""
    if limit < 1:
        raise InvalidArgument(f"--limit must be at least 1, got {limit}")
    with opened(archive) as la:
        found = la.products.search(
            step=step, run=run, status="failed" if failed else "complete", limit=limit
        )
        rows = [p.to_dict() for p in found]
    if as_json:
        print_json(rows)
        return
    # every column named, none cut: a long step or error folds onto more lines
    columns = ["id", "step", "run", "kind", "made (UTC)"]
    columns += ["by"] if wide else []
    columns += ["error"] if failed else []
    table = fitted_table(*columns)
    for p in rows:
        cells = {
            "id": p["id"] if wide else short(p["id"]),
            "step": f"{p['step']}@{p['step_version']}",
            "run": "" if p["run"] is None else str(p["run"]),
            "kind": p["kind"],
            "made (UTC)": p["created"][:16].replace("T", " "),
            "by": p["author"],
            "error": p["error"] or "",
        }
        table.add_row(*(cells[name] for name in columns))
    out.print(table)
    if not rows:
        out.print("no products" + (" failed" if failed else " yet"))


@app.command()
def lineage(
    ref: Annotated[
        str,
        typer.Argument(
            help="A product id (or its first 8+ characters); with --down also a run number."
        ),
    ],
    archive: ArchiveOption,
    down: Annotated[
        bool, typer.Option("--down", help="What it fed, not what it came from.")
    ] = False,
    format: Annotated[str, typer.Option("--format", help="tree, dot (graphviz) or json.")] = "tree",
    depth: Annotated[int | None, typer.Option(help="At most this many steps away.")] = None,
) -> None:
    """Everything a product came from (runs, raw files, other products), or everything it fed."""
    if format not in FORMATS:
        raise InvalidArgument(f"--format {format!r}: one of {', '.join(FORMATS)}")
    with opened(archive) as la:
        graph = la.lineage(run_ref(ref), "down" if down else "up", depth)
    if format == "json":
        print_json(graph.to_dict())
    elif format == "dot":
        print(graph.to_dot())
    else:
        out.print(graph.tree())


@app.command()
def stale(archive: ArchiveOption, as_json: JsonOption = False) -> None:
    """Products that no longer reflect their inputs, with the reasons."""
    with opened(archive) as la:
        found = [s.to_dict() for s in la.stale()]
    if as_json:
        print_json(found)
        return
    if not found:
        out.print("Nothing is stale: every current product reflects its inputs.")
        return
    for s in found:
        where = f" run {s['run']}" if s["run"] is not None else ""
        out.print(f"{short(s['id'])}  {s['step']}@{s['step_version']}{where} [{s['kind']}]")
        for reason in s["reasons"]:
            out.print(f"    {reason}")
    out.print(f"{len(found)} stale; `labledger recompute` computes them again.")


@app.command()
def recompute(archive: ArchiveOption, as_json: JsonOption = False) -> None:
    """Compute the stale products again (their steps must be importable here); the new ones
    supersede the old, which stay readable."""
    with opened(archive) as la:
        made = [p.to_dict() for p in la.recompute(stale=True)]
    if as_json:
        print_json(made)
        return
    for p in made:
        where = f" run {p['run']}" if p["run"] is not None else ""
        out.print(f"{short(p['id'])}  {p['step']}@{p['step_version']}{where} [{p['kind']}]")
    out.print(f"{len(made)} products made." if made else "Nothing was stale.")


@app.command()
def reproduce(
    ref: Annotated[str, typer.Argument(help="A product id (or its first 8+ characters).")],
    archive: ArchiveOption,
    as_json: JsonOption = False,
) -> None:
    """Run a product's step again on exactly what it read; say whether the output is
    identical, and what differs in code and environment. Exit status 1 if it is not."""
    with opened(archive) as la:
        result = la.reproduce(ref)
    if as_json:
        print_json(result.to_dict())
    else:
        out.print(str(result))
    if not result.identical:
        raise typer.Exit(1)


@app.command()
def events(
    archive: ArchiveOption,
    level: Annotated[int, typer.Option(help="The processing level.")],
    with_parent: Annotated[
        int | None, typer.Option("--with-parent", help="Join each event to its ancestor there.")
    ] = None,
    run: Annotated[list[int] | None, typer.Option(help="Only these runs (repeat it).")] = None,
    limit: Annotated[int, typer.Option(help="Print at most this many rows.")] = 20,
    count: Annotated[bool, typer.Option("--count", help="Only how many.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Events of a processing level, optionally with their parent events at a lower level."""
    if limit < 0:
        raise InvalidArgument(f"--limit must not be negative, got {limit}")
    with opened(archive) as la:
        query = la.events(level=level, runs=run or None)
        if with_parent is not None:
            query = query.with_parent(level=with_parent)
        if count:
            n = query.count()
            print_json({"level": level, "count": n}) if as_json else out.print(str(n))
            return
        frame = query.to_pandas()
    shown = frame.head(limit)
    if as_json:
        print(shown.to_json(orient="records", date_format="iso"))
        return
    out.print(shown.to_string(index=False) if len(shown) else "(no events)")
    if len(frame) > limit:
        out.print(f"... {len(frame)} events in all (--limit to see more, --json for scripts)")


@app.command()
def openlineage(
    archive: ArchiveOption,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here, not to stdout.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Only computations since this date.")] = None,
) -> None:
    """Every computation as OpenLineage run events (START, COMPLETE/FAIL), as JSON lines."""
    with opened(archive) as la:
        found = la.openlineage(since=since)
    lines = "".join(json.dumps(e) + "\n" for e in found)
    if output is None:
        sys.stdout.write(lines)
        return
    try:
        output.write_text(lines)
    except OSError as exc:
        raise InvalidArgument(
            f"--output {output}: cannot write it ({exc.strerror or exc})"
        ) from None
    out.print(f"{len(found)} events written to {output}")
