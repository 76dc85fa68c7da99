"""A chain in memory for pure-core tests: genesis, blocks executed one by one, no I/O.

``LocalChain.block`` executes transactions as the next block and also keeps the signed
``Block`` it would have proposed (``blocks``), so a second chain can replay them with
``apply`` (``apply_block``, which checks every root the header claims).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hcnode import crypto
from hcnode.apps import default_apps, registry
from hcnode.chain import (
    Block, BlockHeader, BlockInfo, Execution, Genesis, GenesisOrg, MemoryState, apply_block, build_tx, execute,
    genesis_block, read_nonce, sign_block,
)

CHAIN_ID = "hcnode-test"


def key(n: int) -> crypto.PrivateKey:
    """Deterministic test keys, so failures replay."""
    return crypto.PrivateKey(n.to_bytes(32, "big"))


class LocalChain:
    def __init__(self, admins: int = 1, threshold: int = 1, orgs: tuple[tuple[str, str, int], ...] = ()):
        self.apps = default_apps()
        self.admins = [key(100 + i) for i in range(admins)]
        self.org_admins = {org_id: key(200 + n) for org_id, _, n in orgs}
        self.proposer = key(1)
        self.genesis = Genesis(
            chain_id=CHAIN_ID,
            time_ms=1_767_225_600_000,
            admins=tuple(k.public for k in self.admins),
            admin_threshold=threshold,
            validators=(self.proposer.public,),
            orgs=tuple(GenesisOrg(org_id, org_id.title(), kind, (self.org_admins[org_id].public,))
                       for org_id, kind, _ in orgs),
        )
        block0, writes = genesis_block(self.genesis, self.apps)
        self.block0 = block0
        self.state = MemoryState()
        self.state.commit(writes)
        self.root = block0.header.state_root
        self.height = 0
        self.time_ms = self.genesis.time_ms
        self.head_hash = block0.hash
        self.head: BlockHeader = block0.header
        self.blocks: list[Block] = []
        self.last: Execution | None = None

    def tx(self, signer: crypto.PrivateKey, tx_type: str, payload: dict[str, Any], nonce: int | None = None,
           chain_id: str = CHAIN_ID) -> bytes:
        if nonce is None:
            nonce = read_nonce(self.state, signer.public)
        return build_tx(signer, chain_id, tx_type, nonce, payload)

    def block(self, *txs: bytes) -> list[dict[str, Any]]:
        self.height += 1
        self.time_ms += 1000
        result = execute(self.state, self.apps, BlockInfo(CHAIN_ID, self.height, self.time_ms, self.proposer.public),
                         list(txs), self.root)
        header = BlockHeader(CHAIN_ID, self.height, self.head_hash, self.time_ms, result.tx_root,
                             result.receipt_root, result.state_root, self.proposer.public)
        self.blocks.append(sign_block(self.proposer, header, list(txs)))
        self.head_hash = header.hash
        self.head = header
        self.state.commit(result.writes)
        self.root = result.state_root
        self.last = result
        return result.receipts

    def apply(self, block: Block) -> list[dict[str, Any]]:
        """Apply a block made elsewhere (checks its roots); raises ``StateRootMismatch`` on divergence."""
        result = apply_block(self.state, self.apps, block, self.head, self.is_validator(block.header.height))
        self.state.commit(result.writes)
        self.root = result.state_root
        self.height = block.header.height
        self.time_ms = block.header.time_ms
        self.head_hash = block.hash
        self.head = block.header
        self.blocks.append(block)
        self.last = result
        return result.receipts

    def is_validator(self, height: int) -> Callable[[bytes], bool]:
        return lambda key: registry.is_validator(self.state, key, height)

    def run(self, signer: crypto.PrivateKey, tx_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        """One transaction in its own block; returns its receipt."""
        return self.block(self.tx(signer, tx_type, payload))[0]

    def ok(self, signer: crypto.PrivateKey, tx_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        """``run``, asserting the receipt is ok."""
        receipt = self.run(signer, tx_type, payload)
        assert receipt["status"] == "ok", receipt
        return receipt

    def rejected(self, signer: crypto.PrivateKey, tx_type: str, payload: dict[str, Any], code: str,
                 text: str = "") -> str:
        """``run``, asserting a rejection with ``code`` whose message contains ``text``; returns the message."""
        receipt = self.run(signer, tx_type, payload)
        assert receipt["status"] == "rejected" and receipt["code"] == code, receipt
        assert text in receipt["message"], receipt["message"]
        return receipt["message"]  # type: ignore[no-any-return]

    def query(self, name: str, **params: Any) -> Any:
        return self.apps.query(self.state, name, params, self.height)

    def nonce(self, signer: crypto.PrivateKey) -> int:
        return read_nonce(self.state, signer.public)
