"""``Store`` on a real LevelDB in a temp dir: the transaction index after blocks that include a hash twice,
the recently read state values after blocks that change them, and the key filter that answers reads of
absent keys (never for a stored key: after a reopen, during a build, after it grows)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plyvel
import pytest

from hcnode.chain import BlockHeader, Execution, genesis_block, merkle, sign_block
from hcnode.node.store import FILTER_SIZE_HINT, KeyFilter, Store
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


def test_keys_committed_while_the_filter_is_built_are_in_it(tmp_path: Path) -> None:
    store = filtered_store(tmp_path / "db")
    commit_writes(store, {b"before": b"1"})
    snapshot, backlog = store._begin_filter_build()  # the build's snapshot is taken ...
    commit_writes(store, {b"during": b"2"})  # ... then a block commits before the build ends
    store._finish_filter_build(snapshot, backlog)
    store._recent.clear()
    assert (store.get(b"before"), store.get(b"during")) == (b"1", b"2")
    store.close()


def test_the_filter_is_rebuilt_larger_when_the_state_outgrows_it(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hcnode.node.store.FILTER_MIN_BITS", 1 << 12)
    store = filtered_store(tmp_path / "db")
    assert store._filter is not None
    first = store._filter.capacity
    for block in range(4):
        commit_writes(store, {b"b%d-%d" % (block, n): b"v" for n in range(first)})
    assert store._filter_thread is not None
    store._filter_thread.join()
    assert store._filter.capacity > first
    store._recent.clear()
    assert all(store.get(b"b%d-%d" % (block, n)) == b"v" for block in range(4) for n in range(first))
    store.close()
