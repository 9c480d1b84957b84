"""Where and with what a step ran: its code (function, file, git commit and whether the tree
had uncommitted changes), the versions of the packages involved, Python, user and host.

Collected once per ``la.compute`` call: asking git costs a few milliseconds, and nothing here
changes while one call runs.
"""

from __future__ import annotations

import functools
import inspect
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from labledger.ids import author
from labledger.lineage.step import Step

# the libraries a result can depend on through labledger itself
_PACKAGES = (
    "labledger",
    "numpy",
    "scipy",
    "xarray",
    "pandas",
    "pint",
    "pyarrow",
    "zarr",
    "nptdms",
    "h5py",
)


def environment(step: Step) -> dict[str, Any]:
    """The code and environment facts recorded with every product of ``step``."""
    file = _file(step)
    packages = dict(_versions())
    own = _distribution(step.fn.__module__)
    if own and own not in packages:
        packages[own] = _version(own)
    return {
        "code": {
            "step": step.name,
            "version": step.version,
            "module": step.fn.__module__,
            "function": step.fn.__qualname__,
            "file": file,
            "source_sha256": step.source_sha256,
            "git": git_state(Path(file).parent) if file else None,
        },
        "packages": {k: v for k, v in sorted(packages.items()) if v},
        "python": platform.python_version(),
        "platform": f"{sys.platform}-{platform.machine()}",
        "user": author(),
    }


def git_state(folder: Path) -> dict[str, Any] | None:
    """The commit checked out in the git work tree holding ``folder`` and whether it has
    uncommitted changes to tracked files; None outside a work tree or without git."""
    try:
        top = _git(folder, "rev-parse", "--show-toplevel")
        commit = _git(folder, "rev-parse", "HEAD")
        changes = _git(folder, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"repository": top, "commit": commit, "dirty": bool(changes)}


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()


def _file(step: Step) -> str | None:
    try:
        return inspect.getsourcefile(step.fn)
    except TypeError:
        return None


@functools.cache
def _versions() -> tuple[tuple[str, str | None], ...]:
    return tuple((name, _version(name)) for name in _PACKAGES)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def _distribution(module: str) -> str | None:
    """The installed distribution a module comes from (``mylab`` for ``mylab.steps``), if any."""
    top = module.split(".")[0]
    found = metadata.packages_distributions().get(top)
    return found[0] if found else None
