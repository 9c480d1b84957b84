"""The labledger command, end to end in subprocesses: what a user types and sees."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import subprocess
from pathlib import Path

import h5py
import pytest

import labledger as ll
from labledger.sim import record_history, write_shot
from tests.conftest import cli, on_terminal, snapshot


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_tour(tmp_path: Path, nexus_dir: Path) -> None:
    archive = str(tmp_path / "ishtar")
    assert "Created the archive" in ok(cli("init", archive))
    shot = write_shot(tmp_path, 1234)
    ingested = cli("ingest", "--archive", archive, str(shot), str(nexus_dir / "538039.nxs"))
    assert ok(ingested).splitlines() == [
        "01234_Data.tdms: ingested as run 1234 (16 channels; number: from TDMS property 'shot')",
        "538039.nxs: ingested as run 0 (214 channels; number: from NeXus entry1/entry_identifier)",
    ]
    assert ingested.stderr == ""  # no progress bar in a pipe
    assert ok(cli("ingest", "--archive", archive, str(shot))).strip() == (
        "01234_Data.tdms: already ingested as run 1234"
    )
    listing = ok(cli("runs", "--archive", archive))
    assert "1234" in listing and "538039.nxs" in listing
    runs = json.loads(ok(cli("runs", "--archive", archive, "--json")))
    assert [r["number"] for r in runs] == [0, 1234]
    assert runs[1]["sources"] == ["01234_Data.tdms"]
    shown = ok(cli("show", "--archive", archive, "1234"))
    assert hashlib.sha256(shot.read_bytes()).hexdigest() in shown
    assert "PXI M6251/" in shown and "ai3" in shown and "gas" in shown
    full = json.loads(ok(cli("show", "--archive", archive, "1234", "--json")))
    assert full["sources"][0]["sha256"] == hashlib.sha256(shot.read_bytes()).hexdigest()
    assert {c["key"] for c in full["channels"]} >= {"PXI M6251/ai3"}
    assert full["tree"]["children"][0]["name"] == "PXI M6251"
    out = tmp_path / "shot1234.h5"
    ok(cli("export", "--archive", archive, "1234", "--format", "hdf5", "-o", str(out)))
    with h5py.File(out) as f:
        assert f["PXI M6251/ai3"].shape == (35000,)
    latest = json.loads(ok(cli("show", "latest", "--archive", archive, "--json")))
    assert latest["number"] == max(runs, key=lambda r: r["started"])["number"]


def test_the_archive_from_the_environment_and_searches(tmp_path: Path) -> None:
    archive = tmp_path / "ishtar"
    ok(cli("init", str(archive)))
    env = {"LABLEDGER_ARCHIVE": str(archive)}
    shots = [str(write_shot(tmp_path, n)) for n in (1001, 1002, 1003)]
    ok(cli("ingest", *shots, env=env))
    found = json.loads(ok(cli("runs", "--where", "shot=1002", "--json", env=env)))
    assert [r["number"] for r in found] == [1002]
    assert json.loads(ok(cli("runs", "--since", "2030-01-01", "--json", env=env))) == []
    assert "no runs" in ok(cli("runs", "--where", "gas=Kr", env=env))
    last_two = json.loads(ok(cli("runs", "--limit", "2", "--json", env=env)))
    assert [r["number"] for r in last_two] == [1002, 1003]
    bad = cli("runs", "--where", "gas", env=env)
    assert bad.returncode == 1 and "--where takes KEY=VALUE" in bad.stderr
    # a key no run has says so, with the keys spelled closest to it, instead of "no runs"
    typo = ok(cli("runs", "--where", "gass=Ar", "--where", "shot=1002", env=env))
    assert typo.splitlines()[-1] == (
        "no run has the metadata key 'gass'; did you mean 'gas'? "
        "(`labledger show RUN` lists a run's keys)"
    )
    assert "no runs" not in typo
    nothing = ok(cli("runs", "--where", "zzqx=1", env=env)).splitlines()[-1]
    assert nothing == "no run has the metadata key 'zzqx' (`labledger show RUN` lists a run's keys)"
    assert json.loads(ok(cli("runs", "--where", "gass=Ar", "--json", env=env))) == []
    listed = cli("goodruns", "typo", "--where", "gass=Ar", env=env)  # a list is made, empty...
    assert listed.returncode == 0 and "good-run list typo@1 recorded: 0 runs" in listed.stdout
    assert "no run has the metadata key 'gass'; did you mean 'gas'?" in listed.stderr  # ...why
    assert "metadata key" not in cli("goodruns", "fine", "--where", "gas=Ar", env=env).stderr
    bad = cli("runs", "--since", "soon", env=env)
    assert bad.returncode == 1 and "is not a date" in bad.stderr


def test_ingest_json_and_a_multi_file_run(tmp_path: Path) -> None:
    archive = str(tmp_path / "a")
    ok(cli("init", archive))
    scope = tmp_path / "scope.csv"
    scope.write_text("t,v\n0,1\n1,2\n")
    shot = write_shot(tmp_path, 1001)
    result = json.loads(
        ok(cli("ingest", "-a", archive, "--run", "7", str(shot), str(scope), "--json"))
    )
    assert result == [
        {
            "run": 7,
            "id": result[0]["id"],
            "files": ["01001_Data.tdms", "scope.csv"],
            "status": "ingested",
            "channels": 18,
            "data_bytes": result[0]["data_bytes"],
            "problems": [],
            "numbered": "from --run",
            "incomplete": None,  # no structure asked: nothing judged missing
        }
    ]


def test_the_demo_and_the_machine_commands(tmp_path: Path) -> None:
    shown = ok(cli("demo", "--shots", "35", cwd=tmp_path))
    assert "ran shots 1221..1255" in shown and "labledger signal 1234 Langmuir_I" in shown
    assert "configuration 2, from run 1240: Langmuir_I -> PXI M6251/ai11" in shown
    archive = tmp_path / "labledger-demo" / "archive"
    env = {"LABLEDGER_ARCHIVE": str(archive)}
    assert len(json.loads(ok(cli("runs", "--limit", "0", "--json", env=env)))) == 35
    # the analysis it did, and the commands it suggests, work
    assert "power bad on runs 1244-1245 (RF generator tripped)" in shown
    assert "good-run list standard@1 (33 runs" in shown
    lineage = re.search(r"labledger lineage (\S+)", shown)
    assert lineage is not None
    tree = ok(cli("lineage", lineage.group(1), env=env))
    assert "density@2 [set]" in tree and "run 1255" in tree and "01255_Data.tdms" in tree
    stale = ok(cli("stale", env=env))
    assert "run 1244: flag 1 added since (power, bad: RF generator tripped" in stale
    events = json.loads(ok(cli("events", "--level", "4", "--with-parent", "2", "--json", env=env)))
    assert events and all(e["l2_light"] == e["light"] for e in events[:50])
    again = cli("demo", cwd=tmp_path)
    assert again.returncode == 1 and "exists already" in again.stderr

    png = tmp_path / "i.png"
    text = ok(cli("signal", "1234", "Langmuir_I", "--plot", str(png), env=env))
    assert "calibration: langmuir_i@1" in text and "channel: PXI M6251/ai3" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    after = json.loads(ok(cli("signal", "1252", "Langmuir_I", "--json", env=env)))
    assert after["attrs"]["calibration"] == "langmuir_i@2" and after["units"] == "A"
    assert after["attrs"]["channel"] == "PXI M6251/ai11" and after["samples"] == 35_000
    old = json.loads(
        ok(cli("signal", "1252", "Langmuir_I", "--calibration", "langmuir_i@1", "--json", env=env))
    )
    assert old["max"] == pytest.approx(2 * after["max"])
    window = json.loads(
        ok(cli("signal", "1252", "RF_Pfwd", "--start", "0.1", "--stop", "0.2", "--json", env=env))
    )
    assert window["samples"] == 5001 and window["time"] == pytest.approx([0.1, 0.2])

    config = json.loads(ok(cli("config", "show", "--run", "1245", "--json", env=env)))
    assert config["version"] == 2 and config["wiring"]["Langmuir_I"] == "PXI M6251/ai11"
    assert "Langmuir_I" in ok(cli("config", "show", "--run", "1230", env=env))
    diff = json.loads(ok(cli("config", "diff", "1230", "1245", "--json", env=env)))
    assert diff["differences"] == [
        {
            "what": "wiring",
            "name": "Langmuir_I",
            "before": "PXI M6251/ai3",
            "after": "PXI M6251/ai11",
        }
    ]
    assert "PXI M6251/ai3 -> PXI M6251/ai11" in ok(cli("config", "diff", "1230", "1245", env=env))
    assert [c["version"] for c in json.loads(ok(cli("config", "log", "--json", env=env)))] == [1, 2]

    versions = json.loads(ok(cli("calib", "list", "langmuir_i", "--json", env=env)))
    assert [(c["label"], c["from_run"]) for c in versions] == [
        ("langmuir_i@1", None),
        ("langmuir_i@2", 1250),
    ]
    added = cli(
        "calib", "add", "langmuir_i", "--gain", "-0.0101", "--offset", "0", "--unit", "A",
        "--from-run", "1254", "--reason", "shunt re-measured", env=env,
    )  # fmt: skip
    assert "calibration langmuir_i@3 recorded" in ok(added)
    newest = json.loads(ok(cli("signal", "1255", "Langmuir_I", "--json", env=env)))
    assert newest["attrs"]["calibration"] == "langmuir_i@3"
    moved = cli(
        "config", "wire", "Langmuir_V=PXI M6251/ai12", "--from-run", "1300", "--reason", "x",
        env=env,
    )  # fmt: skip
    assert "configuration version 3: Langmuir_V -> PXI M6251/ai12, from run 1300" in ok(moved)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["signal", "1234", "Langmuir_j"], "no signal 'Langmuir_j'; did you mean"),
        (["signal", "1234", "Langmuir_I", "--plot", "i.jpg"], "--plot writes a PNG"),
        (["signal", "1234", "Langmuir_I", "--start", "0.3", "--stop", "0.1"], "start is after"),
        (["signal", "1234", "Langmuir_I", "--calibration", "langmuir_i@7"], "no calibration"),
        (["config", "diff", "1234", "99999"], "run 99999 does not exist"),
        (["config", "wire", "Langmuir_I=PXI M6251/ai99", "--reason", "x"], "no port 'ai99'"),
        (["config", "wire", "Langmuir_I=PXI M6251/ai0", "--reason", "x"], "would carry both"),
        (["config", "load", "missing.yaml", "--reason", "x"], "missing.yaml: cannot read it"),
        (["calib", "add", "x", "--unit", "A", "--reason", "x"], "give one kind of calibration"),
        (["calib", "add", "x", "--gain", "1", "--poly", "1,2", "--unit", "A", "--reason", "x"],
         "got linear, polynomial"),
        (["calib", "add", "p", "--expression", "RF_Pfwd-Nope", "--unit", "W", "--reason", "x"],
         "'Nope' is not a signal"),
        (["calib", "list", "nope"], "no calibration is named 'nope'"),
    ],
)  # fmt: skip
def test_machine_commands_refuse_bad_input_in_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    archive = tmp_path / "a"
    with ll.init(archive) as la:
        record_history(la, upto=1234)
        la.ingest([write_shot(tmp_path, 1234)])
    with ll.open(archive) as la:
        before = snapshot(la)
    result = cli(*args, "-a", str(archive), cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    with ll.open(archive) as la:
        assert snapshot(la) == before


def test_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    archive = tmp_path / "a"
    ok(cli("init", str(archive)))
    shot = write_shot(tmp_path, 1001)
    code, seen, stdout = on_terminal("ingest", "-a", str(archive), str(shot))
    assert code == 0
    assert b"ingesting" in seen  # the bar, on the terminal
    assert b"ingested as run 1001" in stdout


def test_help_names_every_command() -> None:
    shown = ok(cli("--help"))
    for command in ("init", "ingest", "runs", "show", "export", "demo", "migrate"):
        assert command in shown


def test_names_that_look_like_markup_are_printed_as_they_are(tmp_path: Path) -> None:
    archive = str(tmp_path / "a")
    ok(cli("init", archive))
    path = tmp_path / "30_probe.h5"
    with h5py.File(path, "w") as f:
        f["I [bold]A"] = [1.0, 2.0]
        f["I [bold]A"].attrs["units"] = "[mm]"
        f.attrs["title"] = "[bold]not bold"
    ok(cli("ingest", "-a", archive, str(path)))
    shown = ok(cli("show", "-a", archive, "30"))
    assert "I [bold]A" in shown and "[bold]not bold" in shown


def test_where_matches_text_that_looks_like_a_number(tmp_path: Path) -> None:
    archive = str(tmp_path / "a")
    ok(cli("init", archive))
    path = tmp_path / "60_v.h5"
    with h5py.File(path, "w") as f:
        f.attrs["version"] = "1.0"
        f["x"] = [1]
    ok(cli("ingest", "-a", archive, str(path)))
    found = json.loads(ok(cli("runs", "-a", archive, "--where", "version=1.0", "--json")))
    assert [r["number"] for r in found] == [60]


def test_credentials_are_not_written_into_an_archive(tmp_path: Path) -> None:
    refused = cli(
        "init", str(tmp_path / "a"), "--store", "s3://b/x", "--store-option", "secret=abc"
    )
    assert refused.returncode == 1 and "looks like a credential" in refused.stderr
    assert not (tmp_path / "a").exists()


def test_version_and_shell_completion() -> None:
    assert ok(cli("--version")).strip() == f"labledger {importlib.metadata.version('labledger')}"
    script = ok(cli("--show-completion", "bash"))
    assert "_LABLEDGER_COMPLETE" in script and "complete " in script
