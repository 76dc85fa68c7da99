"""What every benchmark needs: a real hcnode process on a temporary data dir, and percentiles.

Owns: writing a benchmark node's config (one validator, founding organisations,
block and limit overrides), starting it as a real process, stopping it and
removing its files. Must not know what a benchmark measures.
"""

from __future__ import annotations

import hashlib
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hcnode import crypto  # noqa: E402
from hcnode.demo import start_node_process  # noqa: E402
from hcnode.node.daemon import write_node_key  # noqa: E402
from hcnode.wallet.client import RpcClient  # noqa: E402

__all__ = ["BenchNode", "HeightWatcher", "measure_load", "percentile", "BATCH", "CLIENTS"]

# Several clients submit batches at once, as a node's many wallets and integrations would:
# while one batch is being verified, the next is already parsed and queued.
BATCH = 1000
CLIENTS = 4


class BenchNode:
    """One validator node; ``orgs`` maps an organisation id to (kind, admin key)."""

    def __init__(self, chain_id: str, *, orgs: dict[str, tuple[str, crypto.PrivateKey]] | None = None,
                 block_txs: int = 5000, interval_ms: int = 20, limits: dict[str, int] | None = None,
                 prefix: str = "hcbench-") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))  # short: Unix socket paths are limited
        key = crypto.PrivateKey.generate()
        data = self.dir / "data"
        write_node_key(data / "node.key", key)
        limit_lines = "".join(f"{name} = {value}\n" for name, value in (limits or {}).items())
        org_tables = "".join(
            f'\n[[genesis.orgs]]\nid = "{org}"\nname = "{org.title()}"\nkind = "{kind}"\n'
            f'admins = ["{admin.public.hex()}"]\n' for org, (kind, admin) in (orgs or {}).items())
        config = self.dir / "hcnode.toml"
        config.write_text(f"""chain_id = "{chain_id}"
data_dir = "{data}"
log_level = "warning"
[block]
max_txs = {block_txs}
max_bytes = 8388608
interval_ms = {interval_ms}
[limits]
{limit_lines}[genesis]
time = 2026-01-01T00:00:00Z
admin_threshold = 1
admins = ["{crypto.PrivateKey.generate().public.hex()}"]
validators = ["{key.public.hex()}"]
{org_tables}""")
        self.socket = data / "hcnode.sock"
        try:
            self.proc = start_node_process(config, self.socket)
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> BenchNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class HeightWatcher(threading.Thread):
    """Waits on block.wait and stamps the moment each height becomes visible."""

    def __init__(self, socket: Path) -> None:
        super().__init__(daemon=True)
        self.client = RpcClient(socket)
        self.seen: dict[int, float] = {}
        self.stop_flag = threading.Event()

    def run(self) -> None:
        last = 0
        while not self.stop_flag.is_set():
            height = self.client.call("block.wait", after=last, timeout_ms=100)["height"]
            now = time.perf_counter()
            for h in range(last + 1, height + 1):
                self.seen.setdefault(h, now)
            last = height


def measure_load(socket: Path, txs: list[bytes], rate: float | None,
                 batch: int = BATCH) -> tuple[float, list[float]]:
    """Submit ``txs`` to the node at ``socket`` (as fast as possible, or paced at ``rate`` tx/s).

    Returns (committed tx/s, each transaction's latency in s from its batch's submission to the
    moment its block is visible over RPC). Every submitted transaction must commit.
    """
    watcher = HeightWatcher(socket)
    watcher.start()
    submitted: dict[str, float] = {}
    start = time.perf_counter()
    # Several clients submit at once, as a node's many wallets and integrations would:
    # while one batch is being verified, the next is already parsed and queued.
    batches = [txs[i:i + batch] for i in range(0, len(txs), batch)]
    errors: list[str] = []

    def submitter(first: int) -> None:
        with RpcClient(socket) as conn:
            for index in range(first, len(batches), CLIENTS):
                if rate is not None:
                    delay = start + index * batch / rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                sent = time.perf_counter()
                result = conn.call("tx.submit_batch", txs=[tx.hex() for tx in batches[index]])
                for item in result["results"]:
                    if "error" in item:
                        errors.append(str(item["error"]))
                    else:
                        submitted[item["tx"]] = sent

    threads = [threading.Thread(target=submitter, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} rejected at submit, e.g. {errors[0]}")
    client = RpcClient(socket)
    for batch in batches:  # each client's batches commit in order; wait for every batch's last
        final = client.call("tx.wait", tx=hashlib.sha256(batch[-1]).hexdigest(), timeout_ms=60_000)
        if final["status"] != "committed":
            raise RuntimeError("a submitted transaction did not commit within 60 s")
    # every transaction must be committed, and each latency is measured to its block's visibility
    time.sleep(0.01)
    watcher.stop_flag.set()
    watcher.join()
    head = client.call("block.head")["height"]
    latencies = []
    commit_end = 0.0
    for height in range(1, head + 1):
        block = client.call("block.get", height=height)
        seen = watcher.seen[height]
        commit_end = max(commit_end, seen)
        for tx_hash in block["tx_hashes"]:
            latencies.append(seen - submitted.pop(tx_hash))
    if submitted:
        raise RuntimeError(f"{len(submitted)} submitted transactions were not committed")
    client.close()
    watcher.client.close()
    return len(txs) / (commit_end - start), latencies
