"""Steps: the functions whose results labledger keeps, with how they were made.

A step is a plain function decorated with :func:`step`. Its first argument is what it is applied
to, a run (or, over another product, that product's value for one run); its keyword arguments
are its parameters. The version is the author's promise: change it when the results would
change, and products of the old version are kept apart from the new.

>>> @step(version="2")
... def peak(run, *, threshold=0.5):
...     return threshold
>>> peak.name.endswith(":peak"), peak.version
(True, '2')
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import re
from collections.abc import Callable
from typing import Any, overload

from labledger.errors import InvalidArgument, NotFound, first_line

_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
# steps defined in this process, by name: a step defined in a notebook or a test cannot be
# imported again, and recomputing it needs the function
_DEFINED: dict[str, Step] = {}


class Step:
    """A function whose results are products, keyed by what went in."""

    def __init__(self, fn: Callable[..., Any], version: str, name: str | None = None):
        if not callable(fn):
            raise InvalidArgument(f"@step decorates a function, not a {type(fn).__name__}")
        version = str(version)
        if not _VERSION.fullmatch(version):
            raise InvalidArgument(
                f"step version {version!r}: letters, digits and . _ + - (up to 64), e.g. '2'"
            )
        self.fn = fn
        self.version = version
        self.name = name or f"{fn.__module__}:{fn.__qualname__}"
        self.signature = inspect.signature(fn)
        if not self.signature.parameters:
            raise InvalidArgument(
                f"step {self.name} takes no argument: its first one receives the run (or the "
                "input product's value) it is applied to"
            )
        functools.update_wrapper(self, fn)
        _DEFINED[self.name] = self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Step {self.name} version {self.version}>"

    @functools.cached_property
    def source_sha256(self) -> str | None:
        """The sha256 of the function's source text, if Python can find it."""
        try:
            source = inspect.getsource(self.fn)
        except (OSError, TypeError):
            return None
        return hashlib.sha256(source.encode()).hexdigest()

    def check(self, params: dict[str, Any]) -> None:
        """Refuse parameters the function does not take, or missing ones, before any work."""
        try:
            self.signature.bind(None, **params)
        except TypeError as exc:
            raise InvalidArgument(f"step {self.name}: {exc}") from None


@overload
def step(fn: Callable[..., Any], *, version: str = "1", name: str | None = None) -> Step: ...
@overload
def step(
    fn: None = None, *, version: str = "1", name: str | None = None
) -> Callable[[Callable[..., Any]], Step]: ...
def step(
    fn: Callable[..., Any] | None = None, *, version: str = "1", name: str | None = None
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make ``fn`` a step: ``@ll.step(version="2")`` above a function.

    >>> @step
    ... def mean_current(run):
    ...     return 0.0
    >>> mean_current.version
    '1'
    """
    if fn is not None:
        return Step(fn, version, name)
    return lambda f: Step(f, version, name)


def as_step(value: Any) -> Step:
    """``value`` if it is a step; else a refusal that says how to make it one."""
    if isinstance(value, Step):
        return value
    what = getattr(value, "__qualname__", type(value).__name__)
    raise InvalidArgument(
        f"{what} is not a step: decorate it with @labledger.step(version='1') so that its "
        "results can be keyed and traced"
    )


def known_step(name: str) -> Step:
    """The step called ``name`` if this process has defined it (imported its module), without
    importing anything: what a server runs for a remote caller.

    >>> known_step("nowhere:thing")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    labledger.errors.NotFound: step 'nowhere:thing' is not known here; ...
    """
    found = _DEFINED.get(name)
    if found is None:
        raise NotFound(
            f"step {name!r} is not known here; the server imports the modules of its steps "
            "(`labledger serve --steps MODULE`)"
        )
    return found


class StepNotFound(NotFound):
    """A step whose module cannot be imported here, or holds no such function: ``module`` and
    ``reason`` say which and why, for an error that gathers many."""

    def __init__(self, name: str, reason: str):
        super().__init__(
            f"step {name} cannot be found here ({reason}); import or define it in this Python "
            "session first"
        )
        self.step = name
        self.module = name.partition(":")[0]
        self.reason = reason


def find(name: str) -> Step:
    """The step called ``name`` (``module:function``): defined in this process, or imported.

    >>> find("labledger.sim.analysis:density").version
    '2'
    >>> find("no_such_module:peak")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    labledger.lineage.step.StepNotFound: step no_such_module:peak cannot be found here (No module...
    """
    if name in _DEFINED:
        return _DEFINED[name]
    module, _, qualname = name.partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
        return as_step(found)
    except (ImportError, AttributeError, ValueError) as exc:  # ValueError: an empty module name
        raise StepNotFound(name, first_line(exc)) from None
    except Exception as exc:  # a user's module may fail on import in any way (SyntaxError...)
        raise StepNotFound(name, f"{type(exc).__name__}: {first_line(exc)}") from None
