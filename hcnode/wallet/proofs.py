"""Checking what a node claims, on the client side: block headers and transaction proofs.

Owns: rebuilding a header from its JSON form and verifying a ``tx.proof`` answer
without trusting the node: the leaf is the transaction, its Merkle path leads to
the header's tx_root, the receipt's path leads to receipt_root, the header hashes
to the block hash and carries the proposer's signature.
Must not know how to reach a node (the caller fetched the answer).
"""

from __future__ import annotations

import hashlib
from typing import Any

from hcnode import codec, crypto
from hcnode.chain import BlockHeader, merkle
from hcnode.chain.block import BLOCK_PURPOSE

__all__ = ["header_from_json", "verify_tx_proof"]


def header_from_json(header: dict[str, Any]) -> BlockHeader:
    return BlockHeader(header["chain_id"], header["height"], bytes.fromhex(header["prev_hash"]),
                       header["time_ms"], bytes.fromhex(header["tx_root"]), bytes.fromhex(header["receipt_root"]),
                       bytes.fromhex(header["state_root"]), bytes.fromhex(header["proposer"]))


def verify_tx_proof(proof: dict[str, Any], tx_hash: str) -> dict[str, bool]:
    """Each check by name -> passed. Raises KeyError/TypeError/ValueError on a malformed answer."""
    header = proof["header"]
    rebuilt = header_from_json(header)
    tx = bytes.fromhex(proof["tx"])
    receipt = bytes.fromhex(proof["receipt_cbor"])
    checks = {
        "tx hash": hashlib.sha256(tx).hexdigest() == tx_hash,
        "merkle path to tx_root": merkle.verify_proof(
            tx, proof["index"], proof["size"], [bytes.fromhex(p) for p in proof["path"]], rebuilt.tx_root),
        "receipt is this tx's": codec.decode(receipt)["tx"].hex() == tx_hash
        and codec.decode(receipt) == _receipt_value(proof["receipt"]),
        "merkle path to receipt_root": merkle.verify_proof(
            receipt, proof["index"], proof["size"], [bytes.fromhex(p) for p in proof["receipt_path"]],
            rebuilt.receipt_root),
        "block hash": rebuilt.hash.hex() == header["hash"] and proof["height"] == rebuilt.height,
    }
    if rebuilt.height > 0:
        checks["block signature"] = crypto.verify(rebuilt.proposer, bytes.fromhex(header["signature"]),
                                                  rebuilt.chain_id, BLOCK_PURPOSE, rebuilt.encode())
    return checks


def _receipt_value(receipt_json: dict[str, Any]) -> dict[str, Any]:
    """The receipt as the node shows it (bytes as hex) must be the one proven (only ``tx`` is bytes)."""
    return {**receipt_json, "tx": bytes.fromhex(receipt_json["tx"])}
