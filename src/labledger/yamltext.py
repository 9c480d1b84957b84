"""YAML that people write (a testbed description, a structure description): read keeping each
node's line, so that a mistake is reported as ``file:line: field: reason``, and with a key given
twice refused (YAML itself keeps the last of two equal keys without a word).

>>> root, data = read("name: x\\nlevels:\\n  - name: shot\\n", "s.yaml", ValueError)
>>> data["levels"][0]["name"], line_of(root, ("levels", 0, "name"))
('shot', 3)
>>> read("a: 1\\na: 2\\n", "s.yaml", ValueError)
Traceback (most recent call last):
ValueError: s.yaml:2: a: given twice (also on line 1)
"""

from __future__ import annotations

from typing import Any

import yaml


def read(text: str, name: str, error: type[Exception]) -> tuple[yaml.Node | None, Any]:
    """``text`` as its node tree (for :func:`line_of`) and as Python values; ``name`` is the
    file to name in the ``error`` raised for text that is not YAML or has a key twice."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        no_duplicate_keys(root, name, error)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark else name
        raise error(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return root, data


def line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int:
    """The line of the deepest node of ``loc`` (keys and list positions) found in the tree."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = [(k, v) for k, v in node.value if k.value == str(part)]
            if not found:
                break
            node = found[0][1]
            line = found[0][0].start_mark.line + 1
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def no_duplicate_keys(node: yaml.Node | None, name: str, error: type[Exception]) -> None:
    """Raise ``error`` at the second of two equal keys of a mapping anywhere in the tree."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if key.value in seen:
                raise error(
                    f"{name}:{key.start_mark.line + 1}: {key.value}: given twice (also on line "
                    f"{seen[key.value]})"
                )
            seen[key.value] = key.start_mark.line + 1
            no_duplicate_keys(value, name, error)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            no_duplicate_keys(item, name, error)
