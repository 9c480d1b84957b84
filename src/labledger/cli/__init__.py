"""The ``labledger`` command: one module per part of the product, all on one Typer app."""

from labledger.cli import archive, lineage, machine, quality  # noqa: F401  (they register their commands)
from labledger.cli.app import app, main

__all__ = ["app", "main"]
