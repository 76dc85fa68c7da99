"""The Raft driver: the trio shell around the pure ``consensus.RawNode``, wired to the store, p2p and the node.

Owns: the Raft clock (ticks from trio time), the wire form of Raft messages
(canonical CBOR, decoded strictly), the Ready loop (persist, then send, then
apply, then advance), leader-side block proposal, applying committed blocks,
block sync (catch-up), transaction gossip in both directions, and the role
and lag that ``node.info`` reports.
Must not know: Raft's rules (``consensus``), how a block executes (``chain``,
via ``Node``), libp2p (``p2p``), the on-disk layout (``store``, ``raft_store``).

Ordering, and why:
- Persist before send: a Ready's restore point, entries and hard state are
  written in one synced LevelDB batch (``LevelDBRaftStorage.persist``) before
  any of its acknowledgements or votes is queued; each is thus a promise that
  survives ``kill -9``. A leader's appends and heartbeats go out while its own
  batch is written (``Ready.early_messages``: safe, see ``consensus.rawnode``),
  so replication overlaps the leader's fsync.
- Apply in log order, deterministically: each committed NORMAL entry holds one
  encoded block. A block that does not extend the head (a proposal built on an
  old head, or one already fetched by block sync) is skipped by every node; a
  block whose header or signature is refused (``Rejected``) is skipped by every
  node; only a root mismatch halts (divergence). The Raft index of each applied
  block is written in the block's own batch (``m/raft_applied``), so after a
  restart the node hands Raft exactly what it has applied; re-delivered entries
  are skipped as stale, so replay is idempotent.
- Pipelined proposals: the leader builds and proposes up to ``PIPELINE_DEPTH``
  blocks ahead of its head, each on top of the one before (``Node.build_block``
  keeps them pending), so execution of block h+1 overlaps the replication of h.
  Its own execution is reused when a block is applied, so the leader does not
  execute twice. If leadership changes, another block takes a height, or the
  oldest is not committed within ``IN_FLIGHT_TIMEOUT_S``, all pending blocks are
  dropped and building starts again from the head (proposals already in the log
  are then skipped as stale by every node alike).
- Exactly once: a transaction may sit in every validator's mempool and even in
  two proposals, but nonces and the tx-hash index make only its first inclusion
  count; committed blocks remove their transactions from every mempool.
- Catch-up: when the leader says our entries are compacted (``Ready.catch_up``),
  or a committed block skips ahead of our head (we missed blocks), we fetch
  blocks over ``/hcnode/sync/2`` and apply them with the full header/signature/root
  checks, then tell Raft where the log restarts.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Iterable
from typing import Any

import trio

from hcnode import codec
from hcnode.chain import Rejected, decode_block
from hcnode.config import ConsensusParams
from hcnode.consensus import (
    CatchUpRequest, Config, Entry, EntryType, Message, MessageType, NotLeaderError, ProposalDroppedError, RaftError,
    RawNode, Ready, Role,
)
from hcnode.node.node import Node
from hcnode.node.p2p import P2PService, PeerRequestError
from hcnode.node.raft_store import LevelDBRaftStorage

__all__ = ["RaftDriver", "encode_message", "decode_message", "RAFT_APPLIED_KEY"]

log = logging.getLogger("hcnode.consensus")

RAFT_APPLIED_KEY = b"m/raft_applied"
IN_FLIGHT_TIMEOUT_S = 3.0
PIPELINE_DEPTH = 3
SLOW_PERSIST_S = 0.1
REBROADCAST_AFTER_S = 1.0
OBSERVER_SYNC_S = 0.5
OBSERVER_WAIT_MS = 2000
SYNC_BATCH = 64
STALE_LOG_EVERY_S = 1.0


# --- wire form -------------------------------------------------------------------------------------

_TYPES = {t.value: t for t in MessageType}
_ENTRY_TYPES = {t.value: t for t in EntryType}


def encode_message(m: Message) -> bytes:
    """[type, sender, recipient, term, log_term, index, [[term, index, type, data]...], commit, reject, hint]."""
    return codec.encode([m.type.value, m.sender, m.recipient, m.term, m.log_term, m.index,
                         [[e.term, e.index, e.type.value, e.data] for e in m.entries],
                         m.commit, m.reject, m.reject_hint])


def decode_message(data: bytes, max_bytes: int, max_entries: int) -> Message:
    """Strictly decode a peer's Raft message; raises ValueError (``codec.CodecError`` is one) naming the fault."""
    value = codec.decode(data, codec.DecodeLimits(max_bytes=max_bytes, max_depth=4,
                                                  max_items=16 + 5 * max_entries))
    if type(value) is not list or len(value) != 10:
        raise ValueError("a raft message is a list of 10 fields")
    kind, sender, recipient, term, log_term, index, entries, commit, reject, hint = value
    if kind not in _TYPES:
        raise ValueError(f"unknown raft message type {kind!r}")
    if type(sender) is not bytes or type(recipient) is not bytes:
        raise ValueError("sender and recipient are byte strings")
    if any(type(v) is not int for v in (term, log_term, index, commit, hint)) or type(reject) is not bool:
        raise ValueError("term, log_term, index, commit and hint are integers; reject is a boolean")
    if type(entries) is not list or len(entries) > max_entries:
        raise ValueError(f"entries is a list of at most {max_entries}")
    decoded = []
    for e in entries:
        if (type(e) is not list or len(e) != 4 or type(e[0]) is not int or type(e[1]) is not int
                or e[2] not in _ENTRY_TYPES or type(e[3]) is not bytes):
            raise ValueError("an entry is [term, index, type, data]")
        decoded.append(Entry(term=e[0], index=e[1], type=_ENTRY_TYPES[e[2]], data=e[3]))
    if hint < 0:
        raise ValueError("reject_hint must be >= 0")
    return Message(type=_TYPES[kind], sender=sender, recipient=recipient, term=term, log_term=log_term,
                   index=index, entries=tuple(decoded), commit=commit, reject=reject, reject_hint=hint)


# --- the driver -------------------------------------------------------------------------------------

class RaftDriver:
    """Runs Raft for one node: ``await nursery.start(driver.run)`` after the p2p service has started."""

    def __init__(self, node: Node, p2p: P2PService, validators: Iterable[bytes], params: ConsensusParams) -> None:
        self.node = node
        self.p2p = p2p
        self.params = params
        self.voters = tuple(sorted(set(validators)))
        self.me = node.key.public
        self.is_voter = self.me in self.voters
        self.max_frame = p2p.params.max_frame_bytes
        # An append must fit one p2p frame: as many whole blocks as the frame holds, at least one.
        self.max_entries = max(1, (self.max_frame - 64 * 1024) // (node.config.block.max_bytes + 64 * 1024))
        self.storage = LevelDBRaftStorage(node.store.db)
        self.raw: RawNode | None = None
        self.role = "observer"
        self.leader: bytes | None = None
        self._wake = trio.Event()
        self._oldest_proposed: float | None = None  # when the oldest pending block was proposed
        self._pipeline_moved = trio.Event()  # a pending block was committed or dropped
        self._relay_buffer: list[tuple[bytes, bytes]] = []  # (tx hash, raw) admitted here, to publish
        self._relay_wake = trio.Event()
        # (when published, tx hash), oldest first: rebroadcast visits each transaction about once a
        # second until it leaves the mempool, never the whole history.
        self._relayed: deque[tuple[float, bytes]] = deque()
        self._sync_lock = trio.Lock()
        self._need_sync = False
        self.bad_messages = 0
        self.stale_messages = 0
        self._stale_logged: dict[bytes, float] = {}
        self.skipped_blocks = 0
        if self.is_voter:
            self.raw = RawNode(self._raft_config(), self.storage)
        node.relay = self._relay
        node.consensus_info = self.info

    def _raft_config(self) -> Config:
        raw_applied = self.node.store.db.get(RAFT_APPLIED_KEY)
        applied = int.from_bytes(raw_applied, "big") if raw_applied else 0
        # Compaction (not synced) only ever covers entries this node had applied or skipped; a restore
        # point is only written after the synced blocks are durable. Either way they are processed.
        applied = min(max(applied, self.storage.first_index() - 1), self.storage.last_index())
        return Config(id=self.me, voters=self.voters, rng=random.Random(), election_tick=self.params.election_ticks,
                      heartbeat_tick=self.params.heartbeat_ticks, max_entries_per_append=self.max_entries,
                      max_inflight=64, max_uncommitted_entries=64, applied=applied)

    # --- running ------------------------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._gossip_out)
            nursery.start_soon(self._gossip_in)
            nursery.start_soon(self._rebroadcast)
            if self.raw is None:
                log.info("consensus: this node is an observer (not a genesis validator); following by block sync")
                nursery.start_soon(self._observe)
            else:
                status = self.raw.status()
                log.info("consensus: voter among %d validators; raft term %d, log %d..%d, applied %d",
                         len(self.voters), status.term, self.storage.first_index(), status.last_index,
                         status.applied)
                nursery.start_soon(self._ticker)
                nursery.start_soon(self._inbound)
                nursery.start_soon(self._ready_loop)
                nursery.start_soon(self._propose_loop)
            task_status.started()

    def _poke(self) -> None:
        self._wake.set()

    async def _ticker(self) -> None:
        assert self.raw is not None
        interval = self.params.tick_ms / 1000
        deadline = trio.current_time()
        while True:
            deadline += interval
            await trio.sleep_until(deadline)
            now = trio.current_time()
            if now - deadline > 5 * interval:
                deadline = now  # the loop was blocked: tick once, don't burst a backlog of ticks
            self.raw.tick()
            self._poke()

    async def _inbound(self) -> None:
        """Decode and step every message from a peer; a bad one is dropped with a log line naming the peer."""
        assert self.raw is not None
        async for peer_key, payload in self.p2p.raft_inbound:
            try:
                message = decode_message(payload, self.max_frame, self.max_entries)
                if message.sender != peer_key:
                    raise ValueError(f"claims to be from {message.sender.hex()[:16]}…")
                if message.recipient != self.me:
                    raise ValueError(f"is addressed to {message.recipient.hex()[:16]}…, not to us")
                term = self.raw.status().term
                if message.term < term:
                    self._note_stale(peer_key, message, term)
                self.raw.step(message)
            except (ValueError, RaftError) as exc:
                self.bad_messages += 1
                log.warning("consensus: dropped a raft message from %s: %s", peer_key.hex()[:16], exc)
                continue
            self._poke()

    def _note_stale(self, peer_key: bytes, message: Message, term: int) -> None:
        """Log (at most once a second per peer) a message from an older term; Raft still steps it: it
        ignores it, or answers an old leader with our term so that it steps down."""
        self.stale_messages += 1
        now = trio.current_time()
        last = self._stale_logged.get(peer_key)
        if last is None or now - last >= STALE_LOG_EVERY_S:
            self._stale_logged[peer_key] = now
            log.info("consensus: ignored a stale raft %s from %s: term %d < our term %d (%d stale so far)",
                     message.type.value, peer_key.hex()[:16], message.term, term, self.stale_messages)

    async def _ready_loop(self) -> None:
        raw = self.raw
        assert raw is not None
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            while raw.has_ready():
                await self._handle_ready(raw.ready())
            if self._need_sync:
                self._need_sync = False
                await self._catch_up(None)

    async def _handle_ready(self, rd: Ready) -> None:
        raw = self.raw
        assert raw is not None
        if rd.soft_state is not None:
            self._on_soft_state(rd.soft_state.role, rd.soft_state.leader)
        # 0. appends and heartbeats (and their replies) go out while the entries are written (rawnode: safe)
        self._send_all(rd.early_messages)
        # 1. persist (synced) ...
        if rd.must_persist and not rd.must_sync:
            self.storage.persist(rd)  # only the commit index moved: no fsync, so no worker thread either
        elif rd.must_persist:
            started = trio.current_time()
            await trio.to_thread.run_sync(self.storage.persist, rd)
            took = trio.current_time() - started
            if took > SLOW_PERSIST_S:
                log.warning("consensus: persisting raft state took %.0f ms (slow disk or starved CPU); "
                            "acknowledgements and votes waited for it", took * 1000)
            if rd.restore is not None:
                self.node.store.db.put(RAFT_APPLIED_KEY, rd.restore[0].to_bytes(8, "big"), sync=True)
        # 2. ... only then what promises something (acknowledgements, votes)
        self._send_all(rd.late_messages)
        # 3. apply in order
        for entry in rd.committed_entries:
            await self._apply_entry(entry)
        raw.advance(rd)
        self._maybe_compact()
        if rd.catch_up is not None:
            await self._catch_up(rd.catch_up)

    def _send_all(self, messages: Iterable[Message]) -> None:
        for message in messages:
            try:
                self.p2p.send(message.recipient, encode_message(message))  # type: ignore[arg-type]
            except (ValueError, RuntimeError) as exc:
                log.warning("consensus: cannot send %s to %s: %s", message.type.value,
                            bytes(message.recipient).hex()[:16], exc)

    def _on_soft_state(self, role: Role, leader: Any) -> None:
        self.role = {Role.LEADER: "leader", Role.FOLLOWER: "follower"}.get(role, "candidate")
        if leader != self.leader:
            log.info("consensus: leader is now %s (term %d)", leader.hex()[:16] if leader else None,
                     self.raw.status().term if self.raw else 0)
        self.leader = leader
        if role is not Role.LEADER:
            self._drop_pending()

    async def _apply_entry(self, entry: Entry) -> None:
        if entry.type is not EntryType.NORMAL or not entry.data:
            return
        try:
            block = decode_block(entry.data, max_bytes=self.max_frame)
        except Rejected as exc:
            self.skipped_blocks += 1
            log.warning("consensus: entry %d holds no valid block (%s); skipped by every node", entry.index,
                        exc.message)
            return
        pending_before = self.node.pending_blocks
        head = self.node.head
        if block.header.height > head.height + 1:
            # We are missing blocks (our log was restored past them or we were restarted behind): sync them.
            self._need_sync = True
        outcome = await self.node.apply_committed(block, {RAFT_APPLIED_KEY: entry.index.to_bytes(8, "big")})
        if outcome != "applied":
            self.skipped_blocks += 1
            if outcome == "stale" and block.header.height <= head.height:
                log.debug("consensus: entry %d: block %d is already applied", entry.index, block.header.height)
            else:
                log.info("consensus: entry %d: block %d skipped (%s)", entry.index, block.header.height, outcome)
        if self.node.pending_blocks != pending_before:
            self._oldest_proposed = trio.current_time() if self.node.pending_blocks else None
            self._pipeline_moved.set()

    def _maybe_compact(self) -> None:
        assert self.raw is not None
        applied = self.raw.status().applied
        keep = self.params.log_keep_entries
        if applied - (self.storage.first_index() - 1) > 2 * keep:
            self.storage.compact(applied - keep)

    # --- proposing (leader) ---------------------------------------------------------------------

    def _drop_pending(self) -> None:
        if self.node.pending_blocks:
            self.node.discard_pending()
            self._oldest_proposed = None
            self._pipeline_moved.set()

    async def _propose_loop(self) -> None:
        raw = self.raw
        assert raw is not None
        tick = self.params.tick_ms / 1000
        while True:
            if self.role != "leader" or self.node.halted:
                await trio.sleep(tick)
                continue
            if self.node.pending_blocks >= PIPELINE_DEPTH:
                self._pipeline_moved = trio.Event()
                oldest = self._oldest_proposed if self._oldest_proposed is not None else trio.current_time()
                with trio.move_on_at(oldest + IN_FLIGHT_TIMEOUT_S):
                    await self._pipeline_moved.wait()
                    continue
                log.warning("consensus: block %d not committed within %.0f s; building anew",
                            self.node.head.height + 1, IN_FLIGHT_TIMEOUT_S)
                self._drop_pending()
                continue
            await self.node.wait_for_block(at_once_if_idle=True)
            if self.role != "leader":
                continue
            built = await self.node.build_block()
            if built is None:
                continue
            if self.role != "leader":
                self._drop_pending()
                continue
            try:
                raw.propose(built.block.encode())
            except NotLeaderError:
                self._drop_pending()
                continue
            except ProposalDroppedError:
                self._drop_pending()
                await trio.sleep(tick)
                continue
            # Not "if nothing was pending before the build": blocks may commit while it executes.
            if self._oldest_proposed is None:
                self._oldest_proposed = trio.current_time()
            self._poke()

    # --- block sync ---------------------------------------------------------------------------

    async def _catch_up(self, request: CatchUpRequest | None) -> None:
        """Fetch and apply blocks we miss; after a CatchUpRequest, restart the Raft log at its point."""
        peers = [k for k in self.p2p.connected_keys() if k in self.voters]
        if request is not None and isinstance(request.leader, bytes):
            peers = [request.leader] + [k for k in peers if k != request.leader]
        await self._sync_from(peers)
        if request is not None and self.raw is not None:
            if self.raw.restore(request.index, request.term):
                log.info("consensus: raft log restarts after entry %d (term %d) at block %d", request.index,
                         request.term, self.node.head.height)
                self._poke()

    async def _sync_from(self, peers: list[bytes], wait_ms: int = 0) -> int:
        """Apply peers' blocks past our head, verifying each (header chain, signature, roots). Returns how many."""
        applied = 0
        async with self._sync_lock:
            for peer in peers:
                while True:
                    start = self.node.head.height + 1
                    try:
                        raws = await self.p2p.fetch_blocks(peer, start, SYNC_BATCH, wait_ms=wait_ms)
                    except PeerRequestError as exc:
                        log.info("consensus: block sync: %s", exc)
                        break
                    if not raws:
                        break
                    progressed = False
                    for raw_block in raws:
                        try:
                            block = decode_block(raw_block, max_bytes=self.max_frame)
                        except Rejected as exc:
                            log.warning("consensus: block sync: bad block from %s: %s", peer.hex()[:16], exc.message)
                            break
                        outcome = await self.node.apply_committed(block, {})
                        if outcome != "applied":
                            log.warning("consensus: block sync: block %d from %s refused (%s)",
                                        block.header.height, peer.hex()[:16], outcome)
                            break
                        applied += 1
                        progressed = True
                    if not progressed or len(raws) < SYNC_BATCH:
                        break
        if applied:
            log.info("consensus: block sync applied %d blocks; head is %d", applied, self.node.head.height)
        return applied

    async def _observe(self) -> None:
        """Follow by block sync. The request to one peer waits (``wait_ms``) for our next block, so a
        block arrives as soon as that peer commits it; only when it has none do we ask the others (it
        may be behind or cut off). Which peer waits for us follows from our key, so observers spread
        their waiting requests over the validators."""
        while True:
            peers = self.p2p.connected_keys()
            if peers:
                first = int.from_bytes(self.me[-4:], "big") % len(peers)
                peers = peers[first:] + peers[:first]
            started = trio.current_time()
            if await self._sync_from(peers[:1], wait_ms=OBSERVER_WAIT_MS) or await self._sync_from(peers[1:]):
                continue
            if trio.current_time() - started < OBSERVER_WAIT_MS / 1000:
                await trio.sleep(OBSERVER_SYNC_S)  # no peer, or the request failed at once: do not spin

    # --- transaction gossip -------------------------------------------------------------------------

    def _relay(self, tx_hash: bytes, raw: bytes) -> None:
        self._relay_buffer.append((tx_hash, raw))
        self._relay_wake.set()

    async def _gossip_out(self) -> None:
        """Publish locally admitted transactions in batches (every validator keeps them until committed)."""
        limit_txs = self.p2p.params.gossip_max_batch_txs
        limit_bytes = self.p2p.params.gossip_max_batch_bytes - 1024
        while True:
            await self._relay_wake.wait()
            self._relay_wake = trio.Event()
            await trio.sleep(0.005)  # let a burst of submissions gather into one batch
            pending, self._relay_buffer = self._relay_buffer, []
            batch: list[bytes] = []
            size = 0
            for _, raw in pending:
                if batch and (len(batch) >= limit_txs or size + len(raw) + 8 > limit_bytes):
                    await self._publish(batch)
                    batch, size = [], 0
                batch.append(raw)
                size += len(raw) + 8
            if batch:
                await self._publish(batch)
            now = trio.current_time()
            if len(self._relayed) < 200_000:
                self._relayed.extend((now, tx_hash) for tx_hash, _ in pending)

    async def _publish(self, batch: list[bytes]) -> None:
        try:
            await self.p2p.publish_txs(batch)
        except (ValueError, RuntimeError) as exc:
            log.warning("consensus: could not gossip %d transactions: %s", len(batch), exc)

    async def _rebroadcast(self) -> None:
        """Gossip is best effort: publish again what we admitted and is still pending after a while.

        The leader keeps tracking its own (it may lose leadership) but needs no one else to have them."""
        while True:
            await trio.sleep(REBROADCAST_AFTER_S)
            now = trio.current_time()
            again = []
            relayed = self._relayed
            while relayed and now - relayed[0][0] >= REBROADCAST_AFTER_S:
                _, tx_hash = relayed.popleft()
                tx = self.node.mempool.by_hash.get(tx_hash)
                if tx is None:
                    continue  # committed (or evicted): done
                if self.role == "leader":
                    relayed.append((now, tx_hash))
                else:
                    again.append((tx_hash, tx.raw))  # _gossip_out publishes and tracks it afresh
            if again:
                self._relay_buffer.extend(again)
                self._relay_wake.set()

    async def _gossip_in(self) -> None:
        async for origin, txs in self.p2p.tx_batches:
            try:
                outcomes = await self.node.submit_many(txs, relay=False)
            except Exception as exc:  # a batch must never stop the node; log and go on
                log.warning("consensus: gossip batch from %s failed: %s", origin.hex()[:16], exc)
                continue
            refused = [o for o in outcomes if isinstance(o, Rejected) and o.code not in ("replayed_nonce",)]
            if refused:
                log.debug("consensus: %d of %d gossiped transactions from %s refused (first: %s)", len(refused),
                          len(txs), origin.hex()[:16], refused[0].message)

    # --- observation ---------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        status = self.raw.status() if self.raw is not None else None
        peer_head = self.p2p.peer_head()
        if status is not None:
            lag: int | None = status.commit - status.applied  # committed by Raft, not yet applied here
        else:  # an observer: behind the highest head a peer reported in block sync (unknown before one did)
            lag = None if peer_head is None else max(0, peer_head - (self.node.store.height or 0))
        return {
            "role": self.role,
            "term": status.term if status else 0,
            "leader": self.leader,
            "peers": [k for k in self.p2p.connected_keys()],
            "lag": lag,
            "peer_head": peer_head,
            "raft_commit": status.commit if status else 0,
            "raft_applied": status.applied if status else 0,
            "bad_raft_messages": self.bad_messages,
            "stale_raft_messages": self.stale_messages,
        }
