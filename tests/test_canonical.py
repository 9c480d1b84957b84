"""Product identity: the canonical form of a step's parameters (what is hashed into a product's
key), its digest, and the encoding that lets a recorded call be made again. No archive: the
expected values are written by hand, the hashes worked out with hashlib and json here."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import io
import json
import math
import pathlib
from typing import Any

import numpy as np
import pytest

from labledger.errors import InvalidArgument
from labledger.lineage.canonical import MAX_ARRAY, canonical, decode, digest, dumps, encode
from labledger.machine.units import registry


class Gas(enum.Enum):
    ARGON = "Ar"


class Gain(enum.Enum):
    HIGH = 2.0


class Odd(enum.Enum):
    THING = object()


class Scale:
    def __call__(self, x: float) -> float:
        return x

    def method(self) -> None:
        pass


def halve(x: float) -> float:
    return x / 2


WHEN = dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.UTC)


def test_equal_meanings_are_one_canonical_value() -> None:
    assert canonical({"b": (1, 2.0), "a": 0.5}) == {"a": 0.5, "b": [1, 2]}
    assert canonical(10.0) == 10 and type(canonical(10.0)) is int
    assert canonical(-0.0) == 0 and type(canonical(-0.0)) is int
    assert canonical(0.5) == 0.5
    # beyond 2**53 a float is not an exact integer any more: it stays a float
    assert type(canonical(2.0**53)) is float and type(canonical(2.0**53 - 1)) is int
    assert type(canonical(-(2.0**53))) is float and type(canonical(-(2.0**53) + 1)) is int
    assert canonical(np.bool_(True)) is True and canonical(np.bool_(False)) is False
    assert canonical(True) is True and canonical(None) is None and canonical("x") == "x"
    assert canonical(np.int64(7)) == 7 and type(canonical(np.int64(7))) is int
    assert canonical(np.float32(0.5)) == 0.5 and type(canonical(np.float32(0.5))) is float
    assert canonical(np.float64(3.0)) == 3 and type(canonical(np.float64(3.0))) is int
    assert canonical(Gas.ARGON) == "Ar"
    # JSON has no spelling for these: tagged, and told apart
    assert canonical(math.nan) == {"$float": "nan"}
    assert canonical(math.inf) == {"$float": "inf"} and canonical(-math.inf) == {"$float": "-inf"}
    # a set is its items in the order of their JSON text (so mixed types sort too)
    assert canonical({10, 9}) == [10, 9] and canonical(frozenset({"a", 1})) == ["a", 1]
    assert canonical(WHEN) == {"$datetime": "2026-03-01T12:30:00+00:00"}
    assert canonical(WHEN.date()) == {"$date": "2026-03-01"}
    assert canonical(pathlib.PurePosixPath("cal/probe.csv")) == {"$path": "cal/probe.csv"}
    quantity = registry().Quantity(2.0, "m/s")
    assert canonical(quantity) == {"$quantity": [2, "m / s"]}
    assert canonical({"outer": {"inner": [(1.0,)]}}) == {"outer": {"inner": [[1]]}}


def test_an_array_is_hashed_in_the_key_and_kept_whole_in_the_record() -> None:
    values = np.arange(6, dtype="<i4").reshape(2, 3)
    sha = hashlib.sha256(b"<i4" + b"(2, 3)" + values.tobytes()).hexdigest()
    assert canonical(values) == {"$ndarray": {"dtype": "<i4", "shape": [2, 3], "sha256": sha}}
    # the hash is of the values in C order, whatever the array's memory layout
    assert canonical(np.asfortranarray(values)) == canonical(values)
    assert encode(values) == {
        "$ndarray": {"dtype": "<i4", "shape": [2, 3], "data": [[0, 1, 2], [3, 4, 5]]}
    }
    back = decode(encode(values))
    empty = decode(encode(np.zeros((0, 3))))  # no data to tell the shape: the record does
    assert empty.shape == (0, 3) and empty.dtype == np.dtype("float64")
    assert back.dtype == np.dtype("<i4") and back.shape == (2, 3) and (back == values).all()
    assert canonical(np.array(["a", "b"]))["$ndarray"]["dtype"] == "<U1"
    # the largest array a parameter may be, and one more element
    assert canonical(np.zeros(MAX_ARRAY))["$ndarray"]["shape"] == [MAX_ARRAY]
    with pytest.raises(InvalidArgument) as too_big:
        canonical({"table": np.zeros(MAX_ARRAY + 1)})
    assert str(too_big.value) == (
        "params['table']: an array of 100001 float64 cannot be a parameter (at most 100000 "
        "numbers or strings); give large data as a product input instead"
    )
    with pytest.raises(InvalidArgument, match=r"^params\['q'\]: an array of 100001 float64"):
        canonical({"q": registry().Quantity(np.zeros(MAX_ARRAY + 1), "m")})
    with pytest.raises(InvalidArgument, match=r"^params: an array of 1 object cannot be"):
        canonical(np.array([object()]))


def test_encode_keeps_the_types_and_decode_makes_the_value_again() -> None:
    value = {
        "window": (-50, 10),
        "gain": 10.0,
        "names": ["a", ("b",)],
        "seen": {3},
        "bad": math.nan,
        "when": WHEN,
        "day": WHEN.date(),
        "file": pathlib.PurePosixPath("cal/probe.csv"),
        "plain": pathlib.PurePath("probe.csv"),
        "speed": registry().Quantity(2.5, "m/s"),
        "none": None,
    }
    data = encode(value)
    assert encode(Gain.HIGH) == 2.0 and type(encode(Gain.HIGH)) is float  # an enum's value
    # inside a set and a quantity too, a float stays a float
    assert encode({2.0}) == {"$set": [2.0]} and type(encode({2.0})["$set"][0]) is float
    whole = encode(registry().Quantity(2.0, "m"))["$quantity"][0]
    assert whole == 2.0 and type(whole) is float
    assert data["window"] == {"$tuple": [-50, 10]} and data["seen"] == {"$set": [3]}
    assert data["gain"] == 10.0 and type(data["gain"]) is float  # 10.0 stays a float
    assert data["names"] == ["a", {"$tuple": ["b"]}] and data["bad"] == {"$float": "nan"}
    assert data["when"] == {"$datetime": "2026-03-01T12:30:00+00:00"}
    assert data["speed"] == {"$quantity": [2.5, "m / s"]}
    json.dumps(data)  # JSON-ready
    back = decode(data)
    assert back["window"] == (-50, 10) and back["names"] == ["a", ("b",)]
    assert back["seen"] == {3} and math.isnan(back["bad"])
    assert back["gain"] == 10.0 and type(back["gain"]) is float
    assert back["when"] == WHEN and back["day"] == dt.date(2026, 3, 1)
    assert back["file"] == pathlib.PurePosixPath("cal/probe.csv")
    assert back["plain"] == pathlib.PurePath("probe.csv") and back["none"] is None
    assert back["speed"].magnitude == 2.5 and str(back["speed"].units) == "meter / second"
    assert decode({"$float": "-inf"}) == -math.inf
    # a one-key dict whose key is not a tag is a dict, and its value is decoded
    assert decode({"w": {"$tuple": [1]}}) == {"w": (1,)}
    assert decode([{"$tuple": []}, 3]) == [(), 3]


def test_the_digest_is_sha256_of_sorted_compact_json() -> None:
    data = {"b": [1, 2], "a": "µ"}
    text = '{"a":"µ","b":[1,2]}'  # sorted keys, no spaces, not escaped to ASCII
    assert digest(data) == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert digest({"a": "µ", "b": [1, 2]}) == digest(data)
    assert dumps(data) == '{"a": "µ", "b": [1, 2]}'


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def test_values_with_no_stable_meaning_are_refused_naming_the_parameter() -> None:
    def refusal(value: Any) -> str:
        with pytest.raises(InvalidArgument) as caught:
            canonical({"p": value})
        return str(caught.value)

    function = (
        "cannot be a parameter: what it computes can change while its name stays the same; "
        "make it a step of its own, or pass a name or a number that selects it"
    )
    assert refusal(halve) == f"params['p']: a function (halve) {function}"
    assert refusal(len) == f"params['p']: a function (len) {function}"
    assert refusal(Scale().method) == f"params['p']: a function (Scale.method) {function}"
    assert refusal(Scale()) == f"params['p']: a function (Scale) {function}"
    generic = (
        "has no canonical value to hash; give numbers, text, booleans, dates, arrays or lists, "
        "tuples and dicts of them"
    )
    assert refusal(Scale) == f"params['p']: a type {generic}"  # a class is not a function
    assert refusal(object()) == f"params['p']: a object {generic}"
    assert refusal(b"raw") == f"params['p']: a bytes {generic}"
    opened = (
        "params['p']: an open file cannot be a parameter: its content is not part of the call; "
        "pass its path, or ingest it and read it through a run"
    )
    assert refusal(io.BytesIO(b"x")) == opened

    class Handle:  # file-like without being an io object
        def read(self) -> bytes:
            return b""

        def fileno(self) -> int:
            return 0

    assert refusal(Handle()) == opened

    class Reader:  # it reads, but is no file
        def read(self) -> bytes:
            return b""

    assert refusal(Reader()) == f"params['p']: a Reader {generic}"

    class Measured:  # a magnitude, but not pint's
        magnitude = 2.0

    assert refusal(Measured()) == f"params['p']: a Measured {generic}"
    assert refusal(Odd.THING) == f"params['p']: a object {generic}"  # an enum's value
    for kind in ("Run", "Product", "GoodRunList"):
        thing = type(kind, (), {})()
        assert refusal(thing) == (
            f"params['p']: a {kind} is an input, not a parameter: give runs as runs=..., "
            "products as inputs=..."
        )
    # where inside the value the refusal is
    with pytest.raises(InvalidArgument, match=r"^params\['a'\]\[1\]\{…\}: a object"):
        canonical({"a": [0, {object()}]}, "params")
    with pytest.raises(InvalidArgument, match=r"^window\[0\]: a object"):
        encode((object(),), "window")


def test_keys_must_be_text_and_not_tags() -> None:
    with pytest.raises(InvalidArgument) as caught:
        canonical({1: "a"})
    assert str(caught.value) == "params: key 1 is a int; parameter dicts have text keys"
    with pytest.raises(InvalidArgument) as caught:
        encode({"ok": {"$tuple": [1]}})
    assert str(caught.value) == "params['ok']: key '$tuple': keys starting with $ are reserved"
    assert canonical({"a$": 1}) == {"a$": 1}  # only a leading $ is a tag


@pytest.mark.parametrize(
    "wrap",
    [lambda v: [v], lambda v: (v,), lambda v: {"k": v}, lambda v: frozenset({v})],
    ids=["list", "tuple", "dict", "frozenset"],
)
def test_each_container_counts_one_level(wrap: Any) -> None:
    inner: Any = 0
    for _ in range(64):
        inner = wrap(inner)
    canonical(inner)
    encode(inner)
    with pytest.raises(InvalidArgument, match="nested more than 64 deep"):
        canonical(wrap(inner))


def test_nesting_is_bounded_and_a_value_that_contains_itself_is_refused() -> None:
    assert canonical(_nested(64)) == _nested(64)
    # an enum's value is one level below it, as is a quantity's magnitude
    member: Any = Gas.ARGON
    expected: Any = "Ar"
    for _ in range(63):
        member, expected = [member], [expected]
    assert canonical(member) == expected
    with pytest.raises(InvalidArgument, match="nested more than 64 deep"):
        canonical([member])
    speed = registry().Quantity(2.0, "m/s")
    deep: Any = speed
    for _ in range(63):
        deep = [deep]
    canonical(deep)
    with pytest.raises(InvalidArgument, match="nested more than 64 deep"):
        canonical([deep])
    with pytest.raises(InvalidArgument, match=r"^params(\[0\]){65}: nested more than 64 deep"):
        canonical(_nested(65))
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(InvalidArgument, match=r"nested more than 64 deep \(or contains itself\)$"):
        encode(loop)
    table: dict[str, Any] = {}
    table["self"] = table
    with pytest.raises(InvalidArgument, match=r"^params(\['self'\]){65}: nested more than 64"):
        canonical(table)
