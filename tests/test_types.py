"""src type-checks with mypy ([tool.mypy] in pyproject.toml), or its errors are those of
tests/mypy-baseline.txt: one line per error, "path: code", without line numbers so that an edit
elsewhere in a file does not change it. A new error fails; so does one fixed but still in the
baseline: the baseline only shrinks."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import ROOT

BASELINE = ROOT / "tests" / "mypy-baseline.txt"
# "src/labledger/x.py:12: error: Message  [code]" (notes and the summary are not errors)
_ERROR = re.compile(r"(?P<path>[^:\n]+):\d+(?::\d+)?: error: .*\[(?P<code>[a-z0-9-]+)\]$")


def errors_of(output: str) -> dict[str, list[str]]:
    """mypy's error lines by their baseline key, "path: code"."""
    found: dict[str, list[str]] = {}
    for line in output.splitlines():
        match = _ERROR.fullmatch(line.strip())
        if match:
            found.setdefault(f"{match['path']}: {match['code']}", []).append(line.strip())
    return found


def differences(found: dict[str, list[str]], baseline: list[str]) -> list[str]:
    """What differs between the errors found and the baseline's lines, one line each."""
    allowed = Counter(baseline)
    seen = Counter({key: len(lines) for key, lines in found.items()})
    said = []
    for key in sorted(seen | allowed):
        if seen[key] > allowed[key]:
            new = seen[key] - allowed[key]
            said.append(f"{new} new mypy error(s) {key!r}; fix them (of these):")
            said += [f"    {line}" for line in found[key]]
        elif seen[key] < allowed[key]:
            gone = allowed[key] - seen[key]
            said.append(
                f"{gone} mypy error(s) {key!r} fixed: remove {gone} line(s) {key!r} "
                f"from the baseline ({BASELINE.relative_to(ROOT)})"
            )
    return said


def baseline_lines() -> list[str]:
    text = BASELINE.read_text(encoding="utf-8")
    return [s for s in (line.strip() for line in text.splitlines()) if s and s[0] != "#"]


def test_src_has_no_mypy_error_beyond_the_baseline(tmp_path: Path) -> None:
    # a fresh cache in tmp_path: the run sees the code as it is, and costs one cold check
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml",
         "--cache-dir", str(tmp_path / "mypy"), "--no-pretty", "--no-error-summary",
         "--show-error-codes", "--hide-error-context", "--no-color-output"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    # 0: no error, 1: errors found; anything else (2) is mypy failing to run at all
    assert result.returncode in (0, 1), result.stdout + result.stderr
    said = differences(errors_of(result.stdout), baseline_lines())
    assert not said, "\n".join(said)


def test_the_baseline_is_sorted_and_every_line_is_a_path_and_code() -> None:
    lines = baseline_lines()
    assert lines == sorted(lines)
    for line in lines:
        path, _, code = line.partition(": ")
        assert (ROOT / path).is_file() and re.fullmatch(r"[a-z0-9-]+", code), line


MYPY_SAYS = """\
src/a.py:3: error: Need type annotation for "x"  [var-annotated]
src/a.py:3: note: see the docs
src/a.py:9: error: Incompatible types in assignment (expression has type "int")  [assignment]
src/b.py:1: error: Item "None" of "X | None" has no attribute "y"  [union-attr]
Found 3 errors in 2 files (checked 2 source files)
"""


def test_mypy_lines_are_keyed_by_path_and_code_without_notes() -> None:
    assert errors_of(MYPY_SAYS) == {
        "src/a.py: var-annotated": [
            'src/a.py:3: error: Need type annotation for "x"  [var-annotated]'
        ],
        "src/a.py: assignment": [
            'src/a.py:9: error: Incompatible types in assignment (expression has type "int")'
            "  [assignment]"
        ],
        "src/b.py: union-attr": [
            'src/b.py:1: error: Item "None" of "X | None" has no attribute "y"  [union-attr]'
        ],
    }


@pytest.mark.parametrize(
    ("baseline", "expected"),
    [
        # exactly the baseline: nothing to say
        (["src/a.py: assignment", "src/a.py: var-annotated", "src/b.py: union-attr"], []),
        # a new error: named, with mypy's line
        (
            ["src/a.py: assignment", "src/a.py: var-annotated"],
            [
                "1 new mypy error(s) 'src/b.py: union-attr'; fix them (of these):",
                '    src/b.py:1: error: Item "None" of "X | None" has no attribute "y"'
                "  [union-attr]",
            ],
        ),
        # one more of a kind already there is new too
        (
            ["src/a.py: var-annotated", "src/b.py: union-attr"],
            [
                "1 new mypy error(s) 'src/a.py: assignment'; fix them (of these):",
                "    src/a.py:9: error: Incompatible types in assignment"
                ' (expression has type "int")  [assignment]',
            ],
        ),
        # fixed, still in the baseline: the baseline must shrink
        (
            [
                "src/a.py: assignment",
                "src/a.py: var-annotated",
                "src/b.py: union-attr",
                "src/b.py: union-attr",
                "src/c.py: misc",
            ],
            [
                "1 mypy error(s) 'src/b.py: union-attr' fixed: remove 1 line(s) "
                "'src/b.py: union-attr' from the baseline (tests/mypy-baseline.txt)",
                "1 mypy error(s) 'src/c.py: misc' fixed: remove 1 line(s) 'src/c.py: misc' "
                "from the baseline (tests/mypy-baseline.txt)",
            ],
        ),
    ],
)
def test_new_errors_fail_and_fixed_ones_must_leave_the_baseline(
    baseline: list[str], expected: list[str]
) -> None:
    assert differences(errors_of(MYPY_SAYS), baseline) == expected
