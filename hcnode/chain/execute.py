"""Applying blocks: the deterministic state transition of the whole chain.

Owns: stateful transaction checks (nonce, replay), running each transaction's
handler in its own overlay, receipts, and the roots a header commits to.
Must not know storage, networking or the clock: ``execute`` is a pure function
of (committed state, block info, transactions).

Per transaction: stateless checks (skipped when the caller already verified this
exact transaction, so each signature is checked once per node), then the nonce
must be the sender's next. A transaction that fails there consumes nothing. A
transaction whose handler rejects it still consumes its nonce (so it can never
be replayed) but leaves no other write. Each receipt records the outcome.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from hcnode import codec
from hcnode.chain import merkle
from hcnode.chain.app import AppSet, BlockInfo, TxContext
from hcnode.chain.block import Block, BlockHeader
from hcnode.chain.errors import Rejected, StateRootMismatch
from hcnode.chain.state import BlockReadCache, Overlay, StateReader, next_state_root
from hcnode.chain.tx import Tx, decode_tx

__all__ = ["Execution", "execute", "apply_block", "check_header", "nonce_key", "read_nonce", "Limits"]

NONCE_PREFIX: Final = b"nonce/"


@dataclass(frozen=True, slots=True)
class Limits:
    max_tx_bytes: int = 64 * 1024


@dataclass(frozen=True, slots=True)
class Execution:
    writes: dict[bytes, bytes | None]
    receipts: list[dict[str, Any]]
    encoded_receipts: list[bytes]
    tx_hashes: list[bytes]
    tx_root: bytes
    receipt_root: bytes
    state_root: bytes


def nonce_key(sender: bytes) -> bytes:
    return NONCE_PREFIX + sender


def read_nonce(state: StateReader | Overlay, sender: bytes) -> int:
    raw = state.get(nonce_key(sender))
    return 0 if raw is None else int.from_bytes(raw, "big")


def _receipt(tx_hash: bytes, info: BlockInfo, index: int, code: str | None, message: str | None,
             flags: list[str], events: list[dict[str, Any]]) -> dict[str, Any]:
    # Keys in canonical order (shorter first, then bytewise) so encoding takes codec's fast path.
    if code is None:
        return {"tx": tx_hash, "flags": flags, "index": index, "events": events, "height": info.height,
                "status": "ok"}
    return {"tx": tx_hash, "code": code, "flags": flags, "index": index, "events": events,
            "height": info.height, "status": "rejected", "message": message}


def execute(
    state: StateReader,
    apps: AppSet,
    info: BlockInfo,
    txs: Sequence[bytes],
    previous_state_root: bytes,
    limits: Limits = Limits(),
    verified: Mapping[bytes, Tx] | None = None,
) -> Execution:
    """Run ``txs`` in order on ``state``; returns writes, receipts and the roots for the header."""
    block_state = Overlay(BlockReadCache(state))
    receipts: list[dict[str, Any]] = []
    tx_hashes: list[bytes] = []
    for index, raw in enumerate(txs):
        tx_hash = hashlib.sha256(raw).digest()
        tx_hashes.append(tx_hash)
        code: str | None = None
        message: str | None = None
        ctx: TxContext | None = None
        try:
            tx = verified.get(tx_hash) if verified is not None else None
            if tx is None:
                tx = decode_tx(raw, chain_id=info.chain_id, max_bytes=limits.max_tx_bytes,
                               payload_spec=apps.payload_spec)
            expected = read_nonce(block_state, tx.sender)
            if tx.nonce != expected:
                kind = "replayed_nonce" if tx.nonce < expected else "bad_nonce"
                raise Rejected(kind, f"nonce {tx.nonce}, the sender's next nonce is {expected}")
            block_state.put(nonce_key(tx.sender), (tx.nonce + 1).to_bytes(8, "big"))
            ctx = TxContext(block_state.child(), tx, info)
            apps.tx_types[tx.type].apply(ctx, tx.payload)
            ctx.state.merge_into(block_state)
        except Rejected as rejection:
            code, message = rejection.code, rejection.message
        except Exception as exc:  # an app bug must not stop the chain; every node rejects alike
            code, message = "app_error", f"{type(exc).__name__}: {exc}"
        flags = ctx.flags if ctx is not None else []
        events: list[dict[str, Any]] = []
        if ctx is not None:
            # A rejected transaction leaves no events but its flags' details: an attempt can itself be
            # the evidence (a second dispense of one serial is a clone alert).
            events = ctx.events if code is None else [e for e in ctx.events if e["kind"] == "flag"]
        receipts.append(_receipt(tx_hash, info, index, code, message, flags, events))
    encoded = [codec.encode(r) for r in receipts]
    block_state.fold_counts()
    writes = block_state.writes
    return Execution(
        writes=writes,
        receipts=receipts,
        encoded_receipts=encoded,
        tx_hashes=tx_hashes,
        tx_root=merkle.root(txs),
        receipt_root=merkle.root(encoded),
        state_root=next_state_root(previous_state_root, writes),
    )


def check_header(block: Block, previous: BlockHeader, is_validator: Callable[[bytes], bool]) -> None:
    """Everything about a block from elsewhere that can be checked before executing it.

    Raises ``Rejected("bad_block", ...)``: a bad block is the sender's fault, not a
    divergence of this node, so the caller drops it and keeps its state.
    """
    header = block.header
    problems = []
    if header.chain_id != previous.chain_id:
        problems.append(f"chain id {header.chain_id!r} is not {previous.chain_id!r}")
    if header.height != previous.height + 1:
        problems.append(f"height {header.height} does not follow {previous.height}")
    if header.prev_hash != previous.hash:
        problems.append("prev_hash is not the hash of this node's head")
    if header.time_ms < previous.time_ms:
        problems.append("time runs backwards")
    if not is_validator(header.proposer):
        problems.append(f"proposer {header.proposer.hex()[:16]} is not an active validator")
    elif not block.signature_ok():
        problems.append("the proposer's signature does not verify")
    if problems:
        raise Rejected("bad_block", f"block {header.height}: " + "; ".join(problems))


def apply_block(
    state: StateReader,
    apps: AppSet,
    block: Block,
    previous: BlockHeader,
    is_validator: Callable[[bytes], bool],
    limits: Limits = Limits(),
    verified: Mapping[bytes, Tx] | None = None,
) -> Execution:
    """Check a block made elsewhere, execute it on ``state`` (at ``previous``), and check every root it claims.

    Raises ``Rejected("bad_block")`` for a block that is malformed, unsigned or out
    of place, and ``StateRootMismatch`` when the block is well formed but this
    node's result differs: the caller must then stop applying rather than go on
    from a diverged state.
    """
    check_header(block, previous, is_validator)
    header = block.header
    info = BlockInfo(header.chain_id, header.height, header.time_ms, header.proposer)
    result = execute(state, apps, info, block.txs, previous.state_root, limits, verified)
    for name, ours, theirs in (
        ("tx root", result.tx_root, header.tx_root),
        ("receipt root", result.receipt_root, header.receipt_root),
        ("state root", result.state_root, header.state_root),
    ):
        if ours != theirs:
            raise StateRootMismatch(
                f"block {header.height} ({header.hash.hex()}): computed {name} {ours.hex()}, "
                f"block carries {theirs.hex()}"
            )
    return result
