# Raft paper Figure 8, scripted: why a leader must not commit entries of
# earlier terms by counting replicas. Shared by the unit test and by the
# mutation test that proves this scenario catches the unsafe rule.
from __future__ import annotations

import dataclasses

from hcnode.consensus import MessageType, Role

from .network import Network, make_raft, storage_with


def run_figure8_scenario() -> None:
    """Raft Figure 8. S1 (leader, term 4) holds index 2 from term 2; S5 holds a
    different index 2 from term 3. When S1 has index 2 on a majority it must
    still not commit it, because S5 can win term 5 and overwrite it."""
    ids = ["1", "2", "3", "4", "5"]
    peers = {
        "1": make_raft("1", ids, storage=storage_with([1, 2], term=3), max_entries_per_append=1),
        "2": make_raft("2", ids, storage=storage_with([1, 2], term=3)),
        "3": make_raft("3", ids, storage=storage_with([1], term=3)),
        "4": make_raft("4", ids, storage=storage_with([1], term=3)),
        "5": make_raft("5", ids, storage=storage_with([1, 3], term=3)),
    }
    net = Network(peers)
    for raft in peers.values():
        raft.log.commit_to(1)
    net.isolate("5")
    # Only old-term entries may travel: the leader's own term-4 entry is stripped in transit.
    net.rewrite(
        lambda m: dataclasses.replace(m, entries=tuple(e for e in m.entries if e.term != 4))
        if m.type is MessageType.APP
        else m
    )
    net.campaign("1")
    s1 = net["1"]
    assert s1.role is Role.LEADER and s1.term == 4
    assert [net[i].log.term(2) for i in ("2", "3", "4")] == [2, 2, 2]  # index 2 (term 2) on a majority
    assert sorted(p.match for p in s1.progress.values()) == [0, 2, 2, 2, 3]
    assert s1.log.committed == 1  # ...but it is not from term 4, so it is not committed
    # Figure 8 (d): S1 fails, S5 wins term 5 and overwrites index 2 everywhere.
    net.recover()
    net.isolate("1")
    net.campaign("5")  # term 4: refused, the others voted for S1 in it
    net.campaign("5")  # term 5: S5's last term (3) beats their last term (2)
    assert net["5"].role is Role.LEADER
    net.propose("5", b"after")
    assert all(net[i].log.term(2) == 3 for i in ("2", "3", "4", "5"))
    # Figure 8 (e): had S1 instead got its term-4 entry onto a majority, it commits both.
    net2 = Network({i: make_raft(i, ids, storage=storage_with(t, term=3)) for i, t in
                    {"1": [1, 2], "2": [1, 2], "3": [1], "4": [1], "5": [1, 3]}.items()})
    net2.isolate("5")
    net2.campaign("1")
    assert net2["1"].log.committed == 3
