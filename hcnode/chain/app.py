"""The one way an app plugs into the chain: tx types, payload schemas, state transitions, queries.

Owns: the plug-in interface (``App``, ``TxType``, ``Query``), the per-transaction
context an app's handler receives, and ``AppSet``, which routes a transaction
type or query name to its app. Must not know any particular app.

An app is a frozen ``App`` value listing its transaction types and queries and,
optionally, a hook that writes its part of the genesis state. A handler gets a
``TxContext`` and the already schema-checked payload; it reads and writes state
only through ``ctx.state``, raises ``Rejected(code, message)`` to refuse, and
records flags and events on the context. Handlers are deterministic: block time
and height come from ``ctx``, never the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from hcnode.chain.errors import Rejected
from hcnode.chain.schema import Record, Spec
from hcnode.chain.state import Overlay, StateReader
from hcnode.chain.tx import Tx

__all__ = ["App", "AppSet", "BlockInfo", "Query", "TX_PROOF_REQUEST", "TxContext", "TxType"]

TX_PROOF_REQUEST: Final = "tx_proof_request"
"""A query result (a map) may carry this key with a committed transaction's hash.

A pure query cannot see blocks; the node's RPC layer replaces the key with
``tx_proof``: the transaction, its Merkle audit path and the signed header of
its block (the same object as the ``tx.proof`` method returns).
"""


@dataclass(frozen=True, slots=True)
class BlockInfo:
    chain_id: str
    height: int
    time_ms: int
    proposer: bytes


class TxContext:
    """What a handler may use while applying one transaction."""

    __slots__ = ("state", "tx", "block", "flags", "events")

    def __init__(self, state: Overlay, tx: Tx, block: BlockInfo) -> None:
        self.state = state
        self.tx = tx
        self.block = block
        self.flags: list[str] = []
        self.events: list[dict[str, Any]] = []

    @property
    def sender(self) -> bytes:
        return self.tx.sender

    def emit(self, kind: str, **fields: Any) -> None:
        """Record an event; a caller on a hot path passes ``fields`` in canonical key order (shorter
        first, then bytewise, all after "kind") so the receipt takes the encoder's fast path."""
        self.events.append({"kind": kind, **fields})

    def flag(self, name: str, **details: Any) -> None:
        """Mark the receipt with a domain flag (e.g. ``duplicate_claim``); flags never reject."""
        if name not in self.flags:
            self.flags.append(name)
        # "flag" before "kind": canonical key order, as ``emit`` explains
        self.events.append({"flag": name, "kind": "flag", **details})


Handler = Callable[[TxContext, dict[str, Any]], None]
QueryFn = Callable[[StateReader, dict[str, Any], int], Any]


@dataclass(frozen=True)
class TxType:
    name: str
    schema: Record
    apply: Handler
    doc: str


@dataclass(frozen=True)
class Query:
    """A read of committed state; ``run(state, params, height)`` returns plain data."""

    name: str
    params: Record
    run: QueryFn
    doc: str


@dataclass(frozen=True)
class App:
    name: str
    tx_types: Sequence[TxType] = ()
    queries: Sequence[Query] = ()
    genesis: Callable[[Overlay, Any], None] | None = None


@dataclass
class AppSet:
    apps: Sequence[App]
    tx_types: Mapping[str, TxType] = field(init=False)
    queries: Mapping[str, Query] = field(init=False)

    def __post_init__(self) -> None:
        tx_types: dict[str, TxType] = {}
        queries: dict[str, Query] = {}
        for app in self.apps:
            for tx_type in app.tx_types:
                if tx_type.name in tx_types or not tx_type.name.startswith(app.name + "."):
                    raise ValueError(f"tx type {tx_type.name!r} is duplicated or outside app {app.name!r}")
                tx_types[tx_type.name] = tx_type
            for query in app.queries:
                if query.name in queries or not query.name.startswith(app.name + "."):
                    raise ValueError(f"query {query.name!r} is duplicated or outside app {app.name!r}")
                queries[query.name] = query
        self.tx_types = tx_types
        self.queries = queries

    def payload_spec(self, tx_type: str) -> Spec | None:
        found = self.tx_types.get(tx_type)
        return None if found is None else found.schema

    def query(self, state: StateReader, name: str, params: Any, height: int) -> Any:
        found = self.queries.get(name)
        if found is None:
            raise Rejected("unknown_query", f"unknown query {name!r}")
        found.params.check(params, "params")
        return found.run(state, params, height)
