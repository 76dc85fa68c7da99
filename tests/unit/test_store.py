"""``Store`` on a real LevelDB in a temp dir: the transaction index after blocks that include a hash twice,
and the recently read state values after blocks that change them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hcnode.chain import BlockHeader, Execution, genesis_block, merkle, sign_block
from hcnode.node.store import Store
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
