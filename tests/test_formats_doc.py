"""docs/formats.md as a test: every example file in it is written out, every console block
run as shown (each output line compared, ``...`` standing for anything) and every Python
block run as a doctest, in one folder, in the document's order. A refused example must exit
non-zero and leave the archive as it was."""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import labledger as ll

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "formats.md"
# ```csv shot_101.csv: an example file; ```console and ```pycon: what is done with them
_FENCE = re.compile(r"^```(?P<lang>\w+)(?: (?P<name>\S+))?\n(?P<body>.*?)^```", re.M | re.S)


def _blocks() -> list[tuple[str, str | None, str]]:
    return [(m["lang"], m["name"], m["body"]) for m in _FENCE.finditer(DOC.read_text())]


def _commands(body: str) -> list[tuple[str, str]]:
    """A console block's commands, each with the output shown below it."""
    found: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            found.append((line[2:], []))
        else:
            found[-1][1].append(line)
    return [(command, "\n".join(shown)) for command, shown in found]


def _matches(shown: str, printed: str) -> bool:
    pattern = ".*?".join(re.escape(part) for part in shown.split("..."))
    lines = "\n".join(line.rstrip() for line in printed.strip().splitlines())
    return re.fullmatch(pattern, lines, re.S) is not None


def _snapshot(archive: str) -> str:
    """The archive's snapshot, taken in another process: reading the catalog's file here, then
    closing it, would drop the SQLite locks of the archive the doc's Python blocks hold open."""
    code = (
        "import labledger as ll; from tests.conftest import snapshot; "
        f"print(snapshot(ll.open({archive!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_examples_are_files_the_doc_uses() -> None:
    blocks = _blocks()
    files = [name for lang, name, _ in blocks if name]
    assert len(files) >= 6, files
    commands = [c for lang, _, body in blocks if lang == "console" for c, _ in _commands(body)]
    for name in files:
        assert f"labledger ingest {name}" in commands, f"{name} is shown but never ingested"


def test_every_example_of_the_doc_gives_what_the_doc_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "200"}
    env.pop("LABLEDGER_ARCHIVE", None)
    globs: dict[str, object] = {}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    try:
        for lang, name, body in _blocks():
            if name:
                (tmp_path / name).write_text(body)
            elif lang == "console":
                for command, shown in _commands(body):
                    if command.startswith("export "):
                        key, _, value = command.removeprefix("export ").partition("=")
                        env[key] = value
                        continue
                    refused = shown.startswith("error:")
                    before = _snapshot(env["LABLEDGER_ARCHIVE"]) if refused else None
                    done = subprocess.run(
                        ["bash", "-c", command],
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                        timeout=300,
                    )
                    assert _matches(shown, done.stdout), f"$ {command}\n{done.stdout}"
                    if refused:
                        assert done.returncode != 0, command
                        assert _snapshot(env["LABLEDGER_ARCHIVE"]) == before, command
                    else:
                        assert done.returncode == 0, command
            elif lang == "pycon":
                test = doctest.DocTestParser().get_doctest(body, globs, DOC.name, str(DOC), 0)
                test.globs = globs  # one namespace for the whole document, as a reader has
                out: list[str] = []
                result = runner.run(test, out=out.append, clear_globs=False)
                assert result.failed == 0, "".join(out)
    finally:
        la = globs.get("la")
        if isinstance(la, ll.Archive):
            la.close()
