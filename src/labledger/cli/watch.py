"""``labledger watch DIR``: the drop folder an acquisition writes to, ingested as it fills
(:mod:`labledger.dropfolder`)."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from labledger.cli.app import ArchiveOption, JsonOption, app, err, opened, out, pairs
from labledger.dropfolder import GIVE_UP, INTERVAL, SETTLE, DropFolder, Outcome
from labledger.ids import DEFAULT_PROJECT

_TO_STDERR = ("failed", "gone", "unreadable", "waiting", "archive")


@app.command()
def watch(
    folder: Annotated[Path, typer.Argument(help="The folder the acquisition writes files to.")],
    archive: ArchiveOption,
    once: Annotated[
        bool, typer.Option("--once", help="Take what is there now (waiting --settle), then stop.")
    ] = False,
    settle: Annotated[
        float,
        typer.Option(
            help="Seconds a file stays unchanged before it is taken; longer for files written "
            "over a network share, where a writer's open file cannot be seen.",
            min=0,
        ),
    ] = SETTLE,
    give_up: Annotated[
        float,
        typer.Option(
            help="Seconds a file that does not read stays unchanged before it is "
            "reported; until then it may still be being written.",
            min=0,
        ),
    ] = GIVE_UP,
    interval: Annotated[
        float, typer.Option(help="Seconds between two looks at the folder.", min=0.01)
    ] = INTERVAL,
    retry: Annotated[
        bool, typer.Option("--retry", help="Try again the files reported as failed before.")
    ] = False,
    project: Annotated[str, typer.Option(help="The project the runs belong to.")] = DEFAULT_PROJECT,
    format: Annotated[
        str | None, typer.Option("--format", help="Skip format detection: tdms, hdf5, csv.")
    ] = None,
    limit: Annotated[
        list[str] | None,
        typer.Option(help="NAME=N: raise a limit on what a file may declare, e.g. columns=50000."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest the raw files written to FOLDER, each once, once whole; until Ctrl-C, or --once.
    What cannot be ingested is reported once (and kept in the archive's watch/ folder), not
    tried again until the file changes."""
    limits = pairs(limit or [], "--limit")
    failed = 0

    def say(outcome: Outcome) -> None:
        nonlocal failed
        failed += outcome.kind == "failed"
        if as_json:
            print(json.dumps(outcome.to_json()), flush=True)
        else:
            (err if outcome.kind in _TO_STDERR else out).print(outcome.message)

    with opened(archive) as la:
        drop = DropFolder(
            la,
            folder,
            settle=settle,
            give_up=max(give_up, settle),
            project=project,
            format=format,
            limits=limits,
        )
        if retry:
            drop.forget_failures()
        elif drop.failed:
            err.print(
                f"{len(drop.failed)} files of {folder} were reported as not ingestible "
                f"before ({drop.state}); --retry tries them again"
            )
        if once:
            for outcome in drop.once():
                say(outcome)
            raise typer.Exit(1 if failed else 0)
        err.print(
            f"watching {folder} for {la}: files unchanged for {settle:g} s that no "
            "process here writes to are ingested; Ctrl-C stops"
        )
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():  # a service stops: SIGTERM
            signal.signal(signal.SIGTERM, lambda number, frame: stop.set())
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C
            drop.run(stop, interval=interval, announce=say)
        err.print(f"stopped watching {folder}")
