"""Canonical CBOR and hashing: the one encoding for everything hashed or signed.

Owns: turning values into deterministic bytes and untrusted bytes back into values.
Must not know: what the values mean (transactions, blocks) or where bytes came from.

The data model is deliberately small: int (-2**64 .. 2**64-1), bytes, str, list,
dict with *text* keys, bool and None. No floats, no tags, no undefined.

Why text-only map keys: cbor2's ``canonical=True`` sorts keys length-first
(RFC 7049), RFC 8949 core deterministic encoding sorts the encoded keys
bytewise. For text keys the encoded key starts with a header that grows with
the length, so the two orders coincide; restricting keys to text makes cbor2's
output exactly the RFC 8949 core deterministic encoding.

Decoding is strict: the bytes must be the canonical encoding of an allowed
value, within the size, depth and item limits. Anything else raises
``CodecError`` naming what is wrong, never another exception type.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import cbor2

__all__ = ["CodecError", "DecodeLimits", "DEFAULT_LIMITS", "encode", "decode", "sha256", "hash_value", "head",
           "MAJOR_BYTES", "MAJOR_ARRAY"]

INT_MIN: Final = -(2**64)
INT_MAX: Final = 2**64 - 1


class CodecError(ValueError):
    """Bytes that are not the canonical encoding of an allowed value."""


MAX_DEPTH: Final = 64


@dataclass(frozen=True)
class DecodeLimits:
    max_bytes: int = 1 << 20
    max_depth: int = 16
    max_items: int = 100_000

    def __post_init__(self) -> None:
        # cbor2's C encoder (used to check canonical form) has no recursion bound of its own.
        if not 1 <= self.max_depth <= MAX_DEPTH:
            raise ValueError(f"max_depth must be within 1..{MAX_DEPTH}")


DEFAULT_LIMITS = DecodeLimits()


def encode(value: Any) -> bytes:
    """The canonical (RFC 8949 core deterministic) encoding of ``value``.

    Refuses anything outside the data model (floats, non-text map keys, bignums,
    sets ...), so nothing is ever written that ``decode`` would reject.

    Our own encoder, not cbor2's: the data model is small, and one compiled pass that checks
    and writes together costs less than a check walk plus cbor2's encoder (one sitting: a claim
    record 9.7 -> 7.7 us, a receipt 6.3 -> 5.6 us, a day index 1.4 -> 0.75 us).
    ``tests/unit/test_codec.py`` holds it to a reference encoder byte for byte.
    """
    out: list[bytes] = []
    try:
        _encode_into(value, out, 0)
    except UnicodeEncodeError as exc:
        raise CodecError(f"cannot encode: text that is not valid Unicode ({exc.reason})") from None
    return b"".join(out)


def _encode_into(value: Any, out: list[bytes], depth: int) -> None:
    """Append the canonical encoding of ``value`` to ``out``; ``depth`` counts the containers around it.

    Leaves are bound to typed locals (``text: str = value``) so that the compiled build works on
    them natively (a tagged int compare, not a rich comparison of objects): half the cost per leaf."""
    kind = type(value)
    if kind is str:
        text: str = value
        data = text.encode()
        size = len(data)
        out.append(_HEADS[_TEXT_BASE | size] if size < 256 else head(MAJOR_TEXT, size))
        out.append(data)
    elif kind is int:
        number: int = value
        if 0 <= number < 256:
            out.append(_HEADS[number])
        elif number >= 0:
            if number > INT_MAX:
                raise CodecError(f"cannot encode: integer {number} is outside the 64-bit range")
            out.append(head(MAJOR_UINT, number))
        else:
            if number < INT_MIN:
                raise CodecError(f"cannot encode: integer {number} is outside the 64-bit range")
            out.append(head(MAJOR_NEGATIVE, -1 - number))
    elif kind is bytes:
        blob: bytes = value
        size = len(blob)
        out.append(_HEADS[_BYTES_BASE | size] if size < 256 else head(MAJOR_BYTES, size))
        out.append(blob)
    elif kind is list:
        if depth >= MAX_DEPTH:
            raise CodecError(f"cannot encode: nested deeper than {MAX_DEPTH}")
        items: list[Any] = value  # typed, so that the compiled loop indexes the list (no iterator object)
        out.append(head(MAJOR_ARRAY, len(items)))
        for item in items:
            _encode_into(item, out, depth + 1)
    elif kind is dict:
        if depth >= MAX_DEPTH:
            raise CodecError(f"cannot encode: nested deeper than {MAX_DEPTH}")
        mapping: dict[Any, Any] = value
        out.append(head(MAJOR_MAP, len(mapping)))
        if _keys_in_canonical_order(mapping):  # hot maps are built with their keys in this order
            for key, item in mapping.items():
                encoded = _KEY_BYTES.get(key)
                out.append(_encoded_key(key) if encoded is None else encoded)
                _encode_into(item, out, depth + 1)
        else:
            for key in sorted(mapping, key=_canonical_key_order):
                out.append(_encoded_key(key))
                _encode_into(mapping[key], out, depth + 1)
    elif kind is tuple:
        _encode_into(list(value), out, depth)  # rarely encoded: as the list it equals
    elif value is None:
        out.append(_NULL)
    elif kind is bool:
        out.append(_TRUE if value else _FALSE)
    else:
        raise CodecError(f"cannot encode a {kind.__name__}: only int, bytes, text, list, text-keyed map, "
                         "bool and null are allowed")


_TRUE: Final = b"\xf5"
_FALSE: Final = b"\xf4"
_NULL: Final = b"\xf6"

# Map keys as encoded (head and UTF-8): a few names recur in every value. Cleared when full.
_CACHE_MAX: Final = 4096  # entries in this table and in _KEY_ORDER below
_KEY_BYTES: Final[dict[str, bytes]] = {}  # Final: a C static in the compiled build, not a module-dict lookup


def _encoded_key(key: str) -> bytes:
    data = key.encode()
    encoded = head(MAJOR_TEXT, len(data)) + data
    if len(_KEY_BYTES) >= _CACHE_MAX:
        _KEY_BYTES.clear()
    _KEY_BYTES[key] = encoded
    return encoded


def _canonical_key_order(key: str) -> tuple[int, bytes]:
    """RFC 8949 core deterministic order of text keys: their encodings bytewise, i.e. shorter first."""
    data = key.encode()
    return len(data), data


# The key lists of maps already judged, and whether they are in canonical order. Hot values are
# built by a few code paths, so their maps come in a few shapes: looking a shape up (a tuple of
# interned-hash strings) costs less than comparing its keys one by one. Only text-keyed shapes
# are remembered; the table is cleared when full, so it stays small whatever the input.
_KEY_ORDER: Final[dict[tuple[str, ...], bool]] = {}


def _keys_in_canonical_order(value: dict[Any, Any]) -> bool:
    keys = tuple(value)
    known = _KEY_ORDER.get(keys)
    if known is not None:
        return known
    ordered = True
    previous = ""
    for key in keys:
        if type(key) is not str:
            raise CodecError(f"cannot encode: map key {key!r} is not text")
        # canonical order of text keys: shorter first, then bytewise (ASCII: by character)
        if ordered and not (key.isascii() and (len(previous), previous) < (len(key), key)):
            ordered = False
        previous = key
    if len(_KEY_ORDER) >= _CACHE_MAX:
        _KEY_ORDER.clear()
    _KEY_ORDER[keys] = ordered
    return ordered


def _tag_refuser(number: int) -> Callable[..., Any]:
    def refuse(*_: Any) -> Any:
        raise CodecError(f"CBOR tag {number} is not allowed")
    return refuse


def _reject_tag(*args: Any) -> Any:
    # cbor2 5 calls tag_hook(decoder, tag), cbor2 6 tag_hook(tag, immutable)
    tag = next(a for a in args if isinstance(a, cbor2.CBORTag))
    _tag_refuser(tag.tag)()


# cbor2 decodes these tags itself (datetimes, bignums, decimals, shared references, rationals,
# regexes, MIME, UUIDs, IP addresses, string references, sets, self-describe) before tag_hook
# could see them; an empty mapping overrides none, so each is overridden by name.
_BUILT_IN_TAGS = {number: _tag_refuser(number) for number in
                  (0, 1, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261, 1004, 55799)}


def decode(data: object, limits: DecodeLimits = DEFAULT_LIMITS) -> Any:
    """Decode untrusted ``data``; raise ``CodecError`` unless it is canonical and allowed."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"expected bytes, got {type(data).__name__}")
    raw = bytes(data)
    if len(raw) > limits.max_bytes:
        raise CodecError(f"encoding is {len(raw)} bytes, limit is {limits.max_bytes}")
    if not raw:
        raise CodecError("empty input")
    try:
        value = cbor2.loads(
            raw,
            max_depth=limits.max_depth,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            tag_hook=_reject_tag,
            semantic_decoders=_BUILT_IN_TAGS,
        )
    except CodecError:
        raise
    except RecursionError:
        raise CodecError(f"nesting deeper than {limits.max_depth}") from None
    except Exception as exc:  # cbor2 raises several types; translate all at this boundary
        if isinstance(exc.__cause__, CodecError):  # our tag refusal, wrapped by cbor2
            raise exc.__cause__ from None
        raise CodecError(_describe_cbor2_error(exc)) from None
    # Re-encoding must give back exactly ``data``. When every map lists its keys in canonical
    # order, cbor2's plain encoder gives the canonical bytes three times faster than its canonical mode.
    ordered = _check_value(value, limits)
    if (cbor2.dumps(value) if ordered else cbor2.dumps(value, canonical=True)) != raw:
        raise CodecError("not the canonical encoding (trailing bytes, unsorted keys, or non-shortest lengths)")
    return value


def _describe_cbor2_error(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "duplicate" in text.lower():
        return f"duplicate map key: {text}"
    if "depth" in text.lower():
        return f"nesting too deep: {text}"
    if isinstance(exc, cbor2.CBORDecodeEOF) or "premature end" in text:
        return f"truncated: {text}"
    return f"malformed CBOR: {text}"


_LEAVES: Final = frozenset((str, bytes, bool, type(None)))


def _check_value(root: Any, limits: DecodeLimits) -> bool:
    """Walk the decoded value once: allowed types, integer range, text keys, item count.

    Returns True when every map's keys are in canonical order (so the plain encoder may
    check canonical form). Leaves are checked inline: this runs on every transaction.
    (Depth needs no check here: cbor2 enforced ``max_depth`` while decoding.)
    """
    ordered = True
    items = 1
    _check_leaf(root)
    stack = [root] if type(root) is list or type(root) is dict else []
    while stack:
        value = stack.pop()
        if type(value) is dict:
            keys = tuple(value)
            known = _KEY_ORDER.get(keys)  # shapes in the table have only text keys
            if known is None:
                for key in keys:
                    if type(key) is not str:
                        raise CodecError(f"map key {key!r} is not text")
                known = _keys_in_canonical_order(value)
            ordered = ordered and known
            children: Any = value.values()
        else:
            children = value
        items += len(children)
        if items > limits.max_items:
            raise CodecError(f"more than {limits.max_items} items")
        for item in children:
            kind = type(item)
            if kind is list or kind is dict:
                stack.append(item)
            elif kind is int:
                if not INT_MIN <= item <= INT_MAX:
                    raise CodecError("integer out of the 64-bit range (bignums are not allowed)")
            elif kind not in _LEAVES:
                _check_leaf(item)
    return ordered


def _check_leaf(value: Any) -> None:
    kind = type(value)
    if kind is int:
        if not INT_MIN <= value <= INT_MAX:
            raise CodecError("integer out of the 64-bit range (bignums are not allowed)")
    elif kind is float:
        raise CodecError("floating-point values are not allowed")
    elif kind not in _LEAVES and kind is not list and kind is not dict:
        # cbor2 turns some tags (0, 1, 2, 30, 258 ...) into Python objects before our hook sees them
        raise CodecError(f"CBOR tag or simple value (decoded as {kind.__name__}) is not allowed")


MAJOR_UINT: Final = 0
MAJOR_NEGATIVE: Final = 1
MAJOR_BYTES: Final = 2
MAJOR_TEXT: Final = 3
MAJOR_ARRAY: Final = 4
MAJOR_MAP: Final = 5
# The heads of lengths (and small ints) below 256, at [major << 8 | length].
_HEADS: Final = tuple(bytes([major << 5 | n]) if n < 24 else bytes([major << 5 | 24, n])
                      for major in range(8) for n in range(256))
# The first byte of a head whose length follows in 2, 4 or 8 bytes, at [major * 3 + 0, 1 or 2].
_LONG_HEADS: Final = tuple(bytes([major << 5 | info]) for major in range(8) for info in (25, 26, 27))
_BYTES_BASE: Final = MAJOR_BYTES << 8
_TEXT_BASE: Final = MAJOR_TEXT << 8


def head(major: int, length: int) -> bytes:
    """The shortest head of a major type with ``length`` (a byte string's size, an array's item count).

    For streaming a canonical encoding into a hash without building the value first
    (the state root of a block of tens of thousands of writes): ``head(MAJOR_ARRAY, n)``
    followed by the encodings of n items is exactly ``encode`` of the n-item list.
    """
    # Straight-line tests, not a loop over (info, size) pairs: the encoder calls this for every
    # integer from 256 up (amounts, heights), and the compiled loop built its tuples on each call.
    if length < 256:
        return _HEADS[major << 8 | length]
    if length < 0x10000:
        return _LONG_HEADS[major * 3] + length.to_bytes(2, "big")
    if length < 0x100000000:
        return _LONG_HEADS[major * 3 + 1] + length.to_bytes(4, "big")
    if length <= INT_MAX:
        return _LONG_HEADS[major * 3 + 2] + length.to_bytes(8, "big")
    raise CodecError(f"cannot encode: length {length} is outside the 64-bit range")


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def hash_value(value: Any) -> bytes:
    """SHA-256 of the canonical encoding: the one way to hash a structured value."""
    return hashlib.sha256(encode(value)).digest()
