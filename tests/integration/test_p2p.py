"""The p2p layer over real loopback sockets: hosts in one process, driven through the public API.

Covers: connecting by bootstrap (2 and 3 hosts), peer id <-> validator key, Raft
payloads both ways and in order, block sync, refusal of a non-validator's Raft
stream, garbage and oversized frames resetting only that stream, at most 4 sync streams per peer, gossip of tx
batches past the library's default rate limit, an undecodable gossipsub RPC (that peer is
dropped, the node goes on), whole gossipsub RPCs under concurrent writers, and shutdown
without leaked sockets.
"""

from __future__ import annotations

import gc
import logging
import warnings

import pytest
import trio

from hcnode import codec
from hcnode.node.framing import FrameReader, encode_frame
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol
from libp2p.network.stream.exceptions import StreamError
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11 as GOSSIPSUB_V11
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.utils.varint import read_varint_prefixed_bytes_limited

from hcnode.node.p2p import (
    RAFT_PROTOCOL, SYNC_PROTOCOL, SYNC_PROTOCOL_V1, PeerRequestError, key_for_peer_id, peer_id_for_key,
)
from tests.integration.p2pkit import cluster, keys, wait_until

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

BLOCKS = {h: codec.encode(["block", h, bytes(200)]) for h in range(0, 20)}


async def test_two_hosts_connect_by_bootstrap_and_peer_ids_are_validator_keys() -> None:
    a_key, b_key = keys(2)
    validators = [a_key.public, b_key.public]
    async with cluster() as c:
        a = await c.start(a_key, validators)
        b = await c.start(b_key, validators, bootstrap=tuple(a.listen_addrs()))
        await wait_until(lambda: a.connected_keys() == [b_key.public] and b.connected_keys() == [a_key.public],
                         what="both sides connected")
        assert a.peer_id == peer_id_for_key(a_key.public)
        assert key_for_peer_id(a.peer_id) == a_key.public
        assert key_for_peer_id(peer_id_for_key(b_key.public)) == b_key.public
        assert all(addr.endswith(f"/p2p/{a.peer_id}") for addr in a.listen_addrs())


async def test_three_hosts_form_a_full_mesh_and_raft_flows_both_ways_in_order() -> None:
    ks = keys(3)
    validators = [k.public for k in ks]
    async with cluster() as c:
        a = await c.start(ks[0], validators)
        b = await c.start(ks[1], validators, bootstrap=tuple(a.listen_addrs()))
        cc = await c.start(ks[2], validators, bootstrap=tuple(a.listen_addrs() + b.listen_addrs()))
        await wait_until(lambda: len(a.connected_keys()) == 2 and len(b.connected_keys()) == 2
                         and len(cc.connected_keys()) == 2, what="a full mesh of 3")
        # a -> b and a -> c, c -> a, b -> a: 300 numbered messages each, order kept per sender.
        for i in range(300):
            a.send(ks[1].public, b"a%d" % i)
            a.send(ks[2].public, b"a%d" % i)
            cc.send(ks[0].public, b"c%d" % i)
            b.send(ks[0].public, b"b%d" % i)
        for receiver, expected in ((b, {ks[0].public: b"a"}), (cc, {ks[0].public: b"a"}),
                                   (a, {ks[1].public: b"b", ks[2].public: b"c"})):
            got: dict[bytes, list[bytes]] = {k: [] for k in expected}
            with trio.fail_after(10):
                while any(len(v) < 300 for v in got.values()):
                    sender, payload = await receiver.raft_inbound.receive()
                    got[sender].append(payload)
            for sender, prefix in expected.items():
                assert got[sender] == [prefix + b"%d" % i for i in range(300)]


async def test_sync_fetch_returns_the_providers_blocks() -> None:
    async with cluster() as c:
        a, b = await c.start_pair(blocks=BLOCKS)
        assert await b.fetch_blocks(a.public, 3, 5) == [BLOCKS[h] for h in range(3, 8)]
        assert await b.fetch_blocks(a.public, 18, 10) == [BLOCKS[18], BLOCKS[19]]
        assert await b.fetch_blocks(a.public, 50, 10) == []
        assert b.peer_head() == 19  # /hcnode/sync/2 answers carry the server's head, with or without blocks
        # One long-lived stream: many requests in a row, and concurrent callers queue on it.
        results: list[list[bytes]] = []
        async with trio.open_nursery() as n:
            for h in range(10):
                n.start_soon(lambda h=h: _append(results, b.fetch_blocks(a.public, h, 1)))
        assert sorted(r[0] for r in results) == sorted(BLOCKS[h] for h in range(10))


async def test_sync_1_is_still_served_and_spoken_to_a_peer_that_offers_nothing_newer() -> None:
    """/hcnode/sync/2 added the server's head to the answer. A requester that speaks only /1 gets the
    old answer; a server that serves only /1 is still fetched from, its head then unknown."""
    async with cluster() as c:
        a, b = await c.start_pair(blocks=BLOCKS)
        assert b._host is not None and a._host is not None
        for protocol, expected in ((SYNC_PROTOCOL_V1, {"blocks": [BLOCKS[2]]}),
                                   (SYNC_PROTOCOL, {"blocks": [BLOCKS[2]], "head": 19})):
            raw = await b._host.new_stream(a.peer_id, [protocol])
            await raw.write(encode_frame({"start": 2, "count": 1}, 1 << 20))
            assert await FrameReader(raw, 1 << 20).read_frame() == expected
            await raw.close()

        a._host.get_mux().remove_handler(SYNC_PROTOCOL)  # a is now an older node
        c2 = await c.start(keys(3)[2], [a.public, b.public], bootstrap=tuple(a.listen_addrs()))
        await wait_until(lambda: a.public in c2.connected_keys(), what="a new requester connected")
        assert await c2.fetch_blocks(a.public, 18, 5) == [BLOCKS[18], BLOCKS[19]]
        assert c2.peer_head() is None


@pytest.mark.parametrize("answer", [{"blocks": []}, {"blocks": [], "head": "19"}, {"blocks": [], "head": -2},
                                    {"blocks": [], "head": 19, "term": 3}],
                         ids=["no_head", "head_not_int", "head_below_-1", "unknown_key"])
async def test_a_sync_answer_without_a_valid_head_is_refused(answer: dict[str, object],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """A server that negotiated /hcnode/sync/2 must say its head, as a height."""
    async def serve(stream: INetStream) -> None:
        await FrameReader(stream, 1 << 20).read_frame()
        await stream.write(encode_frame(answer, 1 << 20))

    async with cluster() as c:
        a, b = await c.start_pair(blocks=BLOCKS)
        assert a._host is not None
        a._host.set_stream_handler(SYNC_PROTOCOL, serve)  # a server that breaks the rule
        with caplog.at_level(logging.WARNING, logger="hcnode"), pytest.raises(PeerRequestError):
            await b.fetch_blocks(a.public, 0, 1)
        assert "bad /hcnode/sync/2 answer" in caplog.text and b.peer_head() is None


async def _append(results: list, awaitable) -> None:  # type: ignore[no-untyped-def]
    results.append(await awaitable)


async def test_a_sync_request_that_may_wait_is_answered_as_soon_as_the_block_is_there() -> None:
    blocks = dict(BLOCKS)  # heights 0..19
    waiting: list[int] = []
    new_block = {"event": trio.Event()}

    async def wait_for_block(height: int) -> None:
        waiting.append(height)
        while height not in blocks:
            await new_block["event"].wait()

    async with cluster() as c:
        a, b = await c.start_pair(blocks=blocks, wait_for_block=wait_for_block)
        assert await b.fetch_blocks(a.public, 20, 5) == [] and waiting == []  # no wait_ms: answered at once
        answers: list[list[bytes]] = []

        async def fetch() -> None:
            answers.append(await b.fetch_blocks(a.public, 20, 5, wait_ms=5000))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(fetch)
            await wait_until(lambda: waiting == [20], what="the server to wait for block 20")
            assert answers == []
            blocks[20] = codec.encode(["block", 20])
            committed_at = trio.current_time()
            new_block["event"].set()
        assert answers == [[blocks[20]]]
        assert trio.current_time() - committed_at < 2, "answered at the block, not at wait_ms"
        new_block["event"] = trio.Event()
        started = trio.current_time()
        assert await b.fetch_blocks(a.public, 21, 5, wait_ms=300) == []  # no block 21: empty after wait_ms
        assert trio.current_time() - started >= 0.3


async def test_sync_answer_stops_before_the_frame_limit() -> None:
    big = {h: bytes([h]) * 40_000 for h in range(10)}
    async with cluster() as c:
        a, b = await c.start_pair(blocks=big, max_frame_bytes=100_000)
        assert await b.fetch_blocks(a.public, 0, 10) == [big[0], big[1]]
        assert await b.fetch_blocks(a.public, 2, 10) == [big[2], big[3]]


async def test_a_peer_may_hold_only_a_few_sync_streams_at_once(caplog: pytest.LogCaptureFixture) -> None:
    """Each served stream can hold a waiting request (up to 5 s) and an answer of up to a frame: a peer
    opening streams without end must not tie up the server. The fifth is reset; closing one frees a place."""
    waiting: list[int] = []

    async def wait_for_block(height: int) -> None:
        waiting.append(height)
        await trio.sleep_forever()

    async with cluster() as c:
        a, b = await c.start_pair(blocks=dict(BLOCKS), wait_for_block=wait_for_block)
        request = encode_frame({"start": 99, "count": 1, "wait_ms": 5000}, 1 << 20)
        streams = []
        for _ in range(4):  # a misbehaving peer: four streams, each holding a waiting request
            stream = await b._open_stream(a.public, SYNC_PROTOCOL)
            await stream.write(request)
            streams.append(stream)
        await wait_until(lambda: len(waiting) == 4, what="four waiting requests")
        with caplog.at_level(logging.WARNING, logger="hcnode"):
            with trio.fail_after(10), pytest.raises((PeerRequestError, StreamError, ConnectionError)):  # reset: no answer
                fifth = await b._open_stream(a.public, SYNC_PROTOCOL)
                await fifth.write(request)
                if not await fifth.read(1):
                    raise ConnectionError("closed without an answer")
        assert any("opened more than 4 sync streams" in r.getMessage() for r in caplog.records)
        assert len(waiting) == 4
        await streams[0].reset()
        await wait_until(lambda: sum(a._sync_streams.values()) == 3, what="the server to drop the closed stream")
        assert await b.fetch_blocks(a.public, 0, 2) == [BLOCKS[0], BLOCKS[1]]  # a place is free again
        for stream in streams[1:]:
            await stream.reset()


async def test_a_non_validators_raft_stream_is_refused_but_it_may_sync(caplog: pytest.LogCaptureFixture) -> None:
    a_key, b_key, outsider_key = keys(3)
    validators = [a_key.public, b_key.public]
    caplog.set_level(logging.INFO, logger="hcnode.p2p")
    async with cluster() as c:
        a = await c.start(a_key, validators, blocks=BLOCKS)
        outsider = await c.start(outsider_key, validators, bootstrap=tuple(a.listen_addrs()))
        await wait_until(lambda: a_key.public in outsider.connected_keys(), what="outsider connected")
        outsider.send(a_key.public, b"vote for me")
        await wait_until(lambda: "not a genesis validator" in caplog.text, what="the refusal log line")
        assert f"observer {outsider_key.public.hex()[:16]}" in caplog.text
        assert await outsider.fetch_blocks(a_key.public, 0, 2) == [BLOCKS[0], BLOCKS[1]]
        with trio.move_on_after(0.3):
            sender, payload = await a.raft_inbound.receive()
            pytest.fail(f"a non-validator's message was delivered: {payload!r}")


@pytest.mark.parametrize("bad", ["garbage", "oversized", "not_bytes", "truncated_then_reset"])
async def test_a_bad_raft_frame_resets_only_that_stream(bad: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hcnode.p2p")
    async with cluster() as c:
        a, b = await c.start_pair(blocks=BLOCKS, max_frame_bytes=200_000)
        b.send(a.public, b"before")
        assert await a.raft_inbound.receive() == (b.public, b"before")

        assert b._host is not None
        raw = await b._host.new_stream(a.peer_id, [RAFT_PROTOCOL])
        wire = {
            "garbage": (12).to_bytes(4, "big") + b"\xff" * 12,
            "oversized": (200_001).to_bytes(4, "big") + b"\x00" * 64,
            "not_bytes": encode_frame({"term": 3}, 200_000),
            "truncated_then_reset": (100).to_bytes(4, "big") + b"\x58",
        }[bad]
        await raw.write(wire)
        if bad == "truncated_then_reset":
            await raw.reset()
            # A reset arrives as the end of the stream (yamux): "ended inside a frame", logged and dropped.
            await wait_until(lambda: "/hcnode/raft/1 frame from validator" in caplog.text
                             or "raft/1 stream from validator" in caplog.text, what="the log line")
        else:
            await wait_until(lambda: "bad /hcnode/raft/1 frame from validator" in caplog.text,
                             what="the bad-frame log line")
            assert b.public.hex()[:16] in caplog.text
            with trio.fail_after(5):  # the stream was reset by a: reading it fails
                with pytest.raises(Exception):  # noqa: B017 -- libp2p raises several types for a reset stream
                    while await raw.read(1024):
                        pass
        # The node keeps serving: the good stream still delivers, sync still answers.
        b.send(a.public, b"after")
        with trio.fail_after(5):
            assert await a.raft_inbound.receive() == (b.public, b"after")
        assert await b.fetch_blocks(a.public, 1, 1) == [BLOCKS[1]]


@pytest.mark.parametrize("request_", [{"start": 0, "count": 10_000}, {"start": 0, "count": 1, "wait_ms": 10**6},
                                      {"start": 0, "count": 1, "wait": 10}], ids=["count", "wait_ms", "unknown_key"])
async def test_a_bad_sync_request_resets_that_stream_and_the_server_goes_on(
        request_: dict[str, int], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hcnode.p2p")
    async with cluster() as c:
        a, b = await c.start_pair(blocks=BLOCKS)
        assert b._host is not None
        raw = await b._host.new_stream(a.peer_id, [SYNC_PROTOCOL])
        await raw.write(encode_frame(request_, 1 << 20))
        await wait_until(lambda: "bad /hcnode/sync/2 request" in caplog.text, what="the log line")
        assert await b.fetch_blocks(a.public, 0, 1) == [BLOCKS[0]]


@pytest.mark.parametrize("rate", [500, 10], ids=["configured", "library_default_drops"])
async def test_gossip_batches_reach_every_subscriber_past_the_default_rate_limit(rate: int) -> None:
    ks = keys(3)
    validators = [k.public for k in ks]
    async with cluster() as c:
        a = await c.start(ks[0], validators, gossip_max_msgs_per_s=rate)
        b = await c.start(ks[1], validators, gossip_max_msgs_per_s=rate, bootstrap=tuple(a.listen_addrs()))
        cc = await c.start(ks[2], validators, gossip_max_msgs_per_s=rate, bootstrap=tuple(a.listen_addrs() + b.listen_addrs()))
        await wait_until(lambda: all(len(s.connected_keys()) == 2 for s in (a, b, cc)), what="a full mesh")
        assert a._pubsub is not None
        await wait_until(lambda: len(a._pubsub.peer_topics.get(a.topic, ())) == 2, what="both peers subscribed")
        # 60 batches in well under a second: the library's default (10 msgs/s per peer and
        # topic) would drop most of them; our router is configured for this load.
        sent = [[b"tx-%d-%d" % (i, j) for j in range(50)] for i in range(60)]
        for batch in sent:
            await a.publish_txs(batch)
        for receiver in (b, cc):
            got = []
            with trio.move_on_after(10 if rate > 10 else 2):
                while len(got) < len(sent):
                    origin, txs = await receiver.tx_batches.receive()
                    assert origin == ks[0].public
                    got.append(txs)
            if rate > 10:
                assert sorted(got) == sorted(sent)
            else:  # the library's default: most of the burst is dropped, silently
                assert len(got) < len(sent) / 2
        assert b.gossip_dropped == 0 and cc.gossip_dropped == 0


async def test_a_garbage_gossip_message_is_rejected_and_not_delivered(caplog: pytest.LogCaptureFixture) -> None:
    a_key, b_key = keys(2)
    validators = [a_key.public, b_key.public]
    caplog.set_level(logging.INFO, logger="hcnode.p2p")
    async with cluster() as c:
        a = await c.start(a_key, validators)
        b = await c.start(b_key, validators, bootstrap=tuple(a.listen_addrs()))
        await wait_until(lambda: a._pubsub is not None and len(a._pubsub.peer_topics.get(a.topic, ())) == 1,
                         what="b subscribed")
        assert a._pubsub is not None
        a._pubsub.topic_validators.pop(a.topic)  # let a publish what an attacker would
        await a._pubsub.publish(a.topic, b"\xff\x00 not cbor")
        await a._pubsub.publish(a.topic, codec.encode(["ok", 7]))
        await a.publish_txs([b"good"])
        with trio.fail_after(10):
            assert await b.tx_batches.receive() == (a_key.public, [b"good"])
        # validation of the two bad messages may finish after the good one is delivered
        await wait_until(lambda: b.gossip_rejected == 2, what="both bad messages rejected")
        assert "rejected a tx batch forwarded by validator" in caplog.text


async def test_a_batch_published_before_the_mesh_forms_still_reaches_every_subscribed_peer() -> None:
    # The library sends a publish to the topic's mesh only; right after a peer (re)connects the
    # mesh can be empty (the GRAFT or heartbeat not yet processed) and the batch reached nobody.
    async with cluster() as c:
        a, b = await c.start_pair()
        await wait_until(lambda: a._pubsub is not None and len(a._pubsub.peer_topics.get(a.topic, ())) == 1,
                         what="b subscribed")
        assert a._pubsub is not None
        router = a._pubsub.router
        assert isinstance(router, GossipSub)
        router.mesh[a.topic] = set()  # as before the first heartbeat or GRAFT
        await a.publish_txs([b"early"])
        with trio.fail_after(10):
            assert await b.tx_batches.receive() == (a.public, [b"early"])


async def test_an_undecodable_gossipsub_rpc_drops_that_peer_and_the_node_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    # The library's reader raised protobuf's DecodeError out of the connection's nursery, which
    # stopped the whole libp2p host: any peer could take a node off the network with one frame.
    caplog.set_level(logging.INFO, logger="hcnode.p2p")
    async with cluster() as c:
        a, b = await c.start_pair(blocks=BLOCKS)
        await wait_until(lambda: a._pubsub is not None and len(a._pubsub.peer_topics.get(a.topic, ())) == 1,
                         what="b subscribed")
        assert b._host is not None
        raw = await b._host.new_stream(a.peer_id, [GOSSIPSUB_V11])
        await raw.write(bytes([12]) + b"\xff" * 12)  # a varint length, then no valid protobuf
        await wait_until(lambda: "undecodable gossipsub RPC from validator" in caplog.text, what="the log line")
        # a is still up and dropped b, which redials: raft, sync and gossip all work again
        await wait_until(lambda: "redialling" in caplog.text, what="b saw the disconnect")
        await wait_until(lambda: a.public in b.connected_keys(), what="b reconnected")
        b.send(a.public, b"after")
        with trio.fail_after(10):
            assert await a.raft_inbound.receive() == (b.public, b"after")
        assert await b.fetch_blocks(a.public, 1, 1) == [BLOCKS[1]]
        await wait_until(lambda: a._pubsub is not None and len(a._pubsub.peer_topics.get(a.topic, ())) == 1,
                         what="b subscribed again")
        await b.publish_txs([b"good"])
        with trio.fail_after(10):
            assert await a.tx_batches.receive() == (b.public, [b"good"])


async def test_concurrent_gossipsub_writes_to_one_stream_arrive_whole() -> None:
    # The library writes to a peer's pubsub stream from its sender task and, on (re)connect,
    # directly; yamux cuts each write into 64 KiB frames, so unserialised writers interleave.
    a_key, b_key = keys(2)
    validators = [a_key.public, b_key.public]
    echo = TProtocol("/hcnode-test/rpc-sink/1")
    received: list[rpc_pb2.RPC] = []

    async def sink(stream: INetStream) -> None:
        for _ in range(4):
            rpc = rpc_pb2.RPC()
            rpc.ParseFromString(await read_varint_prefixed_bytes_limited(stream, 1 << 21))
            received.append(rpc)

    async with cluster() as c:
        a = await c.start(a_key, validators)
        b = await c.start(b_key, validators, bootstrap=tuple(a.listen_addrs()))
        await wait_until(lambda: a._pubsub is not None and b._pubsub is not None and
                         a_key.public in b.connected_keys(), what="connected")
        assert a._host is not None and b._pubsub is not None
        a._host.set_stream_handler(echo, sink)
        stream = await b._host.new_stream(a.peer_id, [echo])  # type: ignore[union-attr]
        rpcs = [rpc_pb2.RPC(publish=[rpc_pb2.Message(data=bytes([n]) * 600_000, topicIDs=["t"])])
                for n in range(4)]
        async with trio.open_nursery() as writers:
            for rpc in rpcs:
                writers.start_soon(b._pubsub.write_msg, stream, rpc)
        await wait_until(lambda: len(received) == 4, what="four whole RPCs")
        assert sorted(r.publish[0].data[0] for r in received) == [0, 1, 2, 3]
        assert all(len(set(r.publish[0].data)) == 1 for r in received)


async def test_a_slow_peer_never_blocks_send_and_the_oldest_frames_are_dropped() -> None:
    a_key, b_key = keys(2)
    validators = [a_key.public, b_key.public]
    async with cluster() as c:
        a = await c.start(a_key, validators, send_queue_frames=10)
        # b is not running at all: every frame waits in a's bounded queue.
        with trio.fail_after(1):
            results = [a.send(b_key.public, b"m%d" % i) for i in range(25)]
        assert results == [True] * 10 + [False] * 15
        link = a._links[b_key.public]
        assert list(link.frames)[0].endswith(b"m15") and link.dropped == 15


async def test_a_peer_that_restarts_is_redialled_and_raft_resumes() -> None:
    a_key, b_key = keys(2)
    validators = [a_key.public, b_key.public]
    async with cluster() as c:
        a = await c.start(a_key, validators)
        b = await c.start(b_key, validators, bootstrap=tuple(a.listen_addrs()))
        await wait_until(lambda: a_key.public in b.connected_keys(), what="b connected")
        b.send(a_key.public, b"one")
        assert await a.raft_inbound.receive() == (b_key.public, b"one")
        listen = tuple(a.listen_addrs())
        port_addr = listen[0].split("/p2p/")[0]
        c.stop(a)
        await wait_until(lambda: not b.connected_keys(), what="b sees a gone")
        a2 = await c.start(a_key, validators, listen=(port_addr,))
        await wait_until(lambda: a_key.public in b.connected_keys(), what="b redialled a", timeout_s=15)
        b.send(a_key.public, b"two")
        with trio.fail_after(10):
            assert (await a2.raft_inbound.receive())[1] in (b"two",)


async def test_shutdown_leaves_no_unclosed_sockets() -> None:
    a_key, b_key = keys(2)
    validators = [a_key.public, b_key.public]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for stop_dialler_first in (True, False):
            async with cluster() as c:
                a = await c.start(a_key, validators, blocks=BLOCKS)
                b = await c.start(b_key, validators, bootstrap=tuple(a.listen_addrs()))
                await wait_until(lambda: a_key.public in b.connected_keys(), what="connected")
                b.send(a_key.public, b"x")
                await a.raft_inbound.receive()
                await b.fetch_blocks(a_key.public, 0, 1)
                c.stop(b if stop_dialler_first else a)
            gc.collect()
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, [str(w.message) for w in leaks]


async def test_mdns_finds_a_peer_and_its_handler_is_removed_on_stop() -> None:
    from libp2p.discovery.events.peerDiscovery import peerDiscovery

    handlers_before = len(peerDiscovery._peer_discovered_handlers)
    a_key, b_key = keys(2)
    validators = [a_key.public, b_key.public]
    async with cluster() as c:
        a = await c.start(a_key, validators, mdns=True)
        b = await c.start(b_key, validators, mdns=True)
        await wait_until(lambda: a_key.public in b.connected_keys() or b_key.public in a.connected_keys(),
                         what="mDNS discovery (needs multicast on the machine)")
        b.send(a_key.public, b"found you")
        with trio.fail_after(10):
            assert await a.raft_inbound.receive() == (b_key.public, b"found you")
    assert len(peerDiscovery._peer_discovered_handlers) == handlers_before
