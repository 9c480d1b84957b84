"""Event tables at processing levels: keys, refusals, the parent check, and queries joining
each event to its ancestor, on real Parquet files (a folder, and S3 on moto's server)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labledger.errors import InvalidArgument, NotFound
from labledger.events import (
    EventFile,
    EventQuery,
    Events,
    check_parents,
    event_key,
    read_events,
    write_events,
)
from labledger.store import FsspecStore, Store, open_store


class Recorded:
    """What the catalog does for these tests: the current event files of each level."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.files: dict[int, list[EventFile]] = {}

    def put(self, events: Events, run: int, product: str | None = None) -> pa.Table:
        product = product or f"p{events.level}-{run}"
        table = events.table(run)
        if events.parent_level is not None:
            check_parents(table, self.of(events.parent_level, run), self.store)
        key = event_key(events.level, run, product)
        write_events(self.store, key, table)
        self.files.setdefault(events.level, []).append(
            EventFile(key, run, events.level, events.parent_level, product)
        )
        return table

    def of(self, level: int, run: int) -> list[EventFile]:
        return [f for f in self.files.get(level, []) if f.run == run]

    def __call__(self, level: int) -> list[EventFile]:
        return list(self.files.get(level, []))

    def query(self, level: int, **kwargs: object) -> EventQuery:
        return EventQuery(self.store, self, level, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def recorded(tmp_path: Path) -> Recorded:
    return Recorded(open_store(tmp_path / "store"))


def level2(run: int, n: int = 40) -> Events:
    """n Level-2 events: event i // 2 in streams 'hits' and 'veto', energy unique per row."""
    i = np.arange(n)
    return Events(
        {
            "event": i // 2,
            "stream": np.where(i % 2, "veto", "hits"),
            "energy": run * 1000.0 + i,
            "nhits": (i * 3).astype(np.int32),
        },
        level=2,
    )


def level3(run: int, rows: list[int], n2: int = 40) -> Events:
    """Level-3 events descending from Level-2 rows ``rows``: event numbers 1000+."""
    i = np.array(rows)
    return Events(
        {
            "event": 1000 + np.arange(len(i)),
            "stream": np.where(i % 2, "veto", "hits"),
            "parent_event": i // 2,
            "track": np.arange(len(i)) * 0.5,
        },
        level=3,
        parent_level=2,
    )


# -- normalisation -----------------------------------------------------------------------------


def test_a_table_is_normalised_with_its_defaults() -> None:
    events = Events({"energy": [1.5, 2.5, 3.5], "event": np.array([7, 8, 9], np.uint8)}, level=2,
                    stream="hits")  # fmt: skip
    assert len(events) == 3 and events.level == 2 and events.parent_level is None
    table = events.table(1234)
    assert table.column_names == ["run", "event", "sub_event", "stream", "energy"]
    assert [str(t) for t in table.schema.types] == ["int64", "int64", "int32", "string", "double"]
    assert table.column("run").to_pylist() == [1234] * 3
    assert table.column("event").to_pylist() == [7, 8, 9]
    assert table.column("sub_event").to_pylist() == [0, 0, 0]
    assert table.column("stream").to_pylist() == ["hits"] * 3
    assert table.schema.metadata == {b"level": b"2"}


def test_parent_columns_default_to_sub_event_0_and_the_same_stream() -> None:
    events = Events(
        {"event": [1, 2], "stream": ["a", "b"], "parent_event": [10, 20], "score": [0.1, 0.2]},
        level=4,
        parent_level=2,
    )
    table = events.table(5)
    assert table.column_names == [
        "run", "event", "sub_event", "stream",
        "parent_event", "parent_sub_event", "parent_stream", "score",
    ]  # fmt: skip
    assert table.column("parent_sub_event").type == pa.int32()
    assert table.column("parent_sub_event").to_pylist() == [0, 0]
    assert table.column("parent_stream").to_pylist() == ["a", "b"]
    assert table.schema.metadata == {b"level": b"4", b"parent_level": b"2"}


def test_a_dataframe_a_pyarrow_table_and_a_run_column_are_accepted() -> None:
    frame = pd.DataFrame({"event": [3, 4], "sub_event": [1, 2], "x": ["u", "v"]}).set_index(
        "event"
    )  # a named index is a column again
    table = Events(frame, level=1, stream="s").table(9)
    assert table.column("event").to_pylist() == [3, 4]
    assert table.column("sub_event").to_pylist() == [1, 2]
    assert table.column("x").to_pylist() == ["u", "v"]
    arrow = pa.table(
        {
            "run": pa.array([9, 9], pa.int16()),
            "event": [1, 2],
            "stream": pa.array(["a", "b"]).dictionary_encode(),
            "parent_event": [1, 1],
            "parent_stream": ["z", "z"],
        }
    )
    table = Events(arrow, level=3, parent_level=1).table(9)
    assert table.column("run").type == pa.int64()
    assert table.column("stream").type == pa.string()
    assert table.column("parent_stream").to_pylist() == ["z", "z"]
    assert len(Events({"event": [], "stream": []}, level=0).table(1)) == 0


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "kwargs", "message"),
    [
        ({"event": [1]}, {"level": 10, "stream": "s"}, r"level=10: .* 0 to 9"),
        ({"event": [1]}, {"level": -1, "stream": "s"}, r"level=-1"),
        ({"event": [1]}, {"level": "4", "stream": "s"}, r"level='4'"),
        ({"event": [1]}, {"level": True, "stream": "s"}, r"level=True"),
        ({"event": [1]}, {"level": 2, "parent_level": 2, "stream": "s"}, r"not below level=2"),
        ({"event": [1]}, {"level": 2, "parent_level": 3, "stream": "s"}, r"parent_level=3"),
        ({"energy": [1.0]}, {"level": 2, "stream": "s"}, r"no 'event' column .*energy"),
        ({"event": [1.0, 2.0]}, {"level": 2, "stream": "s"}, r"'event' holds double"),
        ({"event": ["1"]}, {"level": 2, "stream": "s"}, r"'event' holds string, not integers"),
        ({"event": [1, None, 3]}, {"level": 2, "stream": "s"}, r"'event' is missing at row 1"),
        ({"event": [1, 2], "stream": ["a", None]}, {"level": 2}, r"'stream' is missing at row 1"),
        ({"event": [1], "stream": [5]}, {"level": 2}, r"'stream' holds int64, not text"),
        ({"event": [1]}, {"level": 2}, r"no stream: add a 'stream' column or pass stream="),
        ({"event": [1], "stream": ["a"]}, {"level": 2, "stream": "a"}, r"give the stream one"),
        ({"event": [1], "sub_event": [2**40]}, {"level": 2, "stream": "s"},
         r"'sub_event': row 0 holds 1099511627776, outside int32"),
        ({"event": [1], "parent_event": [1]}, {"level": 2, "stream": "s"},
         r"'parent_event' names a parent, but these events have no parent level"),
        ({"event": [1]}, {"level": 4, "parent_level": 2, "stream": "s"},
         r"no 'parent_event' column"),
        ({"event": [1], "l2_energy": [1.0]}, {"level": 4, "stream": "s"},
         r"'l2_energy': names starting 'l2_' are reserved .* 'level2_energy'"),
        ({"Event": [1]}, {"level": 2, "stream": "s"}, r"'Event': key columns are lower case"),
        ({"event": [1], "x": [1], "X": [2]}, {"level": 2, "stream": "s"},
         r"'x' and 'X' differ only in case"),
        ({"event": [1, 2], "x": [1]}, {"level": 2, "stream": "s"},
         r"'event' has 2 rows, 'x' has 1"),
        ([1, 2, 3], {"level": 2, "stream": "s"}, r"a pandas DataFrame, .* not list"),
        ({"event": [1], "stream": "s"}, {"level": 2}, r"'stream' is one value, 's'; .* stream="),
        ({"event": [1]}, {"level": 2, "stream": ""}, r"stream='': give a stream name"),
    ],
)  # fmt: skip
def test_bad_event_tables_are_refused_in_one_line(
    table: object, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message) as caught:
        Events(table, **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


def test_pandas_missing_values_in_a_key_are_named() -> None:
    frame = pd.DataFrame({"event": pd.array([1, 2, None, 4], dtype="Int64"), "stream": "s"})
    with pytest.raises(InvalidArgument, match=r"'event' is missing at row 2"):
        Events(frame, level=2)


def test_a_repeated_key_is_named_with_both_rows() -> None:
    events = Events(
        {"event": [1, 2, 3, 2, 1], "sub_event": [0, 0, 0, 0, 0], "stream": ["a"] * 5},
        level=2,
    )
    with pytest.raises(
        InvalidArgument,
        match=r"level-2 events of run 77: event \(run 77, event 2, sub-event 0, stream 'a'\) "
        r"appears more than once \(rows 1 and 3\)",
    ):
        events.table(77)
    # the same event number in another stream or sub-event is another key
    Events({"event": [1, 1, 1], "sub_event": [0, 1, 0], "stream": ["a", "a", "b"]}, level=2).table(
        1
    )


def test_a_run_column_must_be_the_run_processed() -> None:
    events = Events({"run": [5, 5, 6], "event": [1, 2, 3]}, level=2, stream="s")
    with pytest.raises(InvalidArgument, match=r"row 2 has run 6; .* the run it processes"):
        events.table(5)
    with pytest.raises(InvalidArgument, match=r"run=-1"):
        events.table(-1)


def test_write_events_takes_only_normalised_tables(recorded: Recorded) -> None:
    with pytest.raises(InvalidArgument, match=r"not a normalised event table"):
        write_events(recorded.store, "events/x.parquet", pa.table({"event": [1]}))
    assert recorded.store.list("events") == []


# -- storage -----------------------------------------------------------------------------------


def test_written_events_read_back_with_their_levels(recorded: Recorded) -> None:
    table = level2(1234).table(1234)
    key = event_key(2, 1234, "abc")
    assert key == "events/level=2/run=1234/abc.parquet"
    summary = write_events(recorded.store, key, table)
    assert summary == {
        "rows": 40,
        "columns": ["run", "event", "sub_event", "stream", "energy", "nhits"],
        "parent_level": None,
        "streams": ["hits", "veto"],
    }
    back = read_events(recorded.store, key)
    assert back.equals(table)
    assert back.schema.metadata[b"level"] == b"2"
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(recorded.store.path(key)).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    with pytest.raises(NotFound, match=r"no event table at 'events/nope.parquet'"):
        read_events(recorded.store, "events/nope.parquet")


# -- the parent check --------------------------------------------------------------------------


def test_parents_that_exist_pass(recorded: Recorded) -> None:
    recorded.put(level2(1), 1)
    recorded.put(level3(1, [0, 5, 39]), 1)  # no error
    l4 = Events(
        {"event": [1, 2], "stream": ["veto", "hits"], "parent_event": [1001, 1000]},
        level=4,
        parent_level=3,
    )
    recorded.put(l4, 1)


def test_missing_parents_are_refused_naming_the_first(recorded: Recorded) -> None:
    recorded.put(level2(1234), 1234)  # events 0..19 in 'hits' and 'veto'
    l3 = Events(
        {
            "event": [1, 2, 3, 4, 5],
            "stream": ["hits", "veto", "hits", "hits", "hits"],
            "parent_event": [3, 17, 25, 99, 4],
            "parent_stream": ["hits", "hits", "hits", "veto", "hits"],
            "parent_sub_event": [0, 0, 0, 0, 1],
        },
        level=3,
        parent_level=2,
    )
    with pytest.raises(
        InvalidArgument,
        match=r"^level-3 events of run 1234: parent \(run 1234, event 25, sub-event 0, stream "
        r"'hits'\) is not among the level-2 events of run 1234 \(3 of 5 parents missing\)",
    ):
        check_parents(l3.table(1234), recorded.of(2, 1234), recorded.store)
    # events of another run do not count as parents
    recorded.put(level2(1235), 1235)
    ok = Events({"event": [1], "parent_event": [3]}, level=3, parent_level=2, stream="hits")
    with pytest.raises(InvalidArgument, match=r"parent \(run 1234, event 3, .* of run 1235"):
        check_parents(ok.table(1234), recorded.of(2, 1235), recorded.store)
    check_parents(ok.table(1234), recorded.of(2, 1234), recorded.store)


def test_no_parent_files_at_all_is_said(recorded: Recorded) -> None:
    l4 = Events({"event": [1], "parent_event": [1]}, level=4, parent_level=2, stream="s")
    with pytest.raises(
        InvalidArgument,
        match=r"level-4 events of run 8 name parents at level 2, but there are no level-2 "
        r"events of run 8; compute level 2 first",
    ):
        check_parents(l4.table(8), [], recorded.store)
    recorded.put(level2(8), 8)
    with pytest.raises(InvalidArgument, match=r"descend from level 3, but .* hold level 2"):
        check_parents(
            Events({"event": [1], "parent_event": [1]}, level=4, parent_level=3, stream="s").table(
                8
            ),
            recorded.of(2, 8),
            recorded.store,
        )
    with pytest.raises(InvalidArgument, match=r"declare no parent level"):
        check_parents(level2(8).table(8), recorded.of(2, 8), recorded.store)


# -- queries -----------------------------------------------------------------------------------


def build_chain(recorded: Recorded, runs: list[int]) -> dict[int, dict[tuple, dict]]:
    """Levels 2, 3 and 4 of each run; per level, each row by its (run, event, sub, stream)."""
    rng = np.random.default_rng(7)
    rows: dict[int, dict[tuple, dict]] = {2: {}, 3: {}, 4: {}}
    for run in runs:
        picked = sorted(rng.choice(40, 12, replace=False).tolist())
        tables = {
            2: recorded.put(level2(run), run),
            3: recorded.put(level3(run, picked), run),
        }
        l3_events = 1000 + np.arange(12)
        chosen = rng.choice(12, 6, replace=False)
        l4 = Events(
            {
                "event": 5000 + np.arange(6),
                "sub_event": np.arange(6) % 2,
                "parent_event": l3_events[chosen],
                "parent_stream": np.where(np.array(picked)[chosen] % 2, "veto", "hits"),
                "score": rng.uniform(size=6),
            },
            level=4,
            parent_level=3,
            stream="muon",
        )
        tables[4] = recorded.put(l4, run)
        for level, table in tables.items():
            for row in table.to_pylist():
                rows[level][(row["run"], row["event"], row["sub_event"], row["stream"])] = row
    return rows


def parent_of(row: dict) -> tuple:
    return (row["run"], row["parent_event"], row["parent_sub_event"], row["parent_stream"])


def test_a_level_reads_whole_sorted_and_filtered(recorded: Recorded) -> None:
    rows = build_chain(recorded, [12, 11, 13])
    every = recorded.query(2).to_arrow()
    assert every.num_rows == 120 == len(recorded.query(2)) == recorded.query(2).count()
    keys = list(
        zip(*(every.column(c).to_pylist() for c in ("run", "event", "sub_event", "stream")))
    )
    assert keys == sorted(keys) and set(keys) == set(rows[2])
    assert every.column("energy").to_pylist() == [rows[2][k]["energy"] for k in keys]
    some = recorded.query(2, runs=[11, 13]).to_arrow()
    assert set(some.column("run").to_pylist()) == {11, 13} and some.num_rows == 80
    vetoes = recorded.query(2, runs=range(12, 14), stream="veto").to_pandas()
    assert isinstance(vetoes, pd.DataFrame) and len(vetoes) == 40
    assert set(vetoes["stream"]) == {"veto"} and set(vetoes["run"]) == {12, 13}
    nothing = recorded.query(2, runs=[99]).to_arrow()
    assert nothing.num_rows == 0 and "energy" in nothing.column_names
    empty = recorded.query(7).to_arrow()
    assert empty.num_rows == 0 and empty.column_names == ["run", "event", "sub_event", "stream"]


def test_with_parent_one_level_gives_each_event_its_parents_values(recorded: Recorded) -> None:
    rows = build_chain(recorded, [1, 2])
    query = recorded.query(3).with_parent(level=2)
    joined = query.to_pandas()
    assert len(joined) == 24 == len(query)
    assert [c for c in joined.columns if c.startswith("l2_")] == [
        "l2_event", "l2_sub_event", "l2_stream", "l2_energy", "l2_nhits",
    ]  # fmt: skip
    for row in joined.to_dict("records"):
        parent = rows[2][parent_of(row)]
        assert row["l2_energy"] == parent["energy"] and row["l2_nhits"] == parent["nhits"]
        assert (row["l2_event"], row["l2_stream"]) == (parent["event"], parent["stream"])
        assert row["track"] == rows[3][(row["run"], row["event"], 0, row["stream"])]["track"]


def test_with_parent_two_levels_follows_the_declared_chain(recorded: Recorded) -> None:
    rows = build_chain(recorded, [1, 2, 3])
    query = recorded.query(4, runs=[1, 3]).with_parent(level=2)
    table = query.to_arrow()
    assert table.num_rows == 12 and set(table.column("run").to_pylist()) == {1, 3}
    assert not any(c.startswith("l3_") for c in table.column_names)
    for row in table.to_pylist():
        l3 = rows[3][parent_of(row)]
        l2 = rows[2][parent_of(l3)]
        assert (row["l2_event"], row["l2_sub_event"], row["l2_stream"]) == (
            l2["event"], l2["sub_event"], l2["stream"],
        )  # fmt: skip
        assert row["l2_energy"] == l2["energy"]
    both = recorded.query(4).with_parent(3).with_parent(2).to_arrow()
    assert both.num_rows == 18
    for row in both.to_pylist():
        l3 = rows[3][parent_of(row)]
        assert row["l3_track"] == l3["track"] and row["l3_parent_event"] == l3["parent_event"]
        assert row["l2_energy"] == rows[2][parent_of(l3)]["energy"]
    sql = recorded.query(4).with_parent(2).sql()
    assert "read_parquet" in sql and "LEFT JOIN" in sql and '"l2_energy"' in sql


def test_an_event_whose_parent_is_gone_keeps_its_row(recorded: Recorded) -> None:
    build_chain(recorded, [1])
    recorded.files[2] = []  # level 2 recomputed elsewhere: nothing current for run 1
    recorded.put(level2(1, n=4), 1, product="smaller")  # events 0 and 1 only
    joined = recorded.query(3).with_parent(2).to_arrow()
    assert joined.num_rows == 12
    has_parent = [e is not None for e in joined.column("l2_energy").to_pylist()]
    assert has_parent == [p < 2 for p in joined.column("parent_event").to_pylist()]


def test_levels_whose_files_differ_in_data_columns_are_read_together(recorded: Recorded) -> None:
    recorded.put(Events({"event": [1], "a": [1.0]}, level=2, stream="s"), 1)
    recorded.put(Events({"event": [1], "a": [2.0], "b": ["x"]}, level=2, stream="s"), 2)
    table = recorded.query(2).to_arrow()
    assert table.column("a").to_pylist() == [1.0, 2.0]
    assert table.column("b").to_pylist() == [None, "x"]


def test_with_parent_refuses_what_the_chain_cannot_give(recorded: Recorded) -> None:
    with pytest.raises(NotFound, match=r"no level-4 events are recorded"):
        recorded.query(4).with_parent(2)
    build_chain(recorded, [1])
    with pytest.raises(InvalidArgument, match=r"with_parent\(level=4\): .* lower level"):
        recorded.query(4).with_parent(4)
    with pytest.raises(InvalidArgument, match=r"level=12"):
        recorded.query(4).with_parent(12)
    with pytest.raises(
        InvalidArgument,
        match=r"level 1 is not an ancestor of level-4 events: they descend 4 -> 3 -> 2, then "
        r"level-2 events from no parent level; with_parent takes one of 3, 2",
    ):
        recorded.query(4).with_parent(1)
    # run 2's level-4 events come straight from level 2: the levels disagree
    recorded.put(level2(2), 2)
    recorded.put(Events({"event": [1], "parent_event": [1]}, level=4, parent_level=2,
                        stream="hits"), 2)  # fmt: skip
    with pytest.raises(
        InvalidArgument,
        match=r"level-4 events disagree on their parent level \(run 2 declare level 2; run 1 "
        r"declare level 3\); query the runs of one kind at a time with runs=",
    ):
        recorded.query(4).with_parent(2)
    assert recorded.query(4, runs=[2]).with_parent(2).to_arrow().column("l2_energy").to_pylist()
    assert recorded.query(4, runs=[1]).with_parent(2).count() == 6
    with pytest.raises(InvalidArgument, match=r"runs: 'x' is not a run number"):
        recorded.query(4, runs=["x"])


@pytest.mark.s3
def test_events_on_s3(s3_bucket: str, s3_endpoint: str) -> None:
    recorded = Recorded(open_store(f"{s3_bucket}/lab", {"endpoint_url": s3_endpoint}))
    assert isinstance(recorded.store, FsspecStore)
    rows = build_chain(recorded, [1, 2])
    assert recorded.store.list("events/level=4") == [
        "events/level=4/run=1/p4-1.parquet",
        "events/level=4/run=2/p4-2.parquet",
    ]
    joined = recorded.query(4).with_parent(2).to_arrow()
    assert joined.num_rows == 12
    for row in joined.to_pylist():
        assert row["l2_energy"] == rows[2][parent_of(rows[3][parent_of(row)])]["energy"]
    assert read_events(recorded.store, recorded.files[2][0].path).num_rows == 40
    bad = Events({"event": [1], "parent_event": [77]}, level=3, parent_level=2, stream="hits")
    with pytest.raises(InvalidArgument, match=r"event 77, .* \(1 of 1 parents missing\)"):
        check_parents(bad.table(1), recorded.of(2, 1), recorded.store)


def rows_of(table: pa.Table) -> list[tuple]:
    return sorted(tuple(row.values()) for row in table.to_pylist())


def read_level(recorded: Recorded, level: int, runs: list[int] | None = None,
               stream: str | None = None) -> list[dict]:  # fmt: skip
    """Every row of a level's current files, read with pyarrow alone."""
    rows = []
    for f in recorded(level):
        if runs is None or f.run in runs:
            rows += pq.read_table(recorded.store.path(f.path)).to_pylist()
    return [r for r in rows if stream is None or r["stream"] == stream]


def join_by_hand(children: list[dict], parents: list[dict], level: int) -> list[dict]:
    """A left join of ``children`` to ``parents`` on (run, parent event, sub event, stream),
    written out with dicts: one row per parent found (several if a parent is current twice),
    one with the parent's columns empty if none is; the parent's columns prefixed ``l<level>_``,
    and its own parent's key kept to join a level further."""
    by_key: dict[tuple, list[dict]] = {}
    for p in parents:
        by_key.setdefault((p["run"], p["event"], p["sub_event"], p["stream"]), []).append(p)
    names = sorted({k for p in parents for k in p} - {"run"})
    joined = []
    for child in children:
        for parent in by_key.get(parent_of(child), [None]):
            row = dict(child)
            for name in names:
                row[f"l{level}_{name}"] = None if parent is None else parent.get(name)
            joined.append(row)
    return joined


def up_one(rows: list[dict], level: int) -> list[dict]:
    """``rows`` with their parent key taken from the joined level-``level`` columns."""
    parent = ("parent_event", "parent_sub_event", "parent_stream")
    return [{**r, **{k: r[f"l{level}_{k}"] for k in parent}} for r in rows]


def same_rows(table: pa.Table, expected: list[dict], columns: list[str]) -> bool:
    def key(row: dict) -> tuple:
        return tuple((v is None, v) for v in (row[c] for c in columns))

    got = sorted(key(r) for r in table.select(columns).to_pylist())
    return got == sorted(key(r) for r in expected)


@pytest.mark.parametrize("group", [1, 50, 100_000])
def test_to_arrow_gives_what_its_sql_gives(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch, group: int
) -> None:
    """to_arrow runs the query in two steps, a group of runs at a time; whatever the grouping,
    with missing and doubled parents and several files of one run, it gives the join worked out
    by hand from the files read with pyarrow, and what the single statement of sql() gives."""
    import duckdb

    from labledger.events import query as module

    monkeypatch.setattr(module, "_JOIN_GROUP", group)
    build_chain(recorded, [3, 1, 2])
    # run 1: a second level-2 product repeating events 0..2 (both are current: parents twice)
    recorded.put(level2(1, n=6), 1, product="again")
    # run 2: a second level-3 product whose parents are partly missing from level 2
    late = Events(
        {"event": [1003, 2000, 1500], "parent_event": [2, 900, 3]},
        level=3,
        parent_level=2,
        stream="hits",
    )
    recorded.files.setdefault(3, []).append(  # written without the check, as if level 2 changed
        EventFile(event_key(3, 2, "late"), 2, 3, 2, "late")
    )
    write_events(recorded.store, event_key(3, 2, "late"), late.table(2))
    l2, l3, l4 = (read_level(recorded, level) for level in (2, 3, 4))
    three_by_hand = join_by_hand(l3, l2, 2)
    four_by_hand = join_by_hand(up_one(join_by_hand(l4, l3, 3), 3), l2, 2)
    key = ["run", "event", "sub_event", "stream"]
    l4_23 = [r for r in four_by_hand if r["run"] in (2, 3) and r["stream"] == "muon"]
    by_hand = [
        (three_by_hand, [*key, "l2_event", "l2_stream", "l2_energy", "l2_nhits"]),
        (four_by_hand, [*key, "l2_event", "l2_sub_event", "l2_energy"]),
        (l4_23, [*key, "l3_track", "l3_parent_event", "l2_energy", "l2_nhits"]),
        (read_level(recorded, 3, stream="veto"), [*key, "track", "parent_event"]),
    ]
    assert len(three_by_hand) > len(l3) > 0 and any(r["l2_energy"] is None for r in three_by_hand)
    for query, (expected, columns) in zip(
        (
            recorded.query(3).with_parent(2),
            recorded.query(4).with_parent(2),
            recorded.query(4, runs=[2, 3], stream="muon").with_parent(3).with_parent(2),
            recorded.query(3, stream="veto"),
        ),
        by_hand,
        strict=True,
    ):
        table = query.to_arrow()
        assert same_rows(table, expected, columns)
        reference = duckdb.connect().sql(query.sql()).to_arrow_table()
        assert table.column_names == reference.column_names
        assert rows_of(table) == rows_of(reference)
        assert len(query) == table.num_rows
        keys = list(zip(*(table.column(c).to_pylist() for c in ("run", "event", "sub_event"))))
        assert keys == sorted(keys)
    level3_of_1 = recorded.query(3, runs=[1]).to_arrow().column("parent_event").to_pylist()
    doubled = recorded.query(3, runs=[1]).with_parent(2).to_arrow()
    # every level-3 event, and once more each whose parent the second product repeats
    assert doubled.num_rows == 12 + sum(1 for e in level3_of_1 if e < 3)
    orphans = recorded.query(3, runs=[2]).with_parent(2).to_arrow().to_pylist()
    lost = [row for row in orphans if row["parent_event"] == 900]
    assert len(lost) == 1 and lost[0]["l2_event"] is None and lost[0]["l2_energy"] is None
    assert lost[0]["l2_stream"] is None and lost[0]["l2_sub_event"] is None


def test_with_parent_of_no_runs_has_the_columns_and_no_rows(recorded: Recorded) -> None:
    build_chain(recorded, [1])
    table = recorded.query(4, runs=[5]).with_parent(2).to_arrow()
    assert table.num_rows == 0 and "l2_energy" in table.column_names
    table = recorded.query(4, stream="nothing").with_parent(3).to_arrow()
    assert table.num_rows == 0 and "l3_track" in table.column_names


def test_ancestors_whose_files_differ_in_columns_are_joined(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labledger.events import query as module

    monkeypatch.setattr(module, "_JOIN_GROUP", 1)  # a group a run, were the files alike
    recorded.put(Events({"event": [1, 2], "a": [1.0, 2.0]}, level=2, stream="s"), 1)
    recorded.put(Events({"event": [1], "a": [3.0], "b": ["x"]}, level=2, stream="s"), 2)
    for run in (1, 2):
        recorded.put(Events({"event": [7], "parent_event": [1]}, level=3, parent_level=2,
                            stream="s"), run)  # fmt: skip
    table = recorded.query(3).with_parent(2).to_arrow()
    assert table.select(["run", "l2_a", "l2_b"]).to_pylist() == [
        {"run": 1, "l2_a": 1.0, "l2_b": None},
        {"run": 2, "l2_a": 3.0, "l2_b": "x"},
    ]
