"""The ``labledger`` command's frame: the Typer app, its consoles, the options every command
shares, and the entry point that turns a user's mistake into one line and exit status 1.

Every command that works on an archive takes ``--archive`` (or ``LABLEDGER_ARCHIVE``); every
listing takes ``--json``. Text from files (names, attributes) is printed as it is: never read as
rich markup.
"""

from __future__ import annotations

import difflib
import gc
import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

import labledger
from labledger.errors import InvalidArgument, LabledgerError
from labledger.formats.values import parse_number
from labledger.runs import Run

app = typer.Typer(
    name="labledger",
    help="A data platform for experiments: raw acquisitions in; catalogued, checksummed, "
    "sliceable data out.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)
PIPE_WIDTH = 200  # a pipe or a file: tables as wide as they need, not 80 columns


def _fit_width() -> None:
    """Tables as wide as ``COLUMNS`` says when it is set (read at each command, not once at
    import, so that a caller in the same process may change it), else as the terminal, else
    :data:`PIPE_WIDTH`."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        out.width = int(columns)
    elif not out.is_terminal:
        out.width = PIPE_WIDTH


_fit_width()

ArchiveOption = Annotated[
    Path,
    typer.Option(
        "--archive",
        "-a",
        envvar="LABLEDGER_ARCHIVE",
        help="The archive folder (or set LABLEDGER_ARCHIVE).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
RunArgument = Annotated[str, typer.Argument(help="A run number, a run id, or 'latest'.")]


def _print_version(asked: bool) -> None:
    if asked:
        out.print(f"labledger {labledger.__version__}")
        raise typer.Exit()


@app.callback()
def _everywhere(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Options of ``labledger`` itself, before a command."""
    _fit_width()


def main(argv: list[str] | None = None) -> None:
    """The console entry point: user mistakes become one line and exit status 1."""
    # what is alive now (the imported libraries) lives as long as the process: keep the cycle
    # collector, 8% of a 2 GB ingest's CPU in perf, from walking it at every full collection
    gc.freeze()
    try:
        app(args=argv, prog_name="labledger")
    except LabledgerError as exc:
        err.print(Text("error: ", style="red") + Text(str(exc)))
        sys.exit(1)


@contextmanager
def opened(archive: Path) -> Iterator[labledger.Archive]:
    la = labledger.open(archive)
    try:
        yield la
    finally:
        la.close()


def unknown_keys(la: labledger.Archive, keys: Iterable[str]) -> list[str]:
    """A line for each of ``keys`` that no run has as a metadata key, with the keys runs do
    have that are spelled closest to it: what a search on it finding nothing means."""
    asked = list(keys)
    known = la.catalog.known_keys(asked) if asked else set()
    missing = [k for k in asked if k not in known]
    if not missing:
        return []
    have = la.catalog.metadata_keys()
    lines = []
    for key in missing:
        close = difflib.get_close_matches(key, have, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        lines.append(
            f"no run has the metadata key {key!r}{hint} (`labledger show RUN` lists a run's keys)"
        )
    return lines


def run_ref(ref: str) -> int | str:
    """A run as typed: a number (ASCII digits, short enough to be one), else a run id."""
    return int(ref) if ref.isascii() and ref.isdigit() and len(ref) <= 19 else ref


def run_of(la: labledger.Archive, ref: str) -> Run:
    if ref in ("latest", "newest", "last"):
        return la.runs[-1]
    return la.runs[run_ref(ref)]


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


@contextmanager
def progress_bar(what: str = "ingesting") -> Iterator[Any]:
    """A byte progress bar on a terminal; nothing at all in a pipe."""
    if not err.is_terminal:
        yield None
        return
    columns = (
        TextColumn(what),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("ingest", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def fitted_table(*headers: str) -> Table:
    """A table that fits the width without cutting a cell: a column too narrow for its text
    folds it onto more lines (rich would end it with "…" and lose the rest)."""
    table = Table(box=None)
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def pairs(items: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{option} takes KEY=VALUE, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def match_values(text: str) -> list[Any]:
    """What a ``--where`` value may match: the text itself, and the number or boolean it
    spells (a version "1.0" is text in one file and a number in another)."""
    spelled = {"true": True, "false": False}.get(text.lower(), parse_number(text))
    return [text] if spelled == text else [text, spelled]
