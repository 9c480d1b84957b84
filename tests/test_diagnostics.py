"""The shipped diagnostic models recover the simulated physics (the ``truth.*`` metadata of each
shot) across the campaign's events: the probe current re-wired at 1240, its amplifier
recalibrated at 1250, helium and a larger probe tip from 1260. Every result is a pint quantity
(or xarray data with its unit in attrs), checked against the same physics written out here with
scipy's CODATA constants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pint
import pytest
import xarray
from scipy import constants

import labledger as ll
from labledger.diagnostics.coils import FieldCoils
from labledger.diagnostics.constants import AMU
from labledger.diagnostics.flattop import flattop
from labledger.diagnostics.interferometer import Interferometer
from labledger.diagnostics.langmuir import FitError, LangmuirProbe, ion_mass
from labledger.diagnostics.rf import RfGenerator
from labledger.errors import InvalidArgument
from labledger.sim.campaign import DESCRIPTION, record_history
from labledger.sim.testbed import write_shot
from tests.conftest import CAMPAIGN_SHOTS, snapshot

WINDOW = (0.1, 0.3)  # s: inside every shot's flat-top


def _off(found: Any, truth: float, unit: str | None = None) -> float:
    """How far ``found`` (a quantity in a unit of ``unit``'s dimension, or a float) is from
    ``truth`` (in ``unit``), relatively."""
    if unit is not None:
        found = _in(found, unit)
    return abs(found / truth - 1)


def _in(found: Any, unit: str) -> float:
    """The magnitude of ``found`` in ``unit``, once it is checked to be a quantity of that
    unit's dimension."""
    assert isinstance(found, pint.Quantity), f"{found!r} is not a quantity"
    assert found.is_compatible_with(unit), f"{found!r} is not in a unit of {unit}"
    return float(found.m_as(unit))


@pytest.mark.parametrize("shot", CAMPAIGN_SHOTS)
def test_the_models_recover_the_physics_of_each_shot(campaign: ll.Archive, shot: int) -> None:
    run = campaign.runs[shot]
    truth, machine = run.metadata, run.machine
    probe = machine.langmuir_probe
    found = probe.analyse()
    assert _off(found["T_e"], truth["truth.T_e"], "eV") < 0.10
    assert _off(found["n_e"], truth["truth.n_e"], "m^-3") < 0.20
    assert _off(found["I_sat"], truth["truth.I_sat"], "A") < 0.10
    assert _in(found["V_float"], "V") == pytest.approx(truth["truth.V_float"], abs=1.0)
    assert probe.temperature() == found["T_e"] and probe.density() == found["n_e"]
    assert _off(machine.interferometer.mean_line_density(), truth["truth.nL"], "m^-2") < 0.05
    assert _off(machine.interferometer.mean_density(), truth["truth.n_e"], "m^-3") < 0.05
    assert _off(machine.rf_generator.mean_injected_power(), truth["truth.P_inj"], "W") < 0.03
    assert _off(machine.field_coils.mean_field(), truth["truth.B_axis"], "T") < 0.02


@pytest.mark.parametrize(("shot", "gas_amu", "area_m2"), [(1250, 39.948, 2.0e-6),
                                                          (1260, 4.0026, 3.0e-6)])  # fmt: skip
def test_the_probe_gives_quantities_that_follow_from_its_fit(
    campaign: ll.Archive, shot: int, gas_amu: float, area_m2: float
) -> None:
    """The density is the Bohm flux written out with scipy's constants, from the fitted I_sat
    and T_e, the tip's area from the description (mm^2, by hand) and the ion's mass."""
    probe = campaign.runs[shot].machine.langmuir_probe
    found = probe.analyse(time=WINDOW)
    t_e, i_sat = _in(found["T_e"], "eV"), _in(found["I_sat"], "A")
    assert str(found["T_e"].units) == "electron_volt" and found["n_e"].is_compatible_with("m^-3")
    m_i = gas_amu * constants.physical_constants["atomic mass constant"][0]
    c_s = np.sqrt(constants.e * t_e / m_i)
    assert _in(probe.density(time=WINDOW), "m^-3") == pytest.approx(
        i_sat / (0.61 * constants.e * area_m2 * c_s), rel=1e-6
    )
    assert _in(probe.density(time=WINDOW), "cm^-3") == pytest.approx(
        _in(found["n_e"], "m^-3") * 1e-6, rel=1e-9
    )
    # an energy: eV, e joules each (as a temperature, T = e T_e / k_B)
    assert _in(probe.temperature(time=WINDOW), "J") == pytest.approx(t_e * constants.e, rel=1e-6)
    kelvin = probe.temperature(time=WINDOW).to("K", "boltzmann").magnitude
    assert kelvin == pytest.approx(t_e * constants.e / constants.k, rel=1e-6)
    assert probe.floating_potential(time=WINDOW) == found["V_float"]
    assert found["V_float"].is_compatible_with("V") and found["V_knee"].is_compatible_with("V")
    assert probe.ion_saturation_current(time=WINDOW) == found["I_sat"] and i_sat > 0
    assert _in(probe.ion_mass, "kg") == pytest.approx(m_i, rel=1e-6)
    assert _in(probe.area, "m^2") == pytest.approx(area_m2)


def test_the_interferometer_rf_and_coils_give_quantities(campaign: ll.Archive) -> None:
    """Each model's mean written out with numpy over the same window of its calibrated signals,
    with the geometry of the description (ishtar.yaml) by hand."""
    run = campaign.runs[1240]
    machine = run.machine
    # the interferometer: phase = r_e * wavelength * nL, wavelength 2.0 mm, path 0.15 m
    phase = run.signal("Interferometer_phase", time=WINDOW)
    assert phase.attrs["units"] == "rad"
    r_e = constants.physical_constants["classical electron radius"][0]
    line = float(np.mean(phase.values)) / (r_e * 2.0e-3)
    chord = machine.interferometer
    assert _in(chord.mean_line_density(time=WINDOW), "m^-2") == pytest.approx(line, rel=1e-6)
    assert _in(chord.mean_density(time=WINDOW), "m^-3") == pytest.approx(line / 0.15, rel=1e-6)
    # the RF generator: forward less reflected, W
    forward, reflected = run.signal("RF_Pfwd", time=WINDOW), run.signal("RF_Pref", time=WINDOW)
    assert forward.attrs["units"] == reflected.attrs["units"] == "W"
    injected = float(np.mean(forward.values - reflected.values))
    power = machine.rf_generator.mean_injected_power(time=WINDOW)
    assert _in(power, "W") == pytest.approx(injected, rel=1e-9)
    assert _in(power, "kW") == pytest.approx(injected / 1e3, rel=1e-9)
    # the coils: B = mu0 N I / sqrt(L^2 + 4 R^2), 120 turns, 0.5 m long, 0.15 m radius
    current = run.signal("Coil_I", time=WINDOW)
    assert current.attrs["units"] == "A"
    per_ampere = constants.mu_0 * 120 / np.hypot(0.5, 2 * 0.15)
    coils = machine.field_coils
    assert _in(coils.tesla_per_ampere, "T/A") == pytest.approx(per_ampere, rel=1e-6)
    field = coils.mean_field(time=WINDOW)
    assert _in(field, "T") == pytest.approx(per_ampere * float(np.mean(current.values)), rel=1e-6)
    assert _in(field, "mT") == pytest.approx(_in(field, "T") * 1e3, rel=1e-9)


def test_a_property_in_a_unit_of_another_dimension_is_named(tmp_path: Path) -> None:
    """A tip area written in volts: the physics refuses it in one line that names the property,
    its value, the dimension it needs and where to fix it; the archive is unchanged."""
    wrong = tmp_path / "ishtar-wrong.yaml"
    wrong.write_text(DESCRIPTION.read_text().replace("area: 2.0 mm^2", "area: 2.0 V"))
    with ll.init(tmp_path / "a") as la:
        record_history(la, upto=1230)
        la.config.load(wrong, from_run=1230, reason="a typo in the tip's area")
        la.ingest([write_shot(tmp_path, 1230)])
        probe = la.runs[1230].machine.langmuir_probe
        before = snapshot(la)
        for ask in (probe.density, probe.temperature, probe.analyse):
            with pytest.raises(InvalidArgument) as error:
                ask()
            message = str(error.value)
            assert message.count("\n") == 0
            assert message.startswith(
                "run 1230: langmuir_probe.area = 2.0 V is not in a unit of [length] ** 2"
            )
            assert "fix it in the testbed description" in message
        assert probe.area == 2.0 * probe.area.units  # what the description says, as it says it
        assert snapshot(la) == before


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
    assert _in(argon.machine.langmuir_probe.ion_mass, "kg") == pytest.approx(39.948 * AMU)
    assert _in(helium.machine.langmuir_probe.ion_mass, "kg") == pytest.approx(4.0026 * AMU)
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
    assert _in(windowed, "eV") == pytest.approx(_in(probe.temperature(), "eV"), rel=0.02)


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
        b_axis = la.runs[1230].metadata["truth.B_axis"]
        assert _off(machine.field_coils.mean_field(), b_axis, "T") < 0.02
