"""Blocks and block headers: their wire form, hash, proposer signature and checks.

Owns: the header fields, how a block is encoded, hashed, signed and decoded.
Must not know how blocks are chosen (consensus) or applied (``chain.execute``).

Wire form (protocols/chain.cddl):
    header = [chain_id, height, prev_hash, time_ms, tx_root, receipt_root, state_root, proposer]
    block  = [header, signature, [tx, ...]]
The block hash is SHA-256 of the encoded header; the header commits to the
transactions (tx_root, a Merkle root of their wire bytes), to their receipts and
to the state after applying them. The proposer signs the encoded header under
the purpose "block". Block 0 (genesis) carries the genesis document as its only
transaction and has no proposer and no signature.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from hcnode import codec, crypto
from hcnode.chain import merkle
from hcnode.chain.errors import Rejected

__all__ = ["BlockHeader", "Block", "sign_block", "decode_block", "BLOCK_PURPOSE"]

BLOCK_PURPOSE = "block"


@dataclass(frozen=True, slots=True)
class BlockHeader:
    chain_id: str
    height: int
    prev_hash: bytes
    time_ms: int
    tx_root: bytes
    receipt_root: bytes
    state_root: bytes
    proposer: bytes

    def to_list(self) -> list[object]:
        return [
            self.chain_id,
            self.height,
            self.prev_hash,
            self.time_ms,
            self.tx_root,
            self.receipt_root,
            self.state_root,
            self.proposer,
        ]

    def encode(self) -> bytes:
        return codec.encode(self.to_list())

    @property
    def hash(self) -> bytes:
        return hashlib.sha256(self.encode()).digest()


@dataclass(frozen=True, slots=True)
class Block:
    header: BlockHeader
    signature: bytes
    txs: tuple[bytes, ...]

    def encode(self) -> bytes:
        return codec.encode([self.header.to_list(), self.signature, list(self.txs)])

    @property
    def hash(self) -> bytes:
        return self.header.hash

    def signature_ok(self) -> bool:
        return crypto.verify(
            self.header.proposer, self.signature, self.header.chain_id, BLOCK_PURPOSE, self.header.encode()
        )

    def tx_root_ok(self) -> bool:
        return merkle.root(self.txs) == self.header.tx_root


def sign_block(key: crypto.PrivateKey, header: BlockHeader, txs: Sequence[bytes]) -> Block:
    signature = key.sign(header.chain_id, BLOCK_PURPOSE, header.encode())
    return Block(header, signature, tuple(txs))


def decode_block(raw: bytes, *, max_bytes: int) -> Block:
    """Strictly decode a block from outside; checks shape only (signatures and roots are the caller's)."""
    try:
        value = codec.decode(raw, codec.DecodeLimits(max_bytes=max_bytes, max_depth=4, max_items=max_bytes))
    except codec.CodecError as exc:
        raise Rejected("bad_block", f"block encoding: {exc}") from None
    if type(value) is not list or len(value) != 3:
        raise Rejected("bad_block", "a block is [header, signature, txs]")
    header, signature, txs = value
    if type(header) is not list or len(header) != 8:
        raise Rejected("bad_block", "a header has 8 fields")
    chain_id, height, prev_hash, time_ms, tx_root, receipt_root, state_root, proposer = header
    if type(chain_id) is not str or type(height) is not int or height < 0 or type(time_ms) is not int:
        raise Rejected("bad_block", "header chain_id, height or time has the wrong type")
    for name, digest in (("prev_hash", prev_hash), ("tx_root", tx_root), ("receipt_root", receipt_root),
                         ("state_root", state_root)):
        if type(digest) is not bytes or len(digest) != 32:
            raise Rejected("bad_block", f"header {name} must be 32 bytes")
    if type(proposer) is not bytes or type(signature) is not bytes:
        raise Rejected("bad_block", "proposer and signature must be bytes")
    if type(txs) is not list or any(type(tx) is not bytes for tx in txs):
        raise Rejected("bad_block", "txs must be a list of byte strings")
    return Block(
        BlockHeader(chain_id, height, prev_hash, time_ms, tx_root, receipt_root, state_root, proposer),
        signature,
        tuple(txs),
    )
