"""Products: what steps computed, with the record of how.

A product is one step applied to one run (or to one part of another product); computing a step
over many runs makes a *set* whose parts are those products, so that a flag on one run
invalidates one part, and a new run adds one part, not everything again.

>>> from labledger.sim.analysis import density
>>> p = la.compute(density, runs=la.runs.search(gas="Ar"))
>>> p.provenance["code"]["step"], p.provenance["code"]["version"], p[1255]
('labledger.sim.analysis:density', '2', <Quantity(3.13...e+17, '1 / meter ** 3')>)
>>> p.to_pandas().index.tolist()
[1234, 1235, 1245, 1255]
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from labledger.catalog import ProductRow
from labledger.catalog import products as queries
from labledger.display import html_table
from labledger.errors import NotFound
from labledger.ids import short
from labledger.lineage import outputs
from labledger.lineage.staleness import Checker, stale_rows

if TYPE_CHECKING:
    import pandas

    from labledger.lineage.home import Home


class Product:
    """A computed result: ``value``, ``provenance``, ``stale`` (reasons, computed now), and for
    a set its ``parts``, ``p[run]`` and ``to_pandas()``."""

    def __init__(self, archive: Home, row: ProductRow, *, reused: bool = False):
        self._archive = archive
        self._row = row
        self.id: str = row.id
        self.key: str = row.key
        self.step: str = row.step
        self.step_version: str = row.step_version
        self.kind: str = row.kind
        self.status: str = row.status
        self.run: int | None = row.run_number
        self.level: int | None = row.level
        self.created: datetime = row.created
        self.author: str = row.author
        self.output_hash: str | None = row.output_hash
        self.error: str | None = row.error
        self.reused = reused  # this call found it made already, and made nothing

    def __repr__(self) -> str:
        what = f"run {self.run}" if self.run is not None else f"{len(self)} parts"
        how = ", reused" if self.reused else ""
        return f"<Product {short(self.id)} {self.step}@{self.step_version} {what} {self.kind}{how}>"

    def _repr_html_(self) -> str:
        facts = [
            ("step", f"{self.step}@{self.step_version}"),
            ("kind", self.kind),
            ("status", self.status),
            ("run" if self.run is not None else "parts", self.run if self.run is not None
             else len(self)),
            ("level", self.level),
            ("made (UTC)", f"{self.created:%Y-%m-%d %H:%M:%S}"),
            ("by", self.author),
            ("output sha256", self.output_hash),
            ("error", self.error),
            ("reused", "yes" if self.reused else None),
        ]  # fmt: skip
        shown = [(what, value) for what, value in facts if value is not None]
        return html_table(shown, title=f"product {self.id}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Product) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    # -- the record ------------------------------------------------------------------------------

    @functools.cached_property
    def provenance(self) -> dict[str, Any]:
        """Inputs (runs with their raw files' sha256, signals, channels, calibration and
        configuration versions, flags; parent products; the good-run list), code (step, version,
        function, file, git commit and dirty flag, package versions), params, user, host,
        start, duration and the output's kind and hash."""
        record = dict(self._row.provenance)
        if self.kind == "set":  # a set keeps its own facts; its runs are its parts' inputs
            runs = [run for part in self._part_rows() for run in part.provenance["inputs"]["runs"]]
            record["inputs"] = {**record["inputs"], "runs": runs}
        return record

    @property
    def inputs(self) -> list[dict[str, Any]]:
        """The runs and products this one was computed from, in order."""
        rows = queries.inputs_of(self._archive.catalog, [self.id])[self.id]
        return [{"kind": r.kind, "id": r.ref, "run": r.run_number} for r in rows]

    @property
    def stale(self) -> list[str]:
        """Why this product no longer reflects its inputs (empty: it does)."""
        return Checker(self._archive).reasons(self._row)

    # -- the value -------------------------------------------------------------------------------

    @functools.cached_property
    def value(self) -> Any:
        """What the step returned (read from the store once, then kept); for a set, a dict of
        its parts' values by run number (or by part id where a part has no run)."""
        if self.status != queries.COMPLETE:
            raise NotFound(f"product {self.id} failed and has no value: {self.error}")
        if self.kind == "set":
            return {(p.run if p.run is not None else p.id): p.value for p in self.parts}
        return outputs.load(self._archive.store, self._row.store_prefix, self.kind, self._row.value)

    @functools.cached_property
    def parts(self) -> list[Product]:
        """A set's products, one per run or input part, in the order computed."""
        if self.kind != "set":
            return []
        return [Product(self._archive, row) for row in self._part_rows()]

    def _part_rows(self) -> list[ProductRow]:
        refs = [i["id"] for i in self.inputs if i["kind"] == "product"]
        found = queries.by_ids(self._archive.catalog, refs)
        return [found[r] for r in refs]

    def __len__(self) -> int:
        return len(self.parts) if self.kind == "set" else 1

    def __iter__(self) -> Iterator[Product]:
        return iter(self.parts if self.kind == "set" else [self])

    def __getitem__(self, run: int) -> Any:
        """A set's value for run number ``run``."""
        for part in self:
            if part.run == run:
                return part.value
        raise NotFound(f"product {short(self.id)} has no part for run {run}")

    def to_pandas(self) -> pandas.Series | pandas.DataFrame:
        """A set of single values (or of dicts of them) as a Series (DataFrame) by run."""
        import pandas as pd

        values = self.value if self.kind == "set" else {self.run: self.value}
        if all(isinstance(v, dict) for v in values.values()):
            return pd.DataFrame.from_dict(values, orient="index").rename_axis("run")
        return pd.Series(values, name=self.step.rpartition(":")[2]).rename_axis("run")

    def to_dict(self) -> dict[str, Any]:
        """The product's row as JSON-ready data (its value only if inline)."""
        return {
            "id": self.id,
            "key": self.key,
            "step": self.step,
            "step_version": self.step_version,
            "status": self.status,
            "kind": self.kind,
            "run": self.run,
            "level": self.level,
            "created": self.created.isoformat(),
            "author": self.author,
            "output_hash": self.output_hash,
            "error": self.error,
            "reused": self.reused,
        }


class Products:
    """An archive's products: ``la.products[id]`` (or the id's first characters),
    ``la.products.search(step=..., run=...)``, and iteration over the current ones."""

    def __init__(self, archive: Home):
        self._archive = archive

    def __repr__(self) -> str:
        return f"<Products of {self._archive}>"

    def __getitem__(self, ref: str) -> Product:
        return Product(self._archive, row_of(self._archive, ref))

    def __iter__(self) -> Iterator[Product]:
        return (Product(self._archive, r) for r in queries.current(self._archive.catalog))

    def search(
        self,
        *,
        step: str | Any | None = None,
        run: int | None = None,
        status: str | None = queries.COMPLETE,
        limit: int | None = None,
    ) -> list[Product]:
        """Products newest first: of a step (a Step or its name), of a run number, of a
        status ("complete", "failed", None for both)."""
        name = getattr(step, "name", step)
        rows = queries.listing(
            self._archive.catalog, step=name, run=run, status=status, limit=limit
        )
        return [Product(self._archive, r) for r in rows]


def row_of(archive: Home, ref: str) -> ProductRow:
    """The product whose id is ``ref`` or starts with it (at least 8 characters)."""
    if not isinstance(ref, str):
        raise NotFound(f"a product is named by its id (text), not by a {type(ref).__name__}")
    row = queries.by_id(archive.catalog, ref)
    if row is None and len(ref) >= 8:
        found = queries.by_prefix(archive.catalog, ref)
        if len(found) > 1:
            raise NotFound(f"{ref!r} begins the ids of several products; give more of it")
        row = found[0] if found else None
    if row is None:
        raise NotFound(f"no product has the id {ref!r} (list them with `labledger products`)")
    return row


@dataclass
class Stale:
    """A product and why it is stale."""

    product: Product
    reasons: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {**self.product.to_dict(), "reasons": self.reasons}


def stale(archive: Home, rows: Iterable[ProductRow] | None = None) -> list[Stale]:
    """The current products (or ``rows``) that are stale, oldest first, with the reasons."""
    return [Stale(Product(archive, row), reasons) for row, reasons in stale_rows(archive, rows)]
