"""A follower that needs compacted entries is told to catch up by block sync."""
from __future__ import annotations

import random

from hcnode.consensus import CatchUpRequest, Config, MemoryStorage, Message, MessageType, RawNode, Role

IDS = ("1", "2", "3")


class Cluster:
    """RawNodes with storages, following the Ready contract, over a lossless
    synchronous network in which a node can be cut off."""

    def __init__(self) -> None:
        self.storage = {i: MemoryStorage() for i in IDS}
        self.nodes = {
            i: RawNode(Config(id=i, voters=IDS, rng=random.Random(i), max_entries_per_append=4), self.storage[i])
            for i in IDS
        }
        self.applied: dict[str, list[bytes]] = {i: [] for i in IDS}
        self.catch_up: dict[str, CatchUpRequest] = {}
        self.offline: set[str] = set()
        self.sent: list[Message] = []

    def settle(self) -> None:
        for _ in range(100):
            busy = False
            for node_id in IDS:
                node = self.nodes[node_id]
                if node_id in self.offline or not node.has_ready():
                    continue
                busy = True
                rd = node.ready()
                if rd.restore is not None:
                    self.storage[node_id].restore(*rd.restore)
                self.storage[node_id].append(rd.entries)
                if rd.hard_state is not None:
                    self.storage[node_id].set_hard_state(rd.hard_state)
                if rd.catch_up is not None:
                    self.catch_up[node_id] = rd.catch_up
                for m in rd.messages:
                    self.sent.append(m)
                    if m.recipient not in self.offline:
                        self.nodes[str(m.recipient)].step(m)
                self.applied[node_id].extend(e.data for e in rd.committed_entries)
                node.advance(rd)
            if not busy:
                return

    def tick(self, times: int = 1) -> None:
        for _ in range(times):
            for node_id in IDS:
                if node_id not in self.offline:
                    self.nodes[node_id].tick()
            self.settle()


def test_leader_asks_lagging_follower_to_block_sync_past_compacted_entries() -> None:
    cluster = Cluster()
    cluster.nodes["1"].campaign()
    cluster.settle()
    assert cluster.nodes["1"].status().role is Role.LEADER
    cluster.offline.add("3")
    for n in range(10):
        cluster.nodes["1"].propose(f"b{n}".encode())
        cluster.settle()
    leader_status = cluster.nodes["1"].status()
    assert leader_status.applied == 11
    cluster.storage["1"].compact(leader_status.applied)

    cluster.offline.clear()
    cluster.tick(2)
    need = [m for m in cluster.sent if m.type is MessageType.SNAPSHOT_NEEDED]
    assert need and (need[0].recipient, need[0].index) == ("3", 11)
    request = cluster.catch_up["3"]
    assert (request.leader, request.index, request.term) == ("1", 11, 1)

    # The shell syncs blocks 1..11 from the leader, applies them, then restores.
    cluster.applied["3"] = list(cluster.applied["1"])
    assert cluster.nodes["3"].restore(request.index, request.term)
    cluster.settle()
    assert cluster.storage["3"].first_index() == 12

    cluster.nodes["1"].propose(b"after-sync")
    cluster.settle()
    cluster.tick(2)
    assert cluster.applied["3"] == cluster.applied["1"]
    assert cluster.applied["3"][-1] == b"after-sync"
    assert cluster.nodes["3"].status().commit == cluster.nodes["1"].status().commit


def test_restore_below_commit_is_ignored() -> None:
    cluster = Cluster()
    cluster.nodes["1"].campaign()
    cluster.settle()
    cluster.tick(1)
    assert not cluster.nodes["2"].restore(1, 1)


def test_restore_keeps_a_matching_log_and_its_acknowledged_tail() -> None:
    cluster = Cluster()
    cluster.nodes["1"].campaign()
    cluster.settle()
    cluster.nodes["1"].propose(b"a")
    cluster.nodes["1"].propose(b"b")
    cluster.settle()
    follower = cluster.nodes["2"]
    follower._raft.log.committed = 1  # pretend the commit news has not arrived yet
    follower._raft.log.applied = 1
    last = follower.status().last_index
    assert follower.restore(2, 1)
    status = follower.status()
    assert (status.commit, status.applied, status.last_index) == (2, 2, last)
    rd = follower.ready()
    assert rd.restore is None and rd.committed_entries == ()
