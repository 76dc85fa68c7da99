"""The Raft log and hard state on disk: a ``consensus.Storage`` mirrored into the node's LevelDB.

Owns: the ``R/`` prefix of the node's LevelDB and the durability of Raft's
promises. Must not know blocks, peers or trio: entry data is opaque bytes.

Layout (prefix ``R/`` in the same LevelDB as the chain, see ``store``):
    R/hs              canonical CBOR [term, vote or null, commit]
    R/base            [index, term] of the compaction (or restore) point
    R/e/<8-byte idx>  canonical CBOR [term, type, data]

Why one synced batch per Ready: Raft's safety needs the vote and the appended
entries on disk BEFORE any message produced with them leaves the node (a vote
granted twice in a term after a crash, or an append acknowledged but lost,
breaks the quorum arithmetic). ``persist`` writes the Ready's restore point,
entries (dropping any conflicting stored suffix) and hard state in ONE LevelDB
batch with ``sync=True``, so ``kill -9`` at any instant leaves all of it or
none of it, and the driver sends only after it returns.

Reads are served from an in-memory ``MemoryStorage`` loaded at start-up; the
log stays small because the driver compacts applied entries (the chain itself,
with block sync, is the long-term record).
"""

from __future__ import annotations

from typing import Any

from hcnode import codec
from hcnode.consensus import Entry, EntryType, HardState, MemoryStorage, Ready

__all__ = ["LevelDBRaftStorage"]

_HARD_STATE = b"R/hs"
_BASE = b"R/base"
_ENTRY = b"R/e/"
_ENTRY_END = b"R/e0"  # just past every R/e/ key


def _entry_key(index: int) -> bytes:
    return _ENTRY + index.to_bytes(8, "big")


def _encode_entry(entry: Entry) -> bytes:
    return codec.encode([entry.term, entry.type.value, entry.data])


class LevelDBRaftStorage(MemoryStorage):
    """``MemoryStorage`` for reads, LevelDB (same database as the chain) for durability."""

    def __init__(self, db: Any) -> None:
        super().__init__()
        self._db = db
        self._load()

    def _load(self) -> None:
        """Rebuild the memory image from disk. Our own writes: decoded with the strict codec anyway."""
        raw = self._db.get(_BASE)
        if raw is not None:
            index, term = codec.decode(raw)
            MemoryStorage.restore(self, index, term)
        entries = []
        for key, value in self._db.iterator(prefix=_ENTRY):
            index = int.from_bytes(key[len(_ENTRY):], "big")
            term, kind, data = codec.decode(value, codec.DecodeLimits(max_bytes=1 << 30, max_items=4))
            entries.append(Entry(term=term, index=index, data=data, type=EntryType(kind)))
        if entries:
            MemoryStorage.append(self, entries)
        raw = self._db.get(_HARD_STATE)
        if raw is not None:
            term, vote, commit = codec.decode(raw)
            self.set_hard_state(HardState(term, vote, commit))

    def persist(self, rd: Ready) -> None:
        """Write the Ready's restore point, entries and hard state in one batch, synced if ``rd.must_sync``."""
        if not rd.must_persist:
            return
        with self._db.write_batch(transaction=True, sync=rd.must_sync) as batch:
            if rd.restore is not None:
                for key in self._db.iterator(prefix=_ENTRY, include_value=False):
                    batch.delete(key)
                batch.put(_BASE, codec.encode(list(rd.restore)))
            if rd.entries:
                # A new leader may overwrite our uncommitted tail: drop stored entries past the new last one.
                last_new = rd.entries[-1].index
                for key in self._db.iterator(start=_entry_key(last_new + 1), stop=_ENTRY_END, include_value=False):
                    batch.delete(key)
                for entry in rd.entries:
                    batch.put(_entry_key(entry.index), _encode_entry(entry))
            hard = rd.hard_state
            if rd.restore is not None and hard is None:
                hard = self.initial_state()
            if hard is not None:
                commit = max(hard.commit, rd.restore[0]) if rd.restore is not None else hard.commit
                batch.put(_HARD_STATE, codec.encode([hard.term, hard.vote, commit]))
        # The memory image follows the disk only once the batch is durable.
        if rd.restore is not None:
            MemoryStorage.restore(self, *rd.restore)
        if rd.entries:
            MemoryStorage.append(self, rd.entries)
        if rd.hard_state is not None:
            hs = rd.hard_state
            if rd.restore is not None and hs.commit < rd.restore[0]:
                hs = HardState(hs.term, hs.vote, rd.restore[0])
            self.set_hard_state(hs)

    def compact(self, index: int) -> None:
        """Drop applied entries up to ``index``. Not synced: losing it to a crash only keeps more log."""
        before = self.first_index()
        MemoryStorage.compact(self, index)
        if self.first_index() == before:
            return
        with self._db.write_batch(transaction=True) as batch:
            batch.put(_BASE, codec.encode([index, self.term(index)]))
            for key in self._db.iterator(start=_ENTRY, stop=_entry_key(index + 1), include_value=False):
                batch.delete(key)

