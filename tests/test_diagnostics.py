"""The shipped diagnostic models recover the simulated physics (the ``truth.*`` metadata of each
shot) across the campaign's events: the probe current re-wired at 1240, its amplifier
recalibrated at 1250, helium and a larger probe tip from 1260."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray

import labledger as ll
from labledger.diagnostics.coils import FieldCoils
from labledger.diagnostics.constants import AMU
from labledger.diagnostics.flattop import flattop
from labledger.diagnostics.interferometer import Interferometer
from labledger.diagnostics.langmuir import FitError, LangmuirProbe, ion_mass
from labledger.diagnostics.rf import RfGenerator
from labledger.errors import InvalidArgument
from labledger.sim.campaign import record_history
from labledger.sim.testbed import write_shot
from tests.conftest import CAMPAIGN_SHOTS


def _off(found: float, truth: float) -> float:
    return abs(found / truth - 1)


@pytest.mark.parametrize("shot", CAMPAIGN_SHOTS)
def test_the_models_recover_the_physics_of_each_shot(campaign: ll.Archive, shot: int) -> None:
    run = campaign.runs[shot]
    truth, machine = run.metadata, run.machine
    probe = machine.langmuir_probe
    found = probe.analyse()
    assert _off(found["T_e"], truth["truth.T_e"]) < 0.10
    assert _off(found["n_e"], truth["truth.n_e"]) < 0.20
    assert _off(found["I_sat"], truth["truth.I_sat"]) < 0.10
    assert found["V_float"] == pytest.approx(truth["truth.V_float"], abs=1.0)
    assert probe.temperature() == found["T_e"] and probe.density() == found["n_e"]
    assert _off(machine.interferometer.mean_line_density(), truth["truth.nL"]) < 0.05
    assert _off(machine.interferometer.mean_density(), truth["truth.n_e"]) < 0.05
    assert _off(machine.rf_generator.mean_injected_power(), truth["truth.P_inj"]) < 0.03
    assert _off(machine.field_coils.mean_field(), truth["truth.B_axis"]) < 0.02


def test_the_models_are_found_through_their_entry_points(campaign: ll.Archive) -> None:
    machine = campaign.runs[1225].machine
    assert isinstance(machine.langmuir_probe, LangmuirProbe)
    assert isinstance(machine.interferometer, Interferometer)
    assert isinstance(machine.rf_generator, RfGenerator)
    assert isinstance(machine.field_coils, FieldCoils)


def test_the_ion_mass_follows_the_gas_change(campaign: ll.Archive) -> None:
    argon, helium = campaign.runs[1259], campaign.runs[1260]
    assert argon.machine.langmuir_probe.gas == "Ar"
    assert helium.machine.langmuir_probe.gas == "He"
    assert argon.machine.langmuir_probe.ion_mass == pytest.approx(39.948 * AMU)
    assert helium.machine.langmuir_probe.ion_mass == pytest.approx(4.0026 * AMU)
    # without the shot's own record, the gas feed in the description says the same
    for run, gas in ((argon, "Ar"), (helium, "He")):
        del run.metadata["gas"]
        assert run.machine.langmuir_probe.gas == gas


def test_the_probe_area_follows_the_tip_swap(campaign: ll.Archive) -> None:
    assert campaign.runs[1259].machine.langmuir_probe.property("area", "mm^2") == 2.0
    assert campaign.runs[1260].machine.langmuir_probe.property("area", "mm^2") == 3.0


def test_an_unknown_gas_is_named(campaign: ll.Archive) -> None:
    with pytest.raises(InvalidArgument, match="Unobtainium"):
        ion_mass("Unobtainium")
    assert ion_mass("argon") == ion_mass("Ar") == ion_mass("ar")
    run = campaign.runs[1233]
    run.metadata["gas"] = "Unobtainium"
    unknown = r"run 1233 \(its metadata\): unknown gas 'Unobtainium'.*Ar"
    with pytest.raises(InvalidArgument, match=unknown):
        run.machine.langmuir_probe.density()


def test_the_characteristic_and_the_density_trace(campaign: ll.Archive) -> None:
    run = campaign.runs[1250]
    truth, probe = run.metadata, run.machine.langmuir_probe
    curve = probe.characteristic()
    assert curve.dims == ("bias",) and curve.attrs["units"] == "A"
    assert curve["bias"].attrs["units"] == "V" and np.all(np.diff(curve["bias"]) > 0)
    assert curve.sel(bias=-90, method="nearest") == pytest.approx(-truth["truth.I_sat"], rel=0.05)
    assert curve.isel(bias=-1) > 20 * truth["truth.I_sat"]  # the electron branch
    trace = probe.density_trace(resolution=0.05)
    assert trace.attrs["units"] == "m^-3" and trace.sizes["time"] == 10
    assert np.all(np.abs(trace.values[1:-1] / truth["truth.n_e"] - 1) < 0.2)
    # outside the pulse there is no characteristic to fit: NaN in the trace, an error alone
    assert np.isnan(probe.density_trace(time=(-0.1, 0.0)).values).all()
    with pytest.raises(FitError, match="plasma on"):
        probe.analyse(time=(-0.09, -0.01))
    # a bias window that keeps the ion branch and the transition gives the same T_e
    windowed = probe.temperature(window=(-100.0, 0.0))
    assert windowed == pytest.approx(probe.temperature(), rel=0.02)


def test_time_series_and_reflection(campaign: ll.Archive) -> None:
    run = campaign.runs[1240]
    truth, machine = run.metadata, run.machine
    nl = machine.interferometer.line_density()
    assert nl.attrs["units"] == "m^-2" and float(nl.sel(time=-0.05, method="nearest")) < 1e15
    power = machine.rf_generator.injected_power(time=(0.1, 0.2))
    assert power.attrs["units"] == "W"
    assert float(power.mean()) == pytest.approx(truth["truth.P_inj"], rel=0.03)
    gamma = machine.rf_generator.reflection()
    assert np.isnan(gamma.sel(time=slice(-0.09, -0.01))).all()  # no forward power: no ratio
    assert float(gamma.sel(time=slice(0.1, 0.4)).mean()) == pytest.approx(0.06, rel=0.03)
    field = machine.field_coils.field_on_axis()
    assert field.attrs["units"] == "T" and field.sizes == nl.sizes


def test_the_flattop_is_where_a_signal_is_on() -> None:
    t = np.arange(-0.1, 0.6, 2e-5)
    sweep = np.sin(2 * np.pi * 500 * t) * ((t >= 0) & (t < 0.5))
    t0, t1 = flattop(xarray.DataArray(sweep, dims="time", coords={"time": t}))
    assert t0 == pytest.approx(0.05, abs=0.01) and t1 == pytest.approx(0.45, abs=0.01)
    with pytest.raises(InvalidArgument, match="never on"):
        flattop(xarray.DataArray(np.zeros_like(t), dims="time", coords={"time": t}))


def test_a_model_asked_of_a_run_without_its_signals_says_which(tmp_path: Path) -> None:
    with ll.init(tmp_path / "a") as la:
        record_history(la, upto=1230)
        la.config.wire({"Interferometer_phase": None}, from_run=1230, reason="source unplugged")
        la.ingest([write_shot(tmp_path, 1230)])
        machine = la.runs[1230].machine
        with pytest.raises(ll.machine.NotWired, match=r"phase \(Interferometer_phase\)"):
            machine.interferometer.line_density()
        with pytest.raises(ll.machine.NotWired, match="Interferometer_phase"):
            machine.interferometer.mean_density()
        # the other models of the run are unaffected
        assert _off(machine.field_coils.mean_field(), la.runs[1230].metadata["truth.B_axis"]) < 0.02
