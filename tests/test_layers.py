"""The layers of docs/architecture.md, kept: each part imports only the parts below it.

Every import counts: at the top of a module, inside a function (a function-local import hides
an upward dependency, it does not remove it) and under ``if TYPE_CHECKING:`` (a type names what
a module depends on). Within a layer, modules may import one another but never in a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Lowest first: a module may import its own layer (without a cycle) and those before it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "core",
        # records, reports, summary: plain values of what is catalogued, done and held; wire:
        # how they and arrays travel over HTTP
        (
            "errors",
            "ids",
            "times",
            "version",
            "display",
            "faults",
            "plugins",
            "decimation",
            "records",
            "reports",
            "summary",
            "wire",
            "yamltext",
        ),
    ),
    # live: runs and streams on Redis; it needs only core, and the store will read from it
    ("store", ("store", "live")),
    ("formats", ("formats",)),
    ("catalog", ("catalog", "access", "notifications")),
    ("ingest", ("ingest", "integrity", "structures")),
    ("runs", ("runs", "reads", "withdrawals")),
    ("machine", ("machine", "diagnostics")),
    # acquire: live runs in the archive (saver, acquisition, following a signal live)
    ("acquire", ("acquire",)),
    ("quality", ("quality",)),
    ("events", ("events",)),  # below lineage: lineage writes and reads event tables
    ("lineage", ("lineage",)),
    # interface: the calls a local and a remote archive both answer
    ("archive", ("interface", "archive", "dropfolder", "export", "sim")),
    ("client and server", ("client", "server")),
    ("cli", ("cli", "")),  # "": the package itself, labledger/__init__.py
]

# Upward names a type needs and nothing runs (under TYPE_CHECKING), each with why it stays.
TYPES_ONLY: dict[tuple[str, str], str] = {
    (
        "labledger.runs",
        module,
    ): "RunHome names what the archive answers for a run (run.machine, run.flags, run.export)"
    for module in ("labledger.machine", "labledger.quality", "labledger.export")
}


@dataclass(frozen=True)
class Import:
    module: str  # the importer, e.g. "labledger.runs"
    target: str  # the labledger module imported, e.g. "labledger.machine.signals"
    line: int
    kind: str  # "top", "local" (in a function) or "typing" (under TYPE_CHECKING)

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target} ({self.kind})"


def modules(package: Path) -> dict[str, Path]:
    """Every module of ``package`` by dotted name (a package by its own name)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(package: Path) -> Iterator[Import]:
    """Every import of one of ``package``'s modules by another, with where and how."""
    known = modules(package)
    root = package.name

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    for module, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        here = module if path.name == "__init__.py" else module.rpartition(".")[0]
        kinds: dict[int, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                for sub in (s for stmt in node.body for s in ast.walk(stmt)):  # not its else
                    kinds.setdefault(id(sub), "typing")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for sub in ast.walk(node):
                    kinds[id(sub)] = "local"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif _dynamic(node):  # importlib.import_module("labledger.x") is an import too
                names = [node.args[0].value]  # type: ignore[attr-defined]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                # "from labledger.catalog import database" takes it from the package: an import
                # of the package labledger.catalog and of the module labledger.catalog.database
                subs = [f"{base}.{a.name}" for a in node.names]
                names = [base, *(n for n in subs if n in known)]
            else:
                continue
            targets = {resolve(n) for n in names if n == root or n.startswith(root + ".")}
            for target in sorted(t for t in targets if t and t != module):
                yield Import(module, target, node.lineno, kinds.get(id(node), "top"))


def _dynamic(node: ast.AST) -> bool:
    """``import_module("...")`` or ``__import__("...")`` with the name written out."""
    return (
        isinstance(node, ast.Call)
        and ast.unparse(node.func).rpartition(".")[2] in ("import_module", "__import__")
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def layer_of(module: str) -> int | None:
    """The index in LAYERS of ``module``'s layer (the longest matching prefix wins)."""
    name = module.partition(".")[2]
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = name == prefix or name.startswith(prefix + ".") or not (prefix or name)
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def upward(found: list[Import]) -> list[Import]:
    """The imports of a layer above the importer's, but those TYPES_ONLY allows."""
    bad = []
    for imp in found:
        mine, theirs = layer_of(imp.module), layer_of(imp.target)
        if mine is None or theirs is None or theirs <= mine:
            continue
        if imp.kind == "typing" and (imp.module, imp.target) in TYPES_ONLY:
            continue
        bad.append(imp)
    return bad


def cycles(found: list[Import]) -> list[list[str]]:
    """The groups of modules that import one another round in a circle (Tarjan's algorithm)."""
    edges: dict[str, set[str]] = {}
    for imp in found:
        edges.setdefault(imp.module, set()).add(imp.target)
        edges.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


PACKAGE = ROOT / "src" / "labledger"


@pytest.fixture(scope="module")
def found() -> list[Import]:
    return list(imports(PACKAGE))


def test_every_module_is_in_a_layer() -> None:
    loose = [m for m in modules(PACKAGE) if layer_of(m) is None]
    assert not loose, f"put these in a layer of LAYERS (and docs/architecture.md): {loose}"


def test_no_module_imports_a_layer_above_its_own(found: list[Import]) -> None:
    bad = upward(found)
    assert not bad, "upward imports:\n" + "\n".join(map(str, bad))


def test_no_import_cycle(found: list[Import]) -> None:
    allowed = [i for i in found if i.kind == "typing" and (i.module, i.target) in TYPES_ONLY]
    assert cycles([i for i in found if i not in allowed]) == []


def test_the_checks_catch_an_upward_import_and_a_cycle(tmp_path: Path) -> None:
    """The checks themselves, on a package made here: a store module that imports the archive
    in a function, and two catalog modules that import each other under TYPE_CHECKING."""
    package = tmp_path / "labledger"
    (package / "store").mkdir(parents=True)
    (package / "catalog").mkdir()
    for init in ("", "store/", "catalog/"):
        (package / f"{init}__init__.py").write_text("")
    (package / "archive.py").write_text("from labledger.store import objects\n")
    (package / "store" / "objects.py").write_text(
        "def f():\n    from labledger.archive import Archive\n"
    )
    (package / "catalog" / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from labledger.catalog.b import B\n"
    )
    (package / "catalog" / "b.py").write_text("from .a import A\n")
    (package / "catalog" / "c.py").write_text(
        "import importlib\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    pass\n"
        "else:\n"
        "    from labledger.archive import Archive\n"
        "archive = importlib.import_module('labledger.archive')\n"
    )
    found = list(imports(package))
    assert sorted(str(i) for i in upward(found)) == [
        "labledger.catalog.c:6 imports labledger.archive (top)",
        "labledger.catalog.c:7 imports labledger.archive (top)",
        "labledger.store.objects:2 imports labledger.archive (local)",
    ]
    assert cycles(found) == [
        ["labledger.archive", "labledger.store.objects"],
        ["labledger.catalog.a", "labledger.catalog.b"],
    ]


def test_import_labledger_loads_no_heavy_library() -> None:
    """``import labledger`` names the API and loads what it holds only when first used (the
    catalog's database layer, the machine's units, plotting, Arrow)."""
    heavy = ["sqlalchemy", "alembic", "pint", "matplotlib", "pyarrow", "pandas", "xarray", "zarr",
             "h5py", "duckdb", "numpy", "fastapi", "httpx"]  # fmt: skip
    code = f"import sys, labledger; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_import_labledger_client_loads_no_database_library() -> None:
    """A user who only reads a server (``labledger.connect``) loads neither the catalog's
    database layer (SQLAlchemy, Alembic) nor units or plotting: the client's records are plain
    dataclasses, and the machine is loaded when a signal is first read."""
    heavy = ["sqlalchemy", "alembic", "pint", "matplotlib", "pydantic", "fastapi"]
    code = (
        "import sys, labledger; labledger.connect; import labledger.client; "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_importing_a_module_from_its_package_runs_the_package(tmp_path: Path) -> None:
    """``from labledger.events import engine`` takes ``engine`` from the package's namespace, so
    it counts as an import of the package (as import checkers count it): a module that the
    package's ``__init__`` imports makes a cycle that way; ``import labledger.events.engine``
    names the module alone."""
    package = tmp_path / "labledger"
    (package / "events").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "events" / "__init__.py").write_text("from labledger.events.query import Q\n")
    (package / "events" / "engine.py").write_text("")
    (package / "events" / "query.py").write_text("from labledger.events import engine\n")
    assert cycles(list(imports(package))) == [["labledger.events", "labledger.events.query"]]
    (package / "events" / "query.py").write_text("import labledger.events.engine as engine\n")
    assert cycles(list(imports(package))) == []


def runtime_uses_of_type_only_names(source: str) -> list[tuple[int, str]]:
    """Names a module imports under ``TYPE_CHECKING`` (for types: nothing binds them when it
    runs) but uses outside an annotation, as (line, name); a name a function imports again
    for itself is bound there."""
    tree = ast.parse(source)
    guarded = [n for n in ast.walk(tree) if isinstance(n, ast.If)
               and isinstance(n.test, ast.Name) and n.test.id == "TYPE_CHECKING"]  # fmt: skip
    type_only = {(a.asname or a.name).split(".")[0] for block in guarded for n in block.body
                 if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}  # fmt: skip
    exempt: set[int] = {id(x) for block in guarded for x in ast.walk(block)}
    for node in ast.walk(tree):
        for field in ("annotation", "returns"):
            if (annotation := getattr(node, field, None)) is not None:
                exempt |= {id(x) for x in ast.walk(annotation)}
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            own = {(a.asname or a.name).split(".")[0] for n in ast.walk(node)
                   if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}  # fmt: skip
            exempt |= {id(x) for x in ast.walk(node) if isinstance(x, ast.Name) and x.id in own}
    return sorted(
        (node.lineno, node.id)
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
        and node.id in type_only and id(node) not in exempt
    )  # fmt: skip


def test_no_module_uses_at_run_time_a_name_imported_for_types_only() -> None:
    found = {
        str(path.relative_to(ROOT)): uses
        for path in sorted(PACKAGE.rglob("*.py"))
        if (uses := runtime_uses_of_type_only_names(path.read_text(encoding="utf-8")))
    }
    assert found == {}, "import these at the top (or in the function), not under TYPE_CHECKING"


def test_a_type_only_name_used_at_run_time_is_seen() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from labledger.runs import Run\n"
        "def f(r: Run) -> Run:\n    return r if isinstance(r, Run) else r\n"
        "def g(r: object) -> bool:\n    from labledger.runs import Run\n"
        "    return isinstance(r, Run)\n"
    )
    assert runtime_uses_of_type_only_names(source) == [(5, "Run")]


def test_a_record_made_before_the_catalog_is_imported_stays_plain_after() -> None:
    """A client makes records without SQLAlchemy; importing the catalog later in the same
    process (``ll.open`` beside ``ll.connect``, or ``run.product``) must not change them."""
    code = """
import sys
from datetime import UTC, datetime
from labledger.records import ChannelRecord, RunRecord
when = datetime(2026, 5, 1, tzinfo=UTC)
run = RunRecord(id="r", number=7, state="closed", started=when, ended=None, created=when,
                meta={}, store_prefix="runs/r", n_channels=1, data_bytes=8)
channel = ChannelRecord(key="ai0", store_path="a", shape=[2], dtype="<f8", attrs={}, axes=[])
assert "sqlalchemy" not in sys.modules
import labledger.catalog
print(run.number, run.config_version, run.project, channel.key, repr(run)[:10])
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["7", "None", "default", "ai0", "RunRecord("]
