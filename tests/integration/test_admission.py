"""Admitting batches (gossip, tx.submit_batch) on a real store with a real verifier process.

A follower often receives a block while it is still checking the gossip that carried the
block's transactions. Each signature must still be checked once per node (the verifier
process, or the block's own execution, never both), and a transaction's status must not
depend on which side of the check its block landed.
"""

from __future__ import annotations

import pytest
import trio

from hcnode import crypto
from hcnode.chain import Rejected, build_tx
from hcnode.chain.tx import TX_PURPOSE
from hcnode.node.node import VERIFY_CHUNK, Node
from hcnode.node.verifier import Verifier

from .test_pipelining import make_nodes

class _CountingVerifier(Verifier):
    """The real verifier process; counts what it checks, says when a check is under way and, given
    ``answer_after``, holds its first answer until that event (to order it after a block's apply)."""

    def __init__(self, node: Node) -> None:
        super().__init__(node.chain_id, node.config.limits.max_tx_bytes, 1)
        self.checked = 0
        self.started = trio.Event()
        self.answer_after: trio.Event | None = None

    async def check(self, raws: list[bytes]) -> list:  # type: ignore[type-arg]
        self.checked += len(raws)
        self.started.set()
        verdicts = await super().check(raws)
        if self.answer_after is not None:
            await self.answer_after.wait()
            self.answer_after = None
        return verdicts


def _registrations(node: Node, count: int) -> list[bytes]:
    return [build_tx(crypto.PrivateKey.generate(), node.chain_id, "registry.patient_register", 0, {})
            for _ in range(count)]


@pytest.fixture
def checked_in_execute(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many transaction signatures this process checked itself: ``execute``, for the transactions it
    was not given as verified (the verifier process checks the rest). Counted at ``crypto.verify``, which
    the cores call through the module in either build (mypyc binds calls between compiled modules)."""
    count = [0]
    real = crypto.verify

    def counting(public: bytes, signature: bytes, chain_id: str, purpose: str, message: bytes) -> bool:
        if purpose == TX_PURPOSE:
            count[0] += 1
        return real(public, signature, chain_id, purpose, message)

    monkeypatch.setattr(crypto, "verify", counting)
    return count


async def _leader_block(leader: Node, raws: list[bytes]):  # type: ignore[no-untyped-def]
    for raw in raws:
        assert leader.submit(raw)[1] == "accepted"
    pending = await leader.build_block()
    assert pending is not None and list(pending.block.txs) == raws
    return pending.block


async def test_a_block_arriving_while_its_gossip_is_checked_waits_for_that_check(checked_in_execute: list[int]):
    leader, follower = make_nodes(2)
    raws = _registrations(leader, 100)
    verifier = follower.verifier = _CountingVerifier(follower)
    try:
        await verifier.start()
        block = await _leader_block(leader, raws)
        checked_in_execute[0] = 0  # the leader checked them when they were submitted; the follower's count from here
        outcomes: list = []
        async with trio.open_nursery() as nursery:
            async def gossip() -> None:
                outcomes.extend(await follower.submit_many(raws, relay=False))
            nursery.start_soon(gossip)
            await verifier.started.wait()
            assert await follower.apply_committed(block, {}) == "applied"

        assert verifier.checked == 100 and checked_in_execute[0] == 0, "a signature was checked twice"
        assert follower.head.hash == block.hash
        assert all(not isinstance(o, Rejected) and o[1] in ("accepted", "committed") for o in outcomes)
        assert len(follower.mempool) == 0, "a committed transaction stayed in the mempool"
    finally:
        verifier.close()
        for node in (leader, follower):
            node.store.close()


async def test_a_block_of_transactions_still_waiting_for_the_verifier_checks_them_itself_and_only_there(
        checked_in_execute: list[int]):
    leader, follower = make_nodes(2)
    first_chunk = _registrations(leader, VERIFY_CHUNK)
    later = _registrations(leader, 44)
    verifier = follower.verifier = _CountingVerifier(follower)
    # On a busy machine the first chunk's check could finish while the block is still applying; the 44
    # would then be reported "pending" (true, but not what this test is about): answer after the apply.
    applied = verifier.answer_after = trio.Event()
    try:
        await verifier.start()
        block = await _leader_block(leader, later)  # only transactions of the batch's second chunk
        checked_in_execute[0] = 0  # the leader checked them when they were submitted; the follower's count from here
        outcomes: list = []
        async with trio.open_nursery() as nursery:
            async def gossip() -> None:
                outcomes.extend(await follower.submit_many(first_chunk + later, relay=False))
            nursery.start_soon(gossip)
            await verifier.started.wait()  # the first chunk is in the verifier; the block does not wait for it
            try:
                assert await follower.apply_committed(block, {}) == "applied"
            finally:
                applied.set()  # also when the apply fails: the gossip task must not wait for ever

        assert checked_in_execute[0] == 44 and verifier.checked == VERIFY_CHUNK, "checked twice, or not at all"
        statuses = [o if isinstance(o, Rejected) else o[1] for o in outcomes]
        assert statuses == ["accepted"] * VERIFY_CHUNK + ["committed"] * 44
        assert len(follower.mempool) == VERIFY_CHUNK  # the first chunk waits for a block; nothing else does

        # A later batch holding committed transactions reports them committed without checking them.
        again = await follower.submit_many(later + _registrations(leader, 64), relay=False)
        assert [o[1] for o in again] == ["committed"] * 44 + ["accepted"] * 64  # type: ignore[index]
        assert verifier.checked == VERIFY_CHUNK + 64
    finally:
        verifier.close()
        for node in (leader, follower):
            node.store.close()
