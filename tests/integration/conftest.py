"""Integration fixtures: a real ``hcnode`` process on a temporary data dir, spoken to over its socket.

``dev_node`` is a one-validator development chain modelled on ``configs/dev.toml``:
the node creates the dev keystores (passphrase ``"dev"``) in ``<data_dir>/keys`` on
its first start. Every test gets a fresh chain; the fixture stops the node with
SIGTERM and fails the test if it did not exit 0, and kills it whatever happens.
The node's stdout and stderr go to ``node.log`` in the work dir (never a pipe that
could fill up and stall it) and are quoted in every start-up or shutdown failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hcnode.wallet.client import RpcCallError, RpcClient

REPO = Path(__file__).resolve().parents[2]
DEV_PASSPHRASE = "dev"
DEV_CHAIN_ID = "hcnode-dev"

DEV_CONFIG = """\
# Written by tests/integration/conftest.py, modelled on configs/dev.toml.
chain_id = "{chain_id}"
data_dir = "{data_dir}"
socket = "hcnode.sock"
log_level = "info"

[dev]
keys = true

[block]
max_txs = 5000
max_bytes = 8388608
interval_ms = {interval_ms}

[limits]
max_tx_bytes = 65536
mempool_txs = 200000

[genesis]
time = 2026-01-01T00:00:00Z
admin_threshold = 1
admins = ["dev:admin"]
validators = ["dev:node"]

[[genesis.orgs]]
id = "acme-pharma"
name = "Acme Pharma"
kind = "manufacturer"
admins = ["dev:acme-admin"]

[[genesis.orgs]]
id = "st-mary"
name = "St Mary's Hospital"
kind = "hospital"
admins = ["dev:stmary-admin"]
"""


class NodeError(AssertionError):
    """The node failed to start or to stop cleanly; the message quotes its log."""


class DevNode:
    """One ``hcnode --config`` process and its files.

    Attributes: ``workdir``, ``data_dir``, ``config_path``, ``socket``, ``keystore``
    (the dev keystores), ``log_path``, ``proc`` (the running ``Popen``, or None),
    ``exit_codes`` (of every stop so far), ``chain_id`` and ``passphrase``.
    """

    def __init__(self, workdir: Path, *, chain_id: str = DEV_CHAIN_ID, interval_ms: int = 20,
                 start_timeout: float = 30.0, stop_timeout: float = 20.0) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.config_path = workdir / "hcnode.toml"
        self.socket = self.data_dir / "hcnode.sock"
        self.keystore = self.data_dir / "keys"
        self.log_path = workdir / "node.log"
        self.chain_id = chain_id
        self.passphrase = DEV_PASSPHRASE
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_codes: list[int] = []
        self.config_path.write_text(DEV_CONFIG.format(chain_id=chain_id, data_dir=self.data_dir,
                                                      interval_ms=interval_ms))

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def env(self) -> dict[str, str]:
        """The environment for a child process that imports this checkout of hcnode."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        return env

    def log(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no node log)"
        return "\n".join(text.splitlines()[-lines:]) or "(node log is empty)"

    def start(self) -> DevNode:
        """Start the node and return once its socket answers ``node.info``; raise ``NodeError`` if not."""
        if self.running:
            raise NodeError("the node is already running")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "hcnode", "--config", str(self.config_path)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env(), cwd=self.workdir)
        deadline = time.monotonic() + self.start_timeout
        try:
            while True:
                code = self.proc.poll()
                if code is not None:
                    raise NodeError(f"hcnode exited with {code} during start-up; its log:\n{self.log()}")
                try:
                    with RpcClient(self.socket, timeout=5) as client:
                        client.call("node.info")
                    return self
                except (OSError, RpcCallError, ValueError):
                    pass  # not listening yet (or still binding)
                if time.monotonic() > deadline:
                    raise NodeError(f"hcnode did not answer on {self.socket} within {self.start_timeout} s; "
                                    f"its log:\n{self.log()}")
                time.sleep(0.05)
        except BaseException:
            self.kill()
            raise

    def stop(self) -> int:
        """SIGTERM, wait, and return the exit code (recorded in ``exit_codes``); kill if it hangs."""
        if self.proc is None:
            raise NodeError("the node was never started")
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise NodeError(f"hcnode did not stop within {self.stop_timeout} s of SIGTERM; "
                                f"its log:\n{self.log()}") from None
        code = self.proc.returncode
        self.exit_codes.append(code)
        self.proc = None
        return code

    def kill(self) -> None:
        """SIGKILL the process if it is still running (the last resort of every failure path)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def client(self, timeout: float = 30.0) -> RpcClient:
        return RpcClient(self.socket, timeout=timeout)


@pytest.fixture
def dev_node() -> Iterator[DevNode]:
    """A running one-node dev chain on a fresh temporary data dir; it must exit 0 on SIGTERM."""
    # A short /tmp path keeps the socket under the ~100-byte Unix socket limit.
    workdir = Path(tempfile.mkdtemp(prefix="hcw", dir="/tmp"))
    node = DevNode(workdir)
    try:
        node.start()
        yield node
        if node.proc is not None:
            node.stop()
        bad = [code for code in node.exit_codes if code != 0]
        if bad:
            raise NodeError(f"hcnode exited with {bad[0]} (expected 0 on SIGTERM); its log:\n{node.log()}")
    finally:
        node.kill()
        shutil.rmtree(workdir, ignore_errors=True)
