"""Admitting batches (gossip, tx.submit_batch) on a real store with a real verifier process.

A batch is checked in the verifier process while blocks go on committing here; what
a transaction's status is must not depend on which side of that wait its block landed.
"""

from __future__ import annotations

from hcnode import crypto
from hcnode.chain import Rejected, build_tx
from hcnode.node.node import Node
from hcnode.node.verifier import Verifier

from .test_pipelining import make_nodes


class _CommitsDuringCheck(Verifier):
    """The real verifier; while it checks, the node commits a block (as a Raft apply would)."""

    def __init__(self, node: Node, block: object) -> None:
        super().__init__(node.chain_id, node.config.limits.max_tx_bytes, 1)
        self.node, self.block = node, block

    async def check(self, raws: list[bytes]) -> list:  # type: ignore[type-arg]
        verdicts = await super().check(raws)
        assert await self.node.apply_committed(self.block, {}) == "applied"
        return verdicts


async def test_a_batch_committed_by_a_block_while_it_is_verified_is_reported_committed_not_admitted_again():
    leader, follower = make_nodes(2)
    raws = [build_tx(crypto.PrivateKey.generate(), leader.chain_id, "registry.patient_register", 0, {})
            for _ in range(100)]
    try:
        for raw in raws:
            assert leader.submit(raw)[1] == "accepted"
        pending = await leader.build_block()
        assert pending is not None and len(pending.block.txs) == 100
        follower.verifier = _CommitsDuringCheck(follower, pending.block)
        await follower.verifier.start()

        outcomes = await follower.submit_many(raws, relay=False)

        assert [o if isinstance(o, Rejected) else o[1] for o in outcomes] == ["committed"] * 100
        assert len(follower.mempool) == 0, "a committed transaction was admitted to the mempool again"
        # and with nothing committing during the check, the next batch is admitted as usual
        fresh = [build_tx(crypto.PrivateKey.generate(), leader.chain_id, "registry.patient_register", 0, {})
                 for _ in range(64)]
        follower.verifier.check = super(_CommitsDuringCheck, follower.verifier).check  # type: ignore[method-assign]
        assert [o[1] for o in await follower.submit_many(fresh, relay=False)] == ["accepted"] * 64  # type: ignore[index]
    finally:
        follower.verifier.close()
        for node in (leader, follower):
            node.store.close()
