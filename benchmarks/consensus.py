"""The 3-node Raft testnet on loopback: committed tx/s, p50/p99 commit latency, kill -9 leader recovery; peers.

    python benchmarks/consensus.py [--txs 30000] [--runs 1] [--no-peers]

Pre-signed patient registrations are submitted in batches to the LEADER over its
Unix socket (as benchmarks/node_throughput.py does for one node); a transaction
counts as committed when its block is visible on the leader, which applies only
Raft-committed blocks (a majority persisted it). Latency is measured at half the
saturated rate, with clients sending batches of 100 (LATENCY_BATCH) as interactive wallets
would, rather than the 1,000 of the throughput runs. Recovery: ``kill -9`` of the leader to the first new block on a
survivor. If benchmarks/peers.py is present, a 3-member etcd cluster and a
3-node PySyncObj cluster run in the same invocation and ratios are printed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import BATCH, measure_load, percentile  # noqa: E402
from node_throughput import make_txs  # noqa: E402

from hcnode.testnet import Testnet  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LATENCY_BATCH = 100


def start_testnet() -> tuple[Testnet, Path]:
    workdir = Path(tempfile.mkdtemp(prefix="hcbc", dir="/tmp"))
    text = (REPO / "configs" / "testnet-3.toml").read_text()
    text = re.sub(r'dir = ".*"', 'dir = "."', text)
    text = re.sub(r"base_port = \d+", "base_port = 0", text).replace('log_level = "info"', 'log_level = "warning"')
    text = text.replace("log_level = \"warning\"\n\n[testnet]", "log_level = \"warning\"\n\n[testnet]")
    (workdir / "testnet.toml").write_text(text.replace("chain_id = \"hcnode-testnet-3\"", "chain_id = \"hcnode-bench\""))
    net = Testnet(workdir / "testnet.toml")
    net.up(detach=False, timeout=60)
    return net, workdir


def stop_testnet(net: Testnet, workdir: Path) -> None:
    for node in net.nodes:
        net.kill(node)
    shutil.rmtree(workdir, ignore_errors=True)


def run_once(txs: list[bytes], rate: float | None, batch: int = BATCH) -> tuple[float, list[float], float | None]:
    net, workdir = start_testnet()
    try:
        leader = net.wait_leader()
        rate_committed, latencies = measure_load(leader.socket, txs, rate, batch)
        recovery = None
        if rate is None:  # measure failover on the saturated run's testnet, with transactions pending
            survivors = [n for n in net.nodes if n is not leader]
            extra = make_txs(2000)
            survivors[0].call("tx.submit_batch", txs=[t.hex() for t in extra])
            before = max((n.info() or {"height": 0})["height"] for n in survivors)
            net.kill(leader)
            killed = time.perf_counter()
            while time.perf_counter() - killed < 30:
                if any((i := n.info()) is not None and i["height"] > before for n in survivors):
                    recovery = time.perf_counter() - killed
                    break
                time.sleep(0.01)
        return rate_committed, latencies, recovery
    finally:
        stop_testnet(net, workdir)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--txs", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--no-peers", action="store_true")
    args = parser.parse_args()
    txs = make_txs(args.txs)
    rates, recoveries = [], []
    for run in range(args.runs):
        rate, _, recovery = run_once(txs, None)
        rates.append(rate)
        recoveries.append(recovery)
        print(f"  saturated run {run + 1}: {rate:,.0f} committed tx/s; kill -9 leader -> first new commit "
              f"{'none in 30 s' if recovery is None else f'{recovery * 1000:.0f} ms'}", flush=True)
    saturated = statistics.median(rates)
    half = saturated / 2
    n = min(len(txs), int(half * 4))
    _, latencies, _ = run_once(txs[:n], half, LATENCY_BATCH)
    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    print(f"hcnode 3-node testnet: {saturated:,.0f} committed tx/s (target >= 5,000); at {half:,.0f} tx/s "
          f"(batches of {LATENCY_BATCH}) p50 {p50:.1f} ms, p99 {p99:.1f} ms (targets 100 / 500 ms)")
    valid = [r for r in recoveries if r is not None]
    print(f"kill -9 leader -> first new commit: {max(valid) * 1000:.0f} ms worst of {len(valid)} (target < 2,000)"
          if valid else "kill -9 leader: NO new commit within 30 s")
    if args.no_peers:
        return 0
    try:
        import peers  # benchmarks/peers.py, from main
    except ImportError:
        print("benchmarks/peers.py not found: no peer comparison")
        return 0
    for name, measure in (("etcd (3 members)", peers.measure_etcd), ("PySyncObj (3 nodes)", peers.measure_pysyncobj)):
        try:
            result = measure(min(args.txs, 20_000), 200)
        except Exception as exc:  # a missing peer binary must not hide our own figures
            print(f"{name}: not measured ({exc})")
            continue
        print(f"{name}: {result['ops_per_s']:,.0f} ops/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms"
              f"; hcnode/{name.split()[0]} throughput ratio {saturated / result['ops_per_s']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
