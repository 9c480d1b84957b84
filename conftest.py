"""The namespace of the docstring examples of src/labledger (run by ``--doctest-modules``).

Every example sees ``ll`` (labledger) and ``np``; a docstring whose examples read ``la`` (a
small archive of the simulated ISHTAR testbed) or ``run`` (its run 1255) gets them too. The
archive is built once per session (per xdist worker) and each such docstring gets its own copy
of it, so its examples may write (a flag, a withdrawal, a calibration) without another
docstring seeing it, in any order. Examples that cannot run here (a server's URL, PostgreSQL,
S3, a subscription that never ends) stay marked ``# doctest: +SKIP``.

What the archive holds, for the examples to be true:

- runs 1234, 1235 (argon, probe current on PXI M6251/ai3, calibration ``langmuir_i@1``),
  1245 (probe current re-wired to ai11 at 1240), 1255 (``langmuir_i@2`` from 1250) and
  1265 (helium and a 3 mm^2 probe tip from 1260), as :func:`labledger.sim.build` records them;
- flag 1: power bad on runs 1234-1235 (outage); flag 2: probe bad on run 1245 from 0.2 to
  0.3 s (arc);
- the good-run list ``standard@1``: the argon runs with power and probe good (1245, 1255);
- the products of :mod:`labledger.sim.analysis` over the argon runs: ``density``, and the
  level-2 events of ``windows`` with the level-4 events ``bright_windows`` made of them.
"""

from __future__ import annotations

import ast
import doctest
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

import labledger as ll

# Not imported by collection: Alembic's env.py and revisions run only inside Alembic's context
# (env.py opens a connection at import), and cli/__main__.py runs the CLI when imported.
collect_ignore = ["src/labledger/catalog/migrations", "src/labledger/cli/__main__.py"]

SHOTS = [1234, 1235, 1245, 1255, 1265]
RUN = 1255
ARCHIVE_NAMES = ("la", "run")


@pytest.fixture(scope="session")
def doctest_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the examples' archive, built once; never opened by an example itself."""
    from labledger.sim import build
    from labledger.sim.analysis import bright_windows, density, windows

    folder = tmp_path_factory.mktemp("doctest")
    la = ll.init(folder / "ishtar")
    try:
        build(la, folder / "daq", SHOTS)
        la.flag(runs=[1234, 1235], subsystem="power", severity="bad", reason="outage")
        la.flag(run=1245, start=0.2, stop=0.3, subsystem="probe", severity="bad", reason="arc")
        la.good_runs("standard", query={"gas": "Ar"}, require=["power", "probe"])
        argon = la.runs.search(gas="Ar")
        la.compute(density, argon)
        la.compute(bright_windows, inputs=la.compute(windows, argon))
    finally:
        la.close()
    return folder / "ishtar"


@pytest.fixture(autouse=True)
def _doctest_names(request: pytest.FixtureRequest) -> Iterator[None]:
    """``ll``, ``np``, and for examples that read them, their own ``la`` and ``run``."""
    node = request.node
    if not isinstance(node, pytest.DoctestItem):
        yield  # a test of tests/: nothing to do
        return
    doctest_namespace: dict[str, object] = request.getfixturevalue("doctest_namespace")
    doctest_namespace.update(ll=ll, np=np)
    for name in ARCHIVE_NAMES:
        doctest_namespace.pop(name, None)
    if not reads_archive(node.dtest.examples):
        yield
        return
    # a copy of the whole folder (its config names the catalog and the store relative to it),
    # removed after the example: 11 MB each, for about 60 docstrings
    with tempfile.TemporaryDirectory(prefix="labledger-doctest-") as tmp:
        folder = shutil.copytree(request.getfixturevalue("doctest_archive"), Path(tmp, "ishtar"))
        la = ll.open(folder)
        doctest_namespace.update(la=la, run=la.runs[RUN])
        try:
            yield
        finally:
            la.close()


@pytest.fixture(autouse=True)
def _doctest_redis(request: pytest.FixtureRequest) -> None:
    """The examples of labledger.live write to the Redis of 127.0.0.1:6379: when it does not
    answer they fail in CI (CI=true) and are skipped elsewhere, as the tests that need it."""
    node = request.node
    if not isinstance(node, pytest.DoctestItem) or not node.name.startswith("labledger.live"):
        return
    if not any("client" in example.source for example in node.dtest.examples):
        return  # examples of plain values: no Redis needed
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2):
            return
    except OSError:
        what = "Redis is not answering on 127.0.0.1:6379"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{what} (CI=true: examples that need it must not be skipped)")
        pytest.skip(what)


def reads_archive(examples: Sequence[doctest.Example]) -> bool:
    """Whether the examples read ``la`` or ``run`` before binding it themselves (those that
    make their own archive, as ``la = ll.init(...)``, need no copy)."""
    bound: set[str] = set()
    for example in examples:
        if example.options.get(doctest.SKIP):
            continue  # not run: binds nothing (``la = ll.open("ishtar")  # doctest: +SKIP``)
        try:
            tree = ast.parse(example.source)
        except SyntaxError:
            continue  # doctest reports it
        names = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in ARCHIVE_NAMES]
        if any(isinstance(n.ctx, ast.Load) and n.id not in bound for n in names):
            return True
        bound |= {n.id for n in names if isinstance(n.ctx, ast.Store)}
    return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Leave out the docstrings whose every example is marked +SKIP (a server's URL, S3, a
    subscription that never ends): nothing of them runs, and a skip in CI would hide a test
    that should have run."""
    items[:] = [
        item
        for item in items
        if not isinstance(item, pytest.DoctestItem)
        or not all(e.options.get(doctest.SKIP) for e in item.dtest.examples)
    ]
