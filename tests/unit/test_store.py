"""``Store`` on a real LevelDB in a temp dir: the transaction index after blocks that include a hash twice,
the block files (a crash's leftover cut off, bit rot reported, segments, a format-1 store moved forward),
the recently read state values after blocks that change them, and the key filter that answers reads of
absent keys (never for a stored key: after a reopen, during a build, after it grows)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import cbor2
import plyvel
import pytest

from hcnode.chain import BlockHeader, Execution, genesis_block, merkle, sign_block
from hcnode.chain.execute import nonce_key
from hcnode.node.store import FILTER_SIZE_HINT, KeyFilter, StorageError, Store
from tests.unit.chainkit import LocalChain, key


def stored_chain(path: Path) -> tuple[LocalChain, Store]:
    chain = LocalChain()
    store = Store(path)
    block0, writes = genesis_block(chain.genesis, chain.apps)
    store.commit_block(block0, Execution(writes, [], [], [block0.txs[0]], block0.header.tx_root, merkle.root([]),
                                         block0.header.state_root), genesis_document=block0.txs[0])
    return chain, store


def commit_next(chain: LocalChain, store: Store, *txs: bytes) -> list[str]:
    receipts = chain.block(*txs)
    assert chain.last is not None
    store.commit_block(chain.blocks[-1], chain.last)
    return [r.get("code", "ok") for r in receipts]


def test_tx_index_points_at_the_inclusion_that_applied(tmp_path: Path) -> None:
    chain, store = stored_chain(tmp_path / "db")
    patient = key(7)
    first = chain.tx(patient, "registry.patient_register", {}, nonce=0)
    second = chain.tx(patient, "billing.patient_deregister", {}, nonce=1)
    # The nonce-1 transaction comes too early (rejected, indexed as its only inclusion so far) ...
    assert commit_next(chain, store, second) == ["bad_nonce"]
    assert store.tx_location(second_hash := chain.last.tx_hashes[0]) == (1, 0)
    # ... then applies after nonce 0, and is replayed in the same block and in the next one.
    assert commit_next(chain, store, first, second, second) == ["ok", "ok", "replayed_nonce"]
    assert store.tx_location(second_hash) == (2, 1)
    assert commit_next(chain, store, second) == ["replayed_nonce"]
    assert store.tx_location(second_hash) == (2, 1)
    assert store.receipt_bytes(second_hash) == store.block_receipts(2)[1]
    store.close()


def claim_chain(path: Path, blocks: int) -> tuple[LocalChain, Store]:
    """A stored chain of ``blocks`` blocks after genesis, each with a few accepted and rejected transactions."""
    chain, store = stored_chain(path)
    patient = key(7)
    for n in range(blocks):
        commit_next(chain, store, chain.tx(patient, "registry.patient_register" if n == 0 else
                                           "billing.patient_deregister", {}),
                    chain.tx(patient, "registry.patient_register", {}, nonce=99))
    return chain, store


def everything_read_back(chain: LocalChain, store: Store) -> None:
    """Every block, receipt list and transaction's receipt as committed."""
    for block in chain.blocks:
        height = block.header.height
        assert store.block_bytes(height) == block.encode()
        receipts = store.block_receipts(height)
        assert merkle.root(receipts) == block.header.receipt_root
        for index, tx in enumerate(block.txs):
            tx_hash = hashlib.sha256(tx).digest()
            if store.tx_location(tx_hash) == (height, index):
                assert store.receipt_bytes(tx_hash) == receipts[index]
    assert store.block_bytes(len(chain.blocks) + 1) is None and store.block_receipts(len(chain.blocks) + 1) == []


def test_a_block_record_appended_but_never_committed_is_cut_off_at_open(tmp_path: Path) -> None:
    chain, store = claim_chain(tmp_path / "db", 3)
    store.close()
    segment = tmp_path / "db" / "blocks" / "000000.blk"
    committed = segment.stat().st_size
    with segment.open("ab") as f:  # a crash after the record was written, before its batch
        f.write(b"\xa5" * 5000)
    (tmp_path / "db" / "blocks" / "000001.blk").write_bytes(b"\xa5" * 100)  # ... or after a new segment began
    store = Store(tmp_path / "db")
    assert segment.stat().st_size == committed
    assert not (tmp_path / "db" / "blocks" / "000001.blk").exists()
    patient = key(7)
    commit_next(chain, store, chain.tx(patient, "registry.patient_register", {}, nonce=99))
    everything_read_back(chain, store)
    store.close()


def test_a_block_file_shorter_than_the_store_committed_refuses_to_open(tmp_path: Path) -> None:
    _, store = claim_chain(tmp_path / "db", 2)
    store.close()
    segment = tmp_path / "db" / "blocks" / "000000.blk"
    segment.write_bytes(segment.read_bytes()[:-10])
    with pytest.raises(StorageError, match="000000.blk holds .* bytes but the store committed"):
        Store(tmp_path / "db")
    # the failed open released the database: it opens again once the file is whole
    segment.write_bytes(segment.read_bytes() + bytes(10))
    Store(tmp_path / "db").close()


def test_a_changed_byte_in_a_block_file_is_reported_not_served(tmp_path: Path) -> None:
    chain, store = claim_chain(tmp_path / "db", 2)
    store.close()
    segment = tmp_path / "db" / "blocks" / "000000.blk"
    data = bytearray(segment.read_bytes())
    # Records in order: genesis (its encoding, an empty receipt array), then block 1's encoding.
    data[len(chain.block0.encode()) + 1 + len(chain.blocks[0].encode()) // 2] ^= 0x01
    segment.write_bytes(bytes(data))
    store = Store(tmp_path / "db")
    with pytest.raises(StorageError, match="block 1: the block in block file 000000 at byte .* fail their checksum"):
        store.block_bytes(1)
    assert store.block_receipts(1) and store.block_bytes(2) == chain.blocks[1].encode()  # the rest reads
    store.close()


def test_a_block_whose_record_cannot_be_synced_is_not_committed(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The record is written in a thread while the batch fills; a failed write must drop the batch."""
    chain, store = claim_chain(tmp_path / "db", 2)
    head, root = store.head, store.state_root
    patient = key(7)
    nonce = store.get(nonce_key(patient.public))
    chain.block(chain.tx(patient, "billing.patient_deregister", {}))  # refused, but it consumes the nonce
    assert chain.last is not None and nonce_key(patient.public) in chain.last.writes

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fdatasync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        store.commit_block(chain.blocks[-1], chain.last)
    assert (store.height, store.head, store.state_root) == (2, head, root)
    assert store.block_bytes(3) is None and store.get(nonce_key(patient.public)) == nonce
    monkeypatch.undo()
    store.commit_block(chain.blocks[-1], chain.last)  # the disk has room again: the same block commits
    everything_read_back(chain, store)
    store.close()
    store = Store(tmp_path / "db")  # and nothing of the failed attempt is left to trip the next open
    assert store.height == 3
    everything_read_back(chain, store)
    store.close()


def test_block_files_roll_over_to_a_new_segment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hcnode.node.store.BLOCK_SEGMENT_BYTES", 1500)
    chain, store = claim_chain(tmp_path / "db", 6)
    assert len(list((tmp_path / "db" / "blocks").glob("*.blk"))) > 2
    everything_read_back(chain, store)
    store.close()
    store = Store(tmp_path / "db")
    everything_read_back(chain, store)
    store.close()


def _as_format_1(path: Path, chain: LocalChain) -> None:
    """Rewrite a store as hcnode wrote it before block files: blocks, receipts and [height, index] in LevelDB."""
    db = plyvel.DB(str(path))
    store_blocks = [(h, db.get(b"b/" + h.to_bytes(8, "big"))) for h in range(len(chain.blocks) + 1)]
    db.close()
    store = Store(path)
    old = {b"b/" + h.to_bytes(8, "big"): store.block_bytes(h) for h, _ in store_blocks}
    for h, _ in store_blocks:
        for index, receipt in enumerate(store.block_receipts(h)):
            old[b"r/" + h.to_bytes(8, "big") + index.to_bytes(4, "big")] = receipt
    locations = {}
    for block in chain.blocks:
        for tx in block.txs:
            tx_hash = hashlib.sha256(tx).digest()
            locations[b"t/" + tx_hash] = store.tx_location(tx_hash)
    store.close()
    db = plyvel.DB(str(path))
    for name, value in old.items():
        db.put(name, value)
    for name, location in locations.items():
        db.put(name, cbor2.dumps(list(location)))
    for name in (b"m/format", b"m/blocks"):
        db.delete(name)
    db.close()
    for segment in (path / "blocks").glob("*.blk"):
        segment.unlink()


def test_a_format_1_store_moves_its_blocks_and_receipts_to_block_files(tmp_path: Path) -> None:
    chain, store = claim_chain(tmp_path / "db", 3)
    store.close()
    _as_format_1(tmp_path / "db", chain)
    store = Store(tmp_path / "db")
    everything_read_back(chain, store)
    assert list(store.db.iterator(prefix=b"r/")) == []
    assert store.db.get(b"m/format") == (2).to_bytes(2, "big")
    store.close()
    store = Store(tmp_path / "db")  # and it opens as format 2 from then on
    everything_read_back(chain, store)
    store.close()


def commit_writes(store: Store, writes: dict[bytes, bytes | None]) -> None:
    """A block that only carries ``writes`` (the store checks heights, not roots)."""
    height = 0 if store.height is None else store.height + 1
    header = BlockHeader("hcnode-test", height, store.head or bytes(32), 0, bytes(32), bytes(32), bytes(32),
                         key(1).public)
    store.commit_block(sign_block(key(1), header, []),
                       Execution(writes, [], [], [], bytes(32), bytes(32), bytes(32)))


def test_a_value_read_before_a_block_is_never_served_after_it(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    commit_writes(store, {b"fee": b"1", b"gone": b"x"})
    assert (store.get(b"fee"), store.get(b"gone")) == (b"1", b"x")  # now kept in memory
    commit_writes(store, {b"fee": b"2", b"gone": None})
    assert (store.get(b"fee"), store.get(b"gone")) == (b"2", None)

    # A read that fetched the old value from LevelDB while a block writing the key committed
    # (another thread) must not leave that old value behind.
    class ReadRacingACommit:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __call__(self, db_key: bytes) -> bytes | None:
            old = self.inner(db_key)
            store._get_raw = self.inner
            commit_writes(store, {db_key.removeprefix(b"s/"): b"3"})
            return old  # type: ignore[no-any-return]

    store._recent.clear()
    store._get_raw = ReadRacingACommit(store._get_raw)
    assert store.get(b"fee") == b"2"  # the racing read answers what it saw ...
    assert store.get(b"fee") == b"3"  # ... but later reads see the block's value
    store.close()


def test_recent_values_stay_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hcnode.node.store.RECENT_VALUES", 10)
    store = Store(tmp_path / "db")
    commit_writes(store, {b"k%d" % n: b"%d" % n for n in range(25)})
    assert [store.get(b"k%d" % n) for n in range(25)] == [b"%d" % n for n in range(25)]
    assert len(store._recent) <= 10
    store.close()


def test_the_key_filter_never_calls_an_added_key_absent_and_rarely_a_missing_one_present(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hcnode.node.store.FILTER_MIN_BITS", 1 << 16)
    key_filter = KeyFilter(0)
    added = [b"billing/day/pt-%d/st-mary/2026-01-01" % n for n in range(key_filter.capacity)]
    for name in added:
        key_filter.add(name)
    assert all(map(key_filter.may_contain, added))
    assert key_filter.count > 0.99 * len(added)  # distinct keys, minus the few whose bits were all set
    missing = [b"billing/day/pt-%d/st-mary/2026-01-02" % n for n in range(20_000)]
    false_positives = sum(map(key_filter.may_contain, missing))
    assert false_positives < 0.03 * len(missing)  # ~1.3% at 10 bits per key


def filtered_store(path: Path) -> Store:
    """A store whose key filter, built in a thread at open, is in use."""
    store = Store(path)
    assert store._filter_thread is not None
    store._filter_thread.join()
    assert store._filter is not None
    return store


@pytest.mark.parametrize("closed_cleanly", [True, False])
def test_a_reopened_store_filters_nothing_it_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   closed_cleanly: bool) -> None:
    """After a clean close the filter is sized from the count it left; after a crash (no count) the
    first pass finds more keys than its filter holds and a second builds one at the size counted."""
    monkeypatch.setattr("hcnode.node.store.FILTER_MIN_BITS", 1 << 12)  # room for 409 keys
    store = Store(tmp_path / "db")
    values = {b"k%d" % n: b"%d" % n for n in range(2000)}
    commit_writes(store, values)
    commit_writes(store, {b"k7": None})
    store.close()
    if not closed_cleanly:
        db = plyvel.DB(str(tmp_path / "db"))
        db.delete(FILTER_SIZE_HINT)
        db.close()
    store = filtered_store(tmp_path / "db")
    assert store._filter is not None and store._filter.capacity >= 2000
    assert [store.get(name) for name in values] == [None if name == b"k7" else value for name, value in values.items()]
    assert store.get(b"absent") is None
    store.close()


def test_the_filter_answers_for_the_transaction_index_too(tmp_path: Path) -> None:
    chain, store = claim_chain(tmp_path / "db", 3)
    store.close()
    store = filtered_store(tmp_path / "db")  # built from LevelDB's index keys ...
    patient = key(7)
    commit_next(chain, store, chain.tx(patient, "registry.patient_register", {}, nonce=99))  # ... and a commit's
    assert store._filter is not None
    committed = [hashlib.sha256(tx).digest() for block in chain.blocks for tx in block.txs]
    assert all(store._filter.may_contain(b"t/" + tx_hash) for tx_hash in committed)
    assert all(map(store.has_tx, committed))
    missing = [hashlib.sha256(b"never sent %d" % n).digest() for n in range(1000)]
    assert not any(map(store.has_tx, missing))
    assert sum(store._filter.may_contain(b"t/" + tx_hash) for tx_hash in missing) < 30  # the rest: from memory
    store.close()


def test_keys_committed_while_the_filter_is_built_are_in_it(tmp_path: Path) -> None:
    store = filtered_store(tmp_path / "db")
    commit_writes(store, {b"before": b"1"})
    snapshot, backlog = store._begin_filter_build()  # the build's snapshot is taken ...
    commit_writes(store, {b"during": b"2"})  # ... then a block commits before the build ends
    store._finish_filter_build(snapshot, backlog)
    store._recent.clear()
    assert (store.get(b"before"), store.get(b"during")) == (b"1", b"2")
    store.close()


def test_the_filter_grows_in_layers_without_a_rebuild(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hcnode.node.store.FILTER_MIN_BITS", 1 << 12)  # room for 409 keys
    store = filtered_store(tmp_path / "db")
    assert store._filter is not None
    first = store._filter.capacity
    for block in range(6):
        commit_writes(store, {b"b%d-%d" % (block, n): b"v" for n in range(first)})
    commit_writes(store, {b"b0-%d" % n: b"w" for n in range(first)})  # rewritten keys are held already
    key_filter = store._filter
    assert key_filter.layers == 3  # room for 409 keys, then 4 x 409, then 16 x 409
    assert 0.95 * 6 * first < key_filter.count <= 6 * first < key_filter.capacity
    assert not store._filter_thread.is_alive()  # the build at open is the only one
    store._recent.clear()
    assert all(store.get(b"b%d-%d" % (block, n)) == (b"w" if block == 0 else b"v")
               for block in range(6) for n in range(first))
    missing = [b"c%d" % n for n in range(20_000)]
    assert sum(map(key_filter.may_contain, missing)) < 0.05 * len(missing)  # ~1.3% per full layer
    store.close()
