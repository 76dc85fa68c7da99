"""The log's stable/unstable split and MemoryStorage's index rules."""
from __future__ import annotations

import pytest

from hcnode.consensus import CompactedError, Entry, MemoryStorage, RaftError, UnavailableError
from hcnode.consensus.log import RaftLog


def entries(*terms: int, start: int = 1) -> list[Entry]:
    return [Entry(term=t, index=i, data=b"%d" % i) for i, t in enumerate(terms, start=start)]


def test_memory_storage_append_replaces_conflicting_suffix() -> None:
    storage = MemoryStorage()
    storage.append(entries(1, 1, 1))
    storage.append(entries(2, 2, start=2))
    assert [storage.term(i) for i in range(1, 4)] == [1, 2, 2]
    assert storage.last_index() == 3


def test_memory_storage_refuses_gaps() -> None:
    storage = MemoryStorage()
    storage.append(entries(1))
    with pytest.raises(RaftError):
        storage.append(entries(1, start=3))


def test_compaction_keeps_the_term_of_the_compaction_point() -> None:
    storage = MemoryStorage()
    storage.append(entries(1, 1, 2, 2))
    storage.compact(2)
    assert storage.first_index() == 3
    assert storage.term(2) == 1
    with pytest.raises(CompactedError):
        storage.term(1)
    with pytest.raises(CompactedError):
        storage.entries(2, 4)
    with pytest.raises(UnavailableError):
        storage.entries(3, 6)
    assert [e.index for e in storage.entries(3, 5)] == [3, 4]


def test_unstable_entries_become_stable_only_when_terms_match() -> None:
    storage = MemoryStorage()
    log = RaftLog(storage)
    log.append(entries(1, 1))
    assert [e.index for e in log.unstable_entries()] == [1, 2]
    persisted = log.unstable_entries()
    # A new leader rewrote index 2 while the caller was persisting.
    log.append(entries(2, start=2))
    storage.append(persisted)
    log.stable_to(2, 1)  # stale: term 1 at index 2 is no longer ours
    assert [e.term for e in log.unstable_entries()] == [1, 2]


def test_log_never_truncates_committed_entries() -> None:
    log = RaftLog(MemoryStorage())
    log.append(entries(1, 1, 1))
    log.commit_to(2)
    with pytest.raises(RaftError):
        log.append(entries(2, start=2))


def test_find_conflict_by_term_skips_whole_terms() -> None:
    log = RaftLog(MemoryStorage())
    log.append(entries(1, 1, 3, 3, 3, 5, 5))
    assert log.find_conflict_by_term(7, 4) == (5, 3)
    assert log.find_conflict_by_term(7, 2) == (2, 1)
    assert log.find_conflict_by_term(7, 0) == (0, 0)


def test_up_to_date_compares_last_term_then_length() -> None:
    log = RaftLog(MemoryStorage())
    log.append(entries(1, 2, 2))
    assert log.is_up_to_date(1, 3)
    assert log.is_up_to_date(3, 2)
    assert not log.is_up_to_date(2, 2)
    assert not log.is_up_to_date(9, 1)
