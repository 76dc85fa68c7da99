"""The 3-node Raft testnet on loopback: committed tx/s, p50/p99 commit latency, kill -9 leader recovery; peers.

    python benchmarks/consensus.py [--txs 30000] [--runs 1] [--no-peers]

Pre-signed patient registrations are submitted in batches to the LEADER over its
Unix socket (as benchmarks/node_throughput.py does for one node); a transaction
counts as committed when its block is visible on the leader, which applies only
Raft-committed blocks (a majority persisted it). Latency is measured at half the
saturated rate, with clients sending batches of 100 (LATENCY_BATCH) as interactive wallets
would, rather than the 1,000 of the throughput runs: --runs runs of 10 s of load, medians. Recovery: ``kill -9`` of the leader to the first new block on a
survivor. If benchmarks/peers.py is present, a 3-member etcd cluster and a
3-node PySyncObj cluster run in the same invocation and ratios are printed.

Because these shared machines differ from day to day by a factor of two or more, the run
also prints what it measured of the machine itself: coincurve verifications per second on
one core (each node verifies every transaction once), and the CPU each process spent per
committed transaction during the saturated runs (each node's main process and its verifier
process, from /proc). Their sum against the 2 cores says how close the run came to
the CPU the machine had, and which process to look at first.
"""

from __future__ import annotations

import argparse
import os
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
from node_throughput import make_txs, verify_ceiling  # noqa: E402

from hcnode import native  # noqa: E402
from hcnode.testnet import Testnet, TestnetNode  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LATENCY_BATCH = 100
LATENCY_SECONDS = 10  # of paced load per latency run
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (Linux /proc), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def node_processes(net: Testnet, leader: TestnetNode) -> dict[str, list[int]]:
    """Each node's main process and its child processes (the verifier), named by role."""
    found: dict[str, list[int]] = {}
    followers = 0
    for node in sorted(net.nodes, key=lambda n: n is not leader):  # the leader first
        pid = node.pid()
        if pid is None:
            continue
        if node is leader:
            name = "leader"
        else:
            followers += 1
            name = f"follower {followers}"
        found[name] = [pid]
        children = []
        for task in Path(f"/proc/{pid}/task").glob("*/children"):  # a child belongs to the thread that started it
            try:
                children += [int(child) for child in task.read_text().split()]
            except OSError:
                continue
        found[f"{name} verifier"] = children
    return found


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


def run_once(txs: list[bytes], rate: float | None, batch: int = BATCH,
             cpu: dict[str, list[float]] | None = None) -> tuple[float, list[float], float | None]:
    """One fresh testnet: (committed tx/s, latencies, kill -9 recovery in s for a saturated run).

    ``cpu``, if given, receives each process's CPU microseconds per committed transaction."""
    net, workdir = start_testnet()
    try:
        leader = net.wait_leader()
        processes = node_processes(net, leader)
        before = {name: sum(map(cpu_seconds, pids)) for name, pids in processes.items()}
        rate_committed, latencies = measure_load(leader.socket, txs, rate, batch)
        if cpu is not None:
            for name, pids in processes.items():
                cpu.setdefault(name, []).append((sum(map(cpu_seconds, pids)) - before[name]) / len(txs) * 1e6)
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
    ceiling = verify_ceiling()
    print(f"machine: {os.cpu_count()} cores; coincurve verifies {ceiling:,.0f} signatures/s on one core "
          f"({1e6 / ceiling:.0f} us each); build: {native.describe()}", flush=True)
    txs = make_txs(args.txs)
    rates, recoveries = [], []
    cpu: dict[str, list[float]] = {}
    for run in range(args.runs):
        rate, _, recovery = run_once(txs, None, cpu=cpu)
        rates.append(rate)
        recoveries.append(recovery)
        print(f"  saturated run {run + 1}: {rate:,.0f} committed tx/s; kill -9 leader -> first new commit "
              f"{'none in 30 s' if recovery is None else f'{recovery * 1000:.0f} ms'}", flush=True)
    saturated = statistics.median(rates)
    per_process = {name: statistics.median(values) for name, values in cpu.items()}
    total = sum(per_process.values())
    print("CPU per committed tx while saturated (median of runs): "
          + ", ".join(f"{name} {us:.0f} us" for name, us in per_process.items())
          + f"; all processes {total:.0f} us, so {os.cpu_count()} cores allow {os.cpu_count() * 1e6 / total:,.0f} tx/s;"
          f" signature checks alone (3 nodes x {1e6 / ceiling:.0f} us) would allow "
          f"{os.cpu_count() * ceiling / 3:,.0f} tx/s", flush=True)
    half = saturated / 2
    n = min(len(txs), int(half * LATENCY_SECONDS))
    p50s, p99s = [], []
    for run in range(args.runs):  # one short run is at the mercy of a stall on this shared machine: medians
        _, latencies, _ = run_once(txs[:n], half, LATENCY_BATCH)
        p50s.append(percentile(latencies, 0.5) * 1000)
        p99s.append(percentile(latencies, 0.99) * 1000)
        print(f"  latency run {run + 1}: {n:,} txs at {half:,.0f} tx/s: p50 {p50s[-1]:.1f} ms, p99 {p99s[-1]:.1f} ms",
              flush=True)
    p50, p99 = statistics.median(p50s), statistics.median(p99s)
    print(f"hcnode 3-node testnet: {saturated:,.0f} committed tx/s (target >= 5,000); at {half:,.0f} tx/s "
          f"(batches of {LATENCY_BATCH}) p50 {p50:.1f} ms, p99 {p99:.1f} ms, medians of {args.runs} runs "
          f"(targets 100 / 500 ms)")
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
