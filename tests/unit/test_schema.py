"""Payload schemas: each Spec's checks and the messages that name the field path."""

from __future__ import annotations

from typing import Any

import pytest

from hcnode.chain import Rejected
from hcnode.chain.schema import Bool, Bytes, Int, ListOf, OneOf, Optional, Record, Spec, Text, check


def fails(spec: Spec, value: Any, path: str = "payload") -> str:
    with pytest.raises(Rejected) as info:
        spec.check(value, path)
    assert info.value.code == "bad_payload"
    return info.value.message


def passes(spec: Spec, value: Any) -> None:
    spec.check(value, "payload")


# --- Text ------------------------------------------------------------------------------------------


def test_text_type_and_length() -> None:
    spec = Text(max_len=5, min_len=2)
    passes(spec, "ab")
    passes(spec, "abcde")
    passes(spec, "éé")  # length counts characters
    assert fails(spec, "a") == "payload: length 1 outside 2..5"
    assert fails(spec, "abcdef") == "payload: length 6 outside 2..5"
    assert fails(spec, b"ab") == "payload: expected text, got bytes"
    assert fails(spec, 5) == "payload: expected text, got integer"
    assert fails(spec, None) == "payload: expected text, got null"
    assert fails(spec, True) == "payload: expected text, got bool"
    assert fails(Text(), "") == "payload: length 0 outside 1..256"


def test_text_choices_and_pattern_must_match_fully() -> None:
    assert fails(Text(choices=("a", "b")), "c") == "payload: 'c' is not one of a, b"
    passes(Text(choices=("a", "b")), "b")
    spec = Text(pattern=r"[a-z]+")
    passes(spec, "abc")
    assert fails(spec, "abc1") == "payload: 'abc1' does not match [a-z]+"
    assert fails(spec, "abc\n") == "payload: 'abc\\n' does not match [a-z]+"  # no $-before-newline escape
    assert fails(spec, "1abc").startswith("payload: '1abc' does not match")


# --- Bytes -----------------------------------------------------------------------------------------


def test_bytes_type_size_and_limit() -> None:
    passes(Bytes(size=3), b"abc")
    assert fails(Bytes(size=3), b"ab") == "payload: expected 3 bytes, got 2"
    assert fails(Bytes(size=3), "abc") == "payload: expected bytes, got text"
    assert fails(Bytes(size=3), bytearray(b"abc")) == "payload: expected bytes, got bytearray"
    passes(Bytes(max_len=4), b"")
    passes(Bytes(max_len=4), b"abcd")
    assert fails(Bytes(max_len=4), b"abcde") == "payload: 5 bytes, limit 4"
    assert fails(Bytes(), b"x" * 1025) == "payload: 1025 bytes, limit 1024"


# --- Int and Bool ------------------------------------------------------------------------------------


def test_int_range_and_bool_is_not_an_int() -> None:
    spec = Int(min=-2, max=10)
    for value in (-2, 0, 10):
        passes(spec, value)
    assert fails(spec, -3) == "payload: -3 outside -2..10"
    assert fails(spec, 11) == "payload: 11 outside -2..10"
    assert fails(spec, True) == "payload: expected integer, got bool"
    assert fails(spec, "1") == "payload: expected integer, got text"
    assert fails(Int(), -1) == f"payload: -1 outside 0..{2**63 - 1}"
    assert fails(Int(), 2**63) == f"payload: {2**63} outside 0..{2**63 - 1}"


def test_bool_accepts_only_true_and_false() -> None:
    passes(Bool(), True)
    passes(Bool(), False)
    assert fails(Bool(), 1) == "payload: expected true or false, got integer"
    assert fails(Bool(), None) == "payload: expected true or false, got null"


# --- ListOf --------------------------------------------------------------------------------------------


def test_list_items_are_checked_with_their_index_in_the_path() -> None:
    spec = ListOf(Text(max_len=3), min_items=1, max_items=3)
    passes(spec, ["a", "bc"])
    assert fails(spec, []) == "payload: 0 items, allowed 1..3"
    assert fails(spec, ["a", "b", "c", "d"]) == "payload: 4 items, allowed 1..3"
    assert fails(spec, ["a", 7]) == "payload[1]: expected text, got integer"
    assert fails(spec, ["a", "toolong"]) == "payload[1]: length 7 outside 1..3"
    assert fails(spec, ("a",)) == "payload: expected a list, got tuple"
    assert fails(spec, {"a": 1}) == "payload: expected a list, got map"


def test_list_uniqueness_covers_nested_values() -> None:
    assert fails(ListOf(Text(), unique=True), ["a", "b", "a"]) == "payload: items must be unique"
    passes(ListOf(Text(), unique=True), ["a", "b"])
    nested = ListOf(ListOf(Int()), unique=True)
    passes(nested, [[1], [2], [1, 1]])
    assert fails(nested, [[1, 2], [1, 2]]) == "payload: items must be unique"
    maps = ListOf(Record({"a": Int()}), unique=True)
    assert fails(maps, [{"a": 1}, {"a": 1}]) == "payload: items must be unique"
    passes(ListOf(Bytes(), unique=True), [b"a", b"b"])
    passes(ListOf(Int(), unique=False), [1, 1])


# --- Record and Optional ------------------------------------------------------------------------------


RECORD = Record({"name": Text(max_len=8), "age": Optional(Int(max=200)), "tags": ListOf(Text(), max_items=2)})


def test_record_requires_fields_and_refuses_unknown_ones() -> None:
    passes(RECORD, {"name": "ann", "tags": []})
    passes(RECORD, {"name": "ann", "age": 3, "tags": ["x"]})
    assert fails(RECORD, {"tags": []}) == "payload: missing field 'name'"
    assert fails(RECORD, {"name": "ann", "tags": [], "ssn": "123"}) == (
        "payload: unknown field 'ssn' (allowed: age, name, tags)")
    assert fails(RECORD, {"name": "ann", "tags": [], "zz": 1, "aa": 2}).startswith("payload: unknown field 'aa'")
    assert fails(RECORD, []) == "payload: expected a map, got list"


def test_record_field_errors_name_the_path() -> None:
    assert fails(RECORD, {"name": 5, "tags": []}) == "payload.name: expected text, got integer"
    assert fails(RECORD, {"name": "ann", "age": 300, "tags": []}) == "payload.age: 300 outside 0..200"
    assert fails(RECORD, {"name": "ann", "tags": ["a", 1]}) == "payload.tags[1]: expected text, got integer"


def test_optional_field_may_be_absent_but_never_null() -> None:
    assert fails(RECORD, {"name": "ann", "age": None, "tags": []}) == "payload.age: expected integer, got null"
    assert Optional(Int()).describe() == Int().describe()


def test_nested_records_build_dotted_paths() -> None:
    spec = Record({"items": ListOf(Record({"code": Text(), "qty": Int(min=1)}))})
    passes(spec, {"items": [{"code": "a", "qty": 1}]})
    assert fails(spec, {"items": [{"code": "a", "qty": 1}, {"code": "b", "qty": 1}, {"code": 3, "qty": 1}]}) == (
        "payload.items[2].code: expected text, got integer")
    assert fails(spec, {"items": [{"code": "a", "qty": 0}]}) == "payload.items[0].qty: 0 outside 1..9223372036854775807"
    assert fails(spec, {"items": [{"code": "a"}]}) == "payload.items[0]: missing field 'qty'"


# --- OneOf ----------------------------------------------------------------------------------------------


UNION = OneOf({"add": Record({"n": Int()}), "drop": Record({"reason": Text()})})


def test_one_of_selects_the_variant_by_kind() -> None:
    passes(UNION, {"kind": "add", "n": 1})
    passes(UNION, {"kind": "drop", "reason": "x"})
    assert fails(UNION, {"kind": "add", "reason": "x"}) == "payload: unknown field 'reason' (allowed: n)"
    assert fails(UNION, {"kind": "drop"}) == "payload: missing field 'reason'"
    assert fails(UNION, {"kind": "add", "n": "1"}) == "payload.n: expected integer, got text"


@pytest.mark.parametrize("value", [{"n": 1}, {"kind": "nuke"}, {"kind": 1}, {"kind": None}, {"kind": ["add"]}])
def test_one_of_with_missing_or_unknown_kind_names_the_kind_field(value: dict[str, Any]) -> None:
    assert fails(UNION, value) == "payload.kind: expected one of add, drop"


def test_one_of_refuses_non_maps() -> None:
    assert fails(UNION, ["add"]) == "payload: expected a map, got list"


def test_one_of_nested_in_a_record_reports_the_full_path() -> None:
    spec = Record({"action": UNION})
    assert fails(spec, {"action": {"kind": "add", "n": -1}}) == "payload.action.n: -1 outside 0..9223372036854775807"
    assert fails(spec, {"action": {"kind": "x"}}) == "payload.action.kind: expected one of add, drop"


# --- helpers and descriptions ---------------------------------------------------------------------------


def test_check_uses_payload_as_the_default_root_path() -> None:
    with pytest.raises(Rejected, match=r"^bad_payload: payload\.name: expected text"):
        check(RECORD, {"name": 1, "tags": []})
    with pytest.raises(Rejected, match=r"^bad_payload: params: missing field 'name'"):
        check(RECORD, {}, "params")


def test_describe_gives_a_cddl_like_shape() -> None:
    assert Text(max_len=5, min_len=2).describe() == "tstr .size (2..5)"
    assert Text(choices=("a", "b")).describe() == '"a" / "b"'
    assert Bytes(size=33).describe() == "bstr .size 33"
    assert Bytes(max_len=9).describe() == "bstr .size (0..9)"
    assert Int(max=9).describe() == "uint .le 9"
    assert Int(min=-1, max=9).describe() == "int .within (-1..9)"
    assert Bool().describe() == "bool"
    assert ListOf(Bool(), max_items=3, min_items=1).describe() == "[1*3 bool]"
    assert RECORD.describe() == "{ name: tstr .size (1..8), ? age: uint .le 200, tags: [0*2 tstr .size (1..256)] }"
    assert UNION.describe() == '{ kind: "add", n: uint .le 9223372036854775807 } / { kind: "drop", reason: tstr .size (1..256) }'


def test_base_spec_is_abstract() -> None:
    with pytest.raises(NotImplementedError):
        Spec().check(1, "payload")
    with pytest.raises(NotImplementedError):
        Spec().describe()
