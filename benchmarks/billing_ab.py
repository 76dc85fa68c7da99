"""Claims applied per second by two checkouts of hcnode, measured side by side in one sitting.

    git worktree add /tmp/before main      # the code to compare against (build it as this one is built)
    python benchmarks/billing_ab.py /tmp/before [--claims 100000] [--window 30000] [--rounds 10]

Why: these shared machines drift by +-15% within minutes and by more from day to day, more than
most changes move the figure, so two runs of benchmarks/billing.py minutes apart compare the
machine, not the code. Here two worker processes (this checkout and OTHER) each fill their own
LevelDB store to --claims claims with benchmarks/billing.py's chain, then take turns: one window
of --window claims, then the other, the order swapped every round, so both see the same minutes.
The applying thread's CPU rate is the steadiest figure (LevelDB's background threads of one
worker may still run during the other's window); wall and process-CPU rates are printed too.

    python benchmarks/billing_ab.py /tmp/before --instructions [--claims 10000]

counts instead of timing: each checkout applies --claims claims under valgrind's callgrind,
which counts the instructions executed inside ``execute`` and ``Store.commit_block`` (their
compiled C functions: both checkouts must be the native build), once with no claims and once
with --claims; the difference per claim does not move with the machine's load (the same count
to 0.1% run after run, with PYTHONHASHSEED fixed). It misses what instructions do not show
(cache misses, disk waits, LevelDB's background threads), and SHA-256 runs in software under
valgrind, so hashing weighs more there than here. Needs valgrind (Debian: valgrind).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FIGURES = ("wall", "process CPU", "applying thread")


@contextlib.contextmanager
def billing_chain(root: str, patients: int) -> Iterator[tuple[Any, Any, Any, list[str]]]:
    """``root``'s billing module and a chain set up as benchmarks/billing.py sets it up, with its clerk
    and ``patients`` patient ids, in a scratch store removed afterwards."""
    sys.path[:0] = [root, str(Path(root) / "benchmarks")]
    import billing
    from hcnode import crypto
    from hcnode.node.runtime import tune_gc

    tune_gc()
    workdir = Path(tempfile.mkdtemp(prefix="hcbill-ab-", dir="/tmp"))
    try:
        chain = billing.Chain(workdir / "db")
        clerk = crypto.PrivateKey(b"\x07" * 32)
        billing.setup(chain, clerk, crypto.PrivateKey(b"\x08" * 32))
        # Built here, not by billing.patient_ids: the other checkout may predate that helper.
        yield billing, chain, clerk, [f"pt-{hashlib.sha256(b'p%d' % i).hexdigest()[:24]}" for i in range(patients)]
        chain.store.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def worker(root: str, claims: int, window: int) -> None:
    """Fill a store, say "ready", then apply one window per "go" line and print its three rates."""
    with billing_chain(root, 200_000) as (billing, chain, clerk, patients):
        rng = random.Random(6)
        for done in range(0, claims, 100_000):
            billing.fill(chain, clerk, rng, patients, min(100_000, claims - done))
        print(f"ready {billing.native.describe()}", flush=True)
        for line in sys.stdin:
            if line.strip() != "go":
                break
            print(*(round(rate) for rate in billing.fill(chain, clerk, rng, patients, window)), flush=True)


def count_worker(root: str, claims: int) -> None:
    """Set up the chain and apply ``claims`` claims, for callgrind to count (see ``instructions``)."""
    with billing_chain(root, 20_000) as (billing, chain, clerk, patients):
        build = billing.native.describe()  # imports every compiled module
        if len(billing.native.compiled_modules()) != len(billing.native.COMPILED):
            raise SystemExit(f"{root}: counting needs the native build (HCNODE_MYPYC=1); this is {build}")
        billing.fill(chain, clerk, random.Random(6), patients, claims)


COUNTED = ("CPyDef_execute___execute", "CPyDef_store___Store___commit_block")


def instructions(root: str, claims: int) -> int:
    """Instructions callgrind counts inside ``COUNTED`` while ``count_worker`` applies ``claims`` claims."""
    with tempfile.TemporaryDirectory() as scratch:
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/out",
                   *(f"--toggle-collect={name}" for name in COUNTED),
                   sys.executable, __file__, root, "--count-worker", "--claims", str(claims)]
        run = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run of {root} failed (exit {run.returncode}):\n{run.stderr[-2000:]}")
    return int(found.group(1))


def compare_instructions(roots: dict[str, str], claims: int) -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (Debian: apt-get install valgrind)")
    per_claim = {}
    for name, root in roots.items():
        base, loaded = instructions(root, 0), instructions(root, claims)
        per_claim[name] = (loaded - base) / claims
        print(f"{name}: {root}: {per_claim[name]:,.0f} instructions per claim "
              f"({loaded:,} with {claims:,} claims, {base:,} for the setup alone)", flush=True)
    print(f"instructions per claim (this / other): {per_claim['this']:,.0f} / {per_claim['other']:,.0f} "
          f"= x{per_claim['this'] / per_claim['other']:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", help="the other checkout (a directory holding hcnode/ and benchmarks/)")
    parser.add_argument("--claims", type=int, help="claims in each store before the windows (default 100,000); "
                                                    "with --instructions, claims counted (default 10,000)")
    parser.add_argument("--window", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions per claim under callgrind instead (--claims default 10,000)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--count-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.claims is None:
        args.claims = 10_000 if args.instructions else 100_000
    if args.worker:
        worker(args.other, args.claims, args.window)
        return 0
    if args.count_worker:
        count_worker(args.other, args.claims)
        return 0
    here = str(Path(__file__).resolve().parents[1])
    other = str(Path(args.other).resolve())
    if not (Path(other) / "benchmarks" / "billing.py").exists():
        parser.error(f"{other} is not an hcnode checkout (no benchmarks/billing.py)")
    roots = {"this": here, "other": other}
    if args.instructions:
        compare_instructions(roots, args.claims)
        return 0
    procs = {name: subprocess.Popen([sys.executable, __file__, root, "--worker", "--claims", str(args.claims),
                                     "--window", str(args.window)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for name, root in roots.items()}
    rates: dict[str, list[tuple[int, ...]]] = {name: [] for name in roots}
    try:
        for name, proc in procs.items():
            assert proc.stdout is not None
            ready = proc.stdout.readline().split(" ", 1)
            if ready[0] != "ready":
                raise SystemExit(f"the {name} checkout's worker failed while filling its store")
            print(f"{name}: {roots[name]}; build: {ready[1].strip()}; {args.claims:,} claims in state", flush=True)
        for round_number in range(args.rounds):
            order = list(procs) if round_number % 2 == 0 else list(procs)[::-1]
            for name in order:
                proc = procs[name]
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
                rates[name].append(tuple(map(int, proc.stdout.readline().split())))
                print(f"   round {round_number + 1} {name:>5}: " + ", ".join(
                    f"{figure} {rate:,}/s" for figure, rate in zip(FIGURES, rates[name][-1])), flush=True)
    finally:
        for proc in procs.values():
            assert proc.stdin is not None
            try:
                proc.stdin.write("stop\n")
                proc.stdin.close()
            except BrokenPipeError:  # that worker already failed (its error is above)
                pass
            proc.wait()
    print(f"claims/s, medians of {args.rounds} windows of {args.window:,} (this / other):")
    for index, figure in enumerate(FIGURES):
        mine, theirs = (statistics.median(r[index] for r in rates[name]) for name in ("this", "other"))
        print(f"   {figure:>15}: {mine:8,.0f} / {theirs:8,.0f} = x{mine / theirs:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
