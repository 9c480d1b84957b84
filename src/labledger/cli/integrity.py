"""``labledger check [--repair]``: every run's raw files and arrays against the catalog, and the
folders killed ingests left behind."""

from __future__ import annotations

from typing import Annotated

import typer

from labledger.cli.app import (
    ArchiveOption,
    JsonOption,
    app,
    opened,
    out,
    print_json,
    progress_bar,
)
from labledger.display import human_size
from labledger.records import OLDER_THAN_MINUTES
from labledger.reports import CheckReport, Orphan


@app.command()
def check(
    archive: ArchiveOption,
    repair: Annotated[
        bool,
        typer.Option("--repair", help="Remove the folders no run names (never one a run names)."),
    ] = False,
    older_than: Annotated[
        float,
        typer.Option(
            "--older-than",
            help="Minutes: --repair spares younger folders, which an ingest may be writing.",
        ),
    ] = OLDER_THAN_MINUTES,
    as_json: JsonOption = False,
) -> None:
    """Re-hash every raw file, read every array through, and list orphan folders; exit 1,
    naming the run and file, if recorded bytes changed."""
    with opened(archive) as la, progress_bar("checking") as progress:
        report = la.check(repair=repair, older_than=older_than, progress=progress)
    if as_json:
        print_json(report.to_json())
    else:
        for line in lines(report, older_than):
            out.print(line)
    if not report.ok:
        raise typer.Exit(1)


def lines(report: CheckReport, older_than: float) -> list[str]:
    """The report as a person reads it: what is damaged, the orphans, then a summary."""
    found = [p.message() for p in report.problems] + [_orphan(o) for o in report.orphans]
    summary = (
        f"checked {report.runs} runs: {report.files} raw files and {report.arrays} arrays "
        f"({human_size(report.bytes_read)} read)"
    )
    summary += "; all as recorded" if report.ok else f"; {len(report.problems)} damaged"
    if report.orphans:
        removed = sum(o.removed for o in report.orphans)
        summary += f"; {len(report.orphans)} orphan folders"
        if report.repair:
            summary += f", {removed} removed"
        else:
            summary += f" (--repair removes those untouched for {older_than:g} min)"
    return [*found, summary]


def _orphan(orphan: Orphan) -> str:
    text = f"orphan folder {orphan.key}: {human_size(orphan.bytes)}"
    if orphan.age_s is not None:
        text += f", last written {_ago(orphan.age_s)}"
    if orphan.removed:
        return text + " (removed)"
    return text + (f" (kept: {orphan.kept})" if orphan.kept else "")


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"
