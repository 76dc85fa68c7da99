"""Leader election: randomized timeouts, voting rules, pre-vote and check-quorum."""
from __future__ import annotations

import random

import pytest

from hcnode.consensus import Config, ConfigError, Message, MessageType, RaftError, Role
from hcnode.consensus.raft import Raft
from hcnode.consensus.storage import MemoryStorage

from .network import Network, make_raft, storage_with

IDS = ["1", "2", "3"]


def test_single_candidate_wins_election_in_three_node_cluster() -> None:
    net = Network.of(3)
    net.campaign("1")
    assert net["1"].role is Role.LEADER
    assert net["1"].term == 1
    assert [net[i].leader for i in IDS] == ["1", "1", "1"]


def test_follower_campaigns_after_randomized_election_timeout() -> None:
    raft = make_raft("1", IDS)
    timeout = raft.randomized_election_timeout
    assert 10 <= timeout < 20
    for _ in range(timeout - 1):
        raft.tick()
    assert raft.role is Role.FOLLOWER
    raft.tick()
    assert raft.role is Role.CANDIDATE
    assert {m.type for m in raft.msgs} == {MessageType.VOTE}


def test_randomized_timeouts_cover_range_and_repeat_per_seed() -> None:
    def timeouts(seed: int) -> list[int]:
        raft = make_raft("1", IDS, seed=seed)
        seen = []
        for _ in range(200):
            raft._become_follower(raft.term + 1, None)
            seen.append(raft.randomized_election_timeout)
        return seen

    assert timeouts(7) == timeouts(7)
    assert set(timeouts(7)) == set(range(10, 20))


def test_candidate_with_shorter_log_loses_election() -> None:
    # Node 1's log ends at (1, t1); the others hold (2, t1): they refuse it.
    peers = {
        "1": make_raft("1", IDS, storage=storage_with([1])),
        "2": make_raft("2", IDS, storage=storage_with([1, 1])),
        "3": make_raft("3", IDS, storage=storage_with([1, 1])),
    }
    net = Network(peers)
    net.campaign("1")
    assert net["1"].role is Role.FOLLOWER
    assert net["1"].term == 2
    net.campaign("2")
    assert net["2"].role is Role.LEADER


def test_candidate_with_older_last_term_loses_despite_longer_log() -> None:
    peers = {
        "1": make_raft("1", IDS, storage=storage_with([1, 1, 1])),
        "2": make_raft("2", IDS, storage=storage_with([1, 2])),
        "3": make_raft("3", IDS, storage=storage_with([1, 2])),
    }
    net = Network(peers)
    net.campaign("1")
    assert net["1"].role is not Role.LEADER


def test_vote_is_granted_to_only_one_candidate_per_term() -> None:
    voter = make_raft("3", IDS)
    voter.step(Message(MessageType.VOTE, "1", "3", term=1))
    voter.step(Message(MessageType.VOTE, "2", "3", term=1))
    responses = [(m.recipient, m.reject) for m in voter.msgs]
    assert responses == [("1", False), ("2", True)]
    assert voter.vote == "1"
    # A repeated request from the same candidate is granted again (lost response).
    voter.msgs.clear()
    voter.step(Message(MessageType.VOTE, "1", "3", term=1))
    assert [m.reject for m in voter.msgs] == [False]


def test_split_vote_resolves_by_later_timeouts() -> None:
    net = Network.of(3)
    net.cut("1", "2")
    net.campaign("1")  # gets 3's vote
    assert net["1"].role is Role.LEADER
    net.recover()
    net.tick_all(60)
    leaders = [i for i in IDS if net[i].role is Role.LEADER]
    assert len(leaders) == 1


def test_leader_steps_down_without_quorum_under_check_quorum() -> None:
    net = Network.of(3, check_quorum=True)
    net.campaign("1")
    assert net["1"].role is Role.LEADER
    net.isolate("1")
    # One window to forget who was active, one more to notice nobody answered.
    for _ in range(2 * net["1"].election_tick):
        net.tick("1")
    assert net["1"].role is Role.FOLLOWER
    assert net["1"].leader is None


def test_leader_keeps_leadership_with_quorum_under_check_quorum() -> None:
    net = Network.of(3, check_quorum=True)
    net.campaign("1")
    net.isolate("3")
    for _ in range(5 * net["1"].election_tick):
        net.tick("1")
    assert net["1"].role is Role.LEADER


def test_follower_with_recent_leader_ignores_vote_requests_under_check_quorum() -> None:
    net = Network.of(3, check_quorum=True)
    net.campaign("1")
    follower = net["2"]
    follower.step(Message(MessageType.VOTE, "3", "2", term=5, index=10, log_term=5))
    assert follower.term == 1
    assert follower.msgs == []
    assert follower.leader == "1"


def test_prevote_does_not_disrupt_stable_leader() -> None:
    net = Network.of(3, pre_vote=True, check_quorum=True)
    net.campaign("1")
    assert net["1"].role is Role.LEADER
    net.isolate("3")
    for _ in range(100):  # node 3 times out again and again, alone
        net.tick("3")
    assert net["3"].term == 1  # pre-vote never raised its term
    assert net["3"].role is Role.PRE_CANDIDATE
    net.recover()
    net.tick_all(20)
    assert net["1"].role is Role.LEADER
    assert net["1"].term == 1
    assert net["3"].role is Role.FOLLOWER
    assert net["3"].leader == "1"


def test_without_prevote_rejoining_node_forces_new_term() -> None:
    net = Network.of(3)
    net.campaign("1")
    net.isolate("3")
    for _ in range(100):
        net.tick("3")
    assert net["3"].term > 1
    disrupted_term = net["3"].term
    net.recover()
    net.tick_all(40)  # 3 ignores the old-term leader and campaigns at ever higher terms
    assert net["1"].term >= disrupted_term
    assert max(net[i].term for i in IDS) > 1


def test_prevote_succeeds_when_leader_is_gone() -> None:
    net = Network.of(3, pre_vote=True, check_quorum=True)
    net.campaign("1")
    net.isolate("1")
    net.tick_all(40)
    assert any(net[i].role is Role.LEADER and net[i].term == 2 for i in ("2", "3"))


def test_stale_leader_steps_down_when_answered_with_higher_term() -> None:
    net = Network.of(3, pre_vote=True, check_quorum=True)
    net.campaign("1")
    net.isolate("1")
    for node_id in ("2", "3"):  # let the old leader's lease run out on both
        net.tick(node_id, net[node_id].election_tick)
    net.campaign("2")
    assert net["2"].role is Role.LEADER and net["2"].term == 2
    assert net["1"].role is Role.LEADER  # does not know yet
    net.recover()
    net.tick("1")  # heartbeat at term 1 is answered with term 2
    assert net["1"].role is Role.FOLLOWER
    assert net["1"].term == 2


def test_pre_candidate_does_not_change_term_or_vote() -> None:
    raft = make_raft("1", IDS, pre_vote=True)
    raft.campaign()
    assert raft.role is Role.PRE_CANDIDATE
    assert (raft.term, raft.vote) == (0, None)
    assert {(m.type, m.term) for m in raft.msgs} == {(MessageType.PRE_VOTE, 1)}


def test_single_node_cluster_elects_itself() -> None:
    raft = make_raft("1", ["1"], pre_vote=True)
    raft.campaign()
    assert raft.role is Role.LEADER


def test_restart_keeps_term_and_vote_from_storage() -> None:
    raft = make_raft("3", IDS, storage=storage_with([1], term=4, vote="1"))
    assert (raft.term, raft.vote) == (4, "1")
    raft.step(Message(MessageType.VOTE, "2", "3", term=4, index=1, log_term=1))
    assert [m.reject for m in raft.msgs] == [True]


def test_message_from_unknown_sender_raises_raft_error() -> None:
    raft = make_raft("1", IDS)
    with pytest.raises(RaftError):
        raft.step(Message(MessageType.HEARTBEAT, "9", "1", term=1))


@pytest.mark.parametrize(
    "voters, node_id",
    [((), "1"), (("1", "1"), "1"), (("1", "2"), "3"), (("1", b"2"), "1")],
)
def test_config_rejects_unworkable_membership(voters: tuple[object, ...], node_id: str) -> None:
    with pytest.raises(ConfigError):
        Raft(Config(id=node_id, voters=voters, rng=random.Random(0)), MemoryStorage())  # type: ignore[arg-type]


def test_bytes_ids_work_like_str_ids() -> None:
    ids = [b"\x02aa", b"\x02bb", b"\x03cc"]
    peers = {i.hex(): Raft(Config(id=i, voters=tuple(ids), rng=random.Random(1)), MemoryStorage()) for i in ids}
    first = peers[ids[0].hex()]
    first.campaign()
    for _ in range(3):
        for raft in list(peers.values()):
            messages, raft.msgs = raft.msgs, []
            for m in messages:
                peers[bytes(m.recipient).hex()].step(m)  # type: ignore[arg-type]
    assert first.role is Role.LEADER
