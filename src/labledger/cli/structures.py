"""Commands on structure descriptions: add a version, list them, show one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from labledger.cli.app import ArchiveOption, JsonOption, app, fitted_table, opened, out, print_json

structure_app = typer.Typer(
    help="Structure descriptions of kinds of run (YAML, versioned): add, list, show.",
    no_args_is_help=True,
)
app.add_typer(structure_app, name="structure")


@structure_app.command("add")
def structure_add(
    file: Annotated[Path, typer.Argument(help="The structure description (YAML).")],
    archive: ArchiveOption,
    reason: Annotated[str, typer.Option("--reason", help="Why: kept with the version.")],
) -> None:
    """Record a structure description as the next version of its name."""
    with opened(archive) as la:
        structure = la.structures.add(file, reason=reason)
    if structure.already:
        out.print(f"structure {structure.label} is the same text: nothing recorded")
        return
    out.print(f"structure {structure.label} recorded: {structure!r}")


@structure_app.command("list")
def structure_list(
    archive: ArchiveOption,
    name: Annotated[str | None, typer.Argument(help="Only this structure's versions.")] = None,
    as_json: JsonOption = False,
) -> None:
    """The newest version of each structure (with NAME: its every version)."""
    with opened(archive) as la:
        found = la.structures.list(name)
    if as_json:
        print_json([s.to_dict() for s in found])
        return
    table = fitted_table("structure", "levels", "always saved", "by", "reason", "made (UTC)")
    for s in found:
        table.add_row(
            s.label,
            " > ".join(level.name for level in s.levels),
            ", ".join(s.always_saved) or "-",
            s.author or "",
            s.reason or "",
            f"{s.created:%Y-%m-%d %H:%M:%S}" if s.created else "",
        )
    out.print(table)
    if not found:
        out.print("no structures yet: labledger structure add FILE.yaml --reason ...")


@structure_app.command("show")
def structure_show(
    name: Annotated[str, typer.Argument(help="A structure's name, or name@VERSION.")],
    archive: ArchiveOption,
    as_json: JsonOption = False,
) -> None:
    """A structure: its levels and their parameters, what is always saved, and its YAML."""
    with opened(archive) as la:
        s = la.structures[name]
    if as_json:
        print_json({**s.to_dict(), "text": s.text})
        return
    out.print(Text(s.label, style="bold") + Text(f"  {s.description}" if s.description else ""))
    out.print(f"recorded by {s.author} at {s.created:%Y-%m-%d %H:%M:%S} UTC: {s.reason}")
    table = fitted_table("level", "parameter", "type", "unit", "required", "allowed")
    for level in s.levels:
        if not level.parameters:
            table.add_row(level.name, "-", "", "", "", "")
        for p in level.parameters:
            allowed = (
                p.rule() if p.allowed is not None or p.min is not None or p.max is not None else ""
            )
            table.add_row(
                level.name, p.name, p.type, p.unit or "", "yes" if p.required else "no", allowed
            )
    out.print(table)
    out.print(f"always saved: {', '.join(s.always_saved) or 'nothing'}")
