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
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
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
from labledger.errors import DataWarning, InvalidArgument, LabledgerError
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
if not out.is_terminal:  # a pipe or a file: tables as wide as they need, not 80 columns
    out.width = 200

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
def signal(
    run: RunArgument,
    name: Annotated[str, typer.Argument(help="The signal's name, e.g. Langmuir_I.")],
    archive: ArchiveOption,
    calibration: Annotated[
        str | None, typer.Option(help="Read under this calibration version, e.g. langmuir_i@1.")
    ] = None,
    start: Annotated[float | None, typer.Option(help="From this time (s).")] = None,
    stop: Annotated[float | None, typer.Option(help="Until this time (s).")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG plot of it here.")] = None,
    as_json: JsonOption = False,
) -> None:
    """A signal by its physical name: calibrated, with its time axis, and how it was resolved."""
    window = None if start is None and stop is None else (start, stop)
    if plot is not None and plot.suffix.lower() != ".png":
        raise InvalidArgument(f"--plot writes a PNG: give a file name ending in .png, not {plot}")
    with _opened(archive) as la, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        r = _run(la, run)
        values = r.signal(name, calibration=calibration, time=window)
    for warning in caught:  # one line each, not Python's file:line and source
        if issubclass(warning.category, DataWarning):
            err.print(Text("warning: ", style="yellow") + Text(str(warning.message)))
    attrs = dict(values.attrs)
    finite = values.values[np.isfinite(values.values)]
    summary = {
        "run": r.number,
        "signal": name,
        "samples": int(values.size),
        "units": attrs["units"],
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
        "mean": float(finite.mean()) if finite.size else None,
        "time": [float(values.time[0]), float(values.time[-1])]
        if "time" in values.coords and values.size
        else None,
        "attrs": attrs,
    }
    if plot is not None:
        _plot(values, plot)
        summary["plot"] = str(plot)
    if as_json:
        _print_json(summary)
        return
    out.print(
        Text(f"{name}", style="bold")
        + Text(f"  run {r.number}, {values.size} samples in {attrs['units']}")
    )
    if summary["time"]:
        out.print(f"time {summary['time'][0]:.6g} .. {summary['time'][1]:.6g} s")
    if finite.size:
        out.print(f"min {summary['min']:.6g}  mean {summary['mean']:.6g}  max {summary['max']:.6g}")
    for key in ("calibration", "channel", "port", "inputs", "input", "config_version", "nonfinite"):
        if key in attrs:
            out.print(f"{key}: {attrs[key]}")
    if plot is not None:
        out.print(f"plot written to {plot}")


def _plot(values: Any, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files, not windows: works with no screen
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4), layout="constrained")
    try:
        x = values.time.values if "time" in values.coords else np.arange(values.size)
        ax.plot(x, values.values, linewidth=0.6)
        ax.set_xlabel("time [s]" if "time" in values.coords else "sample")
        ax.set_ylabel(f"{values.name} [{values.attrs['units']}]")
        ax.set_title(
            f"run {values.attrs['run']}: {values.name}  ({values.attrs['calibration']}, "
            f"configuration {values.attrs['config_version']})"
        )
        ax.grid(alpha=0.3)
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise InvalidArgument(f"--plot {path}: cannot write it ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)


config_app = typer.Typer(
    help="The testbed's configuration history: show, diff, log, load, wire.", no_args_is_help=True
)
calib_app = typer.Typer(help="Versioned calibrations: list, add.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(calib_app, name="calib")

FromRun = Annotated[int | None, typer.Option("--from-run", help="In force from this run number.")]
FromTime = Annotated[str | None, typer.Option("--from-time", help="In force from this time (ISO).")]
Reason = Annotated[str, typer.Option("--reason", help="Why: kept in the history.")]


@config_app.command("show")
def config_show(
    archive: ArchiveOption,
    run: Annotated[str, typer.Option("--run", help="The run (number, id or 'latest').")] = "latest",
    as_json: JsonOption = False,
) -> None:
    """The configuration of a run: its version, the wiring, components and their properties."""
    with _opened(archive) as la:
        config = la.config.at(_run(la, run))
    if as_json:
        _print_json(config.to_dict())
        return
    d = config.description
    out.print(
        Text(f"{d.name}", style="bold")
        + Text(f"  run {config.run}, configuration version {config.version}")
    )
    for change in config.changes:
        out.print(f"  {change}")
    out.print()
    table = Table("signal", "unit", "calibration", "wired to", "channel", box=None)
    for name, spec in d.signals.items():
        port = config.wiring.get(name)
        table.add_row(
            name, spec.unit or "", spec.calibration or "", port or "-", config.channel(name) or "-"
        )
    out.print(table)
    out.print()
    for path, part in d.walk():
        depth = path.count("/")
        model = f" [{part.model}]" if part.model else ""
        props = ", ".join(f"{k}={v}" for k, v in part.properties.items())
        out.print(
            "  " * depth
            + f"{path.rpartition('/')[2]} ({part.kind}){model}"
            + (f": {props}" if props else "")
        )


@config_app.command("diff")
def config_diff(
    a: Annotated[str, typer.Argument(help="A run.")],
    b: Annotated[str, typer.Argument(help="Another run.")],
    archive: ArchiveOption,
    as_json: JsonOption = False,
) -> None:
    """What changed in the configuration between two runs, and which log entries changed it."""
    with _opened(archive) as la:
        diff = la.config.diff(_run(la, a), _run(la, b))
    if as_json:
        _print_json(diff.to_dict())
        return
    out.print(str(diff))


@config_app.command("log")
def config_log(archive: ArchiveOption, as_json: JsonOption = False) -> None:
    """Every entry of the configuration history, oldest first."""
    with _opened(archive) as la:
        log = la.config.log()
    if as_json:
        _print_json([c.to_dict() for c in log])
        return
    table = Table("version", "valid", "change", "author", "reason", "recorded (UTC)", box=None)
    for c in log:
        table.add_row(
            str(c.version),
            c.valid_from,
            c.summary,
            c.author,
            c.reason,
            f"{c.created:%Y-%m-%d %H:%M:%S}",
        )
    out.print(table)
    if not log:
        out.print("no configuration yet: labledger config load DESCRIPTION.yaml --reason ...")


@config_app.command("load")
def config_load(
    description: Annotated[Path, typer.Argument(help="The testbed description (YAML).")],
    archive: ArchiveOption,
    reason: Reason,
    from_run: FromRun = None,
    from_time: FromTime = None,
) -> None:
    """Record a testbed description, in force from a run or a time (else from the start)."""
    with _opened(archive) as la:
        change = la.config.load(description, reason=reason, from_run=from_run, from_time=from_time)
    out.print(f"configuration version {change.version}: {change.summary}, {change.valid_from}")


@config_app.command("wire")
def config_wire(
    moves: Annotated[list[str], typer.Argument(help="SIGNAL=DEVICE/PORT (or SIGNAL= to unwire).")],
    archive: ArchiveOption,
    reason: Reason,
    from_run: FromRun = None,
    from_time: FromTime = None,
) -> None:
    """Move signals to other ports, from a run or a time."""
    wiring = {k: (v or None) for k, v in _pairs(moves, "SIGNAL=PORT").items()}
    with _opened(archive) as la:
        change = la.config.wire(wiring, reason=reason, from_run=from_run, from_time=from_time)
    out.print(f"configuration version {change.version}: {change.summary}, {change.valid_from}")


@calib_app.command("list")
def calib_list(
    archive: ArchiveOption,
    name: Annotated[str | None, typer.Argument(help="Only this calibration's versions.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Every calibration version: kind, parameters, unit, validity, author and reason."""
    with _opened(archive) as la:
        found = la.calibrations.list(name)
    if as_json:
        _print_json([c.to_dict() for c in found])
        return
    table = Table(
        "calibration", "kind", "parameters", "unit", "valid", "author", "reason", box=None
    )
    for c in found:
        params = ", ".join(f"{k}={v}" for k, v in c.params.items())
        table.add_row(c.label, c.kind, params, c.unit, c.valid_from, c.author, c.reason)
    out.print(table)
    if not found:
        out.print("no calibrations yet: labledger calib add NAME --gain G --unit U --reason ...")


@calib_app.command("add")
def calib_add(
    name: Annotated[str, typer.Argument(help="The calibration's name, e.g. langmuir_i.")],
    archive: ArchiveOption,
    unit: Annotated[str, typer.Option(help="The unit it yields (pint), e.g. A.")],
    reason: Reason,
    gain: Annotated[float | None, typer.Option(help="linear: the gain.")] = None,
    offset: Annotated[float | None, typer.Option(help="linear: the offset.")] = None,
    poly: Annotated[
        str | None, typer.Option(help="polynomial: c0,c1,c2... (lowest first).")
    ] = None,
    table_x: Annotated[
        str | None, typer.Option("--table-x", help="table: x points, e.g. 0,1,2.")
    ] = None,
    table_y: Annotated[str | None, typer.Option("--table-y", help="table: y points.")] = None,
    expression: Annotated[
        str | None, typer.Option(help="expression over signals, e.g. 'RF_Pfwd - RF_Pref'.")
    ] = None,
    input: Annotated[
        str | None,
        typer.Option("--input", help="Chain onto this signal's value instead of the port."),
    ] = None,
    from_run: FromRun = None,
    from_time: FromTime = None,
) -> None:
    """Record a new calibration version: linear (--gain/--offset), polynomial (--poly), table
    (--table-x/--table-y) or expression (--expression)."""
    kinds = [k for k, given in (
        ("linear", gain is not None or offset is not None),
        ("polynomial", poly is not None),
        ("table", table_x is not None or table_y is not None),
        ("expression", expression is not None),
    ) if given]  # fmt: skip
    if len(kinds) != 1:
        raise InvalidArgument(
            "give one kind of calibration: --gain/--offset, --poly, --table-x/--table-y or "
            "--expression" + (f" (got {', '.join(kinds)})" if kinds else "")
        )
    params = {
        "linear": {"gain": gain, "offset": offset},
        "polynomial": {"coefficients": poly},
        "table": {"x": table_x, "y": table_y},
        "expression": {"expression": expression},
    }[kinds[0]]
    if input is not None:
        params["input"] = input
    with _opened(archive) as la:
        cal = la.calibrations.add(
            name,
            kind=kinds[0],
            unit=unit,
            reason=reason,
            from_run=from_run,
            from_time=from_time,
            **params,
        )
    out.print(f"calibration {cal.label} recorded: {cal.kind}, {cal.unit}, {cal.valid_from}")


@app.command()
def demo(
    folder: Annotated[
        Path, typer.Argument(help="Where to put the simulated DAQ files and the archive.")
    ] = Path("labledger-demo"),
    shots: Annotated[int, typer.Option(help="How many shots of the campaign to run.")] = 50,
) -> None:
    """Simulate the ISHTAR helicon testbed's campaign: its configuration history and
    calibrations, raw LabVIEW shots written and ingested one by one; then show what to try."""
    from labledger.sim import SHOTS, build

    if not 1 <= shots <= len(SHOTS):
        raise InvalidArgument(f"--shots must be 1 to {len(SHOTS)}, got {shots}")
    daq, archive = folder / "daq", folder / "archive"
    if (archive / "labledger.toml").exists():
        raise InvalidArgument(
            f"{archive} exists already: open it (export LABLEDGER_ARCHIVE={archive}), or give "
            "the demo a new folder"
        )
    numbers = SHOTS[:shots]
    with labledger.init(archive) as la, _progress() as progress:
        results = build(la, daq, numbers, progress=progress)
        log = la.config.log()
        calibrations = la.calibrations.list()
    out.print(
        f"The simulated ISHTAR testbed ran shots {numbers[0]}..{numbers[-1]}: raw LabVIEW files "
        f"in {daq}/, {len(results)} runs in {archive}/."
    )
    out.print(
        f"Its history: {len(log)} configuration versions and {len(calibrations)} calibration "
        "versions, recorded as the campaign went:"
    )
    for c in log:
        out.print(f"  configuration {c.version}, {c.valid_from}: {c.summary} ({c.reason})")
    for c in calibrations:
        if c.version > 1:
            out.print(f"  calibration {c.label}, {c.valid_from}: {c.reason}")
    first, last = numbers[0], numbers[-1]
    some = 1234 if 1234 in numbers else last
    out.print(
        f"""
Try:

  export LABLEDGER_ARCHIVE={archive}
  labledger runs
  labledger signal {some} Langmuir_I --plot i.png
  labledger signal {some} Langmuir_I --calibration langmuir_i@1
  labledger config show --run {some}
  labledger config diff {first} {last}
  labledger config log
  labledger calib list

or, in Python:

  import labledger as ll
  la = ll.open("{archive}")
  run = la.runs[{some}]
  run.signal("Langmuir_I")                      # calibrated, in A, over time in s
  run.machine.langmuir_probe.area               # from the testbed description
  run.machine.langmuir_probe.density()          # physics from the probe's I-V sweep
  la.signals(["Langmuir_I", "RF_Pfwd"], runs=la.runs.search(gas="Ar"))
  la.config.diff({first}, {last})"""
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
