"""One node, pre-signed transactions over the Unix socket: committed tx/s and commit latency.

    python benchmarks/node_throughput.py [--txs 60000] [--runs 3]

Prints, from one run on this machine:
  * the ceiling: raw coincurve signature verifications per second on one core
    (every transaction is verified once, so a node cannot commit faster);
  * saturated throughput: all transactions submitted in batches as fast as the
    socket takes them; committed tx/s = transactions / (last commit - first submit);
  * latency at half that load: transactions paced at 50 % of the measured rate,
    p50 / p99 from submit to the moment the block holding them is visible over RPC.
Medians over --runs repetitions, and the ratio to the ceiling. Targets (issue 3):
>= 10,000 committed tx/s on one node; p99 < 250 ms at half that load.

The transactions are patient self-registrations from fresh keys: each one is a
real state transition (nonce, key record, patient record), not a no-op.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import coincurve  # noqa: E402

from hcnode import crypto, native  # noqa: E402
from hcnode.chain import build_tx  # noqa: E402

from benchkit import BenchNode, measure_load, percentile  # noqa: E402

CHAIN_ID = "hcnode-bench"


def verify_ceiling(seconds: float = 1.0) -> float:
    key = coincurve.PrivateKey()
    digest = hashlib.sha256(b"bench").digest()
    signature = key.sign(digest, hasher=None)
    public = coincurve.PublicKey(key.public_key.format())
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(1000):
            public.verify(signature, digest, hasher=None)
        count += 1000
    return count / (time.perf_counter() - start)


def make_txs(n: int) -> list[bytes]:
    return [build_tx(crypto.PrivateKey.generate(), CHAIN_ID, "registry.patient_register", 0, {}) for _ in range(n)]


def run_once(txs: list[bytes], rate: float | None) -> tuple[float, list[float]]:
    """One fresh node: (committed tx/s, latencies in s) for ``txs`` saturated or paced at ``rate``."""
    with BenchNode(CHAIN_ID) as node:
        return measure_load(node.socket, txs, rate)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--txs", type=int, default=60_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; {args.txs} pre-signed patient registrations per run, {args.runs} runs; "
          f"build: {native.describe()}")
    ceiling = statistics.median(verify_ceiling() for _ in range(3))
    print(f"ceiling: coincurve verify {ceiling:,.0f} signatures/s on one core")
    txs = make_txs(args.txs)
    rates = []
    for run in range(args.runs):
        rate, _ = run_once(txs, None)
        rates.append(rate)
        print(f"  saturated run {run + 1}: {rate:,.0f} committed tx/s")
    saturated = statistics.median(rates)
    half = saturated / 2
    p50s, p99s = [], []
    for run in range(args.runs):
        n = min(len(txs), int(half * 4))  # about four seconds of paced load
        _, latencies = run_once(txs[:n], half)
        p50s.append(percentile(latencies, 0.50) * 1000)
        p99s.append(percentile(latencies, 0.99) * 1000)
        print(f"  paced run {run + 1} at {half:,.0f} tx/s: p50 {p50s[-1]:.1f} ms, p99 {p99s[-1]:.1f} ms")
    print()
    print(f"committed throughput (median): {saturated:,.0f} tx/s  = {saturated / ceiling:.2f} x the verify ceiling"
          f"  (target >= 10,000: {'met' if saturated >= 10_000 else 'NOT met'})")
    p99 = statistics.median(p99s)
    print(f"latency at half load (median of runs): p50 {statistics.median(p50s):.1f} ms, p99 {p99:.1f} ms"
          f"  (target p99 < 250 ms: {'met' if p99 < 250 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
