"""``hcnode init`` makes a chain that starts; a node whose state diverges from a block halts loudly."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from hcnode import crypto
from hcnode.apps import default_apps
from hcnode.chain import BlockHeader, BlockInfo, Rejected, StateRootMismatch, build_tx, execute, sign_block
from hcnode.config import load_config
from hcnode.node.daemon import load_node_key, resolve_genesis
from hcnode.node.node import Node
from hcnode.node.store import Store
from hcnode.wallet.keystore import Keystore

from .conftest import DevNode

pytestmark = pytest.mark.slow


def test_init_writes_keys_and_a_config_that_starts_a_chain():
    workdir = Path(tempfile.mkdtemp(prefix="hci", dir="/tmp"))
    env = dict(os.environ, HCWALLET_PASSPHRASE="correct horse")
    result = subprocess.run([sys.executable, "-m", "hcnode", "init", str(workdir / "chain"), "--chain-id",
                             "consortium-test", "--admins", "3", "--threshold", "2"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    config_path = workdir / "chain" / "hcnode.toml"
    config = load_config(config_path)
    assert config.chain_id == "consortium-test" and config.genesis.admin_threshold == 2
    assert oct(config.key_file.stat().st_mode & 0o777) == "0o600"
    admins = Keystore(workdir / "chain" / "keys")
    assert [k.name for k in admins.list()] == ["admin-1", "admin-2", "admin-3"]
    assert admins.load("admin-2", "correct horse").public.hex() in config.genesis.admins
    again = subprocess.run([sys.executable, "-m", "hcnode", "init", str(workdir / "chain")],
                           capture_output=True, text=True, timeout=60, env=env)
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr
    node = DevNode(workdir)  # its process handling, pointed at init's own config
    node.config_path = config_path
    node.data_dir = config.data_dir
    node.socket = config.socket
    try:
        node.start()
        with node.client() as client:
            info = client.call("node.info")
            assert info["chain_id"] == "consortium-test" and info["height"] == 0
            assert client.call("registry.admins")["threshold"] == 2
        assert node.stop() == 0
    finally:
        node.kill()


def test_state_divergence_halts_the_node_and_says_so(caplog):
    """A block whose state root differs from ours is not applied, and the node refuses further work."""
    workdir = Path(tempfile.mkdtemp(prefix="hcd", dir="/tmp"))
    dev = DevNode(workdir)
    config = load_config(dev.config_path)
    key = load_node_key(config, create=True)
    genesis = resolve_genesis(config, key, announce=lambda m: None)
    store = Store(config.data_dir / "db")
    try:
        node = Node(config, default_apps(), key, genesis, store)
        patient = crypto.PrivateKey.generate()
        tx = build_tx(patient, config.chain_id, "registry.patient_register", 0, {})
        head = node.block_at(0)
        honest_root = store.state_root
        info = BlockInfo(config.chain_id, 1, head.header.time_ms + 1, key.public)
        result = execute(store, node.apps, info, [tx], honest_root)
        header = BlockHeader(config.chain_id, 1, head.hash, info.time_ms, result.tx_root, result.receipt_root,
                             bytes(32), key.public)  # a state root this node will not compute
        block = sign_block(key, header, [tx])
        with caplog.at_level(logging.CRITICAL, logger="hcnode.node"), pytest.raises(StateRootMismatch):
            node.apply_external(block)
        assert "STATE DIVERGED" in caplog.text and "state root" in caplog.text
        assert store.height == 0 and store.state_root == honest_root, "nothing of the block was written"
        assert node.info()["halted"] is not None
        with pytest.raises(Rejected) as refused:
            node.submit(build_tx(crypto.PrivateKey.generate(), config.chain_id, "registry.patient_register", 0, {}))
        assert refused.value.code == "halted"
        # the honest block applies on a node that has not diverged
        good = sign_block(key, replace(header, state_root=result.state_root), [tx])
        Node(config, default_apps(), key, genesis, store).apply_external(good)
        assert store.height == 1 and store.state_root == result.state_root
    finally:
        store.close()
