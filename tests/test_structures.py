"""Structure descriptions: the YAML and its mistakes, metadata checked against a structure,
always-saved channels and their waivers, the run's tree, the versioned registry, ingest against
a structure (real TDMS shots of the simulated testbed) and the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from nptdms import ChannelObject, GroupObject, RootObject, TdmsFile, TdmsWriter

import labledger as ll
from labledger.errors import BadInput, Conflict, InvalidArgument, NotFound
from labledger.records import ChannelRecord
from labledger.sim import STRUCTURE, record_history, write_shot
from labledger.structures import WAIVED_KEY, Structure, StructureError, incomplete, parse
from tests.conftest import cli, refused, snapshot

# the simulated ISHTAR wiring (src/labledger/sim/ishtar.yaml), read by hand
COIL_I, PRESSURE, GAS_FLOW = "PXI M6251/ai2", "PXI M6251/ai6", "PXI 6133/ai6"

KIND = """\
name: scan-kind
description: a test structure
levels:
  - name: sequence
    parameters:
      proposal: {type: text, required: false}
  - name: scan
    parameters:
      gas: {type: text, allowed: [Ar, He]}
      power: {type: number, unit: W, min: 0, max: 5000}
      points: {type: integer, min: 1}
      dry_run: {type: bool, required: false}
      start: {type: time, required: false}
  - name: acquisition
always_saved: [Coil_I, "PXI 6133/ai6"]
"""
GOOD = {"gas": "Ar", "power": 1500.0, "points": 10}


@pytest.fixture
def kind() -> Structure:
    return parse(KIND, "kind.yaml")


# -- parsing ------------------------------------------------------------------------------------


def test_the_sample_structure_reads_as_written() -> None:
    s = parse(STRUCTURE.read_text(), STRUCTURE.name)
    assert s.name == "helicon-shot" and s.version is None and s.label == "helicon-shot"
    assert [level.name for level in s.levels] == ["campaign", "shot", "acquisition"]
    assert s.always_saved == ("Coil_I", "Pressure", "Gas_flow")
    gas = s.parameters["gas"]
    assert (gas.level, gas.type, gas.required, gas.allowed) == (
        "shot",
        "text",
        True,
        ("Ar", "He", "H2"),
    )
    power = s.parameters["rf_power_setpoint"]
    assert (power.unit, power.min, power.max, power.required) == ("W", 0, 5000, False)
    assert s.parameters["DateTime"].type == "time"


def test_a_structure_as_json(kind: Structure) -> None:
    data = kind.to_dict()
    assert [level["name"] for level in data["levels"]] == ["sequence", "scan", "acquisition"]
    assert data["levels"][1]["parameters"]["power"] == {
        "type": "number", "unit": "W", "required": True, "min": 0, "max": 5000,
    }  # fmt: skip
    assert data["always_saved"] == ["Coil_I", "PXI 6133/ai6"]
    json.dumps(data)


def _with(old: str, new: str) -> str:
    assert old in KIND, old
    return KIND.replace(old, new)


# (YAML, the line the error must name, what it must say); lines counted by hand in KIND
BAD_YAML = [
    ("name: [unclosed\n", "kind.yaml:2", "not valid YAML"),
    (KIND + "name: again\n", "kind.yaml:16", "name: given twice (also on line 1)"),
    ("- a list\n", "kind.yaml:1", "(top): a structure is a mapping"),
    (KIND + "always_saves: []\n", "kind.yaml:16", "did you mean 'always_saved'?"),
    (
        _with("name: scan-kind", "name: scan kind"),
        "kind.yaml:1",
        "'scan kind' is not a structure name",
    ),
    (_with("name: scan-kind", "name: " + "x" * 41), "kind.yaml:1", "1 to 40 letters"),
    ("name: k\n", "kind.yaml:1", "levels: give the levels"),
    ("name: k\nlevels: {scan: {}}\n", "kind.yaml:2", "levels: give the levels, outermost first"),
    ("name: k\nlevels: [scan]\n", "kind.yaml:2", "levels.0: a level is a mapping"),
    (
        _with("  - name: acquisition\n", "  - name: acquisition\n    params: {}\n"),
        "kind.yaml:15",
        "levels.2.params: unknown key 'params'",
    ),
    (
        _with("  - name: acquisition\n", "  - name: 2acq\n"),
        "kind.yaml:14",
        "'2acq' is not a level name",
    ),
    (
        _with("  - name: acquisition\n", "  - name: scan\n"),
        "kind.yaml:14",
        "level 'scan' is given twice",
    ),
    (
        _with("  - name: acquisition\n", "  - name: acquisition\n    parameters: [a]\n"),
        "kind.yaml:15",
        "levels.2.parameters: a mapping",
    ),
    (
        _with("proposal: {type: text, required: false}", "proposal: text"),
        "kind.yaml:6",
        "proposal: a mapping such as",
    ),
    (
        _with("dry_run: {type: bool, required: false}", "dry_run: {type: bool, requried: false}"),
        "kind.yaml:12",
        "did you mean 'required'?",
    ),
    (
        _with("points: {type: integer, min: 1}", "points: {min: 1}"),
        "kind.yaml:11",
        "None is not a type; give one of number, integer, text, bool, time",
    ),
    (
        _with("points: {type: integer, min: 1}", "points: {type: int, min: 1}"),
        "kind.yaml:11",
        "'int' is not a type",
    ),
    (
        _with("proposal: {type: text, required: false}", "proposal: {type: text, unit: m}"),
        "kind.yaml:6",
        "proposal.unit: a text has no unit",
    ),
    (_with("unit: W,", "unit: 5,"), "kind.yaml:10", "power.unit: a unit is text"),
    (
        _with("dry_run: {type: bool, required: false}", "dry_run: {type: bool, required: maybe}"),
        "kind.yaml:12",
        "'maybe': give true or false",
    ),
    (
        _with("dry_run: {type: bool, required: false}", "dry_run: {type: bool, min: 0}"),
        "kind.yaml:12",
        "dry_run.min: a bool has no min",
    ),
    (
        _with("min: 0, max: 5000", "min: low, max: 5000"),
        "kind.yaml:10",
        "power.min: 'low' is not a number",
    ),
    (
        _with("min: 0, max: 5000", "min: 10, max: 5"),
        "kind.yaml:10",
        "power.max: max 5 is below min 10",
    ),
    (
        _with(
            "points: {type: integer, min: 1}", "points: {type: integer, min: 1, allowed: [1, 2]}"
        ),
        "kind.yaml:11",
        "give allowed values or min/max, not both",
    ),
    (
        _with("dry_run: {type: bool, required: false}", "dry_run: {type: bool, allowed: [true]}"),
        "kind.yaml:12",
        "a bool takes no list of allowed values",
    ),
    (_with("allowed: [Ar, He]", "allowed: []"), "kind.yaml:9", "gas.allowed: a non-empty list"),
    (
        _with("allowed: [Ar, He]", "allowed: [Ar, 4]"),
        "kind.yaml:9",
        "gas.allowed.1: 4 is not of type text",
    ),
    (
        _with("      power:", "      proposal:"),
        "kind.yaml:10",
        "proposal is also a parameter of level sequence",
    ),
    (_with("      power:", "      labledger:power:"), "kind.yaml:10", "not labledger's own"),
    (
        _with('always_saved: [Coil_I, "PXI 6133/ai6"]', "always_saved: Coil_I"),
        "kind.yaml:15",
        "a list of signal names or channel keys",
    ),
    (
        _with('always_saved: [Coil_I, "PXI 6133/ai6"]', "always_saved: [Coil_I, '']"),
        "kind.yaml:15",
        "always_saved: a list",
    ),
    (
        _with('always_saved: [Coil_I, "PXI 6133/ai6"]', "always_saved: [Coil_I, Coil_I]"),
        "kind.yaml:15",
        "'Coil_I' is listed twice",
    ),
    (
        _with("description: a test structure", "description: [a]"),
        "kind.yaml:2",
        "description: a description is text",
    ),
]


@pytest.mark.parametrize(("text", "where", "says"), BAD_YAML)
def test_every_bad_yaml_is_refused_with_its_line_and_what_to_fix(
    text: str, where: str, says: str
) -> None:
    with pytest.raises(StructureError) as caught:
        parse(text, "kind.yaml")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(where + ":"), message
    assert says in message, message


# -- metadata -----------------------------------------------------------------------------------


def test_metadata_that_fits_passes_and_other_keys_are_left_alone(kind: Structure) -> None:
    kind.check_metadata({**GOOD, "name": "shot 7", "truth.n_e": 1e17, "points": 10.0})
    kind.check_metadata({**GOOD, "dry_run": True, "start": "2026-11-07T12:24:00"})
    kind.check_metadata({**GOOD, "start": datetime(2026, 11, 7, tzinfo=UTC)})
    kind.check_metadata({**GOOD, "power": 0, "proposal": None})  # an optional one left unset


# (metadata, what the one line must say)
BAD_METADATA = [
    ({"power": 1.0, "points": 1}, "gas (scan) is missing: give one of 'Ar', 'He'"),
    ({**GOOD, "gas": None}, "gas (scan) is missing"),
    ({**GOOD, "gas": "Xe"}, "gas (scan) is 'Xe'; it must be one of 'Ar', 'He'"),
    ({**GOOD, "gas": 1}, "gas (scan) is 1; it must be one of 'Ar', 'He'"),
    ({**GOOD, "power": "1500"}, "power (scan) is '1500'; it must be a number in W from 0 to 5000"),
    ({**GOOD, "power": True}, "power (scan) is True; it must be a number"),
    ({**GOOD, "power": -1}, "power (scan) is -1; it must be a number in W from 0 to 5000"),
    ({**GOOD, "power": 5000.5}, "power (scan) is 5000.5"),
    ({**GOOD, "power": float("nan")}, "power (scan) is nan"),
    ({**GOOD, "points": 2.5}, "points (scan) is 2.5; it must be a whole number of at least 1"),
    ({**GOOD, "points": 0}, "points (scan) is 0; it must be a whole number of at least 1"),
    ({**GOOD, "dry_run": "yes"}, "dry_run (scan) is 'yes'; it must be true or false"),
    ({**GOOD, "dry_run": 1}, "dry_run (scan) is 1; it must be true or false"),
    ({**GOOD, "start": "noon"}, "start (scan) is 'noon'; it must be a time (ISO 8601"),
    ({**GOOD, "scan": {"gas": "Ar"}}, "metadata['scan'] is a mapping, but"),
    ({"gas": "Xe"}, "gas (scan) is 'Xe'; it must be one of 'Ar', 'He' (and 2 more)"),
]


@pytest.mark.parametrize(("metadata", "says"), BAD_METADATA)
def test_each_parameter_rule_refuses_metadata_naming_it(
    kind: Structure, metadata: dict[str, Any], says: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        kind.check_metadata(metadata)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("structure scan-kind: ")
    assert says in message, message


def test_metadata_that_is_no_mapping_is_refused(kind: Structure) -> None:
    with pytest.raises(InvalidArgument, match="metadata must be a mapping"):
        kind.check_metadata([("gas", "Ar")])  # type: ignore[arg-type]


# -- always saved, waivers ----------------------------------------------------------------------


def test_missing_resolves_signal_names_and_takes_channel_keys_as_they_are(kind: Structure) -> None:
    wiring = {"Coil_I": COIL_I}
    assert kind.missing([COIL_I, GAS_FLOW], wiring.get) == []
    assert kind.missing([GAS_FLOW], wiring.get) == ["Coil_I"]
    assert kind.missing([COIL_I], wiring.get) == ["PXI 6133/ai6"]
    assert kind.missing([], {}.get) == ["Coil_I", "PXI 6133/ai6"]  # nothing wired
    assert kind.missing(["Coil_I", GAS_FLOW], {}.get) == []  # a key named as the signal
    assert kind.missing([], wiring.get, {"Coil_I": "coil off for a vacuum shot"}) == [GAS_FLOW]
    assert incomplete(kind.missing([], {}.get)) == "incomplete: missing Coil_I, PXI 6133/ai6"


@pytest.mark.parametrize(
    ("waivers", "says"),
    [
        (
            {"Pressure": "gauge out"},
            "does not say it is always saved (it says: Coil_I, PXI 6133/ai6)",
        ),
        ({"Coil_I": ""}, "the waiver of Coil_I needs a reason"),
        ({"Coil_I": "   "}, "the waiver of Coil_I needs a reason"),
        ({"Coil_I": None}, "the waiver of Coil_I needs a reason"),
        ([("Coil_I", "off")], "waivers: a mapping of always-saved name -> reason"),
    ],
)
def test_a_waiver_names_something_always_saved_and_says_why(
    kind: Structure, waivers: Any, says: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        kind.missing([], {}.get, waivers)
    assert says in str(caught.value)
    assert kind.check_waivers({"Coil_I": "  coil off "}) == {"Coil_I": "coil off"}


# -- the run's tree -----------------------------------------------------------------------------


def _channel(key: str) -> ChannelRecord:
    return ChannelRecord(key=key, store_path=f"p/{key}", shape=[4], dtype="<i2", attrs={}, axes=[])


def test_the_tree_follows_the_hierarchy_with_channels_below_the_last_level(
    kind: Structure,
) -> None:
    tree = kind.tree(
        {**GOOD, "proposal": "p-17", "other": 1},
        [_channel(COIL_I), _channel(PRESSURE), _channel("scope")],
    )
    channel = {"kind": "channel", "shape": [4], "dtype": "<i2"}
    assert tree == {
        "name": "scan-kind", "kind": "group", "attrs": {"structure": "scan-kind", "version": None},
        "children": [{
            "name": "sequence", "kind": "group", "attrs": {"proposal": "p-17"}, "children": [{
                "name": "scan", "kind": "group", "attrs": GOOD, "units": {"power": "W"},
                "children": [{
                    "name": "acquisition", "kind": "group", "children": [
                        {"name": "PXI M6251", "kind": "group", "children": [
                            {"name": "ai2", "key": COIL_I, **channel},
                            {"name": "ai6", "key": PRESSURE, **channel},
                        ]},
                        {"name": "scope", "key": "scope", **channel},
                    ],
                }],
            }],
        }],
    }  # fmt: skip
    from labledger.formats.base import walk_tree

    paths = [path for node, path in walk_tree(tree) if node["kind"] == "channel"]
    assert paths == [
        "sequence/scan/acquisition/PXI M6251/ai2",
        "sequence/scan/acquisition/PXI M6251/ai6",
        "sequence/scan/acquisition/scope",
    ]


# -- the registry -------------------------------------------------------------------------------


def test_structures_are_versioned_and_old_versions_stay_readable(
    archive: ll.Archive, tmp_path: Path
) -> None:
    first = archive.structures.add(KIND, reason="first try")
    assert (first.label, first.reason, first.already) == ("scan-kind@1", "first try", False)
    assert first.author and first.created is not None
    again = archive.structures.add(KIND, reason="the same again")
    assert (again.label, again.already, again.reason) == ("scan-kind@1", True, "first try")
    changed = tmp_path / "kind.yaml"
    changed.write_text(KIND.replace("max: 5000", "max: 6000"))
    second = archive.structures.add(changed, reason="a bigger generator")
    assert second.label == "scan-kind@2"
    assert archive.structures["scan-kind"].parameters["power"].max == 6000
    assert archive.structures["scan-kind@1"].parameters["power"].max == 5000
    assert archive.structures["scan-kind@1"].reason == "first try"
    archive.structures.add(str(STRUCTURE), reason="the shots")
    assert [s.label for s in archive.structures.list()] == ["helicon-shot@1", "scan-kind@2"]
    assert [s.label for s in archive.structures.list("scan-kind")] == ["scan-kind@1", "scan-kind@2"]
    assert "scan-kind" in archive.structures and "nope" not in archive.structures
    # another process sees them: they are in the catalog
    assert archive.path is not None
    with ll.open(archive.path) as other:
        assert other.structures["scan-kind"].version == 2


def test_the_registry_refuses_clearly_and_writes_nothing(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    la = sqlite_archive
    la.structures.add(KIND, reason="first")
    before = snapshot(la)
    with pytest.raises(NotFound, match=r"no structure 'nope' \(known: scan-kind\); add it with"):
        la.structures["nope"]
    with pytest.raises(NotFound, match="structure scan-kind has versions 1 to 1, not '3'"):
        la.structures["scan-kind@3"]
    with pytest.raises(InvalidArgument, match="a structure needs a reason"):
        la.structures.add(KIND.replace("max: 5000", "max: 1"), reason=" ")
    with pytest.raises(NotFound, match="missing.yaml: no such file"):
        la.structures.add(tmp_path / "missing.yaml", reason="r")
    bad = tmp_path / "bad.yaml"
    bad.write_text(KIND.replace("type: integer", "type: int"))
    with pytest.raises(StructureError, match=r"^bad.yaml:11: levels.1.parameters.points.type"):
        la.structures.add(bad, reason="r")
    with pytest.raises(StructureError, match="not valid YAML"):
        la.structures.add("name: [\n", reason="r")
    assert snapshot(la) == before


def test_a_recorded_version_is_never_overwritten(sqlite_archive: ll.Archive) -> None:
    """Two writers adding the same version at once: the second insert of the key is refused,
    and the first version stays as it was."""
    la = sqlite_archive
    la.structures.add(KIND, reason="first")
    value = dict(la.catalog.settings()["structure:scan-kind@1"], text="name: other\n")
    with pytest.raises(Conflict, match="try again"):
        la.catalog.add_setting("structure:scan-kind@1", value)
    assert la.structures["scan-kind@1"].text == KIND
    with pytest.raises(InvalidArgument, match="a key of 1 to 64 characters"):
        la.catalog.add_setting("x" * 65, 1)


# -- ingest against a structure -----------------------------------------------------------------


def _rewritten(source: Path, dest: Path, drop: set[str] = frozenset(), **props: Any) -> Path:  # type: ignore[assignment]
    """The shot file written again without the channels ``drop`` and with file properties
    ``props`` changed: what a DAQ missing a card, or set otherwise, would have written."""
    f = TdmsFile.read(source)
    objects: list[Any] = [RootObject({**f.properties, **props})]
    for group in f.groups():
        objects.append(GroupObject(group.name, group.properties))
        for ch in group.channels():
            if f"{group.name}/{ch.name}" not in drop:
                objects.append(ChannelObject(group.name, ch.name, ch.raw_data, ch.properties))
    with TdmsWriter(dest) as writer:
        writer.write_segment(objects)
    return dest


@pytest.fixture
def shot_archive(sqlite_archive: ll.Archive) -> ll.Archive:
    """An archive with ISHTAR's description and calibrations, and the sample structure."""
    record_history(sqlite_archive, upto=1234)
    sqlite_archive.structures.add(STRUCTURE, reason="what a shot is")
    return sqlite_archive


def _record(la: ll.Archive, number: int) -> Any:
    return la.catalog.by_number(number)


def test_a_whole_shot_is_complete_and_of_its_structure(archive: ll.Archive, tmp_path: Path) -> None:
    record_history(archive, upto=1234)
    archive.structures.add(STRUCTURE, reason="what a shot is")
    [result] = archive.ingest([write_shot(tmp_path, 1234)], structure="helicon-shot")
    assert result.incomplete is None
    assert result.to_json()["incomplete"] is None
    run = _record(archive, 1234)
    assert (run.structure, run.complete, run.reason) == ("helicon-shot", True, None)
    assert WAIVED_KEY not in run.meta
    # ingested without a structure: as before
    archive.ingest([write_shot(tmp_path, 1235)])
    run = _record(archive, 1235)
    assert (run.structure, run.complete, run.reason) == (None, True, None)


def test_a_shot_missing_an_always_saved_channel_is_recorded_incomplete(
    shot_archive: ll.Archive, tmp_path: Path
) -> None:
    shot = write_shot(tmp_path, 1234)
    no_gas = _rewritten(shot, tmp_path / "01231_Data.tdms", {GAS_FLOW}, shot=1231)
    [result] = shot_archive.ingest([no_gas], structure="helicon-shot")
    assert result.number == 1231
    assert result.incomplete == "incomplete: missing Gas_flow"
    assert result.message().endswith("; incomplete: missing Gas_flow")
    run = _record(shot_archive, 1231)
    assert (run.complete, run.reason, run.structure) == (
        False,
        "incomplete: missing Gas_flow",
        "helicon-shot",
    )
    assert run.n_channels == 15 and run.state == "closed"  # the run is kept, flagged
    # two missing, one waived: the waiver is kept with the run, the other one is said
    neither = _rewritten(shot, tmp_path / "01232_Data.tdms", {GAS_FLOW, PRESSURE}, shot=1232)
    [result] = shot_archive.ingest(
        [neither], structure="helicon-shot", waive={"Gas_flow": "flow meter sent for repair"}
    )
    run = _record(shot_archive, 1232)
    assert (run.complete, run.reason) == (False, "incomplete: missing Pressure")
    assert run.meta[WAIVED_KEY] == {"Gas_flow": "flow meter sent for repair"}
    assert shot_archive.runs[1232].metadata[WAIVED_KEY] == {
        "Gas_flow": "flow meter sent for repair"
    }
    # every missing one waived: complete
    waived = _rewritten(shot, tmp_path / "01233_Data.tdms", {GAS_FLOW, PRESSURE}, shot=1233)
    shot_archive.ingest(
        [waived], structure="helicon-shot", waive={"Gas_flow": "meter out", "Pressure": "gauge out"}
    )
    run = _record(shot_archive, 1233)
    assert (run.complete, run.reason) == (True, None)
    assert run.meta[WAIVED_KEY] == {"Gas_flow": "meter out", "Pressure": "gauge out"}  # fmt: skip


def test_signal_names_are_resolved_with_the_configuration_in_force(
    shot_archive: ll.Archive, tmp_path: Path
) -> None:
    """Pressure moved to a port the shot file does not hold: the shot lacks it, though its
    old port is there."""
    shot_archive.config.wire({"Pressure": "PXI M6251/ai12"}, from_run=1234, reason="gauge moved")
    shot_archive.ingest([write_shot(tmp_path, 1233)], structure="helicon-shot")
    shot_archive.ingest([write_shot(tmp_path, 1234)], structure="helicon-shot")
    assert _record(shot_archive, 1233).complete is True  # before the move
    run = _record(shot_archive, 1234)
    assert (run.complete, run.reason) == (False, "incomplete: missing Pressure")


def test_without_a_testbed_description_no_signal_name_resolves(
    sqlite_archive: ll.Archive, tmp_path: Path
) -> None:
    sqlite_archive.structures.add(STRUCTURE, reason="what a shot is")
    by_key = f'name: by-key\nlevels: [{{name: shot}}]\nalways_saved: ["{COIL_I}", "{GAS_FLOW}"]\n'
    sqlite_archive.structures.add(by_key, reason="keys only")
    sqlite_archive.ingest([write_shot(tmp_path, 1234)], structure="helicon-shot")
    run = _record(sqlite_archive, 1234)
    assert run.reason == "incomplete: missing Coil_I, Pressure, Gas_flow"
    sqlite_archive.ingest([write_shot(tmp_path, 1235)], structure="by-key")
    assert _record(sqlite_archive, 1235).complete is True  # channel keys need no description


def test_helium_shots_fit_the_sample_structure_too(
    shot_archive: ll.Archive, tmp_path: Path
) -> None:
    record_history(shot_archive, upto=1265, since=1235)
    [result] = shot_archive.ingest([write_shot(tmp_path, 1265)], structure="helicon-shot")
    run = _record(shot_archive, 1265)
    assert (run.meta["gas"], run.complete) == ("He", True)
    assert result.incomplete is None


def test_metadata_that_does_not_fit_is_refused_before_anything_is_written(
    shot_archive: ll.Archive, tmp_path: Path
) -> None:
    shot = write_shot(tmp_path, 1234)
    xenon = _rewritten(shot, tmp_path / "01230_Data.tdms", shot=1230, gas="Xe")
    message = refused(
        shot_archive, xenon, "structure helicon-shot: gas (shot) is 'Xe'; it must be one of "
        "'Ar', 'He', 'H2'", structure="helicon-shot",
    )  # fmt: skip
    assert message.endswith("nothing was ingested")
    hot = _rewritten(shot, tmp_path / "01229_Data.tdms", shot=1229, rf_power_setpoint=9000.0)
    says = "rf_power_setpoint (shot) is 9000.0; it must be a number in W from 0 to 5000"
    refused(shot_archive, hot, says, structure="helicon-shot")
    assert len(shot_archive.runs) == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "says"),
    [
        ({"structure": "nope"}, NotFound, "no structure 'nope' (known: helicon-shot)"),
        (
            {"structure": "helicon-shot", "waive": {"Langmuir_I": "probe out"}},
            InvalidArgument,
            "waiver 'Langmuir_I': structure helicon-shot does not say",
        ),
        (
            {"structure": "helicon-shot", "waive": {"Pressure": ""}},
            InvalidArgument,
            "the waiver of Pressure needs a reason",
        ),
        ({"waive": {"Pressure": "gauge out"}}, InvalidArgument, "name the structure too"),
    ],
)
def test_bad_structure_arguments_to_ingest_change_nothing(
    shot_archive: ll.Archive, tmp_path: Path, kwargs: dict[str, Any], error: type, says: str
) -> None:
    shot = write_shot(tmp_path, 1234)
    before = snapshot(shot_archive)
    with pytest.raises(error) as caught:
        shot_archive.ingest([shot], **kwargs)
    assert says in str(caught.value) and "\n" not in str(caught.value)
    assert snapshot(shot_archive) == before


# -- the command --------------------------------------------------------------------------------


def test_the_structure_commands_and_ingest_against_one(tmp_path: Path) -> None:
    folder = tmp_path / "archive"
    ll.init(folder).close()
    env = {"LABLEDGER_ARCHIVE": str(folder)}
    kind = tmp_path / "kind.yaml"
    kind.write_text(KIND)
    added = cli("structure", "add", str(STRUCTURE), "--reason", "what a shot is", env=env)
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("structure helicon-shot@1 recorded")
    again = cli("structure", "add", str(STRUCTURE), "--reason", "again", env=env)
    assert again.stdout.strip() == "structure helicon-shot@1 is the same text: nothing recorded"
    assert cli("structure", "add", str(kind), "--reason", "tests", env=env).returncode == 0
    listed = cli("structure", "list", "--json", env=env)
    assert [(s["name"], s["version"]) for s in json.loads(listed.stdout)] == [
        ("helicon-shot", 1), ("scan-kind", 1),
    ]  # fmt: skip
    table = cli("structure", "list", env=env).stdout
    assert "helicon-shot@1" in table and "campaign > shot > acquisition" in table
    shown = cli("structure", "show", "scan-kind@1", env=env)
    assert "a number in W from 0 to 5000" in shown.stdout
    assert "always saved: Coil_I, PXI 6133/ai6" in shown.stdout
    as_json = json.loads(cli("structure", "show", "helicon-shot", "--json", env=env).stdout)
    assert as_json["text"] == STRUCTURE.read_text() and as_json["reason"] == "what a shot is"
    # ingest against it (no testbed description here: the signals are not wired, so missing)
    shot = write_shot(tmp_path, 1234)
    ingested = cli(
        "ingest", str(shot), "--structure", "helicon-shot", "--waive", "Gas_flow=meter out",
        "--json", env=env,
    )  # fmt: skip
    assert ingested.returncode == 0, ingested.stderr
    [result] = json.loads(ingested.stdout)
    assert result["incomplete"] == "incomplete: missing Coil_I, Pressure"
    with ll.open(folder) as la:
        run = la.catalog.by_number(1234)
        assert run is not None and run.meta[WAIVED_KEY] == {"Gas_flow": "meter out"}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["structure", "show", "nope"], "error: no structure 'nope'"),
        (
            ["structure", "add", "missing.yaml", "--reason", "r"],
            "error: missing.yaml: no such file",
        ),
        (
            ["structure", "add", "bad.yaml", "--reason", "r"],
            "error: bad.yaml:1: name: 'a b' is not",
        ),
        (["ingest", "shot.tdms", "--structure", "nope"], "error: no structure 'nope'"),
        (["ingest", "shot.tdms", "--waive", "Pressure"], "error: --waive takes KEY=VALUE"),
    ],
)
def test_the_commands_refuse_in_one_line(tmp_path: Path, args: list[str], says: str) -> None:
    ll.init(tmp_path / "archive").close()
    (tmp_path / "bad.yaml").write_text("name: a b\nlevels: [{name: s}]\n")
    write_shot(tmp_path, 1234)
    (tmp_path / "01234_Data.tdms").rename(tmp_path / "shot.tdms")
    done = cli(*args, cwd=tmp_path, env={"LABLEDGER_ARCHIVE": str(tmp_path / "archive")})
    assert done.returncode == 1
    assert done.stderr.strip().startswith(says), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_bad_input_kinds() -> None:
    """A structure file's mistakes are bad input (422 through a server); metadata and
    waivers given by a caller are invalid arguments (400)."""
    assert issubclass(StructureError, BadInput)
    assert (StructureError.status, InvalidArgument.status) == (422, 400)
