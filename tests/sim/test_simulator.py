"""Randomized, seeded cluster schedules checked against Raft's safety and
liveness properties after every step (see simulator.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .run import run_many
from .simulator import Schedule, Simulator, run_schedule

SEEDS_PER_SIZE = 1000
"""CI runs 1,000 default schedules with 3 nodes and 1,000 with 5 nodes, plus
200 of the figure8 profile, and mutated ones (test_mutations.py)."""
WORKERS = min(2, os.cpu_count() or 1)
REPO_ROOT = Path(__file__).resolve().parents[2]


def _assert_all_pass(nodes: int, count: int) -> None:
    results = run_many([(seed, nodes) for seed in range(count)], workers=WORKERS)
    failures = [r.line() for r in results if not r.ok]
    assert not failures, "\n".join(failures[:20])
    assert all(r.ticks_to_recover is not None for r in results)
    assert sum(r.commits for r in results) > count  # the clients got work done


@pytest.mark.slow
def test_random_schedules_keep_raft_invariants_with_3_nodes() -> None:
    _assert_all_pass(3, SEEDS_PER_SIZE)


@pytest.mark.slow
def test_random_schedules_keep_raft_invariants_with_5_nodes() -> None:
    _assert_all_pass(5, SEEDS_PER_SIZE)


def test_same_seed_replays_bit_for_bit() -> None:
    first = run_schedule(1234, 5)
    second = run_schedule(1234, 5)
    assert first == second
    assert first.digest == second.digest
    assert run_schedule(1235, 5).digest != first.digest


def test_replay_command_prints_one_line_for_the_seed() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "tests.sim.run", "--seed", "7", "--nodes", "3"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout == run_schedule(7, 3).line() + "\n"


def test_unpersisted_tail_is_lost_on_crash() -> None:
    sim = Simulator(Schedule.from_seed(3, 3))
    sim.nodes["n1"].raw.campaign()  # type: ignore[union-attr]
    raw = sim.nodes["n1"].raw
    assert raw is not None and raw.has_ready()
    sim._crash("n1")  # before its Ready (new term, vote) was persisted
    sim._start("n1")
    restarted = sim.nodes["n1"].raw
    assert restarted is not None
    assert restarted.status().term == 0
    assert sim.nodes["n1"].storage.initial_state().vote is None


@pytest.mark.slow
def test_figure8_profile_schedules_keep_raft_invariants() -> None:
    """One entry per append, one append in flight, frequent faults and a
    nemesis that cuts off leaders right after they append and after they commit."""
    schedules = [(seed, 3 if seed % 2 == 0 else 5) for seed in range(200)]
    results = run_many(schedules, workers=WORKERS, profile="figure8")
    failures = [r.line() for r in results if not r.ok]
    assert not failures, "\n".join(failures[:20])
