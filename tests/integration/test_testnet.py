"""Real ``hcnode`` processes on loopback forming a Raft testnet (``hcnode.testnet``), crashed with ``kill -9``.

The fixture starts N nodes from ``configs/testnet-3.toml``'s settings in a temp
dir (free ports) and kills every process whatever happens; node logs are
quoted in failures. Waits are polls with deadlines, never bare sleeps.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hcnode import crypto
from hcnode.chain import build_tx
from hcnode.testnet import Testnet, TestnetNode

REPO = Path(__file__).resolve().parents[2]


def write_testnet_file(workdir: Path, nodes: int, observers: int = 0) -> Path:
    """``configs/testnet-3.toml`` for ``nodes`` validators and ``observers`` observers in ``workdir``, on free ports."""
    text = (REPO / "configs" / "testnet-3.toml").read_text()
    text = re.sub(r"nodes = \d+", f"nodes = {nodes}", text)
    text = re.sub(r"observers = \d+", f"observers = {observers}", text)
    text = re.sub(r'dir = ".*"', 'dir = "."', text)
    text = re.sub(r"base_port = \d+", "base_port = 0", text)
    text = text.replace("log_keep_entries = 1000", "log_keep_entries = 5")  # so restarts exercise block sync
    (workdir / "testnet.toml").write_text(text)
    return workdir / "testnet.toml"


def make_testnet(nodes: int, observers: int = 0) -> Iterator[Testnet]:
    workdir = Path(tempfile.mkdtemp(prefix="hct", dir="/tmp"))
    net = Testnet(write_testnet_file(workdir, nodes, observers))
    try:
        net.up(detach=False, timeout=60)
        yield net
    except BaseException:
        for node in net.all_nodes:
            print(f"--- node {node.label} log ---\n{node.log(40)}")
        raise
    finally:
        for node in net.all_nodes:
            net.kill(node)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def testnet3() -> Iterator[Testnet]:
    yield from make_testnet(3)


@pytest.fixture
def testnet5() -> Iterator[Testnet]:
    yield from make_testnet(5)


def chain_id(net: Testnet) -> str:
    return str(net.spec["chain_id"])


def new_txs(net: Testnet, count: int) -> list[bytes]:
    return [build_tx(crypto.PrivateKey.generate(), chain_id(net), "registry.patient_register", 0, {})
            for _ in range(count)]


def submit_and_wait(node: TestnetNode, raws: list[bytes], timeout_s: float = 20.0) -> list[dict]:
    results = node.call("tx.submit_batch", timeout=30, txs=[r.hex() for r in raws])["results"]
    hashes = [r["tx"] for r in results]
    return [node.call("tx.wait", timeout=timeout_s + 5, tx=h, timeout_ms=int(timeout_s * 1000)) for h in hashes]


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def heads(nodes: list[TestnetNode]) -> dict[int, tuple[int, str] | None]:
    out = {}
    for node in nodes:
        info = node.info()
        out[node.index] = None if info is None else (info["height"], info["head"])
    return out


def same_head(nodes: list[TestnetNode], at_least: int = 0) -> bool:
    values = list(heads(nodes).values())
    return None not in values and len(set(values)) == 1 and values[0][0] >= at_least  # type: ignore[index]


def followers(net: Testnet, leader: TestnetNode, among: list[TestnetNode] | None = None) -> list[TestnetNode]:
    return [n for n in (among or net.nodes) if n is not leader]


def test_three_nodes_commit_and_agree(testnet3: Testnet) -> None:
    net = testnet3
    leader = net.wait_leader()
    follower = followers(net, leader)[0]
    outcomes = submit_and_wait(follower, new_txs(net, 50))
    assert all(o["status"] == "committed" and o["receipt"]["status"] == "ok" for o in outcomes)
    height = outcomes[-1]["receipt"]["height"]
    wait_until(lambda: same_head(net.nodes, height), 10, "all nodes to reach the same head")
    for node in net.nodes:
        info = node.info()
        assert info is not None and len(info["peers"]) == 2 and info["lag"] == 0
        assert info["role"] == ("leader" if node is leader else "follower")


def test_kill_9_leader_during_a_stream_loses_nothing_committed(testnet3: Testnet) -> None:
    net = testnet3
    leader = net.wait_leader()
    entry = followers(net, leader)[0]
    committed: list[tuple[str, int]] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def stream() -> None:
        try:
            while not stop.is_set():
                for outcome in submit_and_wait(entry, new_txs(net, 20), timeout_s=15):
                    if outcome["status"] == "committed":
                        committed.append((outcome["receipt"]["tx"], outcome["receipt"]["height"]))
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    thread = threading.Thread(target=stream)
    thread.start()
    try:
        wait_until(lambda: len(committed) >= 40, 20, "commits before the crash")
        net.kill(leader)
        killed_at = time.monotonic()
        survivors = followers(net, leader)
        before = max(h for _, h in committed)
        wait_until(lambda: any((i := n.info()) is not None and i["height"] > before for n in survivors), 10,
                   "a commit after the leader was killed")
        recovery = time.monotonic() - killed_at
        new_leader = net.wait_leader(survivors, timeout=5)
        assert new_leader is not leader
        assert recovery < 2.0, f"first commit after kill -9 of the leader took {recovery:.2f} s"
        wait_until(lambda: len(committed) >= 120, 30, "commits under the new leader")
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not errors, errors
    for node in survivors:  # the follower may apply the last blocks just after the leader reported them: wait
        for tx_hash, height in committed:
            status = node.call("tx.wait", timeout=25, tx=tx_hash, timeout_ms=20000)
            assert status["status"] == "committed" and status["receipt"]["height"] == height


def test_kill_9_follower_then_restart_reaches_the_same_head(testnet3: Testnet) -> None:
    net = testnet3
    leader = net.wait_leader()
    victim = followers(net, leader)[0]
    net.kill(victim)
    for _ in range(15):  # more blocks than the leader keeps in its Raft log: the restart needs block sync
        assert all(o["status"] == "committed" for o in submit_and_wait(leader, new_txs(net, 10)))
    net.start(victim)
    net.wait_answering([victim])
    wait_until(lambda: same_head(net.nodes, 15), 20, "the restarted follower to reach the leader's head")
    outcomes = submit_and_wait(victim, new_txs(net, 5))  # and it takes part again
    assert all(o["status"] == "committed" for o in outcomes)


def test_five_nodes_survive_two_down_a_minority_never_commits_and_restart_agrees(testnet5: Testnet) -> None:
    net = testnet5
    leader = net.wait_leader()
    down = followers(net, leader)[:2]
    for node in down:
        assert net.stop(node) == 0
    up = [n for n in net.nodes if n not in down]
    assert all(o["status"] == "committed" for o in submit_and_wait(up[0], new_txs(net, 20)))
    # Stop two more: the last node alone is a minority and must not commit anything.
    lone = up[0]
    for node in up[1:3]:
        assert net.stop(node) == 0
    before = lone.info()
    assert before is not None
    results = lone.call("tx.submit_batch", txs=[t.hex() for t in new_txs(net, 5)])["results"]
    time.sleep(3)
    after = lone.info()
    assert after is not None and after["height"] == before["height"], "a lone minority committed a block"
    assert after["role"] != "leader" or after["term"] == before["term"]
    # Restart everything: all five agree, and the minority's pending transactions commit.
    for node in net.nodes:
        net.start(node)
    net.wait_answering(net.nodes)
    net.wait_leader(timeout=20)
    outcome = lone.call("tx.wait", timeout=30, tx=results[-1]["tx"], timeout_ms=20000)
    assert outcome["status"] == "committed"
    wait_until(lambda: same_head(net.nodes, outcome["receipt"]["height"]), 20, "all five nodes on one head")
