"""A server's archive, read through the same objects as a local one.

The local code runs on the client: :class:`RemoteCatalog` answers the catalog's questions (runs,
their raw files and channels, the machine's logs) from the server's JSON, as the same row
classes; the store is the server's objects over HTTP (fsspec), read by byte ranges, so a slice
fetches the compressed chunks it touches and nothing else, decoded here. Previews
(``points=``) are decimated and event queries run on the server; products, lineage and flags
come back as the local classes; ingest uploads, compute runs on the server. What the server
does not offer yet (staleness, good-run lists, configuration changes) fails with a message
that says so.
"""

from __future__ import annotations

import builtins
import functools
import json
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

import labledger.errors as errors
from labledger.display import html_table
from labledger.errors import (
    BadInput,
    InvalidArgument,
    LabledgerError,
    NotFound,
    NotRemote,
    Unreachable,
    for_status,
)
from labledger.ids import DEFAULT_PROJECT, batches
from labledger.interface import ArchiveAPI, ArchiveHome, read_here, signals_of
from labledger.lineage.canonical import encode
from labledger.lineage.graph import Lineage
from labledger.lineage.product import Product, Stale
from labledger.lineage.step import as_step
from labledger.quality.flags import Flag, flags_html, run_refs
from labledger.quality.goodruns import GoodRunList
from labledger.records import (
    OLDER_THAN_MINUTES,
    CalibrationRecord,
    ChannelRecord,
    ConfigChangeRecord,
    GoodRunListRecord,
    ProductInputRecord,
    ProductRecord,
    RunCatalog,
    RunRecord,
    RunStateRecord,
    SourceRecord,
    WithdrawalRecord,
)
from labledger.reports import CheckReport, IngestResult
from labledger.runs import Piece, Run, Runs, TimeWindow, signal_array
from labledger.store import FsspecStore
from labledger.summary import Summary
from labledger.wire import API, SUBSCRIBED, decode_array, record_from_json
from labledger.withdrawals import Withdrawal, Withdrawals

if TYPE_CHECKING:
    import xarray

    from labledger.client.live import RemoteAcquisition
    from labledger.lineage.compute import Reproduction
    from labledger.live import Cursor
    from labledger.machine.calibration import Calibrations
    from labledger.machine.configuration import ConfigHistory
    from labledger.machine.logs import Logs

_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
_IDS_A_REQUEST, _NUMBERS_A_REQUEST = 200, 1000  # run ids and numbers named in one request


class _Http:
    """One HTTP client to the server; its errors become labledger's, with the server's words."""

    def __init__(self, url: str, api_key: str | None, transport: httpx.BaseTransport | None):
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(
            base_url=self.url, headers=self.headers, timeout=_TIMEOUT, transport=transport
        )

    def get(self, path: str, **params: Any) -> httpx.Response:
        query = {k: v for k, v in params.items() if v is not None}
        return self._checked(lambda: self.client.get(f"{API}{path}", params=query))

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self._checked(lambda: self.client.post(f"{API}{path}", timeout=None, **kwargs))

    def _checked(self, send: Callable[[], httpx.Response]) -> httpx.Response:
        try:
            response = send()
        except httpx.HTTPError as exc:
            raise Unreachable(f"server {self.url} did not answer: {exc}") from None
        if response.status_code >= 400:
            self.raise_for(response)
        return response

    def raise_for(self, response: httpx.Response) -> None:
        """Raise the labledger error an error response stands for."""
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"detail": response.text[:300]}
            detail = body.get("detail")
            if not isinstance(detail, str):  # FastAPI's validation errors: a list
                detail = json.dumps(detail)[:300]
            kind = errors.named(body.get("error"), response.status_code)
            raise kind(f"{detail} (server {self.url}, HTTP {response.status_code})")

    def json(self, path: str, **params: Any) -> Any:
        return self.get(path, **params).json()


class RemoteCatalog:
    """What runs, withdrawals and the machine's logs ask of a catalog
    (:class:`labledger.records.RunCatalog`), answered by a server."""

    def __init__(self, http: _Http):
        self._http = http
        self.url = http.url

    @property
    def display_url(self) -> str:
        return self.url

    def close(self) -> None:
        self._http.client.close()

    def _runs(self, data: list[dict[str, Any]]) -> list[RunRecord]:
        return [record_from_json(RunRecord, d) for d in data]

    # -- runs ----------------------------------------------------------------------------------

    def newest(self, offset: int = 0, projects: Collection[str] | None = None) -> RunRecord | None:
        found = self._http.json("/runs/newest", offset=offset)
        return record_from_json(RunRecord, found) if found else None

    def by_number(self, number: int) -> RunRecord | None:
        try:
            return record_from_json(RunRecord, self._http.json(f"/runs/by-number/{int(number)}"))
        except NotFound:
            return None

    def by_id(self, run_id: str) -> RunRecord | None:
        try:
            return record_from_json(RunRecord, self._http.json(f"/runs/by-id/{run_id}"))
        except NotFound:
            return None

    def by_numbers(self, numbers: Iterable[int]) -> list[RunRecord]:
        found: list[RunRecord] = []
        for batch in batches((int(n) for n in numbers), _NUMBERS_A_REQUEST):
            text = ",".join(map(str, batch))
            found += self._runs(self._http.json("/runs/by-numbers", numbers=text))
        return found

    def last(self, n: int, projects: Collection[str] | None = None) -> list[RunRecord]:
        return self._runs(self._http.json("/runs/last", n=n))

    def count(self, state: str | None = "closed", projects: Collection[str] | None = None) -> int:
        return int(self._http.json("/runs/count", state=state or ""))

    def iter_runs(self, batch: int = 1000) -> Iterator[RunRecord]:
        after = None
        while True:
            page = self._http.json("/runs", after=after, limit=batch)
            yield from self._runs(page["runs"])
            if page["next"] is None:
                return
            after = page["next"]

    def search(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        source: str | None = None,
        state: str | None = "closed",
        where: dict[str, Any] | None = None,
        limit: int | None = None,
        quality: str | None = None,
        projects: Collection[str] | None = None,
        withdrawn: bool | None = False,
    ) -> list[RunRecord]:
        found = self._http.json(
            "/runs/search",
            since=since.isoformat() if since else None,
            until=until.isoformat() if until else None,
            source=source,
            state=state or "",
            where=json.dumps(where) if where else None,
            limit=limit,
            quality=quality,
            withdrawn={False: "false", True: "true", None: "any"}[withdrawn],
        )
        return self._runs(found)

    # -- withdrawn runs ------------------------------------------------------------------------

    def withdrawals(
        self, run_ids: Iterable[str] | None = None, *, active_only: bool = False
    ) -> list[tuple[WithdrawalRecord, WithdrawalRecord | None]]:
        batched = [None] if run_ids is None else list(batches(run_ids, _IDS_A_REQUEST))
        found: list[tuple[WithdrawalRecord, WithdrawalRecord | None]] = []
        for batch in batched:
            text = None if batch is None else ",".join(batch)
            for entry in self._http.json("/runs/withdrawals", runs=text, active_only=active_only):
                withdrawal = record_from_json(WithdrawalRecord, entry["withdrawal"])
                undone = entry["restored"]
                found.append(
                    (withdrawal, record_from_json(WithdrawalRecord, undone) if undone else None)
                )
        return sorted(found, key=lambda e: e[0].id)

    def append_withdrawal(self, row: WithdrawalRecord, number: int) -> WithdrawalRecord:
        """The server records it (a writer of the run's project), as its caller."""
        verb = "withdraw" if row.action == "withdraw" else "restore"
        done = self._http.post(f"/runs/{int(number)}/{verb}", json={"reason": row.reason}).json()
        made = {
            "withdraw": (done["id"], None, done["author"], done["created"]),
            "restore": (done["restored_by"], done["id"], done["restore_author"], done["restored"]),
        }[verb]
        row.id, row.target, row.author = made[0], made[1], made[2]
        row.created = datetime.fromisoformat(made[3])
        return row

    # -- what a run holds ----------------------------------------------------------------------

    # -- live runs -----------------------------------------------------------------------------

    def states(self, run_id: str) -> list[RunStateRecord]:
        found = self._http.json("/runs/states", runs=run_id).get(run_id, [])
        return [record_from_json(RunStateRecord, d) for d in found]

    def open_runs(self, projects: Collection[str] | None = None) -> list[RunRecord]:
        return self._runs(self._http.json("/runs/open"))

    def sources(self, run_id: str) -> list[SourceRecord]:
        return sorted(self.sources_of([run_id]), key=lambda s: s.position)

    def sources_of(self, run_ids: Iterable[str]) -> list[SourceRecord]:
        found: list[SourceRecord] = []
        for batch in batches(run_ids, _IDS_A_REQUEST):
            data = self._http.json("/runs/sources", runs=",".join(batch))
            found += [record_from_json(SourceRecord, d) for d in data]
        return found

    def channels(self, run_id: str) -> list[ChannelRecord]:
        return self.channels_of([run_id])[run_id]

    def channels_of(self, run_ids: Iterable[str]) -> dict[str, list[ChannelRecord]]:
        found: dict[str, list[ChannelRecord]] = {run_id: [] for run_id in run_ids}
        for batch in batches(found, _IDS_A_REQUEST):
            data = self._http.json("/runs/channels", runs=",".join(batch))
            for run_id, rows in data.items():
                found[run_id] = [record_from_json(ChannelRecord, d) for d in rows]
        return found

    # -- the machine's logs --------------------------------------------------------------------

    def machine_version(self) -> tuple[int, int]:
        config, calibration = self._http.json("/machine/version")
        return int(config), int(calibration)

    def config_changes(self) -> list[ConfigChangeRecord]:
        return [
            record_from_json(ConfigChangeRecord, d)
            for d in self._http.json("/machine/config-changes")
        ]

    def calibrations(self) -> list[CalibrationRecord]:
        return [
            record_from_json(CalibrationRecord, d) for d in self._http.json("/machine/calibrations")
        ]

    def append_config_change(self, row: ConfigChangeRecord, expected: int) -> ConfigChangeRecord:
        raise _not_yet("changing the configuration")

    def append_calibration(self, row: CalibrationRecord) -> CalibrationRecord:
        raise _not_yet("adding a calibration")


def _refusal(url: str) -> Callable[[Exception, str], Exception | None]:
    """How the server's store maps its errors: a refusal (401, 403, 413...) is raised as
    labledger's error; only a 404 stays a missing object (a Zarr chunk never written)."""

    def refusal(exc: Exception, what: str) -> Exception | None:
        import aiohttp

        if not isinstance(exc, aiohttp.ClientResponseError):
            return None
        return for_status(exc.status)(f"server {url}: HTTP {exc.status} {exc.message} for {what!r}")

    return refusal


class RemoteArchive:
    """An archive on a labledger server (see :func:`connect`): the calls of a local one
    (:class:`labledger.interface.ArchiveAPI`), over HTTP."""

    catalog: RemoteCatalog
    store: FsspecStore
    runs: Runs

    def __init__(self, http: _Http):
        self._http = http
        options = {"client_kwargs": {"headers": http.headers}}
        url = f"{http.url}{API}/store"
        self.catalog = RemoteCatalog(http)
        self.store = FsspecStore(url, storage_options=options, refusal=_refusal(url))
        self.runs = Runs(ArchiveHome(self))

    def __repr__(self) -> str:
        return f"<RemoteArchive {self._http.url}>"

    def _repr_html_(self) -> str:
        return html_table(self.summary().facts(), title=f"labledger archive {self._http.url}")

    def __enter__(self) -> RemoteArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection to the server."""
        self.catalog.close()

    # -- read here, from the server's records and stored chunks, as a local archive reads ------

    # the machine loads pint and pydantic: when first asked, as for a local archive

    @functools.cached_property
    def logs(self) -> Logs:
        from labledger.machine.logs import Logs

        return Logs(self.catalog)

    @functools.cached_property
    def config(self) -> ConfigHistory:
        """The server's configuration history (``at``, ``diff``, ``log``; changing it is
        not through a server yet)."""
        from labledger.machine.configuration import ConfigHistory

        return ConfigHistory(self.logs, self.runs)

    @functools.cached_property
    def calibrations(self) -> Calibrations:
        """The server's calibrations (``[name@N]``, ``list``, ``for_run``)."""
        from labledger.machine.calibration import Calibrations

        return Calibrations(self.logs, self.catalog)

    def signals(
        self,
        names: Sequence[str],
        *,
        runs: Sequence[Run] | None = None,
        calibration: dict[str, str] | None = None,
        time: TimeWindow | None = None,
        workers: int | None = None,
    ) -> xarray.Dataset:
        """Signals of many runs as one Dataset (see :meth:`Archive.signals`)."""
        return signals_of(self, names, runs, calibration=calibration, time=time, workers=workers)

    @functools.cached_property
    def withdrawals(self) -> Withdrawals:
        """The server's withdrawn runs (writing needs a writer's key)."""
        return Withdrawals(self.catalog)

    def withdraw(self, run: Any, *, reason: str) -> Withdrawal:
        return self.withdrawals.withdraw(run, reason=reason)

    def restore(self, run: Any, *, reason: str) -> Withdrawal:
        return self.withdrawals.restore(run, reason=reason)

    def flag(
        self,
        *,
        runs: Any = None,
        run: Any = None,
        start: float | None = None,
        stop: float | None = None,
        subsystem: str | None = None,
        severity: str | None = None,
        reason: str | None = None,
        supersedes: int | None = None,
    ) -> Flag:
        """Flag runs or intervals of runs on the server (see :meth:`Archive.flag`)."""
        return self.flags.add(
            runs=runs,
            run=run,
            start=start,
            stop=stop,
            subsystem=subsystem,
            severity=severity,
            reason=reason,
            supersedes=supersedes,
        )

    # -- what only the server can do here yet --------------------------------------------------

    def recompute(self, stale: bool = True, products: Sequence[Product] = ()) -> list[Product]:
        raise _not_yet("recompute")

    def reproduce(self, ref: str | Product) -> Reproduction:
        """Compute product ``ref`` again here, from what its record says it read (see
        :meth:`Archive.reproduce`)."""
        from labledger.lineage.compute import reproduce

        return reproduce(self, self.products[ref] if isinstance(ref, str) else ref)

    def openlineage(self, since: str | datetime | None = None) -> list[dict[str, Any]]:
        raise _not_yet("openlineage")

    # -- asked of the server -------------------------------------------------------------------

    def summary(self) -> Summary:
        """What the server's archive holds of the runs you may read (see
        :meth:`Archive.summary`), counted on the server."""
        return Summary.from_dict(self._http.json("/summary"))

    def ingest(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        run: int | None = None,
        format: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        project: str = DEFAULT_PROJECT,
        limits: Mapping[str, int | str] | None = None,
        origin: str | None = None,
    ) -> list[IngestResult]:
        """Upload raw files for the server to ingest (needs the write scope and a writer's
        role in ``project``); the server's own limits apply, and it records the upload as
        the files' origin."""
        if limits is not None:
            raise _not_yet("limits= (a server ingests under its own limits)")
        if origin is not None:
            raise _not_yet("origin= (a server records the upload as the origin)")
        files = [Path(p) for p in paths]
        for path in files:
            if not path.is_file():
                raise BadInput(f"{path}: not a readable file")
        form = {
            "project": project,
            **({"run": str(run)} if run is not None else {}),
            **({"format": format} if format else {}),
        }
        with ExitStack() as stack:
            parts = [("files", (p.name, stack.enter_context(p.open("rb")))) for p in files]
            answer = self._http.post("/ingest", data=form, files=parts)
        results = [
            IngestResult(
                number=r["run"],
                files=r["files"],
                already=r["status"] == "already ingested",
                run_id=r["id"],
                channels=r["channels"],
                data_bytes=r["data_bytes"],
                problems=r["problems"],
                numbered=r.get("numbered", ""),
            )
            for r in answer.json()
        ]
        if progress is not None:
            total = sum(p.stat().st_size for p in files)
            progress(total, total)
        return results

    def compute(
        self,
        step: Any,
        runs: Any = None,
        *,
        inputs: Any = None,
        where: str = "here",
        **params: Any,
    ) -> Product:
        """``where="server"``: run ``step`` next to the data, on the server (which must be able
        to import it: ``module:function``); the product comes back as a local one does."""
        if where != "server":
            raise InvalidArgument(
                f"where={where!r}: an archive on a server computes there, where='server' (the "
                "step must be importable on the server)"
            )
        step = as_step(step)
        step.check(params)
        body: dict[str, Any] = {"step": step.name, "params": encode(params)}
        if isinstance(runs, GoodRunList):  # its version is recorded with the product
            body["good_runs"] = runs.label
        elif isinstance(runs, (Run, int)):  # one run: one product, as locally
            body["runs"] = runs.number if isinstance(runs, Run) else int(runs)
        elif runs is not None:
            body["runs"] = [r.number if isinstance(r, Run) else int(r) for r in runs]
        if inputs is not None:
            body["inputs"] = inputs.id if isinstance(inputs, Product) else str(inputs)
        answer = self._http.post("/compute", json=body).json()
        return Product(
            self, record_from_json(ProductRecord, answer["product"]), reused=answer["reused"]
        )

    def events(
        self, level: int, *, runs: Sequence[int] | None = None, stream: str | None = None
    ) -> Any:
        """The events of a level, queried on the server (see :meth:`Archive.events`)."""
        return RemoteEventQuery(self._http, level, runs, stream)

    @functools.cached_property
    def flags(self) -> RemoteFlags:
        """The server's data-quality flags (``list``, ``active``, ``add``, ``withdraw``)."""
        return RemoteFlags(self._http)

    def lineage(self, ref: str | int, direction: str = "up", depth: int | None = None) -> Any:
        return Lineage.from_dict(
            self._http.json(f"/lineage/{ref}", direction=direction, depth=depth)
        )

    def good_runs(
        self,
        name: str,
        *,
        query: dict[str, Any] | None = None,
        require: Sequence[str] | str = (),
        version: int | None = None,
        reason: str = "",
    ) -> GoodRunList:
        """A recorded good-run list of the server (making one is not through a server yet)."""
        if query or require or reason:
            raise _not_yet("making a good-run list")
        data = self._http.json(f"/good-runs/{name}", version=version)
        return GoodRunList.from_row(record_from_json(GoodRunListRecord, data))

    def check(
        self,
        *,
        repair: bool = False,
        older_than: float = OLDER_THAN_MINUTES,
        progress: Callable[[int, int], None] | None = None,
    ) -> CheckReport:
        """The server checks its archive (see :meth:`Archive.check`); for an admin of every
        project. ``progress`` is not called: the server reports once, at the end."""
        answer = self._http.post("/check", params={"repair": repair, "older_than": older_than})
        return CheckReport.from_json(answer.json())

    def stale(self) -> list[Any]:
        """The server's stale products (of runs you may read), with the reasons."""
        found = self._http.json("/stale")
        return [
            Stale(Product(self, record_from_json(ProductRecord, s["product"])), s["reasons"])
            for s in found
        ]

    @functools.cached_property
    def products(self) -> RemoteProducts:
        """The server's products: ``la.products[id]``, ``la.products.search(...)``."""
        return RemoteProducts(self)

    def subscribe(
        self, kinds: Sequence[str] = ("run", "flag", "product"), *, timeout: float | None = None
    ) -> Iterator[dict[str, Any]]:
        """The server's notifications (server-sent events), as :meth:`Archive.subscribe`:
        it returns once the server has subscribed this client, so whatever is recorded from
        then on is heard. Iterate the result to its end, or close it, to close the stream."""
        params: dict[str, str | float] = {"kinds": ",".join(kinds)}
        if timeout:
            params["timeout"] = timeout
        forever = httpx.Timeout(None, connect=5.0)
        client = self._http.client
        request = client.build_request(
            "GET", f"{API}/notifications", params=params, timeout=forever
        )
        response = client.send(request, stream=True)
        try:
            if response.status_code >= 400:
                response.read()
                self._http.raise_for(response)
            lines = response.iter_lines()
            for line in lines:
                if line == SUBSCRIBED:
                    break
            return _events(response, lines)
        except BaseException:
            response.close()
            raise

    def acquisition(
        self,
        *,
        run: int,
        structure: str,
        metadata: Mapping[str, Any] | None = None,
        waive: Mapping[str, str] | None = None,
        lease: float = 30.0,
    ) -> RemoteAcquisition:
        """A run written live through the server (see :meth:`Archive.acquisition`): each call
        a request; the key must be a writer's."""
        from labledger.client.live import RemoteAcquisition  # loads the live layer (redis)

        return RemoteAcquisition(
            self._http, run=run, structure=structure, metadata=metadata, waive=waive, lease=lease
        )

    def _follow(
        self, run: Run, name: str, *, cursor: Cursor | None, calibration: str | None
    ) -> Iterator[Piece]:
        from labledger.client.live import follow  # loads the live layer (redis)

        return follow(self._http, run, name, cursor=cursor, calibration=calibration)

    def _signal(
        self,
        run: Run,
        name: str,
        *,
        calibration: str | None,
        time: TimeWindow | None,
        points: int | None,
    ) -> xarray.DataArray:
        if points is None:  # read here from the stored chunks, as a local archive does
            return read_here(self, run, name, calibration=calibration, time=time)
        start, stop = time if time is not None else (None, None)
        response = self._http.get(
            f"/runs/{run.number}/signals/{name}",
            points=points,
            start=start,
            stop=stop,
            calibration=calibration,
        )
        headers = response.headers
        first, second = (int(n) for n in headers["X-Lengths"].split(","))
        body = response.content
        t = np.frombuffer(body[:first], dtype="<f8")
        values = decode_array(body[first : first + second], headers)
        return signal_array(values, t, headers.get("X-Name", name), json.loads(headers["X-Attrs"]))


class RemoteFlags:
    """A server's data-quality flags, as :class:`labledger.quality.recorded.Flags`: ``list``,
    ``active``, ``add``, ``withdraw``, ``[id]``, ``version``."""

    def __init__(self, http: _Http):
        self._http = http

    def __repr__(self) -> str:
        return f"<Flags on {self._http.url}>"

    def _repr_html_(self) -> str:
        return flags_html(self.list(), title="active flags")

    @property
    def version(self) -> int:
        return int(self._http.json("/flags/version"))

    def list(
        self, *, run: Any = None, subsystem: str | None = None, include_inactive: bool = False
    ) -> list[Flag]:
        number = run.number if isinstance(run, Run) else run
        found = self._http.json(
            "/flags", run=number, subsystem=subsystem, include_inactive=include_inactive
        )
        return [Flag.from_dict(f) for f in found]

    def active(self, run_numbers: Any) -> dict[int, builtins.list[Flag]]:
        numbers = builtins.list(run_refs(run_numbers, "run_numbers", allow_empty=True))
        found: dict[int, builtins.list[Flag]] = {n: [] for n in numbers}
        for batch in batches(numbers, _NUMBERS_A_REQUEST):
            text = ",".join(map(str, batch))
            for n, flags in self._http.json("/flags/active", runs=text).items():
                found[int(n)] = [Flag.from_dict(f) for f in flags]
        return found

    def __getitem__(self, flag_id: int) -> Flag:
        return Flag.from_dict(self._http.json(f"/flags/{int(flag_id)}"))

    def add(
        self,
        *,
        runs: Any = None,
        run: Any = None,
        start: float | None = None,
        stop: float | None = None,
        subsystem: str | None = None,
        severity: str | None = None,
        reason: str | None = None,
        supersedes: int | None = None,
    ) -> Flag:
        given = {
            "start": start,
            "stop": stop,
            "subsystem": subsystem,
            "severity": severity,
            "reason": reason,
            "supersedes": supersedes,
        }
        body: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        if runs is not None:
            body["runs"] = builtins.list(run_refs(runs, "runs"))
        if run is not None:
            body["run"] = run.number if isinstance(run, Run) else run
        return Flag.from_dict(self._http.post("/flags", json=body).json())

    def withdraw(self, flag_id: int, *, reason: str) -> None:
        self._http.post(f"/flags/{int(flag_id)}/withdraw", json={"reason": reason})


class RemoteEventQuery:
    """``la.events(level=4)`` of a server: the same calls as
    :class:`labledger.events.EventQuery` (``with_parent``, ``to_arrow``, ``to_pandas``,
    ``count``); the query runs on the server, and only its rows travel (Arrow IPC)."""

    def __init__(
        self,
        http: _Http,
        level: int,
        runs: Sequence[int] | None,
        stream: str | None,
        ancestors: tuple[int, ...] = (),
    ) -> None:
        self._http, self.level, self.stream, self.ancestors = http, level, stream, ancestors
        self.runs = None if runs is None else [int(n) for n in runs]

    def __repr__(self) -> str:
        return f"RemoteEventQuery(level={self.level}, with_parent={list(self.ancestors)})"

    def with_parent(self, level: int) -> RemoteEventQuery:
        ancestors = tuple(sorted({*self.ancestors, int(level)}, reverse=True))
        query = RemoteEventQuery(self._http, self.level, self.runs, self.stream, ancestors)
        query.count()  # refused now, as locally, if the chain cannot give it
        return query

    def _params(self, **extra: Any) -> dict[str, Any]:
        return {
            "level": self.level,
            "stream": self.stream,
            "runs": None if self.runs is None else ",".join(map(str, self.runs)),
            "with_parent": ",".join(map(str, self.ancestors)) or None,
            **extra,
        }

    def to_arrow(self) -> Any:
        import pyarrow as pa

        body = self._http.get("/events", **self._params()).content
        return pa.ipc.open_stream(body).read_all()

    def to_pandas(self) -> Any:
        return self.to_arrow().to_pandas()

    def count(self) -> int:
        return int(self._http.json("/events", **self._params(count="true")))

    def __len__(self) -> int:
        return self.count()


class RemoteProducts:
    """A server's products, as :class:`labledger.lineage.products.Products`."""

    def __init__(self, archive: RemoteArchive):
        self._archive = archive

    def __repr__(self) -> str:
        return f"<Products of {self._archive}>"

    def __getitem__(self, ref: str) -> Product:
        """A product by id (or its first characters)."""
        answer = self._archive._http.json(f"/products/{ref}")
        return Product(self._archive, record_from_json(ProductRecord, answer["product"]))

    # -- what a product asks (labledger.lineage.product.ProductRecords) ------------------------

    def _details(self, product_id: str) -> dict[str, Any]:
        return self._archive._http.json(f"/products/{product_id}")

    def inputs_of(self, product_id: str) -> list[ProductInputRecord]:
        return [
            record_from_json(ProductInputRecord, d) for d in self._details(product_id)["inputs"]
        ]

    def parts_of(self, product_id: str) -> list[ProductRecord]:
        return [record_from_json(ProductRecord, d) for d in self._details(product_id)["parts"]]

    def reasons(self, row: ProductRecord) -> list[str]:
        return next((s.reasons for s in self._archive.stale() if s.product.id == row.id), [])

    def newest_in_slot(self, slot: str) -> ProductRecord | None:
        found = self._archive._http.json("/products", slot=slot, limit=1)
        return record_from_json(ProductRecord, found[0]) if found else None

    def search(
        self,
        *,
        step: Any = None,
        run: int | None = None,
        status: str | None = "complete",
        limit: int | None = None,
    ) -> list[Product]:
        """Products newest first: of a step, of a run, of a status (None: any)."""
        found = self._archive._http.json(
            "/products",
            step=getattr(step, "name", step),
            run=run,
            status=status or "any",
            limit=limit or 1000,
        )
        return [Product(self._archive, record_from_json(ProductRecord, d)) for d in found]


def connect(
    url: str, api_key: str | None = None, *, transport: httpx.BaseTransport | None = None
) -> RemoteArchive:
    """The archive a labledger server serves at ``url``, with the interface of a local one.

    >>> la = labledger.connect("http://127.0.0.1:8000", api_key="ll_...")  # doctest: +SKIP
    >>> la.runs[-1].signal("Langmuir_I")                                  # doctest: +SKIP
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidArgument(f"url={url!r}: a server's http:// or https:// address")
    http = _Http(url, api_key, transport)
    http.json("/info")  # fail now, with the server's words, if the key or address is wrong
    return RemoteArchive(http)


def _not_yet(what: str) -> LabledgerError:
    return NotRemote(f"{what}: not available through a server yet; open the archive locally")


def _events(response: httpx.Response, lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The events of a subscribed notification stream, until it ends; then it is closed."""
    try:
        for line in lines:
            if line.startswith("data: "):
                yield json.loads(line[6:])
    finally:
        response.close()


if TYPE_CHECKING:  # the type checker holds these to every call and signature of the interfaces
    _archive: type[ArchiveAPI] = RemoteArchive
    _catalog: type[RunCatalog] = RemoteCatalog
