# hcnode.consensus: Raft as a pure, deterministic state machine.
#
# Offers `RawNode` (tick/step/propose in, Ready out), its `Config`, the
# `Storage` protocol with `MemoryStorage`, the message records and one error
# family rooted at `RaftError`. Imports only the standard library; the node
# shell owns clocks, sockets and disks.
from .errors import (
    CompactedError,
    ConfigError,
    NotLeaderError,
    ProposalDroppedError,
    RaftError,
    UnavailableError,
)
from .messages import Entry, EntryType, HardState, Message, MessageType, NodeId, Role, SoftState
from .raft import CatchUpRequest, Config
from .rawnode import RawNode, Ready, Status
from .storage import MemoryStorage, Storage

__all__ = [
    "CatchUpRequest",
    "CompactedError",
    "Config",
    "ConfigError",
    "Entry",
    "EntryType",
    "HardState",
    "MemoryStorage",
    "Message",
    "MessageType",
    "NodeId",
    "NotLeaderError",
    "ProposalDroppedError",
    "RaftError",
    "RawNode",
    "Ready",
    "Role",
    "SoftState",
    "Status",
    "Storage",
    "UnavailableError",
]
