"""Log replication: matching, conflicts, backtracking, pipelining, commitment."""
from __future__ import annotations

import pytest

from hcnode.consensus import Entry, EntryType, Message, MessageType, NotLeaderError, ProposalDroppedError, Role
from hcnode.consensus.progress import ProgressState
from hcnode.consensus.raft import Raft

from .figure8 import run_figure8_scenario
from .network import Network, make_raft, storage_with

IDS = ["1", "2", "3"]


def log_terms(raft: Raft) -> list[int]:
    return [e.term for e in raft.log.entries(raft.log.first_index())]


def test_new_leader_appends_empty_entry_of_its_term() -> None:
    net = Network.of(3)
    net.campaign("1")
    entries = net["1"].log.entries(1)
    assert entries == [Entry(term=1, index=1, type=EntryType.EMPTY)]
    assert all(net[i].log.committed == 1 for i in IDS)


def test_proposal_is_replicated_and_committed_on_all_nodes() -> None:
    net = Network.of(3)
    net.campaign("1")
    index = net.propose("1", b"block-1")
    assert index == 2
    net.tick("1")  # heartbeat carries the new commit index to followers
    for node_id in IDS:
        assert net[node_id].log.committed == 2
        assert net[node_id].log.entries(2) == [Entry(term=1, index=2, data=b"block-1")]


def test_proposal_to_follower_raises_not_leader_naming_the_leader() -> None:
    net = Network.of(3)
    net.campaign("1")
    with pytest.raises(NotLeaderError) as caught:
        net["2"].propose(b"x")
    assert caught.value.leader == "1"
    fresh = make_raft("1", IDS)
    with pytest.raises(NotLeaderError) as caught:
        fresh.propose(b"x")
    assert caught.value.leader is None


def test_leader_refuses_proposals_beyond_uncommitted_limit() -> None:
    net = Network.of(3, max_uncommitted_entries=3)
    net.campaign("1")
    net.isolate("1")
    net.propose("1", b"a")
    net.propose("1", b"b")
    net.propose("1", b"c")
    with pytest.raises(ProposalDroppedError):
        net.propose("1", b"d")


def test_follower_rejects_append_from_stale_term() -> None:
    follower = make_raft("2", IDS, storage=storage_with([1, 2], term=2), check_quorum=True)
    stale = Message(
        MessageType.APP, "1", "2", term=1, index=2, log_term=2, entries=(Entry(term=1, index=3, data=b"x"),)
    )
    follower.step(stale)
    assert follower.log.last_index() == 2
    assert follower.term == 2
    # It answers with its own term so the stale leader learns it is deposed.
    assert [(m.type, m.term, m.reject) for m in follower.msgs] == [(MessageType.APP_RESP, 2, False)]


def test_follower_rejects_append_whose_previous_entry_does_not_match() -> None:
    follower = make_raft("2", IDS, storage=storage_with([1, 1], term=2))
    follower.step(Message(MessageType.APP, "1", "2", term=2, index=2, log_term=2, entries=()))
    [response] = follower.msgs
    assert response.reject
    assert (response.index, response.reject_hint, response.log_term) == (2, 2, 1)


def test_follower_truncates_conflicting_uncommitted_entries() -> None:
    follower = make_raft("2", IDS, storage=storage_with([1, 2, 2], term=3))
    new = (Entry(term=3, index=2, data=b"n2"), Entry(term=3, index=3, data=b"n3"), Entry(term=3, index=4))
    follower.step(Message(MessageType.APP, "1", "2", term=3, index=1, log_term=1, entries=new))
    assert log_terms(follower) == [1, 3, 3, 3]
    assert follower.log.unstable_entries() == list(new)
    assert [m.index for m in follower.msgs] == [4]


def test_duplicated_old_append_does_not_truncate_newer_entries() -> None:
    follower = make_raft("2", IDS, storage=storage_with([1], term=1))
    first = Message(MessageType.APP, "1", "2", term=1, index=1, log_term=1, entries=(Entry(term=1, index=2),))
    second = Message(MessageType.APP, "1", "2", term=1, index=2, log_term=1, entries=(Entry(term=1, index=3),))
    follower.step(first)
    follower.step(second)
    follower.step(first)  # delayed duplicate
    assert follower.log.last_index() == 3
    assert [m.index for m in follower.msgs] == [2, 3, 2]


def test_heartbeat_advances_follower_commit_only_within_its_log() -> None:
    follower = make_raft("2", IDS, storage=storage_with([1, 1, 1], term=1))
    follower.step(Message(MessageType.HEARTBEAT, "1", "2", term=1, commit=2))
    assert follower.log.committed == 2
    assert follower.leader == "1"


def test_fast_backtracking_skips_a_divergent_term_per_round_trip() -> None:
    # The follower holds a long tail of term-2 entries that the leader never had.
    leader_terms = [1, 1, 1, 3, 3, 3, 3, 3, 3, 3]
    follower_terms = [1, 1, 1] + [2] * 20
    peers = {
        "1": make_raft("1", IDS, storage=storage_with(leader_terms, term=3)),
        "2": make_raft("2", IDS, storage=storage_with(follower_terms, term=3)),
        "3": make_raft("3", IDS, storage=storage_with(leader_terms, term=3)),
    }
    net = Network(peers)
    net.campaign("1")
    assert net["1"].role is Role.LEADER
    net.propose("1", b"x")
    rejects = [m for m in net.delivered if m.type is MessageType.APP_RESP and m.reject and m.sender == "2"]
    assert len(rejects) <= 2  # not one per divergent entry
    assert log_terms(net["2"]) == log_terms(net["1"])


def test_leader_pipelines_up_to_max_inflight_appends() -> None:
    net = Network.of(3, max_inflight=2, max_entries_per_append=1)
    net.campaign("1")
    leader = net["1"]
    assert leader.progress["2"].state is ProgressState.REPLICATE
    net.isolate("1")  # nothing gets acknowledged from now on
    for n in range(5):
        net.propose("1", f"p{n}".encode())
    progress = leader.progress["2"]
    assert len(progress.inflight) == 2
    assert progress.next == leader.log.last_index() - 2  # advanced optimistically past 2 unacknowledged sends
    assert progress.is_paused()


def test_reject_falls_back_to_probe_and_recovers() -> None:
    net = Network.of(3, max_inflight=4, max_entries_per_append=1)
    net.campaign("1")
    # Lose one append to node 2: the next one does not match and is rejected.
    lost = {"done": False}

    def drop_first_app_to_2(m: Message) -> bool:
        if m.type is MessageType.APP and m.recipient == "2" and m.entries and not lost["done"]:
            lost["done"] = True
            return True
        return False

    net.drop(drop_first_app_to_2)
    net.propose("1", b"a")
    net.propose("1", b"b")
    assert any(m.type is MessageType.APP_RESP and m.reject and m.sender == "2" for m in net.delivered)
    net.recover()
    net.tick("1")
    assert net["2"].log.last_index() == net["1"].log.last_index()
    assert net["1"].progress["2"].state is ProgressState.REPLICATE


def test_leader_commits_only_current_term_entries_by_counting() -> None:
    """Raft Figure 8; the scenario and its assertions live in figure8.py so the
    mutation tests can show that it catches the unsafe commit rule."""
    run_figure8_scenario()


def test_commit_is_persisted_in_hard_state_and_never_regresses() -> None:
    net = Network.of(3)
    net.campaign("1")
    net.propose("1", b"a")
    before = net["1"].hard_state().commit
    net.isolate("1")
    net.tick("1", 30)
    assert net["1"].log.committed == before
