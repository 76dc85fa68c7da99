"""The node: admission of transactions, block production, commit, and waiting for receipts.

Owns: the order of I/O around the pure cores. A transaction is checked
statelessly once at admission (its decoded ``Tx`` is kept, so the signature is
verified once per node), waits in the mempool, and goes into a block when
``max_txs`` or ``max_bytes`` is reached or ``interval_ms`` has passed since the
first pending transaction (a Raft leader with no block pending builds at once:
see ``wait_for_block``). The block is executed, signed, written to LevelDB in
one synced batch, and only then are its receipts visible and waiters woken:
nothing is reported committed before it is durable.

Two ways blocks get made:
- no ``[p2p]`` table (``configs/dev.toml``): the node is the chain's only
  validator and ``run`` cuts and commits blocks directly (no Raft: a one-voter
  log would add a synced write per block and change nothing);
- with ``[p2p]``: ``run`` is not started; ``consensus_driver.RaftDriver`` asks
  ``build_block`` for a block when this node leads, proposes it to Raft, and
  every node commits Raft-committed blocks with ``apply_committed``.
Admission, the mempool and waiting for receipts are the same in both.

Pipelining: a block built here but not yet committed stays *pending*; the next
one is built on top of it (its state is the pending blocks' writes over the
store, its transactions are left out of the selection), so the leader executes
block h+1 while h replicates. Committing the first pending block reuses its
execution; if any other block is committed instead, every pending block was
built on a head that no longer is, and all are dropped (Raft skips them as stale
on every node alike). Transaction execution reads state by key only (no scans),
which is what makes an overlay of pending writes a faithful base.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from hcnode import codec, crypto
from hcnode.apps import registry
from hcnode.chain import (
    AppSet, Block, BlockHeader, BlockInfo, Genesis, Rejected, StateRootMismatch, Tx, apply_block,
    decode_block, decode_tx, execute, genesis_block, read_nonce, sign_block,
)
from hcnode.chain.execute import Execution
from hcnode.chain.state import Overlay
from hcnode.chain.execute import Limits as ExecLimits
from hcnode.config import Config
from hcnode.node.mempool import Mempool
from hcnode.node.store import StorageError, Store
from hcnode.node.verifier import Verifier

__all__ = ["Node", "PendingBlock"]

log = logging.getLogger("hcnode.node")

VERIFY_CHUNK = 256  # transactions per verifier call: ~13 ms of checks, the longest a block waits for one
RECENTLY_COMMITTED = 50_000  # committed hashes remembered, at least


class _RecentHashes:
    """The last ``size`` (to ``2 * size``) hashes added: two generations of sets, the older one dropped whole."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.current: set[bytes] = set()
        self.previous: set[bytes] = set()

    def add(self, hashes: list[bytes]) -> None:
        self.current.update(hashes)
        if len(self.current) >= self.size:
            self.previous, self.current = self.current, set()

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self.current or tx_hash in self.previous


@dataclass
class PendingBlock:
    """A block this node built and signed that is not committed yet, with its execution."""
    block: Block
    result: Execution
    tx_hashes: frozenset[bytes]
    size: int


class Node:
    def __init__(self, config: Config, apps: AppSet, key: crypto.PrivateKey, genesis: Genesis, store: Store,
                 verifier: Verifier | None = None) -> None:
        self.config = config
        self.apps = apps
        self.key = key
        self.chain_id = config.chain_id
        self.store = store
        self.mempool = Mempool(config.limits.mempool_txs)
        self.exec_limits = ExecLimits(max_tx_bytes=config.limits.max_tx_bytes)
        self._committed = trio.Condition()
        self._work = trio.Event()
        self._halted: str | None = None
        self._pending_since: float | None = None
        self._pending: list[PendingBlock] = []  # built here, not committed; each on top of the one before
        self._pending_state: Overlay | None = None  # their writes, in order, over the store
        self._pending_txs: set[bytes] = set()
        self._pending_bytes = 0
        self._commits = 0  # counts block writes begun and ended: tells _admit whether a lookup is current
        # Signature checks shared between gossip admission and applying blocks (see _verify_in_chunks).
        self._verify_lock = trio.Lock()
        self._verifying: set[bytes] = set()  # the chunk in the verifier process now
        self._verified = trio.Event()  # set when that chunk's verdicts are in
        self._checked_unadmitted: dict[bytes, Tx] = {}  # verified by a chunk, not yet admitted
        self._applying: set[bytes] = set()  # claimed by a block being applied: it checks them itself
        self._recently_committed = _RecentHashes(RECENTLY_COMMITTED)  # so late gossip of them is not checked
        self.verifier = verifier if verifier is not None else Verifier(self.chain_id, config.limits.max_tx_bytes, 0)
        self.started_ms = int(time.time() * 1000)
        self.relay: Callable[[bytes, bytes], None] | None = None
        """Called with (hash, raw) of each transaction admitted from a local client (the driver gossips them)."""
        self.consensus_info: Callable[[], dict[str, Any]] | None = None
        """Set by the Raft driver: role, term, leader, peers, lag for ``info``."""
        self._open(genesis)

    # --- start-up -----------------------------------------------------------------------------

    def _open(self, genesis: Genesis) -> None:
        block0, writes = genesis_block(genesis, self.apps)
        document = block0.txs[0]
        stored = self.store.genesis_document
        if stored is None:
            empty = Execution(writes=writes, receipts=[], encoded_receipts=[], tx_hashes=[],
                              tx_root=block0.header.tx_root, receipt_root=block0.header.receipt_root,
                              state_root=block0.header.state_root)
            self.store.commit_block(block0, empty, genesis_document=document)
            log.info("new chain %s: genesis block %s", self.chain_id, block0.hash.hex())
        elif stored != document:
            raise StorageError(
                f"the data dir holds another chain (genesis differs from {self.config.path}); "
                "use a fresh data_dir or the config the chain was made with"
            )
        else:
            log.info("resuming chain %s at height %d, head %s", self.chain_id, self.store.height,
                     self.store.head.hex())
        head = self.block_at(self.store.height or 0)
        assert head is not None
        self._head: BlockHeader = head.header
        if genesis.validators and self.key.public not in genesis.validators:
            log.warning("this node's key %s is not a genesis validator", self.key.public.hex())

    # --- admission -----------------------------------------------------------------------------

    def submit(self, raw: bytes, relay: bool = True) -> tuple[bytes, str]:
        """Admit one transaction. Returns (hash, "accepted" | "pending" | "committed"); raises Rejected.

        ``relay=False`` for transactions that came in by gossip (gossipsub forwards them itself).
        """
        return self._admit(raw, None, relay)

    async def submit_many(self, raws: list[bytes], relay: bool = True) -> list[tuple[bytes, str] | Rejected]:
        """Admit a batch; each item is (hash, status) or the Rejected that refused it.

        Large batches are checked in the verifier process (the second core) while
        this thread goes on executing blocks; admission itself stays here.
        """
        checked: list[Tx | Rejected | None] = [None] * len(raws)
        unknown_at: int | None = None
        hashes: list[bytes] = []
        try:
            if self.verifier.pool is not None and len(raws) >= 64:
                # On a testnet most gossiped transactions are already here (in the mempool, or committed by a
                # block that overtook the gossip): verify only the new ones; _admit answers for the rest.
                unknown_at = self._commits
                hashes = [hashlib.sha256(raw).digest() for raw in raws]
                fresh = [i for i, tx_hash in enumerate(hashes) if not self._known(tx_hash)]
                if len(fresh) >= 64:
                    await self._verify_in_chunks(raws, hashes, fresh, checked)
            results: list[tuple[bytes, str] | Rejected] = []
            for raw, tx in zip(raws, checked):
                try:
                    if isinstance(tx, Rejected):
                        raise tx
                    # A transaction found in no block before the await is still in none if no block
                    # committed meanwhile: its store lookup (a LevelDB miss, every time) need not be repeated.
                    results.append(self._admit(raw, tx, relay, unknown_at if tx is not None else None))
                except Rejected as exc:
                    results.append(exc)
            return results
        finally:
            for tx_hash in hashes:
                self._checked_unadmitted.pop(tx_hash, None)

    async def _verify_in_chunks(self, raws: list[bytes], hashes: list[bytes], fresh: list[int],
                                checked: list[Tx | Rejected | None]) -> None:
        """Check ``fresh`` in the verifier process, a chunk at a time, each verdict visible at once.

        A follower often receives a block before it has checked the gossip that carried the block's
        transactions. ``apply_committed`` then waits for the chunk in the verifier rather than check
        the same signatures again, and claims the rest (``_applying``) so that no chunk waiting here
        checks them too: each signature is checked once per node, and a wait lasts one chunk at most.
        """
        for start in range(0, len(fresh), VERIFY_CHUNK):
            async with self._verify_lock:
                chunk = [i for i in fresh[start:start + VERIFY_CHUNK] if self._known_in_memory(hashes[i]) is None]
                if not chunk:
                    continue
                self._verifying = {hashes[i] for i in chunk}
                try:
                    verdicts = await self.verifier.check([raws[i] for i in chunk])
                    for i, verdict in zip(chunk, verdicts):
                        checked[i] = verdict
                        if not isinstance(verdict, Rejected):
                            self._checked_unadmitted[hashes[i]] = verdict
                finally:
                    self._verifying = set()
                    self._verified.set()
                    self._verified = trio.Event()

    def _decode(self, raw: bytes) -> Tx:
        return decode_tx(raw, chain_id=self.chain_id, max_bytes=self.config.limits.max_tx_bytes,
                         payload_spec=self.apps.payload_spec)

    def _admit(self, raw: bytes, tx: Tx | None, relay: bool = True,
               unknown_at: int | None = None) -> tuple[bytes, str]:
        """Dedupe, decode unless already decoded, then the nonce and mempool checks.

        ``unknown_at``: the commit count at which the caller found ``tx`` in no block.
        """
        if self._halted:
            raise Rejected("halted", f"this node stopped applying blocks: {self._halted}")
        if len(raw) > self.config.limits.max_tx_bytes:
            raise Rejected("too_large", f"transaction is {len(raw)} bytes, limit {self.config.limits.max_tx_bytes}")
        tx_hash = tx.hash if tx is not None else hashlib.sha256(raw).digest()
        known = self._known(tx_hash, unknown_at)
        if known is not None:
            return tx_hash, known
        if tx is None:
            tx = self._decode(raw)
        self.mempool.add(tx, read_nonce(self.store, tx.sender))
        if self._pending_since is None:
            self._pending_since = trio.current_time()
        if self._unbuilt_txs() == 1 or self._block_full():
            self._work.set()
        if relay and self.relay is not None:
            self.relay(tx_hash, raw)
        return tx_hash, "accepted"

    def _known(self, tx_hash: bytes, unknown_at: int | None = None) -> str | None:
        """"pending" or "committed" for a transaction this node already has, else None.

        ``unknown_at``: the commit count at which the caller last found it in no block; the store
        (a LevelDB miss, for a new transaction) is asked again only if a block was written since.
        """
        known = self._known_in_memory(tx_hash)
        if known is None and unknown_at != self._commits and self.store.has_tx(tx_hash):
            return "committed"
        return known

    def _known_in_memory(self, tx_hash: bytes) -> str | None:
        """``_known`` without the store: the mempool, the block being applied (it checks its own
        transactions) and recently committed blocks."""
        if tx_hash in self.mempool.by_hash or tx_hash in self._applying:
            return "pending"
        if tx_hash in self._recently_committed:
            return "committed"
        return None

    def _unbuilt_txs(self) -> int:
        """Transactions in the mempool that no pending block holds yet."""
        return len(self.mempool) - len(self._pending_txs)

    def _block_full(self) -> bool:
        return (self._unbuilt_txs() >= self.config.block.max_txs
                or self.mempool.bytes - self._pending_bytes >= self.config.block.max_bytes)

    def next_nonce(self, sender: bytes) -> tuple[int, int]:
        committed = read_nonce(self.store, sender)
        return committed, self.mempool.next_nonce(sender, committed)

    # --- production and commit -----------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self.wait_for_block()
            await self._produce()

    async def wait_for_block(self, *, at_once_if_idle: bool = False) -> None:
        """Sleep until unbuilt transactions fill a block, or ``interval_ms`` after the first of them arrived.

        ``at_once_if_idle`` (the Raft leader): with no block pending, build as soon as there is a
        transaction. Waiting gathers nothing then that would not gather anyway: transactions that
        arrive while a block replicates wait for it, which batches them under load, and an idle
        cluster answers a lone batch ``interval_ms`` sooner (a third of a 100-tx batch's latency).
        """
        while self._unbuilt_txs() <= 0:
            self._work = trio.Event()
            await self._work.wait()
        if at_once_if_idle and not self._pending:
            return
        deadline = (self._pending_since or trio.current_time()) + self.config.block.interval_ms / 1000
        with trio.move_on_at(deadline):
            while not self._block_full():
                self._work = trio.Event()
                await self._work.wait()

    async def _produce(self) -> None:
        built = await self.build_block()
        if built is None:
            return
        await self.commit(built.block, built.result)
        self._log_block(built.block, built.result)

    @property
    def pending_blocks(self) -> int:
        return len(self._pending)

    async def build_block(self) -> PendingBlock | None:
        """Select from the mempool, execute and sign the next block on top of the head and any pending blocks.

        The block becomes pending (see the module notes). Returns None (after a pause when only
        nonce gaps remain) if nothing can go in a block. Committed state is only read here.
        """
        limits = self.config.block
        base = self._pending[-1].block.header if self._pending else self._head
        state = self._pending_state if self._pending_state is not None else self.store
        chosen = self.mempool.select(limits.max_txs, limits.max_bytes, lambda s: read_nonce(state, s),
                                     exclude=self._pending_txs)
        if not chosen:
            self._pending_since = trio.current_time() if self._unbuilt_txs() > 0 else None
            if self._unbuilt_txs() > 0:
                await trio.sleep(self.config.block.interval_ms / 1000)  # only nonce gaps wait; don't spin
            return None
        time_ms = max(int(time.time() * 1000), base.time_ms)  # leader time never runs backwards
        info = BlockInfo(self.chain_id, base.height + 1, time_ms, self.key.public)
        raw_txs = [tx.raw for tx in chosen]
        verified = {tx.hash: tx for tx in chosen}
        # In a worker thread, so the loop keeps answering Raft (heartbeats, votes) while a big block executes.
        result = await trio.to_thread.run_sync(execute, state, self.apps, info, raw_txs, base.state_root,
                                               self.exec_limits, verified)
        if base.hash != (self._pending[-1].block.header if self._pending else self._head).hash:
            return None  # a block was committed or the pending ones dropped meanwhile: this one's base is gone
        header = BlockHeader(self.chain_id, info.height, base.hash, time_ms, result.tx_root,
                             result.receipt_root, result.state_root, self.key.public)
        pending = PendingBlock(sign_block(self.key, header, raw_txs), result, frozenset(verified),
                               sum(len(raw) for raw in raw_txs))
        self._pending.append(pending)
        if self._pending_state is None:
            self._pending_state = Overlay(self.store)
        self._pending_state.writes.update(result.writes)
        self._pending_txs.update(pending.tx_hashes)
        self._pending_bytes += pending.size
        self._pending_since = trio.current_time() if self._unbuilt_txs() > 0 else None
        return pending

    def discard_pending(self) -> None:
        """Forget every pending block: they will not be committed on this head (leadership or head changed)."""
        self._pending.clear()
        self._pending_state = None
        self._pending_txs.clear()
        self._pending_bytes = 0
        if self._unbuilt_txs() > 0:
            self._pending_since = self._pending_since or trio.current_time()
            self._work.set()

    def _log_block(self, block: Block, result: Execution) -> None:
        rejected = sum(1 for r in result.receipts if r["status"] != "ok")
        log.info("block %d: %d txs (%d rejected), hash %s", block.header.height, len(block.txs), rejected,
                 block.hash.hex()[:16])

    async def commit(self, block: Block, result: Any, extra: dict[bytes, bytes] | None = None) -> None:
        """Write the block durably, then drop its transactions from the mempool and wake waiters."""
        # plyvel blocks while it syncs; a worker thread keeps the RPC loop serving meanwhile.
        self._commits += 1  # before and after: a lookup made while the write runs is not current either
        await trio.to_thread.run_sync(self.store.commit_block, block, result, None, extra)
        self._after_commit(block, result.tx_hashes)

    def _after_commit(self, block: Block, tx_hashes: list[bytes], in_trio: bool = True) -> None:
        self._head = block.header
        self._commits += 1
        if self._pending and self._pending[0].block.hash == block.hash:
            done = self._pending.pop(0)
            self._pending_txs.difference_update(done.tx_hashes)
            self._pending_bytes -= done.size
            if not self._pending:
                self._pending_state = None  # its writes are all in the store now
        elif self._pending:
            self.discard_pending()  # another block took the height: ours were built on a head that no longer is
        for tx_hash in tx_hashes:
            self.mempool.remove(tx_hash)
        self._recently_committed.add(tx_hashes)
        if in_trio:
            # Keep the clock of the oldest wait rather than restarting it: under load the next block is cut
            # as soon as this one is committed, not a whole interval later (that idle gap halved throughput).
            if self._unbuilt_txs() <= 0:
                self._pending_since = None
            elif self._pending_since is None:
                self._pending_since = trio.current_time()
            self._notify_committed()

    def _notify_committed(self) -> None:
        async def notify() -> None:
            async with self._committed:
                self._committed.notify_all()
        # Condition.notify_all needs the lock; take it without making callers async.
        if self._committed.statistics().lock_statistics.locked:
            trio.lowlevel.spawn_system_task(notify)
        else:
            self._committed.acquire_nowait()
            try:
                self._committed.notify_all()
            finally:
                self._committed.release()

    async def apply_committed(self, block: Block, extra: dict[bytes, bytes]) -> str:
        """Apply a Raft-committed block on every node, deterministically.

        Returns "applied", or why it was skipped: "stale" (it does not extend our
        head: a proposal built on an old head, or one we already have from block
        sync) or "bad_block" (header, signature or encoding refused). Every node
        reaches the same verdict from the same block and head, so skipping never
        diverges. The leader's first pending block, built on this very head, is
        committed with its own execution rather than executed again: the batch is the same.
        Raises StateRootMismatch (and halts) if our execution differs from the block's roots.
        """
        head = self._head
        header = block.header
        if header.height != head.height + 1 or header.prev_hash != head.hash:
            return "stale"
        claimed: list[bytes] = []
        try:
            if self._pending and self._pending[0].block.hash == block.hash:
                result = self._pending[0].result
            else:
                claimed, verified = await self._claim_unverified(block)
                try:
                    result = await trio.to_thread.run_sync(self._check_and_execute, block, head, verified)
                except Rejected as exc:
                    log.warning("skipping committed block %d (%s) proposed by %s: %s", header.height,
                                header.hash.hex()[:16], header.proposer.hex()[:16], exc.message)
                    return "bad_block"
            await self.commit(block, result, extra)
        finally:
            self._applying.difference_update(claimed)
        self._log_block(block, result)
        return "applied"

    async def _claim_unverified(self, block: Block) -> tuple[list[bytes], dict[bytes, Tx]]:
        """Before applying a block from elsewhere: wait for the verifier's chunk if it holds any of the
        block's transactions, and claim the ones no check has reached (the block checks those itself).

        Returns the claimed hashes and the block's transactions already verified here, decoded."""
        admitted, unadmitted = self.mempool.by_hash, self._checked_unadmitted
        hashes = [hashlib.sha256(raw).digest() for raw in block.txs]
        missing = [tx_hash for tx_hash in hashes if tx_hash not in admitted and tx_hash not in unadmitted]
        claimed = [tx_hash for tx_hash in missing if tx_hash not in self._verifying]
        self._applying.update(claimed)
        if len(claimed) < len(missing):
            await self._verified.wait()
        verified = {}
        for tx_hash in hashes:
            tx = admitted.get(tx_hash) or unadmitted.get(tx_hash)
            if tx is not None:
                verified[tx_hash] = tx
        return claimed, verified

    def _check_and_execute(self, block: Block, head: BlockHeader, verified: Mapping[bytes, Tx]) -> Execution:
        try:
            # Transactions already admitted here (gossip or local clients), or checked by the verifier and
            # about to be, were verified then: reuse the decoded Tx (keyed by the hash of the same raw
            # bytes) so each signature is checked once per node.
            return apply_block(self.store, self.apps, block, head,
                               lambda key: registry.is_validator(self.store, key, block.header.height),
                               self.exec_limits, verified)
        except StateRootMismatch as exc:
            self._halted = str(exc)
            log.critical("STATE DIVERGED, not applying further blocks: %s", exc)
            raise

    @property
    def head(self) -> BlockHeader:
        return self._head

    def apply_external(self, block: Block) -> None:
        """Apply a block made elsewhere (block sync, a Raft leader), checking every root it claims."""
        result = self._check_and_execute(block, self._head, self.mempool.by_hash)
        self._commits += 1
        self.store.commit_block(block, result)
        self._after_commit(block, result.tx_hashes, in_trio=False)

    # --- reads -------------------------------------------------------------------------------

    def tx_status(self, tx_hash: bytes) -> dict[str, Any]:
        receipt = self.store.receipt_bytes(tx_hash)
        if receipt is not None:
            return {"status": "committed", "receipt": codec.decode(receipt)}
        if tx_hash in self.mempool:
            return {"status": "pending"}
        return {"status": "unknown"}

    async def wait_committed(self, tx_hash: bytes, timeout_s: float) -> dict[str, Any]:
        """The status once the transaction commits, or at the timeout.

        An unknown transaction is waited for too: on a testnet it may have been
        submitted to another node and reach this one by gossip or in a block.
        """
        with trio.move_on_after(timeout_s):
            async with self._committed:
                while True:
                    status = self.tx_status(tx_hash)
                    if status["status"] == "committed":
                        return status
                    await self._committed.wait()
        return self.tx_status(tx_hash)

    async def wait_height(self, after: int, timeout_s: float) -> int:
        """Return the height as soon as it exceeds ``after`` (or when the timeout passes)."""
        with trio.move_on_after(timeout_s):
            async with self._committed:
                while (self.store.height or 0) <= after:
                    await self._committed.wait()
        return self.store.height or 0

    def block_at(self, height: int) -> Block | None:
        raw = self.store.block_bytes(height)
        return None if raw is None else decode_block(raw, max_bytes=1 << 30)

    @property
    def halted(self) -> str | None:
        return self._halted

    def info(self) -> dict[str, Any]:
        consensus = self.consensus_info() if self.consensus_info is not None else {
            "role": "leader", "term": 0, "leader": self.key.public, "peers": [], "lag": 0}
        return {
            "chain_id": self.chain_id,
            "height": self.store.height,
            "head": self.store.head,
            "state_root": self.store.state_root,
            "validator": self.key.public,
            **consensus,
            "mempool": len(self.mempool),
            "halted": self._halted,
        }
