# The leader's view of each follower's replication.
#
# Owns: per-follower match/next indexes, the probe/replicate/snapshot flow
# states, and the window of in-flight appends (pipelining).
# Must not know: messages or the log; `raft.py` consults and updates these.
#
# Flow (as etcd's tracker.Progress):
# - PROBE: we do not know where the follower's log matches ours; send one
#   append at a time and wait for its answer (or a heartbeat reply).
# - REPLICATE: the follower matches up to `match`; send optimistically,
#   advancing `next` past what we sent, with at most `max_inflight`
#   unacknowledged appends. Any reject falls back to PROBE.
# - SNAPSHOT: the follower needs entries we compacted; send nothing until it
#   catches up by block sync and acknowledges an index >= `pending_snapshot`
#   (or answers a heartbeat, which returns it to PROBE to try again).
from __future__ import annotations

import enum
from collections import deque

__all__ = ["ProgressState", "Progress"]


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Progress:
    def __init__(self, match: int, next_index: int, max_inflight: int) -> None:
        self.match = match
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.pending_snapshot = 0
        self.recent_active = False
        self.max_inflight = max_inflight
        self.inflight: deque[int] = deque()  # last index of each unacknowledged append

    def __repr__(self) -> str:
        return f"Progress(match={self.match}, next={self.next}, state={self.state.value})"

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT:
            self.next = max(self.match + 1, self.pending_snapshot + 1)
        else:
            self.next = self.match + 1
        self._reset(ProgressState.PROBE)

    def become_replicate(self) -> None:
        self.next = self.match + 1
        self._reset(ProgressState.REPLICATE)

    def become_snapshot(self, compacted_index: int) -> None:
        self._reset(ProgressState.SNAPSHOT)
        self.pending_snapshot = compacted_index

    def _reset(self, state: ProgressState) -> None:
        self.state = state
        self.probe_sent = False
        self.pending_snapshot = 0
        self.inflight.clear()

    def is_paused(self) -> bool:
        """Whether the leader must hold further appends to this follower."""
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return len(self.inflight) >= self.max_inflight
        return True

    def sent_entries(self, count: int, last_index: int) -> None:
        if self.state is ProgressState.REPLICATE:
            if count:
                self.next = last_index + 1
                self.inflight.append(last_index)
        elif self.state is ProgressState.PROBE:
            self.probe_sent = True

    def maybe_update(self, index: int) -> bool:
        """The follower acknowledged `index`; False if that is old news."""
        updated = False
        if self.match < index:
            self.match = index
            updated = True
            self.probe_sent = False
        self.next = max(self.next, index + 1)
        return updated

    def maybe_decrease_to(self, rejected: int, match_hint: int) -> bool:
        """The follower rejected the append after `rejected`; move `next` back.

        Returns False for a stale rejection (one about an append we no longer
        consider outstanding), which must be ignored.
        """
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.probe_sent = False
        return True

    def free_inflight_up_to(self, index: int) -> None:
        while self.inflight and self.inflight[0] <= index:
            self.inflight.popleft()

    def free_first_inflight(self) -> None:
        if self.inflight:
            self.inflight.popleft()
