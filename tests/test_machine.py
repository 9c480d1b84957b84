"""The machine: descriptions, configuration history, calibrations and signals by name, on the
simulated campaign (re-wired at 1240, recalibrated at 1250, helium and a new probe from 1260)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import labledger as ll
from labledger.errors import DataWarning, InvalidArgument, LabledgerError, NotFound
from labledger.ids import author
from labledger.machine import CalibrationError, DescriptionError
from labledger.machine import validity as validity_rules
from labledger.machine.calibration import (
    Calibration,
    Calibrations,
    _same_in_force,
    by_label,
    in_force,
)
from labledger.machine.logs import Snapshot
from labledger.records import CalibrationRecord
from labledger.sim import DESCRIPTION, record_history, write_shot
from labledger.sim.campaign import CALIBRATIONS
from tests.conftest import CAMPAIGN_SHOTS, cli, snapshot


def ion_branch(run: ll.Run) -> float:
    """The ion saturation current seen in a probe trace: minus the median current on the
    flat-top where the bias is far below the floating potential."""
    flat = {"time": slice(0.05, 0.45)}
    i, v = run.signal("Langmuir_I").sel(flat), run.signal("Langmuir_V").sel(flat)
    return float(-np.median(i.values[v.values < -70]))


def test_a_signal_name_gives_continuous_physics_across_rewiring_and_recalibration(
    campaign: ll.Archive,
) -> None:
    ports, calibrations = {}, {}
    for number in CAMPAIGN_SHOTS:
        run = campaign.runs[number]
        i = run.signal("Langmuir_I")
        assert i.dims == ("time",) and i.attrs["units"] == "A"
        assert i.time.values[0] == pytest.approx(-0.1) and i.time.attrs["units"] == "s"
        ports[number], calibrations[number] = i.attrs["channel"], i.attrs["calibration"]
        truth = run.metadata["truth.I_sat"]
        assert ion_branch(run) == pytest.approx(truth, rel=0.05), number
    assert ports[1239] == "PXI M6251/ai3" and ports[1240] == "PXI M6251/ai11"
    assert calibrations[1249] == "langmuir_i@1" and calibrations[1250] == "langmuir_i@2"

    # while the raw port readings did jump: the same current is twice the counts from 1250
    def counts_per_ampere(number: int) -> float:
        run = campaign.runs[number]
        raw = run.channels["PXI M6251/ai11"][7_500:27_500].astype(float)
        bias = run.signal("Langmuir_V").values[7_500:27_500]
        return float(np.median(raw[bias < -70]) / run.metadata["truth.I_sat"])

    assert counts_per_ampere(1250) == pytest.approx(2 * counts_per_ampere(1249), rel=0.05)


def test_any_run_can_be_read_under_any_calibration_version(campaign: ll.Archive) -> None:
    run = campaign.runs[1259]
    now = run.signal("Langmuir_I")
    old = run.signal("Langmuir_I", calibration="langmuir_i@1")
    assert old.attrs["calibration"] == "langmuir_i@1"
    np.testing.assert_allclose(old.values, 2 * now.values)
    with pytest.raises(NotFound, match=r"langmuir_i@1, langmuir_i@2"):
        run.signal("Langmuir_I", calibration="langmuir_i@9")


def test_signal_matches_the_raw_channel_calibrated_by_hand(campaign: ll.Archive) -> None:
    run = campaign.runs[1233]
    raw = run.channels["PXI M6251/ai0"]
    by_hand = raw[:] * raw.attrs["NI_Scale[0]_Linear_Slope"] * 1000.0
    p = run.signal("RF_Pfwd")
    np.testing.assert_allclose(p.values, by_hand)
    assert p.attrs["config_version"] == run.config_version == 1
    assert p.attrs["calibration"] == "rf_pfwd@1" and p.attrs["port"] == "PXI M6251/ai0"
    window = run.signal("RF_Pfwd", time=(0.1, 0.2))
    assert window.time.values[0] == pytest.approx(0.1) and window.time.values[-1] == pytest.approx(
        0.2
    )
    np.testing.assert_allclose(window.values, p.sel(time=slice(0.1 - 1e-9, 0.2 + 1e-9)).values)


def test_expressions_and_chains(campaign: ll.Archive) -> None:
    run = campaign.runs[1233]
    p_inj = run.signal("P_inj")
    np.testing.assert_allclose(
        p_inj.values, run.signal("RF_Pfwd").values - run.signal("RF_Pref").values
    )
    assert "RF_Pfwd (rf_pfwd@1)" in p_inj.attrs["inputs"]
    flat = p_inj.sel(time=slice(0.05, 0.45)).mean().item()
    assert flat == pytest.approx(run.metadata["truth.P_inj"], rel=0.02)
    b = run.signal("Coil_B")  # a table over Coil_I, which is itself calibrated
    assert b.attrs["units"] == "T" and b.attrs["input"] == "Coil_I"
    assert b.mean().item() == pytest.approx(run.metadata["truth.B_axis"], rel=0.01)


def test_many_runs_at_once_one_dataset(campaign: ll.Archive) -> None:
    runs = campaign.runs.search(gas="Ar")
    assert [r.number for r in runs] == [n for n in CAMPAIGN_SHOTS if n < 1260]
    data = campaign.signals(["Langmuir_I", "RF_Pfwd", "P_inj"], runs=runs)
    assert data["Langmuir_I"].dims == ("run", "time")
    assert data["Langmuir_I"].shape == (len(runs), 35_000)
    assert list(data.run.values) == [r.number for r in runs]
    assert data["Langmuir_I"].attrs["units"] == "A"
    assert list(data["calibration_Langmuir_I"].values) == [
        "langmuir_i@1" if r.number < 1250 else "langmuir_i@2" for r in runs
    ]
    assert list(data["channel_Langmuir_I"].values) == [
        "PXI M6251/ai3" if r.number < 1240 else "PXI M6251/ai11" for r in runs
    ]
    assert list(data["channel_P_inj"].values) == [""] * len(runs)  # computed, not read
    assert "channel" not in data["Langmuir_I"].attrs  # it differs from run to run
    for r in runs:  # the same values as one run at a time
        np.testing.assert_array_equal(
            data["Langmuir_I"].sel(run=r.number).values, r.signal("Langmuir_I").values
        )
    table = campaign.signals(["RF_Pfwd"], runs=runs[:2], time=(0.1, 0.1001)).to_dataframe()
    assert len(table) == 2 * 6 and "RF_Pfwd" in table.columns


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"names": []}, InvalidArgument, "give a list of signal names"),
        ({"names": ["RF_Pfwd"], "workers": 0}, InvalidArgument, "at least 1 thread"),
        ({"names": ["RF_Pfwd"], "runs": []}, NotFound, "the run selection is empty"),
        ({"names": ["RF_Pfwd"], "runs": [99999]}, NotFound, "run 99999 does not exist"),
        ({"names": ["RF_Pfwd", "Nope"]}, NotFound, "no signal 'Nope'"),
    ],
)
def test_many_runs_refuse_bad_arguments(
    campaign: ll.Archive, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    kwargs = {"runs": [1233, 1239], **kwargs}
    with pytest.raises(error, match=message):
        campaign.signals(**kwargs)  # type: ignore[arg-type]


def test_configuration_at_a_run_and_between_runs(campaign: ll.Archive) -> None:
    before, after = campaign.config.at(run=1239), campaign.config.at(run=1265)
    assert before.wiring["Langmuir_I"] == "PXI M6251/ai3"
    assert after.wiring["Langmuir_I"] == "PXI M6251/ai11"
    diff = campaign.config.diff(1239, 1265)
    found = {(d.what, d.name): (d.before, d.after) for d in diff.differences}
    assert found[("wiring", "Langmuir_I")] == ("PXI M6251/ai3", "PXI M6251/ai11")
    assert found[("property", "diagnostics/langmuir_probe.area")] == ("2.0 mm^2", "3.0 mm^2")
    assert found[("property", "source/gas_feed.gas")] == ("Ar", "He")
    assert [c.version for c in diff.changes] == [2, 3]
    assert all(c.author and c.reason for c in diff.changes)
    assert not campaign.config.diff(1225, 1233)
    machine = campaign.runs[1265].machine
    assert machine.langmuir_probe.area.to("m^2").magnitude == pytest.approx(3e-6)
    assert campaign.runs[1225].machine.langmuir_probe.property("area", "mm^2") == 2.0
    with pytest.raises(AttributeError, match="langmuir_probe"):
        _ = machine.langmuir_prob


def test_a_configuration_diff_shows_the_calibrations_that_changed(campaign: ll.Archive) -> None:
    diff = campaign.config.diff(1249, 1250)  # the probe's amplifier gain halved at 1250
    assert [(d.what, d.name, d.before, d.after) for d in diff.differences] == [
        ("calibration", "langmuir_i", "langmuir_i@1", "langmuir_i@2")
    ]
    assert diff  # a calibration change is a difference
    assert not diff.changes  # no configuration log entry between: the same version
    old, new = diff.calibrations
    assert (old.label, old.params["gain"], old.valid_from) == ("langmuir_i@1", -0.02, "always")
    assert (new.label, new.params["gain"], new.valid_from) == (
        "langmuir_i@2",
        -0.01,
        "from run 1250",
    )
    text = str(diff)
    assert "  calibration langmuir_i: langmuir_i@1 -> langmuir_i@2" in text.splitlines()
    assert "calibration langmuir_i@2, from run 1250: linear gain=-0.01, offset=0.0 -> A" in text
    data = diff.to_dict()
    assert data["differences"][0]["what"] == "calibration"
    assert [c["label"] for c in data["calibrations"]] == ["langmuir_i@1", "langmuir_i@2"]
    backwards = campaign.config.diff(1265, 1239)  # wiring, description and calibration at once
    found = {(d.what, d.name): (d.before, d.after) for d in backwards.differences}
    assert found[("calibration", "langmuir_i")] == ("langmuir_i@2", "langmuir_i@1")
    assert found[("wiring", "Langmuir_I")] == ("PXI M6251/ai11", "PXI M6251/ai3")
    assert not campaign.config.diff(1250, 1259).differences


def _state(folder: Path) -> dict[str, str]:
    """What an archive holds, its catalog closed in between (a process that opens it may
    checkpoint SQLite's journal into the file: the same rows, other bytes)."""
    with ll.open(folder) as la:
        return snapshot(la)


def test_adding_the_calibration_in_force_adds_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "a"
    with ll.init(folder) as la:
        record_history(la, upto=1250)  # langmuir_i@2: gain -0.01 A from run 1250
    before = _state(folder)
    for start in ({"from_run": 1250}, {"from_run": 1265}):
        with ll.open(folder) as la:
            same = la.calibrations.add(
                "langmuir_i", gain=-0.01, unit="A", reason="re-measured", **start
            )
        assert same.already and same.label == "langmuir_i@2"
        assert same.reason != "re-measured"  # the version in force, as it was recorded
        assert _state(folder) == before
    done = cli(
        "calib", "add", "langmuir_i", "--gain", "-0.01", "--offset", "0", "--unit", "A",
        "--from-run", "1300", "--reason", "again", "--archive", str(folder),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "calibration langmuir_i@2 (linear gain=-0.01, offset=0.0 -> A, from run 1250) is the "
        "same and already in force from there on: nothing recorded"
    )
    assert _state(folder) == before
    # what would change some run's calibration is recorded
    changes = [
        {"gain": -0.01, "from_run": 1240},  # runs 1240..1249 had gain -0.02
        {"gain": -0.02, "from_run": 1260},  # back to version 1's gain: a new version
        {"gain": -0.02, "offset": 0.001, "from_run": 1270},
        {"gain": -0.02, "offset": 0.001, "from_time": "2030-01-01"},  # by time: not compared
    ]
    with ll.open(folder) as la:
        for i, change in enumerate(changes, start=3):
            made = la.calibrations.add("langmuir_i", unit="A", reason="change", **change)
            assert not made.already and made.label == f"langmuir_i@{i}"
        assert [c.version for c in la.calibrations.list("langmuir_i")] == [1, 2, 3, 4, 5, 6]


def test_a_change_dated_back_never_alters_a_run_already_ingested(tmp_path: Path) -> None:
    with ll.init(tmp_path / "a") as la:
        record_history(la, upto=1230)
        la.ingest([write_shot(tmp_path, 1230)])
        run = la.runs[1230]
        assert run.config_version == 1
        la.config.wire({"Langmuir_I": "PXI M6251/ai12"}, from_run=1, reason="dated back")
        assert la.config.at(run=1230).wiring["Langmuir_I"] == "PXI M6251/ai3"
        assert run.signal("Langmuir_I").attrs["channel"] == "PXI M6251/ai3"
        la.ingest([write_shot(tmp_path, 1231)])  # a run ingested after it is stamped with it
        assert la.config.at(run=1231).wiring["Langmuir_I"] == "PXI M6251/ai12"


def test_unknown_signal_names_suggest_close_matches(campaign: ll.Archive) -> None:
    with pytest.raises(NotFound, match=r"no signal 'Langmuir_i'.*Langmuir_I"):
        campaign.runs[1233].signal("Langmuir_i")


@pytest.mark.parametrize(
    ("window", "message"),
    [((0.2, 0.1), "the start is after the stop"), (("a", "b"), "give \\(start, stop\\) in s")],
)
def test_a_bad_time_window_is_refused(
    campaign: ll.Archive, window: tuple[object, object], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        campaign.runs[1233].signal("RF_Pfwd", time=window)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=message):
        campaign.signals(["RF_Pfwd"], runs=campaign.runs[1233:1234], time=window)  # type: ignore[arg-type]


def test_a_calibration_that_yields_nan_is_flagged_not_hidden(tmp_path: Path) -> None:
    with ll.init(tmp_path / "a") as la:
        record_history(la, upto=1230)
        la.ingest([write_shot(tmp_path, 1230)])
        # a field map that stops at 100 A: the coil runs at 300..500 A
        la.calibrations.add(
            "coil_b", kind="table", input="Coil_I", x=[0, 100], y=[0, 0.03], unit="T",
            reason="a short field map",
        )  # fmt: skip
        with pytest.warns(
            DataWarning, match=r"run 1230: \d+ of 35000 values of Coil_B are NaN"
        ) as w:
            b = la.runs[1230].signal("Coil_B")
        assert w[0].filename == __file__  # said where the user asked, not inside labledger
        assert b.attrs["nonfinite"] == np.count_nonzero(np.isnan(b.values)) > 0
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the version before gives no warning
            la.runs[1230].signal("Coil_B", calibration="coil_b@1")
        with pytest.warns(DataWarning, match=r"Coil_B has NaN or inf values \(run 1230: \d+\)"):
            many = la.signals(["Coil_B"], runs=[1230])  # run numbers will do
        assert many["Coil_B"].attrs["nonfinite"] == b.attrs["nonfinite"]


def test_a_diagnostic_on_a_run_without_its_signals_says_which(tmp_path: Path) -> None:
    with ll.init(tmp_path / "a") as la:
        record_history(la, upto=1230)
        la.config.wire({"Langmuir_V": None}, from_run=1230, reason="bias cable unplugged")
        la.ingest([write_shot(tmp_path, 1230)])
        probe = la.runs[1230].machine.langmuir_probe
        with pytest.raises(ll.machine.NotWired, match=r"voltage \(Langmuir_V\)"):
            probe.require("current", "voltage")
        with pytest.raises(NotFound, match="Langmuir_V was not wired"):
            la.runs[1230].signal("Langmuir_V")


# -- refused changes: a clear error, and the history as it was ------------------------------


@pytest.fixture
def described(archive: ll.Archive) -> ll.Archive:
    """An archive (SQLite and PostgreSQL) with the ISHTAR description and calibrations."""
    record_history(archive, upto=1230)
    return archive


def _refused(la: ll.Archive, error: type[Exception], match: str, change: object) -> None:
    before = snapshot(la)
    with pytest.raises(error, match=match):
        change()  # type: ignore[operator]
    assert snapshot(la) == before


BAD_DESCRIPTIONS = {
    "two signals on one port": (
        "  Langmuir_V: PXI M6251/ai4\n",
        "  Langmuir_V: PXI M6251/ai3\n",
        r"ishtar.yaml:41: wiring.Langmuir_V: PXI M6251/ai3 carries Langmuir_I and Langmuir_V",
    ),
    "two signals on one port in overlapping periods": (
        "  Langmuir_V: PXI M6251/ai4\n",
        "  Langmuir_V:\n    - {port: PXI M6251/ai4, until: 1100}\n"
        "    - {port: PXI M6251/ai3, from: 1100}\n",
        r"ishtar.yaml:43: wiring.Langmuir_V.1: PXI M6251/ai3 carries Langmuir_I and Langmuir_V "
        r"in the same period \(from run 1100 until now\)",
    ),
    "one signal on two ports at once": (
        "  Langmuir_V: PXI M6251/ai4\n",
        "  Langmuir_V:\n    - {port: PXI M6251/ai4, until: 1200}\n"
        "    - {port: PXI M6251/ai9, from: 1100}\n",
        r"ishtar.yaml:43: wiring.Langmuir_V.1: Langmuir_V is on PXI M6251/ai4 and PXI M6251/ai9",
    ),
    "a period that ends before it starts": (
        "  Langmuir_V: PXI M6251/ai4\n",
        "  Langmuir_V:\n    - {port: PXI M6251/ai4, from: 1200, until: 1100}\n",
        r"ishtar.yaml:42: wiring.Langmuir_V.0: from 1200 is not before until 1100",
    ),
    "a channel name with an unknown field": (
        "    ports: [ai0, ai1, ai2, ai3, ai4, ai5, ai6, ai7]\n",
        "    ports: [ai0, ai1, ai2, ai3, ai4, ai5, ai6, ai7]\n    channel: '{card}/{port}'\n",
        r"ishtar.yaml:13: devices.PXI 6133.channel: '\{card\}/\{port\}': a channel name may use",
    ),
    "an infinite property": (
        "area: 2.0 mm^2",
        "area: 1e999 mm^2",
        r"properties: '1e999 mm\^2' is not a finite number",
    ),
    "an unknown port": (
        "  Pressure: PXI M6251/ai6\n",
        "  Pressure: PXI M6251/ai16\n",
        r"ishtar.yaml:43: wiring.Pressure: PXI M6251 has no port 'ai16'",
    ),
    "an unknown device": (
        "  Pressure: PXI M6251/ai6\n",
        "  Pressure: PXI 9999/ai6\n",
        r"ishtar.yaml:43: wiring.Pressure: unknown device 'PXI 9999'",
    ),
    "a misspelt field": (
        "        model: langmuir\n",
        "        modle: langmuir\n",
        r"ishtar.yaml:78: components.diagnostics.components.langmuir_probe.modle: Extra inputs",
    ),
    "a unit pint does not know": (
        "area: 2.0 mm^2",
        "area: 2.0 furlongs^2x",
        r"ishtar.yaml:80: components.diagnostics.components.langmuir_probe.properties: .*furlongs",
    ),
    "a key given twice": (
        "  Trigger: PXI M6251/ai7\n",
        "  Trigger: PXI M6251/ai7\n  Trigger: PXI M6251/ai8\n",
        r"ishtar.yaml:45: Trigger: given twice \(also on line 44\)",
    ),
    "a component signal that is not described": (
        "signals: {phase: Interferometer_phase}",
        "signals: {phase: Interferometer_fase}",
        r"ishtar.yaml:86: components.diagnostics.components.interferometer.signals.phase: "
        r"signal 'Interferometer_fase'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_DESCRIPTIONS))
def test_a_bad_description_names_file_line_and_field(
    described: ll.Archive, tmp_path: Path, case: str
) -> None:
    good, bad, message = BAD_DESCRIPTIONS[case]
    text = DESCRIPTION.read_text()
    assert good in text
    path = tmp_path / "ishtar.yaml"
    path.write_text(text.replace(good, bad, 1))
    _refused(
        described,
        DescriptionError,
        message,
        lambda: described.config.load(path, from_run=1300, reason="new"),
    )


@pytest.mark.parametrize(
    ("wiring", "message"),
    [
        ({"Langmuir_I": "PXI 9999/ai0"}, r"unknown device 'PXI 9999'"),
        ({"Langmuir_I": "PXI M6251/ai42"}, r"PXI M6251 has no port 'ai42'"),
        ({"Langmuir_X": "PXI M6251/ai12"}, r"signal 'Langmuir_X' is not among"),
        ({"Langmuir_I": "PXI M6251/ai0"}, r"ai0 would carry both Langmuir_I and RF_Pfwd"),
        ({}, r"names at least one signal"),
    ],
)
def test_a_bad_wiring_change_is_refused(
    described: ll.Archive, wiring: dict[str, str], message: str
) -> None:
    _refused(
        described,
        LabledgerError,
        message,
        lambda: described.config.wire(wiring, from_run=1300, reason="move"),
    )


def test_a_wiring_change_needs_a_reason_and_a_sane_start(described: ll.Archive) -> None:
    move = {"Langmuir_I": "PXI M6251/ai12"}
    _refused(
        described,
        InvalidArgument,
        "needs a reason",
        lambda: described.config.wire(move, reason=" "),
    )
    _refused(
        described, InvalidArgument, "run numbers go from 0 to",
        lambda: described.config.wire(move, from_run=-3, reason="x"),
    )  # fmt: skip
    _refused(
        described, InvalidArgument, "neither a run number nor a time",
        lambda: described.config.wire(move, from_time="yesterday", reason="x"),
    )  # fmt: skip


def test_swapping_two_signals_in_one_change_is_allowed(described: ll.Archive) -> None:
    change = described.config.wire(
        {"Langmuir_I": "PXI M6251/ai4", "Langmuir_V": "PXI M6251/ai3"}, from_run=1300, reason="swap"
    )
    assert change.version == 2 and change.kind == "wiring"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"kind": "expression", "expression": "RF_Pfwd - RF_Pmid"}, r"'RF_Pmid' is not a signal"),
        ({"kind": "expression", "expression": "RF_Pfwd - P_inj"}, r"forms a cycle: P_inj -> P_inj"),
        ({"kind": "expression", "expression": "RF_Pfwd + Coil_I"}, r"does not combine the units"),
        ({"kind": "expression", "expression": "__import__('os')"}, r"only signal names"),
        ({"kind": "expression", "expression": "RF_Pfwd -"}, r"is not arithmetic"),
        (
            {"kind": "linear", "gain": float("nan")},
            r"gain=nan: a calibration's numbers must be finite",
        ),
        ({"kind": "linear", "gain": float("inf")}, r"must be finite"),
        ({"kind": "linear"}, r"needs gain"),
        ({"kind": "table", "x": [0, 2, 1], "y": [0, 1, 2]}, r"increase strictly"),
        ({"kind": "table", "x": [0, 1], "y": [0, 1, 2]}, r"2 x points but 3 y points"),
        ({"kind": "polynomial", "coefficients": []}, r"at least 1"),
        ({"kind": "spline", "gain": 1}, r"unknown calibration kind 'spline'"),
        ({"kind": "expression", "expression": "5"}, r"reads no signal"),
        ({"kind": "expression", "expression": "RF_Pfwd * 9**9**9"}, r"overflows"),
        ({"kind": "linear", "gain": 1, "unit": "A"}, r"yields A, but makes P_inj, which is in W"),
        ({"kind": "linear", "gain": 1, "unit": " "}, r"give the unit"),
        ({"kind": "linear", "gain": 1, "unit": "furlong/fortnightx"}, r"not a unit pint knows"),
    ],
)
def test_a_bad_calibration_is_refused(
    described: ll.Archive, params: dict[str, object], message: str
) -> None:
    params = {"unit": "W", **params}
    _refused(
        described,
        CalibrationError,
        message,
        lambda: described.calibrations.add("p_inj", reason="new", **params),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("name", ["Ω", "1st", "a" * 129, "has space"])
def test_a_calibration_name_must_be_a_plain_name(described: ll.Archive, name: str) -> None:
    _refused(
        described,
        CalibrationError,
        "letters, digits and _",
        lambda: described.calibrations.add(name, gain=1.0, unit="W", reason="x"),
    )


def test_a_signal_is_read_only_under_its_own_calibration(campaign: ll.Archive) -> None:
    with pytest.raises(InvalidArgument, match="coil_i@1 is a version of coil_i, not of"):
        campaign.runs[1233].signal("Langmuir_I", calibration="coil_i@1")


def test_a_cycle_through_several_calibrations_is_refused(described: ll.Archive) -> None:
    # P_inj reads RF_Pfwd: making RF_Pfwd read P_inj closes the loop
    _refused(
        described,
        CalibrationError,
        r"forms a cycle: RF_Pfwd -> P_inj -> RF_Pfwd",
        lambda: described.calibrations.add(
            "rf_pfwd", kind="linear", gain=1.0, input="P_inj", unit="W", reason="loop"
        ),
    )


def test_calibration_versions_and_validity(described: ll.Archive) -> None:
    new = described.calibrations.add(
        "langmuir_i", gain=-0.01, unit="A", from_run=1250, reason="gain halved"
    )
    assert new.label == "langmuir_i@2" and new.author and new.reason == "gain halved"
    started = described.runs  # no runs needed: validity is by number here
    assert started is not None
    from datetime import UTC, datetime

    when = datetime(2026, 11, 5, tzinfo=UTC)
    assert described.calibrations.for_run("langmuir_i", 1249, when).version == 1
    assert described.calibrations.for_run("langmuir_i", 1250, when).version == 2
    assert [c.label for c in described.calibrations.list("langmuir_i")] == [
        "langmuir_i@1",
        "langmuir_i@2",
    ]
    assert (
        described.calibrations["langmuir_i@1"].params["gain"] == CALIBRATIONS["langmuir_i"]["gain"]
    )
    with pytest.raises(NotFound, match="did you mean .*langmuir_i"):
        described.calibrations.list("langmuir_j")


def test_importing_labledger_leaves_the_machine_libraries_unloaded() -> None:
    import subprocess
    import sys

    heavy = "{'pint', 'pydantic', 'matplotlib', 'yaml'}"
    code = f"import sys, labledger; print(sorted({heavy} & set(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


def test_a_wiring_change_is_checked_wherever_it_lands(described: ll.Archive) -> None:
    described.config.wire({"Langmuir_I": "PXI M6251/ai11"}, from_run=1240, reason="moved")
    # from 1235 Pressure on ai11 is free, but from 1240 Langmuir_I is there too
    _refused(
        described,
        DescriptionError,
        r"from run 1240 PXI M6251/ai11 would carry both",
        lambda: described.config.wire({"Pressure": "PXI M6251/ai11"}, from_run=1235, reason="x"),
    )


def test_a_wiring_change_onto_a_device_only_a_later_description_has(
    described: ll.Archive, tmp_path: Path
) -> None:
    text = DESCRIPTION.read_text().replace(
        "devices:\n", "devices:\n  NEW DAQ: {ports: [ai0, ai1]}\n", 1
    )
    later = tmp_path / "later.yaml"
    later.write_text(text)
    described.config.load(later, from_run=1300, reason="a new card")
    _refused(
        described,
        DescriptionError,
        r"unknown device 'NEW DAQ'.*for run 0",
        lambda: described.config.wire({"Trigger": "NEW DAQ/ai0"}, from_run=0, reason="x"),
    )
    # and for runs where the new card is described, the same change is fine
    change = described.config.wire({"Trigger": "NEW DAQ/ai0"}, from_run=1300, reason="x")
    assert change.version == 3


def test_two_changes_checked_against_the_same_history_record_only_one(
    described: ll.Archive,
) -> None:
    from datetime import UTC, datetime

    from labledger.errors import Conflict
    from labledger.records import ConfigChangeRecord

    def change() -> ConfigChangeRecord:
        now = datetime.now(UTC)
        return ConfigChangeRecord(
            kind="wiring", payload={"wiring": {}}, from_run=None, from_time=None,
            author="t", reason="r", created=now,
        )  # fmt: skip

    described.catalog.append_config_change(change(), expected=1)
    with pytest.raises(Conflict, match="changed meanwhile"):
        described.catalog.append_config_change(change(), expected=1)
    assert [c.version for c in described.config.log()] == [1, 2]


# The validity rules on their own, with expected values written by hand (mutation testing found
# boundaries and messages that the archive-level tests above never reach).
T0 = datetime(2026, 11, 5, tzinfo=UTC)
T1 = datetime(2026, 11, 6, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, None),
        (0, 0),
        (2**63 - 1, 2**63 - 1),
        (" 1240 ", 1240),
        ("1240", 1240),
        ("2026-11-05", T0),
        ("2026-11-06T12:30:00+00:00", T1),
        (datetime(2026, 11, 6, 13, 30, tzinfo=timezone(timedelta(hours=1))), T1),
    ],
)
def test_a_validity_point_is_a_run_number_or_a_utc_time(given: object, expected: object) -> None:
    point = validity_rules.parse_point(given)
    assert point == expected and type(point) is type(expected)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (True, r"^True is neither a run number nor a time$"),
        (False, r"^False is neither a run number nor a time$"),
        (-1, r"^run -1: run numbers go from 0 to 9223372036854775807$"),
        (2**63, r"^run 9223372036854775808: run numbers go from 0 to 9223372036854775807$"),
        ("soon", r"^'soon' is neither a run number nor a time \(write 1240 or 2026-11-05T14:30\)$"),
        (1.5, r"^1.5 is neither a run number nor a time \(write 1240 or 2026-11-05T14:30\)$"),
        (b"2026-11-05", r"^b'2026-11-05' is neither a run number nor a time \(write 1240"),
    ],
)
def test_a_bad_validity_point_says_what_to_write(given: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validity_rules.parse_point(given)


def test_a_validity_start_in_words() -> None:
    assert validity_rules.since(None, None) == "always"
    assert validity_rules.since(0, None) == "from run 0"
    assert validity_rules.since(1240, None) == "from run 1240"
    assert validity_rules.since(None, T0) == "from 2026-11-05T00:00:00+00:00"
    assert validity_rules.start_of(0, None) == 0
    assert validity_rules.start_of(None, T0) == T0
    assert validity_rules.start_of(None, None) is None


def test_a_validity_from_either_column() -> None:
    assert validity_rules.validity() == (None, None)
    assert validity_rules.validity(from_run=0) == (0, None)
    assert validity_rules.validity(from_run="1240") == (1240, None)
    assert validity_rules.validity(from_time="2026-11-05") == (None, T0)
    assert validity_rules.validity(from_time=T1) == (None, T1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"from_run": 1, "from_time": T0}, r"^give from_run or from_time, not both$"),
        ({"from_run": "2026-11-05"}, r"^from_run='2026-11-05' is not a run number$"),
        ({"from_time": 1240}, r"^from_time=1240 is not a time \(write 2026-11-05T14:30\)$"),
        ({"from_time": "1240"}, r"^from_time='1240' is not a time \(write 2026-11-05T14:30\)$"),
        ({"from_run": -3}, r"^run -3: run numbers go from 0 to 9223372036854775807$"),
        ({"from_time": "later"}, r"^'later' is neither a run number nor a time"),
    ],
)
def test_a_bad_validity_is_an_invalid_argument(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as caught:
        validity_rules.validity(**kwargs)
    assert caught.value.__cause__ is None  # one line for the user, no chained traceback


@pytest.mark.parametrize(
    ("start", "until", "number", "started", "expected"),
    [
        (None, None, 0, T0, True),
        (1240, None, 1239, T1, False),
        (1240, None, 1240, T0, True),
        (1240, 1250, 1249, T0, True),
        (1240, 1250, 1250, T0, False),
        (None, 1250, 1251, T0, False),
        (T1, None, 10**6, T0, False),  # a time bound looks at the start time, not the number
        (T0, None, 0, T0, True),
        (T0, T1, 0, T1, False),
        (T0, T1, 0, T1 - timedelta(microseconds=1), True),
    ],
)
def test_a_period_covers_a_run_from_its_start_until_before_its_end(
    start: object, until: object, number: int, started: datetime, expected: bool
) -> None:
    assert validity_rules.covers(start, until, number, started) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("periods", "expected"),
    [
        ((None, None, None, None), "from the start until now"),
        ((1240, None, 1230, 1250), "from run 1240 until run 1250"),
        ((1230, 1250, 1240, None), "from run 1240 until run 1250"),
        ((1240, 1250, 1250, None), None),  # touching ends do not overlap
        ((1240, 1250, 1249, None), "from run 1249 until run 1250"),
        ((None, 1250, None, 1260), "from the start until run 1250"),
        ((T0, None, T1, None), "from 2026-11-06T12:30:00+00:00 until now"),
        ((T0, T1, T1, None), None),
        ((0, None, None, 1), "from run 0 until run 1"),
        (
            (1, None, T0, None),
            "one bounded by run numbers, the other by times: give both the same way",
        ),
        (
            (None, 5, None, T0),
            "one bounded by run numbers, the other by times: give both the same way",
        ),
    ],
)
def test_how_two_periods_overlap(periods: tuple[object, ...], expected: str | None) -> None:
    assert validity_rules.overlaps(*periods) == expected  # type: ignore[arg-type]


# -- which calibration version is in force, rule by rule (mutation survivors) -----------------


def _version(name: str, version: int, start: object = None, **params: object) -> CalibrationRecord:
    """A catalog row of one version, as the catalog hands it over (not stored anywhere)."""
    return CalibrationRecord(
        name=name,
        version=version,
        kind="linear",
        params={"gain": params.get("gain", -0.02), "offset": params.get("offset", 0.0)},
        unit=params.get("unit", "A"),
        from_run=start if isinstance(start, int) else None,
        from_time=start if isinstance(start, datetime) else None,
        author="me@lab",
        reason=f"reason {version}",
        created=datetime(2026, 1, 1 + version, tzinfo=UTC),
    )


def _logs(*rows: CalibrationRecord) -> Snapshot:
    found: dict[str, list[CalibrationRecord]] = {}
    for row in rows:
        found.setdefault(row.name, []).append(row)
    return Snapshot(calibrations=found)


# version 1 always, 2 from run 1250, 3 from T1, 4 a correction dated back to run 1240
HISTORY = _logs(
    _version("g", 1), _version("g", 2, 1250), _version("g", 3, T1), _version("g", 4, 1240)
)


@pytest.mark.parametrize(
    ("number", "started", "expected"),
    [
        (1239, T0, 1),
        (1240, T0, 4),  # the dated-back correction, from its first run
        (1250, T0, 4),  # the newest version begun wins, not the latest start
        (0, T1, 3),  # a start by time looks at the run's start time
        (0, T1 - timedelta(microseconds=1), 1),
        (1249, T1, 4),
    ],
)
def test_the_version_in_force_is_the_newest_begun(
    number: int, started: datetime, expected: int
) -> None:
    found = in_force(HISTORY, "g", number, started)
    assert found is not None and found.label == f"g@{expected}"
    assert found.params == {"gain": -0.02, "offset": 0.0} and found.reason == f"reason {expected}"


def test_no_version_in_force() -> None:
    later = _logs(_version("g", 1, 1250), _version("g", 2, 1300))
    assert in_force(later, "g", 1249, T1) is None
    assert in_force(later, "h", 1300, T1) is None  # no such name
    assert in_force(Snapshot(), "g", 0, T0) is None
    calibrations = Calibrations(SimpleNamespace(current=lambda: later), None)  # type: ignore[arg-type]
    assert calibrations.for_run("g", 1300, T0).label == "g@2"
    by_time = Calibrations(SimpleNamespace(current=lambda: HISTORY), None)  # type: ignore[arg-type]
    assert by_time.for_run("g", 0, T1).label == "g@3"  # begun by the run's start time
    with pytest.raises(NotFound) as caught:
        calibrations.for_run("g", 1249, T1)
    assert str(caught.value) == (
        "no version of calibration g is in force for run 1249 (version 1 is from run 1250); "
        "read it with an explicit calibration='g@N' or add one valid from earlier"
    )
    with pytest.raises(NotFound) as caught:
        calibrations.for_run("h", 1300, T1)
    assert str(caught.value) == (
        "no calibration is named 'h' (list them with `labledger calib list`)"
    )


def test_an_explicitly_chosen_version() -> None:
    logs = _logs(_version("g", 1), _version("g", 2, 1250), _version("k", 1))
    assert by_label(logs, "g@2").label == "g@2" and by_label(logs, "g@2").from_run == 1250
    assert by_label(logs, "g@1").from_run is None and by_label(logs, "g@01").label == "g@1"
    there = "(there are g@1, g@2)"
    for label in ("g@3", "g@0", "g", "g@", "g@x", "g@-1", "g@2@2", "g@ 2"):
        with pytest.raises(NotFound) as caught:
            by_label(logs, label)
        assert str(caught.value) == f"no calibration {label!r}: write name@N {there}", label
    for label, hint in [
        ("q@1", ""),
        ("@1", ""),
        ("kk@1", "; did you mean k?"),
    ]:
        with pytest.raises(NotFound) as caught:
            by_label(logs, label)
        name = label.partition("@")[0]
        assert str(caught.value) == (
            f"no calibration is named {name!r}{hint} (list them with `labledger calib list`)"
        )
    calibrations = Calibrations(SimpleNamespace(current=lambda: logs), None)  # type: ignore[arg-type]
    assert calibrations["g@2"].label == "g@2"
    assert [c.label for c in calibrations.list()] == ["g@1", "g@2", "k@1"]
    assert [c.label for c in calibrations.list("g")] == ["g@1", "g@2"]
    for name in ("", "G"):
        with pytest.raises(NotFound, match=f"^no calibration is named {name!r}"):
            calibrations.list(name)


def test_an_unknown_calibration_name_suggests_at_most_three_close_ones() -> None:
    # difflib's ratio: twice the matching characters over both lengths, 18/20 here; ties by name
    close = _logs(*(_version(f"langmuir_{c}", 1) for c in "itvx"))
    with pytest.raises(NotFound) as caught:
        by_label(close, "langmuir_j@1")
    assert "; did you mean langmuir_x, langmuir_v, langmuir_t? (list" in str(caught.value)
    # 6/10: just close enough
    with pytest.raises(NotFound, match=r"^no calibration is named 'abcxy'; did you mean abcde\?"):
        by_label(_logs(_version("abcde", 1)), "abcxy@1")
    with pytest.raises(NotFound, match=r"^no calibration is named 'abxyz' \(list"):
        by_label(_logs(_version("abcde", 1)), "abxyz@1")  # 4/10: not


def _new(start: object = None, **params: object) -> Calibration:
    return Calibration.from_row(_version("g", 0, start, **params))


@pytest.mark.parametrize(
    ("rows", "new", "same"),
    [
        ((), _new(), None),
        ((_version("g", 1),), _new(), 1),
        ((_version("g", 1),), _new(1250), 1),  # in force for every run already
        ((_version("g", 1),), _new(T1), 1),
        ((_version("g", 1, unit=" A "),), _new(unit="A"), 1),  # the unit as written, trimmed
        ((_version("g", 1),), _new(gain=-0.01), None),
        ((_version("g", 1),), _new(offset=0.5), None),
        ((_version("g", 1),), _new(unit="mA"), None),
        ((_version("g", 1, 1250),), _new(1250), 1),
        ((_version("g", 1, 1250),), _new(1251), 1),
        ((_version("g", 1, 1250),), _new(1249), None),  # would change run 1249
        ((_version("g", 1, 1250),), _new(), None),  # would change every run before 1250
        ((_version("g", 1, 1250),), _new(T1), None),  # a run and a time: not compared
        ((_version("g", 1, T0),), _new(1250), None),
        ((_version("g", 1, T0),), _new(T0), 1),
        ((_version("g", 1, T0),), _new(T1), 1),
        ((_version("g", 1, T1),), _new(T0), None),
        # only the newest counts: version 1 is the same, but version 2 is in force after it
        ((_version("g", 1), _version("g", 2, 1250, gain=-0.01)), _new(1300), None),
        ((_version("g", 1), _version("g", 2, 1250, gain=-0.01)), _new(1300, gain=-0.01), 2),
        ((_version("h", 1),), _new(), None),  # another name
    ],
)
def test_the_same_calibration_as_the_one_in_force_changes_nothing(
    rows: tuple[CalibrationRecord, ...], new: Calibration, same: int | None
) -> None:
    found = _same_in_force(new, _logs(*rows))
    assert (found.version if found else None) == same


def test_a_new_calibration_is_recorded_as_given(tmp_path: Path) -> None:
    with ll.init(tmp_path / "a") as la:
        before = datetime.now(UTC)
        made = la.calibrations.add(
            "a" * 128, gain="2.5", unit="V", from_time="2026-11-06T12:30", reason=" new shunt "
        )
        after = datetime.now(UTC)
        assert (made.label, made.kind, made.unit) == ("a" * 128 + "@1", "linear", "V")
        assert made.params == {"gain": 2.5, "offset": 0.0}
        assert (made.from_run, made.from_time) == (None, T1)
        assert made.reason == "new shunt" and made.author == author() and not made.already
        assert before <= made.created <= after
        [kept] = la.calibrations.list()
        assert (kept.label, kept.reason, kept.from_time, kept.author) == (
            made.label, "new shunt", T1, author()
        )  # fmt: skip
        again = la.calibrations.add(
            "a" * 128, gain=2.5, unit="V", from_time="2026-11-07", reason="again"
        )
        assert again.already and again.label == made.label and again.reason == "new shunt"
        two = la.calibrations.add("a" * 128, gain=3, unit="V", reason="x", from_run=0)
        assert (two.label, two.from_run, two.from_time) == ("a" * 128 + "@2", 0, None)
        later = la.calibrations.add("a" * 128, gain=3, unit="V", reason="y", from_run=5)
        assert later.already and later.label == two.label  # in force from run 0 on already


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reason": ""}, r"^say why: a calibration needs a reason$"),
        ({"reason": " \t"}, r"^say why: a calibration needs a reason$"),
        ({"reason": None}, r"^say why: a calibration needs a reason$"),
        (
            {"name": 5},
            r"^calibration name 5: letters, digits and _, at most 128, not a digit first$",
        ),
        ({"name": "g\n"}, r"^calibration name 'g\\n': letters, digits and _"),
        ({"from_run": 1, "from_time": T0}, r"^give from_run or from_time, not both$"),
        ({"kind": "spline"}, r"^unknown calibration kind 'spline'"),
    ],
)
def test_a_calibration_refused_records_nothing(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    with ll.init(tmp_path / "a") as la:
        given: dict[str, object] = {"name": "g", "gain": 1.0, "unit": "A", "reason": "why"}
        _refused(la, InvalidArgument, message, lambda: la.calibrations.add(**{**given, **kwargs}))
        assert la.calibrations.list() == []
