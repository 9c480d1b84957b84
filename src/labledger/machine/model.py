"""The machine of a run: its component tree, as configured for that run, with physics attached.

``run.machine.langmuir_probe`` is the probe as the run's configuration describes it: its
properties (``.area``, a pint quantity), its signals by role (``.signal("current")``), and, when
the description names a ``model``, the physics of that diagnostic (``.density()``). Diagnostic
classes are found through the ``labledger.diagnostics`` entry points, so a lab adds its own.

>>> run.machine.langmuir_probe.area
<Quantity(2.0, 'millimeter ** 2')>
>>> run.machine.langmuir_probe.density()
<Quantity(3.15...e+17, '1 / meter ** 3')>
"""

from __future__ import annotations

import difflib
import functools
from typing import TYPE_CHECKING, Any, ClassVar

from labledger.errors import InvalidArgument, LabledgerError, NotFound
from labledger.machine.calibration import in_force
from labledger.machine.description import Component as ComponentSpec
from labledger.machine.units import magnitude_in, quantity
from labledger.plugins import failed, load

if TYPE_CHECKING:
    import xarray

    from labledger.machine.configuration import Configuration
    from labledger.runs import Run

GROUP = "labledger.diagnostics"


class NotWired(LabledgerError):
    """A diagnostic asked for physics from signals its run did not record."""


class Component:
    """A part of the testbed as configured for one run."""

    roles: ClassVar[tuple[str, ...]] = ()  # the signals a diagnostic model needs, by role

    def __init__(self, run: Run, config: Configuration, path: str, spec: ComponentSpec):
        self.run = run
        self.config = config
        self.path = path
        self.name = path.rpartition("/")[2]
        self.spec = spec

    def __repr__(self) -> str:
        model = f" ({self.spec.model})" if self.spec.model else ""
        return f"<{self.spec.kind} {self.name}{model} of run {self.run.number}>"

    @property
    def properties(self) -> dict[str, Any]:
        """The properties from the description, numbers with units as pint quantities."""
        return {k: quantity(v) for k, v in self.spec.properties.items()}

    @property
    def signals(self) -> dict[str, str]:
        """Role -> signal name, as the description gives them."""
        return dict(self.spec.signals)

    @property
    def components(self) -> dict[str, Component]:
        """The parts directly below this one."""
        return {
            name: bind(self.run, self.config, f"{self.path}/{name}", spec)
            for name, spec in self.spec.components.items()
        }

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("spec", "run", "config", "path"):
            raise AttributeError(name)
        if name in self.spec.properties:
            return quantity(self.spec.properties[name])
        if name in self.spec.components:
            return self.components[name]
        known = [*self.spec.properties, *self.spec.components]
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        has = ", ".join(known) or "none"
        raise AttributeError(f"{self.name} has no property or part {name!r}{hint} (it has: {has})")

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self.spec.properties, *self.spec.components})

    def property(self, name: str, unit: str | None = None) -> Any:
        """A property by name; with ``unit``, its magnitude in that unit (a float), or an
        :class:`~labledger.errors.InvalidArgument` if the description gives it in a unit of
        another dimension (an area in V)."""
        if name not in self.spec.properties:
            raise NotFound(
                f"{self.name} has no property {name!r} in the testbed description (configuration "
                f"version {self.config.version}); add it there"
            )
        value = quantity(self.spec.properties[name])
        if unit is None:
            return value
        if not hasattr(value, "to"):
            raise NotFound(f"{self.name}.{name} = {value!r} has no unit; write it as '2.0 mm^2'")
        try:
            return magnitude_in(value, unit)
        except ValueError as exc:
            raise InvalidArgument(
                f"run {self.run.number}: {self.name}.{name} = {exc}; fix it in the testbed "
                f"description (configuration version {self.config.version}) and `labledger "
                "config load` it"
            ) from None

    def signal(self, role: str, **options: Any) -> xarray.DataArray:
        """This component's signal for ``role`` (``current``, ``voltage``...), calibrated."""
        if role not in self.spec.signals:
            raise NotFound(
                f"{self.name} has no signal for {role!r} (it has: "
                f"{', '.join(self.spec.signals) or 'none'})"
            )
        return self.run.signal(self.spec.signals[role], **options)

    def require(self, *roles: str) -> None:
        """Refuse, naming them, if any of these roles has no signal wired for this run."""
        missing = []
        for role in roles:
            name = self.spec.signals.get(role)
            if name is None:
                missing.append(f"{role} (no signal for it in the description)")
                continue
            spec = self.config.description.signals.get(name)
            if spec is not None and name not in self.config.wiring and not _derived(self, name):
                missing.append(f"{role} ({name})")
        if missing:
            raise NotWired(
                f"run {self.run.number}: {self.name} needs {', '.join(missing)}, not wired in "
                f"configuration version {self.config.version}; see `labledger config show "
                f"--run {self.run.number}`"
            )


def _derived(component: Component, signal: str) -> bool:
    """Whether ``signal`` is computed from other signals (an expression, or a calibration
    chained onto another signal) rather than read from a port, for this run."""
    name = component.config.description.signals[signal].calibration
    run = component.run
    cal = in_force(component.config.snapshot, name or "", run.number, run.started)
    return cal is not None and (cal.kind == "expression" or bool(cal.params.get("input")))


class Diagnostic(Component):
    """Base of the diagnostic models: a component bound to a run, with physics methods.

    A subclass declares the signal ``roles`` it reads and is registered under an entry point
    of the ``labledger.diagnostics`` group; the description's ``model:`` names it.
    """


class Machine:
    """The testbed of one run: ``machine.<component>`` at any depth, ``machine.components``
    (the top level), :meth:`walk`, and the configuration it came from."""

    def __init__(self, run: Run, config: Configuration):
        self.run = run
        self.config = config
        self.name = config.description.name
        self._paths = dict(config.description.walk())

    def __repr__(self) -> str:
        return (
            f"<Machine {self.name} of run {self.run.number}, configuration "
            f"version {self.config.version}: {len(self._paths)} components>"
        )

    @property
    def components(self) -> dict[str, Component]:
        """The top-level components by name."""
        return {
            name: bind(self.run, self.config, name, spec)
            for name, spec in self.config.description.components.items()
        }

    def walk(self) -> list[Component]:
        """Every component, parents first."""
        return [bind(self.run, self.config, p, s) for p, s in self._paths.items()]

    def __getitem__(self, path: str) -> Component:
        spec = self._paths.get(path) or next(
            (s for p, s in self._paths.items() if p.rpartition("/")[2] == path), None
        )
        if spec is None:
            raise NotFound(self._missing(path))
        full = next(p for p, s in self._paths.items() if s is spec)
        return bind(self.run, self.config, full, spec)

    def __getattr__(self, name: str) -> Component:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except NotFound as exc:
            raise AttributeError(str(exc)) from None

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *(p.rpartition("/")[2] for p in self._paths)})

    def _missing(self, name: str) -> str:
        names = [p.rpartition("/")[2] for p in self._paths]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"the {self.name} testbed of run {self.run.number} has no component {name!r}{hint}"


def bind(run: Run, config: Configuration, path: str, spec: ComponentSpec) -> Component:
    """The component at ``path``, as its diagnostic model's class if it names one."""
    cls: type[Component] = Component
    if spec.model is not None:
        found = models().get(spec.model)
        why = failed(GROUP).get(spec.model)
        if found is None and why is not None:
            raise NotFound(f"{path}: diagnostic model {spec.model!r} failed to load ({why})")
        if found is None:
            raise NotFound(
                f"{path}: no diagnostic model {spec.model!r} is installed (models: "
                f"{', '.join(sorted(models())) or 'none'}); a model is an entry point of {GROUP}"
            )
        cls = found
    return cls(run, config, path, spec)


@functools.cache
def models() -> dict[str, type[Component]]:
    """The installed diagnostic models by name."""
    return load(GROUP)
