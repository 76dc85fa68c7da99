# Deliberately broken variants of the Raft core, for proving that the
# simulator's checks can fail. Used only by tests; never import from hcnode.
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from hcnode.consensus.log import RaftLog


@contextlib.contextmanager
def commit_previous_terms() -> Iterator[None]:
    """Let a leader commit by counting replicas of entries from earlier terms,
    the unsafe rule that Raft §5.4.2 / Figure 8 forbids."""
    original = RaftLog.maybe_commit

    def unsafe_maybe_commit(self: RaftLog, index: int, term: int) -> bool:
        if index > self.committed and self.term(index) is not None:
            self.commit_to(index)
            return True
        return False

    RaftLog.maybe_commit = unsafe_maybe_commit  # type: ignore[method-assign]
    try:
        yield
    finally:
        RaftLog.maybe_commit = original  # type: ignore[method-assign]
