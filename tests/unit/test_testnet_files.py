"""``hcnode.testnet`` writing node configs (no processes): validators and observers from one testnet file."""

from __future__ import annotations

import re
from pathlib import Path

from hcnode import crypto
from hcnode.config import load_config
from hcnode.node.p2p import peer_id_for_key
from hcnode.testnet import Testnet

REPO = Path(__file__).resolve().parents[2]


def write_testnet(directory: Path, observers: int) -> Path:
    text = (REPO / "configs" / "testnet-3.toml").read_text()
    text = re.sub(r"observers = \d+", f"observers = {observers}", text)
    text = re.sub(r'dir = ".*"', 'dir = "."', text)
    text = re.sub(r"base_port = \d+", "base_port = 0", text)
    path = directory / "testnet.toml"
    path.write_text(text)
    return path


def public_key(directory: Path) -> str:
    return crypto.PrivateKey(bytes.fromhex((directory / "data" / "node.key").read_text().strip())).public.hex()


def test_an_observer_shares_the_genesis_is_no_validator_and_dials_every_validator(tmp_path: Path) -> None:
    net = Testnet(write_testnet(tmp_path, observers=1))
    net.prepare()
    observer = net.observers[0]
    assert observer.dir == tmp_path / "observer-1" and observer.label == "observer-1"
    configs = {n.dir: load_config(n.config_path) for n in net.all_nodes}
    validator_keys = [public_key(n.dir) for n in net.nodes]
    assert all(c.genesis == configs[observer.dir].genesis for c in configs.values())
    assert list(configs[observer.dir].genesis.validators) == validator_keys
    assert public_key(observer.dir) not in validator_keys
    observer_p2p = configs[observer.dir].p2p
    assert observer_p2p is not None
    dialled = {addr.rsplit("/p2p/", 1)[1] for addr in observer_p2p.bootstrap}
    assert dialled == {str(peer_id_for_key(bytes.fromhex(k))) for k in validator_keys}
    observer_id = str(peer_id_for_key(bytes.fromhex(public_key(observer.dir))))
    for node in net.nodes:  # validators do not dial observers
        p2p = configs[node.dir].p2p
        assert p2p is not None and not any(addr.endswith(observer_id) for addr in p2p.bootstrap)
    listen = [c.p2p.listen[0] for c in configs.values() if c.p2p is not None]
    assert len(set(listen)) == 4


def test_observers_added_to_a_testnet_that_ran_keep_its_keys_ports_and_genesis(tmp_path: Path) -> None:
    first = Testnet(write_testnet(tmp_path, observers=0))
    first.prepare()
    before = {n.index: n.config_path.read_text() for n in first.nodes}
    keys = {n.index: public_key(n.dir) for n in first.nodes}
    again = Testnet(write_testnet(tmp_path, observers=2))
    again.prepare()
    assert {n.index: n.config_path.read_text() for n in again.nodes} == before
    assert {n.index: public_key(n.dir) for n in again.nodes} == keys
    genesis = load_config(again.nodes[0].config_path).genesis
    validator_ports = {line.split("/tcp/")[1].split('"')[0] for text in before.values()
                       for line in text.splitlines() if line.startswith("listen = ")}
    assert len(validator_ports) == 3
    for observer in again.observers:
        config = load_config(observer.config_path)
        assert config.genesis == genesis
        assert config.p2p is not None
        assert {addr.split("/tcp/")[1].split("/")[0] for addr in config.p2p.bootstrap} == validator_ports
