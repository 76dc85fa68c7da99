# Errors of the consensus layer.
#
# Owns: the single error family `RaftError` and its named subclasses. The node
# shell catches `RaftError` at its boundary; nothing below this layer leaks out.
# Must not know: transports, disks, the chain.
from __future__ import annotations

from .messages import NodeId

__all__ = [
    "RaftError",
    "NotLeaderError",
    "CompactedError",
    "UnavailableError",
    "ConfigError",
    "ProposalDroppedError",
]


class RaftError(Exception):
    """Base of every error raised by `hcnode.consensus`."""


class ConfigError(RaftError):
    """The `Config` cannot describe a working cluster (bad ids, ticks, limits)."""


class NotLeaderError(RaftError):
    """A proposal reached a node that is not the leader.

    `leader` is the leader this node currently follows, or None if it knows of
    none (an election is under way); the caller forwards the proposal there.
    """

    def __init__(self, leader: NodeId | None) -> None:
        self.leader = leader
        where = f"the leader is {leader!r}" if leader is not None else "no leader is known"
        super().__init__(f"not the leader; {where}")


class ProposalDroppedError(RaftError):
    """The leader refused a proposal (e.g. it is stepping down); retry later."""


class CompactedError(RaftError):
    """The requested log index lies before `Storage.first_index()`; it is gone."""


class UnavailableError(RaftError):
    """The requested log index lies after the last index; it does not exist yet."""
