"""``Store`` on a real LevelDB in a temp dir: the transaction index after blocks that include a hash twice."""

from __future__ import annotations

from pathlib import Path

from hcnode.chain import Execution, genesis_block, merkle
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
