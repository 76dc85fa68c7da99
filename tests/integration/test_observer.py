"""An observer: a real ``hcnode`` process whose key is not a genesis validator, next to a 3-validator testnet.

The testnet file says ``observers = 1`` (``hcnode.testnet``): the observer gets the
same genesis and bootstraps to every validator. It must follow the chain (block
sync), serve RPC from its own LevelDB, relay what its clients submit so that it
commits exactly once, catch up after ``kill -9``, and never vote or lead. Every
wait is a bounded poll (``wait_until``), never a bare sleep.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hcnode import crypto
from hcnode.chain import build_tx
from hcnode.node.p2p import RAFT_PROTOCOL
from hcnode.testnet import Testnet, TestnetNode
from tests.integration.test_testnet import (
    chain_id, make_testnet, new_txs, same_head, submit_and_wait, wait_until,
)


@pytest.fixture
def testnet3_observer() -> Iterator[Testnet]:
    yield from make_testnet(3, observers=1)


def node_public(node: TestnetNode) -> str:
    return crypto.PrivateKey(bytes.fromhex((node.dir / "data" / "node.key").read_text().strip())).public.hex()


def block_hash_at(node: TestnetNode, height: int) -> str | None:
    info = node.info()
    if info is None or info["height"] < height:
        return None
    return str(node.call("block.get", height=height)["hash"])


def occurrences_in_chain(node: TestnetNode, tx_hash: str) -> list[int]:
    """Heights of every block on ``node`` that holds the transaction (exactly once means one height)."""
    head = node.call("block.head")["height"]
    return [h for h in range(1, head + 1) if tx_hash in node.call("block.get", height=h)["tx_hashes"]]


def assert_never_voted_or_led(net: Testnet, observer: TestnetNode) -> None:
    """The observer is no Raft member: no role or term of its own, no validator names it leader, it proposed
    no block, and it never even tried to open a raft stream (validators would refuse it with a log line)."""
    key = node_public(observer)
    info = observer.info()
    assert info is not None and info["role"] == "observer" and info["term"] == 0
    assert key not in [node_public(v) for v in net.nodes]
    for validator in net.nodes:
        validator_info = validator.info()
        assert validator_info is not None and validator_info["leader"] != key
        assert f"{RAFT_PROTOCOL} stream from observer {key[:16]}" not in validator.log_path.read_text(errors="replace")
    head = observer.call("block.head")["height"]
    proposers = {observer.call("block.get", height=h)["proposer"] for h in range(1, head + 1)}
    assert proposers <= {node_public(v) for v in net.nodes}


def test_an_observer_follows_serves_rpc_and_relays_a_transaction_that_commits_exactly_once(
        testnet3_observer: Testnet) -> None:
    net = testnet3_observer
    leader = net.wait_leader()
    observer = net.observers[0]

    # It follows: after each round of commits it holds the validators' block at that height.
    for _ in range(3):
        outcomes = submit_and_wait(leader, new_txs(net, 20))
        assert all(o["status"] == "committed" for o in outcomes)
        height = max(o["receipt"]["height"] for o in outcomes)
        wait_until(lambda: block_hash_at(observer, height) == block_hash_at(leader, height), 10,
                   f"the observer to hold the leader's block {height}")

    # It serves RPC from its own store: status, head and app queries agree with a validator's.
    wait_until(lambda: same_head(net.all_nodes), 10, "the observer and the validators on one head")
    info = observer.info()
    assert info is not None and info["role"] == "observer" and not info["halted"]
    assert set(info["peers"]) == {node_public(v) for v in net.nodes}
    # Its lag is measured against the head the validators report in block sync (/hcnode/sync/2).
    assert info["peer_head"] == info["height"] == leader.call("block.head")["height"] and info["lag"] == 0
    assert observer.call("block.head") == leader.call("block.head")
    assert observer.call("registry.orgs") == leader.call("registry.orgs")

    # A transaction submitted to the observer reaches the leader by gossip and commits once.
    patient = crypto.PrivateKey.generate()
    raw = build_tx(patient, chain_id(net), "registry.patient_register", 0, {})
    submitted = observer.call("tx.submit", tx=raw.hex())
    assert submitted["status"] == "accepted"
    outcome = observer.call("tx.wait", timeout=25, tx=submitted["tx"], timeout_ms=20000)
    assert outcome["status"] == "committed" and outcome["receipt"]["status"] == "ok", outcome
    height = outcome["receipt"]["height"]
    for validator in net.nodes:  # a follower may apply the block just after the observer synced it: wait for it
        committed = validator.call("tx.wait", timeout=25, tx=submitted["tx"], timeout_ms=20000)
        assert committed["status"] == "committed" and committed["receipt"]["height"] == height, committed
    assert occurrences_in_chain(leader, submitted["tx"]) == [height]
    assert observer.call("registry.patient", key=patient.public.hex()) == leader.call(
        "registry.patient", key=patient.public.hex())
    assert observer.call("tx.submit", tx=raw.hex())["status"] == "committed"  # submitting again changes nothing

    assert_never_voted_or_led(net, observer)


def test_an_observer_killed_9_catches_up_by_block_sync_after_restart(testnet3_observer: Testnet) -> None:
    net = testnet3_observer
    leader = net.wait_leader()
    observer = net.observers[0]
    assert all(o["status"] == "committed" for o in submit_and_wait(leader, new_txs(net, 10)))
    wait_until(lambda: same_head(net.all_nodes), 10, "the observer and the validators on one head")

    net.kill(observer)
    for _ in range(10):  # blocks committed while it is down
        assert all(o["status"] == "committed" for o in submit_and_wait(leader, new_txs(net, 10)))
    top = leader.call("block.head")["height"]
    net.start(observer)
    net.wait_answering([observer])
    wait_until(lambda: same_head(net.all_nodes, top), 20, "the restarted observer to reach the validators' head")

    # And it relays again after the restart.
    outcome = submit_and_wait(observer, new_txs(net, 5))
    assert all(o["status"] == "committed" for o in outcome), outcome
    assert_never_voted_or_led(net, observer)
