"""The ``hcnode`` command: run a node from a config, make a new chain, or run the demo.

    hcnode --config FILE            run a node (what operators do)
    hcnode init DIR [options]       write keys and a config with a genesis for a new chain
    hcnode demo                     start a 3-node testnet in a temporary directory and tell a story
    hcnode testnet up|status|down CONFIG   a local testnet (configs/testnet-3.toml, testnet-5.toml)
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from pathlib import Path

import trio

from hcnode.config import ConfigError, load_config

__all__ = ["main"]


def _run(config_path: str) -> int:
    from hcnode.node.daemon import run_node
    from hcnode.node.runtime import tune_gc
    from hcnode.node.store import StorageError
    from hcnode.wallet.keystore import KeystoreError

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"hcnode: bad config: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tune_gc()
    try:
        trio.run(run_node, config)
    except (ConfigError, StorageError, KeystoreError) as exc:
        print(f"hcnode: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


def _init(args: argparse.Namespace) -> int:
    from hcnode import crypto
    from hcnode.node.daemon import write_node_key
    from hcnode.wallet.keystore import Keystore

    directory = Path(args.dir).resolve()
    config_path = directory / "hcnode.toml"
    if config_path.exists():
        print(f"hcnode init: {config_path} already exists; refusing to overwrite a chain", file=sys.stderr)
        return 2
    if not 1 <= args.threshold <= args.admins:
        print("hcnode init: --threshold must be between 1 and --admins", file=sys.stderr)
        return 2
    passphrase = os.environ.get("HCWALLET_PASSPHRASE")
    if passphrase is None:
        passphrase = getpass.getpass("passphrase for the admin keys: ")
        if passphrase != getpass.getpass("again: "):
            print("hcnode init: passphrases differ", file=sys.stderr)
            return 2
    data_dir = directory / "data"
    node_key = crypto.PrivateKey.generate()
    write_node_key(data_dir / "node.key", node_key)
    keystore = Keystore(directory / "keys")
    admins = [keystore.create(f"admin-{i + 1}", passphrase) for i in range(args.admins)]
    admin_list = ", ".join(f'"{a.public.hex()}"' for a in admins)
    config_path.write_text(f"""# hcnode config for chain {args.chain_id}, written by `hcnode init`.
chain_id = "{args.chain_id}"
data_dir = "data"
socket = "hcnode.sock"

[node]
key_file = "node.key"

[block]
max_txs = 5000
max_bytes = 8388608
interval_ms = 100

[genesis]
time = {args.genesis_time}
admin_threshold = {args.threshold}
admins = [{admin_list}]
validators = ["{node_key.public.hex()}"]
# Founding organisations, e.g.:
# [[genesis.orgs]]
# id = "st-mary"
# name = "St Mary's Hospital"
# kind = "hospital"
# admins = ["02..."]
""")
    print(f"wrote {config_path}")
    print(f"node key: {data_dir / 'node.key'} (mode 0600)")
    for admin in admins:
        print(f"consortium admin {admin.name}: {admin.public.hex()} in {admin.path}")
    print(f"start it with: hcnode --config {config_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hcnode", description="A health-care consortium ledger node.")
    parser.add_argument("--config", help="run a node from this TOML config")
    sub = parser.add_subparsers(dest="command")
    init = sub.add_parser("init", help="write keys and a config with a genesis for a new chain")
    init.add_argument("dir")
    init.add_argument("--chain-id", default="hcnode-local")
    init.add_argument("--admins", type=int, default=1, help="number of consortium admin keys")
    init.add_argument("--threshold", type=int, default=1, help="approvals needed (M of --admins)")
    init.add_argument("--genesis-time", default="2026-01-01T00:00:00Z")
    sub.add_parser("demo", help="run a 3-node testnet in a temporary directory through a scripted story")
    testnet = sub.add_parser("testnet", help="start, inspect or stop a local testnet")
    testnet.add_argument("action", choices=("up", "status", "down"))
    testnet.add_argument("config", help="a testnet file, e.g. configs/testnet-3.toml")
    args = parser.parse_args(argv)
    if args.command == "testnet":
        from hcnode import testnet as tn

        try:
            return {"up": tn.main_up, "status": tn.main_status, "down": tn.main_down}[args.action](args.config)
        except (ConfigError, RuntimeError) as exc:
            print(f"hcnode testnet {args.action}: {exc}", file=sys.stderr)
            return 2
    if args.command == "init":
        return _init(args)
    if args.command == "demo":
        from hcnode.demo import run_demo

        return run_demo()
    if args.config:
        return _run(args.config)
    parser.print_help()
    return 2
