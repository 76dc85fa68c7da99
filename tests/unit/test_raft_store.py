"""``LevelDBRaftStorage`` on a real LevelDB in a temp dir: what a Ready makes durable survives a reopen.

Every test writes through ``persist``/``compact`` (the only writes the driver makes),
closes the database, opens it again and reads back through a fresh storage, so the
assertions are about the disk, not the memory image.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import plyvel
import pytest

from hcnode.consensus import CompactedError, Entry, EntryType, HardState, UnavailableError
from hcnode.consensus.rawnode import Ready
from hcnode.node.raft_store import LevelDBRaftStorage

A, B = b"\x02" + bytes(32), b"\x03" + bytes(32)


def ready(*, entries: tuple[Entry, ...] = (), hard_state: HardState | None = None,
          restore: tuple[int, int] | None = None) -> Ready:
    return Ready(soft_state=None, hard_state=hard_state, entries=entries, messages=(), committed_entries=(),
                 restore=restore)


def entries(first: int, last: int, term: int) -> tuple[Entry, ...]:
    return tuple(Entry(term=term, index=i, data=b"block-%d-%d" % (term, i)) for i in range(first, last + 1))


class Disk:
    """One LevelDB directory, reopened on demand (as a restarted node would)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = plyvel.DB(str(path), create_if_missing=True)

    def reopen(self) -> LevelDBRaftStorage:
        self.db.close()
        self.db = plyvel.DB(str(self.path))
        return LevelDBRaftStorage(self.db)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    d = Disk(tmp_path / "db")
    yield d
    d.db.close()


def test_a_fresh_database_is_an_empty_log_with_a_zero_hard_state(disk: Disk) -> None:
    storage = LevelDBRaftStorage(disk.db)
    assert storage.initial_state() == HardState()
    assert (storage.first_index(), storage.last_index(), storage.term(0)) == (1, 0, 0)


def test_hard_state_and_entries_survive_a_reopen(disk: Disk) -> None:
    storage = LevelDBRaftStorage(disk.db)
    empty = Entry(term=1, index=1, type=EntryType.EMPTY)
    storage.persist(ready(entries=(empty,) + entries(2, 4, 1), hard_state=HardState(1, A, 3)))
    storage.persist(ready(hard_state=HardState(2, None, 4)))  # a new term, no vote yet
    again = disk.reopen()
    assert again.initial_state() == HardState(2, None, 4)
    assert (again.first_index(), again.last_index()) == (1, 4)
    assert again.entries(1, 5) == [empty] + list(entries(2, 4, 1))
    assert again.entries(1, 5) == storage.entries(1, 5)  # the memory image followed the disk


def test_a_vote_survives_a_reopen(disk: Disk) -> None:
    LevelDBRaftStorage(disk.db).persist(ready(hard_state=HardState(7, B, 0)))
    assert disk.reopen().initial_state() == HardState(7, B, 0)


def test_a_conflicting_tail_is_truncated_on_disk(disk: Disk) -> None:
    storage = LevelDBRaftStorage(disk.db)
    storage.persist(ready(entries=entries(1, 6, 1), hard_state=HardState(1, A, 2)))
    # A new leader of term 2 overwrites our uncommitted entries from 3: 3..4 replace 3..6.
    storage.persist(ready(entries=entries(3, 4, 2), hard_state=HardState(2, B, 2)))
    assert storage.last_index() == 4
    again = disk.reopen()
    assert again.last_index() == 4
    assert [e.term for e in again.entries(1, 5)] == [1, 1, 2, 2]
    assert again.entries(3, 5) == list(entries(3, 4, 2))
    with pytest.raises(UnavailableError):
        again.term(5)


def test_appending_after_the_tail_keeps_what_is_stored(disk: Disk) -> None:
    storage = LevelDBRaftStorage(disk.db)
    storage.persist(ready(entries=entries(1, 3, 1)))
    storage.persist(ready(entries=entries(4, 5, 1)))
    assert disk.reopen().entries(1, 6) == list(entries(1, 5, 1))


def test_compaction_drops_applied_entries_and_keeps_the_term_of_the_compaction_point(disk: Disk) -> None:
    storage = LevelDBRaftStorage(disk.db)
    storage.persist(ready(entries=entries(1, 3, 1) + entries(4, 8, 2), hard_state=HardState(2, A, 8)))
    storage.compact(5)
    storage.compact(3)  # older than the compaction point: nothing to do
    again = disk.reopen()
    assert (again.first_index(), again.last_index(), again.term(5)) == (6, 8, 2)
    assert again.entries(6, 9) == list(entries(6, 8, 2))
    with pytest.raises(CompactedError):
        again.entries(5, 9)
    with pytest.raises(CompactedError):
        again.term(4)
    assert list(disk.db.iterator(prefix=b"R/e/", include_value=False)) == [
        b"R/e/" + i.to_bytes(8, "big") for i in (6, 7, 8)]


def test_compaction_past_the_last_entry_is_refused_and_changes_nothing(disk: Disk) -> None:
    storage = LevelDBRaftStorage(disk.db)
    storage.persist(ready(entries=entries(1, 3, 1)))
    with pytest.raises(UnavailableError):
        storage.compact(4)
    assert disk.reopen().entries(1, 4) == list(entries(1, 3, 1))


def test_restore_discards_the_log_and_restarts_it_after_the_restore_point(disk: Disk) -> None:
    storage = LevelDBRaftStorage(disk.db)
    storage.persist(ready(entries=entries(1, 4, 1), hard_state=HardState(1, A, 2)))
    # Block sync brought the chain to the leader's entry 20 (term 3); the log restarts after it,
    # with the entries the leader sends next, in the same synced batch.
    storage.persist(ready(restore=(20, 3), entries=entries(21, 22, 3), hard_state=HardState(3, None, 2)))
    for s in (storage, disk.reopen()):
        assert (s.first_index(), s.last_index(), s.term(20)) == (21, 22, 3)
        assert s.entries(21, 23) == list(entries(21, 22, 3))
        assert s.initial_state() == HardState(3, None, 20)  # commit is at least the restore point
        with pytest.raises(CompactedError):
            s.term(4)


def test_restore_without_a_hard_state_still_records_the_commit_of_the_restore_point(disk: Disk) -> None:
    storage = LevelDBRaftStorage(disk.db)
    storage.persist(ready(entries=entries(1, 2, 1), hard_state=HardState(1, A, 1)))
    storage.persist(ready(restore=(9, 1)))
    again = disk.reopen()
    assert (again.first_index(), again.last_index(), again.term(9)) == (10, 9, 1)
    assert again.initial_state() == HardState(1, A, 9)


def test_a_ready_with_nothing_to_persist_writes_nothing(disk: Disk) -> None:
    storage = LevelDBRaftStorage(disk.db)
    storage.persist(ready())
    assert list(disk.db.iterator()) == []
