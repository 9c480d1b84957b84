"""Commands on the machine: signals by name, the configuration history, calibrations."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.text import Text

from labledger.cli.app import (
    ArchiveOption,
    JsonOption,
    RunArgument,
    app,
    err,
    fitted_table,
    opened,
    out,
    pairs,
    print_json,
    run_of,
)
from labledger.errors import DataWarning, InvalidArgument


@app.command()
def signal(
    run: RunArgument,
    name: Annotated[
        str,
        typer.Argument(
            help="The signal's name, e.g. Langmuir_I; or a channel key, e.g. 'ai/ch0', read in "
            "its own (NI/DAQmx) scaling, no testbed description needed."
        ),
    ],
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
    with opened(archive) as la, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        r = run_of(la, run)
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
        print_json(summary)
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
        version = values.attrs.get("config_version")  # none: a channel in its own scaling
        how = (
            "own scaling"
            if version is None
            else f"{values.attrs['calibration']}, configuration {version}"
        )
        ax.set_title(f"run {values.attrs['run']}: {values.name}  ({how})")
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
    with opened(archive) as la:
        config = la.config.at(run_of(la, run))
    if as_json:
        print_json(config.to_dict())
        return
    d = config.description
    out.print(
        Text(f"{d.name}", style="bold")
        + Text(f"  run {config.run}, configuration version {config.version}")
    )
    for change in config.changes:
        out.print(f"  {change}")
    out.print()
    table = fitted_table("signal", "unit", "calibration", "wired to", "channel")
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
    with opened(archive) as la:
        diff = la.config.diff(run_of(la, a), run_of(la, b))
    if as_json:
        print_json(diff.to_dict())
        return
    out.print(str(diff))


@config_app.command("log")
def config_log(archive: ArchiveOption, as_json: JsonOption = False) -> None:
    """Every entry of the configuration history, oldest first."""
    with opened(archive) as la:
        log = la.config.log()
    if as_json:
        print_json([c.to_dict() for c in log])
        return
    from labledger.machine.configuration import Change

    table = fitted_table(*Change.COLUMNS)
    for c in log:
        table.add_row(*map(str, c.row()))
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
    with opened(archive) as la:
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
    wiring = {k: (v or None) for k, v in pairs(moves, "SIGNAL=PORT").items()}
    with opened(archive) as la:
        change = la.config.wire(wiring, reason=reason, from_run=from_run, from_time=from_time)
    out.print(f"configuration version {change.version}: {change.summary}, {change.valid_from}")


@calib_app.command("list")
def calib_list(
    archive: ArchiveOption,
    name: Annotated[str | None, typer.Argument(help="Only this calibration's versions.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Every calibration version: kind, parameters, unit, validity, author and reason."""
    with opened(archive) as la:
        found = la.calibrations.list(name)
    if as_json:
        print_json([c.to_dict() for c in found])
        return
    from labledger.machine.calibration import Calibration

    table = fitted_table(*Calibration.COLUMNS)
    for c in found:
        table.add_row(*map(str, c.row()))
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
    given = {
        "linear": gain is not None or offset is not None,
        "polynomial": poly is not None,
        "table": table_x is not None or table_y is not None,
        "expression": expression is not None,
    }
    kinds = [k for k, asked in given.items() if asked]
    if len(kinds) != 1:
        raise InvalidArgument(
            "give one kind of calibration: --gain/--offset, --poly, --table-x/--table-y or "
            "--expression" + (f" (got {', '.join(kinds)})" if kinds else "")
        )
    every: dict[str, dict[str, Any]] = {
        "linear": {"gain": gain, "offset": offset},
        "polynomial": {"coefficients": poly},
        "table": {"x": table_x, "y": table_y},
        "expression": {"expression": expression},
    }
    params = every[kinds[0]]
    if input is not None:
        params["input"] = input
    with opened(archive) as la:
        cal = la.calibrations.add(
            name,
            kind=kinds[0],
            unit=unit,
            reason=reason,
            from_run=from_run,
            from_time=from_time,
            **params,
        )
    if cal.already:
        said = ", ".join(f"{k}={v}" for k, v in cal.params.items())
        out.print(
            f"calibration {cal.label} ({cal.kind} {said} -> {cal.unit}, {cal.valid_from}) is "
            "the same and already in force from there on: nothing recorded"
        )
        return
    out.print(f"calibration {cal.label} recorded: {cal.kind}, {cal.unit}, {cal.valid_from}")
