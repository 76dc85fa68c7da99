"""The Ready/advance contract between the Raft core and the node shell."""
from __future__ import annotations

import random

import pytest

from hcnode.consensus import (
    Config,
    Entry,
    EntryType,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    RaftError,
    RawNode,
    Ready,
    Role,
)

IDS = ("1", "2", "3")


def new_node(
    node_id: str = "1", voters: tuple[str, ...] = IDS, storage: MemoryStorage | None = None, **kw: object
) -> tuple[RawNode, MemoryStorage]:
    storage = storage if storage is not None else MemoryStorage()
    config = Config(id=node_id, voters=voters, rng=random.Random(node_id), **kw)  # type: ignore[arg-type]
    return RawNode(config, storage), storage


def handle(node: RawNode, storage: MemoryStorage, sent: list[Message] | None = None) -> Ready:
    """The shell's loop body, in contract order."""
    rd = node.ready()
    if rd.restore is not None:
        storage.restore(*rd.restore)
    storage.append(rd.entries)
    if rd.hard_state is not None:
        storage.set_hard_state(rd.hard_state)
    if sent is not None:
        sent.extend(rd.messages)
    node.advance(rd)
    return rd


def test_persist_before_send_contract() -> None:
    """A vote and an append acknowledgement travel in the same Ready as the
    state they promise; persisting that Ready first is what keeps the promise
    across a crash."""
    follower, storage = new_node("3")
    follower.step(Message(MessageType.VOTE, "1", "3", term=1))
    rd = follower.ready()
    assert [m.type for m in rd.messages] == [MessageType.VOTE_RESP]
    assert rd.hard_state == HardState(term=1, vote="1", commit=0)
    assert rd.must_persist
    storage.set_hard_state(rd.hard_state)
    follower.advance(rd)

    # After a crash, the persisted vote still binds: a rival in term 1 is refused.
    restarted, _ = new_node("3", storage=storage)
    restarted.step(Message(MessageType.VOTE, "2", "3", term=1))
    rd = restarted.ready()
    [answer] = rd.messages
    assert answer.reject
    restarted.advance(rd)

    # An acknowledgement of entries comes with those entries to persist.
    app = Message(MessageType.APP, "1", "3", term=1, index=0, log_term=0, entries=(Entry(term=1, index=1, data=b"b1"),))
    restarted.step(app)
    rd = restarted.ready()
    assert [e.index for e in rd.entries] == [1]
    assert [(m.type, m.index) for m in rd.messages] == [(MessageType.APP_RESP, 1)]


def elected_leader() -> tuple[RawNode, MemoryStorage]:
    """Node 1 wins the (pre-)vote with node 2's answers."""
    leader, storage = new_node("1")
    leader.campaign()
    answers = {MessageType.PRE_VOTE: MessageType.PRE_VOTE_RESP, MessageType.VOTE: MessageType.VOTE_RESP}
    while leader.status().role is not Role.LEADER:
        sent: list[Message] = []
        handle(leader, storage, sent)
        for m in sent:
            if m.recipient == "2" and m.type in answers:
                leader.step(Message(answers[m.type], "2", "1", term=m.term))
    sent = []
    handle(leader, storage, sent)  # its first entry goes out; both followers take it
    for m in sent:
        if m.type is MessageType.APP:
            leader.step(Message(MessageType.APP_RESP, m.recipient, "1", term=m.term, index=m.index + len(m.entries)))
    handle(leader, storage)
    return leader, storage


def test_only_messages_that_promise_nothing_may_leave_before_the_ready_is_persisted() -> None:
    """A leader's appends go out while its own entries are written; acknowledgements and votes wait."""
    leader, storage = elected_leader()
    leader.propose(b"block-1")
    rd = leader.ready()
    assert [e.data for e in rd.entries] == [b"block-1"] and rd.must_persist
    assert {m.type for m in rd.early_messages} == {MessageType.APP} and rd.late_messages == ()
    handle_rest = rd  # persist and advance as the shell does
    storage.append(handle_rest.entries)
    leader.advance(handle_rest)

    # A follower's acknowledgement of the same entries is a promise: it waits for the disk write ...
    follower, follower_storage = new_node("3")
    follower.step(Message(MessageType.APP, "1", "3", term=1, index=0, log_term=0,
                          entries=(Entry(term=1, index=1, data=b"b1"),)))
    rd = follower.ready()
    assert rd.early_messages == () and [m.type for m in rd.late_messages] == [MessageType.APP_RESP]
    handle_rd(follower, follower_storage, rd)
    # ... while a heartbeat reply in a Ready that keeps term and vote carries nothing to wait for.
    follower.step(Message(MessageType.HEARTBEAT, "1", "3", term=1, commit=1))
    rd = follower.ready()
    assert [m.type for m in rd.early_messages] == [MessageType.HEARTBEAT_RESP] and rd.late_messages == ()
    handle_rd(follower, follower_storage, rd)

    # A Ready that changes term or vote sends nothing early, not even a heartbeat reply.
    newcomer, _ = new_node("2")
    newcomer.step(Message(MessageType.HEARTBEAT, "1", "2", term=3, commit=0))
    rd = newcomer.ready()
    assert rd.hard_state is not None and rd.hard_state.term == 3
    assert rd.early_messages == () and [m.type for m in rd.late_messages] == [MessageType.HEARTBEAT_RESP]


def handle_rd(node: RawNode, storage: MemoryStorage, rd: Ready) -> None:
    storage.append(rd.entries)
    if rd.hard_state is not None:
        storage.set_hard_state(rd.hard_state)
    node.advance(rd)


def test_only_a_hard_state_that_moves_the_commit_index_alone_may_skip_the_sync() -> None:
    leader, storage = elected_leader()
    leader.propose(b"block-1")
    rd = leader.ready()
    assert rd.entries and rd.must_sync  # new entries: synced before acknowledging or counting them
    handle_rd(leader, storage, rd)
    [last] = rd.entries
    for follower in ("2", "3"):
        leader.step(Message(MessageType.APP_RESP, follower, "1", term=last.term, index=last.index))
    rd = leader.ready()
    assert [e.data for e in rd.committed_entries] == [b"block-1"]
    assert rd.hard_state is not None and rd.hard_state.commit == last.index and rd.keeps_term_and_vote
    assert rd.must_persist and not rd.must_sync  # only the commit index moved
    handle_rd(leader, storage, rd)

    # After a crash that lost that write, the restarted node commits (at least) what it applied.
    storage.set_hard_state(HardState(rd.hard_state.term, rd.hard_state.vote, last.index - 1))
    restarted, _ = new_node("1", storage=storage, applied=last.index)
    assert restarted.status().commit == last.index

    # A new term or vote is always synced.
    follower, _ = new_node("3")
    follower.step(Message(MessageType.VOTE, "1", "3", term=rd.hard_state.term + 1))
    rd = follower.ready()
    assert rd.hard_state is not None and not rd.entries and rd.must_sync


def test_unpersisted_vote_is_forgotten_after_crash() -> None:
    follower, storage = new_node("3")
    follower.step(Message(MessageType.VOTE, "1", "3", term=1))
    follower.ready()  # crash before persisting: the response was never sent either
    restarted, _ = new_node("3", storage=storage)
    assert restarted.status().vote is None


def test_single_node_commits_and_applies_own_proposals() -> None:
    node, storage = new_node("1", voters=("1",))
    node.campaign()
    rd = handle(node, storage)
    assert rd.soft_state is not None and rd.soft_state.role is Role.LEADER
    assert [e.type for e in rd.committed_entries] == [EntryType.EMPTY]
    node.propose(b"block-1")
    rd = handle(node, storage)
    assert [e.data for e in rd.entries] == [b"block-1"]
    assert [e.data for e in rd.committed_entries] == [b"block-1"]
    assert storage.last_index() == 2
    assert not node.has_ready()


def test_committed_entries_are_handed_out_once() -> None:
    node, storage = new_node("1", voters=("1",))
    node.campaign()
    handle(node, storage)
    node.propose(b"x")
    first = handle(node, storage)
    assert len(first.committed_entries) == 1
    assert not node.has_ready()
    assert node.status().applied == 2


def test_restart_skips_entries_already_applied() -> None:
    node, storage = new_node("1", voters=("1",))
    node.campaign()
    handle(node, storage)
    node.propose(b"x")
    handle(node, storage)
    restarted, _ = new_node("1", voters=("1",), storage=storage, applied=2)
    assert restarted.status().applied == 2
    rd = restarted.ready()
    assert rd.committed_entries == ()


def test_ready_twice_without_advance_is_an_error() -> None:
    node, _ = new_node("1")
    node.campaign()
    node.ready()
    with pytest.raises(RaftError):
        node.ready()


def test_soft_state_reports_leader_changes_only() -> None:
    node, storage = new_node("3")
    node.step(Message(MessageType.HEARTBEAT, "1", "3", term=1))
    rd = handle(node, storage)
    assert rd.soft_state is not None and rd.soft_state.leader == "1"
    node.step(Message(MessageType.HEARTBEAT, "1", "3", term=1))
    rd = handle(node, storage)
    assert rd.soft_state is None and rd.hard_state is None
