"""The peer-to-peer layer: one libp2p host, its stream protocols and transaction gossip, as a trio service.

Owns: the node's libp2p identity (it IS the validator key), finding peers
(bootstrap addresses with reconnection, mDNS on a LAN), who may open which
protocol, the wire form of ``/hcnode/raft/1`` and ``/hcnode/sync/2`` (and ``/1``), per-peer
send queues, and the gossipsub router and topic for transaction batches.
Must not know: Raft (payloads are opaque bytes), what a block or transaction
means (they are opaque bytes too; the node verifies them), or the store.

Protocols (every frame: 4-byte big-endian length + canonical CBOR, see ``framing``):

    /hcnode/raft/1   one long-lived stream per direction per peer pair; each frame is
                     a CBOR byte string holding one opaque Raft message. Only genesis
                     validators may open it (``validators_only_raft``).
    /hcnode/sync/2   request/response on a long-lived stream: the requester sends
                     {"start": h, "count": n} and optionally "wait_ms": w; the server answers
                     {"blocks": [bytes, ...], "head": its height}, consecutive blocks from h,
                     stopping at the first missing height, at ``count`` or before the frame
                     would exceed ``max_frame_bytes``; or {"error": text}. With ``wait_ms`` and
                     no block h yet, the server answers as soon as it has one, or after w ms (a
                     long poll: observers follow the head without polling). Any key may open it.
    /hcnode/sync/1   the same without "head" in the answer; still served, and spoken to a peer
                     that offers nothing newer (the head is then unknown).
    gossipsub        topic ``/hcnode/<chain_id>/txs/1``; each message is a CBOR list of
                     byte strings (raw transactions), bounded in count and bytes.

Decisions:
- Noise is the only secure channel offered or accepted (``_security``): py-libp2p's default list
  also has plaintext, whose handshake proves nothing, so a validator could be impersonated.
- Observers need not be registered: any key may connect, sync blocks and gossip
  transactions (transactions are signed and checked by the node; the chain holds
  no PHI). Only the Raft protocol is restricted to genesis validators. A registry
  role for observers can narrow this later without changing the wire.
- Raft sends never block the caller: ``send`` puts the frame in a bounded per-peer
  queue and returns. When the queue is full the OLDEST frame is dropped (counted in
  ``stats``): Raft tolerates lost messages and retries, and the newest messages
  carry the newest term and commit index, whereas disconnecting would also throw
  away the queue and cost a reconnect. The frames of a write that fails are sent
  once more on the reopened stream, so Raft may see a duplicate (which it
  tolerates) and loses nothing to a stream that died quietly.
- Inbound Raft frames go into one bounded channel; a full channel makes the
  reading task wait (back-pressure on that peer's stream only), never drops.
- Publishing waits (bounded) for room in a peer's gossip queue only while that
  peer drains it: a peer that stops reading (hung, swapped out, or an observer,
  which any key may be) is skipped after ``GOSSIP_STALL_S`` and its copies are
  dropped by the library, so it cannot slow the relay to everyone else.
- Gossip is best effort (the library drops when its queues fill): a transaction
  that misses a validator is still in the submitting node's mempool, and the
  consensus layer must not depend on gossip for liveness.
"""

from __future__ import annotations

import contextlib
import logging
import random
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import multiaddr
import trio
from google.protobuf.message import DecodeError
from libp2p import new_host
from libp2p.abc import IHost, INetStream
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.secp256k1 import Secp256k1PrivateKey, Secp256k1PublicKey
from libp2p.crypto.x25519 import create_new_key_pair as create_new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.discovery.events.peerDiscovery import peerDiscovery
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID as GOSSIPSUB_V10
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11 as GOSSIPSUB_V11
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.tools.anyio_service import background_trio_service

from hcnode import codec, crypto
from hcnode.config import P2PParams
from hcnode.node.framing import FrameError, FrameReader, FrameTruncated, encode_frame

__all__ = [
    "RAFT_PROTOCOL", "SYNC_PROTOCOL", "SYNC_PROTOCOL_V1", "P2PService", "PeerRequestError", "peer_id_for_key", "key_for_peer_id",
    "tx_topic", "encode_tx_batch", "decode_tx_batch",
]

log = logging.getLogger("hcnode.p2p")

RAFT_PROTOCOL = TProtocol("/hcnode/raft/1")
SYNC_PROTOCOL = TProtocol("/hcnode/sync/2")
SYNC_PROTOCOL_V1 = TProtocol("/hcnode/sync/1")  # answers without "head"

RECONNECT_MIN_S = 0.1
RECONNECT_MAX_S = 5.0
CONNECTED_CHECK_S = 0.5
WRITE_CHUNK_BYTES = 1 << 20
RAFT_INBOUND_FRAMES = 4096
SHUTDOWN_GRACE_S = 5.0
GOSSIP_QUEUE_HIGH_WATER = 16  # of the library's 32-slot per-peer outbound RPC queue
SYNC_MAX_WAIT_MS = 5000  # the longest a sync request may ask the server to wait for its first block
SYNC_STREAMS_PER_PEER = 4  # an honest peer keeps one; each open stream may hold a waiting request and an answer
GOSSIP_STALL_S = 0.5  # a queue that has not shrunk for this long belongs to a peer that stopped reading


class _GuardedPubsub(Pubsub):
    """The library's Pubsub, fixed in two places where a bad or busy peer brought a node down.

    - An inbound RPC that does not parse is that peer's fault: the library let protobuf's
      DecodeError escape the connection's nursery, which stopped the whole libp2p host. Here
      the stream is reset and ``on_bad_peer`` is told (the node disconnects that peer).
    - Writes to one peer's stream are serialised. The library writes from its per-peer
      sender and, when a peer (re)connects, directly (flush, replay of recent messages);
      yamux cuts a write into 64 KiB frames, so two writers interleaved their frames and
      the peer read garbage: the failure above, between two honest nodes under load.
    """

    def __init__(self, *args: Any, on_bad_peer: Callable[[ID, str], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_bad_peer = on_bad_peer
        self._write_locks: weakref.WeakKeyDictionary[Any, trio.Lock] = weakref.WeakKeyDictionary()

    async def continuously_read_stream(self, stream: Any) -> None:
        try:
            await super().continuously_read_stream(stream)
        except DecodeError:
            peer_id = stream.muxed_conn.peer_id
            with contextlib.suppress(Exception):  # already reset or closed: nothing more to undo
                await stream.reset()
            self._handle_dead_peer(peer_id)
            self._on_bad_peer(peer_id, "undecodable gossipsub RPC")

    async def write_msg(self, stream: Any, rpc_msg: rpc_pb2.RPC) -> bool:
        lock = self._write_locks.get(stream)
        if lock is None:
            lock = self._write_locks[stream] = trio.Lock()
        async with lock:
            return await super().write_msg(stream, rpc_msg)


def tx_topic(chain_id: str) -> str:
    return f"/hcnode/{chain_id}/txs/1"


def peer_id_for_key(public: bytes) -> ID:
    """The libp2p peer id of a 33-byte compressed validator key (the key is inlined in the id)."""
    if not crypto.public_key_ok(public):
        raise ValueError("not a 33-byte compressed secp256k1 public key")
    return ID.from_pubkey(Secp256k1PublicKey.from_bytes(public))


def key_for_peer_id(peer_id: ID) -> bytes | None:
    """The 33-byte key a peer id stands for, or None for a peer whose identity is not a secp256k1 key."""
    public = peer_id.extract_public_key()
    if not isinstance(public, Secp256k1PublicKey):
        return None
    return public.impl.format(compressed=True)


def encode_tx_batch(txs: list[bytes], max_txs: int, max_bytes: int) -> bytes:
    if not txs or len(txs) > max_txs:
        raise ValueError(f"a batch holds 1 to {max_txs} transactions, got {len(txs)}")
    data = codec.encode(list(txs))
    if len(data) > max_bytes:
        raise ValueError(f"batch encodes to {len(data)} bytes, limit {max_bytes}")
    return data


def decode_tx_batch(data: bytes, max_txs: int, max_bytes: int) -> list[bytes]:
    """Strictly decode a gossiped batch; raises ``codec.CodecError`` naming what is wrong."""
    value = codec.decode(data, codec.DecodeLimits(max_bytes=max_bytes, max_depth=2, max_items=max_txs + 1))
    if type(value) is not list or not value:
        raise codec.CodecError("a transaction batch is a non-empty list")
    if len(value) > max_txs:
        raise codec.CodecError(f"batch of {len(value)} transactions, limit {max_txs}")
    if any(type(tx) is not bytes or not tx for tx in value):
        raise codec.CodecError("a transaction batch holds only non-empty byte strings")
    return value


class PeerRequestError(Exception):
    """A request to a peer failed (unreachable, timed out, reset, or a bad answer); the message names the peer."""


class FloodPublishGossipSub(GossipSub):
    """Gossipsub that sends the messages this node publishes to every subscribed peer.

    The library sends a publish only to the topic's mesh, which is empty until a heartbeat
    or a GRAFT adds the peer: a batch published in the moments after a peer (re)connects
    reached nobody, and gossip never repairs it (IHAVE goes only to peers outside the mesh).
    go-libp2p floods own publishes by default for the same reason; in a consortium of a few
    dozen nodes the cost is a handful of extra copies. Forwarding is unchanged (mesh only).
    """

    def _get_peers_to_send(self, topic_ids: Iterable[str], msg_forwarder: ID, origin: ID,
                           msg_id: bytes | None = None) -> Iterable[ID]:
        topics = list(topic_ids)
        peers = set(super()._get_peers_to_send(topics, msg_forwarder, origin, msg_id))
        if self.pubsub is not None and origin == self.pubsub.my_id:
            for topic in topics:
                peers.update(self.pubsub.peer_topics.get(topic, ()))
            peers.discard(origin)
        return peers


@dataclass
class _RaftLink:
    """One peer's bounded outbound queue of encoded Raft frames and the task that writes them."""

    key: bytes
    peer_id: ID
    capacity: int
    frames: deque[bytes] = field(default_factory=deque)
    ready: trio.Event = field(default_factory=trio.Event)
    sent: int = 0
    dropped: int = 0
    reconnects: int = 0

    def push(self, frame: bytes) -> bool:
        dropped = False
        if len(self.frames) >= self.capacity:
            self.frames.popleft()
            self.dropped += 1
            dropped = True
        self.frames.append(frame)
        self.ready.set()
        return not dropped

    async def wait(self) -> None:
        while not self.frames:
            self.ready = trio.Event()
            await self.ready.wait()

    def take(self, max_bytes: int) -> bytes:
        out = [self.frames.popleft()]
        size = len(out[0])
        while self.frames and size + len(self.frames[0]) <= max_bytes:
            frame = self.frames.popleft()
            out.append(frame)
            size += len(frame)
        return b"".join(out)


@dataclass
class _SyncClient:
    """The long-lived outbound sync stream to one peer; a lock keeps one request in flight."""

    lock: trio.Lock = field(default_factory=trio.Lock)
    stream: INetStream | None = None
    reader: FrameReader | None = None


class P2PService:
    """The node's libp2p host and protocols, run as one trio task (``await nursery.start(p2p.run)``).

    For the Raft driver:
        ``send(peer_key, payload)``              queue an opaque message (never blocks)
        ``async for peer_key, payload in p2p.raft_inbound``
        ``await fetch_blocks(peer_key, start, count) -> list[bytes]``; ``peer_head()``
        ``await publish_txs(txs)``; ``async for origin_key, txs in p2p.tx_batches``
        ``connected_keys()``, ``listen_addrs()``, ``stats()``
    Peer keys are 33-byte compressed public keys everywhere; libp2p ids stay inside.
    """

    def __init__(self, *, key: crypto.PrivateKey, chain_id: str, validators: Iterable[bytes], params: P2PParams,
                 get_block_bytes: Callable[[int], bytes | None] | None = None,
                 wait_for_block: Callable[[int], Awaitable[object]] | None = None,
                 head_height: Callable[[], int] | None = None) -> None:
        """``get_block_bytes(h)``: the committed block at height h, or None; ``wait_for_block(h)``
        returns once there is one, at once if there is (it is cancelled at a sync request's ``wait_ms``);
        ``head_height()``: the height of the last committed block (-1, the default, for none)."""
        self.key = key
        self.public = key.public
        self.chain_id = chain_id
        self.params = params
        self.validators = frozenset(validators)
        self.topic = tx_topic(chain_id)
        self._get_block_bytes = get_block_bytes or (lambda height: None)
        self._wait_for_block = wait_for_block
        self._head_height = head_height or (lambda: -1)
        self._peer_heads: dict[bytes, int] = {}  # the head each peer last reported over sync
        self._key_pair = self._libp2p_key_pair(key)
        self.peer_id = ID.from_pubkey(self._key_pair.public_key)
        self._raft_send, self.raft_inbound = trio.open_memory_channel[tuple[bytes, bytes]](RAFT_INBOUND_FRAMES)
        self._batch_send, self.tx_batches = trio.open_memory_channel[tuple[bytes, list[bytes]]](
            params.gossip_inbound_batches)
        self._links: dict[bytes, _RaftLink] = {}
        self._sync_clients: dict[bytes, _SyncClient] = {}
        self._sync_streams: dict[ID, int] = {}  # open sync streams served (either version), per peer
        self._dialing: set[ID] = set()
        self._nursery: trio.Nursery | None = None
        self._host: IHost | None = None
        self._pubsub: Pubsub | None = None
        self._discovery_handler: Callable[[PeerInfo], None] | None = None
        self.gossip_dropped = 0
        self.gossip_rejected = 0
        self._gossip_backlog: dict[ID, tuple[int, float]] = {}  # peer -> (queue length, when it last shrank)
        self._gossip_stalled: set[ID] = set()  # peers not waited for (logged once)
        self.started = trio.Event()

    def _security(self) -> dict[TProtocol, Any]:
        """Noise only. py-libp2p also offers TLS, SECIO and plaintext by default; plaintext takes the
        peer's claimed key on trust (no proof of the secret key), so anyone who knows a validator's
        public key, which genesis publishes, could open ``/hcnode/raft/1`` in its name."""
        return {NOISE_PROTOCOL_ID: NoiseTransport(self._key_pair,
                                                  noise_privkey=create_new_x25519_key_pair().private_key)}

    @staticmethod
    def _libp2p_key_pair(key: crypto.PrivateKey) -> KeyPair:
        private = Secp256k1PrivateKey.from_bytes(key.secret)
        return KeyPair(private, private.get_public_key())

    # --- running -----------------------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, join the tx topic, dial the bootstrap peers, and serve until cancelled.

        Why the two tasks: libp2p's own tasks (connections, muxers) run inside
        ``host.run``; if our cancellation reached them, a connection task dies
        half-way through closing and leaks its socket. So the host runs under a
        shield in ``_serve``, and cancelling ``run`` only sets ``stop``: ``_serve``
        then stops our tasks, closes every connection while the host still runs,
        and leaves, within ``SHUTDOWN_GRACE_S`` (the shield's own deadline).
        """
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            await nursery.start(self._serve, stop)
            task_status.started(self)
            try:
                await trio.sleep_forever()
            finally:
                stop.set()

    async def _serve(self, stop: trio.Event, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        params = self.params
        host = new_host(
            key_pair=self._key_pair,
            sec_opt=self._security(),
            muxer_preference="YAMUX",
            enable_mDNS=params.mdns,
            connection_config=ConnectionConfig(max_connections_per_peer=1),
        )
        self._host = host
        _disable_auto_connector(host)
        router = self._make_router()
        pubsub = _GuardedPubsub(host, router, strict_signing=True, allowed_topics={self.topic},
                                max_inbound_rpc_size=params.gossip_max_batch_bytes + 64 * 1024,
                                on_bad_peer=self._drop_bad_peer)
        pubsub.set_topic_validator(self.topic, self._gossip_valid, False)
        host.set_stream_handler(RAFT_PROTOCOL, self._on_raft_stream)
        host.set_stream_handler(SYNC_PROTOCOL, self._on_sync_stream)
        host.set_stream_handler(SYNC_PROTOCOL_V1, self._on_sync_stream)
        with trio.CancelScope(shield=True) as shield:
            try:
                async with host.run(listen_addrs=[multiaddr.Multiaddr(a) for a in params.listen]):
                    try:
                        async with background_trio_service(pubsub), background_trio_service(router):
                            await pubsub.wait_until_ready()
                            subscription = await pubsub.subscribe(self.topic)
                            self._pubsub = pubsub
                            async with trio.open_nursery() as ours:
                                self._nursery = ours
                                ours.start_soon(self._drain_gossip, subscription)
                                for addr in params.bootstrap:
                                    ours.start_soon(self._keep_connected,
                                                    info_from_p2p_addr(multiaddr.Multiaddr(addr)))
                                if params.mdns:
                                    self._listen_for_mdns(ours)
                                log.info("p2p: peer %s listening on %s", self.peer_id, ", ".join(self.listen_addrs()))
                                task_status.started()
                                await stop.wait()
                                shield.deadline = trio.current_time() + SHUTDOWN_GRACE_S
                                self._nursery = self._pubsub = None
                                self._stop_mdns_listening()
                                ours.cancel_scope.cancel()
                            # Close connections while pubsub still runs: its stream readers
                            # otherwise hand messages to a stopped service (RuntimeError).
                            await _disconnect_all(host)
                    finally:
                        await _stop_mdns_off_the_loop(host)
                        await host.close()
            finally:
                self._nursery = self._pubsub = None
                self._stop_mdns_listening()
                self._raft_send.close()
                self._batch_send.close()
        if shield.cancelled_caught:
            log.warning("p2p: shutdown took longer than %.0f s and was cut short", SHUTDOWN_GRACE_S)

    def _make_router(self) -> GossipSub:
        """Gossipsub configured for a consortium of a few to a few dozen nodes on a trusted network.

        Set explicitly (the library defaults suit a public network): degree 6 (4..12);
        a 1 s heartbeat (the default 120 s makes the mesh slow to form and repair);
        spam protection kept on but at ``gossip_max_msgs_per_s`` per forwarding peer
        and topic (the default 10/s silently drops a busy node's batches, and counts our
        own publishes too); no peer exchange, no adaptive gossip and no IP-diversity
        (eclipse) protection: peers are known consortium members, often on one host;
        flood publishing of our own batches (see ``FloodPublishGossipSub``).
        """
        return FloodPublishGossipSub(
            protocols=[GOSSIPSUB_V11, GOSSIPSUB_V10],
            degree=6,
            degree_low=4,
            degree_high=12,
            time_to_live=60,
            gossip_window=3,
            gossip_history=5,
            heartbeat_initial_delay=0.1,
            heartbeat_interval=1,
            do_px=False,
            adaptive_gossip_enabled=False,
            spam_protection_enabled=True,
            max_messages_per_topic_per_second=float(self.params.gossip_max_msgs_per_s),
            eclipse_protection_enabled=False,
        )

    # --- identity and peers ------------------------------------------------------------------------

    def listen_addrs(self) -> list[str]:
        """Full dialable addresses, ``/ip4/.../tcp/PORT/p2p/<peer id>``."""
        if self._host is None:
            return []
        return [str(a) for a in self._host.get_addrs()]

    def connected_keys(self) -> list[bytes]:
        if self._host is None:
            return []
        keys = (key_for_peer_id(p) for p in self._host.get_network().connections)
        return sorted(k for k in keys if k is not None)

    def _describe(self, peer_id: ID) -> str:
        key = key_for_peer_id(peer_id)
        if key is None:
            return f"peer {peer_id} (not a secp256k1 identity)"
        role = "validator" if key in self.validators else "observer"
        return f"{role} {key.hex()[:16]}… ({str(peer_id)[-8:]})"

    def _drop_bad_peer(self, peer_id: ID, what: str) -> None:
        """Log and disconnect a peer that sent what no honest node sends; it (or we) may redial."""
        log.warning("p2p: %s from %s; disconnecting it", what, self._describe(peer_id))
        host, nursery = self._host, self._nursery
        if host is not None and nursery is not None:
            nursery.start_soon(_disconnect, host, peer_id)

    def _is_connected(self, peer_id: ID) -> bool:
        assert self._host is not None
        return bool(self._host.get_network().connections.get(peer_id))

    async def connect(self, addr: str) -> bytes:
        """Dial a full ``/p2p/`` address once now; returns the peer's key. Raises PeerRequestError."""
        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        await self._dial(info)
        key = key_for_peer_id(info.peer_id)
        if key is None:
            raise PeerRequestError(f"{addr}: the peer's identity is not a secp256k1 key")
        return key

    async def _dial(self, info: PeerInfo) -> None:
        assert self._host is not None
        try:
            with trio.fail_after(self.params.request_timeout_ms / 1000):
                await self._host.connect(info)
        except trio.TooSlowError:
            raise PeerRequestError(f"dialling {info.peer_id}: timed out") from None
        except Exception as exc:  # libp2p raises many types for a failed dial; all mean "not now"
            raise PeerRequestError(f"dialling {info.peer_id}: {exc or type(exc).__name__}") from None

    async def _keep_connected(self, info: PeerInfo) -> None:
        """Stay connected to one configured peer: dial, watch, and redial with capped exponential backoff."""
        if info.peer_id == self.peer_id:
            return
        if info.peer_id in self._dialing:
            return
        self._dialing.add(info.peer_id)
        try:
            backoff = RECONNECT_MIN_S
            was_connected = False
            while True:
                if self._is_connected(info.peer_id):
                    was_connected = True
                    backoff = RECONNECT_MIN_S
                    await trio.sleep(CONNECTED_CHECK_S)
                    continue
                if was_connected:
                    log.info("p2p: lost %s; redialling", self._describe(info.peer_id))
                    was_connected = False
                try:
                    await self._dial(info)
                    log.info("p2p: connected to %s", self._describe(info.peer_id))
                    continue
                except PeerRequestError as exc:
                    log.debug("p2p: %s; retry in %.1f s", exc, backoff)
                await trio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, RECONNECT_MAX_S)
        finally:
            self._dialing.discard(info.peer_id)

    def _listen_for_mdns(self, nursery: trio.Nursery) -> None:
        """Dial peers mDNS finds. The library announces them from zeroconf's thread through a
        process-global registry, so the handler only hands them to trio, and is removed on stop."""
        token = trio.lowlevel.current_trio_token()
        found_send, found_receive = trio.open_memory_channel[PeerInfo](64)

        def on_discovered(info: PeerInfo) -> None:
            def deliver() -> None:
                try:
                    found_send.send_nowait(info)
                except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                    pass
            try:
                token.run_sync_soon(deliver)
            except trio.RunFinishedError:
                pass

        async def dial_found() -> None:
            async with found_receive:
                async for info in found_receive:
                    if info.peer_id != self.peer_id and info.peer_id not in self._dialing:
                        log.info("p2p: mDNS found %s", self._describe(info.peer_id))
                        nursery.start_soon(self._keep_connected, info)

        self._discovery_handler = on_discovered
        peerDiscovery.register_peer_discovered_handler(on_discovered)
        nursery.start_soon(dial_found)

    def _stop_mdns_listening(self) -> None:
        if self._discovery_handler is not None:
            peerDiscovery.unregister_peer_discovered_handler(self._discovery_handler)
            self._discovery_handler = None

    async def _open_stream(self, key: bytes, protocol: TProtocol, *older: TProtocol) -> INetStream:
        """A stream speaking ``protocol``, or else the first of ``older`` the peer knows."""
        if self._host is None:
            raise PeerRequestError("the p2p service is not running")
        peer_id = peer_id_for_key(key)
        try:
            with trio.fail_after(self.params.request_timeout_ms / 1000):
                return await self._host.new_stream(peer_id, [protocol, *older])
        except trio.TooSlowError:
            raise PeerRequestError(f"opening {protocol} to {self._describe(peer_id)}: timed out") from None
        except Exception as exc:  # no connection, no address, protocol refused, ...
            raise PeerRequestError(f"opening {protocol} to {self._describe(peer_id)}: "
                                   f"{exc or type(exc).__name__}") from None

    # --- raft -------------------------------------------------------------------------------------

    def send(self, peer_key: bytes, payload: bytes) -> bool:
        """Queue one opaque Raft message for a peer; never waits.

        Returns False when the peer's queue was full and its oldest message was
        dropped to make room. Raises ValueError for a payload over the frame limit
        or an unknown/own key, RuntimeError before ``run`` has started.
        """
        if self._nursery is None:
            raise RuntimeError("the p2p service is not running")
        if peer_key == self.public:
            raise ValueError("cannot send a Raft message to ourselves")
        frame = encode_frame(payload, self.params.max_frame_bytes)
        link = self._links.get(peer_key)
        if link is None:
            link = _RaftLink(peer_key, peer_id_for_key(peer_key), self.params.send_queue_frames)
            self._links[peer_key] = link
            self._nursery.start_soon(self._raft_writer, link)
        return link.push(frame)

    async def _raft_writer(self, link: _RaftLink) -> None:
        """Keep one outbound Raft stream to the peer and write queued frames, reopening it on failure."""
        backoff = RECONNECT_MIN_S
        retried = False
        data = b""
        while True:
            await link.wait()
            try:
                stream = await self._open_stream(link.key, RAFT_PROTOCOL)
            except PeerRequestError as exc:
                log.debug("p2p: raft: %s; retry in %.1f s", exc, backoff)
                await trio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, RECONNECT_MAX_S)
                continue
            backoff = RECONNECT_MIN_S
            link.reconnects += 1
            try:
                while True:
                    await link.wait()
                    data = link.take(WRITE_CHUNK_BYTES)
                    await stream.write(data)
                    link.sent += 1
                    retried = False
            except Exception as exc:  # reset, closed connection, write-window timeout
                log.info("p2p: raft stream to %s failed (%s); reopening", self._describe(link.peer_id),
                         exc or type(exc).__name__)
                await _reset_quietly(stream)
                if not retried:  # a stream found dead on write: send its frames once more on the next
                    link.frames.appendleft(data)
                    retried = True

    async def _on_raft_stream(self, stream: INetStream) -> None:
        peer_id = stream.muxed_conn.peer_id
        peer_key = key_for_peer_id(peer_id)
        if peer_key is None or (self.params.validators_only_raft and peer_key not in self.validators):
            log.warning("p2p: refused a %s stream from %s: not a genesis validator", RAFT_PROTOCOL,
                        self._describe(peer_id))
            await _reset_quietly(stream)
            return
        reader = FrameReader(stream, self.params.max_frame_bytes, max_items=1)
        try:
            while True:
                payload = await reader.read_frame()
                if payload is None:
                    break
                if type(payload) is not bytes:
                    raise FrameError(f"a raft frame holds a byte string, not {type(payload).__name__}")
                await self._raft_send.send((peer_key, payload))
        except FrameError as exc:
            log.log(logging.INFO if isinstance(exc, FrameTruncated) else logging.WARNING,
                    "p2p: bad %s frame from %s: %s; resetting the stream", RAFT_PROTOCOL, self._describe(peer_id), exc)
            await _reset_quietly(stream)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            await _reset_quietly(stream)  # shutting down
        except Exception as exc:
            log.info("p2p: %s stream from %s ended: %s", RAFT_PROTOCOL, self._describe(peer_id),
                     exc or type(exc).__name__)
            await _reset_quietly(stream)

    # --- block sync -------------------------------------------------------------------------------

    async def fetch_blocks(self, peer_key: bytes, start: int, count: int, *, wait_ms: int = 0) -> list[bytes]:
        """Ask a peer for up to ``count`` encoded blocks from height ``start``.

        Returns consecutive blocks from ``start`` (maybe fewer, maybe none if the
        peer has not got them; with ``wait_ms`` the peer first waits up to that long
        for block ``start``). The bytes are untrusted: the caller decodes and
        verifies them. The head height the peer reports with them is kept for
        ``peer_head``. Raises PeerRequestError naming the peer on any failure; the
        stream is then reset and the next call opens a new one.
        """
        if start < 0 or count < 1 or not 0 <= wait_ms <= SYNC_MAX_WAIT_MS:
            raise ValueError(f"start >= 0, count >= 1 and wait_ms 0..{SYNC_MAX_WAIT_MS}")
        count = min(count, self.params.sync_max_blocks)
        request = {"start": start, "count": count}
        if wait_ms:
            request["wait_ms"] = wait_ms  # left out otherwise: a request without it is answered at once
        client = self._sync_clients.setdefault(peer_key, _SyncClient())
        async with client.lock:
            if client.stream is None:
                client.stream = await self._open_stream(peer_key, SYNC_PROTOCOL, SYNC_PROTOCOL_V1)
                client.reader = FrameReader(client.stream, self.params.max_frame_bytes)
            stream, reader = client.stream, client.reader
            assert reader is not None
            protocol = stream.get_protocol() or SYNC_PROTOCOL
            who = self._describe(peer_id_for_key(peer_key))
            try:
                with trio.fail_after((self.params.request_timeout_ms + wait_ms) / 1000):
                    await stream.write(encode_frame(request, self.params.max_frame_bytes))
                    answer = await reader.read_frame()
                if answer is None:
                    raise FrameError("stream closed before the answer")
                blocks, head = self._check_sync_answer(answer, count, with_head=protocol != SYNC_PROTOCOL_V1)
                if head is not None:
                    self._peer_heads[peer_key] = head
                return blocks
            except BaseException as exc:
                client.stream = client.reader = None
                with trio.CancelScope(shield=True):
                    await _reset_quietly(stream)
                if isinstance(exc, trio.TooSlowError):
                    raise PeerRequestError(f"{protocol} from {who}: no answer in time") from None
                if isinstance(exc, Exception):
                    if isinstance(exc, FrameError):
                        log.warning("p2p: bad %s answer from %s: %s; resetting the stream", protocol, who, exc)
                    raise PeerRequestError(f"{protocol} from {who}: {exc or type(exc).__name__}") from None
                raise

    @staticmethod
    def _check_sync_answer(answer: Any, count: int, *, with_head: bool) -> tuple[list[bytes], int | None]:
        """(blocks, the peer's head height: None over ``/hcnode/sync/1``, which does not carry it)."""
        if type(answer) is not dict:
            raise FrameError("answer is not a map")
        if set(answer) == {"error"} and type(answer["error"]) is str:
            raise FrameError(f"peer refused: {answer['error'][:200]}")
        shape = {"blocks", "head"} if with_head else {"blocks"}
        if set(answer) != shape or type(answer["blocks"]) is not list:
            raise FrameError("answer is not {\"blocks\": [...]" + (", \"head\": height}" if with_head else "}"))
        blocks = answer["blocks"]
        if len(blocks) > count or any(type(b) is not bytes or not b for b in blocks):
            raise FrameError(f"answer holds more than {count} blocks or a block that is not bytes")
        head = answer.get("head")
        if with_head and (type(head) is not int or head < -1):
            raise FrameError("answer's head is not a height (an integer >= -1)")
        return blocks, head

    def peer_head(self) -> int | None:
        """The highest head a connected peer reported with its last sync answer (None: no answer yet)."""
        connected = set(self.connected_keys())
        return max((h for key, h in self._peer_heads.items() if key in connected), default=None)

    async def _on_sync_stream(self, stream: INetStream) -> None:
        peer_id = stream.muxed_conn.peer_id
        if self._sync_streams.get(peer_id, 0) >= SYNC_STREAMS_PER_PEER:
            log.warning("p2p: %s opened more than %d sync streams; resetting the new one", self._describe(peer_id),
                        SYNC_STREAMS_PER_PEER)
            await _reset_quietly(stream)
            return
        self._sync_streams[peer_id] = self._sync_streams.get(peer_id, 0) + 1
        try:
            await self._serve_sync(stream, peer_id)
        finally:
            self._sync_streams[peer_id] -= 1
            if not self._sync_streams[peer_id]:
                del self._sync_streams[peer_id]

    async def _serve_sync(self, stream: INetStream, peer_id: ID) -> None:
        protocol = stream.get_protocol() or SYNC_PROTOCOL
        reader = FrameReader(stream, self.params.max_frame_bytes, max_items=8)
        try:
            while True:
                request = await reader.read_frame()
                if request is None:
                    break
                answer = await self._answer_sync(request)
                if protocol != SYNC_PROTOCOL_V1 and "blocks" in answer:
                    answer["head"] = self._head_height()  # read after the blocks: never below the last one
                await stream.write(encode_frame(answer, self.params.max_frame_bytes))
        except FrameError as exc:
            log.warning("p2p: bad %s request from %s: %s; resetting the stream", protocol,
                        self._describe(peer_id), exc)
            await _reset_quietly(stream)
        except Exception as exc:
            log.info("p2p: %s stream from %s ended: %s", protocol, self._describe(peer_id),
                     exc or type(exc).__name__)
            await _reset_quietly(stream)

    async def _answer_sync(self, request: Any) -> dict[str, Any]:
        wait_ms = request.get("wait_ms", 0) if type(request) is dict else None
        if (type(request) is not dict or not {"start", "count"} <= set(request) <= {"start", "count", "wait_ms"}
                or type(request["start"]) is not int or type(request["count"]) is not int
                or request["start"] < 0 or not 1 <= request["count"] <= self.params.sync_max_blocks
                or type(wait_ms) is not int or not 0 <= wait_ms <= SYNC_MAX_WAIT_MS):
            raise FrameError(f"a sync request is {{\"start\": h >= 0, \"count\": 1..{self.params.sync_max_blocks}}}"
                             f" and optionally \"wait_ms\": 0..{SYNC_MAX_WAIT_MS}")
        if wait_ms and self._wait_for_block is not None:
            with trio.move_on_after(wait_ms / 1000):
                await self._wait_for_block(request["start"])
        budget = self.params.max_frame_bytes - 64
        blocks: list[bytes] = []
        for height in range(request["start"], request["start"] + request["count"]):
            try:
                block = self._get_block_bytes(height)
            except Exception as exc:  # the provider is the node's store; report, don't crash the stream
                log.error("p2p: block provider failed at height %d: %s", height, exc)
                return {"error": "internal error reading blocks"}
            if block is None or len(block) + 9 > budget:
                break
            budget -= len(block) + 9
            blocks.append(block)
        return {"blocks": blocks}

    # --- transaction gossip -----------------------------------------------------------------------

    async def publish_txs(self, txs: list[bytes]) -> None:
        """Gossip one batch of raw transactions (best effort; see the module notes)."""
        if self._pubsub is None:
            raise RuntimeError("the p2p service is not running")
        pubsub = self._pubsub
        data = encode_tx_batch(txs, self.params.gossip_max_batch_txs, self.params.gossip_max_batch_bytes)
        # The router's per-peer outbound queues hold 32 RPCs and drop silently beyond:
        # wait (bounded) for room rather than publish into a full queue, but only for peers that drain theirs.
        with trio.move_on_after(self.params.request_timeout_ms / 1000):
            while self._gossip_backlogged(pubsub):
                await trio.sleep(0.001)
        await pubsub.publish(self.topic, data)
        await trio.lowlevel.checkpoint()  # publish itself never yields; let the senders and our drain run

    def _gossip_backlogged(self, pubsub: Pubsub) -> bool:
        """True while some peer that is still reading has a gossip queue at the high-water mark.

        A queue at the mark that has not shrunk for ``GOSSIP_STALL_S`` is a peer that stopped reading:
        it is not waited for (logged once) until its queue shrinks again.
        """
        now = trio.current_time()
        backlog = self._gossip_backlog
        waiting = False
        for peer_id, queue in pubsub.peer_queues.items():
            length = len(queue)
            seen = backlog.get(peer_id)
            if seen is not None and length < seen[0] and peer_id in self._gossip_stalled:
                self._gossip_stalled.discard(peer_id)
                log.info("p2p: %s reads gossip again", self._describe(peer_id))
            if length < GOSSIP_QUEUE_HIGH_WATER:
                backlog.pop(peer_id, None)
                continue
            shrank_at = now if seen is None or length < seen[0] else seen[1]
            backlog[peer_id] = (length, shrank_at)
            if now - shrank_at < GOSSIP_STALL_S:
                waiting = True
            elif peer_id not in self._gossip_stalled:
                self._gossip_stalled.add(peer_id)
                log.warning("p2p: %s stopped reading gossip (%d messages queued, none sent for %.1f s); "
                            "publishing without waiting for it", self._describe(peer_id), length, now - shrank_at)
        for gone in [p for p in backlog if p not in pubsub.peer_queues]:
            del backlog[gone]
            self._gossip_stalled.discard(gone)
        return waiting

    def _gossip_valid(self, forwarder: ID, message: Any) -> bool:
        """Topic validator: garbage is neither delivered nor forwarded to other peers."""
        try:
            decode_tx_batch(message.data, self.params.gossip_max_batch_txs, self.params.gossip_max_batch_bytes)
        except codec.CodecError as exc:
            self.gossip_rejected += 1
            log.warning("p2p: rejected a tx batch forwarded by %s: %s", self._describe(forwarder), exc)
            return False
        return True

    async def _drain_gossip(self, subscription: Any) -> None:
        """Move messages out of the library's 32-slot subscription queue at once, into our bounded channel."""
        async for message in subscription:
            origin = ID(message.from_id)
            if origin == self.peer_id:
                continue  # the library hands our own publishes back to us
            origin_key = key_for_peer_id(origin)
            try:
                txs = decode_tx_batch(message.data, self.params.gossip_max_batch_txs,
                                      self.params.gossip_max_batch_bytes)
            except codec.CodecError:
                continue  # already logged by the validator
            if origin_key is None:
                continue
            try:
                self._batch_send.send_nowait((origin_key, txs))
            except trio.WouldBlock:
                self.gossip_dropped += 1
                if self.gossip_dropped & (self.gossip_dropped - 1) == 0:  # 1, 2, 4, 8 ... : bounded logging
                    log.warning("p2p: tx batch channel full; dropped %d batches so far", self.gossip_dropped)

    # --- introspection ----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {
            "peer_id": str(self.peer_id),
            "connected": [k.hex() for k in self.connected_keys()],
            "raft_links": {k.hex(): {"queued": len(l.frames), "writes": l.sent, "dropped": l.dropped,
                                     "streams_opened": l.reconnects} for k, l in self._links.items()},
            "gossip_dropped": self.gossip_dropped,
            "gossip_rejected": self.gossip_rejected,
        }


async def _disconnect_all(host: IHost) -> None:
    for peer_id in list(host.get_network().connections):
        await _disconnect(host, peer_id)


async def _disconnect(host: IHost, peer_id: ID) -> None:
    try:
        await host.disconnect(peer_id)
    except Exception as exc:  # already gone
        log.debug("p2p: disconnecting %s: %s", peer_id, exc)


async def _stop_mdns_off_the_loop(host: IHost) -> None:
    """Stop libp2p's mDNS in a worker thread: zeroconf's unregister and close block for about
    a second (goodbye packets), which inside ``host.close`` would freeze the whole trio loop."""
    mdns = getattr(host, "mDNS", None)
    if mdns is None:
        return
    host.mDNS = None  # type: ignore[attr-defined]  # so host.close does not stop it again
    cleanup_scope = getattr(mdns, "_cleanup_cancel_scope", None)
    if cleanup_scope is not None:
        cleanup_scope.cancel()  # a trio object: cancelled here, on the loop's thread

    def stop_zeroconf() -> None:
        mdns.broadcaster.unregister()
        mdns.listener.stop()
        mdns.zeroconf.close()

    try:
        await trio.to_thread.run_sync(stop_zeroconf, abandon_on_cancel=True)
    except Exception as exc:
        log.warning("p2p: stopping mDNS: %s", exc)


def _disable_auto_connector(host: IHost) -> None:
    """Turn off libp2p 0.8.1's AutoConnector, which has no switch of its own.

    It tries to keep 100..300 connections by dialling every peer in the
    peerstore every 30 s (and logs each round at INFO). A permissioned node dials
    only its configured and mDNS-found peers, and reconnects to them itself.
    """
    auto_connector = getattr(host.get_network(), "auto_connector", None)
    if auto_connector is not None:
        async def maybe_connect() -> None:
            return None
        auto_connector.maybe_connect = maybe_connect


async def _reset_quietly(stream: INetStream) -> None:
    try:
        await stream.reset()
    except Exception:  # already closed or the connection is gone: nothing left to reset
        pass
