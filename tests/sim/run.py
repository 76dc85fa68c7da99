"""Run simulated schedules from the command line.

    python -m tests.sim.run --seed 1234 --nodes 5      # replay one schedule exactly
    python -m tests.sim.run --schedules 20000          # many seeds, half 3-node, half 5-node
    python -m tests.sim.run --schedules 2000 --profile figure8 --mutation commit_previous_terms

Schedule k of a batch uses seed k with 3 nodes for even k and 5 nodes for odd
k, so any failure printed as `FAILED seed=S nodes=N: ...` replays with
`--seed S --nodes N`.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time

from .simulator import MUTATIONS, PROFILES, SimResult, run_schedule


def schedule_for(k: int, first_seed: int = 0) -> tuple[int, int]:
    seed = first_seed + k
    return seed, 3 if k % 2 == 0 else 5


def _run(args: tuple[int, int, str, str]) -> SimResult:
    seed, nodes, mutation, profile = args
    return run_schedule(seed, nodes, mutation, profile)


def run_many(
    schedules: list[tuple[int, int]],
    mutation: str = "none",
    workers: int | None = None,
    profile: str = "default",
) -> list[SimResult]:
    """Run schedules, in parallel when `workers` > 1; results keep the input order."""
    jobs = [(seed, nodes, mutation, profile) for seed, nodes in schedules]
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if workers <= 1:
        return [_run(job) for job in jobs]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return pool.map(_run, jobs, chunksize=16)


def summarize(results: list[SimResult], seconds: float) -> str:
    failures = [r for r in results if not r.ok]
    recovered = [r.ticks_to_recover for r in results if r.ticks_to_recover is not None]
    median = statistics.median(recovered) if recovered else None
    worst = max(recovered) if recovered else None
    commits = sum(r.commits for r in results)
    three = sum(1 for r in results if r.nodes == 3)
    return (
        f"schedules run: {len(results)} ({three} with 3 nodes, {len(results) - three} with 5 nodes)\n"
        f"failures: {len(failures)}\n"
        f"median ticks to recover after healing: {median} (max {worst})\n"
        f"commits: {commits} (applied proposals, summed over schedules)\n"
        f"wall time: {seconds:.1f}s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim.run", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, help="replay this one seed")
    parser.add_argument("--nodes", type=int, choices=(3, 5), default=3)
    parser.add_argument("--schedules", type=int, help="run this many seeds")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--mutation", choices=MUTATIONS, default="none", help="run a deliberately broken variant")
    parser.add_argument("--profile", choices=PROFILES, default="default", help="knob distribution of the schedules")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)

    if args.seed is not None:
        result = run_schedule(args.seed, args.nodes, args.mutation, args.profile)
        print(result.line())
        return 0 if result.ok else 1
    count = args.schedules if args.schedules is not None else 200
    started = time.monotonic()
    schedules = [schedule_for(k, args.first_seed) for k in range(count)]
    results = run_many(schedules, args.mutation, args.workers, args.profile)
    for result in results:
        if not result.ok:
            print(result.line())
    print(summarize(results, time.monotonic() - started))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
