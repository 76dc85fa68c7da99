"""The node's store: blocks and receipts in append-only files, everything else in LevelDB (plyvel).

Owns: the on-disk layout and the atomicity of a block. Must not know how blocks
are made or what state means.

Layout of a store directory ``DIR`` (a LevelDB, with the block files inside it):
    DIR/blocks/<6-digit segment>.blk  per block, its encoding then its receipts (a CBOR
                                       array of byte strings), appended; a segment is closed
                                       once it passes BLOCK_SEGMENT_BYTES
    m/height   8-byte height of the last applied block      m/head   its hash
    m/root     its state root                               m/genesis  the genesis document
    m/blocks   [segment, end]: how far the block files are committed
    m/format   the layout's version (STORE_FORMAT)
    b/<8-byte height>  [segment, offset, block length, its crc32, receipts length, their crc32]
    h/<hash>   8-byte height
    t/<tx hash>        height, index, segment, receipt offset, receipt length (big-endian 8, 4, 4, 8, 4 bytes)
    s/<state key>      state value

Why files: blocks and receipts are written once and never change, but in LevelDB they were
most of what its compactions rewrote again and again (about 1 kB per claim, merged level
after level). Appended to a file they are written once.

Why it stays atomic: a block's record is appended and synced (fdatasync) first; then ONE
LevelDB write batch with sync=True holds its index entries, state writes, the new height
and ``m/blocks``. A ``kill -9`` or power loss at any instant leaves either the whole block or
none of it: a record the batch never named is cut off (truncated) when the store opens.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import zlib
from concurrent import futures
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import cbor2
import plyvel

from hcnode import codec
from hcnode.chain.block import Block
from hcnode.chain.execute import Execution

__all__ = ["Store", "StorageError"]


class StorageError(Exception):
    """The store cannot be opened or is not what it should be."""


RECENT_VALUES = 100_000  # state values kept in memory after a read (a few MB); all are dropped when full
FILTER_MIN_BITS = 1 << 23  # 1 MB: a store's key filter starts at this size (or at its size when last closed)
FILTER_GROWTH: Final = 4  # each new layer of a key filter that filled up is this many times larger
FILTER_BITS_PER_KEY: Final = 10  # with 6 probes in one cache line: ~1.3% of absent keys still go to LevelDB
_FILTER_PROBES: Final = 6
FILTER_SIZE_HINT: Final = b"m/filter-keys"  # the key filter's count when the store last closed
BLOCK_SEGMENT_BYTES = 256 << 20  # a block file is closed and the next begun once it is this long
STORE_FORMAT: Final = 2  # 1: blocks and receipts inside LevelDB (opened by moving them to block files)
_FORMAT_KEY: Final = b"m/format"
_BLOCKS_END: Final = b"m/blocks"
_MOVED_HEIGHT: Final = b"m/format1-moved"  # the last block a move from format 1 has finished
_OPEN_SEGMENTS: Final = 64  # block files kept open for reading
# A t/ entry, fixed width: written for every transaction, packed in a tenth of a cbor2.dumps.
_TX_ENTRY: Final = struct.Struct(">QIIQI")
_HASH_BITS: Final = (1 << 60) - 1  # keeps the probe arithmetic within machine integers (mypyc)


class _FilterLayer:
    """One blocked Bloom filter: a key's probes all fall in one 64-byte line (the hash's low bits
    choose it), so a lookup costs one memory fetch, not six; at a million claims the filter is
    several MB and each fetch a cache miss (measured: adds 2.25 -> 1.23 us, present keys 1.80 ->
    0.90 us, at the cost of 1.3% false positives instead of 0.8%)."""

    __slots__ = ("bits", "lines", "capacity", "count")

    def __init__(self, bits: int) -> None:
        self.bits = bytearray(bits // 8)
        self.lines = bits // 512 - 1  # a mask: the number of 512-bit lines is a power of two
        self.capacity = bits // FILTER_BITS_PER_KEY
        self.count = 0  # distinct keys added (a key whose bits were all set already is not counted)

    def add(self, h: int) -> None:
        bits: Any = self.bits
        base, new = (h & self.lines) << 6, False
        h >>= 24
        for _ in range(_FILTER_PROBES):
            position = h & 511
            # Compiled, a bytearray index is a boxed int (the filter is MBs): box it once for the read
            # and the write, and or the bit in as a native int, not with a generic ``|=`` on the item.
            byte: object = base + (position >> 3)
            old: int = bits[byte]
            bit = 1 << (position & 7)
            if not old & bit:
                bits[byte] = old | bit
                new = True
            h >>= 6
        if new:
            self.count += 1

    def may_contain(self, h: int) -> bool:
        bits, base = self.bits, (h & self.lines) << 6
        h >>= 24
        for _ in range(_FILTER_PROBES):
            position = h & 511
            if not bits[base + (position >> 3)] & (1 << (position & 7)):
                return False
            h >>= 6
        return True


class KeyFilter:
    """A Bloom filter over state keys (and the transaction index's keys, see ``Store.has_tx``):
    "certainly absent" answered in memory.

    Most keys a claim reads are absent (its duplicate-check index, an encounter, a
    deregistration); LevelDB answers an absent key by probing every level, so that read
    grew with the state (x1.85 from 160k to 1.15M claims). The filter answers it in one
    memory probe per layer at any size. It never answers "absent" for a key it was given (no
    false negatives), so a read it lets through is exactly a LevelDB read. In memory only:
    Python's hash is per process, and the store builds the filter, in one layer, when it opens.

    It grows without a rebuild: once its newest layer holds as many keys as it was sized for,
    new keys go to a new layer FILTER_GROWTH times larger; a lookup asks every layer (one
    cache line each), and the false positives add up (~1.3% per full layer). A rebuild from
    LevelDB at a million claims read 3.4M keys in a Python thread that shared the GIL with the
    applying thread for tens of seconds: claims/s fell by a fifth meanwhile.
    """

    def __init__(self, expected_keys: int) -> None:
        bits = FILTER_MIN_BITS
        while bits < expected_keys * FILTER_BITS_PER_KEY:
            bits *= 2
        self.newest = _FilterLayer(bits)
        self.older: list[_FilterLayer] = []

    @property
    def count(self) -> int:
        return self.newest.count + sum(layer.count for layer in self.older)

    @property
    def capacity(self) -> int:
        return self.newest.capacity + sum(layer.capacity for layer in self.older)

    @property
    def layers(self) -> int:
        return 1 + len(self.older)

    def add(self, key: bytes) -> None:
        h = hash(key) & _HASH_BITS
        for layer in self.older:
            if layer.may_contain(h):
                return  # held already (or a false positive there: then it is never called absent either)
        newest = self.newest
        if newest.count >= newest.capacity:
            self.older.append(newest)
            newest = self.newest = _FilterLayer(len(newest.bits) * 8 * FILTER_GROWTH)
        newest.add(h)

    def may_contain(self, key: bytes) -> bool:
        h = hash(key) & _HASH_BITS
        if self.newest.may_contain(h):
            return True
        for layer in self.older:
            if layer.may_contain(h):
                return True
        return False


def _height(h: int) -> bytes:
    return h.to_bytes(8, "big")


class BlockFiles:
    """Append-only segment files of block records; where each record lies is kept in LevelDB.

    One writer (the store's commit) appends with ``pwrite`` at the known end and syncs before
    the LevelDB batch that names the record; readers use ``pread``, so reads from other threads
    (RPC, block sync) never move a shared file position.
    """

    def __init__(self, directory: Path, segment: int, end: int) -> None:
        """Open at the committed end (``segment``, ``end``); whatever lies beyond it is a crash's leftover."""
        directory.mkdir(exist_ok=True)
        self.directory = directory
        for path in directory.glob("*.blk"):
            if not path.stem.isdigit():
                raise StorageError(f"{path}: not a block file of this store")
            if int(path.stem) > segment:
                path.unlink()  # begun after the last committed block
        self.segment, self.end = segment, end
        self._fd = self._create(segment, truncate=False)
        size = os.fstat(self._fd).st_size
        if size < end:
            os.close(self._fd)
            raise StorageError(f"{self._path(segment)} holds {size} bytes but the store committed {end}: "
                               f"block records are missing")
        if size > end:
            os.ftruncate(self._fd, end)
            os.fsync(self._fd)
        self._readers: dict[int, int] = {}
        self._readers_lock = threading.Lock()

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:06d}.blk"

    def _create(self, segment: int, truncate: bool) -> int:
        """Open a segment for writing, creating it; its directory entry is synced, so a segment the
        store names cannot vanish in a power loss."""
        fd = os.open(self._path(segment), os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if truncate else 0), 0o644)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return fd

    def append(self, record: bytes) -> tuple[int, int]:
        """Write ``record`` durably; returns (segment, offset). The caller commits the new end."""
        segment, offset = self.place()
        self.write(offset, record)
        self.end = offset + len(record)
        return segment, offset

    def place(self) -> tuple[int, int]:
        """(segment, offset) where the next record goes: the end, in the next segment if this one is full."""
        if self.end >= BLOCK_SEGMENT_BYTES:
            fd = self._create(self.segment + 1, truncate=True)
            os.close(self._fd)
            self._fd, self.segment, self.end = fd, self.segment + 1, 0
        return self.segment, self.end

    def write(self, offset: int, record: bytes) -> None:
        """Write ``record`` at ``offset`` of the current segment and sync it; ``end`` is the caller's to move."""
        written = os.pwrite(self._fd, record, offset)
        while written < len(record):
            written += os.pwrite(self._fd, record[written:], offset + written)
        os.fdatasync(self._fd)

    def read(self, segment: int, offset: int, length: int) -> bytes:
        # Under the lock: a reader's descriptor must not be closed (or reused) while it is read.
        with self._readers_lock:
            fd = self._readers.get(segment)
            if fd is None:
                if len(self._readers) >= _OPEN_SEGMENTS:
                    self._close_readers()
                try:
                    fd = self._readers[segment] = os.open(self._path(segment), os.O_RDONLY)
                except FileNotFoundError:
                    raise StorageError(f"{self._path(segment)} is missing") from None
            data = os.pread(fd, length, offset)
        if len(data) != length:
            raise StorageError(f"{self._path(segment)} ends before byte {offset + length}: a block record is cut")
        return data

    def _close_readers(self) -> None:
        for fd in self._readers.values():
            os.close(fd)
        self._readers.clear()

    def close(self) -> None:
        with self._readers_lock:
            self._close_readers()
        os.close(self._fd)


def _block_record(block_bytes: bytes, receipts: list[bytes]) -> tuple[bytes, list[int]]:
    """A block's record (its encoding, then its receipts as a CBOR array of byte strings) and the
    offset of each receipt's bytes within the record."""
    parts = [block_bytes, codec.head(codec.MAJOR_ARRAY, len(receipts))]
    offsets: list[int] = []
    position = len(block_bytes) + len(parts[1])
    head, major_bytes = codec.head, codec.MAJOR_BYTES
    for receipt in receipts:
        prefix = head(major_bytes, len(receipt))
        position += len(prefix)
        offsets.append(position)
        parts.append(prefix)
        parts.append(receipt)
        position += len(receipt)
    return b"".join(parts), offsets


def _block_entry(segment: int, offset: int, block_length: int, record: bytes) -> bytes:
    """The b/<height> value: where the record lies, and a checksum of each part (a disk's bit rot is
    reported as such, not served)."""
    return cbor2.dumps([segment, offset, block_length, zlib.crc32(record[:block_length]),
                        len(record) - block_length, zlib.crc32(record[block_length:])])


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
        # the backlog. It grows in layers as the state does (KeyFilter).
        self._filter: KeyFilter | None = None
        self._filter_backlog: list[bytes] | None = None
        self._filter_lock = threading.Lock()
        self._filter_thread: threading.Thread | None = None
        self._closing = False
        # One thread writes each block's record to its file while commit_block fills the batch (see _write_block).
        self._record_writer = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="block-files")
        try:
            self._blocks = self._open_block_files(path)
        except BaseException:
            self.db.close()
            raise
        self._start_filter_build()

    def _open_block_files(self, path: Path) -> BlockFiles:
        stored = self.db.get(_FORMAT_KEY)
        if stored is None and self.db.get(b"m/height") is not None:
            return self._move_blocks_to_files(path)
        if stored is not None and int.from_bytes(stored, "big") != STORE_FORMAT:
            raise StorageError(f"{path} has store format {int.from_bytes(stored, 'big')}; this hcnode reads "
                               f"format {STORE_FORMAT} (and moves format 1 forward)")
        raw = self.db.get(_BLOCKS_END)
        segment, end = (0, 0) if raw is None else cbor2.loads(raw)
        files = BlockFiles(path / "blocks", segment, end)
        if stored is None:
            self.db.put(_FORMAT_KEY, STORE_FORMAT.to_bytes(2, "big"), sync=True)
        return files

    def _move_blocks_to_files(self, path: Path) -> BlockFiles:
        """Format 1 -> 2: each block and its receipts leave LevelDB for the block files, a block per
        synced batch, with the progress in the same batch, so an interrupted move resumes."""
        raw_end, raw_moved = self.db.get(_BLOCKS_END), self.db.get(_MOVED_HEIGHT)
        segment, end = (0, 0) if raw_end is None else cbor2.loads(raw_end)
        files = BlockFiles(path / "blocks", segment, end)
        first = 0 if raw_moved is None else int.from_bytes(raw_moved, "big") + 1
        last = int.from_bytes(self.db.get(b"m/height"), "big")
        for height in range(first, last + 1):
            block_bytes = self.db.get(b"b/" + _height(height))
            if block_bytes is None:
                raise StorageError(f"{path}: block {height} is missing (store format 1)")
            receipt_prefix = b"r/" + _height(height)
            receipts = [value for _, value in self.db.iterator(prefix=receipt_prefix)]
            record, offsets = _block_record(block_bytes, receipts)
            segment, offset = files.append(record)
            with self.db.write_batch(transaction=True, sync=True) as batch:
                batch.put(b"b/" + _height(height), _block_entry(segment, offset, len(block_bytes), record))
                for index, tx in enumerate(cbor2.loads(block_bytes)[2]):
                    tx_key = b"t/" + hashlib.sha256(tx).digest()
                    location = self.db.get(tx_key)
                    # A format-1 entry is CBOR [height, index] (under 28 bytes); one moved already is not.
                    if (location is not None and len(location) != _TX_ENTRY.size
                            and cbor2.loads(location) == [height, index]):
                        batch.put(tx_key, _TX_ENTRY.pack(height, index, segment, offset + offsets[index],
                                                         len(receipts[index])))
                for key in self.db.iterator(prefix=receipt_prefix, include_value=False):
                    batch.delete(key)
                batch.put(_BLOCKS_END, cbor2.dumps([segment, files.end]))
                batch.put(_MOVED_HEIGHT, _height(height))
        with self.db.write_batch(transaction=True, sync=True) as batch:
            batch.delete(_MOVED_HEIGHT)
            batch.put(_FORMAT_KEY, STORE_FORMAT.to_bytes(2, "big"))
        return files

    def close(self) -> None:
        self._closing = True
        if self._filter_thread is not None:
            self._filter_thread.join()  # its iterator must not outlive the database
        if self._filter is not None and not self.db.closed:  # a size hint for the next open's build (speed only)
            self.db.put(FILTER_SIZE_HINT, self._filter.count.to_bytes(8, "big"))
        self._record_writer.shutdown()
        self._blocks.close()
        self.db.close()

    # The key filter
    def _start_filter_build(self) -> None:
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
        last close's count); a second, at the size counted, if more came (one layer serves lookups
        best: see KeyFilter)."""
        try:
            hint = self.db.get(FILTER_SIZE_HINT)
            expected = 0 if hint is None else int.from_bytes(hint, "big")
            built: KeyFilter | None = None
            while built is None:
                candidate, keys = KeyFilter(2 * expected), 0
                # State keys without their prefix, transaction index keys whole (see has_tx).
                for prefix, strip in ((b"s/", 2), (b"t/", 0)):
                    for db_key in snapshot.iterator(prefix=prefix, include_value=False):
                        candidate.add(db_key[strip:])
                        keys += 1
                        if self._closing:
                            return
                if candidate.layers == 1:
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

    def _record_part(self, height: int, receipts: bool) -> bytes | None:
        entry = self.db.get(b"b/" + _height(height))
        if entry is None:
            return None
        segment, offset, block_length, block_crc, receipts_length, receipts_crc = cbor2.loads(entry)
        if receipts:
            offset, length, crc = offset + block_length, receipts_length, receipts_crc
        else:
            length, crc = block_length, block_crc
        data = self._blocks.read(segment, offset, length)
        if zlib.crc32(data) != crc:
            raise StorageError(f"block {height}: the {'receipts' if receipts else 'block'} in block file "
                               f"{segment:06d} at byte {offset} fail their checksum (the disk changed them)")
        return data

    def block_bytes(self, height: int) -> bytes | None:
        return self._record_part(height, receipts=False)

    def height_of(self, block_hash: bytes) -> int | None:
        raw = self.db.get(b"h/" + block_hash)
        return None if raw is None else int.from_bytes(raw, "big")

    def has_tx(self, tx_hash: bytes) -> bool:
        """Every node asks this of every transaction it is sent, almost always of one it lacks: the key
        filter holds the index keys too (as their LevelDB key "t/" + hash; a state key of that shape
        would only make a false positive), so the usual answer comes from memory."""
        index_key = b"t/" + tx_hash
        key_filter = self._filter
        if key_filter is not None and not key_filter.may_contain(index_key):
            return False
        return self.db.get(index_key) is not None

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        raw = self.db.get(b"t/" + tx_hash)
        if raw is None:
            return None
        height, index, _, _, _ = _TX_ENTRY.unpack(raw)
        return height, index

    def receipt_bytes(self, tx_hash: bytes) -> bytes | None:
        """One receipt, read where the index says (its block's checksum covers it only in ``block_receipts``)."""
        raw = self.db.get(b"t/" + tx_hash)
        if raw is None:
            return None
        _, _, segment, offset, length = _TX_ENTRY.unpack(raw)
        return self._blocks.read(segment, offset, length)

    def block_receipts(self, height: int) -> list[bytes]:
        """Every receipt of a block in order: the leaves of its receipt_root."""
        receipts = self._record_part(height, receipts=True)
        return [] if receipts is None else list(cbor2.loads(receipts))

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

    def _write_block(self, block: Block, execution: Execution, genesis_document: bytes | None,
                     extra: dict[bytes, bytes] | None) -> None:
        """The block's record in its file, then its batch (``_fill_and_write_batch``), with ``_filter_lock`` held."""
        block_bytes = block.encode()
        record, receipt_offsets = _block_record(block_bytes, execution.encoded_receipts)
        # The record is written and synced in the writer thread while this one fills the batch (pwrite copies
        # MBs and releases the GIL); the batch is written only once the record is durable.
        segment, offset = self._blocks.place()
        record_written = self._record_writer.submit(self._blocks.write, offset, record)
        try:
            self._fill_and_write_batch(block, execution, segment, offset, record, receipt_offsets, block_bytes,
                                       genesis_document, extra, record_written)
        finally:
            futures.wait([record_written])  # never leave (even on an error) with the record still being written
        self._blocks.end = offset + len(record)

    def _fill_and_write_batch(self, block: Block, execution: Execution, segment: int, offset: int, record: bytes,
                              receipt_offsets: list[int], block_bytes: bytes, genesis_document: bytes | None,
                              extra: dict[bytes, bytes] | None, record_written: futures.Future[None]) -> None:
        """New keys enter the filter (or the backlog of one being built) before LevelDB holds them, so the
        filter never calls a stored key absent; the batch is written once ``record_written`` is done."""
        # The index points at the inclusion that counted: the one that applied (at most one per hash,
        # since applying consumes its nonce). A rejected inclusion (a replay, or a nonce not yet due) is
        # indexed only if the hash has no inclusion yet, so the index is asked (``has_tx``: mostly the key
        # filter) for rejected transactions only, not once per applied one.
        indexed: dict[bytes, int] = {}  # tx hash -> index of the inclusion the index will name
        for index, (tx_hash, outcome) in enumerate(zip(execution.tx_hashes, execution.receipts)):
            if outcome["status"] == "ok" or (tx_hash not in indexed and not self.has_tx(tx_hash)):
                indexed[tx_hash] = index
        new_keys = [key for key, value in execution.writes.items() if value is not None]
        new_keys.extend(b"t/" + tx_hash for tx_hash in indexed)  # see has_tx
        key_filter = self._filter
        if key_filter is not None:
            for key in new_keys:
                key_filter.add(key)  # a method call, not a bound ``add``: compiled, a direct call
        if self._filter_backlog is not None:
            self._filter_backlog.extend(new_keys)
        header = block.header
        block_hash = header.hash
        with self.db.write_batch(transaction=True, sync=True) as batch:
            height = header.height
            batch.put(b"b/" + _height(height), _block_entry(segment, offset, len(block_bytes), record))
            batch.put(b"h/" + block_hash, _height(height))
            # Each group in key order: LevelDB inserts a batch into its memtable (a skip list) one key at a
            # time, and sorted keys follow each other's paths through it (measured, 20,000 keys of one
            # block into a 64 MB memtable: 55 -> 20 ms for the write, after 5 ms to sort the keys).
            put = batch.put
            writes = execution.writes
            for key in sorted(writes):
                value = writes[key]
                if value is None:
                    batch.delete(b"s/" + key)
                else:
                    put(b"s/" + key, value)
            receipts = execution.encoded_receipts
            for tx_hash in sorted(indexed):
                index = indexed[tx_hash]
                put(b"t/" + tx_hash, _TX_ENTRY.pack(height, index, segment, offset + receipt_offsets[index],
                                                    len(receipts[index])))
            if genesis_document is not None:
                batch.put(b"m/genesis", genesis_document)
            for key, value in (extra or {}).items():
                batch.put(key, value)
            batch.put(_BLOCKS_END, cbor2.dumps([segment, offset + len(record)]))
            batch.put(b"m/height", _height(header.height))
            batch.put(b"m/head", block_hash)
            batch.put(b"m/root", header.state_root)
            record_written.result()  # raises the write's error, if any: then the batch is dropped unwritten
