"""Pipelined block building on a real store: the leader builds block h+1 on top of its pending block h.

In-process (a ``Node`` over real LevelDB, driven the way ``RaftDriver`` drives it), no sockets:
what matters is that a pending block's state is the base of the next one, that committing reuses
the leader's own execution and gives the roots any other node computes, and that a different
block taking the height drops every pending block.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import trio

from hcnode import crypto
from hcnode.apps import default_apps
from hcnode.chain import BlockHeader, BlockInfo, build_tx, execute, sign_block
from hcnode.config import load_config
from hcnode.node.daemon import load_node_key, resolve_genesis
from hcnode.node.node import Node
from hcnode.node.store import Store

from .conftest import DevNode


def make_nodes(count: int) -> list[Node]:
    """``count`` nodes of one dev chain (same config, key and genesis), each on its own fresh store."""
    workdir = Path(tempfile.mkdtemp(prefix="hcp", dir="/tmp"))
    config = load_config(DevNode(workdir).config_path)
    key = load_node_key(config, create=True)
    genesis = resolve_genesis(config, key, announce=lambda m: None)
    return [Node(config, default_apps(), key, genesis, Store(workdir / f"db-{n}")) for n in range(count)]


def register(node: Node, patient: crypto.PrivateKey, nonce: int = 0) -> bytes:
    raw = build_tx(patient, node.chain_id, "registry.patient_register", nonce, {})
    tx_hash, status = node.submit(raw)
    assert status == "accepted"
    return tx_hash


async def test_next_block_is_built_on_the_pending_one_and_both_commit_with_the_roots_a_follower_computes():
    leader, follower = make_nodes(2)
    try:
        alice, bob = crypto.PrivateKey.generate(), crypto.PrivateKey.generate()
        register(leader, alice)
        first = await leader.build_block()
        assert first is not None and first.block.header.height == 1
        # Alice's nonce 1 is only valid on top of the pending block (the store still says 0), and her
        # second registration must see the pending block's writes: it is refused as a reused key.
        again = register(leader, alice, nonce=1)
        register(leader, bob)
        second = await leader.build_block()
        assert second is not None and leader.pending_blocks == 2
        assert second.block.header.height == 2 and second.block.header.prev_hash == first.block.hash
        assert len(second.block.txs) == 2, "the pending block's transaction is not selected again"
        receipts = dict(zip(second.result.tx_hashes, second.result.receipts))
        assert receipts[again]["status"] == "rejected" and receipts[again]["code"] == "key_in_use"
        assert leader.store.height == 0, "nothing is written before commit"

        assert await leader.apply_committed(first.block, {}) == "applied"
        assert leader.pending_blocks == 1
        assert await leader.apply_committed(second.block, {}) == "applied"
        assert leader.pending_blocks == 0 and len(leader.mempool) == 0
        assert leader.store.state_root == second.block.header.state_root

        # a follower executes both blocks itself and checks every root: the leader's reuse was exact
        assert await follower.apply_committed(first.block, {}) == "applied"
        assert await follower.apply_committed(second.block, {}) == "applied"
        assert follower.store.state_root == leader.store.state_root
        assert follower.store.receipt_bytes(again) == leader.store.receipt_bytes(again)
    finally:
        leader.store.close()
        follower.store.close()


async def test_another_block_taking_the_height_drops_every_pending_block():
    [node] = make_nodes(1)
    try:
        carol, dave = crypto.PrivateKey.generate(), crypto.PrivateKey.generate()
        carol_tx = register(node, carol)
        first = await node.build_block()
        register(node, dave)
        second = await node.build_block()
        assert first is not None and second is not None and node.pending_blocks == 2
        # An earlier leader's block for height 1 commits instead (here: an empty one).
        head = node.head
        info = BlockInfo(node.chain_id, 1, head.time_ms + 1, node.key.public)
        result = execute(node.store, node.apps, info, [], node.store.state_root)
        other = sign_block(node.key, BlockHeader(node.chain_id, 1, head.hash, info.time_ms, result.tx_root,
                                                 result.receipt_root, result.state_root, node.key.public), [])
        assert await node.apply_committed(other, {}) == "applied"
        assert node.pending_blocks == 0
        assert await node.apply_committed(first.block, {}) == "stale"
        assert await node.apply_committed(second.block, {}) == "stale"
        # their transactions were never lost: the next block, on the new head, takes both
        rebuilt = await node.build_block()
        assert rebuilt is not None and rebuilt.block.header.prev_hash == other.hash
        assert carol_tx in rebuilt.result.tx_hashes and len(rebuilt.block.txs) == 2
    finally:
        node.store.close()


async def test_an_idle_leader_builds_at_once_and_a_busy_one_gathers_for_the_interval(autojump_clock):
    """With no block pending, waiting ``interval_ms`` would only add latency: the Raft leader builds at
    once. While a block is pending, transactions gather for the interval as before (that batches them
    under load), and a lone validator (no Raft, no flag) always gathers. Virtual time: no real waiting."""
    [node] = make_nodes(1)
    interval = node.config.block.interval_ms / 1000
    try:
        register(node, crypto.PrivateKey.generate())
        started = trio.current_time()
        await node.wait_for_block(at_once_if_idle=True)
        assert trio.current_time() == started, "idle: built at once"
        await node.wait_for_block()
        assert trio.current_time() - started == pytest.approx(interval), "the lone validator gathers for interval_ms"

        assert await node.build_block() is not None and node.pending_blocks == 1
        register(node, crypto.PrivateKey.generate())
        arrived = trio.current_time()
        await node.wait_for_block(at_once_if_idle=True)
        assert trio.current_time() - arrived == pytest.approx(interval), "a block is pending: the next one gathers"
    finally:
        node.store.close()
