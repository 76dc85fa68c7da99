# An in-process network of Raft state machines for unit tests, after
# `network` in etcd-io/raft's raft_test.go: messages are delivered
# synchronously (breadth first) until the cluster is quiet, and links can be
# cut, nodes isolated, or specific messages dropped by a predicate.
#
# Owns: message routing between `Raft` instances in one process.
# Must not know: persistence (tests that need the Ready contract use RawNode
# directly); entries stay in each Raft's unstable log.
from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable

from hcnode.consensus import Config, Entry, HardState, MemoryStorage, Message
from hcnode.consensus.raft import Raft

DropRule = Callable[[Message], bool]
Rewrite = Callable[[Message], Message]


def make_raft(
    node_id: str,
    voters: Iterable[str],
    *,
    storage: MemoryStorage | None = None,
    seed: int = 0,
    **config: object,
) -> Raft:
    """A Raft with test-friendly defaults: pre_vote and check_quorum off unless asked."""
    settings: dict[str, object] = {"pre_vote": False, "check_quorum": False, "election_tick": 10, "heartbeat_tick": 1}
    settings.update(config)
    return Raft(
        Config(id=node_id, voters=tuple(voters), rng=random.Random(f"{seed}-{node_id}"), **settings),  # type: ignore[arg-type]
        storage if storage is not None else MemoryStorage(),
    )


def storage_with(terms: list[int], term: int | None = None, vote: str | None = None) -> MemoryStorage:
    """A MemoryStorage whose log holds one entry per term in `terms` (index 1..)."""
    storage = MemoryStorage()
    storage.append([Entry(term=t, index=i, data=f"e{i}t{t}".encode()) for i, t in enumerate(terms, start=1)])
    storage.set_hard_state(HardState(term=term if term is not None else (terms[-1] if terms else 0), vote=vote))
    return storage


class Network:
    def __init__(self, peers: dict[str, Raft]) -> None:
        self.peers = peers
        self._cut: set[tuple[str, str]] = set()
        self._drop_rules: list[DropRule] = []
        self._rewrites: list[Rewrite] = []
        self.delivered: list[Message] = []

    @classmethod
    def of(cls, size: int, **config: object) -> Network:
        ids = [str(i) for i in range(1, size + 1)]
        return cls({i: make_raft(i, ids, **config) for i in ids})

    def __getitem__(self, node_id: str) -> Raft:
        return self.peers[node_id]

    # -- faults -------------------------------------------------------------

    def cut(self, a: str, b: str) -> None:
        self._cut |= {(a, b), (b, a)}

    def isolate(self, node_id: str) -> None:
        for other in self.peers:
            if other != node_id:
                self.cut(node_id, other)

    def drop(self, rule: DropRule) -> None:
        self._drop_rules.append(rule)

    def rewrite(self, rewrite: Rewrite) -> None:
        """Alter messages in transit (e.g. strip some entries from appends)."""
        self._rewrites.append(rewrite)

    def recover(self) -> None:
        self._cut.clear()
        self._drop_rules.clear()
        self._rewrites.clear()

    # -- driving ------------------------------------------------------------

    def take(self, node_id: str) -> list[Message]:
        raft = self.peers[node_id]
        messages, raft.msgs = raft.msgs, []
        return messages

    def deliver(self, *messages: Message) -> None:
        queue = deque(messages)
        while queue:
            message = queue.popleft()
            sender, recipient = str(message.sender), str(message.recipient)
            if (sender, recipient) in self._cut or any(rule(message) for rule in self._drop_rules):
                continue
            for rewrite in self._rewrites:
                message = rewrite(message)
            self.delivered.append(message)
            self.peers[recipient].step(message)
            queue.extend(self.take(recipient))

    def campaign(self, node_id: str) -> None:
        self.peers[node_id].campaign()
        self.deliver(*self.take(node_id))

    def propose(self, node_id: str, data: bytes) -> int:
        index = self.peers[node_id].propose(data)
        self.deliver(*self.take(node_id))
        return index

    def tick(self, node_id: str, times: int = 1) -> None:
        for _ in range(times):
            self.peers[node_id].tick()
            self.deliver(*self.take(node_id))

    def tick_all(self, times: int = 1) -> None:
        for _ in range(times):
            for node_id in sorted(self.peers):
                self.peers[node_id].tick()
            for node_id in sorted(self.peers):
                self.deliver(*self.take(node_id))

    def flush(self) -> None:
        for node_id in sorted(self.peers):
            self.deliver(*self.take(node_id))
