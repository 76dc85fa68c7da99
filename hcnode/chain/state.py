"""Key-value state as the pure cores see it: a read interface and a write overlay.

Owns: layering uncommitted writes over committed state, and the state root.
Must not know where committed state lives (LevelDB in the node, a dict in tests).

Values are canonical CBOR written by our own apps, so reading them back uses
the fast trusted decoder, never the strict one meant for outside input.

State root: every block chains the previous root with the block's sorted
writes, root_h = SHA-256(encode(["hcnode-state/1", root_{h-1}, [[key, value-or-null], ...]])).
Two nodes that applied the same blocks hold the same root; any divergence in
any write of any block shows in every later root.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, Final, Protocol

import cbor2

from hcnode import codec

__all__ = ["StateReader", "MemoryState", "BlockReadCache", "Overlay", "next_state_root", "read_value", "peek_value",
           "ZERO_ROOT"]

ZERO_ROOT: Final = bytes(32)


class StateReader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Committed entries whose key starts with ``prefix``, in key order."""
        ...


class MemoryState:
    """Committed state in a dict: the reference implementation, for tests and tools."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(k for k in self.data if k.startswith(prefix)):
            yield key, self.data[key]

    def commit(self, writes: dict[bytes, bytes | None]) -> None:
        for key, value in writes.items():
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value


_UNSEEN: Final[Any] = object()  # not in the dict (where None is a value: a read that found nothing, a deletion)


class BlockReadCache:
    """Committed state as one block sees it: each key read from the store at most once.

    Within a block the committed state does not change (writes go to the block's
    overlay), so remembering the raw bytes read is safe; values are bytes, never
    shared mutable objects. Hot keys (a sender's role records, a fee schedule)
    are then read from LevelDB once per block instead of once per transaction.
    """

    __slots__ = ("base", "seen", "decoded")

    def __init__(self, base: StateReader) -> None:
        self.base = base
        self.seen: dict[bytes, bytes | None] = {}
        self.decoded: dict[bytes, Any] = {}

    def get(self, key: bytes) -> bytes | None:
        # ``get`` with a marker, not try/except KeyError: most keys a claim reads are absent or new to
        # the block (a duplicate-check index, an encounter), and raising costs more than the lookup.
        value = self.seen.get(key, _UNSEEN)
        if value is _UNSEEN:
            value = self.seen[key] = self.base.get(key)
        return value  # type: ignore[return-value]

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self.base.scan(prefix)

    def peek_value(self, key: bytes) -> Any:
        """The committed value decoded once per block and shared: see ``Overlay.peek_value``."""
        value = self.decoded.get(key, _UNSEEN)
        if value is _UNSEEN:
            raw = self.get(key)
            value = self.decoded[key] = None if raw is None else cbor2.loads(raw)
        return value


class Overlay:
    """Uncommitted writes over a reader; ``None`` marks a deletion.

    A child overlay per transaction lets a rejected transaction leave no trace:
    its writes are merged into the block's overlay only when it succeeds.

    Counters (``add_counts``): a value that is a map of integer counters (running totals
    that every claim bumps) is kept as pending deltas, not read, decoded, changed and
    re-encoded by every transaction: the deltas of a transaction merge into the block's
    by addition and are folded into the stored value once, when someone reads the key or
    the block's writes are taken (``fold_counts``). Addition commutes, so the folded value
    is the same whatever the order; a key is never both in ``writes`` and in ``counts``.
    """

    __slots__ = ("base", "writes", "counts")

    def __init__(self, base: StateReader | Overlay) -> None:
        self.base = base
        self.writes: dict[bytes, bytes | None] = {}
        self.counts: dict[bytes, dict[str, int]] = {}

    def get(self, key: bytes) -> bytes | None:
        # Walks the stack of overlays in a loop rather than by recursion: a transaction reads
        # through its own layer, the block's and the block's read cache, several times per claim.
        # One dict lookup per layer (a marker for "not written here"; None is a deletion), and the
        # counters only where there are any: most layers a read passes hold none.
        layer: Any = self
        while type(layer) is Overlay:
            value = layer.writes.get(key, _UNSEEN)
            if value is not _UNSEEN:
                return value  # type: ignore[no-any-return]
            if layer.counts and key in layer.counts:
                return layer._fold(key)  # type: ignore[no-any-return]
            layer = layer.base
        if type(layer) is BlockReadCache:  # the usual bottom (a block's reads): compiled, a direct call
            return layer.get(key)
        return layer.get(key)  # type: ignore[no-any-return]

    def put(self, key: bytes, value: bytes) -> None:
        self.writes[key] = value
        if self.counts:
            self.counts.pop(key, None)

    def delete(self, key: bytes) -> None:
        self.writes[key] = None
        if self.counts:
            self.counts.pop(key, None)

    def get_value(self, key: bytes) -> Any:
        raw = self.get(key)
        return None if raw is None else cbor2.loads(raw)

    def put_value(self, key: bytes, value: Any) -> None:
        self.put(key, codec.encode(value))

    def peek_value(self, key: bytes) -> Any:
        """The decoded value for a read that only inspects it; never change it (or write it back changed).

        A value nobody wrote in this block is decoded once per block and the same object is
        returned to every transaction: the sender's member and organisation records, a payer's
        fee schedule are read by every claim and cost more to decode than to look up. Changing
        one would change it for the rest of the block, rejected transaction or not: use
        ``get_value`` for a value to modify.
        """
        layer: Any = self
        while type(layer) is Overlay:  # the same walk as ``get``
            if key in layer.writes or key in layer.counts:
                return layer.get_value(key)
            layer = layer.base
        if type(layer) is BlockReadCache:
            return layer.peek_value(key)
        return peek_value(layer, key)

    def add_counts(self, key: bytes, deltas: dict[str, int]) -> None:
        """Add ``deltas`` to the counters stored at ``key`` (a map of name to integer; absent is 0)."""
        if key in self.writes:  # this layer already holds the value: change it in place
            self.writes[key] = _added(self.writes[key], deltas)
            return
        pending = self.counts.get(key)
        if pending is None:
            self.counts[key] = dict(deltas)
        else:
            for name, delta in deltas.items():
                pending[name] = pending.get(name, 0) + delta

    def fold_counts(self) -> None:
        """Fold every pending counter delta into ``writes`` (before the writes are committed or hashed)."""
        for key in sorted(self.counts):
            self._fold(key)

    def _fold(self, key: bytes) -> bytes:
        folded = self.writes[key] = _added(self.base.get(key), self.counts.pop(key))
        return folded

    def child(self) -> Overlay:
        return Overlay(self)

    def merge_into(self, parent: Overlay) -> None:
        parent.writes.update(self.writes)
        if parent.counts:  # a write replaces the whole value, pending deltas below it included
            for key in self.writes:
                parent.counts.pop(key, None)
        for key, deltas in self.counts.items():
            parent.add_counts(key, deltas)


def _added(raw: bytes | None, deltas: dict[str, int]) -> bytes:
    counters: dict[str, int] = {} if raw is None else cbor2.loads(raw)
    for name, delta in deltas.items():
        counters[name] = counters.get(name, 0) + delta
    return codec.encode(counters)


def read_value(state: StateReader | Overlay, key: bytes) -> Any:
    raw = state.get(key)
    return None if raw is None else cbor2.loads(raw)


def peek_value(state: StateReader | Overlay, key: bytes) -> Any:
    """``Overlay.peek_value`` on any reader: shared within a block, a fresh decode elsewhere (queries)."""
    if isinstance(state, (Overlay, BlockReadCache)):
        return state.peek_value(key)
    return read_value(state, key)


_ROOT_DOMAIN: Final = "hcnode-state/1"
_PAIR: Final = b"\x82"  # the head of a [key, value] pair
_NULL: Final = b"\xf6"


def next_state_root(previous: bytes, writes: dict[bytes, bytes | None]) -> bytes:
    """SHA-256 of encode([_ROOT_DOMAIN, previous, [[key, value-or-null], ...] in key order]).

    Streamed into the hash pair by pair rather than built as one list and encoded: a block of
    5,000 claims writes ~30,000 keys, and the list, the encoder's validation walk over it and
    the 4 MB encoding cost more than the hash itself. Keys and values are bytes by the
    Overlay's construction, so the stream is the canonical encoding byte for byte
    (``tests/unit/test_execute.py`` checks it against ``codec.hash_value`` of the list).
    """
    digest = hashlib.sha256(codec.head(codec.MAJOR_ARRAY, 3) + codec.encode(_ROOT_DOMAIN) + codec.encode(previous)
                            + codec.head(codec.MAJOR_ARRAY, len(writes)))
    update, head, major_bytes = digest.update, codec.head, codec.MAJOR_BYTES
    for key in sorted(writes):
        value = writes[key]
        update(_PAIR + head(major_bytes, len(key)) + key
               + (_NULL if value is None else head(major_bytes, len(value)) + value))
    return digest.digest()
