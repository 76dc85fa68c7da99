"""Drug traceability on one real node: commissioning throughput and drugs.verify latency over the socket.

    python benchmarks/drugs.py [--units 1000000] [--runs 3] [--queries 3000]

Per run: a fresh node (LevelDB, real process, Unix socket) with limits.max_tx_bytes
raised to 256 KiB so a transaction carries 10,000 serials (the issue's batch size);
--units serials are commissioned in transactions of 10,000 pre-signed before the
clock starts; throughput = units / (last commit - first submit). Then, with all
units in state, --queries drugs.verify calls for random serials (half by GTIN +
serial, half as a scanned element string), one at a time on one connection:
p50 / p99 latency. A signed verify (trail + Merkle proof) is timed as well.
Medians over --runs (the machine is shared). Targets (issue 5): >= 100,000
units/s commissioned; verify p99 < 5 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hcnode import crypto  # noqa: E402
from hcnode.apps.drugs.app import AS_PURPOSE, query_proof  # noqa: E402
from hcnode.chain import build_tx  # noqa: E402
from benchkit import BenchNode, percentile  # noqa: E402
from hcnode.wallet.client import RpcClient  # noqa: E402

CHAIN_ID = "hcnode-drugs-bench"
GTIN = "09506000134352"
PER_TX = 10_000
BATCH_TXS = 10


def wait_ok(client: RpcClient, tx_hash: str) -> None:
    outcome = client.call("tx.wait", tx=tx_hash, timeout_ms=60_000)
    if outcome["status"] != "committed" or outcome["receipt"]["status"] != "ok":
        raise RuntimeError(f"transaction failed: {outcome}")


def run_once(units: int, queries: int) -> tuple[float, float, float, float, float]:
    acme = crypto.PrivateKey.generate()
    node = BenchNode(CHAIN_ID, orgs={"acme": ("manufacturer", acme)}, limits={"max_tx_bytes": 262144},
                     prefix="hcdrug-")
    try:
        with RpcClient(node.socket, timeout=120) as client:
            setup = [("registry.member_roles", {"member": "acme/admin-1", "roles": ["admin", "supply_chain"]}),
                     ("drugs.product_register", {"gtin": GTIN, "name": "Amoxicillin", "form": "capsule",
                                                 "strength": "500 mg"})]
            for nonce, (tx_type, payload) in enumerate(setup):
                raw = build_tx(acme, CHAIN_ID, tx_type, nonce, payload)
                wait_ok(client, client.call("tx.submit", tx=raw.hex())["tx"])
            serials = [f"SN{i:010d}" for i in range(units)]
            txs = [build_tx(acme, CHAIN_ID, "drugs.commission",
                            len(setup) + n, {"gtin": GTIN, "lot": f"L{n // 10}", "expiry": "2030-12-31",
                                             "serials": serials[i:i + PER_TX]})
                   for n, i in enumerate(range(0, units, PER_TX))]
            hexed = [tx.hex() for tx in txs]
            start = time.perf_counter()
            for i in range(0, len(hexed), BATCH_TXS):
                result = client.call("tx.submit_batch", txs=hexed[i:i + BATCH_TXS])
                errors = [r["error"] for r in result["results"] if "error" in r]
                if errors:
                    raise RuntimeError(f"submit refused: {errors[0]}")
            wait_ok(client, hashlib.sha256(txs[-1]).hexdigest())
            commissioning = units / (time.perf_counter() - start)
            for tx in txs:  # every commissioning transaction must have succeeded
                wait_ok(client, hashlib.sha256(tx).hexdigest())

            rng = random.Random(7)
            latencies = []
            for n in range(queries):
                serial = serials[rng.randrange(units)]
                params = {"gtin": GTIN, "serial": serial} if n % 2 else {"scan": f"(01){GTIN}(21){serial}"}
                t0 = time.perf_counter()
                answer = client.call("drugs.verify", **params)
                latencies.append(time.perf_counter() - t0)
                if answer["verdict"] != "VERIFIED":
                    raise RuntimeError(f"unexpected verdict {answer}")
            signed = []
            for _ in range(max(50, queries // 10)):
                serial = serials[rng.randrange(units)]
                height = client.call("block.head")["height"]
                proof_params = {"gtin": GTIN, "serial": serial, "as_key": acme.public, "as_height": height}
                sig = acme.sign(CHAIN_ID, AS_PURPOSE, query_proof("drugs.verify", proof_params, height))
                t0 = time.perf_counter()
                answer = client.call("drugs.verify", gtin=GTIN, serial=serial, as_key=acme.public.hex(),
                                     as_height=height, as_sig=sig.hex())
                signed.append(time.perf_counter() - t0)
                assert "tx_proof" in answer
            return (commissioning, percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000,
                    percentile(signed, 0.5) * 1000, percentile(signed, 0.99) * 1000)
    finally:
        node.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--queries", type=int, default=3000)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; {args.units:,} units commissioned per run in transactions of "
          f"{PER_TX:,}; {args.queries:,} verifies; {args.runs} runs")
    results = []
    for run in range(args.runs):
        results.append(run_once(args.units, args.queries))
        rate, p50, p99, sp50, sp99 = results[-1]
        print(f"  run {run + 1}: commissioning {rate:,.0f} units/s; verify p50 {p50:.2f} ms, p99 {p99:.2f} ms; "
              f"signed verify with trail and proof p50 {sp50:.2f} ms, p99 {sp99:.2f} ms")
    rate = statistics.median(r[0] for r in results)
    p50 = statistics.median(r[1] for r in results)
    p99 = statistics.median(r[2] for r in results)
    sp50 = statistics.median(r[3] for r in results)
    sp99 = statistics.median(r[4] for r in results)
    print()
    print(f"commissioning (median): {rate:,.0f} units/s  (target >= 100,000: {'met' if rate >= 100_000 else 'NOT met'})")
    print(f"drugs.verify over the socket with {args.units:,} units in state (median of runs): p50 {p50:.2f} ms, "
          f"p99 {p99:.2f} ms  (target p99 < 5 ms: {'met' if p99 < 5 else 'NOT met'})")
    print(f"signed drugs.verify (trail + Merkle proof): p50 {sp50:.2f} ms, p99 {sp99:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
