# The caller-facing driver of the Raft state machine: Ready / advance.
#
# Owns: batching the state machine's output into a `Ready` and the handshake
# that tells the state machine what the caller has persisted and applied.
# Must not know: how the caller persists, sends or applies; there is no loop,
# thread or clock here. The node shell wraps this in its trio task.
#
# The handling loop, in this order (etcd's rawnode contract, simplified):
#
#     if node.has_ready():
#         rd = node.ready()
#         send(rd.early_messages)                              # 0. may go out while persisting
#         if rd.restore:    storage.restore(*rd.restore)      # 1. persist ...
#         storage.append(rd.entries)                           #    ... entries
#         if rd.hard_state: storage.set_hard_state(rd.hard_state)  # ... and hard state, durably (fsync;
#                                                              #     not needed if only commit moved: must_sync)
#         send(rd.late_messages)                               # 2. only now send the rest
#         apply(rd.committed_entries)                          # 3. apply, in order
#         node.advance(rd)                                     # 4. acknowledge
#
# Step 1 must complete before step 2: a vote or an append acknowledgement is a
# promise that survives a crash only if the vote and entries are on disk first.
# A leader's appends and heartbeats promise nothing about its own disk, nor does
# a heartbeat reply (it carries only the term), so they may go out while the
# entries are being written (etcd: "Messages may be sent while entries from the
# same batch are being persisted"; Raft thesis 10.2.1). A follower's heartbeat
# reply then does not wait for its fsync, so a slow disk does not look like a
# dead follower to check-quorum.
# This is safe because the leader counts its own entries toward a commit at
# once, but any commit index it *sends* or *applies* comes in a later Ready,
# which the caller handles only after this one's persist completed. Never when
# the Ready changes term or vote, or restores the log: then everything waits.
# `tick`, `step` and `propose` may be called between `ready` and `advance`;
# `ready` must not be called again before `advance`.
from __future__ import annotations

from dataclasses import dataclass

from .errors import RaftError
from .messages import Entry, HardState, Message, MessageType, NodeId, Role, SoftState
from .raft import CatchUpRequest, Config, Raft
from .storage import Storage

__all__ = ["RawNode", "Ready", "Status"]

_NO_PROMISE = frozenset((MessageType.APP, MessageType.HEARTBEAT, MessageType.SNAPSHOT_NEEDED,
                         MessageType.HEARTBEAT_RESP))


@dataclass(frozen=True)
class Ready:
    """Everything the caller must do after some ticks/steps, in contract order.

    - `restore`: (index, term) to reset the stored log to before appending
      `entries` (only after `RawNode.restore`).
    - `hard_state`: store durably if not None (it changed).
    - `entries`: append durably (replacing any conflicting stored suffix).
    - `messages`: send only after the two above are durable, except `early_messages`
      (see the module comment), which may be sent while they are being written.
    - `committed_entries`: apply in order; they are committed by a quorum.
    - `soft_state`: new leader/role if it changed; informational.
    - `catch_up`: the leader has compacted entries this node needs; start block sync.
    """

    soft_state: SoftState | None
    hard_state: HardState | None
    entries: tuple[Entry, ...]
    messages: tuple[Message, ...]
    committed_entries: tuple[Entry, ...]
    restore: tuple[int, int] | None = None
    catch_up: CatchUpRequest | None = None
    keeps_term_and_vote: bool = False
    """Whether persisting this Ready leaves term and vote as they were on disk."""

    @property
    def _may_send_early(self) -> bool:
        return self.keeps_term_and_vote and self.restore is None

    @property
    def early_messages(self) -> tuple[Message, ...]:
        """Appends, heartbeats and heartbeat replies, when this Ready changes neither term nor vote nor restores."""
        if not self._may_send_early:
            return ()
        return tuple(m for m in self.messages if m.type in _NO_PROMISE)

    @property
    def late_messages(self) -> tuple[Message, ...]:
        """Everything else: responses and votes are promises, sent only once the Ready is durable."""
        if not self._may_send_early:
            return self.messages
        return tuple(m for m in self.messages if m.type not in _NO_PROMISE)

    @property
    def must_persist(self) -> bool:
        """Whether there is anything to write before sending."""
        return bool(self.entries) or self.hard_state is not None or self.restore is not None

    @property
    def must_sync(self) -> bool:
        """Whether that write must be synced (fsync) before sending: entries, a restore, a new term or vote.

        A hard state that changes only the commit index may be written without a sync (etcd's
        MustSync): a commit index lost to a crash promised nothing to anyone; the restarted node
        learns it again from the leader, and never below what it applied (``Config.applied``,
        which the state machine keeps durably). It spares a leader one fsync per commit.
        """
        return bool(self.entries) or self.restore is not None or (
            self.hard_state is not None and not self.keeps_term_and_vote)


@dataclass(frozen=True)
class Status:
    id: NodeId
    term: int
    vote: NodeId | None
    commit: int
    applied: int
    last_index: int
    leader: NodeId | None
    role: Role


class RawNode:
    """A Raft node without I/O: feed it `tick`, `step` and `propose`; drain it
    with `ready` and `advance`. See the module comment for the handling order."""

    def __init__(self, config: Config, storage: Storage) -> None:
        self._raft = Raft(config, storage)
        self._prev_soft_state = self._raft.soft_state()
        self._prev_hard_state = storage.initial_state()
        self._ready_outstanding = False

    # -- input ------------------------------------------------------------------

    def tick(self) -> None:
        """Advance logical time by one tick (the shell calls this every tick interval)."""
        self._raft.tick()

    def step(self, message: Message) -> None:
        """Feed a message received from a peer. Raises `RaftError` for a message
        that cannot be from this cluster; stale messages are silently dropped."""
        self._raft.step(message)

    def propose(self, data: bytes) -> int:
        """Propose opaque `data` (a block) for the log; returns the entry's index.

        Raises `NotLeaderError` with `.leader` set to the known leader (or None)
        when this node is not the leader, and `ProposalDroppedError` when too
        many entries await commitment (backpressure; retry later). A returned index is not a promise:
        the entry may be overwritten if leadership changes before it commits;
        watch `Ready.committed_entries` for the data.
        """
        return self._raft.propose(data)

    def campaign(self) -> None:
        """Start an election now instead of waiting for the timeout."""
        self._raft.campaign()

    def restore(self, index: int, term: int) -> bool:
        """After block sync brought the state machine to `index` (whose entry has
        `term`), make the log agree; the next Ready may carry `restore`.

        Durability: write the synced blocks and that Ready's restore point in
        one atomic batch. A node whose applied height exceeds its stored Raft
        log cannot be restarted (`ConfigError`); one whose applied height is
        below `storage.first_index() - 1` must block sync before it starts.
        """
        return self._raft.restore(index, term)

    # -- output -----------------------------------------------------------------

    def has_ready(self) -> bool:
        raft = self._raft
        log = raft.log
        return (
            bool(raft.msgs)
            or raft.soft_state() != self._prev_soft_state
            or raft.hard_state() != self._prev_hard_state
            or bool(log.unstable_entries())
            or log.pending_restore() is not None
            or log.has_next_committed_entries()
            or raft.catch_up is not None
        )

    def ready(self) -> Ready:
        """Collect pending work. Call `advance(ready)` once it is handled."""
        if self._ready_outstanding:
            raise RaftError("ready() called again before advance()")
        raft = self._raft
        soft = raft.soft_state()
        hard = raft.hard_state()
        rd = Ready(
            soft_state=soft if soft != self._prev_soft_state else None,
            hard_state=hard if hard != self._prev_hard_state else None,
            entries=tuple(raft.log.unstable_entries()),
            messages=tuple(raft.msgs),
            committed_entries=tuple(raft.log.next_committed_entries()),
            restore=raft.log.pending_restore(),
            catch_up=raft.catch_up,
            keeps_term_and_vote=(hard.term, hard.vote) == (self._prev_hard_state.term, self._prev_hard_state.vote),
        )
        raft.msgs = []
        raft.catch_up = None
        self._prev_soft_state = soft
        self._ready_outstanding = True
        return rd

    def advance(self, rd: Ready) -> None:
        """Acknowledge that `rd` was persisted, sent and applied, in that order."""
        if not self._ready_outstanding:
            raise RaftError("advance() without an outstanding ready()")
        self._ready_outstanding = False
        log = self._raft.log
        if rd.hard_state is not None:
            self._prev_hard_state = rd.hard_state
        if rd.restore is not None and log.pending_restore() == rd.restore:
            log.restore_persisted()
        if rd.entries:
            last = rd.entries[-1]
            log.stable_to(last.index, last.term)
        if rd.committed_entries:
            log.applied_to(rd.committed_entries[-1].index)

    # -- observation ---------------------------------------------------------------

    def status(self) -> Status:
        raft = self._raft
        return Status(
            id=raft.id,
            term=raft.term,
            vote=raft.vote,
            commit=raft.log.committed,
            applied=raft.log.applied,
            last_index=raft.log.last_index(),
            leader=raft.leader,
            role=raft.role,
        )
