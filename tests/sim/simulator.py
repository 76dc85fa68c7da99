# A deterministic cluster simulator for hcnode.consensus.
#
# Owns: a virtual clock (ticks), an unreliable network (loss, delay,
# reordering, duplication, partitions that form and heal, a nemesis that cuts
# a leader off right after it appends or commits), crash/restart with
# "disk" semantics, a client proposing values, and the invariant checks run
# after every single step. Everything random comes from one `random.Random`
# seeded by the schedule's seed, and every choice iterates in sorted or list
# order, so a seed replays bit for bit.
# Must not know: Raft internals beyond what a checker needs to read (role,
# term and log of each node); it drives nodes only through RawNode.
#
# Durability model: a node's MemoryStorage is its disk. Handling a Ready is one
# atomic step (persist, then send, then apply, then advance), but Readies pile
# up between steps, so a crash loses whatever the node had not handed out in a
# Ready yet: the unpersisted tail of its log and its unpersisted hard state.
# The Ready's early messages (sent while the node's disk write is under way)
# go out first, and a crash may strike between them and the write.
# Applied entries are durable (the node applies blocks in a synced batch), so
# a restarted node gets `Config.applied` = what it applied before.
#
# Invariants (checked after every step; each check runs on the events that
# could break it, so the cost stays linear in the schedule):
# - election safety: at most one leader per term (all nodes, every step);
# - leader completeness: every leader holds every entry applied anywhere that
#   was committed in an earlier term than its own (when it becomes leader, and
#   on every new commit); a stale leader of an older term need not;
# - log matching: an (index, term) pair names the same data and follows the
#   same previous term on every disk (on every persisted entry);
# - state machine safety: no two nodes apply different entries at an index,
#   each node applies indexes in order, and no disk overwrites a committed
#   entry it holds;
# - liveness: after the chaos phase (heal partitions, restart every node,
#   stop loss and duplication; delay and reordering continue) a new proposal
#   commits within RECOVERY_BOUND_TICKS and reaches every node within
#   CATCH_UP_BOUND_TICKS.
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from hcnode.consensus import (
    HardState,
    Config,
    Entry,
    EntryType,
    MemoryStorage,
    Message,
    NotLeaderError,
    ProposalDroppedError,
    RaftError,
    RawNode,
    Role,
)

__all__ = ["Schedule", "SimResult", "Simulator", "InvariantViolation", "run_schedule", "MUTATIONS", "PROFILES"]

ELECTION_TICK = 10
HEARTBEAT_TICK = 1
MAX_UNCOMMITTED_ENTRIES = 32
"""Leader backpressure: bounds the backlog a slow quorum must drain after healing."""
MID_TICK_FAULT_RATE = 0.005
"""Chance per delivery/Ready step of a crash or a partition change between
ticks, so faults also strike in the middle of an exchange."""
MAX_WORK_PER_TICK = 400
"""Upper bound of the random number of deliveries and Ready handlings that
may happen between two ticks."""
RECOVERY_BOUND_TICKS = 300
"""Liveness: after the network heals and every node is up, a fresh proposal
must commit (be applied somewhere) within this many ticks."""
CATCH_UP_BOUND_TICKS = 3000
"""...and every node must have applied it within this many ticks. Generous:
a follower far behind under `max_entries_per_append=1, max_inflight=1` moves
one entry per round trip."""

MUTATIONS = ("none", "skip_hard_state", "send_before_persist", "commit_previous_terms", "unsynced_votes")
"""Deliberate bugs used to prove the checker can fail (see test_mutations.py).
`skip_hard_state`: the disk never stores term/vote/commit.
`send_before_persist`: every message, votes and acknowledgements too, leaves before the fsync.
`commit_previous_terms`: the leader commits any entry a quorum holds,
ignoring the current-term rule of Raft §5.4.2 (Figure 8).
`unsynced_votes`: a new term or vote is written without a sync, as only a commit index may be
(``Ready.must_sync``), so a crash can forget a vote already given."""


class InvariantViolation(Exception):
    """A safety or liveness property failed; the message names it."""


@dataclass(frozen=True)
class Schedule:
    """The knobs of one run, all drawn from the seed (see `Schedule.from_seed`)."""

    seed: int
    nodes: int
    chaos_ticks: int
    loss: float
    duplicate: float
    max_delay: int
    crash_rate: float
    restart_rate: float
    partition_rate: float
    heal_rate: float
    propose_rate: float
    max_inflight: int
    max_entries_per_append: int
    compact_rate: float = 0.0
    mutation: str = "none"
    profile: str = "default"
    isolate_leader_on_commit: float = 0.0
    """Nemesis: chance to cut a leader off right after its commit index moves,
    the moment at which Figure 8 style bugs become visible."""
    isolate_leader_on_append: float = 0.0
    """Nemesis: chance to cut a leader off right after its disk took a new entry,
    before any follower has it; the next leader then writes a different entry
    at that index, the divergent logs Figure 8 starts from."""

    @classmethod
    def from_seed(cls, seed: int, nodes: int, mutation: str = "none", profile: str = "default") -> Schedule:
        """Draw the knobs for `seed`. Profile "figure8" sends one entry per
        append, one append in flight, and has a nemesis cut leaders off right
        after they append and right after they commit: the conditions under
        which a leader can count old-term entries onto a majority and then be
        deposed before its own entry follows (Raft Figure 8). Its crash and
        loss rates vary by seed: crashes and lost messages also break up the
        sequence the nemesis sets up, so some schedules have few of them."""
        rng = random.Random(f"schedule-{seed}-{nodes}")
        if profile == "figure8":
            return cls(
                seed=seed,
                nodes=nodes,
                chaos_ticks=300,
                loss=rng.choice((0.0, 0.0, 0.1)),
                duplicate=0.0,
                max_delay=2,
                crash_rate=rng.choice((0.0, 0.02, 0.1)),
                restart_rate=0.3,
                partition_rate=0.2,
                heal_rate=0.3,
                propose_rate=1.0,
                max_inflight=1,
                max_entries_per_append=1,
                mutation=mutation,
                profile=profile,
                isolate_leader_on_commit=rng.choice((0.3, 0.8)),
                isolate_leader_on_append=rng.choice((0.3, 0.5)),
            )
        if profile != "default":
            raise ValueError(f"unknown profile {profile!r}")
        return cls(
            seed=seed,
            nodes=nodes,
            chaos_ticks=rng.randrange(60, 160),
            loss=rng.choice((0.0, 0.02, 0.1, 0.3)),
            duplicate=rng.choice((0.0, 0.02, 0.1)),
            max_delay=rng.choice((0, 1, 2, 5)),
            crash_rate=rng.choice((0.0, 0.02, 0.05)),
            restart_rate=rng.choice((0.05, 0.2)),
            partition_rate=rng.choice((0.0, 0.02, 0.05)),
            heal_rate=rng.choice((0.05, 0.2)),
            propose_rate=rng.choice((0.2, 0.5, 1.0)),
            max_inflight=rng.choice((1, 4, 64)),
            max_entries_per_append=rng.choice((1, 3, 64)),
            compact_rate=rng.choice((0.0, 0.0, 0.02, 0.1)),
            mutation=mutation,
            # Drawn last, so the knobs above stay what they were for every seed.
            isolate_leader_on_commit=rng.choice((0.0, 0.0, 0.0, 0.5)),
            isolate_leader_on_append=rng.choice((0.0, 0.0, 0.0, 0.3)),
        )


@dataclass
class SimResult:
    seed: int
    nodes: int
    failure: str | None
    ticks_to_recover: int | None
    commits: int
    ticks: int
    steps: int
    digest: str = ""
    """Hash of everything observable at the end (applied sequences, leaders per
    term, clock, step count): equal digests mean the replay was exact."""

    @property
    def ok(self) -> bool:
        return self.failure is None

    def line(self) -> str:
        if self.failure is not None:
            return f"FAILED seed={self.seed} nodes={self.nodes}: {self.failure}"
        return (
            f"ok seed={self.seed} nodes={self.nodes}: commits={self.commits} "
            f"ticks_to_recover={self.ticks_to_recover} ticks={self.ticks} steps={self.steps}"
        )


@dataclass
class SimNode:
    id: str
    storage: MemoryStorage = field(default_factory=MemoryStorage)
    raw: RawNode | None = None
    applied: list[Entry] = field(default_factory=list)
    incarnation: int = 0
    synced_hard_state: HardState | None = None  # what a crash leaves of the hard state (see _handle_ready)


@dataclass(order=True)
class InFlight:
    deliver_at: int
    sequence: int
    message: Message = field(compare=False)


class Simulator:
    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.rng = random.Random(f"run-{schedule.seed}-{schedule.nodes}")
        self.ids = [f"n{i}" for i in range(1, schedule.nodes + 1)]
        self.nodes = {node_id: SimNode(node_id) for node_id in self.ids}
        self.now = 0
        self.steps = 0
        self.sequence = 0
        self.in_flight: list[InFlight] = []
        self.group: dict[str, int] = {node_id: 0 for node_id in self.ids}
        self.loss = schedule.loss
        self.duplicate = schedule.duplicate
        self.leader_hint: str | None = None
        self.leader_commit_seen: dict[str, int] = {}
        self.leader_append_seen: dict[str, int] = {}
        self.nemesis_heals_at: int | None = None
        """A nemesis cut holds at least one election timeout (else the rest cannot elect
        anyone before it heals), then heals; random partition changes wait for it."""
        self.work_budget = MAX_WORK_PER_TICK
        self.proposed = 0
        # Checker state.
        self.leader_of_term: dict[int, str] = {}
        self.applied_everywhere: dict[int, Entry] = {}  # index -> the entry applied there (by anyone)
        # index -> the first applier's term then: at least the term in which the entry was committed
        # (an applier has seen the committing leader's term), which is what leader completeness is about.
        self.commit_term: dict[int, int] = {}
        self.persisted_entries: dict[tuple[int, int], tuple[bytes, int]] = {}  # (index, term) -> (data, prev term)
        self.healed = False
        self.post_heal_proposals: set[bytes] = set()
        self.nodes_with_post_heal_apply: set[str] = set()
        self.recovered_at: int | None = None
        for node_id in self.ids:
            self._start(node_id)

    # -- lifecycle ------------------------------------------------------------

    def _start(self, node_id: str) -> None:
        sim_node = self.nodes[node_id]
        sim_node.incarnation += 1
        config = Config(
            id=node_id,
            voters=tuple(self.ids),
            rng=random.Random(f"node-{self.schedule.seed}-{node_id}-{sim_node.incarnation}"),
            election_tick=ELECTION_TICK,
            heartbeat_tick=HEARTBEAT_TICK,
            max_inflight=self.schedule.max_inflight,
            max_entries_per_append=self.schedule.max_entries_per_append,
            max_uncommitted_entries=MAX_UNCOMMITTED_ENTRIES,
            applied=len(sim_node.applied),
        )
        sim_node.raw = RawNode(config, sim_node.storage)

    def _crash(self, node_id: str) -> None:
        # The RawNode (memory) is gone; the storage (disk) and applied state remain, except a hard
        # state written without a sync since the last synced one.
        sim_node = self.nodes[node_id]
        sim_node.raw = None
        if sim_node.synced_hard_state is not None:
            sim_node.storage.set_hard_state(sim_node.synced_hard_state)

    def up_ids(self) -> list[str]:
        return [node_id for node_id in self.ids if self.nodes[node_id].raw is not None]

    # -- the run ----------------------------------------------------------------

    def run(self) -> SimResult:
        failure: str | None = None
        try:
            while self.now < self.schedule.chaos_ticks:
                self._step(chaos=True)
            self._heal_everything()
            heal_tick = self.now
            while self.recovered_at is None:
                if self.now - heal_tick > RECOVERY_BOUND_TICKS:
                    raise InvariantViolation(
                        f"liveness: no proposal committed within {RECOVERY_BOUND_TICKS} ticks after healing"
                    )
                self._step(chaos=False)
            while len(self.nodes_with_post_heal_apply) < len(self.ids):
                if self.now - heal_tick > CATCH_UP_BOUND_TICKS:
                    behind = sorted(set(self.ids) - self.nodes_with_post_heal_apply)
                    raise InvariantViolation(
                        f"liveness: {', '.join(behind)} did not apply a post-heal proposal within "
                        f"{CATCH_UP_BOUND_TICKS} ticks after healing"
                    )
                self._step(chaos=False)
            ticks_to_recover = self.recovered_at - heal_tick
        except InvariantViolation as violation:
            failure = str(violation)
            ticks_to_recover = None
        except RaftError as error:
            failure = f"raft error at tick {self.now}: {type(error).__name__}: {error}"
            ticks_to_recover = None
        commits = sum(
            1 for entry in self.applied_everywhere.values() if entry.type is EntryType.NORMAL
        )
        return SimResult(
            seed=self.schedule.seed,
            nodes=self.schedule.nodes,
            failure=failure,
            ticks_to_recover=ticks_to_recover,
            commits=commits,
            ticks=self.now,
            steps=self.steps,
            digest=self._digest(),
        )

    def _digest(self) -> str:
        h = hashlib.sha256()
        for node_id in self.ids:
            h.update(node_id.encode())
            for entry in self.nodes[node_id].applied:
                h.update(b"%d:%d:" % (entry.index, entry.term) + entry.data)
        for term in sorted(self.leader_of_term):
            h.update(f"{term}={self.leader_of_term[term]};".encode())
        h.update(f"{self.now}/{self.steps}/{self.sequence}".encode())
        return h.hexdigest()[:16]

    def _heal_everything(self) -> None:
        self.group = {node_id: 0 for node_id in self.ids}
        for node_id in self.ids:
            if self.nodes[node_id].raw is None:
                self._start(node_id)
        self.loss = 0.0
        self.duplicate = 0.0
        self.healed = True

    def _step(self, chaos: bool) -> None:
        """One scheduler step: deliver a message, handle a Ready, or tick."""
        self.steps += 1
        due = [item for item in self.in_flight if item.deliver_at <= self.now]
        ready_ids = [
            node_id for node_id in self.ids if (raw := self.nodes[node_id].raw) is not None and raw.has_ready()
        ]
        # A tick is long next to a message hop or a disk write, but the clock
        # does not wait for the network: each tick gets a random work budget,
        # so timeouts sometimes fire in the middle of traffic.
        if (due or ready_ids) and self.work_budget > 0:
            self.work_budget -= 1
            if chaos and self.rng.random() < MID_TICK_FAULT_RATE:
                self._fault_between_ticks()
            elif due and (not ready_ids or self.rng.random() < 0.5):
                self._deliver(due[self.rng.randrange(len(due))])
            else:
                self._handle_ready(ready_ids[self.rng.randrange(len(ready_ids))])
        else:
            self._tick(chaos)
        self._check_leaders()
        if chaos and self.schedule.isolate_leader_on_commit:
            self._nemesis_isolate_committing_leader()
        if chaos and self.schedule.isolate_leader_on_append:
            self._nemesis_isolate_appending_leader()

    def _tick(self, chaos: bool) -> None:
        self.now += 1
        self.work_budget = self.rng.randint(0, MAX_WORK_PER_TICK)
        if chaos:
            self._chaos()
        self._client()
        for node_id in self.up_ids():
            raw = self.nodes[node_id].raw
            assert raw is not None
            raw.tick()

    def _chaos(self) -> None:
        s = self.schedule
        up = self.up_ids()
        down = [node_id for node_id in self.ids if node_id not in up]
        if up and self.rng.random() < s.crash_rate:
            self._crash(up[self.rng.randrange(len(up))])
        if down and self.rng.random() < s.restart_rate:
            self._start(down[self.rng.randrange(len(down))])
        if up and self.rng.random() < s.compact_rate:
            # A node drops applied entries from its log, keeping a few.
            sim_node = self.nodes[up[self.rng.randrange(len(up))]]
            keep = self.rng.randrange(4)
            target = min(len(sim_node.applied), sim_node.storage.last_index()) - keep
            if target >= sim_node.storage.first_index():
                sim_node.storage.compact(target)
        if self.nemesis_heals_at is not None:
            if self.now >= self.nemesis_heals_at:
                self.nemesis_heals_at = None
                self.group = {node_id: 0 for node_id in self.ids}
            return
        partitioned = len(set(self.group.values())) > 1
        if not partitioned and self.rng.random() < s.partition_rate:
            self.group = {node_id: self.rng.randrange(2) for node_id in self.ids}
        elif partitioned and self.rng.random() < s.heal_rate:
            self.group = {node_id: 0 for node_id in self.ids}

    def _fault_between_ticks(self) -> None:
        s = self.schedule
        up = self.up_ids()
        choice = self.rng.random()
        if choice < 0.5 and s.crash_rate > 0 and up:
            self._crash(up[self.rng.randrange(len(up))])
        elif s.partition_rate > 0:
            if len(set(self.group.values())) > 1:
                self.group = {node_id: 0 for node_id in self.ids}
            else:
                self.group = {node_id: self.rng.randrange(2) for node_id in self.ids}

    def _nemesis_isolate_committing_leader(self) -> None:
        for node_id in self.ids:
            raw = self.nodes[node_id].raw
            if raw is None or raw._raft.role is not Role.LEADER:
                continue
            commit = raw._raft.log.committed
            if commit > self.leader_commit_seen.get(node_id, 0):
                self.leader_commit_seen[node_id] = commit
                if self.rng.random() < self.schedule.isolate_leader_on_commit:
                    self._nemesis_isolate(node_id)

    def _nemesis_isolate_appending_leader(self) -> None:
        for node_id in self.ids:
            raw = self.nodes[node_id].raw
            if raw is None or raw._raft.role is not Role.LEADER:
                continue
            persisted = self.nodes[node_id].storage.last_index()
            if persisted > self.leader_append_seen.get(node_id, 0):
                self.leader_append_seen[node_id] = persisted
                if self.rng.random() < self.schedule.isolate_leader_on_append:
                    self._nemesis_isolate(node_id)

    def _nemesis_isolate(self, node_id: str) -> None:
        """Cut `node_id` off from everyone for one to three election timeouts."""
        self.group = {other: int(other == node_id) for other in self.ids}
        self.nemesis_heals_at = self.now + self.rng.randint(ELECTION_TICK, 3 * ELECTION_TICK)

    def _client(self) -> None:
        """Propose a value to whoever the client believes leads, following hints."""
        if self.recovered_at is None and self.rng.random() < self.schedule.propose_rate:
            up = self.up_ids()
            if not up:
                return
            target = self.leader_hint if self.leader_hint in up else up[self.rng.randrange(len(up))]
            raw = self.nodes[target].raw
            assert raw is not None
            self.proposed += 1
            data = f"s{self.schedule.seed}-v{self.proposed}".encode()
            try:
                raw.propose(data)
            except NotLeaderError as not_leader:
                self.leader_hint = not_leader.leader if isinstance(not_leader.leader, str) else None
                return
            except ProposalDroppedError:
                return
            self.leader_hint = target
            if self.healed:
                self.post_heal_proposals.add(data)

    # -- network ----------------------------------------------------------------

    def _send(self, message: Message) -> None:
        if self.rng.random() < self.loss:
            return
        copies = 2 if self.rng.random() < self.duplicate else 1
        for _ in range(copies):
            self.sequence += 1
            delay = self.rng.randint(0, self.schedule.max_delay)
            self.in_flight.append(InFlight(self.now + delay, self.sequence, message))

    def _deliver(self, item: InFlight) -> None:
        self.in_flight.remove(item)
        message = item.message
        recipient = self.nodes[str(message.recipient)]
        if recipient.raw is None or self.group[str(message.sender)] != self.group[str(message.recipient)]:
            return
        recipient.raw.step(message)

    # -- Ready handling (the node shell's loop) -----------------------------------

    def _handle_ready(self, node_id: str) -> None:
        sim_node = self.nodes[node_id]
        raw = sim_node.raw
        assert raw is not None
        rd = raw.ready()
        # 0. messages that may leave while the disk write is under way (Ready.early_messages); a crash
        # may come before the write completes. The mutation sends everything early, acknowledgements too.
        everything_early = self.schedule.mutation == "send_before_persist"
        early, late = (rd.messages, ()) if everything_early else (rd.early_messages, rd.late_messages)
        for message in early:
            self._send(message)
        if early and not self.healed and self.schedule.crash_rate > 0 and self.rng.random() < self.schedule.crash_rate:
            self._crash(node_id)  # the Ready's entries and hard state never reached the disk
            return
        # 1. persist
        if rd.restore is not None:
            sim_node.storage.restore(*rd.restore)
        if rd.entries:
            self._check_no_committed_entry_overwritten(node_id, rd.entries)
            sim_node.storage.append(rd.entries)
            self._check_log_matching(node_id, rd.entries)
        if rd.hard_state is not None and self.schedule.mutation != "skip_hard_state":
            sim_node.storage.set_hard_state(rd.hard_state)
            # A crash keeps only the hard state of the last synced Ready: one that moved only the commit
            # index was not synced. (Stricter than LevelDB, whose next synced write makes it durable too.)
            synced = rd.must_sync if self.schedule.mutation != "unsynced_votes" else (
                bool(rd.entries) or rd.restore is not None)
            if synced:
                sim_node.synced_hard_state = rd.hard_state
        # 2. send the rest
        for message in late:
            self._send(message)
        # 3. apply
        for entry in rd.committed_entries:
            self._apply(sim_node, entry)
        raw.advance(rd)
        if rd.catch_up is not None:
            self._block_sync(sim_node, rd.catch_up.index, rd.catch_up.term)

    def _block_sync(self, sim_node: SimNode, index: int, term: int) -> None:
        """Stand-in for the block-sync protocol: fetch committed entries up to
        `index` (verified, so: exactly what the cluster committed), apply them,
        then restart the Raft log there."""
        raw = sim_node.raw
        assert raw is not None
        if len(sim_node.applied) >= index:
            return
        for next_index in range(len(sim_node.applied) + 1, index + 1):
            if next_index not in self.applied_everywhere:
                raise InvariantViolation(f"catch-up: leader asked for sync to {index}, but {next_index} was never applied")
            self._apply(sim_node, self.applied_everywhere[next_index])
        if self.applied_everywhere[index].term != term:
            raise InvariantViolation(f"catch-up: entry {index} is term {self.applied_everywhere[index].term}, leader said {term}")
        # The synced blocks and the restored log point are one durable write
        # (see RawNode.restore): handle the restore's Ready in the same step.
        if raw.restore(index, term):
            self._handle_ready(sim_node.id)

    def _apply(self, sim_node: SimNode, entry: Entry) -> None:
        if entry.index != len(sim_node.applied) + 1:
            raise InvariantViolation(
                f"state machine safety: {sim_node.id} applied index {entry.index} after {len(sim_node.applied)}"
            )
        known = self.applied_everywhere.get(entry.index)
        if known is None:
            assert sim_node.raw is not None
            self.applied_everywhere[entry.index] = entry
            self.commit_term[entry.index] = sim_node.raw._raft.term
            self._check_new_commit_in_leaders(entry)
        elif (known.term, known.data, known.type) != (entry.term, entry.data, entry.type):
            raise InvariantViolation(
                f"state machine safety: index {entry.index} applied as {known.data!r}@t{known.term} "
                f"and as {entry.data!r}@t{entry.term} on {sim_node.id}"
            )
        sim_node.applied.append(entry)
        if entry.data in self.post_heal_proposals:
            self.nodes_with_post_heal_apply.add(sim_node.id)
            if self.recovered_at is None:
                self.recovered_at = self.now

    # -- invariants ------------------------------------------------------------------

    def _check_leaders(self) -> None:
        """Election safety (one leader per term), checked after every step, and
        leader completeness for every newly seen leader."""
        for node_id in self.ids:
            raw = self.nodes[node_id].raw
            if raw is None:
                continue
            raft = raw._raft
            if raft.role is not Role.LEADER:
                continue
            known = self.leader_of_term.get(raft.term)
            if known is None:
                self.leader_of_term[raft.term] = node_id
                self._check_leader_has_all_commits(node_id)
            elif known != node_id:
                raise InvariantViolation(f"election safety: term {raft.term} has leaders {known} and {node_id}")

    def _check_leader_has_all_commits(self, node_id: str) -> None:
        raw = self.nodes[node_id].raw
        assert raw is not None
        log = raw._raft.log
        first = log.first_index()
        for index in sorted(self.applied_everywhere):
            entry = self.applied_everywhere[index]
            if self.commit_term[index] >= raw._raft.term:
                continue  # committed in this leader's term or later: a stale leader need not hold it
            if index >= first and log.term(index) != entry.term:
                raise InvariantViolation(
                    f"leader completeness: leader {node_id} of term {raw._raft.term} lacks committed "
                    f"entry {index}@t{entry.term}"
                )

    def _check_new_commit_in_leaders(self, entry: Entry) -> None:
        for node_id in self.ids:
            raw = self.nodes[node_id].raw
            # Only leaders of terms after the commit must hold it: a leader cut off in an older
            # term (but newer than the entry) may still lead, with a log that lost the entry.
            if raw is None or raw._raft.role is not Role.LEADER or raw._raft.term <= self.commit_term[entry.index]:
                continue
            log = raw._raft.log
            if entry.index >= log.first_index() and log.term(entry.index) != entry.term:
                raise InvariantViolation(
                    f"leader completeness: leader {node_id} of term {raw._raft.term} lacks committed "
                    f"entry {entry.index}@t{entry.term}"
                )

    def _check_no_committed_entry_overwritten(self, node_id: str, entries: tuple[Entry, ...]) -> None:
        """A disk that holds a committed entry never replaces it. (A stale
        leader may still persist its own uncommitted entry at a committed index
        if it never held the committed one: that is legal and gets replaced.)"""
        storage = self.nodes[node_id].storage
        first, last = storage.first_index(), storage.last_index()
        for entry in entries:
            committed = self.applied_everywhere.get(entry.index)
            if committed is None or entry.term == committed.term or not first <= entry.index <= last:
                continue
            if storage.term(entry.index) == committed.term:
                raise InvariantViolation(
                    f"state machine safety: {node_id} overwrote committed entry {entry.index}@t{committed.term} "
                    f"with {entry.index}@t{entry.term}"
                )

    def _check_log_matching(self, node_id: str, entries: tuple[Entry, ...]) -> None:
        """Log matching, incrementally: an (index, term) pair always names the
        same data and follows the same previous term on every node's disk, which
        by induction makes logs identical up to any entry they share."""
        storage = self.nodes[node_id].storage
        for entry in entries:
            prev_term = storage.term(entry.index - 1)
            key = (entry.index, entry.term)
            seen = self.persisted_entries.get(key)
            if seen is None:
                self.persisted_entries[key] = (entry.data, prev_term)
            elif seen != (entry.data, prev_term):
                raise InvariantViolation(
                    f"log matching: entry {entry.index}@t{entry.term} on {node_id} differs from another node's"
                )


PROFILES = ("default", "figure8")


def run_schedule(seed: int, nodes: int, mutation: str = "none", profile: str = "default") -> SimResult:
    schedule = Schedule.from_seed(seed, nodes, mutation, profile)
    if mutation == "commit_previous_terms":
        from .mutations import commit_previous_terms

        with commit_previous_terms():
            return Simulator(schedule).run()
    return Simulator(schedule).run()
