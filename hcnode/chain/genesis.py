"""Genesis: the document that founds a chain, and block 0 derived from it.

Owns: the genesis document's shape and block 0. Must not know TOML or files
(``hcnode.config`` turns a config file into a ``Genesis``).

Block 0 carries the canonical encoding of the genesis document as its only
transaction, so its hash (the chain's identity) commits to every founding
admin, validator and organisation; its state root comes from the apps' genesis
hooks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hcnode import codec
from hcnode.chain import merkle
from hcnode.chain.app import AppSet
from hcnode.chain.block import Block, BlockHeader
from hcnode.chain.state import ZERO_ROOT, MemoryState, Overlay, next_state_root

__all__ = ["Genesis", "GenesisOrg", "genesis_block"]


@dataclass(frozen=True)
class GenesisOrg:
    id: str
    name: str
    kind: str
    admins: tuple[bytes, ...]


@dataclass(frozen=True)
class Genesis:
    chain_id: str
    time_ms: int
    admins: tuple[bytes, ...]
    admin_threshold: int
    validators: tuple[bytes, ...]
    orgs: tuple[GenesisOrg, ...] = field(default_factory=tuple)

    def to_value(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "time_ms": self.time_ms,
            "admins": list(self.admins),
            "admin_threshold": self.admin_threshold,
            "validators": list(self.validators),
            "orgs": [
                {"id": o.id, "name": o.name, "kind": o.kind, "admins": list(o.admins)} for o in self.orgs
            ],
        }


def genesis_block(genesis: Genesis, apps: AppSet) -> tuple[Block, dict[bytes, bytes | None]]:
    """Block 0 and the state writes it founds."""
    state = Overlay(MemoryState())
    for app in apps.apps:
        if app.genesis is not None:
            app.genesis(state, genesis)
    state.fold_counts()
    document = codec.encode(genesis.to_value())
    header = BlockHeader(
        chain_id=genesis.chain_id,
        height=0,
        prev_hash=bytes(32),
        time_ms=genesis.time_ms,
        tx_root=merkle.root([document]),
        receipt_root=merkle.root([]),
        state_root=next_state_root(ZERO_ROOT, state.writes),
        proposer=b"",
    )
    return Block(header, b"", (document,)), state.writes
