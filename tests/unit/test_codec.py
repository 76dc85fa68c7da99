"""Canonical CBOR: round trips of the data model, strict decoding of untrusted bytes, clear errors."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hcnode import codec
from hcnode.codec import CodecError, DecodeLimits

# --- a reference RFC 8949 core deterministic encoder, written from the RFC -------------------


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for ai, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | ai]) + n.to_bytes(size, "big")
    raise AssertionError("out of range")


def ref_encode(value: Any) -> bytes:
    if value is None:
        return b"\xf6"
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if type(value) is int:
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if type(value) is bytes:
        return _head(2, len(value)) + value
    if type(value) is str:
        raw = value.encode("utf-8")
        return _head(3, len(raw)) + raw
    if type(value) is list:
        return _head(4, len(value)) + b"".join(ref_encode(v) for v in value)
    if type(value) is dict:
        pairs = sorted((ref_encode(k), ref_encode(v)) for k, v in value.items())  # bytewise on encoded keys
        return _head(5, len(value)) + b"".join(k + v for k, v in pairs)
    raise AssertionError(f"not in the data model: {value!r}")


def strict_equal(a: Any, b: Any) -> bool:
    """Equality that also compares types (so True != 1 and b'' != '')."""
    if type(a) is not type(b):
        return False
    if type(a) is list:
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def depth(value: Any) -> int:
    if type(value) is list:
        return 1 + max((depth(v) for v in value), default=0)
    if type(value) is dict:
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


INT64 = st.integers(min_value=codec.INT_MIN, max_value=codec.INT_MAX)
EDGE_INTS = st.sampled_from([0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1,
                             -1, -24, -25, -256, -257, -65536, -65537, -(2**32), -(2**32) - 1, -(2**64)])
SCALARS = (st.none() | st.booleans() | INT64 | EDGE_INTS | st.binary(max_size=300) | st.text(max_size=40))
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=30), children, max_size=6),
    max_leaves=30,
)
WIDE = DecodeLimits(max_depth=64)


def accepts_or_codec_error(data: bytes, limits: DecodeLimits = codec.DEFAULT_LIMITS) -> None:
    """The decoder's contract: a value that re-encodes to exactly ``data``, or CodecError; nothing else."""
    try:
        value = codec.decode(data, limits)
    except CodecError as exc:
        assert str(exc), "a CodecError must say what is wrong"
        return
    assert codec.encode(value) == data


def rejection(data: bytes, limits: DecodeLimits = codec.DEFAULT_LIMITS) -> str:
    with pytest.raises(CodecError) as info:
        codec.decode(data, limits)
    return str(info.value)


# --- round trips ----------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_every_allowed_value_round_trips_exactly(value: Any) -> None:
    encoded = codec.encode(value)
    assert strict_equal(codec.decode(encoded, WIDE), value)
    assert codec.encode(codec.decode(encoded, WIDE)) == encoded


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_encoding_is_rfc8949_core_deterministic(value: Any) -> None:
    assert codec.encode(value) == ref_encode(value)


@pytest.mark.parametrize("value, hex_", [
    (0, "00"), (23, "17"), (24, "1818"), (255, "18ff"), (256, "190100"), (2**64 - 1, "1bffffffffffffffff"),
    (-1, "20"), (-(2**64), "3bffffffffffffffff"), (b"", "40"), ("", "60"), ("a", "6161"), ([], "80"),
    ({}, "a0"), (True, "f5"), (False, "f4"), (None, "f6"),
    ({"b": 1, "aa": 2, "a": 3}, "a3616103616201626161" + "02"),
])
def test_known_encodings(value: Any, hex_: str) -> None:
    assert codec.encode(value).hex() == hex_
    assert strict_equal(codec.decode(bytes.fromhex(hex_)), value)


def test_map_keys_are_sorted_shorter_first_then_bytewise() -> None:
    value = {"bb": 0, "a": 1, "ab": 2, "b": 3, "x" * 24: 4, "z" * 23: 5}
    encoded = codec.encode(value)
    assert encoded == ref_encode(value)
    assert list(codec.decode(encoded)) == ["a", "b", "ab", "bb", "z" * 23, "x" * 24]


def test_hash_value_is_sha256_of_the_canonical_encoding() -> None:
    value = {"z": [1, b"\x00"], "a": None}
    assert codec.hash_value(value) == hashlib.sha256(codec.encode(value)).digest()
    assert codec.hash_value({"a": None, "z": [1, b"\x00"]}) == codec.hash_value(value)  # dict order is irrelevant
    assert codec.sha256(b"abc") == hashlib.sha256(b"abc").digest()


def test_decoder_accepts_bytes_like_input() -> None:
    encoded = codec.encode([1, "x"])
    assert codec.decode(bytearray(encoded)) == [1, "x"]
    assert codec.decode(memoryview(encoded)) == [1, "x"]


# --- untrusted bytes: never anything but a value or CodecError --------------------------------


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=200))
def test_random_bytes_decode_to_a_reencodable_value_or_codec_error(data: bytes) -> None:
    accepts_or_codec_error(data)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 255), min_size=1, max_size=40))
def test_random_bytes_behind_container_headers_never_escape_as_other_errors(tail: list[int]) -> None:
    for header in (b"\x81", b"\xa1", b"\x9a\xff\xff\xff\xff", b"\xbb\xff\xff\xff\xff\xff\xff\xff\xff",
                   b"\x5b\x00\x00\x00\x01\x00\x00\x00\x00", b"\xd8\x1c", b"\xd8\x1d", b"\xc4\x82"):
        accepts_or_codec_error(header + bytes(tail))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(codec.encode(draw(VALUES)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "append"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data.insert(pos, draw(st.integers(0, 255)))
        elif op == "delete" and data:
            del data[pos]
        elif op == "truncate":
            del data[pos:]
        elif op == "append":
            data += draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_valid_encodings_decode_to_a_reencodable_value_or_codec_error(data: bytes) -> None:
    accepts_or_codec_error(data, WIDE)


@settings(max_examples=200, deadline=None)
@given(VALUES)
def test_every_proper_prefix_of_a_valid_encoding_is_rejected_as_truncated(value: Any) -> None:
    encoded = codec.encode(value)
    for cut in range(1, len(encoded)):
        assert "truncated" in rejection(encoded[:cut], WIDE)


@settings(max_examples=200, deadline=None)
@given(VALUES, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_after_a_value_are_rejected(value: Any, tail: bytes) -> None:
    message = rejection(codec.encode(value) + tail, WIDE)
    assert "trailing" in message


# --- each rejection, with a message naming the problem ----------------------------------------


def test_empty_input_is_rejected() -> None:
    assert "empty" in rejection(b"")


@pytest.mark.parametrize("not_bytes", ["00", 0, None, [0]])
def test_decoder_rejects_non_bytes_input(not_bytes: Any) -> None:
    assert "expected bytes" in rejection(not_bytes)


@pytest.mark.parametrize("hex_", ["f93c00", "f90000", "f97e00", "fa3fc00000", "fb3ff8000000000000", "fb7ff8000000000000",
                                  "81f93c00", "a16161fb0000000000000000"])
def test_decoder_rejects_floats(hex_: str) -> None:
    assert "floating-point" in rejection(bytes.fromhex(hex_))


def test_decoder_rejects_undefined() -> None:
    assert "undefined" in rejection(b"\xf7").lower()


@pytest.mark.parametrize("hex_", ["f0", "e0", "f8ff", "f820"])
def test_decoder_rejects_simple_values_other_than_true_false_null(hex_: str) -> None:
    assert "simple" in rejection(bytes.fromhex(hex_)).lower()


# Every tag: the built-in ones cbor2 knows (datetimes, bignums, fractions, shared refs, sets,
# regexes, uuids, self-describe) and an unknown one.
TAGGED = {
    "tag 0 (date-time text)": "c074323031332d30332d32315432303a30343a30305a",
    "tag 1 (epoch time)": "c11a514b67b0",
    "tag 2 (bignum, small)": "c24101",
    "tag 2 (bignum, 2**64)": "c249010000000000000000",
    "tag 3 (negative bignum)": "c349010000000000000000",
    "tag 4 (decimal fraction)": "c482210f",
    "tag 5 (bigfloat)": "c582210f",
    "tag 28/29 (shared, cyclic)": "d81c81d81d00",
    "tag 30 (rational)": "d81e820102",
    "tag 35 (regex)": "d8236161",
    "tag 37 (uuid)": "d82550" + "00" * 16,
    "tag 100 (days)": "d86401",
    "tag 258 (set)": "d9010280",
    "tag 55799 (self-described)": "d9d9f701",
    "tag 999 (unknown)": "d903e701",
}


@pytest.mark.parametrize("hex_", list(TAGGED.values()), ids=list(TAGGED))
def test_decoder_rejects_every_tag(hex_: str) -> None:
    rejection(bytes.fromhex(hex_))


# cbor2 decodes its built-in tags (bignums into ints, shared references, self-describe) before
# a tag hook runs; each must still be refused by its tag number, not "out of range" or "not canonical".
@pytest.mark.parametrize(("name", "hex_"), list(TAGGED.items()), ids=list(TAGGED))
def test_tag_rejection_names_the_tag(name: str, hex_: str) -> None:
    numbers = name.split()[1].split("/")  # "tag 28/29 (...)": either may be refused first
    assert any(f"CBOR tag {n} is not allowed" in rejection(bytes.fromhex(hex_)) for n in numbers)


def test_decoder_rejects_duplicate_map_keys() -> None:
    assert "duplicate map key" in rejection(bytes.fromhex("a2616101616102"))  # {"a": 1, "a": 2}
    assert "duplicate map key" in rejection(bytes.fromhex("81a2616101616101"))  # nested, same value


@pytest.mark.parametrize("hex_", ["a10102", "a12001", "a1410102", "a1800102", "a1f500", "a1f600",
                                  "a1a001"])
def test_decoder_rejects_non_text_map_keys(hex_: str) -> None:
    message = rejection(bytes.fromhex(hex_))
    assert "not text" in message or "map key" in message.lower()


def test_non_text_key_message_names_the_key() -> None:
    assert "map key 1 is not text" in rejection(bytes.fromhex("a10102"))
    assert "map key b'\\x01' is not text" in rejection(bytes.fromhex("a1410102"))


@pytest.mark.parametrize("hex_", [
    "1800", "1817", "190017", "1900ff", "1a0000ffff", "1b00000000ffffffff",  # non-shortest unsigned
    "3800", "390017", "3b00000000ffffffff",  # non-shortest negative
    "5800", "580161", "7800", "780161", "9800", "980100", "b800", "b801616101",  # non-shortest lengths
    "5900026161", "79000161",
])
def test_decoder_rejects_non_canonical_ints_and_lengths(hex_: str) -> None:
    data = bytes.fromhex(hex_)
    message = rejection(data)
    assert "canonical" in message and "non-shortest" in message


@pytest.mark.parametrize("hex_", [
    "a2616201616102",  # {"b", "a"}
    "a2626161016162" "02",  # {"aa", "b"}: RFC 8949 puts the shorter key first
    "a3616101616303616202",  # a, c, b
    "81a2616201616102",  # nested
])
def test_decoder_rejects_unsorted_keys(hex_: str) -> None:
    message = rejection(bytes.fromhex(hex_))
    assert "canonical" in message and "unsorted keys" in message


@pytest.mark.parametrize("hex_", ["9f01ff", "9fff", "bf616101ff", "7f6161ff", "5f4101ff", "819f01ff"])
def test_decoder_rejects_indefinite_lengths(hex_: str) -> None:
    assert "indefinite" in rejection(bytes.fromhex(hex_))


@pytest.mark.parametrize("hex_", ["61ff", "62c328", "63eda080"])  # invalid UTF-8, including a surrogate
def test_decoder_rejects_invalid_utf8_text(hex_: str) -> None:
    rejection(bytes.fromhex(hex_))


@pytest.mark.parametrize("hex_", ["ff", "1c", "1d", "1e", "3c", "5c", "7c", "9c", "bc", "dc", "fc"])
def test_decoder_rejects_reserved_and_stray_initial_bytes(hex_: str) -> None:
    assert "malformed" in rejection(bytes.fromhex(hex_))


@pytest.mark.parametrize("hex_", ["19", "1a0000", "8201", "a16161", "6361", "5b00000000000000ff00",
                                  "9bffffffffffffffff", "bbffffffffffffffff", "5bffffffffffffffff"])
def test_decoder_reports_truncation(hex_: str) -> None:
    assert "truncated" in rejection(bytes.fromhex(hex_))


def _nested(levels: int) -> Any:
    value: Any = 0
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


def test_depth_limit_is_exact() -> None:
    limit = codec.DEFAULT_LIMITS.max_depth
    assert codec.decode(codec.encode(_nested(limit))) == _nested(limit)
    assert "nesting too deep" in rejection(codec.encode(_nested(limit + 1)))
    assert "nesting too deep" in rejection(codec.encode(_nested(3)), DecodeLimits(max_depth=2))


def test_deep_nesting_far_beyond_the_limit_is_a_codec_error() -> None:
    data = b"\x81" * 100_000 + b"\x00"
    assert "nesting too deep" in rejection(data)
    assert "nesting too deep" in rejection(b"\xa1\x61\x6b" * 50_000 + b"\x00")


def test_encoding_a_value_nested_too_deep_raises_codec_error() -> None:
    value: Any = 0
    for _ in range(5000):
        value = [value]
    with pytest.raises(CodecError):
        codec.encode(value)


_CRASH_PROBE = """
from hcnode import codec
try:
    limits = codec.DecodeLimits(max_depth=10**9, max_items=10**7)
except ValueError:  # depth limits beyond codec.MAX_DEPTH are refused outright
    limits = codec.DecodeLimits(max_depth=codec.MAX_DEPTH, max_items=10**7)
try:
    codec.decode(b"\\x81" * 100_000 + b"\\x00", limits)
except codec.CodecError:
    print("CodecError")
"""


def test_decoding_extreme_nesting_with_a_huge_depth_limit_is_a_codec_error_not_a_crash() -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-c", _CRASH_PROBE], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, f"the process died with {done.returncode}"
    assert done.stdout.split() == ["CodecError"]


def test_size_limit_is_exact() -> None:
    data = codec.encode(b"x" * 97)  # 2-byte header + 97
    assert len(data) == 99
    assert codec.decode(data, DecodeLimits(max_bytes=99)) == b"x" * 97
    message = rejection(data, DecodeLimits(max_bytes=98))
    assert "99 bytes" in message and "limit is 98" in message


def test_item_limit_counts_every_value_including_containers() -> None:
    limits = DecodeLimits(max_items=10)
    assert codec.decode(codec.encode(list(range(9))), limits) == list(range(9))  # 1 list + 9 ints
    assert "more than 10 items" in rejection(codec.encode(list(range(10))), limits)
    assert "more than 10 items" in rejection(codec.encode({"a": [1, 2, 3], "b": [4, 5, 6, 7, 8]}), limits)


def test_a_huge_claimed_length_does_not_allocate_or_hang() -> None:
    assert "truncated" in rejection(bytes.fromhex("9b00000000ffffffff") + b"\x00" * 100)
    assert "truncated" in rejection(bytes.fromhex("5b00000000ffffffff") + b"\x00" * 100)


def test_integer_range_is_64_bit() -> None:
    assert codec.decode(bytes.fromhex("1bffffffffffffffff")) == 2**64 - 1
    assert codec.decode(bytes.fromhex("3bffffffffffffffff")) == -(2**64)
    rejection(bytes.fromhex("c249010000000000000000"))  # 2**64 needs a bignum tag


# --- the encoder --------------------------------------------------------------------------------


def test_encoder_raises_codec_error_for_unencodable_objects() -> None:
    with pytest.raises(CodecError, match="cannot encode"):
        codec.encode(object())
    with pytest.raises(CodecError, match="cannot encode"):
        codec.encode({"a": [object()]})


@pytest.mark.parametrize("value", [1.5, float("nan"), {1: 2}, {b"": 1, 100: 2}, 2**64, -(2**64) - 1, {1, 2},
                                   {"a": [0.0]}], ids=["float", "nan", "int key", "mixed keys", "2**64", "-2**64-1",
                                                       "set", "nested float"])
def test_encoder_refuses_values_outside_the_data_model(value: Any) -> None:
    with pytest.raises(CodecError, match="cannot encode"):
        codec.encode(value)
    with pytest.raises(CodecError, match="cannot encode"):
        codec.hash_value({"wrapped": [value]})


def test_encoder_messages_name_the_offending_value() -> None:
    with pytest.raises(CodecError, match="map key 1 is not text"):
        codec.encode({"a": {1: 2}})
    with pytest.raises(CodecError, match="integer 18446744073709551616 is outside the 64-bit range"):
        codec.encode([2**64])
    with pytest.raises(CodecError, match="cannot encode a float"):
        codec.encode({"x": [1.0]})


def test_text_that_is_not_valid_unicode_is_a_codec_error() -> None:
    with pytest.raises(CodecError, match="cannot encode: text that is not valid Unicode"):
        codec.encode({"note": ["ok", "\ud800"]})  # a lone surrogate has no UTF-8 encoding
    with pytest.raises(CodecError, match="cannot encode: text that is not valid Unicode"):
        codec.encode({"\udfff": 1})


def test_tuples_encode_as_arrays() -> None:
    assert codec.encode((1, ("a", b""))) == codec.encode([1, ["a", b""]])


@settings(max_examples=100, deadline=None)
@given(VALUES)
def test_encoded_values_within_default_limits_decode_with_default_limits(value: Any) -> None:
    assume(depth(value) <= codec.DEFAULT_LIMITS.max_depth)
    assert codec.encode(codec.decode(codec.encode(value))) == codec.encode(value)


@given(VALUES)
@settings(max_examples=400, deadline=None)
def test_encode_equals_cbor2_canonical_mode_whichever_path_it_takes(value: Any) -> None:
    # encode() uses cbor2's plain mode when every map is already in canonical key order: same bytes required
    import cbor2

    assert codec.encode(value) == cbor2.dumps(value, canonical=True)


@pytest.mark.parametrize("value", [
    {"b": 1, "a": 2}, {"aa": 1, "b": 2}, {"": 1, "a": 2}, {"é": 1, "b": 2}, [{"z": {"y": 1, "x": 2}}],
    {"tx": b"1", "code": "x", "flags": [], "index": 0, "events": [], "height": 1, "status": "s", "message": "m"},
])
def test_encode_sorts_maps_given_in_any_key_order(value: Any) -> None:
    import cbor2

    assert codec.encode(value) == cbor2.dumps(value, canonical=True)
    assert codec.decode(codec.encode(value)) == value


@pytest.mark.parametrize("length", [0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32])
def test_head_is_the_prefix_of_the_canonical_encoding(length: int) -> None:
    assert codec.head(codec.MAJOR_BYTES, length) == _head(2, length)
    assert codec.head(codec.MAJOR_ARRAY, length) == _head(4, length)
    if length <= 65536:
        assert codec.encode(bytes(length)).startswith(codec.head(codec.MAJOR_BYTES, length))
        assert codec.encode([0] * length).startswith(codec.head(codec.MAJOR_ARRAY, length))


def test_map_shapes_seen_before_are_judged_the_same_and_non_text_keys_always_refused() -> None:
    for _ in range(2):  # the second time each key list is a known shape
        assert codec.encode({"b": 1, "aa": 2}) == codec.encode({"aa": 2, "b": 1}) == ref_encode({"b": 1, "aa": 2})
        assert codec.encode({"é": 1, "z": 2}) == ref_encode({"é": 1, "z": 2})  # non-ASCII: cbor2 sorts it
        with pytest.raises(CodecError, match="not text"):
            codec.encode({"a": 1, 2: 3})
    for n in range(codec._CACHE_MAX + 10):  # more shapes than the table holds: it starts over
        assert codec.encode({f"k{n}": n, "a": 0}) == ref_encode({f"k{n}": n, "a": 0})
    assert len(codec._KEY_ORDER) <= codec._CACHE_MAX
