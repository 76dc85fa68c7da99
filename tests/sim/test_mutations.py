"""Mutation sanity: deliberately broken Raft variants must be caught, proving
the checks can fail at all."""
from __future__ import annotations

import os

import pytest

from tests.unit.consensus.figure8 import run_figure8_scenario

from .mutations import commit_previous_terms
from .run import run_many, schedule_for
from .simulator import run_schedule

WORKERS = min(2, os.cpu_count() or 1)


def test_simulator_catches_a_disk_that_forgets_term_and_vote_within_200_seeds() -> None:
    """With hard state unpersisted, a restarted node votes twice in a term."""
    results = run_many([(seed, 3) for seed in range(200)], mutation="skip_hard_state", workers=WORKERS)
    failures = [r for r in results if not r.ok]
    assert failures, "the simulator missed a node that forgets its vote"
    first = failures[0]
    assert first.line().startswith(f"FAILED seed={first.seed} nodes=3: ")
    assert run_schedule(first.seed, 3, "skip_hard_state") == first  # the failure replays exactly
    assert run_schedule(first.seed, 3).ok  # and it is the mutation that fails it


def test_simulator_catches_acknowledgements_sent_before_the_disk_write_within_100_seeds() -> None:
    """Only appends, heartbeats and heartbeat replies may leave while a Ready is being persisted; with
    every message early (acknowledgements and votes too), a crash before the write breaks safety."""
    results = run_many([(seed, 3) for seed in range(100)], mutation="send_before_persist", workers=WORKERS)
    safety = [r for r in results if not r.ok and "liveness" not in r.line()]
    assert safety, "the simulator missed acknowledgements sent before persisting"
    assert run_schedule(safety[0].seed, 3, "send_before_persist") == safety[0]
    assert run_schedule(safety[0].seed, 3).ok  # the real rule (Ready.early_messages) passes the same schedule


def test_simulator_catches_a_vote_written_without_a_sync_within_300_seeds() -> None:
    """Only a hard state that moves nothing but the commit index may skip the fsync (Ready.must_sync);
    a crash then restores the last synced hard state. Treating a new term or vote the same way lets a
    restarted node vote twice in one term."""
    results = run_many([(seed, 3) for seed in range(300)], mutation="unsynced_votes", workers=WORKERS)
    safety = [r for r in results if not r.ok and "liveness" not in r.line()]
    assert safety, "the simulator missed a vote that a crash could forget"
    assert run_schedule(safety[0].seed, 3, "unsynced_votes") == safety[0]
    assert run_schedule(safety[0].seed, 3).ok  # the real rule passes the same schedule


def test_random_figure8_schedules_catch_committing_previous_term_entries_within_40_seeds() -> None:
    """No script: the figure8 profile's nemesis cuts leaders off right after they append and right after
    they commit, and random seeds reach Figure 8 on their own (an old-term entry counted onto a majority
    and committed, then a leader elected without it)."""
    schedules = [(seed, 3 if seed % 2 == 0 else 5) for seed in range(40)]
    results = run_many(schedules, mutation="commit_previous_terms", workers=WORKERS, profile="figure8")
    safety = [r for r in results if not r.ok and "liveness" not in r.line()]
    assert safety, "random figure8 schedules missed a leader that commits previous-term entries by counting"
    first = safety[0]
    assert run_schedule(first.seed, first.nodes, "commit_previous_terms", "figure8") == first  # replays exactly
    assert run_schedule(first.seed, first.nodes, profile="figure8").ok  # and the real rule passes it


@pytest.mark.slow
def test_default_schedules_catch_committing_previous_term_entries_within_600_seeds() -> None:
    """The same bug in the ordinary mix (a quarter of default schedules have each nemesis): rarer, but
    a long `python -m tests.sim.run --schedules 20000` run meets it too."""
    results = run_many([schedule_for(k) for k in range(600)], mutation="commit_previous_terms", workers=WORKERS)
    safety = [r for r in results if not r.ok and "liveness" not in r.line()]
    assert safety, "default schedules missed a leader that commits previous-term entries by counting"
    assert run_schedule(safety[0].seed, safety[0].nodes).ok


def test_figure8_scenario_catches_committing_previous_term_entries_by_counting() -> None:
    run_figure8_scenario()  # passes with the real rule
    with commit_previous_terms(), pytest.raises(AssertionError):
        run_figure8_scenario()
