# The Raft log as the state machine sees it: durable entries in `Storage` plus
# an unstable tail that the caller has not persisted yet.
#
# Owns: index and term lookups across both parts, the log-matching checks a
# follower runs on an append, conflict truncation, the commit and applied
# indexes, and which entries are ready to persist or to apply.
# Must not know: roles, votes, messages, peers. `raft.py` decides *when* to
# append or commit; this module only keeps the log consistent when it does.
#
# Shape (as etcd's raftLog/unstable):
#
#     first_index-1 (compaction point: term known, entry gone)
#     | storage: first_index .. unstable_offset-1 (persisted)
#     | unstable: unstable_offset .. last_index   (handed to the caller in Ready.entries)
#
# Invariant: applied <= committed <= last_index, and every committed entry is
# identical on every node that has it (Raft's log matching + leader completeness).
from __future__ import annotations

from .errors import CompactedError, RaftError, UnavailableError
from .messages import Entry
from .storage import Storage

__all__ = ["RaftLog"]


class RaftLog:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._unstable: list[Entry] = []
        self._unstable_offset = storage.last_index() + 1
        self._pending_restore: tuple[int, int] | None = None
        self.committed = storage.first_index() - 1
        self.applied = storage.first_index() - 1

    # -- lookups -----------------------------------------------------------

    def first_index(self) -> int:
        if self._pending_restore is not None:
            return self._pending_restore[0] + 1
        return self.storage.first_index()

    def last_index(self) -> int:
        if self._unstable:
            return self._unstable[-1].index
        if self._pending_restore is not None:
            return self._pending_restore[0]
        return self.storage.last_index()

    def term(self, index: int) -> int | None:
        """The term of the entry at `index`, or None if it is compacted or absent.

        The compaction point `first_index() - 1` answers too, so appends that
        start right after it can be matched.
        """
        if index < self.first_index() - 1 or index > self.last_index():
            return None
        if self._unstable and index >= self._unstable_offset:
            return self._unstable[index - self._unstable_offset].term
        if self._pending_restore is not None:
            return self._pending_restore[1] if index == self._pending_restore[0] else None
        try:
            return self.storage.term(index)
        except (CompactedError, UnavailableError):
            return None

    def last_term(self) -> int:
        term = self.term(self.last_index())
        if term is None:
            raise RaftError(f"term of the last index {self.last_index()} is unavailable")
        return term

    def match_term(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Raft §5.4.1: a voter grants only to a candidate whose log is at least as
        up to date as its own (higher last term, or same term and not shorter)."""
        my_term = self.last_term()
        return last_term > my_term or (last_term == my_term and last_index >= self.last_index())

    def entries(self, lo: int, hi: int | None = None, max_count: int | None = None) -> list[Entry]:
        """Entries in [lo, hi) (hi defaults to last_index+1), at most `max_count`.

        Raises `CompactedError` if `lo` is before the first available index.
        """
        if hi is None:
            hi = self.last_index() + 1
        if max_count is not None:
            hi = min(hi, lo + max(1, max_count))
        if lo >= hi:
            return []
        if lo < self.first_index():
            raise CompactedError(f"index {lo} is compacted (first index {self.first_index()})")
        if hi > self.last_index() + 1:
            raise UnavailableError(f"index {hi - 1} is past the last index {self.last_index()}")
        result: list[Entry] = []
        if lo < self._unstable_offset:
            result.extend(self.storage.entries(lo, min(hi, self._unstable_offset)))
        if hi > self._unstable_offset:
            start = max(lo, self._unstable_offset) - self._unstable_offset
            result.extend(self._unstable[start : hi - self._unstable_offset])
        return result

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The largest index <= `index` whose term is <= `term`, and that term.

        Drives fast backtracking (etcd's findConflictByTerm): a follower names
        the point where its log can possibly agree with the leader's so the
        leader skips a whole divergent term per round trip instead of one entry.
        Returns term 0 when the lookup falls before the compaction point.
        """
        while True:
            found = self.term(index)
            if found is None:
                return index, 0
            if found <= term:
                return index, found
            index -= 1

    # -- appends -----------------------------------------------------------

    def find_conflict(self, entries: tuple[Entry, ...] | list[Entry]) -> int:
        """Index of the first entry whose term disagrees with ours (or that we
        lack), or 0 if all of them are already present."""
        for entry in entries:
            if not self.match_term(entry.index, entry.term):
                return entry.index
        return 0

    def maybe_append(
        self, prev_index: int, prev_term: int, leader_commit: int, entries: tuple[Entry, ...]
    ) -> int | None:
        """Follower side of AppendEntries (Raft §5.3).

        Returns the last index now known to match the leader, or None if the
        entry before `entries` does not match (the caller rejects). Entries we
        already hold are never rewritten, so a duplicated or reordered append
        cannot truncate what a later one added.
        """
        if not self.match_term(prev_index, prev_term):
            return None
        last_new = prev_index + len(entries)
        conflict = self.find_conflict(entries)
        if conflict:
            if conflict <= self.committed:
                raise RaftError(f"entry {conflict} conflicts with the committed prefix (commit {self.committed})")
            self.append(entries[conflict - prev_index - 1 :])
        self.commit_to(min(leader_commit, last_new))
        return last_new

    def append(self, entries: tuple[Entry, ...] | list[Entry]) -> int:
        """Add `entries` to the unstable tail, truncating anything from their
        first index on. Committed entries are never truncated."""
        if not entries:
            return self.last_index()
        after = entries[0].index - 1
        if after < self.committed:
            raise RaftError(f"append after {after} would overwrite committed entries (commit {self.committed})")
        if after > self.last_index():
            raise RaftError(f"append after {after} leaves a gap (last index {self.last_index()})")
        if after + 1 == self._unstable_offset + len(self._unstable):
            self._unstable.extend(entries)
        elif after + 1 <= self._unstable_offset:
            # Replaces part of the persisted log: the caller's Storage.append truncates it too.
            self._unstable_offset = after + 1
            self._unstable = list(entries)
        else:
            self._unstable = self._unstable[: after + 1 - self._unstable_offset] + list(entries)
        return self.last_index()

    # -- commit and apply --------------------------------------------------

    def commit_to(self, index: int) -> None:
        if index > self.committed:
            if index > self.last_index():
                raise RaftError(f"commit {index} is past the last index {self.last_index()}")
            self.committed = index

    def maybe_commit(self, index: int, term: int) -> bool:
        """Advance commit to `index` only if that entry is from `term` (the
        leader's current term): Raft §5.4.2, the Figure 8 rule."""
        if index > self.committed and self.term(index) == term:
            self.commit_to(index)
            return True
        return False

    def applied_to(self, index: int) -> None:
        if index > self.committed or index < self.applied:
            raise RaftError(f"applied {index} out of range [{self.applied}, {self.committed}]")
        self.applied = index

    def next_committed_entries(self) -> list[Entry]:
        lo = max(self.applied + 1, self.first_index())
        if lo > self.committed:
            return []
        return self.entries(lo, self.committed + 1)

    def has_next_committed_entries(self) -> bool:
        return max(self.applied + 1, self.first_index()) <= self.committed

    # -- persistence handshake ----------------------------------------------

    def unstable_entries(self) -> list[Entry]:
        return list(self._unstable)

    def pending_restore(self) -> tuple[int, int] | None:
        return self._pending_restore

    def stable_to(self, index: int, term: int) -> None:
        """The caller persisted entries up to (index, term). If the tail was
        truncated and rewritten since, the term differs and nothing is dropped."""
        if index < self._unstable_offset or not self._unstable:
            return
        position = index - self._unstable_offset
        if position < len(self._unstable) and self._unstable[position].term == term:
            self._unstable = self._unstable[position + 1 :]
            self._unstable_offset = index + 1

    def restore(self, index: int, term: int) -> None:
        """Forget the log and restart it after (index, term), already applied.

        Used after block sync: the state machine is at `index`, so the log
        before it is represented by the synced chain, not by entries.
        """
        self._pending_restore = (index, term)
        self._unstable = []
        self._unstable_offset = index + 1
        self.committed = index
        self.applied = index

    def restore_persisted(self) -> None:
        """The caller applied the restore point to Storage (`MemoryStorage.restore`)."""
        self._pending_restore = None
