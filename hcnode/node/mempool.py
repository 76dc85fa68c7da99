"""The bounded mempool: verified transactions waiting for a block.

Owns: dedupe by hash, per-sender nonce order, the size bound and the choice of
the next block's transactions. Must not know storage or time; the caller gives
each sender's committed nonce.

Selection keeps arrival order across senders and nonce order within a sender:
a sender's transaction is taken only when every lower nonce is committed or
taken before it in the same block, so the block never carries a nonce gap.
"""

from __future__ import annotations

from collections.abc import Callable, Container

from hcnode.chain.errors import Rejected
from hcnode.chain.tx import Tx

__all__ = ["Mempool"]


class Mempool:
    def __init__(self, max_txs: int) -> None:
        self.max_txs = max_txs
        self.by_hash: dict[bytes, Tx] = {}  # insertion order = arrival order
        self.by_sender: dict[bytes, dict[int, Tx]] = {}
        self.bytes = 0

    def __len__(self) -> int:
        return len(self.by_hash)

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self.by_hash

    def add(self, tx: Tx, committed_nonce: int) -> None:
        """Admit a verified transaction; the caller has already excluded duplicates of ``tx.hash``."""
        if tx.nonce < committed_nonce:
            raise Rejected("replayed_nonce", f"nonce {tx.nonce} is already used (next is {committed_nonce})")
        pending = self.by_sender.get(tx.sender)
        if pending is not None and tx.nonce in pending:
            raise Rejected("nonce_taken", f"another pending transaction from this sender has nonce {tx.nonce}")
        if len(self.by_hash) >= self.max_txs:
            raise Rejected("mempool_full", f"the mempool holds its limit of {self.max_txs} transactions; retry later")
        self.by_hash[tx.hash] = tx
        self.by_sender.setdefault(tx.sender, {})[tx.nonce] = tx
        self.bytes += len(tx.raw)

    def next_nonce(self, sender: bytes, committed_nonce: int) -> int:
        """The nonce a new transaction from ``sender`` should use, counting pending ones."""
        pending = self.by_sender.get(sender, {})
        nonce = committed_nonce
        while nonce in pending:
            nonce += 1
        return nonce

    def select(self, max_txs: int, max_bytes: int, committed_nonce: Callable[[bytes], int],
               exclude: Container[bytes] = frozenset()) -> list[Tx]:
        """The next block's transactions, in arrival order, each sender's in nonce order, no gaps.

        ``exclude``: hashes already in blocks built on top of the committed state (``committed_nonce``
        then counts them as used), passed over without being taken for stale.
        """
        chosen: list[Tx] = []
        size = 0
        next_nonce: dict[bytes, int] = {}
        waiting: set[bytes] = set()  # passed over because an earlier nonce had not arrived before them
        stale: list[Tx] = []
        for tx in self.by_hash.values():
            if len(chosen) >= max_txs or size >= max_bytes:
                break
            if tx.hash in exclude:
                continue
            expected = next_nonce.get(tx.sender)
            if expected is None:
                expected = next_nonce[tx.sender] = committed_nonce(tx.sender)
            if tx.nonce < expected:
                stale.append(tx)  # its nonce was used by a committed transaction with another hash
                continue
            if tx.nonce > expected:
                waiting.add(tx.hash)
                continue
            # Take it, then any of the sender's next nonces that arrived earlier and were waiting for it.
            pending = self.by_sender[tx.sender]
            candidate: Tx | None = tx
            while candidate is not None and len(chosen) < max_txs and size + len(candidate.raw) <= max_bytes:
                chosen.append(candidate)
                size += len(candidate.raw)
                expected += 1
                candidate = pending.get(expected)
                if candidate is not None and candidate.hash not in waiting:
                    candidate = None  # it arrived later: it takes its own place in arrival order
            next_nonce[tx.sender] = expected
        for tx in stale:
            self.remove(tx.hash)
        return chosen

    def remove(self, tx_hash: bytes) -> None:
        tx = self.by_hash.pop(tx_hash, None)
        if tx is None:
            return
        self.bytes -= len(tx.raw)
        pending = self.by_sender[tx.sender]
        del pending[tx.nonce]
        if not pending:
            del self.by_sender[tx.sender]
