"""Running a node from a config: keys, store, producer and RPC under one root nursery.

Owns: start-up order, dev keys, signals and clean shutdown. Must not know how
blocks or RPC methods work.

Start-up: the config is checked first (a typo stops here, before anything is
created); dev keys (``dev:NAME`` in a ``[dev] keys = true`` config) are created
on first start and reported; the store is opened (LevelDB's lock keeps a second
process out of the data dir); then the producer and the RPC server start, each
with ``nursery.start`` so "ready" is printed only once the socket accepts.
With a ``[p2p]`` table the p2p service and the Raft driver start instead of the
direct producer (see ``node`` and ``consensus_driver``).
SIGINT and SIGTERM cancel the root nursery: the in-flight block write either
finished (it runs to completion in its thread) or never started, and the store
is closed.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
from pathlib import Path
from typing import Any

import trio

from hcnode import crypto
from hcnode.apps import default_apps
from hcnode.chain import Genesis, GenesisOrg
from hcnode.config import Config, ConfigError
from hcnode.node.consensus_driver import RaftDriver
from hcnode.node.node import Node
from hcnode.node.p2p import P2PService
from hcnode.node.rpc import RpcServer
from hcnode.node.store import Store
from hcnode.node.verifier import Verifier
from hcnode.wallet.keystore import Keystore

__all__ = ["run_node", "resolve_genesis", "load_node_key", "DEV_PASSPHRASE", "write_node_key"]

log = logging.getLogger("hcnode")

DEV_PASSPHRASE = "dev"


def write_node_key(path: Path, key: crypto.PrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.secret.hex() + "\n")
        f.flush()
        os.fsync(f.fileno())


def load_node_key(config: Config, *, create: bool) -> crypto.PrivateKey:
    path = config.key_file
    if not path.exists():
        if not create:
            raise ConfigError(f"node.key_file: {path} does not exist (run `hcnode init` to make one)")
        key = crypto.PrivateKey.generate()
        write_node_key(path, key)
        log.info("created the node key %s", path)
        return key
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"node.key_file: {path} is readable by others; chmod 600 it")
    try:
        return crypto.PrivateKey(bytes.fromhex(path.read_text().strip()))
    except (ValueError, crypto.CryptoError) as exc:
        raise ConfigError(f"node.key_file: {path} does not hold a hex secret key ({exc})") from None


def resolve_genesis(config: Config, node_key: crypto.PrivateKey, *, announce: Any = print) -> Genesis:
    """Turn the config's key references into keys; ``dev:NAME`` keys are made on first use."""
    keystore = Keystore(config.data_dir / "keys")
    created: list[str] = []

    def resolve(ref: str) -> bytes:
        if not ref.startswith("dev:"):
            return bytes.fromhex(ref)
        name = ref[4:]
        if name == "node":
            return node_key.public
        existing = {k.name: k.public for k in keystore.list()}
        if name in existing:
            return existing[name]
        stored = keystore.create(name, DEV_PASSPHRASE)
        created.append(name)
        return stored.public

    spec = config.genesis
    genesis = Genesis(
        chain_id=config.chain_id,
        time_ms=spec.time_ms,
        admins=tuple(resolve(r) for r in spec.admins),
        admin_threshold=spec.admin_threshold,
        validators=tuple(resolve(r) for r in spec.validators),
        orgs=tuple(GenesisOrg(o.id, o.name, o.kind, tuple(resolve(r) for r in o.admins)) for o in spec.orgs),
    )
    if created:
        announce(f"hcnode: created dev keys {', '.join(created)} in {keystore.directory} "
                 f"(passphrase {DEV_PASSPHRASE!r}; use them with: hcwallet --keystore {keystore.directory} "
                 f"--socket {config.socket} ...)")
    return genesis


async def run_node(config: Config, *, task_status: Any = trio.TASK_STATUS_IGNORED,
                   handle_signals: bool = True) -> None:
    key = load_node_key(config, create=config.dev_keys)
    genesis = resolve_genesis(config, key, announce=lambda m: print(m, file=sys.stderr, flush=True))
    store = Store(config.data_dir / "db")
    verifier = Verifier(config.chain_id, config.limits.max_tx_bytes, config.verify_workers)
    try:
        node = Node(config, default_apps(), key, genesis, store, verifier)
        rpc = RpcServer(node, config.socket)
        async with trio.open_nursery() as nursery:
            if handle_signals:
                nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
            await verifier.start()
            if config.p2p is None:
                await nursery.start(node.run)  # the chain's only validator: blocks are cut and committed directly
            else:
                p2p = P2PService(key=key, chain_id=config.chain_id, validators=genesis.validators,
                                 params=config.p2p, get_block_bytes=store.block_bytes,
                                 wait_for_block=lambda height: node.wait_height(height - 1, math.inf),
                                 head_height=lambda: -1 if store.height is None else store.height)
                await nursery.start(p2p.run)
                await nursery.start(RaftDriver(node, p2p, genesis.validators, config.consensus).run)
            await nursery.start(rpc.serve)
            log.info("ready: chain %s height %d, RPC at %s", config.chain_id, store.height, config.socket)
            task_status.started(node)
    finally:
        verifier.close()
        store.close()
        log.info("stopped (store closed)")  # after an error, its traceback follows


async def _stop_on_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("received %s, shutting down", signal.Signals(signum).name)
            scope.cancel()
            return
