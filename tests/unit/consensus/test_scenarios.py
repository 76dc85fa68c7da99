"""Golden-output Raft scenarios from testdata/*.txt (see scenario.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from .scenario import run_file

TESTDATA = Path(__file__).parent / "testdata"


@pytest.mark.parametrize("path", sorted(TESTDATA.glob("*.txt")), ids=lambda p: p.stem)
def test_scenario_matches_golden_output(path: Path) -> None:
    expected, actual = run_file(path)
    assert actual == expected
