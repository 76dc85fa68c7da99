"""Bad peer input against a real 3-node testnet: dropped with a log line naming the peer, never a crash.

The nodes are real processes (the ``testnet3`` fixture of ``test_testnet``); the
attacker is a ``P2PService`` in the test process speaking libp2p to them. To speak
with a validator's key the test stops that node and runs the attacker with the key
from its data dir (a 2-of-3 majority keeps committing). A forged block cannot be
put into the log by a non-leader (followers append only what the leader of the
current term sends), so that case drives the apply path of in-process
``RaftDriver``s built from a testnet's own configs: every node must skip it alike.
Waits are bounded polls; blocking RPC calls run in a thread so the attacker's host
keeps serving its connections meanwhile.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from libp2p.utils.varint import encode_varint_prefixed

from hcnode import crypto
from hcnode.apps import default_apps
from hcnode.chain import BlockHeader, BlockInfo, build_tx, execute, sign_block
from hcnode.config import load_config
from hcnode.consensus import Entry, Message, MessageType
from hcnode.node.consensus_driver import RaftDriver, encode_message
from hcnode.node.daemon import resolve_genesis
from hcnode.node.node import Node
from hcnode.node.p2p import GOSSIPSUB_V11, RAFT_PROTOCOL, P2PService, peer_id_for_key
from hcnode.node.store import Store
from hcnode.testnet import Testnet, TestnetNode
from tests.integration import p2pkit
from tests.integration.p2pkit import cluster
from tests.integration.test_testnet import (  # noqa: F401 -- testnet3 is the shared fixture
    followers, new_txs, same_head, submit_and_wait, testnet3, wait_until, write_testnet_file,
)

pytestmark = pytest.mark.slow


# --- helpers ----------------------------------------------------------------------------------------

def node_key(node: TestnetNode) -> crypto.PrivateKey:
    return crypto.PrivateKey(bytes.fromhex((node.dir / "data" / "node.key").read_text().strip()))


def validators(net: Testnet) -> list[bytes]:
    return [node_key(n).public for n in net.nodes]


def p2p_addr(node: TestnetNode) -> str:
    config = load_config(node.config_path)
    assert config.p2p is not None
    return f"{config.p2p.listen[0]}/p2p/{peer_id_for_key(node_key(node).public)}"


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await trio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


def log_lines(node: TestnetNode, *fragments: str) -> list[str]:
    return [line for line in node.log_path.read_text(errors="replace").splitlines()
            if all(f in line for f in fragments)]


async def wait_for_log(node: TestnetNode, *fragments: str) -> str:
    await p2pkit.wait_until(lambda: bool(log_lines(node, *fragments)), 15,
                            f"node {node.index} to log a line with {fragments}")
    return log_lines(node, *fragments)[0]


def commits_go_on(net: Testnet, nodes: list[TestnetNode], entry: TestnetNode) -> int:
    """Submit to ``entry``; every transaction commits above the old heights and ``nodes`` share one head."""
    before = max(info["height"] for info in (n.info() for n in nodes) if info is not None)
    outcomes = submit_and_wait(entry, new_txs(net, 10))
    assert all(o["status"] == "committed" for o in outcomes), outcomes
    height = max(o["receipt"]["height"] for o in outcomes)
    assert height > before
    wait_until(lambda: same_head(nodes, height), 15, "the nodes to agree on the new head")
    return height


def leaders_and_terms(nodes: list[TestnetNode], timeout: float = 20.0) -> dict[int, tuple[Any, int]]:
    """Each node's (leader, term), once all of them agree (a node may learn of the leader a moment later)."""
    deadline = time.monotonic() + timeout
    while True:
        infos = {n.index: n.info() for n in nodes}
        assert all(i is not None for i in infos.values()), infos
        seen = {index: (info["leader"], info["term"]) for index, info in infos.items()}  # type: ignore[index]
        if len(set(seen.values())) == 1 and None not in next(iter(seen.values())) or time.monotonic() > deadline:
            return seen
        time.sleep(0.05)


def assert_running(nodes: list[TestnetNode]) -> None:
    for node in nodes:
        assert node.proc is not None and node.proc.poll() is None, f"node {node.index} exited:\n{node.log()}"


# --- real processes ---------------------------------------------------------------------------------

async def test_garbage_and_oversized_raft_frames_from_a_validator_key_are_logged_and_commits_go_on(
        testnet3: Testnet) -> None:  # noqa: F811
    net = testnet3
    leader = await in_thread(net.wait_leader)
    stolen = followers(net, leader)[-1]
    assert await in_thread(net.stop, stolen) == 0
    targets = [n for n in net.nodes if n is not stolen]
    key = node_key(stolen)
    config = load_config(leader.config_path)
    assert config.p2p is not None
    limit = config.p2p.max_frame_bytes
    garbage = (12).to_bytes(4, "big") + b"\xff" * 12
    oversized = (limit + 1).to_bytes(4, "big") + bytes(64)
    async with cluster() as c:
        attacker = await c.start(key, validators(net))
        assert attacker._host is not None
        for target in targets:
            await attacker.connect(p2p_addr(target))
            for wire in (garbage, oversized):
                stream = await attacker._host.new_stream(peer_id_for_key(node_key(target).public), [RAFT_PROTOCOL])
                await stream.write(wire)
        who = f"bad /hcnode/raft/1 frame from validator {key.public.hex()[:16]}"
        for target in targets:
            await wait_for_log(target, who, "not canonical CBOR")
            await wait_for_log(target, who, f"over the limit of {limit}")
        await in_thread(commits_go_on, net, targets, leader)
    assert_running(targets)


async def test_a_non_validators_raft_stream_is_refused_with_a_log_line_and_commits_go_on(
        testnet3: Testnet) -> None:  # noqa: F811
    net = testnet3
    leader = await in_thread(net.wait_leader)
    before = await in_thread(leaders_and_terms, net.nodes)
    outsider = crypto.PrivateKey.generate()
    async with cluster() as c:
        attacker = await c.start(outsider, validators(net))
        for target in net.nodes:
            await attacker.connect(p2p_addr(target))
            target_key = node_key(target).public
            term = before[target.index][1] + 100  # a well-formed vote request that would depose the leader
            attacker.send(target_key, encode_message(Message(MessageType.VOTE, outsider.public, target_key,
                                                             term=term, log_term=term, index=10**6)))
        for target in net.nodes:
            await wait_for_log(target, f"refused a /hcnode/raft/1 stream from observer {outsider.public.hex()[:16]}",
                               "not a genesis validator")
        await in_thread(commits_go_on, net, net.nodes, leader)
    assert await in_thread(leaders_and_terms, net.nodes) == before
    assert_running(net.nodes)


async def test_a_malformed_gossipsub_message_from_an_outsider_is_logged_and_commits_go_on(
        testnet3: Testnet) -> None:  # noqa: F811
    net = testnet3
    leader = await in_thread(net.wait_leader)
    outsider = crypto.PrivateKey.generate()
    async with cluster() as c:
        attacker = await c.start(outsider, validators(net))
        assert attacker._host is not None
        for target in net.nodes:
            await attacker.connect(p2p_addr(target))
            stream = await attacker._host.new_stream(peer_id_for_key(node_key(target).public), [GOSSIPSUB_V11])
            await stream.write(encode_varint_prefixed(b"\xff" * 6))  # not a protobuf RPC
        for target in net.nodes:
            await wait_for_log(target, f"undecodable gossipsub RPC from observer {outsider.public.hex()[:16]}",
                               "disconnecting it")
        await in_thread(commits_go_on, net, net.nodes, leader)
    assert_running(net.nodes)


async def test_stale_term_raft_messages_are_ignored_with_a_log_line_and_the_leader_stays(
        testnet3: Testnet) -> None:  # noqa: F811
    net = testnet3
    old_leader = await in_thread(net.wait_leader)
    assert await in_thread(net.stop, old_leader) == 0  # a new election moves the cluster to a later term
    survivors = followers(net, old_leader)
    leader = await in_thread(net.wait_leader, survivors, timeout=20)
    before = await in_thread(leaders_and_terms, survivors)
    term = before[leader.index][1]
    assert term >= 2 and all(t == term for _, t in before.values()), before
    key = node_key(old_leader)  # the deposed leader's key, speaking from its old terms
    async with cluster() as c:
        attacker = await c.start(key, validators(net))
        for target in survivors:
            await attacker.connect(p2p_addr(target))
            to = node_key(target).public
            for stale in sorted({1, term - 1}):
                for message in (
                    Message(MessageType.PRE_VOTE, key.public, to, term=stale, log_term=stale, index=10**6),
                    Message(MessageType.VOTE, key.public, to, term=stale, log_term=stale, index=10**6),
                    Message(MessageType.APP, key.public, to, term=stale, log_term=0, index=0, commit=10**6,
                            entries=(Entry(term=stale, index=1, data=b"an old leader's entry"),)),
                    Message(MessageType.HEARTBEAT, key.public, to, term=stale, commit=10**6),
                ):
                    attacker.send(to, encode_message(message))
        for target in survivors:
            line = await wait_for_log(target, "ignored a stale raft", f"from {key.public.hex()[:16]}")
            assert f"< our term {term}" in line, line
        await in_thread(commits_go_on, net, survivors, leader)
    assert await in_thread(leaders_and_terms, survivors) == before
    assert_running(survivors)


# --- the apply path, in process ---------------------------------------------------------------------

async def test_a_committed_forged_block_is_skipped_by_every_node_alike_and_the_next_block_applies(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    net = Testnet(write_testnet_file(tmp_path, 3))
    net.prepare()  # the testnet's own configs, keys and genesis; no processes
    drivers: list[RaftDriver] = []
    stores: list[Store] = []
    try:
        for member in net.nodes:
            config = load_config(member.config_path)
            assert config.p2p is not None
            key = node_key(member)
            genesis = resolve_genesis(config, key, announce=lambda m: None)
            stores.append(Store(config.data_dir / "db"))
            node = Node(config, default_apps(), key, genesis, stores[-1])
            p2p = P2PService(key=key, chain_id=config.chain_id, validators=genesis.validators, params=config.p2p)
            drivers.append(RaftDriver(node, p2p, genesis.validators, config.consensus))
        proposer = drivers[0].node
        chain_id = proposer.chain_id
        outsider = crypto.PrivateKey.generate()
        head = proposer.block_at(0)
        assert head is not None
        tx = build_tx(crypto.PrivateKey.generate(), chain_id, "registry.patient_register", 0, {})

        def block_by(claimed: bytes, signer: crypto.PrivateKey):  # type: ignore[no-untyped-def]
            info = BlockInfo(chain_id, 1, head.header.time_ms + 1, claimed)
            result = execute(proposer.store, proposer.apps, info, [tx], proposer.store.state_root)
            header = BlockHeader(chain_id, 1, head.hash, info.time_ms, result.tx_root, result.receipt_root,
                                 result.state_root, claimed)
            return sign_block(signer, header, [tx])

        good = block_by(proposer.key.public, proposer.key)
        forged_signature = block_by(proposer.key.public, outsider)  # claims a validator, signed by another key
        non_validator = block_by(outsider.public, outsider)  # honestly signed by a key not in genesis
        entries = [Entry(term=2, index=1, data=b"\x00 not a block"),
                   Entry(term=2, index=2, data=forged_signature.encode()),
                   Entry(term=2, index=3, data=non_validator.encode()),
                   Entry(term=2, index=4, data=good.encode())]
        for driver in drivers:
            for entry in entries:
                await driver._apply_entry(entry)
        for driver in drivers:
            assert driver.node.halted is None
            assert driver.skipped_blocks == 3
            assert (driver.node.head.height, driver.node.head.hash) == (1, good.hash)
        messages = [r.getMessage() for r in caplog.records]
        assert sum("entry 1 holds no valid block" in m for m in messages) == 3
        for index, proposer_key in ((2, proposer.key.public), (3, outsider.public)):
            assert sum(f"entry {index}: block 1 skipped (bad_block)" in m for m in messages) == 3, messages
            assert sum("skipping committed block 1" in m and f"proposed by {proposer_key.hex()[:16]}" in m
                       for m in messages) >= 3, messages
    finally:
        for store in stores:
            store.close()



class _PosingAs:
    """A 'private key' that only knows a public key: all the plaintext handshake ever asks of it."""

    def __init__(self, public: Any) -> None:
        self._public = public

    def get_public_key(self) -> Any:
        return self._public


async def test_a_peer_cannot_claim_a_validators_identity_without_its_secret_key() -> None:
    """libp2p's plaintext channel takes a claimed key on trust; a node must accept only channels that prove it."""
    from libp2p import new_host
    from libp2p.crypto.keys import KeyPair
    from libp2p.crypto.secp256k1 import Secp256k1PrivateKey, Secp256k1PublicKey
    from libp2p.custom_types import TProtocol
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
    from multiaddr import Multiaddr

    from hcnode.node.framing import encode_frame

    node_key_, victim = p2pkit.keys(2)
    async with cluster() as c:
        node = await c.start(node_key_, [node_key_.public, victim.public])
        # The impostor knows the victim's PUBLIC key (it is in genesis) and nothing else of it.
        victim_public = Secp256k1PublicKey.from_bytes(victim.public)
        own = Secp256k1PrivateKey.from_bytes(crypto.PrivateKey.generate().secret)
        posing = InsecureTransport(KeyPair(_PosingAs(victim_public), victim_public))  # type: ignore[arg-type]
        host = new_host(key_pair=KeyPair(own, own.get_public_key()), muxer_preference="YAMUX",
                        sec_opt={TProtocol(PLAINTEXT_PROTOCOL_ID): posing})
        async with host.run(listen_addrs=[Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            refused = None
            try:
                with trio.fail_after(10):
                    await host.connect(info_from_p2p_addr(Multiaddr(node.listen_addrs()[0])))
                    stream = await host.new_stream(node.peer_id, [RAFT_PROTOCOL])
                    await stream.write(encode_frame(b"a vote in the victim's name", 1 << 20))
            except Exception as exc:  # noqa: BLE001 -- libp2p raises several types for a refused handshake
                refused = exc
            with trio.move_on_after(1):
                sender, payload = await node.raft_inbound.receive()
                pytest.fail(f"an impostor was taken for validator {sender.hex()[:16]}: {payload!r}")
            assert refused is not None
            assert victim.public not in node.connected_keys()
            await host.close()
