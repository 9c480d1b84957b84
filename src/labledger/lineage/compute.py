"""Running steps: reuse what was made already, record everything, publish only what is whole.

For each run (or each part of an input product) a step is applied to:

1. its *slot* is the hash of the step, its version, the canonical parameters and which input;
   its *prekey* adds what is known of the input before running: the run's raw files (sha256),
   configuration version and flags in force, or the input product's key;
2. an earlier complete product with that prekey that is not stale is reused, and nothing runs;
3. otherwise the step runs inside a :class:`~labledger.reads.ReadLog`, which notes every signal,
   channel, calibration and product read; the output goes to the store and is made durable;
   its *key* adds what was read to the prekey, and one catalog transaction publishes the row
   and its inputs. A step that raises, or returns what cannot be kept, is recorded as failed
   with its error, and what it wrote is removed: nothing partial is ever published.

Over several inputs the parts are gathered into a *set* product, itself keyed by its parts.
"""

from __future__ import annotations

import socket
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

import labledger.reads as reads
from labledger.catalog import products as queries
from labledger.errors import InvalidArgument, LabledgerError, NotFound
from labledger.events import EventFile, Events, check_parents, event_key, write_events
from labledger.ids import short, uuid7
from labledger.lineage import outputs
from labledger.lineage.canonical import canonical, decode, digest, encode
from labledger.lineage.environment import environment
from labledger.lineage.product import Product, ProductHome, ProductRecords
from labledger.lineage.products import row_of
from labledger.lineage.staleness import Checker, label
from labledger.lineage.step import Step, StepNotFound, as_step, find
from labledger.quality.goodruns import GoodRunList
from labledger.records import COMPLETE, FAILED, ProductInputRecord, ProductRecord
from labledger.runs import Run, Runs

if TYPE_CHECKING:
    from labledger.lineage.home import Home


_FLUSH_EVERY_S = 1.0  # at most this much finished work is lost to a crash (computed again)


class StepFailed(LabledgerError):
    """A step raised, or returned what cannot be kept; the failure is recorded (``product_id``)
    and nothing of it is published."""

    def __init__(self, message: str, product_id: str):
        super().__init__(message)
        self.product_id = product_id


@dataclass
class _Item:
    """One thing a step is applied to: a run, or a part of an input product."""

    run: Run | None
    parent: Product | None

    @property
    def identity(self) -> dict[str, Any]:
        if self.parent is not None:
            return {"product_slot": self.parent._row.slot}
        assert self.run is not None
        return {"run": self.run.id}

    @property
    def argument(self) -> Any:
        return self.parent.value if self.parent is not None else self.run


def compute(
    archive: Home,
    step: Step,
    *,
    runs: Any = None,
    inputs: Any = None,
    params: dict[str, Any],
) -> Product:
    """Apply ``step`` to ``runs`` or to the parts of ``inputs`` (see ``Archive.compute``)."""
    step = as_step(step)
    step.check(params)
    canon, encoded = canonical(params), encode(params)
    items, single, good_runs = _items(archive, runs, inputs)
    job = _Job(archive, step, params, canon, encoded, good_runs)
    parts = job.parts(items)
    return parts[0] if single else job.gather(items, parts)


class _Job:
    """One ``compute`` call: the facts shared by its parts, gathered once."""

    def __init__(
        self,
        archive: Home,
        step: Step,
        params: dict[str, Any],
        canon: Any,
        encoded: Any,
        good_runs: Any,
        pinned: dict[str, dict[str, str]] | None = None,
    ):
        self.archive, self.step, self.params = archive, step, params
        self.canon, self.encoded, self.good_runs = canon, encoded, good_runs
        self.env = environment(step)
        self.env["host"] = socket.gethostname()
        self.checker = Checker(archive)
        self.started = time.perf_counter()
        self.when = datetime.now(UTC)
        self.pinned = pinned
        self._pending: list[tuple[ProductRecord, list[ProductInputRecord], str | None]] = []
        self._adopted: dict[str, Product] = {}  # published by another writer meanwhile
        self._files: dict[str, list[dict[str, str]]] = {}  # raw files of the runs, by run id
        self._flushed = time.perf_counter()

    def slot(self, identity: dict[str, Any]) -> str:
        return _slot(self.step, self.canon, identity)

    def row(
        self,
        product_id: str,
        slot: str,
        provenance: dict[str, Any],
        *,
        key: str,
        prekey: str,
        status: str,
        kind: str,
        run_number: int | None,
        level: int | None,
        store_prefix: str | None,
        output_hash: str | None,
        value: Any,
        error: str | None = None,
    ) -> ProductRecord:
        """The catalog row of a product or a failure of this job's step, made now."""
        return ProductRecord(
            id=product_id,
            key=key,
            prekey=prekey,
            slot=slot,
            step=self.step.name,
            step_version=self.step.version,
            status=status,
            kind=kind,
            run_number=run_number,
            level=level,
            store_prefix=store_prefix,
            output_hash=output_hash,
            value=value,
            created=datetime.now(UTC),
            author=self.env["user"],
            provenance=provenance,
            error=error,
        )

    # -- one part ----------------------------------------------------------------------------

    def before(self, item: _Item) -> tuple[str, str, dict[str, Any]]:
        """The slot, the prekey and the description of the input known before running."""
        slot = self.slot(item.identity)
        if item.parent is not None:
            parent = item.parent
            facts = {"key": parent.key, "output_hash": parent.output_hash}
            return slot, digest({"slot": slot, "parent": facts}), {}
        assert item.run is not None
        run = self._run_facts(item.run)
        return slot, digest({"slot": slot, "run": run}), run

    def _run_facts(self, run: Run) -> dict[str, Any]:
        self.checker.know([run])
        files = self._files.get(run.id)
        if files is None:  # a run the step read besides its own
            files = [{"name": s.name, "sha256": s.sha256, "key": s.key} for s in run.sources]
        facts = {
            "id": run.id,
            "number": run.number,
            "config_version": run.config_version,
            "sources": files,
            "flags": self.checker.flag_ids(run.number),
        }
        withdrawal = self.checker.withdrawal(run.id)
        if withdrawal is not None:  # only then: the keys of other runs' products stay as they were
            facts["withdrawn"] = withdrawal.id
        return facts

    def parts(self, items: Sequence[_Item]) -> list[Product]:
        """The product of each item: reused where it was made already, else computed. What the
        catalog knows of the inputs is asked once for all of them, and what is computed is
        published a batch at a time: one commit for many parts, not one each."""
        runs = [item.run for item in items if item.parent is None and item.run is not None]
        self._files.update(self.archive.catalog.source_hashes([r.id for r in runs]))
        self.checker.know(runs)
        known = [self.before(item) for item in items]
        candidates = queries.by_prekeys(self.archive.catalog, [prekey for _, prekey, _ in known])
        parts = []
        try:
            for item, (slot, prekey, facts) in zip(items, known, strict=True):
                fresh = (c for c in candidates[prekey] if not self.checker.reasons(c))
                reusable = next(fresh, None)
                if reusable is not None:
                    parts.append(Product(self.archive, reusable, reused=True))
                else:
                    parts.append(self.run(item, slot, prekey, facts))
                if time.perf_counter() - self._flushed > _FLUSH_EVERY_S:
                    self.flush()
        finally:  # what was made whole is published, even when a later part fails
            self.flush()
        return [self._adopted.get(p.id, p) for p in parts]

    def flush(self) -> None:
        """Publish the parts computed since the last flush, in one transaction."""
        pending, self._pending = self._pending, []
        rows = [(row, inputs) for row, inputs, _ in pending]
        for (row, _, written), kept in zip(
            pending, queries.publish_many(self.archive.catalog, rows), strict=True
        ):
            if kept.id != row.id:  # the same product was published meanwhile: adopt it
                if written is not None:
                    self.archive.store.delete(written)
                self._adopted[row.id] = Product(self.archive, kept, reused=True)
        self._flushed = time.perf_counter()

    def run(self, item: _Item, slot: str, prekey: str, facts: dict[str, Any]) -> Product:
        """Apply the step to ``item`` and publish what it made (or record its failure)."""
        store, product_id = self.archive.store, uuid7()
        started, t0 = datetime.now(UTC), time.perf_counter()
        log = reads.ReadLog(pinned=self.pinned or {})
        try:  # the step's own errors, and outputs it should not have made, are the step's
            with reads.recording(log):
                value = self.step.fn(item.argument, **self.params)
            kind = outputs.kind_of(value)
            events = self._event_table(item, slot, value) if kind == "events" else None
        except Exception as exc:
            return self._failed(item, slot, prekey, facts, product_id, started, t0, exc)
        written: str | None = None
        try:
            if events is not None:
                number, table = events  # the item's run, not the table's: it may be empty
                written = event_key(value.level, number, product_id)
                summary = {**self._write_events(written, table), "key": written}
                output_hash, level = outputs.content_hash(table, "table"), value.level
            else:
                written, level = f"products/{product_id}", None
                summary, output_hash = outputs.save(store, written, value, kind)
                if "inline" in summary:
                    written = None  # kept in the catalog row: nothing in the store
            if written is not None:
                store.persist(written)
        except BaseException:
            if written is not None:
                store.delete(written)
            raise
        inputs, record = self._inputs(item, facts, log)
        key = digest({"prekey": prekey, "reads": record})
        row = self.row(
            product_id,
            slot,
            self._provenance(inputs, started, t0, {"kind": kind, "hash": output_hash}),
            key=key,
            prekey=prekey,
            status=COMPLETE,
            kind=kind,
            run_number=_run_number(item),
            level=level,
            store_prefix=written,
            output_hash=output_hash,
            value=summary,
        )
        self._pending.append((row, _input_rows(product_id, inputs), written))
        return Product(self.archive, row)

    def _event_table(self, item: _Item, slot: str, value: Events) -> tuple[int, pa.Table]:
        """The run and the step's events as the table to keep, checked against their parents
        and against the other current events of their level and run: a key must name one
        event. Events belong to a run: an input with none is refused."""
        if item.run is None:
            raise InvalidArgument("events belong to a run, and this input has none")
        number = item.run.number
        table = value.table(number)
        streams = set(pc.unique(table.column("stream")).to_pylist())
        for other in queries.current(
            self.archive.catalog, kind="events", level=value.level, runs=[number]
        ):
            taken = sorted(streams & set(other.value.get("streams", ())))
            if other.slot != slot and taken:
                raise InvalidArgument(
                    f"run {number} has level-{value.level} events of stream {taken[0]!r} "
                    f"already, from product {short(other.id)} ({other.step}); the keys (run, "
                    "event, sub_event, stream) would name two events: give these another stream"
                )
        if value.parent_level is not None:
            parents = event_files(self.archive, value.parent_level, [number])
            check_parents(table, parents, self.archive.store)
        return number, table

    def _write_events(self, key: str, table: pa.Table) -> dict[str, Any]:
        return write_events(self.archive.store, key, table)

    def _inputs(
        self, item: _Item, facts: dict[str, Any], log: reads.ReadLog
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The inputs as recorded in provenance, and what of them enters the key."""
        runs = []
        if item.run is not None and item.parent is None:
            log._of(item.run)  # the run applied to is an input even if nothing was read
        for run_id, seen in log.runs.items():
            known = facts if facts.get("id") == run_id else self._run_facts(seen.run)
            calibrations = {n: label for n, (label, _) in seen.calibrations.items()}
            runs.append(
                {
                    **known,
                    "signals": sorted(seen.signals),
                    "channels": sorted(seen.channels),
                    "calibrations": calibrations,
                    "explicit": sorted(n for n, (_, asked) in seen.calibrations.items() if asked),
                }
            )
        products = [] if item.parent is None else [item.parent]
        products += [p for p in log.products.values() if p not in products]
        parents = [
            {"id": p.id, "step": p.step, "key": p.key, "output_hash": p.output_hash, "run": p.run}
            for p in products
        ]
        inputs = {"runs": runs, "products": parents, "good_runs": None}
        record = {
            "runs": [
                {k: r[k] for k in ("id", "calibrations", "channels", "signals")} for r in runs
            ],
            "products": [p["key"] for p in parents],
        }
        return inputs, record

    def _provenance(
        self, inputs: dict[str, Any], started: datetime, t0: float, output: dict[str, Any] | None
    ) -> dict[str, Any]:
        return {
            **self.env,
            "params": self.encoded,
            "inputs": inputs,
            "started": started.isoformat(),
            "duration_s": round(time.perf_counter() - t0, 6),
            "output": output,
        }

    def _failed(
        self,
        item: _Item,
        slot: str,
        prekey: str,
        facts: dict[str, Any],
        product_id: str,
        started: datetime,
        t0: float,
        exc: Exception,
    ) -> Product:
        what = f"run {item.run.number}" if item.run is not None else "its input"
        message = f"{type(exc).__name__}: {exc}"
        inputs = {"runs": [facts] if facts else [], "products": [], "good_runs": None}
        if item.parent is not None:
            inputs["products"] = [{"id": item.parent.id, "step": item.parent.step}]
        record = self._provenance(inputs, started, t0, None)
        record["error"] = {
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": traceback.format_exc(limit=20),
        }
        row = self.row(
            product_id,
            slot,
            record,
            key=prekey,
            prekey=prekey,
            status=FAILED,
            kind="none",
            run_number=_run_number(item),
            level=None,
            store_prefix=None,
            output_hash=None,
            value=None,
            error=message[:2000],
        )
        queries.publish(self.archive.catalog, row, _input_rows(product_id, inputs))
        raise StepFailed(
            f"step {self.step.name} failed on {what}: {message.splitlines()[0][:300]} "
            f"(recorded as failed computation {product_id}; nothing was published)",
            product_id,
        ) from exc

    # -- the set ---------------------------------------------------------------------------------

    def gather(self, items: Sequence[_Item], parts: Sequence[Product]) -> Product:
        """The set of ``parts``: reused if the same parts were gathered before."""
        slot = self.slot({"inputs": [i.identity for i in items]})
        grl = self.good_runs
        used = None if grl is None else {"name": grl.name, "version": grl.version, "hash": grl.hash}
        key = digest({"slot": slot, "parts": [p.key for p in parts], "good_runs": used})
        existing = queries.by_key(self.archive.catalog, key)
        if existing is not None:
            return Product(self.archive, existing, reused=all(p.reused for p in parts))
        product_id = uuid7()
        output_hash = digest([p.output_hash for p in parts])
        inputs = {
            "products": [
                {
                    "id": p.id,
                    "step": p.step,
                    "key": p.key,
                    "output_hash": p.output_hash,
                    "run": p.run,
                }
                for p in parts
            ],
            "good_runs": used,
        }
        computed = sum(not p.reused for p in parts)
        record = self._provenance(
            inputs, self.when, self.started, {"kind": "set", "hash": output_hash}
        )
        row = self.row(
            product_id,
            slot,
            record,
            key=key,
            prekey=key,
            status=COMPLETE,
            kind="set",
            run_number=None,
            level=None,
            store_prefix=None,
            output_hash=output_hash,
            value={"parts": len(parts), "computed": computed, "reused": len(parts) - computed},
        )
        published = queries.publish(self.archive.catalog, row, _input_rows(product_id, inputs))
        return Product(self.archive, published, reused=published.id != product_id)


def _items(archive: Home, runs: Any, inputs: Any) -> tuple[list[_Item], bool, Any]:
    """What the step is applied to; whether it was one thing (not a list); the good-run list."""
    if (runs is None) == (inputs is None):
        raise InvalidArgument("give the step runs=... or inputs=... (one of them)")
    if runs is not None:
        good_runs = runs if isinstance(runs, GoodRunList) else None
        single = isinstance(runs, (Run, int))
        chosen = [runs] if single else list(runs)
        found, seen = [], set()
        for r in chosen:
            run = r if isinstance(r, Run) else _run(archive, r)
            if run.id not in seen:
                seen.add(run.id)
                found.append(_Item(run, None))
        if not found:
            raise NotFound("no runs to compute over (the run selection is empty)")
        return found, single, good_runs
    single = isinstance(inputs, Product) and inputs.kind != "set"
    products = [inputs] if isinstance(inputs, Product) else list(inputs)
    items = []
    for product in products:
        if not isinstance(product, Product):
            raise InvalidArgument(f"inputs= takes products, not a {type(product).__name__}")
        for part in product:
            of_run = archive.runs[part.run] if part.run is not None else None
            items.append(_Item(of_run, part))
    if not items:
        raise NotFound("no products to compute over (the input selection is empty)")
    return items, single, None


def _slot(step: Step, canon: Any, identity: dict[str, Any]) -> str:
    """What was computed, whatever the versions of its inputs: the step, its version, the
    canonical parameters and which input (``_Item.identity``, or the parts of a set)."""
    return digest({"step": step.name, "version": step.version, "params": canon, **identity})


def _run(archive: Home, ref: Any) -> Run:
    if isinstance(ref, bool) or not isinstance(ref, (int, str)):
        raise InvalidArgument(f"runs= takes runs or run numbers, not a {type(ref).__name__}")
    return archive.runs[ref]


def _run_number(item: _Item) -> int | None:
    return item.run.number if item.run is not None else None


def _input_rows(product_id: str, inputs: dict[str, Any]) -> list[ProductInputRecord]:
    rows = [
        ProductInputRecord(
            product_id=product_id, position=i, kind="run", ref=r["id"], run_number=r["number"]
        )
        for i, r in enumerate(inputs.get("runs", []))
    ]
    rows += [
        ProductInputRecord(
            product_id=product_id,
            position=len(rows) + i,
            kind="product",
            ref=p["id"],
            run_number=p.get("run"),
        )
        for i, p in enumerate(inputs["products"])
    ]
    return rows


def event_files(archive: Home, level: int, runs: Sequence[int] | None = None) -> list[EventFile]:
    """The current event files of ``level`` (of ``runs``), for queries and parent checks."""
    rows = queries.current(archive.catalog, kind="events", level=level, runs=runs)
    return [
        EventFile(
            path=r.store_prefix or "",
            run=r.run_number or 0,
            level=level,
            parent_level=r.value.get("parent_level"),
            product_id=r.id,
        )
        for r in rows
    ]


def product_of(archive: ProductHome, run: Run, step: Step, params: dict[str, Any]) -> Product:
    """The current product of ``step`` with ``params`` for ``run`` of ``archive`` (here or on a
    server); noted as read if a step is being computed."""
    step = as_step(step)
    slot = _slot(step, canonical(params), _Item(run, None).identity)
    row = archive.products.newest_in_slot(slot)
    if row is None:
        raise NotFound(
            f"run {run.number} has no product of {step.name} version {step.version} with these "
            f"parameters; compute it with la.compute({step.name.rpartition(':')[2]}, "
            f"runs={run.number}, ...)"
        )
    product = Product(archive, row)
    log = reads.current()
    if log is not None:
        log.product(product)
    return product


# -- again: recompute what is stale, reproduce what was recorded --------------------------------


def recompute(archive: Home, rows: Iterable[Any]) -> list[Product]:
    """Compute again, with the code of today, the products of ``rows`` (oldest first), each
    over the current version of what it was computed from. Every step is found, and its
    version checked, before any is run: a step that cannot be imported here stops the whole
    list, not the middle of it."""
    rows = list(rows)
    steps = _steps_of(rows)
    outdated = [row for row in rows if steps[row.step].version != row.step_version]
    if outdated:
        row = outdated[0]
        raise InvalidArgument(
            f"product {short(row.id)} was made by {row.step} version {row.step_version}; the "
            f"code now says version {steps[row.step].version}"
            + (
                f" (and {len(outdated) - 1} more products are of an older version)"
                if len(outdated) > 1
                else ""
            )
            + ": compute them anew with la.compute; nothing was recomputed"
        )
    made = []
    for row in rows:
        step = steps[row.step]
        params = decode(row.provenance["params"])
        job = _Job(archive, step, params, canonical(params), encode(params), None)
        if row.kind == "set":
            product = Product(archive, row)
            used = row.provenance["inputs"].get("good_runs")
            if used:  # over the newest version of the list, whose runs may have changed
                job.good_runs = archive.good_runs(used["name"])
                items = [_Item(archive.runs[n], None) for n in job.good_runs]
            else:
                items = [_again(archive, part._row) for part in product.parts]
            made.append(job.gather(items, job.parts(items)))
        else:
            made.append(job.parts([_again(archive, row)])[0])
    return made


def _steps_of(rows: Sequence[Any]) -> dict[str, Step]:
    """The step of each of the products ``rows``, by name, all found before any is run; if some
    cannot be, one error that names each module not importable here (or without the step) and
    the products that need it."""
    steps: dict[str, Step] = {}
    failed: dict[str, tuple[str, str]] = {}  # step -> (its module, why it cannot be found)
    needing: dict[tuple[str, str], list[Any]] = {}  # (module, why) -> the rows that need it
    for row in rows:
        if row.step not in steps and row.step not in failed:
            try:
                steps[row.step] = find(row.step)
            except StepNotFound as exc:
                failed[row.step] = (exc.module, exc.reason)
        if row.step in failed:
            needing.setdefault(failed[row.step], []).append(row)
    if needing:
        needs = "; ".join(
            f"module {module} ({why}) for {_listed(found)}"
            for (module, why), found in needing.items()
        )
        raise NotFound(
            f"cannot compute again: {needs}; make those modules importable here (install "
            "them, or put them on PYTHONPATH) and try again; nothing was computed"
        )
    return steps


def _listed(rows: Sequence[Any], most: int = 5) -> str:
    """The products ``rows`` for a message: the first few by label, then how many more."""
    named = ", ".join(label(row) for row in rows[:most])
    more = f" and {len(rows) - most} more" if len(rows) > most else ""
    return f"product{'s' if len(rows) > 1 else ''} {named}{more}"


def _again(archive: Home, row: Any) -> _Item:
    """The input of a part as it is now: its run, or the newest product of its input's slot."""
    parents = row.provenance["inputs"]["products"]
    if row.provenance["inputs"]["runs"] and not parents:
        return _Item(archive.runs[row.provenance["inputs"]["runs"][0]["id"]], None)
    parent = Product(archive, row_of(archive, parents[0]["id"]))
    newest = queries.newest_in_slots(archive.catalog, [parent._row.slot])[parent._row.slot]
    run = archive.runs[newest.run_number] if newest.run_number is not None else None
    return _Item(run, Product(archive, newest))


@dataclass
class Reproduction:
    """The outcome of computing a product again from its record."""

    product: Product
    identical: bool
    recorded_hash: str | None
    new_hash: str | None
    differences: list[str]  # what differs in code and environment, named
    parts: list[Reproduction]

    def __str__(self) -> str:
        head = (
            f"product {self.product.id} ({self.product.step}): "
            + ("identical output" if self.identical else "DIFFERENT output")
            + f" (recorded {str(self.recorded_hash)[:16]}, now {str(self.new_hash)[:16]})"
        )
        lines = [head] + [f"  {d}" for d in self.differences]
        lines += [
            f"  part run {p.product.run}: output differs" for p in self.parts if not p.identical
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "product": self.product.id,
            "identical": self.identical,
            "recorded_hash": self.recorded_hash,
            "new_hash": self.new_hash,
            "differences": self.differences,
            "parts": [p.to_dict() for p in self.parts],
        }


class Replay(ProductHome, Protocol):
    """What computing a product again reads: its runs, and its input products by id, of an
    archive here or on a server."""

    @property
    def runs(self) -> Runs: ...

    @property
    def products(self) -> ProductLookup: ...


class ProductLookup(ProductRecords, Protocol):
    def __getitem__(self, ref: str) -> Product: ...


def reproduce(archive: Replay, product: Product) -> Reproduction:
    """Run ``product``'s step again on exactly what its record says it read (the same runs, the
    same calibration versions, the same input products) and compare the output's hash; name
    what differs in the code and the environment."""
    if product.status != COMPLETE:
        raise InvalidArgument(f"product {product.id} failed; there is no output to reproduce")
    step = _steps_of([product._row])[product.step]
    record = product._row.provenance
    differences = _differences(record, environment(step), step)
    if product.kind == "set":
        parts = [reproduce(archive, p) for p in product.parts]
        new_hash = digest([p.new_hash for p in parts])
        return Reproduction(
            product,
            new_hash == product.output_hash,
            product.output_hash,
            new_hash,
            differences,
            parts,
        )
    params = decode(record["params"])
    pinned = {r["id"]: dict(r.get("calibrations", {})) for r in record["inputs"]["runs"]}
    parents = record["inputs"]["products"]
    if parents:
        argument = archive.products[parents[0]["id"]].value
    else:
        argument = archive.runs[record["inputs"]["runs"][0]["id"]]
    with reads.recording(reads.ReadLog(pinned=pinned)):
        value = step.fn(argument, **params)
    new_hash = _hash(value, product.run)
    return Reproduction(
        product, new_hash == product.output_hash, product.output_hash, new_hash, differences, []
    )


def _hash(value: Any, run: int | None) -> str:
    """The content hash ``value`` would be published with."""
    kind = outputs.kind_of(value)
    if kind == "events":
        return outputs.content_hash(value.table(run or 0), "table")
    return outputs.content_hash(value, kind)


def _differences(record: dict[str, Any], now: dict[str, Any], step: Step) -> list[str]:
    found = []
    then_code, now_code = record.get("code", {}), now["code"]
    if then_code.get("version") != step.version:
        found.append(f"step version: recorded {then_code.get('version')}, now {step.version}")
    if then_code.get("source_sha256") != now_code.get("source_sha256"):
        found.append(f"the source of {step.name} has changed since it was recorded")
    then_git, now_git = then_code.get("git") or {}, now_code.get("git") or {}
    if then_git.get("commit") != now_git.get("commit"):
        found.append(f"git commit: recorded {then_git.get('commit')}, now {now_git.get('commit')}")
    if then_git.get("dirty") or now_git.get("dirty"):
        found.append(
            f"uncommitted changes in the work tree: recorded {bool(then_git.get('dirty'))}, "
            f"now {bool(now_git.get('dirty'))}"
        )
    then_packages, now_packages = record.get("packages", {}), now["packages"]
    for name in sorted(set(then_packages) | set(now_packages)):
        if then_packages.get(name) != now_packages.get(name):
            found.append(
                f"package {name}: recorded {then_packages.get(name)}, now {now_packages.get(name)}"
            )
    if record.get("python") != now["python"]:
        found.append(f"Python: recorded {record.get('python')}, now {now['python']}")
    return found
