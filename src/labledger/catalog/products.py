"""The catalog's queries on products: publishing one with its inputs, finding them by key and
slot, and walking the graph of inputs up and down.

"Current" means complete and the newest of its slot: a recomputation supersedes, it never
overwrites, so the old product stays readable and its lineage intact.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import String, and_, cast, exists, func, insert, literal, or_, select

from labledger.catalog.catalog import Catalog
from labledger.catalog.schema import (
    ProductInputRow,
    ProductRow,
    product_input_table,
    product_table,
    run_table,
)
from labledger.errors import Conflict
from labledger.ids import batches
from labledger.records import COMPLETE, ProductInputRecord, ProductRecord

Published = tuple[ProductRecord, Sequence[ProductInputRecord]]


def publish(
    catalog: Catalog, row: ProductRecord, inputs: Sequence[ProductInputRecord]
) -> ProductRecord:
    """Record a product (or a failure) with its inputs in one transaction. If another writer
    published a complete product with the same key meanwhile, return that one instead."""
    return publish_many(catalog, [(row, inputs)])[0]


def publish_many(catalog: Catalog, products: Sequence[Published]) -> list[ProductRecord]:
    """Record products with their inputs in one transaction (one commit, not one each); what
    is returned stands for each, as :func:`publish` says."""
    if not products:
        return []
    try:
        with catalog.transaction(f"recording product {products[0][0].id}") as session:
            # bulk inserts, the products before the inputs that refer to them: the unit of work
            # would cost more than the commit
            session.execute(insert(product_table), [_values(row) for row, _ in products])
            inputs = [_values(i) for _, rows in products for i in rows]
            if inputs:
                session.execute(insert(product_input_table), inputs)
    except Conflict:
        if len(products) > 1:  # find which, one at a time
            return [publish(catalog, row, inputs) for row, inputs in products]
        existing = by_key(catalog, products[0][0].key)
        if existing is None:
            raise
        return [existing]
    return [row for row, _ in products]


def _values(row: Any) -> dict[str, Any]:
    return {f.name: getattr(row, f.name) for f in fields(row)}


def by_id(catalog: Catalog, product_id: str) -> ProductRecord | None:
    with catalog.reading() as session:
        return session.get(ProductRow, product_id)


def by_prefix(
    catalog: Catalog, prefix: str, limit: int = 2, projects: Collection[str] | None = None
) -> list[ProductRecord]:
    """Products whose id starts with ``prefix`` (people type the first 8 characters); with
    ``projects``, only those over runs of those projects (see :func:`of_projects`), so that
    another project's products neither answer nor make a prefix ambiguous."""
    query = select(ProductRow).where(product_table.c.id.startswith(prefix, autoescape=True))
    if projects is not None:
        query = query.where(of_projects(projects))
    with catalog.reading() as session:
        return list(session.scalars(query.order_by(product_table.c.id).limit(limit)))


def of_projects(projects: Collection[str]) -> Any:
    """The SQL condition "this product is over runs of ``projects`` only, and at least one":
    its own run, and for a set the runs of its parts (as the server's visibility rule)."""
    mine = select(run_table.c.number).where(run_table.c.project.in_(list(projects)))
    part = product_input_table.c
    of_set = product_table.c.kind == "set"
    parts = select(part.product_id).where(
        part.product_id == product_table.c.id, part.run_number.is_not(None)
    )
    return and_(
        or_(product_table.c.run_number.is_(None), product_table.c.run_number.in_(mine)),
        or_(~of_set, ~exists(parts.where(part.run_number.not_in(mine)))),
        or_(product_table.c.run_number.is_not(None), and_(of_set, exists(parts))),
    )


def by_ids(catalog: Catalog, ids: Iterable[str]) -> dict[str, ProductRecord]:
    found: dict[str, ProductRecord] = {}
    with catalog.reading() as session:
        for batch in batches(ids):
            query = select(ProductRow).where(product_table.c.id.in_(batch))
            found.update({r.id: r for r in session.scalars(query)})
    return found


def by_key(catalog: Catalog, key: str) -> ProductRecord | None:
    with catalog.reading() as session:
        query = select(ProductRow).where(
            product_table.c.key == key, product_table.c.status == COMPLETE
        )
        return session.scalars(query).first()


def by_prekeys(catalog: Catalog, prekeys: Iterable[str]) -> dict[str, list[ProductRecord]]:
    """Complete products by pre-run key, newest first: candidates for reuse."""
    found: dict[str, list[ProductRecord]] = {k: [] for k in prekeys}
    with catalog.reading() as session:
        for batch in batches(found):
            query = (
                select(ProductRow)
                .where(product_table.c.prekey.in_(batch), product_table.c.status == COMPLETE)
                .order_by(product_table.c.created.desc(), product_table.c.id.desc())
            )
            for row in session.scalars(query):
                found[row.prekey].append(row)
    return found


def newest_in_slots(catalog: Catalog, slots: Iterable[str]) -> dict[str, ProductRecord]:
    """The newest complete product of each slot."""
    found: dict[str, ProductRecord] = {}
    with catalog.reading() as session:
        for batch in batches(slots):
            query = (
                select(ProductRow)
                .where(product_table.c.slot.in_(batch), product_table.c.status == COMPLETE)
                .order_by(product_table.c.created, product_table.c.id)
            )
            found.update({r.slot: r for r in session.scalars(query)})  # the newest wins
    return found


def current(
    catalog: Catalog,
    *,
    step: str | None = None,
    kind: str | None = None,
    level: int | None = None,
    runs: Sequence[int] | None = None,
) -> list[ProductRecord]:
    """Complete products that no newer product of their slot supersedes, oldest first."""
    query = select(ProductRow).where(is_current())
    if step is not None:
        query = query.where(product_table.c.step == step)
    if kind is not None:
        query = query.where(product_table.c.kind == kind)
    if level is not None:
        query = query.where(product_table.c.level == level)
    if runs is not None:
        query = query.where(product_table.c.run_number.in_(list(runs)))
    with catalog.reading() as session:
        return list(session.scalars(query.order_by(product_table.c.created, product_table.c.id)))


def is_current() -> Any:
    """The SQL condition "this product is complete and no newer complete product of its slot
    supersedes it"."""
    newer = product_table.alias("newer").c
    return and_(
        product_table.c.status == COMPLETE,
        ~exists().where(
            and_(
                newer.slot == product_table.c.slot,
                newer.status == COMPLETE,
                or_(
                    newer.created > product_table.c.created,
                    and_(newer.created == product_table.c.created, newer.id > product_table.c.id),
                ),
            )
        ),
    )


def count_current(catalog: Catalog, projects: Collection[str] | None = None) -> int:
    """How many products are current; over runs of ``projects`` only, if given
    (:func:`of_projects`)."""
    query = select(func.count()).select_from(ProductRow).where(is_current())
    if projects is not None:
        query = query.where(of_projects(projects))
    with catalog.reading() as session:
        return int(session.scalar(query) or 0)


def listing(
    catalog: Catalog,
    *,
    step: str | None = None,
    run: int | None = None,
    status: str | None = COMPLETE,
    limit: int | None = None,
    projects: Collection[str] | None = None,
    slot: str | None = None,
) -> list[ProductRecord]:
    """Products newest first, of a step, of a run, of a status (None: any), in a slot, over
    runs of ``projects`` only if given (:func:`of_projects`)."""
    query = (
        select(ProductRow) if projects is None else select(ProductRow).where(of_projects(projects))
    )
    if step is not None:
        query = query.where(product_table.c.step == step)
    if run is not None:
        query = query.where(product_table.c.run_number == run)
    if slot is not None:
        query = query.where(product_table.c.slot == slot)
    if status is not None:
        query = query.where(product_table.c.status == status)
    query = query.order_by(product_table.c.created.desc(), product_table.c.id.desc())
    with catalog.reading() as session:
        return list(session.scalars(query.limit(limit) if limit else query))


def inputs_of(catalog: Catalog, ids: Iterable[str]) -> dict[str, list[ProductInputRecord]]:
    found: dict[str, list[ProductInputRecord]] = {i: [] for i in ids}
    with catalog.reading() as session:
        for batch in batches(found):
            query = (
                select(ProductInputRow)
                .where(product_input_table.c.product_id.in_(batch))
                .order_by(product_input_table.c.product_id, product_input_table.c.position)
            )
            for row in session.scalars(query):
                found[row.product_id].append(row)
    return found


def _walk(start: str, direction: str) -> Any:
    """Every product id above ``start`` (its inputs, theirs...) or below it (what used it),
    ``start`` included: a recursive CTE. UNION, not UNION ALL, so that a node reached by two
    paths is walked once."""
    i = product_input_table.c
    walk = select(cast(literal(start), String(36)).label("id")).cte("walk", recursive=True)
    if direction == "up":
        further = select(i.ref).join(walk, i.product_id == walk.c.id).where(i.kind == "product")
    else:
        further = select(i.product_id).join(walk, i.ref == walk.c.id)
    return walk.union(further)


def edges(catalog: Catalog, start: str, direction: str) -> list[tuple[str, str, str, Any, int]]:
    """Every (product, input kind, input ref, run number, position) above ``start`` (a product
    id; ``direction`` "up") or below it (a product or run id; "down"), in one query."""
    i, walk = product_input_table.c, _walk(start, direction)
    joined = i.product_id == walk.c.id if direction == "up" else i.ref == walk.c.id
    query = select(i.product_id, i.kind, i.ref, i.run_number, i.position).join(walk, joined)
    with catalog.reading() as session:
        return [tuple(r) for r in session.execute(query)]


def graph_nodes(catalog: Catalog, start: str, direction: str) -> list[Any]:
    """What a lineage graph shows of each product above or below ``start``, with the id of the
    newest complete product of its slot (``newest``), in one query. Only the light columns:
    decoding 10,000 provenance records would cost more than all the rest."""
    p, walk = product_table.c, _walk(start, direction)
    newer = product_table.alias("newer").c
    newest = (
        select(newer.id)
        .where(newer.slot == p.slot, newer.status == COMPLETE)
        .order_by(newer.created.desc(), newer.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    columns = (
        p.id,
        p.step,
        p.step_version,
        p.status,
        p.kind,
        p.run_number,
        p.created,
        p.output_hash,
    )
    query = select(*columns, newest.label("newest")).join(walk, p.id == walk.c.id)
    with catalog.reading() as session:
        return list(session.execute(query))
