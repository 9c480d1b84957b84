"""A product: what a step computed, with the record of how; the same object whether its
archive is here or on a server (it asks its home's products for its inputs, parts and
staleness, and reads its value from its home's store).

>>> from labledger.sim.analysis import density
>>> p = la.compute(density, runs=la.runs.search(gas="Ar"))
>>> p.provenance["code"]["step"], p.provenance["code"]["version"], p[1255]
('labledger.sim.analysis:density', '2', <Quantity(3.13...e+17, '1 / meter ** 3')>)
>>> p.to_pandas().index.tolist()
[1234, 1235, 1245, 1255]
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from labledger.display import html_table
from labledger.errors import NotFound
from labledger.ids import short
from labledger.lineage import outputs
from labledger.records import COMPLETE, ProductInputRecord, ProductRecord

if TYPE_CHECKING:
    import pandas

    from labledger.store import Store


class ProductRecords(Protocol):
    """What a product (and ``run.product``) asks of its archive's products: the catalog answers
    here (:class:`labledger.lineage.products.Products`), a server there."""

    def inputs_of(self, product_id: str) -> list[ProductInputRecord]: ...

    def parts_of(self, product_id: str) -> list[ProductRecord]: ...

    def reasons(self, row: ProductRecord) -> list[str]: ...

    def newest_in_slot(self, slot: str) -> ProductRecord | None: ...


class ProductHome(Protocol):
    """Where a product lives: the store its value is in, and the products it asks."""

    @property
    def store(self) -> Store: ...

    @property
    def products(self) -> ProductRecords: ...


class Product:
    """A computed result: ``value``, ``provenance``, ``stale`` (reasons, computed now), and for
    a set its ``parts``, ``p[run]`` and ``to_pandas()``."""

    def __init__(self, home: ProductHome, row: ProductRecord, *, reused: bool = False):
        self._home = home
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
            ("run", self.run) if self.run is not None else ("parts", len(self)),
            ("level", self.level),
            ("made (UTC)", f"{self.created:%Y-%m-%d %H:%M:%S}"),
            ("by", self.author),
            ("output sha256", self.output_hash),
            ("error", self.error),
            ("reused", "yes" if self.reused else None),
        ]
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
        rows = self._home.products.inputs_of(self.id)
        return [{"kind": r.kind, "id": r.ref, "run": r.run_number} for r in rows]

    @property
    def stale(self) -> list[str]:
        """Why this product no longer reflects its inputs (empty: it does)."""
        return self._home.products.reasons(self._row)

    # -- the value -------------------------------------------------------------------------------

    @functools.cached_property
    def value(self) -> Any:
        """What the step returned (read from the store once, then kept); for a set, a dict of
        its parts' values by run number (or by part id where a part has no run)."""
        if self.status != COMPLETE:
            raise NotFound(f"product {self.id} failed and has no value: {self.error}")
        if self.kind == "set":
            return {(p.run if p.run is not None else p.id): p.value for p in self.parts}
        return outputs.load(self._home.store, self._row.store_prefix, self.kind, self._row.value)

    @functools.cached_property
    def parts(self) -> list[Product]:
        """A set's products, one per run or input part, in the order computed."""
        if self.kind != "set":
            return []
        return [Product(self._home, row) for row in self._part_rows()]

    def _part_rows(self) -> list[ProductRecord]:
        return self._home.products.parts_of(self.id)

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


@dataclass
class Stale:
    """A product and why it is stale."""

    product: Product
    reasons: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {**self.product.to_dict(), "reasons": self.reasons}
