"""The node's LevelDB store (plyvel): blocks, tx index, receipts, state and the applied height.

Owns: the on-disk layout and the atomicity of a block. Must not know how blocks
are made or what state means.

Layout (one LevelDB, prefixes):
    m/height   8-byte height of the last applied block      m/head   its hash
    m/root     its state root                               m/genesis  the genesis document
    b/<8-byte height>  block bytes                          h/<hash>   8-byte height
    t/<tx hash>        [height, index]                      r/<8-byte height><4-byte index> receipt
    s/<state key>      state value
Every block, with its index entries, receipts, state writes and the new
height, goes in ONE write batch written with sync=True. LevelDB applies a batch
atomically and the sync makes it durable before we report anything committed,
so a ``kill -9`` at any instant leaves either the whole block or none of it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import cbor2
import plyvel

from hcnode.chain.block import Block
from hcnode.chain.execute import Execution

__all__ = ["Store", "StorageError"]


class StorageError(Exception):
    """The store cannot be opened or is not what it should be."""


RECENT_VALUES = 100_000  # state values kept in memory after a read (a few MB); all are dropped when full
FILTER_MIN_BITS = 1 << 23  # 1 MB: a store's key filter starts at this size and doubles as state grows
FILTER_BITS_PER_KEY = 10  # with 6 probes in one cache line: ~1.3% of absent keys still go to LevelDB
_FILTER_PROBES: Final = 6
FILTER_SIZE_HINT = b"m/filter-keys"  # the key filter's count when the store last closed
_HASH_BITS: Final = (1 << 60) - 1  # keeps the probe arithmetic within machine integers (mypyc)


class KeyFilter:
    """A Bloom filter over state keys: "certainly absent" answered in memory.

    Most keys a claim reads are absent (its duplicate-check index, an encounter, a
    deregistration); LevelDB answers an absent key by probing every level, so that read
    grew with the state (x1.85 from 160k to 1.15M claims). The filter answers it in one
    memory probe at any size. It never answers "absent" for a key it was given (no false
    negatives), so a read it lets through is exactly a LevelDB read. In memory only:
    Python's hash is per process, and the store rebuilds the filter when it opens.

    Blocked: a key's probes all fall in one 64-byte line (the hash's low bits choose it),
    so a lookup costs one memory fetch, not six; at a million claims the filter is several
    MB and each fetch a cache miss (measured: adds 2.25 -> 1.23 us, present keys 1.80 ->
    0.90 us, at the cost of 1.3% false positives instead of 0.8%).
    """

    def __init__(self, expected_keys: int) -> None:
        bits = FILTER_MIN_BITS
        while bits < expected_keys * FILTER_BITS_PER_KEY:
            bits *= 2
        self.bits = bytearray(bits // 8)
        self.lines = bits // 512 - 1  # a mask: the number of 512-bit lines is a power of two
        self.capacity = bits // FILTER_BITS_PER_KEY
        self.count = 0  # distinct keys added (a key whose bits were all set already is not counted)

    def add(self, key: bytes) -> None:
        h = hash(key) & _HASH_BITS
        bits, base, new = self.bits, (h & self.lines) << 6, False
        h >>= 24
        for _ in range(_FILTER_PROBES):
            position = h & 511
            byte, bit = base + (position >> 3), 1 << (position & 7)
            if not bits[byte] & bit:
                bits[byte] |= bit
                new = True
            h >>= 6
        if new:
            self.count += 1

    def may_contain(self, key: bytes) -> bool:
        h = hash(key) & _HASH_BITS
        bits, base = self.bits, (h & self.lines) << 6
        h >>= 24
        for _ in range(_FILTER_PROBES):
            position = h & 511
            if not bits[base + (position >> 3)] & (1 << (position & 7)):
                return False
            h >>= 6
        return True


def _height(h: int) -> bytes:
    return h.to_bytes(8, "big")


class Store:
    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        try:
            # Bloom filters make a read of an absent key (a duplicate-claim or key-in-use check)
            # cost about one probe instead of one per LevelDB level, so it stays flat as state grows.
            # One block's batch is several MB (5,000 claims: ~6 MB of blocks, receipts and state);
            # with LevelDB's default 4 MB memtable every block forced a flush and a level-0
            # compaction, and the compaction threads spent as much CPU as applying the block.
            # A 64 MB memtable (flushed every ~10 such blocks) and 32 MB table files (fewer files
            # to merge at a million claims) halve the CPU per claim; the cost is a longer log
            # replay after a crash, bounded by the memtable size.
            # No compression: snappy shrank the files 2.4x but compressing every table again at each
            # compaction cost the background threads ~90 us of CPU per claim at a million claims
            # (process CPU 241 -> 151 us per claim, applying +13%, benchmarks/billing.py): CPU is
            # the node's limit, disk is not. Files written compressed stay readable.
            self.db = plyvel.DB(str(path), create_if_missing=True, bloom_filter_bits=10, compression=None,
                                lru_cache_size=64 << 20, write_buffer_size=64 << 20, max_file_size=32 << 20)
        except plyvel.IOError as exc:
            raise StorageError(f"cannot open {path}: {exc} (is another hcnode using this data dir?)") from None
        except plyvel.Error as exc:
            raise StorageError(f"cannot open {path}: {exc}") from None
        self._state = self.db.prefixed_db(b"s/")
        # State reads add the prefix themselves: plyvel's prefixed view costs ~0.5 us more per get,
        # and a claim reads ~4 keys the store does not hold (its duplicate index, encounter, ...).
        self._get_raw = self.db.get
        # Committed state values read recently. Every block's claims read the payer's fee schedule
        # (10,000 codes); with a million claims in state each LevelDB read of an old key walks every
        # level, and that was a tenth of the applying thread. Only present values are kept (absent
        # keys, a duplicate check's usual answer, are unique per claim); commit_block drops every
        # key it writes. The lock orders a read's insert against a commit's drop: a read that began
        # before a commit inserts only if no commit finished meanwhile (``_commits`` unchanged), so
        # a value read just before a block landed can never outlive it in the cache.
        self._recent: dict[bytes, bytes] = {}
        self._commits = 0
        self._recent_lock = threading.Lock()
        # The key filter (KeyFilter) is built from a snapshot in a thread, so a node with a large state
        # opens at once; reads go to LevelDB until it is ready. Keys committed meanwhile are kept in
        # ``_filter_backlog`` and added before it is used. ``_filter_lock`` orders a commit (its keys and
        # its write) against the moment a build takes its snapshot: every key is in the snapshot or in
        # the backlog. When the state outgrows the filter a bigger one is built the same way.
        self._filter: KeyFilter | None = None
        self._filter_backlog: list[bytes] | None = None
        self._filter_lock = threading.Lock()
        self._filter_thread: threading.Thread | None = None
        self._closing = False
        self._start_filter_build()

    def close(self) -> None:
        self._closing = True
        if self._filter_thread is not None:
            self._filter_thread.join()  # its iterator must not outlive the database
        if self._filter is not None and not self.db.closed:  # a size hint for the next open's build (speed only)
            self.db.put(FILTER_SIZE_HINT, self._filter.count.to_bytes(8, "big"))
        self.db.close()

    # The key filter
    def _start_filter_build(self) -> None:
        if self._filter_thread is not None and self._filter_thread.is_alive():
            return
        self._filter_thread = threading.Thread(target=self._build_key_filter, name="key-filter", daemon=True)
        self._filter_thread.start()

    def _build_key_filter(self) -> None:
        """Build a filter over every state key and start using it (the thread's work; tests run its two halves)."""
        snapshot, backlog = self._begin_filter_build()
        self._finish_filter_build(snapshot, backlog)

    def _begin_filter_build(self) -> tuple[Any, list[bytes]]:
        with self._filter_lock:
            backlog: list[bytes] = []
            self._filter_backlog = backlog
            return self.db.snapshot(), backlog

    def _finish_filter_build(self, snapshot: Any, backlog: list[bytes]) -> None:
        """One pass over the snapshot's keys into a filter sized for twice the keys expected (the
        last close's count, or twice the filter in use); a second, at the size counted, if more came."""
        try:
            current = self._filter
            hint = self.db.get(FILTER_SIZE_HINT)
            expected = max(0 if hint is None else int.from_bytes(hint, "big"),
                           0 if current is None else current.capacity)
            built: KeyFilter | None = None
            while built is None:
                candidate, keys = KeyFilter(2 * expected), 0
                for db_key in snapshot.iterator(prefix=b"s/", include_value=False):
                    candidate.add(db_key[2:])
                    keys += 1
                    if self._closing:
                        return
                if keys <= candidate.capacity:
                    built = candidate
                expected = keys
        finally:
            snapshot.close()
        with self._filter_lock:
            for key in backlog:
                built.add(key)
            self._filter = built
            self._filter_backlog = None

    # StateReader for the pure cores
    def get(self, key: bytes) -> bytes | None:
        value = self._recent.get(key)
        if value is not None:
            return value
        key_filter = self._filter
        if key_filter is not None and not key_filter.may_contain(key):
            return None
        commits = self._commits
        value = self._get_raw(b"s/" + key)
        if value is not None:
            with self._recent_lock:
                if commits == self._commits:
                    if len(self._recent) >= RECENT_VALUES:
                        self._recent.clear()
                    self._recent[key] = value
        return value  # type: ignore[no-any-return]

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        yield from self._state.iterator(prefix=prefix)

    @property
    def height(self) -> int | None:
        raw = self.db.get(b"m/height")
        return None if raw is None else int.from_bytes(raw, "big")

    @property
    def head(self) -> bytes:
        return self.db.get(b"m/head") or b""

    @property
    def state_root(self) -> bytes:
        return self.db.get(b"m/root") or bytes(32)

    @property
    def genesis_document(self) -> bytes | None:
        return self.db.get(b"m/genesis")  # type: ignore[no-any-return]

    def block_bytes(self, height: int) -> bytes | None:
        return self.db.get(b"b/" + _height(height))  # type: ignore[no-any-return]

    def height_of(self, block_hash: bytes) -> int | None:
        raw = self.db.get(b"h/" + block_hash)
        return None if raw is None else int.from_bytes(raw, "big")

    def has_tx(self, tx_hash: bytes) -> bool:
        return self.db.get(b"t/" + tx_hash) is not None

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        raw = self.db.get(b"t/" + tx_hash)
        if raw is None:
            return None
        height, index = cbor2.loads(raw)  # our own write: the fast trusted decoder
        return height, index

    def receipt_bytes(self, tx_hash: bytes) -> bytes | None:
        location = self.tx_location(tx_hash)
        if location is None:
            return None
        return self.db.get(b"r/" + _height(location[0]) + location[1].to_bytes(4, "big"))  # type: ignore[no-any-return]

    def block_receipts(self, height: int) -> list[bytes]:
        """Every receipt of a block in order: the leaves of its receipt_root."""
        return [value for _, value in self.db.iterator(prefix=b"r/" + _height(height))]

    def commit_block(self, block: Block, execution: Execution, genesis_document: bytes | None = None,
                     extra: dict[bytes, bytes] | None = None) -> None:
        """Write the block and everything it changes atomically and durably.

        ``extra`` are further keys written in the same batch (the Raft driver records the
        log index the block came from, so a restart knows exactly what is applied).
        """
        header = block.header
        expected = 0 if self.height is None else self.height + 1
        if header.height != expected:
            raise StorageError(f"block {header.height} does not follow the stored height {self.height}")
        with self._filter_lock:
            self._write_block(block, execution, genesis_document, extra)
        with self._recent_lock:  # after the batch is durable: see __init__
            self._commits += 1
            recent = self._recent
            for key in execution.writes:
                recent.pop(key, None)
        key_filter = self._filter
        if key_filter is not None and key_filter.count > key_filter.capacity:
            self._start_filter_build()

    def _write_block(self, block: Block, execution: Execution, genesis_document: bytes | None,
                     extra: dict[bytes, bytes] | None) -> None:
        """The block's batch; with ``_filter_lock`` held, new keys enter the filter (or the backlog of
        one being built) before LevelDB holds them, so the filter never calls a stored key absent."""
        new_keys = [key for key, value in execution.writes.items() if value is not None]
        key_filter = self._filter
        if key_filter is not None:
            for key in new_keys:
                key_filter.add(key)  # a method call, not a bound ``add``: compiled, a direct call
        if self._filter_backlog is not None:
            self._filter_backlog.extend(new_keys)
        header = block.header
        block_hash = header.hash
        with self.db.write_batch(transaction=True, sync=True) as batch:
            batch.put(b"b/" + _height(header.height), block.encode())
            batch.put(b"h/" + block_hash, _height(header.height))
            height = header.height
            db_get, put = self.db.get, batch.put
            position = b"r/" + _height(height)
            indexed: set[bytes] = set()
            for index, (tx_hash, receipt, outcome) in enumerate(zip(execution.tx_hashes, execution.encoded_receipts,
                                                                     execution.receipts)):
                put(position + index.to_bytes(4, "big"), receipt)
                # The index points at the inclusion that counted: the one that applied (at most one per
                # hash, since applying consumes its nonce). A rejected inclusion (a replay, or a nonce
                # not yet due) is indexed only if the hash has no inclusion yet, so the read of the
                # index happens for rejected transactions only, not once per applied one.
                if outcome["status"] == "ok":
                    put(b"t/" + tx_hash, cbor2.dumps([height, index]))  # two ints: canonical as is
                    indexed.add(tx_hash)
                elif tx_hash not in indexed and db_get(b"t/" + tx_hash) is None:
                    put(b"t/" + tx_hash, cbor2.dumps([height, index]))  # two ints: canonical as is
                    indexed.add(tx_hash)
            for key, value in execution.writes.items():
                if value is None:
                    batch.delete(b"s/" + key)
                else:
                    put(b"s/" + key, value)
            if genesis_document is not None:
                batch.put(b"m/genesis", genesis_document)
            for key, value in (extra or {}).items():
                batch.put(key, value)
            batch.put(b"m/height", _height(header.height))
            batch.put(b"m/head", block_hash)
            batch.put(b"m/root", header.state_root)
