"""Steps, products and provenance: reuse by key, failures recorded and never published,
lineage up and down, staleness from flags and calibrations, recompute, reproduce, events by
level, OpenLineage export. On a simulated campaign (SQLite, copied per test) and, for the
catalog queries, on PostgreSQL too."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

import labledger as ll
from labledger.catalog.schema import product_table
from labledger.errors import InvalidArgument, NotFound
from labledger.ids import short
from labledger.lineage.compute import StepFailed
from labledger.lineage.products import stale
from labledger.sim.analysis import bright_windows, density, windows
from tests.conftest import cli, snapshot

SHOTS = [1233, 1240, 1250]  # before and after the re-wiring (1240) and the recalibration (1250)


@ll.step(version="1")
def mean_current(run, *, window=(0.1, 0.3), scale=1.0):  # type: ignore[no-untyped-def]
    """Reads one signal: provenance must name it, its channel and calibration."""
    return float(run.signal("Langmuir_I", time=window).mean()) * scale


@ll.step(version="1")
def broken(run):  # type: ignore[no-untyped-def]
    run.signal("Langmuir_I")
    raise ValueError("the fit diverged")


@ll.step(version="1")
def fails_on_1240(run):  # type: ignore[no-untyped-def]
    if run.number == 1240:
        raise ValueError("no plasma")
    return run.number


@ll.step(version="1")
def unkeepable(run):  # type: ignore[no-untyped-def]
    return object()


@ll.step(version="1")
def from_density(run):  # type: ignore[no-untyped-def]
    """Reads another product through its run: that product is an input."""
    return run.product(density).value * 2


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from labledger.sim import build

    folder = tmp_path_factory.mktemp("lineage") / "archive"
    with ll.init(folder) as la:
        build(la, tmp_path_factory.mktemp("daq"), SHOTS)
    return folder


@pytest.fixture
def la(template: Path, tmp_path: Path) -> Iterator[ll.Archive]:
    """A private copy of the campaign: tests here add products and flags."""
    folder = tmp_path / "archive"
    shutil.copytree(template, folder)
    with ll.open(folder) as archive:
        yield archive


def _count(la: ll.Archive, status: str | None = None) -> int:
    query = select(func.count()).select_from(product_table)
    if status:
        query = query.where(product_table.c.status == status)
    with la.catalog.engine.connect() as conn:
        return int(conn.execute(query).scalar() or 0)


def test_a_product_records_where_it_came_from(la: ll.Archive) -> None:
    run = la.runs[1250]
    p = la.compute(mean_current, run, window=(0.1, 0.3))
    assert p.value == pytest.approx(float(run.signal("Langmuir_I", time=(0.1, 0.3)).mean()))
    record = p.provenance
    (read,) = record["inputs"]["runs"]
    assert read["number"] == 1250 and read["id"] == run.id
    assert read["sources"] == [{"name": s.name, "sha256": s.sha256, "key": s.key}
                               for s in run.sources]  # fmt: skip
    assert read["signals"] == ["Langmuir_I"]
    assert read["channels"] == ["PXI M6251/ai11"]  # re-wired at 1240
    assert read["calibrations"] == {"langmuir_i": "langmuir_i@2"}  # recalibrated at 1250
    assert read["config_version"] == run.config_version
    assert record["code"]["step"] == "tests.test_lineage:mean_current"
    assert record["code"]["version"] == "1" and record["code"]["source_sha256"]
    assert record["code"]["git"] is None or {"commit", "dirty"} <= set(record["code"]["git"])
    assert record["packages"]["numpy"] and record["packages"]["labledger"] == ll.__version__
    assert ll.lineage.canonical.decode(record["params"]) == {"window": (0.1, 0.3)}
    assert record["user"] and record["host"] and record["started"]
    assert record["duration_s"] > 0
    assert record["output"] == {"kind": "value", "hash": p.output_hash}


def test_the_same_call_is_reused_and_equal_parameters_are_equal(la: ll.Archive) -> None:
    first = la.compute(mean_current, la.runs[1233:1251], window=(0.1, 0.3))
    made = _count(la)
    again = la.compute(mean_current, [1233, 1240, 1250], window=[0.1, 0.3])  # list, not tuple
    assert again.id == first.id and again.reused and _count(la) == made
    # a parameter given is part of the call, even at its default value...
    same = la.compute(mean_current, [1233, 1240, 1250], window=(0.1, 0.3), scale=1)
    assert not same.reused and same.id != first.id
    # ...and 1 and 1.0 are one number
    alike = la.compute(mean_current, [1233, 1240, 1250], window=(0.1, 0.3), scale=1.0)
    assert alike.reused and alike.id == same.id
    other = la.compute(mean_current, [1233, 1240, 1250], window=(0.1, 0.2))
    assert other.id != first.id and not other.reused
    assert [p.value for p in other.parts] != [p.value for p in first.parts]
    # a new step version is a new product, the old one kept
    v2 = ll.step(version="2", name=mean_current.name)(mean_current.fn)
    try:
        newer = la.compute(v2, [1233], window=(0.1, 0.3))
        assert newer.step_version == "2" and la.products[first.parts[0].id].step_version == "1"
    finally:
        ll.step(version="1", name=mean_current.name)(mean_current.fn)  # restore for other tests


def test_parameters_that_cannot_be_canonical_are_refused_before_any_work(la: ll.Archive) -> None:
    before = snapshot(la)
    with pytest.raises(InvalidArgument, match="function"):
        la.compute(mean_current, [1233], scale=lambda x: x)
    with open(__file__) as handle, pytest.raises(InvalidArgument, match="open file"):
        la.compute(mean_current, [1233], scale=handle)
    with pytest.raises(InvalidArgument, match="is an input"):
        la.compute(mean_current, [1233], scale=la.runs[1233])
    with pytest.raises(InvalidArgument, match="unexpected keyword|got an unexpected"):
        la.compute(mean_current, [1233], windwo=(0, 1))
    with pytest.raises(InvalidArgument, match="not a step"):
        la.compute(lambda run: 1, [1233])
    with pytest.raises(NotFound):
        la.compute(mean_current, [99999])
    assert snapshot(la) == before


def test_a_failing_step_is_recorded_and_nothing_is_published(la: ll.Archive) -> None:
    with pytest.raises(StepFailed, match="the fit diverged") as raised:
        la.compute(broken, [1233, 1240])
    failure = la.products[raised.value.product_id]
    assert failure.status == "failed" and "ValueError: the fit diverged" in failure.error
    assert "Traceback" in failure._row.provenance["error"]["traceback"]
    assert _count(la, "complete") == 0 and _count(la, "failed") == 1  # stopped at the first
    assert not la.store.list("products")
    with pytest.raises(StepFailed, match="cannot be kept|no canonical value"):
        la.compute(unkeepable, [1233])
    assert _count(la, "complete") == 0 and not la.store.list("products")
    assert [p.step for p in la.products.search(status="failed")] == [unkeepable.name, broken.name]
    with pytest.raises(NotFound, match="failed"):
        _ = failure.value


def test_parts_made_before_a_failure_are_published_and_reused(la: ll.Archive) -> None:
    # parts are published a batch at a time: a failure must not lose the finished ones
    with pytest.raises(StepFailed, match="run 1240: ValueError: no plasma"):
        la.compute(fails_on_1240, [1233, 1240, 1250])
    assert _count(la, "complete") == 1 and _count(la, "failed") == 1
    [made] = la.products.search(step=fails_on_1240.name)
    assert made.run == 1233 and made.value == 1233
    assert la.compute(fails_on_1240, 1233).id == made.id  # reused, not computed again


def test_lineage_up_and_down(la: ll.Archive) -> None:
    p = la.compute(density, la.runs[1233:1251])
    up = la.lineage(p.id)
    kinds = sorted(n.kind for n in up.nodes.values())
    assert kinds == ["file"] * 3 + ["product"] * 4 + ["run"] * 3
    files = {n.attrs["sha256"] for n in up.nodes.values() if n.kind == "file"}
    assert files == {s.sha256 for r in la.runs[1233:1251] for s in r.sources}
    text = str(up)
    assert "density@2 run 1240" in text and "01240_Data.tdms" in text
    assert json.loads(json.dumps(up.to_dict()))["root"] == p.id
    assert up.to_dot().startswith("digraph") and f'"{p.id}"' in up.to_dot()
    shallow = la.lineage(p.id, depth=1)
    assert sorted(n.kind for n in shallow.nodes.values()) == ["product"] * 4
    down = la.lineage(1240, direction="down")
    assert {n.id for n in down.nodes.values() if n.kind == "product"} == {p.id, p.parts[1].id}
    with pytest.raises(NotFound, match="no product has the id"):
        la.lineage("0000000000-nope")
    with pytest.raises(InvalidArgument, match="direction"):
        la.lineage(p.id, direction="sideways")


def test_a_product_read_through_the_run_is_an_input(la: ll.Archive) -> None:
    with pytest.raises(StepFailed, match="no product of"):
        la.compute(from_density, [1233])
    d = la.compute(density, [1233])
    doubled = la.compute(from_density, la.runs[1233])
    assert doubled.value.m_as("m^-3") == pytest.approx(2 * d.parts[0].value.m_as("m^-3"))
    assert [p["id"] for p in doubled.provenance["inputs"]["products"]] == [d.parts[0].id]
    assert d.parts[0].id in la.lineage(doubled.id).nodes


def test_flags_make_products_stale_and_recompute_brings_them_back(la: ll.Archive) -> None:
    p = la.compute(density, la.runs[1233:1251])
    assert la.stale() == []
    la.flag(runs=[1240], subsystem="probe", severity="bad", reason="arc")
    stale = {s.product.id: s.reasons for s in la.stale()}
    assert set(stale) == {p.parts[1].id, p.id}
    assert "run 1240: flag 1 added since (probe, bad: arc" in stale[p.parts[1].id][0]
    assert "is stale" in stale[p.id][0]
    made = la.recompute(stale=True)
    assert [m.run for m in made] == [1240, None] and la.stale() == []
    assert made[0].id != p.parts[1].id and made[0].value == p.parts[1].value  # same data
    assert la.products[p.id].value  # the old one stays readable
    assert "superseded" in str(la.lineage(1240, direction="down"))
    again = la.compute(density, la.runs[1233:1251])
    assert again.id == made[1].id and again.reused


USER_STEPS = """
import labledger as ll


@ll.step(version="1")
def peak(run):
    return float(run.signal("Langmuir_I", time=(0.1, 0.3)).max())
"""


def test_recompute_finds_every_step_before_computing_any(
    la: ll.Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stale products whose steps live in a user's script: if that script cannot be imported
    where `recompute` runs, one error names its module and the products that need it, and no
    product is recomputed, not even those whose steps are at hand."""
    steps = importlib.import_module(
        "labledger.lineage.step"
    )  # the package's `step` is the decorator
    folder = tmp_path / "mylab"
    folder.mkdir()
    (folder / "lab_steps_of_units.py").write_text(USER_STEPS)
    monkeypatch.syspath_prepend(str(folder))
    from lab_steps_of_units import peak  # type: ignore[import-not-found]

    first = la.compute(density, 1233)  # the first in the list: its step is importable anywhere
    user = la.compute(peak, [1240, 1250])  # then two parts and their set from the script
    la.flag(runs=[1233, 1240, 1250], subsystem="probe", severity="bad", reason="arc")
    stale = [s.product.id for s in la.stale()]
    assert stale == [first.id, *(p.id for p in user.parts), user.id]
    # the script is not where the next session runs: not on its path, not defined in it
    monkeypatch.delitem(sys.modules, "lab_steps_of_units")
    monkeypatch.delitem(steps._DEFINED, peak.name)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(folder)])
    before = snapshot(la)
    with pytest.raises(NotFound) as error:
        la.recompute()
    message = str(error.value)
    assert "\n" not in message and message.startswith("cannot compute again: module ")
    assert "module lab_steps_of_units (No module named 'lab_steps_of_units')" in message
    for part in user.parts:
        assert f"{short(part.id)} (peak of run {part.run})" in message
    assert f"{short(user.id)} (peak)" in message and short(first.id) not in message
    assert "nothing was computed" in message
    assert snapshot(la) == before  # the first product was not recomputed
    assert [s.product.id for s in la.stale()] == stale
    with pytest.raises(NotFound, match=r"module lab_steps_of_units .* product"):
        la.reproduce(user.id)
    # the command says the same in one line, and exits 1 with nothing done
    made = cli("recompute", "-a", str(la.path))
    assert made.returncode == 1 and made.stderr.count("\n") == 1
    assert "lab_steps_of_units" in made.stderr and short(user.parts[0].id) in made.stderr
    assert snapshot(la) == before
    # where the script can be imported, the whole list is recomputed
    again = cli("recompute", "-a", str(la.path), env={"PYTHONPATH": str(folder)})
    assert again.returncode == 0 and "4 products made" in again.stdout
    assert la.stale() == []


def test_a_new_calibration_in_force_makes_products_stale(la: ll.Archive) -> None:
    p = la.compute(mean_current, 1250, window=(0.1, 0.3))  # one run in: one product out
    la.calibrations.add("langmuir_i", gain=-0.2, offset=0.0, unit="A", reason="re-measured",
                        from_run=1245)  # fmt: skip
    (found,) = la.stale()
    assert found.product.id == p.id
    assert found.reasons == [
        "run 1250: calibration langmuir_i@3 is now in force (read langmuir_i@2)"
    ]
    # reproducing reads what the record says was read: identical, whatever is in force now
    assert la.reproduce(p.id).identical
    (new,) = la.recompute(stale=True)
    assert new.provenance["inputs"]["runs"][0]["calibrations"] == {"langmuir_i": "langmuir_i@3"}
    old_gain = la.calibrations["langmuir_i@2"].params["gain"]
    assert new.value == pytest.approx(p.value * -0.2 / old_gain)


def test_reproduce_names_what_differs(la: ll.Archive) -> None:
    p = la.compute(density, [1233, 1250])
    report = la.reproduce(p.id)
    assert report.identical and all(r.identical for r in report.parts)
    part = p.parts[0]
    record = dict(part._row.provenance)
    record["packages"] = {**record["packages"], "numpy": "1.0.0"}
    record["output"] = {"kind": "value", "hash": "0" * 64}
    with la.catalog.engine.begin() as conn:
        conn.execute(update(product_table).where(product_table.c.id == part.id)
                     .values(provenance=record, output_hash="0" * 64))  # fmt: skip
    report = la.reproduce(part.id)
    assert not report.identical
    assert any(d.startswith("package numpy: recorded 1.0.0, now ") for d in report.differences)
    assert "DIFFERENT output" in str(report)


def test_events_by_level_with_their_parents(la: ll.Archive) -> None:
    l2 = la.compute(windows, la.runs[1233:1251])
    l4 = la.compute(bright_windows, inputs=l2)
    joined = la.events(level=4).with_parent(level=2).to_pandas()
    assert len(joined) == la.events(level=4).count() > 0
    assert (joined["light"] == joined["l2_light"]).all()  # each row met its own parent
    assert set(joined["run"]) == {1233, 1240, 1250}
    up = la.lineage(l4.parts[0].id)
    assert l2.parts[0].id in up.nodes
    assert l4.parts[0].provenance["inputs"]["products"][0]["id"] == l2.parts[0].id


@ll.step(version="1")
def orphans(level2):  # type: ignore[no-untyped-def]
    return ll.Events(
        {"event": [0, 1], "parent_event": [0, 10_000], "parent_stream": ["window", "window"]},
        level=4, parent_level=2, stream="x",
    )  # fmt: skip


@ll.step(version="1")
def no_events(run):  # type: ignore[no-untyped-def]
    return ll.Events({"event": []}, level=2, stream="none")


def test_a_step_may_find_no_events(la: ll.Archive) -> None:
    p = la.compute(no_events, 1233)
    assert p.kind == "events" and len(p.value) == 0
    assert la.events(level=2).count() == 0


def test_events_whose_parents_do_not_exist_are_refused(la: ll.Archive) -> None:
    l2 = la.compute(windows, [1233])
    with pytest.raises(StepFailed, match=r"parent \(run 1233, event 10000, .*1 of 2 parents"):
        la.compute(orphans, inputs=l2)
    assert la.events(level=4).count() == 0
    assert not la.store.list("events/level=4")


@ll.step(version="1")
def other_windows(run):  # type: ignore[no-untyped-def]
    """Level-2 events in the stream the windows step uses already."""
    return ll.Events({"event": [0, 1]}, level=2, stream="window")


def test_events_of_a_stream_another_step_made_are_refused(la: ll.Archive) -> None:
    first = la.compute(windows, [1233])
    with pytest.raises(StepFailed, match=r"run 1233 has level-2 events of stream 'window' alre"):
        la.compute(other_windows, [1233])
    assert not la.products.search(step=other_windows)  # recorded as failed, nothing published
    assert len(la.store.list("events/level=2/run=1233")) == 1
    assert la.events(level=2).count() == first.value[1233].num_rows > 0
    # the same step with other parameters is another product: its keys would clash too
    with pytest.raises(StepFailed, match="give these another stream"):
        la.compute(windows, [1233], width=0.02)


def test_openlineage_events(la: ll.Archive) -> None:
    la.compute(density, [1233])
    with pytest.raises(StepFailed):
        la.compute(broken, [1240])
    events = la.openlineage()
    assert [e["eventType"] for e in events] == ["START", "COMPLETE", "START", "COMPLETE",
                                                "START", "FAIL"]  # fmt: skip
    for e in events:
        assert {"eventTime", "producer", "schemaURL", "run", "job"} <= set(e)
        assert e["job"]["name"] and e["run"]["runId"]
    assert events[0]["inputs"] == [{"namespace": events[0]["inputs"][0]["namespace"],
                                    "name": "runs/1233", "facets": {}}]  # fmt: skip
    assert events[1]["outputs"][0]["name"].startswith("products/")
    error = events[-1]["run"]["facets"]["errorMessage"]
    assert "the fit diverged" in error["message"] and error["programmingLanguage"] == "python"
    assert la.openlineage(since="2999-01-01") == []


def test_the_commands(la: ll.Archive, tmp_path: Path) -> None:
    p = la.compute(density, la.runs[1233:1251])
    la.compute(bright_windows, inputs=la.compute(windows, [1233]))
    folder = str(la.path)
    tree = cli("lineage", short(p.id), "-a", folder)
    assert tree.returncode == 0 and "01233_Data.tdms" in tree.stdout
    dot = cli("lineage", p.id, "--format", "dot", "-a", folder)
    assert dot.stdout.startswith("digraph")
    graph = json.loads(cli("lineage", "1233", "--down", "--format", "json", "-a", folder).stdout)
    assert graph["root"] == la.runs[1233].id
    assert cli("stale", "-a", folder).stdout.startswith("Nothing is stale")
    la.flag(runs=[1233], subsystem="power", severity="bad", reason="outage")
    listed = json.loads(cli("stale", "--json", "-a", folder).stdout)
    assert {s["id"] for s in listed} >= {p.id, p.parts[0].id}
    made = cli("recompute", "-a", folder)
    assert made.returncode == 0 and "products made" in made.stdout
    same = cli("reproduce", p.parts[1].id, "-a", folder)
    assert same.returncode == 0 and "identical output" in same.stdout
    rows = json.loads(cli("products", "--json", "-a", folder).stdout)
    assert rows and {"id", "step", "run", "kind"} <= set(rows[0])
    events = json.loads(cli("events", "--level", "4", "--with-parent", "2", "--json",
                            "-a", folder).stdout)  # fmt: skip
    assert events and "l2_light" in events[0]
    out = tmp_path / "ol.jsonl"
    assert cli("openlineage", "-o", str(out), "-a", folder).returncode == 0
    assert all(json.loads(line)["eventType"] for line in out.read_text().splitlines())
    unknown = cli("lineage", "ffffffff-ffff", "-a", folder)
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1
    assert "no product has the id" in unknown.stderr
    bad = cli("lineage", p.id, "--format", "png", "-a", folder)
    assert bad.returncode == 1 and "--format" in bad.stderr


def test_products_and_lineage_on_both_catalogs(archive: ll.Archive, tmp_path: Path) -> None:
    """The catalog's queries (partial unique index, recursive lineage) on SQLite and PostgreSQL."""
    from labledger.sim import build

    build(archive, tmp_path / "daq", [1233, 1250])
    p = archive.compute(mean_current, [1233, 1250])
    assert archive.compute(mean_current, [1233, 1250]).id == p.id
    up = archive.lineage(p.id)
    assert sorted(n.kind for n in up.nodes.values()) == ["file"] * 2 + ["product"] * 3 + ["run"] * 2
    assert set(archive.lineage(1233, direction="down").nodes) == {
        archive.runs[1233].id,
        p.id,
        p.parts[0].id,
    }
    archive.flag(runs=[1250], subsystem="probe", severity="bad", reason="arc")
    assert {s.product.id for s in archive.stale()} == {p.id, p.parts[1].id}
    archive.recompute()
    assert archive.stale() == []


# -- staleness, reason by reason (issue 13: each reason has a test that names it exactly) --------


@ll.step(version="1")
def coil_and_probe(run):  # type: ignore[no-untyped-def]
    """Reads the coil current under a version asked for, the probe current under the one in
    force."""
    coil = float(run.signal("Coil_I", calibration="coil_i@1", time=(0.1, 0.3)).mean())
    return coil + float(run.signal("Langmuir_I", time=(0.1, 0.3)).mean())


@ll.step(version="1")
def probe_summary(run):  # type: ignore[no-untyped-def]
    """A dict of single values: one row of a DataFrame per run."""
    current = run.signal("Langmuir_I", time=(0.1, 0.3))
    return {"mean": float(current.mean()), "peak": float(current.max())}


@ll.step(version="1")
def against_reference(run, archive):  # type: ignore[no-untyped-def]
    """Reads a second run, the reference shot 1233 of ``archive``, beside its own: both are
    its inputs."""
    window = (0.1, 0.3)
    own = float(run.signal("Langmuir_I", time=window).mean())
    with ll.open(archive) as la:
        return own - float(la.runs[1233].signal("Langmuir_I", time=window).mean())


def test_every_run_a_product_read_is_checked(la: ll.Archive) -> None:
    p = la.compute(against_reference, 1250, archive=str(la.path))
    assert sorted(r["number"] for r in p.provenance["inputs"]["runs"]) == [1233, 1250]
    arc = la.flag(runs=[1233, 1250], subsystem="probe", severity="bad", reason="arc")
    assert sorted(p.stale) == [
        f"run {n}: flag {arc.id} added since (probe, bad: arc; by {arc.author})"
        for n in (1233, 1250)
    ]


def test_a_calibration_asked_for_by_version_does_not_make_a_product_stale(la: ll.Archive) -> None:
    p = la.compute(coil_and_probe, 1250)
    (read,) = p.provenance["inputs"]["runs"]
    assert read["calibrations"] == {"coil_i": "coil_i@1", "langmuir_i": "langmuir_i@2"}
    assert read["explicit"] == ["coil_i"]
    la.calibrations.add("coil_i", gain=50.0, unit="A", reason="re-measured", from_run=1245)
    assert la.stale() == []  # coil_i@2 is in force now, but coil_i@1 was asked for
    # the default one read beside it (after it, by name) still counts
    la.calibrations.add("langmuir_i", gain=-0.2, unit="A", reason="re-measured", from_run=1245)
    assert [s.reasons for s in la.stale()] == [
        ["run 1250: calibration langmuir_i@3 is now in force (read langmuir_i@2)"]
    ]
    # a run before the new versions: nothing else is in force for it
    assert la.compute(coil_and_probe, 1233).stale == []


def test_a_flag_added_or_withdrawn_since_is_named_with_its_reason(la: ll.Archive) -> None:
    noisy = la.flag(runs=[1233], subsystem="probe", severity="warning", reason="noisy")
    p = la.compute(mean_current, 1233)
    assert p.provenance["inputs"]["runs"][0]["flags"] == [noisy.id]
    assert la.stale() == [] and p.stale == []
    la.flags.withdraw(noisy.id, reason="it was on run 1234")
    assert p.stale == [f"run 1233: flag {noisy.id} withdrawn or superseded since"]
    outage = la.flag(runs=[1233, 1240], subsystem="power", severity="bad", reason="outage")
    (found,) = la.stale()
    assert found.product == p and found.reasons == [
        f"run 1233: flag {outage.id} added since (power, bad: outage; by {outage.author})",
        f"run 1233: flag {noisy.id} withdrawn or superseded since",
    ]
    assert found.to_dict()["reasons"] == found.reasons and found.to_dict()["id"] == p.id
    assert found.product.value == p.value  # the stale product reads as any other
    # computed now, it records the flags in force and supersedes the old one, which, asked
    # about, is still stale
    again = la.compute(mean_current, 1233)
    assert not again.reused and again.provenance["inputs"]["runs"][0]["flags"] == [outage.id]
    assert la.stale() == [] and len(p.stale) == 2


def test_a_newer_good_run_list_makes_what_used_the_older_one_stale(la: ll.Archive) -> None:
    v1 = la.good_runs("argon", query={"gas": "Ar"}, reason="all argon shots")
    p = la.compute(mean_current, v1)
    used = {"name": "argon", "version": 1, "hash": v1.hash}
    assert p.provenance["inputs"]["good_runs"] == used and la.stale() == []
    arc = la.flag(runs=[1240], subsystem="probe", severity="bad", reason="arc")
    v2 = la.good_runs("argon", query={"gas": "Ar"})
    assert v2.label == "argon@2" and v2.runs == [1233, 1250]
    over_v2 = la.compute(mean_current, v2)
    stale = {s.product.id: s.reasons for s in la.stale()}
    part = p.parts[1]
    assert set(stale) == {p.id, part.id}  # not the set over v2, nor the parts it shares
    assert stale[p.id] == [
        f"input {short(part.id)} (mean_current of run 1240) is stale: run 1240: flag {arc.id} "
        f"added since (probe, bad: arc; by {arc.author})",
        "good-run list argon@2 supersedes argon@1",
    ]
    assert over_v2.stale == []
    # a list chosen by its version when a newer one exists: stale from the start
    old = la.compute(mean_current, la.good_runs("argon", version=1))
    assert old.stale == ["good-run list argon@2 supersedes argon@1"]


def test_an_input_product_recomputed_or_missing_makes_its_reader_stale(la: ll.Archive) -> None:
    d = la.compute(density, 1233)
    doubled = la.compute(from_density, 1233)
    assert doubled.stale == []
    arc = la.flag(runs=[1233], subsystem="probe", severity="bad", reason="arc")
    flagged = f"run 1233: flag {arc.id} added since (probe, bad: arc; by {arc.author})"
    (made,) = la.recompute(stale=False, products=[d])  # the density only
    assert made.id != d.id and made.stale == []
    assert doubled.stale == [
        flagged,
        f"input {short(d.id)} (density of run 1233) was recomputed as {short(made.id)}",
    ]
    # its record names a product the catalog does not have
    record = dict(doubled._row.provenance)
    gone = "0" * 8 + d.id[8:]
    record["inputs"] = {**record["inputs"], "products": [{"id": gone}]}
    with la.catalog.engine.begin() as conn:
        conn.execute(update(product_table).where(product_table.c.id == doubled.id)
                     .values(provenance=record))  # fmt: skip
    assert la.products[doubled.id].stale == [
        flagged,
        f"input product {gone} is missing from the catalog",
    ]


def test_a_stale_input_product_is_named_with_its_first_reason(la: ll.Archive) -> None:
    d = la.compute(density, 1233)
    doubled = la.compute(from_density, 1233)
    arc = la.flag(runs=[1233], subsystem="probe", severity="bad", reason="arc")
    flagged = f"run 1233: flag {arc.id} added since (probe, bad: arc; by {arc.author})"
    assert d.stale == [flagged]
    assert doubled.stale == [
        flagged,
        f"input {short(d.id)} (density of run 1233) is stale: {flagged}",
    ]
    # only the products asked about
    (only,) = stale(la, [d._row])
    assert only.product == d and only.reasons == [flagged]
    assert stale(la, []) == []


# -- products as a user sees them ----------------------------------------------------------------


def test_a_product_and_a_set_show_what_they_are(la: ll.Archive) -> None:
    step = "tests.test_lineage:mean_current"
    p = la.compute(mean_current, [1233, 1240])
    first, second = p.parts
    expected = {
        n: float(la.runs[n].signal("Langmuir_I", time=(0.1, 0.3)).mean()) for n in (1233, 1240)
    }
    assert repr(first) == f"<Product {short(first.id)} {step}@1 run 1233 value>"
    assert repr(p) == f"<Product {short(p.id)} {step}@1 2 parts set>"
    assert (
        repr(la.compute(mean_current, [1233, 1240]))
        == f"<Product {short(p.id)} {step}@1 2 parts set, reused>"
    )
    assert first.to_dict() == {
        "id": first.id, "key": first.key, "step": step, "step_version": "1", "status": "complete",
        "kind": "value", "run": 1233, "level": None, "created": first.created.isoformat(),
        "author": first.author, "output_hash": first.output_hash, "error": None, "reused": False,
    }  # fmt: skip
    assert p.to_dict()["kind"] == "set" and p.to_dict()["run"] is None
    html = first._repr_html_()
    assert html.startswith(f"<table><caption>product {first.id}</caption><tbody>")
    for shown in (f"<tr><td>step</td><td>{step}@1</td></tr>", "<tr><td>kind</td><td>value</td>",
                  "<tr><td>status</td><td>complete</td>", "<tr><td>run</td><td>1233</td>",
                  f"<tr><td>made (UTC)</td><td>{first.created:%Y-%m-%d %H:%M:%S}</td>",
                  f"<tr><td>by</td><td>{first.author}</td>",
                  f"<tr><td>output sha256</td><td>{first.output_hash}</td>"):  # fmt: skip
        assert shown in html
    assert "level" not in html and "error" not in html and "reused" not in html  # None: left out
    events = la.compute(windows, 1233)  # one run: the product itself, not a set
    assert events.kind == "events" and events.level == 2 and events.to_dict()["level"] == 2
    assert "<tr><td>level</td><td>2</td></tr>" in events._repr_html_()
    reused_html = la.compute(mean_current, 1233)._repr_html_()
    assert "<tr><td>reused</td><td>yes</td></tr>" in reused_html
    assert "<tr><td>parts</td><td>2</td></tr>" in p._repr_html_()
    # values, parts, items by run, tables
    assert first.value == pytest.approx(expected[1233]) and first.parts == []
    assert p.value == pytest.approx(expected) and p[1240] == pytest.approx(expected[1240])
    assert len(p) == 2 and len(first) == 1 and list(first) == [first] and list(p) == [first, second]
    with pytest.raises(NotFound) as missing:
        _ = p[1250]
    assert str(missing.value) == f"product {short(p.id)} has no part for run 1250"
    series = p.to_pandas()
    assert series.name == "mean_current" and series.index.name == "run"
    assert series.to_dict() == pytest.approx(expected)
    assert first.to_pandas().to_dict() == pytest.approx({1233: expected[1233]})
    # what it read: a part its run, a set its parts (and, in its record, their runs)
    assert first.inputs == [{"kind": "run", "id": la.runs[1233].id, "run": 1233}]
    assert p.inputs == [{"kind": "product", "id": first.id, "run": 1233},
                        {"kind": "product", "id": second.id, "run": 1240}]  # fmt: skip
    assert [r["number"] for r in p.provenance["inputs"]["runs"]] == [1233, 1240]
    assert "runs" not in p._row.provenance["inputs"]  # a set's own row keeps only its parts
    # equal by id, whichever way it was found
    assert la.products[first.id] == first and hash(la.products[first.id]) == hash(first)
    assert first != second and first != first.id and len({first, la.products[first.id]}) == 1


def test_a_set_of_dicts_is_a_table_by_run(la: ll.Archive) -> None:
    p = la.compute(probe_summary, [1233, 1250])
    table = p.to_pandas()
    assert table.index.name == "run" and list(table.index) == [1233, 1250]
    assert list(table.columns) == ["mean", "peak"]
    current = la.runs[1250].signal("Langmuir_I", time=(0.1, 0.3))
    assert table.loc[1250, "peak"] == pytest.approx(float(current.max()))
    assert p.parts[0].to_pandas().index.tolist() == [1233]


def test_a_failed_product_has_no_value(la: ll.Archive) -> None:
    with pytest.raises(StepFailed) as raised:
        la.compute(broken, [1233])
    failed = la.products[raised.value.product_id]
    with pytest.raises(NotFound) as caught:
        _ = failed.value
    assert str(caught.value) == (
        f"product {failed.id} failed and has no value: ValueError: the fit diverged"
    )
    assert failed.to_dict()["error"] == "ValueError: the fit diverged"
    assert failed.stale == []  # its record has the run, not what was read: nothing changed since
    assert "<tr><td>error</td><td>ValueError: the fit diverged</td></tr>" in failed._repr_html_()


def test_products_are_found_by_id_prefix_step_run_and_status(la: ll.Archive) -> None:
    from tests.test_server_leaks import _twin

    p = la.compute(mean_current, [1233, 1240])
    first, second = p.parts
    with pytest.raises(StepFailed):
        la.compute(broken, [1250])
    d = la.compute(density, 1250)
    assert repr(la.products) == f"<Products of {la}>"
    # the current ones, oldest first; searches newest first, complete ones unless asked
    assert [q.id for q in la.products] == [first.id, second.id, p.id, d.id]
    assert [q.value for q in la.products][:2] == [first.value, second.value]
    assert [q.id for q in la.products.search(step=mean_current)] == [p.id, second.id, first.id]
    assert [q.id for q in la.products.search(step=density.name)] == [d.id]
    (found,) = la.products.search(step=density)
    assert found.value == d.value
    assert [q.id for q in la.products.search(step=mean_current.name, run=1240)] == [second.id]
    assert [q.id for q in la.products.search(step=mean_current, limit=1)] == [p.id]
    assert [q.step for q in la.products.search(run=1250, status=None)] == [
        density.name,
        broken.name,
    ]
    assert [q.step for q in la.products.search(status="failed")] == [broken.name]
    assert la.products.search(run=1250) == [d]
    # the whole id, or its first 8 characters or more if they name one product
    twin = _twin(la, first.id, d.id, 12)
    assert la.products[first.id] == first
    assert la.products[first.id[:13]] == first and la.products[twin[:13]].id == twin
    with pytest.raises(NotFound) as several:
        _ = la.products[first.id[:12]]
    assert str(several.value) == (
        f"{first.id[:12]!r} begins the ids of several products; give more of it"
    )
    lone = _twin(la, "f" * 8 + first.id[8:], first.id, 7)  # an id that begins fffffff0
    assert la.products["fffffff0"].id == lone and la.products[lone[:9]].id == lone
    for ref in (first.id[:7], "fffffff", "f" * 8):  # too short to be a prefix; of none
        with pytest.raises(NotFound) as unknown:
            _ = la.products[ref]
        assert str(unknown.value) == (
            f"no product has the id {ref!r} (list them with `labledger products`)"
        )
    with pytest.raises(NotFound) as typed:
        _ = la.products[1233]  # type: ignore[index]
    assert str(typed.value) == "a product is named by its id (text), not by a int"


def test_a_run_without_the_product_says_which_call_makes_it(la: ll.Archive) -> None:
    run = la.runs[-1]
    with pytest.raises(NotFound) as caught:
        run.product(mean_current, window=(0.2, 0.4))
    message = str(caught.value)
    # the step's function by the name a user types, with the run to compute it for
    assert f"la.compute(mean_current, runs={run.number}" in message, message
    assert "\n" not in message
