"""Commands on the archive itself: init, ingest, runs, show, withdraw, restore, export,
migrate, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

import labledger
from labledger.cli.app import (
    ArchiveOption,
    JsonOption,
    RunArgument,
    app,
    fitted_table,
    match_values,
    opened,
    out,
    pairs,
    print_json,
    progress_bar,
    run_of,
    run_ref,
    unknown_keys,
)
from labledger.cli.live import live_demo
from labledger.display import human_size
from labledger.errors import InvalidArgument
from labledger.ids import short


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
    options = pairs(store_option or [], "--store-option")
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
    project: Annotated[
        str, typer.Option(help="The project the runs belong to (who may read them).")
    ] = "default",
    limit: Annotated[
        list[str] | None,
        typer.Option(help="NAME=N: raise a limit on what a file may declare, e.g. columns=50000."),
    ] = None,
    structure: Annotated[
        str | None,
        typer.Option(help="Check each run against this structure (labledger structure list)."),
    ] = None,
    waive: Annotated[
        list[str] | None,
        typer.Option(help="NAME=REASON: an always-saved channel the runs may lack, and why."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest raw files: each becomes a run, kept byte for byte and catalogued."""
    limits = pairs(limit or [], "--limit")
    waivers = pairs(waive or [], "--waive")
    with opened(archive) as la, progress_bar() as progress:
        results = la.ingest(
            files,
            run=run,
            format=format,
            progress=progress,
            project=project,
            limits=limits,
            structure=structure,
            waive=waivers,
        )
    if as_json:
        print_json([r.to_json() for r in results])
        return
    for result in results:
        out.print(result.message())


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
    quality: Annotated[
        str | None,
        typer.Option(help="good: no active bad flag on the whole run; bad: one (labledger flag)."),
    ] = None,
    withdrawn: Annotated[
        bool, typer.Option("--withdrawn", help="The withdrawn runs instead, with why.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List runs by number (the highest last); withdrawn runs only with --withdrawn."""
    if limit < 0:
        raise InvalidArgument(f"--limit must not be negative, got {limit}")
    with opened(archive) as la:
        conditions = {k: match_values(v) for k, v in pairs(where or [], "--where").items()}
        if withdrawn:
            if since or until or source or conditions or quality is not None:
                raise InvalidArgument(
                    "--withdrawn lists every withdrawn run; search without it, or list them all"
                )
            _withdrawn(la.runs.withdrawn(), as_json)
            return
        if since or until or source or conditions or quality is not None:
            found = la.runs.search(
                since=since, until=until, source=source, where=conditions, quality=quality
            )
            total, shown = len(found), found[-limit:] if limit else found
        else:
            total = len(la.runs)
            shown = la.runs.last(limit) if limit else list(la.runs)
        if as_json:
            print_json([r.to_dict() for r in shown])
            return
        table = fitted_table("run", "started (UTC)", "state", "channels", "size", "sources")
        for r in shown:
            summary = r.to_dict()
            table.add_row(
                str(r.number),
                f"{r.started:%Y-%m-%d %H:%M:%S}",
                r.state,
                str(summary["channels"]),
                human_size(summary["data_bytes"]),
                ", ".join(summary["sources"]),
            )
        out.print(table)
        if total > len(shown):
            out.print(f"({total - len(shown)} more: --limit 0 shows them all)")
        if not total:
            unknown = unknown_keys(la, conditions)
            for line in unknown:  # a mistyped key, rather than "no runs"
                out.print(line)
            searched = conditions or since or until or source or quality is not None
            if not unknown:
                out.print("no runs" + ("" if searched else " yet"))


@app.command()
def summary(archive: ArchiveOption, as_json: JsonOption = False) -> None:
    """What the archive holds, in a few lines: runs and their time span, raw files by format
    and size, the newest run, active flags, current products."""
    with opened(archive) as la:
        found = la.summary()
    if as_json:
        print_json(found.to_dict())
        return
    out.print(Text(f"archive {archive}", style="bold"))
    out.print(str(found))


def _withdrawn(found: list[labledger.Run], as_json: bool) -> None:
    summaries = [r.to_dict() for r in found]  # each with its withdrawal, asked once for all
    if as_json:
        print_json(summaries)
        return
    table = fitted_table("run", "started (UTC)", "withdrawn (UTC)", "by", "reason")
    for r, summary in zip(found, summaries, strict=True):
        w = summary["withdrawn"]
        if w is not None:  # restored between the two questions: not withdrawn any more
            table.add_row(
                str(r.number),
                f"{r.started:%Y-%m-%d %H:%M:%S}",
                w["created"][:19].replace("T", " "),
                w["author"],
                w["reason"],
            )
    out.print(table)
    if not found:
        out.print("no withdrawn runs")


@app.command()
def withdraw(
    run: Annotated[str, typer.Argument(help="A run number or a run id.")],
    archive: ArchiveOption,
    reason: Annotated[str, typer.Option(help="Why: kept in the history.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Withdraw a run ingested by mistake: it leaves listings and searches, stays readable by
    number and id, and nothing is deleted (labledger restore undoes it)."""
    with opened(archive) as la:
        done = la.withdraw(run_ref(run), reason=reason)
    if as_json:
        print_json(done.to_dict())
        return
    out.print(
        f"run {done.run} withdrawn ({done.reason}); `labledger restore {done.run} --reason ...` "
        "undoes it"
    )


@app.command()
def restore(
    run: Annotated[str, typer.Argument(help="A run number or a run id.")],
    archive: ArchiveOption,
    reason: Annotated[str, typer.Option(help="Why: kept in the history.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Undo a run's withdrawal: it is listed and searched again; the history keeps both."""
    with opened(archive) as la:
        done = la.restore(run_ref(run), reason=reason)
    if as_json:
        print_json(done.to_dict())
        return
    out.print(f"run {done.run} restored ({done.restore_reason}); it was withdrawn: {done.reason}")


@app.command()
def show(
    archive: ArchiveOption,
    run: Annotated[
        str | None,
        typer.Argument(
            help="A run number, a run id, or 'latest'; without one, what the archive holds."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """A run's metadata, raw files with sha256, channels and structure tree; without a run,
    the archive's summary (as `labledger summary`)."""
    if run is None:
        summary(archive, as_json)
        return
    with opened(archive) as la:
        r = run_of(la, run)
        if as_json:
            print_json(r.to_dict(full=True))
            return
        ended = f" to {r.ended:%Y-%m-%d %H:%M:%S}" if r.ended else ""
        out.print(Text(f"run {r.number}", style="bold") + Text(f"  {r.state}  id {r.id}"))
        out.print(f"started {r.started:%Y-%m-%d %H:%M:%S.%f} UTC{ended}")
        if r.numbered:
            out.print(f"number: {r.numbered}")
        history = la.withdrawals.list(run=r)
        for w in history:
            active = w.active and w is history[-1]
            line = f"{'WITHDRAWN' if active else 'was withdrawn'}: {w}"
            out.print(Text(line, style="bold red") if active else Text(line))
        out.print()
        files = fitted_table("raw file", "format", "size")
        files.add_column("sha256", overflow="fold", min_width=64)
        for s in r.sources:
            files.add_row(s.name, s.format, human_size(s.size), s.sha256)
        out.print(files)
        for s in r.sources:
            for problem in s.problems:
                out.print(f"  not ingested: {problem}")
        out.print()
        meta = fitted_table("metadata", "value")
        for key, value in r.metadata.items():
            meta.add_row(key, str(value))
        out.print(meta)
        out.print()
        out.print(str(r.tree()))


@app.command()
def export(
    run: RunArgument,
    archive: ArchiveOption,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The file to write (csv: the folder).")
    ],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="hdf5 (NeXus where the source was; signals as NXdata) or csv (a file per "
            "channel group, signals.csv).",
        ),
    ] = "hdf5",
    force: Annotated[bool, typer.Option("--force", help="Replace what is at --output.")] = False,
) -> None:
    """Export a run: its tree, attributes and raw values, and its signals in physical units."""
    with opened(archive) as la:
        r = run_of(la, run)
        done = r.export(output, format=format, force=force)
    out.print(f"run {r.number} written to {output}")
    if done.signals:
        out.print(f"in physical units: {', '.join(done.signals)}")
    for name, why in done.skipped.items():
        out.print(f"not exported: {name}: {why}")


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
    shots: Annotated[
        int | None,
        typer.Option(help="How many shots to run (50; with --live: until Ctrl-C)."),
    ] = None,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Fire live shots into the archive (made if needed), saved as they are written, "
            "for `labledger follow`.",
        ),
    ] = False,
    every: Annotated[
        float, typer.Option(help="With --live: seconds from one shot to the next.", min=0)
    ] = 5.0,
) -> None:
    """Simulate the ISHTAR helicon testbed's campaign: its configuration history and
    calibrations, raw LabVIEW shots written and ingested one by one; then show what to try.
    With --live, its shots are acquired live instead (docs/live.md)."""
    from labledger.sim import SHOTS, build
    from labledger.sim.analysis import analyse

    if live:
        if shots is not None and shots < 1:
            raise InvalidArgument(f"--shots must be 1 or more, got {shots}")
        live_demo(folder / "archive", shots, every)
        return
    shots = 50 if shots is None else shots
    if not 1 <= shots <= len(SHOTS):
        raise InvalidArgument(f"--shots must be 1 to {len(SHOTS)}, got {shots}")
    daq, archive = folder / "daq", folder / "archive"
    if (archive / "labledger.toml").exists():
        raise InvalidArgument(
            f"{archive} exists already: open it (export LABLEDGER_ARCHIVE={archive}), or give "
            "the demo a new folder"
        )
    numbers = SHOTS[:shots]
    with labledger.init(archive) as la, progress_bar() as progress:
        results = build(la, daq, numbers, progress=progress)
        log = la.config.log()
        calibrations = la.calibrations.list()
        analysis = analyse(la, numbers)
        stale = la.stale()
        l4 = la.events(level=4).count()
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
    for cal in calibrations:
        if cal.version > 1:
            out.print(f"  calibration {cal.label}, {cal.valid_from}: {cal.reason}")
    first, last = numbers[0], numbers[-1]
    some = 1234 if 1234 in numbers else last
    a = analysis
    flags = "; ".join(f"{f.subsystem} {f.severity} on {f.where} ({f.reason})" for f in a.flags)
    grl = a.good_runs
    out.print(
        f"Then the analysis: the density of every shot (product {short(a.density.id)}), "
        f"level-2 windows and {l4} level-4 bright windows with their parents; the shift log's "
        f"flags: {flags}; {len(stale)} products stale because of them; good-run list "
        f"{grl.name}@{grl.version} ({len(grl)} runs, livetime {grl.livetime:.2f} s) and the "
        f"density over it ({short(a.density_good.id)})."
    )
    out.print(
        f"""
Try:

  export LABLEDGER_ARCHIVE={archive}
  labledger summary
  labledger runs
  labledger signal {some} Langmuir_I --plot {folder}/i.png
  labledger signal {some} Langmuir_I --calibration langmuir_i@1
  labledger config show --run {some}
  labledger config diff {first} {last}
  labledger config log
  labledger calib list
  labledger products
  labledger lineage {short(a.density_good.id)}
  labledger stale ; labledger recompute
  labledger reproduce {short(a.density.id)}
  labledger flag list ; labledger goodruns standard
  labledger events --level 4 --with-parent 2

or, in Python:

  import labledger as ll
  la = ll.open("{archive}")
  run = la.runs[{some}]
  run.signal("Langmuir_I")                      # calibrated, in A, over time in s
  run.machine.langmuir_probe.area               # from the testbed description
  run.machine.langmuir_probe.density()          # physics from the probe's I-V sweep
  la.signals(["Langmuir_I", "RF_Pfwd"], runs=la.runs.search(gas="Ar"))
  la.config.diff({first}, {last})
  la.lineage("{short(a.density_good.id)}")
  la.stale()
  la.events(level=4).with_parent(level=2).to_pandas()"""
    )
