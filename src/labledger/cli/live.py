"""Live runs on the command line (docs/live.md): ``labledger saver`` keeps them in the archive,
``labledger follow NAME`` prints a signal of the running shot as it comes, and ``labledger demo
--live`` (:func:`live_demo`) fires simulated shots as live runs."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

import labledger
from labledger.acquire.following import Piece
from labledger.acquire.saver import SavedRun, Saver
from labledger.cli.app import JsonOption, app, err, opened, out
from labledger.errors import InvalidArgument
from labledger.live import Cursor
from labledger.live.connection import answering
from labledger.records import ENDED
from labledger.sim import SHOTS, record_history
from labledger.sim.live import LiveShot, fire_next

SAY_EVERY = 0.2  # s between two looks at what the saver did

MaybeArchive = Annotated[
    Path | None,
    typer.Option(
        "--archive",
        "-a",
        envvar="LABLEDGER_ARCHIVE",
        help="The archive folder (or set LABLEDGER_ARCHIVE).",
        show_default=False,
    ),
]


class Told:
    """Says, once each, what a :class:`Saver` did since it was last asked: a line per run
    saved (stdout) and per failure (stderr)."""

    def __init__(self, la: labledger.Archive, saver: Saver, as_json: bool = False) -> None:
        self.la, self.saver, self.as_json = la, saver, as_json
        self.said = 0
        self.failures: dict[int, str] = {}

    def say(self) -> list[SavedRun]:
        """Tell what is new; the runs saved since the last call."""
        new = self.saver.saved[self.said :]
        self.said += len(new)
        for saved in new:
            row = self.la.catalog.by_number(saved.run)
            reason = row.reason if row is not None else None
            if self.as_json:
                told = {"kind": "saved", **vars(saved), "reason": reason}
                print(json.dumps(told), flush=True)
            else:
                whole = "complete" if saved.complete else f"not complete ({reason})"
                out.print(
                    f"run {saved.run}: {saved.state}, {whole}; {saved.blocks} blocks saved, "
                    f"{saved.segments} segments"
                )
        for run, why in list(self.saver.failures.items()):
            if self.failures.get(run) != why:
                self.failures[run] = why
                if self.as_json:
                    print(json.dumps({"kind": "failed", "run": run, "reason": why}), flush=True)
                else:
                    err.print(f"run {run}: not saved: {why}")
        return new


def _archive_of(folder: Path | None, option: Path | None) -> Path:
    if folder is not None and option is not None and folder.resolve() != option.resolve():
        raise InvalidArgument(
            f"two archives given: {folder} and --archive {option} (or LABLEDGER_ARCHIVE): give one"
        )
    found = folder or option
    if found is None:
        raise InvalidArgument(
            "which archive? give it: labledger saver ARCHIVE, --archive ARCHIVE or "
            "LABLEDGER_ARCHIVE"
        )
    return found


def _redis_answers(la: labledger.Archive) -> None:
    """LiveUnavailable, in one line, if the archive's Redis does not answer."""
    client = la.live.client
    with answering(client, "start it, or set [live] redis in labledger.toml or $LABLEDGER_REDIS"):
        client.ping()


@contextlib.contextmanager
def _serving(saver: Saver, stop: threading.Event) -> Any:
    """``saver.serve(stop)`` in a thread for the time of the block; stopped and joined after."""
    thread = threading.Thread(target=saver.serve, args=(stop,), name="labledger-saver")
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join()


@app.command()
def saver(
    folder: Annotated[
        Path | None,
        typer.Argument(help="The archive (or --archive, LABLEDGER_ARCHIVE).", show_default=False),
    ] = None,
    archive: MaybeArchive = None,
    as_json: JsonOption = False,
) -> None:
    """Save the archive's live runs as they are written, until Ctrl-C or SIGTERM: a line per
    run saved. Stopped (or killed) and started again, it resumes a run half-saved."""
    with opened(_archive_of(folder, archive)) as la:
        _redis_answers(la)
        keeper = la.saver()
        told = Told(la, keeper, as_json)
        err.print(
            f"saving the live runs of {la} (Redis {la.live.url}, keys {la.live.prefix}:*); "
            "Ctrl-C stops"
        )
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():  # a service stops: SIGTERM
            signal.signal(signal.SIGTERM, lambda number, frame: stop.set())
        with contextlib.suppress(KeyboardInterrupt), _serving(keeper, stop) as thread:
            while thread.is_alive() and not stop.wait(SAY_EVERY):
                told.say()
        told.say()
        err.print("saver stopped: a run it was saving is resumed by the next saver")


def _piece_line(piece: Piece) -> str:
    v = piece.values
    first, last = (piece.time[0], piece.time[-1]) if len(piece.time) else (np.nan, np.nan)
    low, mean, high = (v.min(), v.mean(), v.max()) if v.size else (np.nan,) * 3
    unit = f" {piece.unit}" if piece.unit else ""
    return (
        f"{first:9.4f} .. {last:9.4f} s  n={v.shape[0]:<6d} min {low: .5g}  mean {mean: .5g}  "
        f"max {high: .5g}{unit}"
    )


@app.command()
def follow(
    name: Annotated[str, typer.Argument(help="A signal (Langmuir_I) or a stream of the run.")],
    archive: MaybeArchive = None,
    run: Annotated[
        int | None, typer.Option("--run", help="This run (live or saved), not the live one.")
    ] = None,
    cursor: Annotated[
        str | None,
        typer.Option(help="Resume after the piece this cursor came with (--json gives them)."),
    ] = None,
    calibration: Annotated[
        str | None, typer.Option(help="A calibration version (langmuir_i@1), not the one in force.")
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for a live run to start.", min=0)
    ] = 30.0,
    as_json: JsonOption = False,
) -> None:
    """Print signal NAME of the running shot as it arrives, calibrated: a line per piece
    (times, samples, min, mean, max, unit) until its stream is sealed."""
    where = _archive_of(None, archive)
    resume = Cursor.from_text(cursor) if cursor is not None else None
    if resume is not None and run is not None and resume.run != run:
        raise InvalidArgument(f"--cursor is of run {resume.run}, not --run {run}: give one of them")
    with opened(where) as la:
        number = run if run is not None else resume.run if resume is not None else None
        found = la.runs[number] if number is not None else la.runs.live(timeout=timeout)
        last: Piece | None = None
        pieces = 0
        try:
            for piece in found.follow(name, cursor=resume, calibration=calibration):
                if last is None:
                    err.print(f"following {name} of run {found.number}; Ctrl-C stops")
                last, pieces = piece, pieces + 1
                if as_json:
                    print(json.dumps(_piece_json(piece)), flush=True)
                else:
                    out.print(_piece_line(piece))
        except KeyboardInterrupt:
            if last is not None:
                err.print(f"stopped; resume with --cursor '{last.cursor.to_text()}'")
            raise typer.Exit(130) from None
        err.print(f"{name} of run {found.number}: its stream is sealed, {pieces} pieces")


def _piece_json(piece: Piece) -> dict[str, Any]:
    v = piece.values
    return {
        "signal": piece.signal,
        "channel": piece.channel,
        "block": piece.seq,
        "start": float(piece.time[0]) if len(piece.time) else None,
        "end": float(piece.time[-1]) if len(piece.time) else None,
        "n": int(v.shape[0]),
        "min": float(v.min()) if v.size else None,
        "mean": float(v.mean()) if v.size else None,
        "max": float(v.max()) if v.size else None,
        "unit": piece.unit,
        "calibration": piece.calibration,
        "cursor": piece.cursor.to_text(),
    }


def live_demo(archive: Path, shots: int | None, every: float) -> None:
    """``labledger demo --live``: the simulated testbed fires a live shot every ``every`` s
    into ``archive`` (made, with the campaign's configuration and calibrations, if it does
    not exist), saved by a saver in this process, until Ctrl-C or ``shots`` shots."""
    made = not (archive / "labledger.toml").exists()
    la = labledger.init(archive) if made else labledger.open(archive)
    fired: list[int] = []
    try:
        _redis_answers(la)
        newest = la.catalog.last(1)
        if newest:  # a campaign was run into it: what of its history came after its last shot
            record_history(la, since=newest[0].number + 1)
        elif not la.config.log():
            record_history(la)
        if not la.config.log():
            raise InvalidArgument(
                f"{archive} has runs but no testbed configuration: give the demo a new folder"
            )
        keeper = la.saver(flush_seconds=0.2)
        told = Told(la, keeper)
        err.print(
            f"firing a live shot every {every:g} s into {archive}; Ctrl-C stops. "
            f"In another terminal:\n  labledger follow Langmuir_I --archive {archive}"
        )
        with _serving(keeper, threading.Event()):
            try:
                while shots is None or len(fired) < shots:
                    began = time.monotonic()
                    shot = fire_next(la, SHOTS.stop)
                    fired.append(shot.number)
                    out.print(_shot_line(shot))
                    told.say()
                    if shots is None or len(fired) < shots:
                        while time.monotonic() < began + every:
                            told.say()
                            time.sleep(min(SAY_EVERY, max(0.0, began + every - time.monotonic())))
            except KeyboardInterrupt:  # the shot under way is aborted: the saver records it
                err.print("stopping: the saver records the shots fired")
            _wait_saved(la, {*fired, *(r.number for r in la.catalog.open_runs())}, told)
        told.say()
    finally:
        la.close()
    err.print(f"{len(fired)} live shots fired into {archive}: labledger runs --archive {archive}")


def _shot_line(shot: LiveShot) -> str:
    meta = shot.metadata
    return (
        f"shot {shot.number} ({meta['gas']}, {meta['rf_power_setpoint']:g} W, "
        f"{meta['coil_current_setpoint']:g} A): {len(shot.ports)} streams of "
        f"{shot.samples:,} samples at {shot.rate / 1000:g} kHz, written live"
    )


def _wait_saved(la: labledger.Archive, numbers: set[int], told: Told, timeout: float = 60) -> None:
    """Until the saver has recorded every run of ``numbers`` as ended (or ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = la.catalog.by_numbers(sorted(numbers))
        if len(rows) == len(numbers) and all(r.state in ENDED for r in rows):
            return
        told.say()
        time.sleep(SAY_EVERY)
    err.print(f"the saver had not saved every shot within {timeout:g} s: `labledger saver` will")
