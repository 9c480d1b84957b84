"""The ``labledger`` command.

Every command that works on an archive takes ``--archive`` (or ``LABLEDGER_ARCHIVE``); every
listing takes ``--json``. A user's mistake or bad input is one line on stderr and a non-zero
exit, not a traceback. Text from files (names, attributes) is printed as it is: never read as
rich markup.
"""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Iterator
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
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)

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
def _opened(archive: Path) -> Iterator[labledger.Archive]:
    la = labledger.open(archive)
    try:
        yield la
    finally:
        la.close()


def _run(la: labledger.Archive, ref: str) -> Run:
    if ref in ("latest", "newest", "last"):
        return la.runs[-1]
    if ref.isdigit():
        return la.runs[int(ref)]
    return la.runs[ref]


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="The folder to create the archive in.")],
    catalog: Annotated[
        str | None,
        typer.Option(help="A PostgreSQL URL for a shared catalog (default: SQLite in the folder)."),
    ] = None,
    store: Annotated[
        str | None, typer.Option(help="Where arrays and raw files go, e.g. s3://bucket/prefix.")
    ] = None,
    store_option: Annotated[
        list[str] | None,
        typer.Option(help="KEY=VALUE passed to the store, e.g. endpoint_url=http://..."),
    ] = None,
) -> None:
    """Create an archive: one folder, embedded by default."""
    options = _pairs(store_option or [], "--store-option")
    la = labledger.init(path, catalog=catalog, store=store, storage_options=options)
    la.close()
    out.print(
        f"Created the archive {path} (catalog: {la.catalog.display_url}; store: {la.store.url})"
    )
    out.print(f"Next: labledger ingest --archive {path} FILE...")


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Raw files: TDMS, HDF5/NeXus, CSV.")],
    archive: ArchiveOption,
    run: Annotated[
        int | None, typer.Option("--run", help="Make all the files one run with this number.")
    ] = None,
    format: Annotated[
        str | None, typer.Option("--format", help="Skip format detection: tdms, hdf5, csv.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest raw files: each becomes a run, kept byte for byte and catalogued."""
    with _opened(archive) as la, _progress() as progress:
        results = la.ingest(files, run=run, format=format, progress=progress)
    if as_json:
        _print_json([r.to_json() for r in results])
        return
    for result in results:
        out.print(result.message())


@contextmanager
def _progress() -> Iterator[Any]:
    """A byte progress bar on a terminal; nothing at all in a pipe."""
    if not err.is_terminal:
        yield None
        return
    columns = (
        TextColumn("ingesting"),
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


@app.command()
def runs(
    archive: ArchiveOption,
    since: Annotated[str | None, typer.Option(help="Started on or after (2026-11-01).")] = None,
    until: Annotated[str | None, typer.Option(help="Started before.")] = None,
    source: Annotated[
        str | None, typer.Option(help="Made from this raw file (name or sha256).")
    ] = None,
    where: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE metadata to match, e.g. gas=Ar.")
    ] = None,
    limit: Annotated[
        int, typer.Option(help="Show at most this many (the highest numbers); 0 for all.")
    ] = 50,
    as_json: JsonOption = False,
) -> None:
    """List runs by number (the highest last)."""
    if limit < 0:
        raise InvalidArgument(f"--limit must not be negative, got {limit}")
    with _opened(archive) as la:
        conditions = {k: _values(v) for k, v in _pairs(where or [], "--where").items()}
        if since or until or source or conditions:
            found = la.runs.search(since=since, until=until, source=source, where=conditions)
            total, shown = len(found), found[-limit:] if limit else found
        else:
            total = len(la.runs)
            shown = la.runs.last(limit) if limit else list(la.runs)
        if as_json:
            _print_json([r.to_dict() for r in shown])
            return
        table = Table("run", "started (UTC)", "state", "channels", "size", box=None)
        table.add_column("sources", overflow="fold")
        for r in shown:
            summary = r.to_dict()
            table.add_row(
                str(r.number),
                f"{r.started:%Y-%m-%d %H:%M:%S}",
                r.state,
                str(summary["channels"]),
                _size(summary["data_bytes"]),
                ", ".join(summary["sources"]),
            )
        out.print(table)
        if total > len(shown):
            out.print(f"({total - len(shown)} more: --limit 0 shows them all)")
        if not total:
            out.print("no runs" + ("" if conditions or since or until or source else " yet"))


@app.command()
def show(
    run: RunArgument,
    archive: ArchiveOption,
    as_json: JsonOption = False,
) -> None:
    """A run's metadata, raw files with sha256, channels and structure tree."""
    with _opened(archive) as la:
        r = _run(la, run)
        if as_json:
            _print_json(r.to_dict(full=True))
            return
        ended = f" to {r.ended:%Y-%m-%d %H:%M:%S}" if r.ended else ""
        out.print(Text(f"run {r.number}", style="bold") + Text(f"  {r.state}  id {r.id}"))
        out.print(f"started {r.started:%Y-%m-%d %H:%M:%S.%f} UTC{ended}")
        out.print()
        files = Table("raw file", "format", "size", box=None)
        files.add_column("sha256", overflow="fold", no_wrap=False, min_width=64)
        for s in r.sources:
            files.add_row(s.name, s.format, _size(s.size), s.sha256)
        out.print(files)
        for s in r.sources:
            for problem in s.problems:
                out.print(f"  not ingested: {problem}")
        out.print()
        meta = Table("metadata", "value", box=None)
        for key, value in r.metadata.items():
            meta.add_row(key, str(value))
        out.print(meta)
        out.print()
        out.print(str(r.tree()))


@app.command()
def export(
    run: RunArgument,
    archive: ArchiveOption,
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write.")],
    format: Annotated[
        str, typer.Option("--format", help="hdf5 (NeXus where the source was).")
    ] = "hdf5",
) -> None:
    """Export a run to a file: its tree, attributes and values."""
    with _opened(archive) as la:
        r = _run(la, run)
        r.export(output, format=format)
    out.print(f"run {r.number} written to {output}")


@app.command()
def migrate(archive: ArchiveOption) -> None:
    """Bring the archive's catalog to this version's schema (back it up first)."""
    from labledger.archive import migrate_catalog

    version = migrate_catalog(archive)
    out.print(f"the catalog of {archive} is at schema version {version}")


@app.command()
def demo(
    folder: Annotated[
        Path, typer.Argument(help="Where to put the simulated DAQ files and the archive.")
    ] = Path("labledger-demo"),
    shots: Annotated[int, typer.Option(help="How many shots to simulate.")] = 5,
) -> None:
    """Simulate a helicon testbed: write raw LabVIEW shots, ingest them, show what to try."""
    from labledger.sim import write_shots

    if shots < 1:
        raise InvalidArgument(f"--shots must be at least 1, got {shots}")
    daq, archive = folder / "daq", folder / "archive"
    numbers = range(1001, 1001 + shots)
    paths = write_shots(daq, numbers)
    out.print(f"The simulated testbed wrote {len(paths)} LabVIEW shot files to {daq}/")
    la = (
        labledger.open(archive)
        if (archive / "labledger.toml").exists()
        else labledger.init(archive)
    )
    with la, _progress() as progress:
        results = la.ingest(paths, progress=progress)
    for result in results:
        out.print("  " + result.message())
    last = numbers[-1]
    out.print(
        f"""
The archive is {archive}/. Try:

  export LABLEDGER_ARCHIVE={archive}
  labledger runs
  labledger show {last}
  labledger runs --where gas=Ar --json
  labledger export {last} -o shot{last}.h5

or, in Python:

  import labledger as ll
  la = ll.open("{archive}")
  run = la.runs[-1]
  run.channels["PXI M6251/ai3"][10_000:20_000]      # raw ADC counts, read by the slice
  run.channels["PXI M6251/ai3"].to_xarray()         # with the time axis
  la.runs.search(gas="Ar")"""
    )


def _pairs(items: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{option} takes KEY=VALUE, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def _values(text: str) -> list[Any]:
    """What a ``--where`` value may match: the text itself, and the number or boolean it
    spells (a version "1.0" is text in one file and a number in another)."""
    spelled = {"true": True, "false": False}.get(text.lower(), parse_number(text))
    return [text] if spelled == text else [text, spelled]


if __name__ == "__main__":
    main()
