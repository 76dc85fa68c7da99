# The narrow interface through which the Raft core reads the durable log.
#
# Owns: the `Storage` protocol (read-only from the core's point of view) and
# `MemoryStorage`, an in-memory implementation used by tests and the simulator.
# The core never writes storage: the caller appends `Ready.entries` and stores
# `Ready.hard_state` itself, then calls `RawNode.advance`.
# Must not know: files, LevelDB, blocks. The node shell implements `Storage`
# over its own database.
from __future__ import annotations

from typing import Protocol

from .errors import CompactedError, RaftError, UnavailableError
from .messages import Entry, HardState

__all__ = ["Storage", "MemoryStorage"]


class Storage(Protocol):
    """Read access to the persisted Raft log and hard state.

    Index rules (as etcd's `raft.Storage`): entries `first_index()..last_index()`
    are readable; `term(first_index() - 1)` must also answer (it is the term of
    the last compacted entry, or 0 for a fresh log) so that appends right after
    the compaction point can be matched. Anything earlier raises
    `CompactedError`; anything later raises `UnavailableError`.
    """

    def initial_state(self) -> HardState:
        """The hard state last stored; `HardState()` for a fresh node."""
        ...

    def entries(self, lo: int, hi: int, max_count: int | None = None) -> list[Entry]:
        """Entries with index in [lo, hi), at most `max_count` of them (at least one)."""
        ...

    def term(self, index: int) -> int: ...

    def first_index(self) -> int: ...

    def last_index(self) -> int: ...


class MemoryStorage:
    """`Storage` kept in a list. `entries_[0]` is a dummy holding the index and
    term of the compaction point, so `term(first_index() - 1)` always answers.

    Besides the read protocol it offers the writes a shell performs while
    handling a `Ready`: `set_hard_state`, `append` (which truncates a
    conflicting suffix, exactly what a follower needs after a leader change),
    `compact` and `restore`.
    """

    def __init__(self) -> None:
        self._hard_state = HardState()
        self._entries: list[Entry] = [Entry(term=0, index=0)]

    # -- Storage protocol ---------------------------------------------------

    def initial_state(self) -> HardState:
        return self._hard_state

    def entries(self, lo: int, hi: int, max_count: int | None = None) -> list[Entry]:
        offset = self._entries[0].index
        if lo <= offset:
            raise CompactedError(f"index {lo} is compacted (first index {offset + 1})")
        if hi > self.last_index() + 1:
            raise UnavailableError(f"index {hi - 1} is past the last index {self.last_index()}")
        if max_count is not None:
            hi = min(hi, lo + max(1, max_count))
        return self._entries[lo - offset : hi - offset]

    def term(self, index: int) -> int:
        offset = self._entries[0].index
        if index < offset:
            raise CompactedError(f"index {index} is compacted (first index {offset + 1})")
        if index - offset >= len(self._entries):
            raise UnavailableError(f"index {index} is past the last index {self.last_index()}")
        return self._entries[index - offset].term

    def first_index(self) -> int:
        return self._entries[0].index + 1

    def last_index(self) -> int:
        return self._entries[0].index + len(self._entries) - 1

    # -- writes performed by the caller ------------------------------------

    def set_hard_state(self, hard_state: HardState) -> None:
        self._hard_state = hard_state

    def append(self, entries: list[Entry] | tuple[Entry, ...]) -> None:
        """Append `entries` (contiguous), replacing any stored suffix they overlap.

        Overlap happens when a new leader overwrites a follower's uncommitted
        tail; Raft guarantees that only uncommitted entries are ever replaced.
        """
        if not entries:
            return
        first_new = entries[0].index
        if first_new > self.last_index() + 1:
            raise RaftError(
                f"append leaves a gap: last index {self.last_index()}, new entries start at {first_new}"
            )
        offset = self._entries[0].index
        if first_new <= offset:
            # The part at or before the compaction point is already committed and compacted.
            entries = [e for e in entries if e.index > offset]
            if not entries:
                return
            first_new = entries[0].index
        del self._entries[first_new - offset :]
        self._entries.extend(entries)

    def compact(self, index: int) -> None:
        """Drop entries up to and including `index` (which the caller has applied).

        Afterwards a leader that needs one of them asks the follower to catch up
        by block sync (`MessageType.SNAPSHOT_NEEDED`).
        """
        offset = self._entries[0].index
        if index <= offset:
            return
        if index > self.last_index():
            raise UnavailableError(f"cannot compact to {index}: last index is {self.last_index()}")
        marker = self._entries[index - offset]
        self._entries = [Entry(term=marker.term, index=marker.index)] + self._entries[index - offset + 1 :]

    def restore(self, index: int, term: int) -> None:
        """Discard the whole log and restart it after (index, term).

        Used after block sync brought the state machine up to `index`: the
        entries before it are now represented by the synced chain.
        """
        self._entries = [Entry(term=term, index=index)]
        if self._hard_state.commit < index:
            self._hard_state = HardState(self._hard_state.term, self._hard_state.vote, index)
