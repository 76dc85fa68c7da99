# Wire-level values of Raft: entries, messages, hard and soft state.
#
# Owns: the immutable records that cross the boundary between the Raft core and
# the node shell (entries to persist, messages to send, state to store). They
# only hold and validate data; the rules that act on them live in `raft.py`.
# Must not know: how messages are encoded on the wire or stored on disk (the
# node's codec does that), or anything about blocks: entry data is opaque bytes.
from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "NodeId",
    "EntryType",
    "Entry",
    "MessageType",
    "Message",
    "HardState",
    "Role",
    "SoftState",
]

NodeId = str | bytes
"""A voter's identity (e.g. a validator's public key). All ids of one cluster
share one type so that they sort; sorted order is what makes output deterministic."""


class EntryType(enum.Enum):
    NORMAL = "normal"
    """Carries a proposal's opaque data (a block, for the node)."""
    EMPTY = "empty"
    """Appended by each new leader so it can commit earlier terms' entries
    (Raft §5.4.2: a leader only commits entries of its own term by counting)."""


@dataclass(frozen=True, slots=True)
class Entry:
    term: int
    index: int
    data: bytes = b""
    type: EntryType = EntryType.NORMAL

    def __post_init__(self) -> None:
        if self.term < 0 or self.index < 0:
            raise ValueError(f"entry term and index must be >= 0, got {self.term}, {self.index}")


class MessageType(enum.Enum):
    VOTE = "vote"
    VOTE_RESP = "vote_resp"
    PRE_VOTE = "pre_vote"
    PRE_VOTE_RESP = "pre_vote_resp"
    APP = "app"
    APP_RESP = "app_resp"
    HEARTBEAT = "heartbeat"
    HEARTBEAT_RESP = "heartbeat_resp"
    SNAPSHOT_NEEDED = "snapshot_needed"
    """Leader -> lagging follower: the entries after `index` that you need were
    compacted away on the leader; fetch the chain up to `index` by block sync,
    then call `RawNode.restore(index, log_term)`. See `raft.py`, "Compaction"."""


@dataclass(frozen=True, slots=True)
class Message:
    """One Raft message. Field meaning by type follows etcd's `raftpb.Message`:

    - VOTE/PRE_VOTE: `index`/`log_term` are the candidate's last entry.
    - APP: `index`/`log_term` identify the entry preceding `entries`; `commit`
      is the leader's commit index.
    - APP_RESP: `index` is the last index now matching the leader (accept), or
      the rejected `index` (reject) with `reject_hint`/`log_term` naming the
      follower's best guess of where the logs diverge (fast backtracking).
    - HEARTBEAT: `commit` is min(leader commit, follower's known match).
    - SNAPSHOT_NEEDED: `index`/`log_term` is the leader's compaction point.
    """

    type: MessageType
    sender: NodeId
    recipient: NodeId
    term: int
    log_term: int = 0
    index: int = 0
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0

    def __post_init__(self) -> None:
        if self.term < 0 or self.index < 0 or self.commit < 0 or self.log_term < 0:
            raise ValueError("message term, index, log_term and commit must be >= 0")


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be durable before any message produced alongside it is sent:
    the current term, whom we voted for in it (so we never vote twice in a term
    across a crash), and the commit index (an optimisation; it may lag)."""

    term: int = 0
    vote: NodeId | None = None
    commit: int = 0


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre_candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state the shell may want to observe; never persisted."""

    leader: NodeId | None = None
    role: Role = Role.FOLLOWER

