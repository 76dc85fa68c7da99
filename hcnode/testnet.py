"""Local testnets: N validator processes (and any observers) on loopback, described by one file (``configs/testnet-3.toml``).

Owns: the testnet file's ``[testnet]`` table, turning it into one ordinary
``hcnode.toml`` per node (keys, ports, data dirs, bootstrap addresses), and
starting, watching and stopping those processes. Must not know how a node
works: each node is ``hcnode --config node-N/hcnode.toml``, spoken to over its
RPC socket only.

Layout decision: the testnet file is an hcnode config (chain_id, [block],
[consensus], [p2p] limits, [genesis]) plus a ``[testnet]`` table (``nodes``,
``dir``, ``base_port``). On first ``up`` each node gets a fresh key in
``DIR/node-N/data/node.key``; genesis ``validators`` are those keys (the file
must not list any), and ``dev:NAME`` keys elsewhere in genesis are created once
in the shared keystore ``DIR/keys`` (passphrase "dev"), so every node gets the
SAME genesis. Node N listens on ``127.0.0.1:base_port+N`` and bootstraps to all
the others; ``base_port = 0`` picks free ports on first ``up``. Later ``up``s
reuse the generated files, so a restarted testnet is the same chain.

Observers: ``observers = M`` in ``[testnet]`` (default 0) adds M nodes in
``DIR/observer-K/`` with their own keys, which are NOT genesis validators: they
get the same genesis, listen on ``base_port+nodes+K`` and bootstrap to every
validator (validators do not dial them; the observers dial in). Such a node
follows the chain by block sync, relays transactions by gossip and serves RPC,
and never votes. Configs are written per node when missing, so observers can be
added to a testnet that already ran (existing nodes keep their keys and ports).
"""

from __future__ import annotations

import datetime
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import multiaddr

from hcnode import crypto
from hcnode.config import ConfigError, load_config

__all__ = ["Testnet", "TestnetNode", "main_up", "main_status", "main_down"]

DEV_PASSPHRASE = "dev"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, datetime.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {value!r} into a node config")


def _toml(data: dict[str, Any], prefix: str = "") -> str:
    """A small TOML writer for what a config holds: scalars, lists, tables and arrays of tables."""
    lines, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value, False))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables.append((key, value, True))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for key, value, is_array in tables:
        name = f"{prefix}{key}"
        for item in (value if is_array else [value]):
            out += f"\n[[{name}]]\n" if is_array else f"\n[{name}]\n"
            out += _toml(item, name + ".")
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TestnetNode:
    index: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None
    observer: bool = False

    __test__ = False  # not a pytest class

    @property
    def label(self) -> str:
        """How status tables and messages name it: ``1`` for validator node-1, ``observer-1`` for an observer."""
        return f"observer-{self.index}" if self.observer else str(self.index)

    @property
    def config_path(self) -> Path:
        return self.dir / "hcnode.toml"

    @property
    def socket(self) -> Path:
        return self.dir / "data" / "hcnode.sock"

    @property
    def log_path(self) -> Path:
        return self.dir / "node.log"

    @property
    def pid_path(self) -> Path:
        return self.dir / "hcnode.pid"

    def pid(self) -> int | None:
        if self.proc is not None:
            return self.proc.pid if self.proc.poll() is None else None
        try:
            pid = int(self.pid_path.read_text())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def log(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def call(self, method: str, timeout: float = 5.0, **params: Any) -> Any:
        from hcnode.wallet.client import RpcClient

        with RpcClient(self.socket, timeout=timeout) as client:
            return client.call(method, **params)

    def info(self) -> dict[str, Any] | None:
        try:
            return self.call("node.info", timeout=2.0)  # type: ignore[no-any-return]
        except Exception:  # down, starting, or not answering: the caller shows it as down
            return None


class Testnet:
    """The nodes of one testnet file. ``prepare`` writes the node configs (first time only)."""

    __test__ = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()
        try:
            self.spec = tomllib.loads(self.path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{self.path}: {exc}") from None
        table = self.spec.get("testnet")
        if not isinstance(table, dict) or set(table) - {"nodes", "observers", "dir", "base_port"}:
            raise ConfigError(f"{self.path}: needs a [testnet] table with nodes, dir and base_port "
                              "(and optionally observers)")
        count, directory, base_port = table.get("nodes"), table.get("dir"), table.get("base_port", 0)
        observers = table.get("observers", 0)
        if (type(count) is not int or not 1 <= count <= 64 or type(observers) is not int or not 0 <= observers <= 64
                or type(directory) is not str or type(base_port) is not int):
            raise ConfigError("testnet: nodes is 1..64, observers 0..64, dir a string, base_port an integer")
        self.count = count
        self.base_port = base_port
        self.dir = (self.path.parent / directory).resolve()
        self.nodes = [TestnetNode(i, self.dir / f"node-{i}") for i in range(1, count + 1)]
        """The validators (genesis validators are their keys)."""
        self.observers = [TestnetNode(i, self.dir / f"observer-{i}", observer=True) for i in range(1, observers + 1)]
        """Nodes that follow the chain without voting (their keys are not in genesis)."""

    @property
    def all_nodes(self) -> list[TestnetNode]:
        return self.nodes + self.observers

    # --- generating the node configs --------------------------------------------------------------

    def prepare(self) -> None:
        """Write keys and one config per node where missing; existing ones are kept (same chain, same ports)."""
        if all(n.config_path.exists() for n in self.all_nodes):
            return
        from hcnode.node.daemon import write_node_key
        from hcnode.node.p2p import peer_id_for_key
        from hcnode.wallet.keystore import Keystore

        spec = {k: v for k, v in self.spec.items() if k != "testnet"}
        genesis = dict(spec.get("genesis", {}))
        if "validators" in genesis:
            raise ConfigError("genesis.validators: leave it out; a testnet's validators are its nodes' keys")
        keys = {}
        for node in self.all_nodes:
            key_path = node.dir / "data" / "node.key"
            if key_path.exists():
                keys[node.dir] = crypto.PrivateKey(bytes.fromhex(key_path.read_text().strip()))
            else:
                key = crypto.PrivateKey.generate()
                write_node_key(key_path, key)
                keys[node.dir] = key
        keystore = Keystore(self.dir / "keys")

        def resolve(ref: str) -> str:
            if not ref.startswith("dev:"):
                return ref
            name = ref[4:]
            existing = {k.name: k.public for k in keystore.list()}
            public = existing[name] if name in existing else keystore.create(name, DEV_PASSPHRASE).public
            return public.hex()

        genesis["admins"] = [resolve(r) for r in genesis.get("admins", [])]
        genesis["orgs"] = [{**o, "admins": [resolve(r) for r in o.get("admins", [])]} for o in genesis.get("orgs", [])]
        if not genesis["orgs"]:
            del genesis["orgs"]
        genesis["validators"] = [keys[n.dir].public.hex() for n in self.nodes]
        spec.pop("dev", None)
        ports = {node.dir: self._port(node, offset) for offset, node in enumerate(self.all_nodes, start=1)}

        def address(node: TestnetNode) -> str:
            return f"/ip4/127.0.0.1/tcp/{ports[node.dir]}/p2p/{peer_id_for_key(keys[node.dir].public)}"

        for node in self.all_nodes:
            if node.config_path.exists():
                continue
            p2p = dict(spec.get("p2p", {}))
            p2p["listen"] = [f"/ip4/127.0.0.1/tcp/{ports[node.dir]}"]
            # Validators dial each other; an observer dials every validator, and they never dial it.
            p2p["bootstrap"] = [address(other) for other in self.nodes if other is not node]
            config = {**spec, "data_dir": "data", "socket": "hcnode.sock", "p2p": p2p, "genesis": genesis}
            what = f"observer {node.index} (not a validator)" if node.observer else f"node {node.index}"
            node.dir.mkdir(parents=True, exist_ok=True)
            node.config_path.write_text(f"# {what} of testnet {self.path.name}; written by "
                                        f"`hcnode testnet up`\n" + _toml(config))
            load_config(node.config_path)  # a generated config that does not load is our bug: say so now

    def _port(self, node: TestnetNode, offset: int) -> int:
        """The port a node listens on: kept from its existing config, else ``base_port + offset`` or a free one."""
        if node.config_path.exists():
            p2p = load_config(node.config_path).p2p
            if p2p is not None:
                return int(multiaddr.Multiaddr(p2p.listen[0]).value_for_protocol("tcp"))
        return self.base_port + offset if self.base_port else _free_port()

    # --- processes --------------------------------------------------------------------------------

    def start(self, node: TestnetNode, *, detach: bool = False) -> None:
        """Start one node in the background (its output in node-N/node.log, its pid in node-N/hcnode.pid)."""
        if node.pid() is not None:
            return
        env = dict(os.environ)
        repo = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH", "")) if p)
        with open(node.log_path, "ab") as log:
            node.proc = subprocess.Popen([sys.executable, "-m", "hcnode", "--config", str(node.config_path)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=env, cwd=node.dir, start_new_session=detach)
        node.pid_path.write_text(str(node.proc.pid))

    def wait_answering(self, nodes: list[TestnetNode], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for node in nodes:
            while node.info() is None:
                if node.proc is not None and node.proc.poll() is not None:
                    raise RuntimeError(f"node {node.index} exited with {node.proc.returncode}; its log:\n{node.log()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"node {node.index} did not answer within {timeout} s; its log:\n{node.log()}")
                time.sleep(0.05)

    def wait_leader(self, nodes: list[TestnetNode] | None = None, timeout: float = 30.0) -> TestnetNode:
        """Wait until one of ``nodes`` says it leads and a majority of them agree who leads."""
        nodes = nodes if nodes is not None else self.nodes
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            infos = {n.index: n.info() for n in nodes}
            for node in nodes:
                info = infos[node.index]
                if info is not None and info["role"] == "leader":
                    agree = sum(1 for i in infos.values() if i is not None and i["leader"] == info["validator"])
                    if agree >= len(self.nodes) // 2 + 1:
                        return node
            time.sleep(0.05)
        raise RuntimeError(f"no leader within {timeout} s")

    def up(self, *, detach: bool = True, timeout: float = 60.0) -> TestnetNode:
        self.prepare()
        for node in self.all_nodes:
            self.start(node, detach=detach)
        self.wait_answering(self.all_nodes, timeout)
        return self.wait_leader(timeout=timeout)

    def stop(self, node: TestnetNode, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it hangs. Returns the exit code if we started it."""
        pid = node.pid()
        if pid is None:
            code = node.proc.returncode if node.proc is not None else None
            node.proc = None
            return code
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.proc is not None:
                if node.proc.poll() is not None:
                    break
            elif node.pid() is None:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
        code = node.proc.wait() if node.proc is not None else 0
        node.proc = None
        node.pid_path.unlink(missing_ok=True)
        return code

    def kill(self, node: TestnetNode) -> None:
        """``kill -9``: no shutdown, no flush; what was synced is all that survives."""
        pid = node.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            if node.proc is not None:
                node.proc.wait()
        node.proc = None
        node.pid_path.unlink(missing_ok=True)

    def down(self) -> list[int | None]:
        return [self.stop(node) for node in self.all_nodes]

    def status_rows(self) -> list[dict[str, Any]]:
        infos = [(n, n.info()) for n in self.all_nodes]
        top = max((i["height"] or 0 for _, i in infos if i is not None), default=0)
        rows = []
        for node, info in infos:
            if info is None:
                rows.append({"node": node.label, "role": "down"})
                continue
            rows.append({"node": node.label, "role": info["role"], "term": info["term"], "height": info["height"],
                         "head": info["head"][:16], "peers": len(info["peers"]), "lag": top - (info["height"] or 0),
                         "mempool": info["mempool"]})
        return rows


def _table(rows: list[dict[str, Any]]) -> str:
    columns = ["node", "role", "term", "height", "head", "peers", "lag", "mempool"]
    cells = [[str(r.get(c, "-")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def main_up(path: str) -> int:
    net = Testnet(path)
    leader = net.up(detach=True)
    observers = f" and {len(net.observers)} observer(s)" if net.observers else ""
    print(f"testnet {net.path.name}: {net.count} nodes{observers} in {net.dir}; node {leader.index} leads")
    print(_table(net.status_rows()))
    sockets = "node-N/data/hcnode.sock" + (", observer-K/data/hcnode.sock" if net.observers else "")
    print(f"keys for wallets: {net.dir / 'keys'} (passphrase {DEV_PASSPHRASE!r}); sockets: {sockets}")
    return 0


def main_status(path: str) -> int:
    print(_table(Testnet(path).status_rows()))
    return 0


def main_down(path: str) -> int:
    net = Testnet(path)
    codes = net.down()
    print("stopped: " + ", ".join(f"node {n.label} -> {'not running' if c is None else c}"
                                  for n, c in zip(net.all_nodes, codes)))
    return 0 if all(c in (0, None) for c in codes) else 1
