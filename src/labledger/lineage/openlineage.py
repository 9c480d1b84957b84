"""Each computation as OpenLineage run events, for the lineage tools a facility already runs
(Marquez, DataHub, OpenMetadata...): a START event when the step began and a COMPLETE or FAIL
event when it ended, with the runs and products it read as input datasets and the product it
made as output. labledger's own record (parameters, code, git state, packages) travels as a
custom run facet; the error of a failed step as the standard ``errorMessage`` facet.

The events are made from the catalog's records, so they can be exported at any time, for all
computations or those since a date, as JSON lines (spec 2-0-2).

>>> events = la.openlineage()   # write each as a line: json.dumps(event)
>>> [(e["eventType"], e["job"]["name"]) for e in events[:2]]
[('START', 'labledger.sim.analysis:density'), ('COMPLETE', 'labledger.sim.analysis:density')]
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from labledger.catalog.schema import ProductRow, product_table
from labledger.records import ProductRecord
from labledger.version import __version__

if TYPE_CHECKING:
    from labledger.lineage.home import Home

SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
PRODUCER = "https://github.com/labledger/labledger/tree/v{version}"
_FACETS = "https://openlineage.io/spec/facets/"
_ENGINE = _FACETS + "1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet"
_ERROR = _FACETS + "1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"
_JOB_TYPE = _FACETS + "2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"
_SOURCE = _FACETS + "1-0-1/SourceCodeLocationJobFacet.json#/$defs/SourceCodeLocationJobFacet"


def events(archive: Home, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    """START and COMPLETE/FAIL events for every computation recorded (since ``since``), in the
    order they were made."""

    producer = PRODUCER.format(version=__version__)
    namespace = _namespace(archive)
    query = select(ProductRow).order_by(product_table.c.created, product_table.c.id)
    if since is not None:
        query = query.where(product_table.c.created >= since)
    with archive.catalog.reading() as session:
        rows = list(session.scalars(query))
    for row in rows:
        yield from _pair(row, namespace, producer, __version__)


def _pair(row: ProductRecord, namespace: str, producer: str, version: str) -> list[dict[str, Any]]:
    record = row.provenance
    started = datetime.fromisoformat(record["started"])
    ended = started + timedelta(seconds=record.get("duration_s") or 0)
    inputs = [_dataset(namespace, f"runs/{r['number']}") for r in record["inputs"].get("runs", [])]
    inputs += [_dataset(namespace, f"products/{p['id']}") for p in record["inputs"]["products"]]
    code = record.get("code", {})
    job_facets: dict[str, Any] = {
        "jobType": {
            "_producer": producer,
            "_schemaURL": _JOB_TYPE,
            "processingType": "BATCH",
            "integration": "LABLEDGER",
            "jobType": "STEP",
        },
    }
    git = code.get("git")
    if git:
        job_facets["sourceCodeLocation"] = {
            "_producer": producer,
            "_schemaURL": _SOURCE,
            "type": "git",
            "url": f"file://{git['repository']}",
            "version": git["commit"],
            "path": code.get("file") or "",
        }
    job = {"namespace": namespace, "name": row.step, "facets": job_facets}
    run_facets: dict[str, Any] = {
        "processing_engine": {
            "_producer": producer,
            "_schemaURL": _ENGINE,
            "version": version,
            "name": "labledger",
        },
        "labledger": {
            "_producer": producer,
            "_schemaURL": producer + "/docs/lineage.md#openlineage",
            "step_version": row.step_version,
            "params": record.get("params"),
            "code": code,
            "packages": record.get("packages", {}),
            "user": record.get("user"),
            "host": record.get("host"),
            "product_kind": row.kind,
            "output_hash": row.output_hash,
            "key": row.key,
        },
    }
    base = {"run": {"runId": row.id}, "job": job, "producer": producer, "schemaURL": SCHEMA}
    start = {
        **base,
        "eventType": "START",
        "eventTime": started.isoformat(),
        "inputs": inputs,
        "outputs": [],
        "run": {"runId": row.id, "facets": run_facets},
    }
    if row.status == "complete":
        end = {
            **base,
            "eventType": "COMPLETE",
            "eventTime": ended.isoformat(),
            "inputs": inputs,
            "outputs": [_dataset(namespace, f"products/{row.id}")],
        }
    else:
        error = record.get("error", {})
        facets = {
            "errorMessage": {
                "_producer": producer,
                "_schemaURL": _ERROR,
                "message": row.error or "",
                "programmingLanguage": "python",
                "stackTrace": error.get("traceback", ""),
            }
        }
        end = {
            **base,
            "eventType": "FAIL",
            "eventTime": ended.isoformat(),
            "inputs": inputs,
            "outputs": [],
            "run": {"runId": row.id, "facets": facets},
        }
    return [start, end]


def _dataset(namespace: str, name: str) -> dict[str, Any]:
    return {"namespace": namespace, "name": name, "facets": {}}


def _namespace(archive: Home) -> str:
    """The archive as a dataset namespace: its folder on this host, or its catalog's URL."""
    if archive.path is not None:
        return f"labledger://{socket.gethostname()}{archive.path}"
    return f"labledger+{archive.catalog.display_url}"
