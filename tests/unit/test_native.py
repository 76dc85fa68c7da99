"""The optional mypyc build (hcnode/native.py): a stale extension is refused, and CI's compiled run is compiled."""

from __future__ import annotations

import importlib.machinery
import os
from pathlib import Path

from hcnode import native


def test_an_extension_older_than_its_source_is_reported_and_a_fresh_one_is_not(tmp_path: Path) -> None:
    source = tmp_path / "hcnode" / "codec.py"
    source.parent.mkdir()
    source.write_text("# source\n")
    assert native.stale_builds(tmp_path) == []  # no extension: the source runs
    extension = source.with_name("codec" + importlib.machinery.EXTENSION_SUFFIXES[0])
    extension.write_bytes(b"")
    os.utime(source, (1_000_000, 1_000_000))
    os.utime(extension, (2_000_000, 2_000_000))
    assert native.stale_builds(tmp_path) == []
    os.utime(source, (3_000_000, 3_000_000))  # the source was edited after the build
    assert native.stale_builds(tmp_path) == [f"hcnode/codec.py is newer than {extension.name}"]


def test_this_process_runs_all_or_none_of_the_compiled_modules() -> None:
    """A partial build would mix compiled and interpreted cores; CI's native run (HCNODE_EXPECT_NATIVE=1)
    must really run the compiled ones, and the plain run the sources."""
    described = native.describe()
    compiled = native.compiled_modules()
    assert len(compiled) in (0, len(native.COMPILED)), compiled
    expected = os.environ.get("HCNODE_EXPECT_NATIVE")
    if expected is not None:
        assert bool(compiled) == (expected == "1"), described
