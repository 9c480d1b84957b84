"""Commands on data quality: flags (add, list, withdraw) and good-run lists."""

from __future__ import annotations

import re
import warnings
from typing import Annotated

import typer
from rich.text import Text

from labledger.cli.app import (
    ArchiveOption,
    JsonOption,
    app,
    err,
    fitted_table,
    match_values,
    opened,
    out,
    pairs,
    print_json,
    unknown_keys,
)
from labledger.errors import DataWarning, InvalidArgument

flag_app = typer.Typer(
    help="Data-quality flags on runs and intervals: add, list, withdraw.", no_args_is_help=True
)
app.add_typer(flag_app, name="flag")

_SPAN = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
_MAX_SPAN = 1_000_000  # a typo like 1200-120000000 should not build a list of 120 million


@flag_app.command("add")
def flag_add(
    archive: ArchiveOption,
    run: Annotated[int | None, typer.Option("--run", help="The run to flag.")] = None,
    runs: Annotated[
        str | None, typer.Option("--runs", help="Several runs: 1200-1209, 1200,1203 or both.")
    ] = None,
    subsystem: Annotated[
        str | None, typer.Option(help="Whose verdict it is, e.g. power or probe.")
    ] = None,
    severity: Annotated[str | None, typer.Option(help="good, warning or bad.")] = None,
    reason: Annotated[str, typer.Option(help="Why: kept with the flag.")] = "",
    start: Annotated[
        float | None, typer.Option(help="Flag from this time (s on the run's time axis).")
    ] = None,
    stop: Annotated[float | None, typer.Option(help="... until this time (s).")] = None,
    supersedes: Annotated[
        int | None, typer.Option(help="The id of the active flag this one corrects.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Flag whole runs, or an interval of them, for a subsystem, with a reason."""
    numbers = parse_runs(runs) if runs is not None else None
    with opened(archive) as la:
        flag = la.flag(
            runs=numbers,
            run=run,
            start=start,
            stop=stop,
            subsystem=subsystem,
            severity=severity,
            reason=reason,
            supersedes=supersedes,
        )
    if as_json:
        print_json(flag.to_dict())
        return
    corrects = f"; it supersedes flag {flag.supersedes}" if flag.supersedes else ""
    out.print(
        f"flag {flag.id} recorded: {flag.subsystem} {flag.severity} on {flag.where} "
        f"({flag.reason}){corrects}"
    )


@flag_app.command("list")
def flag_list(
    archive: ArchiveOption,
    run: Annotated[int | None, typer.Option("--run", help="Only flags on this run.")] = None,
    subsystem: Annotated[str | None, typer.Option(help="Only this subsystem's flags.")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="The history too: superseded and withdrawn flags.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """The flags in force (with --all, every flag ever recorded, with its status)."""
    with opened(archive) as la:
        found = la.flags.list(run=run, subsystem=subsystem, include_inactive=all_)
    if as_json:
        print_json([f.to_dict() for f in found])
        return
    from labledger.quality import Flag

    table = fitted_table(*Flag.COLUMNS)
    for f in found:
        table.add_row(*f.row())
    out.print(table)
    if not found:
        scope = f" on run {run}" if run is not None else ""
        scope += f" of {subsystem}" if subsystem is not None else ""
        hint = "" if all_ else " (--all shows withdrawn and superseded ones)"
        out.print(f"no flags{scope}{hint}")


@flag_app.command("withdraw")
def flag_withdraw(
    flag_id: Annotated[int, typer.Argument(help="The id of the flag to withdraw.")],
    archive: ArchiveOption,
    reason: Annotated[str, typer.Option(help="Why: kept in the history.")] = "",
) -> None:
    """Withdraw an active flag: it stops counting, and stays in the history."""
    with opened(archive) as la:
        la.flags.withdraw(flag_id, reason=reason)
    out.print(f"flag {flag_id} withdrawn ({reason.strip()})")


@app.command()
def goodruns(
    archive: ArchiveOption,
    name: Annotated[
        str | None, typer.Argument(help="The list's name (name@N for a version); none: list all.")
    ] = None,
    where: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE metadata the runs must have, e.g. gas=Ar.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Runs started on or after (2026-11-01).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Runs started before.")] = None,
    require: Annotated[
        str | None,
        typer.Option(help="Subsystems whose bad flags exclude a run, e.g. power,probe (else any)."),
    ] = None,
    version: Annotated[int | None, typer.Option(help="Show this version.")] = None,
    reason: Annotated[str, typer.Option(help="Why this list: kept with it.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Good-run lists. With --where/--since/--until/--require: make a new version (if its
    content changed). Without: show the newest version (or --version N), or all lists."""
    conditions = {k: match_values(v) for k, v in pairs(where or [], "--where").items()}
    required = [s.strip() for s in (require or "").split(",") if s.strip()]
    making = bool(conditions or since or until or required)
    if name is None:
        if making or version is not None:
            raise InvalidArgument("name the good-run list: labledger goodruns NAME ...")
        _list_all(archive, as_json)
        return
    from labledger.quality.recorded import GoodRunLists

    with opened(archive) as la, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        lists = GoodRunLists(la.runs, la.catalog)
        if making:
            if version is not None:
                raise InvalidArgument(
                    "--version shows a recorded list; --where/--since/--require make a new one"
                )
            query = {"where": conditions, "since": since, "until": until}
            grl, recorded = lists.make(name, query=query, require=required, reason=reason)
        else:
            grl, recorded = lists.get(name, version), False
        changes = la.flags.version - grl.flags_seen
        unknown = unknown_keys(la, conditions) if making and not len(grl) else []
    for warning in caught:  # the CLI's way: one line, no Python file:line
        if issubclass(warning.category, DataWarning):
            err.print(Text("note: ", style="yellow") + Text(str(warning.message)))
    if as_json:
        print_json({**grl.to_dict(), "recorded": recorded} if making else grl.to_dict())
        return
    livetime = "unknown" if grl.livetime is None else f"{grl.livetime:g} s"
    summary = f"{len(grl)} runs, livetime {livetime}"
    for line in unknown:  # a mistyped key, rather than an empty list and no word why
        err.print(Text("note: ", style="yellow") + Text(line))
    if making and not recorded:
        out.print(f"good-run list {grl.label} unchanged (same content): {summary}")
    elif making:
        out.print(f"good-run list {grl.label} recorded: {summary}")
    else:
        out.print(Text(f"good-run list {grl.label}", style="bold") + Text(f"  {summary}"))
    out.print(f"sha256 {grl.hash}")
    out.print(
        f"query {grl.query or 'all runs'}; require {', '.join(grl.require) or 'any subsystem'}"
    )
    out.print(
        f"made by {grl.author} at {grl.created:%Y-%m-%d %H:%M:%S} UTC"
        + (f" ({grl.reason})" if grl.reason else "")
    )
    if not making and changes > 0:
        out.print(
            f"note: the flags changed {changes} times since; make the list again to see the "
            "effect (labledger goodruns NAME --where ...)"
        )
    if making:
        return
    table = fitted_table("run", "livetime (s)", "excluded (s)")
    for number in grl.runs:
        seconds = grl.livetimes[number]
        excluded = ", ".join(f"{a:g}-{b:g}" for a, b in grl.excluded[number])
        table.add_row(str(number), "unknown" if seconds is None else f"{seconds:g}", excluded)
    if grl.runs:
        out.print(table)


def _list_all(archive: ArchiveOption, as_json: bool) -> None:
    from labledger.quality.recorded import GoodRunLists

    with opened(archive) as la:
        known = GoodRunLists(la.runs, la.catalog).versions()
    if as_json:
        print_json([{"name": n, "versions": v} for n, v in known.items()])
        return
    table = fitted_table("good-run list", "versions", "newest")
    for n, versions in known.items():
        table.add_row(n, str(len(versions)), f"{n}@{versions[-1]}")
    out.print(table)
    if not known:
        out.print("no good-run lists yet: labledger goodruns NAME --where KEY=VALUE --require ...")


def parse_runs(text: str) -> list[int]:
    """Run numbers from ``--runs``: numbers and spans separated by commas.

    >>> parse_runs("1200-1202,1210")
    [1200, 1201, 1202, 1210]
    """
    numbers: list[int] = []
    for part in text.split(","):
        m = _SPAN.match(part)
        first, last = (int(m[1]), int(m[2] or m[1])) if m else (0, -1)
        if m is None or last < first or last - first >= _MAX_SPAN:
            raise InvalidArgument(
                f"--runs {text!r}: give run numbers and spans, low to high, separated by "
                "commas, e.g. 1200-1209 or 1200,1203"
            )
        numbers.extend(range(first, last + 1))
    return numbers
