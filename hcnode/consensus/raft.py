# The Raft state machine: elections, replication, commitment.
#
# Owns: term and vote, the role and its tick/step behaviour, the leader's
# progress tracking, and the outbox of messages produced by a step or tick.
# Must not know: clocks, sockets, disks, threads, trio, blocks. Time is
# `tick()`; input is `step(message)`; output is read through `RawNode.ready()`.
# Randomness comes only from the `random.Random` passed in `Config.rng`.
#
# Theory of operation (Raft paper sections in brackets; etcd-io/raft raft.go is
# the model, simplified: fixed voters, no learners, no read index, no leader
# transfer):
# - Each role has its own tick and step function; role changes swap them
#   (`_become_follower` / `_become_pre_candidate` / `_become_candidate` /
#   `_become_leader`).
# - Elections [5.2]: a follower that hears nothing from a leader for a
#   randomized timeout in [election_tick, 2*election_tick) campaigns. With
#   pre_vote it first asks, without raising its term, whether it could win; a
#   partitioned node thus cannot inflate terms and disrupt a healthy leader.
# - Leader lease (check_quorum): a node that heard from a leader within the
#   last election_tick ignores (pre)vote requests for a higher term, and a
#   leader that has not heard from a quorum within election_tick steps down.
# - Replication [5.3]: appends carry (index, log_term) of the preceding entry;
#   a follower rejects on mismatch with a hint (fast backtracking) and
#   truncates conflicting uncommitted entries. The leader pipelines appends
#   (see progress.py).
# - Commitment [5.4.2]: the leader commits index N once a quorum matches N and
#   entry N is from its current term; a new leader appends an empty entry so
#   earlier entries get committed promptly (Figure 8).
# - Compaction: when a follower needs an entry that the leader's storage has
#   compacted, the leader sends SNAPSHOT_NEEDED instead of appends. The
#   follower's shell catches up by block sync and calls `RawNode.restore`.
#
# Durability contract: every message in `msgs` may depend on the term, vote
# and log entries as they are *now*; the caller must persist the Ready's
# hard state and entries before sending its messages (see rawnode.py).
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import ConfigError, NotLeaderError, ProposalDroppedError, RaftError
from .log import RaftLog
from .messages import Entry, EntryType, HardState, Message, MessageType, NodeId, Role, SoftState
from .progress import Progress, ProgressState
from .storage import Storage

__all__ = ["Config", "Raft", "CatchUpRequest"]


@dataclass(frozen=True)
class Config:
    """Static parameters of one Raft node.

    `voters` is the fixed cluster membership (e.g. validator public keys) and
    must contain `id`. `max_uncommitted_entries` is backpressure: a leader
    whose log runs that far ahead of its commit index refuses proposals (as
    etcd's MaxUncommittedEntriesSize) so a slow quorum cannot grow an unbounded
    backlog. `rng` is the only source of randomness (election timeout
    jitter); seed it for reproducible runs. `applied` is the index the caller's
    state machine has already applied durably, so a restarted node does not
    hand those entries out again.
    """

    id: NodeId
    voters: tuple[NodeId, ...]
    rng: random.Random = field(compare=False)
    election_tick: int = 10
    heartbeat_tick: int = 1
    pre_vote: bool = True
    check_quorum: bool = True
    max_inflight: int = 64
    max_entries_per_append: int = 64
    max_uncommitted_entries: int = 1024
    applied: int = 0

    def validate(self) -> None:
        voters = list(self.voters)
        if not voters:
            raise ConfigError("voters must not be empty")
        kinds = {type(v) for v in voters} | {type(self.id)}
        if len(kinds) != 1 or not kinds <= {str, bytes}:
            raise ConfigError("node ids must all be str or all be bytes")
        if len(set(voters)) != len(voters):
            raise ConfigError("voters contains duplicates")
        if self.id not in voters:
            raise ConfigError(f"id {self.id!r} is not among the voters")
        if self.heartbeat_tick < 1 or self.election_tick <= self.heartbeat_tick:
            raise ConfigError("need 1 <= heartbeat_tick < election_tick")
        if self.max_inflight < 1 or self.max_entries_per_append < 1 or self.max_uncommitted_entries < 1:
            raise ConfigError("max_inflight, max_entries_per_append and max_uncommitted_entries must be >= 1")
        if self.applied < 0:
            raise ConfigError("applied must be >= 0")


@dataclass(frozen=True)
class CatchUpRequest:
    """The leader told this follower that the entries it needs are compacted.

    The shell fetches the chain from `leader` up to at least `index` by block
    sync, applies it, and then calls `RawNode.restore(index, term)` (or with a
    later committed index/term it learned from the sync).
    """

    leader: NodeId
    index: int
    term: int


class Raft:
    def __init__(self, config: Config, storage: Storage) -> None:
        config.validate()
        self.id = config.id
        self.voters: tuple[NodeId, ...] = tuple(sorted(config.voters))  # type: ignore[type-var]
        self.peers: tuple[NodeId, ...] = tuple(v for v in self.voters if v != self.id)
        self.quorum = len(self.voters) // 2 + 1
        self.election_tick = config.election_tick
        self.heartbeat_tick = config.heartbeat_tick
        self.pre_vote = config.pre_vote
        self.check_quorum = config.check_quorum
        self.max_inflight = config.max_inflight
        self.max_entries_per_append = config.max_entries_per_append
        self.max_uncommitted_entries = config.max_uncommitted_entries
        self._rng = config.rng

        self.log = RaftLog(storage)
        hard_state = storage.initial_state()
        if hard_state.vote is not None and hard_state.vote not in self.voters:
            raise ConfigError(f"stored vote {hard_state.vote!r} is not a voter")
        self.term = hard_state.term
        self.vote: NodeId | None = hard_state.vote
        committed = max(hard_state.commit, config.applied)
        if committed > self.log.last_index():
            raise ConfigError(f"commit/applied {committed} is past the stored last index {self.log.last_index()}")
        self.log.commit_to(committed)
        if config.applied > self.log.applied:
            self.log.applied_to(config.applied)

        self.msgs: list[Message] = []
        self.catch_up: CatchUpRequest | None = None
        self.role = Role.FOLLOWER
        self.leader: NodeId | None = None
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = self.election_tick
        self.votes: dict[NodeId, bool] = {}
        self.progress: dict[NodeId, Progress] = {}
        self._tick: Callable[[], None] = self._tick_election
        self._step: Callable[[Message], None] = self._step_follower
        self._become_follower(self.term, None)

    # -- observation ----------------------------------------------------------

    def soft_state(self) -> SoftState:
        return SoftState(leader=self.leader, role=self.role)

    def hard_state(self) -> HardState:
        return HardState(term=self.term, vote=self.vote, commit=self.log.committed)

    # -- role changes -----------------------------------------------------------

    def _reset(self, term: int) -> None:
        if term != self.term:
            self.term = term
            self.vote = None
        self.leader = None
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = self.election_tick + self._rng.randrange(self.election_tick)
        self.votes = {}
        last = self.log.last_index()
        self.progress = {v: Progress(0, last + 1, self.max_inflight) for v in self.voters}
        self.progress[self.id].match = last

    def _become_follower(self, term: int, leader: NodeId | None) -> None:
        self._reset(term)
        self._tick = self._tick_election
        self._step = self._step_follower
        self.leader = leader
        self.role = Role.FOLLOWER

    def _become_pre_candidate(self) -> None:
        # Neither the term nor the vote changes: a pre-vote must leave no trace
        # that could disrupt the cluster if the node cannot win.
        if self.role is Role.LEADER:
            raise RaftError("a leader cannot become a pre-candidate")
        self._tick = self._tick_election
        self._step = self._step_candidate
        self.votes = {}
        self.leader = None
        self.role = Role.PRE_CANDIDATE

    def _become_candidate(self) -> None:
        if self.role is Role.LEADER:
            raise RaftError("a leader cannot become a candidate")
        self._reset(self.term + 1)
        self._tick = self._tick_election
        self._step = self._step_candidate
        self.vote = self.id
        self.role = Role.CANDIDATE

    def _become_leader(self) -> None:
        if self.role is not Role.CANDIDATE:
            raise RaftError("only a candidate can become leader")
        self._reset(self.term)
        self._tick = self._tick_heartbeat
        self._step = self._step_leader
        self.leader = self.id
        self.role = Role.LEADER
        own = self.progress[self.id]
        own.become_replicate()
        own.recent_active = True
        # The empty entry of the new term lets the leader commit everything
        # before it by counting replicas of an entry from its own term [5.4.2].
        self._append_entries([Entry(term=self.term, index=0, type=EntryType.EMPTY)])

    # -- ticks --------------------------------------------------------------------

    def tick(self) -> None:
        self._tick()

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.election_elapsed >= self.randomized_election_timeout:
            self.election_elapsed = 0
            self.campaign()

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.election_tick:
            self.election_elapsed = 0
            if self.check_quorum and not self._quorum_recently_active():
                self._become_follower(self.term, None)
                return
        if self.heartbeat_elapsed >= self.heartbeat_tick:
            self.heartbeat_elapsed = 0
            self._broadcast_heartbeat()

    def _quorum_recently_active(self) -> bool:
        """Count followers heard from since the last check, and start a new window."""
        active = 0
        for voter in self.voters:
            progress = self.progress[voter]
            if voter == self.id or progress.recent_active:
                active += 1
            if voter != self.id:
                progress.recent_active = False
        return active >= self.quorum

    # -- elections ----------------------------------------------------------------

    def campaign(self) -> None:
        """Start an election now (pre-vote first if configured). No-op for a leader."""
        if self.role is Role.LEADER:
            return
        self._campaign(pre_vote=self.pre_vote)

    def _campaign(self, pre_vote: bool) -> None:
        if pre_vote:
            self._become_pre_candidate()
            request = MessageType.PRE_VOTE
            term = self.term + 1  # the term we would campaign in; not adopted yet
        else:
            self._become_candidate()
            request = MessageType.VOTE
            term = self.term
        if self._poll(self.id, granted=True) is True:
            # Single-node cluster: we win on our own vote.
            if pre_vote:
                self._campaign(pre_vote=False)
            else:
                self._become_leader()
            return
        last_index, last_term = self.log.last_index(), self.log.last_term()
        for peer in self.peers:
            self._send(Message(request, self.id, peer, term, log_term=last_term, index=last_index))

    def _poll(self, voter: NodeId, granted: bool) -> bool | None:
        """Record a vote (the first answer per voter counts) and return True if
        won, False if lost, None if still open."""
        self.votes.setdefault(voter, granted)
        yes = sum(1 for v in self.votes.values() if v)
        no = len(self.votes) - yes
        if yes >= self.quorum:
            return True
        if no > len(self.voters) - self.quorum:
            return False
        return None

    # -- step -----------------------------------------------------------------------

    def step(self, m: Message) -> None:
        """Handle one message from a peer. Stale or irrelevant messages are
        dropped; messages from unknown nodes raise `RaftError`."""
        if m.recipient != self.id:
            raise RaftError(f"message for {m.recipient!r} delivered to {self.id!r}")
        if m.sender not in self.progress or m.sender == self.id:
            raise RaftError(f"message from unknown sender {m.sender!r}")

        if m.term > self.term:
            if m.type in (MessageType.VOTE, MessageType.PRE_VOTE):
                in_lease = (
                    self.check_quorum and self.leader is not None and self.election_elapsed < self.election_tick
                )
                if in_lease:
                    # Leader lease: we heard from a live leader within the
                    # election timeout, so this candidate is disruptive.
                    return
            if m.type is MessageType.PRE_VOTE:
                pass  # answering a pre-vote never changes our term
            elif m.type is MessageType.PRE_VOTE_RESP and not m.reject:
                pass  # a granted pre-vote carries the future term; adopt it only on winning
            elif m.type in (MessageType.APP, MessageType.HEARTBEAT, MessageType.SNAPSHOT_NEEDED):
                self._become_follower(m.term, m.sender)
            else:
                self._become_follower(m.term, None)
        elif m.term < self.term:
            if (self.check_quorum or self.pre_vote) and m.type in (MessageType.APP, MessageType.HEARTBEAT):
                # A stale leader (e.g. healed from a partition) would otherwise
                # never learn the new term: with check_quorum/pre_vote we no
                # longer campaign to tell it. Answer with our term.
                self._send(Message(MessageType.APP_RESP, self.id, m.sender, self.term))
            elif m.type is MessageType.PRE_VOTE:
                self._send(Message(MessageType.PRE_VOTE_RESP, self.id, m.sender, self.term, reject=True))
            return

        if m.type in (MessageType.VOTE, MessageType.PRE_VOTE):
            self._handle_vote_request(m)
        else:
            self._step(m)

    def _handle_vote_request(self, m: Message) -> None:
        can_vote = (
            self.vote == m.sender
            or (self.vote is None and self.leader is None)
            or (m.type is MessageType.PRE_VOTE and m.term > self.term)
        )
        response = MessageType.VOTE_RESP if m.type is MessageType.VOTE else MessageType.PRE_VOTE_RESP
        if can_vote and self.log.is_up_to_date(m.index, m.log_term):
            # The grant carries the candidate's term: for a pre-vote that is the
            # future term, which the pre-candidate recognises as an answer.
            self._send(Message(response, self.id, m.sender, m.term))
            if m.type is MessageType.VOTE:
                # Persisted (in Ready.hard_state) before this response is sent.
                self.election_elapsed = 0
                self.vote = m.sender
        else:
            self._send(Message(response, self.id, m.sender, self.term, reject=True))

    def _step_follower(self, m: Message) -> None:
        if m.type is MessageType.APP:
            self.election_elapsed = 0
            self.leader = m.sender
            self._handle_append(m)
        elif m.type is MessageType.HEARTBEAT:
            self.election_elapsed = 0
            self.leader = m.sender
            self._handle_heartbeat(m)
        elif m.type is MessageType.SNAPSHOT_NEEDED:
            self.election_elapsed = 0
            self.leader = m.sender
            if m.index > self.log.committed:
                self.catch_up = CatchUpRequest(leader=m.sender, index=m.index, term=m.log_term)
        # Vote responses from an abandoned candidacy and other leftovers are dropped.

    def _step_candidate(self, m: Message) -> None:
        wanted = MessageType.PRE_VOTE_RESP if self.role is Role.PRE_CANDIDATE else MessageType.VOTE_RESP
        if m.type in (MessageType.APP, MessageType.HEARTBEAT, MessageType.SNAPSHOT_NEEDED):
            # A leader exists for this term (we are at m.term here).
            self._become_follower(m.term, m.sender)
            self._step_follower(m)
        elif m.type is wanted:
            outcome = self._poll(m.sender, granted=not m.reject)
            if outcome is True:
                if self.role is Role.PRE_CANDIDATE:
                    self._campaign(pre_vote=False)
                else:
                    self._become_leader()
                    self._broadcast_append()
            elif outcome is False:
                self._become_follower(self.term, None)

    def _step_leader(self, m: Message) -> None:
        progress = self.progress[m.sender]
        if m.type is MessageType.APP_RESP:
            progress.recent_active = True
            if m.reject:
                self._handle_append_reject(m, progress)
            else:
                self._handle_append_ack(m, progress)
        elif m.type is MessageType.HEARTBEAT_RESP:
            progress.recent_active = True
            progress.probe_sent = False
            if progress.state is ProgressState.SNAPSHOT:
                # Try again: the follower may have caught up by block sync, or
                # the SNAPSHOT_NEEDED may have been lost.
                progress.become_probe()
            elif progress.state is ProgressState.REPLICATE and progress.is_paused():
                progress.free_first_inflight()
            if progress.match < self.log.last_index():
                self._send_append(m.sender)

    def _handle_append_reject(self, m: Message, progress: Progress) -> None:
        next_probe = m.reject_hint
        if m.log_term > 0:
            # Skip every entry of ours whose term exceeds the follower's term at
            # the hint: none of them can match (etcd's fast backtracking).
            next_probe, _ = self.log.find_conflict_by_term(m.reject_hint, m.log_term)
        if progress.maybe_decrease_to(m.index, next_probe):
            if progress.state is ProgressState.REPLICATE:
                progress.become_probe()
            self._send_append(m.sender)

    def _handle_append_ack(self, m: Message, progress: Progress) -> None:
        was_paused = progress.is_paused()
        if not progress.maybe_update(m.index):
            return
        if progress.state is ProgressState.PROBE:
            progress.become_replicate()
        elif progress.state is ProgressState.SNAPSHOT and progress.match >= progress.pending_snapshot:
            progress.become_probe()
            progress.become_replicate()
        elif progress.state is ProgressState.REPLICATE:
            progress.free_inflight_up_to(m.index)
        if self._maybe_commit():
            self._broadcast_append()
        elif was_paused:
            self._send_append(m.sender)
        while self._send_append(m.sender, send_if_empty=False):
            pass

    # -- follower handlers --------------------------------------------------------

    def _handle_append(self, m: Message) -> None:
        if m.index < self.log.committed:
            # Everything up to our commit index already matches any leader.
            self._send(Message(MessageType.APP_RESP, self.id, m.sender, self.term, index=self.log.committed))
            return
        last_new = self.log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last_new is not None:
            self._send(Message(MessageType.APP_RESP, self.id, m.sender, self.term, index=last_new))
            return
        hint_index = min(m.index, self.log.last_index())
        hint_index, hint_term = self.log.find_conflict_by_term(hint_index, m.log_term)
        self._send(
            Message(
                MessageType.APP_RESP,
                self.id,
                m.sender,
                self.term,
                index=m.index,
                reject=True,
                reject_hint=hint_index,
                log_term=hint_term,
            )
        )

    def _handle_heartbeat(self, m: Message) -> None:
        # The leader sends min(its commit, our match), so this never passes our log.
        self.log.commit_to(min(m.commit, self.log.last_index()))
        self._send(Message(MessageType.HEARTBEAT_RESP, self.id, m.sender, self.term))

    # -- leader machinery -----------------------------------------------------------

    def propose(self, data: bytes) -> int:
        """Append `data` as a new entry of the current term; return its index.

        Raises `NotLeaderError` (naming the known leader) on a non-leader, and
        `ProposalDroppedError` when the uncommitted backlog is full. The
        entry is not committed yet: it may still be lost if this leader is
        deposed, and the caller learns of its commitment only through
        `Ready.committed_entries`.
        """
        if self.role is not Role.LEADER:
            raise NotLeaderError(self.leader)
        if not isinstance(data, bytes):
            raise ProposalDroppedError("proposal data must be bytes")
        if self.log.last_index() - self.log.committed >= self.max_uncommitted_entries:
            raise ProposalDroppedError(
                f"{self.max_uncommitted_entries} entries await commitment; retry once some commit"
            )
        index = self._append_entries([Entry(term=self.term, index=0, data=data)])
        self._broadcast_append()
        return index

    def _append_entries(self, entries: list[Entry]) -> int:
        last = self.log.last_index()
        numbered = [
            Entry(term=self.term, index=last + offset, data=e.data, type=e.type)
            for offset, e in enumerate(entries, start=1)
        ]
        last = self.log.append(numbered)
        # Our own match counts toward the quorum; safe because the Ready holding
        # these entries is persisted before any message that could lead a
        # follower to acknowledge them is sent.
        self.progress[self.id].maybe_update(last)
        self._maybe_commit()
        return last

    def _maybe_commit(self) -> bool:
        matches = sorted((self.progress[v].match for v in self.voters), reverse=True)
        return self.log.maybe_commit(matches[self.quorum - 1], self.term)

    def _broadcast_append(self) -> None:
        for peer in self.peers:
            self._send_append(peer)

    def _broadcast_heartbeat(self) -> None:
        for peer in self.peers:
            commit = min(self.progress[peer].match, self.log.committed)
            self._send(Message(MessageType.HEARTBEAT, self.id, peer, self.term, commit=commit))

    def _send_append(self, peer: NodeId, send_if_empty: bool = True) -> bool:
        """Send the next append to `peer` if its flow state allows; True if sent."""
        progress = self.progress[peer]
        if progress.is_paused():
            return False
        prev_index = progress.next - 1
        prev_term = self.log.term(prev_index)
        if prev_term is None or progress.next < self.log.first_index():
            return self._send_snapshot_needed(peer, progress)
        entries = self.log.entries(progress.next, max_count=self.max_entries_per_append)
        if not entries and not send_if_empty:
            return False
        self._send(
            Message(
                MessageType.APP,
                self.id,
                peer,
                self.term,
                log_term=prev_term,
                index=prev_index,
                entries=tuple(entries),
                commit=self.log.committed,
            )
        )
        progress.sent_entries(len(entries), entries[-1].index if entries else prev_index)
        return True

    def _send_snapshot_needed(self, peer: NodeId, progress: Progress) -> bool:
        compacted = self.log.first_index() - 1
        compacted_term = self.log.term(compacted)
        if compacted_term is None:
            raise RaftError(f"term of the compaction point {compacted} is unavailable")
        progress.become_snapshot(compacted)
        self._send(
            Message(MessageType.SNAPSHOT_NEEDED, self.id, peer, self.term, log_term=compacted_term, index=compacted)
        )
        return True

    # -- restore after block sync -----------------------------------------------

    def restore(self, index: int, term: int) -> bool:
        """The caller's state machine reached `index` (entry of `term`) by block
        sync: make the log agree. Returns False (and does nothing) if the log
        already commits `index`.

        If our log already holds (index, term) it is kept, including any tail
        after it: we may have acknowledged that tail to the leader, and a
        leader's `match` for us must never exceed what we hold. Otherwise the
        log restarts empty after (index, term) and the next Ready carries
        `restore` for the caller's storage.
        """
        if index <= self.log.committed:
            return False
        if self.role is Role.LEADER:
            raise RaftError("a leader never restores: it holds every committed entry")
        if self.log.match_term(index, term):
            self.log.commit_to(index)
            self.log.applied_to(index)
        else:
            self.log.restore(index, term)
        self.progress[self.id].match = self.log.last_index()
        if self.leader is not None:
            self._send(Message(MessageType.APP_RESP, self.id, self.leader, self.term, index=index))
        self.catch_up = None
        return True

    def _send(self, m: Message) -> None:
        self.msgs.append(m)
