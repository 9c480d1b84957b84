"""Physical constants (CODATA 2018, SI) and ion masses, for the diagnostic models.

Kept here rather than imported from the simulator: the models must work on any lab's data, so
they depend on nothing in :mod:`labledger.sim`.
"""

from __future__ import annotations

ELEMENTARY_CHARGE = 1.602176634e-19  # C (exact); also J per eV
ELECTRON_MASS = 9.1093837015e-31  # kg
AMU = 1.66053906660e-27  # kg, atomic mass unit
MU_0 = 1.25663706212e-6  # N A^-2, vacuum permeability
ELECTRON_RADIUS = 2.8179403262e-15  # m, classical electron radius

# short names, as the physics is usually written
e, m_e, amu, mu0, r_e = ELEMENTARY_CHARGE, ELECTRON_MASS, AMU, MU_0, ELECTRON_RADIUS

# mass of the (singly charged) ion of each fill gas, in amu; molecular gases as their
# molecular ion, which dominates in a low-temperature discharge
ION_MASS_AMU: dict[str, float] = {
    "H2": 2.016,
    "He": 4.0026,
    "N2": 28.014,
    "Ne": 20.180,
    "Ar": 39.948,
    "Kr": 83.798,
    "Xe": 131.293,
}

# the names a gas also goes by in shot metadata
GAS_NAMES: dict[str, str] = {
    "hydrogen": "H2",
    "helium": "He",
    "nitrogen": "N2",
    "neon": "Ne",
    "argon": "Ar",
    "krypton": "Kr",
    "xenon": "Xe",
}
