"""The README's tour and the demo's "Try:" list, run as printed on a fresh demo: every shell
block line by line in bash, every Python block as a script, the server part against a real
`labledger serve`. A command the README shows that does not work fails here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for_server

ROOT = Path(__file__).resolve().parent.parent
# what a reader types in place of these is their own: the lines are templates, not commands
PLACEHOLDERS = ("YOUR.", ". .venv/bin/activate")


def _blocks(text: str) -> list[tuple[str, str]]:
    """The fenced code blocks of a Markdown text: (language, code)."""
    return [(m[1] or "sh", m[2]) for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.M | re.S)]


def _tour() -> list[tuple[str, str]]:
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index("## A five-minute tour"), readme.index("## What is where")
    return _blocks(readme[start:end])


def _environment() -> dict[str, str]:
    """The venv's `labledger` on the PATH, as `. .venv/bin/activate` puts it."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "200"}
    env.pop("LABLEDGER_ARCHIVE", None)
    return env


def _bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    lines = [ln for ln in script.splitlines() if not any(p in ln for p in PLACEHOLDERS)]
    return subprocess.run(
        ["bash", "-e", "-x", "-o", "pipefail", "-c", "\n".join(lines)],
        cwd=cwd,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _python(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _ran(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, f"{done.stderr[-3000:]}\n{done.stdout[-2000:]}"


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, str]:
    """A folder where `labledger demo` ran, and what it printed."""
    done = _bash("labledger demo", tmp_path)
    _ran(done)
    return tmp_path, done.stdout


def test_the_demos_try_list_runs_as_printed(demo: tuple[Path, str]) -> None:
    folder, printed = demo
    shell = printed.split("Try:")[1].split("or, in Python:")[0]
    python = printed.split("or, in Python:")[1]
    assert "labledger signal" in shell and "ll.open" in python
    _ran(_bash(shell, folder))
    _ran(_python("\n".join(ln.strip() for ln in python.splitlines()), folder))
    assert (folder / "labledger-demo" / "i.png").stat().st_size > 0
    assert sorted(p.name for p in folder.iterdir()) == ["labledger-demo"]  # outputs stay in it


def test_the_readmes_tour_runs_as_printed(demo: tuple[Path, str]) -> None:
    folder, _ = demo
    blocks = _tour()
    served = next(code for lang, code in blocks if "labledger serve" in code)
    remote = next(code for lang, code in blocks if "ll.connect" in code)
    for lang, code in blocks:
        if code in (served, remote):
            continue
        if lang == "python":
            continue  # the Python blocks run as one script below: later ones use `la`
        _ran(_bash(code, folder))
    script = "\n".join(code for lang, code in blocks if lang == "python" and code != remote)
    _ran(_python(script, folder))
    assert sorted(p.name for p in folder.iterdir()) == ["labledger-demo"]

    # the server part: the commands as printed, the server on a free port, the key it printed
    commands = [ln for ln in served.splitlines() if ln.strip()]
    _ran(_bash("\n".join(c for c in commands if "labledger serve" not in c), folder))
    key = _bash("labledger key create alice --scopes read -a labledger-demo/archive", folder)
    _ran(key)
    (api_key,) = re.findall(r"ll_[A-Za-z0-9_\-]+", key.stdout)
    port = free_port()
    (serve,) = [c for c in commands if "labledger serve" in c]
    serve = serve.split("#")[0].replace("--port 8000", f"--port {port}")
    # its stderr (the request log) to a file: a pipe nobody reads fills up and stops the server
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            ["bash", "-c", f"exec {serve}"], cwd=folder, env=_environment(), stderr=log
        )
        try:
            wait_for_server(f"http://127.0.0.1:{port}", server, log)
            code = remote.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}")
            _ran(_python("import labledger as ll\n" + code.replace("ll_...", api_key), folder))
        finally:
            server.terminate()
            server.wait(timeout=60)
        log.seek(0)
        lines = [json.loads(line) for line in log.read().decode().splitlines() if line[:1] == "{"]
    assert {line["user"] for line in lines} >= {"alice"}  # each request logged, with its user
    assert api_key.split("_", 2)[2] not in json.dumps(lines)
