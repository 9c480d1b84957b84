"""An archive's products, as its catalog records them: found by id, searched, judged stale.

A product (:mod:`labledger.lineage.product`) is one step applied to one run (or to one part of
another product); computing a step over many runs makes a *set* whose parts are those
products, so that a flag on one run invalidates one part, and a new run adds one part, not
everything again.

>>> [p.run for p in la.products.search(step="labledger.sim.analysis:density")[0].parts]
[1234, 1235, 1245, 1255]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from labledger.catalog import products as queries
from labledger.errors import NotFound
from labledger.lineage.product import Product, Stale
from labledger.lineage.staleness import Checker, stale_rows
from labledger.records import COMPLETE, ProductInputRecord, ProductRecord

if TYPE_CHECKING:
    from labledger.lineage.home import Home


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

    # -- what a product asks (labledger.lineage.product.ProductRecords) ------------------------

    def inputs_of(self, product_id: str) -> list[ProductInputRecord]:
        return queries.inputs_of(self._archive.catalog, [product_id])[product_id]

    def parts_of(self, product_id: str) -> list[ProductRecord]:
        refs = [i.ref for i in self.inputs_of(product_id) if i.kind == "product"]
        found = queries.by_ids(self._archive.catalog, refs)
        return [found[r] for r in refs]

    def reasons(self, row: ProductRecord) -> list[str]:
        return Checker(self._archive).reasons(row)

    def newest_in_slot(self, slot: str) -> ProductRecord | None:
        return queries.newest_in_slots(self._archive.catalog, [slot]).get(slot)

    def search(
        self,
        *,
        step: str | Any | None = None,
        run: int | None = None,
        status: str | None = COMPLETE,
        limit: int | None = None,
    ) -> list[Product]:
        """Products newest first: of a step (a Step or its name), of a run number, of a
        status ("complete", "failed", None for both)."""
        name = getattr(step, "name", step)
        rows = queries.listing(
            self._archive.catalog, step=name, run=run, status=status, limit=limit
        )
        return [Product(self._archive, r) for r in rows]


def row_of(archive: Home, ref: str) -> ProductRecord:
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


def stale(archive: Home, rows: Iterable[ProductRecord] | None = None) -> list[Stale]:
    """The current products (or ``rows``) that are stale, oldest first, with the reasons."""
    return [Stale(Product(archive, row), reasons) for row, reasons in stale_rows(archive, rows)]
