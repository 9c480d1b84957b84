"""The ``labledger`` command: one module per part of the product, all on one Typer app."""

# each module registers its commands on the app
from labledger.cli import (  # noqa: F401
    archive,
    integrity,
    lineage,
    live,
    machine,
    quality,
    service,
    structures,
    watch,
)
from labledger.cli.app import app, main

__all__ = ["app", "main"]
